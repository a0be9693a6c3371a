"""The diary ``reports/index.html``: every report run on one page that reads on its own.

One self-contained file (inline style, inline SVG plots, no script needed; it works from
``file://``): a card per run with its date, corpus, model, status, commit, headline
metrics of the primary model on held-out sentences (with intervals where the run has
them), links to the rendered notebooks, a thumbnail per video (the faces rendered from
predicted keypoints first, beside the real video), and the run's browser check; a trend
plot of the headline metrics across runs per corpus; the latest run of each corpus side
by side; and filter buttons by corpus group (demo, grid, own videos).

Metrics are read defensively from each run's ``run.json`` (``metrics*.json`` as the run
collected them): a metric is a number or a dict with a point value and optional interval;
intervals also come from the run's ``metrics_summary.csv`` when it has one.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import html
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wav2kp.atomic import write_bytes, write_text
from wav2kp.metrics import MOUTH_METRICS
from wav2kp.paths import reports_root

RUN_FILE = "run.json"
RUN_LOCK = ".lock"  # held (flock) by the process running the report in that folder
SCREENSHOT = "diary.png"  # the browser check's screenshot, saved in the run folder
BROWSER_CHECK = "browser_check.json"
THUMBS = "thumbs"
# shown above a run's other videos (wav2kp.handoff.facecompare names them)
FACES_CAPTION = (
    "Faces: real video | face rendered from the predicted keypoints (same audio), "
    "held-out sentences"
)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".webm", ".mov")

# The headline metrics, in display order; TREND_METRICS get a trend panel. A run that
# predates a metric (or left it NaN) simply lacks it: no chip, cell or panel.
HEADLINE_METRICS = (
    "mouth_open_r",
    "variance_ratio",
    "mouth_lmd_iod",
    "face_lmd_iod",
    "lvd_mouth_iod",
    "mouth_jitter_ratio",
    "syllable_band_ratio",
    "bilabial_closure_rate",
    "av_offset_ms",
)
TREND_METRICS = MOUTH_METRICS
PRIMARY_MODEL = "default"
# Models evaluated beside the primary one (shown in each run's details).
BASELINE_MODELS = ("neutral_face", "mean_face", "loudness", "ridge", "original", "seed")
# wav2kp.evaluation.evaluate writes each model's estimates with bootstrap intervals here (long form:
# space, model, metric, estimate, low, high); metrics.json holds the estimates alone.
SUMMARY_FILE = "metrics_summary.csv"
SUMMARY_SPACE = "aligned"  # the space metrics.json reports (pose-normalised)
CORPUS_GROUPS = {"demo": "demo corpus", "grid": "GRID (real speech)", "own": "own videos"}
CREDITS = {
    "grid": (
        "GRID corpus: M. Cooke, J. Barker, S. Cunningham and X. Shao, “An audio-visual corpus "
        "for speech perception and automatic speech recognition”, JASA 120(5), 2006; "
        "licensed CC BY 4.0."
    ),
}
_POINT_KEYS = ("mean", "value", "estimate", "point", "median")
_LOW_KEYS = ("low", "lo", "lower", "ci_low", "ci_lower")
_HIGH_KEYS = ("high", "hi", "upper", "ci_high", "ci_upper")
_INTERVAL_KEYS = ("ci", "interval", "ci95")


def corpus_group(corpus: Any) -> str:
    """'demo', 'grid' or 'own' for a corpus name (demo-tiny is a demo corpus)."""
    name = str(corpus or "").lower()
    for group in ("demo", "grid"):
        if name == group or name.startswith(group + "-") or name.startswith(group + "_"):
            return group
    return "own"


# ---------------------------------------------------------------- reading runs


def run_corpus(run: Mapping[str, Any]) -> str:
    """The corpus a run used: its parameter, else its resolved configuration's default."""
    for source in (run.get("parameters"), run.get("config")):
        if isinstance(source, Mapping) and source.get("corpus"):
            return str(source["corpus"])
    return "?"


def run_lock_held(folder: Path) -> bool:
    """True while a live process holds the run folder's lock (a report is running there);
    a process killed with -9 releases it."""
    lock = Path(folder) / RUN_LOCK
    if not lock.exists():
        return False
    try:
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def load_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """All run records, newest first. A folder without a readable run.json is listed as
    broken rather than hidden; a 'running' run whose process is gone is 'interrupted'."""
    runs = []
    for folder in sorted((p for p in Path(runs_dir).glob("*") if p.is_dir()), reverse=True):
        try:
            run = json.loads((folder / RUN_FILE).read_text())
        except (OSError, json.JSONDecodeError) as err:
            run = {"name": folder.name, "status": f"broken ({type(err).__name__})"}
        run["folder"] = folder.name
        if run.get("status") == "running" and not run_lock_held(folder):
            run["status"] = "interrupted"
        run["intervals"] = read_intervals(folder / SUMMARY_FILE)
        runs.append(run)
    return runs


def read_intervals(path: Path) -> dict[str, dict[str, list[float]]]:
    """{model: {metric: [low, high]}} from a run's metrics summary (empty when absent or
    not in the expected form)."""
    import csv

    intervals: dict[str, dict[str, list[float]]] = {}
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("space", SUMMARY_SPACE) != SUMMARY_SPACE:
                    continue
                try:
                    low, high = float(row["low"]), float(row["high"])
                    units = float(row.get("n_units") or 2)
                except (KeyError, TypeError, ValueError):
                    continue
                # one test sentence gives a zero-width "interval": that says nothing
                if (
                    _finite(low) is not None
                    and _finite(high) is not None
                    and high > low
                    and units >= 2
                ):
                    intervals.setdefault(row.get("model", ""), {})[row.get("metric", "")] = [
                        low,
                        high,
                    ]
    except OSError:
        pass
    return intervals


@dataclass(frozen=True)
class Estimate:
    """A metric's point value and, when the run measured one, its interval."""

    value: float
    low: float | None = None
    high: float | None = None

    def text(self) -> str:
        if self.low is None or self.high is None:
            return _number(self.value)
        return f"{_number(self.value)} [{_number(self.low)}, {_number(self.high)}]"


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def estimate(raw: Any) -> Estimate | None:
    """A metric as stored: a number, or a dict with a point value (mean/value/...) and an
    optional interval (low/high, ci_low/ci_high or ci=[low, high])."""
    value = _finite(raw)
    if value is not None:
        return Estimate(value)
    if not isinstance(raw, Mapping):
        return None
    value = next((_finite(raw[k]) for k in _POINT_KEYS if _finite(raw.get(k)) is not None), None)
    if value is None:
        return None
    low = next((_finite(raw[k]) for k in _LOW_KEYS if _finite(raw.get(k)) is not None), None)
    high = next((_finite(raw[k]) for k in _HIGH_KEYS if _finite(raw.get(k)) is not None), None)
    for key in _INTERVAL_KEYS:
        pair = raw.get(key)
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            low, high = _finite(pair[0]), _finite(pair[1])
    return Estimate(value, low, high)


def _metric_block(block: Any) -> dict[str, Estimate]:
    if not isinstance(block, Mapping):
        return {}
    found = {m: estimate(block[m]) for m in HEADLINE_METRICS if m in block}
    return {m: e for m, e in found.items() if e is not None}


def model_metrics(run: Mapping[str, Any]) -> dict[str, dict[str, Estimate]]:
    """{model: {metric: Estimate}} of the run's held-out evaluation: every block of
    ``metrics.json`` (top level, or under ``models``) holding at least two headline
    metrics; else the single model of ``metrics_evaluation.json``."""
    collected = run.get("metrics") or {}
    evaluation = collected.get("metrics") if isinstance(collected, Mapping) else None
    models: dict[str, dict[str, Estimate]] = {}
    if isinstance(evaluation, Mapping):
        source = evaluation.get("models", evaluation)
        if isinstance(source, Mapping):
            for name, block in source.items():
                found = _metric_block(block)
                if len(found) >= 2:
                    models[str(name)] = found
    if not models and isinstance(collected, Mapping):
        summary = collected.get("metrics_evaluation")
        found = _metric_block(summary)
        if found:
            name = summary.get("model", PRIMARY_MODEL) if isinstance(summary, Mapping) else ""
            models[str(name)] = found
    intervals = run.get("intervals") or {}
    for name, block in models.items():
        for metric, value in block.items():
            pair = intervals.get(name, {}).get(metric)
            if value.low is None and pair:
                block[metric] = Estimate(value.value, pair[0], pair[1])
    return models


def primary_model(run: Mapping[str, Any], models: Mapping[str, Any]) -> str | None:
    """The run's own model: 'default', else the run's ``model`` parameter, else the first
    evaluated model that is not a baseline."""
    wanted = (run.get("parameters") or {}).get("model")
    for name in (PRIMARY_MODEL, wanted):
        if name in models:
            return str(name)
    return next((m for m in models if m not in BASELINE_MODELS), None)


def key_metrics(run: Mapping[str, Any]) -> dict[str, float]:
    """The primary model's headline metrics as plain numbers."""
    models = model_metrics(run)
    name = primary_model(run, models)
    return {m: e.value for m, e in models.get(name, {}).items()} if name else {}


def model_description(run: Mapping[str, Any], model: str | None) -> str:
    """e.g. 'default · 218 k parameters · 40 epochs · 3 seeds' from the run's training
    metrics (a ``final_models`` list of trained runs, or one block per model)."""
    if not model:
        return "—"
    training = (run.get("metrics") or {}).get("metrics_training")
    trained: list[Mapping[str, Any]] = []
    if isinstance(training, Mapping):
        listed = training.get("final_models")
        if isinstance(listed, list):
            trained = [t for t in listed if isinstance(t, Mapping) and t.get("model") == model]
        elif isinstance(training.get(model), Mapping):
            trained = [training[model]]
    parts = [model]
    if trained:
        n_parameters = _finite(trained[0].get("n_parameters"))
        if n_parameters:
            parts.append(f"{n_parameters / 1000:.0f} k parameters")
        epochs = _finite(trained[0].get("final_epochs", trained[0].get("epochs")))
        if epochs:
            parts.append(f"{epochs:.0f} epochs")
        seeds = {t.get("seed") for t in trained if t.get("seed") is not None}
        if seeds:
            parts.append(f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}")
    return " · ".join(parts)


# ---------------------------------------------------------------- thumbnails


def run_videos(run_dir: Path) -> list[Path]:
    """Videos a run produced (its folder, recursively), in a stable order."""
    return sorted(
        p
        for p in Path(run_dir).rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file() and THUMBS not in p.parts
    )


def thumbnail(video: Path, run_dir: Path, width: int = 240) -> Path | None:
    """A JPEG of one frame (40 % into the video) under ``<run>/thumbs/``, made once and
    remade when the video is newer; None when the video cannot be read."""
    import cv2

    from wav2kp.media import decode, probe

    relative = video.relative_to(run_dir).with_suffix(".jpg").as_posix().replace("/", "__")
    target = run_dir / THUMBS / relative
    if target.is_file() and target.stat().st_mtime_ns >= video.stat().st_mtime_ns:
        return target
    try:
        info = probe.probe(video)
        index = int(0.4 * (info.duration or 0.0) * (info.fps or 25.0))
        frames = decode.read_frames_at(video, [index]) or decode.read_frames_at(video, [0])
    except Exception:  # an unreadable video is shown as a plain link
        return None
    if not frames:
        return None
    rgb = next(iter(frames.values()))
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if not ok:
        return None
    write_bytes(target, data.tobytes())
    return target


# ---------------------------------------------------------------- trend plots


def trend_table(runs: Iterable[Mapping[str, Any]]):
    """Long table (started, corpus, group, folder, metric, value, low, high) of the primary
    model's headline metrics of every finished run."""
    import pandas as pd

    rows = []
    for run in runs:
        if run.get("status") != "ok":
            continue
        models = model_metrics(run)
        name = primary_model(run, models)
        if not name:
            continue
        corpus = run_corpus(run)
        try:
            started = dt.datetime.fromisoformat(str(run.get("started")))
        except ValueError:
            continue
        for metric, value in models[name].items():
            rows.append({
                "started": started, "corpus": corpus, "group": corpus_group(corpus),
                "folder": run.get("folder", ""), "metric": metric, "value": value.value,
                "low": value.low, "high": value.high,
            })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["started", "corpus", "group", "folder", "metric", "value", "low", "high"]
    )


def trend_svg(table, metrics: Iterable[str] = TREND_METRICS) -> str:
    """Small multiples (one panel per metric) of the runs over time, a line per corpus,
    interval bars where measured, the ideal value dashed; returned as inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from wav2kp.plots.render import IDEAL, METRIC_LABELS

    metrics = [m for m in metrics if m in set(table["metric"])]
    if not metrics:
        return ""
    corpora = list(dict.fromkeys(table.sort_values("started")["corpus"]))
    palette = dict(zip(corpora, sns.color_palette("deep", len(corpora)), strict=True))
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "wav2kp-diary"}):
        sns.set_theme(style="whitegrid", context="paper")
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.1 * len(metrics), 2.5), squeeze=False)
        # one x position per run (in time order), labelled with its date: runs are events,
        # and a time axis would crowd same-day runs and stretch across idle months
        order = sorted(set(table["started"]))
        position = {t: i for i, t in enumerate(order)}
        step = max(1, len(order) // 8)
        for ax, metric in zip(axes[0], metrics, strict=True):
            part = table[table["metric"] == metric].sort_values("started")
            for corpus, rows in part.groupby("corpus", sort=False):
                x = rows["started"].map(position).to_numpy()
                ax.plot(x, rows["value"], marker="o", ms=4, label=corpus, color=palette[corpus])
                bounded = rows.dropna(subset=["low", "high"])
                if len(bounded):
                    ax.errorbar(
                        bounded["started"].map(position).to_numpy(), bounded["value"],
                        yerr=[bounded["value"] - bounded["low"], bounded["high"] - bounded["value"]],
                        fmt="none", ecolor=palette[corpus], capsize=2, lw=1,
                    )  # fmt: skip
            ax.set_xticks(range(0, len(order), step))
            ax.set_xticklabels([f"{order[i]:%m-%d %H:%M}" for i in range(0, len(order), step)])
            ax.set_xlim(-0.5, len(order) - 0.5)
            if metric in IDEAL:
                ax.axhline(IDEAL[metric], ls="--", lw=0.8, color="0.5")
            ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
            ax.set_xlabel("")
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
            ax.tick_params(axis="y", labelsize=7)
        axes[0][0].legend(fontsize=7, title="corpus", title_fontsize=7)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: it is inline


# ---------------------------------------------------------------- page


def write_diary(runs_dir: Path | None = None, index: Path | None = None) -> Path:
    """Regenerate the diary page (and missing video thumbnails) for every run."""
    runs_dir = Path(runs_dir) if runs_dir else reports_root() / "runs"
    index = Path(index) if index else runs_dir.parent / "index.html"
    runs = load_runs(runs_dir) if runs_dir.exists() else []
    rel = os.path.relpath(runs_dir, index.parent)
    write_text(index, render_diary(runs, Path(rel).as_posix(), runs_dir))
    return index


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _link(href: str, text: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<a href="{_e(href)}"{klass}>{_e(text)}</a>'


def _status_text(run: Mapping[str, Any]) -> str:
    status = str(run.get("status", "?"))
    if status == "interrupted":
        return "interrupted — the same command again resumes it"
    return status


def _metric_chips(metrics: Mapping[str, Estimate]) -> str:
    if not metrics:
        return '<p class="muted">no evaluation metrics</p>'
    chips = "".join(
        f'<div class="chip"><span>{_e(m)}</span><b>{_e(metrics[m].text())}</b></div>'
        for m in HEADLINE_METRICS
        if m in metrics
    )
    return f'<div class="chips">{chips}</div>'


def _models_table(models: Mapping[str, Mapping[str, Estimate]]) -> str:
    if len(models) < 2:
        return ""
    metrics = [m for m in HEADLINE_METRICS if any(m in block for block in models.values())]
    head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
    body = "".join(
        f"<tr><th>{_e(name)}</th>"
        + "".join(f"<td>{_e(block[m].text()) if m in block else ''}</td>" for m in metrics)
        + "</tr>"
        for name, block in models.items()
    )
    return (
        "<details><summary>all models on the same held-out frames</summary>"
        f'<table class="models"><tr><th>model</th>{head}</tr>{body}</table></details>'
    )


def _browser_check_line(run_dir: Path, base: str) -> str:
    path = run_dir / BROWSER_CHECK
    if not path.is_file():
        return ""
    try:
        check = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return ""
    problems = len(check.get("broken_links", [])) + len(check.get("bad_videos", []))
    verdict = "ok" if problems == 0 else f"{problems} problem(s)"
    text = (
        f"browser check ({_e(check.get('browser', 'chromium'))}): {verdict} — "
        f"{len(check.get('links', []))} links resolve, {len(check.get('videos', []))} videos load"
    )
    shot = check.get("screenshot")
    if shot and (run_dir / shot).is_file():
        text += " · " + _link(f"{base}/{shot}", "screenshot")
    return f'<p class="check {"ok" if problems == 0 else "bad"}">{text}</p>'


def _run_card(run: Mapping[str, Any], rel_runs: str, runs_dir: Path) -> str:
    folder = str(run.get("folder", ""))
    run_dir = runs_dir / folder
    base = f"{rel_runs}/{folder}"
    parameters = run.get("parameters") or {}
    corpus = run_corpus(run)
    group = corpus_group(corpus)
    models = model_metrics(run)
    model = primary_model(run, models)
    status = str(run.get("status", "?")).split()[0]
    notebooks = " ".join(
        _link(f"{base}/{nb['html']}", nb.get("name", nb["html"]), nb.get("status", ""))
        if nb.get("html")
        else f'<span class="{_e(nb.get("status", ""))}">{_e(nb.get("name", "?"))}</span>'
        for nb in run.get("notebooks", [])
    )
    from wav2kp.handoff.facecompare import is_face_video

    videos, faces = [], []
    for video in run_videos(run_dir) if folder else []:
        relative = video.relative_to(run_dir).as_posix()
        thumb = thumbnail(video, run_dir)
        inner = (
            f'<img src="{_e(base)}/{_e(thumb.relative_to(run_dir).as_posix())}" alt="">'
            if thumb
            else ""
        )
        (faces if is_face_video(video) else videos).append(
            f'<a class="video" href="{_e(base)}/{_e(relative)}">{inner}'
            f"<span>{_e(relative)}</span></a>"
        )
    params = ", ".join(f"{k}={v}" for k, v in sorted(parameters.items()) if k != "output_dir")
    failure = f'<p class="err">{_e(run["failure"])}</p>' if run.get("failure") else ""
    resumed = run.get("resumed") or []
    resumed_text = f" · resumed {len(resumed)}×" if resumed else ""
    seconds = _finite(run.get("seconds"))
    return f"""
<article class="run {_e(status)}" data-group="{_e(group)}">
  <header><h3>{_e(run.get("name", folder))}</h3>
    <span class="badge {_e(group)}">{_e(corpus)}</span>
    <span class="status {_e(status)}">{_e(_status_text(run))}</span></header>
  <p class="meta">{_e(run.get("started", ""))} UTC · model <b>{_e(model_description(run, model))}</b>
    · commit <code>{_e(run.get("commit", "?"))}</code>
    {f"· {seconds:.0f} s" if seconds is not None else ""}{_e(resumed_text)} · folder {_link(base, folder)}</p>
  {failure}
  {_metric_chips(models.get(model, {}) if model else {})}
  <p class="notebooks">{notebooks}</p>
  {f'<div class="faces"><p>{FACES_CAPTION}</p><div class="videos">{"".join(faces)}</div></div>' if faces else ""}
  {f'<div class="videos">{"".join(videos)}</div>' if videos else ""}
  {_browser_check_line(run_dir, base) if folder else ""}
  {_models_table(models)}
  <p class="params">{_e(params)}</p>
</article>"""


def _side_by_side(runs: list[Mapping[str, Any]]) -> str:
    """The latest finished run of each corpus as a column (e.g. GRID beside demo)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for run in runs:  # newest first
        corpus = run_corpus(run)
        if run.get("status") == "ok" and key_metrics(run) and corpus not in latest:
            latest[corpus] = run
    if not latest:
        return ""
    columns = [(corpus, run, model_metrics(run)) for corpus, run in latest.items()]
    head = "".join(
        f'<th><span class="badge {_e(corpus_group(c))}">{_e(c)}</span><br>'
        f"<small>{_e(r.get('folder', ''))}</small></th>"
        for c, r, _ in columns
    )
    rows = []
    for metric in HEADLINE_METRICS:
        cells = []
        for _, run, models in columns:
            name = primary_model(run, models)
            value = models.get(name, {}).get(metric) if name else None
            cells.append(f"<td>{_e(value.text()) if value else ''}</td>")
        if any(cell != "<td></td>" for cell in cells):  # no row for a metric no run measured
            rows.append(f"<tr><th>{_e(metric)}</th>{''.join(cells)}</tr>")
    return (
        "<section><h2>Latest run of each corpus, side by side</h2>"
        '<p class="muted">The primary model on each corpus\'s held-out sentences.</p>'
        f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table></section>"
    )


def _trends(runs: list[Mapping[str, Any]]) -> str:
    table = trend_table(runs)
    if table.empty:
        return ""
    parts = []
    for group in CORPUS_GROUPS:
        rows = table[table["group"] == group]
        svg = trend_svg(rows) if len(rows) else ""
        if svg:
            parts.append(
                f'<figure class="trend" data-group="{_e(group)}">{svg}'
                f"<figcaption>{_e(CORPUS_GROUPS.get(group, group))}: the primary model's "
                "held-out metrics per run (bars: intervals where measured; dashed: ideal)"
                "</figcaption></figure>"
            )
    return "<section><h2>Trends across runs</h2>" + "".join(parts) + "</section>"


STYLE = """
:root { --fg: #1d2433; --muted: #6b7280; --line: #d8dde6; --bg: #f6f7f9; --accent: #2f5bd3; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; padding: 1.5em 2em 3em; max-width: 1400px; }
h1 { margin: 0 0 .2em; } h2 { margin: 1.6em 0 .5em; font-size: 1.2em; }
h3 { display: inline; margin: 0 .5em 0 0; font-size: 1.05em; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.muted, .params, .meta { color: var(--muted); font-size: .88em; }
code { font-size: .9em; }
.filters { margin: 1em 0; display: flex; gap: .4em; flex-wrap: wrap; }
body > input[name=group] { display: none; }
.filters label { border: 1px solid var(--line); background: #fff; border-radius: 999px;
  padding: .25em .9em; cursor: pointer; user-select: none; }
article.run { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: .8em 1.1em; margin: .8em 0; }
article.run.failed, article.run.broken { border-left: 4px solid #c0392b; }
article.run.interrupted, article.run.running { border-left: 4px solid #d4a017; }
article.run.ok { border-left: 4px solid #2e9d57; }
.badge { border-radius: 4px; padding: .05em .5em; font-size: .8em; background: #e5e7eb; }
.badge.demo { background: #dbeafe; } .badge.grid { background: #dcfce7; }
.badge.own { background: #fde68a; }
.status { font-size: .85em; margin-left: .5em; } .status.failed { color: #c0392b; }
.err { color: #a00; font-size: .88em; }
.chips { display: flex; flex-wrap: wrap; gap: .4em; margin: .5em 0; }
.chip { border: 1px solid var(--line); border-radius: 6px; padding: .2em .6em; }
.chip span { color: var(--muted); font-size: .78em; display: block; }
.notebooks a, .notebooks span { margin-right: .8em; } span.skipped { color: #aaa; }
span.failed, a.failed { color: #c0392b; }
.faces p { margin: .5em 0 0; font-size: .85em; color: var(--muted); }
.videos { display: flex; flex-wrap: wrap; gap: .8em; margin: .5em 0; }
a.video { display: flex; flex-direction: column; width: 240px; font-size: .78em; }
a.video img { width: 240px; border-radius: 4px; border: 1px solid var(--line); }
.check { font-size: .85em; } .check.ok { color: #2e7d4f; } .check.bad { color: #c0392b; }
table { border-collapse: collapse; background: #fff; }
td, th { border: 1px solid var(--line); padding: 3px 8px; font-size: .85em; text-align: left; }
figure.trend { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  margin: .8em 0; padding: .5em; overflow-x: auto; }
figure.trend svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .85em; }
footer { margin-top: 2em; color: var(--muted); font-size: .85em; }
"""


def _filter_css(groups: Iterable[str]) -> str:
    """Pure-CSS filter: a radio per group hides the other groups' cards and plots."""
    rules = [
        "#show-all:checked ~ .filters label[for=show-all] { background: var(--fg); color: #fff; }"
    ]
    for group in groups:
        rules.append(
            f"#show-{group}:checked ~ .filters label[for=show-{group}] "
            "{ background: var(--fg); color: #fff; }"
        )
        rules.append(
            f"#show-{group}:checked ~ main [data-group]:not([data-group={group}]) "
            "{ display: none; }"
        )
    return "\n".join(rules)


def render_diary(runs: list[dict[str, Any]], rel_runs: str, runs_dir: Path) -> str:
    groups = [g for g in CORPUS_GROUPS if any(
        corpus_group(run_corpus(r)) == g for r in runs
    )]  # fmt: skip
    counts = {g: sum(corpus_group(run_corpus(r)) == g for r in runs) for g in groups}
    radios = '<input type="radio" name="group" id="show-all" checked>' + "".join(
        f'<input type="radio" name="group" id="show-{g}">' for g in groups
    )
    labels = f'<label for="show-all">all ({len(runs)})</label>' + "".join(
        f'<label for="show-{g}">{_e(CORPUS_GROUPS[g])} ({counts[g]})</label>' for g in groups
    )
    cards = "".join(_run_card(run, rel_runs, runs_dir) for run in runs)
    credits = "".join(f"<p>{_e(CREDITS[g])}</p>" for g in groups if g in CREDITS)
    generated = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wav2kp diary</title>
<style>{STYLE}
{_filter_css(groups)}</style></head><body>
{radios}
<h1>wav2kp diary</h1>
<p class="muted">One entry per <code>make report</code> run: corpus, model, status, headline
metrics of the primary model on held-out sentences, the rendered notebooks and videos.
Generated {generated} UTC.</p>
<div class="filters">{labels}</div>
<main>
{_trends(runs)}
{_side_by_side(runs)}
<section><h2>Runs (newest first)</h2>
{cards or '<p class="muted">no runs yet: <code>make report</code></p>'}
</section>
</main>
<footer>{credits}</footer>
</body></html>
"""
