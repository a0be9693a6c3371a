"""Unseen voices (issue 10): the proxies the robustness levers are judged on, the lever
study's definition and table, and the check of a trained model on other people's real
speech.

The levers are cross-validated by ``wav2kp cv --study levers`` (``wav2kp.studies.cv``: variants
= ``TrainConfig`` overrides, folds of whole sentences over the train + val sentences,
never the test sentences or an evaluation voice). Each task's model is also scored on
*proxies* for voices it never heard, none of them an evaluation voice (``proxy_sets``):
the synthetic demo voices (another language, other faces: ``demo-tiny``) and the fold's
held-out sentences heard through fixed recording conditions the training never drew
(``HELD_OUT_CONDITIONS``); and under *views*, the inference-time levers (silence gate,
motion calibration). ``lever_table`` renders the committed task table.

``evaluate_final`` scores the chosen model (every training seed ``wav2kp train`` wrote)
on the corpus's test sentences and on the unseen real voices of ``../shared/realclips``,
each video against its own measured mouth, with the issue-9 protocol (bootstrap
intervals, verdicts only on the interval's far end, "too few to judge" below the size
``wav2kp.evaluation.bootstrap`` states). ``gate_sweep`` tunes the silence gate against GRID's word
alignments; ``python -m wav2kp.studies lags`` lists implausible A/V lags.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp import metrics
from wav2kp.config import FeatureConfig, WindowConfig
from wav2kp.extraction.reader import read_extraction
from wav2kp.features.features import FeatureStats, compute_features
from wav2kp.paths import CorpusPaths
from wav2kp.windowing.dataset import ClipData, make_clip
from wav2kp.windowing.targets import TargetNormalizer

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

    from wav2kp.features.splits import ok_clips
    from wav2kp.media.audio import load_audio
    from wav2kp.training.vad import read_grid_align, speech_from_words

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


# ---------- proxies: voices the model never heard, none of them an evaluation voice ----------


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
    from wav2kp.training.augmentation import Perturbation, perturb

    perturbation = Perturbation(**condition)
    out = []
    for i, s in enumerate(sources):
        rng = np.random.default_rng([seed, i])
        out.append(dataclasses.replace(
            s, samples=perturb(s.samples, perturbation, rng), times=s.times / perturbation.speed,
            clip_id=f"{s.clip_id}~{'+'.join(sorted(condition))}",
        ))  # fmt: skip
    return out


def gate_sweep(sources: Sequence[ClipSource], configs: Sequence) -> pd.DataFrame:
    """Per ``VadConfig``: share of truly silent frames where the gate lets the mouth move
    (weight > 0.05) and share of speech frames where it holds the mouth (weight < 0.95),
    over sources with speech truth."""
    from wav2kp.training.vad import silence_weights, voice_activity

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


BASELINE_NAMES = ("mean_face", "loudness")  # scored beside the model, not judged

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
    """``wav2kp.evaluation.evaluate.score_landmarks`` of every predictor on every clip (against the
    clip's own landmarks, both spaces, the normaliser's template), plus each model's
    ``silent_open_share`` where the clip has speech truth."""
    from wav2kp.evaluation.evaluate import score_landmarks
    from wav2kp.training.vad import clip_silence_share

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
        }  # fmt: skip
        table["silent_open_share"] = table["model"].map(share)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def target_table(
    table: pd.DataFrame, model: str, targets, unit: str, space: str = "aligned"
) -> pd.DataFrame:
    """One row per target: the model's estimate (mean over units of seed-averaged clip
    scores), its 95 % bootstrap interval over units, and ``wav2kp.evaluation.bootstrap.verdict``."""
    from wav2kp.evaluation import bootstrap

    ok = table[(table["space"] == space) & (table["error"].fillna("") == "")]
    columns = sorted({metric for _, metric, _, _ in targets})
    scores = ok.groupby(["model", "clip_id"])[columns].mean()
    units = ok.groupby(["model", "clip_id"])[unit].first()
    frames = ok.groupby(["model", "clip_id"])["n_frames_scored"].max()
    rows = []
    unit_name = "videos" if unit == "clip_id" else ""  # an unseen voice is one video
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
                     "n_frames": n_frames, "verdict": bootstrap.verdict(target, interval, n_frames, unit_name)})  # fmt: skip
    return pd.DataFrame(rows)


def summary_markdown(sets: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, str]]) -> str:
    """Markdown: per set, every model's metrics as mean [95 % interval] (pose-normalised
    space), then the chosen model's target verdicts."""
    from wav2kp.evaluation.results import summarise

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


def condition_clips(clips: Sequence[ClipData], name: str, condition: Mapping, root=None):
    """The clips heard in one fixed recording condition (``HELD_OUT_CONDITIONS``): their
    audio perturbed once (written to ``interim/<corpus>/conditions/<name>/``, reused
    afterwards), keypoints unchanged; ids ``<clip>~<name>``, same sentence ids (a fold
    never scores the sentences it trained on)."""
    from wav2kp.media.audio import load_audio, write_wav
    from wav2kp.training.augmentation import Perturbation, perturb

    perturbation = Perturbation(**condition)
    if perturbation.speed != 1.0:
        raise ValueError(f"condition {name!r}: a speed change would move the keypoint times")
    out = []
    for i, clip in enumerate(clips):
        if clip.audio_path is None:
            continue
        target = Path(clip.audio_path).parent.parent / "conditions" / name / f"{clip.clip_id}.wav"
        if not target.is_file():
            samples, _ = load_audio(clip.audio_path, sample_rate=SAMPLE_RATE)
            rng = np.random.default_rng([i, len(name)])
            write_wav(target, perturb(samples, perturbation, rng), SAMPLE_RATE)
        out.append(dataclasses.replace(
            clip, clip_id=f"{clip.clip_id}~{name}", audio_path=target,
            extra={k: v for k, v in clip.extra.items() if k not in ("feature_config", "feature_stats")},
        ))  # fmt: skip
    return out


def corpus_clips(corpus: str, normalizer, stats, window, root=None) -> list[ClipData]:
    """Every ``ok`` clip of another extracted corpus (no split needed), each with its own
    landmarks and pose, features normalised with ``stats``."""
    sources = load_sources(corpus, root=root, progress=False)
    return build_clips(sources, raw_features(sources, stats.feature_config), stats, normalizer,
                       window)  # fmt: skip


def proxy_sets(
    data, names: Sequence[str], align_dir=None, root=None, folds: int | str = 2
) -> dict[str, list[ClipData]]:
    """Named proxy clip sets for ``wav2kp.studies.cv`` (``data``: ``CorpusData``): a name of
    ``HELD_OUT_CONDITIONS`` gives the clips that ``folds`` holds out (``"val"``: the val
    clips; k folds: train + val clips) heard in that condition (a fold scores only its
    held-out sentences); any other name is an extracted corpus (e.g. the synthetic demo
    voices ``demo-tiny``). With ``align_dir`` the clips carry GRID's speech truth (the
    silence measure)."""
    from wav2kp.config import WindowConfig
    from wav2kp.features.features import FeatureStats
    from wav2kp.training.vad import attach_speech_truth
    from wav2kp.windowing.targets import TargetNormalizer

    clips = list(data.val) if folds == "val" else [*data.train, *data.val]
    if align_dir is not None:
        attach_speech_truth([*data.train, *data.val], align_dir)
    stats, normalizer = data.context["feature_stats"], data.context["normalizer"]
    stats = FeatureStats.from_dict(stats) if isinstance(stats, dict) else stats
    if isinstance(normalizer, dict):
        normalizer = TargetNormalizer.from_state_dict(normalizer)
    window = WindowConfig.from_dict(clips[0].extra.get("window_config", WindowConfig().to_dict()))
    out = {}
    for name in names:
        if name in HELD_OUT_CONDITIONS:
            out[name] = condition_clips(clips, name, HELD_OUT_CONDITIONS[name], root)
        else:
            out[name] = corpus_clips(name, normalizer, stats, window, root)
    return out


# ---------- the lever study (``wav2kp cv --study levers``) ----------

# Each lever of issue 10 is a variant of the default model (TrainConfig overrides);
# inference-time levers (the silence gate, the motion calibration) are views scored on
# every variant's model (``wav2kp.studies.cv.VIEWS``). Variants that add training clips keep the
# number of optimiser steps: their epochs are divided by (1 + copies).
LEVER_EPOCHS = 12  # the screening budget (the preset's 40 for the chosen model)
LEVERS: dict[str, dict] = {
    "log-mel (default)": {},
    "CMVN mean 3 s": {"features": {"kind": "logmel", "cmvn": "mean"}},
    "waveform augmentation x2": {"augment": {"copies": 2}, "epochs": LEVER_EPOCHS // 3},
    "synthetic voices x2": {"voices": {"copies": 2}, "epochs": LEVER_EPOCHS // 3},
    "synthetic voices x2 + CMVN": {"voices": {"copies": 2}, "epochs": LEVER_EPOCHS // 3,
                                   "features": {"kind": "logmel", "cmvn": "mean"}},
    "A/V lag correction": {"av_correction": True},
}  # fmt: skip
LEVER_VIEWS = ("gate", "calibrated", "calibrated+gate")
LEVER_PROXIES = ("demo-tiny", "val_voice", "val_phone", "val_room")


def lever_study() -> dict:
    """``wav2kp.studies.cv.study("levers")``: the keyword arguments of ``run_cv``."""
    # one fold (train -> val) and one seed: a screening on a shared 2-core machine;
    # ``--folds 3 --seeds 0,1,2`` gives the full cross-validation
    return dict(variants=LEVERS, folds="val", seeds=(0,), budget={"epochs": LEVER_EPOCHS},
                views=LEVER_VIEWS, proxies=LEVER_PROXIES)  # fmt: skip


LEVER_COLUMNS = (("mouth_open_r", "r", 3), ("variance_ratio", "var. ratio", 2),
                 ("jitter_ratio", "jitter", 2), ("av_offset_frames", "lag", 2),
                 ("silent_open_share", "silent open", 3))  # fmt: skip


def lever_table(csv: str | Path, baseline: str = "log-mel (default)") -> str:
    """Markdown of a lever study's task table (``wav2kp cv --out``'s CSV): per set
    (held-out sentences, each proxy) and view, every variant's mean ± sd over its runs
    (folds x seeds), and its difference from ``baseline`` paired on the same fold and
    seed (mean ± sd of the paired differences)."""
    table = pd.read_csv(csv)
    table = table[table["error"].fillna("") == ""].copy()  # one block: columns are added
    for metric, _, _ in LEVER_COLUMNS:  # the main columns are the held-out set as configured
        if metric in table:
            table[f"heldout:{metric}"] = table[metric]
    prefixes = sorted({c.split(":")[0] for c in table.columns if ":" in c and "clips" not in c},
                      key=lambda p: (p.split("+")[0] != "heldout", p))  # fmt: skip
    runs = table.groupby("variant", sort=False).size()
    out = [f"{len(table)} training runs: per variant {runs.max()} (folds x seeds). Cells: mean "
           "± sd over runs; Δ: difference from the baseline on the same fold and seed, mean ± "
           f"sd (baseline: {baseline}).", ""]  # fmt: skip
    base = table[table["variant"] == baseline].set_index(["fold", "seed"])
    for prefix in prefixes:
        columns = [(m, t, d) for m, t, d in LEVER_COLUMNS if f"{prefix}:{m}" in table.columns
                   and table[f"{prefix}:{m}"].notna().any()]  # fmt: skip
        if not columns:
            continue
        set_name, _, view = prefix.partition("+")
        title = {"heldout": "held-out GRID sentences (same voice)"}.get(set_name, set_name)
        out += [f"**{title}**" + (f", model + {view}" if view else ""), ""]
        header = ["variant", *[t for _, t, _ in columns], "Δ r"]
        out += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for variant, group in table.groupby("variant", sort=False):
            cells = [variant]
            for metric, _, digits in columns:
                values = group[f"{prefix}:{metric}"].dropna()
                cells.append("—" if values.empty else
                             f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0:.{digits}f}")  # fmt: skip
            key = f"{prefix}:mouth_open_r"
            mine = group.set_index(["fold", "seed"])[key]
            diff = (mine - base[key].reindex(mine.index)).dropna() if key in base else mine[:0]
            cells.append("—" if variant == baseline or diff.empty else
                         f"{diff.mean():+.3f} ± {diff.std(ddof=1) if len(diff) > 1 else 0:.3f}")  # fmt: skip
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


# ---------- the chosen model: GRID test sentences and unseen voices ----------


def evaluate_final(
    corpus: str,
    model: str = "default",
    align_dir=None,
    unseen_corpus: str | None = "realclips",
    unseen_exclude: str | None = r"^grid_s1",
    views: Sequence[str] = ("gate", "calibrated", "calibrated+gate"),
    progress: bool = True,
    root=None,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Score every training seed of a trained model (``data/models/<corpus>/<model>/``,
    as ``wav2kp train`` writes it), each under ``views``, and the true mean face on the
    corpus's test sentences and on the unseen voices (each video against its own
    mouth); returns (clip table, target table, markdown)."""
    from wav2kp.evaluation.baselines import LoudnessBaseline, MeanFaceBaseline
    from wav2kp.evaluation.evaluate import checkpoint_paths
    from wav2kp.training.inference import VIEWS, load_predictor, unwrapped
    from wav2kp.training.train import load_corpus_for_training
    from wav2kp.training.vad import attach_speech_truth

    data = load_corpus_for_training(corpus, progress=progress, root=root)
    normalizer = data.context["normalizer"]
    if align_dir is not None:
        attach_speech_truth(data.test, align_dir)
    folder = Path(model) if Path(model).is_dir() else CorpusPaths(corpus, root).models / model
    paths = checkpoint_paths(corpus, str(folder))
    if not paths:
        raise FileNotFoundError(
            f"no trained {model!r} model of corpus {corpus!r}: run wav2kp train"
        )
    sets = {f"{corpus} test": data.test}
    # the floors every audio model must clear, fitted on the same train + val sentences:
    # the true mean face (no audio) and the mouth opened by the speech's loudness
    fitted_on = [*data.train, *data.val]
    baselines = [MeanFaceBaseline(normalizer).fit(fitted_on),
                 LoudnessBaseline(normalizer).fit(fitted_on)]  # fmt: skip
    frames = []
    unseen = None
    for path in paths:
        trained = unwrapped(load_predictor(path, name="model", corpus=corpus, root=root))
        seed = trained.train_config.seed
        predictors = [trained, *[VIEWS[v](trained) for v in views]]
        for predictor, view in zip(predictors[1:], views, strict=True):
            predictor.name = f"model+{view}"
        if unseen_corpus and unseen is None:
            unseen = unseen_voice_clips(trained, unseen_corpus, unseen_exclude, root)
            sets[f"{unseen_corpus} (unseen voices)"] = unseen
        for set_name, clips in sets.items():
            scored = score_set([*predictors, *baselines], clips, normalizer, seed=seed)
            frames.append(scored.assign(set=set_name))
    table = pd.concat(frames, ignore_index=True)
    targets, text = final_tables(table, corpus)
    return table, targets, text


def final_tables(table: pd.DataFrame, corpus: str) -> tuple[pd.DataFrame, str]:
    """(target table, markdown) of ``evaluate_final``'s clip table."""
    table = table.copy()
    table["error"] = table["error"].fillna("")
    results, targets = {}, []
    for set_name, group in table.groupby("set", sort=False):
        unseen = set_name != f"{corpus} test"
        unit = "clip_id" if unseen else "sentence_id"
        chosen = pd.concat([
            target_table(group, model, UNSEEN_TARGETS if unseen else SAME_VOICE_TARGETS, unit)
            for model in dict.fromkeys(group["model"]) if model not in BASELINE_NAMES
        ], ignore_index=True)  # fmt: skip
        results[set_name] = (group, chosen, unit)
        targets.append(chosen.assign(set=set_name))
    return pd.concat(targets, ignore_index=True), summary_markdown(results)


# ---------- the committed result pages (docs/results/, regenerated by `make results-docs`) ----------

FINAL_CSV = "results/grid-final.csv"
LEVERS_CSV = "results/grid-levers.csv"
PAGES = {  # page -> (command that prints it, the committed table it reads)
    "docs/results/grid-final.md": ("final-table", FINAL_CSV),
    "docs/results/grid-levers-cv.md": ("levers-table", LEVERS_CSV),
}


def final_page(csv: str | Path = FINAL_CSV, corpus: str = "grid") -> str:
    """docs/results/grid-final.md: the chosen model on the held-out sentences and on the
    unseen voices, from the committed clip table, with the commands that made it."""
    from wav2kp.credits import corpus_credit

    table = pd.read_csv(csv, dtype={"clip_id": str, "sentence_id": str})
    seeds = sorted(int(s) for s in table["seed"].unique())
    return "\n".join([
        "# GRID: the default model on held-out sentences and on voices it never heard",
        "",
        f"Generated by `python -m wav2kp.studies final-table --csv {Path(csv).as_posix()}` "
        "(`make results-docs`) from the committed clip table, which these commands wrote:",
        "",
        "```bash",
        "make report-grid   # extracts ../shared/grid-s1, trains GRID's model (Makefile's "
        f"GRID_MODEL) on seeds {', '.join(map(str, seeds))}",
        "wav2kp extract ../shared/realclips --corpus realclips",
        "python -m wav2kp.studies final --corpus grid --model default "
        f"--align-dir ../shared/grid-s1/align --unseen realclips --csv {Path(csv).as_posix()}",
        "```",
        "",
        "GRID's model: the default with the levers the lever study chose for unseen "
        "voices (two waveform-augmented copies of every training clip, the same "
        "optimiser steps; the silence gate). "
        "Trained on GRID speaker 1's train + val sentences; scored on its held-out test "
        "sentences and on the videos of `../shared/realclips` that are not GRID speaker 1, "
        "each against its own measured mouth. `model` is the network alone; `+gate` rests "
        "the mouth on the closed neutral while the energy VAD hears no speech (what "
        "`predict` uses: the checkpoint's `silence_gate`); `+calibrated` rescales each "
        "utterance's motion to the training spread. The loudness envelope and the true "
        "mean face are fitted on the same train + val sentences. A target is met only "
        "when its whole 95 % interval meets it; below 20 units or 1,000 frames no verdict "
        "is given.",
        "",
        f"{corpus_credit(corpus) or ''}",
        "",
        final_tables(table, corpus)[1].rstrip(),
        "",
    ])  # fmt: skip


def levers_page(csv: str | Path = LEVERS_CSV) -> str:
    """docs/results/grid-levers-cv.md: the unseen-voice lever study, from its committed
    task table, with the command that made it."""
    from wav2kp.credits import GRID

    names = ", ".join(f"`{name}`" for name in LEVERS)
    return "\n".join([
        "# GRID: what each unseen-voice lever buys (cross-validated on train + val only)",
        "",
        f"Generated by `python -m wav2kp.studies levers-table --csv {Path(csv).as_posix()}` "
        "(`make results-docs`) from the committed task table, which this command wrote "
        "(after `make report-grid`):",
        "",
        "```bash",
        "wav2kp voices --corpus grid --align-dir ../shared/grid-s1/align   # builds grid-voices",
        "wav2kp demo --corpus demo-tiny --size tiny && wav2kp extract --corpus demo-tiny",
        "wav2kp cv --corpus grid --study levers --seeds 0,1,2 "
        f"--align-dir ../shared/grid-s1/align --out {Path(csv).with_suffix('').as_posix()}",
        "```",
        "",
        f"Variants of the default model ({names}), each trained on GRID's train "
        f"sentences for the screening budget ({LEVER_EPOCHS} epochs; variants that add "
        "clips keep the number of optimiser steps) and scored on the val sentences "
        "(same voice) and on proxies for voices it never heard: `demo-tiny` (synthetic "
        "voices and faces, each clip against its own mouth) and the val sentences heard "
        "through fixed recording conditions (`val_voice`: pitch +4 semitones and another "
        "EQ; `val_phone`: a telephone band with noise; `val_room`: a reverberant room; "
        "augmentation draws from similar families, so these show invariance to those "
        "changes, not to real new voices). The test sentences and the realclips voices are never seen. Views "
        "(`gate`, `calibrated`) are inference-time levers scored on each variant's model.",
        "",
        f"{GRID}",
        "",
        lever_table(csv).rstrip(),
        "",
    ])  # fmt: skip


def page_text(page: str) -> str:
    """The text of a committed result page (a key of ``PAGES``)."""
    command, csv = PAGES[page]
    return final_page(csv) if command == "final-table" else levers_page(csv)


# ---------- command line ----------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wav2kp.studies COMMAND``: ``final`` (score a trained model on the
    test sentences and unseen voices), ``final-table`` / ``levers-table`` (markdown from
    committed result files; ``pages`` rewrites every page of ``PAGES``), ``vad`` (sweep
    the silence gate against GRID's alignments), ``lags`` (A/V lags: quartiles,
    implausible clips)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m wav2kp.studies", description=main.__doc__)
    parser.add_argument(
        "command", choices=["final", "final-table", "levers-table", "pages", "vad", "lags"]
    )
    parser.add_argument("--corpus", default="grid")
    parser.add_argument(
        "--model", default="default", help="model folder under data/models/<corpus>/"
    )
    parser.add_argument("--align-dir", default=None, help="GRID align/ folder (speech truth)")
    parser.add_argument("--unseen", default="realclips", help="corpus of unseen voices ('' none)")
    parser.add_argument("--unseen-exclude", default=r"^grid_s1", help="regex of clip ids")
    parser.add_argument("--csv", type=Path, help="final: write the clip table here; "
                        "*-table: read it from here")  # fmt: skip
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # small models: one thread is as fast, and kind to a busy machine
    if args.command == "pages":  # every committed page, from its committed table
        from wav2kp.atomic import write_text

        for page in PAGES:
            write_text(page, page_text(page))
            print(f"wrote {page}")
        return 0
    if args.command == "levers-table":
        print(levers_page(args.csv or LEVERS_CSV), end="")
        return 0
    if args.command == "final-table":
        print(final_page(args.csv or FINAL_CSV, args.corpus), end="")
        return 0
    if args.command == "final":
        from wav2kp.atomic import write_csv

        table, _, text = evaluate_final(args.corpus, args.model, args.align_dir,
                                        args.unseen or None, args.unseen_exclude)  # fmt: skip
        if args.csv:
            write_csv(args.csv, table.round(6))
        print(text)
        return 0
    if args.command == "lags":
        from wav2kp.features.sync import CORRECTION_MAX_LAG_MS, corpus_av_lags

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
    # vad
    import itertools

    from wav2kp.features.splits import ensure_split
    from wav2kp.training.vad import VadConfig

    ensure_split(args.corpus)
    sources = load_sources(args.corpus, ("train", "val"), args.align_dir)
    grid = itertools.product([20.0, 25.0, 30.0], [0.0, 0.04, 0.08], [0.0, 0.04, 0.08],
                             [0.04, 0.08])  # fmt: skip
    configs = [VadConfig(threshold_db=t, pre_roll_s=a, post_roll_s=b, ramp_s=r)
               for t, a, b, r in grid]  # fmt: skip
    with pd.option_context("display.width", 200):
        print(
            gate_sweep(sources, configs).sort_values("silent_open").round(4).to_string(index=False)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
