"""The preview video: the reference frame with the keypoints beside vid2vid's edge map.

Fast on long files: all work happens inside vid2vid's face box (the only part shown), and
what depends on the reference frame alone (its cropped panel, its Canny edges) is done
once per distinct reference frame within a memory budget - a looped reference revisits
its frames. The edge panel is bit for bit ``edgemap.crop_and_resize(
edgemap.draw_edge_map(...), box, panel)`` (tested).
"""

from __future__ import annotations

import numpy as np

PREVIEW_PANEL = 256
PREVIEW_CACHE_BYTES = 256 << 20


class PreviewRenderer:
    """Preview frames: [reference frame with keypoints |] vid2vid's edge map (Canny
    background from the reference frame included), both cropped with vid2vid's face box.

    Fast on long files: all work happens inside the face box (the only part shown), and
    what depends on the reference frame alone (its cropped panel, its Canny edges) is
    computed once per distinct reference frame within a memory budget - a looped
    reference revisits its frames. The edge panel is bit for bit ``crop_and_resize(
    draw_edge_map(...), box, panel)`` (tested)."""

    def __init__(self, reference, box, panel: int = PREVIEW_PANEL,
                 budget_bytes: int = PREVIEW_CACHE_BYTES) -> None:  # fmt: skip
        self.reference = reference
        self.box = tuple(int(v) for v in box)
        self.panel = panel
        self.budget = budget_bytes
        self.used = 0
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}

    def _window(self, image: np.ndarray, fill=0) -> np.ndarray:
        """The box's part of a full-frame image (zeros outside the frame, as vid2vid's
        crop pads)."""
        x0, y0, x1, y1 = self.box
        h, w = image.shape[:2]
        out = np.full((y1 - y0, x1 - x0, *image.shape[2:]), fill, image.dtype)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        return out

    def frame_parts(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(panel RGB of the reference frame, its Canny edges inside the box)."""
        import cv2

        from wav2kp.edgemap import canny_edges

        if index in self.cache:
            panel, bits, shape = self.cache[index]
            edges = np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)
            return panel, edges
        frame = self.reference.image(index)
        panel = cv2.resize(self._window(frame), (self.panel, self.panel),
                           interpolation=cv2.INTER_LINEAR)  # fmt: skip
        edges = self._window(canny_edges(frame, self.box))
        bits = np.packbits(edges)
        if self.used + panel.nbytes + bits.nbytes <= self.budget:
            self.cache[index] = (panel, bits, edges.shape)
            self.used += panel.nbytes + bits.nbytes
        return panel, edges

    def edge_window(self, points: np.ndarray, canny: np.ndarray) -> np.ndarray:
        """vid2vid's full-resolution edge map of ``points``, inside the box only."""
        import cv2

        from wav2kp import edgemap

        width, height = self.reference.size
        x0, y0, x1, y1 = self.box
        window = np.zeros((y1 - y0, x1 - x0), np.uint8)
        curves = [curve for edge in edgemap.edge_curves(points) for curve in edge]
        if curves:
            xs = np.concatenate([c[0] for c in curves])
            ys = np.concatenate([c[1] for c in curves])
            half = edgemap.LINE_HALF_WIDTH
            for dy in range(-half, half):
                for dx in range(-half, half):
                    # clipped to the frame as vid2vid's brush is, then moved into the box
                    cx = np.clip(xs + dx, 0, width - 1) - x0
                    cy = np.clip(ys + dy, 0, height - 1) - y0
                    keep = (cx >= 0) & (cx < x1 - x0) & (cy >= 0) & (cy < y1 - y0)
                    window[cy[keep], cx[keep]] = 255
        if canny.any():
            labels = np.zeros_like(window)
            face = edgemap.with_forehead(points)
            for _, label, edges in edgemap.FACE_PARTS:
                polygon = face[[i for edge in edges for i in edge]]
                if np.isfinite(polygon).all():
                    cv2.fillPoly(labels, [polygon.astype(np.int32)], color=label,
                                 offset=(-x0, -y0))  # fmt: skip
            window = np.maximum(window, ((canny & (labels == 0)) * 255).astype(np.uint8))
        return window

    def edge_panel(self, points: np.ndarray, index: int) -> np.ndarray:
        import cv2

        _, canny = self.frame_parts(index)
        window = self.edge_window(points, canny)
        return cv2.resize(window, (self.panel, self.panel), interpolation=cv2.INTER_LINEAR)

    def frames(self, composition, n_frames: int | None = None, with_reference: bool = True):
        import cv2

        from wav2kp.explorer import draw_keypoints

        x0, y0, x1, y1 = self.box
        scale = self.panel / max(x1 - x0, 1)
        landmarks = composition.landmarks
        n_frames = len(landmarks) if n_frames is None else min(n_frames, len(landmarks))
        for i in range(n_frames):
            index = int(composition.reference_index[i])
            panel, canny = self.frame_parts(index)
            edges = cv2.resize(self.edge_window(landmarks[i], canny), (self.panel, self.panel),
                               interpolation=cv2.INTER_LINEAR)  # fmt: skip
            edge_rgb = cv2.cvtColor(edges, cv2.COLOR_GRAY2RGB)
            if not with_reference:
                yield edge_rgb
                continue
            shown = draw_keypoints(panel.copy(), (landmarks[i] - (x0, y0)) * scale,
                                   (80, 255, 120), radius=1)  # fmt: skip
            yield np.hstack([shown, edge_rgb])


def preview_box(composition, reference) -> tuple[int, int, int, int]:
    """vid2vid's face box, set on the first complete frame and kept for the sequence."""
    from wav2kp import edgemap

    landmarks = composition.landmarks
    return edgemap.crop_box(landmarks[edgemap.first_complete_frame(landmarks)], reference.size)


def preview_frames(composition, reference, panel: int = PREVIEW_PANEL, with_reference=True):
    """RGB preview frames (see :class:`PreviewRenderer`)."""
    renderer = PreviewRenderer(reference, preview_box(composition, reference), panel)
    return renderer.frames(composition, with_reference=with_reference)


def write_preview(
    path, composition, reference, audio, sample_rate, fps, with_reference=True, seconds=None
):
    """The preview mp4 with the speech; ``seconds`` limits it to the first seconds."""
    from wav2kp.media.encode import write_video

    n_frames = len(composition.landmarks)
    if seconds is not None:
        n_frames = max(1, min(n_frames, int(np.ceil(float(seconds) * fps))))
        audio = audio[: int(round(n_frames / fps * sample_rate))]
    renderer = PreviewRenderer(reference, preview_box(composition, reference))
    frames = renderer.frames(composition, n_frames, with_reference=with_reference)
    return write_video(path, frames, fps=fps, audio=audio, sample_rate=sample_rate)
