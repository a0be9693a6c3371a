"""vid2vid's face edge map, reproduced so users see what the generator will see.

NVIDIA vid2vid (face model, ``data/face_dataset.py`` + ``data/keypoint2img.py``) does not
read keypoints directly: it reads the integer 68-point file, synthesises a forehead from
the jaw, splits every face part into 3-point pieces, fits each with a quadratic (a line for
2 points; axes swapped when the piece is taller than wide; pieces with |a| > 1 dropped),
draws them 2 px wide at full frame resolution, adds one distance map per edge (14) and
Canny edges of the real frame outside the face, then crops a square around the face and
resizes it to ``--loadSize``. Every step is mirrored here (see
``../shared/reference/vid2vid-face-format.md``), the crop included exactly as vid2vid
takes it: numpy arrays (edge map, part labels) are cut by plain slicing, so a crop box
that starts left of or above the frame yields a small bottom-right corner stretched to
the generator's size, while PIL images (the real frame, the distance maps) are cut with
black padding (:func:`generator_input`).

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

    # the same float operations as _quadratic / _linear in the same order (x**2 computed
    # once): the same residuals, so the same solver path; no full_output (its covariance
    # is not needed: half the cost)
    if len(x) >= 3:
        x2 = x**2

        def residual(params):
            return params[0] * x2 + params[1] * x + params[2] - y
    else:

        def residual(params):
            return params[0] * x + params[1] - y

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        coef, status = leastsq(residual, np.ones(len(x)))
    return coef if status in (1, 2, 3, 4) else None


def fit_piece(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One 2- or 3-point piece as vid2vid's ``interpPoints`` draws it: integer curve pixels
    ``(xs, ys)`` (read-only arrays), or None when the piece is dropped (quadratic with
    |a| > 1)."""
    curve = _fit_piece(
        tuple(np.asarray(x, np.float64).ravel().tolist()),
        tuple(np.asarray(y, np.float64).ravel().tolist()),
    )
    return None if curve is _FIT_FAILED else curve


_FIT_FAILED = "fit failed"  # where vid2vid's curve_fit raises (and its data loader dies)


@functools.lru_cache(maxsize=1 << 16)
def _fit_piece(x_key: tuple[float, ...], y_key: tuple[float, ...]):
    # Cached on the exact integer coordinates: pieces repeat across frames (still parts of
    # the face, a looped reference), and the curve fit is most of the drawing cost.
    x = np.array(x_key)
    y = np.array(y_key)
    if np.abs(np.diff(x)).max() < np.abs(np.diff(y)).max():
        # Taller than wide: fit x as a function of y.
        swapped = _fit_piece(y_key, x_key)
        return swapped if swapped is None or swapped is _FIT_FAILED else (swapped[1], swapped[0])
    coef = _solve_quadratic(x, y)
    if coef is None:
        return _FIT_FAILED
    if len(x) >= 3 and abs(coef[0]) > 1:
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


# (edge index, piece point indices) for every piece of the 14 edges, in drawing order
_PIECES = [
    (index, np.array(piece))
    for index, edge in enumerate(e for _, _, edges in FACE_PARTS for e in edges)
    for piece in edge_pieces(edge)
]


def _curves_and_failures(lm68: np.ndarray):
    """Per edge, the drawn curves of its pieces; and the pieces whose fit fails."""
    points = with_forehead(lm68)
    complete = bool(np.isfinite(points).all())
    curves: list[list] = [[] for _ in range(N_EDGES)]
    failed = []
    for index, piece in _PIECES:
        xy = points[piece]
        if not complete and not np.isfinite(xy).all():
            continue
        curve = _fit_piece(tuple(xy[:, 0].tolist()), tuple(xy[:, 1].tolist()))
        if curve is _FIT_FAILED:
            failed.append((index, piece))
        elif curve is not None and curve[0].size:
            curves[index].append(curve)
    return curves, failed


def edge_curves(lm68: np.ndarray) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """For each of the 14 edges, the drawn curves of its pieces (dropped pieces omitted)."""
    return _curves_and_failures(lm68)[0]


def fit_failures(lm68: np.ndarray) -> list[str]:
    """Pieces whose curve fit does not converge, as ``edge: points``: vid2vid's
    ``curve_fit`` raises there and its test run stops (none on ordinary faces)."""
    names = edge_names()
    return [f"{names[i]}: points {piece.tolist()}" for i, piece in _curves_and_failures(lm68)[1]]


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
    """(H, W) bool: scikit-image Canny (default sigma and thresholds) of the frame in
    PIL's grey (``convert('L')``), as vid2vid computes it. Depends on the frame only, so
    callers may cache it.

    ``box``: only the part of the frame inside this crop is wanted (a preview): Canny
    runs on the box plus ``margin`` pixels and is zero elsewhere. Inside the box this
    matches the full-frame result except where hysteresis would have followed an edge
    out of the margin and back - far cheaper on large frames with a small face.
    """
    from skimage import feature

    gray = frame if frame.ndim == 2 else pil_gray(frame)
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


def pil_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grey exactly as PIL's ``convert('L')`` (ITU-R 601 luma, rounded)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).convert("L"))


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
    :func:`canny_edges`). vid2vid adds them with ``+=`` on uint8, so a face-edge pixel
    that is also a background edge wraps to 254: kept here.
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
        edges = edges + background_edges(frame, labels, frame_edges)  # uint8 wrap, as vid2vid
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
    """vid2vid's face crop ``(x0, y0, x1, y1)`` from one frame's 68 points, exactly as its
    ``FaceDataset.get_crop_coords`` computes it (float floor divisions, ``int()``).

    Centre x = midpoint of min/max x, centre y = ``(3*min_y + max_y) / 4``, square side
    ``2.5 * (max_x - min_x)``, shifted to end inside the frame. When the square is larger
    than the frame it still ends at the frame's right/bottom edge and so starts at a
    negative coordinate (see :func:`crop_fits`). vid2vid computes it once, on the first
    frame of the first test sequence, and reuses it for every frame of every sequence.
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


_FAR = 1 << 20  # an integer shift that puts any face far inside a huge frame


def free_crop_box(lm68: np.ndarray) -> tuple[int, int, int, int]:
    """vid2vid's crop box for these points in a frame large enough around them that no
    shift applies (the box wherever it falls, negative coordinates included)."""
    x0, y0, x1, y1 = crop_box(quantize(_check_points(lm68)) + _FAR, (2 * _FAR, 2 * _FAR))
    return x0 - _FAR, y0 - _FAR, x1 - _FAR, y1 - _FAR


def crop_fits(box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    """True when the box lies inside the frame and is not empty: only then do numpy
    slicing and PIL cropping cut the same region (vid2vid uses both)."""
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]


def numpy_crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """vid2vid's ``crop`` of a numpy array: ``array[y0:y1, x0:x1]``, plain slicing. A
    negative start counts from the end, so an overflowing box gives a corner."""
    x0, y0, x1, y1 = box
    return array[y0:y1, x0:x1]


def pil_crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """vid2vid's ``crop`` of a PIL image: ``Image.crop(box)``, black outside the frame."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(array)).crop(tuple(box)))


def generator_size(crop_size: tuple[int, int], load_size: int = DEFAULT_LOAD_SIZE):
    """(width, height) vid2vid resizes a crop of ``crop_size`` to, with its default
    ``--resize_or_crop scaleWidth``: width ``load_size``, height in proportion, each
    rounded to a multiple of 4 and then of 32 (``get_img_params``); 512x512 for its
    square face crops at ``--loadSize 512``."""
    width, height = crop_size
    if width <= 0 or height <= 0:
        raise ValueError(f"empty crop {crop_size}: vid2vid cannot resize it")
    new_w, new_h = load_size, load_size * height // width
    new_w, new_h = int(round(new_w / 4)) * 4, int(round(new_h / 4)) * 4
    return int(round(new_w / 32.0) * 32), int(round(new_h / 32.0) * 32)


def pil_resize(array: np.ndarray, size: tuple[int, int], method: str = "bilinear") -> np.ndarray:
    """PIL's ``resize`` (vid2vid's ``__scale_image``): ``bilinear`` for the edge and
    distance maps, ``nearest`` for part labels, ``bicubic`` for the real frame."""
    from PIL import Image

    resample = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "bicubic": Image.BICUBIC}
    image = Image.fromarray(np.ascontiguousarray(array))
    return np.asarray(image.resize(tuple(int(v) for v in size), resample[method]))


@dataclass
class GeneratorInput:
    """One frame as vid2vid's face dataset hands it to the generator (uint8, 0-255
    before its ``ToTensor``): cropped with the sequence's box and resized."""

    edges: np.ndarray  # (h, w) edge channel: face edges + Canny background, numpy-cropped
    distance_maps: np.ndarray | None  # (14, h, w), PIL-cropped (black padding)
    labels: np.ndarray  # (h, w) face-part labels, numpy-cropped, nearest resize
    image: np.ndarray | None  # (h, w, 3) real frame, PIL-cropped, bicubic resize


def generator_input(
    lm68: np.ndarray,
    size: tuple[int, int],
    box: tuple[int, int, int, int] | None = None,
    frame: np.ndarray | None = None,
    load_size: int = DEFAULT_LOAD_SIZE,
    distance_maps: bool = False,
    frame_edges: np.ndarray | None = None,
) -> GeneratorInput:
    """What vid2vid's generator gets for one keypoint frame, reproduced step by step.

    ``box``: the sequence's crop (vid2vid's, set on the first frame; default this frame's
    own). ``frame``: the exported real frame (RGB, ``size``), which adds its Canny edges
    and is the first frames' appearance; None draws the face alone. As in vid2vid, the
    edge map and labels are cut by numpy slicing and the distance maps and real frame by
    PIL, all resized to :func:`generator_size` of the PIL crop.
    """
    box = crop_box(lm68, size) if box is None else tuple(int(v) for v in box)
    out_size = generator_size((box[2] - box[0], box[3] - box[1]), load_size)
    full = render_edge_map(lm68, size, frame=frame, distance_maps=distance_maps,
                           frame_edges=frame_edges)  # fmt: skip
    edges = numpy_crop(full.edges, box)
    labels = numpy_crop(full.labels, box)
    if edges.size == 0:
        raise ValueError(f"crop box {box} leaves nothing of the {size[0]}x{size[1]} frame")
    dists = None
    if full.distance_maps is not None:
        dists = np.stack([pil_resize(pil_crop(d, box), out_size) for d in full.distance_maps])
    image = None
    if frame is not None:
        image = pil_resize(pil_crop(np.asarray(frame, np.uint8), box), out_size, "bicubic")
    return GeneratorInput(
        edges=pil_resize(edges, out_size),
        distance_maps=dists,
        labels=pil_resize(labels, out_size, "nearest"),
        image=image,
    )


def generator_view(
    lm68: np.ndarray,
    size: tuple[int, int],
    box: tuple[int, int, int, int] | None = None,
    frame: np.ndarray | None = None,
    load_size: int = DEFAULT_LOAD_SIZE,
    frame_edges: np.ndarray | None = None,
) -> np.ndarray:
    """(h, w) uint8: the edge channel exactly as vid2vid's generator gets it
    (:func:`generator_input`), numpy slicing of an overflowing box included."""
    return generator_input(lm68, size, box, frame, load_size, frame_edges=frame_edges).edges


def first_complete_frame(landmarks: np.ndarray) -> int:
    """Index of the first frame with all 68 points present (where vid2vid's crop is set)."""
    complete = np.isfinite(np.asarray(landmarks)).all(axis=(1, 2))
    if not complete.any():
        raise ValueError("no frame has all 68 keypoints present")
    return int(np.argmax(complete))


def crop_and_resize(
    image: np.ndarray, box: tuple[int, int, int, int], size: int = DEFAULT_LOAD_SIZE
) -> np.ndarray:
    """A display view: the box (black outside the frame) resized bilinearly to a
    ``size`` square. For what the generator gets, use :func:`generator_input`."""
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, *image.shape[2:]), image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_LINEAR)


# ------------------------------------------------------------------ face edges vs the crop


_BRUSH = [(dx, dy) for dy in range(-LINE_HALF_WIDTH, LINE_HALF_WIDTH)
          for dx in range(-LINE_HALF_WIDTH, LINE_HALF_WIDTH)]  # fmt: skip
_KEY = 1 << 21  # pixel keys: coordinates within +-2^20 of the frame


def _edge_pixels(curves_per_edge) -> tuple[np.ndarray, np.ndarray]:
    xs, ys, owners = [], [], []
    for index, curves in enumerate(curves_per_edge):
        for cx, cy in curves:
            xs.append(cx)
            ys.append(cy)
            owners.append(index)
    if not xs:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    x, y = np.concatenate(xs), np.concatenate(ys)
    edge = np.repeat(np.asarray(owners, np.int64), [len(c) for c in xs])
    keys = np.concatenate([
        (edge * _KEY + (y + dy + _KEY // 2)) * _KEY + (x + dx + _KEY // 2) for dx, dy in _BRUSH
    ])  # fmt: skip
    keys = np.unique(keys)
    px = keys % _KEY - _KEY // 2
    py = (keys // _KEY) % _KEY - _KEY // 2
    return np.stack([px, py], axis=1), keys // (_KEY * _KEY)


def edge_names() -> list[str]:
    """Names of the 14 edges in distance-map order, e.g. ``mouth[1]``."""
    return [f"{name}[{k}]" for name, _, edges in FACE_PARTS for k in range(len(edges))]


@dataclass
class CropReach:
    """How much of one frame's face edges reach the generator's edge channel."""

    total: int  # face-edge pixels on an unbounded canvas
    reached: int  # of those, inside the frame and the crop, with the crop where it belongs
    outside_frame: int  # clipped by vid2vid's brush onto the frame border (smeared)
    outside_crop: int  # inside the frame but cut off by the crop
    empty_edges: list[str]  # edges that draw nothing (their distance map is blank)
    failed_fits: list[str]  # pieces whose curve fit fails (vid2vid's run stops there)

    @property
    def share(self) -> float:
        return self.reached / self.total if self.total else 0.0


def crop_reach(
    lm68: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int]
) -> CropReach:
    """Count one frame's face-edge pixels against the frame and the sequence's crop box.

    A pixel reaches the generator when it lies inside the frame and inside the box and
    the box fits the frame; when it does not fit, numpy slicing stretches a corner of the
    edge map instead and nothing arrives where the real frame's crop puts it (0)."""
    width, height = size
    x0, y0, x1, y1 = box
    curves, failed = _curves_and_failures(lm68)
    xy, edge = _edge_pixels(curves)
    x, y = xy[:, 0], xy[:, 1]
    in_frame = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    in_box = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    total = len(xy)
    outside_frame = int((~in_frame).sum())
    outside_crop = int((in_frame & ~in_box).sum())
    reached = int((in_frame & in_box).sum()) if crop_fits(box, size) else 0
    drawn = np.bincount(edge, minlength=N_EDGES)
    empty = [name for name, count in zip(edge_names(), drawn, strict=True) if not count]
    names = edge_names()
    failed_fits = [f"{names[i]}: points {piece.tolist()}" for i, piece in failed]
    return CropReach(total, reached, outside_frame, outside_crop, empty, failed_fits)
