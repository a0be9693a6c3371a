"""``--format face``: a talking face on the CPU, rendered from the predicted keypoints.

It is a **warp of the reference video**, not a learnt generator. Each output frame is the
reference frame that the keypoints were composed onto (``wav2kp.handoff.vid2vid.
compose_on_reference``), with its lower face (lips, jaw, chin, cheeks) moved so that
its 68 points land on the predicted ones:

1. the frame's jaw, lips and nose (its MediaPipe mesh: the lip contours are dense, each
   contour point moved like the 68-point lip points beside it) become the controls of a
   thin-plate-spline displacement field inside a box from below the eyes to under the
   chin (``wav2kp.media.facewarp``, one ``cv2.remap``; the same warp opens the demo corpus'
   portraits). The box's border does not move, so nothing above the nose does;
2. the mouth (lips, teeth, tongue, the dark gap) comes from the reference frame whose
   mouth shape is closest to the predicted one (a reference of a few seconds holds
   many openings), warped the same way onto the predicted lips and blended in with a
   feathered mask; the chosen frame changes only when another is clearly closer, so
   teeth do not flicker.

What it cannot do: head turns larger than the reference's own (it moves no head), and
mouth shapes or expressions the reference never shows (a wide scream from a reference
that only murmurs stretches the largest opening it has). Frames are written at the
reference's resolution and frame rate, with the speech.

:func:`face_fidelity` measures a rendered video the way the project reads any video
(its own MediaPipe extractor): the mouth it gives back against the predicted one and
the eyes and brows against the reference track (``wav2kp bench face``).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wav2kp.media.facewarp import (
    LOWER_INNER_LIP,
    LOWER_OUTER_LIP,
    UPPER_INNER_LIP,
    UPPER_OUTER_LIP,
    remap,
    tps_displacement,
)

# Where each 68-point lip point sits on the mesh lip contours (index into the contour)
_CONTOURS_68 = (
    (UPPER_OUTER_LIP, {0: 48, 3: 49, 4: 50, 5: 51, 6: 52, 7: 53, 10: 54}),
    (LOWER_OUTER_LIP, {0: 48, 2: 59, 4: 58, 5: 57, 6: 56, 8: 55, 10: 54}),
    (UPPER_INNER_LIP, {0: 60, 4: 61, 5: 62, 6: 63, 10: 64}),
    (LOWER_INNER_LIP, {0: 60, 4: 67, 5: 66, 6: 65, 10: 64}),
)
JAW_CONTROLS = np.arange(2, 15)  # jaw points the composition moves (JAW_WEIGHTS > 0)
NOSE_CONTROLS = np.arange(30, 36)  # nose tip and nostrils: held where the frame has them
MOUTH_SHAPE = ((61, 67), (62, 66), (63, 65), (50, 58), (51, 57), (52, 56), (60, 64), (48, 54))
DONOR_HYSTERESIS_IOD = 0.02  # keep the mouth's source frame unless another is this much closer
MASK_GROW_IOD = 0.05  # the mouth patch reaches this far beyond the outer lips ...
MASK_FEATHER_IOD = 0.03  # ... and fades out over about this width
WARP_STEP = 4  # pixels between the nodes the displacement field is computed at
FRAME_CACHE_BYTES = 512 * 2**20
FACE_CRF = 18


class FaceRenderError(ValueError):
    """A reference the face cannot be rendered on; the message says why."""


def lip_contour_moves(delta68: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(mesh indices, (K, 2) displacements) of the mesh lip contours (each point once)
    for a 68-point displacement ``delta68`` (68, 2): a contour point between two
    68-point lip points moves like them, linearly by its position along the contour."""
    delta68 = np.asarray(delta68, dtype=np.float64)
    moves: dict[int, np.ndarray] = {}
    for contour, anchors in _CONTOURS_68:
        where = np.array(sorted(anchors))
        moved = delta68[[anchors[k] for k in where]]
        positions = np.arange(len(contour))
        dx = np.interp(positions, where, moved[:, 0])
        dy = np.interp(positions, where, moved[:, 1])
        for pos, index in enumerate(contour):
            moves.setdefault(index, np.array([dx[pos], dy[pos]]))
    keys = list(moves)
    return keys, np.stack([moves[k] for k in keys])


def _even(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    return width - width % 2, height - height % 2


def reference_rate(times: np.ndarray) -> float:
    """Frames per second of a (possibly variable-rate) reference: frames over span."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2 or times[-1] <= times[0]:
        return 30000 / 1001
    return float((len(times) - 1) / (times[-1] - times[0]))


@dataclass
class FaceFrames:
    """What was rendered: per output frame its time, the reference frame behind it, the
    mouth's source frame and the 68 points it was warped onto."""

    times: np.ndarray  # (T,)
    reference_index: np.ndarray  # (T,)
    mouth_index: np.ndarray  # (T,) reference frame the mouth interior comes from
    targets: np.ndarray  # (T, 68, 2) pixels
    fps: float
    size: tuple[int, int]  # (width, height) of the frames (the reference's, made even)


class FaceRenderer:
    """Renders frames of one reference (its track, mesh and frame images)."""

    def __init__(self, track, mesh: np.ndarray | None, cache_bytes: int = FRAME_CACHE_BYTES):
        from wav2kp.handoff import vid2vid
        from wav2kp.metrics import inter_ocular_distance

        if mesh is None:
            raise FaceRenderError(
                f"face: the reference {track.name} has no MediaPipe mesh (a neutral face on "
                "a plain canvas?); pass --reference VIDEO of the speaker"
            )
        if not track.frame_paths and not getattr(track, "images", None):
            raise FaceRenderError(
                f"face: the reference {track.name} has no frame images to warp; pass "
                "--reference VIDEO of the speaker"
            )
        self.track = track
        self.mesh = np.asarray(mesh, dtype=np.float64)[..., :2]
        self.lm68 = np.asarray(track.landmarks, dtype=np.float64)
        self.ok = np.isfinite(self.lm68).all(axis=(1, 2)) & np.isfinite(self.mesh).all(axis=(1, 2))
        if not self.ok.any():
            raise FaceRenderError(f"face: the reference {track.name} has no frame with a face")
        self.size = _even(track.size)
        template = np.median(self.lm68[self.ok], axis=0)
        self.template = template
        aligned, _ = vid2vid.align_to_template(self.lm68, template)
        self.template_iod = float(inter_ocular_distance(template[None])[0])
        self.shapes = self.mouth_shape(aligned)
        self.iod = inter_ocular_distance(np.where(self.ok[:, None, None], self.lm68, template))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = cache_bytes

    # --- choices -----------------------------------------------------------------
    def mouth_shape(self, aligned: np.ndarray) -> np.ndarray:
        """(T, F) mouth shape of aligned 68-point faces: lip gaps and widths over IOD."""
        pairs = np.array(MOUTH_SHAPE)
        gaps = np.linalg.norm(aligned[:, pairs[:, 0]] - aligned[:, pairs[:, 1]], axis=-1)
        return gaps / self.template_iod

    def choose_mouths(self, targets: np.ndarray, reference_index: np.ndarray) -> np.ndarray:
        """For each output frame, the reference frame whose mouth is closest in shape to
        the target; the previous choice (or the shown frame) is kept while it is within
        :data:`DONOR_HYSTERESIS_IOD` of the best, so the mouth's texture changes rarely."""
        from wav2kp.handoff import vid2vid

        aligned, _ = vid2vid.align_to_template(targets, self.template)
        wanted = self.mouth_shape(aligned)
        valid = np.flatnonzero(self.ok)
        cost = np.sqrt(((wanted[:, None, :] - self.shapes[None, valid, :]) ** 2).mean(-1))
        chosen = np.empty(len(targets), dtype=int)
        previous = -1
        for t in range(len(targets)):
            row = cost[t]
            best = int(np.argmin(row))
            pick = valid[best]
            for keep in (previous, int(reference_index[t])):
                where = np.searchsorted(valid, keep)
                if keep >= 0 and where < len(valid) and valid[where] == keep:
                    if row[where] <= row[best] + DONOR_HYSTERESIS_IOD:
                        pick = keep
                        break
            chosen[t] = previous = pick
        return chosen

    # --- frames ------------------------------------------------------------------
    def image(self, index: int) -> np.ndarray:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        width, height = self.size
        image = np.ascontiguousarray(self.track.image(index)[:height, :width])
        self._cache[index] = image
        while len(self._cache) > 1 and len(self._cache) * image.nbytes > self._cache_bytes:
            self._cache.popitem(last=False)
        return image

    def _source(self, index: int) -> int:
        """A frame with a face at or nearest ``index`` (missing faces were interpolated
        in the track; their images have no mesh to warp)."""
        if self.ok[index]:
            return index
        valid = np.flatnonzero(self.ok)
        return int(valid[np.argmin(np.abs(valid - index))])

    def _controls(self, index: int, target: np.ndarray, inner: bool):
        """Control points in the output frame and their backward displacement (source
        minus output) for warping reference frame ``index`` onto ``target`` (68, 2)."""
        source68 = self.lm68[index]
        mesh = self.mesh[index]
        delta = target - source68  # forward motion of each 68 point
        keys, moves = lip_contour_moves(delta)
        keep = [k for k, key in enumerate(keys) if inner or key not in _INNER_ONLY]
        lips_src = mesh[[keys[k] for k in keep]]
        lips_dst = lips_src + moves[keep]
        points = np.r_[JAW_CONTROLS, NOSE_CONTROLS]
        src = np.r_[lips_src, source68[points]]
        dst = np.r_[lips_dst, target[points]]
        return dst, src - dst

    def _box(self, index: int, target: np.ndarray, which: str):
        width, height = self.size
        iod = float(self.iod[index])
        both = np.r_[self.lm68[index], target]
        if which == "face":
            x0 = both[:, 0].min() - 0.1 * iod
            x1 = both[:, 0].max() + 0.1 * iod
            y0 = both[[29, 68 + 29], 1].min()  # from the nose bridge down: the eyes stay
            y1 = both[[8, 68 + 8], 1].max() + 0.35 * iod
        else:  # the mouth patch
            lips = both[np.r_[48:60, 68 + 48 : 68 + 60]]
            x0, y0 = lips.min(axis=0) - 0.2 * iod
            x1, y1 = lips.max(axis=0) + 0.2 * iod
        x0, y0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        x1, y1 = min(int(np.ceil(x1)) + 1, width), min(int(np.ceil(y1)) + 1, height)
        return (slice(y0, y1), slice(x0, x1))

    def _warp(self, index: int, target: np.ndarray, box, inner: bool, pinned: bool):
        """Frame ``index`` warped so its lower face follows ``target``, inside ``box``:
        (H, W, 3) of the box. ``pinned``: the box border stays put (the face box)."""
        dst, back = self._controls(index, target, inner)
        if pinned:
            rows, cols = box
            xs = np.linspace(cols.start, cols.stop - 1, 9)
            ys = np.linspace(rows.start, rows.stop - 1, 9)
            ring = np.r_[
                np.c_[xs, np.full(9, ys[0])], np.c_[xs, np.full(9, ys[-1])],
                np.c_[np.full(7, xs[0]), ys[1:-1]], np.c_[np.full(7, xs[-1]), ys[1:-1]],
            ]  # fmt: skip
            dst = np.r_[dst, ring]
            back = np.r_[back, np.zeros_like(ring)]
        dx, dy = tps_displacement(dst, back, box, step=WARP_STEP)
        rows, cols = box
        gx, gy = np.meshgrid(
            np.arange(cols.start, cols.stop, dtype=np.float32),
            np.arange(rows.start, rows.stop, dtype=np.float32),
        )
        return remap(self.image(index), gx + dx, gy + dy)

    def _mouth_mask(self, target: np.ndarray, box, iod: float) -> np.ndarray:
        rows, cols = box
        mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
        outer = target[48:60] - (cols.start, rows.start)
        cv2.fillPoly(mask, [np.round(outer * 4).astype(np.int32)], 1.0, cv2.LINE_AA, shift=2)
        grow = max(1, int(round(MASK_GROW_IOD * iod)))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        sigma = max(0.8, MASK_FEATHER_IOD * iod / 2)
        return cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]

    def render_frame(self, shown: int, mouth: int, target: np.ndarray) -> np.ndarray:
        """One RGB frame: reference frame ``shown`` with its lower face on ``target``
        (68, 2) and the mouth of reference frame ``mouth``."""
        shown, mouth = self._source(shown), self._source(mouth)
        frame = self.image(shown).copy()
        face_box = self._box(shown, target, "face")
        frame[face_box] = self._warp(shown, target, face_box, inner=False, pinned=True)
        mouth_box = self._box(mouth, target, "mouth")
        patch = self._warp(mouth, target, mouth_box, inner=True, pinned=False)
        alpha = self._mouth_mask(target, mouth_box, float(self.iod[shown]))
        base = frame[mouth_box].astype(np.float32)
        frame[mouth_box] = (base + alpha * (patch.astype(np.float32) - base) + 0.5).astype(np.uint8)
        return frame

    def plan(self, times: np.ndarray, landmarks: np.ndarray, duration: float,
             fps: float | None = None) -> FaceFrames:  # fmt: skip
        """Output frames at the reference's rate (or ``fps``) over ``duration`` seconds:
        the composed keypoints (``times``, ``landmarks``) resampled to them, the
        reference frame behind each and the mouth's source frame."""
        from wav2kp.handoff import vid2vid

        rate = float(fps) if fps else reference_rate(self.track.times)
        n_out = max(1, int(np.floor(duration * rate + 1e-6)))
        out_times = np.arange(n_out) / rate
        landmarks = np.asarray(landmarks, dtype=np.float64)
        flat = landmarks.reshape(len(landmarks), -1)
        if len(times) > 1:
            targets = np.stack([np.interp(out_times, times, flat[:, k]) for k in
                                range(flat.shape[1])], axis=1).reshape(n_out, 68, 2)  # fmt: skip
        else:
            targets = np.repeat(landmarks[:1], n_out, axis=0)
        shown = vid2vid.reference_indices(out_times, self.track.times)
        mouths = self.choose_mouths(targets, shown)
        return FaceFrames(out_times, shown, mouths, targets, rate, self.size)

    def frames(self, plan: FaceFrames):
        for t in range(len(plan.times)):
            yield self.render_frame(
                int(plan.reference_index[t]), int(plan.mouth_index[t]), plan.targets[t]
            )


_INNER_ONLY = frozenset(UPPER_INNER_LIP + LOWER_INNER_LIP)


def write_face_video(
    path: str | os.PathLike, renderer: FaceRenderer, times: np.ndarray, landmarks: np.ndarray,
    audio: np.ndarray | None, sample_rate: int | None, duration: float | None = None,
) -> FaceFrames:  # fmt: skip
    """``face.mp4``: the rendered frames at the reference's rate and size, with
    ``audio`` (float samples at ``sample_rate``) muxed in. Returns what was rendered."""
    from wav2kp.media.encode import as_fraction, write_video

    if duration is None:
        step = float(times[1] - times[0]) if len(times) > 1 else 0.0
        duration = len(audio) / sample_rate if audio is not None else float(times[-1]) + step
    plan = renderer.plan(times, landmarks, duration)
    rate = as_fraction(plan.fps).limit_denominator(1001)
    plan.fps = float(rate)
    write_video(path, renderer.frames(plan), fps=rate, audio=audio, sample_rate=sample_rate,
                crf=FACE_CRF)  # fmt: skip
    return plan


# --------------------------------------------------------------------------- measuring


def track_video(path: str | os.PathLike) -> np.ndarray:
    """(T, 68, 2) points of every frame of a video, read the way ``wav2kp extract`` reads
    a clip (its decoder, MediaPipe tracker and 478 -> 68 mapping); NaN where no face."""
    from wav2kp.extraction.extract_clip import ExtractParams
    from wav2kp.extraction.facemesh import shared_tracker
    from wav2kp.extraction.landmarks import mediapipe_to_68
    from wav2kp.media.decode import DecodeLog, iter_frames

    params = ExtractParams()
    log = DecodeLog()
    out = []
    with shared_tracker(
        max_faces=params.max_faces, refine=params.refine_landmarks, static=False,
        min_detection_confidence=params.min_detection_confidence,
        min_tracking_confidence=params.min_tracking_confidence, face=params.face,
    ) as tracker:  # fmt: skip
        for _, rgb in iter_frames(path, log, max_side=params.decode_max_side):
            found = tracker.process(rgb)
            if found is None:
                out.append(np.full((68, 2), np.nan))
            else:
                mesh = log.scale.to_source(found)
                out.append(mediapipe_to_68(mesh[None])[0, :, :2])
    return np.asarray(out, dtype=np.float64)


EYES_BROWS = np.r_[17:27, 36:48]


def face_fidelity(extracted: np.ndarray, plan: FaceFrames, reference68: np.ndarray) -> dict:
    """How faithfully a rendered face reads back: ``extracted`` (T, 68, 2) from
    :func:`track_video` of the video, against the points it was rendered onto
    (``plan.targets``) and the reference track (``reference68`` (N, 68, 2)).

    - ``opening_r``: Pearson r of the inner-lip gap (over IOD), read back vs predicted;
    - ``mouth_lmd_iod``: mouth LMD (each mouth centred on its mean) in IOD;
    - ``eyes_brows_iod``: mean distance of the eye and brow points, read back vs the
      reference frame shown, in IOD (no centring: they must not move at all)."""
    from wav2kp import metrics

    n = min(len(extracted), len(plan.targets))
    got = np.asarray(extracted[:n], dtype=np.float64)
    wanted = plan.targets[:n]
    shown = np.asarray(reference68, dtype=np.float64)[plan.reference_index[:n]]
    ok = np.isfinite(got).all(axis=(1, 2)) & np.isfinite(shown).all(axis=(1, 2))
    iod = metrics.inter_ocular_distance(shown)
    eyes = np.linalg.norm(got[:, EYES_BROWS] - shown[:, EYES_BROWS], axis=-1).mean(axis=1)
    return {
        "frames": int(n),
        "frames_read": int(ok.sum()),
        "opening_r": metrics.mouth_opening_correlation(got, wanted, ok),
        "mouth_lmd_iod": metrics.mouth_lmd(got, wanted, "iod", ok),
        "eyes_brows_iod": float(np.mean(eyes[ok] / iod[ok])) if ok.any() else float("nan"),
    }


def render_and_measure(renderer: FaceRenderer, times, landmarks, audio, sample_rate,
                       folder: str | os.PathLike) -> dict:  # fmt: skip
    """Write ``face.mp4`` into ``folder``, read it back and measure it
    (:func:`face_fidelity`); adds the rendering speed (frames per second, encoding
    included) and the video's size."""
    path = Path(folder) / "face.mp4"
    begun, cpu = time.perf_counter(), time.process_time()
    plan = write_face_video(path, renderer, times, landmarks, audio, sample_rate)
    seconds, cpu_seconds = time.perf_counter() - begun, time.process_time() - cpu
    result = face_fidelity(track_video(path), plan, renderer.lm68)
    result.update(
        fps=plan.fps, size=list(plan.size), render_seconds=seconds,
        render_cpu_seconds=cpu_seconds, frames_per_second=len(plan.times) / max(seconds, 1e-9),
    )  # fmt: skip
    return result


def tracking_floor(renderer: FaceRenderer, plan: FaceFrames, folder: str | os.PathLike) -> float:
    """Eyes/brows error (IOD) of the reference frames themselves, unwarped, encoded and
    read back like a face: what re-tracking alone costs (encoding, the tracker's state),
    the floor under :func:`face_fidelity`'s ``eyes_brows_iod``."""
    from wav2kp.media.encode import write_video

    path = Path(folder) / "reference-only.mp4"
    frames = (renderer.image(renderer._source(int(i))) for i in plan.reference_index)
    write_video(path, frames, fps=plan.fps, crf=FACE_CRF)
    return face_fidelity(track_video(path), plan, renderer.lm68)["eyes_brows_iod"]
