"""Feature and window speed on CPU.

* MFCC real-time factor: seconds of audio per second of compute for a 60 s signal
  (10 s with ``quick``), with our cached transform, against the original's way (a new
  ``torchaudio.transforms.MFCC`` built for every clip) measured in the same run.
* Window building: keypoint frames per second for a clip of that length (29.97 fps,
  200 ms past + 200 ms future), vectorised ``build_windows`` against a per-frame Python
  loop doing the same slicing.
"""

from __future__ import annotations

import time

import numpy as np

from wav2kp.config import FeatureConfig, WindowConfig
from wav2kp.features.features import compute_features
from wav2kp.windowing.windowing import build_windows, nearest_feature_index


def _best_of(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _windows_by_loop(features, feature_times, frame_times, past, future):
    out = np.empty((len(frame_times), past + 1 + future, features.shape[1]), np.float32)
    last = len(features) - 1
    for i, t in enumerate(frame_times):
        centre = int(np.argmin(np.abs(feature_times - t)))
        for j, k in enumerate(range(centre - past, centre + future + 1)):
            out[i, j] = features[min(max(k, 0), last)]
    return out


def run(quick: bool = False) -> dict:
    import torch
    import torchaudio

    torch.set_num_threads(1)  # comparable numbers on a shared machine
    seconds = 10.0 if quick else 60.0
    repeats = 3 if quick else 7  # best of N: the machine is shared, the minimum is the signal
    sr = 16000
    rng = np.random.default_rng(0)
    signal = (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32)
    results: dict = {"audio_seconds": seconds, "threads": 1}

    for name, config in {
        "mfcc": FeatureConfig(),
        "mfcc_deltas": FeatureConfig(deltas=True),
        "logmel64": FeatureConfig(kind="logmel", n_mels=64),
    }.items():
        compute_features(signal[:sr], sr, config)  # warm the cached transform
        elapsed = _best_of(lambda config=config: compute_features(signal, sr, config), repeats)
        results[f"{name}_realtime_factor"] = seconds / elapsed

    def original_way():
        mfcc = torchaudio.transforms.MFCC(sample_rate=16000, melkwargs={"n_mels": 40})
        return mfcc(torch.from_numpy(signal))

    reference = _best_of(original_way, repeats)
    results["original_mfcc_realtime_factor"] = seconds / reference
    results["mfcc_speedup_vs_original"] = (
        results["mfcc_realtime_factor"] / results["original_mfcc_realtime_factor"]
    )

    features, feature_times = compute_features(signal, sr)
    frame_times = np.arange(int(seconds * 30000 / 1001)) * 1001 / 30000
    config = WindowConfig()
    past, future = config.context_frames(feature_times[1] - feature_times[0])
    fast = _best_of(lambda: build_windows(features, feature_times, frame_times, config), repeats)
    slow = _best_of(lambda: _windows_by_loop(features, feature_times, frame_times, past, future), 1)
    same = np.array_equal(
        build_windows(features, feature_times, frame_times, config),
        _windows_by_loop(features, feature_times, frame_times, past, future),
    )
    results.update(
        {
            "window_frames": len(frame_times),
            "windows_per_s": len(frame_times) / fast,
            "loop_windows_per_s": len(frame_times) / slow,
            "windows_speedup_vs_loop": slow / fast,
            "windows_match_loop": bool(same),
            "nearest_index_per_s": len(frame_times)
            / _best_of(lambda: nearest_feature_index(feature_times, frame_times), repeats),
        }
    )
    for key, value in results.items():
        print(f"{key:32s} {value:,.2f}" if isinstance(value, float) else f"{key:32s} {value}")
    return results
