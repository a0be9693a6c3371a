"""Real video | face, for the report: the face that ``--format face`` renders from
predicted keypoints (``wav2kp.handoff.face``), beside the real video of the same speech,
with that speech (notebooks 05 and 06; the diary shows them first among a run's videos).

Two views of held-out sentences:

- a test clip (notebook 05, :func:`write_clip_face`): its own first seconds, the lower
  face warped onto the keypoints the model predicted from the clip's audio. Same head,
  same frames: only what the model predicted (mouth, jaw) differs between the panels;
- the hand-off (notebook 06, :func:`write_handoff_face`): the real video of the speech
  clip beside ``face.mp4``, the same speech rendered on the reference clip's head.

Each panel is cropped with vid2vid's face box (set on the first complete frame) and
resized to 256 px, like the line drawings of ``wav2kp.plots.render``, and clips are
short (:data:`CLIP_SECONDS`): the report must stay fast.

Faces are never rendered of the people in ``../shared/realclips``: its README forbids
making talking videos of them (:func:`face_refusal`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wav2kp.handoff import face as face_render
from wav2kp.handoff import vid2vid
from wav2kp.handoff.exports import FACE_FILE

COMPARISON_SUFFIX = "_real_vs_face.mp4"  # how the report's comparison videos are named
PANEL_LABELS = ("real video", "face (predicted)")
CLIP_SECONDS = 3.0  # length of a test clip's comparison (its first seconds)


def is_face_video(path: str | os.PathLike) -> bool:
    """Whether a report video shows a rendered face (a comparison or ``face.mp4``)."""
    name = Path(path).name
    return name.endswith(COMPARISON_SUFFIX) or name == FACE_FILE


def face_refusal(*videos: str | os.PathLike | None) -> str | None:
    """None when faces may be rendered from these videos, else why not (one line):
    the people in ``../shared/realclips`` must not be made to talk (its README)."""
    from wav2kp.paths import shared_realclips

    forbidden = shared_realclips().resolve()
    for video in videos:
        if video is None:
            continue
        path = Path(video).resolve()
        if path == forbidden or forbidden in path.parents:
            return (
                f"{video}: no face is rendered of the people in {forbidden} (its README "
                "forbids making talking videos of them)"
            )
    return None


def check_faces_allowed(*videos: str | os.PathLike | None) -> None:
    reason = face_refusal(*videos)
    if reason:
        raise face_render.FaceRenderError(reason)


@dataclass
class DecodedTrack(vid2vid.ReferenceTrack):
    """A reference track whose frames are decoded images in memory (a few seconds of a
    clip), not files."""

    images: list[np.ndarray] = field(default_factory=list)

    def frame(self, index: int) -> np.ndarray:
        return self.images[index]


def load_clip_track(
    npz_path: str | os.PathLike, video: str | os.PathLike, seconds: float = CLIP_SECONDS
) -> tuple[DecodedTrack, np.ndarray | None]:
    """The first ``seconds`` of an extracted clip as a track with its frames decoded
    from ``video``, and its MediaPipe mesh (None when the extraction has none)."""
    from wav2kp.media.decode import iter_frames

    npz_path = Path(npz_path)
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            times = np.asarray(data["times"], dtype=np.float64)
            lm68 = np.asarray(data["lm68"], dtype=np.float64)
            mesh = np.asarray(data["lm478"], dtype=np.float64) if "lm478" in data else None
            missing = np.asarray(data["frame_status"]) == 2 if "frame_status" in data else None
            size = (int(data["width"]), int(data["height"]))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{npz_path}: not a readable extraction result ({error})") from error
    if len(times) == 0:
        raise ValueError(f"{npz_path}: the extraction has no frame")
    if missing is not None:
        lm68[missing] = np.nan
        if mesh is not None:
            mesh[missing] = np.nan
    n = max(1, int(np.searchsorted(times, times[0] + seconds - 1e-9)))
    images = []
    decoded = iter_frames(video)
    try:
        for _, rgb in decoded:
            images.append(rgb)
            if len(images) == n:
                break
    finally:
        decoded.close()
    if len(images) < n:
        raise ValueError(f"{video}: decoded {len(images)} frames, {npz_path.name} has {n}")
    track = DecodedTrack(npz_path.stem, times[:n], lm68[:n], size, images=images)
    return track, None if mesh is None else mesh[:n]


def fill_missing(points: np.ndarray) -> np.ndarray:
    """(T, 68, 2) points with frames that are not complete interpolated over time from
    the complete ones (held at the ends); ValueError when no frame is complete."""
    points = np.asarray(points, dtype=np.float64)
    complete = np.isfinite(points).all(axis=(1, 2))
    if not complete.any():
        raise ValueError("no frame has all 68 points")
    if complete.all():
        return points
    frames = np.arange(len(points))
    flat = points.reshape(len(points), -1)
    filled = np.stack([np.interp(frames, frames[complete], flat[complete, k])
                       for k in range(flat.shape[1])], axis=1)  # fmt: skip
    return filled.reshape(points.shape)


def resample_points(times: np.ndarray, points: np.ndarray, at: np.ndarray) -> np.ndarray:
    """(len(at), 68, 2): ``points`` (T, 68, 2) at ``times`` linearly resampled at ``at``."""
    points = fill_missing(points)
    flat = points.reshape(len(points), -1)
    out = np.stack([np.interp(at, times, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(len(at), 68, 2)


def comparison_frames(
    real: Iterable[np.ndarray], face: Iterable[np.ndarray], real_box, face_box,
    labels: Sequence[str] = PANEL_LABELS,
):  # fmt: skip
    """Yield (32 + 256, 512, 3) RGB frames: each real frame | the face frame beside it,
    each cropped with its box (vid2vid's crop) and resized to 256 px, labelled."""
    from wav2kp.plots.edgemap import crop_and_resize
    from wav2kp.plots.render import PANEL, label_panel

    for left, right in zip(real, face, strict=False):
        yield np.hstack([
            label_panel(crop_and_resize(np.asarray(left, np.uint8), real_box, PANEL), labels[0]),
            label_panel(crop_and_resize(np.asarray(right, np.uint8), face_box, PANEL), labels[1]),
        ])  # fmt: skip


def _box(points: np.ndarray, size) -> tuple[int, int, int, int]:
    from wav2kp.plots.edgemap import crop_box, first_complete_frame

    return crop_box(points[first_complete_frame(points)], size)


def _audio_span(audio_path, start: float, seconds: float):
    """(samples, rate) of ``audio_path`` from ``start`` for ``seconds``, or (None, None)."""
    from wav2kp.plots.render import load_waveform

    if audio_path is None or not Path(audio_path).is_file():
        return None, None
    audio, rate = load_waveform(audio_path)
    first = max(0, int(round(start * rate)))
    audio = audio[first : first + int(round(seconds * rate))]
    return (audio, rate) if len(audio) else (None, None)


def write_clip_face(
    path: str | os.PathLike, npz_path: str | os.PathLike, video: str | os.PathLike,
    times: np.ndarray, predicted: np.ndarray, audio_path: str | os.PathLike | None = None,
    seconds: float = CLIP_SECONDS,
) -> face_render.FaceFrames:  # fmt: skip
    """Real video | face of a clip's first ``seconds``: its own frames, the lower face
    warped onto ``predicted`` (T, 68, 2 pixels of the clip's frame at ``times``: a
    model's prediction from this clip's audio), with the clip's audio. Returns what was
    rendered (``targets``: the predicted points on the video's frames)."""
    from wav2kp.media.encode import as_fraction, write_video

    check_faces_allowed(video)
    track, mesh = load_clip_track(npz_path, video, seconds)
    renderer = face_render.FaceRenderer(track, mesh)
    targets = resample_points(np.asarray(times, np.float64), predicted, track.times)
    shown = np.arange(track.n_frames)
    rate = as_fraction(face_render.reference_rate(track.times)).limit_denominator(1001)
    plan = face_render.FaceFrames(
        track.times, shown, renderer.choose_mouths(targets, shown), targets, float(rate),
        renderer.size,
    )  # fmt: skip
    box = _box(np.where(np.isfinite(track.landmarks), track.landmarks, np.nan), track.size)
    frames = comparison_frames((renderer.image(i) for i in shown), renderer.frames(plan), box, box)
    duration = len(shown) / float(rate)
    audio, sample_rate = _audio_span(audio_path, float(track.times[0]), duration)
    write_video(path, frames, fps=rate, audio=audio, sample_rate=sample_rate)
    return plan


def write_handoff_face(
    path: str | os.PathLike, speech_video: str | os.PathLike, speech_points: np.ndarray,
    speech_size, face_video: str | os.PathLike, face_points: np.ndarray, face_size,
    audio_path: str | os.PathLike | None = None,
) -> Path:  # fmt: skip
    """Real video of the speech clip | ``face.mp4`` (the same speech rendered on another
    head), frame by frame on the face video's timeline, with the speech. Each panel is
    cropped with the box of its own points (``speech_points``: the speech clip's track;
    ``face_points``: the keypoints the face was rendered onto)."""
    from wav2kp.media.decode import iter_frames
    from wav2kp.media.encode import as_fraction, write_video
    from wav2kp.media.probe import probe
    from wav2kp.plots.render import frames_at_times

    check_faces_allowed(speech_video)
    info = probe(face_video)
    face_frames = [rgb for _, rgb in iter_frames(face_video)]
    if not face_frames:
        raise ValueError(f"{face_video}: no video frame could be decoded")
    if not info.fps:
        raise ValueError(f"{face_video}: no frame rate")
    rate = as_fraction(info.fps).limit_denominator(1001)
    times = np.arange(len(face_frames)) / float(rate)
    real = frames_at_times(speech_video, times)
    frames = comparison_frames(
        real, face_frames, _box(np.asarray(speech_points, np.float64), speech_size),
        _box(np.asarray(face_points, np.float64), face_size),
    )  # fmt: skip
    audio, sample_rate = _audio_span(audio_path, 0.0, len(face_frames) / float(rate))
    return write_video(path, frames, fps=rate, audio=audio, sample_rate=sample_rate)


def write_evaluation_faces(
    clips: Sequence, predictor, corpus: str, folder: str | os.PathLike,
    seconds: float = CLIP_SECONDS,
) -> tuple[list[Path], list[str]]:  # fmt: skip
    """:func:`write_clip_face` of each held-out clip (``wav2kp.windowing.dataset.ClipData``)
    with ``predictor``'s keypoints from its audio, as ``<clip_id>_real_vs_face.mp4`` in
    ``folder`` (an existing one is kept: a resumed run skips it). Returns (the videos,
    one line per clip that could not be rendered)."""
    from wav2kp.extraction.extract import source_video
    from wav2kp.paths import CorpusPaths

    paths = CorpusPaths(corpus)
    written, problems = [], []
    for clip in clips:
        target = Path(folder) / f"{clip.clip_id}{COMPARISON_SUFFIX}"
        if target.is_file():
            written.append(target)
            continue
        try:
            video = source_video(paths, clip.clip_id)
            if video is None:
                raise ValueError(f"no source video found (corpus {corpus})")
            write_clip_face(
                target, paths.extracted / f"{clip.clip_id}.npz", video, clip.frame_times,
                predictor.predict_landmarks(clip), clip.audio_path, seconds,
            )  # fmt: skip
            written.append(target)
        except (ValueError, OSError, face_render.FaceRenderError) as error:
            problems.append(f"face for {clip.clip_id}: {error}")
    return written, problems
