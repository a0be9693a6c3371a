"""Training and inference speed of the keypoint models.

- Training: seconds per epoch and to convergence (best validation epoch) of the default
  model and of the original replica, on 240 s of synthetic clips (60 s in quick mode;
  the default demo corpus is about 5 minutes, the tiny one about 1). Synthetic, so the numbers do not
  depend on which corpus happens to be built.
- Inference: real-time factor on one CPU thread (target: 1 h of audio in < 2 s, i.e.
  RTF < 1/1800), the original replica measured in the same run as the reference.

``synthetic_clips`` builds ClipData whose mouth opening is a smooth, slightly delayed
function of the audio features, so a model can learn it (tests use it too).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.ndimage
import torch

from wav2kp.windowing.dataset import ClipData

FEATURE_HOP_S = 0.0125  # 80 feature frames per second (the default MFCC hop)
FPS = 30000 / 1001


def _base_face(size: float = 256.0) -> np.ndarray:
    """A plausible 68-point layout (pixels of a ``size`` square frame)."""
    rng = np.random.default_rng(1234)
    face = np.zeros((68, 2))
    t = np.linspace(-0.9 * np.pi / 2, 0.9 * np.pi / 2, 17)
    face[0:17] = np.column_stack([0.5 + 0.35 * np.sin(t), 0.45 + 0.4 * np.cos(t)])
    face[17:27] = np.column_stack(
        [np.linspace(0.25, 0.75, 10), 0.3 + 0.02 * rng.standard_normal(10)]
    )
    face[27:36] = np.column_stack([0.5 + 0.04 * rng.standard_normal(9), np.linspace(0.38, 0.58, 9)])
    face[36:48] = np.column_stack(
        [
            np.r_[np.linspace(0.3, 0.42, 6), np.linspace(0.58, 0.7, 6)],
            0.4 + 0.01 * rng.standard_normal(12),
        ]
    )
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    face[48:60] = np.column_stack([0.5 - 0.12 * np.cos(a), 0.72 + 0.04 * np.sin(a)])
    b = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    face[60:68] = np.column_stack([0.5 - 0.08 * np.cos(b), 0.72 + 0.015 * np.sin(b)])
    return face * size


def synthetic_clips(
    n_clips: int = 6,
    seconds: float = 4.0,
    feature_dim: int = 40,
    seed: int = 0,
    missing_fraction: float = 0.03,
    size: int = 256,
) -> list[ClipData]:
    """Clips whose lower lip and jaw follow a smoothed feature (80 ms ahead of the frame)
    with a little noise. Splits: the last clip is ``val``, the rest ``train``. A few
    frames are marked missing (NaN landmarks, ``valid`` False)."""
    rng = np.random.default_rng(seed)
    base = _base_face(size)
    lower = np.r_[5:12, 55:60, 64:68]  # jaw bottom, lower outer and inner lip
    clips = []
    for c in range(n_clips):
        n_feat = int(seconds / FEATURE_HOP_S)
        feature_times = (np.arange(n_feat) + 0.5) * FEATURE_HOP_S
        raw = rng.standard_normal((n_feat, feature_dim)).astype(np.float32)
        smooth = scipy.ndimage.gaussian_filter1d(raw, sigma=2.0, axis=0)
        features = (smooth / smooth.std(axis=0)).astype(np.float32)
        frame_times = np.arange(int(seconds * FPS)) / FPS
        drive = np.interp(frame_times + 0.08, feature_times, features[:, 0] + 0.5 * features[:, 1])
        opening = np.clip(drive, -1.5, 2.5) * 0.03 * size
        landmarks = np.repeat(base[None], len(frame_times), axis=0)
        landmarks[:, lower, 1] += opening[:, None]
        landmarks += rng.normal(0, 0.002 * size, landmarks.shape)
        valid = rng.random(len(frame_times)) >= missing_fraction
        landmarks[~valid] = np.nan
        clips.append(
            ClipData(
                clip_id=f"synthetic_{c:02d}",
                speaker="synthetic",
                emotion="neutral",
                sentence_id=f"s{c:02d}",
                split="val" if c == n_clips - 1 else "train",
                frame_times=frame_times,
                landmarks=landmarks.astype(np.float32),
                valid=valid,
                frame_size=(size, size),
                audio_path=None,
                features=features,
                feature_times=feature_times,
                windows=np.zeros((len(frame_times), 1, feature_dim), np.float32),
                targets=np.where(
                    valid[:, None], landmarks.reshape(len(landmarks), -1) / size - 0.5, np.nan
                ).astype(np.float32),
                pose=np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (len(frame_times), 1)),
            )
        )
    return clips


def _inference_rtf(predictor, seconds: float) -> float:
    """Seconds of compute per second of audio for one long synthetic clip, 1 thread."""
    clip = synthetic_clips(
        n_clips=1,
        seconds=seconds,
        feature_dim=predictor.model_config.feature_dim,
        missing_fraction=0,
    )[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictor.predict_targets(clip)  # warm-up
        start = time.perf_counter()
        predictor.predict_targets(clip)
        return (time.perf_counter() - start) / seconds
    finally:
        torch.set_num_threads(threads)


def run(quick: bool = False) -> dict:
    from wav2kp.config import TrainConfig
    from wav2kp.training.inference import load_predictor
    from wav2kp.training.train import train_model

    # a stand-in for the demo corpora (default about 5 minutes of video, tiny about 1)
    total_seconds = 60.0 if quick else 240.0
    n_clips = 12 if quick else 48
    clips = synthetic_clips(n_clips=n_clips, seconds=total_seconds / n_clips, seed=0)
    train, val = clips[:-2], clips[-2:]
    results: dict = {"train_frames": int(sum(c.n_frames for c in train))}
    epochs = {"default": 4 if quick else 20, "original": 2 if quick else 5}
    with tempfile.TemporaryDirectory() as tmp:
        predictors = {}
        for name in ("default", "original"):
            config = TrainConfig.preset(
                name, epochs=epochs[name], target_space="frame", patience=0, features=None
            )
            result = train_model(train, val, config, Path(tmp) / name, progress=False)
            best = result.history.loc[result.history["val_loss"].idxmin()]
            results[name] = {
                "seconds_per_epoch": result.seconds_per_epoch,
                "epochs": result.epochs_run,
                "best_epoch": int(best["epoch"]),
                "seconds_to_best": float(
                    result.history["seconds"].iloc[: int(best["epoch"])].sum()
                ),
                "best_val_loss": float(best["val_loss"]),
                "n_parameters": result.n_parameters,
            }
            predictors[name] = load_predictor(result.best_checkpoint)
        seconds = 60.0 if quick else 300.0
        for name, predictor in predictors.items():
            rtf = _inference_rtf(predictor, seconds)
            results[name]["inference_rtf_1thread"] = rtf
            results[name]["seconds_per_audio_hour"] = rtf * 3600
    ratio_epoch = results["default"]["seconds_per_epoch"] / results["original"]["seconds_per_epoch"]
    ratio_rtf = (
        results["default"]["inference_rtf_1thread"] / results["original"]["inference_rtf_1thread"]
    )
    results["default_vs_original_epoch_time"] = ratio_epoch
    results["default_vs_original_inference"] = ratio_rtf
    for name in ("default", "original"):
        r = results[name]
        print(
            f"{name:8s} {r['n_parameters']:>9,d} params  {r['seconds_per_epoch']:.2f} s/epoch  "
            f"best epoch {r['best_epoch']} after {r['seconds_to_best']:.1f} s  "
            f"inference {r['seconds_per_audio_hour']:.2f} s per audio hour (1 thread)"
        )
    print(f"default/original: epoch time x{ratio_epoch:.2f}, inference time x{ratio_rtf:.3f}")
    print(
        f"target: 1 h audio < 2 s -> default {'OK' if results['default']['seconds_per_audio_hour'] < 2 else 'MISSED'}"
    )
    return results
