"""The report: run the numbered notebooks with papermill into one run folder, render them
to HTML, collect their metrics, and regenerate the diary ``reports/index.html``.

A run folder ``reports/runs/<UTC timestamp>-<name>/`` holds the executed notebooks, their
HTML, every ``metrics*.json`` the notebooks wrote, figures, videos and ``run.json`` (date,
git commit, parameters, per-notebook status and timing, collected metrics). A failing
notebook stops the run; ``run.json`` names the notebook and cell, and the diary marks the
run failed.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import html
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wav2kp.atomic import write_json, write_text
from wav2kp.paths import project_root, reports_root

RUN_FILE = "run.json"
# Metrics shown as columns in the diary (flattened keys are matched by suffix).
KEY_METRICS = (
    "mouth_open_r",
    "variance_ratio",
    "mouth_lmd_iod",
    "face_lmd_iod",
    "lvd_mouth_iod",
    "jitter_ratio",
    "av_offset_ms",
)


class NotebookFailed(RuntimeError):
    """A notebook of the run raised; the message names the notebook and the cell."""


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed" | "skipped"
    seconds: float = 0.0
    ipynb: str = ""
    html: str = ""
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # what it was given


@dataclass
class RunRecord:
    name: str
    folder: str
    started: str
    parameters: dict[str, Any]
    commit: str
    status: str = "running"
    finished: str = ""
    seconds: float = 0.0
    notebooks: list[NotebookResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    failure: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # the resolved RunConfig

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["notebooks"] = [nb.__dict__ for nb in self.notebooks]
        return data


def parse_parameter(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value) with Python literals understood (ints, floats, bools,
    None, lists); anything else stays a string."""
    if "=" not in text:
        raise ValueError(f"parameter {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise ValueError(f"parameter name {key!r} is not a valid Python identifier")
    value: Any
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        lowered = raw.strip().lower()
        value = {"true": True, "false": False, "none": None, "null": None}.get(lowered, raw)
    return key, value


def find_notebooks(notebooks_dir: Path, select: list[str] | None = None) -> list[Path]:
    """The numbered py:percent notebook sources, in order; ``select`` keeps those whose
    name starts with one of the given prefixes (e.g. ["01", "02"])."""
    paths = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.py"))
    if select:
        paths = [p for p in paths if any(p.stem.startswith(s) for s in select)]
    return paths


def git_commit(root: Path) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")


def declared_parameters(source: Path) -> dict[str, Any]:
    """The parameters a notebook source declares in its ``parameters`` cell, with their
    defaults (papermill's reading of the cell)."""
    import tempfile

    import jupytext
    import papermill

    with tempfile.TemporaryDirectory() as tmp:
        ipynb = Path(tmp) / f"{source.stem}.ipynb"
        jupytext.write(jupytext.read(source), ipynb)
        return {k: v["default"] for k, v in papermill.inspect_notebook(ipynb).items()}


def check_parameters(parameters: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """Raise ``ValueError`` naming every parameter no notebook declares (papermill alone
    only warns and runs on without it)."""
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(
            f"unknown notebook parameter(s) {', '.join(map(repr, unknown))}: no notebook "
            f"declares {'it' if len(unknown) == 1 else 'them'}; known: {', '.join(sorted(known))}"
        )


def execute_notebook(
    source: Path, run_dir: Path, parameters: dict[str, Any], cwd: Path, kernel: str
) -> NotebookResult:
    """Convert a py:percent source to ipynb, execute it with papermill (given only the
    parameters it declares; ``ValueError`` for one it does not), render HTML."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    check_parameters(parameters, {source.stem: declared_parameters(source)})
    src_dir = run_dir / "_sources"
    src_dir.mkdir(parents=True, exist_ok=True)
    source_ipynb = src_dir / f"{source.stem}.ipynb"
    jupytext.write(jupytext.read(source), source_ipynb)
    executed = run_dir / f"{source.stem}.ipynb"
    result = NotebookResult(
        name=source.stem, status="ok", ipynb=executed.name, parameters=dict(parameters)
    )
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source_ipynb),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(cwd),
            progress_bar=False,
            report_mode=False,
        )
    except PapermillExecutionError as err:
        result.status = "failed"
        result.error = (
            f"{source.name}: cell {err.exec_count or err.cell_index} raised {err.ename}: "
            f"{str(err.evalue).splitlines()[0] if err.evalue else ''}"
        )
    except Exception as err:  # kernel death, missing kernel, bad notebook
        result.status = "failed"
        result.error = f"{source.name}: {type(err).__name__}: {err}"
    result.seconds = round(time.perf_counter() - start, 2)
    if executed.exists():
        result.html = render_html(executed)
    return result


def render_html(notebook: Path) -> str:
    """nbconvert HTML beside the notebook; returns the file name."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    write_text(target, body)
    return target.name


def collect_metrics(run_dir: Path) -> dict[str, Any]:
    """Every ``metrics*.json`` in the run folder, keyed by file stem."""
    metrics: dict[str, Any] = {}
    for path in sorted(run_dir.glob("metrics*.json")):
        try:
            metrics[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            metrics[path.stem] = {"error": f"{path.name}: {err}"}
    return metrics


def run_report(
    name: str = "demo",
    parameters: dict[str, Any] | None = None,
    notebooks_dir: Path | None = None,
    select: list[str] | None = None,
    runs_dir: Path | None = None,
    kernel: str = "python3",
    progress: bool = True,
) -> RunRecord:
    """Execute the notebooks in order into a new run folder; always rewrites the diary.

    Raises ``NotebookFailed`` (after recording the failure) when a notebook fails.
    """
    from tqdm.auto import tqdm

    root = project_root()
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else root / "notebooks"
    runs_dir = Path(runs_dir) if runs_dir else reports_root() / "runs"
    sources = find_notebooks(notebooks_dir, select)
    if not sources:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.py) found in {notebooks_dir}")
    # every notebook's declared parameters (also those not selected: a parameter of
    # notebook 04 is not unknown in a run of 01 and 02 only)
    declared = {p.stem: declared_parameters(p) for p in find_notebooks(notebooks_dir)}
    parameters = dict(parameters or {})
    check_parameters(parameters, declared)
    config = run_configuration(parameters)
    started = dt.datetime.now(dt.timezone.utc)
    safe_name = "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "run"
    run_dir = runs_dir / f"{started:%Y%m%d-%H%M%S}-{safe_name}"
    run_dir.mkdir(parents=True, exist_ok=False)
    params = {**parameters, "output_dir": str(run_dir)}
    record = RunRecord(
        name=name,
        folder=run_dir.name,
        started=started.isoformat(timespec="seconds"),
        parameters=params,
        commit=git_commit(root),
        config=config,
    )
    write_json(run_dir / RUN_FILE, record.to_json())
    clock = time.perf_counter()
    bar = tqdm(sources, desc=f"report {run_dir.name}", unit="notebook", disable=not progress)
    for source in bar:
        bar.set_postfix_str(source.stem)
        given = {k: v for k, v in params.items() if k in declared[source.stem]}
        result = execute_notebook(source, run_dir, given, cwd=root, kernel=kernel)
        record.notebooks.append(result)
        if result.status == "failed":
            record.status = "failed"
            record.failure = result.error
            break
    else:
        record.status = "ok"
    for skipped in sources[len(record.notebooks) :]:
        record.notebooks.append(NotebookResult(name=skipped.stem, status="skipped"))
    record.seconds = round(time.perf_counter() - clock, 1)
    record.finished = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record.metrics = collect_metrics(run_dir)
    write_json(run_dir / RUN_FILE, record.to_json())
    write_diary(runs_dir)
    if record.status == "failed":
        raise NotebookFailed(f"run {run_dir.name} failed: {record.failure}")
    return record


def run_configuration(parameters: dict[str, Any]) -> dict[str, Any]:
    """The ``wav2kp.config.RunConfig`` the notebooks resolve from these parameters (the
    run parameters among them; None = the default), as run.json records it."""
    from wav2kp.config import RunConfig

    return RunConfig.resolve(
        **{k: v for k, v in parameters.items() if k in RunConfig.fields()}
    ).to_dict()


# ---------------------------------------------------------------- diary (reports/index.html)


def load_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """All run records, newest first; a run folder without a readable run.json is listed
    as broken rather than hidden."""
    runs = []
    for folder in sorted((p for p in runs_dir.glob("*") if p.is_dir()), reverse=True):
        try:
            runs.append(json.loads((folder / RUN_FILE).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            runs.append({"name": folder.name, "folder": folder.name, "status": f"broken ({err})"})
    return runs


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts as {"a.b.c": value}."""
    flat: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        flat[prefix] = float(data)
    return flat


def key_metrics(run: dict[str, Any], model: str = "default") -> dict[str, float]:
    """The diary's headline numbers: the default model's evaluation metrics."""
    evaluation = run.get("metrics", {}).get("metrics", {})
    flat = flatten(evaluation.get(model, evaluation) if isinstance(evaluation, dict) else {})
    picked = {}
    for wanted in KEY_METRICS:
        for key, value in flat.items():
            if key == wanted or key.endswith("." + wanted):
                picked[wanted] = value
                break
    return picked


def write_diary(runs_dir: Path | None = None, index: Path | None = None) -> Path:
    """Regenerate the diary page listing every run with its links and key metrics."""
    runs_dir = Path(runs_dir) if runs_dir else reports_root() / "runs"
    index = Path(index) if index else runs_dir.parent / "index.html"
    runs = load_runs(runs_dir) if runs_dir.exists() else []
    rel = runs_dir.relative_to(index.parent) if runs_dir.is_relative_to(index.parent) else runs_dir
    write_text(index, render_diary(runs, rel.as_posix(), runs_dir))
    return index


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def render_diary(runs: list[dict[str, Any]], rel_runs: str, runs_dir: Path) -> str:
    rows, compare_cols = [], []
    for run in runs:
        folder = run.get("folder", "")
        base = f"{rel_runs}/{folder}"
        links = "<br>".join(
            f'<a href="{html.escape(base)}/{html.escape(nb["html"])}">{html.escape(nb["name"])}</a>'
            if nb.get("html")
            else f'<span class="{nb.get("status", "")}">{html.escape(nb["name"])}</span>'
            for nb in run.get("notebooks", [])
        )
        videos = sorted((runs_dir / folder).rglob("*.mp4")) if folder else []
        video_links = "<br>".join(
            f'<a href="{html.escape(base)}/{html.escape(v.relative_to(runs_dir / folder).as_posix())}">'
            f"{html.escape(v.name)}</a>"
            for v in videos
        )
        params = ", ".join(
            f"{k}={_fmt(v)}"
            for k, v in sorted(run.get("parameters", {}).items())
            if k != "output_dir"
        )
        metrics = key_metrics(run)
        metric_cells = "".join(f"<td>{_fmt(metrics.get(m, ''))}</td>" for m in KEY_METRICS)
        status = run.get("status", "?")
        failure = (
            f'<div class="err">{html.escape(run.get("failure", ""))}</div>'
            if run.get("failure")
            else ""
        )
        rows.append(
            f'<tr class="{html.escape(status.split()[0])}"><td>{_fmt(run.get("started", ""))}</td>'
            f"<td>{_fmt(run.get('name', ''))}</td><td><code>{_fmt(run.get('commit', ''))}</code></td>"
            f"<td>{_fmt(status)}{failure}</td><td>{_fmt(run.get('seconds', ''))}</td>"
            f'<td class="links">{links}<br>{video_links}</td><td>{params}</td>{metric_cells}</tr>'
        )
        if metrics:
            compare_cols.append((folder, metrics))
    header = "".join(f"<th>{m}</th>" for m in KEY_METRICS)
    compare = ""
    if compare_cols:
        head = "".join(f"<th>{html.escape(f)}</th>" for f, _ in compare_cols)
        body = "".join(
            f"<tr><th>{m}</th>"
            + "".join(f"<td>{_fmt(c.get(m, ''))}</td>" for _, c in compare_cols)
            + "</tr>"
            for m in KEY_METRICS
        )
        compare = f"<h2>Runs side by side (default model, test split)</h2><table><tr><th></th>{head}</tr>{body}</table>"
    latest_videos = ""
    if runs and runs[0].get("folder"):
        folder = runs[0]["folder"]
        vids = sorted((runs_dir / folder).rglob("*.mp4"))[:4]
        latest_videos = "".join(
            f'<figure><video controls width="480" src="{html.escape(rel_runs)}/{html.escape(folder)}/'
            f'{html.escape(v.relative_to(runs_dir / folder).as_posix())}"></video>'
            f"<figcaption>{html.escape(v.name)}</figcaption></figure>"
            for v in vids
        )
        if latest_videos:
            latest_videos = f"<h2>Latest run's videos</h2><div class='videos'>{latest_videos}</div>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wav2kp diary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; font-size: 0.9em; }}
tr.failed td {{ background: #fde8e8; }} .err {{ color: #a00; font-size: 0.85em; }}
span.skipped {{ color: #999; }} span.failed {{ color: #a00; }}
.videos {{ display: flex; flex-wrap: wrap; gap: 1em; }}
</style></head><body>
<h1>wav2kp diary</h1>
<p>One entry per <code>make report</code> run: date, commit, parameters, headline metrics of the
default model on held-out sentences, and links to the six rendered notebooks and videos.</p>
<table><tr><th>started (UTC)</th><th>name</th><th>commit</th><th>status</th><th>seconds</th>
<th>notebooks / videos</th><th>parameters</th>{header}</tr>
{"".join(rows) or '<tr><td colspan="99">no runs yet</td></tr>'}
</table>
{compare}
{latest_videos}
</body></html>
"""


# ---------------------------------------------------------------- command line


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="demo", help="run name (folder suffix)")
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="notebook parameter for the whole run (repeatable), e.g. -p epochs=5",
    )
    parser.add_argument("--notebooks", nargs="*", help="only these numbers, e.g. 01 02")
    parser.add_argument("--notebooks-dir", type=Path, help="folder of NN_name.py sources")
    parser.add_argument("--runs-dir", type=Path, help="where run folders go (reports/runs)")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--diary-only", action="store_true", help="only regenerate index.html")


def run_cli(args: argparse.Namespace) -> int:
    if args.diary_only:
        print(write_diary(args.runs_dir))
        return 0
    parameters = dict(parse_parameter(p) for p in args.param)
    try:
        record = run_report(
            name=args.name,
            parameters=parameters,
            notebooks_dir=args.notebooks_dir,
            select=args.notebooks,
            runs_dir=args.runs_dir,
            kernel=args.kernel,
        )
    except NotebookFailed as err:
        print(f"FAILED: {err}")
        return 1
    runs_dir = args.runs_dir or reports_root() / "runs"
    print(f"run {record.folder}: ok in {record.seconds:.0f} s")
    print(f"diary: {(Path(runs_dir).parent / 'index.html').resolve()}")
    return 0
