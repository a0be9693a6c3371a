"""Reference predictors every trained model must beat, fitted on train clips only.

- :class:`MeanFaceBaseline`: no audio at all. The speaker's neutral (mean) face, posed
  with the clip's head pose, i.e. zero targets through the normaliser's inverse. A
  model that does not beat it on mouth LMD has learnt nothing from the audio, and its
  mouth-opening correlation is undefined/near zero and its variance ratio near 0.
- :class:`RidgeBaseline`: a linear map (sklearn ``Ridge``) from the same flattened audio
  windows the networks see to the normalised targets, alpha chosen on the val split. The
  cheapest model that actually listens; a network should beat it clearly.

Both follow ``wav2kp.dataset.KeypointPredictor``: ``name`` and ``predict_landmarks(clip)``.
The normaliser is anything with ``inverse(targets, pose, speaker) -> (T, 68, 2)`` pixels
(``wav2kp.targets.TargetNormalizer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sklearn.linear_model import Ridge

from wav2kp.dataset import ClipData

DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


class Normalizer(Protocol):
    def inverse(self, targets: np.ndarray, pose: np.ndarray, speaker: str) -> np.ndarray: ...


def _target_dim(clips: Sequence[ClipData]) -> int:
    dims = {clip.targets.shape[1] for clip in clips}
    if len(dims) != 1:
        raise ValueError(f"clips disagree on the target size: {sorted(dims)}")
    return dims.pop()


def _training_rows(clips: Sequence[ClipData]) -> tuple[np.ndarray, np.ndarray]:
    """Flattened windows and targets of the frames usable as targets (valid, finite)."""
    xs, ys = [], []
    for clip in clips:
        x = clip.windows.reshape(len(clip.windows), -1)
        y = clip.targets
        ok = np.asarray(clip.valid, bool) & np.isfinite(y).all(axis=1) & np.isfinite(x).all(axis=1)
        xs.append(x[ok])
        ys.append(y[ok])
    if not xs or sum(len(x) for x in xs) == 0:
        raise ValueError("no valid training frames in the given clips")
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)


class MeanFaceBaseline:
    """The speaker's mean face with the clip's pose: what "no lip motion at all" scores."""

    name = "mean_face"

    def __init__(self, normalizer: Normalizer):
        self.normalizer = normalizer
        self.target_dim: int | None = None

    def fit(self, train_clips: Sequence[ClipData]) -> MeanFaceBaseline:
        self.target_dim = _target_dim(train_clips)
        return self

    def predict_targets(self, clip: ClipData) -> np.ndarray:
        dim = self.target_dim if self.target_dim is not None else clip.targets.shape[1]
        return np.zeros((clip.n_frames, dim), np.float32)

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        return np.asarray(
            self.normalizer.inverse(self.predict_targets(clip), clip.pose, clip.speaker),
            dtype=np.float32,
        )


class RidgeBaseline:
    """sklearn Ridge from flattened audio windows (T, C*D) to normalised targets (T, K)."""

    name = "ridge"

    def __init__(self, normalizer: Normalizer, alphas: Sequence[float] = DEFAULT_ALPHAS):
        self.normalizer = normalizer
        self.alphas = tuple(float(a) for a in alphas)
        self.model: Ridge | None = None
        self.alpha: float | None = None
        self.val_scores: dict[float, float] = {}  # alpha -> val MSE on targets

    def fit(
        self, train_clips: Sequence[ClipData], val_clips: Sequence[ClipData] = ()
    ) -> RidgeBaseline:
        """Fit on ``train_clips``; alpha = the one with the lowest target MSE on
        ``val_clips`` (without val clips: sklearn's leave-one-out ``RidgeCV`` on train)."""
        x_train, y_train = _training_rows(train_clips)
        val_rows = _training_rows(val_clips) if val_clips else None
        if val_rows is not None and len(val_rows[0]):
            x_val, y_val = val_rows
            self.val_scores, fitted = {}, {}
            for alpha in self.alphas:
                fitted[alpha] = Ridge(alpha=alpha).fit(x_train, y_train)
                residual = fitted[alpha].predict(x_val) - y_val
                self.val_scores[alpha] = float(np.mean(residual**2))
            self.alpha = min(self.val_scores, key=self.val_scores.get)
            self.model = fitted[self.alpha]
        else:
            from sklearn.linear_model import RidgeCV

            self.alpha = float(RidgeCV(alphas=self.alphas).fit(x_train, y_train).alpha_)
            self.model = Ridge(alpha=self.alpha).fit(x_train, y_train)
        return self

    def predict_targets(self, clip: ClipData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("RidgeBaseline.predict_* called before fit()")
        x = clip.windows.reshape(clip.n_frames, -1).astype(np.float64)
        if x.shape[1] != self.model.n_features_in_:
            raise ValueError(
                f"clip {clip.clip_id}: windows flatten to {x.shape[1]} values, the ridge "
                f"baseline was fitted on {self.model.n_features_in_}"
            )
        finite = np.isfinite(x).all(axis=1)
        out = np.full((clip.n_frames, self.model.coef_.shape[0]), np.nan, np.float32)
        if finite.any():
            out[finite] = self.model.predict(x[finite])
        return out

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        return np.asarray(
            self.normalizer.inverse(self.predict_targets(clip), clip.pose, clip.speaker),
            dtype=np.float32,
        )


def fit_baselines(
    normalizer: Normalizer,
    clips: Sequence[ClipData],
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> list[MeanFaceBaseline | RidgeBaseline]:
    """Both baselines fitted on the ``train`` clips of ``clips`` (ridge alpha on ``val``)."""
    train = [c for c in clips if c.split == "train"]
    val = [c for c in clips if c.split == "val"]
    if not train:
        raise ValueError("no train clips to fit the baselines on")
    return [
        MeanFaceBaseline(normalizer).fit(train),
        RidgeBaseline(normalizer, alphas).fit(train, val),
    ]
