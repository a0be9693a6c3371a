"""An ipywidgets explorer for notebooks: pick a clip, scrub frames, compare keypoints.

The frame view overlays true keypoints (green) and each model's prediction (own colour)
on the video frame, or shows the vid2vid edge maps side by side; the clip's audio plays
in the browser. Everything is drawn with OpenCV into a PNG, so the widget also builds
and updates headless (tests drive the slider programmatically).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# a clip to draw: a ``wav2kp.windowing.dataset.ClipData``, taken by its fields (plots sit
# below the stages, so they import none of them)
ClipData = Any


TRUE_COLOR = (60, 220, 90)
MODEL_COLORS = ((255, 50, 50), (80, 170, 255), (255, 200, 40), (220, 90, 255), (40, 230, 230))
VIEW_SIZE = 384

# point index ranges drawn as polylines (closed where the part is a loop)
_POLYLINES = (
    (range(0, 17), False),
    (range(17, 22), False),
    (range(22, 27), False),
    (range(27, 31), False),
    (range(31, 36), False),
    (range(36, 42), True),
    (range(42, 48), True),
    (range(48, 60), True),
    (range(60, 68), True),
)

FrameSource = Callable[[ClipData, int], "np.ndarray | None"]


def frames_folder_source(frames_root: str | os.PathLike) -> FrameSource:
    """Frames kept by extraction: ``<frames_root>/<clip_id>/*.jpg`` (sorted, one per frame)."""
    frames_root = Path(frames_root)
    cache: dict[str, list[Path]] = {}

    def source(clip: ClipData, index: int) -> np.ndarray | None:
        if clip.clip_id not in cache:
            folder = frames_root / clip.clip_id
            cache[clip.clip_id] = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
        paths = cache[clip.clip_id]
        if index >= len(paths):
            return None
        image = cv2.imread(str(paths[index]), cv2.IMREAD_COLOR)
        return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    return source


def video_file_source(video_for: Callable[[ClipData], str | os.PathLike | None]) -> FrameSource:
    """Frames read on demand from each clip's video file (OpenCV seek by frame index)."""

    def source(clip: ClipData, index: int) -> np.ndarray | None:
        path = video_for(clip)
        if path is None or not Path(path).is_file():
            return None
        capture = cv2.VideoCapture(str(path))
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
        finally:
            capture.release()
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None

    return source


def draw_keypoints(
    image: np.ndarray, points: np.ndarray, color, radius: int = 2, thickness: int = 1
) -> np.ndarray:
    """Draw one 68-point face (dots and part polylines) onto an RGB image in place;
    missing (NaN) points are skipped."""
    points = np.asarray(points, dtype=np.float64)
    for indices, closed in _POLYLINES:
        part = points[list(indices)]
        ok = np.isfinite(part).all(axis=1)
        if ok.all():
            cv2.polylines(
                image, [np.rint(part).astype(np.int32)], closed, color, thickness, cv2.LINE_AA
            )
    for x, y in points[np.isfinite(points).all(axis=1)]:
        cv2.circle(image, (int(round(x)), int(round(y))), radius, color, -1, cv2.LINE_AA)
    return image


def _view_box(clip: ClipData) -> tuple[int, int, int, int]:
    """A square around the clip's faces (vid2vid's crop rule on the first complete frame),
    or the whole frame when no face is known."""
    from wav2kp.plots.edgemap import crop_box, first_complete_frame

    try:
        return crop_box(clip.landmarks[first_complete_frame(clip.landmarks)], clip.frame_size)
    except ValueError:
        width, height = clip.frame_size
        side = max(width, height)
        return 0, 0, side, side


def render_overlay(
    clip: ClipData,
    index: int,
    predictions: Mapping[str, np.ndarray],
    frame: np.ndarray | None = None,
    size: int = VIEW_SIZE,
) -> np.ndarray:
    """RGB (size, size): the frame (or a dark canvas) around the face with the true and
    predicted keypoints of frame ``index`` drawn over it, and a legend."""
    from wav2kp.plots.edgemap import crop_and_resize

    width, height = clip.frame_size
    canvas = frame if frame is not None else np.full((height, width, 3), 40, np.uint8)
    canvas = np.ascontiguousarray(canvas, dtype=np.uint8).copy()
    # line width in source pixels so that lines stay visible after the crop is resized
    box = _view_box(clip)
    thickness = max(1, int(round(1.2 * (box[2] - box[0]) / size)))
    if clip.valid[index]:
        # truth wide underneath, predictions thin on top: both stay visible where they agree
        draw_keypoints(canvas, clip.landmarks[index], TRUE_COLOR, thickness + 1, 2 * thickness)
    for color, points in zip(MODEL_COLORS, predictions.values(), strict=False):
        draw_keypoints(canvas, points[index], color, thickness + 1, thickness)
    view = crop_and_resize(canvas, box, size)
    labels = [("true" if clip.valid[index] else "true: missing", TRUE_COLOR)]
    labels += list(zip(predictions, MODEL_COLORS, strict=False))
    for row, (text, color) in enumerate(labels):
        cv2.putText(view, text, (8, 18 + 18 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1,
                    cv2.LINE_AA)  # fmt: skip
    t = float(clip.frame_times[index])
    cv2.putText(view, f"{clip.clip_id}  frame {index}  {t:6.2f} s", (8, size - 10),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)  # fmt: skip
    return view


def render_edge_maps(
    clip: ClipData, index: int, predictions: Mapping[str, np.ndarray], size: int = VIEW_SIZE // 2
) -> np.ndarray:
    """RGB strip of vid2vid edge maps (true, then each model) for frame ``index``, cropped
    with vid2vid's face box."""
    from wav2kp.plots.edgemap import crop_and_resize, draw_edge_map

    box = _view_box(clip)
    panels = []
    faces = [("true", TRUE_COLOR, clip.landmarks[index] if clip.valid[index] else None)]
    faces += [
        (name, c, p[index]) for (name, p), c in zip(predictions.items(), MODEL_COLORS, strict=False)
    ]
    for name, color, points in faces:
        if points is None or not np.isfinite(points).all():
            panel = np.zeros((size, size, 3), np.uint8)
        else:
            edges = crop_and_resize(draw_edge_map(points, clip.frame_size), box, size)
            panel = (edges[..., None] / 255.0 * np.asarray(color)).astype(np.uint8)
        cv2.putText(panel, name, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
        panels.append(panel)
    return np.hstack(panels)


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("could not encode the explorer view as PNG")
    return data.tobytes()


def _wav_bytes(path: str | os.PathLike | None) -> bytes | None:
    if path is None or not Path(path).is_file():
        return None
    import soundfile as sf

    samples, rate = sf.read(str(path), dtype="int16")
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class KeypointExplorer:
    """The widget: clip dropdown, frame slider, overlay/edge-map view, audio player.

    ``predictions`` maps a model name to ``{clip_id: (T, 68, 2) pixels}``. ``frame_source``
    returns a clip's frame ``i`` as RGB (or None); see :func:`frames_folder_source`,
    :func:`video_file_source`. Use ``.widget`` to display it (or ``display(explorer)``).
    """

    def __init__(
        self,
        clips: Sequence[ClipData],
        predictions: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        frame_source: FrameSource | None = None,
        size: int = VIEW_SIZE,
    ) -> None:
        import ipywidgets as widgets

        if not clips:
            raise ValueError("the explorer needs at least one clip")
        self.clips = {clip.clip_id: clip for clip in clips}
        self.predictions = {name: dict(by_clip) for name, by_clip in (predictions or {}).items()}
        for name, by_clip in self.predictions.items():
            for clip_id, points in by_clip.items():
                clip = self.clips.get(clip_id)
                if clip is not None and np.shape(points) != clip.landmarks.shape:
                    raise ValueError(
                        f"{name} / {clip_id}: prediction shape {np.shape(points)} does not "
                        f"match the clip's {clip.landmarks.shape}"
                    )
        self.frame_source = frame_source
        self.size = size
        self.clip_picker = widgets.Dropdown(options=list(self.clips), description="clip")
        self.frame_slider = widgets.IntSlider(
            value=0, min=0, max=0, description="frame", continuous_update=True
        )
        self.play = widgets.Play(interval=int(1000 / 30), min=0, max=0, step=1)
        widgets.jslink((self.play, "value"), (self.frame_slider, "value"))
        self.show_edges = widgets.Checkbox(value=False, description="vid2vid edge maps")
        self.image = widgets.Image(format="png", width=size)
        self.edges_image = widgets.Image(format="png")
        self.audio = widgets.Audio(format="wav", autoplay=False, loop=False)
        self.status = widgets.HTML()
        self.clip_picker.observe(self._on_clip, names="value")
        self.frame_slider.observe(self._on_frame, names="value")
        self.show_edges.observe(self._on_frame, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.clip_picker, self.show_edges]),
                widgets.HBox([self.play, self.frame_slider]),
                self.image,
                self.edges_image,
                self.audio,
                self.status,
            ]
        )
        self._on_clip()

    @property
    def clip(self) -> ClipData:
        return self.clips[self.clip_picker.value]

    def clip_predictions(self, clip: ClipData) -> dict[str, np.ndarray]:
        return {
            name: np.asarray(by_clip[clip.clip_id])
            for name, by_clip in self.predictions.items()
            if clip.clip_id in by_clip
        }

    def _on_clip(self, *_):
        clip = self.clip
        last = max(clip.n_frames - 1, 0)
        self.frame_slider.value = min(self.frame_slider.value, last)
        self.frame_slider.max = last
        self.play.max = last
        wav = _wav_bytes(clip.audio_path)
        if wav is not None:
            self.audio.value = wav
        self.audio.layout.display = None if wav is not None else "none"
        self.render()

    def _on_frame(self, *_):
        self.render()

    def select(self, clip_id: str, frame: int = 0) -> None:
        """Show ``clip_id`` at ``frame`` (what the dropdown and slider do)."""
        self.clip_picker.value = clip_id
        self.frame_slider.value = int(frame)
        self.render()

    def render(self) -> np.ndarray:
        """Redraw the current frame; returns the overlay image (RGB)."""
        clip = self.clip
        index = int(self.frame_slider.value)
        predictions = self.clip_predictions(clip)
        frame = self.frame_source(clip, index) if self.frame_source is not None else None
        if frame is not None and frame.shape[:2] != tuple(clip.frame_size)[::-1]:
            frame = None  # a mismatched image would misplace the keypoints
        view = render_overlay(clip, index, predictions, frame, self.size)
        self.image.value = _png(view)
        if self.show_edges.value:
            self.edges_image.value = _png(render_edge_maps(clip, index, predictions))
            self.edges_image.layout.display = None
        else:
            self.edges_image.layout.display = "none"
        source = "video frame" if frame is not None else "no video frame (dark canvas)"
        self.status.value = (
            f"<small>{clip.clip_id}: {clip.n_frames} frames, {source}; "
            f"true keypoints {'present' if clip.valid[index] else 'missing'}</small>"
        )
        self.last_view = view
        return view

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
