"""Unseen voices (issue 10), the study: the proxies the robustness levers are judged on, the
lever study's definition, and the check of a trained model on other people's real speech.
Its pages are ``wav2kp.studies.pages``, its command line ``python -m wav2kp.studies``.

The levers are cross-validated by ``wav2kp cv --study levers`` (``wav2kp.studies.cv``: variants
= ``TrainConfig`` overrides, folds of whole sentences over the train + val sentences,
never the test sentences or an evaluation voice). Each task's model is also scored on
*proxies* for voices it never heard, none of them an evaluation voice (``proxy_sets``):
the synthetic demo voices (another language, other faces: ``demo-tiny``) and the fold's
held-out sentences heard through fixed recording conditions the training never drew
(``HELD_OUT_CONDITIONS``); and under *views*, the inference-time levers (silence gate,
motion calibration).

``evaluate_final`` scores the chosen model (every training seed ``wav2kp train`` wrote)
on the corpus's test sentences and on real voices it never heard (``UNSEEN_CORPORA``: GRID
speaker 2, the realclips videos; each set alone and pooled), each video against its own
measured mouth, with the issue-9 protocol (bootstrap
intervals, verdicts only on the interval's far end, "too few to judge" below the size
``wav2kp.evaluation.bootstrap`` states), against the targets of
``wav2kp.evaluation.results.TARGETS``. ``gate_sweep`` tunes the silence gate against GRID's word
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
from wav2kp.evaluation.results import TARGETS, target_checks
from wav2kp.extraction.reader import read_extraction
from wav2kp.features.features import FeatureStats, compute_features
from wav2kp.media.audio import SAMPLE_RATE
from wav2kp.paths import CorpusPaths
from wav2kp.windowing.dataset import ClipData, make_clip
from wav2kp.windowing.targets import TargetNormalizer


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
    text: str = ""  # the manifest's transcript, if any (bilabial closures)


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
            text=_text(row, "text"),
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
        clip.extra.update(samples=s.samples, sample_rate=SAMPLE_RATE, text=s.text)
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


def gate_sweep(sources: Sequence[ClipSource], configs: Sequence) -> pd.DataFrame:
    """Per ``VadConfig``: share of truly silent frames where the gate lets the mouth move
    (weight > 0.05) and share of speech frames where it holds the mouth (weight < 0.95),
    over sources with speech truth (silero's probability computed once per source)."""
    from wav2kp.features.voice import speech_probability
    from wav2kp.training.vad import activity_from_probability, silence_weights

    truthful = [s for s in sources if s.speech is not None]
    probability = {s.clip_id: speech_probability(s.samples, SAMPLE_RATE, s.times)
                   for s in truthful}  # fmt: skip
    rows = []
    for config in configs:
        silent, speech = [], []
        for s in truthful:
            period = metrics.frame_period(s.times)
            active = activity_from_probability(probability[s.clip_id], s.times, config)
            weights = silence_weights(active, period, config.ramp_s)
            silent.append(weights[~s.speech])
            speech.append(weights[s.speech])
        silent_w, speech_w = np.concatenate(silent), np.concatenate(speech)
        rows.append({**config.to_dict(), "silent_open": float((silent_w > 0.05).mean()),
                     "speech_held": float((speech_w < 0.95).mean())})  # fmt: skip
    return pd.DataFrame(rows)


# ---------- the chosen model: several seeds, held-out sentences and unseen voices ----------


BASELINE_NAMES = ("mean_face", "loudness")  # scored beside the model, not judged


def score_set(predictors: Sequence, clips: Sequence[ClipData], normalizer, **meta) -> pd.DataFrame:
    """``wav2kp.evaluation.evaluate.score_landmarks`` of every predictor on every clip (against the
    clip's own landmarks, both spaces, the normaliser's template; bilabial closures where
    the clip has a transcript), plus each model's ``silent_open_share`` where the clip has
    speech truth."""
    from wav2kp.evaluation.evaluate import score_landmarks
    from wav2kp.evaluation.phones import clip_phones
    from wav2kp.training.vad import clip_silence_share

    frames = []
    for clip in clips:
        predictions = {
            p.name: np.asarray(p.predict_landmarks(clip), np.float64) for p in predictors
        }
        table = score_landmarks(
            predictions, clip.landmarks, clip.frame_times, clip.valid,
            template=normalizer.template, clip_id=clip.clip_id, speaker=clip.speaker,
            emotion=clip.emotion, sentence_id=clip.sentence_id, split=clip.split,
            phones=clip_phones(clip), **meta,
        )  # fmt: skip
        share = {
            name: clip_silence_share(clip, pred, normalizer) for name, pred in predictions.items()
        }  # fmt: skip
        table["silent_open_share"] = table["model"].map(share)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


# Corpora of voices the final model never heard (``evaluate_final``, ``python -m
# wav2kp.studies final --unseen ...``): GRID speaker 2 (``wav2kp extract ../shared/grid-s2
# --corpus grid-s2``) and the realclips videos that are not GRID speaker 1.
UNSEEN_CORPORA = ("grid-s2", "realclips")
UNSEEN_EXCLUDE = r"^grid_s1"  # realclips' copy of a GRID speaker 1 sentence
UNSEEN_SUFFIX = " (unseen voices)"  # a set's name: "<corpus> (unseen voices)"
POOLED_PREFIX = "unseen voices pooled"  # every unseen set's videos as one set
UNKNOWN_SPEAKERS = ("", "unknown")  # manifests without a speaker column say nothing


def check_unseen(
    corpus: str, sources: Sequence[ClipSource], training: Sequence[ClipData], trained_on: str
) -> None:
    """Refuse an unseen-voice corpus that shares a clip id or a speaker with the corpus the
    model was trained on (``training``: its clips, every split): its voices would not be
    unseen."""
    ids = {c.clip_id for c in training}
    speakers = {c.speaker for c in training} - set(UNKNOWN_SPEAKERS)
    shared_ids = sorted({s.clip_id for s in sources} & ids)
    shared_speakers = sorted({s.speaker for s in sources} & speakers)
    if shared_ids or shared_speakers:
        what = []
        if shared_ids:
            what.append(f"{len(shared_ids)} clip id(s) ({', '.join(shared_ids[:3])}"
                        f"{', ...' if len(shared_ids) > 3 else ''})")  # fmt: skip
        if shared_speakers:
            what.append(f"speaker(s) {', '.join(shared_speakers)}")
        raise ValueError(
            f"unseen corpus {corpus!r} shares {' and '.join(what)} with the training corpus "
            f"{trained_on!r}: its voices are not unseen; evaluate on another corpus, or leave "
            "those clips out with --unseen-exclude"
        )


def unseen_voice_clips(
    predictor,
    corpus: str = "realclips",
    exclude: str | None = UNSEEN_EXCLUDE,
    root=None,
    training: Sequence[ClipData] = (),
    trained_on: str = "",
) -> list[ClipData]:
    """``ClipData`` of another corpus' clips (other people, never trained on) with the
    predictor's own feature config, stats, window and normaliser; each clip keeps its own
    measured landmarks and pose, so a prediction is scored against that video's mouth.
    ``exclude``: a regex on clip ids to leave out (the trained speaker's own clips);
    ``training``: the clips of the corpus ``trained_on`` (:func:`check_unseen`)."""
    import re

    stats = FeatureStats.from_dict(_plain_state(predictor.context["feature_stats"]))
    normalizer = predictor.normalizer
    sources = [
        s for s in load_sources(corpus, root=root, progress=False)
        if not (exclude and re.search(exclude, s.clip_id))
    ]  # fmt: skip
    check_unseen(corpus, sources, training, trained_on)
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
            extra={**{k: v for k, v in clip.extra.items()
                      if k not in ("feature_config", "feature_stats")},
                   # phones are where they were said: aligned on the clean recording
                   "alignment_audio": clip.extra.get("alignment_audio") or clip.audio_path},
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
# every variant's model (``wav2kp.training.inference.VIEWS``). Variants that add training clips keep the
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


# issue 17's levers (``wav2kp cv --study mouth``): what the mouth hears (a phonetic stream
# beside log-mel), how it moves (losses on the inner-lip gap), and what it learns in
# silence; each alone and all together, over k folds of GRID's train + val sentences
MOUTH_EPOCHS = 20  # the screening budget: half the preset's 40, as the fast ablation's
PHONES = {"features": {"kind": "logmel", "phones": "allphone"}}
FULL_MOTION = {"opening_weight": 1.0, "spread_weight": 1.0}
GENTLE_MOTION = {"opening_weight": 0.3, "spread_weight": 0.3}
# every variant on the bare default, whatever the profile adds; the gate is a variant too
# (the baseline's training, gated at inference), so every row is scored the same way
_BARE = {"augment": {}, "silence_gate": False}
MOUTH_LEVERS: dict[str, dict] = {
    "log-mel (default)": _BARE,
    "phonetic stream": {**_BARE, **PHONES},
    "full-motion losses": {**_BARE, **FULL_MOTION},
    "silence gate": {**_BARE, "silence_gate": True},
    "silence targets": {**_BARE, "silence_targets": True},
    "phonetic stream + full motion": {**_BARE, **PHONES, **FULL_MOTION},
    "phonetic stream + gate": {**_BARE, **PHONES, "silence_gate": True},
    "phonetic stream + full motion (0.3)": {**_BARE, **PHONES, **GENTLE_MOTION},
    "phonetic stream + full motion + gate": {
        **_BARE,
        **PHONES,
        **FULL_MOTION,
        "silence_gate": True,
    },
    "all three": {**_BARE, **PHONES, **FULL_MOTION, "silence_targets": True},
    # the levers the rule keeps, together (docs/results/grid-mouth-cv.md's decision table)
    "phonetic stream + silence targets + gate": {
        **_BARE,
        **PHONES,
        "silence_targets": True,
        "silence_gate": True,
    },
}
MOUTH_FOLDS = 3


def mouth_study() -> dict:
    """``wav2kp.studies.cv.study("mouth")``: the keyword arguments of ``run_cv``."""
    return dict(variants=MOUTH_LEVERS, folds=MOUTH_FOLDS, seeds=(0, 1, 2),
                budget={"epochs": MOUTH_EPOCHS}, views=(), proxies=LEVER_PROXIES)  # fmt: skip


def lever_study() -> dict:
    """``wav2kp.studies.cv.study("levers")``: the keyword arguments of ``run_cv``."""
    # one fold (train -> val) and one seed: a screening on a shared 2-core machine;
    # ``--folds 3 --seeds 0,1,2`` gives the full cross-validation
    return dict(variants=LEVERS, folds="val", seeds=(0,), budget={"epochs": LEVER_EPOCHS},
                views=LEVER_VIEWS, proxies=LEVER_PROXIES)  # fmt: skip


# ---------- the chosen model: GRID test sentences and unseen voices ----------


def evaluate_final(
    corpus: str,
    model: str = "default",
    align_dir=None,
    unseen_corpora: Sequence[str] | str | None = UNSEEN_CORPORA,
    unseen_exclude: str | None = UNSEEN_EXCLUDE,
    views: Sequence[str] = ("gate", "calibrated", "calibrated+gate"),
    progress: bool = True,
    root=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every training seed of a trained model (``data/models/<corpus>/<model>/``,
    as ``wav2kp train`` writes it), each under ``views``, and the baselines on the
    corpus's test sentences and on each corpus of ``unseen_corpora`` (each video against
    its own mouth; a corpus sharing a clip or a speaker with ``corpus`` is refused:
    :func:`check_unseen`); returns (clip table, target table: ``final_targets``, which
    also pools the unseen sets). ``wav2kp.studies.pages.final_tables`` renders them."""
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
    if isinstance(unseen_corpora, str):
        unseen_corpora = [unseen_corpora]
    unseen_corpora = list(dict.fromkeys(c for c in unseen_corpora or () if c))
    frames = []
    for path in paths:
        trained = unwrapped(load_predictor(path, name="model", corpus=corpus, root=root))
        seed = trained.train_config.seed
        predictors = [trained, *[VIEWS[v](trained) for v in views]]
        for predictor, view in zip(predictors[1:], views, strict=True):
            predictor.name = f"model+{view}"
        for name in unseen_corpora:  # the first model's features and normaliser: all share them
            if f"{name}{UNSEEN_SUFFIX}" not in sets:
                sets[f"{name}{UNSEEN_SUFFIX}"] = unseen_voice_clips(
                    trained, name, unseen_exclude, root, [*fitted_on, *data.test], corpus
                )
        for set_name, clips in sets.items():
            scored = score_set([*predictors, *baselines], clips, normalizer, seed=seed)
            frames.append(scored.assign(set=set_name))
    table = pd.concat(frames, ignore_index=True)
    return table, final_targets(table, corpus)[0]


def final_targets(
    table: pd.DataFrame, corpus: str
) -> tuple[pd.DataFrame, dict[str, tuple[pd.DataFrame, pd.DataFrame, str]]]:
    """The target table of ``evaluate_final``'s clip table (every judged model of every
    set against ``wav2kp.evaluation.results.TARGETS``: ``same_voice`` on the corpus's test
    sentences, ``unseen_voices`` on the other voices, units = videos) and per set (its
    clip table, its target rows, its unit). Several unseen sets are also judged as one,
    ``pooled_set_name``, their clip ids prefixed with their corpus."""
    table = table.copy()
    table["error"] = table["error"].fillna("")
    groups = dict(list(table.groupby("set", sort=False)))
    unseen_sets = [name for name in groups if name != f"{corpus} test"]
    if len(unseen_sets) > 1:  # their videos as one set (ids prefixed: corpora may share them)
        groups[pooled_set_name(unseen_sets)] = pd.concat([
            groups[name].assign(clip_id=unseen_corpus_name(name) + "/" + groups[name]["clip_id"])
            for name in unseen_sets
        ], ignore_index=True)  # fmt: skip
    sets, targets = {}, []
    for set_name, group in groups.items():
        unseen = set_name != f"{corpus} test"
        unit = "clip_id" if unseen else "sentence_id"
        kind = "unseen_voices" if unseen else "same_voice"
        chosen = pd.concat([
            target_checks(group, model, "aligned", unit, targets=kind,
                          units_name="videos" if unseen else "")
            for model in dict.fromkeys(group["model"]) if model not in BASELINE_NAMES
        ], ignore_index=True)  # fmt: skip
        # a target the table predates (its metric is not a column) is not judged
        judged = {name for name, metric, _, _ in TARGETS[kind] if metric in group}
        chosen = chosen[chosen["target"].isin(judged)].reset_index(drop=True)
        sets[set_name] = (group, chosen, unit)
        targets.append(chosen.assign(set=set_name))
    return pd.concat(targets, ignore_index=True), sets


def unseen_corpus_name(set_name: str) -> str:
    """The corpus of an unseen-voice set ("grid-s2 (unseen voices)" -> "grid-s2")."""
    return set_name[: -len(UNSEEN_SUFFIX)] if set_name.endswith(UNSEEN_SUFFIX) else set_name


def pooled_set_name(unseen_sets: Sequence[str]) -> str:
    return f"{POOLED_PREFIX} ({' + '.join(unseen_corpus_name(n) for n in unseen_sets)})"


# ---------- the mouth study's summary and decisions (``wav2kp.studies.pages.mouth_page``) ----------

MOUTH_BASELINE = "log-mel (default)"  # every lever is paired against it on fold and seed
SAME_VOICE = "heldout"  # the set of each fold's held-out sentences (the task's main columns)
POOLED_PROXIES = "proxies pooled"  # per run, the mean over the unseen-voice proxy sets
SAME_VOICE_COST = 0.01  # issue 17: a lever may cost the same voice at most this much r
DELTA_R = "delta_r"  # a run's mouth-opening r minus the baseline's on the same fold and seed
MOUTH_MEASURES = ("mouth_open_r", "variance_ratio", "syllable_band_ratio", "mouth_jitter_ratio",
                  "silent_open_share", "bilabial_closure_rate",
                  "true_bilabial_closure_rate")  # fmt: skip
# the variants that decide what the mouth does in silence (an inference gate, trained targets)
SILENCE_OPTIONS = tuple(
    name for name, overrides in MOUTH_LEVERS.items()
    if overrides.get("silence_gate") or overrides.get("silence_targets")
)  # fmt: skip


def study_runs(table: pd.DataFrame, proxies: Sequence[str] = LEVER_PROXIES) -> pd.DataFrame:
    """One row per successful run (variant, fold, seed) and set of a ``wav2kp cv`` task
    table: ``SAME_VOICE`` (the main columns), each proxy of ``proxies`` it scored, and
    ``POOLED_PROXIES`` (per run, the mean of each measure over those proxies that measure
    it); columns ``MOUTH_MEASURES`` (NaN where the table lacks one)."""
    ok = table[table["error"].fillna("") == ""]
    keys = ["variant", "fold", "seed"]
    present = [p for p in proxies if f"{p}:mouth_open_r" in ok.columns]
    frames = []
    for set_name in [SAME_VOICE, *present]:
        prefix = "" if set_name == SAME_VOICE else f"{set_name}:"
        frame = ok[keys].copy()
        for metric in MOUTH_MEASURES:
            column = f"{prefix}{metric}"
            frame[metric] = ok[column].astype(float) if column in ok.columns else np.nan
        frames.append(frame.assign(set=set_name))
    if present:
        proxy_rows = pd.concat(frames[1:], ignore_index=True)
        pooled = proxy_rows.groupby(keys, sort=False)[list(MOUTH_MEASURES)].mean()
        frames.append(pooled.reset_index().assign(set=POOLED_PROXIES))
    runs = pd.concat(frames, ignore_index=True)
    return runs[["set", *keys, *MOUTH_MEASURES]]


def study_summary(
    table: pd.DataFrame, baseline: str = MOUTH_BASELINE, proxies: Sequence[str] = LEVER_PROXIES
) -> pd.DataFrame:
    """Per set, variant and measure (``MOUTH_MEASURES`` and ``DELTA_R``, the paired
    difference from ``baseline`` on the same fold and seed): mean, sd (NaN below 2 runs)
    and the number of runs (``study_runs``; sets, variants in the table's order)."""
    runs = study_runs(table, proxies)
    keys = ["set", "fold", "seed"]
    base = runs[runs["variant"] == baseline].set_index(keys)["mouth_open_r"]
    paired = base.reindex(pd.MultiIndex.from_frame(runs[keys])).to_numpy()
    runs[DELTA_R] = np.where(runs["variant"] == baseline, np.nan,
                             runs["mouth_open_r"].to_numpy() - paired)  # fmt: skip
    long = runs.melt(id_vars=["set", "variant"], value_vars=[*MOUTH_MEASURES, DELTA_R],
                     var_name="metric").dropna(subset=["value"])  # fmt: skip
    grouped = long.groupby(["set", "variant", "metric"], sort=False)["value"]
    return grouped.agg(mean="mean", sd="std", runs="size").reset_index()


def lever_verdicts(
    summary: pd.DataFrame,
    baseline: str = MOUTH_BASELINE,
    cost: float = SAME_VOICE_COST,
    variants: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Issue 17's rule for every variant but ``baseline`` (``study_summary``'s table): a
    lever is ``on`` only when it helps unseen voices (its mean paired Δ r over the pooled
    proxies is above 0) without costing the same voice more than ``cost`` r (its mean
    paired Δ r on the held-out sentences is at least ``-cost``); otherwise ``off``, with
    the reason. ``variants``: those to judge (default: the summary's; one without
    successful runs is ``off``, not measured)."""
    deltas = summary[summary["metric"] == DELTA_R].set_index(["set", "variant"])
    rows = []
    for variant in dict.fromkeys(summary["variant"] if variants is None else variants):
        if variant == baseline:
            continue
        row = {"variant": variant}
        for name, set_name in (("unseen", POOLED_PROXIES), ("same", SAME_VOICE)):
            found = (set_name, variant) in deltas.index
            cell = deltas.loc[(set_name, variant)] if found else None
            row[f"{name}_delta"] = float(cell["mean"]) if found else np.nan
            row[f"{name}_sd"] = float(cell["sd"]) if found else np.nan
            row[f"{name}_runs"] = int(cell["runs"]) if found else 0
        helps = bool(row["unseen_delta"] > 0)
        # rounding must not turn a difference of exactly -cost into a cost above it
        cheap = bool(row["same_delta"] >= -cost - 1e-9)
        if not (np.isfinite(row["unseen_delta"]) and np.isfinite(row["same_delta"])):
            why = "not measured (no successful paired run)"
        elif helps and cheap:
            why = f"helps unseen voices at a same-voice cost within {cost:g} r"
        else:
            why = "; ".join(
                ([] if helps else ["does not help unseen voices"])
                + ([] if cheap else [f"costs the same voice more than {cost:g} r"])
            )
        rows.append({**row, "helps_unseen": helps, "same_voice_ok": cheap,
                     "verdict": "on" if helps and cheap else "off", "why": why})  # fmt: skip
    return pd.DataFrame(rows)


def silence_verdicts(
    summary: pd.DataFrame, options: Sequence[str] = SILENCE_OPTIONS, limit: float | None = None
) -> tuple[pd.DataFrame, str]:
    """Which silence option keeps the mouth closed in silence (share of silent frames
    with the mouth open <= ``limit``, the same-voice target of ``TARGETS``) on the same
    voice, and where it was measured: the held-out sentences, or, in a table that did not
    score their silence, the same sentences heard through ``HELD_OUT_CONDITIONS`` (mean
    over those sets). Returns (one row per option in the table: variant, share, meets;
    the place measured, in words)."""
    if limit is None:
        limit = next(t.high for _, m, t, _ in TARGETS["same_voice"] if m == "silent_open_share")
    shares = summary[summary["metric"] == "silent_open_share"]
    where = "the held-out sentences"
    chosen = shares[shares["set"] == SAME_VOICE]
    if chosen.empty:
        chosen = shares[shares["set"].isin(list(HELD_OUT_CONDITIONS))]
        where = ("the held-out sentences heard through "
                 + ", ".join(s for s in HELD_OUT_CONDITIONS if s in set(chosen["set"]))
                 + " (mean over those sets; the clean sentences' silence was not scored)")  # fmt: skip
    means = chosen.groupby("variant", sort=False)["mean"].mean()
    rows = [{"variant": v, "share": float(means[v]), "meets": bool(means[v] <= limit)}
            for v in options if v in means.index]  # fmt: skip
    return pd.DataFrame(rows, columns=["variant", "share", "meets"]), where
