"""Audio context windows for each keypoint frame.

``mode="aligned"`` (ours): the window of keypoint frame i is centred on the feature frame
nearest in time to the frame's *real timestamp* (from the video stream, so variable frame
rates are handled) and spans ``past_ms`` before to ``future_ms`` after it. Published work
lets the model hear 100-200 ms of future audio (ObamaNet: 200 ms delay; Eskimez et al.:
0-80 ms), because lips move ahead of the sound they make. The defaults (100 ms past,
200 ms future) are the default model's window (``wav2kp cv --study design`` compares).
Context frames beyond the clip's audio (also whole windows of video frames after the audio
ends: the window keeps its place in time) are padded by repeating the edge frame
(``pad="edge"``) or with zeros (``pad="zeros"``: with normalised features, zero is the
training mean, i.e. "average sound").

``mode="original"`` reproduces the original project: keypoints upsampled x3 by linear
interpolation, window start ``idx = round(i * n_feature_frames / n_keypoint_frames)``,
40 feature frames forward only, clamped so the window ends at the last feature frame.
``original_drift`` measures how far that scheme's audio sits from the true time of each frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wav2kp.config import WindowConfig


def feature_hop(feature_times: np.ndarray) -> float:
    """The feature frame step in seconds (median spacing)."""
    feature_times = np.asarray(feature_times, dtype=np.float64)
    if len(feature_times) < 2:
        raise ValueError("need at least two feature frames to know the feature hop")
    return float(np.median(np.diff(feature_times)))


def nearest_feature_index(feature_times: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """For each frame time, the index of the feature frame whose centre is nearest."""
    feature_times = np.asarray(feature_times, dtype=np.float64)
    frame_times = np.asarray(frame_times, dtype=np.float64)
    right = np.clip(np.searchsorted(feature_times, frame_times), 1, len(feature_times) - 1)
    left = right - 1
    take_left = np.abs(frame_times - feature_times[left]) <= np.abs(
        feature_times[right] - frame_times
    )
    return np.where(take_left, left, right).astype(np.int64)


def centre_feature_index(feature_times: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Like ``nearest_feature_index``, but frames before the first / after the last feature
    frame (video longer than its audio) get the index the feature grid would have there
    (negative, or >= F), so their windows stay time-aligned and are padded instead of
    sliding onto the edge audio."""
    feature_times = np.asarray(feature_times, dtype=np.float64)
    frame_times = np.asarray(frame_times, dtype=np.float64)
    hop = feature_hop(feature_times)
    index = nearest_feature_index(feature_times, frame_times)
    before = frame_times < feature_times[0]
    after = frame_times > feature_times[-1]
    index[before] = np.round((frame_times[before] - feature_times[0]) / hop).astype(np.int64)
    index[after] = (
        len(feature_times)
        - 1
        + np.round((frame_times[after] - feature_times[-1]) / hop).astype(np.int64)
    )
    return index


def original_window_starts(n_features: int, n_keypoints: int, window: int = 40) -> np.ndarray:
    """The original index formula: ``round(i * n_features / n_keypoints)``, clamped so a
    forward window of ``window`` frames stays inside the features."""
    if n_features < 1 or n_keypoints < 1:
        raise ValueError(f"need features and keypoints, got {n_features} and {n_keypoints}")
    i = np.arange(n_keypoints)
    starts = np.round(i * n_features / n_keypoints).astype(np.int64)
    return np.clip(starts, 0, max(n_features - window, 0))


def window_indices(
    feature_times: np.ndarray, frame_times: np.ndarray, config: WindowConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) feature indices of every keypoint frame's window and a (T, C) mask of the
    ones that fall inside the features (False = padding)."""
    feature_times = np.asarray(feature_times, dtype=np.float64)
    n_features = len(feature_times)
    past, future = config.context_frames(feature_hop(feature_times))
    offsets = np.arange(-past, future + 1)
    if config.mode == "original":
        centres = original_window_starts(n_features, len(frame_times), config.original_window)
    else:
        centres = centre_feature_index(feature_times, frame_times)
    indices = centres[:, None] + offsets[None, :]
    inside = (indices >= 0) & (indices < n_features)
    return np.clip(indices, 0, n_features - 1), inside


def build_windows(
    features: np.ndarray,
    feature_times: np.ndarray,
    frame_times: np.ndarray,
    config: WindowConfig | None = None,
) -> np.ndarray:
    """(T, C, D) float32 audio context of every keypoint frame (see module doc)."""
    config = config or WindowConfig()
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) != len(feature_times):
        raise ValueError(
            f"features must be (F, D) with F = len(feature_times) = {len(feature_times)}, "
            f"got {features.shape}"
        )
    indices, inside = window_indices(feature_times, frame_times, config)
    windows = features[indices]
    if config.pad == "zeros":
        windows[~inside] = 0.0
    return windows


def window_times(
    feature_times: np.ndarray, frame_times: np.ndarray, config: WindowConfig | None = None
) -> np.ndarray:
    """(T, C) centre time of every context frame (padding at the edges gets the time the
    frame would have had), for plotting the window geometry."""
    config = config or WindowConfig()
    feature_times = np.asarray(feature_times, dtype=np.float64)
    hop = feature_hop(feature_times)
    past, future = config.context_frames(hop)
    if config.mode == "original":
        first = original_window_starts(len(feature_times), len(frame_times), config.original_window)
    else:
        first = centre_feature_index(feature_times, frame_times) - past
    inside = np.clip(first, 0, len(feature_times) - 1)
    start_times = feature_times[inside] + (first - inside) * hop
    return start_times[:, None] + np.arange(past + 1 + future)[None, :] * hop


def upsample_linear(values: np.ndarray, factor: int = 3) -> np.ndarray:
    """``torch.nn.Upsample(scale_factor=factor, mode='linear')`` along axis 0 (the
    original's keypoint upsampling; align_corners=False), for any trailing shape."""
    import torch

    values = np.asarray(values)
    flat = torch.from_numpy(values.reshape(len(values), -1).T[None].astype(np.float32))
    up = torch.nn.Upsample(scale_factor=factor, mode="linear")(flat)[0].T.numpy()
    return up.reshape(len(values) * factor, *values.shape[1:])


def upsampled_positions(n_frames: int, factor: int = 3) -> np.ndarray:
    """Fractional source frame of each upsampled frame (align_corners=False rule)."""
    out = (np.arange(n_frames * factor) + 0.5) / factor - 0.5
    return np.clip(out, 0, n_frames - 1)


def original_windows(
    features: np.ndarray, landmarks: np.ndarray, window: int = 40, factor: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The original training pairs: (N, window, D) forward feature windows and (N, 68, 2)
    keypoints upsampled x``factor``; the last upsampled frame is dropped and both are cut
    to the shorter length, as the original code did."""
    features = np.asarray(features, dtype=np.float32)
    keypoints = upsample_linear(np.asarray(landmarks, dtype=np.float32), factor)
    starts = original_window_starts(len(features), len(keypoints), window)[:-1]
    windows = features[np.clip(starts[:, None] + np.arange(window)[None, :], 0, len(features) - 1)]
    n = min(len(windows), len(keypoints))
    return windows[:n], keypoints[:n]


def original_drift(
    frame_times: np.ndarray,
    feature_times: np.ndarray,
    window: int = 40,
    factor: int = 3,
) -> pd.DataFrame:
    """How far the original scheme's audio sits from the truth, per upsampled frame.

    Columns: ``time`` (true time of the upsampled keypoint, interpolated between the real
    frame timestamps), ``start_offset_s`` (window start time - true time), and
    ``centre_offset_s`` (window centre - true time). Aligned windows have centre offset
    within half a feature hop of 0 everywhere.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    feature_times = np.asarray(feature_times, dtype=np.float64)
    n_up = len(frame_times) * factor
    true_times = np.interp(
        upsampled_positions(len(frame_times), factor), np.arange(len(frame_times)), frame_times
    )
    starts = original_window_starts(len(feature_times), n_up, window)
    hop = feature_hop(feature_times)
    start_times = feature_times[starts]
    centre_times = start_times + (window - 1) / 2 * hop
    return pd.DataFrame(
        {
            "time": true_times[: n_up - 1],
            "start_offset_s": (start_times - true_times)[: n_up - 1],
            "centre_offset_s": (centre_times - true_times)[: n_up - 1],
        }
    )


def aligned_offsets(
    frame_times: np.ndarray, feature_times: np.ndarray, config: WindowConfig | None = None
) -> np.ndarray:
    """Window centre time - frame time for every keypoint frame (aligned mode)."""
    config = config or WindowConfig()
    past, _ = config.context_frames(feature_hop(feature_times))
    centres = window_times(feature_times, frame_times, config)[:, past]
    return centres - np.asarray(frame_times, dtype=np.float64)
