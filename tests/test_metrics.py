"""Metrics on hand-made talking-face sequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wav2kp import metrics


def template_face(iod: float = 100.0, centre=(200.0, 220.0)) -> np.ndarray:
    """A rough 68-point frontal face: jaw arc, brows, nose, eyes, outer and inner lips,
    outer eye corners 36/45 exactly ``iod`` apart."""
    s = iod / 100.0
    pts = np.zeros((68, 2))
    jaw_angle = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    pts[0:17] = np.c_[75 * np.cos(jaw_angle), 20 + 80 * np.sin(jaw_angle)]
    pts[17:22] = np.c_[np.linspace(-60, -15, 5), np.full(5, -35.0)]
    pts[22:27] = np.c_[np.linspace(15, 60, 5), np.full(5, -35.0)]
    pts[27:31] = np.c_[np.zeros(4), np.linspace(-15, 20, 4)]
    pts[31:36] = np.c_[np.linspace(-15, 15, 5), np.full(5, 28.0)]
    eye = np.array([[-15, 0], [-8, -5], [8, -5], [15, 0], [8, 5], [-8, 5]], float)
    pts[36:42] = eye + [-35, -15]
    pts[42:48] = eye + [35, -15]
    outer = np.linspace(np.pi, -np.pi, 13)[:12]
    pts[48:60] = np.c_[30 * np.cos(outer), 55 - 10 * np.sin(outer)]
    inner = np.array(
        [np.pi, np.pi / 2, np.pi / 2, np.pi / 2, 0, -np.pi / 2, -np.pi / 2, -np.pi / 2]
    )
    pts[60:68] = np.c_[20 * np.cos(inner), 55 - 3 * np.sin(inner)]
    pts[[61, 67], 0] = -8
    pts[[63, 65], 0] = 8
    pts[[62, 66], 0] = 0
    return pts * s + np.asarray(centre)


LOWER_LIP = np.r_[55:60, 65:68, 6:11]  # lower lip + chin move down when the mouth opens


def talking_face(opening: np.ndarray, iod: float = 100.0, seed: int = 0) -> np.ndarray:
    """(T, 68, 2) faces whose mouth opens by ``opening`` (IOD units) over time, with a
    small smooth head drift."""
    base = template_face(iod)
    rng = np.random.default_rng(seed)
    frames = np.repeat(base[None], len(opening), axis=0)
    frames[:, LOWER_LIP, 1] += (np.asarray(opening) * iod)[:, None]
    drift = np.cumsum(rng.normal(0, 0.05, size=(len(opening), 2)), axis=0)
    return frames + drift[:, None, :]


def speech_opening(n: int = 150, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * t / 9.0 + rng.uniform(0, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * t / 47.0)
    return 0.25 * syllables * envelope


def times(n: int, fps: float = 30000 / 1001) -> np.ndarray:
    return np.arange(n) / fps


def test_perfect_prediction_is_zero_error_r_one_offset_zero():
    true = talking_face(speech_opening())
    result = metrics.evaluate_sequence(true.copy(), true, times(len(true)))
    for key in ("mouth_lmd_iod", "mouth_lmd_px256", "face_lmd_iod", "lvd_mouth_iod", "lve_iod2"):
        assert result[key] == pytest.approx(0.0, abs=1e-12), key
    assert result["mouth_open_r"] == pytest.approx(1.0)
    assert result["variance_ratio"] == pytest.approx(1.0)
    assert result["mouth_jitter_ratio"] == pytest.approx(1.0)
    assert result["av_offset_ms"] == 0.0
    assert result["n_frames_scored"] == len(true)
    assert set(metrics.METRIC_DIRECTIONS) - set(metrics.FRAME_METRICS) <= set(result)
    frame = metrics.evaluate_frame_sequence(true.copy(), true, times(len(true)))
    assert {k: frame[k] for k in metrics.FRAME_METRICS} == dict.fromkeys(metrics.FRAME_METRICS, 0.0)


def test_frozen_mouth_has_zero_variance_ratio_and_undefined_r():
    true = talking_face(speech_opening())
    frozen = talking_face(np.full(len(true), 0.1))
    assert metrics.variance_ratio(frozen, true) == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(metrics.mouth_opening_correlation(frozen, true))
    assert np.isnan(metrics.av_offset_frames(frozen, true))
    # float32 rounding on a still mouth is not motion to correlate with
    rounded = frozen.astype(np.float32)
    assert metrics.variance_ratio(rounded, true) < 1e-3
    assert np.isnan(metrics.mouth_opening_correlation(rounded, true))
    assert metrics.mouth_lmd(frozen, true) > 0


@pytest.mark.parametrize("shift", [-3, 2, 5])
def test_prediction_shifted_by_k_frames_gives_offset_k_frames_in_ms(shift):
    opening = speech_opening(200)
    true = talking_face(opening)
    # pred[t] = true[t - shift]: the predicted mouth moves `shift` frames late
    shifted = np.roll(opening, shift)
    if shift > 0:
        shifted[:shift] = opening[0]
    else:
        shifted[shift:] = opening[-1]
    pred = talking_face(shifted)
    fps = 25.0
    result = metrics.evaluate_sequence(pred, true, times(len(true), fps))
    assert result["av_offset_frames"] == shift
    assert result["av_offset_ms"] == pytest.approx(shift * 1000.0 / fps)
    assert result["frame_period_ms"] == pytest.approx(40.0)


def test_lmd_is_invariant_to_translating_the_whole_prediction():
    true = talking_face(speech_opening())
    pred = talking_face(speech_opening() * 0.5, seed=3)
    moved = pred + np.array([37.0, -12.5])
    for fn in (metrics.mouth_lmd, metrics.face_lmd):
        assert fn(moved, true) == pytest.approx(fn(pred, true))
    # LVE is not centred: a translation must show up there
    assert metrics.lip_vertex_error(moved, true) > metrics.lip_vertex_error(pred, true)


def test_iod_normalisation_makes_lmd_scale_free():
    opening = speech_opening()
    small_true, small_pred = talking_face(opening, iod=50), talking_face(opening * 0.3, iod=50)
    big_true, big_pred = talking_face(opening, iod=200), talking_face(opening * 0.3, iod=200)
    px_small = metrics.mouth_lmd(small_pred, small_true, unit="px")
    px_big = metrics.mouth_lmd(big_pred, big_true, unit="px")
    assert px_big == pytest.approx(4 * px_small, rel=0.02)
    for unit in ("iod", "px256"):
        assert metrics.mouth_lmd(big_pred, big_true, unit=unit) == pytest.approx(
            metrics.mouth_lmd(small_pred, small_true, unit=unit), rel=0.02
        )
    # IOD units: pixel distance divided by the ground-truth inter-ocular distance
    assert metrics.mouth_lmd(big_pred, big_true) == pytest.approx(px_big / 200.0, rel=0.02)


def test_px256_follows_the_vid2vid_crop_convention():
    true = talking_face(speech_opening())
    pred = true + np.array([0.0, 0.0])
    pred[:, 48:68, 0] += 3.0 * (np.arange(20) % 2)[None]  # alternate points moved 3 px
    width = np.median(np.ptp(true[:, :, 0], axis=1))
    expected = metrics.mouth_lmd(pred, true, unit="px") * 256 / (2.5 * width)
    assert metrics.mouth_lmd(pred, true, unit="px256") == pytest.approx(expected)


def test_nan_frames_in_ground_truth_are_ignored():
    opening = speech_opening()
    true = talking_face(opening)
    pred = talking_face(opening * 0.5, seed=1)
    garbage_pred = pred.copy()
    missing = np.zeros(len(true), bool)
    missing[[5, 6, 7, 40, 90]] = True
    true_with_gaps = true.copy()
    true_with_gaps[missing] = np.nan
    garbage_pred[missing] = 1e6  # wildly wrong where there is no ground truth
    clean = metrics.evaluate_sequence(pred[~missing], true[~missing], times(len(true))[~missing])
    gappy = metrics.evaluate_sequence(garbage_pred, true_with_gaps, times(len(true)))
    assert gappy["n_frames_valid"] == len(true) - missing.sum()
    for key in ("mouth_lmd_iod", "face_lmd_iod", "lve_iod2", "mouth_open_r", "variance_ratio"):
        assert np.isfinite(gappy[key]), key
        assert gappy[key] == pytest.approx(clean[key]), key
    # the valid mask from ClipData excludes frames the same way
    masked = metrics.evaluate_sequence(garbage_pred, true, times(len(true)), valid=~missing)
    assert masked["mouth_lmd_iod"] == pytest.approx(clean["mouth_lmd_iod"])


def test_frame_coordinate_errors_by_hand():
    """Raw positions in pixels of vid2vid's crop set on the first frame: 256 px for 2.5
    face widths of the truth's first frame, no centring, no per-frame size."""
    face = np.zeros((3, 68, 2))
    face[:, :, 0] = np.linspace(0.0, 100.0, 68)  # a face box 100 px wide on the first frame
    face[:, :, 1] = 50.0
    face[1:] *= 2.0  # the head then comes twice as close: a bigger face, same crop
    pred = face.copy()
    pred[:, 48:68] += [3.0, 4.0]  # every lip point 5 px off, in every frame
    scale = 256 / (2.5 * 100.0)
    t = times(3)
    assert metrics.first_frame_crop_scale(face) == pytest.approx(1.024)
    frame = metrics.evaluate_frame_sequence(pred, face, t)
    assert frame["mouth_crop_px"] == pytest.approx(5 * scale)
    assert frame["face_crop_px"] == pytest.approx(5 * scale * 20 / 68)
    assert frame["lve_crop_px2"] == pytest.approx((5 * scale) ** 2)
    # the same 5 px shift of a centred mouth is no LMD error: the measures differ in kind
    assert metrics.mouth_lmd(pred, face, "px") == pytest.approx(0.0, abs=1e-12)
    # an error that scales with the face grows as the head comes closer (not invariant):
    # 5 px on the first frame, 10 px on the two bigger ones
    growing = face.copy()
    growing[:, 48:68] += np.array([[3.0, 4.0], [6.0, 8.0], [6.0, 8.0]])[:, None]
    assert metrics.crop_distance(growing, face) == pytest.approx((5 + 10 + 10) / 3 * scale)


def test_jitter_is_the_second_difference_of_the_chosen_points_by_hand():
    # one mouth point moves 0, 1, 4, 9 px (acceleration 2 px/frame^2), the rest stands
    still = np.zeros((4, 68, 2))
    still[:, 45, 0] = 60.0  # eye corners apart: a usable face
    moving = still.copy()
    moving[:, 50, 0] = [0.0, 1.0, 4.0, 9.0]
    assert metrics.jitter(moving, points=[50]) == pytest.approx(2.0)
    assert metrics.jitter(moving) == pytest.approx(2.0 / 68)
    # first differences would give 1, 3, 5: a mean of 3, not 2
    truth = still.copy()
    truth[:, 50, 0] = [0.0, 1.0, 2.0, 3.0 + 1.0]  # acceleration 0, 1: mean 0.5
    truth[:, :36] += np.array([0.0, 5.0, 0.0, 5.0])[:, None, None]  # a shaking head, no mouth
    assert metrics.jitter_ratio(moving, truth) == pytest.approx(2.0 / 0.5)
    assert metrics.jitter_ratio(moving, truth, points=metrics.FACE) < 1  # the head dominates


def test_jitter_ratio_above_one_for_added_noise():
    true = talking_face(speech_opening())
    noisy = true + np.random.default_rng(0).normal(0, 1.0, size=true.shape)
    assert metrics.jitter_ratio(noisy, true) > 1.5
    assert metrics.jitter_ratio(true, true) == pytest.approx(1.0)


def test_lvd_punishes_wrong_motion_not_a_constant_offset():
    true = talking_face(speech_opening())
    assert metrics.landmark_velocity_difference(true + 5.0, true) == pytest.approx(0.0, abs=1e-12)
    reversed_motion = talking_face(speech_opening()[::-1])
    assert metrics.landmark_velocity_difference(reversed_motion, true) > 0.005


def test_mouth_opening_reads_inner_lip_gap_over_iod():
    opening = speech_opening()
    face = talking_face(opening, iod=80)
    base_gap = 6 * 0.8 / 80  # template inner lip gap (6 units at scale 0.8) in IOD units
    assert metrics.mouth_opening(face) == pytest.approx(opening + base_gap)


def test_mouth_opening_ignores_head_roll_and_scale():
    opening = speech_opening()
    face = talking_face(opening)
    angle = np.deg2rad(np.linspace(-20, 20, len(face)))[:, None]
    scale = np.linspace(0.7, 1.3, len(face))[:, None]
    x, y = face[..., 0] - 200, face[..., 1] - 220
    rolled = np.stack(
        [
            scale * (np.cos(angle) * x - np.sin(angle) * y),
            scale * (np.sin(angle) * x + np.cos(angle) * y),
        ],
        axis=-1,
    )
    assert metrics.mouth_opening(rolled) == pytest.approx(metrics.mouth_opening(face))
    assert metrics.mouth_opening_correlation(rolled, face) == pytest.approx(1.0)


def test_bad_shapes_are_refused_with_a_clear_message():
    true = talking_face(speech_opening(20))
    with pytest.raises(ValueError, match="prediction shape"):
        metrics.mouth_lmd(true[:10], true)
    with pytest.raises(ValueError, match="68, 2"):
        metrics.mouth_lmd(true[:, :20], true[:, :20])
    with pytest.raises(ValueError, match="frame_times"):
        metrics.evaluate_sequence(true, true, times(5))


def test_all_frames_missing_gives_nan_not_an_error():
    true = np.full((30, 68, 2), np.nan)
    result = metrics.evaluate_sequence(np.zeros((30, 68, 2)), true, times(30))
    assert result["n_frames_scored"] == 0
    assert np.isnan(result["mouth_lmd_iod"]) and np.isnan(result["mouth_open_r"])


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    shift=st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
    scale=st.floats(0.2, 5.0),
)
def test_iod_metrics_are_invariant_to_moving_and_scaling_both_sequences(seed, shift, scale):
    rng = np.random.default_rng(seed)
    true = talking_face(speech_opening(40, seed), seed=seed)
    pred = true + rng.normal(0, 2.0, size=true.shape)
    base = metrics.evaluate_sequence(pred, true, times(40))
    moved = metrics.evaluate_sequence(pred * scale + shift, true * scale + shift, times(40))
    for key in ("mouth_lmd_iod", "mouth_lmd_px256", "face_lmd_iod", "lvd_mouth_iod", "lve_iod2",
                "mouth_open_r", "variance_ratio", "mouth_jitter_ratio", "av_offset_ms"):  # fmt: skip
        assert moved[key] == pytest.approx(base[key], rel=1e-6, abs=1e-9), key


def test_jitter_is_the_mean_second_difference_by_hand():
    # every point drifts 3 px/frame (no acceleration); point 0 also zig-zags 0, 1, 0, 1 ...
    # in y: second differences -2, +2, -2 ... on that point alone
    n = 6
    frames = np.zeros((n, 68, 2))
    frames[:, :, 0] = 3.0 * np.arange(n)[:, None]
    frames[:, 0, 1] = np.arange(n) % 2
    assert metrics.jitter(frames) == pytest.approx(2.0 / 68)
    # a steady drift alone has no jitter (its first differences are all 3)
    steady = frames.copy()
    steady[:, 0, 1] = 0.0
    assert metrics.jitter(steady) == 0.0
    # only frame triples that are all valid count: frame 3 out leaves triple (0, 1, 2)
    valid = np.ones(n, bool)
    valid[3] = False
    frames[2, 5, 0] += 68.0  # point 5: second difference 68 at triple (0,1,2) ...
    # ... and -136, +68 at the triples through frame 3, which are not scored
    assert metrics.jitter(frames, valid) == pytest.approx((2.0 + 68.0) / 68)
    # the ratio (scored on the mouth): twice the zig-zag of a lip point against the same drift
    double = steady.copy()
    double[:, 48, 1] = 2 * (np.arange(n) % 2)
    single = steady.copy()
    single[:, 48, 1] = np.arange(n) % 2
    true = np.repeat(template_face()[None], n, axis=0)  # a still face, scorable as a pair
    assert metrics.jitter_ratio(true + double, true + single) == pytest.approx(2.0, rel=1e-6)


def test_a_mouth_is_frozen_below_a_thousandth_of_the_true_motion():
    true_opening = speech_opening()
    true = talking_face(true_opening)

    def r_of(fraction):  # a prediction moving ``fraction`` as much as the truth, in phase
        return metrics.mouth_opening_correlation(talking_face(fraction * true_opening), true)

    assert r_of(2e-3) == pytest.approx(1.0, abs=1e-6)  # small, but real motion
    assert np.isnan(r_of(5e-4))  # below 1e-3 of the true motion: frozen
    assert np.isnan(metrics.av_offset_frames(talking_face(5e-4 * true_opening), true))


# ---------- syllable-band amplitude (issue 17) ----------

FPS = 25.0


def sine(hz: float, amplitude: float, n: int = 100, fps: float = FPS) -> np.ndarray:
    """``amplitude * sin(2 pi hz t)`` on ``n`` frames (4 s at 25 fps: whole cycles at 4 and
    10 Hz), on top of a resting opening of 1."""
    return 1.0 + amplitude * np.sin(2 * np.pi * hz * np.arange(n) / fps)


def test_syllable_band_amplitude_of_a_4_hz_sine_is_its_rms():
    assert metrics.syllable_band_amplitude(sine(4.0, 0.3), FPS) == pytest.approx(
        0.3 / np.sqrt(2), abs=1e-6
    )
    # a sine above the band (10 Hz: tracker noise, not syllables) has no band amplitude
    assert metrics.syllable_band_amplitude(sine(10.0, 0.3), FPS) == pytest.approx(0.0, abs=1e-9)
    # in a mixture only the 4 Hz part counts
    mixed = sine(4.0, 0.3) + sine(10.0, 0.5) - 1.0
    assert metrics.syllable_band_amplitude(mixed, FPS) == pytest.approx(0.3 / np.sqrt(2), abs=1e-6)
    # the band edges are inclusive: 2 Hz and 7 Hz sines count in full
    for hz in (2.0, 7.0):
        assert metrics.syllable_band_amplitude(sine(hz, 0.2), FPS) == pytest.approx(
            0.2 / np.sqrt(2), abs=1e-6
        ), hz


def test_syllable_band_amplitude_bridges_short_gaps_and_splits_at_long_ones():
    opening = sine(4.0, 0.3)
    # frame 25 is a zero crossing (t = 1 s): its linear fill from frames 24 and 26 is exact
    holed = opening.copy()
    holed[25] = np.nan
    assert metrics.syllable_band_amplitude(holed, FPS) == pytest.approx(0.3 / np.sqrt(2), abs=1e-9)
    # a gap longer than MAX_GAP_FRAMES splits: two 4 s stretches of amplitude A and 2A are
    # pooled by frames: power (A^2/2 * 100 + 4 A^2/2 * 100) / 200 = 5 A^2 / 4
    gap = np.full(metrics.MAX_GAP_FRAMES + 1, np.nan)
    split = np.concatenate([sine(4.0, 0.3), gap, sine(4.0, 0.6)])
    power, frames = metrics.syllable_band_power(split, FPS)
    assert frames == 200 and power == pytest.approx(5 * 0.3**2 / 4, rel=1e-9)
    # a stretch shorter than one period of 2 Hz (13 frames at 25 fps) is left out
    short = np.concatenate([sine(4.0, 0.3), gap, sine(4.0, 0.6, n=12)])
    assert metrics.syllable_band_power(short, FPS) == pytest.approx((0.3**2 / 2, 100))
    assert np.isnan(metrics.syllable_band_amplitude(np.full(50, np.nan), FPS))


def test_syllable_band_ratio_pools_clips_by_frames():
    real = [sine(4.0, 0.3), sine(5.0, 0.2, n=50)]
    half = [0.5 * (r - 1.0) + 1.0 for r in real]
    assert metrics.syllable_band_ratio(half, real, FPS) == pytest.approx(0.5, abs=1e-9)
    assert metrics.syllable_band_ratio(real, real, FPS) == pytest.approx(1.0)
    # per clip: sqrt(sum P_i n_i / sum n_i) of each side; a still second clip halves the power
    still = [real[0], np.ones(100)]
    doubled = [real[0], real[0]]
    assert metrics.syllable_band_ratio(still, doubled, FPS) == pytest.approx(np.sqrt(0.5))
    # a damped mouth: smoothing every frame with its neighbours keeps the mean, cuts the band
    smooth = [np.convolve(np.pad(r, 2, mode="edge"), np.ones(5) / 5, mode="valid") for r in real]
    assert metrics.syllable_band_ratio(smooth, real, FPS) < 0.8
    with pytest.raises(ValueError, match="1 predicted clips for 2 real"):
        metrics.syllable_band_ratio(real[:1], real, FPS)


def test_evaluate_sequence_reports_the_syllable_band_ratio_beside_jitter():
    true_opening = speech_opening()
    true = talking_face(true_opening)
    damped = talking_face(0.5 * (true_opening - true_opening.mean()) + true_opening.mean())
    result = metrics.evaluate_sequence(damped, true, times(len(true)))
    # the opening is a lip distance, linear in the lower lip's shift: exactly half the band
    assert result["syllable_band_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert np.isfinite(result["mouth_jitter_ratio"])
    # no phones given: no closure scores, never a guess
    assert np.isnan(result["bilabial_closure_rate"]) and result["n_bilabials"] == 0


# ---------- bilabial closures (issue 17) ----------


class Seg:
    def __init__(self, phone: str, start: float, end: float, word: str = "w"):
        self.phone, self.start, self.end, self.word = phone, start, end, word


def test_bilabial_closures_by_hand():
    t = np.arange(20) / FPS  # frames at 0, 0.04, ... 0.76 s
    opening = np.ones(20)
    opening[3] = 0.1  # inside the /b/ at frames 2-3: caught
    opening[15] = 0.2  # one frame after the /m/ at frames 13-14: caught thanks to +-1
    opening[6] = 0.0  # an /aa/: not a bilabial, not counted
    segments = [
        Seg("B", 0.08, 0.16),  # frames 2, 3
        Seg("AA", 0.20, 0.28),
        Seg("P", 0.32, 0.40),  # frames 8, 9 (+-1: 7-10): open throughout, missed
        Seg("M1", 0.52, 0.60),  # frames 13, 14 (+-1: 12-15), stress digit ignored
        Seg("M", 1.00, 1.10),  # after the clip's last frame: ignored
    ]
    speaking = np.ones(20, bool)  # median opening 1: closed below 0.25
    count = metrics.bilabial_closure_rate(opening, t, segments, speaking)
    assert count == metrics.ClosureCount(closed=2, total=3)
    assert count.rate == pytest.approx(2 / 3)
    # without the tolerance the /m/ is missed
    assert metrics.bilabial_closure_rate(opening, t, segments, speaking, tolerance_frames=0) == (
        metrics.ClosureCount(closed=1, total=3)
    )
    # the level is the median while speaking: speaking only where the mouth is at 0.3,
    # closed means below 0.075, and neither dip (0.1, 0.2) is a closure any more
    quiet = opening.copy()
    quiet[:12] = np.where(quiet[:12] == 1.0, 0.3, quiet[:12])
    assert metrics.bilabial_closure_rate(quiet, t, segments, t < 0.44).closed == 0
    # a segment shorter than a frame takes the frame nearest its middle
    between = [Seg("P", 0.118, 0.122)]  # middle 0.12 s: frame 3
    assert metrics.bilabial_closure_rate(opening, t, between, speaking, 0) == (
        metrics.ClosureCount(1, 1)
    )
    # NaN frames (not scored) are skipped; a window all NaN is not counted
    holed = opening.copy()
    holed[1:5] = np.nan
    assert metrics.bilabial_closure_rate(holed, t, segments[:1], speaking).total == 0
    assert np.isnan(metrics.ClosureCount(0, 0).rate)


def test_word_frames_are_the_frames_inside_a_words_phones():
    t = np.arange(10) / FPS
    segments = [Seg("SIL", 0.0, 0.08, ""), Seg("B", 0.08, 0.16), Seg("IH", 0.16, 0.24)]
    assert metrics.word_frames(segments, t).tolist() == [False] * 2 + [True] * 4 + [False] * 4
