"""How good predicted keypoints are, measured on keypoint sequences (pure numpy).

Every function takes ``pred`` and ``true`` as (T, 68, 2) pixel arrays in the same frame
(iBUG/dlib order). Only frames whose ground truth is complete and finite count (a missing
detection is NaN in ``true``); a frame where the prediction is not finite is skipped too
and shows up as ``n_frames_scored < n_frames_valid``.

Units
-----
- ``*_iod``: distances divided by the inter-ocular distance (outer eye corners 36-45) of
  the ground-truth frame, so numbers compare across resolutions and face sizes.
- ``*_px256``: pixels of a 256x256 face crop, the scale the original project trained at.
  Convention: the vid2vid face crop (a square of side 2.5 x the width of the 68-point
  box, see docs/reference vid2vid-face-format), fixed per clip like vid2vid and the
  original project do, using the clip's median ground-truth face-box width, resized to
  256 px. So ``px256 = pixels * 256 / (2.5 * median_face_width)``. These are scored in
  the pose-normalised space, where every face has the same scale.
- ``*_crop_px``: pixels of vid2vid's own crop, scaled to 256 px: the square of side 2.5 x
  the face-box width of the ground truth's *first* scored frame, set once per clip as
  vid2vid sets it, so ``crop_px = pixels * 256 / (2.5 * first_face_width)``. The frame-
  coordinate measures (:func:`evaluate_frame_sequence`) use it on raw point positions,
  neither centred nor divided by any per-frame size: an error grows with the face as
  the head comes closer, as it does on the rendered video. (Per-frame centring and IOD
  scaling would cancel the head pose, giving the pose-normalised numbers again.)

Sign of the A/V offset: positive means the predicted mouth moves *later* than the real
one (the prediction lags the audio), negative means it anticipates it.

Motion (issue 17): the jitter ratio mixes the real track's tracking noise with motion a
model leaves out, so sharpness is measured where articulation lives, as the amplitude of
the mouth opening in the syllable band (``syllable_band_amplitude``, 2-7 Hz; predicted /
real: ``syllable_band_ratio``). Lip closures: ``bilabial_closure_rate`` counts the /p/,
/b/ and /m/ of a forced alignment where the mouth closes (the real mouth's own rate on
the same phones is the ceiling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_POINTS = 68
MOUTH = np.arange(48, 68)  # outer lip 48-59 + inner lip 60-67
FACE = np.arange(N_POINTS)
EYE_OUTER_RIGHT, EYE_OUTER_LEFT = 36, 45
INNER_LIP_TOP, INNER_LIP_BOTTOM = 62, 66
CROP_SIDE_PER_FACE_WIDTH = 2.5  # vid2vid's crop: 2.5 x the keypoint box width
CROP_PIXELS = 256
DEFAULT_MAX_LAG_FRAMES = 10
FROZEN_RATIO = 1e-3  # predicted opening std below this x the true std counts as frozen
# Syllables come at about 2-7 per second: the band where articulation lives (issue 17).
SYLLABLE_BAND_HZ = (2.0, 7.0)
# Interior NaN gaps up to this many frames are bridged linearly before the band power is
# taken (a 4 Hz syllable lasts over 6 frames at 25 fps); longer gaps split the signal.
MAX_GAP_FRAMES = 2
# Phones whose lips close (ARPAbet); wav2kp.features.phonetic's bilabial viseme.
BILABIAL_PHONES = ("P", "B", "M")
BILABIAL_TOLERANCE_FRAMES = 1
CLOSED_FRACTION = 0.25  # closed: below this x the median opening while speaking


def _check_pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if true.ndim != 3 or true.shape[1:] != (N_POINTS, 2):
        raise ValueError(f"ground truth must be (T, 68, 2), got {true.shape}")
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth shape {true.shape}")
    return pred, true


def inter_ocular_distance(landmarks: np.ndarray) -> np.ndarray:
    """(T,) distance between the outer eye corners 36 and 45; NaN where missing."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.linalg.norm(lm[:, EYE_OUTER_LEFT] - lm[:, EYE_OUTER_RIGHT], axis=-1)


def valid_frames(true: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(T,) frames whose ground truth is usable: all 68 points finite, IOD > 0, and
    ``valid`` (e.g. ``ClipData.valid``) where given."""
    true = np.asarray(true, dtype=np.float64)
    ok = np.isfinite(true).all(axis=(1, 2))
    with np.errstate(invalid="ignore"):
        ok &= inter_ocular_distance(true) > 0
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != ok.shape:
            raise ValueError(f"valid mask shape {valid.shape} != frames {ok.shape}")
        ok &= valid
    return ok


def scored_frames(pred: np.ndarray, true: np.ndarray, valid: np.ndarray | None = None):
    """(T,) frames that count: valid ground truth and a finite prediction."""
    pred, true = _check_pair(pred, true)
    return valid_frames(true, valid) & np.isfinite(pred).all(axis=(1, 2))


def crop_scale_px256(true: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Factor from frame pixels to pixels of the 256 px vid2vid-style face crop (see module
    docstring); NaN when no frame is valid."""
    true = np.asarray(true, dtype=np.float64)
    ok = valid_frames(true, valid)
    if not ok.any():
        return float("nan")
    widths = np.ptp(true[ok, :, 0], axis=1)
    return CROP_PIXELS / (CROP_SIDE_PER_FACE_WIDTH * float(np.median(widths)))


def first_frame_crop_scale(true: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Factor from frame pixels to pixels of vid2vid's crop (2.5 face widths, set on the
    first valid ground-truth frame) resized to 256 px; NaN when no frame is valid."""
    true = np.asarray(true, dtype=np.float64)
    ok = np.flatnonzero(valid_frames(true, valid))
    if not len(ok):
        return float("nan")
    width = float(np.ptp(true[ok[0], :, 0]))
    return CROP_PIXELS / (CROP_SIDE_PER_FACE_WIDTH * width) if width > 0 else float("nan")


def crop_distance(
    pred: np.ndarray, true: np.ndarray, points: np.ndarray = MOUTH, valid=None
) -> float:
    """Mean L2 distance per point and frame between raw positions (not centred), in
    pixels of the first-frame crop (``first_frame_crop_scale``)."""
    pred, true = _check_pair(pred, true)
    ok = scored_frames(pred, true, valid)
    if not ok.any():
        return float("nan")
    dist = np.linalg.norm(pred[ok][:, points] - true[ok][:, points], axis=-1)
    return float(dist.mean() * first_frame_crop_scale(true, ok))


def crop_lip_vertex_error(pred: np.ndarray, true: np.ndarray, valid=None) -> float:
    """LVE in frame coordinates: per frame the maximum over lip points 48-67 of the squared
    raw-position error in first-frame crop pixels, averaged over frames."""
    pred, true = _check_pair(pred, true)
    ok = scored_frames(pred, true, valid)
    if not ok.any():
        return float("nan")
    err = np.linalg.norm(pred[ok][:, MOUTH] - true[ok][:, MOUTH], axis=-1)
    err = err * first_frame_crop_scale(true, ok)
    return float(np.mean(np.max(err**2, axis=1)))


def _per_frame_centred_distance(pred, true, points) -> np.ndarray:
    """(T, P) L2 distance per point after centring each frame's point set on its mean."""
    p = pred[:, points]
    g = true[:, points]
    p = p - p.mean(axis=1, keepdims=True)
    g = g - g.mean(axis=1, keepdims=True)
    return np.linalg.norm(p - g, axis=-1)


def landmark_distance(
    pred: np.ndarray,
    true: np.ndarray,
    points: np.ndarray = MOUTH,
    unit: str = "iod",
    valid: np.ndarray | None = None,
) -> float:
    """LMD (RAD-NeRF's LMDMeter): centre each point set on its own mean, mean L2 per
    point, averaged over frames. ``unit`` is ``"iod"``, ``"px256"`` or ``"px"``."""
    pred, true = _check_pair(pred, true)
    ok = scored_frames(pred, true, valid)
    if not ok.any():
        return float("nan")
    dist = _per_frame_centred_distance(pred[ok], true[ok], points).mean(axis=1)
    return float(np.mean(dist * _unit_factor(true, ok, unit, per_frame=True)))


def _unit_factor(true: np.ndarray, ok: np.ndarray, unit: str, per_frame: bool):
    if unit == "iod":
        iod = inter_ocular_distance(true[ok])
        return 1.0 / iod if per_frame else 1.0 / float(np.median(iod))
    if unit == "px256":
        return crop_scale_px256(true, ok)
    if unit == "px":
        return 1.0
    raise ValueError(f"unknown unit {unit!r}; use 'iod', 'px256' or 'px'")


def mouth_lmd(pred, true, unit: str = "iod", valid=None) -> float:
    return landmark_distance(pred, true, MOUTH, unit, valid)


def face_lmd(pred, true, unit: str = "iod", valid=None) -> float:
    return landmark_distance(pred, true, FACE, unit, valid)


def landmark_velocity_difference(
    pred: np.ndarray,
    true: np.ndarray,
    points: np.ndarray = MOUTH,
    unit: str = "iod",
    valid: np.ndarray | None = None,
) -> float:
    """LVD: mean over frame pairs and points of ||(p[t+1]-p[t]) - (g[t+1]-g[t])||.
    Only pairs of consecutive frames that both count are used; IOD of frame t."""
    pred, true = _check_pair(pred, true)
    ok = scored_frames(pred, true, valid)
    pair = ok[:-1] & ok[1:]
    if not pair.any():
        return float("nan")
    dp = np.diff(pred[:, points], axis=0)[pair]
    dg = np.diff(true[:, points], axis=0)[pair]
    dist = np.linalg.norm(dp - dg, axis=-1).mean(axis=1)
    if unit == "iod":
        dist = dist / inter_ocular_distance(true[:-1][pair])
    elif unit == "px256":
        dist = dist * crop_scale_px256(true, ok)
    elif unit != "px":
        raise ValueError(f"unknown unit {unit!r}; use 'iod', 'px256' or 'px'")
    return float(dist.mean())


def lip_vertex_error(pred: np.ndarray, true: np.ndarray, valid: np.ndarray | None = None):
    """2D LVE (FaceFormer/CodeTalker on 2D points): per frame the maximum over lip points
    48-67 of the squared L2 error, averaged over frames; positions are not centred (the
    pose is shared), distances in IOD units before squaring."""
    pred, true = _check_pair(pred, true)
    ok = scored_frames(pred, true, valid)
    if not ok.any():
        return float("nan")
    err = np.linalg.norm(pred[ok][:, MOUTH] - true[ok][:, MOUTH], axis=-1)
    err = err / inter_ocular_distance(true[ok])[:, None]
    return float(np.mean(np.max(err**2, axis=1)))


def mouth_opening(landmarks: np.ndarray, iod: np.ndarray | None = None) -> np.ndarray:
    """(T,) inner-lip gap, the distance from point 62 to 66 (= |y66 - y62| on an upright
    face, but unchanged by head roll), divided by the IOD (the landmarks' own unless
    ``iod`` is given)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    gap = np.linalg.norm(lm[:, INNER_LIP_BOTTOM] - lm[:, INNER_LIP_TOP], axis=-1)
    if iod is None:
        iod = inter_ocular_distance(lm)
    with np.errstate(invalid="ignore", divide="ignore"):  # missing frames stay NaN
        return gap / np.asarray(iod, dtype=np.float64)


def _openings(pred, true, valid):
    """Mouth opening of prediction and truth on the scored frames, each divided by its own
    IOD: a scale- and roll-free signal, so a posed static face (the mean-face baseline)
    gives a constant, not pose noise."""
    pred, true = _check_pair(pred, true)
    ok = scored_frames(pred, true, valid)
    pred_open = np.where(ok, mouth_opening(pred), np.nan)
    true_open = np.where(ok, mouth_opening(true), np.nan)
    return pred_open, true_open


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over pairs where both are finite; NaN when fewer than 3 pairs or either
    side is constant (a frozen mouth has no defined correlation)."""
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < 3:
        return float("nan")
    a, b = a[both], b[both]
    if _is_constant(a) or _is_constant(b):
        return float("nan")
    return float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))


def _is_constant(x: np.ndarray) -> bool:
    # float32 pixels put ~1e-5 relative noise on a lip gap; a real mouth moves far more
    return bool(np.ptp(x) <= 1e-4 * max(1e-12, float(np.abs(x).max())))


def _frozen(pred_open: np.ndarray, true_open: np.ndarray) -> bool:
    """The predicted mouth moves less than FROZEN_RATIO of the true one: any correlation
    would only be with float rounding noise."""
    true_std = np.nanstd(true_open) if np.isfinite(true_open).any() else 0.0
    pred_std = np.nanstd(pred_open) if np.isfinite(pred_open).any() else 0.0
    return bool(pred_std <= FROZEN_RATIO * true_std)


def mouth_opening_correlation(pred, true, valid=None) -> float:
    """Pearson r over time of predicted vs true mouth opening (gap / IOD); NaN for a
    frozen predicted mouth."""
    pred_open, true_open = _openings(pred, true, valid)
    return float("nan") if _frozen(pred_open, true_open) else _pearson(pred_open, true_open)


def variance_ratio(pred, true, valid=None) -> float:
    """std over time of predicted mouth opening / std of true opening (1.0 ideal, 0 for a
    frozen mouth)."""
    pred_open, true_open = _openings(pred, true, valid)
    if np.isfinite(true_open).sum() < 2:
        return float("nan")
    true_std = np.nanstd(true_open)
    return float(np.nanstd(pred_open) / true_std) if true_std > 0 else float("nan")


def _mean_abs_acceleration(lm: np.ndarray, ok: np.ndarray) -> float:
    triple = ok[:-2] & ok[1:-1] & ok[2:]
    accel = np.diff(lm, n=2, axis=0)[triple]
    return float(np.linalg.norm(accel, axis=-1).mean()) if len(accel) else float("nan")


def jitter(landmarks: np.ndarray, valid: np.ndarray | None = None, points=FACE) -> float:
    """Mean |second difference| (acceleration, pixels/frame^2) over ``points`` and frame
    triples that are all valid."""
    lm = np.asarray(landmarks, dtype=np.float64)
    ok = np.isfinite(lm).all(axis=(1, 2))
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    return _mean_abs_acceleration(lm[:, points], ok)


def jitter_ratio(pred, true, valid=None, points: np.ndarray = MOUTH) -> float:
    """Jitter of the prediction's ``points`` / jitter of the ground truth's on the same
    frames (> 1: shakier than real). Scored on the mouth in the pose-normalised space
    (``mouth_jitter_ratio``): in frame coordinates every model wears the video's real
    head motion, and the ratio would measure that instead of the model."""
    pred, true = _check_pair(pred, true)
    ok = scored_frames(pred, true, valid)
    true_jitter = jitter(true, ok, points)
    if not np.isfinite(true_jitter) or true_jitter <= 0:
        return float("nan")
    return jitter(pred, ok, points) / true_jitter


# ---------- motion in the syllable band ----------


def _finite_runs(signal: np.ndarray, max_gap: int = MAX_GAP_FRAMES) -> list[np.ndarray]:
    """The finite stretches of a 1-D signal, interior NaN gaps of at most ``max_gap``
    frames filled by linear interpolation (a longer gap ends a stretch)."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"need a 1-D signal, got shape {x.shape}")
    finite = np.flatnonzero(np.isfinite(x))
    if not len(finite):
        return []
    breaks = np.flatnonzero(np.diff(finite) > max_gap + 1)
    runs = []
    for part in np.split(finite, breaks + 1):
        span = np.arange(part[0], part[-1] + 1)
        runs.append(np.interp(span, part, x[part]))
    return runs


def syllable_band_power(
    opening: np.ndarray, fps: float, band: tuple[float, float] = SYLLABLE_BAND_HZ
) -> tuple[float, int]:
    """``(power, frames)``: the power of a 1-D mouth-opening sequence in ``band`` (Hz) and
    the number of frames it was measured on.

    Definition, per finite stretch of N frames (``_finite_runs``: NaN gaps of up to
    ``MAX_GAP_FRAMES`` frames bridged linearly, longer gaps split the sequence, stretches
    shorter than one period of ``band[0]`` (``ceil(fps / band[0])`` frames) left out):
    subtract the stretch's mean, take the real FFT X_k (no window), and sum
    ``2 |X_k|^2 / N^2`` over the bins whose frequency ``k fps / N`` satisfies
    ``band[0] <= f <= band[1]`` (factor 1 instead of 2 for the Nyquist bin). The
    sequence's power is the frame-weighted mean over stretches; ``(nan, 0)`` when no
    stretch is long enough. By Parseval the sum over all bins is the variance, so a pure
    sine of amplitude A with whole cycles in the band has power A^2 / 2."""
    low, high = float(band[0]), float(band[1])
    if not 0 < low <= high:
        raise ValueError(f"band must be 0 < low <= high Hz, got {band}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    shortest = int(np.ceil(fps / low))
    total, frames = 0.0, 0
    for run in _finite_runs(opening):
        n = len(run)
        if n < shortest:
            continue
        spectrum = np.fft.rfft(run - run.mean())
        freqs = np.arange(len(spectrum)) * fps / n
        weight = np.full(len(spectrum), 2.0)
        if n % 2 == 0:
            weight[-1] = 1.0  # the Nyquist bin has no mirror image
        eps = 1e-9 * fps  # band edges that fall exactly on a bin count
        chosen = (freqs >= low - eps) & (freqs <= high + eps)
        power = float(np.sum(weight[chosen] * np.abs(spectrum[chosen]) ** 2) / n**2)
        total += power * n
        frames += n
    return (total / frames, frames) if frames else (float("nan"), 0)


def syllable_band_amplitude(
    opening: np.ndarray, fps: float, band: tuple[float, float] = SYLLABLE_BAND_HZ
) -> float:
    """The amplitude of a mouth-opening sequence in the syllable band: the square root of
    :func:`syllable_band_power` (its RMS in the band; a pure sine of amplitude A at 4 Hz
    with whole cycles gives A / sqrt(2)). NaN when no finite stretch is long enough."""
    return float(np.sqrt(syllable_band_power(opening, fps, band)[0]))


def _pooled_power(openings: Sequence[np.ndarray], fps: float, band) -> float:
    powers = [syllable_band_power(o, fps, band) for o in openings]
    frames = sum(n for _, n in powers)
    return sum(p * n for p, n in powers if n) / frames if frames else float("nan")


def syllable_band_ratio(
    pred_openings: Sequence[np.ndarray],
    real_openings: Sequence[np.ndarray],
    fps: float,
    band: tuple[float, float] = SYLLABLE_BAND_HZ,
) -> float:
    """Predicted / real syllable-band amplitude pooled over clips (1 ideal, < 1 damped,
    0 for a frozen mouth): ``sqrt(sum_i P_i n_i / sum_i n_i)`` of the predicted openings
    over the same of the real ones, with ``(P_i, n_i)`` = :func:`syllable_band_power` of
    clip i (each clip a 1-D sequence). NaN when the real mouth has no band power."""
    if len(pred_openings) != len(real_openings):
        raise ValueError(f"{len(pred_openings)} predicted clips for {len(real_openings)} real")
    real = _pooled_power(real_openings, fps, band)
    if not np.isfinite(real) or real <= 0:
        return float("nan")
    return float(np.sqrt(_pooled_power(pred_openings, fps, band) / real))


def clip_syllable_band_ratio(pred, true, frame_times, valid=None) -> float:
    """:func:`syllable_band_ratio` of one clip's mouth openings (gap / IOD) on its scored
    frames, at the clip's frame rate."""
    pred_open, true_open = _openings(pred, true, valid)
    fps = 1.0 / frame_period(frame_times)
    return syllable_band_ratio([pred_open], [true_open], fps)


# ---------- lip closures on bilabial phones ----------


@dataclass(frozen=True)
class ClosureCount:
    """Bilabial phones where the mouth closed (``closed``) out of those scored (``total``)."""

    closed: int
    total: int

    @property
    def rate(self) -> float:
        return self.closed / self.total if self.total else float("nan")


def word_frames(segments: Sequence, frame_times: np.ndarray) -> np.ndarray:
    """(T,) frames inside a phone segment that belongs to a word (``.word`` not empty: a
    forced alignment's speech, its silences left out)."""
    times = np.asarray(frame_times, dtype=np.float64)
    mask = np.zeros(len(times), dtype=bool)
    for seg in segments:
        if getattr(seg, "word", ""):
            mask |= (times >= seg.start) & (times < seg.end)
    return mask


def _segment_frames(seg, times: np.ndarray, period: float) -> np.ndarray:
    """Frame indices of a phone segment: those with ``start <= t < end``; for a segment
    shorter than a frame, the frame nearest its middle if that lies within the clip."""
    inside = np.flatnonzero((times >= seg.start) & (times < seg.end))
    if len(inside):
        return inside
    middle = 0.5 * (seg.start + seg.end)
    if middle < times[0] - period / 2 or middle > times[-1] + period / 2:
        return inside  # outside the clip
    return np.array([int(np.argmin(np.abs(times - middle)))])


def bilabial_closure_rate(
    opening: np.ndarray,
    frame_times: np.ndarray,
    segments: Sequence,
    speaking: np.ndarray,
    tolerance_frames: int = BILABIAL_TOLERANCE_FRAMES,
    threshold: float = CLOSED_FRACTION,
) -> ClosureCount:
    """How often a mouth closes on /p/, /b/ and /m/.

    ``opening``: (T,) mouth opening (e.g. :func:`mouth_opening`; NaN where not scored) at
    ``frame_times`` (s); ``segments``: phone segments (``.phone`` ARPAbet, stress digits
    ignored, ``.start``/``.end`` s, e.g. ``wav2kp.features.phonetic.aligned_phones``);
    ``speaking``: (T,) bool, frames inside a word (:func:`word_frames`).

    For each segment whose phone is in ``BILABIAL_PHONES``: its frames (``start <= t <
    end``, or the frame nearest its middle for a segment shorter than a frame) widened by
    ``tolerance_frames`` each way and cut to the clip; the mouth counts as closed when its
    smallest finite opening there is below ``threshold`` x the median finite opening over
    the ``speaking`` frames (this mouth's own median, so a damped model is judged on its
    own scale). A segment outside the clip, or whose frames are all NaN, is not counted.
    ``ClosureCount(0, 0)`` (rate NaN) when no frame is speaking."""
    opening = np.asarray(opening, dtype=np.float64)
    times = np.asarray(frame_times, dtype=np.float64)
    speaking = np.asarray(speaking, dtype=bool)
    if not (opening.shape == times.shape == speaking.shape) or opening.ndim != 1:
        raise ValueError(f"opening {opening.shape}, frame_times {times.shape} and speaking "
                         f"{speaking.shape} must be the same (T,)")  # fmt: skip
    level = opening[speaking & np.isfinite(opening)]
    if not len(level) or not len(times):
        return ClosureCount(0, 0)
    limit = threshold * float(np.median(level))
    period = frame_period(times) if len(times) > 1 else 0.0
    closed = total = 0
    for seg in segments:
        if str(seg.phone).rstrip("012").upper() not in BILABIAL_PHONES:
            continue
        frames = _segment_frames(seg, times, period)
        if not len(frames):
            continue
        lo = max(0, int(frames[0]) - tolerance_frames)
        hi = min(len(times), int(frames[-1]) + tolerance_frames + 1)
        window = opening[lo:hi]
        window = window[np.isfinite(window)]
        if not len(window):
            continue
        total += 1
        closed += int(window.min() < limit)
    return ClosureCount(closed, total)


def closure_scores(pred, true, frame_times, valid=None, phones=None) -> dict[str, float]:
    """``bilabial_closure_rate`` of the predicted and of the real mouth (gap / IOD) on the
    scored frames, with the phones' own word frames as the speaking frames, and the
    number of bilabials scored; all NaN without ``phones``."""
    if phones is None:
        return {"bilabial_closure_rate": float("nan"), "true_bilabial_closure_rate": float("nan"),
                "n_bilabials": 0}  # fmt: skip
    pred_open, true_open = _openings(pred, true, valid)
    speaking = word_frames(phones, frame_times)
    model = bilabial_closure_rate(pred_open, frame_times, phones, speaking)
    real = bilabial_closure_rate(true_open, frame_times, phones, speaking)
    return {"bilabial_closure_rate": model.rate, "true_bilabial_closure_rate": real.rate,
            "n_bilabials": real.total}  # fmt: skip


def frame_period(frame_times: np.ndarray) -> float:
    """Seconds per frame from real timestamps (median step, robust to VFR and gaps)."""
    times = np.asarray(frame_times, dtype=np.float64)
    steps = np.diff(times)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if len(steps) == 0:
        raise ValueError("frame_times need at least two increasing timestamps")
    return float(np.median(steps))


def lagged_correlations(
    pred_signal: np.ndarray, true_signal: np.ndarray, max_lag: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of ``pred[t + lag]`` with ``true[t]`` for lag in -max_lag..max_lag, over
    the overlapping finite samples. Returns (lags, r)."""
    pred_signal = np.asarray(pred_signal, dtype=np.float64)
    true_signal = np.asarray(true_signal, dtype=np.float64)
    n = len(true_signal)
    lags = np.arange(-max_lag, max_lag + 1)
    r = np.full(len(lags), np.nan)
    for i, lag in enumerate(lags):
        if abs(lag) >= n:
            continue
        if lag >= 0:
            r[i] = _pearson(pred_signal[lag:], true_signal[: n - lag])
        else:
            r[i] = _pearson(pred_signal[: n + lag], true_signal[-lag:])
    return lags, r


def opening_lag_curve(
    pred, true, valid=None, max_lag_frames: int = DEFAULT_MAX_LAG_FRAMES
) -> tuple[np.ndarray, np.ndarray]:
    """(lags in frames, r per lag) of predicted vs true mouth opening, the curve whose
    peak is the A/V offset; all NaN for a frozen predicted mouth."""
    pred_open, true_open = _openings(pred, true, valid)
    lags, r = lagged_correlations(pred_open, true_open, max_lag_frames)
    return lags, (np.full(len(lags), np.nan) if _frozen(pred_open, true_open) else r)


def av_offset_frames(pred, true, valid=None, max_lag_frames: int = DEFAULT_MAX_LAG_FRAMES) -> float:
    """Lag (frames) maximising the correlation of predicted with true mouth opening within
    +-max_lag_frames; positive = prediction late. NaN when no lag has a defined r. Ties
    go to the smallest |lag|."""
    lags, r = opening_lag_curve(pred, true, valid, max_lag_frames)
    if not np.isfinite(r).any():
        return float("nan")
    best = np.nanmax(r)
    candidates = lags[np.isclose(r, best, rtol=0, atol=1e-9)]
    return float(candidates[np.argmin(np.abs(candidates))])


# Names of the numbers evaluate_sequence (pose-normalised space) and
# evaluate_frame_sequence (frame coordinates) return, in display order, with a lower/
# higher/"closer to 1"/"closer to 0" reading for plots and checks.
# The mouth's measures that summaries, paired differences and trend plots show by default
MOUTH_METRICS = ("mouth_open_r", "variance_ratio", "mouth_lmd_iod", "mouth_jitter_ratio",
                 "syllable_band_ratio", "bilabial_closure_rate")  # fmt: skip

METRIC_DIRECTIONS: dict[str, str] = {
    "mouth_lmd_iod": "lower",
    "mouth_lmd_px256": "lower",
    "face_lmd_iod": "lower",
    "face_lmd_px256": "lower",
    "lvd_mouth_iod": "lower",
    "lve_iod2": "lower",
    "mouth_open_r": "higher",
    "variance_ratio": "one",
    "mouth_jitter_ratio": "one",
    "syllable_band_ratio": "one",
    "bilabial_closure_rate": "higher",
    # the real mouth's own closure rate on the same phones and frames: the ceiling
    "true_bilabial_closure_rate": "higher",
    "av_offset_ms": "zero",
    "mouth_crop_px": "lower",
    "face_crop_px": "lower",
    "lve_crop_px2": "lower",
}
FRAME_METRICS = ("mouth_crop_px", "face_crop_px", "lve_crop_px2")


def evaluate_sequence(
    pred: np.ndarray,
    true: np.ndarray,
    frame_times: np.ndarray,
    valid: np.ndarray | None = None,
    max_lag_frames: int = DEFAULT_MAX_LAG_FRAMES,
    phones: Sequence | None = None,
) -> dict[str, float]:
    """The metrics of the pose-normalised space for one clip (METRIC_DIRECTIONS but
    FRAME_METRICS) plus bookkeeping: ``n_frames``, ``n_frames_valid`` (usable ground
    truth), ``n_frames_scored``, ``frame_period_ms``, ``av_offset_frames``,
    ``n_bilabials``. The bilabial closures need the clip's ``phones`` (segments of a
    forced alignment, :func:`closure_scores`); without them they are NaN."""
    pred, true = _check_pair(pred, true)
    times = np.asarray(frame_times, dtype=np.float64)
    if times.shape != (len(true),):
        raise ValueError(f"frame_times shape {times.shape} != ({len(true)},) frames")
    period = frame_period(times)
    offset_frames = av_offset_frames(pred, true, valid, max_lag_frames)
    return {
        "mouth_lmd_iod": mouth_lmd(pred, true, "iod", valid),
        "mouth_lmd_px256": mouth_lmd(pred, true, "px256", valid),
        "face_lmd_iod": face_lmd(pred, true, "iod", valid),
        "face_lmd_px256": face_lmd(pred, true, "px256", valid),
        "lvd_mouth_iod": landmark_velocity_difference(pred, true, MOUTH, "iod", valid),
        "lve_iod2": lip_vertex_error(pred, true, valid),
        "mouth_open_r": mouth_opening_correlation(pred, true, valid),
        "variance_ratio": variance_ratio(pred, true, valid),
        "mouth_jitter_ratio": jitter_ratio(pred, true, valid, MOUTH),
        "syllable_band_ratio": clip_syllable_band_ratio(pred, true, times, valid),
        **closure_scores(pred, true, times, valid, phones),
        "av_offset_ms": offset_frames * period * 1e3,
        "av_offset_frames": offset_frames,
        "frame_period_ms": period * 1e3,
        "n_frames": int(len(true)),
        "n_frames_valid": int(valid_frames(true, valid).sum()),
        "n_frames_scored": int(scored_frames(pred, true, valid).sum()),
    }


def evaluate_frame_sequence(
    pred: np.ndarray, true: np.ndarray, frame_times: np.ndarray, valid=None
) -> dict[str, float]:
    """The frame-coordinate metrics for one clip (FRAME_METRICS: raw-position errors in
    first-frame crop pixels, see the module doc) plus the same bookkeeping as
    :func:`evaluate_sequence`."""
    pred, true = _check_pair(pred, true)
    times = np.asarray(frame_times, dtype=np.float64)
    if times.shape != (len(true),):
        raise ValueError(f"frame_times shape {times.shape} != ({len(true)},) frames")
    return {
        "mouth_crop_px": crop_distance(pred, true, MOUTH, valid),
        "face_crop_px": crop_distance(pred, true, FACE, valid),
        "lve_crop_px2": crop_lip_vertex_error(pred, true, valid),
        "frame_period_ms": frame_period(times) * 1e3,
        "n_frames": int(len(true)),
        "n_frames_valid": int(valid_frames(true, valid).sum()),
        "n_frames_scored": int(scored_frames(pred, true, valid).sum()),
    }
