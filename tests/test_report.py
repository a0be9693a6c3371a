"""The papermill runner and the diary, on small real notebooks executed in a kernel."""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wav2kp.report.report import (
    NotebookFailed,
    find_notebooks,
    key_metrics,
    parse_parameter,
    run_report,
    write_diary,
)

HEADER = """# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---
"""

WRITER = (
    HEADER
    + """
# %% tags=["parameters"]
output_dir = "unset"
epochs = 1

# %%
import json, pathlib
out = pathlib.Path(output_dir)
metrics = {"default": {"mouth_open_r": 0.5 + epochs / 100, "variance_ratio": 1.0}}
(out / "metrics.json").write_text(json.dumps(metrics))
print("epochs", epochs)
"""
)

FAILER = (
    HEADER
    + """
# %% tags=["parameters"]
output_dir = "unset"

# %%
x = 1

# %%
raise ValueError("deliberate failure for the test")
"""
)


class LinkParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def links_of(index: Path) -> list[str]:
    parser = LinkParser()
    parser.feed(index.read_text())
    return parser.links


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_write.py").write_text(WRITER)
    (folder / "02_write_again.py").write_text(WRITER)
    (folder / "not_numbered.py").write_text("raise SystemExit('must not run')\n")
    return folder


def test_parse_parameter_understands_literals():
    assert parse_parameter("epochs=5") == ("epochs", 5)
    assert parse_parameter("lr=1e-3") == ("lr", 1e-3)
    assert parse_parameter("quick=true") == ("quick", True)
    assert parse_parameter("model=default") == ("model", "default")
    assert parse_parameter("clips=['a', 'b']") == ("clips", ["a", "b"])
    with pytest.raises(ValueError, match="key=value"):
        parse_parameter("epochs")


def test_find_notebooks_is_ordered_and_selectable(notebooks: Path):
    assert [p.stem for p in find_notebooks(notebooks)] == ["01_write", "02_write_again"]
    assert [p.stem for p in find_notebooks(notebooks, ["02"])] == ["02_write_again"]


def test_run_writes_notebooks_html_metrics_and_diary(notebooks: Path, tmp_path: Path):
    runs = tmp_path / "reports" / "runs"
    record = run_report(
        "unit", {"epochs": 7}, notebooks_dir=notebooks, runs_dir=runs, progress=False
    )
    assert record.status == "ok"
    run_dir = runs / record.folder
    stored = json.loads((run_dir / "run.json").read_text())
    assert stored["parameters"]["epochs"] == 7
    assert [nb["status"] for nb in stored["notebooks"]] == ["ok", "ok"]
    assert (run_dir / "01_write.html").is_file() and (run_dir / "02_write_again.ipynb").is_file()
    # the parameter reached the kernel: the notebook computed from it
    assert key_metrics(stored)["mouth_open_r"] == pytest.approx(0.57)
    index = runs.parent / "index.html"
    text = index.read_text()
    assert record.folder in text and "0.57" in text
    links = links_of(index)
    assert links, "diary has no links"
    for link in links:
        assert (index.parent / link).exists(), f"dangling link {link}"


def test_failing_notebook_stops_run_and_is_marked(notebooks: Path, tmp_path: Path):
    (notebooks / "02_write_again.py").write_text(FAILER)
    (notebooks / "03_after.py").write_text(WRITER)
    runs = tmp_path / "runs"
    with pytest.raises(NotebookFailed, match="02_write_again.py: cell .* ValueError"):
        run_report("broken", notebooks_dir=notebooks, runs_dir=runs, progress=False)
    (run_dir,) = runs.iterdir()
    stored = json.loads((run_dir / "run.json").read_text())
    assert stored["status"] == "failed"
    assert "deliberate failure" in stored["failure"]
    assert [nb["status"] for nb in stored["notebooks"]] == ["ok", "failed", "skipped"]
    # the failed notebook is still rendered so its traceback can be read
    assert (run_dir / "02_write_again.html").is_file()
    diary = (runs.parent / "index.html").read_text()
    assert 'class="failed"' in diary and "deliberate failure" in diary


def test_diary_lists_runs_newest_first(tmp_path: Path):
    runs = tmp_path / "runs"
    for folder, name in [("20260101-000000-a", "alpha-run"), ("20260102-000000-b", "beta-run")]:
        (runs / folder).mkdir(parents=True)
        (runs / folder / "run.json").write_text(
            json.dumps({"name": name, "folder": folder, "status": "ok", "notebooks": []})
        )
    (runs / "20260103-000000-c").mkdir()  # interrupted before run.json: shown as broken
    text = write_diary(runs).read_text()
    assert text.index("20260103") < text.index("beta-run") < text.index("alpha-run")
    assert "broken" in text


SHOW = (
    HEADER
    + """
# %% tags=["parameters"]
output_dir = "unset"

# %%
print("only output_dir here")
"""
)


def test_an_unknown_parameter_is_an_error_naming_it(notebooks: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match="'epocs'"):
        run_report("typo", {"epocs": 7}, notebooks_dir=notebooks, runs_dir=runs, progress=False)
    assert not runs.exists() or not any(runs.iterdir())  # refused before anything ran
    from wav2kp.report.report import execute_notebook

    with pytest.raises(ValueError, match="'epocs'"):
        execute_notebook(notebooks / "01_write.py", tmp_path, {"epocs": 7}, tmp_path, "python3")


def test_each_notebook_gets_only_the_parameters_it_declares(notebooks: Path, tmp_path: Path):
    (notebooks / "02_write_again.py").write_text(SHOW)
    runs = tmp_path / "runs"
    record = run_report(
        "scoped", {"epochs": 7}, notebooks_dir=notebooks, runs_dir=runs, progress=False
    )
    assert record.status == "ok", record.failure
    run_dir = runs / record.folder
    stored = json.loads((run_dir / "run.json").read_text())
    given = {nb["name"]: nb["parameters"] for nb in stored["notebooks"]}
    assert given["01_write"] == {"epochs": 7, "output_dir": str(run_dir)}
    assert given["02_write_again"] == {"output_dir": str(run_dir)}
    injected = (run_dir / "02_write_again.ipynb").read_text()
    assert "epochs" not in injected
    # run.json holds the run configuration the notebooks resolve
    from wav2kp.config import RunConfig

    assert stored["config"] == RunConfig.resolve(epochs=7).to_dict()


def test_declared_parameters_are_read_like_python_reads_them(tmp_path: Path):
    source = tmp_path / "01_params.py"
    source.write_text(
        HEADER
        + """
# %% tags=["parameters"]
face = None  # several faces in view: None = the largest, N = the N-th from the left
size: int = 3
clips = ["a", "b"]  # a list
rate = 1 / 3  # an expression

# %%
unrelated = 1
"""
    )
    from wav2kp.report.report import check_parameters, declared_parameters

    declared = declared_parameters(source)
    assert declared == {"face": None, "size": 3, "clips": ["a", "b"], "rate": "1 / 3"}
    check_parameters({"face": 2}, {"01_params": declared})  # not refused as unknown


def test_papermill_reads_every_project_notebooks_parameters_without_warning(caplog):
    """papermill parses the parameters cell itself while injecting (a line holding two
    '=' gets "Unable to parse line ..." on the console of every ``make report``)."""
    import logging

    import jupytext
    import papermill
    from wav2kp.report.report import declared_parameters

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for source in sorted(root.glob("[0-9][0-9]_*.py")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="papermill"):
            inferred = papermill.inspect_notebook(jupytext.read(source))  # its own reader
        assert not caplog.records, f"{source.name}: {[r.getMessage() for r in caplog.records]}"
        assert set(inferred) == set(declared_parameters(source)), source.name


# ---------------------------------------------------------------- resume after kill -9

# 01 draws numbers into the data folder, 02 waits while a hold file exists (so the test
# can kill the run there) and scores them, 03 scores again. Each appends a line (with its
# kernel's pid) to a log, so the test sees what ran; the paths come from the environment,
# so the sources stay the same between attempts.
DRAW = (
    HEADER
    + """
# %% tags=["parameters"]
output_dir = "unset"
seed = 0

# %%
import os, numpy as np
from wav2kp.paths import data_root
with open(os.environ["REPORT_TEST_LOG"], "a") as log:
    log.write(f"01 {os.getpid()}\\n")
folder = data_root() / "draws"
folder.mkdir(parents=True, exist_ok=True)
np.save(folder / "numbers.npy", np.random.default_rng(seed).normal(size=1000))
"""
)
SCORE = (
    HEADER
    + """
# %% tags=["parameters"]
output_dir = "unset"

# %%
import json, os, pathlib, time, numpy as np
from wav2kp.paths import data_root
with open(os.environ["REPORT_TEST_LOG"], "a") as log:
    log.write(f"02 {os.getpid()}\\n")
hold = pathlib.Path(os.environ["REPORT_TEST_HOLD"])
deadline = time.monotonic() + 120
while hold.exists() and time.monotonic() < deadline:
    time.sleep(0.1)
numbers = np.load(data_root() / "draws" / "numbers.npy")
metrics = {"default": {"mouth_open_r": float(numbers.mean()), "variance_ratio": float(numbers.var())}}
(pathlib.Path(output_dir) / "metrics.json").write_text(json.dumps(metrics, sort_keys=True))
"""
)
SCORE_AGAIN = (
    HEADER
    + """
# %% tags=["parameters"]
output_dir = "unset"

# %%
import json, os, pathlib, numpy as np
from wav2kp.paths import data_root
with open(os.environ["REPORT_TEST_LOG"], "a") as log:
    log.write(f"03 {os.getpid()}\\n")
numbers = np.load(data_root() / "draws" / "numbers.npy")
out = {"max": float(numbers.max()), "min": float(numbers.min())}
(pathlib.Path(output_dir) / "metrics_extremes.json").write_text(json.dumps(out, sort_keys=True))
"""
)


@pytest.fixture
def resumable(tmp_path: Path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_draw.py").write_text(DRAW)
    (folder / "02_score.py").write_text(SCORE)
    (folder / "03_score_again.py").write_text(SCORE_AGAIN)
    return folder


def _report_command(notebooks: Path, runs: Path) -> list[str]:
    return [
        sys.executable, "-m", "wav2kp.cli", "report", "--name", "resumable",
        "--notebooks-dir", str(notebooks), "--runs-dir", str(runs), "-p", "seed=3",
        "--no-browser-check",
    ]  # fmt: skip


def _log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _metrics_files(run_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(run_dir.glob("metrics*.json"))}


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ")[-1].startswith("Z"))


def test_kill_9_then_same_command_resumes_and_equals_uninterrupted_run(
    resumable: Path, tmp_path: Path
):
    log, hold = tmp_path / "ran.log", tmp_path / "hold"
    env = {
        **os.environ, "WAV2KP_DATA": str(tmp_path / "data"),
        "REPORT_TEST_LOG": str(log), "REPORT_TEST_HOLD": str(hold),
    }  # fmt: skip
    runs = tmp_path / "reports" / "runs"
    hold.touch()
    first = subprocess.Popen(
        _report_command(resumable, runs), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(lambda: any(step == "02" for step, _ in _log(log)), 300, "notebook 02")
    finally:
        first.kill()  # SIGKILL: no clean-up of any kind
        first.wait()
    kernel_pid = int(next(pid for step, pid in _log(log) if step == "02"))
    # the orphaned kernel notices its parent is gone and exits by itself
    _wait_for(lambda: not _alive(kernel_pid), 30, "the orphaned kernel to exit")
    (run_dir,) = runs.iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    assert "interrupted" in write_diary(runs).read_text()

    hold.unlink()
    again = subprocess.run(
        _report_command(resumable, runs), env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming interrupted run {run_dir}" in again.stdout
    assert "finished with unchanged inputs: 01_draw; running from 02_score" in again.stdout
    assert [step for step, _ in _log(log)] == ["01", "02", "02", "03"]  # 01 not re-run
    assert [p.name for p in runs.iterdir()] == [run_dir.name]  # same folder, no new run
    stored = json.loads((run_dir / "run.json").read_text())
    assert stored["status"] == "ok" and len(stored["resumed"]) == 1
    assert [nb["status"] for nb in stored["notebooks"]] == ["ok", "ok", "ok"]
    assert [nb["reused"] for nb in stored["notebooks"]] == [True, False, False]

    # an uninterrupted run of the same command elsewhere writes the same metrics files
    clean_env = {**env, "WAV2KP_DATA": str(tmp_path / "clean-data")}
    clean_runs = tmp_path / "clean" / "runs"
    subprocess.run(_report_command(resumable, clean_runs), env=clean_env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    (clean_dir,) = clean_runs.iterdir()
    assert _metrics_files(run_dir) == _metrics_files(clean_dir)
    assert set(_metrics_files(run_dir)) == {"metrics.json", "metrics_extremes.json"}
    assert (
        json.loads((run_dir / "run.json").read_text())["metrics"]
        == json.loads((clean_dir / "run.json").read_text())["metrics"]
    )


def _interrupt(run_dir: Path, after: int) -> None:
    """Make a finished run look as a kill -9 after ``after`` notebooks leaves it."""
    stored = json.loads((run_dir / "run.json").read_text())
    stored["status"] = "running"
    stored["notebooks"] = stored["notebooks"][:after]
    (run_dir / "run.json").write_text(json.dumps(stored))


def test_resume_reruns_from_the_notebook_whose_inputs_changed(
    resumable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    log = tmp_path / "ran.log"
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPORT_TEST_LOG", str(log))
    monkeypatch.setenv("REPORT_TEST_HOLD", str(tmp_path / "no-hold"))
    runs = tmp_path / "runs"

    def run():
        return run_report("r", {"seed": 1}, notebooks_dir=resumable, runs_dir=runs,
                          progress=False, browser_check=False)  # fmt: skip

    record = run()
    run_dir = runs / record.folder
    reference = _metrics_files(run_dir)

    # a finished run is a result: the same command again makes a new run
    second = run()
    assert second.folder != record.folder and not second.resumed
    shutil.rmtree(runs / second.folder)

    # another run overwrote what 01 wrote: 01 runs again, and all after it
    _interrupt(run_dir, after=2)
    numbers = tmp_path / "data" / "draws" / "numbers.npy"
    numbers.write_bytes(numbers.read_bytes())
    log.unlink()
    resumed = run()
    assert resumed.folder == record.folder
    assert [step for step, _ in _log(log)] == ["01", "02", "03"]
    assert _metrics_files(run_dir) == reference

    # a changed notebook source: the ones before it are reused
    _interrupt(run_dir, after=3)
    (resumable / "02_score.py").write_text(SCORE.replace("time.sleep(0.1)", "time.sleep(0.2)"))
    log.unlink()
    run()
    assert [step for step, _ in _log(log)] == ["02", "03"]

    # different parameters are a different command: a new run, the interrupted one stays
    _interrupt(run_dir, after=1)
    log.unlink()
    other = run_report("r", {"seed": 2}, notebooks_dir=resumable, runs_dir=runs,
                       progress=False, browser_check=False)  # fmt: skip
    assert other.folder != record.folder
    assert [step for step, _ in _log(log)] == ["01", "02", "03"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"


def test_ctrl_c_keeps_a_resumable_run_and_no_partial_file(resumable: Path, tmp_path: Path):
    log, hold = tmp_path / "ran.log", tmp_path / "hold"
    env = {
        **os.environ, "WAV2KP_DATA": str(tmp_path / "data"),
        "REPORT_TEST_LOG": str(log), "REPORT_TEST_HOLD": str(hold),
    }  # fmt: skip
    runs = tmp_path / "runs"
    hold.touch()
    run = subprocess.Popen(
        _report_command(resumable, runs), env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for(lambda: any(step == "02" for step, _ in _log(log)), 300, "notebook 02")
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    (run_dir,) = runs.iterdir()
    assert run.returncode == 130, out + err
    assert f"interrupted: {run_dir} is kept; the same command again resumes it" in err
    assert "Traceback" not in err
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    hidden = {p.name for p in run_dir.rglob(".*")}
    assert hidden == {".lock"}, f"half-written files left: {hidden}"
    kernel_pid = int(next(pid for step, pid in _log(log) if step == "02"))
    _wait_for(lambda: not _alive(kernel_pid), 30, "the kernel to stop")


def test_every_notebook_that_resolves_the_run_declares_its_profile():
    """`make report-grid` passes `profile=grid`; the runner gives each notebook only the
    parameters it declares, so a notebook resolving RunConfig without declaring `profile`
    silently ran the demo corpus (01-03, 06 did: GRID was extracted into `demo`)."""
    from wav2kp.paths import project_root
    from wav2kp.report.report import declared_parameters

    notebooks = sorted((project_root() / "notebooks").glob("0*.py"))
    resolving = [p for p in notebooks if "RunConfig.from_parameters" in p.read_text()]
    assert len(resolving) == 6
    missing = [p.name for p in resolving if "profile" not in declared_parameters(p)]
    assert not missing
