"""Motion calibration (wav2kp.training.calibration): what its gain does to the mouth."""

from __future__ import annotations

import numpy as np
from test_metrics import talking_face, times
from wav2kp import metrics
from wav2kp.training.calibration import Calibrated
from wav2kp.windowing.dataset import ClipData
from wav2kp.windowing.targets import TargetNormalizer


class Replay:
    """A normalised-target predictor that returns given targets."""

    target_space = "normalized"

    def __init__(self, targets, normalizer, opening_std: float):
        self.name, self.targets, self.normalizer = "replay", targets, normalizer
        self.context = {"motion_spread": {"opening_std": opening_std}}

    def predict_targets(self, clip):
        return self.targets


def test_the_gain_changes_the_mouth_opening_correlation_when_lips_cross():
    """The docstring's claim: a gain is linear in the motion, the opening (a distance) is
    not, so lips pushed through each other open again and r falls."""
    n = 120
    opening = 0.11 + 0.1 * np.sin(2 * np.pi * np.arange(n) / 15.0)  # 0.01 .. 0.21 IOD
    truth = talking_face(opening)
    normalizer = TargetNormalizer().fit([("spk", truth)])
    targets, pose = normalizer.transform(truth, "spk")
    clip = ClipData(
        clip_id="c", speaker="spk", emotion="", sentence_id="c", split="test",
        frame_times=times(n), landmarks=truth.astype(np.float32), valid=np.ones(n, bool),
        frame_size=(400, 400), audio_path=None, features=np.zeros((2, 1), np.float32),
        feature_times=np.array([0.0, 0.0125]), windows=np.zeros((n, 1, 1)),
        targets=targets.astype(np.float32), pose=pose.astype(np.float32),
    )  # fmt: skip
    spread = float(np.std(opening))
    same = Calibrated(Replay(targets, normalizer, spread))  # the training spread: gain 1
    assert abs(same.gain(clip, targets) - 1.0) < 0.02
    r_same = metrics.mouth_opening_correlation(same.predict_landmarks(clip), truth)
    assert r_same > 0.999
    wider = Calibrated(Replay(targets, normalizer, 3 * spread))  # gain 3: the lips cross
    assert wider.gain(clip, targets) > 2.9
    moved = wider.predict_landmarks(clip)
    assert metrics.variance_ratio(moved, truth) > 1.5  # the amplitude it aims at
    # and r, which it does not spare: lips pushed through each other open again
    assert metrics.mouth_opening_correlation(moved, truth) < r_same - 0.05
