"""The preview video: the reference frame with the keypoints beside vid2vid's edge map.

Fast on long files and batches: all drawing happens inside vid2vid's face box (the only
part shown), and what depends on the reference frame alone (its Canny edges, its cropped
panel) is done once per distinct reference frame and shared by every preview on that
reference (:class:`FrameCache`; a looped reference revisits its frames). The edge panel
is bit for bit ``edgemap.crop_and_resize(edgemap.draw_edge_map(...), box, panel)`` with
the frame's Canny edges (tested).
"""

from __future__ import annotations

import numpy as np

PREVIEW_PANEL = 256
PREVIEW_CACHE_BYTES = 256 << 20


def window(image: np.ndarray, box) -> np.ndarray:
    """The part of a full-frame image inside ``box`` (x0, y0, x1, y1), zeros where the box
    leaves the frame (as vid2vid's crop pads)."""
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, *image.shape[2:]), image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


class FrameCache:
    """What the preview needs from each reference frame, kept for every preview drawn on
    that reference (a batch shares it): its Canny edges over a region around the face
    (the face box grown by half its side each way, so that inside any face box of the
    batch the edges are the frame's own), and its cropped panel per face box. Within a
    memory budget; beyond it, recomputed."""

    def __init__(self, reference, budget_bytes: int = PREVIEW_CACHE_BYTES) -> None:
        self.reference = reference
        self.budget = budget_bytes
        self.used = 0
        self.region: tuple[int, int, int, int] | None = None
        self.edges: dict[int, np.ndarray] = {}  # index -> packed Canny bits of the region
        self.panels: dict[tuple, np.ndarray] = {}  # (index, box, size) -> RGB panel

    def _keep(self, store: dict, key, value: np.ndarray) -> None:
        if self.used + value.nbytes <= self.budget:
            store[key] = value
            self.used += value.nbytes

    def _region_for(self, box) -> tuple[int, int, int, int]:
        width, height = self.reference.size
        x0, y0, x1, y1 = box
        grow = (x1 - x0) // 2
        return max(x0 - grow, 0), max(y0 - grow, 0), min(x1 + grow, width), min(y1 + grow, height)

    def canny(self, index: int, box) -> np.ndarray:
        """(box height, box width) bool: the frame's Canny edges inside ``box``."""
        from wav2kp.edgemap import canny_edges

        if self.region is None:
            self.region = self._region_for(box)
        rx0, ry0, rx1, ry1 = self.region
        width, height = self.reference.size
        inside = (
            max(box[0], 0) >= rx0 and max(box[1], 0) >= ry0
            and min(box[2], width) <= rx1 and min(box[3], height) <= ry1
        )  # fmt: skip
        if not inside:  # a face far from the first one: its own box, not kept
            return window(canny_edges(self.reference.image(index), box), box)
        shape = (ry1 - ry0, rx1 - rx0)
        bits = self.edges.get(index)
        if bits is None:
            edges = canny_edges(self.reference.image(index), self.region)[ry0:ry1, rx0:rx1]
            bits = np.packbits(edges)
            self._keep(self.edges, index, bits)
        else:
            edges = np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)
        x0, y0, x1, y1 = box
        out = np.zeros((y1 - y0, x1 - x0), bool)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = edges[
                sy0 - ry0 : sy1 - ry0, sx0 - rx0 : sx1 - rx0
            ]
        return out

    def panel(self, index: int, box, size: int) -> np.ndarray:
        """(size, size, 3) RGB: the frame cropped to ``box`` and resized (vid2vid's crop)."""
        import cv2

        key = (index, tuple(box), size)
        panel = self.panels.get(key)
        if panel is None:
            panel = cv2.resize(window(self.reference.image(index), box), (size, size),
                               interpolation=cv2.INTER_LINEAR)  # fmt: skip
            self._keep(self.panels, key, panel)
        return panel


class PreviewRenderer:
    """Preview frames: [reference frame with keypoints |] vid2vid's edge map (Canny
    background from the reference frame included), both cropped with vid2vid's face box
    (set on the first frame and kept, as vid2vid does)."""

    def __init__(self, reference, box, panel: int = PREVIEW_PANEL,
                 cache: FrameCache | None = None) -> None:  # fmt: skip
        self.reference = reference
        self.box = tuple(int(v) for v in box)
        self.panel = panel
        self.cache = cache if cache is not None else FrameCache(reference)

    def frame_parts(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(panel RGB of the reference frame, its Canny edges inside the box)."""
        return self.cache.panel(index, self.box, self.panel), self.cache.canny(index, self.box)

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


def preview_frames(
    composition, reference, panel: int = PREVIEW_PANEL, with_reference=True, cache=None
):
    """RGB preview frames (see :class:`PreviewRenderer`)."""
    renderer = PreviewRenderer(reference, preview_box(composition, reference), panel, cache)
    return renderer.frames(composition, with_reference=with_reference)


def write_preview(
    path, composition, reference, audio, sample_rate, fps, with_reference=True, seconds=None,
    cache: FrameCache | None = None,
):  # fmt: skip
    """The preview mp4 with the speech; ``seconds`` limits it to the first seconds;
    ``cache``: a :class:`FrameCache` of this reference shared with other previews."""
    from wav2kp.media.encode import write_video

    n_frames = len(composition.landmarks)
    if seconds is not None:
        n_frames = max(1, min(n_frames, int(np.ceil(float(seconds) * fps))))
        audio = audio[: int(round(n_frames / fps * sample_rate))]
    renderer = PreviewRenderer(reference, preview_box(composition, reference), cache=cache)
    frames = renderer.frames(composition, n_frames, with_reference=with_reference)
    return write_video(path, frames, fps=fps, audio=audio, sample_rate=sample_rate)
