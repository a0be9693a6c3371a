"""Head pose per frame from the face mesh: a 3D similarity to a reference face.

Stable mesh points (forehead, nose bridge, eye corners, cheekbones: little affected by
speech) of each frame are aligned to the clip's median face with Umeyama's least-squares
similarity, giving ``points ~= scale * R @ reference + translation``. The reference is
centred with unit RMS radius, so ``scale`` is the face size in pixels and R is the
rotation relative to the clip's typical head orientation.
"""

from __future__ import annotations

import numpy as np

# MediaPipe mesh indices that move with the skull, not with the jaw, lips or eyelids.
STABLE_POINTS = np.array(
    [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 33, 133, 362, 263, 127, 356, 234, 454, 93, 323,
     116, 345, 50, 280, 109, 338, 67, 297],
    dtype=np.intp,
)  # fmt: skip


def umeyama(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched least-squares similarity with ``target ~= s * R @ source + t``.

    ``source`` (N, 3) or (T, N, 3), ``target`` (T, N, 3). Returns R (T, 3, 3) proper
    rotations, t (T, 3), s (T,). Frames with NaN give NaN.
    """
    target = np.asarray(target, dtype=np.float64)
    source = np.broadcast_to(np.asarray(source, dtype=np.float64), target.shape)
    mu_s = source.mean(axis=1, keepdims=True)
    mu_t = target.mean(axis=1, keepdims=True)
    src, tgt = source - mu_s, target - mu_t
    n = source.shape[1]
    cov = np.einsum("tni,tnj->tij", tgt, src) / n
    ok = np.isfinite(cov).all(axis=(1, 2))
    rot = np.full(cov.shape, np.nan)
    scale = np.full(len(cov), np.nan)
    trans = np.full((len(cov), 3), np.nan)
    if ok.any():
        u, d, vt = np.linalg.svd(cov[ok])
        sign = np.ones((ok.sum(), 3))
        sign[:, 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
        sign[sign[:, 2] == 0, 2] = 1.0
        rot[ok] = np.einsum("tij,tj,tjk->tik", u, sign, vt)
        var_s = (src[ok] ** 2).sum(axis=(1, 2)) / n
        scale[ok] = (d * sign).sum(axis=1) / var_s
        trans[ok] = mu_t[ok, 0] - scale[ok, None] * np.einsum("tij,tj->ti", rot[ok], mu_s[ok, 0])
    return rot, trans, scale


def _normalise(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    return centred / np.sqrt((centred**2).sum(axis=1).mean())


def reference_face(lm478: np.ndarray, iterations: int = 2) -> np.ndarray:
    """The clip's median stable-point shape (centred, unit RMS radius), in the
    orientation of its typical frame. ``lm478`` (T, 478, 3) with NaN frames allowed."""
    pts = np.asarray(lm478, dtype=np.float64)[:, STABLE_POINTS]
    good = np.isfinite(pts).all(axis=(1, 2))
    if not good.any():
        raise ValueError("no frame with a detected face to build a reference from")
    pts = pts[good]
    ref = _normalise(np.median(pts - pts.mean(axis=1, keepdims=True), axis=0))
    for _ in range(iterations):
        rot, trans, scale = umeyama(ref, pts)
        # bring every frame into the reference frame, then take the median shape
        aligned = np.einsum("tji,tnj->tni", rot, pts - trans[:, None]) / scale[:, None, None]
        ref = _normalise(np.median(aligned, axis=0))
    return ref


def head_pose(
    lm478: np.ndarray, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (rotation (T,3,3), translation (T,3), scale (T,)) float32; NaN where the
    frame has no landmarks. ``reference`` defaults to the clip's median face."""
    lm = np.asarray(lm478, dtype=np.float64)
    n = len(lm)
    good = np.isfinite(lm[:, STABLE_POINTS]).all(axis=(1, 2)) if n else np.zeros(0, bool)
    if not good.any():
        nan = np.float32(np.nan)
        return (np.full((n, 3, 3), nan), np.full((n, 3), nan), np.full(n, nan))
    ref = reference_face(lm) if reference is None else np.asarray(reference, dtype=np.float64)
    rot, trans, scale = umeyama(ref, lm[:, STABLE_POINTS])
    return rot.astype(np.float32), trans.astype(np.float32), scale.astype(np.float32)


def rotation_to_euler(rotation: np.ndarray) -> np.ndarray:
    """(T, 3, 3) -> (T, 3) degrees: pitch (about x), yaw (about y), roll (about z).
    NaN rotations give NaN angles."""
    from scipy.spatial.transform import Rotation

    rot = np.asarray(rotation, dtype=np.float64)
    out = np.full((len(rot), 3), np.nan)
    good = np.isfinite(rot).all(axis=(1, 2))
    if good.any():
        out[good] = Rotation.from_matrix(rot[good]).as_euler("xyz", degrees=True)
    return out
