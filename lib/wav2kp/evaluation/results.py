"""Everything computed from per-clip scores: summaries over training seeds with bootstrap
intervals over test sentences, paired model differences, target verdicts, the committed
results file, and the README results block.

The input is the clip table of ``wav2kp.evaluation.evaluate.evaluate_models``: one row per model x
training seed x space x clip, with the metrics of ``wav2kp.metrics.METRIC_DIRECTIONS``.
For each model and space:

- the *estimate* is the mean over test clips of the clip's score averaged over seeds;
- its interval resamples test sentences (``wav2kp.evaluation.bootstrap``), so it says how much the
  number would move with other sentences of the same kind;
- the seed spread (sd, min, max) is over the per-seed means: how much it moves with
  another training run.

A results file (``wav2kp-results-1``, JSON) holds the protocol (corpus, split, seeds,
refit rule, window...) and the clip table; everything else is regenerated from it,
deterministically: ``wav2kp results FILE --markdown`` prints the README block, and
``--update-readme`` rewrites it between the markers.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wav2kp.atomic import write_text
from wav2kp.evaluation import bootstrap
from wav2kp.evaluation.bootstrap import Target
from wav2kp.metrics import METRIC_DIRECTIONS, MOUTH_METRICS

RESULTS_FORMAT = "wav2kp-results-1"
RESULTS_FILE = "results.json"  # its name inside a run folder
METRICS = list(METRIC_DIRECTIONS) + ["av_offset_frames"]
SPACES = ("aligned", "frame")
SPACE_TITLES = {
    "aligned": "pose-normalised space: head pose removed from the truth and from every "
    "prediction alike (similarity on the stable points); distances in inter-ocular distances",
    "frame": "frame coordinates: every prediction's pose-free face placed with the test "
    "video's measured head pose; raw-position errors (not centred) in pixels of vid2vid's "
    "crop set on the first frame, resized to 256 px",
}
SPACE_HEADINGS = {"aligned": "Pose-normalised space", "frame": "Frame coordinates"}
REFERENCE = "default"
LABEL_FREE = "default_label_free"
AUDIO_LABEL = "default_audio_emotion"
ORIGINAL = "original"
MODEL_ORDER = (
    "neutral_face", "mean_face", "loudness", "ridge", ORIGINAL, LABEL_FREE, AUDIO_LABEL,
    REFERENCE,
)  # fmt: skip
MODEL_LABELS = {
    "neutral_face": "closed-mouth neutral face (static)",
    "mean_face": "mean face (static)",
    "loudness": "loudness envelope",
    "ridge": "ridge on the default's window",
    ORIGINAL: "`original` replica",
    LABEL_FREE: "**default**, no emotion label",
    AUDIO_LABEL: "**default**, emotion label predicted from the audio",
    REFERENCE: "**default**, true emotion label",
}

# ``versus`` of a target judged against the real mouth: the model's score over the real
# mouth's own score on the same clips and frames (the column REAL_COLUMNS names)
REAL_MOUTH = "real mouth"
REAL_COLUMNS = {"bilabial_closure_rate": "true_bilabial_closure_rate"}

# Every target a model is judged against, in one table (notebook 05 and the README block;
# ``wav2kp.studies.levers``' final check): per kind of held-out set, (name, metric, target,
# versus). With ``versus``, the target compares the model's score with another model's on
# the same clips (``versus`` a model name) or with the real mouth's (``versus`` REAL_MOUTH):
# the ratio of the two means over clips, its interval over the same resampled units; for a
# Target named "difference", the mean of the per-clip differences (model minus ``versus``,
# paired).
TARGETS: dict[str, tuple[tuple[str, str, Target, str | None], ...]] = {
    # the project's targets for the default model on a corpus's held-out test sentences
    "test_sentences": (
        ("mouth-opening r", "mouth_open_r", Target("r", low=0.85), None),
        ("variance ratio", "variance_ratio", Target("variance ratio", 0.8, 1.25), None),
        ("mouth LMD vs mean face", "mouth_lmd_iod", Target("ratio", high=0.5), "mean_face"),
        ("mouth LMD vs original replica", "mouth_lmd_iod", Target("ratio", high=0.75), ORIGINAL),
        ("A/V offset (frames)", "av_offset_frames", Target("offset", -1.0, 1.0), None),
    ),
    # issues 10 and 17: a model chosen for voices it never heard, on its own speaker's test
    # sentences. Motion is judged in the syllable band, two-sided (damped or exaggerated);
    # the jitter ratio is reported, not a target: the real track's jitter includes the
    # tracker's own noise, and added noise is not sharpness.
    "same_voice": (
        ("mouth-opening r", "mouth_open_r", Target("r", 0.93, None), None),
        ("variance ratio", "variance_ratio", Target("variance ratio", 0.9, 1.1), None),
        (
            "syllable-band amplitude ratio",
            "syllable_band_ratio",
            Target("syllable-band ratio", 0.8, 1.25),
            None,
        ),
        ("mouth LMD vs mean face", "mouth_lmd_iod", Target("ratio", None, 0.4), "mean_face"),
        (
            "silent frames with the mouth open",
            "silent_open_share",
            Target("share", None, 0.02),
            None,
        ),
        (
            "bilabial closures vs real mouth",
            "bilabial_closure_rate",
            Target("ratio", 0.9, None),
            REAL_MOUTH,
        ),
    ),
    # issues 10 and 17: the same model on real voices it never heard (units: videos)
    "unseen_voices": (
        ("mouth-opening r", "mouth_open_r", Target("r", 0.6, None), None),
        ("variance ratio", "variance_ratio", Target("variance ratio", 0.8, 1.25), None),
        ("lag (frames)", "av_offset_frames", Target("lag", -1.0, 1.0), None),
        # it must follow the speech better than the mouth opened by its loudness does
        (
            "r minus loudness envelope > 0 (interval above 0)",
            "mouth_open_r",
            Target("difference", 0.0, None),
            "loudness",
        ),
    ),
}


# ---------- statistics over the clip table ----------


def _ok(table: pd.DataFrame) -> pd.DataFrame:
    """The rows without an error; a metric a table predates is an all-NaN column."""
    missing = [m for m in METRICS if m not in table]
    if missing:
        table = table.assign(**dict.fromkeys(missing, np.nan))
    if "error" not in table:
        return table
    return table[table["error"].fillna("").astype(str) == ""]


def clip_scores(
    table: pd.DataFrame, unit: str = "sentence_id", metrics: Sequence[str] = METRICS
) -> pd.DataFrame:
    """Per (space, model, clip): the ``metrics`` averaged over training seeds, the clip's
    ``unit``, speaker and emotion, and its scored frame count."""
    ok = _ok(table)
    missing = [m for m in metrics if m not in ok]  # e.g. silent_open_share, scored elsewhere
    if missing:
        ok = ok.assign(**dict.fromkeys(missing, np.nan))
    keys = ["space", "model", "clip_id"]
    scores = ok.groupby(keys, sort=False)[list(metrics)].mean()
    extra = ok.groupby(keys, sort=False).agg(
        unit=(unit, "first"), speaker=("speaker", "first"), emotion=("emotion", "first"),
        n_frames=("n_frames_scored", "max"),
    )  # fmt: skip
    return scores.join(extra).reset_index()


def seed_means(table: pd.DataFrame) -> pd.DataFrame:
    """Per (space, model, seed): the mean over clips (what one training run scores)."""
    return _ok(table).groupby(["space", "model", "seed"], sort=False)[METRICS].mean()


def ordered_models(models: Sequence[str]) -> list[str]:
    known = [m for m in MODEL_ORDER if m in models]
    return known + sorted(m for m in set(models) if m not in MODEL_ORDER)


def summarise(
    table: pd.DataFrame,
    unit: str = "sentence_id",
    n_resamples: int = bootstrap.N_RESAMPLES,
    seed: int = bootstrap.SEED,
) -> pd.DataFrame:
    """Long table, one row per space x model x metric: ``estimate`` (mean over clips of
    the seed-averaged score), ``low``/``high`` (bootstrap interval over ``unit``),
    ``seed_sd``/``seed_min``/``seed_max`` over the per-seed means, ``n_seeds``,
    ``n_units``, ``n_clips``, ``n_frames`` (scored frames of one run)."""
    scores = clip_scores(table, unit)
    per_seed = seed_means(table).sort_index()
    rows = []
    for (space, model), group in scores.groupby(["space", "model"], sort=False):
        estimate, replicates = bootstrap.replicate_means(
            group[METRICS].to_numpy(), group["unit"].tolist(), n_resamples, seed
        )
        seeds = per_seed.loc[(space, model)]
        n_units = group["unit"].nunique()
        for k, metric in enumerate(METRICS):
            interval = bootstrap.percentile_interval(estimate[k], replicates[:, k], n_units)
            spread = seeds[metric].dropna()
            rows.append(
                {
                    "space": space, "model": model, "metric": metric,
                    "estimate": interval.estimate, "low": interval.low, "high": interval.high,
                    "seed_sd": float(spread.std(ddof=1)) if len(spread) > 1 else float("nan"),
                    "seed_min": float(spread.min()) if len(spread) else float("nan"),
                    "seed_max": float(spread.max()) if len(spread) else float("nan"),
                    "n_seeds": int(len(seeds)), "n_units": int(n_units),
                    "n_clips": int(len(group)), "n_frames": int(group["n_frames"].sum()),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def wide(summary: pd.DataFrame, value: str = "estimate") -> pd.DataFrame:
    """(space, model) x metric table of one column of :func:`summarise`."""
    out = summary.pivot_table(index=["space", "model"], columns="metric", values=value,
                              sort=False, dropna=False)  # fmt: skip
    return out[[m for m in METRICS if m in out.columns]]


def paired_differences(
    table: pd.DataFrame,
    reference: str = REFERENCE,
    metrics: Sequence[str] = MOUTH_METRICS,
    unit: str = "sentence_id",
    n_resamples: int = bootstrap.N_RESAMPLES,
    seed: int = bootstrap.SEED,
    reference_first: bool = True,
) -> pd.DataFrame:
    """``reference`` minus every other model (``reference_first=False``: every other model
    minus ``reference``, e.g. each model against a baseline), per space and metric, paired
    on the same clips (seed-averaged scores), with the bootstrap interval over ``unit``;
    NaN where a score is undefined (a frozen mouth has no r)."""
    scores = clip_scores(table, unit).set_index(["space", "model", "clip_id"])
    rows = []
    for space in scores.index.unique("space"):
        in_space = scores.loc[space]
        if reference not in in_space.index.unique("model"):
            continue
        ref = in_space.loc[reference]
        for model in ordered_models(in_space.index.unique("model")):
            if model == reference:
                continue
            other = in_space.loc[model].reindex(ref.index)
            for metric in metrics:
                first, second = ref[metric].to_numpy(), other[metric].to_numpy()
                if not reference_first:
                    first, second = second, first
                interval = bootstrap.difference_interval(
                    first, second, ref["unit"].tolist(), n_resamples, seed
                )
                rows.append({"space": space, "reference": reference, "model": model,
                             "metric": metric, "reference_first": reference_first,
                             **interval.as_dict()})  # fmt: skip
    return pd.DataFrame(rows)


def target_checks(
    table: pd.DataFrame,
    model: str = REFERENCE,
    space: str = "aligned",
    unit: str = "sentence_id",
    n_resamples: int = bootstrap.N_RESAMPLES,
    seed: int = bootstrap.SEED,
    targets: str = "test_sentences",
    units_name: str = "",
) -> pd.DataFrame:
    """``TARGETS[targets]`` for ``model`` in ``space``: one row per target with the
    estimate, its interval over ``unit``, the threshold and the verdict
    (``wav2kp.evaluation.bootstrap.verdict``: met only when the whole interval meets it; no
    verdict on too few units, which ``units_name`` names when they are not test
    sentences)."""
    chosen = TARGETS[targets]
    needed = {metric for _, metric, _, _ in chosen}
    needed |= {REAL_COLUMNS[metric] for _, metric, _, versus in chosen if versus == REAL_MOUTH}
    scores = clip_scores(table, unit, sorted(needed))
    scores = scores[scores["space"] == space].set_index(["model", "clip_id"])
    models = set(scores.index.unique("model")) if len(scores) else set()
    out = []
    for name, metric, target, versus in chosen:
        row = {"target": name, "model": model, "space": space, "threshold": target.describe()}
        compared = versus is not None and versus != REAL_MOUTH
        if model not in models or (compared and versus not in models):
            missing = model if model not in models else versus
            out.append({**row, "estimate": math.nan, "low": math.nan, "high": math.nan,
                        "n_units": 0, "n_frames": 0, "met": False,
                        "verdict": f"not measurable: {missing!r} was not evaluated"})  # fmt: skip
            continue
        mine = scores.loc[model]
        units = mine["unit"].tolist()
        if versus is None:
            interval = bootstrap.mean_interval(mine[metric].to_numpy(), units, n_resamples, seed)
        else:
            if versus == REAL_MOUTH:
                theirs = mine[REAL_COLUMNS[metric]].to_numpy()
            else:
                theirs = scores.loc[versus].reindex(mine.index)[metric].to_numpy()
            compare = (
                bootstrap.difference_interval
                if target.name == "difference"
                else bootstrap.ratio_interval
            )
            interval = compare(mine[metric].to_numpy(), theirs, units, n_resamples, seed)
        n_frames = int(mine["n_frames"].sum())
        verdict = bootstrap.verdict(target, interval, n_frames, units_name)
        out.append({**row, **interval.as_dict(), "n_frames": n_frames,
                    "met": verdict == "met", "verdict": verdict})  # fmt: skip
    columns = ["target", "model", "space", "estimate", "low", "high", "threshold",
               "n_units", "n_frames", "verdict", "met"]  # fmt: skip
    return pd.DataFrame(out, columns=columns)


# ---------- the results file ----------

CLIP_COLUMNS = ["model", "seed", "space", "clip_id", "speaker", "emotion", "sentence_id",
                "split", *METRICS, "n_frames_valid", "n_frames_scored", "frame_period_ms",
                "error"]  # fmt: skip


def plain(value: Any) -> Any:
    """A numpy scalar as a plain JSON value (NaN -> None)."""
    if isinstance(value, (np.integer,)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def make_results(table: pd.DataFrame, protocol: Mapping[str, Any]) -> dict[str, Any]:
    """The results file's content: ``format``, ``protocol`` and the clip table as
    ``{"columns": [...], "rows": [[...], ...]}`` (floats as JSON numbers, NaN as null)."""
    columns = [c for c in CLIP_COLUMNS if c in table.columns]
    rows = [[plain(v) for v in row] for row in table[columns].itertuples(index=False)]
    return {"format": RESULTS_FORMAT, "protocol": dict(protocol),
            "clip_scores": {"columns": columns, "rows": rows}}  # fmt: skip


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | tuple):
        return list(value)
    return str(value)


def results_text(data: Mapping[str, Any]) -> str:
    """The results file's JSON: the protocol indented, one clip-table row per line (small
    diffs when a committed results file is regenerated)."""
    head = {k: v for k, v in data.items() if k != "clip_scores"}
    scores = data["clip_scores"]
    rows = ",\n".join("    " + json.dumps(row, allow_nan=False) for row in scores["rows"])
    text = json.dumps(head, indent=1, sort_keys=True, allow_nan=False, default=_json_value)[:-2]
    return (f'{text},\n "clip_scores": {{\n  "columns": {json.dumps(scores["columns"])},\n'
            f'  "rows": [\n{rows}\n  ]\n }}\n}}\n')  # fmt: skip


def save_results(path: str | Path, table: pd.DataFrame, protocol: Mapping[str, Any]) -> Path:
    return write_text(path, results_text(make_results(table, protocol)))


def load_results(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(clip table, protocol)`` from a results file, or from a run folder holding one
    (``results.json`` anywhere under it)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob(RESULTS_FILE))
        if not found:
            raise FileNotFoundError(f"{path}: no {RESULTS_FILE} in this folder")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file or run folder")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON results file ({err})") from err
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path}: not a {RESULTS_FORMAT} file")
    scores = data["clip_scores"]
    table = pd.DataFrame(scores["rows"], columns=scores["columns"])
    for column in METRICS + ["n_frames_valid", "n_frames_scored", "frame_period_ms"]:
        if column in table:
            table[column] = pd.to_numeric(table[column]).astype(np.float64)
    table["error"] = table.get("error", pd.Series("", index=table.index)).fillna("")
    return table, data.get("protocol", {})


# ---------- markdown ----------

README_BEGIN = "<!-- results:begin"
README_END = "<!-- results:end -->"


def _number(value: float, digits: int) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


DIGITS = {"mouth_open_r": 2, "variance_ratio": 2, "mouth_jitter_ratio": 2, "mouth_lmd_iod": 4,
          "face_lmd_iod": 4, "av_offset_ms": 0, "mouth_crop_px": 2, "face_crop_px": 2,
          "lve_crop_px2": 1, "syllable_band_ratio": 2, "bilabial_closure_rate": 2,
          "true_bilabial_closure_rate": 2}  # fmt: skip
COLUMN_TITLES = {
    "mouth_open_r": "mouth-opening r",
    "variance_ratio": "variance ratio",
    "mouth_lmd_iod": "mouth LMD (IOD)",
    "face_lmd_iod": "face LMD (IOD)",
    "mouth_jitter_ratio": "mouth jitter ratio",
    "syllable_band_ratio": "syllable-band ratio",
    "bilabial_closure_rate": "bilabial closures",
    "true_bilabial_closure_rate": "real mouth's bilabial closures",
    "av_offset_ms": "A/V offset (ms)",
    "mouth_crop_px": "mouth error (crop px)",
    "face_crop_px": "face error (crop px)",
    "lve_crop_px2": "lip vertex error (crop px²)",
}
SPACE_COLUMNS = {
    "aligned": ("mouth_open_r", "variance_ratio", "mouth_lmd_iod", "face_lmd_iod",
                "mouth_jitter_ratio", "syllable_band_ratio", "bilabial_closure_rate",
                "true_bilabial_closure_rate", "av_offset_ms"),
    "frame": ("mouth_crop_px", "face_crop_px", "lve_crop_px2"),
}  # fmt: skip


def interval_text(low: float, high: float, n_units: int, digits: int, sign: str = "") -> str:
    """`` [low, high]``, or nothing below ``bootstrap.MIN_INTERVAL_UNITS`` units or when
    undefined; ``sign="+"`` prints signs (differences)."""
    if not bootstrap.interval_shown(int(n_units)) or not np.isfinite(low):
        return ""
    return f" [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def _cell(row: pd.Series, digits: int) -> str:
    """``estimate ± seed sd [low, high]``; a frozen mouth's undefined score is a dash."""
    if not np.isfinite(row["estimate"]):
        return "—"
    text = _number(row["estimate"], digits)
    if row["n_seeds"] > 1 and np.isfinite(row["seed_sd"]):
        text += f" ± {_number(row['seed_sd'], digits)}"
    return text + interval_text(row["low"], row["high"], row["n_units"], digits)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]  # fmt: skip


def _profile(protocol: Mapping[str, Any]) -> str:
    profile = protocol.get("profile")
    return f" (profile `{profile}`)" if profile else ""


def _trained(protocol: Mapping[str, Any]) -> str:
    """``default`` 40 epochs on seeds 0, 1, 2; ... (from the checkpoints), else the seeds."""
    trained = protocol.get("trained") or {}
    parts = []
    for name, info in sorted(trained.items()):
        seeds = info.get("seeds", [])
        by_seed = info.get("epochs_by_seed") or {}
        epochs = [by_seed.get(str(seed)) for seed in seeds]
        if len(set(epochs)) > 1 and None not in epochs:  # e.g. each seed to its plateau
            count = ", ".join(map(str, epochs)) + " epochs"
        else:
            count = f"{info.get('epochs', '?')} epochs"
        if info.get("plateau"):
            count += " (to its validation plateau, refitted as long)"
        parts.append(f"`{name}` {count} on "
                     f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}")  # fmt: skip
    if parts:
        return "; ".join(parts)
    seeds = protocol.get("seeds") or []
    return f"training seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}"


def _describe_protocol(protocol: Mapping[str, Any], summary: pd.DataFrame) -> list[str]:
    first = summary.iloc[0] if len(summary) else None
    n_units = int(first["n_units"]) if first is not None else 0
    n_clips = int(first["n_clips"]) if first is not None else 0
    n_frames = int(first["n_frames"]) if first is not None else 0
    window = protocol.get("window") or {}
    refit = protocol.get("refit")
    lines = [
        f"Corpus `{protocol.get('corpus', '?')}`, {protocol.get('split', 'test')} split "
        f"(split seed {protocol.get('split_seed', '?')}): {n_units} sentences never seen in "
        f"training, {n_clips} clips, {n_frames:,} frames; every model scored on the same frames.",
        f"Trained models{_profile(protocol)}: {_trained(protocol)}. Cells read mean ± sd over "
        "training seeds"
        + (f" [95 % bootstrap interval over test sentences, "
           f"{protocol.get('n_resamples', bootstrap.N_RESAMPLES)} resamples]."
           if bootstrap.interval_shown(n_units) else "."),
        "Every model, baselines included, is fitted on "
        + ("train + val sentences (the refit rule), choices such as ridge's alpha made on val "
           "first." if refit else "the train sentences only (no refit on val).")
        + (f" Ridge sees the default's audio window ({window.get('past_ms', '?'):g} ms past, "
           f"{window.get('future_ms', '?'):g} ms future)." if window else ""),
    ]  # fmt: skip
    if not bootstrap.interval_shown(n_units):
        lines.append(
            f"With fewer than {bootstrap.MIN_INTERVAL_UNITS} test sentences no interval is "
            "shown (it would be the spread of a handful of numbers), and no target is judged."
        )
    elif n_units < bootstrap.MIN_UNITS or n_frames < bootstrap.MIN_FRAMES:
        lines.append(
            f"With fewer than {bootstrap.MIN_UNITS} test sentences or "
            f"{bootstrap.MIN_FRAMES:,} frames the intervals describe these sentences, not "
            "speech in general, and no target is judged."
        )
    return lines


def markdown(
    table: pd.DataFrame,
    protocol: Mapping[str, Any],
    source: str = "",
    n_resamples: int = bootstrap.N_RESAMPLES,
) -> str:
    """The README results block for a clip table and its protocol (see module doc)."""
    unit = protocol.get("unit", "sentence_id")
    summary = summarise(table, unit, n_resamples)
    lines = [f"{README_BEGIN} generated by `wav2kp results {source} --markdown`; do not edit -->"
             if source else f"{README_BEGIN} -->", ""]  # fmt: skip
    lines += _describe_protocol({**protocol, "n_resamples": n_resamples}, summary)
    for space in SPACES:
        part = summary[summary["space"] == space].set_index(["model", "metric"])
        if part.empty:
            continue
        columns = [c for c in SPACE_COLUMNS[space] if _scored(part, c)]
        missing = [COLUMN_TITLES[c] for c in SPACE_COLUMNS[space] if c not in columns]
        if not columns:
            lines += ["", f"**{SPACE_HEADINGS[space]}** — not in this results file: it was "
                      f"scored before this space's measures ({', '.join(missing)}) were "
                      "defined; a new `wav2kp evaluate` writes them."]  # fmt: skip
            continue
        models = ordered_models(part.index.unique("model"))
        rows = [[MODEL_LABELS.get(m, f"`{m}`")]
                + [_cell(part.loc[(m, c)], DIGITS[c]) for c in columns] for m in models]  # fmt: skip
        lines += ["", f"**{SPACE_HEADINGS[space]}** — {SPACE_TITLES[space].split(': ', 1)[1]}.",
                  ""]  # fmt: skip
        lines += _table(["model", *(COLUMN_TITLES[c] for c in columns)], rows)
        if missing:
            lines += ["", f"Not in this results file (scored before they were defined): "
                      f"{', '.join(missing)}."]  # fmt: skip
    diffs = paired_differences(table, unit=unit, n_resamples=n_resamples)
    diffs = diffs[diffs["space"] == "aligned"] if len(diffs) else diffs
    if len(diffs):
        scored = diffs.groupby("metric", sort=False)["estimate"].apply(lambda e: e.notna().any())
        metrics = [m for m in dict.fromkeys(diffs["metric"]) if scored[m]]
        shown = bootstrap.interval_shown(int(diffs["n_units"].max()))
        lines += ["", "**Paired differences** (pose-normalised space): the default with its "
                  "true label minus each model, on the same test clips"
                  + (" [95 % interval over test sentences]." if shown else "."), ""]  # fmt: skip
        rows = []
        for model in ordered_models(diffs["model"].unique()):
            part = diffs[diffs["model"] == model].set_index("metric")
            rows.append([MODEL_LABELS.get(model, f"`{model}`")] + [
                "—" if not np.isfinite(part.loc[m, "estimate"]) else
                f"{part.loc[m, 'estimate']:+.{DIGITS[m]}f}" + interval_text(
                    part.loc[m, "low"], part.loc[m, "high"], part.loc[m, "n_units"], DIGITS[m], "+")
                for m in metrics])  # fmt: skip
        lines += _table(["model", *(f"Δ {COLUMN_TITLES[m]}" for m in metrics)], rows)
    checked = [m for m in (LABEL_FREE, AUDIO_LABEL, REFERENCE) if m in set(table["model"])]
    if checked:
        checks = {m: target_checks(table, m, "aligned", unit, n_resamples).set_index("target")
                  for m in checked}  # fmt: skip
        lines += ["", "**Targets** (pose-normalised space; met only when the whole interval "
                  "meets the threshold):", ""]  # fmt: skip
        rows = [[target, checks[checked[0]].loc[target, "threshold"]]
                + [f"{_interval_text(checks[m].loc[target])}: {checks[m].loc[target, 'verdict']}"
                   for m in checked]
                for target in checks[checked[0]].index]  # fmt: skip
        lines += _table(["target", "threshold", *(MODEL_LABELS[m] for m in checked)], rows)
    lines += ["", README_END]
    return "\n".join(lines) + "\n"


def _interval_text(check: pd.Series) -> str:
    if not np.isfinite(check["estimate"]):
        return "—"
    return f"{check['estimate']:.3f}" + interval_text(
        check["low"], check["high"], check["n_units"], 3
    )


def _scored(part: pd.DataFrame, metric: str) -> bool:
    """Whether any model of a space's summary has an estimate of ``metric``."""
    values = part.xs(metric, level="metric")["estimate"] if metric in part.index.unique(
        "metric") else pd.Series(dtype=float)  # fmt: skip
    return bool(np.isfinite(values.to_numpy(dtype=float)).any())


def readme_block(text: str) -> str:
    """The results block (markers included) inside a README's text."""
    start = text.find(README_BEGIN)
    end = text.find(README_END, start)
    if start < 0 or end < 0:
        raise ValueError("no results block (<!-- results:begin ... results:end -->) found")
    return text[start : end + len(README_END)] + "\n"


def replace_readme_block(text: str, block: str) -> str:
    old = readme_block(text)
    return text.replace(old, block, 1)


# ---------- command line ----------


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a results file (results.json) or a run folder holding one")
    parser.add_argument("--markdown", action="store_true", help="print the README results block")
    parser.add_argument("--save", help="also copy the results file here (e.g. results/demo.json)")
    parser.add_argument("--update-readme", metavar="README",
                        help="rewrite the results block of this README (implies --markdown)")  # fmt: skip


def run_cli(args: argparse.Namespace) -> int:
    table, protocol = load_results(args.source)
    source = args.source
    if args.save:
        path = save_results(args.save, table, protocol)
        print(f"saved {path}")
        source = args.save
    if args.markdown or args.update_readme:
        block = markdown(table, protocol, source=source)
        if args.update_readme:
            readme = Path(args.update_readme)
            write_text(readme, replace_readme_block(readme.read_text(), block))
            print(f"updated the results block of {readme}")
        else:
            print(block, end="")
        return 0
    summary = summarise(table, protocol.get("unit", "sentence_id"))
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        for space in SPACES:
            print(f"\n{space}:\n" + wide(summary).loc[space].round(4).to_string())
        print()
        print(target_checks(table, protocol.get("reference", REFERENCE)).to_string(index=False))
    return 0
