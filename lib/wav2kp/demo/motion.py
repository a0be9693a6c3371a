"""Non-speech motion of a clip: blinks, head motion and the emotion's facial expression.

All of it is drawn from a numpy Generator seeded per clip, so a seed reproduces a clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Expression:
    """Facial expression of an emotion category (face.FaceState fields, 0..1)."""

    smile: float = 0.0
    frown: float = 0.0
    brow_raise: float = 0.0
    brow_inner: float = 0.0
    brow_lower: float = 0.0
    spread: float = 0.0  # added to the articulation's lip spread
    jaw_scale: float = 1.0  # articulation amplitude (loud/excited speech opens wider)
    head_motion: float = 1.0  # amplitude of head movement
    blink_rate: float = 0.3  # blinks per second


def blink_track(times: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """0 (open) .. 1 (closed): Poisson-timed blinks, fast close (~70 ms), slower open."""
    duration = float(times[-1]) if len(times) else 0.0
    out = np.zeros(len(times))
    t = rng.uniform(0.2, 1.0 / max(rate, 1e-3))
    while t < duration:
        close_s, hold_s, open_s = 0.07, rng.uniform(0.02, 0.06), rng.uniform(0.10, 0.16)
        rel = times - t
        closing = (rel >= 0) & (rel < close_s)
        held = (rel >= close_s) & (rel < close_s + hold_s)
        opening = (rel >= close_s + hold_s) & (rel < close_s + hold_s + open_s)
        out[closing] = np.maximum(out[closing], np.sin(0.5 * np.pi * rel[closing] / close_s))
        out[held] = 1.0
        phase = (rel[opening] - close_s - hold_s) / open_s
        out[opening] = np.maximum(out[opening], 0.5 * (1 + np.cos(np.pi * phase)))
        t += max(0.4, rng.exponential(1.0 / rate))
    return out


def gaze_tracks(
    times: np.ndarray, rng: np.random.Generator, spread_px: float = 1.6
) -> dict[str, np.ndarray]:
    """Fixations (exponential durations, mean ~1.3 s) joined by fast saccades (~40 ms),
    mostly near the camera: iris shift in pixels."""
    duration = float(times[-1]) if len(times) else 0.0
    starts, targets = [0.0], [rng.normal(0, [spread_px * 0.5, spread_px * 0.3])]
    while starts[-1] < duration:
        starts.append(starts[-1] + max(0.3, rng.exponential(1.3)))
        targets.append(rng.normal(0, [spread_px, spread_px * 0.5]))
    gaze = np.zeros((len(times), 2))
    gaze[:] = targets[0]
    for start, target, previous in zip(starts[1:], targets[1:], targets[:-1], strict=False):
        phase = np.clip((times - start) / 0.04, 0, 1)
        step = phase * phase * (3 - 2 * phase)
        gaze += step[:, None] * (target - previous)
    return {"gaze_x": gaze[:, 0], "gaze_y": gaze[:, 1]}


def smooth_noise(
    times: np.ndarray, rng: np.random.Generator, amplitude: float, max_hz: float = 0.6
) -> np.ndarray:
    """A smooth random signal: a few sinusoids with random frequency and phase."""
    out = np.zeros(len(times))
    for _ in range(3):
        freq = rng.uniform(0.08, max_hz)
        out += rng.normal(0, 1) * np.sin(2 * np.pi * freq * times + rng.uniform(0, 2 * np.pi))
    return amplitude * out / np.sqrt(3)


def head_tracks(
    times: np.ndarray, rng: np.random.Generator, amount: float, speech_energy: np.ndarray
) -> dict[str, np.ndarray]:
    """Small head motion: slow turns and drift, plus nods that follow the speech energy a
    little (angles in degrees, shifts in pixels)."""
    nod = np.convolve(speech_energy, np.hanning(9) / np.hanning(9).sum(), mode="same")
    return {
        "head_yaw": smooth_noise(times, rng, 3.0 * amount),
        "head_pitch": smooth_noise(times, rng, 1.5 * amount) + 1.8 * amount * nod,
        "head_roll": smooth_noise(times, rng, 1.4 * amount),
        "head_tx": smooth_noise(times, rng, 3.0 * amount),
        "head_ty": smooth_noise(times, rng, 2.0 * amount),
        "head_scale": 1.0 + smooth_noise(times, rng, 0.012 * amount, max_hz=0.3),
    }


def expression_tracks(
    times: np.ndarray, expression: Expression, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The expression fades in over the first ~0.4 s and breathes a little."""
    onset = np.clip(times / rng.uniform(0.3, 0.5), 0, 1)
    onset = onset * onset * (3 - 2 * onset)
    out = {}
    for name in ("smile", "frown", "brow_raise", "brow_inner", "brow_lower"):
        level = getattr(expression, name)
        wobble = 1.0 + smooth_noise(times, rng, 0.08, max_hz=0.5)
        out[name] = np.clip(level * onset * wobble, 0.0, 1.0) if level else np.zeros(len(times))
    return out
