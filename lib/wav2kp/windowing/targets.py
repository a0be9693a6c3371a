"""Training targets: 68 points with head pose removed, relative to the speaker's neutral face.

Per frame, a 2D similarity (scale, rotation, translation; least squares, Umeyama) maps a
template face onto the frame's *stable* points (eye corners 36/39/42/45 and nose bridge
27-30: they barely move when speaking). Its inverse brings the frame into the template's
frame ("aligned", units of inter-ocular distance, eyes horizontal), removing head pose.
The pose ``[scale, angle_rad, tx, ty]`` is kept so predictions map back to pixels.

Targets are aligned shape minus the speaker's *neutral* face, so the model predicts
motion, not identity. Neutral face (``neutral="closed"``, the default): the mean aligned
shape over the frames whose inner-lip gap is in the lowest 20 % for that speaker - a
closed-mouth face, which is also what a reference clip or still of a new person usually
shows. ``neutral="mean"`` uses the mean over all frames instead. Unknown speakers get the
mean of all training speakers' neutral faces, or one estimated from a reference clip with
``neutral_from_landmarks`` / ``add_speaker``.

Residuals (optionally projected on a PCA fitted on train) are divided by one scalar (their
training RMS), which keeps the relative weight of the points in an MSE loss.
Everything is fitted on the training split only; ``state_dict()`` is plain JSON.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from wav2kp.extraction.reader import valid_frames

STABLE_POINTS = (27, 28, 29, 30, 36, 39, 42, 45)
NEUTRAL_METHODS = ("closed", "mean")
OUTER_EYE_CORNERS = (36, 45)
INNER_LIP_TOP, INNER_LIP_BOTTOM = 62, 66


# ---------- similarity transforms, vectorised over frames ----------


def fit_similarity(template: np.ndarray, frames: np.ndarray, points=STABLE_POINTS) -> np.ndarray:
    """Least-squares similarity mapping ``template`` (68, 2) onto each frame (T, 68, 2),
    using only ``points``. Returns pose (T, 4) ``[scale, angle, tx, ty]`` with
    ``pixels = scale * R(angle) @ aligned + t``; NaN rows where a stable point is missing."""
    frames = np.asarray(frames, dtype=np.float64)
    points = list(points)
    src = np.asarray(template, dtype=np.float64)[points]
    dst = frames[:, points]
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=1)
    za = (src - src_mean) @ np.array([1, 1j])
    zb = (dst - dst_mean[:, None]) @ np.array([1, 1j])
    # Complex least squares: zb ~ c * za, with c = scale * exp(i angle).
    c = (zb @ np.conj(za)) / np.sum(np.abs(za) ** 2)
    scale, angle = np.abs(c), np.angle(c)
    t = dst_mean - _rotate(src_mean[None, None], scale, angle)[:, 0]
    pose = np.column_stack([scale, angle, t])
    pose[~np.isfinite(pose).all(axis=1)] = np.nan
    return pose


def _rotate(points: np.ndarray, scale: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """scale * R(angle) @ p for points (T, N, 2) (or broadcastable) and per-frame scale/angle."""
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, y = points[..., 0], points[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1) * scale[:, None, None]


def apply_pose(aligned: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Aligned shapes (T, 68, 2) -> pixels, with pose (T, 4)."""
    aligned = np.asarray(aligned, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    return _rotate(aligned, pose[:, 0], pose[:, 1]) + pose[:, None, 2:4]


def remove_pose(pixels: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Pixels (T, 68, 2) -> aligned shapes, inverting pose (T, 4)."""
    pixels = np.asarray(pixels, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    return _rotate(pixels - pose[:, None, 2:4], 1.0 / pose[:, 0], -pose[:, 1])


def normalise_shape(shape: np.ndarray, points=STABLE_POINTS) -> np.ndarray:
    """Put one shape in the canonical frame: stable-point centroid at 0, outer eye corners
    on a horizontal line, inter-ocular distance 1."""
    shape = np.asarray(shape, dtype=np.float64)
    left, right = shape[OUTER_EYE_CORNERS[0]], shape[OUTER_EYE_CORNERS[1]]
    dx, dy = right - left
    scale = 1.0 / np.hypot(dx, dy)
    angle = -np.arctan2(dy, dx)
    centred = shape - shape[list(points)].mean(axis=0)
    return _rotate(centred[None], np.array([scale]), np.array([angle]))[0]


def mouth_gap(shapes: np.ndarray) -> np.ndarray:
    """Inner-lip gap |y66 - y62| of shapes (..., 68, 2), in the shapes' units."""
    shapes = np.asarray(shapes)
    return np.abs(shapes[..., INNER_LIP_BOTTOM, 1] - shapes[..., INNER_LIP_TOP, 1])


# ---------- the normaliser ----------


class TargetNormalizer:
    """Pose removal + per-speaker neutral face + optional PCA + scalar scale (module doc)."""

    def __init__(
        self,
        pca_components: int | None = None,
        neutral: str = "closed",
        closed_quantile: float = 0.2,
        stable_points=STABLE_POINTS,
    ) -> None:
        if neutral not in NEUTRAL_METHODS:
            raise ValueError(f"neutral must be one of {NEUTRAL_METHODS}, got {neutral!r}")
        if pca_components is not None and not 1 <= int(pca_components) <= 136:
            raise ValueError(f"pca_components must be None or 1..136, got {pca_components}")
        self.pca_components = None if pca_components is None else int(pca_components)
        self.neutral = neutral
        self.closed_quantile = float(closed_quantile)
        self.stable_points = tuple(int(p) for p in stable_points)
        self.template: np.ndarray | None = None  # (68, 2) canonical mean face
        self.neutrals: dict[str, np.ndarray] = {}  # speaker -> (68, 2) aligned neutral
        self.pca_mean: np.ndarray | None = None  # (136,)
        self.pca_basis: np.ndarray | None = None  # (K, 136) orthonormal rows
        self.explained_variance_ratio: np.ndarray | None = None
        self.scale = 1.0

    # ----- fitting -----
    @property
    def fitted(self) -> bool:
        return self.template is not None

    @property
    def n_targets(self) -> int:
        return self.pca_components if self.pca_components is not None else 136

    def fit(self, clips: Iterable[tuple[str, np.ndarray]], iterations: int = 3) -> TargetNormalizer:
        """Fit on training clips given as ``(speaker, landmarks (T, 68, 2) pixels)`` pairs;
        frames with any missing point are ignored."""
        per_speaker: dict[str, list[np.ndarray]] = {}
        for speaker, landmarks in clips:
            landmarks = np.asarray(landmarks, dtype=np.float64)
            good = landmarks[valid_frames(landmarks)]
            if len(good):
                per_speaker.setdefault(str(speaker), []).append(good)
        if not per_speaker:
            raise ValueError("no valid landmark frame to fit the target normaliser on")
        frames = np.concatenate([np.concatenate(v) for v in per_speaker.values()])
        # Generalised Procrustes: align all frames to the mean shape, update, repeat.
        template = normalise_shape(np.median(frames, axis=0), self.stable_points)
        for _ in range(iterations):
            aligned = remove_pose(frames, fit_similarity(template, frames, self.stable_points))
            template = normalise_shape(aligned.mean(axis=0), self.stable_points)
        self.template = template
        self.neutrals = {
            speaker: self.neutral_from_landmarks(np.concatenate(arrays))
            for speaker, arrays in per_speaker.items()
        }
        residuals = np.concatenate(
            [
                self.residuals(np.concatenate(arrays), neutral=self.neutrals[speaker])
                for speaker, arrays in per_speaker.items()
            ]
        )
        if self.pca_components is not None:
            from sklearn.decomposition import PCA

            k = min(self.pca_components, *residuals.shape)
            pca = PCA(n_components=k, svd_solver="full").fit(residuals)
            self.pca_components = k
            self.pca_mean = np.ascontiguousarray(pca.mean_, dtype=np.float64)
            self.pca_basis = np.ascontiguousarray(pca.components_, dtype=np.float64)
            self.explained_variance_ratio = pca.explained_variance_ratio_.astype(np.float64)
            reduced = (residuals - self.pca_mean) @ self.pca_basis.T
        else:
            reduced = residuals
        rms = float(np.sqrt(np.mean(reduced**2)))
        self.scale = rms if rms > 0 else 1.0
        return self

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("TargetNormalizer is not fitted; call fit() or from_state_dict()")

    def align(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(aligned shapes (T, 68, 2), pose (T, 4)); NaN where a frame is missing."""
        self._check_fitted()
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
            raise ValueError(f"landmarks must be (T, 68, 2), got {landmarks.shape}")
        pose = fit_similarity(self.template, landmarks, self.stable_points)
        return remove_pose(landmarks, pose), pose

    def neutral_from_landmarks(self, landmarks: np.ndarray) -> np.ndarray:
        """A neutral face (68, 2, aligned units) estimated from a clip's landmarks
        (T, 68, 2 pixels) - e.g. a reference clip of a speaker never seen in training."""
        self._check_fitted()
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.ndim == 2:
            landmarks = landmarks[None]
        aligned, _ = self.align(landmarks[valid_frames(landmarks)])
        if len(aligned) == 0:
            raise ValueError("no valid landmark frame to estimate a neutral face from")
        if self.neutral == "closed":
            gaps = mouth_gap(aligned)
            aligned = aligned[gaps <= np.quantile(gaps, self.closed_quantile)]
        return aligned.mean(axis=0)

    def add_speaker(self, speaker: str, landmarks: np.ndarray) -> np.ndarray:
        """Register (or replace) a speaker's neutral face from a reference clip."""
        self.neutrals[str(speaker)] = self.neutral_from_landmarks(landmarks)
        return self.neutrals[str(speaker)]

    @property
    def mean_neutral(self) -> np.ndarray:
        """The mean of the training speakers' neutral faces (for unknown speakers)."""
        self._check_fitted()
        return np.mean(list(self.neutrals.values()), axis=0)

    def neutral_for(
        self, speaker: str | None = None, neutral: np.ndarray | None = None
    ) -> np.ndarray:
        """An explicit neutral face wins; else the speaker's; else the mean neutral."""
        if neutral is not None:
            return np.asarray(neutral, dtype=np.float64)
        if speaker is not None and str(speaker) in self.neutrals:
            return self.neutrals[str(speaker)]
        return self.mean_neutral

    def residuals(
        self, landmarks: np.ndarray, speaker: str | None = None, neutral: np.ndarray | None = None
    ) -> np.ndarray:
        """(T, 136) aligned shape minus the neutral face, before PCA and scaling."""
        aligned, _ = self.align(landmarks)
        return (aligned - self.neutral_for(speaker, neutral)).reshape(len(aligned), 136)

    # ----- forward / inverse -----
    def transform(
        self, landmarks: np.ndarray, speaker: str | None = None, neutral: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (T, 68, 2) -> (targets (T, K) float64, pose (T, 4) float64); NaN rows
        where the frame is missing."""
        self._check_fitted()
        aligned, pose = self.align(landmarks)
        residual = (aligned - self.neutral_for(speaker, neutral)).reshape(len(aligned), 136)
        if self.pca_basis is not None:
            residual = (residual - self.pca_mean) @ self.pca_basis.T
        return residual / self.scale, pose

    def to_aligned(
        self, targets: np.ndarray, speaker: str | None = None, neutral: np.ndarray | None = None
    ) -> np.ndarray:
        """Targets (T, K) -> aligned shapes (T, 68, 2) (pose-free, IOD units)."""
        self._check_fitted()
        z = np.asarray(targets, dtype=np.float64) * self.scale
        if self.pca_basis is not None:
            z = z @ self.pca_basis + self.pca_mean
        return z.reshape(len(z), 68, 2) + self.neutral_for(speaker, neutral)

    def inverse(
        self,
        targets: np.ndarray,
        pose: np.ndarray,
        speaker: str | None = None,
        neutral: np.ndarray | None = None,
    ) -> np.ndarray:
        """Targets (T, K) + pose (T, 4) -> pixels (T, 68, 2) float64."""
        return apply_pose(self.to_aligned(targets, speaker, neutral), pose)

    # ----- persistence: plain JSON-able values -----
    def state_dict(self) -> dict:
        self._check_fitted()

        def listed(a):
            return None if a is None else np.asarray(a, dtype=np.float64).tolist()

        return {
            "kind": "wav2kp.TargetNormalizer",
            "version": 1,
            "pca_components": self.pca_components,
            "neutral": self.neutral,
            "closed_quantile": self.closed_quantile,
            "stable_points": list(self.stable_points),
            "template": listed(self.template),
            "neutrals": {k: listed(v) for k, v in self.neutrals.items()},
            "pca_mean": listed(self.pca_mean),
            "pca_basis": listed(self.pca_basis),
            "explained_variance_ratio": listed(self.explained_variance_ratio),
            "scale": float(self.scale),
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> TargetNormalizer:
        def array(a):
            return None if a is None else np.asarray(a, dtype=np.float64)

        out = cls(
            pca_components=state["pca_components"],
            neutral=state["neutral"],
            closed_quantile=state["closed_quantile"],
            stable_points=state["stable_points"],
        )
        out.template = array(state["template"])
        out.neutrals = {str(k): array(v) for k, v in state["neutrals"].items()}
        out.pca_mean = array(state["pca_mean"])
        out.pca_basis = array(state["pca_basis"])
        out.explained_variance_ratio = array(state["explained_variance_ratio"])
        out.scale = float(state["scale"])
        return out


def fill_pose(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose (T, 4) with NaN rows -> (pose interpolated linearly in time over missing
    frames (nearest at the ends; angle unwrapped), mask of filled rows). A clip with no
    valid frame gets the identity pose. Used only to place predictions on frames without
    a detection; such frames are never used as targets."""
    pose = np.asarray(pose, dtype=np.float64).copy()
    missing = ~np.isfinite(pose).all(axis=1)
    if missing.all():
        pose[:] = [1.0, 0.0, 0.0, 0.0]
        return pose, missing
    if missing.any():
        frames = np.arange(len(pose))
        good = ~missing
        pose[good, 1] = np.unwrap(pose[good, 1])
        for column in range(4):
            pose[missing, column] = np.interp(frames[missing], frames[good], pose[good, column])
    return pose, missing
