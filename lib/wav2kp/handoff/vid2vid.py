"""Hand-off to NVIDIA vid2vid's face model: a realistic keypoint track and its folder.

vid2vid (``--dataset_mode face``) reads ``<root>/test_keypoints/<seq>/*.txt`` (68 rows of
integer ``x,y`` in full-frame pixels) beside ``<root>/test_img/<seq>/*.jpg`` (real frames of
the target person: they set the canvas, give the background edges and the first frames'
appearance), same count, same sorted names. It crops a square of 2.5 face widths set on
the first frame; :func:`plan_canvas` places and scales the exported frames so that crop
fits and is exactly ``--loadSize`` (tight talking-head crops are padded); frames whose
head travels out of that crop are moved back inside it (:func:`steady_frames`, the mapping
recorded per frame), point sets vid2vid's curve fit cannot take are nudged until it can
(:func:`repair_fit_failures`), and :func:`inspect_tree` checks every frame the way
vid2vid will read it.

Audio models predict mouth and jaw motion only. Drawn on a frozen head that looks dead, so
:func:`compose_on_reference` puts the predicted mouth/jaw deformation onto a real head
track of the target speaker (head pose, blinks, brows of a reference clip), in that clip's
frame coordinates, looping (ping-pong) the reference when the speech is longer.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from wav2kp.atomic import atomic_path, write_text
from wav2kp.handoff import edgescreen
from wav2kp.media.encode import NTSC_FPS
from wav2kp.plots import edgemap
from wav2kp.plots.edgemap import DEFAULT_LOAD_SIZE

PHASE = "test"
KEYPOINT_LINE = re.compile(r"^-?\d+,-?\d+$")
# Points that do not move when speaking: fix the head's similarity pose per frame.
STABLE_POINTS = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])
MOUTH_POINTS = np.arange(48, 68)
# How much of each jaw point follows the mouth (0 at the ears, 1 around the chin).
JAW_WEIGHTS = np.clip(1.6 * np.sin(np.linspace(0, np.pi, 17)) ** 2 - 0.3, 0, 1)


# --------------------------------------------------------------------------- export

# vid2vid's --use_single_G loads its face single-frame generator only when the string
# 'face' is in --dataroot (and the Cityscapes one when 'City' is): the folder name says it.
EXPORT_DIR = "vid2vid_face"
# vid2vid's test loop feeds n_frames_G = 3 frames per step: the first two are history, so
# it writes frames 2 .. N-1 (N-2 images, the first named 00002).
FIRST_OUTPUT_FRAME = 2
MODEL_NAME = "edge2face_512"
# vid2vid's image-folder extensions: every such file in a tree counts as a frame.
VID2VID_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".pgm", ".PGM", ".png", ".PNG",
                      ".ppm", ".PPM", ".bmp", ".BMP", ".tiff", ".txt", ".json")  # fmt: skip
CANVAS_MARGIN = 1 / 16  # exported frame = vid2vid's crop + this share of it on each side


def keypoint_dirs(root: str | os.PathLike, phase: str = PHASE) -> tuple[Path, Path]:
    root = Path(root)
    return root / f"{phase}_keypoints", root / f"{phase}_img"


def to_vid2vid_ints(lm68: np.ndarray) -> np.ndarray:
    """(68, 2) integer pixels as vid2vid reads them (rounded, not truncated)."""
    points = np.asarray(lm68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) keypoints, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("vid2vid keypoint files cannot hold missing points (NaN)")
    return np.rint(points).astype(np.int64)


def keypoint_text(lm68: np.ndarray) -> str:
    """The file content: 68 lines ``x,y`` (what ``np.savetxt(fmt='%d', delimiter=',')``
    writes for integer points)."""
    return "".join(f"{x},{y}\n" for x, y in to_vid2vid_ints(lm68).tolist())


def crop_span(load_size: int = DEFAULT_LOAD_SIZE) -> int:
    """The face width (integer x-extent of the 68 points) whose vid2vid crop is exactly
    ``load_size`` pixels: the crop side is ``2 * floor(2.5 * width / 2)`` (205 for 512)."""
    span = int(np.ceil(0.4 * load_size))
    while 2 * int(span * 2.5 // 2) < load_size:
        span += 1
    return span


@dataclass(frozen=True)
class Canvas:
    """How exported frames relate to the reference's own pixels:
    ``exported = reference * scale + offset`` (continuous pixel coordinates, x and y
    alike), frames of ``size``. Exported keypoints and images use the same mapping."""

    reference_size: tuple[int, int]  # (width, height) of the reference frames
    size: tuple[int, int]  # (width, height) of the exported frames
    scale: float
    offset: tuple[float, float]
    load_size: int = DEFAULT_LOAD_SIZE

    @classmethod
    def identity(cls, reference_size, load_size: int = DEFAULT_LOAD_SIZE) -> Canvas:
        """Frames exported as they are (the reference's own pixels)."""
        size = (int(reference_size[0]), int(reference_size[1]))
        return cls(size, size, 1.0, (0.0, 0.0), int(load_size))

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.offset == (0.0, 0.0) and self.size == self.reference_size

    def to_export(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64) * self.scale + np.asarray(self.offset)

    def to_reference(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - np.asarray(self.offset)) / self.scale

    def padding(self) -> tuple[float, float, float, float]:
        """Exported pixels (left, top, right, bottom) outside the reference frame."""
        (w, h), (cw, ch), (tx, ty) = self.reference_size, self.size, self.offset
        s = self.scale
        return max(0.0, tx), max(0.0, ty), max(0.0, cw - tx - s * w), max(0.0, ch - ty - s * h)

    def warp(self, rgb: np.ndarray) -> np.ndarray:
        """A reference frame (RGB) on the exported canvas: resampled with the keypoints'
        mapping (area-averaged when shrinking, bicubic when enlarging); outside the
        reference, its border pixels fade into a blur of themselves, so the padding
        adds no edges (vid2vid adds the frame's Canny edges to the generator input)."""
        image = np.asarray(rgb, np.uint8)
        if image.shape[1::-1] != tuple(self.reference_size):
            raise ValueError(
                f"reference frame is {image.shape[1]}x{image.shape[0]}, expected "
                f"{self.reference_size[0]}x{self.reference_size[1]}"
            )
        if self.is_identity:
            return image
        (w, h), s, (tx, ty) = self.reference_size, self.scale, self.offset
        sx = sy = s
        if s < 1:  # shrink by area averaging first (no aliasing), then place exactly
            small = (max(1, round(w * s)), max(1, round(h * s)))
            image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
            sx, sy = s * w / small[0], s * h / small[1]
        # continuous coordinates: pixel centres sit at index + 0.5
        matrix = np.array([[sx, 0, tx + 0.5 * sx - 0.5], [0, sy, ty + 0.5 * sy - 0.5]])
        flags = cv2.INTER_CUBIC if s > 1 else cv2.INTER_LINEAR
        out = cv2.warpAffine(image, matrix, self.size, flags=flags,
                             borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        if max(self.padding()) > 0:
            out = self._soften_padding(out)
        return out

    def _soften_padding(self, image: np.ndarray) -> np.ndarray:
        (w, h), s, (tx, ty) = self.reference_size, self.scale, self.offset
        xs = np.arange(self.size[0], dtype=np.float32) + 0.5
        ys = np.arange(self.size[1], dtype=np.float32) + 0.5
        dx = np.maximum(np.maximum(tx - xs, xs - (tx + s * w)), 0)
        dy = np.maximum(np.maximum(ty - ys, ys - (ty + s * h)), 0)
        ramp = self.load_size / 64  # replicated border -> blur over 8 px at 512
        weight = np.clip(np.hypot(dx[None, :], dy[:, None]) / ramp, 0, 1)[..., None]
        # a wide blur (sigma load_size / 32), taken at 1/8 scale: the same smooth colours
        small = cv2.resize(image, (max(1, self.size[0] // 8), max(1, self.size[1] // 8)),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        small = cv2.GaussianBlur(small, (0, 0), self.load_size / 256)
        blurred = cv2.resize(small, self.size, interpolation=cv2.INTER_LINEAR)
        mixed = image + weight * (blurred.astype(np.float32) - image)
        return np.rint(mixed).astype(np.uint8)

    def as_dict(self) -> dict:
        tx, ty = self.offset
        return {
            "reference_size": list(self.reference_size),
            "size": list(self.size),
            "scale": self.scale,
            "offset": [tx, ty],
            "to_reference": f"x_ref = (x {_signed(-tx)}) / {self.scale:.12g}, "
            f"y_ref = (y {_signed(-ty)}) / {self.scale:.12g}",
            "padding_ltrb": [round(v, 3) for v in self.padding()],
        }


def _signed(value: float) -> str:
    """'+ 3' or '- 3' (for formulas in predict.json)."""
    return f"{'-' if value < 0 else '+'} {abs(value):g}"


def plan_canvas(
    first_frame: np.ndarray,
    reference_size: tuple[int, int],
    load_size: int = DEFAULT_LOAD_SIZE,
    margin: float = CANVAS_MARGIN,
) -> Canvas:
    """The canvas on which vid2vid's crop of ``first_frame`` (the sequence's first
    keypoints, reference pixels) is exactly ``load_size`` square, with ``margin`` of it
    on each side.

    vid2vid crops a square of 2.5 face widths set on the first frame; tight talking-head
    crops (VoxCeleb, HDTF, 224-512 px) are smaller than that square, and vid2vid then cuts
    its edge map by numpy slicing with a negative start (a corner). Here the reference is
    scaled so the face is :func:`crop_span` pixels wide after rounding, then placed so the
    crop sits ``margin * load_size`` inside the frame; where the reference does not reach,
    the frame is padded. The crop then fits by construction, and is never resampled.
    """
    points = np.asarray(first_frame, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError("the first exported frame needs all 68 keypoints to place vid2vid's crop")
    width = float(np.ptp(points[:, 0]))
    if width < 1:
        raise ValueError(f"face of the first frame is {width:.2f} px wide: vid2vid cannot crop it")
    span = crop_span(load_size)
    # nearest scale whose rounded x-extent is exactly `span` (rounding moves it by +-1),
    # with no coordinate near a rounding tie (an integer shift must not flip it)
    candidates = (span + np.linspace(-1, 1, 401)) / width
    order = np.argsort(np.abs(candidates - span / width), kind="stable")
    for scale in candidates[order]:
        scaled = points * scale
        tie = np.abs(scaled - np.floor(scaled) - 0.5).min() < 1e-6
        if not tie and np.ptp(np.rint(scaled[:, 0])) == span:
            break
    else:  # pragma: no cover - the scan always finds one
        raise RuntimeError("no scale gives vid2vid's crop the load size")
    scale = float(scale)
    x0, y0, x1, y1 = edgemap.free_crop_box(np.rint(points * scale))
    pad = int(round(margin * load_size))
    canvas = Canvas(
        reference_size=(int(reference_size[0]), int(reference_size[1])),
        size=(x1 - x0 + 2 * pad, y1 - y0 + 2 * pad),
        scale=scale,
        offset=(float(pad - x0), float(pad - y0)),
        load_size=int(load_size),
    )
    box = edgemap.crop_box(canvas.to_export(points), canvas.size)
    assert box == (pad, pad, pad + x1 - x0, pad + y1 - y0), (box, canvas)
    return canvas


# --------------------------------------------------------------------------- moving heads

# Face edges stay this share of the load size inside vid2vid's crop (8 px at 512): room
# for the quadratic pieces' bulge between points, vid2vid's 2 px brush and rounding.
CROP_MARGIN = 1 / 64
# The per-frame correction is smoothed over this many reference frames (Gaussian sigma),
# then clamped back to what each frame needs: the head glides instead of jumping.
STEADY_SIGMA_FRAMES = 3.0
# A point nudge that makes vid2vid's curve fit converge moves a point at most this far.
MAX_NUDGE_PX = 2


@dataclass(frozen=True)
class Steadying:
    """Per output frame, the mapping from reference pixels to exported pixels:
    ``exported = reference * scale[t] + offset[t]``. Frames whose head would carry face
    edges out of vid2vid's crop (set on the first frame) are moved back inside it: a
    translation, and a shrink about the crop's centre where the face outgrows it. One
    mapping per reference frame, so a looped reference still writes each image once."""

    scale: np.ndarray  # (T,)
    offset: np.ndarray  # (T, 2)
    canvas: Canvas  # frame 0's mapping (vid2vid's crop is set there)

    @property
    def moved(self) -> np.ndarray:
        """(T,) bool: frames whose mapping differs from the canvas's."""
        return (np.abs(self.scale - self.canvas.scale) > 1e-9) | (
            np.abs(self.offset - np.asarray(self.canvas.offset)).max(axis=1) > 1e-9
        )

    def frame_canvas(self, t: int) -> Canvas:
        return Canvas(self.canvas.reference_size, self.canvas.size, float(self.scale[t]),
                      (float(self.offset[t, 0]), float(self.offset[t, 1])),
                      self.canvas.load_size)  # fmt: skip

    def to_export(self, landmarks: np.ndarray) -> np.ndarray:
        landmarks = np.asarray(landmarks, np.float64)
        return landmarks * self.scale[:, None, None] + self.offset[:, None, :]

    def summary(self) -> dict:
        moved = self.moved
        base = self.canvas.to_export
        shift = np.zeros(len(self.scale))
        if moved.any():
            corners = np.array([[0.0, 0.0], self.canvas.reference_size], np.float64)
            centre = corners.mean(axis=0)
            shift = np.linalg.norm(
                centre * self.scale[:, None] + self.offset - base(centre), axis=1
            )
        return {
            "frames_moved": int(moved.sum()),
            "max_shift_px": round(float(shift.max()), 2) if len(shift) else 0.0,
            "min_relative_scale": round(float((self.scale / self.canvas.scale).min()), 4),
            "why": "the reference's head travels or grows: those frames are moved (and "
            "shrunk where needed) back inside vid2vid's crop, which is set on the first frame",
            "to_reference": "x_ref = (x - vid2vid_frame_offset[t, 0]) / vid2vid_frame_scale[t] "
            "(y alike) for exported frame t (keypoints.npz)",
        }


def _face_extent(points: np.ndarray) -> np.ndarray:
    """(T, 4) min x, min y, max x, max y of the 68 points and vid2vid's forehead."""
    full = edgescreen.with_forehead_all(points)
    return np.concatenate([full.min(axis=1), full.max(axis=1)], axis=1)


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    if len(values) < 2 or sigma <= 0:
        return values.copy()
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, [(radius, radius)] + [(0, 0)] * (values.ndim - 1), mode="edge")
    flat = padded.reshape(len(padded), -1)
    columns = [np.convolve(flat[:, k], kernel, mode="valid") for k in range(flat.shape[1])]
    return np.stack(columns, axis=1).reshape(values.shape)


def steady_frames(
    landmarks: np.ndarray,
    reference_index: np.ndarray,
    canvas: Canvas,
    margin: float = CROP_MARGIN,
    sigma: float = STEADY_SIGMA_FRAMES,
) -> Steadying:
    """Per-frame mappings that keep every frame's face edges inside vid2vid's crop.

    ``landmarks`` (T, 68, 2) in reference pixels, ``reference_index`` (T,) the reference
    frame behind each; ``canvas`` places frame 0 (its crop is vid2vid's for the whole
    sequence). For each reference frame: the largest scale <= 1 at which the face (its
    forehead included) spans the crop less twice the margin, then the smallest shift that
    brings it inside; both smoothed over the reference's frames in order and clamped back
    to what each frame needs. Frame 0's reference frame keeps the canvas itself."""
    points = canvas.to_export(landmarks)
    index = np.asarray(reference_index, dtype=int)
    box = np.asarray(edgemap.crop_box(points[0], canvas.size), np.float64)
    pad = margin * canvas.load_size
    centre = (box[:2] + box[2:]) / 2
    room = box[2:] - box[:2] - 1 - 2 * pad  # what the face may span (x, y)
    keys, inverse = np.unique(index, return_inverse=True)
    extent = _face_extent(points)  # (T, 4)
    span = extent[:, 2:] - extent[:, :2]
    need = np.min(np.where(span > room, room / np.maximum(span, 1e-9), 1.0), axis=1)
    scale = np.ones(len(keys))
    np.minimum.at(scale, inverse, need)
    scale = np.minimum(scale, _smooth(scale, sigma))
    first = inverse[0]
    scale[first] = 1.0
    # shift bounds per frame at its reference frame's scale, intersected per reference frame
    s = scale[inverse][:, None]
    low = box[:2] + pad - (s * (extent[:, :2] - centre) + centre)
    high = box[2:] - 1 - pad - (s * (extent[:, 2:] - centre) + centre)
    lo = np.full((len(keys), 2), -np.inf)
    hi = np.full((len(keys), 2), np.inf)
    np.maximum.at(lo, inverse, low)
    np.minimum.at(hi, inverse, high)
    crossed = lo > hi
    lo[crossed] = hi[crossed] = ((lo + hi) / 2)[crossed]
    shift = np.clip(0.0, lo, hi)
    shift = np.clip(_smooth(shift, sigma), lo, hi)
    shift[first] = 0.0
    scale[first] = 1.0
    # exported = s * (canvas(p) - centre) + centre + shift
    frame_scale = canvas.scale * scale[inverse]
    frame_offset = (
        scale[inverse][:, None] * (np.asarray(canvas.offset) - centre) + centre + shift[inverse]
    )
    return Steadying(frame_scale, frame_offset, canvas)


def _source_point(index: int) -> int:
    """The keypoint behind a point of vid2vid's 83 (68-82: forehead mirrored from jaw
    points 15..1)."""
    return index if index < 68 else 15 - (index - 68)


_NUDGES = [(dx, dy) for r in range(1, MAX_NUDGE_PX + 1)
           for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r), (r, r), (r, -r), (-r, r), (-r, -r))]  # fmt: skip


def _drawing_faults(frame: np.ndarray) -> list:
    """What stops or blanks vid2vid's drawing of one integer frame: each piece whose
    curve fit fails, and each edge that draws nothing (all its pieces dropped)."""
    curves, failed = edgemap._curves_and_failures(frame)
    empty = [("empty", index) for index, drawn in enumerate(curves) if not drawn]
    return [("fit", index, piece) for index, piece in failed] + empty


def _fault_points(fault) -> list[int]:
    """Keypoints (0-67) whose move may clear a fault, the middle of a piece first."""
    if fault[0] == "fit":
        piece = [int(p) for p in fault[2]]
        order = [piece[1], piece[0], *piece[2:]] if len(piece) > 1 else piece
    else:
        edge = [e for _, _, edges in edgemap.FACE_PARTS for e in edges][fault[1]]
        order = [int(p) for p in edge[1:-1]] + [int(edge[0]), int(edge[-1])]
    return list(dict.fromkeys(_source_point(p) for p in order))


def repair_fit_failures(points: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Integer keypoints (T, 68, 2) on which vid2vid's drawing neither stops nor blanks.

    scipy's ``curve_fit`` (inside vid2vid's ``interpPoints``) fails on a 3-point piece
    whose abscissae repeat, e.g. a jaw folded by a head turn, and vid2vid's test run then
    stops; a narrow, open inner mouth (a turned head) can have every piece of an edge
    dropped (|a| > 1), leaving its distance map blank. For each such fault one point is
    moved by at most :data:`MAX_NUDGE_PX` pixels (the smallest move first), kept only when
    vid2vid's own drawing (``edgemap``: its solver, start and drop rule) of the whole frame
    has fewer faults. Returns the points and, per repaired frame, the largest move (px)."""
    points = np.array(points, dtype=np.int64)
    repaired: dict[int, int] = {}
    for t in np.flatnonzero(edgescreen.frames_at_risk(points)):
        original = points[t].astype(np.float64)
        frame = original
        faults = _drawing_faults(frame)
        while faults:  # each round clears at least one fault, or gives up
            fixed = None
            for fault in faults:
                for dx, dy in _NUDGES:
                    for point in _fault_points(fault):
                        trial = frame.copy()
                        trial[point] += (dx, dy)
                        if np.abs(trial - original).max() > MAX_NUDGE_PX:
                            continue
                        left = _drawing_faults(trial)
                        if len(left) < len(faults):
                            fixed = (trial, left)
                            break
                    if fixed is not None:
                        break
                if fixed is not None:
                    break
            if fixed is None:
                break
            frame, faults = fixed
        if not faults and not np.array_equal(frame, original):
            points[t] = frame.astype(np.int64)
            repaired[int(t)] = int(np.abs(frame - original).max())
    return points, repaired


FrameSource = Callable[[int], np.ndarray | Path]


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes the same file as ``source`` (a hard link; a copy where links
    are not possible), atomically."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        tmp_path.unlink()
        try:
            os.link(source, tmp_path)
        except OSError:
            shutil.copyfile(source, tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def export_sequence(
    root: str | os.PathLike,
    seq: str,
    landmarks: np.ndarray,
    frame_for: FrameSource,
    phase: str = PHASE,
    jpeg_quality: int = 95,
    frame_keys: Sequence | np.ndarray | None = None,
    fresh: bool = False,
) -> int:
    """Write one sequence: ``<root>/<phase>_keypoints/<seq>/%05d.txt`` and the matching
    ``<phase>_img/<seq>/%05d.jpg``. ``landmarks`` are in the exported frames' pixels;
    ``frame_for(i)`` gives frame ``i``'s image (RGB array, or the path of a jpg to use).

    ``frame_keys``: frames with equal keys show the same image (e.g. the reference frame
    index): it is written once and the others are hard links to it (copies where links
    are not possible), so a long prediction over a short reference writes as many
    images as the reference has frames. Files are written atomically; leftovers of an
    interrupted run and an earlier, longer export of the sequence are removed so the two
    trees stay the same length. ``fresh``: the caller guarantees a new, empty ``root`` that
    is itself moved into place whole when complete (``wav2kp.predict.staging``), so files are
    written and linked directly, without a temp file and rename each (the cost of long
    exports). Returns the number of frames."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2) or len(landmarks) == 0:
        raise ValueError(f"landmarks must be (T>0, 68, 2), got {landmarks.shape}")
    if frame_keys is not None and len(frame_keys) != len(landmarks):
        raise ValueError(f"{len(frame_keys)} frame keys for {len(landmarks)} frames")
    kp_dir, img_dir = (d / seq for d in keypoint_dirs(root, phase))
    for folder in (kp_dir, img_dir):
        if fresh and folder.exists() and any(folder.iterdir()):
            raise ValueError(f"{folder}: not empty; fresh=True needs a new folder")
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob(".*"):  # temp files of an interrupted run
            if leftover.is_file():
                leftover.unlink()
    write = _write_plain if fresh else write_text
    link = _link_plain if fresh else _link_or_copy
    written: dict = {}
    for i, lm in enumerate(landmarks):
        name = f"{i:05d}"
        write(kp_dir / f"{name}.txt", keypoint_text(lm))
        target = img_dir / f"{name}.jpg"
        key = frame_keys[i] if frame_keys is not None else i
        key = key.item() if isinstance(key, np.generic) else key
        if key in written:
            link(written[key], target)
            continue
        source = frame_for(i)
        if isinstance(source, (str, Path)) and Path(source).suffix.lower() in (".jpg", ".jpeg"):
            link(Path(source), target)
        else:
            if isinstance(source, (str, Path)):
                image = cv2.imread(str(source), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"{source}: cannot read the reference frame image")
            else:
                image = cv2.cvtColor(np.asarray(source, dtype=np.uint8), cv2.COLOR_RGB2BGR)
            with contextlib.nullcontext(target) if fresh else atomic_path(target) as tmp:
                if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                    raise OSError(f"{target}: could not write the jpg")
        written[key] = target
    if not fresh:
        for stale in (kp_dir, img_dir):
            for path in stale.iterdir():
                if path.stem.isdigit() and int(path.stem) >= len(landmarks):
                    path.unlink()
    return len(landmarks)


def _write_plain(path: Path, text: str) -> None:
    with open(path, "x") as file:  # "x": a fresh folder never holds the file already
        file.write(text)


def _link_plain(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        if target.exists():
            raise
        shutil.copyfile(source, target)  # no hard links here (another file system)


@dataclass
class Vid2vidExport:
    """One exported sequence and how its pixels map back to the reference's."""

    root: Path
    sequence: str
    canvas: Canvas
    landmarks: np.ndarray  # (T, 68, 2) int: exactly the keypoint files' content
    frame_keys: np.ndarray  # (T,) frames with equal keys share one image (reference frame)
    images_written: int  # distinct images (the other frames are links to them)
    steadying: Steadying | None = None  # per-frame mapping (None: the canvas for all)
    repaired: dict[int, int] = field(default_factory=dict)  # frame -> largest nudge (px)

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        return edgemap.crop_box(self.landmarks[0], self.canvas.size)

    def image_path(self, index: int) -> Path:
        return keypoint_dirs(self.root)[1] / self.sequence / f"{index:05d}.jpg"

    def npz_fields(self) -> dict[str, np.ndarray]:
        """Arrays for ``keypoints.npz``: the exported points and the mapping back."""
        return {
            "vid2vid_landmarks": self.landmarks.astype(np.int32),
            "vid2vid_size": np.asarray(self.canvas.size, np.int32),
            "vid2vid_scale": np.float64(self.canvas.scale),
            "vid2vid_offset": np.asarray(self.canvas.offset, np.float64),
            "vid2vid_crop_box": np.asarray(self.crop_box, np.int32),
            "vid2vid_frame_scale": self.frame_scale(),
            "vid2vid_frame_offset": self.frame_offset(),
        }

    def frame_scale(self) -> np.ndarray:
        """(T,) per-frame ``exported = reference * scale + offset`` (the canvas's unless
        the head was steadied)."""
        if self.steadying is not None:
            return np.asarray(self.steadying.scale, np.float64)
        return np.full(self.n_frames, self.canvas.scale, np.float64)

    def frame_offset(self) -> np.ndarray:
        """(T, 2), see :meth:`frame_scale`."""
        if self.steadying is not None:
            return np.asarray(self.steadying.offset, np.float64)
        return np.tile(np.asarray(self.canvas.offset, np.float64), (self.n_frames, 1))


def export_composition(
    root: str | os.PathLike,
    seq: str,
    composition: Composition,
    reference: ReferenceTrack,
    canvas: Canvas | None = None,
    load_size: int = DEFAULT_LOAD_SIZE,
    fresh: bool = False,
    steady: bool = True,
) -> Vid2vidExport:
    """vid2vid tree for a composition: its keypoints beside the reference frames used,
    both on ``canvas`` (default :func:`plan_canvas`, where vid2vid's crop fits exactly).
    Each reference frame used is written once; repeats (a looped reference) are links.

    ``steady``: frames whose head leaves vid2vid's crop (set on frame 0) are moved back
    inside, images and keypoints alike (:func:`steady_frames`), and point sets on which
    vid2vid's curve fit fails are nudged until it converges (:func:`repair_fit_failures`).
    The per-frame mapping is the export's ``steadying``. ``fresh``: see
    :func:`export_sequence`."""
    canvas = canvas or plan_canvas(composition.landmarks[0], reference.size, load_size)
    if tuple(canvas.reference_size) != tuple(reference.size):
        raise ValueError(f"canvas is for a {canvas.reference_size} reference, not {reference.size}")
    index = np.asarray(composition.reference_index, dtype=int)
    steadying, repaired = None, {}
    if steady:
        steadying = steady_frames(composition.landmarks, index, canvas)
        points = to_vid2vid_ints_all(steadying.to_export(composition.landmarks))
        points, repaired = repair_fit_failures(points)
        if not steadying.moved.any():
            steadying = None
    else:
        points = to_vid2vid_ints_all(canvas.to_export(composition.landmarks))

    def frame_for(i: int):
        frame_canvas = canvas if steadying is None else steadying.frame_canvas(i)
        source = reference.frame(int(index[i]))
        if frame_canvas.is_identity and isinstance(source, Path):
            return source
        image = source if isinstance(source, np.ndarray) else reference.image(int(index[i]))
        return frame_canvas.warp(image)

    keys = index if reference.frame_paths else np.zeros(len(index), int)
    if steadying is not None and not reference.frame_paths:
        keys = index  # plain canvases moved differently per reference frame
    export_sequence(root, seq, points, frame_for, frame_keys=keys, fresh=fresh)
    return Vid2vidExport(Path(root), seq, canvas, points, keys, len(np.unique(keys)),
                         steadying, repaired)  # fmt: skip


def to_vid2vid_ints_all(landmarks: np.ndarray) -> np.ndarray:
    """(T, 68, 2) integer pixels, as the keypoint files hold them."""
    return np.stack([to_vid2vid_ints(lm) for lm in np.asarray(landmarks)])


# --------------------------------------------------------------------------- check


def vid2vid_listing(folder: Path) -> list[list[Path]]:
    """Files grouped by folder exactly as vid2vid's ``make_grouped_dataset`` finds them:
    every folder below (and including) ``folder``, sorted, with its files that end in one
    of vid2vid's extensions, sorted; empty groups left out."""
    groups = []
    for current, _, names in sorted(os.walk(folder)):
        files = [Path(current) / n for n in sorted(names) if n.endswith(VID2VID_EXTENSIONS)]
        if files:
            groups.append(files)
    return groups


@dataclass
class SequenceReport:
    """What vid2vid's generator will get from one exported sequence."""

    name: str
    n_frames: int
    frame_size: tuple[int, int] | None
    crop_box: tuple[int, int, int, int] | None  # vid2vid's, set on the first sequence
    crop_fits: bool
    face_edge_share_min: float  # share of face-edge pixels reaching the edge channel
    face_edge_share_mean: float
    frames_cut: list[int] = field(default_factory=list)  # face edges outside the crop
    frames_off_frame: list[int] = field(default_factory=list)  # points off the frame
    frames_empty_edge: dict[str, list[int]] = field(default_factory=dict)
    fit_failures: list[str] = field(default_factory=list)
    frames_checked: int = 0  # frames drawn exactly; the others vouched for by the screen


@dataclass
class TreeReport:
    sequences: list[SequenceReport]
    problems: list[str]


def _ranges(frames: Sequence[int]) -> str:
    """'3-7, 12' for [3, 4, 5, 6, 7, 12] (at most 4 ranges shown)."""
    parts, frames = [], sorted(frames)
    start = prev = None
    for f in [*frames, None]:
        if f is not None and prev is not None and f == prev + 1:
            prev = f
            continue
        if start is not None:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = f
    more = f" (+{len(parts) - 4} more)" if len(parts) > 4 else ""
    return ", ".join(parts[:4]) + more


def inspect_tree(
    root: str | os.PathLike,
    phase: str = PHASE,
    load_size: int = DEFAULT_LOAD_SIZE,
    screen: bool = False,
) -> TreeReport:
    """Read an exported tree the way vid2vid's face test run will, and report what its
    generator gets, frame by frame: vid2vid's crop (set once, on the first frame of the
    first sequence), whether it fits the frame, the share of face-edge pixels that reach
    the edge channel, and every condition that empties or cuts an edge channel.

    ``screen`` (long predictions): draw exactly only the frames of
    ``wav2kp.handoff.edgescreen.frames_to_check`` (all of a short sequence; of a long one every
    frame that may leave the crop or frame or lose an edge, plus a regular sample); the
    others are proven fine in closed form. ``frames_checked`` says how many were drawn."""
    from PIL import Image

    root = Path(root)
    kp_root, img_root = keypoint_dirs(root, phase)
    problems: list[str] = []
    for folder in (kp_root, img_root):
        if not folder.is_dir():
            problems.append(f"{folder}: folder missing")
    if problems:
        return TreeReport([], problems)
    resolved = str(root.resolve())
    if "City" in resolved:
        problems.append(f"{resolved}: 'City' in the path makes vid2vid's --use_single_G load "
                        "its Cityscapes generator")  # fmt: skip
    elif "face" not in resolved:
        problems.append(f"{resolved}: vid2vid's --use_single_G needs 'face' in --dataroot "
                        f"(name the folder e.g. {EXPORT_DIR})")  # fmt: skip
    kp_groups, img_groups = vid2vid_listing(kp_root), vid2vid_listing(img_root)
    if not kp_groups:
        problems.append(f"{kp_root}: no sequences")
    kp_names = [str(g[0].parent.relative_to(kp_root)) for g in kp_groups]
    img_names = [str(g[0].parent.relative_to(img_root)) for g in img_groups]
    if kp_names != img_names:
        problems.append(f"sequence folders differ (vid2vid pairs them in sorted order): "
                        f"keypoints {kp_names} vs images {img_names}")  # fmt: skip
    box = None
    reports = []
    for txts, imgs in zip(kp_groups, img_groups, strict=False):
        seq = str(txts[0].parent.relative_to(kp_root))
        if len(txts) != len(imgs):
            problems.append(
                f"{seq}: {len(txts)} keypoint files but {len(imgs)} images (must be equal)"
            )
        if [p.stem for p in txts] != [p.stem for p in imgs]:
            odd = sorted({p.name for p in txts} ^ {p.with_suffix(".txt").name for p in imgs})
            problems.append(f"{seq}: file names differ between the trees: {odd[:5]}")
        if len(txts) < FIRST_OUTPUT_FRAME + 1:
            problems.append(f"{seq}: {len(txts)} frames; vid2vid needs at least "
                            f"{FIRST_OUTPUT_FRAME + 1} (it writes frames 2..N-1)")  # fmt: skip
        sizes: set = set()
        seen_files: dict = {}  # hard links to one image are read once
        for path in imgs:
            stat = path.stat()
            inode = (stat.st_dev, stat.st_ino)
            if inode not in seen_files:
                try:
                    with Image.open(path) as image:
                        image.verify()
                    with Image.open(path) as image:
                        seen_files[inode] = image.size
                except Exception:  # noqa: BLE001 - any decoder complaint means unreadable
                    seen_files[inode] = None
            if seen_files[inode] is None:
                problems.append(f"{path}: image not readable")
            else:
                sizes.add(seen_files[inode])
        if len(sizes) > 1:
            problems.append(f"{seq}: images have different sizes {sorted(sizes)}")
        size = min(sizes) if sizes else None
        points, bad = [], False
        for path in txts:
            file_problems, lm = _read_checked_keypoint_file(path)
            problems.extend(file_problems)
            bad |= bool(file_problems)
            if not file_problems:
                points.append(lm)
        report = SequenceReport(seq, len(txts), size, None, False, 0.0, 0.0)
        reports.append(report)
        if bad or not points or size is None:
            continue
        if box is None:
            box = edgemap.crop_box(points[0], size)
        report.crop_box = box
        report.crop_fits = edgemap.crop_fits(box, size)
        _inspect_frames(report, points, size, box, load_size, screen)
        problems.extend(_frame_problems(report, size))
    return TreeReport(reports, problems)


def _inspect_frames(report: SequenceReport, points, size, box, load_size: int,
                    screen: bool = False) -> None:  # fmt: skip
    indices = (
        edgescreen.frames_to_check(np.stack(points), size, box) if screen else range(len(points))
    )
    report.frames_checked = len(indices)
    shares = [1.0] * (len(points) - len(indices))  # screened frames: share 1, proven
    for i in indices:
        lm = points[i]
        reach = edgemap.crop_reach(lm, size, box)
        shares.append(reach.share)
        if reach.outside_crop:
            report.frames_cut.append(i)
        if reach.outside_frame:
            report.frames_off_frame.append(i)
        for name in reach.empty_edges:
            report.frames_empty_edge.setdefault(name, []).append(i)
        report.fit_failures += [f"frame {i}: {f}" for f in reach.failed_fits]
    report.face_edge_share_min = float(min(shares))
    report.face_edge_share_mean = float(np.mean(shares))


def _frame_problems(report: SequenceReport, size) -> list[str]:
    seq, box = report.name, report.crop_box
    problems = []
    width, height = size
    if not report.crop_fits:
        x0, y0, x1, y1 = box
        corner = (max(0, min(x1, width) - (width + x0 if x0 < 0 else x0)),
                  max(0, min(y1, height) - (height + y0 if y0 < 0 else y0)))  # fmt: skip
        problems.append(
            f"{seq}: vid2vid's crop {box} (set on the first frame: 2.5 face widths) does not "
            f"fit the {width}x{height} frame; its edge map and part labels are cut by numpy "
            f"slicing to a {corner[0]}x{corner[1]} corner, so the generator gets no face "
            f"(export with wav2kp.handoff.vid2vid.plan_canvas, or pad the frames)"
        )
    if report.frames_cut:
        problems.append(f"{seq}: frames {_ranges(report.frames_cut)}: face edges leave vid2vid's "
                        f"crop {box} (set on the first frame) and are cut")  # fmt: skip
    if report.frames_off_frame:
        problems.append(f"{seq}: frames {_ranges(report.frames_off_frame)}: face edges leave the "
                        f"{width}x{height} frame; vid2vid draws them along its border")  # fmt: skip
    for name, frames in report.frames_empty_edge.items():
        problems.append(f"{seq}: frames {_ranges(frames)}: edge {name} draws nothing (all its "
                        "pieces are dropped); its distance map is blank")  # fmt: skip
    if report.fit_failures:
        problems.append(f"{seq}: vid2vid's curve fit fails (its test run stops) at "
                        f"{report.fit_failures[0]} ({len(report.fit_failures)} pieces)")  # fmt: skip
    return problems


def check_vid2vid_tree(root: str | os.PathLike, phase: str = PHASE) -> list[str]:
    """Everything vid2vid would trip over, as readable problems (empty list = fine).

    The trees as vid2vid lists them (every file with one of its extensions, folders
    paired in sorted order), same count and names per sequence, 68 integer ``x,y`` rows
    per keypoint file, readable images of one size per sequence, 'face' in the path
    (``--use_single_G``), and for every frame (:func:`inspect_tree`): vid2vid's crop fits
    the frame, no face edge is cut by the crop or leaves the frame, no edge channel is
    empty, no curve fit fails.
    """
    return inspect_tree(root, phase).problems


def _read_checked_keypoint_file(path: Path) -> tuple[list[str], np.ndarray | None]:
    """(problems, the (68, 2) points as :func:`read_keypoint_file` gives them) from one
    read of the file; points None when there are problems."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) != 68:
        return [f"{path}: {len(lines)} rows, vid2vid needs 68"], None
    bad = [i for i, line in enumerate(lines) if not KEYPOINT_LINE.match(line)]
    if bad:
        return [
            f"{path}: row {bad[0] + 1} is {lines[bad[0]]!r}, vid2vid needs integers 'x,y' "
            f"({len(bad)} bad rows)"
        ], None
    # every row is checked to be 'int,int': np.loadtxt would give these same floats
    return [], np.array([line.split(",") for line in lines], dtype=np.int64).astype(np.float64)


def read_keypoint_file(path: str | os.PathLike) -> np.ndarray:
    """(68, 2) float array back from a vid2vid keypoint file (as vid2vid's np.loadtxt)."""
    return np.loadtxt(path, delimiter=",").reshape(-1, 2)


# --------------------------------------------------------------------------- commands


def vid2vid_test_command(
    root: str | os.PathLike,
    n_frames: int,
    name: str = MODEL_NAME,
    single_gpu: bool = False,
    load_size: int = DEFAULT_LOAD_SIZE,
) -> str:
    """The vid2vid test command for this folder (run from a vid2vid checkout with its
    face models), printed and returned. ``--how_many`` covers every frame (vid2vid stops
    at 300 by default); it writes frames 2..N-1 (:data:`FIRST_OUTPUT_FRAME`).

    vid2vid runs in its own PyTorch 0.4-era environment: its keypoint reader passes the
    float ``x[-1] - x[0]`` (from ``np.loadtxt``) to ``np.linspace`` as a count, which only
    NumPy < 1.18 accepts, whatever the file holds."""
    parts = [
        "python test.py",
        f"--name {name}",
        f"--dataroot {shlex.quote(str(Path(root).resolve()) + '/')}",
        f"--dataset_mode face --input_nc 15 --loadSize {int(load_size)} --use_single_G",
    ]
    if single_gpu:
        parts.append("--n_scales_spatial 2 --ngf 64")
    parts.append(f"--how_many {max(int(n_frames), 1)}")
    command = " ".join(parts)
    print(command)
    return command


def results_folder(seq: str, name: str = MODEL_NAME) -> str:
    """Where vid2vid's test.py writes a sequence (relative to its checkout)."""
    return f"results/{name}/test_latest/{seq}"


def audio_offset_seconds(fps: float) -> float:
    """Speech time of vid2vid's first output frame (frame 2 of the keypoint frames)."""
    return FIRST_OUTPUT_FRAME / float(fps)


def mux_command(
    seq: str, speech: str | os.PathLike, fps: float, name: str = MODEL_NAME,
    out: str | os.PathLike | None = None,
) -> str:  # fmt: skip
    """ffmpeg command (run in the vid2vid checkout) that puts the speech under vid2vid's
    output: its frames start at keypoint frame 2, so the speech starts
    ``2 / fps`` seconds in (:func:`audio_offset_seconds`) and stays in sync."""
    from wav2kp.media.encode import as_fraction

    rate = as_fraction(fps)
    out = out or f"{seq}_vid2vid.mp4"
    return " ".join([
        "ffmpeg -y", f"-framerate {rate.numerator}/{rate.denominator}",
        f"-start_number {FIRST_OUTPUT_FRAME}",
        "-i", shlex.quote(f"{results_folder(seq, name)}/fake_B_%05d.jpg"),
        f"-ss {audio_offset_seconds(float(rate)):.6f}", "-i", shlex.quote(str(Path(speech).resolve())),
        "-map 0:v:0 -map 1:a:0 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest",
        shlex.quote(str(out)),
    ])  # fmt: skip


def handoff_summary(
    export: Vid2vidExport, fps: float, speech: str | os.PathLike, screen: bool = False
) -> dict:
    """The vid2vid part of ``predict.json``: folder, commands, frame numbering, crop, the
    mapping back to the reference's pixels, and the self-check (``screen``: see
    :func:`inspect_tree`; ``frames_checked_exactly`` says how many frames it drew)."""
    with contextlib.redirect_stdout(io.StringIO()):
        command = vid2vid_test_command(
            export.root, export.n_frames, load_size=export.canvas.load_size
        )
    report = inspect_tree(export.root, load_size=export.canvas.load_size, screen=screen)
    seq = next((r for r in report.sequences if r.name == export.sequence), None)
    x0, y0, _, _ = export.crop_box
    tx, ty = export.canvas.offset
    return {
        "folder": str(export.root),
        "sequence": export.sequence,
        "frames": export.n_frames,
        "images_written": export.images_written,
        "canvas": export.canvas.as_dict(),
        "crop_box": list(export.crop_box),
        "load_size": export.canvas.load_size,
        "face_edge_share": None if seq is None else seq.face_edge_share_min,
        "frames_checked_exactly": None if seq is None else seq.frames_checked,
        "check": "every frame drawn as vid2vid draws it"
        if seq is None or seq.frames_checked == seq.n_frames
        else f"{seq.frames_checked} of {seq.n_frames} frames drawn as vid2vid draws them "
        "(every frame that may leave the crop or the frame or lose an edge, and every "
        f"{edgescreen.SAMPLE_EVERY}th); the others proven inside the crop in closed form "
        "(wav2kp.handoff.edgescreen)",
        "output_frames": max(0, export.n_frames - FIRST_OUTPUT_FRAME),
        "first_output_frame": FIRST_OUTPUT_FRAME,
        "output_files": f"{results_folder(export.sequence)}/fake_B_%05d.jpg "
        f"(frames {FIRST_OUTPUT_FRAME:05d}..{export.n_frames - 1:05d})",
        "output_to_reference": f"x_ref = (u {_signed(x0 - tx)}) / {export.canvas.scale:.12g}, "
        f"y_ref = (v {_signed(y0 - ty)}) / {export.canvas.scale:.12g} for output pixel (u, v)"
        + (
            ""
            if export.steadying is None
            else " of an unmoved frame; moved frames: "
            "vid2vid_frame_scale / vid2vid_frame_offset in keypoints.npz, with "
            "u = x - crop_box[0], v = y - crop_box[1]"
        ),
        "steadied": None if export.steadying is None else export.steadying.summary(),
        "repaired_fits": None
        if not export.repaired
        else {
            "frames": len(export.repaired),
            "first_frames": sorted(export.repaired)[:10],
            "max_nudge_px": max(export.repaired.values()),
            "why": "vid2vid's curve fit (scipy curve_fit in keypoint2img.interpPoints) fails "
            "on these frames' point sets (repeated abscissae: a foreshortened jaw); one point "
            "per failing piece is moved by at most this many pixels, checked with vid2vid's "
            "own fit, so its test run does not stop",
        },
        "audio_offset_seconds": audio_offset_seconds(fps),
        "test_command": command,
        "mux_command": mux_command(export.sequence, speech, fps),
        "problems": report.problems,
    }


# --------------------------------------------------------------------------- reference


@dataclass
class ReferenceTrack:
    """A real head track of the target speaker: keypoints per frame and the frames."""

    name: str
    times: np.ndarray  # (N,) seconds
    landmarks: np.ndarray  # (N, 68, 2) pixels, NaN where missing
    size: tuple[int, int]  # (width, height)
    frame_paths: list[Path] = field(default_factory=list)  # one image per frame, or empty
    canvas_color: int = 96  # grey level of the plain canvas when there are no frames

    @property
    def n_frames(self) -> int:
        return len(self.times)

    def frame(self, index: int) -> np.ndarray | Path:
        """Frame ``index``'s image: its file when frames exist, else a plain canvas."""
        if self.frame_paths:
            return self.frame_paths[index]
        width, height = self.size
        return np.full((height, width, 3), self.canvas_color, np.uint8)

    def frames(self, start: int, stop: int) -> ReferenceTrack:
        """Frames ``start .. stop - 1`` only (their times kept: the loop starts there)."""
        if not 0 <= start < stop <= self.n_frames:
            raise ValueError(
                f"frames {start}-{stop - 1} are not in the {self.n_frames}-frame track"
            )
        paths = self.frame_paths[start:stop] if self.frame_paths else []
        return ReferenceTrack(self.name, self.times[start:stop], self.landmarks[start:stop],
                              self.size, paths, self.canvas_color)  # fmt: skip

    def image(self, index: int) -> np.ndarray:
        """Frame ``index`` as an RGB array."""
        source = self.frame(index)
        if isinstance(source, np.ndarray):
            return source
        image = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{source}: cannot read the reference frame image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_reference_track(
    npz_path: str | os.PathLike, frames_dir: str | os.PathLike | None = None
) -> ReferenceTrack:
    """A reference track from an extraction result (``extracted/<clip_id>.npz``) and, if
    given and present, its kept frames folder (one image per decoded frame, sorted)."""
    npz_path = Path(npz_path)
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            times = np.asarray(data["times"], dtype=np.float64)
            landmarks = np.asarray(data["lm68"], dtype=np.float64)
            if "frame_status" in data:
                landmarks[np.asarray(data["frame_status"]) == 2] = np.nan
            size = (int(data["width"]), int(data["height"]))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{npz_path}: not a readable extraction result ({error})") from error
    frame_paths: list[Path] = []
    if frames_dir is not None and Path(frames_dir).is_dir():
        frame_paths = sorted(
            p for p in Path(frames_dir).iterdir() if p.suffix.lower() in (".jpg", ".png")
        )
        if len(frame_paths) != len(times):
            raise ValueError(
                f"{frames_dir}: {len(frame_paths)} frame images for {len(times)} frames "
                f"in {npz_path.name}"
            )
    return ReferenceTrack(npz_path.stem, times, landmarks, size, frame_paths)


def static_reference(face68: np.ndarray, size: tuple[int, int], name: str = "neutral"):
    """A one-frame track: a neutral face on a plain canvas (no head motion, no blinks)."""
    face = np.asarray(face68, dtype=np.float64)[None]
    return ReferenceTrack(name, np.zeros(1), face, (int(size[0]), int(size[1])))


def pingpong_indices(n_out: int, n_ref: int) -> np.ndarray:
    """Reference frame per output frame: forward, then backward, ... so that head motion
    stays continuous when the speech is longer than the reference clip."""
    if n_ref <= 0:
        raise ValueError("the reference track has no frames")
    if n_ref == 1:
        return np.zeros(n_out, dtype=int)
    period = 2 * (n_ref - 1)
    phase = np.arange(n_out) % period
    return np.where(phase < n_ref, phase, period - phase)


def reference_times(out_times: np.ndarray, ref_times: np.ndarray) -> np.ndarray | None:
    """The reference clip's time shown at each output time, ping-ponging (forward, then
    backward, ...); None when the reference has no time span (a single frame)."""
    out_times = np.asarray(out_times, dtype=np.float64)
    ref_times = np.asarray(ref_times, dtype=np.float64)
    start, span = ref_times[0], ref_times[-1] - ref_times[0]
    if len(ref_times) == 1 or span <= 0:
        return None
    phase = np.mod(out_times - out_times[0], 2 * span)
    return np.where(phase <= span, phase, 2 * span - phase) + start


def reference_indices(out_times: np.ndarray, ref_times: np.ndarray) -> np.ndarray:
    """Reference frame for each output time, ping-ponging in time (variable-rate safe)."""
    ref_times = np.asarray(ref_times, dtype=np.float64)
    local = reference_times(out_times, ref_times)
    if local is None:
        return pingpong_indices(len(out_times), len(ref_times))
    nearest = np.clip(np.searchsorted(ref_times, local), 1, len(ref_times) - 1)
    left_closer = (local - ref_times[nearest - 1]) <= (ref_times[nearest] - local)
    return np.where(left_closer, nearest - 1, nearest)


def _at_times(values: np.ndarray, times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values`` (N, ...) sampled at ``times``, linearly interpolated at ``at``."""
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(at, times, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(at), *values.shape[1:]))


# --------------------------------------------------------------------------- composition


def align_to_template(landmarks: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame moved onto ``template`` by the least-squares similarity of its stable
    points (``wav2kp.windowing.targets.fit_similarity``); returns the aligned frames and the pose
    (T, 4) ``[scale, angle, tx, ty]`` back to pixels, NaN where a frame is incomplete."""
    from wav2kp.windowing.targets import fit_similarity, remove_pose

    landmarks = np.asarray(landmarks, dtype=np.float64)
    pose = fit_similarity(template, landmarks, STABLE_POINTS)
    pose[~np.isfinite(landmarks).all(axis=(1, 2))] = np.nan
    return remove_pose(landmarks, pose), pose


def _rest_shape(aligned: np.ndarray) -> np.ndarray:
    """The mouth-closed shape: per-point median over the quarter of frames whose inner
    lips are closest together (speech opens the mouth; rest is when it closes)."""
    ok = np.isfinite(aligned).all(axis=(1, 2))
    frames = aligned[ok]
    opening = np.linalg.norm(frames[:, [61, 62, 63]] - frames[:, [67, 66, 65]], axis=2).mean(1)
    closest = np.argsort(opening)[: max(1, len(frames) // 4)]
    return np.median(frames[closest], axis=0)


def _fill_missing(aligned: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate missing frames' aligned shapes and head poses linearly in time (nearest
    valid frame at the ends; ``wav2kp.windowing.targets.fill_pose`` for the pose)."""
    from wav2kp.windowing.targets import fill_pose

    ok = np.isfinite(pose).all(axis=1) & np.isfinite(aligned).all(axis=(1, 2))
    if not ok.any():
        raise ValueError("the reference track has no frame with a detected face")
    pose = np.where(ok[:, None], pose, np.nan)
    filled_pose, _ = fill_pose(pose)
    idx = np.arange(len(aligned))
    flat = aligned.reshape(len(aligned), -1)
    filled = np.stack([np.interp(idx, idx[ok], flat[ok, k]) for k in range(flat.shape[1])], 1)
    return filled.reshape(aligned.shape), filled_pose


@dataclass
class Composition:
    landmarks: np.ndarray  # (T, 68, 2) pixels in the reference frame
    reference_index: np.ndarray  # (T,) reference frame used for each output frame
    reference_missing: np.ndarray  # (T,) bool: reference face was interpolated there


def compose_on_reference(
    predicted: np.ndarray,
    reference: ReferenceTrack,
    normalizer=None,
    speaker: str | None = None,
    out_times: np.ndarray | None = None,
    fps: float = float(NTSC_FPS),
    predicted_rest: np.ndarray | None = None,
) -> Composition:
    """Predicted mouth and jaw motion on the reference speaker's moving head.

    ``predicted``: (T, 68, 2) landmarks in any frame (e.g. ``predict_landmarks``), or
    (T, K) normalised targets together with their ``normalizer``
    (``wav2kp.windowing.targets.TargetNormalizer``; ``speaker`` picks the neutral face). Both
    sequences are aligned by the similarity of their stable points (eye corners, nose)
    onto the reference's median face. In that aligned space the output keeps the
    reference frame's brows, eyes (blinks), nose and upper jaw, and replaces the mouth
    and lower jaw by the reference's mouth-closed shape plus the prediction's deformation
    from its own mouth-closed shape (``predicted_rest``; default the normaliser's neutral
    face, else estimated from the prediction). The result is mapped back with the
    reference frame's head pose; the reference is ping-ponged when the speech is longer.
    """
    from wav2kp.windowing.targets import apply_pose

    predicted = np.asarray(predicted, dtype=np.float64)
    if predicted.ndim == 2:
        if normalizer is None:
            raise ValueError("predicted targets (T, K) need the normalizer that made them")
        predicted = normalizer.to_aligned(predicted, speaker)
    if predicted_rest is None and normalizer is not None:
        predicted_rest = normalizer.neutral_for(speaker)
    if predicted.ndim != 3 or predicted.shape[1:] != (68, 2) or len(predicted) == 0:
        raise ValueError(f"predicted landmarks must be (T>0, 68, 2), got {predicted.shape}")
    n_out = len(predicted)
    if out_times is None:
        out_times = np.arange(n_out) / float(fps)
    ref_lm = np.asarray(reference.landmarks, dtype=np.float64)
    ref_ok = np.isfinite(ref_lm).all(axis=(1, 2))
    if not ref_ok.any():
        raise ValueError(f"reference {reference.name}: no frame with a detected face")
    template = np.median(ref_lm[ref_ok], axis=0)

    ref_aligned, ref_pose = align_to_template(ref_lm, template)
    ref_rest = _rest_shape(ref_aligned)
    ref_aligned, ref_pose = _fill_missing(ref_aligned, ref_pose)

    pred_aligned, _ = align_to_template(predicted, template)
    pred_ok = np.isfinite(pred_aligned).all(axis=(1, 2))
    if not pred_ok.any():
        raise ValueError("no predicted frame is complete (all contain NaN)")
    if predicted_rest is None:
        pred_rest = _rest_shape(pred_aligned)
    else:
        pred_rest, _ = align_to_template(np.asarray(predicted_rest, float)[None], template)
        pred_rest = pred_rest[0]
    deformation = pred_aligned - pred_rest
    deformation[~pred_ok] = 0.0  # a missing prediction keeps the mouth at rest

    weights = np.zeros(68)
    weights[:17] = JAW_WEIGHTS
    weights[MOUTH_POINTS] = 1.0
    ref_index = reference_indices(out_times, reference.times)
    local = reference_times(out_times, reference.times)
    if local is None:
        head, pose = ref_aligned[ref_index], ref_pose[ref_index]
    else:  # head motion interpolated in time: smooth when the reference has another rate
        ref_t = np.asarray(reference.times, dtype=np.float64)
        pose = _at_times(ref_pose, ref_t, local)
        head = _at_times(ref_aligned, ref_t, local)
    speaking = ref_rest[None] + deformation
    composed = head + weights[None, :, None] * (speaking - head)
    pixels = apply_pose(composed, pose)
    return Composition(pixels, ref_index, ~ref_ok[ref_index])


def liveliness(landmarks: np.ndarray, fps: float = float(NTSC_FPS)) -> dict:
    """How alive a keypoint track looks (what the original's frozen output lacked).

    ``head_translation_std_iod``: spread of the head position (stable-point centroid),
    ``head_rotation_std_deg``: spread of the head roll, ``blinks_per_minute``: eye
    closures (lid gap under half its median, per eye pair), ``mouth_opening_std_iod``:
    spread of the inner-lip gap. Distances in inter-ocular distances.
    """
    from wav2kp.windowing.targets import fit_similarity

    lm = np.asarray(landmarks, dtype=np.float64)
    ok = np.isfinite(lm).all(axis=(1, 2))
    lm = lm[ok]
    if len(lm) < 2:
        raise ValueError("need at least two complete frames")
    iod = np.median(np.linalg.norm(lm[:, 45] - lm[:, 36], axis=1))
    centroid = lm[:, STABLE_POINTS].mean(axis=1)
    pose = fit_similarity(np.median(lm, axis=0), lm, STABLE_POINTS)
    lids = np.linalg.norm(lm[:, [37, 38, 43, 44]] - lm[:, [41, 40, 47, 46]], axis=2).mean(1)
    closed = lids < 0.5 * np.median(lids)
    blinks = int(np.count_nonzero(closed[1:] & ~closed[:-1]) + int(closed[0]))
    gap = np.linalg.norm(lm[:, 66] - lm[:, 62], axis=1)
    return {
        "head_translation_std_iod": float(np.linalg.norm(centroid.std(axis=0)) / iod),
        "head_rotation_std_deg": float(np.degrees(np.unwrap(pose[:, 1]).std())),
        "blinks_per_minute": blinks / (len(lm) / fps) * 60.0,
        "mouth_opening_std_iod": float(gap.std() / iod),
    }


def plot_vid2vid_inputs(
    root: str | os.PathLike, seq: str, n_frames: int = 4, phase: str = PHASE, panel: int = 256
):
    """A figure read back from the exported files, as vid2vid will read them: for
    ``n_frames`` frames spread over the sequence, the real frame and the edge channel
    exactly as vid2vid's generator gets them (:func:`wav2kp.plots.edgemap.generator_input`:
    its crop, set on the first frame, numpy slicing and PIL resizing included)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    kp_dir, img_dir = (d / seq for d in keypoint_dirs(root, phase))
    files = sorted(kp_dir.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"{kp_dir}: no keypoint files")
    picks = np.unique(np.linspace(0, len(files) - 1, n_frames).round().astype(int))

    def frame(path: Path) -> np.ndarray:
        image_path = img_dir / f"{path.stem}.jpg"
        if not image_path.is_file():
            raise FileNotFoundError(f"{img_dir}: no image for {path.name}")
        return np.asarray(Image.open(image_path).convert("RGB"))

    first = frame(files[0])
    size = (first.shape[1], first.shape[0])
    box = edgemap.crop_box(read_keypoint_file(files[0]), size)
    fig, axes = plt.subplots(2, len(picks), figsize=(2.6 * len(picks), 5.4), squeeze=False)
    for column, index in enumerate(picks):
        seen = edgemap.generator_input(read_keypoint_file(files[index]), size, box,
                                       frame=frame(files[index]))  # fmt: skip
        axes[0, column].imshow(cv2.resize(seen.image, (panel, panel), interpolation=cv2.INTER_AREA))
        axes[1, column].imshow(cv2.resize(seen.edges, (panel, panel), interpolation=cv2.INTER_AREA),
                               cmap="gray", vmin=0, vmax=255)  # fmt: skip
        axes[0, column].set_title(f"frame {files[index].stem}", fontsize=9)
        for ax in axes[:, column]:
            ax.set_axis_off()
    axes[0, 0].text(-0.05, 0.5, "real frame", rotation=90, transform=axes[0, 0].transAxes,
                    ha="right", va="center")  # fmt: skip
    axes[1, 0].text(-0.05, 0.5, "edge channel", rotation=90, transform=axes[1, 0].transAxes,
                    ha="right", va="center")  # fmt: skip
    fig.suptitle(f"what vid2vid's generator gets (crop {box} of {size[0]}x{size[1]})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_crop_fix(
    reference_frame: np.ndarray, reference_points: np.ndarray, root: str | os.PathLike, seq: str,
    phase: str = PHASE,
):  # fmt: skip
    """Two panels: the reference frame as it is, with the square vid2vid would crop from
    it (set on the first frame; dashed where it leaves the frame) and the corner its numpy
    slicing would keep (red); and the exported frame with vid2vid's crop (green)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    height, width = reference_frame.shape[:2]
    box = edgemap.crop_box(reference_points, (width, height))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    ax = axes[0]
    ax.imshow(reference_frame)
    x0, y0, x1, y1 = box
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="orange", ls="--", lw=2))
    if not edgemap.crop_fits(box, (width, height)):
        cx0, cy0 = (width + x0 if x0 < 0 else x0), (height + y0 if y0 < 0 else y0)
        ax.add_patch(Rectangle((cx0, cy0), x1 - cx0, y1 - cy0, fill=False, ec="red", lw=2))
    ax.set_xlim(min(0, x0) - 10, max(width, x1) + 10)
    ax.set_ylim(max(height, y1) + 10, min(0, y0) - 10)
    fits = (
        "fits" if edgemap.crop_fits(box, (width, height)) else "does not fit: red = what it keeps"
    )
    ax.set_title(f"reference {width}x{height}: crop {box}\n{fits}", fontsize=9)
    ax = axes[1]
    first = sequence_frames(root, seq, phase)[0]
    exported = cv2.imread(str(keypoint_dirs(root, phase)[1] / seq / f"{first.stem}.jpg"))[..., ::-1]
    points = read_keypoint_file(first)
    ch, cw = exported.shape[:2]
    x0, y0, x1, y1 = edgemap.crop_box(points, (cw, ch))
    ax.imshow(exported)
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=2))
    ax.plot(*points.T, ".", color="lime", ms=3)
    ax.set_title(f"exported {cw}x{ch}: crop {(x0, y0, x1, y1)}", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def sequence_frames(root: str | os.PathLike, seq: str, phase: str = PHASE) -> Sequence[Path]:
    """The exported keypoint files of one sequence, sorted."""
    return sorted((keypoint_dirs(root, phase)[0] / seq).glob("*.txt"))
