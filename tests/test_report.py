"""The papermill runner and the diary, on small real notebooks executed in a kernel."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import pytest
from wav2kp.report import (
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
        assert (index.parent / link).is_file(), f"dangling link {link}"


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
    from wav2kp.report import execute_notebook

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
