"""Talking portraits: a real photo, framed as a 512x512 talking head and animated by
smooth displacement fields (``cv2.remap``) placed on its MediaPipe landmarks.

The mouth opens by a *tear* along the lower inner lip: pixels below it move down with
the jaw, the gap between the lips is painted as a dark cavity with an upper-teeth hint;
closed portraits and portraits photographed with an open smile both start from their
own rest gap, so ``jaw = 0`` is a full lip closure. Spread/rounding move the mouth
corners sideways, the emotion expression moves corners and brows, blinks slide the
upper eyelid down, and a small similarity transform gives head motion. Everything is one
backward map per frame, so each frame is resampled once (``wav2kp.media.facewarp.remap``, the
warp the talking face of ``--format face`` uses too).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from wav2kp.media.facewarp import LOWER_INNER_LIP, UPPER_INNER_LIP, remap

FRAME_SIZE = 512
INTEROCULAR_PX = 100.0  # iris-to-iris distance in the framed portrait
EYES_CENTRE = (256.0, 205.0)
MAX_GAP_IOD = 0.36  # full jaw opening (jaw = 1) as a fraction of the inter-ocular distance
TEETH_IOD = 0.09  # visible height of the upper teeth (fraction of inter-ocular distance)
TEETH_ALPHA = 0.85

LEFT_UPPER_LID = [33, 246, 161, 160, 159, 158, 157, 173, 133]
LEFT_LOWER_LID = [33, 7, 163, 144, 145, 153, 154, 155, 133]
RIGHT_UPPER_LID = [362, 398, 384, 385, 386, 387, 388, 466, 263]
RIGHT_LOWER_LID = [362, 382, 381, 380, 374, 373, 390, 249, 263]
LEFT_BROW = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]
RIGHT_BROW = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]

FACE_OVAL = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
]  # fmt: skip

SPEAKERS = ("astronaut", "hopper")


def load_photo(speaker: str) -> np.ndarray:
    """The public-domain portrait behind a speaker name, RGB uint8."""
    if speaker == "astronaut":
        from skimage import data

        return np.ascontiguousarray(data.astronaut())
    if speaker == "hopper":
        import matplotlib.cbook as cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            return np.asarray(Image.open(fh).convert("RGB")).copy()
    raise ValueError(f"unknown demo speaker {speaker!r}; known: {', '.join(SPEAKERS)}")


def detect_landmarks(
    image: np.ndarray, source: str = "image", with_depth: bool = False
) -> np.ndarray:
    """(478, 2) MediaPipe face mesh points (pixels) of the single face in ``image``;
    (478, 3) with ``with_depth`` (z in x's pixel scale, smaller = nearer the camera)."""
    import mediapipe as mp

    from wav2kp.extraction.facemesh import quiet_mediapipe

    # the graph logs (glog) while it starts and closes: both inside the filter
    with (
        quiet_mediapipe(),
        mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=1
        ) as mesh,
    ):
        result = mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        raise RuntimeError(f"{source}: MediaPipe face mesh found no face")
    h, w = image.shape[:2]
    pts = result.multi_face_landmarks[0].landmark
    out = np.array([[p.x * w, p.y * h, p.z * w] for p in pts], dtype=np.float64)
    return out if with_depth else out[:, :2]


@dataclass
class Portrait:
    speaker: str
    image: np.ndarray  # (512, 512, 3) uint8, framed
    landmarks: np.ndarray  # (478, 2) in the framed image
    depth: np.ndarray  # (478,) mesh z, pixels (smaller = nearer the camera)

    @property
    def iod(self) -> float:
        return float(np.linalg.norm(self.landmarks[468] - self.landmarks[473]))


@functools.lru_cache(maxsize=4)
def portrait(speaker: str) -> Portrait:
    """Frame the speaker's photo: level eyes, fixed inter-ocular distance and position."""
    photo = load_photo(speaker)
    pts = detect_landmarks(photo, f"portrait {speaker!r}")
    left, right = pts[468], pts[473]
    angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    scale = INTEROCULAR_PX / np.linalg.norm(right - left)
    centre = (left + right) / 2
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), scale)
    m[:, 2] += np.array(EYES_CENTRE) - centre
    framed = cv2.warpAffine(
        photo,
        m,
        (FRAME_SIZE, FRAME_SIZE),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    # detect again on the framed image: the warp fields are placed on these points
    pts = detect_landmarks(framed, f"framed portrait {speaker!r}", with_depth=True)
    face = Portrait(speaker, framed, pts[:, :2], pts[:, 2])
    if np.linalg.norm(pts[13, :2] - pts[14, :2]) > 0.02 * INTEROCULAR_PX:
        # photographed with parted lips (the astronaut's smile shows teeth): close them
        # once, so that every opening starts from clean lips, then re-detect
        closed = FaceRenderer(face).render(FaceState(jaw=0.0))
        pts = detect_landmarks(closed, f"closed portrait {speaker!r}", with_depth=True)
        face = Portrait(speaker, closed, pts[:, :2], pts[:, 2])
    return face


@dataclass
class FaceState:
    """Commanded state of one frame (all unitless; 0 = rest)."""

    jaw: float = 0.0  # lip opening 0..1 (0 = lips closed)
    spread: float = 0.0  # -1..1
    round: float = 0.0  # 0..1
    blink: float = 0.0  # 0 open .. 1 closed
    gaze_x: float = 0.0  # iris shift, pixels (both eyes)
    gaze_y: float = 0.0
    smile: float = 0.0  # 0..1 (mouth corners up and out)
    frown: float = 0.0  # 0..1 (corners down)
    brow_raise: float = 0.0  # 0..1 (whole brows up)
    brow_inner: float = 0.0  # 0..1 (inner brows up: distress, fear)
    brow_lower: float = 0.0  # 0..1 (brows down and together: anger)
    head_yaw: float = 0.0  # degrees (out-of-plane turn, from the mesh depth)
    head_pitch: float = 0.0  # degrees (nod)
    head_roll: float = 0.0  # degrees
    head_tx: float = 0.0  # pixels
    head_ty: float = 0.0  # pixels
    head_scale: float = 1.0


def _curve(points: np.ndarray):
    """y(x) along a contour given by points, as a function usable with np.interp."""
    order = np.argsort(points[:, 0])
    xs, ys = points[order, 0], points[order, 1]
    xs = xs + np.arange(len(xs)) * 1e-6  # strictly increasing for np.interp
    return xs, ys


def _band(y: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """1 between top and bottom, with one-pixel soft edges (anti-aliased)."""
    return np.clip(y - top + 0.5, 0, 1) * np.clip(bottom - y + 0.5, 0, 1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class FaceRenderer:
    """Renders frames of one portrait; geometry precomputed once."""

    def __init__(self, face: Portrait) -> None:
        self.face = face
        lm = face.landmarks
        iod = face.iod
        self.iod = iod
        self.gap_max = MAX_GAP_IOD * iod
        h, w = face.image.shape[:2]
        self.grid_x, self.grid_y = np.meshgrid(
            np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
        )
        up = lm[UPPER_INNER_LIP]
        low = lm[LOWER_INNER_LIP]
        self.corner_l, self.corner_r = lm[78], lm[308]
        self.mouth_cx = float((self.corner_l[0] + self.corner_r[0]) / 2)
        self.mouth_hw = float(abs(self.corner_r[0] - self.corner_l[0]) / 2)
        self.mouth_cy = float((lm[13][1] + lm[14][1]) / 2)
        self.up_curve = _curve(up)
        self.low_curve = _curve(low)
        self.chin_y = float(lm[152][1])
        self.lower_lip_h = float(max(lm[17][1] - lm[14][1], 4.0))
        # region of the frame the mouth/jaw fields touch (rows, cols)
        y0 = int(max(self.mouth_cy - 0.6 * iod, 0))
        y1 = int(min(self.chin_y + 0.8 * iod, h))
        x0 = int(max(self.mouth_cx - 1.4 * iod, 0))
        x1 = int(min(self.mouth_cx + 1.4 * iod, w))
        self.mouth_roi = (slice(y0, y1), slice(x0, x1))
        gx = self.grid_x[self.mouth_roi]
        gy = self.grid_y[self.mouth_roi]
        self._gy = gy
        dx = np.abs(gx[0] - self.mouth_cx)
        # jaw drop: full under the mouth, fading towards the cheeks, none below the chin
        self.lateral = (
            0.5 * (1 + np.cos(np.pi * np.clip((dx - 0.45 * iod) / (0.75 * iod), 0, 1)))
        )[None, :]
        chin_fade = 1 - _smoothstep((gy[:, :1] - self.chin_y) / (0.6 * iod))
        self.chin_fade = chin_fade
        xs = gx[0]
        self.y_low = np.interp(xs, *self.low_curve)[None, :]
        self.y_up = np.interp(xs, *self.up_curve)[None, :]
        self.rest_gap = np.clip(self.y_low - self.y_up, 0, None)
        inside = np.clip(1 - (dx / self.mouth_hw) ** 2, 0, None)
        # opening profile along the mouth: an ellipse that closes at the corners, so the
        # tear inside the mouth meets the smooth stretch beyond it without a seam
        self.profile = np.sqrt(inside)[None, :]
        # lengths over which the lower face stretches below the lip line: short in the
        # middle (the lower lip rides down on the tear), longer towards and beyond the
        # corners, where the lips stay together and the skin stretches instead
        out = np.clip((dx - self.mouth_hw) / (0.25 * iod), 0, 1)
        self.stretch_len = (self.lower_lip_h + (1 - self.profile[0]) * 0.4 * iod + out * 0.2 * iod)[
            None, :
        ]
        self.inside = (inside > 0)[None, :]
        for name in ("lateral", "chin_fade", "y_low", "y_up", "rest_gap", "profile",
                     "stretch_len"):  # fmt: skip
            setattr(self, name, getattr(self, name).astype(np.float32))
        # horizontal / corner fields (spread, round, smile) around the mouth
        u = (gx - self.mouth_cx) / self.mouth_hw
        env = np.exp(-(((gy - self.mouth_cy) / (0.45 * iod)) ** 2)) * np.exp(
            -((np.clip(np.abs(gx - self.mouth_cx) - self.mouth_hw, 0, None) / (0.6 * iod)) ** 2)
        )
        self.field_spread_x = (np.clip(u, -1.4, 1.4) * env).astype(np.float32)
        self.field_corner_y = (np.clip(u * u, 0, 1.6) * env).astype(np.float32)
        self._eyes = [
            self._eye_geometry(lm[LEFT_UPPER_LID], lm[LEFT_LOWER_LID]),
            self._eye_geometry(lm[RIGHT_UPPER_LID], lm[RIGHT_LOWER_LID]),
        ]
        self._brows = self._brow_geometry(lm[LEFT_BROW], lm[RIGHT_BROW])
        self._irises = [
            self._iris_geometry(lm[468], lm[469:473], lm[LEFT_UPPER_LID], lm[LEFT_LOWER_LID]),
            self._iris_geometry(lm[473], lm[474:478], lm[RIGHT_UPPER_LID], lm[RIGHT_LOWER_LID]),
        ]
        self.depth_shift = self._depth_field(face)
        # the box holding every non-zero displacement (mouth, jaw, eyes, brows)
        rois = [self.mouth_roi, self._brows[0]] + [e[0] for e in self._eyes + self._irises]
        self.face_box = (
            slice(min(r[0].start for r in rois), max(r[0].stop for r in rois)),
            slice(min(r[1].start for r in rois), max(r[1].stop for r in rois)),
        )

    # --- geometry ---------------------------------------------------------------
    def _depth_field(self, face: Portrait) -> np.ndarray:
        """Per pixel: how far a small head turn moves it (pixels per radian), from the
        mesh depth relative to the face outline: the nose moves most, the outline and
        the background stay (a turn about the head's own axis, seen from the front)."""
        from scipy.interpolate import griddata

        h, w = face.image.shape[:2]
        step = 4
        gy, gx = np.mgrid[0:h:step, 0:w:step].astype(np.float64)
        rel = np.median(face.depth[FACE_OVAL]) - face.depth  # > 0: nearer than the outline
        pts = face.landmarks
        inside = griddata(pts, rel, (gx, gy), method="linear")
        coarse = np.clip(np.nan_to_num(inside, nan=0.0), 0, None)
        coarse = cv2.GaussianBlur(coarse, (0, 0), 0.08 * self.iod / step)
        return cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)

    def _eye_geometry(self, upper: np.ndarray, lower: np.ndarray):
        iod = self.iod
        x0 = int(upper[:, 0].min() - 0.12 * iod)
        x1 = int(upper[:, 0].max() + 0.12 * iod)
        y0 = int(upper[:, 1].min() - 0.35 * iod)
        y1 = int(lower[:, 1].max() + 0.05 * iod)
        roi = (slice(y0, y1), slice(x0, x1))
        xs = np.arange(x0, x1, dtype=np.float64)
        top = np.interp(xs, *_curve(upper))
        bot = np.interp(xs, *_curve(lower))
        inner = (xs >= upper[:, 0].min()) & (xs <= upper[:, 0].max())
        dist = np.minimum(np.abs(xs - upper[:, 0].min()), np.abs(xs - upper[:, 0].max()))
        weight = np.where(inner, 1.0, 0.0) + np.where(
            inner, 0, 1 - np.clip(dist / (0.12 * iod), 0, 1)
        )
        return roi, top[None, :], bot[None, :], weight[None, :], y0

    def _iris_geometry(self, centre, ring, upper, lower):
        """Where a gaze shift moves the eye: a soft disc around the iris, limited to the
        eye opening so that the lids stay put."""
        radius = float(np.linalg.norm(ring - centre, axis=1).mean())
        half = int(np.ceil(3.5 * radius))
        x0, y0 = int(centre[0]) - half, int(centre[1]) - half
        roi = (slice(y0, y0 + 2 * half + 1), slice(x0, x0 + 2 * half + 1))
        gx, gy = self.grid_x[roi], self.grid_y[roi]
        disc = np.exp(-((gx - centre[0]) ** 2 + (gy - centre[1]) ** 2) / (2 * (1.5 * radius) ** 2))
        opening = np.zeros(gx.shape, np.float32)
        poly = np.concatenate([upper, lower[::-1]]) - (x0, y0)
        cv2.fillPoly(opening, [np.round(poly * 4).astype(np.int32)], 1.0, cv2.LINE_AA, shift=2)
        opening = cv2.GaussianBlur(opening, (0, 0), 0.8)
        return roi, (disc * opening).astype(np.float32)

    def _brow_geometry(self, left: np.ndarray, right: np.ndarray):
        iod = self.iod
        centres = [left.mean(axis=0), right.mean(axis=0)]
        inner = [left[[4, 9]].mean(axis=0), right[[4, 9]].mean(axis=0)]
        y0 = int(min(c[1] for c in centres) - 0.7 * iod)
        y1 = int(max(c[1] for c in centres) + 0.55 * iod)
        x0 = int(min(c[0] for c in centres) - 0.8 * iod)
        x1 = int(max(c[0] for c in centres) + 0.8 * iod)
        roi = (slice(max(y0, 0), y1), slice(max(x0, 0), x1))
        gx, gy = self.grid_x[roi], self.grid_y[roi]

        def blob(c, sx, sy):
            return np.exp(-(((gx - c[0]) / sx) ** 2) - ((gy - c[1]) / sy) ** 2)

        whole = sum(blob(c, 0.45 * iod, 0.28 * iod) for c in centres)
        inner_b = sum(blob(c, 0.22 * iod, 0.25 * iod) for c in inner)
        mid_x = (centres[0][0] + centres[1][0]) / 2
        towards_mid = np.sign(mid_x - gx) * sum(blob(c, 0.35 * iod, 0.25 * iod) for c in inner)
        return (
            roi,
            whole.astype(np.float32),
            inner_b.astype(np.float32),
            towards_mid.astype(np.float32),
        )

    # --- per frame ---------------------------------------------------------------
    def mouth_gap(self, state: FaceState) -> float:
        """Commanded inner-lip gap at the mouth centre, pixels (before head scale)."""
        return float(np.clip(state.jaw, 0, 1.2) * self.gap_max)

    def displacement(self, state: FaceState) -> tuple[np.ndarray, np.ndarray, dict]:
        """Backward displacement (dx, dy) of the face (before head motion): output pixel
        p shows the portrait at p + d(p); and the deformed lip contours for the cavity."""
        iod = self.iod
        dx = np.zeros_like(self.grid_x)
        dy = np.zeros_like(self.grid_y)
        roi = self.mouth_roi
        gy = self._gy
        # mouth opening: target gap per column; the lower lip moves by target - rest
        target = self.mouth_gap(state) * self.profile
        shift = target - self.rest_gap  # may be negative: closes an open rest mouth
        u = gy - self.y_low
        tear_open = np.clip(u, 0, np.clip(shift, 0, None))
        tear_close = np.where(u >= shift, np.clip(shift, None, 0), 0.0)
        tear = np.where(self.inside, np.where(shift >= 0, tear_open, tear_close), 0.0)
        jaw_drop = 0.85 * self.mouth_gap(state) * self.lateral * self.chin_fade
        extra = np.clip(jaw_drop - np.clip(tear, 0, None), 0, None)
        ramp = _smoothstep((u - np.clip(shift, 0, None) * self.inside) / self.stretch_len)
        # backward map: a pixel shows the content from above it when the jaw drops
        dy[roi] -= (tear + extra * ramp).astype(np.float32)
        # corners: spread/round sideways, smile/frown up/down
        sideways = 0.12 * iod * state.spread - 0.16 * iod * state.round + 0.07 * iod * state.smile
        dx[roi] -= sideways * self.field_spread_x
        dy[roi] += (0.10 * iod * state.smile - 0.08 * iod * state.frown) * self.field_corner_y
        # eyes: the upper lid slides down over the eye
        if state.blink > 1e-3:
            for eroi, top, bot, weight, _y0 in self._eyes:
                gy_e = self.grid_y[eroi]
                margin = 0.3 * iod
                new_lid = top + state.blink * (bot - top) * 0.95
                band_top = top - margin
                inside_band = (gy_e >= band_top) & (gy_e <= new_lid)
                src = band_top + (gy_e - band_top) * margin / np.maximum(new_lid - band_top, 1e-3)
                d = np.where(inside_band, src - gy_e, 0.0) * weight
                dy[eroi] += d.astype(np.float32)
        # gaze: both irises shift together inside the eye openings
        if abs(state.gaze_x) + abs(state.gaze_y) > 1e-3:
            for iroi, weight in self._irises:
                dx[iroi] -= state.gaze_x * weight
                dy[iroi] -= state.gaze_y * weight
        # brows
        broi, whole, inner, towards_mid = self._brows
        lift = 0.10 * iod * state.brow_raise
        dy[broi] += lift * whole + 0.09 * iod * state.brow_inner * inner
        dy[broi] -= 0.07 * iod * state.brow_lower * whole
        dx[broi] -= 0.05 * iod * state.brow_lower * towards_mid
        # lip contours after the deformation (for the cavity), in un-moved head coords
        xs = np.linspace(self.corner_l[0], self.corner_r[0], 24)
        up_y = np.interp(xs, *self.up_curve)
        prof = np.sqrt(np.clip(1 - ((xs - self.mouth_cx) / self.mouth_hw) ** 2, 0, None))
        low_y = up_y + self.mouth_gap(state) * prof
        # sideways corner motion (forward = minus the backward shift)
        ucol = np.clip((xs - self.mouth_cx) / self.mouth_hw, -1.4, 1.4)
        xs_new = xs + sideways * ucol
        lift_corners = (0.10 * iod * state.smile - 0.08 * iod * state.frown) * np.clip(
            ucol**2, 0, 1.6
        )
        lips = {
            "upper": np.stack([xs_new, up_y - lift_corners], axis=1),
            "lower": np.stack([xs_new, low_y - lift_corners], axis=1),
        }
        return dx, dy, lips

    def render(self, state: FaceState) -> np.ndarray:
        """One RGB frame: deformation and head motion in a single resampling."""
        map_x, map_y, lips = self.maps(state)
        frame = remap(self.face.image, map_x, map_y)
        return self._paint_cavity(frame, lips, scale=state.head_scale)

    def maps(self, state: FaceState) -> tuple[np.ndarray, np.ndarray, dict]:
        """cv2.remap maps of the whole frame and the lip contours in frame pixels.

        Output pixel p shows: q = A^-1 p (in-plane head motion A), then q' = q minus the
        depth-scaled turn (yaw/pitch), then the face deformation d(q'). Only the face
        box, where d is non-zero, is resampled.
        """
        dx, dy, lips = self.displacement(state)
        head = self._head_matrix(state)
        yaw, pitch = np.radians(state.head_yaw), np.radians(state.head_pitch)
        turn = abs(yaw) + abs(pitch) > 1e-6
        if head is None and not turn:
            return self.grid_x + dx, self.grid_y + dy, lips
        h, w = dx.shape
        if head is None:
            head = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        inv = cv2.invertAffineTransform(head)
        qx = inv[0, 0] * self.grid_x + inv[0, 1] * self.grid_y + inv[0, 2]
        qy = inv[1, 0] * self.grid_x + inv[1, 1] * self.grid_y + inv[1, 2]
        if turn:
            # the depth field is smooth and A is near identity: sampling it at p, not q,
            # is off by well under a pixel
            qx -= np.float32(yaw) * self.depth_shift
            qy -= np.float32(pitch) * self.depth_shift
        rows, cols = self.face_box
        corners = np.array(
            [[cols.start, rows.start], [cols.stop, rows.start], [cols.start, rows.stop],
             [cols.stop, rows.stop]], dtype=np.float64,
        )  # fmt: skip
        moved = corners @ head[:, :2].T + head[:, 2]
        margin = 2 + float(self.depth_shift.max()) * max(abs(yaw), abs(pitch))
        ox0, oy0 = np.maximum(np.floor(moved.min(axis=0) - margin).astype(int), 0)
        ox1, oy1 = np.minimum(np.ceil(moved.max(axis=0) + margin).astype(int), (w, h))
        out = (slice(oy0, oy1), slice(ox0, ox1))
        field = np.dstack([dx[rows, cols], dy[rows, cols]])
        local = cv2.remap(
            field, qx[out] - cols.start, qy[out] - rows.start, cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )  # fmt: skip
        map_x, map_y = qx, qy
        map_x[out] += local[..., 0]
        map_y[out] += local[..., 1]
        moved_lips = {}
        for k, v in lips.items():
            if turn:
                ix = np.clip(np.round(v[:, 0]).astype(int), 0, w - 1)
                iy = np.clip(np.round(v[:, 1]).astype(int), 0, h - 1)
                shift = self.depth_shift[iy, ix][:, None] * np.array([yaw, pitch])[None, :]
                v = v + shift
            moved_lips[k] = v @ head[:, :2].T + head[:, 2]
        return map_x, map_y, moved_lips

    def _head_matrix(self, state: FaceState):
        if (
            abs(state.head_roll) < 1e-4
            and abs(state.head_tx) < 1e-4
            and abs(state.head_ty) < 1e-4
            and abs(state.head_scale - 1) < 1e-6
        ):
            return None
        # rotate about the neck (below the chin), as a head does
        pivot = (self.mouth_cx, self.chin_y + 0.3 * self.iod)
        m = cv2.getRotationMatrix2D(pivot, state.head_roll, state.head_scale)
        m[:, 2] += (state.head_tx, state.head_ty)
        return m

    def _paint_cavity(self, frame: np.ndarray, lips: dict, scale: float = 1.0) -> np.ndarray:
        upper, lower = lips["upper"], lips["lower"]
        gap = float((lower[:, 1] - upper[:, 1]).max())
        if gap < 0.6:
            return frame
        poly = np.concatenate([upper, lower[::-1]])
        x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 4
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 4
        x0, y0 = max(x0, 0), max(y0, 0)
        patch = frame[y0:y1, x0:x1].astype(np.float32)
        ph, pw = patch.shape[:2]
        mask = np.zeros((ph, pw), np.uint8)
        pts = np.round((poly - [x0, y0]) * 4).astype(np.int32)  # shift=2: quarter pixels
        cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0.8)[..., None]
        # dark mouth interior, a little lighter near the lips
        yy = np.arange(ph, dtype=np.float32)[:, None] + y0
        xx = np.arange(pw, dtype=np.float32)[None, :] + x0
        up_line = np.interp(xx, upper[:, 0], upper[:, 1])
        low_line = np.interp(xx, lower[:, 0], lower[:, 1])
        depth = np.clip(np.minimum(yy - up_line, low_line - yy) / max(gap * 0.5, 1.0), 0, 1)
        cavity = np.empty_like(patch)
        base = np.array([70.0, 22.0, 26.0], np.float32)
        deep = np.array([22.0, 6.0, 8.0], np.float32)
        cavity[:] = base + (deep - base) * depth[..., None]
        # upper teeth: a light band under the upper lip in the middle of the mouth
        teeth_h = min(TEETH_IOD * self.iod * scale, 0.4 * gap)
        half_w = 0.62 * (upper[-1, 0] - upper[0, 0]) / 2
        mid_x = (upper[-1, 0] + upper[0, 0]) / 2
        in_teeth = _band(yy, up_line, up_line + teeth_h)
        teeth_alpha = in_teeth * np.clip(1 - (np.abs(xx - mid_x) / half_w) ** 4, 0, 1)
        teeth = np.array([214.0, 206.0, 192.0], np.float32)
        cavity = cavity + (teeth - cavity) * (TEETH_ALPHA * teeth_alpha[..., None])
        if gap > 0.12 * self.iod * scale:
            # wide open: the tongue behind the lower teeth, the lower teeth's edge
            open_amount = min((gap / (self.iod * scale) - 0.12) / 0.12, 1.0)
            low_teeth_h = min(0.05 * self.iod * scale, 0.2 * gap)
            tongue_y = low_line - low_teeth_h - 0.18 * gap
            tongue = np.exp(
                -(((xx - mid_x) / (0.8 * half_w)) ** 2) - ((yy - tongue_y) / (0.16 * gap)) ** 2
            )
            tongue_rgb = np.array([150.0, 62.0, 66.0], np.float32)
            cavity = cavity + (tongue_rgb - cavity) * (0.55 * open_amount * tongue[..., None])
            in_low = _band(yy, low_line - low_teeth_h, low_line)
            low_alpha = in_low * np.clip(1 - (np.abs(xx - mid_x) / (0.8 * half_w)) ** 4, 0, 1)
            low_teeth = np.array([188.0, 180.0, 168.0], np.float32)
            cavity = cavity + (low_teeth - cavity) * (0.45 * open_amount * low_alpha[..., None])
        out = patch * (1 - alpha) + cavity * alpha
        frame = frame.copy()
        frame[y0:y1, x0:x1] = np.clip(out, 0, 255).astype(np.uint8)
        return frame


@functools.lru_cache(maxsize=4)
def renderer_for(speaker: str) -> FaceRenderer:
    """One renderer per speaker and process (its geometry takes ~0.1 s to prepare)."""
    return FaceRenderer(portrait(speaker))
