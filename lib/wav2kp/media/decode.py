"""Decode video frames and audio through an ffmpeg pipe (no images written to disk).

Each frame comes with its real presentation time from the stream (ffmpeg's ``showinfo``
filter, frame rate passed through), so variable-frame-rate clips keep their timing.
Times are seconds on the container's timeline (ffmpeg shifts it to start at 0), the
same timeline the extracted audio is aligned to.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wav2kp.atomic import atomic_path
from wav2kp.media.probe import MediaError, MediaInfo, ffmpeg_exe, probe

_SHOWINFO = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+).*?pts_time:(\S+).*?\bs:(\d+)x(\d+)")


@dataclass
class DecodeLog:
    """What ffmpeg said besides frame info; filled while decoding."""

    lines: list[str] = field(default_factory=list)
    returncode: int | None = None

    def errors(self) -> list[str]:
        """ffmpeg's complaints (decoding errors, invalid data), without the prefixes."""
        found = []
        for line in self.lines:
            if re.search(r"error|invalid|corrupt|truncat|missing|partial", line, re.IGNORECASE):
                found.append(re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip())[:200])
        return found

    def last_error(self) -> str:
        errors = self.errors()
        return errors[-1] if errors else ""


def iter_frames(
    path: str | os.PathLike,
    log: DecodeLog | None = None,
    threads: int = 0,
    info: MediaInfo | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_seconds, rgb_uint8 (H, W, 3))`` for every frame of the first video stream.

    Rotation metadata is applied (as players do). A truncated file yields the frames that
    could be decoded; ``log`` then holds ffmpeg's complaint. Raises ``MediaError`` if the
    file cannot be opened or has no video stream. ``info``: the file's probe, if known.
    """
    path = Path(path)
    log = log if log is not None else DecodeLog()
    info = info or probe(path)
    if not info.has_video:
        raise MediaError(f"{path}: no video stream")
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "info",
        "-threads", str(threads), "-i", str(path),
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", "showinfo=checksum=0", "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    frame_info: queue.Queue = queue.Queue()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", errors="replace")
            m = _SHOWINFO.search(line)
            if m:
                frame_info.put((m.group(2), int(m.group(3)), int(m.group(4))))
            elif "Parsed_showinfo" not in line:  # its other per-frame lines are noise
                log.lines.append(line.rstrip())
        frame_info.put(None)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    fallback_step = 1.0 / info.fps if info.fps else 1.0 / 25.0
    previous_time: float | None = None
    size: tuple[int, int] | None = None
    try:
        assert proc.stdout is not None
        while True:
            item = frame_info.get()
            if item is None:
                break
            pts_text, width, height = item
            size = size or (width, height)
            nbytes = size[0] * size[1] * 3
            buf = proc.stdout.read(nbytes)
            if len(buf) < nbytes:
                break  # ffmpeg stopped mid-frame (truncated input)
            try:
                time = float(pts_text)
            except ValueError:  # NOPTS: continue from the previous frame at the nominal rate
                time = 0.0 if previous_time is None else previous_time + fallback_step
            previous_time = time
            yield time, np.frombuffer(buf, dtype=np.uint8).reshape(size[1], size[0], 3)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(timeout=10)
        log.returncode = proc.returncode
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def read_frame_times(path: str | os.PathLike) -> np.ndarray:
    """Presentation times (seconds) of every video frame, without keeping the pixels."""
    return np.array([t for t, _ in iter_frames(path)], dtype=np.float64)


def extract_audio_pcm(
    path: str | os.PathLike, out_wav: str | os.PathLike, info: MediaInfo | None = None
) -> tuple[int, int]:
    """Write the first audio stream as PCM16 wav at its own rate and channel count.

    The audio is placed on the container timeline (silence padded if the stream starts
    late) so that sample 0 is time 0, the same origin as the frame times.
    Returns ``(sample_rate, channels)``; raises ``MediaError`` naming the file.
    """
    path = Path(path)
    info = info or probe(path)
    if not info.has_audio:
        raise MediaError(f"{path}: no audio stream")
    with atomic_path(out_wav, suffix=".wav") as tmp:
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-i", str(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-af", "aresample=async=1:first_pts=0",
            "-c:a", "pcm_s16le", "-f", "wav", str(tmp),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or tmp.stat().st_size <= 44:
            cause = err[-1] if err else "no audio samples decoded"
            raise MediaError(f"{path}: cannot extract audio ({cause})")
        import soundfile as sf

        sf_info = sf.info(str(tmp))
        if sf_info.frames == 0:
            raise MediaError(f"{path}: audio stream holds no samples")
    return int(sf_info.samplerate), int(sf_info.channels)


def read_frames_at(path: str | os.PathLike, indices: list[int]) -> dict[int, np.ndarray]:
    """The frames with the given decode indices (0-based), as ``{index: rgb}``; stops
    decoding after the last one wanted."""
    wanted = set(int(i) for i in indices)
    found: dict[int, np.ndarray] = {}
    if not wanted:
        return found
    for index, (_, rgb) in enumerate(iter_frames(path)):
        if index in wanted:
            found[index] = rgb.copy()
        if index >= max(wanted):
            break
    return found
