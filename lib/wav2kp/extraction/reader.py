"""Reading what extraction wrote: one clip's ``extracted/<clip_id>.npz`` (frame times, the
68 keypoints, each frame's status and the video's size), with a clear error naming the file
when it is unusable. Features, windowing, training and evaluation all read it here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wav2kp.extraction.gaps import MISSING


def valid_frames(landmarks: np.ndarray) -> np.ndarray:
    """(T,) True where all 68 points are finite."""
    return np.isfinite(np.asarray(landmarks)).all(axis=(1, 2))


@dataclass
class Extraction:
    """The parts of ``extracted/<clip_id>.npz`` the dataset needs."""

    times: np.ndarray  # (T,) float64
    lm68: np.ndarray  # (T, 68, 2) float32, NaN where missing
    frame_status: np.ndarray  # (T,) int8
    width: int
    height: int

    @property
    def valid(self) -> np.ndarray:
        return (self.frame_status != MISSING) & valid_frames(self.lm68)


def read_extraction(path: str | os.PathLike) -> Extraction:
    """Read one extraction file; a clear error names the file if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: extraction file missing")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable extraction file ({exc})") from exc
    with data:
        missing = {"times", "lm68"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: extraction file lacks {sorted(missing)}")
        times = data["times"].astype(np.float64)
        lm68 = data["lm68"].astype(np.float32)
        if "frame_status" in data.files:
            status = data["frame_status"].astype(np.int8)
        else:
            status = np.where(valid_frames(lm68), 0, MISSING).astype(np.int8)
        width = int(data["width"]) if "width" in data.files else 0
        height = int(data["height"]) if "height" in data.files else 0
    if lm68.shape != (len(times), 68, 2) or status.shape != times.shape:
        raise ValueError(
            f"{path}: times {times.shape}, lm68 {lm68.shape}, status {status.shape} disagree"
        )
    return Extraction(times, lm68, status, width, height)
