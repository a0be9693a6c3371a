"""A trained model as a standalone predictor: ``load_predictor(checkpoint)``.

A checkpoint bundles the model config and weights with the feature, window and target
settings, so ``load_predictor(path)`` gives a ``KeypointPredictor`` that needs no other
file. Each model gets the features it was trained on: a clip holding other features (the
original replica's raw MFCC on a log-mel corpus) has them recomputed from its audio.
Target spaces:

- ``"normalized"``: pose removed, relative to the speaker's neutral face (see
  ``wav2kp.windowing.targets``); back to pixels with the normaliser's inverse and the clip's pose.
- ``"frame"``: raw pixel coordinates divided by the frame size (the original project's
  coordinates / 256); back to pixels by multiplying.

``Predictor.with_emotion("neutral")`` scores the default model without the clip's emotion
label (new speech has none); a callable ``clip -> label`` (e.g. ``EmotionFromAudio``)
uses a label predicted from the audio instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from wav2kp.config import TrainConfig
from wav2kp.training.checkpoints import load_checkpoint, verify_against_corpus
from wav2kp.training.models import ModelConfig, build_model, predict_sequence
from wav2kp.windowing.dataset import ClipData, clip_windows, with_features
from wav2kp.windowing.windowing import feature_hop


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Predictor:
    """A trained model as a ``KeypointPredictor``: ``predict_landmarks(clip)`` -> (T, 68, 2)
    pixels, ``predict_targets(clip)`` -> (T, K) in the model's target space."""

    num_threads = 1  # CPU threads for inference (0: torch's default); see TrainConfig

    def __init__(
        self,
        model,
        model_config: ModelConfig,
        train_config: TrainConfig,
        context: dict,
        name: str,
        fingerprint: dict | None = None,
    ):
        self.model = model.eval()
        self.model_config = model_config
        self.train_config = train_config
        self.context = context
        self.name = name
        self.fingerprint = dict(fingerprint or {})
        self.window_config = train_config.window_config
        self.target_space = train_config.target_space
        # None: each clip's own label; a label: that one for every clip; a callable:
        # clip -> label
        self.emotion: str | Callable[[ClipData], str] | None = None
        self._normalizer = None

    @property
    def corpus(self) -> str:
        """The corpus the model was trained on ("" if unknown)."""
        return str(self.fingerprint.get("corpus") or self.context.get("corpus") or "")

    @property
    def speakers(self) -> list[str]:
        """The speakers of the clips the model was trained on."""
        return list(self.fingerprint.get("speakers", []))

    @property
    def normalizer(self):
        if self._normalizer is None and self.context.get("normalizer") is not None:
            from wav2kp.windowing.targets import TargetNormalizer

            self._normalizer = TargetNormalizer.from_state_dict(self.context["normalizer"])
        return self._normalizer

    @property
    def feature_config(self):
        """``wav2kp.config.FeatureConfig`` the model is fed (None if unknown)."""
        from wav2kp.config import FeatureConfig

        state = self.context.get("feature_config")
        return None if state is None else FeatureConfig.from_dict(state)

    @property
    def feature_stats(self):
        """``wav2kp.features.features.FeatureStats`` that normalise its input features."""
        from wav2kp.features.features import FeatureStats

        state = self.context.get("feature_stats")
        return None if state is None else FeatureStats.from_dict(state)

    def with_emotion(
        self, emotion: str | Callable[[ClipData], str] | None, name: str | None = None
    ) -> Predictor:
        """A copy that conditions on ``emotion`` instead of each clip's label: a label
        (``"neutral"``), or a callable ``clip -> label``; named ``name`` (default
        ``"<name> (<label or 'audio emotion'>)"``)."""
        other = copy.copy(self)
        other.emotion = emotion
        label = emotion if isinstance(emotion, str) or emotion is None else "audio emotion"
        other.name = name or f"{self.name} ({label})"
        return other

    def emotion_of(self, clip: ClipData) -> str:
        if self.emotion is None:
            return clip.emotion
        return self.emotion(clip) if callable(self.emotion) else self.emotion

    def model_clip(self, clip: ClipData) -> ClipData:
        """The clip with the features this model was trained on."""
        config, stats = self.feature_config, self.feature_stats
        if config is None or stats is None:
            return clip
        return with_features(clip, config, stats)

    def check_clip(self, clip: ClipData) -> None:
        d = clip.features.shape[1] if np.ndim(clip.features) == 2 else None
        if d != self.model_config.feature_dim:
            raise ValueError(
                f"{clip.clip_id}: features have shape {np.shape(clip.features)}, "
                f"the model {self.name!r} expects (F, {self.model_config.feature_dim})"
            )
        if len(clip.feature_times) < 2:
            raise ValueError(
                f"{clip.clip_id}: fewer than two feature frames, nothing to predict from"
            )
        hop = feature_hop(clip.feature_times)
        expected = self.model_config.context
        got = (
            self.window_config.n_context(hop)
            if self.window_config.mode != "original"
            else self.window_config.original_window
        )
        if got != expected:
            raise ValueError(
                f"{clip.clip_id}: feature hop {hop * 1000:.1f} ms gives windows of {got} "
                f"frames, the model expects {expected}"
            )

    def predict_targets(self, clip: ClipData, chunk: int = 4096) -> np.ndarray:
        label = self.emotion_of(clip)
        clip = self.model_clip(clip)
        self.check_clip(clip)
        upsample = self.train_config.upsample
        windows = clip_windows(clip, self.window_config, upsample)
        threads_before = torch.get_num_threads()
        if self.num_threads > 0:
            torch.set_num_threads(self.num_threads)
        try:
            emotion = self.model_config.emotion_index(label)
            out = predict_sequence(self.model, windows, chunk=chunk, emotion=emotion)
        finally:
            torch.set_num_threads(threads_before)
        return out[::upsample][: clip.n_frames]

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        targets = self.predict_targets(clip).astype(np.float64)
        if self.target_space == "frame":
            width, height = clip.frame_size
            return (targets.reshape(len(targets), 68, 2) * np.array([width, height])).astype(
                np.float32
            )
        from wav2kp.windowing.targets import fill_pose

        if self.normalizer is None:
            raise ValueError(f"checkpoint of {self.name!r} holds no target normaliser")
        pose, _ = fill_pose(clip.pose)
        return np.asarray(self.normalizer.inverse(targets, pose, clip.speaker), dtype=np.float32)


def checkpoint_file(path: str | Path) -> Path:
    """``best.pt`` of a model folder: the folder's own, else its first seed's
    (``seed-<n>/``, lowest n); a file is itself."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / "best.pt").is_file():
        return path / "best.pt"
    seeds = sorted(
        (p for p in path.glob("seed-*") if (p / "best.pt").is_file()),
        key=lambda p: int(p.name.split("-", 1)[1]) if p.name.split("-", 1)[1].isdigit() else 0,
    )
    return seeds[0] / "best.pt" if seeds else path / "best.pt"


def load_predictor(
    checkpoint_path: str | Path,
    name: str | None = None,
    device: str = "cpu",
    corpus: str | None = None,
    root=None,
) -> Predictor:
    """A standalone predictor from ``best.pt`` / ``last.pt`` (or a model folder, see
    ``checkpoint_file``). With ``corpus``, a checkpoint trained on other data than that
    corpus holds now (split, features, normaliser, re-extracted clips) is refused with a
    ``CheckpointMismatch`` naming what changed."""
    path = checkpoint_file(checkpoint_path)
    payload = load_checkpoint(path, map_location=resolve_device(device))
    if corpus is not None:
        verify_against_corpus(payload, corpus, root, source=str(path))
    model_config = ModelConfig.from_dict(payload["model_config"])
    train_config = TrainConfig.from_dict(payload["train_config"])
    model = build_model(model_config).to(resolve_device(device))
    model.load_state_dict(payload["model_state"])
    predictor = Predictor(
        model,
        model_config,
        train_config,
        payload.get("context", {}),
        name or train_config.model,
        payload.get("fingerprint"),
    )
    if train_config.target_space != "normalized":
        return predictor
    if (
        train_config.calibrate
    ):  # wav2kp.training.calibration: motion rescaled to the training spread
        from wav2kp.training.calibration import Calibrated

        predictor = Calibrated(predictor, name=predictor.name)
    if train_config.silence_gate:
        from wav2kp.training.vad import SilenceGate

        predictor = SilenceGate(predictor, name=predictor.name)
    return predictor


def unwrapped(predictor):
    """The trained model under its inference wrappers (``SilenceGate``, ``Calibrated``)."""
    while not isinstance(predictor, Predictor) and hasattr(predictor, "predictor"):
        predictor = predictor.predictor
    return predictor


def _gate(predictor):
    from wav2kp.training.vad import SilenceGate

    return SilenceGate(predictor, name=f"{predictor.name}+gate")


def _calibrated(predictor):
    from wav2kp.training.calibration import Calibrated

    return Calibrated(predictor, name=f"{predictor.name}+calibrated")


def _gate_calibrated(predictor):
    return _gate(_calibrated(predictor))


# post-processings of a trained model, scored beside it by the studies (``views`` of
# ``wav2kp.studies.cv.run_cv``, ``wav2kp.studies.levers.evaluate_final``)
VIEWS = {"gate": _gate, "calibrated": _calibrated, "calibrated+gate": _gate_calibrated}


class EmotionFromAudio:
    """An emotion label predicted from a clip's audio alone: logistic regression on the
    mean and standard deviation of its (normalised) features, fitted on training clips.
    A callable ``clip -> label`` for ``Predictor.with_emotion``."""

    def __init__(self, c: float = 1.0):
        self.c = c
        self.model = None

    @staticmethod
    def _summary(clip: ClipData) -> np.ndarray:
        features = np.asarray(clip.features, dtype=np.float64)
        return np.concatenate([features.mean(axis=0), features.std(axis=0)])

    def fit(self, clips: Sequence[ClipData]) -> EmotionFromAudio:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        labelled = [c for c in clips if c.emotion]
        labels = sorted({c.emotion for c in labelled})
        if len(labels) < 2:
            raise ValueError(f"need clips of at least two emotions to learn them, got {labels}")
        x = np.stack([self._summary(c) for c in labelled])
        y = [c.emotion for c in labelled]
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=2000))
        self.model.fit(x, y)
        return self

    def __call__(self, clip: ClipData) -> str:
        if self.model is None:
            raise RuntimeError("EmotionFromAudio is not fitted")
        return str(self.model.predict(self._summary(clip)[None])[0])
