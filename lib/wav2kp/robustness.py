"""Unseen voices: the cross-validation that chooses the robustness levers, and the check
of a trained model on other people's real speech (issue 10).

Levers are compared by cross-validation over the train + val sentences of a corpus (never
its test sentences, never an evaluation voice): folds of whole sentences; per fold the
feature stats and the target normaliser are fitted on the fold's training clips, a model
trains, and it is scored

- on the fold's held-out sentences (``val``: the same voice, new sentences), and
- on *proxy* clips of voices it never heard (e.g. the synthetic demo corpus: other
  voices, another language, other faces; none of them an evaluation voice), each clip
  against its own measured mouth.

A variant is a name plus ``features`` (``FeatureConfig`` fields), ``train``
(``TrainConfig`` fields) and ``av_correction`` (shift each clip's keypoint times by its
measured A/V lag's distance from the corpus median, ``wav2kp.sync``). Features are
computed in memory (the corpus' feature files are left alone), so variants do not
disturb a report run.

``unseen_voice_clips`` builds ``ClipData`` for the clips of another corpus with a
checkpoint's own feature config, stats and normaliser; ``score_clips`` scores any
predictor on clips against their own landmarks, with the silence measure.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp import metrics
from wav2kp.dataset import ClipData, make_clip, read_extraction
from wav2kp.features import FeatureConfig, FeatureStats, compute_features
from wav2kp.paths import CorpusPaths
from wav2kp.targets import TargetNormalizer
from wav2kp.windowing import WindowConfig

SAMPLE_RATE = 16000


@dataclass
class ClipSource:
    """A clip before features: its 16 kHz audio and measured keypoints."""

    clip_id: str
    speaker: str
    emotion: str
    sentence_id: str
    split: str
    samples: np.ndarray
    times: np.ndarray
    lm68: np.ndarray
    valid: np.ndarray
    frame_size: tuple[int, int]
    audio_path: Path
    speech: np.ndarray | None = None  # (T,) truth of who speaks when, if known (GRID align)


def load_sources(
    corpus: str, splits: Sequence[str] | None = None, align_dir=None, root=None,
    progress: bool = True,
) -> list[ClipSource]:  # fmt: skip
    """Every ``ok`` clip of an extracted corpus (of ``splits`` when given; the corpus'
    ``split.csv`` must exist then). With ``align_dir`` (GRID's ``align/``), each clip's
    ``speech`` truth comes from ``<align_dir>/<sentence_id>.align``."""
    from tqdm.auto import tqdm

    from wav2kp.audio import load_audio
    from wav2kp.splits import ok_clips
    from wav2kp.vad import read_grid_align, speech_from_words

    paths = CorpusPaths(corpus, root)
    manifest = ok_clips(corpus, root)
    split_of = {}
    if paths.split_file.is_file():
        table = pd.read_csv(paths.split_file, dtype=str)
        split_of = dict(zip(table["clip_id"], table["split"], strict=True))
    elif splits is not None:
        raise FileNotFoundError(f"{paths.split_file}: no split to select {list(splits)} from")
    sources = []
    for _, row in tqdm(list(manifest.iterrows()), desc=f"load {corpus}", disable=not progress):
        cid = str(row["clip_id"])
        if splits is not None and split_of.get(cid) not in splits:
            continue

        try:
            extraction = read_extraction(paths.extracted / f"{cid}.npz")
            samples, _ = load_audio(paths.audio / f"{cid}.wav", sample_rate=SAMPLE_RATE)
        except (OSError, ValueError, RuntimeError) as exc:
            warnings.warn(f"clip {cid} skipped: {exc}", stacklevel=2)
            continue
        source = ClipSource(
            clip_id=cid,
            speaker=_text(row, "speaker", "unknown"),
            emotion=_text(row, "emotion"),
            sentence_id=_text(row, "sentence_id", cid),
            split=split_of.get(cid, ""),
            samples=samples,
            times=extraction.times,
            lm68=extraction.lm68,
            valid=extraction.valid,
            frame_size=(extraction.width, extraction.height),
            audio_path=paths.audio / f"{cid}.wav",
        )
        if align_dir is not None:
            align = Path(align_dir) / f"{source.sentence_id}.align"
            if align.is_file():
                source.speech = speech_from_words(read_grid_align(align), source.times)
        sources.append(source)
    return sources


def _text(row: pd.Series, column: str, default: str = "") -> str:
    value = row.get(column)
    return default if value is None or pd.isna(value) or value == "" else str(value)


def shift_times(source: ClipSource, seconds: float) -> ClipSource:
    """The source with its keypoint times moved by ``seconds`` (a positive shift pairs
    each frame with later audio)."""
    return dataclasses.replace(source, times=source.times + seconds)


def fit_state(
    sources: Sequence[ClipSource], feature_config: FeatureConfig, raw: Mapping[str, np.ndarray]
) -> tuple[FeatureStats, TargetNormalizer]:
    """Feature stats and target normaliser fitted on ``sources`` (the training clips)."""
    stats = FeatureStats.fit(
        [raw[s.clip_id] for s in sources], feature_config, [s.clip_id for s in sources]
    )
    pairs = [(s.speaker, np.where(s.valid[:, None, None], s.lm68, np.nan)) for s in sources]
    return stats, TargetNormalizer(neutral="closed").fit(pairs)


def raw_features(
    sources: Sequence[ClipSource], config: FeatureConfig
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(features, times) of every source for one feature config."""
    return {s.clip_id: compute_features(s.samples, SAMPLE_RATE, config) for s in sources}


def build_clips(
    sources: Sequence[ClipSource],
    features: Mapping[str, tuple[np.ndarray, np.ndarray]],
    stats: FeatureStats,
    normalizer: TargetNormalizer,
    window: WindowConfig,
) -> list[ClipData]:
    clips = []
    for s in sources:
        raw, times = features[s.clip_id]
        clip = make_clip(
            s.clip_id, s.times, s.lm68, s.valid, raw, times, stats, window, normalizer,
            speaker=s.speaker, emotion=s.emotion, sentence_id=s.sentence_id, split=s.split,
            frame_size=s.frame_size, audio_path=s.audio_path,
        )  # fmt: skip
        # the gate hears the clip's own (possibly perturbed) audio
        clip.extra.update(samples=s.samples, sample_rate=SAMPLE_RATE)
        if s.speech is not None:
            clip.extra["speech_truth"] = s.speech
        clips.append(clip)
    return clips


# ---------- scoring ----------


def clip_silence_share(clip: ClipData, predicted: np.ndarray, normalizer) -> float:
    """``wav2kp.vad.silent_open_share`` of a prediction on a clip with speech truth
    (``extra["speech_truth"]``; NaN without), the closed opening being the speaker's
    neutral face's."""
    from wav2kp.vad import silent_open_share

    truth = clip.extra.get("speech_truth")
    if truth is None or normalizer is None:
        return float("nan")
    neutral = normalizer.neutral_for(clip.speaker or None)
    closed = float(metrics.mouth_opening(neutral[None])[0])
    opening = metrics.mouth_opening(predicted)
    return silent_open_share(opening, truth, closed)


def score_clips(predictors: Sequence, clips: Sequence[ClipData], normalizer=None) -> pd.DataFrame:
    """One row per predictor x clip: ``metrics.evaluate_sequence`` on the frames valid
    for the clip, plus ``silent_open_share`` (predicted) and ``true_silent_open_share``
    where the clip has speech truth."""
    rows = []
    for clip in clips:
        for predictor in predictors:
            try:
                pred = np.asarray(predictor.predict_landmarks(clip), dtype=np.float64)
            except Exception as err:  # one failing model must not stop the batch
                warnings.warn(f"{predictor.name} on {clip.clip_id}: {err}", stacklevel=2)
                continue
            row = {"model": predictor.name, "clip_id": clip.clip_id, "speaker": clip.speaker}
            row.update(
                metrics.evaluate_sequence(pred, clip.landmarks, clip.frame_times, clip.valid)
            )
            row["silent_open_share"] = clip_silence_share(clip, pred, normalizer)
            row["true_silent_open_share"] = clip_silence_share(
                clip, np.where(clip.valid[:, None, None], clip.landmarks, np.nan), normalizer
            )
            rows.append(row)
    return pd.DataFrame(rows)


# ---------- cross-validation of the levers ----------


# Fixed recording conditions for the ``val_*`` proxy sets: the held-out sentences heard
# as another voice, through a telephone, in a room. Augmentation draws from similar
# families, so these sets show invariance to those changes, not to real new voices.
HELD_OUT_CONDITIONS = {
    "val_voice": dict(pitch_semitones=4.0, eq=(120.0, 7000.0, 2500.0, 5.0)),
    "val_phone": dict(
        eq=(300.0, 3400.0, 1500.0, 4.0), snr_db=15.0, noise_colour=1.0, gain_db=-10.0
    ),
    "val_room": dict(reverb_rt60=0.6, reverb_wet=0.7, snr_db=25.0, noise_colour=0.5),
}


def perturbed_sources(
    sources: Sequence[ClipSource], condition: Mapping, seed: int = 0
) -> list[ClipSource]:
    """The sources heard in one fixed recording condition (``augmentation.Perturbation``
    fields); keypoint times follow a speed change."""
    from wav2kp.augmentation import Perturbation, perturb

    perturbation = Perturbation(**condition)
    out = []
    for i, s in enumerate(sources):
        rng = np.random.default_rng([seed, i])
        out.append(dataclasses.replace(
            s, samples=perturb(s.samples, perturbation, rng), times=s.times / perturbation.speed,
            clip_id=f"{s.clip_id}~{'+'.join(sorted(condition))}",
        ))  # fmt: skip
    return out


def sentence_folds(sources: Sequence[ClipSource], n_folds: int, seed: int = 0) -> list[int]:
    """Fold number per source, whole sentences together, sentences shuffled by ``seed``."""
    sentences = sorted({s.sentence_id for s in sources})
    order = np.random.default_rng(seed).permutation(len(sentences))
    fold_of = {sentences[i]: rank % n_folds for rank, i in enumerate(order)}
    return [fold_of[s.sentence_id] for s in sources]


# Search range of the per-clip lag for the correction: on GRID's 3 s sentences a
# +-300 ms search lets 106 of 400 clips jump to a neighbouring syllable (+-200-300 ms,
# for a median gain of only 0.07 in r); within +-120 ms the lags have median 0 and
# quartiles -15 / +15 ms (``python -m wav2kp.robustness lags --corpus grid``).
CORRECTION_MAX_LAG_MS = 120.0


def corpus_lag_shifts(
    corpus: str, clip_ids: Sequence[str], root=None, max_lag_ms: float = CORRECTION_MAX_LAG_MS
) -> tuple[dict[str, float], pd.DataFrame]:
    """Seconds to add to each clip's keypoint times so that its A/V lag matches the
    corpus median (``wav2kp.sync``); weak and outlier clips get no shift. Returns the
    shifts and the lag table (implausible clips: ``outlier``)."""
    from wav2kp.sync import corpus_av_lags

    lags = corpus_av_lags(corpus, max_lag_ms=max_lag_ms, root=root)
    lags = lags[lags["clip_id"].isin(list(clip_ids))]
    trusted = lags[~lags["weak"] & ~lags["outlier"]]
    median = float(trusted["lag_ms"].median()) if len(trusted) else 0.0
    shifts = {
        str(row.clip_id): (float(row.lag_ms) - median) / 1000.0 for row in trusted.itertuples()
    }
    return shifts, lags


def run_cv(
    sources: Sequence[ClipSource],
    variants: Mapping[str, Mapping],
    out_dir: str | Path,
    n_folds: int = 3,
    seeds: Sequence[int] = (0,),
    budget: Mapping | None = None,
    proxies: Mapping[str, Sequence[ClipSource]] | None = None,
    lag_shifts: Mapping[str, float] | None = None,
    split_seed: int = 0,
    conditions: Mapping[str, Mapping] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train every variant on every fold and seed, score on the fold's held-out sentences
    and on each proxy set, with and without the silence gate (``wav2kp.vad``). Results
    (one row per variant x fold x seed x set x model x clip) are appended to
    ``out_dir/cv_clips.csv``; finished (variant, fold, seed) runs are skipped on a re-run.
    """
    from wav2kp.train import TrainConfig, load_predictor, train_model
    from wav2kp.vad import SilenceGate

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "cv_clips.csv"
    done = set()
    if results_path.is_file():
        previous = pd.read_csv(results_path)
        done = set(zip(previous["variant"], previous["fold"], previous["seed"], strict=True))
    folds = sentence_folds(sources, n_folds, split_seed)
    proxies = dict(proxies or {})
    conditions = HELD_OUT_CONDITIONS if conditions is None else conditions
    heard = {name: perturbed_sources(sources, c) for name, c in conditions.items()}
    for name, variant in variants.items():
        feature_config = FeatureConfig(**{"kind": "logmel", **variant.get("features", {})})
        all_sources = list(sources) + [s for group in proxies.values() for s in group]
        all_sources += [s for group in heard.values() for s in group]
        features = raw_features(all_sources, feature_config)
        train_sources = list(sources)
        if variant.get("av_correction"):
            train_sources = [
                shift_times(s, (lag_shifts or {}).get(s.clip_id, 0.0)) for s in sources
            ]
        for fold in range(n_folds):
            fit = [s for s, f in zip(train_sources, folds, strict=True) if f != fold]
            held = [s for s, f in zip(sources, folds, strict=True) if f == fold]
            stats, normalizer = fit_state(
                fit, feature_config, {k: v[0] for k, v in features.items()}
            )
            for seed in seeds:
                if (name, fold, seed) in done:
                    continue
                config = TrainConfig.preset(
                    "default", **{**dict(budget or {}), **variant.get("train", {}), "seed": seed}
                )
                config = dataclasses.replace(config, refit_on_val=False, patience=0)
                window = config.window_config
                train_clips = build_clips(fit, features, stats, normalizer, window)
                context = {"normalizer": normalizer, "feature_stats": stats,
                           "feature_config": feature_config}  # fmt: skip
                run_dir = out_dir / "models" / _slug(name) / f"fold{fold}-seed{seed}"
                result = train_model(train_clips, [], config, run_dir, progress=progress,
                                     context=context)  # fmt: skip
                model = _ungated(load_predictor(result.best_checkpoint, name="model"))
                gated = SilenceGate(model, name="model+gate")
                sets = {"val": build_clips(held, features, stats, normalizer, window)}
                for condition, group in heard.items():
                    in_fold = [h for h, f in zip(group, folds, strict=True) if f == fold]
                    sets[condition] = build_clips(in_fold, features, stats, normalizer, window)
                for proxy_name, proxy_sources in proxies.items():
                    sets[proxy_name] = build_clips(
                        proxy_sources, features, stats, normalizer, window
                    )
                frames = []
                for set_name, clips in sets.items():
                    table = score_clips([model, gated], clips, normalizer)
                    frames.append(table.assign(set=set_name))
                table = pd.concat(frames, ignore_index=True).assign(
                    variant=name, fold=fold, seed=seed,
                    epochs=result.epochs_run, train_seconds=float(result.history["seconds"].sum()),
                    variant_json=json.dumps(dict(variant), sort_keys=True, default=str),
                )  # fmt: skip
                table.to_csv(results_path, mode="a", header=not results_path.is_file(), index=False)
    return pd.read_csv(results_path)


def summarise_cv(table: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Per variant x set x model: the mean over folds and seeds of the per-run clip means,
    their spread (std over runs) and the number of runs."""
    columns = list(columns or ["mouth_open_r", "variance_ratio", "jitter_ratio",
                               "mouth_lmd_iod", "av_offset_frames", "silent_open_share"])  # fmt: skip
    per_run = table.groupby(["variant", "set", "model", "fold", "seed"])[columns].mean()
    grouped = per_run.groupby(["variant", "set", "model"])
    out = grouped.mean().add_suffix("_mean").join(grouped.std().add_suffix("_sd"))
    out["runs"] = grouped.size()
    return out


def _ungated(predictor):
    """The model under a ``SilenceGate`` (a checkpoint trained with ``silence_gate``)."""
    from wav2kp.vad import SilenceGate

    return predictor.predictor if isinstance(predictor, SilenceGate) else predictor


def cv_markdown(table: pd.DataFrame) -> str:
    """The lever cross-validation as markdown: per set, every variant (model, and model
    with the silence gate) as mean ± sd over folds x seeds of the per-run clip means."""
    summary = summarise_cv(table)
    columns = [("mouth_open_r", "mouth-opening r", 3), ("variance_ratio", "variance ratio", 2),
               ("jitter_ratio", "jitter ratio", 2), ("mouth_lmd_iod", "mouth LMD (IOD)", 4),
               ("av_offset_frames", "lag (frames)", 2),
               ("silent_open_share", "silent frames open", 3)]  # fmt: skip
    out = []
    for set_name in dict.fromkeys(summary.index.get_level_values("set")):
        part = summary.xs(set_name, level="set")
        out += [f"**{set_name}**", "",
                "| variant | model | runs | " + " | ".join(t for _, t, _ in columns) + " |",
                "|---" * (len(columns) + 3) + "|"]  # fmt: skip
        for (variant, model), row in part.iterrows():
            cells = []
            for metric, _, digits in columns:
                mean, sd = row[f"{metric}_mean"], row[f"{metric}_sd"]
                if not np.isfinite(mean):
                    cells.append("—")
                elif np.isfinite(sd):
                    cells.append(f"{mean:.{digits}f} ± {sd:.{digits}f}")
                else:
                    cells.append(f"{mean:.{digits}f}")
            out.append(f"| {variant} | {model} | {int(row['runs'])} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def gate_sweep(sources: Sequence[ClipSource], configs: Sequence) -> pd.DataFrame:
    """Per ``VadConfig``: share of truly silent frames where the gate lets the mouth move
    (weight > 0.05) and share of speech frames where it holds the mouth (weight < 0.95),
    over sources with speech truth."""
    from wav2kp.vad import silence_weights, voice_activity

    rows = []
    for config in configs:
        silent, speech = [], []
        for s in sources:
            if s.speech is None:
                continue
            period = metrics.frame_period(s.times)
            active = voice_activity(s.samples, SAMPLE_RATE, s.times, config)
            weights = silence_weights(active, period, config.ramp_s)
            silent.append(weights[~s.speech])
            speech.append(weights[s.speech])
        silent_w, speech_w = np.concatenate(silent), np.concatenate(speech)
        rows.append({**config.to_dict(), "silent_open": float((silent_w > 0.05).mean()),
                     "speech_held": float((speech_w < 0.95).mean())})  # fmt: skip
    return pd.DataFrame(rows)


# ---------- the chosen model: several seeds, held-out sentences and unseen voices ----------


class MeanTargets:
    """The true mean face: the mean of the training targets, posed with the clip's pose
    (no audio; the issue-9 "mean face", not the closed neutral)."""

    name = "mean_face"

    def __init__(self, normalizer, train_clips: Sequence[ClipData]):
        rows = np.concatenate([c.targets[np.isfinite(c.targets).all(axis=1)] for c in train_clips])
        self.mean = rows.mean(axis=0)
        self.normalizer = normalizer

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        from wav2kp.targets import fill_pose

        pose, _ = fill_pose(clip.pose)
        targets = np.tile(self.mean, (clip.n_frames, 1))
        return np.asarray(self.normalizer.inverse(targets, pose, clip.speaker), np.float32)


# Issue 10's targets: (name, metric, target, versus) per evaluation set kind
SAME_VOICE_TARGETS = (
    ("mouth-opening r", "mouth_open_r", ("r", 0.93, None), None),
    ("variance ratio", "variance_ratio", ("variance ratio", 0.9, 1.1), None),
    ("jitter ratio", "jitter_ratio", ("jitter ratio", None, 1.1), None),
    ("mouth LMD vs mean face", "mouth_lmd_iod", ("ratio", None, 0.4), "mean_face"),
    ("silent frames with the mouth open", "silent_open_share", ("share", None, 0.02), None),
)
UNSEEN_TARGETS = (
    ("mouth-opening r", "mouth_open_r", ("r", 0.5, None), None),
    ("variance ratio", "variance_ratio", ("variance ratio", 0.8, 1.25), None),
    ("lag (frames)", "av_offset_frames", ("lag", -1.0, 1.0), None),
)


def score_set(predictors: Sequence, clips: Sequence[ClipData], normalizer, **meta) -> pd.DataFrame:
    """``wav2kp.evaluate.score_landmarks`` of every predictor on every clip (against the
    clip's own landmarks, both spaces, the normaliser's template), plus each model's
    ``silent_open_share`` where the clip has speech truth."""
    from wav2kp.evaluate import score_landmarks

    frames = []
    for clip in clips:
        predictions = {
            p.name: np.asarray(p.predict_landmarks(clip), np.float64) for p in predictors
        }
        table = score_landmarks(
            predictions, clip.landmarks, clip.frame_times, clip.valid,
            template=normalizer.template, clip_id=clip.clip_id, speaker=clip.speaker,
            emotion=clip.emotion, sentence_id=clip.sentence_id, split=clip.split, **meta,
        )  # fmt: skip
        share = {
            name: clip_silence_share(clip, pred, normalizer) for name, pred in predictions.items()
        }
        table["silent_open_share"] = table["model"].map(share)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def target_table(
    table: pd.DataFrame, model: str, targets, unit: str, space: str = "aligned"
) -> pd.DataFrame:
    """One row per target: the model's estimate (mean over units of seed-averaged clip
    scores), its 95 % bootstrap interval over units, and ``wav2kp.bootstrap.verdict``."""
    from wav2kp import bootstrap

    ok = table[(table["space"] == space) & (table["error"].fillna("") == "")]
    columns = sorted({metric for _, metric, _, _ in targets})
    scores = ok.groupby(["model", "clip_id"])[columns].mean()
    units = ok.groupby(["model", "clip_id"])[unit].first()
    frames = ok.groupby(["model", "clip_id"])["n_frames_scored"].max()
    rows = []
    for name, metric, (label, low, high), versus in targets:
        target = bootstrap.Target(label, low, high)
        mine = scores.loc[model]
        unit_list = units.loc[model].reindex(mine.index).tolist()
        if versus is None:
            interval = bootstrap.mean_interval(mine[metric].to_numpy(), unit_list)
        else:
            theirs = scores.loc[versus].reindex(mine.index)[metric].to_numpy()
            interval = bootstrap.ratio_interval(mine[metric].to_numpy(), theirs, unit_list)
        n_frames = int(frames.loc[model].sum())
        rows.append({"target": name, "model": model, "space": space,
                     "threshold": target.describe(), **interval.as_dict(),
                     "n_frames": n_frames, "verdict": bootstrap.verdict(target, interval, n_frames)})  # fmt: skip
    return pd.DataFrame(rows)


def summary_markdown(sets: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, str]]) -> str:
    """Markdown: per set, every model's metrics as mean [95 % interval] (pose-normalised
    space), then the chosen model's target verdicts."""
    from wav2kp.results import summarise

    columns = [("mouth_open_r", "mouth-opening r", 2), ("variance_ratio", "variance ratio", 2),
               ("jitter_ratio", "jitter ratio", 2), ("mouth_lmd_iod", "mouth LMD (IOD)", 4),
               ("av_offset_frames", "lag (frames)", 1)]  # fmt: skip
    out = []
    for set_name, (table, targets, unit) in sets.items():
        summary = summarise(table[table["space"] == "aligned"], unit=unit)
        wide = summary.set_index(["model", "metric"])
        seeds = int(table["seed"].nunique())
        units = "test sentences" if unit == "sentence_id" else "videos (one voice each)"
        out.append(f"**{set_name}** ({seeds} training seed{'s' if seeds > 1 else ''}; "
                   f"intervals: 95 % bootstrap over {summary['n_units'].max()} {units}; "
                   "pose-normalised space)\n")  # fmt: skip
        out.append(
            "| model | " + " | ".join(title for _, title, _ in columns) + " | seed sd of r |"
        )
        out.append("|---" * (len(columns) + 2) + "|")
        for model in dict.fromkeys(summary["model"]):
            cells = []
            for metric, _, digits in columns:
                row = wide.loc[(model, metric)]
                if not np.isfinite(row["estimate"]):
                    cells.append("—")
                else:
                    cells.append(f"{row['estimate']:.{digits}f} [{row['low']:.{digits}f}, "
                                 f"{row['high']:.{digits}f}]")  # fmt: skip
            sd = wide.loc[(model, "mouth_open_r"), "seed_sd"]
            cells.append("—" if not np.isfinite(sd) else f"{sd:.3f}")
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("")
        out.append("| target | threshold | estimate [95 %] | verdict |")
        out.append("|---|---|---|---|")
        for row in targets.itertuples():
            out.append(f"| {row.target} ({row.model}) | {row.threshold} | "
                       f"{row.estimate:.3f} [{row.low:.3f}, {row.high:.3f}] | {row.verdict} |")  # fmt: skip
        out.append("")
    return "\n".join(out)


def unseen_voice_clips(
    predictor, corpus: str = "realclips", exclude: str | None = r"^grid_s1", root=None
) -> list[ClipData]:
    """``ClipData`` of another corpus' clips (other people, never trained on) with the
    predictor's own feature config, stats, window and normaliser; each clip keeps its own
    measured landmarks and pose, so a prediction is scored against that video's mouth.
    ``exclude``: a regex on clip ids to leave out (the trained speaker's own clips)."""
    import re

    stats = FeatureStats.from_dict(_plain_state(predictor.context["feature_stats"]))
    normalizer = predictor.normalizer
    sources = [
        s for s in load_sources(corpus, root=root, progress=False)
        if not (exclude and re.search(exclude, s.clip_id))
    ]  # fmt: skip
    features = raw_features(sources, stats.feature_config)
    return build_clips(sources, features, stats, normalizer, predictor.window_config)


def _plain_state(value):
    return value.to_dict() if hasattr(value, "to_dict") else dict(value)


def run_final(
    corpus: str,
    variant: Mapping,
    out_dir: str | Path,
    seeds: Sequence[int] = (0, 1, 2),
    align_dir=None,
    unseen_corpus: str | None = "realclips",
    unseen_exclude: str | None = r"^grid_s1",
    progress: bool = True,
    root=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train the chosen variant like the default model's final fit (train + val sentences,
    the full schedule) for every seed; score it, gated by the VAD, and the
    true mean face on the corpus' test sentences and on the unseen voices. Writes
    ``final_clips.csv``, ``final_summary.csv`` and ``final_table.md`` to ``out_dir``;
    checkpoints go to ``out_dir/seed<N>/``."""
    from wav2kp.train import TrainConfig, load_predictor, train_model
    from wav2kp.vad import SilenceGate

    out_dir = Path(out_dir)
    feature_config = FeatureConfig(**{"kind": "logmel", **variant.get("features", {})})
    everything = load_sources(corpus, ("train", "val", "test"), align_dir, root, progress)
    by_split = {
        name: [s for s in everything if s.split == name] for name in ("train", "val", "test")
    }
    if variant.get("av_correction"):
        shifts, _ = corpus_lag_shifts(corpus, [s.clip_id for s in everything], root)
        for name in ("train", "val"):
            by_split[name] = [shift_times(s, shifts.get(s.clip_id, 0.0)) for s in by_split[name]]
    features = raw_features(everything, feature_config)
    stats, normalizer = fit_state(
        by_split["train"], feature_config, {k: v[0] for k, v in features.items()}
    )
    context = {"normalizer": normalizer, "feature_stats": stats, "feature_config": feature_config,
               "corpus": corpus, "speakers": sorted({s.speaker for s in by_split["train"]})}  # fmt: skip
    tables: dict[str, list[pd.DataFrame]] = {}
    for seed in seeds:
        config = TrainConfig.preset("default", **{**variant.get("train", {}), "seed": seed})
        window = config.window_config
        clips = {name: build_clips(group, features, stats, normalizer, window)
                 for name, group in by_split.items()}  # fmt: skip
        # the default's refit rule: train + val sentences for the full schedule, last epoch
        # (the early-stopping selection run only gives validation curves: skipped here)
        refit = dataclasses.replace(config, refit_on_val=False, patience=0)
        final = train_model([*clips["train"], *clips["val"]], [], refit, out_dir / f"seed{seed}",
                            progress=progress, context=context)  # fmt: skip
        model = _ungated(load_predictor(final.best_checkpoint, name="model"))
        predictors = [model, SilenceGate(model, name="model+gate"),
                      MeanTargets(normalizer, clips["train"] + clips["val"])]  # fmt: skip
        sets = {f"{corpus} test": clips["test"]}
        if unseen_corpus:
            sets[f"{unseen_corpus} (unseen voices)"] = unseen_voice_clips(
                model, unseen_corpus, unseen_exclude, root
            )
        for set_name, set_clips in sets.items():
            scored = score_set(predictors, set_clips, normalizer, seed=seed)
            tables.setdefault(set_name, []).append(scored.assign(set=set_name))
    from wav2kp.atomic import write_csv, write_text

    results = {}
    for set_name, frames in tables.items():
        table = pd.concat(frames, ignore_index=True)
        unseen = set_name != f"{corpus} test"
        unit = "clip_id" if unseen else "sentence_id"
        targets = pd.concat([
            target_table(table, model, UNSEEN_TARGETS if unseen else SAME_VOICE_TARGETS, unit)
            for model in ("model", "model+gate")
        ], ignore_index=True)  # fmt: skip
        results[set_name] = (table, targets, unit)
    table = pd.concat([t for t, _, _ in results.values()], ignore_index=True)
    targets = pd.concat([t.assign(set=name) for name, (_, t, _) in results.items()],
                        ignore_index=True)  # fmt: skip
    write_csv(out_dir / "final_clips.csv", table)
    write_csv(out_dir / "final_targets.csv", targets)
    write_text(out_dir / "final_table.md", summary_markdown(results) + "\n")
    return table, targets


def final_table(clips_csv: str | Path, corpus: str) -> str:
    """``final_table.md`` regenerated from a ``final_clips.csv``."""
    table = pd.read_csv(clips_csv, dtype={"clip_id": str, "sentence_id": str})
    table["error"] = table["error"].fillna("")
    results = {}
    for set_name, group in table.groupby("set", sort=False):
        unseen = set_name != f"{corpus} test"
        unit = "clip_id" if unseen else "sentence_id"
        targets = pd.concat([
            target_table(group, model, UNSEEN_TARGETS if unseen else SAME_VOICE_TARGETS, unit)
            for model in ("model", "model+gate")
        ], ignore_index=True)  # fmt: skip
        results[set_name] = (group, targets, unit)
    return summary_markdown(results)


# ---------- command line: the committed experiments ----------

# The levers of issue 10, each a variant of the default model on log-mel features.
AUGMENT = {"copies": 2}
LEVERS: dict[str, dict] = {
    "logmel (default)": {},
    "cmvn mean 3 s": {"features": {"cmvn": "mean"}},
    "cmvn meanvar 3 s": {"features": {"cmvn": "meanvar"}},
    "floor 60 dB + cmvn mean": {"features": {"floor_db": 60.0, "cmvn": "mean"}},
    "augment x2": {"train": {"augment": AUGMENT}},
    "augment x2 + cmvn mean": {"features": {"cmvn": "mean"}, "train": {"augment": AUGMENT}},
    "A/V lag correction": {"av_correction": True},
    # the out-of-box real-speech model (make model-grid): log-mel won no lever in the CV,
    # and the checkpoint carries the silence gate (load_predictor applies it)
    "logmel + silence gate": {"train": {"silence_gate": True}},
}


def resolved_variant(name: str, epochs: int | None = None) -> dict:
    """A lever of ``LEVERS``; with augmentation copies, the epochs are divided by
    (1 + copies) so that the model takes the same number of steps as without them."""
    variant = dict(LEVERS[name])
    train = dict(variant.get("train", {}))
    copies = train.get("augment", {}).get("copies", 0)
    if copies and "epochs" not in train:
        from wav2kp.train import TrainConfig

        base = epochs if epochs is not None else TrainConfig.preset("default").epochs
        train["epochs"] = max(1, round(base / (1 + copies)))
    variant["train"] = train
    return variant


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wav2kp.robustness cv --corpus grid ...``: the lever cross-validation."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m wav2kp.robustness", description=main.__doc__)
    parser.add_argument(
        "command", choices=["cv", "cv-table", "vad", "final", "final-table", "lags"]
    )
    parser.add_argument("--corpus", default="grid")
    parser.add_argument("--align-dir", default=None, help="GRID align/ folder (speech truth)")
    parser.add_argument("--proxy", action="append", default=[], help="proxy corpus (unseen voices)")
    parser.add_argument("--variant", action="append", default=None, help="names from LEVERS")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=None, help="default data/models/<corpus>/cv")
    parser.add_argument("--conditions", choices=["held-out", "none"], default="held-out",
                        help="also score val heard through HELD_OUT_CONDITIONS")  # fmt: skip
    parser.add_argument("--unseen", default="realclips", help="corpus of unseen voices")
    parser.add_argument("--unseen-exclude", default=r"^grid_s1", help="regex of clip ids")
    args = parser.parse_args(argv)
    import torch

    from wav2kp.splits import ensure_split

    # small tensors: one thread is as fast, and many threads on a busy machine are far slower
    torch.set_num_threads(1)

    if args.command == "cv-table":  # every cv_clips.csv under the corpus' cv folder
        root = Path(args.out) if args.out else CorpusPaths(args.corpus).models / "cv"
        tables = [pd.read_csv(path) for path in sorted(root.rglob("cv_clips.csv"))]
        if not tables:
            parser.error(f"no cv_clips.csv under {root}; run the cv command first")
        print(cv_markdown(pd.concat(tables, ignore_index=True)))
        return 0
    if args.command == "final-table":  # the markdown again from a run's final_clips.csv
        if not args.out:
            parser.error("final-table needs --out (the final run's folder)")
        print(final_table(Path(args.out) / "final_clips.csv", args.corpus))
        return 0
    if args.command == "lags":
        import numpy as np

        from wav2kp.sync import corpus_av_lags

        for max_lag in (300.0, CORRECTION_MAX_LAG_MS):
            lags = corpus_av_lags(args.corpus, max_lag_ms=max_lag)
            quartiles = np.percentile(lags["lag_ms"].dropna(), [25, 50, 75])
            print(f"search +-{max_lag:g} ms: lag quartiles {quartiles.round(1).tolist()} ms, "
                  f"{int(lags['weak'].sum())} weak, {int(lags['outlier'].sum())} implausible")  # fmt: skip
        flagged = lags[lags["outlier"] | lags["weak"]]
        print(
            flagged[["clip_id", "lag_ms", "correlation", "weak", "outlier"]].to_string(index=False)
        )
        return 0
    if args.command == "final":
        if not args.variant or len(args.variant) != 1 or args.variant[0] not in LEVERS:
            parser.error(f"final needs one --variant of {list(LEVERS)}")
        ensure_split(args.corpus)
        out = (
            Path(args.out)
            if args.out
            else CorpusPaths(args.corpus).models / "final" / _slug(args.variant[0])
        )
        variant = resolved_variant(args.variant[0], args.epochs)
        run_final(args.corpus, variant, out, args.seeds, args.align_dir, args.unseen or None,
                  args.unseen_exclude)  # fmt: skip
        print((out / "final_table.md").read_text())
        print(f"tables: {out / 'final_table.md'}")
        return 0

    ensure_split(args.corpus)
    sources = load_sources(args.corpus, ("train", "val"), args.align_dir)
    pd.set_option("display.width", 200)
    if args.command == "vad":
        import itertools

        from wav2kp.vad import VadConfig

        grid = itertools.product([20.0, 25.0, 30.0], [0.0, 0.04, 0.08], [0.0, 0.04, 0.08],
                                 [0.04, 0.08])  # fmt: skip
        configs = [VadConfig(threshold_db=t, pre_roll_s=a, post_roll_s=b, ramp_s=r)
                   for t, a, b, r in grid]  # fmt: skip
        sweep = gate_sweep(sources, configs).sort_values("silent_open")
        print(sweep.round(4).to_string(index=False))
        return 0
    proxies = {name: load_sources(name) for name in args.proxy}
    names = args.variant or list(LEVERS)
    unknown = sorted(set(names) - set(LEVERS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {list(LEVERS)}")
    shifts = {}
    if any(LEVERS[n].get("av_correction") for n in names):
        shifts, lags = corpus_lag_shifts(args.corpus, [s.clip_id for s in sources])
        print("implausible A/V lags:", lags.loc[lags["outlier"], ["clip_id", "lag_ms"]].to_string())
    budget = {} if args.epochs is None else {"epochs": args.epochs}
    variants = {n: resolved_variant(n, args.epochs) for n in names}
    out = Path(args.out) if args.out else CorpusPaths(args.corpus).models / "cv"
    conditions = None if args.conditions == "held-out" else {}
    table = run_cv(sources, variants, out, args.folds, args.seeds, budget, proxies, shifts,
                   conditions=conditions)  # fmt: skip
    summary = summarise_cv(table[table["variant"].isin(names)])
    print(summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
