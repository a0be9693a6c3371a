"""vid2vid's face edge map, reproduced so users see what the generator will see.

NVIDIA vid2vid (face model, ``data/face_dataset.py`` + ``data/keypoint2img.py``) does not
read keypoints directly: it reads the integer 68-point file, synthesises a forehead from
the jaw, splits every face part into 3-point pieces, fits each with a quadratic (a line for
2 points; axes swapped when the piece is taller than wide; pieces with |a| > 1 dropped),
draws them 2 px wide at full frame resolution, adds one distance map per edge (14) and
Canny edges of the real frame outside the face, then crops a square around the face and
resizes it to ``--loadSize``. Every step is mirrored here (see
``docs/../shared/reference/vid2vid-face-format.md``).

Coordinates are pixels in the full frame, ``(68, 2)`` as ``x, y``. ``size`` is
``(width, height)``. Points are rounded to integers first, exactly as the exported
``.txt`` files hold them (:func:`quantize`). Pieces touching a NaN point are not drawn,
so a missing frame gives an empty map rather than garbage.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

# (part name, vid2vid label, edges); each edge is a polyline of point indices (68-82 are
# the synthesised forehead). Order matters: it fixes the order of the 14 distance maps.
FACE_PARTS: tuple[tuple[str, int, tuple[tuple[int, ...], ...]], ...] = (
    ("face", 1, ((*range(0, 17), *range(68, 83), 0),)),
    ("right_brow", 2, (tuple(range(17, 22)),)),
    ("left_brow", 2, (tuple(range(22, 27)),)),
    ("nose", 3, ((28, 31), tuple(range(31, 36)), (35, 28))),
    ("right_eye", 4, ((36, 37, 38, 39), (39, 40, 41, 36))),
    ("left_eye", 4, ((42, 43, 44, 45), (45, 46, 47, 42))),
    ("mouth", 5, (tuple(range(48, 55)), (54, 55, 56, 57, 58, 59, 48))),
    ("inner_mouth", 6, (tuple(range(60, 65)), (64, 65, 66, 67, 60))),
)
N_EDGES = sum(len(edges) for _, _, edges in FACE_PARTS)  # 14 distance maps
PIECE_LEN = 3  # vid2vid's edge_len: 3 keypoints per fitted curve, consecutive pieces share one
LINE_HALF_WIDTH = 1  # vid2vid's bw: offsets -1..0 in x and y, i.e. 2 px lines
DEFAULT_LOAD_SIZE = 512


def quantize(lm68: np.ndarray) -> np.ndarray:
    """Keypoints as vid2vid reads them: rounded to integer pixels (float array, NaN kept)."""
    return np.rint(np.asarray(lm68, dtype=np.float64))


def _check_points(lm68: np.ndarray) -> np.ndarray:
    points = np.asarray(lm68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 keypoints as a (68, 2) array, got shape {points.shape}")
    return points


def with_forehead(lm68: np.ndarray) -> np.ndarray:
    """(83, 2): the 68 points plus vid2vid's forehead (points 68-82) mirrored from the jaw.

    ``baseline_y = (y0 + y16) / 2`` and ``y' = baseline_y + (baseline_y - y) * 2 // 3`` for
    jaw points 1-15, appended in reverse; integer truncation as in vid2vid (its points are
    int32 there). NaN jaw points give NaN forehead points.
    """
    points = quantize(_check_points(lm68))
    jaw = points[:17]
    baseline_y = (jaw[0, 1] + jaw[-1, 1]) / 2
    upper = jaw[1:-1].copy()
    upper[:, 1] = np.trunc(baseline_y + ((baseline_y - upper[:, 1]) * 2) // 3)
    return np.vstack([points, upper[::-1]])


def _quadratic(t, a, b, c):
    return a * t**2 + b * t + c


def _linear(t, a, b):
    return a * t + b


def _solve_quadratic(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Coefficients (highest power first) through 3 points, or of the line through 2.

    Solved as vid2vid does, with ``scipy.optimize.curve_fit`` (Levenberg-Marquardt from
    all-ones): the curve passes through integer keypoints and vid2vid truncates curve
    pixels to int, so the solver's last-bit rounding decides between neighbouring
    pixels. We call the ``leastsq`` that ``curve_fit`` wraps with the same residual and
    start (bit-identical results, without curve_fit's 4x overhead). A fit that does not
    converge - where ``curve_fit`` raises and vid2vid would crash - gives None.
    """
    from scipy.optimize import leastsq

    model = _quadratic if len(x) >= 3 else _linear

    def residual(params):
        return model(x, *params) - y

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        coef, _, _, _, status = leastsq(residual, np.ones(len(x)), full_output=1)
    return coef if status in (1, 2, 3, 4) else None


def fit_piece(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One 2- or 3-point piece as vid2vid's ``interpPoints`` draws it: integer curve pixels
    ``(xs, ys)`` (read-only arrays), or None when the piece is dropped (quadratic with
    |a| > 1)."""
    return _fit_piece(
        tuple(float(v) for v in np.asarray(x).ravel()),
        tuple(float(v) for v in np.asarray(y).ravel()),
    )


@functools.lru_cache(maxsize=1 << 16)
def _fit_piece(x_key: tuple[float, ...], y_key: tuple[float, ...]):
    # Cached on the exact integer coordinates: pieces repeat across frames (still parts of
    # the face, a looped reference), and the curve fit is most of the drawing cost.
    x = np.array(x_key)
    y = np.array(y_key)
    if np.abs(np.diff(x)).max() < np.abs(np.diff(y)).max():
        # Taller than wide: fit x as a function of y.
        swapped = _fit_piece(y_key, x_key)
        return None if swapped is None else (swapped[1], swapped[0])
    coef = _solve_quadratic(x, y)
    if coef is None or (len(x) >= 3 and abs(coef[0]) > 1):
        return None
    if x[0] > x[-1]:
        x, y = x[::-1], y[::-1]
    # vid2vid samples (x1 - x0) points from x0 to x1: spacing just above 1 px.
    xs = np.linspace(x[0], x[-1], int(x[-1] - x[0]))
    ys = _quadratic(xs, *coef) if len(coef) == 3 else _linear(xs, *coef)
    curve = (xs.astype(int), ys.astype(int))
    for array in curve:
        array.setflags(write=False)
    return curve


def edge_pieces(edge: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Split a polyline into vid2vid's overlapping 3-point pieces (last may have 2)."""
    step = PIECE_LEN - 1
    return [edge[i : i + PIECE_LEN] for i in range(0, max(1, len(edge) - 1), step)]


def edge_curves(lm68: np.ndarray) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """For each of the 14 edges, the drawn curves of its pieces (dropped pieces omitted)."""
    points = with_forehead(lm68)
    curves = []
    for _, _, edges in FACE_PARTS:
        for edge in edges:
            drawn = []
            for piece in edge_pieces(edge):
                xy = points[list(piece)]
                if not np.isfinite(xy).all():
                    continue
                curve = fit_piece(xy[:, 0], xy[:, 1])
                if curve is not None and curve[0].size:
                    drawn.append(curve)
            curves.append(drawn)
    return curves


def _draw_curve(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, value: int = 255) -> None:
    """vid2vid's ``drawEdge``: a (2*bw)x(2*bw) brush at each curve pixel, clipped to the frame."""
    h, w = image.shape[:2]
    for dy in range(-LINE_HALF_WIDTH, LINE_HALF_WIDTH):
        for dx in range(-LINE_HALF_WIDTH, LINE_HALF_WIDTH):
            image[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] = value


def part_labels(lm68: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 face-part label map (0 = background), as vid2vid fills it."""
    width, height = size
    points = with_forehead(lm68)
    labels = np.zeros((height, width), np.uint8)
    for _, label, edges in FACE_PARTS:
        indices = [i for edge in edges for i in edge]
        polygon = points[indices]
        if np.isfinite(polygon).all():
            cv2.fillPoly(labels, [polygon.astype(np.int32)], color=label)
    return labels


def canny_edges(
    frame: np.ndarray, box: tuple[int, int, int, int] | None = None, margin: int = 16
) -> np.ndarray:
    """(H, W) bool: scikit-image Canny (default sigma and thresholds) of the grey frame,
    as vid2vid computes it. Depends on the frame only, so callers may cache it.

    ``box``: only the part of the frame inside this crop is wanted (a preview): Canny
    runs on the box plus ``margin`` pixels and is zero elsewhere. Inside the box this
    matches the full-frame result except where hysteresis would have followed an edge
    out of the margin and back - far cheaper on large frames with a small face.
    """
    from skimage import feature

    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if box is None:
        return feature.canny(gray)
    h, w = gray.shape
    x0, y0 = max(box[0] - margin, 0), max(box[1] - margin, 0)
    x1, y1 = min(box[2] + margin, w), min(box[3] + margin, h)
    edges = np.zeros((h, w), bool)
    if x1 > x0 and y1 > y0:
        region = feature.canny(gray[y0:y1, x0:x1])
        # keep the box only: near the region's cut sides the result is not the frame's
        bx0, by0 = max(box[0], 0) - x0, max(box[1], 0) - y0
        bx1, by1 = min(box[2], w) - x0, min(box[3], h) - y0
        edges[by0 + y0 : by1 + y0, bx0 + x0 : bx1 + x0] = region[by0:by1, bx0:bx1]
    return edges


def background_edges(
    frame: np.ndarray, labels: np.ndarray, edges: np.ndarray | None = None
) -> np.ndarray:
    """Canny edges of the real frame outside the face (vid2vid adds them to the edge map);
    ``edges``: the frame's :func:`canny_edges` if already known."""
    edges = canny_edges(frame) if edges is None else edges
    return ((edges & (labels == 0)) * 255).astype(np.uint8)


@dataclass
class EdgeMap:
    edges: np.ndarray  # (H, W) uint8, 255 on drawn edges
    distance_maps: np.ndarray | None  # (14, H, W) uint8, one per edge, or None
    labels: np.ndarray  # (H, W) uint8 face-part labels


def render_edge_map(
    lm68: np.ndarray,
    size: tuple[int, int],
    frame: np.ndarray | None = None,
    distance_maps: bool = False,
    frame_edges: np.ndarray | None = None,
) -> EdgeMap:
    """Everything vid2vid derives from one keypoint frame, at full frame resolution.

    ``frame`` (RGB or gray, same size) adds its Canny edges outside the face, as vid2vid
    does at test time with the reference image (``frame_edges``: its cached
    :func:`canny_edges`).
    """
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive (width, height), got {size}")
    edges = np.zeros((height, width), np.uint8)
    dists = np.zeros((N_EDGES, height, width), np.uint8) if distance_maps else None
    for index, curves in enumerate(edge_curves(lm68)):
        single = np.zeros((height, width), np.uint8) if distance_maps else None
        for xs, ys in curves:
            _draw_curve(edges, xs, ys)
            if single is not None:
                _draw_curve(single, xs, ys)
        if dists is not None:
            dist = cv2.distanceTransform(255 - single, cv2.DIST_L1, 3)
            dists[index] = np.clip(dist / 3, 0, 255).astype(np.uint8)
    labels = part_labels(lm68, (width, height))
    if frame is not None:
        if frame.shape[:2] != (height, width):
            raise ValueError(
                f"reference frame is {frame.shape[1]}x{frame.shape[0]}, keypoint canvas is "
                f"{width}x{height}"
            )
        edges = np.maximum(edges, background_edges(frame, labels, frame_edges))
    return EdgeMap(edges=edges, distance_maps=dists, labels=labels)


def draw_edge_map(
    lm68: np.ndarray,
    size: tuple[int, int],
    frame: np.ndarray | None = None,
    frame_edges: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) uint8 edge map of one keypoint frame (255 on edges), full frame resolution;
    with ``frame``, plus its Canny edges outside the face."""
    return render_edge_map(lm68, size, frame=frame, frame_edges=frame_edges).edges


def distance_maps(lm68: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(14, H, W) uint8: vid2vid's per-edge L1 distance maps (distance / 3, clipped to 255)."""
    return render_edge_map(lm68, size, distance_maps=True).distance_maps


def crop_box(lm68: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """vid2vid's face crop ``(x0, y0, x1, y1)`` from one frame's 68 points.

    Centre x = midpoint of min/max x, centre y = ``(3*min_y + max_y) / 4``, square side
    ``2.5 * (max_x - min_x)``, shifted to stay inside the frame where it fits. vid2vid
    computes it once on the first test frame and reuses it for the whole sequence.
    """
    points = quantize(_check_points(lm68))
    if not np.isfinite(points).all():
        raise ValueError("crop box needs a frame with all 68 keypoints present")
    width, height = size
    min_x, max_x = points[:, 0].min(), points[:, 0].max()
    min_y, max_y = points[:, 1].min(), points[:, 1].max()
    xc = (min_x + max_x) // 2
    yc = (min_y * 3 + max_y) // 4
    side = (max_x - min_x) * 2.5
    xc = min(max(0, xc - side // 2) + side, width) - side // 2
    yc = min(max(0, yc - side // 2) + side, height) - side // 2
    return int(xc - side // 2), int(yc - side // 2), int(xc + side // 2), int(yc + side // 2)


def first_complete_frame(landmarks: np.ndarray) -> int:
    """Index of the first frame with all 68 points present (where vid2vid's crop is set)."""
    complete = np.isfinite(np.asarray(landmarks)).all(axis=(1, 2))
    if not complete.any():
        raise ValueError("no frame has all 68 keypoints present")
    return int(np.argmax(complete))


def crop_and_resize(
    image: np.ndarray, box: tuple[int, int, int, int], load_size: int = DEFAULT_LOAD_SIZE
) -> np.ndarray:
    """Crop like vid2vid (PIL crop pads outside the frame with black) and resize bilinearly."""
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, *image.shape[2:]), image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return cv2.resize(out, (load_size, load_size), interpolation=cv2.INTER_LINEAR)


def generator_view(
    lm68: np.ndarray,
    size: tuple[int, int],
    box: tuple[int, int, int, int] | None = None,
    frame: np.ndarray | None = None,
    load_size: int = DEFAULT_LOAD_SIZE,
) -> np.ndarray:
    """(load_size, load_size) uint8: the edge-map channel exactly as vid2vid's generator
    gets it (cropped with ``box``, default this frame's own crop, and resized)."""
    box = crop_box(lm68, size) if box is None else box
    return crop_and_resize(draw_edge_map(lm68, size, frame=frame), box, load_size)
