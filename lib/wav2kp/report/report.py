"""The report: run the numbered notebooks with papermill into one run folder, render them
to HTML, collect their metrics, regenerate the diary ``reports/index.html`` and check it in
a headless browser.

A run folder ``reports/runs/<UTC timestamp>-<name>/`` holds the executed notebooks, their
HTML, every ``metrics*.json`` the notebooks wrote, figures, videos and ``run.json`` (date,
git commit, parameters, per-notebook status, timing and input fingerprint, collected
metrics), rewritten after every notebook. A failing notebook stops the run; ``run.json``
names the notebook and cell, and the diary marks the run failed.

Resume: a run that was killed (kill -9, Ctrl-C, a closed terminal) stays ``running`` in
its ``run.json`` while its folder lock is free. The same command again (same name,
parameters and notebooks) resumes it in the same folder: a finished notebook is not run
again when its inputs are unchanged - same source, parameters, kernel and library code,
the notebooks before it reused too, and every file it wrote (under the data folder and
in the run folder) still as it left it. The rest runs again, so the finished folder holds
what an uninterrupted run writes.

The console stays quiet (``wav2kp.quiet``): kernels run on IPC sockets with their stderr
filtered, so progress and real warnings show and known library chatter does not.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from wav2kp.atomic import write_json, write_text
from wav2kp.paths import data_root, git_commit, project_root, reports_root
from wav2kp.report.diary import (
    BROWSER_CHECK,
    RUN_FILE,
    RUN_LOCK,
    SCREENSHOT,
    THUMBS,
    key_metrics,
    load_runs,
    run_lock_held,
    write_diary,
)

__all__ = [
    "NotebookFailed",
    "ReportInterrupted",
    "RunRecord",
    "key_metrics",
    "load_runs",
    "parse_parameter",
    "run_report",
    "write_diary",
]

RESUME_DIR = "_resume"  # per-run bookkeeping: which files each finished notebook wrote
# Run-folder entries that are bookkeeping, not a notebook's output.
_NOT_OUTPUTS = {RUN_FILE, RUN_LOCK, "_sources", RESUME_DIR, THUMBS, SCREENSHOT, BROWSER_CHECK}


class NotebookFailed(RuntimeError):
    """A notebook of the run raised; the message names the notebook and the cell."""


class ReportInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message names the kept run folder and how to resume."""


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed" | "skipped"
    seconds: float = 0.0
    ipynb: str = ""
    html: str = ""
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # what it was given
    fingerprint: str = ""  # of its inputs: source, parameters, kernel, library code
    reused: bool = False  # finished in an earlier, interrupted attempt of this run

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NotebookResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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
    notebook_names: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)  # when each resume started (UTC)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["notebooks"] = [nb.__dict__ for nb in self.notebooks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known and k != "notebooks"})
        record.notebooks = [NotebookResult.from_json(nb) for nb in data.get("notebooks", [])]
        return record


def parse_parameter(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value) with Python literals understood (ints, floats, bools,
    None, lists); anything else stays a string (``wav2kp.config.parse_assignment``, the
    parser of ``wav2kp train --set`` too)."""
    from wav2kp.config import parse_assignment

    return parse_assignment(text)


def find_notebooks(notebooks_dir: Path, select: list[str] | None = None) -> list[Path]:
    """The numbered py:percent notebook sources, in order; ``select`` keeps those whose
    name starts with one of the given prefixes (e.g. ["01", "02"])."""
    paths = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.py"))
    if select:
        paths = [p for p in paths if any(p.stem.startswith(s) for s in select)]
    return paths


def declared_parameters(source: Path) -> dict[str, Any]:
    """The parameters a notebook source declares: every name its ``parameters`` cell
    assigns, with its default (the literal value; the expression's text otherwise).

    Read with Python's own parser: papermill's line-based reader skips (with an "Unable to
    parse line" warning) an assignment whose comment holds '=' or ':', so such a parameter
    would be refused as unknown."""
    import jupytext

    for cell in jupytext.read(source).cells:
        if cell.cell_type != "code" or "parameters" not in cell.metadata.get("tags", []):
            continue
        declared: dict[str, Any] = {}
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign):
                targets, value = [node.target], node.value
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        declared[target.id] = ast.literal_eval(value) if value else None
                    except ValueError:
                        declared[target.id] = ast.unparse(value)
        return declared
    return {}


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


def run_configuration(parameters: dict[str, Any]) -> dict[str, Any]:
    """The ``wav2kp.config.RunConfig`` the notebooks resolve from these parameters (the
    run parameters among them; None = the default), as run.json records it."""
    from wav2kp.config import RunConfig

    return RunConfig.resolve(
        **{k: v for k, v in parameters.items() if k in RunConfig.fields()}
    ).to_dict()


def execute_notebook(
    source: Path,
    run_dir: Path,
    parameters: dict[str, Any],
    cwd: Path,
    kernel: str,
    kernel_manager_class: type | None = None,
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
    extra = {"kernel_manager_class": kernel_manager_class} if kernel_manager_class else {}
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
            **extra,
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


# ---------------------------------------------------------------- resume bookkeeping


def library_fingerprint() -> str:
    """Hash of the installed wav2kp package's files (code a notebook runs besides its own)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def notebook_fingerprint(
    source: Path, parameters: dict[str, Any], kernel: str, library: str
) -> str:
    """What a notebook's result depends on besides the files earlier notebooks wrote."""
    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    digest.update(kernel.encode() + b"\0" + library.encode())
    return digest.hexdigest()[:20]


FileState = tuple[int, int, int]  # size, mtime_ns, inode


def file_states(roots: Iterable[Path]) -> dict[str, FileState]:
    """Size, modification time and inode of every file under ``roots`` (hidden files,
    i.e. locks and atomic-write temporaries, and run-folder bookkeeping excluded)."""
    states: dict[str, FileState] = {}
    for root in roots:
        for folder, subfolders, names in os.walk(root):
            at_top = Path(folder) == Path(root)
            subfolders[:] = [
                d
                for d in subfolders
                if not d.startswith(".") and not (at_top and d in _NOT_OUTPUTS)
            ]
            for name in names:
                if name.startswith(".") or (at_top and name in _NOT_OUTPUTS):
                    continue
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:  # deleted while we looked
                    continue
                states[path] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return states


def _outputs_file(run_dir: Path) -> Path:
    return run_dir / RESUME_DIR / "outputs.json"


def _load_outputs(run_dir: Path) -> dict[str, list]:
    try:
        return json.loads(_outputs_file(run_dir).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def record_outputs(
    run_dir: Path, notebook: str, before: dict[str, FileState], after: dict[str, FileState]
) -> None:
    """Remember the files ``notebook`` wrote (new or changed) with their state; a later
    notebook that rewrites one of them takes it over."""
    outputs = _load_outputs(run_dir)
    for path, state in after.items():
        if before.get(path) != state:
            outputs[path] = [*state, notebook]
    write_json(_outputs_file(run_dir), outputs)


def changed_outputs(run_dir: Path) -> dict[str, str]:
    """{notebook: first file of its outputs that is missing or no longer as it left it}."""
    changed: dict[str, str] = {}
    for path, (*state, notebook) in _load_outputs(run_dir).items():
        if notebook in changed:
            continue
        try:
            stat = os.stat(path)
            now = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        except OSError:
            now = None
        if now != state:
            changed[notebook] = path
    return changed


def reusable_notebooks(
    previous: list[NotebookResult], fingerprints: list[str], run_dir: Path
) -> tuple[int, str]:
    """How many leading notebooks of an interrupted run need not run again, and why the
    next one does."""
    changed = changed_outputs(run_dir)
    for index, (done, fingerprint) in enumerate(zip(previous, fingerprints, strict=False)):
        if done.status != "ok":
            return index, f"{done.name} did not finish"
        if done.fingerprint != fingerprint:
            return index, f"{done.name}: its source, parameters or the library changed"
        if done.name in changed:
            return index, f"{done.name}: {changed[done.name]} changed since it was written"
        if not (run_dir / done.ipynb).is_file():
            return index, f"{done.name}: its executed notebook is gone"
    reusable = min(len(previous), len(fingerprints))
    return reusable, "it was interrupted" if reusable < len(fingerprints) else ""


def _comparable(parameters: dict[str, Any]) -> str:
    plain = {k: v for k, v in parameters.items() if k != "output_dir"}
    return json.dumps(json.loads(json.dumps(plain, default=str)), sort_keys=True)


def _try_lock(folder: Path) -> IO | None:
    """Hold the run folder's lock for the life of this process (None if another holds it)."""
    handle = open(folder / RUN_LOCK, "a")  # noqa: SIM115 - held until the run ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def find_interrupted_run(
    runs_dir: Path, name: str, parameters: dict[str, Any], notebook_names: list[str]
) -> tuple[Path, RunRecord, IO] | None:
    """The newest run of the same command that was interrupted, locked for us."""
    wanted = _comparable(parameters)
    for folder in sorted((p for p in runs_dir.glob("*") if p.is_dir()), reverse=True):
        try:
            data = json.loads((folder / RUN_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if (
            data.get("status") != "running"
            or data.get("name") != name
            or data.get("notebook_names") != notebook_names
            or _comparable(data.get("parameters", {})) != wanted
            or run_lock_held(folder)
        ):
            continue
        lock = _try_lock(folder)
        if lock is not None:
            return folder, RunRecord.from_json(data), lock
    return None


# ---------------------------------------------------------------- the run


def _say(text: str, progress: bool) -> None:
    if progress:
        print(text, flush=True)


def run_report(
    name: str = "demo",
    parameters: dict[str, Any] | None = None,
    notebooks_dir: Path | None = None,
    select: list[str] | None = None,
    runs_dir: Path | None = None,
    kernel: str = "python3",
    progress: bool = True,
    browser_check: bool | None = None,
) -> RunRecord:
    """Execute the notebooks in order into a run folder (resuming an interrupted run of
    the same command), rewrite the diary and, when Chromium is installed (or
    ``browser_check`` is True), check the diary in a headless browser.

    Raises ``NotebookFailed`` (after recording the failure) when a notebook fails.
    """
    from tqdm.auto import tqdm

    from wav2kp.quiet import StderrFilter, quiet_kernel_manager, quiet_papermill

    root = project_root()
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else root / "notebooks"
    runs_dir = Path(runs_dir) if runs_dir else reports_root() / "runs"
    sources = find_notebooks(notebooks_dir, select)
    if not sources:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.py) found in {notebooks_dir}")
    names = [s.stem for s in sources]
    # every notebook's declared parameters (also those not selected: a parameter of
    # notebook 04 is not unknown in a run of 01 and 02 only)
    declared = {p.stem: declared_parameters(p) for p in find_notebooks(notebooks_dir)}
    requested = dict(parameters or {})
    check_parameters(requested, declared)
    config = run_configuration(requested)
    runs_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    interrupted = find_interrupted_run(runs_dir, name, requested, names)
    if interrupted:
        run_dir, previous, lock = interrupted
        record = RunRecord.from_json(previous.to_json())
        record.resumed.append(now.isoformat(timespec="seconds"))
        record.commit = git_commit(root)
    else:
        safe_name = "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "run"
        run_dir = runs_dir / f"{now:%Y%m%d-%H%M%S}-{safe_name}"
        run_dir.mkdir(parents=True, exist_ok=False)
        lock = _try_lock(run_dir)
        record = RunRecord(
            name=name, folder=run_dir.name, started=now.isoformat(timespec="seconds"),
            parameters={}, commit=git_commit(root), notebook_names=names,
        )  # fmt: skip
    params = {**requested, "output_dir": str(run_dir)}
    record.parameters, record.config = params, config
    # each notebook is given only the parameters it declares
    given = {s.stem: {k: v for k, v in params.items() if k in declared[s.stem]} for s in sources}
    library = library_fingerprint()
    fingerprints = [notebook_fingerprint(s, given[s.stem], kernel, library) for s in sources]
    done = 0
    if interrupted:
        done, reason = reusable_notebooks(record.notebooks, fingerprints, run_dir)
        reused = ", ".join(names[:done]) or "none"
        _say(
            f"resuming interrupted run {run_dir}: finished with unchanged inputs: {reused}"
            + (f"; running from {names[done]} ({reason})" if done < len(names) else ""),
            progress,
        )
    record.notebooks = [
        NotebookResult.from_json({**nb.__dict__, "reused": True}) for nb in record.notebooks[:done]
    ]
    record.status, record.failure = "running", ""
    write_json(run_dir / RUN_FILE, record.to_json())
    roots = [data_root(), run_dir]
    try:
        with (
            StderrFilter() as stderr_filter,
            stderr_filter.muted_on_interrupt(),
            quiet_papermill(),
        ):
            manager = quiet_kernel_manager(stderr_filter)
            states = file_states(roots)
            bar = tqdm(
                sources, desc=f"report {run_dir.name}", unit="notebook", disable=not progress,
                initial=done, total=len(sources),
            )  # fmt: skip
            with bar:
                for source, fingerprint in zip(sources[done:], fingerprints[done:], strict=True):
                    bar.set_postfix_str(source.stem)
                    result = execute_notebook(
                        source, run_dir, given[source.stem], root, kernel, manager
                    )
                    result.fingerprint = fingerprint
                    record.notebooks.append(result)
                    bar.update()
                    if result.status == "failed":
                        record.status, record.failure = "failed", result.error
                        break
                    after = file_states(roots)
                    record_outputs(run_dir, source.stem, states, after)
                    states = after
                    write_json(run_dir / RUN_FILE, record.to_json())
        if record.status != "failed":
            record.status = "ok"
        for skipped in sources[len(record.notebooks) :]:
            record.notebooks.append(NotebookResult(name=skipped.stem, status="skipped"))
        record.seconds = round(sum(nb.seconds for nb in record.notebooks), 1)
        record.finished = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        record.metrics = collect_metrics(run_dir)
        write_json(run_dir / RUN_FILE, record.to_json())
        index = write_diary(runs_dir)
        check_diary(index, runs_dir, run_dir, browser_check, progress)
    except KeyboardInterrupt:
        # run.json still says 'running' and the lock goes with us: a resumable run
        raise ReportInterrupted(
            f"interrupted: {run_dir} is kept; the same command again resumes it"
        ) from None
    finally:
        if lock is not None:
            lock.close()
    if record.status == "failed":
        raise NotebookFailed(f"run {run_dir.name} failed: {record.failure}")
    return record


def check_diary(
    index: Path, runs_dir: Path, run_dir: Path, wanted: bool | None, progress: bool
) -> None:
    """Open the diary in headless Chromium, save the result and a screenshot with the run,
    rewrite the diary so it links them. ``wanted`` None: only when Chromium is installed."""
    from wav2kp.report import browsercheck

    if wanted is False:
        return
    missing = browsercheck.missing_browser_reason()
    if missing:
        if wanted:
            raise RuntimeError(f"diary browser check: {missing}")
        _say(f"diary browser check skipped: {missing}", progress)
        return
    try:
        result = browsercheck.check_page(index, screenshot=run_dir / SCREENSHOT)
    except Exception as err:  # the report is done; a browser that will not start is a note
        if wanted:
            raise
        _say(f"diary browser check could not run: {type(err).__name__}: {err}", progress)
        return
    write_json(run_dir / BROWSER_CHECK, result.to_json())
    write_diary(runs_dir, index)
    _say(result.summary() + f"; screenshot {run_dir / SCREENSHOT}", progress)
    for problem in result.problems():
        print(f"  {problem}", file=sys.stderr)


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
    parser.add_argument(
        "--diary-only",
        action="store_true",
        help="only regenerate index.html (and check it in the browser, screenshot beside it)",
    )
    parser.add_argument(
        "--browser-check",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open the diary in headless Chromium afterwards (default: when installed)",
    )


def run_cli(args: argparse.Namespace) -> int:
    if args.diary_only:
        index = write_diary(args.runs_dir)
        print(f"diary: {index.resolve()}")
        if args.browser_check is not False:
            from wav2kp.report import browsercheck

            missing = browsercheck.missing_browser_reason()
            if missing:
                print(f"diary browser check skipped: {missing}")
                return 1 if args.browser_check else 0
            result = browsercheck.check_page(index, screenshot=index.with_name(SCREENSHOT))
            print(result.summary() + f"; screenshot {index.with_name(SCREENSHOT)}")
            for problem in result.problems():
                print(f"  {problem}", file=sys.stderr)
            return 0 if result.ok else 1
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
            browser_check=args.browser_check,
        )
    except NotebookFailed as err:
        print(f"FAILED: {err}")
        return 1
    except ReportInterrupted as err:
        print(err, file=sys.stderr)
        return 130
    runs_dir = args.runs_dir or reports_root() / "runs"
    print(f"run {record.folder}: ok in {record.seconds:.0f} s")
    print(f"diary: {(Path(runs_dir).parent / 'index.html').resolve()}")
    return 0
