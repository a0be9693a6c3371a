"""Missed detections: short gaps interpolated (and flagged), long gaps left missing.

Frame status codes (``frame_status`` in the extraction files):
0 detected, 1 interpolated across a short gap, 2 missing (NaN).
Interpolation is linear in real time (frame timestamps), so it is right on
variable-frame-rate clips too; gaps at the start or end are never extrapolated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DETECTED, INTERPOLATED, MISSING = 0, 1, 2
STATUS_NAMES = {DETECTED: "detected", INTERPOLATED: "interpolated", MISSING: "missing"}


@dataclass(frozen=True)
class GapParams:
    max_gap_frames: int = 5  # longest run of missed frames that is interpolated
    max_gap_seconds: float = 0.25  # ... and the longest time bridged (previous to next detection)
    min_detection_rate: float = 0.5  # below this fraction of detected frames a clip is rejected

    def as_dict(self) -> dict:
        return asdict(self)


def find_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges where the boolean mask is True."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )


def fill_gaps(
    values: np.ndarray, times: np.ndarray, params: GapParams | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fill short interior gaps of per-frame arrays.

    ``values`` (T, ...) with NaN (anywhere in a frame) marking a missed frame; ``times``
    (T,) seconds. Returns ``(filled, status)``: a float copy with short gaps linearly
    interpolated in time and long gaps all-NaN, and int8 status per frame.
    """
    params = params or GapParams()
    values = np.asarray(values)
    times = np.asarray(times, dtype=np.float64)
    if len(values) != len(times):
        raise ValueError(f"values has {len(values)} frames but times has {len(times)}")
    out = values.astype(np.result_type(values.dtype, np.float32), copy=True)
    n = len(out)
    status = np.full(n, MISSING, dtype=np.int8)
    if n == 0:
        return out, status
    flat = out.reshape(n, -1)
    detected = np.isfinite(flat).all(axis=1)
    status[detected] = DETECTED
    flat[~detected] = np.nan  # a partly-NaN frame counts as missed as a whole
    for start, stop in find_runs(~detected):
        if start == 0 or stop == n:
            continue  # no detection on one side: never extrapolate
        before, after = start - 1, stop
        span = times[after] - times[before]
        if stop - start > params.max_gap_frames or span > params.max_gap_seconds + 1e-9:
            continue
        weight = ((times[start:stop] - times[before]) / span)[:, None]
        flat[start:stop] = (1.0 - weight) * flat[before] + weight * flat[after]
        status[start:stop] = INTERPOLATED
    return out, status


def clip_verdict(status: np.ndarray, params: GapParams | None = None) -> tuple[bool, str]:
    """Whether a clip has enough face to use, and why not."""
    params = params or GapParams()
    status = np.asarray(status)
    if len(status) == 0:
        return False, "no video frames"
    rate = float(np.mean(status == DETECTED))
    if rate < params.min_detection_rate:
        return False, (
            f"face detected in {rate:.0%} of {len(status)} frames "
            f"(minimum {params.min_detection_rate:.0%})"
        )
    return True, ""


def status_counts(status: np.ndarray) -> dict[str, int]:
    status = np.asarray(status)
    return {name: int(np.sum(status == code)) for code, name in STATUS_NAMES.items()}
