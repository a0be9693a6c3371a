"""The per-clip data every model, baseline and evaluation works on.

``ClipData`` is the contract between windowing/targets (notebook 03) and training,
evaluation and hand-off (04-06). ``load_clips`` builds them from the extraction, feature
and split files; ``clip_from_audio`` builds one from a new speech signal (prediction).

Fitted on the train split only and saved beside the features:
``processed/<corpus>/feature_stats.json`` (``wav2kp.features.features.FeatureStats``) and
``processed/<corpus>/target_normalizer.json`` (``wav2kp.windowing.targets.TargetNormalizer``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from wav2kp.atomic import write_json
from wav2kp.config import FeatureConfig, WindowConfig
from wav2kp.extraction.reader import read_extraction, valid_frames
from wav2kp.features.features import (
    FeatureStats,
    compute_corpus_features,
    compute_features,
    feature_stats_path,
    fit_feature_stats,
    read_features,
)
from wav2kp.features.splits import ensure_split, ok_clips
from wav2kp.paths import CorpusPaths
from wav2kp.windowing.targets import TargetNormalizer, fill_pose
from wav2kp.windowing.windowing import (
    build_windows,
    original_window_starts,
    upsample_linear,
    window_indices,
)


@dataclass
class ClipData:
    clip_id: str
    speaker: str
    emotion: str
    sentence_id: str
    split: str  # "train" | "val" | "test" | "" (unsplit, e.g. prediction)
    frame_times: np.ndarray  # (T,) float64 seconds: real timestamps of the keypoint frames
    landmarks: np.ndarray  # (T, 68, 2) float32 ground-truth pixels, NaN where missing
    valid: np.ndarray  # (T,) bool: detected or interpolated (usable as a target)
    frame_size: tuple[int, int]  # (width, height) of the source video
    audio_path: Path | None  # 16 kHz mono wav
    features: np.ndarray  # (F, D) float32 normalised audio features
    feature_times: np.ndarray  # (F,) float64 centre time of each feature frame
    windows: np.ndarray  # (T, C, D) float32 audio context of each keypoint frame
    targets: np.ndarray  # (T, K) float32 normalised targets; NaN rows where not valid
    pose: np.ndarray  # (T, 4) float32 similarity [scale, angle_rad, tx, ty]: aligned -> pixels
    extra: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frame_times)

    @property
    def is_derived(self) -> bool:
        """A training copy made from a corpus clip (waveform augmentation, a synthetic
        voice), not a clip of the corpus itself."""
        return bool(self.extra.get("augmented_from") or self.extra.get("voice_of"))


class KeypointPredictor(Protocol):
    """What every model and baseline offers to evaluation and hand-off."""

    name: str

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        """(T, 68, 2) predicted pixels in the clip's frame, one row per keypoint frame."""
        ...


# ---------- extraction files ----------


# ---------- fitted state: feature stats + target normaliser ----------


def normalizer_path(corpus: str, root=None) -> Path:
    return CorpusPaths(corpus, root).processed / "target_normalizer.json"


def save_normalizer(
    normalizer: TargetNormalizer, path: str | os.PathLike, train_clip_ids: Sequence[str] = ()
) -> Path:
    """The normaliser's plain-JSON state, plus the clips it was fitted on."""
    return write_json(path, {**normalizer.state_dict(), "train_clip_ids": list(train_clip_ids)})


def load_normalizer(corpus: str, root=None) -> TargetNormalizer:
    path = normalizer_path(corpus, root)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no target normaliser; run notebook 03 or fit_normalizer_and_stats"
        )
    return TargetNormalizer.from_state_dict(json.loads(path.read_text()))


def fit_normalizer_and_stats(
    corpus: str,
    pca_components: int | None = None,
    neutral: str = "closed",
    feature_config: FeatureConfig | None = None,
    split_by: str | None = None,
    seed: int | None = None,
    root=None,
) -> tuple[TargetNormalizer, FeatureStats]:
    """Fit the target normaliser and the feature stats on the train split only and save
    both under ``processed/<corpus>/``. Makes the split and features if missing
    (``split_by``/``seed`` None: as the saved split was made, see ``ensure_split``)."""
    split = ensure_split(corpus, by=split_by, seed=seed, root=root)
    if feature_config is None and feature_stats_path(corpus, root).is_file():
        feature_config = FeatureStats.load(feature_stats_path(corpus, root)).feature_config
    compute_corpus_features(corpus, feature_config, root=root)
    stats = fit_feature_stats(corpus, split, feature_config, root=root)
    paths = CorpusPaths(corpus, root)
    manifest = ok_clips(corpus, root).set_index("clip_id")
    train_ids = split.loc[split["split"] == "train", "clip_id"].astype(str)
    pairs, used = [], []
    for cid in train_ids:
        try:
            extraction = read_extraction(paths.extracted / f"{cid}.npz")
        except (OSError, ValueError) as exc:
            warnings.warn(str(exc), stacklevel=2)
            continue
        lm = np.where(extraction.valid[:, None, None], extraction.lm68, np.nan)
        pairs.append((_speaker(manifest, cid), lm))
        used.append(cid)
    normalizer = TargetNormalizer(pca_components=pca_components, neutral=neutral).fit(pairs)
    save_normalizer(normalizer, normalizer_path(corpus, root), train_clip_ids=used)
    return normalizer, stats


def _saved_state_is_current(corpus: str, split: pd.DataFrame, root=None) -> bool:
    """Were the saved normaliser and stats fitted on the current split's train clips?
    (Train clips whose files are missing were left out of the fit and do not count.)"""
    paths = CorpusPaths(corpus, root)
    train = set(split.loc[split["split"] == "train", "clip_id"].astype(str))
    usable = {
        c
        for c in train
        if (paths.extracted / f"{c}.npz").is_file() and (paths.features / f"{c}.npz").is_file()
    }
    stats_ids = set(FeatureStats.load(feature_stats_path(corpus, root)).clip_ids)
    normalizer_ids = json.loads(normalizer_path(corpus, root).read_text()).get("train_clip_ids")
    fits = [stats_ids] + ([set(normalizer_ids)] if normalizer_ids else [])
    return all(usable <= ids <= train for ids in fits)


def _speaker(manifest: pd.DataFrame, clip_id: str) -> str:
    value = manifest["speaker"].get(clip_id) if "speaker" in manifest.columns else None
    return "unknown" if value is None or pd.isna(value) or str(value) == "" else str(value)


def _text(manifest: pd.DataFrame, clip_id: str, column: str, default: str = "") -> str:
    if column not in manifest.columns:
        return default
    value = manifest[column].get(clip_id)
    return default if value is None or pd.isna(value) else str(value)


# ---------- building ClipData ----------


def make_clip(
    clip_id: str,
    frame_times: np.ndarray,
    landmarks: np.ndarray,
    valid: np.ndarray,
    raw_features: np.ndarray,
    feature_times: np.ndarray,
    feature_stats: FeatureStats,
    window_config: WindowConfig,
    normalizer: TargetNormalizer | None,
    speaker: str = "",
    emotion: str = "",
    sentence_id: str = "",
    split: str = "",
    frame_size: tuple[int, int] = (0, 0),
    audio_path: Path | None = None,
    pose: np.ndarray | None = None,
    extra: dict | None = None,
) -> ClipData:
    """One ``ClipData`` from arrays: normalises features, builds windows, targets and pose.

    Targets are NaN on frames that are not valid. The pose comes from the landmarks when
    there are any (interpolated over frames without a detection, flagged in
    ``extra["pose_filled"]``), else from ``pose``.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    landmarks = np.asarray(landmarks, dtype=np.float32)
    valid = np.asarray(valid, dtype=bool) & valid_frames(landmarks)
    features = feature_stats.apply(raw_features)
    windows = build_windows(features, feature_times, frame_times, window_config)
    n_targets = normalizer.n_targets if normalizer is not None else 136
    targets = np.full((len(frame_times), n_targets), np.nan, dtype=np.float32)
    if normalizer is not None and valid.any():
        lm = np.where(valid[:, None, None], landmarks, np.nan)
        t, fitted_pose = normalizer.transform(lm, speaker)
        targets[valid] = t[valid]
        filled_pose, pose_filled = fill_pose(fitted_pose)
    else:
        filled_pose = (
            default_pose(len(frame_times), frame_size)
            if pose is None
            else _as_pose(pose, len(frame_times))
        )
        pose_filled = np.ones(len(frame_times), dtype=bool)
    return ClipData(
        clip_id=clip_id,
        speaker=speaker,
        emotion=emotion,
        sentence_id=sentence_id,
        split=split,
        frame_times=frame_times,
        landmarks=landmarks,
        valid=valid,
        frame_size=(int(frame_size[0]), int(frame_size[1])),
        audio_path=audio_path,
        features=features,
        feature_times=np.asarray(feature_times, dtype=np.float64),
        windows=windows,
        targets=targets,
        pose=filled_pose.astype(np.float32),
        extra={
            "pose_filled": pose_filled,
            "window_config": window_config.to_dict(),
            "feature_config": dict(feature_stats.config),
            "feature_stats": stats_digest(feature_stats),
            **(extra or {}),
        },
    )


def default_pose(n_frames: int, frame_size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """A frontal, upright face centred in the frame (inter-ocular distance 35 % of the
    frame width), for clips with no landmarks and no pose given."""
    width, height = (int(frame_size[0]) or 256), (int(frame_size[1]) or 256)
    return np.tile([0.35 * width, 0.0, width / 2, 0.45 * height], (n_frames, 1)).astype(np.float64)


def _as_pose(pose: np.ndarray, n_frames: int) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape == (4,):
        pose = np.tile(pose, (n_frames, 1))
    if pose.shape != (n_frames, 4):
        raise ValueError(f"pose must be (4,) or ({n_frames}, 4), got {pose.shape}")
    return pose


def load_clips(
    corpus: str,
    splits: Sequence[str] | str | None = ("train",),
    window_config: WindowConfig | None = None,
    normalizer: TargetNormalizer | None = None,
    feature_stats: FeatureStats | None = None,
    root=None,
    progress: bool = True,
) -> list[ClipData]:
    """``ClipData`` of every ``ok`` clip in ``splits`` (``None``: all splits).

    Features are normalised with the train stats and targets with the train normaliser:
    the saved ones (``processed/<corpus>/``) unless given, fitted on train and saved if
    missing. A clip whose files are missing or broken is skipped with a warning naming it.
    """
    from tqdm.auto import tqdm

    window_config = window_config or WindowConfig()
    if isinstance(splits, str):
        splits = (splits,)
    paths = CorpusPaths(corpus, root)
    split = ensure_split(corpus, root=root)
    if normalizer is None or feature_stats is None:
        have_files = (
            normalizer_path(corpus, root).is_file() and feature_stats_path(corpus, root).is_file()
        )
        if have_files and _saved_state_is_current(corpus, split, root):
            fitted_normalizer = load_normalizer(corpus, root)
            fitted_stats = FeatureStats.load(feature_stats_path(corpus, root))
        elif have_files:
            # The split changed since they were fitted: refit with the same settings.
            warnings.warn(
                f"{normalizer_path(corpus, root).parent}: normaliser/stats were fitted on "
                "another train split; refitting them on the current one",
                stacklevel=2,
            )
            old = load_normalizer(corpus, root)
            fitted_normalizer, fitted_stats = fit_normalizer_and_stats(
                corpus,
                pca_components=old.pca_components,
                neutral=old.neutral,
                feature_config=FeatureStats.load(feature_stats_path(corpus, root)).feature_config,
                root=root,
            )
        else:
            fitted_normalizer, fitted_stats = fit_normalizer_and_stats(corpus, root=root)
        normalizer = normalizer or fitted_normalizer
        feature_stats = feature_stats or fitted_stats
    if splits is not None:
        split = split[split["split"].isin(list(splits))]
    manifest = ok_clips(corpus, root).set_index("clip_id")
    split = split[split["clip_id"].isin(manifest.index)]
    config = feature_stats.feature_config
    # Missing feature files, or files made with other settings than the stats, are
    # (re)computed; up-to-date ones are skipped.
    compute_corpus_features(corpus, config, root=root, progress=progress)
    clips = []
    for cid, split_name in tqdm(
        list(zip(split["clip_id"].astype(str), split["split"], strict=True)),
        desc=f"clips {corpus}",
        unit="clip",
        disable=not progress,
    ):
        try:
            extraction = read_extraction(paths.extracted / f"{cid}.npz")
            feature_file = paths.features / f"{cid}.npz"
            raw, feature_times, file_config, _ = read_features(feature_file)
            if file_config != config:
                raise ValueError(
                    f"{feature_file}: features made with {file_config}, stats with {config}"
                )
            clip = make_clip(
                cid,
                extraction.times,
                extraction.lm68,
                extraction.valid,
                raw,
                feature_times,
                feature_stats,
                window_config,
                normalizer,
                speaker=_speaker(manifest, cid),
                emotion=_text(manifest, cid, "emotion"),
                sentence_id=_text(manifest, cid, "sentence_id", cid),
                split=str(split_name),
                frame_size=(extraction.width, extraction.height),
                audio_path=paths.audio / f"{cid}.wav",
                extra={
                    "text": _text(manifest, cid, "text"),
                    "frame_status": extraction.frame_status,
                    "extraction_fingerprint": _text(manifest, cid, "fingerprint"),
                },
            )
        except (OSError, ValueError, KeyError) as exc:
            warnings.warn(f"clip {cid} skipped: {exc}", stacklevel=2)
            continue
        clips.append(clip)
    return clips


def clip_from_audio(
    samples: np.ndarray,
    sr: int,
    frame_times: np.ndarray,
    feature_config: FeatureConfig | None,
    feature_stats: FeatureStats,
    window_config: WindowConfig | None = None,
    speaker: str = "",
    pose: np.ndarray | None = None,
    frame_size: tuple[int, int] = (256, 256),
    clip_id: str = "speech",
    audio_path: Path | None = None,
) -> ClipData:
    """A ``ClipData`` for a new speech signal (prediction): landmarks NaN, ``valid``
    False, targets NaN; windows at ``frame_times``; ``pose`` (4,) or (T, 4) if given,
    else a frontal face centred in ``frame_size``. ``feature_config`` defaults to the
    one the stats were fitted with (they must agree)."""
    config = feature_config or feature_stats.feature_config
    if feature_stats.config and FeatureConfig.from_dict(feature_stats.config) != config:
        raise ValueError(f"feature config {config} differs from the stats' {feature_stats.config}")
    raw, feature_times = compute_features(samples, sr, config)
    frame_times = np.asarray(frame_times, dtype=np.float64)
    n = len(frame_times)
    return make_clip(
        clip_id,
        frame_times,
        np.full((n, 68, 2), np.nan, dtype=np.float32),
        np.zeros(n, dtype=bool),
        raw,
        feature_times,
        feature_stats,
        window_config or WindowConfig(),
        None,
        speaker=speaker,
        frame_size=frame_size,
        audio_path=audio_path,
        pose=pose,
        # the signal itself, for what listens beyond the features (wav2kp.training.vad's gate)
        extra={"samples": samples, "sample_rate": int(sr)},
    )


def stats_digest(stats: FeatureStats | None) -> str:
    """A short hash of feature statistics ("" for none): equal stats, equal digest."""
    from wav2kp.config import config_digest

    return "" if stats is None else config_digest(stats.to_dict())


# ---------- what a model sees of a clip ----------


def identity_stats(config: FeatureConfig) -> FeatureStats:
    """Statistics that leave features as they are ((x - 0) / 1 is exact in float32):
    for models fed raw features, like the original."""
    return FeatureStats(mean=np.zeros(config.dim), std=np.ones(config.dim), config=config.to_dict())


_RAW_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def raw_features(clip: ClipData, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """(features (F, D) un-normalised, centre times (F,)) of ``config`` for a clip, from
    its audio file (kept in memory for the next call; cheap: milliseconds per second)."""
    from wav2kp.media.audio import load_audio

    if clip.audio_path is None or not Path(clip.audio_path).is_file():
        raise FileNotFoundError(
            f"{clip.clip_id}: no audio file ({clip.audio_path}) to compute {config.kind} features"
        )
    path = Path(clip.audio_path)
    key = (str(path), path.stat().st_mtime_ns, config.to_json())
    if key not in _RAW_CACHE:
        if len(_RAW_CACHE) > 4096:
            _RAW_CACHE.clear()
        samples, sr = load_audio(path, sample_rate=config.sample_rate)
        _RAW_CACHE[key] = compute_features(samples, sr, config)
    return _RAW_CACHE[key]


def with_features(clip: ClipData, config: FeatureConfig, stats: FeatureStats) -> ClipData:
    """The clip as a model fed ``config`` features normalised with ``stats`` sees it. The
    clip itself when it already holds them; else computed from its audio (so the
    original replica gets the original's MFCC bit for bit even when the corpus's
    pipeline features are log-mel)."""
    if clip.extra.get("feature_config") == config.to_dict() and clip.extra.get(
        "feature_stats"
    ) == stats_digest(stats):
        return clip
    raw, times = raw_features(clip, config)
    features = stats.apply(raw)
    window = WindowConfig.from_dict(clip.extra.get("window_config", WindowConfig().to_dict()))
    return dataclasses.replace(
        clip,
        features=features,
        feature_times=times,
        windows=build_windows(features, times, clip.frame_times, window),
        extra={
            **clip.extra,
            "feature_config": config.to_dict(),
            "feature_stats": stats_digest(stats),
        },
    )


def clip_window_indices(clip: ClipData, window: WindowConfig, upsample: int = 1):
    """(N, C) feature indices and (N, C) inside-mask of the windows a model runs on: one
    per keypoint frame, or ``upsample`` per frame in original mode (the original's x3)."""
    if len(clip.feature_times) < 2:
        raise ValueError(f"{clip.clip_id}: fewer than two feature frames")
    if window.mode == "original":
        n_steps = clip.n_frames * upsample
        starts = original_window_starts(len(clip.feature_times), n_steps, window.original_window)
        indices = starts[:, None] + np.arange(window.original_window)[None, :]
        inside = indices < len(clip.feature_times)
        return np.clip(indices, 0, len(clip.feature_times) - 1), inside
    return window_indices(clip.feature_times, clip.frame_times, window)


class LazyWindows:
    """Windows (N, C, D) gathered from features only when sliced, so hour-long inputs
    never materialise (N, C, D) at once."""

    def __init__(self, features: np.ndarray, indices: np.ndarray, inside: np.ndarray, pad: str):
        self.features = np.asarray(features, dtype=np.float32)
        self.indices, self.inside, self.pad = indices, inside, pad

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.indices), self.indices.shape[1], self.features.shape[1])

    def __getitem__(self, item) -> np.ndarray:
        windows = self.features[self.indices[item]]
        if self.pad == "zeros":
            windows[~self.inside[item]] = 0.0
        return windows

    def head(self, n: int) -> LazyWindows:
        """The first ``n`` windows."""
        return LazyWindows(self.features, self.indices[:n], self.inside[:n], self.pad)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def clip_windows(clip: ClipData, window: WindowConfig, upsample: int = 1) -> LazyWindows:
    indices, inside = clip_window_indices(clip, window, upsample)
    return LazyWindows(clip.features, indices, inside, window.pad)


def clip_targets(clip: ClipData, target_space: str) -> np.ndarray:
    """(T, K) float32 targets with NaN rows where the frame is not usable: ``normalized``
    (``clip.targets``) or ``frame`` (pixels divided by the frame size)."""
    if target_space == "normalized":
        targets = np.asarray(clip.targets, dtype=np.float32).copy()
    elif target_space == "frame":
        width, height = clip.frame_size
        targets = np.asarray(clip.landmarks, np.float32) / np.array([width, height], np.float32)
        targets = targets.reshape(clip.n_frames, -1)
    else:
        raise ValueError(f"unknown target space {target_space!r}")
    bad = ~np.asarray(clip.valid, bool) | ~np.isfinite(targets).all(axis=1)
    targets[bad] = np.nan
    return targets


def training_arrays(
    clip: ClipData, window: WindowConfig, target_space: str, upsample: int = 1
) -> tuple[LazyWindows, np.ndarray]:
    """(windows (N, C, D), gathered lazily; targets (N, K) with NaN rows) a model trains on
    for one clip. Upsampled (the original's x3) targets drop the last step, as the
    original did."""
    windows = clip_windows(clip, window, upsample)
    targets = clip_targets(clip, target_space)
    if upsample > 1:
        targets = upsample_linear(targets, upsample)  # NaN spreads to neighbours: masked
        windows, targets = windows.head(len(windows) - 1), targets[:-1]
    return windows, targets
