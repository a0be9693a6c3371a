"""The preview video: what vid2vid's generator gets, with the speech.

Each preview frame is [the real frame with the keypoints |] the edge channel, both as
vid2vid's face model hands them to its generator: on the exported canvas
(``wav2kp.handoff.vid2vid.plan_canvas``, where vid2vid's crop fits exactly), cropped with the box
set on the first frame and resized to the generator size, then shrunk to the panel.

Fast on long files and batches: drawing happens inside the crop box only (the only part
the generator sees; the box fits the canvas, so this is vid2vid's numpy crop), and what
depends on the reference frame alone (its decoded image, Canny edges, cropped panel) is
done once per distinct reference frame and shared by every preview on that reference
(:class:`FrameCache`; a looped reference revisits its frames). The edge panel is bit for
bit ``edgemap.generator_input(...).edges`` shrunk to the panel (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PREVIEW_PANEL = 256
PREVIEW_CACHE_BYTES = 256 << 20
PREVIEW_CRF = 28  # H.264 quality of the preview: near-identical to 20 at 40 % of the size


@dataclass
class GeneratorView:
    """One sequence as vid2vid's generator will see it."""

    size: tuple[int, int]  # (width, height) of the exported frames (the canvas)
    box: tuple[int, int, int, int]  # vid2vid's crop, set on the first frame
    landmarks: np.ndarray  # (T, 68, 2) int: the keypoint files' content
    frame_keys: np.ndarray  # (T,) equal keys show the same image (the reference frame)
    image: Callable[[int], np.ndarray]  # RGB exported frame of output frame i
    canvas_key: tuple  # identifies the canvas: frames of equal keys can be shared
    load_size: int

    @classmethod
    def from_export(cls, export) -> GeneratorView:
        """Read back from an exported vid2vid folder (``wav2kp.handoff.vid2vid.Vid2vidExport``):
        the images decoded as vid2vid decodes them (PIL)."""
        from PIL import Image

        def image(i: int) -> np.ndarray:
            with Image.open(export.image_path(i)) as picture:
                return np.asarray(picture.convert("RGB"))

        canvas = export.canvas
        return cls(tuple(canvas.size), tuple(export.crop_box), np.asarray(export.landmarks),
                   np.asarray(export.frame_keys), image, _canvas_key(canvas),
                   canvas.load_size)  # fmt: skip

    @classmethod
    def from_composition(cls, composition, reference) -> GeneratorView:
        """The view an export of ``composition`` would give (no files written)."""
        from wav2kp.handoff import vid2vid
        from wav2kp.plots import edgemap

        canvas = vid2vid.plan_canvas(composition.landmarks[0], reference.size)
        points = vid2vid.to_vid2vid_ints_all(canvas.to_export(composition.landmarks))
        keys = np.asarray(composition.reference_index, dtype=int)
        if not reference.frame_paths:
            keys = np.zeros(len(keys), int)

        def image(i: int) -> np.ndarray:
            return canvas.warp(reference.image(int(composition.reference_index[i])))

        box = edgemap.crop_box(points[0], canvas.size)
        return cls(tuple(canvas.size), box, points, keys, image, _canvas_key(canvas),
                   canvas.load_size)  # fmt: skip


def _canvas_key(canvas) -> tuple:
    return (tuple(canvas.reference_size), tuple(canvas.size), float(canvas.scale),
            tuple(canvas.offset))  # fmt: skip


class FrameCache:
    """What the preview needs from each exported frame, kept for every preview of the
    session (a batch shares it): its Canny edges inside the crop box and its crop as a
    preview panel, per (canvas, frame key, box). Within a memory budget; beyond it,
    recomputed."""

    def __init__(self, budget_bytes: int = PREVIEW_CACHE_BYTES) -> None:
        self.budget = budget_bytes
        self.used = 0
        self.items: dict[tuple, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}

    def get(
        self, view: GeneratorView, i: int, out_size, panel: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(frame ``i`` as the generator's real-frame crop, shrunk to ``panel``; its Canny
        edges inside the box)."""
        import cv2

        from wav2kp.plots import edgemap

        key = (view.canvas_key, _key(view.frame_keys[i]), view.box, tuple(out_size), panel)
        item = self.items.get(key)
        if item is not None:
            image, bits, shape = item
            return image, np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)
        frame = view.image(i)
        x0, y0, x1, y1 = view.box
        edges = edgemap.canny_edges(frame)[y0:y1, x0:x1]  # the box fits: vid2vid's crop
        image = edgemap.pil_resize(edgemap.pil_crop(frame, view.box), out_size, "bicubic")
        image = cv2.resize(image, (panel, panel), interpolation=cv2.INTER_AREA)
        bits = np.packbits(edges)
        if self.used + image.nbytes + bits.nbytes <= self.budget:
            self.items[key] = (image, bits, edges.shape)
            self.used += image.nbytes + bits.nbytes
        return image, edges


def _key(value):
    return value.item() if isinstance(value, np.generic) else value


def edge_window(points: np.ndarray, size, box, canny: np.ndarray) -> np.ndarray:
    """vid2vid's full-resolution edge map of ``points`` inside ``box`` (which fits the
    frame): face curves with its 2x2 brush (clipped to the frame), plus the frame's
    Canny edges outside the face parts, added on uint8 as vid2vid adds them."""
    import cv2

    from wav2kp.plots import edgemap

    width, height = size
    x0, y0, x1, y1 = box
    window = np.zeros((y1 - y0, x1 - x0), np.uint8)
    curves = [curve for edge in edgemap.edge_curves(points) for curve in edge]
    if curves:
        xs = np.concatenate([c[0] for c in curves])
        ys = np.concatenate([c[1] for c in curves])
        half = edgemap.LINE_HALF_WIDTH
        for dy in range(-half, half):
            for dx in range(-half, half):
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
                cv2.fillPoly(labels, [polygon.astype(np.int32)], color=label, offset=(-x0, -y0))
        window = window + ((canny & (labels == 0)) * 255).astype(np.uint8)  # uint8 wrap
    return window


class PreviewRenderer:
    """Preview frames of one :class:`GeneratorView`."""

    def __init__(self, view: GeneratorView, panel: int = PREVIEW_PANEL,
                 cache: FrameCache | None = None) -> None:  # fmt: skip
        from wav2kp.plots import edgemap

        if not edgemap.crop_fits(view.box, view.size):
            raise ValueError(f"vid2vid's crop {view.box} does not fit the {view.size} canvas")
        self.view = view
        self.panel = panel
        self.cache = cache if cache is not None else FrameCache()
        x0, y0, x1, y1 = view.box
        self.out_size = edgemap.generator_size((x1 - x0, y1 - y0), view.load_size)

    def edges(self, i: int, canny: np.ndarray | None = None) -> np.ndarray:
        """The generator's edge channel of frame ``i`` (generator size)."""
        from wav2kp.plots import edgemap

        view = self.view
        if canny is None:
            _, canny = self.cache.get(view, i, self.out_size, self.panel)
        window = edge_window(view.landmarks[i], view.size, view.box, canny)
        if window.shape[::-1] != tuple(self.out_size):
            window = edgemap.pil_resize(window, self.out_size)
        return window

    def frames(self, n_frames: int | None = None, with_reference: bool = True):
        import cv2

        from wav2kp.plots.explorer import draw_keypoints

        view = self.view
        x0, y0, x1, y1 = view.box
        scale = self.panel / max(x1 - x0, 1)
        n_frames = len(view.landmarks) if n_frames is None else min(n_frames, len(view.landmarks))
        size = (self.panel, self.panel)
        for i in range(n_frames):
            image, canny = self.cache.get(view, i, self.out_size, self.panel)
            edges = cv2.resize(self.edges(i, canny), size, interpolation=cv2.INTER_AREA)
            edge_rgb = cv2.cvtColor(edges, cv2.COLOR_GRAY2RGB)
            if not with_reference:
                yield edge_rgb
                continue
            shown = draw_keypoints(image.copy(), (view.landmarks[i] - (x0, y0)) * scale,
                                   (80, 255, 120), radius=1)  # fmt: skip
            yield np.hstack([shown, edge_rgb])


def preview_frames(view: GeneratorView, panel: int = PREVIEW_PANEL, with_reference=True,
                   cache: FrameCache | None = None):  # fmt: skip
    """RGB preview frames (see :class:`PreviewRenderer`)."""
    return PreviewRenderer(view, panel, cache).frames(with_reference=with_reference)


def write_preview(
    path: str | Path, view: GeneratorView, audio, sample_rate, fps, with_reference=True,
    seconds=None, cache: FrameCache | None = None,
):  # fmt: skip
    """The preview mp4 with the speech; ``seconds`` limits it to the first seconds;
    ``cache``: a :class:`FrameCache` shared with other previews of the same reference."""
    from wav2kp.media.encode import write_video

    n_frames = len(view.landmarks)
    if seconds is not None:
        n_frames = max(1, min(n_frames, int(np.ceil(float(seconds) * fps))))
        audio = audio[: int(round(n_frames / fps * sample_rate))]
    frames = PreviewRenderer(view, cache=cache).frames(n_frames, with_reference=with_reference)
    return write_video(path, frames, fps=fps, audio=audio, sample_rate=sample_rate, crf=PREVIEW_CRF)
