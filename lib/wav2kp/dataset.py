"""The per-clip data every model, baseline and evaluation works on.

``ClipData`` is the contract between windowing/targets (notebook 03) and training,
evaluation and hand-off (04-06). ``load_clips`` (implemented with the windowing stage)
builds them from the extraction, feature and split files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass
class ClipData:
    clip_id: str
    speaker: str
    emotion: str
    sentence_id: str
    split: str  # "train" | "val" | "test" | "" (unsplit, e.g. prediction)
    frame_times: np.ndarray  # (T,) float64 seconds: real timestamps of the keypoint frames
    landmarks: np.ndarray  # (T, 68, 2) float32 ground-truth pixels, NaN where missing
    valid: np.ndarray  # (T,) bool: detected or interpolated (usable as a target)
    frame_size: tuple[int, int]  # (width, height) of the source video
    audio_path: Path | None  # 16 kHz mono wav
    features: np.ndarray  # (F, D) float32 normalised audio features
    feature_times: np.ndarray  # (F,) float64 centre time of each feature frame
    windows: np.ndarray  # (T, C, D) float32 audio context of each keypoint frame
    targets: np.ndarray  # (T, K) float32 normalised targets; NaN rows where not valid
    pose: np.ndarray  # (T, 4) float32 similarity [scale, angle_rad, tx, ty]: aligned -> pixels
    extra: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frame_times)


class KeypointPredictor(Protocol):
    """What every model and baseline offers to evaluation and hand-off."""

    name: str

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        """(T, 68, 2) predicted pixels in the clip's frame, one row per keypoint frame."""
        ...
