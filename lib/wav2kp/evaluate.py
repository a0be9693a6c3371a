"""Score models and baselines on held-out clips, summarise, and check the project targets.

Every predictor is scored on exactly the same frames of a clip: the ground-truth-valid
frames where *all* predictors give finite keypoints (a predictor that leaves a frame
NaN removes it for everyone and the row's ``n_frames_scored`` shows it).
Summaries are plain means over clips (each clip counts once, whatever its length).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from wav2kp import metrics
from wav2kp.atomic import write_csv, write_json
from wav2kp.dataset import ClipData, KeypointPredictor

log = logging.getLogger(__name__)

CLIP_COLUMNS = ["model", "clip_id", "speaker", "emotion", "sentence_id", "split"]
METRICS = list(metrics.METRIC_DIRECTIONS)
COUNT_COLUMNS = ["n_frames", "n_frames_valid", "n_frames_scored", "frame_period_ms"]

# The project's targets for the default model (see docs and the issue).
TARGET_R = 0.85
TARGET_VARIANCE = (0.8, 1.25)
TARGET_LMD_VS_MEAN_FACE = 0.5
TARGET_LMD_VS_ORIGINAL = 0.75
TARGET_OFFSET_FRAMES = 1.0


def predict_all(
    predictors: Sequence[KeypointPredictor], clip: ClipData
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each predictor's landmarks for one clip; failures are reported, not raised."""
    predictions, errors = {}, {}
    for predictor in predictors:
        try:
            pred = np.asarray(predictor.predict_landmarks(clip), dtype=np.float64)
            if pred.shape != clip.landmarks.shape:
                raise ValueError(f"predicted shape {pred.shape}, expected {clip.landmarks.shape}")
            predictions[predictor.name] = pred
        except Exception as err:  # one broken model or clip must not stop the batch
            errors[predictor.name] = f"{clip.clip_id}: {type(err).__name__}: {err}"
            log.warning("model %s failed on clip %s: %s", predictor.name, clip.clip_id, err)
    return predictions, errors


def common_frames(clip: ClipData, predictions: Mapping[str, np.ndarray]) -> np.ndarray:
    """(T,) frames every predictor is scored on: valid ground truth, all predictions finite."""
    mask = metrics.valid_frames(clip.landmarks, clip.valid)
    for pred in predictions.values():
        mask &= np.isfinite(pred).all(axis=(1, 2))
    return mask


def evaluate_models(
    predictors: Sequence[KeypointPredictor],
    clips: Sequence[ClipData],
    max_lag_frames: int = metrics.DEFAULT_MAX_LAG_FRAMES,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per model x clip: clip metadata, every metric, frame counts, and ``error``
    (empty when the model ran). Models are scored on the same frames of each clip."""
    names = [p.name for p in predictors]
    if len(set(names)) != len(names):
        raise ValueError(f"predictor names must be unique, got {names}")
    rows = []
    for clip in tqdm(clips, desc="evaluating clips", disable=not progress):
        predictions, errors = predict_all(predictors, clip)
        mask = common_frames(clip, predictions)
        meta = {
            "clip_id": clip.clip_id,
            "speaker": clip.speaker,
            "emotion": clip.emotion,
            "sentence_id": clip.sentence_id,
            "split": clip.split,
        }
        for name in names:
            row: dict[str, Any] = {"model": name, **meta, "error": errors.get(name, "")}
            if name in predictions:
                try:
                    row.update(
                        metrics.evaluate_sequence(
                            predictions[name],
                            clip.landmarks,
                            clip.frame_times,
                            mask,
                            max_lag_frames,
                        )
                    )
                except ValueError as err:
                    row["error"] = f"{clip.clip_id}: {err}"
            rows.append(row)
    frame = pd.DataFrame(rows)
    for column in METRICS + COUNT_COLUMNS + ["av_offset_frames"]:
        if column not in frame:
            frame[column] = np.nan
    ordered = CLIP_COLUMNS + METRICS + ["av_offset_frames"] + COUNT_COLUMNS + ["error"]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def lag_curves(
    predictors: Sequence[KeypointPredictor],
    clips: Sequence[ClipData],
    max_lag_frames: int = metrics.DEFAULT_MAX_LAG_FRAMES,
) -> pd.DataFrame:
    """Long table ``model, clip_id, lag_frames, lag_ms, r``: correlation of predicted with
    true mouth opening at each lag (positive = prediction late), per clip, on the same
    frames as :func:`evaluate_models`. Averaged over clips its peak is a pooled A/V offset."""
    rows = []
    for clip in clips:
        predictions, _ = predict_all(predictors, clip)
        mask = common_frames(clip, predictions)
        period_ms = metrics.frame_period(clip.frame_times) * 1e3
        for name, pred in predictions.items():
            lags, r = metrics.opening_lag_curve(pred, clip.landmarks, mask, max_lag_frames)
            rows += [
                {"model": name, "clip_id": clip.clip_id, "lag_frames": int(lag),
                 "lag_ms": lag * period_ms, "r": value}
                for lag, value in zip(lags, r, strict=True)
            ]  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "clip_id", "lag_frames", "lag_ms", "r"])


def pooled_offsets(curves: pd.DataFrame) -> pd.DataFrame:
    """Per model: the lag (frames, ms) where the clip-averaged correlation peaks, and the
    peak r."""
    mean = curves.groupby(["model", "lag_frames"], sort=False)[["r", "lag_ms"]].mean()
    mean = mean.dropna(subset=["r"]).reset_index()
    if mean.empty:
        return pd.DataFrame(columns=["lag_frames", "lag_ms", "r"]).rename_axis("model")
    best = mean.loc[mean.groupby("model", sort=False)["r"].idxmax()]
    return best.set_index("model")[["lag_frames", "lag_ms", "r"]]


def summarise(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Means over clips: ``model`` (one row per model, plus clip count, median A/V offset
    and median frame period), ``emotion`` (model x emotion) and ``speaker``."""
    ok = df[df["error"].fillna("") == ""] if "error" in df else df
    by_model = ok.groupby("model", sort=False)[METRICS].mean()
    by_model["av_offset_ms_median"] = ok.groupby("model", sort=False)["av_offset_ms"].median()
    by_model["frame_period_ms"] = ok.groupby("model", sort=False)["frame_period_ms"].median()
    by_model["n_clips"] = ok.groupby("model", sort=False)["clip_id"].nunique()
    by_model["n_frames_scored"] = ok.groupby("model", sort=False)["n_frames_scored"].sum()
    return {
        "model": by_model,
        "emotion": ok.groupby(["model", "emotion"], sort=False)[METRICS].mean(),
        "speaker": ok.groupby(["model", "speaker"], sort=False)[METRICS].mean(),
    }


def _value(summary: pd.DataFrame, model: str, column: str) -> float:
    if model in summary.index and column in summary.columns:
        return float(summary.loc[model, column])
    return float("nan")


def target_checks(
    summary: pd.DataFrame | Mapping[str, pd.DataFrame],
    model: str = "default",
    mean_face: str = "mean_face",
    original: str = "original",
) -> pd.DataFrame:
    """The project's targets for ``model``: rows ``target, model, value, threshold, pass,
    note``. A target whose inputs are missing (model not evaluated) does not pass."""
    table = summary["model"] if isinstance(summary, Mapping) else summary
    lmd = _value(table, model, "mouth_lmd_iod")
    mean_face_lmd = _value(table, mean_face, "mouth_lmd_iod")
    original_lmd = _value(table, original, "mouth_lmd_iod")
    period = _value(table, model, "frame_period_ms")
    offset = _value(table, model, "av_offset_ms_median")
    low, high = TARGET_VARIANCE
    rows = [
        (
            "mouth-opening r",
            _value(table, model, "mouth_open_r"),
            f">= {TARGET_R}",
            lambda v: v >= TARGET_R,
            "",
        ),
        (
            "variance ratio",
            _value(table, model, "variance_ratio"),
            f"{low}-{high}",
            lambda v: low <= v <= high,
            "",
        ),
        (
            "mouth LMD vs mean face",
            lmd / mean_face_lmd,
            f"<= {TARGET_LMD_VS_MEAN_FACE}",
            lambda v: v <= TARGET_LMD_VS_MEAN_FACE,
            f"ratio of mouth_lmd_iod to {mean_face!r}",
        ),
        (
            "mouth LMD vs original replica",
            lmd / original_lmd,
            f"<= {TARGET_LMD_VS_ORIGINAL}",
            lambda v: v <= TARGET_LMD_VS_ORIGINAL,
            f"ratio of mouth_lmd_iod to {original!r}",
        ),
        (
            "|A/V offset| (frames)",
            abs(offset) / period,
            f"<= {TARGET_OFFSET_FRAMES}",
            lambda v: v <= TARGET_OFFSET_FRAMES,
            "median over clips of the per-clip offset",
        ),
    ]
    out = []
    for target, value, threshold, passes, note in rows:
        missing = not np.isfinite(value)
        out.append(
            {
                "target": target,
                "model": model,
                "value": value,
                "threshold": threshold,
                "pass": bool(not missing and passes(value)),
                "note": "not measurable: a model is missing or the value is undefined"
                if missing
                else note,
            }
        )
    return pd.DataFrame(out)


def _records(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{model: {metric: value}} (nested one level more for multi-index tables)."""
    out: dict[str, Any] = {}
    for index, row in table.iterrows():
        keys = index if isinstance(index, tuple) else (index,)
        node = out
        for key in keys[:-1]:
            node = node.setdefault(str(key), {})
        node[str(keys[-1])] = {k: _clean(v) for k, v in row.items()}
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


def results_json(
    df: pd.DataFrame, summary: Mapping[str, pd.DataFrame], checks: pd.DataFrame | None = None
) -> dict[str, Any]:
    """{model: {metric: value}} at top level (what the report diary reads), plus
    ``details``: per emotion, per speaker, target checks, clip and frame counts."""
    result: dict[str, Any] = _records(summary["model"])
    details: dict[str, Any] = {
        "per_emotion": _records(summary["emotion"]),
        "per_speaker": _records(summary["speaker"]),
        "n_clips": int(df["clip_id"].nunique()),
        "splits": sorted(df["split"].dropna().unique().tolist()),
        "errors": [e for e in df.get("error", pd.Series(dtype=str)).fillna("") if e],
    }
    if checks is not None:
        details["target_checks"] = [
            {k: _clean(v) for k, v in row.items()} for row in checks.to_dict("records")
        ]
    result["details"] = details
    return result


def write_results(
    df: pd.DataFrame,
    output_dir: str | Path,
    summary: Mapping[str, pd.DataFrame] | None = None,
    checks: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """``metrics.csv`` (one row per model x clip), ``metrics.json`` (see results_json),
    and ``metrics_by_model.csv`` / ``target_checks.csv``, all written atomically."""
    output_dir = Path(output_dir)
    summary = summary if summary is not None else summarise(df)
    paths = {
        "csv": write_csv(output_dir / "metrics.csv", df),
        "json": write_json(output_dir / "metrics.json", results_json(df, summary, checks)),
        "by_model": write_csv(output_dir / "metrics_by_model.csv", summary["model"].reset_index()),
    }
    if checks is not None:
        paths["checks"] = write_csv(output_dir / "target_checks.csv", checks)
    return paths


# ---------- the whole evaluation of a corpus (notebook 05 and the CLI) ----------

DEFAULT_MODELS = ("original", "default")


def checkpoint_path(corpus: str, model: str) -> Path:
    """A model name (``data/models/<corpus>/<name>/best.pt``) or a checkpoint path."""
    path = Path(model)
    if path.suffix == ".pt" or path.is_dir():
        return path / "best.pt" if path.is_dir() else path
    from wav2kp.paths import CorpusPaths

    return CorpusPaths(corpus).models / model / "best.pt"


def load_trained(
    corpus: str, models: Sequence[str], device: str = "auto"
) -> tuple[list[KeypointPredictor], list[str]]:
    """Trained predictors for ``models`` (names or checkpoint paths), and one message per
    model that could not be loaded (missing or unreadable checkpoint) - the rest go on."""
    from wav2kp.train import load_predictor

    predictors, problems = [], []
    for model in models:
        path = checkpoint_path(corpus, model)
        name = path.parent.name if path.name in ("best.pt", "last.pt") else path.stem
        if not path.is_file():
            problems.append(f"model {name!r}: no checkpoint at {path} (train it in notebook 04)")
            continue
        try:
            predictors.append(load_predictor(path, name=name, device=device))
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            problems.append(f"model {name!r}: cannot load {path}: {err}")
    return predictors, problems


def source_video(corpus: str, clip: ClipData) -> Path | None:
    """The clip's original video (extraction manifest ``file``, else ``raw/<clip_id>.*``)."""
    from wav2kp.paths import CorpusPaths

    paths = CorpusPaths(corpus)
    candidates = []
    manifest = paths.extracted / "manifest.csv"
    if manifest.is_file():
        table = pd.read_csv(manifest, dtype=str)
        rows = table[table["clip_id"] == clip.clip_id] if "clip_id" in table else table[:0]
        if len(rows) and "file" in rows and isinstance(rows["file"].iloc[0], str):
            file = Path(rows["file"].iloc[0])
            candidates += [file] if file.is_absolute() else [paths.raw / file, file]
    candidates += sorted(paths.raw.glob(f"{clip.clip_id}.*"))
    videos = [
        c
        for c in candidates
        if c.is_file() and c.suffix.lower() in {".mp4", ".mov", ".mkv", ".avi", ".webm"}
    ]
    return videos[0] if videos else None


def choose_video_clips(clips: Sequence[ClipData], count: int, seed: int = 0) -> list[ClipData]:
    """``count`` clips for videos and plots, spread over speakers and emotions (each pick
    prefers a speaker and an emotion not shown yet), reproducible for a seed."""
    if count <= 0 or not clips:
        return []
    rng = np.random.default_rng(seed)
    remaining = [clips[i] for i in rng.permutation(len(clips))]
    chosen: list[ClipData] = []
    while remaining and len(chosen) < count:
        speakers = {c.speaker for c in chosen}
        emotions = {c.emotion for c in chosen}
        novelty = [(c.speaker not in speakers) + (c.emotion not in emotions) for c in remaining]
        chosen.append(remaining.pop(int(np.argmax(novelty))))  # first of the most novel
    return chosen


@dataclass
class EvaluationRun:
    """Everything one evaluation produced (see :func:`run_evaluation`)."""

    clips: list[ClipData]
    predictors: list[KeypointPredictor]
    table: pd.DataFrame
    summary: dict[str, pd.DataFrame]
    checks: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def predictor(self, name: str) -> KeypointPredictor | None:
        return next((p for p in self.predictors if p.name == name), None)


def run_evaluation(
    corpus: str,
    models: Sequence[str] = DEFAULT_MODELS,
    output_dir: str | Path | None = None,
    split: str = "test",
    max_lag_frames: int = metrics.DEFAULT_MAX_LAG_FRAMES,
    device: str = "auto",
    progress: bool = True,
) -> EvaluationRun:
    """Load the corpus, fit the baselines on train (ridge alpha on val), load the trained
    models, score all of them on the same frames of the ``split`` clips, summarise, check
    the targets and (with ``output_dir``) write metrics.csv / metrics.json."""
    from wav2kp.baselines import fit_baselines
    from wav2kp.dataset import load_clips, load_normalizer

    clips = load_clips(corpus, splits=None, progress=progress)
    held_out = [c for c in clips if c.split == split]
    if not held_out:
        raise ValueError(f"corpus {corpus!r}: no clip in the {split!r} split to evaluate on")
    problems: list[str] = []
    try:
        baselines = fit_baselines(load_normalizer(corpus), clips)
    except (ValueError, FileNotFoundError) as err:
        baselines = []
        problems.append(f"baselines not fitted: {err}")
    trained, load_problems = load_trained(corpus, models, device)
    problems += load_problems
    for problem in problems:
        log.warning(problem)
    predictors = [*baselines, *trained]
    if not predictors:
        raise ValueError(f"corpus {corpus!r}: nothing to evaluate: {'; '.join(problems)}")
    table = evaluate_models(predictors, held_out, max_lag_frames, progress)
    summary = summarise(table)
    checks = target_checks(summary)
    run = EvaluationRun(held_out, predictors, table, summary, checks, problems)
    if output_dir is not None:
        run.files = write_results(table, output_dir, summary, checks)
    return run


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="demo", help="corpus name (data/processed/<corpus>)")
    parser.add_argument(
        "--checkpoints", nargs="*", default=list(DEFAULT_MODELS),
        help="model names under data/models/<corpus>/ or checkpoint paths (default: original default)",
    )  # fmt: skip
    parser.add_argument("--out", default="reports/scratch/evaluation", help="output folder")
    parser.add_argument("--split", default="test", help="split to evaluate on (default test)")
    parser.add_argument("--max-lag", type=int, default=metrics.DEFAULT_MAX_LAG_FRAMES,
                        help="A/V offset search range in frames")  # fmt: skip
    parser.add_argument("--videos", type=int, default=0, help="side-by-side videos to write")
    parser.add_argument("--seed", type=int, default=0, help="which clips get videos")
    parser.add_argument("--device", default="auto")


def run_cli(args: argparse.Namespace) -> int:
    from wav2kp.paths import resolve_output_dir

    out = resolve_output_dir(args.out)
    run = run_evaluation(args.corpus, args.checkpoints, out, args.split, args.max_lag, args.device)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(run.summary["model"].round(4).to_string())
        print()
        print(run.checks.to_string(index=False))
    for problem in run.problems:
        print(f"warning: {problem}")
    if args.videos:
        write_videos(run, args.corpus, out / "videos", args.videos, args.seed)
    print(f"results: {', '.join(str(p) for p in run.files.values())}")
    return 0


def write_videos(
    run: EvaluationRun,
    corpus: str,
    folder: str | Path,
    count: int,
    seed: int = 0,
    models: Sequence[str] = ("original", "default"),
) -> list[Path]:
    """Side-by-side mp4s (video | true | each of ``models`` present) for ``count`` clips;
    a clip that fails is reported and skipped. Existing videos are kept (re-run skips)."""
    from wav2kp.render import write_side_by_side

    chosen_models = [p for p in run.predictors if p.name in models] or run.predictors[-1:]
    written = []
    for clip in tqdm(choose_video_clips(run.clips, count, seed), desc="videos", unit="clip"):
        path = Path(folder) / f"{clip.clip_id}.mp4"
        if path.is_file():
            written.append(path)
            continue
        try:
            predictions = {p.name: p.predict_landmarks(clip) for p in chosen_models}
            write_side_by_side(path, clip, predictions, video_path=source_video(corpus, clip))
            written.append(path)
        except Exception as err:  # a video is a nicety: report and carry on
            run.problems.append(f"video for {clip.clip_id} failed: {type(err).__name__}: {err}")
            log.warning(run.problems[-1])
    return written
