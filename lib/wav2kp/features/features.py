"""Audio features (MFCC or log-mel) per clip, and their train-only normalisation stats.

The default ``FeatureConfig`` reproduces the original project exactly:
``torchaudio.transforms.MFCC(sample_rate=16000, melkwargs={"n_mels": 40})`` - 40 MFCC,
n_fft 400 (25 ms), hop 200 (12.5 ms, 80 frames/s). torchaudio pads the signal by n_fft/2
on both sides (``center=True``), so there are ``1 + len // hop`` frames and frame k is
centred on sample ``k * hop``, i.e. at ``k * hop / sample_rate`` seconds.

``compute_corpus_features`` writes ``processed/<corpus>/features/<clip_id>.npz``
(``features`` raw float32 (F, D), ``times`` float64 (F,), ``config`` JSON) for every ``ok``
clip of the extraction manifest; a re-run skips files whose config and source audio are
unchanged. ``FeatureStats`` (per-dimension mean/std) is fitted on the train split only
and saved as ``processed/<corpus>/feature_stats.json``; inference reuses it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.atomic import write_json, write_npz
from wav2kp.config import CMVN_MODES, FEATURE_KINDS, PHONE_MODES, FeatureConfig
from wav2kp.paths import CorpusPaths


@lru_cache(maxsize=8)
def _transform(config: FeatureConfig):
    import torch
    import torchaudio

    melkwargs = {"n_fft": config.n_fft, "hop_length": config.hop_length, "n_mels": config.n_mels}
    if config.kind == "mfcc":
        return torchaudio.transforms.MFCC(
            sample_rate=config.sample_rate, n_mfcc=config.n_mfcc, melkwargs=melkwargs
        )
    return torch.nn.Sequential(
        torchaudio.transforms.MelSpectrogram(sample_rate=config.sample_rate, **melkwargs),
        torchaudio.transforms.AmplitudeToDB(stype="power", top_db=None),
    )


def frame_times(n_frames: int, config: FeatureConfig) -> np.ndarray:
    """Centre time (s) of each feature frame (torchaudio's centred framing)."""
    return np.arange(n_frames, dtype=np.float64) * config.hop_seconds


def compute_features(
    samples: np.ndarray, sr: int, config: FeatureConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features (F, D) float32 and centre times (F,) float64 of a mono signal.

    ``samples`` at rate ``sr`` are resampled to ``config.sample_rate`` when needed.
    """
    import torch

    config = config or FeatureConfig()
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:  # (N, C): average the channels
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or len(samples) == 0:
        raise ValueError(f"need a non-empty mono signal, got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("audio holds NaN or infinite samples")
    if int(sr) != config.sample_rate:
        from wav2kp.media.audio import resample

        samples = resample(samples, int(sr), config.sample_rate)
    with torch.no_grad():
        feats = _transform(config)(torch.from_numpy(np.ascontiguousarray(samples)))  # (D, F)
        if config.floor_db is not None or config.cmvn != "none":
            feats = torch.from_numpy(_normalise_levels(feats.numpy().T, config).T)
        if config.deltas:
            import torchaudio.functional as AF

            d1 = AF.compute_deltas(feats)
            feats = torch.cat([feats, d1, AF.compute_deltas(d1)], dim=0)
    features = feats.T.contiguous().numpy().astype(np.float32)
    times = frame_times(len(features), config)
    if config.phones != "none":
        features = np.concatenate([features, _phonetic(samples, config, times)], axis=1)
    return features, times


def _phonetic(samples: np.ndarray, config: FeatureConfig, times: np.ndarray) -> np.ndarray:
    """The phonetic stream at the feature frames (``wav2kp.features.phonetic``)."""
    from wav2kp.config import SAMPLE_RATE
    from wav2kp.features.phonetic import cached_allphone_segments, phonetic_frames

    if config.sample_rate != SAMPLE_RATE:
        from wav2kp.media.audio import resample

        samples = resample(samples, config.sample_rate, SAMPLE_RATE)
    return phonetic_frames(cached_allphone_segments(samples), times)


def sliding_window_sums(values: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum over rows i-half..i+half of ``values`` (F, D), row count) per row, truncated
    at the ends; float64 cumulative sums."""
    values = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    rows = np.arange(len(values))
    lo = np.clip(rows - half, 0, len(values))
    hi = np.clip(rows + half + 1, 0, len(values))
    return cumulative[hi] - cumulative[lo], (hi - lo).astype(np.float64)


def _sliding_max(values: np.ndarray, half: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(values, size=2 * half + 1, mode="nearest")


def _normalise_levels(features: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``floor_db`` and ``cmvn`` of ``FeatureConfig`` on (F, D) features (float32)."""
    feats = np.asarray(features, dtype=np.float64)
    half = max(int(round(config.cmvn_seconds / config.hop_seconds / 2)), 1)
    if config.floor_db is not None:
        # the loudest band of each frame, then the loudest frame within the window
        peak = _sliding_max(feats.max(axis=1), half)
        feats = np.maximum(feats, (peak - config.floor_db)[:, None])
    if config.cmvn != "none":
        total, count = sliding_window_sums(feats, half)
        mean = total / count[:, None]
        if config.cmvn == "meanvar":
            total_sq, _ = sliding_window_sums(feats**2, half)
            var = np.maximum(total_sq / count[:, None] - mean**2, 0.0)
            # + 1 dB^2: a band flat within the window (a floored silence) stays ~0
            feats = (feats - mean) / np.sqrt(var + 1.0)
        else:
            feats = feats - mean
    return feats.astype(np.float32)


# ---------- per-corpus computation ----------


def _fingerprint(audio_path: Path, config: FeatureConfig) -> str:
    digest = hashlib.sha1(config.to_json().encode())
    with open(audio_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_features(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, FeatureConfig, dict]:
    """(features, times, config, npz extras) of one features file."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable features file ({exc})") from exc
    with data:
        features = data["features"].astype(np.float32)
        times = data["times"].astype(np.float64)
        config = FeatureConfig.from_dict(json.loads(str(data["config"])))
        extras = {k: data[k].item() for k in data.files if k not in ("features", "times", "config")}
    return features, times, config, extras


def _load_audio(path: Path, sample_rate: int) -> tuple[np.ndarray, int]:
    from wav2kp.media.audio import load_audio

    return load_audio(path, sample_rate=sample_rate)


def features_for_clip(
    clip_id: str, audio_path: Path, out_path: Path, config: FeatureConfig, force: bool = False
) -> dict:
    """Compute (or skip, if up to date) one clip's features file; never raises for a bad
    clip: the returned row has status ``error`` and an error naming the file."""
    row = {"clip_id": clip_id, "path": str(out_path), "frames": 0, "error": ""}
    try:
        if not audio_path.is_file():
            raise FileNotFoundError(f"{audio_path}: audio file missing")
        fingerprint = _fingerprint(audio_path, config)
        if out_path.is_file() and not force:
            try:
                _, times, _, extras = read_features(out_path)
                if extras.get("fingerprint") == fingerprint:
                    return {**row, "status": "skipped", "frames": len(times)}
            except (OSError, ValueError, KeyError):
                pass  # unreadable: recompute
        samples, sr = _load_audio(audio_path, config.sample_rate)
        features, times = compute_features(samples, sr, config)
        write_npz(out_path, features=features, times=times, config=np.array(config.to_json()),
                  fingerprint=np.array(fingerprint))  # fmt: skip
        return {**row, "status": "computed", "frames": len(times)}
    except Exception as exc:  # one bad clip must not stop the batch
        message = str(exc) if str(audio_path) in str(exc) else f"{audio_path}: {exc}"
        return {
            **row,
            "status": "error",
            "error": message.splitlines()[0] if message else repr(exc),
        }


def compute_corpus_features(
    corpus: str,
    config: FeatureConfig | None = None,
    workers: int | None = None,
    force: bool = False,
    root=None,
    progress: bool = True,
) -> pd.DataFrame:
    """Features for every ``ok`` clip of the extraction manifest (see module doc), on
    ``workers`` threads (None: ``wav2kp.cluster.default_workers()``; 0 or 1: this one).

    Returns one row per clip: ``clip_id, status (computed/skipped/error), frames, path,
    error``. Errors are also warned about, naming the clip's file.
    """
    from tqdm.auto import tqdm

    from wav2kp.features.splits import ok_clips

    config = config or FeatureConfig()
    paths = CorpusPaths(corpus, root)
    manifest = ok_clips(corpus, root)
    jobs = [
        (cid, paths.audio / f"{cid}.wav", paths.features / f"{cid}.npz", config, force)
        for cid in manifest["clip_id"]
    ]
    rows = []
    bar = tqdm(total=len(jobs), desc=f"features {corpus}", unit="clip", disable=not progress)
    if workers is None:
        from wav2kp.cluster import default_workers

        workers = default_workers()
    if workers > 1 and len(jobs) > 1:
        # Threads, not processes: torch, libsndfile and hashing release the GIL, and a
        # process pool would pay seconds of torch import per worker for ms of work per clip.
        with ThreadPoolExecutor(workers) as pool:
            for row in pool.map(lambda job: features_for_clip(*job), jobs):
                rows.append(row)
                bar.update()
    else:
        for job in jobs:
            rows.append(features_for_clip(*job))
            bar.update()
    bar.close()
    result = pd.DataFrame(rows, columns=["clip_id", "status", "frames", "path", "error"])
    for message in result.loc[result["status"] == "error", "error"]:
        warnings.warn(f"features: {message}", stacklevel=2)
    return result


# ---------- normalisation stats ----------


@dataclass
class FeatureStats:
    """Per-dimension mean and std of the raw features, fitted on the train split."""

    mean: np.ndarray
    std: np.ndarray
    n_frames: int = 0
    config: dict = field(default_factory=dict)  # the FeatureConfig the stats belong to
    clip_ids: list = field(default_factory=list)  # the clips they were fitted on

    @classmethod
    def fit(cls, arrays, config: FeatureConfig | None = None, clip_ids=()) -> FeatureStats:
        """From an iterable of (F_i, D) raw feature arrays (float64 running sums)."""
        total = total_sq = None
        count = 0
        for array in arrays:
            a = np.asarray(array, dtype=np.float64)
            total = a.sum(axis=0) if total is None else total + a.sum(axis=0)
            total_sq = (a**2).sum(axis=0) if total_sq is None else total_sq + (a**2).sum(axis=0)
            count += len(a)
        if count == 0:
            raise ValueError("no feature frames to fit the stats on")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        if config is not None and config.phonetic_dim:
            # one-hot classes and positions in [0, 1] are fed as they are: standardising
            # would blow a rare class up to tens
            mean[config.spectral_dim :], std[config.spectral_dim :] = 0.0, 1.0
        return cls(
            mean=mean,
            std=std,
            n_frames=count,
            config=config.to_dict() if config else {},
            clip_ids=list(clip_ids),
        )

    def apply(self, features: np.ndarray) -> np.ndarray:
        """(features - mean) / std as float32 (dimensions with std ~ 0 are only centred)."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != len(self.mean):
            raise ValueError(
                f"features of shape {features.shape} do not match stats of {len(self.mean)} "
                f"dims (fitted for {self.config or 'an unknown config'})"
            )
        std = np.where(self.std > 1e-8, self.std, 1.0)
        return ((np.asarray(features, dtype=np.float64) - self.mean) / std).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "mean": np.asarray(self.mean, dtype=np.float64).tolist(),
            "std": np.asarray(self.std, dtype=np.float64).tolist(),
            "n_frames": int(self.n_frames),
            "config": dict(self.config),
            "clip_ids": list(self.clip_ids),
        }

    @classmethod
    def from_dict(cls, values: dict) -> FeatureStats:
        return cls(
            mean=np.asarray(values["mean"], dtype=np.float64),
            std=np.asarray(values["std"], dtype=np.float64),
            n_frames=int(values.get("n_frames", 0)),
            config=dict(values.get("config", {})),
            clip_ids=list(values.get("clip_ids", [])),
        )

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.config) if self.config else FeatureConfig()

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        return cls.from_dict(json.loads(Path(path).read_text()))


def feature_stats_path(corpus: str, root=None) -> Path:
    return CorpusPaths(corpus, root).processed / "feature_stats.json"


def fit_feature_stats(
    corpus: str, split: pd.DataFrame | None = None, config: FeatureConfig | None = None, root=None
) -> FeatureStats:
    """Fit ``FeatureStats`` on the train clips' feature files and save them."""
    from wav2kp.features.splits import load_split

    paths = CorpusPaths(corpus, root)
    split = load_split(corpus, root) if split is None else split
    train_ids = split.loc[split["split"] == "train", "clip_id"].astype(str).tolist()
    arrays, used = [], []
    for cid in train_ids:
        path = paths.features / f"{cid}.npz"
        if not path.is_file():
            warnings.warn(
                f"{path}: no features for train clip {cid}; left out of the stats", stacklevel=2
            )
            continue
        features, _, file_config, _ = read_features(path)
        if config is not None and file_config != config:
            raise ValueError(
                f"{path}: computed with {file_config}, expected {config}; recompute features"
            )
        config = file_config
        arrays.append(features)
        used.append(cid)
    stats = FeatureStats.fit(arrays, config, used)
    stats.save(feature_stats_path(corpus, root))
    return stats


def ensure_corpus_features(
    corpus: str, config: FeatureConfig, split_settings: dict | None = None, workers=None,
    root=None, progress: bool = True,
) -> FeatureStats:  # fmt: skip
    """The corpus's pipeline features as ``config`` says (notebook 02's step, for commands
    that train without the notebooks: ``wav2kp train``): the split made if missing,
    features computed where missing or made otherwise, stats refitted when they belong to
    other settings. Returns the stats."""
    from wav2kp.features.splits import ensure_split

    path = feature_stats_path(corpus, root)
    if path.is_file():
        stats = FeatureStats.load(path)
        if stats.feature_config == config and Path(CorpusPaths(corpus, root).features).is_dir():
            return stats
    split = ensure_split(corpus, root=root, **(split_settings or {}))
    compute_corpus_features(corpus, config, workers=workers, root=root, progress=progress)
    return fit_feature_stats(corpus, split, config, root=root)


def load_feature_stats(corpus: str, root=None) -> FeatureStats:
    path = feature_stats_path(corpus, root)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no feature stats; run notebook 02 or `wav2kp features`")
    return FeatureStats.load(path)


# ---------- command line ----------


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    from wav2kp.config import RunConfig, SplitConfig, add_corpus_argument, add_workers_argument
    from wav2kp.features.splits import SPLIT_BY

    defaults = FeatureConfig(**RunConfig().feature_settings)  # the pipeline's (notebook 02's)
    add_corpus_argument(parser)
    parser.add_argument("--kind", choices=FEATURE_KINDS, default=defaults.kind)
    parser.add_argument("--n-mfcc", type=int, default=defaults.n_mfcc)
    parser.add_argument("--n-mels", type=int, default=defaults.n_mels)
    parser.add_argument("--n-fft", type=int, default=defaults.n_fft)
    parser.add_argument("--hop-length", type=int, default=defaults.hop_length)
    parser.add_argument("--deltas", action="store_true", default=defaults.deltas,
                        help="append delta and delta-delta")  # fmt: skip
    parser.add_argument(
        "--floor-db", type=float, default=defaults.floor_db,
        help="log-mel: raise levels more than this below the window's loudest frame",
    )  # fmt: skip
    parser.add_argument("--cmvn", choices=CMVN_MODES, default=defaults.cmvn)
    parser.add_argument("--cmvn-seconds", type=float, default=defaults.cmvn_seconds)
    parser.add_argument("--phones", choices=PHONE_MODES, default=defaults.phones,
                        help="append the phonetic stream (wav2kp.features.phonetic)")  # fmt: skip
    # the split: None = as the corpus's saved split was made, else SplitConfig's defaults
    split = SplitConfig()
    parser.add_argument("--split-by", choices=SPLIT_BY, default=None,
                        help=f"default: as saved, else {split.by}")  # fmt: skip
    parser.add_argument("--val-fraction", type=float, default=None,
                        help=f"default: as saved, else {split.val_fraction}")  # fmt: skip
    parser.add_argument("--test-fraction", type=float, default=None,
                        help=f"default: as saved, else {split.test_fraction}")  # fmt: skip
    parser.add_argument("--seed", type=int, default=None,
                        help=f"the split's seed (default: as saved, else {split.seed})")  # fmt: skip
    add_workers_argument(parser, "feature threads")
    parser.add_argument("--force", action="store_true", help="recompute up-to-date files")


def run_cli(args: argparse.Namespace) -> int:
    from wav2kp.features.splits import ensure_split, split_summary

    config = FeatureConfig(
        kind=args.kind,
        n_mfcc=args.n_mfcc,
        n_mels=args.n_mels,
        n_fft=args.n_fft,
        hop_length=args.hop_length,
        deltas=args.deltas,
        floor_db=args.floor_db,
        cmvn=args.cmvn,
        cmvn_seconds=args.cmvn_seconds,
        phones=args.phones,
    )
    split = ensure_split(
        args.corpus, by=args.split_by, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, seed=args.seed,
    )  # fmt: skip
    print(split_summary(split).to_string())
    result = compute_corpus_features(args.corpus, config, workers=args.workers, force=args.force)
    print(result["status"].value_counts().to_string())
    stats = fit_feature_stats(args.corpus, split, config)
    print(f"feature stats: {stats.n_frames} train frames -> {feature_stats_path(args.corpus)}")
    return 1 if (result["status"] == "error").any() else 0
