"""Window alignment properties, the original scheme and its drift."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from wav2kp.config import WindowConfig
from wav2kp.windowing.windowing import (
    aligned_offsets,
    build_windows,
    centre_feature_index,
    nearest_feature_index,
    original_drift,
    original_window_starts,
    original_windows,
    upsample_linear,
    window_times,
)

HOP = 0.0125


def features_for(duration: float, dim: int = 3):
    n = 1 + int(duration * 16000) // 200
    times = np.arange(n) * HOP
    # Feature value = its own index, so a window's content tells which frames it holds.
    features = np.repeat(np.arange(n, dtype=np.float32)[:, None], dim, axis=1)
    return features, times


@st.composite
def vfr_frame_times(draw):
    """Variable-frame-rate timestamps inside the audio: random gaps of 10-100 ms."""
    n = draw(st.integers(1, 60))
    gaps = draw(st.lists(st.floats(0.01, 0.1), min_size=n, max_size=n))
    start = draw(st.floats(0.0, 0.2))
    return start + np.cumsum(gaps)


@settings(max_examples=60, deadline=None)
@given(
    frame_times=vfr_frame_times(),
    past_ms=st.floats(0, 300),
    future_ms=st.floats(0, 300),
    pad=st.sampled_from(["edge", "zeros"]),
    audio_extra=st.floats(-0.5, 0.2),
)
def test_aligned_window_centres_on_the_real_timestamp(
    frame_times, past_ms, future_ms, pad, audio_extra
):
    # audio_extra < 0: the video runs on after the audio ends (happens with real files).
    features, times = features_for(max(frame_times[-1] + audio_extra, 0.05))
    features += 1  # so that zero padding is recognisable
    config = WindowConfig(past_ms=past_ms, future_ms=future_ms, pad=pad)
    windows = build_windows(features, times, frame_times, config)
    past, future = config.context_frames(HOP)
    assert past == round(past_ms / 1000 / HOP) and future == round(future_ms / 1000 / HOP)
    assert windows.shape == (len(frame_times), past + 1 + future, 3)
    # Every window is centred on the frame's timestamp, inside the audio or not.
    assert np.all(np.abs(aligned_offsets(frame_times, times, config)) <= HOP / 2 + 1e-9)
    wt = window_times(times, frame_times, config)
    np.testing.assert_allclose(np.diff(wt, axis=1), HOP)
    inside = frame_times <= times[-1] + HOP / 2
    centre_index = windows[inside, past, 0] - 1  # the feature index held at the window centre
    assert np.all(np.abs(times[centre_index.astype(int)] - frame_times[inside]) <= HOP / 2 + 1e-9)
    # Frames after the audio: padding only (the last frame repeated, or zeros).
    late = frame_times > times[-1] + (future + 0.5) * HOP
    padding = len(times) if pad == "edge" else 0
    assert np.all(windows[late, past:, 0] == padding)


def test_edge_and_zero_padding():
    features, times = features_for(0.5)
    frame_times = np.array([0.0, times[-1]])
    config = WindowConfig(past_ms=50, future_ms=50)  # 4 frames each side
    edge = build_windows(features, times, frame_times, config)
    assert (edge[0, :4] == 0).all() and edge[0, 4, 0] == 0  # frame 0 repeated
    assert (edge[1, 5:] == len(times) - 1).all()  # last frame repeated
    zeros = build_windows(
        features + 1, times, frame_times, WindowConfig(past_ms=50, future_ms=50, pad="zeros")
    )
    assert (zeros[0, :4] == 0).all() and zeros[0, 4, 0] == 1
    assert (zeros[1, 5:] == 0).all()


def test_nearest_feature_index_breaks_ties_and_clips():
    times = np.arange(5) * 0.1
    idx = nearest_feature_index(times, np.array([-1.0, 0.04, 0.06, 0.25, 9.0]))
    assert idx.tolist() == [0, 0, 1, 2, 4]


def test_config_validates():
    with pytest.raises(ValueError, match="mode"):
        WindowConfig(mode="centred")
    with pytest.raises(ValueError, match="pad"):
        WindowConfig(pad="reflect")
    with pytest.raises(ValueError, match="past_ms"):
        WindowConfig(past_ms=-1)
    assert WindowConfig.from_dict(WindowConfig(past_ms=80).to_dict()) == WindowConfig(past_ms=80)


@settings(max_examples=40, deadline=None)
@given(n_features=st.integers(41, 2000), n_kp=st.integers(1, 2000))
def test_original_starts_follow_the_original_formula(n_features, n_kp):
    starts = original_window_starts(n_features, n_kp, 40)
    for i in range(0, n_kp, max(n_kp // 7, 1)):
        expected = min(round(i * n_features / n_kp), n_features - 40)
        assert starts[i] == expected


def test_original_windows_reproduce_the_original_pairs():
    rng = np.random.default_rng(1)
    n_frames, n_features = 30, 81  # 1 s of video at 30 fps, 1 s of MFCC at 80 fps
    landmarks = rng.normal(size=(n_frames, 68, 2)).astype(np.float32)
    features = rng.normal(size=(n_features, 5)).astype(np.float32)
    windows, keypoints = original_windows(features, landmarks)
    assert keypoints.shape == (3 * n_frames - 1, 68, 2)  # x3, last frame dropped
    assert windows.shape == (3 * n_frames - 1, 40, 5)
    # Upsampling as torch.nn.Upsample(scale_factor=3, mode="linear") did.
    reference = torch.nn.Upsample(scale_factor=3, mode="linear")(
        torch.from_numpy(landmarks.reshape(n_frames, -1).T[None].copy())
    )[0].T.numpy()
    np.testing.assert_allclose(keypoints.reshape(len(keypoints), -1), reference[:-1], atol=1e-6)
    for i in (0, 17, 50, 88):
        idx = min(round(i * n_features / (3 * n_frames)), n_features - 40)
        np.testing.assert_array_equal(windows[i], features[idx : idx + 40])


def test_upsample_linear_interpolates_between_frames():
    values = np.array([0.0, 3.0, 6.0])
    up = upsample_linear(values, 3)
    # align_corners=False: output i samples input position (i + 0.5) / 3 - 0.5.
    positions = np.clip((np.arange(9) + 0.5) / 3 - 0.5, 0, 2)
    np.testing.assert_allclose(up, np.interp(positions, [0, 1, 2], values), atol=1e-6)


def test_original_drift_shows_the_forward_offset_and_duration_mismatch():
    fps = 30000 / 1001
    frame_times = np.arange(300) / fps  # 10 s
    _, times = features_for(10.0)
    drift = original_drift(frame_times, times)
    assert len(drift) == 3 * 300 - 1
    # A 40-frame forward window is centred ~19.5 hops = 244 ms after the frame.
    assert abs(drift["centre_offset_s"].median() - 19.5 * HOP) < 0.03
    # Audio 5 % longer than video: the proportional index formula drifts along the clip.
    _, long_times = features_for(10.5)
    late = original_drift(frame_times, long_times)
    start = late["start_offset_s"].iloc[:30].mean()
    end = late["start_offset_s"].iloc[-60:-30].mean()
    assert end - start > 0.3


def test_frames_outside_the_audio_get_the_grid_index_they_would_have_there():
    # features every 10 ms from 0.1 s to 0.29 s; video frames before, on and after them
    times = 0.1 + 0.01 * np.arange(20)
    frames = np.array([0.0, 0.04, 0.08, 0.1, 0.12, 0.33])
    # before: round((t - 0.1) / 0.01) = -10, -6, -2; after: 19 + round((0.33 - 0.29) / 0.01)
    assert centre_feature_index(times, frames).tolist() == [-10, -6, -2, 0, 2, 23]
    # windows of 2 frames each side (20 ms): the one at 0.08 s holds feature 0 at its end
    features = np.arange(1, 21, dtype=np.float32)[:, None]  # feature k holds k + 1
    config = WindowConfig(past_ms=20, future_ms=20, pad="zeros")
    windows = build_windows(features, times, frames, config)[..., 0]
    assert windows[2].tolist() == [0, 0, 0, 0, 1]  # indices -4..0
    assert windows[0].tolist() == [0] * 5 and windows[3].tolist() == [0, 0, 1, 2, 3]
    np.testing.assert_allclose(
        window_times(times, frames, config)[2], 0.08 + 0.01 * np.arange(-2, 3)
    )
