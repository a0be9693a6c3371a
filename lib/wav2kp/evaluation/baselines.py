"""Reference predictors every trained model must beat, fitted on the training clips.

- :class:`MeanFaceBaseline` (``mean_face``): no audio at all. The true per-speaker mean
  of the training targets (pose removed), posed with the clip's head pose: the best
  constant face under a squared error. A model that does not beat it on mouth LMD has
  learnt nothing from the audio; its mouth is frozen (variance ratio 0, r undefined).
- :class:`NeutralFaceBaseline` (``neutral_face``): the speaker's closed-mouth neutral
  face (zero targets of the normaliser), what a still photograph of the speaker shows.
- :class:`LoudnessBaseline` (``loudness``): the mouth opened by the loudness envelope
  of the speech, the rest of the face from the neutral. One scale per mouth coordinate and
  one lag, fitted on the training clips; nothing else is learnt about the speaker, so
  on a voice never heard it is the floor an audio model must clear.
- :class:`RidgeBaseline` (``ridge``): a linear map (sklearn ``Ridge``) from the flattened
  audio windows to the normalised targets, alpha chosen on the val split; given the
  window of the model it is compared with, it sees exactly that model's audio.

All follow ``wav2kp.windowing.dataset.KeypointPredictor``: ``name`` and ``predict_landmarks(clip)``.
``fit_baselines`` fits all of them under one rule: on train, or (``refit=True``, the
rule the trained models follow when they refit on train + val) on train + val, choices
such as ridge's alpha still made on val first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from sklearn.linear_model import Ridge

from wav2kp.config import WindowConfig
from wav2kp.media.audio import SAMPLE_RATE
from wav2kp.media.probe import MediaError
from wav2kp.windowing.dataset import ClipData
from wav2kp.windowing.targets import apply_pose, fill_pose
from wav2kp.windowing.windowing import build_windows

DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
MOUTH = np.arange(48, 68)


class Normalizer(Protocol):
    def inverse(self, targets: np.ndarray, pose: np.ndarray, speaker: str) -> np.ndarray: ...


def _target_dim(clips: Sequence[ClipData]) -> int:
    dims = {clip.targets.shape[1] for clip in clips}
    if len(dims) != 1:
        raise ValueError(f"clips disagree on the target size: {sorted(dims)}")
    return dims.pop()


def _usable(clip: ClipData) -> np.ndarray:
    return np.asarray(clip.valid, bool) & np.isfinite(clip.targets).all(axis=1)


def _posed(normalizer: Normalizer, targets: np.ndarray, clip: ClipData) -> np.ndarray:
    pose, _ = fill_pose(clip.pose)
    return np.asarray(normalizer.inverse(targets, pose, clip.speaker), dtype=np.float32)


class MeanFaceBaseline:
    """The speaker's mean training face with the clip's pose (an unknown speaker gets
    the mean over all training frames)."""

    name = "mean_face"

    def __init__(self, normalizer: Normalizer):
        self.normalizer = normalizer
        self.speaker_means: dict[str, np.ndarray] = {}
        self.overall_mean: np.ndarray | None = None

    def fit(self, train_clips: Sequence[ClipData]) -> MeanFaceBaseline:
        _target_dim(train_clips)
        rows: dict[str, list[np.ndarray]] = {}
        for clip in train_clips:
            rows.setdefault(clip.speaker, []).append(clip.targets[_usable(clip)])
        stacked = {s: np.concatenate(r).astype(np.float64) for s, r in rows.items()}
        stacked = {s: r for s, r in stacked.items() if len(r)}
        if not stacked:
            raise ValueError("no valid training frame to take the mean face from")
        self.speaker_means = {s: r.mean(axis=0) for s, r in stacked.items()}
        self.overall_mean = np.concatenate(list(stacked.values())).mean(axis=0)
        return self

    def predict_targets(self, clip: ClipData) -> np.ndarray:
        if self.overall_mean is None:
            raise RuntimeError("MeanFaceBaseline.predict_* called before fit()")
        mean = self.speaker_means.get(clip.speaker, self.overall_mean)
        return np.tile(mean, (clip.n_frames, 1)).astype(np.float32)

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        return _posed(self.normalizer, self.predict_targets(clip), clip)


class NeutralFaceBaseline:
    """The speaker's closed-mouth neutral face (the normaliser's zero) with the clip's pose."""

    name = "neutral_face"

    def __init__(self, normalizer: Normalizer):
        self.normalizer = normalizer
        self.target_dim: int | None = None

    def fit(self, train_clips: Sequence[ClipData]) -> NeutralFaceBaseline:
        self.target_dim = _target_dim(train_clips)
        return self

    def predict_targets(self, clip: ClipData) -> np.ndarray:
        dim = self.target_dim if self.target_dim is not None else clip.targets.shape[1]
        return np.zeros((clip.n_frames, dim), np.float32)

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        return _posed(self.normalizer, self.predict_targets(clip), clip)


# ---------- the loudness envelope ----------


def loudness_db(
    samples: np.ndarray, sample_rate: int, times: np.ndarray, window_s: float = 0.04
) -> np.ndarray:
    """(T,) level in dB of the mean square of ``samples`` in a ``window_s`` window centred
    on each of ``times`` (seconds; the part of a window outside the signal counts as
    silence)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1:
        raise ValueError(f"loudness needs mono samples (N,), got {samples.shape}")
    energy = np.concatenate([[0.0], np.cumsum(samples**2)])
    half = window_s * sample_rate / 2
    centre = np.asarray(times, dtype=np.float64) * sample_rate
    lo = np.clip(np.round(centre - half), 0, len(samples)).astype(np.int64)
    hi = np.clip(np.round(centre + half), 0, len(samples)).astype(np.int64)
    width = max(1, int(round(2 * half)))
    return 10 * np.log10((energy[hi] - energy[lo]) / width + 1e-12)


class LoudnessBaseline:
    """Mouth points = neutral + ``intercept + slope * level(t + lag)``, the rest of the
    face = neutral; ``level`` is the speech's loudness in dB relative to the clip's own
    loud parts (its ``reference_percentile``), floored at ``floor_db`` and scaled to
    0 (floor) .. 1 (reference), so a recording's gain does not matter. ``fit`` picks the
    lag (from ``lags_ms``) and the per-coordinate intercept and slope by least squares
    on the training clips' aligned mouth motion.

    A clip is predicted from its audio (``clip.audio_path``) around the neutral face a
    trained model gets (``TargetNormalizer.neutral_for``): the speaker's for a training
    speaker, else the training speakers' mean - never one estimated from a test clip's
    own ground truth, which no model is given.
    """

    name = "loudness"

    def __init__(
        self,
        normalizer,
        lags_ms: Sequence[float] = tuple(range(-200, 201, 10)),
        window_s: float = 0.04,
        floor_db: float = -50.0,
        reference_percentile: float = 95.0,
        sample_rate: int = SAMPLE_RATE,
    ):
        self.normalizer = normalizer
        self.lags_ms = tuple(float(lag) for lag in lags_ms)
        self.window_s = float(window_s)
        self.floor_db = float(floor_db)
        self.reference_percentile = float(reference_percentile)
        self.sample_rate = int(sample_rate)
        self.lag_ms: float | None = None
        self.intercept: np.ndarray | None = None  # (20, 2) aligned units
        self.slope: np.ndarray | None = None  # (20, 2)
        self.train_errors: dict[float, float] = {}  # lag -> mean squared mouth error
        self._audio: dict[Path, tuple[np.ndarray, int]] = {}

    # ----- signals -----
    def reference_db(self, samples: np.ndarray, sample_rate: int) -> float:
        """The clip's loud level: ``reference_percentile`` of its loudness every 10 ms."""
        grid = np.arange(0.0, len(samples) / sample_rate, 0.01)
        levels = loudness_db(samples, sample_rate, grid, self.window_s)
        return float(np.percentile(levels, self.reference_percentile))

    def level(
        self,
        samples: np.ndarray,
        sample_rate: int,
        times: np.ndarray,
        reference_db: float | None = None,
    ) -> np.ndarray:
        """(T,) loudness at ``times`` scaled to 0 (floor) .. 1 (the clip's reference)."""
        if reference_db is None:
            reference_db = self.reference_db(samples, sample_rate)
        relative = loudness_db(samples, sample_rate, times, self.window_s) - reference_db
        return (np.maximum(relative, self.floor_db) - self.floor_db) / -self.floor_db

    def _clip_audio(self, clip: ClipData) -> tuple[np.ndarray, int]:
        if clip.audio_path is None:
            raise ValueError(f"clip {clip.clip_id}: no audio file to take the loudness from")
        path = Path(clip.audio_path)
        if path not in self._audio:
            from wav2kp.media.audio import load_audio

            self._audio[path] = load_audio(path, self.sample_rate)
        return self._audio[path]

    def _mouth_motion(self, clip: ClipData) -> np.ndarray:
        """(T, 20, 2) aligned mouth of a training clip minus its speaker's neutral mouth
        (a fitting clip's own ground truth may set it); NaN where invalid."""
        aligned, _ = self.normalizer.align(clip.landmarks)
        valid = np.asarray(clip.valid, bool)
        aligned[~valid] = np.nan
        if clip.speaker in getattr(self.normalizer, "neutrals", {}):
            neutral = self.normalizer.neutral_for(clip.speaker)
        else:
            neutral = self.normalizer.neutral_from_landmarks(clip.landmarks[valid])
        return (aligned - neutral[None])[:, MOUTH]

    def neutral(self, clip: ClipData) -> np.ndarray:
        """(68, 2) aligned neutral face a prediction for ``clip`` is built on: the one a
        trained model gets for its speaker (see class doc)."""
        return self.normalizer.neutral_for(clip.speaker or None)

    # ----- fit / predict -----
    def fit(self, train_clips: Sequence[ClipData]) -> LoudnessBaseline:
        levels: dict[float, list[np.ndarray]] = {lag: [] for lag in self.lags_ms}
        motions = []
        for clip in train_clips:
            samples, rate = self._clip_audio(clip)
            motion = self._mouth_motion(clip).reshape(clip.n_frames, -1)
            ok = np.isfinite(motion).all(axis=1)
            motions.append(motion[ok])
            reference = self.reference_db(samples, rate)
            for lag in self.lags_ms:
                times = clip.frame_times[ok] + lag / 1e3
                levels[lag].append(self.level(samples, rate, times, reference))
        y = np.concatenate(motions) if motions else np.zeros((0, 40))
        if len(y) < 3:
            raise ValueError("no valid training frames with audio to fit the loudness baseline")
        fits = {}
        for lag in self.lags_ms:
            x = np.concatenate(levels[lag])
            design = np.column_stack([np.ones_like(x), x])
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            fits[lag] = coef
            self.train_errors[lag] = float(np.mean((design @ coef - y) ** 2))
        self.lag_ms = min(self.train_errors, key=self.train_errors.get)
        self.intercept = fits[self.lag_ms][0].reshape(len(MOUTH), 2)
        self.slope = fits[self.lag_ms][1].reshape(len(MOUTH), 2)
        return self

    def predict_aligned(
        self, samples: np.ndarray, sample_rate: int, frame_times: np.ndarray, neutral: np.ndarray
    ) -> np.ndarray:
        """(T, 68, 2) pose-free faces for speech ``samples`` at ``frame_times`` (seconds)
        around an aligned ``neutral`` face (68, 2)."""
        if self.lag_ms is None:
            raise RuntimeError("LoudnessBaseline.predict_* called before fit()")
        level = self.level(samples, sample_rate, np.asarray(frame_times) + self.lag_ms / 1e3)
        faces = np.repeat(np.asarray(neutral, np.float64)[None], len(level), axis=0)
        faces[:, MOUTH] += self.intercept[None] + level[:, None, None] * self.slope[None]
        return faces

    def predict_landmarks(self, clip: ClipData) -> np.ndarray:
        samples, rate = self._clip_audio(clip)
        faces = self.predict_aligned(samples, rate, clip.frame_times, self.neutral(clip))
        pose, _ = fill_pose(clip.pose)
        return apply_pose(faces, pose).astype(np.float32)


# ---------- ridge ----------


def _inputs(clip: ClipData, window: WindowConfig | None) -> np.ndarray:
    """(T, C*D) flattened audio windows: the clip's own, or rebuilt with ``window``."""
    if window is None:
        windows = clip.windows
    else:
        windows = build_windows(clip.features, clip.feature_times, clip.frame_times, window)
    return np.asarray(windows, dtype=np.float64).reshape(clip.n_frames, -1)


def _training_rows(
    clips: Sequence[ClipData], window: WindowConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flattened windows and targets of the frames usable as targets (valid, finite)."""
    xs, ys = [], []
    for clip in clips:
        x = _inputs(clip, window)
        ok = _usable(clip) & np.isfinite(x).all(axis=1)
        xs.append(x[ok])
        ys.append(clip.targets[ok].astype(np.float64))
    if not xs or sum(len(x) for x in xs) == 0:
        raise ValueError("no valid training frames in the given clips")
    return np.concatenate(xs), np.concatenate(ys)


class RidgeBaseline:
    """sklearn Ridge from flattened audio windows (T, C*D) to normalised targets (T, K).
    ``window``: rebuild each clip's windows with this ``WindowConfig`` (the compared
    model's); None uses ``clip.windows`` as loaded."""

    name = "ridge"

    def __init__(
        self,
        normalizer: Normalizer,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        window: WindowConfig | None = None,
    ):
        self.normalizer = normalizer
        self.alphas = tuple(float(a) for a in alphas)
        self.window = window
        self.model: Ridge | None = None
        self.alpha: float | None = None
        self.val_scores: dict[float, float] = {}  # alpha -> val MSE on targets

    def fit(
        self,
        train_clips: Sequence[ClipData],
        val_clips: Sequence[ClipData] = (),
        refit: bool = False,
    ) -> RidgeBaseline:
        """Fit on ``train_clips``; alpha = the one with the lowest target MSE on
        ``val_clips`` (without val clips: sklearn's leave-one-out ``RidgeCV`` on train).
        ``refit``: then fit again with that alpha on train + val."""
        x_train, y_train = _training_rows(train_clips, self.window)
        val_rows = _training_rows(val_clips, self.window) if val_clips else None
        if val_rows is not None and len(val_rows[0]):
            x_val, y_val = val_rows
            self.val_scores, fitted = {}, {}
            for alpha in self.alphas:
                fitted[alpha] = Ridge(alpha=alpha).fit(x_train, y_train)
                residual = fitted[alpha].predict(x_val) - y_val
                self.val_scores[alpha] = float(np.mean(residual**2))
            self.alpha = min(self.val_scores, key=self.val_scores.get)
            self.model = fitted[self.alpha]
            if refit:
                x_all, y_all = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
                self.model = Ridge(alpha=self.alpha).fit(x_all, y_all)
        else:
            from sklearn.linear_model import RidgeCV

            self.alpha = float(RidgeCV(alphas=self.alphas).fit(x_train, y_train).alpha_)
            self.model = Ridge(alpha=self.alpha).fit(x_train, y_train)
        return self

    def predict_targets(self, clip: ClipData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("RidgeBaseline.predict_* called before fit()")
        x = _inputs(clip, self.window)
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
        return _posed(self.normalizer, self.predict_targets(clip), clip)


BASELINES = ("mean_face", "neutral_face", "loudness", "ridge")


def fit_baselines(
    normalizer,
    clips: Sequence[ClipData],
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    refit: bool = False,
    window: WindowConfig | None = None,
    names: Sequence[str] = BASELINES,
) -> tuple[list, list[str]]:
    """The baselines in ``names`` fitted on the ``train`` clips of ``clips`` (+ ``val``
    with ``refit``; ridge's alpha is chosen on ``val`` either way), ridge on ``window``.
    Returns ``(fitted baselines, one message per baseline that could not be fitted)``:
    e.g. the loudness baseline needs the clips' audio files."""
    unknown = set(names) - set(BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; known: {', '.join(BASELINES)}")
    train = [c for c in clips if c.split == "train"]
    val = [c for c in clips if c.split == "val"]
    if not train:
        raise ValueError("no train clips to fit the baselines on")
    fit_on = [*train, *val] if refit else train
    makers = {
        "mean_face": lambda: MeanFaceBaseline(normalizer).fit(fit_on),
        "neutral_face": lambda: NeutralFaceBaseline(normalizer).fit(fit_on),
        "loudness": lambda: LoudnessBaseline(normalizer).fit(fit_on),
        "ridge": lambda: RidgeBaseline(normalizer, alphas, window).fit(train, val, refit),
    }
    fitted, problems = [], []
    for name in names:
        try:
            fitted.append(makers[name]())
        except (ValueError, OSError, MediaError) as err:
            problems.append(f"baseline {name!r} not fitted: {err}")
    return fitted, problems
