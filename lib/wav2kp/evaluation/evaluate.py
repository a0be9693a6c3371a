"""Score models and baselines on held-out clips, in the same spaces, on the same frames.

Every predictor gives pixels (``predict_landmarks``); each prediction and the truth are
then scored in two spaces (``SPACES``):

- ``aligned``: pose-normalised. A similarity fitted on the stable points (eye corners,
  nose bridge) maps each frame of the truth and of every prediction onto the normaliser's
  template, removing head pose from all of them alike - a model that predicts frame
  coordinates (the ``original`` replica) is mapped exactly like one that predicts
  pose-free motion.
- ``frame``: frame coordinates. Every prediction's pose-free face is placed with the
  test video's measured head pose (the truth's similarity), the same way for every model.

Each space has its own measures. The pose-normalised space gets LMD, LVD, LVE, the
mouth-opening scores (r, variance ratio, A/V offset), the mouth's jitter ratio, its
syllable-band amplitude ratio, and, where the clip has a transcript, the bilabial-closure
rate of the model and of the real mouth (phone times from forced alignment,
``wav2kp.evaluation.phones``).
Frame coordinates get raw-position errors in pixels of vid2vid's crop set on the first
frame (``wav2kp.metrics.FRAME_METRICS``): LMD's per-frame centring and IOD scaling would
cancel the head pose and give the pose-normalised numbers again, and jitter there would
measure the real head motion every model is given, not the model.

Every predictor (every model and training seed) is scored on exactly the same frames of a
clip: the ground-truth-valid frames where *all* predictors give finite keypoints (a
predictor that leaves a frame NaN removes it for everyone; ``n_frames_scored`` shows it).
:func:`score_landmarks` / :func:`score_extraction` score predictions against any clip's
own landmarks, outside a corpus split too (e.g. a voice the model never heard, against
that video's measured mouth); ``wav2kp.evaluation.results`` summarises the clip tables.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from wav2kp import metrics
from wav2kp.atomic import write_csv, write_json
from wav2kp.evaluation import results
from wav2kp.evaluation.baselines import BASELINES
from wav2kp.evaluation.phones import clip_phones
from wav2kp.extraction.reader import Extraction, read_extraction
from wav2kp.windowing.dataset import ClipData, KeypointPredictor
from wav2kp.windowing.targets import (
    STABLE_POINTS,
    apply_pose,
    fit_similarity,
    normalise_shape,
    remove_pose,
)

log = logging.getLogger(__name__)

SPACES = results.SPACES
CLIP_COLUMNS = ["model", "seed", "space", "clip_id", "speaker", "emotion", "sentence_id", "split"]
METRICS = list(metrics.METRIC_DIRECTIONS)
COUNT_COLUMNS = ["n_frames", "n_frames_valid", "n_frames_scored", "frame_period_ms", "n_bilabials"]


# ---------- the two spaces ----------


def own_template(landmarks: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(68, 2) a clip's own canonical face (median valid frame, eyes level, IOD 1): the
    template for the pose-normalised space when no fitted normaliser is at hand."""
    ok = metrics.valid_frames(landmarks, valid)
    if not ok.any():
        raise ValueError("no valid ground-truth frame to build a template from")
    return normalise_shape(np.median(np.asarray(landmarks, np.float64)[ok], axis=0))


def to_spaces(
    predictions: Mapping[Any, np.ndarray],
    truth: np.ndarray,
    template: np.ndarray,
    spaces: Sequence[str] = SPACES,
) -> dict[str, tuple[dict[Any, np.ndarray], np.ndarray]]:
    """{space: (predictions, truth)} as (T, 68, 2) arrays (see module doc)."""
    unknown = set(spaces) - set(SPACES)
    if unknown:
        raise ValueError(f"unknown spaces {sorted(unknown)}; known: {', '.join(SPACES)}")
    truth = np.asarray(truth, np.float64)
    truth_pose = fit_similarity(template, truth, STABLE_POINTS)
    aligned = {
        key: remove_pose(pred, fit_similarity(template, pred, STABLE_POINTS))
        for key, pred in predictions.items()
    }
    out = {}
    if "aligned" in spaces:
        out["aligned"] = (aligned, remove_pose(truth, truth_pose))
    if "frame" in spaces:
        out["frame"] = ({k: apply_pose(a, truth_pose) for k, a in aligned.items()}, truth)
    return out


# ---------- scoring ----------


def predict_all(
    predictors: Sequence[KeypointPredictor], clip: ClipData
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each predictor's landmarks for one clip, keyed by its name (or ``(name, seed)``
    when given as such); failures are reported, not raised."""
    predictions, errors = {}, {}
    for predictor in predictors:
        key = predictor_key(predictor)
        try:
            pred = np.asarray(predictor.predict_landmarks(clip), dtype=np.float64)
            if pred.shape != clip.landmarks.shape:
                raise ValueError(f"predicted shape {pred.shape}, expected {clip.landmarks.shape}")
            predictions[key] = pred
        except Exception as err:  # one broken model or clip must not stop the batch
            errors[key] = f"{clip.clip_id}: {type(err).__name__}: {err}"
            log.warning("model %s failed on clip %s: %s", predictor.name, clip.clip_id, err)
    return predictions, errors


def training_seed(predictor) -> int:
    """The training seed of a trained model (``seed``, or its ``train_config.seed``);
    0 for deterministic baselines."""
    seed = getattr(predictor, "seed", None)
    if seed is None:
        seed = getattr(getattr(predictor, "train_config", None), "seed", None)
    return 0 if seed is None else int(seed)


def predictor_key(predictor) -> tuple[str, int]:
    return (str(predictor.name), training_seed(predictor))


def common_frames(
    truth: np.ndarray, valid: np.ndarray | None, predictions: Mapping[Any, np.ndarray]
) -> np.ndarray:
    """(T,) frames every predictor is scored on: valid ground truth, all predictions finite."""
    mask = metrics.valid_frames(truth, valid)
    for pred in predictions.values():
        mask &= np.isfinite(pred).all(axis=(1, 2))
    return mask


def _score(
    predictions: Mapping[Any, np.ndarray],
    truth: np.ndarray,
    frame_times: np.ndarray,
    valid: np.ndarray | None,
    template: np.ndarray | None,
    spaces: Sequence[str],
    max_lag_frames: int,
    phones: Sequence | None = None,
) -> dict[Any, dict[str, dict[str, float] | str]]:
    """{key: {space: metrics dict, or an error message}} on the common frames: valid
    truth where every prediction is finite in every space (a degenerate face whose pose
    cannot be fitted drops out of all spaces at once). ``phones``: the clip's phone
    segments (bilabial closures; NaN without)."""
    truth = np.asarray(truth, np.float64)
    if template is None:
        template = own_template(truth, valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_space = to_spaces(predictions, truth, template, spaces)
    mask = metrics.valid_frames(truth, valid)
    for preds, true in by_space.values():
        mask &= common_frames(true, None, preds)
    out: dict[Any, dict[str, dict[str, float] | str]] = {key: {} for key in predictions}
    for space, (preds, true) in by_space.items():
        for key, pred in preds.items():
            try:
                if space == "frame":
                    out[key][space] = metrics.evaluate_frame_sequence(pred, true, frame_times, mask)
                else:
                    out[key][space] = metrics.evaluate_sequence(
                        pred, true, frame_times, mask, max_lag_frames, phones
                    )
            except ValueError as err:
                out[key][space] = str(err)
    return out


def score_landmarks(
    predictions: Mapping[str, np.ndarray] | np.ndarray,
    truth: np.ndarray,
    frame_times: np.ndarray,
    valid: np.ndarray | None = None,
    template: np.ndarray | None = None,
    spaces: Sequence[str] = SPACES,
    max_lag_frames: int = metrics.DEFAULT_MAX_LAG_FRAMES,
    clip_id: str = "clip",
    phones: Sequence | None = None,
    **meta: Any,
) -> pd.DataFrame:
    """Score predictions (T, 68, 2 pixels each; a dict {model: array} or one array named
    ``predicted``) against a clip's own landmarks ``truth`` (T, 68, 2, NaN where missing)
    at ``frame_times``: one row per model x space, the same columns as
    :func:`evaluate_models` (``meta`` fills speaker, emotion, sentence_id, split, seed).
    ``template`` (68, 2) sets the pose-normalised space (a ``TargetNormalizer``'s
    ``template``); None builds it from the clip itself. ``phones``: the clip's phone
    segments (``wav2kp.evaluation.phones.clip_phones``) for the bilabial closures. Works for any extracted clip,
    e.g. a voice no model was trained on, scored against that video's own mouth:
    ``wav2kp.evaluation.results.summarise(table, unit="clip_id")`` then gives means with intervals
    over clips."""
    if not isinstance(predictions, Mapping):
        predictions = {"predicted": predictions}
    truth = np.asarray(truth, np.float64)
    arrays = {}
    for name, pred in predictions.items():
        pred = np.asarray(pred, np.float64)
        if pred.shape != truth.shape:
            raise ValueError(f"{clip_id}: {name} predicted shape {pred.shape}, truth {truth.shape}")
        arrays[name] = pred
    scored = _score(arrays, truth, frame_times, valid, template, spaces, max_lag_frames, phones)
    clip_meta = {"clip_id": clip_id, "speaker": "", "emotion": "", "sentence_id": clip_id,
                 "split": "", "seed": 0, **meta}  # fmt: skip
    rows = [_row(name, clip_meta, space, value, len(truth))
            for name, by_space in scored.items() for space, value in by_space.items()]  # fmt: skip
    return _ordered(pd.DataFrame(rows))


def score_extraction(
    predictions: Mapping[str, np.ndarray] | np.ndarray,
    extraction: str | os.PathLike | Extraction,
    clip_id: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`score_landmarks` against an extraction file (``extracted/<clip>.npz`` of
    ``wav2kp extract``) or a loaded ``Extraction``: its ``lm68`` at its ``times``, frames
    marked missing left out. Predictions need one row per extracted frame."""
    if not isinstance(extraction, Extraction):
        clip_id = clip_id or Path(extraction).stem
        extraction = read_extraction(extraction)
    return score_landmarks(predictions, extraction.lm68, extraction.times, extraction.valid,
                           clip_id=clip_id or "clip", **kwargs)  # fmt: skip


def _row(name, meta: Mapping[str, Any], space: str, value, n_frames: int) -> dict[str, Any]:
    model, seed = name if isinstance(name, tuple) else (name, meta.get("seed", 0))
    row: dict[str, Any] = {**meta, "model": model, "seed": int(seed), "space": space}
    if isinstance(value, str):
        row.update(error=value, n_frames=n_frames)
    else:
        row.update(value, error="")
    return row


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    for column in METRICS + COUNT_COLUMNS + ["av_offset_frames"]:
        if column not in frame:
            frame[column] = np.nan
    if "error" not in frame:
        frame["error"] = ""
    ordered = CLIP_COLUMNS + METRICS + ["av_offset_frames"] + COUNT_COLUMNS + ["error"]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def evaluate_models(
    predictors: Sequence[KeypointPredictor],
    clips: Sequence[ClipData],
    normalizer=None,
    spaces: Sequence[str] = SPACES,
    max_lag_frames: int = metrics.DEFAULT_MAX_LAG_FRAMES,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per model x training seed x space x clip: clip metadata, every metric,
    frame counts, and ``error`` (empty when the model ran); bilabial closures where the
    clip has a transcript (``clip_phones``). Every predictor is scored on
    the same frames of each clip; the pose-normalised space uses ``normalizer``'s
    template (else each clip's own, see :func:`own_template`)."""
    keys = [predictor_key(p) for p in predictors]
    if len(set(keys)) != len(keys):
        raise ValueError(f"predictor (name, seed) pairs must be unique, got {keys}")
    template = getattr(normalizer, "template", None)
    rows = []
    for clip in tqdm(clips, desc="evaluating clips", disable=not progress):
        predictions, errors = predict_all(predictors, clip)
        meta = {"clip_id": clip.clip_id, "speaker": clip.speaker, "emotion": clip.emotion,
                "sentence_id": clip.sentence_id, "split": clip.split}  # fmt: skip
        try:
            scored = _score(predictions, clip.landmarks, clip.frame_times, clip.valid,
                            template, spaces, max_lag_frames, clip_phones(clip))  # fmt: skip
        except ValueError as err:  # e.g. no valid ground-truth frame at all
            scored, errors = {}, {k: f"{clip.clip_id}: {err}" for k in keys}
        for key in keys:
            for space in spaces:
                value = errors.get(key) or scored.get(key, {}).get(space, "not scored")
                if isinstance(value, str) and clip.clip_id not in value:
                    value = f"{clip.clip_id}: {value}"
                rows.append(_row(key, meta, space, value, clip.n_frames))
    return _ordered(pd.DataFrame(rows))


def lag_curves(
    predictors: Sequence[KeypointPredictor],
    clips: Sequence[ClipData],
    max_lag_frames: int = metrics.DEFAULT_MAX_LAG_FRAMES,
) -> pd.DataFrame:
    """Long table ``model, seed, clip_id, lag_frames, lag_ms, r``: correlation of
    predicted with true mouth opening at each lag (positive = prediction late), per clip,
    on the same frames as :func:`evaluate_models` (the opening is the same in both
    spaces). Averaged over clips its peak is a pooled A/V offset."""
    rows = []
    for clip in clips:
        predictions, _ = predict_all(predictors, clip)
        mask = common_frames(clip.landmarks, clip.valid, predictions)
        period_ms = metrics.frame_period(clip.frame_times) * 1e3
        for (name, seed), pred in predictions.items():
            lags, r = metrics.opening_lag_curve(pred, clip.landmarks, mask, max_lag_frames)
            rows += [
                {"model": name, "seed": seed, "clip_id": clip.clip_id, "lag_frames": int(lag),
                 "lag_ms": lag * period_ms, "r": value}
                for lag, value in zip(lags, r, strict=True)
            ]  # fmt: skip
    columns = ["model", "seed", "clip_id", "lag_frames", "lag_ms", "r"]
    return pd.DataFrame(rows, columns=columns)


def pooled_offsets(curves: pd.DataFrame) -> pd.DataFrame:
    """Per model: the lag (frames, ms) where the clip- and seed-averaged correlation
    peaks, and the peak r."""
    mean = curves.groupby(["model", "lag_frames"], sort=False)[["r", "lag_ms"]].mean()
    mean = mean.dropna(subset=["r"]).reset_index()
    if mean.empty:
        return pd.DataFrame(columns=["lag_frames", "lag_ms", "r"]).rename_axis("model")
    best = mean.loc[mean.groupby("model", sort=False)["r"].idxmax()]
    return best.set_index("model")[["lag_frames", "lag_ms", "r"]]


def label_free_variants(
    predictors: Sequence[KeypointPredictor], train_clips: Sequence[ClipData]
) -> tuple[list[KeypointPredictor], list[str]]:
    """Every training seed of the emotion-conditioned reference model as ``predict`` meets
    new speech, without the clip's true label: with no label (``LABEL_FREE``; the model
    then takes ``neutral`` when it knows it) and with a label predicted from the audio
    (``AUDIO_LABEL``: ``wav2kp.training.inference.EmotionFromAudio`` fitted on ``train_clips``,
    when the model knows two emotions or more). Returns ``(predictors, one message per
    variant that could not be made)``."""
    from wav2kp.training.inference import EmotionFromAudio

    reference = [p for p in predictors if p.name == results.REFERENCE and uses_emotion(p)]
    variants = [p.with_emotion("", name=results.LABEL_FREE) for p in reference]
    problems: list[str] = []
    if any(len(p.model_config.emotions) >= 2 for p in reference):
        try:
            classifier = EmotionFromAudio().fit(train_clips)
        except ValueError as err:
            problems.append(f"no audio-predicted emotion label: {err}")
        else:
            variants += [p.with_emotion(classifier, name=results.AUDIO_LABEL) for p in reference]
    return variants, problems


def uses_emotion(predictor) -> bool:
    """Whether a trained model is conditioned on the emotion label."""
    return bool(getattr(getattr(predictor, "model_config", None), "emotions", ()))


# ---------- the whole evaluation of a corpus (notebook 05 and the CLI) ----------

DEFAULT_MODELS = (results.ORIGINAL, results.REFERENCE)
SEED_FOLDER = "seed-"  # data/models/<corpus>/<model>/seed-<n>/ (wav2kp.training.train.model_dir)


def checkpoint_paths(corpus: str, model: str) -> list[Path]:
    """The final checkpoints of one model, one per training seed: ``<folder>/seed-<n>/
    best.pt`` (by n), where ``<folder>`` is ``data/models/<corpus>/<model>`` for a name
    or the given folder; a folder without seed folders gives its own ``best.pt``; a
    ``.pt`` path is itself."""
    path = Path(model)
    if path.suffix == ".pt":
        return [path]
    if not path.is_dir():
        from wav2kp.paths import CorpusPaths

        path = CorpusPaths(corpus).models / model
    seeds = [p for p in path.glob(f"{SEED_FOLDER}*/best.pt") if _seed_number(p.parent) is not None]
    if seeds:
        return sorted(seeds, key=lambda p: _seed_number(p.parent))
    return [path / "best.pt"] if (path / "best.pt").is_file() else []


def _seed_number(folder: Path) -> int | None:
    number = folder.name[len(SEED_FOLDER) :]
    return int(number) if folder.name.startswith(SEED_FOLDER) and number.isdigit() else None


def model_name(model: str) -> str:
    """The model a name, folder or checkpoint path stands for (``.../default/seed-2/best.pt``
    is ``default``)."""
    path = Path(model)
    if path.suffix == ".pt":
        if path.name not in ("best.pt", "last.pt"):
            return path.stem
        path = path.parent
    return path.parent.name if _seed_number(path) is not None else path.name


def load_trained(
    corpus: str, models: Sequence[str], device: str = "auto"
) -> tuple[list[KeypointPredictor], list[str]]:
    """Trained predictors for ``models`` (names or checkpoint paths; every training seed
    found, see :func:`checkpoint_paths`), and one message per checkpoint that could not
    be used (missing, unreadable, a seed twice) - the rest go on."""
    from wav2kp.training.inference import load_predictor

    predictors, problems = [], []
    for model in models:
        name = model_name(model)
        paths = checkpoint_paths(corpus, model)
        if not paths:
            problems.append(
                f"model {name!r}: no checkpoint for {model!r} (train it in notebook 04)"
            )
        seen: dict[int, Path] = {}
        for path in paths:
            try:
                # refused when the corpus changed since training (split, features, ...)
                predictor = load_predictor(path, name=name, device=device, corpus=corpus)
            except (OSError, ValueError, KeyError, RuntimeError) as err:
                problems.append(f"model {name!r}: cannot load {path}: {err}")
                continue
            seed = training_seed(predictor)
            if seed in seen:
                problems.append(f"model {name!r}: {path} repeats training seed {seed} of "
                                f"{seen[seed]}; left out")  # fmt: skip
                continue
            seen[seed] = path
            predictors.append(predictor)
    return predictors, problems


def reference_window(predictors: Sequence[KeypointPredictor], reference: str = results.REFERENCE):
    """The audio window of the reference model (the one baselines are compared with):
    the ``reference`` model's, else the first aligned-window model's, else None."""
    candidates = [p for p in predictors if p.name == reference] + list(predictors)
    for predictor in candidates:
        window = getattr(predictor, "window_config", None)
        if window is not None and window.mode == "aligned":
            return window
    return None


def refit_rule(predictors: Sequence[KeypointPredictor]) -> tuple[bool, list[str]]:
    """Whether the trained models were refit on train + val (``refit_on_val`` of their
    configuration), and a message when they disagree (the baselines then follow the
    reference model)."""
    rules = {p.name: bool(getattr(getattr(p, "train_config", None), "refit_on_val", False))
             for p in predictors if hasattr(p, "train_config")}  # fmt: skip
    if not rules:
        return False, []
    chosen = rules.get(results.REFERENCE, next(iter(rules.values())))
    if len(set(rules.values())) > 1:
        return chosen, [f"the trained models disagree on refitting on train + val ({rules}); "
                        "no single rule for every model"]  # fmt: skip
    return chosen, []


def source_video(corpus: str, clip: ClipData) -> Path | None:
    """The clip's original video (``wav2kp.extraction.extract.source_video``)."""
    from wav2kp.extraction.extract import source_video as find

    return find(corpus, clip.clip_id)


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
    table: pd.DataFrame  # one row per model x seed x space x clip
    protocol: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def predictor(self, name: str) -> KeypointPredictor | None:
        return next((p for p in self.predictors if p.name == name), None)

    @property
    def unit(self) -> str:
        return self.protocol.get("unit", "sentence_id")

    @cached_property
    def summary(self) -> pd.DataFrame:
        """``wav2kp.evaluation.results.summarise`` of the table (estimates, intervals, seed spread)."""
        return results.summarise(self.table, self.unit)

    def checks(self, model: str = results.REFERENCE, space: str = "aligned") -> pd.DataFrame:
        return results.target_checks(self.table, model, space, self.unit)

    def differences(self) -> pd.DataFrame:
        return results.paired_differences(self.table, unit=self.unit)


def run_evaluation(
    corpus: str,
    models: Sequence[str] = DEFAULT_MODELS,
    output_dir: str | Path | None = None,
    split: str = "test",
    max_lag_frames: int = metrics.DEFAULT_MAX_LAG_FRAMES,
    device: str = "auto",
    progress: bool = True,
    refit: bool | None = None,
    baselines: Sequence[str] = BASELINES,
    label_free: bool = True,
    profile: str | None = None,
) -> EvaluationRun:
    """Evaluate every model on equal terms (module doc) on the ``split`` clips.

    Loads the trained ``models`` (every training seed found), loads the clips with the
    reference (default) model's audio window, fits the ``baselines`` under the trained
    models' refit rule (``refit`` None: as the checkpoints say), adds the default model
    without its emotion label and with one predicted from audio (``label_free``), scores
    everything in both spaces on the same frames and (with ``output_dir``) writes the
    result files (:func:`write_results`).
    ``profile`` (the ``wav2kp.config`` profile the models were trained under) is recorded
    in the protocol.
    """
    from wav2kp.evaluation.baselines import fit_baselines
    from wav2kp.windowing.dataset import load_clips, load_normalizer

    problems: list[str] = []
    trained, load_problems = load_trained(corpus, models, device)
    problems += load_problems
    window = reference_window(trained)
    rule, rule_problems = refit_rule(trained)
    refit = rule if refit is None else bool(refit)
    problems += rule_problems
    clips = load_clips(corpus, splits=None, window_config=window, progress=progress)
    held_out = [c for c in clips if c.split == split]
    if not held_out:
        raise ValueError(f"corpus {corpus!r}: no clip in the {split!r} split to evaluate on")
    normalizer = load_normalizer(corpus)
    try:
        fitted, baseline_problems = fit_baselines(
            normalizer, clips, refit=refit, window=window, names=baselines
        )
    except (ValueError, FileNotFoundError) as err:
        fitted, baseline_problems = [], [f"baselines not fitted: {err}"]
    problems += baseline_problems
    provenance = trained_summary(trained)
    if label_free:
        fit_on = [c for c in clips if c.split == "train" or (refit and c.split == "val")]
        variants, variant_problems = label_free_variants(trained, fit_on)
        trained += variants
        problems += variant_problems
    for problem in problems:
        log.warning(problem)
    predictors = [*fitted, *trained]
    if not predictors:
        raise ValueError(f"corpus {corpus!r}: nothing to evaluate: {'; '.join(problems)}")
    table = evaluate_models(predictors, held_out, normalizer, SPACES, max_lag_frames, progress)
    settings = _split_settings(corpus)
    protocol = {
        "corpus": corpus,
        "split": split,
        "split_seed": settings.get("seed"),
        "split_by": settings.get("by"),
        "unit": "sentence_id",
        "seeds": sorted({training_seed(p) for p in trained}),
        "models": sorted({p.name for p in predictors}),
        "refit": refit,
        "profile": profile,
        "trained": provenance,
        "window": window.to_dict() if window is not None else None,
        "feature_config": dict(held_out[0].extra.get("feature_config", {})),
        "max_lag_frames": max_lag_frames,
        "problems": list(problems),
    }
    run = EvaluationRun(held_out, predictors, table, protocol, problems)
    if output_dir is not None:
        run.files = write_results(run, output_dir)
    return run


def trained_summary(predictors: Sequence[KeypointPredictor]) -> dict[str, dict[str, Any]]:
    """Per trained model, what its checkpoints say it was trained with: training seeds,
    epochs, refit rule, window mode and input features (the results file's provenance)."""
    out: dict[str, dict[str, Any]] = {}
    for predictor in predictors:
        config = getattr(predictor, "train_config", None)
        if config is None:
            continue
        entry = out.setdefault(predictor.name, {"seeds": [], "epochs_by_seed": {}})
        entry["seeds"] = sorted({*entry["seeds"], training_seed(predictor)})
        # a plateau recipe is refitted for as many epochs as its selection needed: per seed
        entry["epochs_by_seed"][str(training_seed(predictor))] = int(config.epochs)
        entry.update(
            epochs=int(config.epochs),
            plateau=bool(getattr(config, "plateau", False)),
            refit_on_val=bool(getattr(config, "refit_on_val", False)),
            window_mode=config.window_config.mode,
            features=(getattr(config, "features", None) or {}).get("kind", "corpus features"),
        )
    return out


def _split_settings(corpus: str) -> dict[str, Any]:
    """The settings the corpus split was made with (``split.json``; empty if unknown)."""
    import json

    from wav2kp.features.splits import split_settings_path

    try:
        return dict(json.loads(split_settings_path(corpus).read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def write_results(run: EvaluationRun, output_dir: str | Path) -> dict[str, Path]:
    """``results.json`` (the results file: protocol + clip table, see ``wav2kp.evaluation.results``),
    ``metrics.csv`` (the clip table), ``metrics_summary.csv`` (estimates, intervals, seed
    spread), ``target_checks.csv``, ``paired_differences.csv`` and ``metrics.json``
    ({model: {metric: estimate}} in the pose-normalised space, what the diary reads, plus
    ``details``), all written atomically."""
    output_dir = Path(output_dir)
    summary = run.summary
    labelled = (results.REFERENCE, results.LABEL_FREE, results.AUDIO_LABEL)
    checks = pd.concat([run.checks(m) for m in labelled
                        if m in set(run.table["model"])] or [run.checks()])  # fmt: skip
    estimates = results.wide(summary)
    headline = (
        estimates.loc["aligned"] if "aligned" in estimates.index.unique("space") else estimates
    )
    details = {
        "protocol": run.protocol,
        "per_space": {
            space: _records(estimates.loc[space]) for space in estimates.index.unique("space")
        },  # fmt: skip
        "target_checks": [
            {k: results.plain(v) for k, v in row.items()} for row in checks.to_dict("records")
        ],  # fmt: skip
        "n_clips": int(run.table["clip_id"].nunique()),
        "errors": sorted({e for e in run.table["error"].fillna("") if e}),
    }
    return {
        "results": results.save_results(output_dir / results.RESULTS_FILE, run.table, run.protocol),
        "csv": write_csv(output_dir / "metrics.csv", run.table),
        "summary": write_csv(output_dir / "metrics_summary.csv", summary),
        "checks": write_csv(output_dir / "target_checks.csv", checks),
        "differences": write_csv(output_dir / "paired_differences.csv", run.differences()),
        "json": write_json(output_dir / "metrics.json", {**_records(headline), "details": details}),
    }


def _records(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(index): {k: results.plain(v) for k, v in row.items()}
            for index, row in table.iterrows()}  # fmt: skip


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    from wav2kp.config import RunConfig, add_corpus_argument

    add_corpus_argument(parser)
    parser.add_argument(
        "--checkpoints", nargs="*", default=list(DEFAULT_MODELS),
        help="model names under data/models/<corpus>/ (every training seed found) or "
        "checkpoint paths (default: original default)",
    )  # fmt: skip
    parser.add_argument("--out", default="reports/scratch/evaluation", help="output folder")
    parser.add_argument("--split", default="test", help="split to evaluate on (default test)")
    parser.add_argument("--max-lag", type=int, default=metrics.DEFAULT_MAX_LAG_FRAMES,
                        help="A/V offset search range in frames")  # fmt: skip
    parser.add_argument("--videos", type=int, default=0, help="side-by-side videos to write")
    parser.add_argument("--seed", type=int, default=RunConfig.seed, help="which clips get videos")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", default=None,
                        help="the profile the models were trained under (recorded in the "
                        "results file; README's block names it), e.g. full")  # fmt: skip


def run_cli(args: argparse.Namespace) -> int:
    from wav2kp.paths import resolve_output_dir

    out = resolve_output_dir(args.out)
    run = run_evaluation(args.corpus, args.checkpoints, out, args.split, args.max_lag, args.device,
                         profile=args.profile)  # fmt: skip
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        estimates = results.wide(run.summary)
        for space in estimates.index.unique("space"):
            print(f"{space}:\n{estimates.loc[space].round(4).to_string()}\n")
        print(run.checks().to_string(index=False))
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
    models: Sequence[str] = DEFAULT_MODELS,
) -> list[Path]:
    """Side-by-side mp4s (video | true | each of ``models`` present) for ``count`` clips;
    a clip that fails is reported and skipped. Existing videos are kept (re-run skips)."""
    from wav2kp.plots.render import write_side_by_side

    by_name: dict[str, KeypointPredictor] = {}
    for predictor in sorted(run.predictors, key=training_seed):  # one seed per model
        by_name.setdefault(predictor.name, predictor)
    chosen_models = [p for n, p in by_name.items() if n in models] or run.predictors[-1:]
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
