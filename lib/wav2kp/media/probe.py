"""What is inside a media file, read through PyAV (libavformat's own stream fields, no
text parsing).

``probe(path)`` gives the first video and audio stream: codec, displayed size (rotation
applied, as the decoder applies it), nominal fps, container and per-stream durations and
start times, and audio rate/channels. The nominal fps is only a hint: frame times come
from the decoded stream (``decode``).

All times are seconds on the container's timeline shifted to start at 0 (the container
start is the earliest start of any stream), the origin of the decoded frame times and of
the extracted audio.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from wav2kp.media.encode import ffmpeg_exe  # noqa: F401  (re-exported: tests build inputs)


class MediaError(RuntimeError):
    """A media file that cannot be used; the message names the file and the cause."""


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float | None  # seconds, container duration (None when unknown)
    start_time: float  # seconds, container start on the file's own clock
    has_video: bool
    video_codec: str | None
    width: int | None  # displayed width (after rotation)
    height: int | None
    rotation: int  # degrees counter-clockwise the decoder turns frames upright (0/90/180/270)
    fps: float | None  # nominal rate as reported; VFR clips: use decoded timestamps
    has_audio: bool
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    # per stream, on the shifted timeline (None when the container does not say)
    video_start: float | None = None
    video_duration: float | None = None
    video_frames: int | None = None  # frame count from the container's index, if it has one
    audio_start: float | None = None
    audio_duration: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def video_end(self) -> float | None:
        if self.video_duration is None:
            return None
        return (self.video_start or 0.0) + self.video_duration

    @property
    def audio_end(self) -> float | None:
        if self.audio_duration is None:
            return None
        return (self.audio_start or 0.0) + self.audio_duration


def open_container(path: str | os.PathLike):
    """``av.open`` for reading, with a one-line ``MediaError`` naming the file (and, on
    failure, libavformat's specific complaint such as 'moov atom not found')."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as error:
        reason = _specific_open_error(path) or _short(error)
        raise MediaError(f"{path}: cannot open as media ({reason})") from None


def _short(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return re.sub(r"\s+", " ", str(text)).strip()[:240]


def _specific_open_error(path: Path) -> str:
    """libav's own messages while opening, captured on this failure path only: PyAV keeps
    libav logging off by default (it contends for locks in threaded decoding), so its
    exceptions carry only the generic errno text."""
    import av
    import av.logging

    previous, skipping = av.logging.get_level(), av.logging.get_skip_repeated()
    messages: list = []
    try:
        av.logging.set_level(av.logging.ERROR)
        av.logging.set_skip_repeated(False)  # the same complaint as for the last file counts
        with av.logging.Capture(local=True) as messages:
            try:
                av.open(str(path), mode="r").close()
            except (av.FFmpegError, OSError, ValueError):
                pass
    finally:
        av.logging.set_level(previous)
        av.logging.set_skip_repeated(skipping)
    texts = []
    for _level, _name, text in messages:
        text = text.strip()
        if text and text not in texts:
            texts.append(text)
    return "; ".join(texts[-2:])[:240]


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _stream_duration(stream) -> float | None:
    seconds = _seconds(stream.duration, stream.time_base)
    if seconds is not None and seconds > 0:
        return seconds
    # Matroska/WebM keep a per-stream duration only as a "DURATION" tag (HH:MM:SS.fraction)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag or "")
    if m:
        h, mi, s = m.groups()
        return int(h) * 3600 + int(mi) * 60 + float(s)
    return None


def is_attached_picture(stream) -> bool:
    """Cover art in an audio file shows up as a one-frame video stream: not a video."""
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def first_video_stream(container):
    return next((s for s in container.streams.video if not is_attached_picture(s)), None)


def display_matrix(frame) -> np.ndarray | None:
    """The 3x3 int32 display matrix a decoded frame carries (phone video), else None."""
    import av.sidedata.sidedata as side

    for data in frame.side_data:
        if data.type == side.Type.DISPLAYMATRIX:
            return np.frombuffer(bytes(data), dtype="<i4", count=9).reshape(3, 3).copy()
    return None


def upright_ops(matrix: np.ndarray | None) -> tuple[str, ...]:
    """The lossless steps that turn a decoded picture upright, chosen exactly as ffmpeg's
    command-line tool chooses its autorotate filters (fftools ``get_rotation`` and
    ``insert_filter``): 'transpose', 'rot90' (counter-clockwise), 'rot270', 'hflip',
    'vflip'. Angles that are not a multiple of 90 degrees are left alone (ffmpeg would
    resample them)."""
    if matrix is None:
        return ()
    m = matrix.reshape(-1).astype(np.float64)
    m[[0, 1, 3, 4]] /= 65536.0  # 16.16 fixed point
    scale_x, scale_y = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if scale_x == 0 or scale_y == 0:
        return ()
    # av_display_rotation_get() = -atan2(b, a); fftools negates it again and rounds
    theta = float(round(math.degrees(math.atan2(m[1] / scale_y, m[0] / scale_x))))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return ("transpose",) if m[3] > 0 else ("rot270",)  # cclock_flip / clock
    if abs(theta - 180) < 1:
        return tuple(op for op, flip in (("hflip", m[0] < 0), ("vflip", m[4] < 0)) if flip)
    if abs(theta - 270) < 1:
        return ("rot270", "vflip") if m[3] < 0 else ("rot90",)  # clock_flip / cclock
    if abs(theta) < 1 and m[4] < 0:
        return ("vflip",)
    return ()


def rotation_degrees(ops: tuple[str, ...]) -> int:
    """Counter-clockwise turn (0/90/180/270) that ``upright_ops`` applies, flips aside."""
    if "rot90" in ops:
        return 90
    if "rot270" in ops:
        return 270
    if "transpose" in ops:
        return 90
    if "hflip" in ops and "vflip" in ops:
        return 180
    return 0


def probe(path: str | os.PathLike) -> MediaInfo:
    """Streams of a media file; raises ``MediaError`` (naming the file) if unreadable.

    The video's rotation comes from the display matrix of its first decoded frame (where
    the decoder puts it), so a video whose first frame cannot be decoded reports 0."""
    path = Path(path)
    with open_container(path) as container:
        start_us = container.start_time if container.start_time is not None else 0
        origin = start_us / 1e6
        duration = container.duration / 1e6 if container.duration is not None else None
        video = first_video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None

        fields: dict = {"has_video": video is not None, "has_audio": audio is not None}
        if video is not None:
            width, height = video.codec_context.width, video.codec_context.height
            ops = _first_frame_upright_ops(container, video, path)
            if any(op in ops for op in ("transpose", "rot90", "rot270")):
                width, height = height, width
            rate = video.average_rate or video.guessed_rate or video.base_rate
            start = _seconds(video.start_time, video.time_base)
            fields.update(
                video_codec=video.codec_context.name,
                width=int(width) or None,
                height=int(height) or None,
                rotation=rotation_degrees(ops),
                fps=round(float(rate), 3) if rate else None,
                video_start=None if start is None else start - origin,
                video_duration=_stream_duration(video),
                video_frames=int(video.frames) or None,
            )
        if audio is not None:
            context = audio.codec_context
            start = _seconds(audio.start_time, audio.time_base)
            fields.update(
                audio_codec=context.name,
                audio_sample_rate=int(context.sample_rate) or None,
                audio_channels=int(context.layout.nb_channels) or None,
                audio_start=None if start is None else start - origin,
                audio_duration=_stream_duration(audio),
            )
    defaults = dict.fromkeys(
        ("video_codec", "width", "height", "fps", "audio_codec", "audio_sample_rate",
         "audio_channels"),
    )  # fmt: skip
    return MediaInfo(
        path=str(path),
        duration=duration,
        start_time=origin,
        **{"rotation": 0, **defaults, **fields},
    )


def _first_frame_upright_ops(container, video, path: Path) -> tuple[str, ...]:
    import av

    try:
        for frame in container.decode(video):
            return upright_ops(display_matrix(frame))
    except av.FFmpegError:
        pass  # undecodable: decoding reports it; the probe stays a probe
    return ()


def has_video_stream(path: str | os.PathLike) -> bool:
    """True when ``path`` is a file libavformat opens with a real video stream, in any
    container it reads (mp4, mov, mkv, webm, avi, mpg/vob, ts, flv, ...; cover art in an
    audio file does not count). Never raises: anything unreadable is simply not a video."""
    import av

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with av.open(str(path), mode="r") as container:
            return first_video_stream(container) is not None
    except (av.FFmpegError, OSError, ValueError):
        return False
