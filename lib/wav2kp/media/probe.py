"""What is inside a media file, read from ``ffmpeg -i`` (imageio-ffmpeg ships no ffprobe).

``probe(path)`` gives the first video and audio stream: codec, displayed size (rotation
applied, as ffmpeg's decoder applies it), nominal fps, duration and audio rate/channels.
The nominal fps is only a hint: frame times come from the decoded stream (``decode``).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import imageio_ffmpeg


class MediaError(RuntimeError):
    """A media file that cannot be used; the message names the file and the cause."""


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float | None  # seconds, container duration (None when unknown)
    start_time: float  # seconds, container start
    has_video: bool
    video_codec: str | None
    width: int | None  # displayed width (after rotation)
    height: int | None
    rotation: int  # degrees of the display matrix (0, 90, 180, 270)
    fps: float | None  # nominal rate as reported; VFR clips: use decoded timestamps
    has_audio: bool
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None

    def as_dict(self) -> dict:
        return asdict(self)


_CHANNEL_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "quad": 4,
    "4.0": 4,
    "5.0": 5,
    "5.1": 6,
    "6.1": 7,
    "7.1": 8,
}


def _parse_channels(text: str) -> int | None:
    m = re.search(r"(\d+) channels", text)
    if m:
        return int(m.group(1))
    for token in (t.strip().split("(")[0] for t in text.split(",")):
        if token in _CHANNEL_LAYOUTS:
            return _CHANNEL_LAYOUTS[token]
    return None


def parse_ffmpeg_info(stderr: str, path: str = "") -> MediaInfo:
    """Parse the ``Input #0`` block that ``ffmpeg -i`` writes to stderr."""
    duration = None
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", stderr)
    if m:
        h, mi, s = m.groups()
        duration = int(h) * 3600 + int(mi) * 60 + float(s)
    m = re.search(r"start:\s*(-?\d+(?:\.\d+)?)", stderr)
    start_time = float(m.group(1)) if m else 0.0

    video_line = audio_line = None
    video_tail = ""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if video_line is None and re.search(r"Stream #\d+:\d+.*: Video:", line):
            if "attached pic" in line:  # cover art in audio files is not a video
                continue
            video_line = line
            # side data (rotation) follows on the next indented lines, up to the next stream
            for follow in lines[i + 1 :]:
                if "Stream #" in follow or not follow.startswith(" "):
                    break
                video_tail += follow + "\n"
        elif audio_line is None and re.search(r"Stream #\d+:\d+.*: Audio:", line):
            audio_line = line

    video_codec = width = height = fps = None
    rotation = 0
    if video_line is not None:
        desc = video_line.split("Video:", 1)[1]
        video_codec = desc.strip().split()[0].rstrip(",")
        size = re.search(r"[ ,](\d{1,5})x(\d{1,5})[ ,\[]", desc + " ")
        if size:
            width, height = int(size.group(1)), int(size.group(2))
        rate = re.search(r"(\d+(?:\.\d+)?)k? fps", desc)
        tbr = re.search(r"(\d+(?:\.\d+)?)k? tbr", desc)
        if rate:
            fps = float(rate.group(1))
        elif tbr:
            fps = float(tbr.group(1))
        rot = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees", video_tail, re.IGNORECASE)
        rot = rot or re.search(r"rotate\s*:\s*(-?\d+)", video_tail)
        if rot:
            rotation = int(round(float(rot.group(1)))) % 360
        if width and height and rotation in (90, 270):
            width, height = height, width

    audio_codec = sample_rate = channels = None
    if audio_line is not None:
        desc = audio_line.split("Audio:", 1)[1]
        audio_codec = desc.strip().split()[0].rstrip(",")
        hz = re.search(r"(\d+) Hz", desc)
        sample_rate = int(hz.group(1)) if hz else None
        channels = _parse_channels(desc)

    return MediaInfo(
        path=str(path),
        duration=duration,
        start_time=start_time,
        has_video=video_line is not None,
        video_codec=video_codec,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        has_audio=audio_line is not None,
        audio_codec=audio_codec,
        audio_sample_rate=sample_rate,
        audio_channels=channels,
    )


def probe(path: str | os.PathLike) -> MediaInfo:
    """Streams of a media file; raises ``MediaError`` (naming the file) if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    stderr = proc.stderr
    if "Input #0" not in stderr:
        reason = _last_error_line(stderr) or "not a media file ffmpeg can open"
        raise MediaError(f"{path}: cannot open as media ({reason})")
    return parse_ffmpeg_info(stderr, str(path))


def _last_error_line(stderr: str) -> str:
    """ffmpeg's specific complaints (e.g. 'moov atom not found' for a truncated mp4), else
    its generic last line."""
    lines = []
    for raw in stderr.splitlines():
        text = re.sub(r"^(\[[^\]]*\]\s*)+", "", raw.strip())
        if text and "output file" not in text.lower() and text not in lines:
            lines.append(text)
    specific = [t for t in lines if not t.startswith("Error opening input")]
    chosen = specific[-2:] if specific else lines[-1:]
    return "; ".join(chosen)[:240]
