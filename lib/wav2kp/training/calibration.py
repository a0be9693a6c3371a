"""Motion calibration: a predicted mouth that moves as much as real mouths do.

A model trained on one speaker under-predicts motion on voices it never heard (issue 10:
variance ratio about 0.45 on unseen real voices): unsure of the new voice, it regresses
towards the mean. ``Calibrated`` rescales each utterance's predicted jaw and mouth motion
(around the utterance's own mean) so that the spread of its mouth opening over the
speech frames matches the typical spread of the *training* mouths
(``motion_spread``: the median over training clips, stored in every checkpoint's
context by ``wav2kp.training.train``). The gain is bounded (``MAX_GAIN``), so silence or a
frozen prediction is not blown up. It is aimed at the amplitude (variance ratio, LMD),
but it does not leave the mouth-opening correlation alone: the opening is a distance,
so lips a gain pushes through each other open again. The lever
study scores every measure with and without it (``calibrated`` views in
docs/results/grid-levers-cv.md).

``TrainConfig(calibrate=True)`` makes ``wav2kp.training.inference.load_predictor`` return the
model calibrated; ``wav2kp cv`` scores it as the ``calibrated`` view of any model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wav2kp import metrics

MAX_GAIN = 3.0  # at most this much more (or 1/this less) motion than predicted
MIN_SPEECH_FRAMES = 5


def speech_frames(clip) -> np.ndarray:
    """(T,) voice activity of a clip (``wav2kp.training.vad``); all frames when its audio is
    unreadable or no frame is active."""
    from wav2kp.training.vad import clip_voice_activity

    try:
        active = clip_voice_activity(clip)
    except (OSError, ValueError, RuntimeError):
        return np.ones(clip.n_frames, dtype=bool)
    return active if active.sum() >= MIN_SPEECH_FRAMES else np.ones(clip.n_frames, dtype=bool)


def opening_spread(opening: np.ndarray, frames: np.ndarray) -> float:
    """Standard deviation of a mouth-opening track over ``frames`` (finite values)."""
    values = np.asarray(opening, np.float64)[np.asarray(frames, bool)]
    values = values[np.isfinite(values)]
    return float(values.std()) if len(values) >= MIN_SPEECH_FRAMES else float("nan")


def motion_spread(clips: Sequence) -> dict:
    """The typical spread of real mouth motion in training clips: the median over clips
    of the mouth-opening standard deviation (inter-lip gap / inter-ocular distance) over
    each clip's speech frames."""
    spreads = []
    for clip in clips:
        if clip.is_derived:
            continue  # copies share their source's mouth
        truth = np.where(np.asarray(clip.valid)[:, None, None], clip.landmarks, np.nan)
        spread = opening_spread(metrics.mouth_opening(truth), speech_frames(clip))
        if np.isfinite(spread):
            spreads.append(spread)
    if not spreads:
        return {}
    return {"opening_std": float(np.median(spreads)), "clips": len(spreads)}


def _motion_columns(n_targets: int) -> np.ndarray:
    from wav2kp.training.vad import JAW_AND_MOUTH

    if n_targets != 136:
        return np.arange(n_targets)
    return np.stack([2 * JAW_AND_MOUTH, 2 * JAW_AND_MOUTH + 1], axis=1).ravel()


class Calibrated:
    """A normalised-target predictor whose jaw and mouth motion is rescaled per utterance
    to the training spread (module doc). Other predictors pass through unchanged."""

    def __init__(self, predictor, name: str | None = None, max_gain: float = MAX_GAIN):
        self.predictor = predictor
        self.name = name or f"{predictor.name}+calibrated"
        self.max_gain = float(max_gain)

    def __getattr__(self, item):  # window_config, context, normalizer, ... of the model
        return getattr(self.predictor, item)

    def with_emotion(self, emotion, name: str | None = None) -> Calibrated:
        """The calibration around the wrapped model's ``with_emotion`` copy (through
        ``__getattr__`` the copy would lose it)."""
        from wav2kp.training.vad import rewrapped

        return rewrapped(self, self.predictor.with_emotion(emotion, name), name)

    @property
    def reference_spread(self) -> float:
        spread = (self.predictor.context or {}).get("motion_spread") or {}
        if "opening_std" not in spread:
            raise ValueError(
                f"{self.predictor.name}: the checkpoint holds no training motion spread "
                "(trained before wav2kp.training.calibration); retrain it to calibrate"
            )
        return float(spread["opening_std"])

    def gain(self, clip, targets: np.ndarray) -> float:
        """The factor that gives the utterance the training spread (bounded)."""
        aligned = self.predictor.normalizer.to_aligned(targets, clip.speaker or None)
        spread = opening_spread(metrics.mouth_opening(aligned), speech_frames(clip))
        if not np.isfinite(spread) or spread <= 1e-9:
            return 1.0
        return float(np.clip(self.reference_spread / spread, 1 / self.max_gain, self.max_gain))

    def predict_targets(self, clip) -> np.ndarray:
        targets = np.asarray(self.predictor.predict_targets(clip), np.float64)
        if getattr(self.predictor, "target_space", "normalized") != "normalized":
            return targets
        gain = self.gain(clip, targets)
        columns = _motion_columns(targets.shape[1])
        motion = targets[:, columns]
        centre = np.nanmean(motion, axis=0, keepdims=True)
        out = targets.copy()
        out[:, columns] = centre + gain * (motion - centre)
        return out

    def predict_landmarks(self, clip) -> np.ndarray:
        from wav2kp.windowing.targets import fill_pose

        normalizer = getattr(self.predictor, "normalizer", None)
        if getattr(self.predictor, "target_space", "normalized") != "normalized" or (
            normalizer is None
        ):
            return self.predictor.predict_landmarks(clip)
        pose, _ = fill_pose(clip.pose)
        targets = self.predict_targets(clip)
        return np.asarray(normalizer.inverse(targets, pose, clip.speaker), dtype=np.float32)
