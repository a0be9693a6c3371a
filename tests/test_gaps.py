"""Short gaps interpolated (in real time) and flagged; long gaps left missing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from wav2kp.extraction.gaps import (
    DETECTED,
    INTERPOLATED,
    MISSING,
    GapParams,
    clip_verdict,
    fill_gaps,
    find_runs,
    status_counts,
)


def test_find_runs():
    assert find_runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert find_runs(np.zeros(3, bool)) == []
    assert find_runs(np.ones(2, bool)) == [(0, 2)]


def test_short_gap_interpolated_linearly_in_time_on_irregular_times():
    times = np.array([0.0, 0.03, 0.10, 0.12, 0.2])  # variable frame rate
    values = (times * 100.0)[:, None, None].repeat(3, axis=1)  # a linear trajectory
    values[1:4] = np.nan
    filled, status = fill_gaps(values, times, GapParams(max_gap_frames=3, max_gap_seconds=0.3))
    assert status.tolist() == [DETECTED, INTERPOLATED, INTERPOLATED, INTERPOLATED, DETECTED]
    np.testing.assert_allclose(filled[:, 0, 0], times * 100.0, atol=1e-4)


def test_long_gap_left_nan_and_flagged_missing():
    times = np.arange(20) / 25.0
    values = np.ones((20, 4, 2), np.float32)
    values[5:12] = np.nan  # 7 frames > 5
    filled, status = fill_gaps(values, times, GapParams(max_gap_frames=5))
    assert (status[5:12] == MISSING).all() and np.isnan(filled[5:12]).all()
    assert (status[:5] == DETECTED).all() and (status[12:] == DETECTED).all()


def test_gap_too_long_in_time_is_not_bridged():
    times = np.array([0.0, 0.1, 0.2, 0.3])  # 10 fps: one missed frame bridges 0.2 s
    values = np.ones((4, 1), np.float32)
    values[1] = np.nan
    _, status = fill_gaps(values, times, GapParams(max_gap_frames=5, max_gap_seconds=0.15))
    assert status[1] == MISSING
    _, status = fill_gaps(values, times, GapParams(max_gap_frames=5, max_gap_seconds=0.25))
    assert status[1] == INTERPOLATED


def test_edges_are_never_extrapolated_and_partly_nan_frames_count_as_missed():
    times = np.arange(6) / 30.0
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    values[0] = np.nan
    values[3, 1] = np.nan  # half-missing frame
    values[5] = np.nan
    filled, status = fill_gaps(values, times)
    assert status.tolist() == [MISSING, DETECTED, DETECTED, INTERPOLATED, DETECTED, MISSING]
    np.testing.assert_allclose(filled[3], (values[2] + values[4]) / 2)
    assert np.isnan(filled[0]).all() and np.isnan(filled[5]).all()


def test_mismatched_lengths_refused():
    import pytest

    with pytest.raises(ValueError, match="frames"):
        fill_gaps(np.zeros((3, 2)), np.zeros(4))


def test_verdict_rejects_clips_with_too_little_face():
    status = np.array([DETECTED] * 4 + [MISSING] * 6, np.int8)
    ok, reason = clip_verdict(status, GapParams(min_detection_rate=0.5))
    assert not ok and "40%" in reason and "10 frames" in reason
    assert clip_verdict(status, GapParams(min_detection_rate=0.3)) == (True, "")
    assert clip_verdict(np.zeros(0, np.int8))[0] is False
    assert status_counts(status) == {"detected": 4, "interpolated": 0, "missing": 6}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(1, 6))
def test_detected_frames_untouched_and_fills_stay_between_neighbours(missed, max_gap):
    rng = np.random.default_rng(len(missed))
    times = np.cumsum(rng.uniform(0.02, 0.05, len(missed)))
    values = rng.normal(size=(len(missed), 2)).astype(np.float32)
    values[np.array(missed)] = np.nan
    filled, status = fill_gaps(values, times, GapParams(max_gap_frames=max_gap, max_gap_seconds=10))
    detected = ~np.array(missed)
    np.testing.assert_array_equal(filled[detected], values[detected])
    assert ((status == DETECTED) == detected).all()
    assert np.isnan(filled[status == MISSING]).all()
    for start, stop in find_runs(status == INTERPOLATED):
        assert stop - start <= max_gap and start > 0 and stop < len(missed)
        lo = np.minimum(filled[start - 1], filled[stop]) - 1e-5
        hi = np.maximum(filled[start - 1], filled[stop]) + 1e-5
        assert ((filled[start:stop] >= lo) & (filled[start:stop] <= hi)).all()
