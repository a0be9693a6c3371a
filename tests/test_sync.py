"""A/V lag from loudness vs mouth opening: recovers a known shift, flags outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter1d
from test_dataset import synthetic_face, write_fake_corpus
from wav2kp.features.sync import (
    audio_envelope,
    corpus_av_lags,
    estimate_av_lag,
    flag_outliers,
    mouth_opening,
)
from wav2kp.windowing.targets import apply_pose

SR, FPS = 16000, 30000 / 1001


def speech_like(duration: float, lag_s: float, seed: int):
    """Syllable-rate loudness envelope; the mouth follows it ``lag_s`` later."""
    rng = np.random.default_rng(seed)
    t_fine = np.arange(int(duration * 1000)) / 1000
    envelope = np.clip(gaussian_filter1d(rng.standard_normal(len(t_fine)), 40), 0, None)
    envelope /= envelope.max()
    t_audio = np.arange(int(duration * SR)) / SR
    amplitude = np.interp(t_audio, t_fine, envelope)
    audio = amplitude * np.sin(2 * np.pi * 150 * t_audio) + 1e-3 * rng.standard_normal(len(t_audio))
    frame_times = np.arange(int(duration * FPS)) / FPS
    opening = np.interp(frame_times - lag_s, t_fine, envelope)
    return frame_times, opening, audio


@settings(max_examples=10, deadline=None)
@given(lag_ms=st.integers(-150, 150), seed=st.integers(0, 1000))
def test_recovers_a_known_lag(lag_ms, seed):
    frame_times, opening, audio = speech_like(4.0, lag_ms / 1000, seed)
    result = estimate_av_lag(frame_times, opening, audio, SR, max_lag_ms=300)
    assert abs(result["lag_ms"] - lag_ms) <= 20  # within about half a video frame
    assert result["correlation"] > 0.5


def test_missing_frames_and_short_clips():
    frame_times, opening, audio = speech_like(3.0, 0.05, 1)
    opening[10:20] = np.nan
    assert abs(estimate_av_lag(frame_times, opening, audio, SR)["lag_ms"] - 50) <= 20
    short = estimate_av_lag(frame_times[:10], opening[:10], audio, SR)
    assert np.isnan(short["lag_ms"])


def test_envelope_is_louder_where_the_signal_is():
    t = np.arange(SR) / SR
    tone, hum = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 50 * t)
    audio = np.concatenate([np.zeros(SR), 0.5 * tone, 0.5 * hum])
    env = audio_envelope(audio, SR, np.array([0.5, 1.5, 2.5]))
    assert env[1] - env[0] == pytest.approx(40)  # silence clipped 40 dB below the peak
    assert env[1] - env[2] > 20  # mains hum is outside the speech band
    raw = audio_envelope(audio, SR, np.array([0.5, 1.5]), band_hz=None, floor_db=None)
    assert raw[1] - raw[0] > 50


def test_mouth_opening_is_iod_normalised():
    faces = np.stack([synthetic_face(0.0), synthetic_face(0.2)])
    pose = np.array([[100.0, 0.0, 50, 50], [300.0, 0.0, 10, 10]])
    opening = mouth_opening(apply_pose(faces, pose))
    np.testing.assert_allclose(opening, [0.06, 0.26], atol=1e-9)


def test_outliers_flagged_against_the_corpus_median():
    table = pd.DataFrame(
        {"lag_ms": [0, 5, -5, 10, 0, 200, 30], "correlation": [0.8, 0.7, 0.9, 0.6, 0.8, 0.7, 0.05]}
    )
    flagged = flag_outliers(table)
    assert flagged["outlier"].tolist() == [False] * 5 + [True, False]
    assert flagged["weak"].tolist() == [False] * 6 + [True]
    at_limit = flag_outliers(table.assign(at_limit=[False] * 5 + [True, False]))
    assert at_limit["weak"].tolist() == [False] * 5 + [True, True]
    assert not at_limit["outlier"].any()


def test_a_lag_beyond_the_search_range_is_at_limit():
    frame_times, opening, audio = speech_like(4.0, 0.25, 3)
    result = estimate_av_lag(frame_times, opening, audio, SR, max_lag_ms=100)
    assert result["at_limit"] and result["lag_ms"] == 100


def test_corpus_lags_on_generated_clips(tmp_path):
    write_fake_corpus(tmp_path, n_sentences=3, speakers=("ann",))
    (tmp_path / "interim" / "fake" / "extracted" / "ann_neutral_s02.npz").write_bytes(b"x")
    with pytest.warns(UserWarning, match="ann_neutral_s02"):
        lags = corpus_av_lags("fake", root=tmp_path)
    assert set(lags["clip_id"]) == {"ann_neutral_s00", "ann_neutral_s01"}
    assert (lags["lag_ms"].abs() <= 40).all()
    assert {"weak", "outlier"} <= set(lags.columns)
