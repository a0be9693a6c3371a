"""Phoneme events -> smooth articulation tracks (jaw opening, lip spread, lip rounding).

Coarticulation follows the Cohen-Massaro dominance model: every phoneme has an
articulatory target and a dominance that decays exponentially with the distance from
its segment; the trajectory at time t is the dominance-weighted mean of the targets.
Lip rounding reaches further ahead (anticipation) than jaw opening; bilabials dominate
the lip opening strongly and then close the lips exactly (a full closure interval);
a light zero-phase smoothing stands for the articulators' inertia.

Timing is the ground truth of espeak-ng's phoneme events (ms in the audio). Voiceless
stops fire their event at the burst, after the silent closure, so the closure start of
p/t/k is found in the audio itself (the silent stretch just before the event).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

# (jaw opening 0..1, lip spread -1..1, lip rounding 0..1) per vowel letter
VOWEL_TARGETS: dict[str, tuple[float, float, float]] = {
    "a": (0.88, 0.10, 0.00),
    "&": (0.55, 0.05, 0.00),  # reduced /a/ (ɐ)
    "@": (0.40, 0.00, 0.00),
    "E": (0.68, 0.40, 0.00),
    "e": (0.45, 0.50, 0.00),
    "i": (0.22, 0.70, 0.00),
    "I": (0.22, 0.65, 0.00),
    "y": (0.25, 0.55, 0.00),  # reduced /i/
    "j": (0.20, 0.60, 0.00),  # glide
    "O": (0.70, -0.10, 0.65),
    "o": (0.45, -0.25, 0.85),
    "u": (0.22, -0.35, 1.00),
    "U": (0.25, -0.30, 0.90),
    "w": (0.20, -0.35, 0.95),  # glide
}
VOWEL_LETTERS = set(VOWEL_TARGETS)


@dataclass(frozen=True)
class Target:
    jaw: float
    spread: float
    round: float
    # dominance of this phoneme on (jaw, spread, round): how strongly it imposes its target
    strength: tuple[float, float, float]
    bilabial: bool = False


_REST = Target(0.0, 0.0, 0.0, (0.6, 0.5, 0.5))  # lips lightly closed
# Consonant classes: (jaw, spread, round, dominance). Labials dominate the lips; lingual
# consonants leave the lips to their vowel neighbours (low dominance on spread/round).
CONSONANTS: dict[str, Target] = {
    **{c: Target(0.0, 0.0, 0.15, (2.5, 0.3, 0.3), bilabial=True) for c in ("p", "b", "m")},
    **{c: Target(0.08, -0.05, 0.10, (8.0, 0.6, 0.4)) for c in ("f", "v")},
    **{c: Target(0.16, 0.20, 0.00, (2.0, 0.4, 0.2)) for c in ("s", "z", "t", "d", "n", "l")},
    **{c: Target(0.18, -0.10, 0.55, (2.0, 0.8, 1.5)) for c in ("S", "Z", "tS", "dZ")},
    **{c: Target(0.28, 0.05, 0.00, (0.6, 0.2, 0.2)) for c in ("k", "g", "x", "R", "r", "*")},
    **{c: Target(0.18, 0.30, 0.00, (1.5, 0.5, 0.2)) for c in ("n^", "L", "J")},
}
VOICELESS_STOPS = {"p", "t", "k", "tS"}
# Phoneme marks that shape only their neighbours (nasal coda, palatal glide marks)
TRANSPARENT = {"N", ";", ""}
PAUSES = {"_", "_:", "_!", "_|", "||", "|"}


def normalise(name: str) -> str:
    """espeak mnemonic without stress (' ,), nasality (~) and length/reduction marks."""
    return name.strip().lstrip("',").replace("~", "").replace("-", "").replace(":", "")


def phoneme_targets(name: str) -> list[Target]:
    """One target (or two for a diphthong, e.g. 'aU') for an espeak mnemonic."""
    if name.strip() in PAUSES:
        return [_REST]
    base = normalise(name)
    if base in CONSONANTS:
        return [CONSONANTS[base]]
    letters = [ch for ch in base if ch in VOWEL_LETTERS]
    if letters:
        out = []
        for i, ch in enumerate(letters[:2]):
            jaw, spread, rnd = VOWEL_TARGETS[ch]
            # the first element of a diphthong dominates; glides are weaker
            strength = 1.0 if (i == 0 and ch not in "jw") else 0.7
            out.append(Target(jaw, spread, rnd, (strength, strength, strength)))
        return out
    if base in TRANSPARENT:
        return []
    # unknown mnemonic: a neutral, weak consonant that does not disturb its neighbours
    return [Target(0.2, 0.0, 0.0, (0.3, 0.2, 0.2))]


@dataclass
class Segment:
    start: float
    end: float
    name: str


def segments_from_events(
    phonemes: list[tuple[float, str]],
    duration: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
) -> list[Segment]:
    """Phoneme intervals [start, end) from event onsets; voiceless stops get their silent
    closure (found in ``audio``) added before the burst event."""
    times = [t for t, _ in phonemes]
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("phoneme events must be in time order")
    segs = []
    for i, (t, name) in enumerate(phonemes):
        end = phonemes[i + 1][0] if i + 1 < len(phonemes) else duration
        segs.append(Segment(float(t), float(max(end, t)), name))
    if audio is not None and sample_rate:
        envelope, step = _rms_envelope(audio, sample_rate)
        quiet = envelope < 0.02 * max(float(envelope.max()), 1e-6)
        for i, seg in enumerate(segs):
            if i == 0 or normalise(seg.name) not in VOICELESS_STOPS:
                continue
            prev = segs[i - 1]
            k = int(seg.start / step) - 1
            limit = max(prev.start + 0.35 * (prev.end - prev.start), seg.start - 0.15)
            while k >= 0 and k * step > limit and quiet[k]:
                k -= 1
            new_start = max((k + 1) * step, limit)
            if new_start < seg.start:
                prev.end = new_start
                seg.start = new_start
    return segs


def _rms_envelope(audio: np.ndarray, sample_rate: int, step_s: float = 0.005):
    hop = max(1, int(round(step_s * sample_rate)))
    n = len(audio) // hop
    frames = np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop)
    return np.sqrt((frames**2).mean(axis=1)), hop / sample_rate


@dataclass(frozen=True)
class CoarticulationParams:
    tau_back: tuple[float, float, float] = (0.035, 0.045, 0.090)  # anticipation (s)
    tau_fwd: tuple[float, float, float] = (0.030, 0.035, 0.060)  # carry-over (s)
    smooth_s: float = 0.012  # inertia: gaussian sigma of the final trajectory
    closure_ramp_s: float = 0.020  # lips meet / part over this time
    lead_s: float = 0.015  # visible articulation leads the sound slightly


def articulation(
    segments: list[Segment],
    times: np.ndarray,
    params: CoarticulationParams | None = None,
    jaw_scale: float = 1.0,
    dt: float = 0.001,
) -> dict[str, np.ndarray]:
    """Tracks at ``times`` (s): jaw (lip opening 0..1, exactly 0 in bilabial closures),
    spread, round, closure (0..1) and the phoneme active at each time."""
    p = params or CoarticulationParams()
    times = np.asarray(times, dtype=np.float64)
    t_end = max(float(times.max(initial=0.0)), max((s.end for s in segments), default=0.0))
    grid = np.arange(-0.2, t_end + 0.2 + dt, dt)
    num = np.zeros((3, grid.size))
    den = np.full((3, grid.size), 1e-9)
    closure_raw = np.zeros(grid.size)
    # rest posture before and after speech
    all_segs = [Segment(-10.0, segments[0].start if segments else t_end, "_"), *segments]
    if segments:
        all_segs.append(Segment(segments[-1].end, t_end + 10.0, "_"))
    for seg in all_segs:
        targets = phoneme_targets(seg.name)
        if not targets:
            continue
        start, end = seg.start - p.lead_s, seg.end - p.lead_s
        bounds = np.linspace(start, end, len(targets) + 1)
        for k, tgt in enumerate(targets):
            a, b = bounds[k], bounds[k + 1]
            # the dominance is flat over the central part of the (sub)segment
            trim = min(0.25 * (b - a), 0.03)
            core_a, core_b = a + trim, b - trim
            before = np.clip(core_a - grid, 0.0, None)
            after = np.clip(grid - core_b, 0.0, None)
            values = (tgt.jaw * jaw_scale, tgt.spread, tgt.round)
            for d in range(3):
                dom = tgt.strength[d] * np.exp(-before / p.tau_back[d] - after / p.tau_fwd[d])
                num[d] += dom * values[d]
                den[d] += dom
            if tgt.bilabial:
                closure_raw[(grid >= a) & (grid < b)] = 1.0
    tracks = num / den
    sigma = p.smooth_s / dt
    tracks = gaussian_filter1d(tracks, sigma, axis=1, mode="nearest")
    closure = _ramped(closure_raw, int(round(p.closure_ramp_s / dt)))
    jaw = np.clip(tracks[0], 0.0, 1.0) * (1.0 - closure)
    out = {
        "jaw": np.interp(times, grid, jaw),
        "spread": np.interp(times, grid, np.clip(tracks[1], -1.0, 1.0)),
        "round": np.interp(times, grid, np.clip(tracks[2], 0.0, 1.0)),
        "closure": np.interp(times, grid, closure),
    }
    out["phoneme"] = active_phoneme(segments, times)
    return out


def _ramped(indicator: np.ndarray, ramp: int) -> np.ndarray:
    """Widen a 0/1 indicator by smooth (raised-cosine) ramps of ``ramp`` samples each
    side, so the closure is complete over the whole interval and smooth around it."""
    if ramp <= 0 or not indicator.any():
        return indicator.astype(np.float64)
    from scipy.ndimage import distance_transform_edt

    dist = distance_transform_edt(indicator < 0.5)
    return np.where(dist >= ramp, 0.0, 0.5 * (1 + np.cos(np.pi * np.minimum(dist / ramp, 1))))


def active_phoneme(segments: list[Segment], times: np.ndarray) -> np.ndarray:
    """The (normalised) phoneme sounding at each time, '_' for silence."""
    starts = np.array([s.start for s in segments])
    out = np.full(len(times), "_", dtype=object)
    if not segments:
        return out
    idx = np.searchsorted(starts, times, side="right") - 1
    for i, (t, k) in enumerate(zip(times, idx, strict=True)):
        if k >= 0 and t < segments[k].end:
            name = normalise(segments[k].name)
            out[i] = name if name else "_"
    return out
