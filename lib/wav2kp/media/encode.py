"""Write mp4 files (H.264 yuv420p + optional AAC audio) through imageio-ffmpeg's binary.

Frames are piped raw to ffmpeg's stdin, so memory stays flat for long clips; audio goes
through a temporary PCM wav. The output appears atomically (temp file + rename).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from wav2kp.atomic import atomic_path

NTSC_FPS = Fraction(30000, 1001)


class EncodeError(RuntimeError):
    """ffmpeg could not write the video (message names the file and ffmpeg's reason)."""


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def as_fraction(fps: float | int | str | Fraction) -> Fraction:
    """Frame rate as an exact rational: 29.97 and '30000/1001' both give 30000/1001."""
    if isinstance(fps, Fraction):
        rate = fps
    elif isinstance(fps, str):
        rate = Fraction(fps)
    elif isinstance(fps, float) and abs(fps * 1001 / 1000 - round(fps * 1001 / 1000)) < 1e-3:
        # NTSC-style rates (29.97, 59.94, 23.976) are really N*1000/1001
        rate = Fraction(round(fps * 1001 / 1000) * 1000, 1001)
        if abs(float(rate) - fps) > 1e-3:
            rate = Fraction(fps).limit_denominator(1001)
    else:
        rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return rate


def _audio_int16(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) float in [-1, 1] or int16 -> int16 (n, channels)."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise ValueError(f"audio must be (samples,) or (samples, channels), got {audio.shape}")
    if audio.dtype == np.int16:
        return audio
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be float in [-1, 1] or int16, got {audio.dtype}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or inf")
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """PCM16 wav (soundfile), atomically."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(tmp, _audio_int16(audio), int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float | str | Fraction = NTSC_FPS,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 20,
    preset: str = "veryfast",
    audio_bitrate: str = "128k",
    threads: int = 1,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) into an mp4: H.264 yuv420p at exactly ``fps``.

    ``audio``: float samples in [-1, 1] or int16, shape (n,) or (n, channels), at
    ``sample_rate`` Hz; encoded as AAC at the same rate. Width and height must be even
    (yuv420p). The file appears only when complete. Returns ``path``.
    """
    path = Path(path)
    rate = as_fraction(fps)
    if audio is not None and not sample_rate:
        raise ValueError(f"{path}: audio given without sample_rate")
    frames = iter(frames)
    try:
        first = next(frames)
    except StopIteration:
        raise ValueError(f"{path}: no frames to encode") from None
    first = np.asarray(first)
    if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
        raise ValueError(
            f"{path}: frames must be RGB uint8 (H, W, 3), got {first.dtype} {first.shape}"
        )
    height, width = first.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: yuv420p needs even width and height, got {width}x{height}")

    with tempfile.TemporaryDirectory(prefix="wav2kp-encode-") as tmpdir:
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
        cmd += ["-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0"]
        if audio is not None:
            wav = write_wav(Path(tmpdir) / "audio.wav", audio, int(sample_rate))
            cmd += ["-i", str(wav)]
        cmd += ["-map", "0:v:0"]
        cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(int(crf))]
        cmd += ["-pix_fmt", "yuv420p", "-threads", str(int(threads))]
        cmd += ["-r", f"{rate.numerator}/{rate.denominator}"]
        if audio is not None:
            cmd += ["-map", "1:a:0", "-c:a", "aac", "-b:a", audio_bitrate]
            cmd += ["-ar", str(int(sample_rate))]
        cmd += ["-movflags", "+faststart"]
        with atomic_path(path, suffix=".mp4") as tmp:
            _run_ffmpeg(cmd + [str(tmp)], first, frames, (height, width), path)
    return path


def _run_ffmpeg(cmd, first, frames, shape, path) -> None:
    # stderr goes to a file, not a pipe: a chatty ffmpeg can never block on a full pipe
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=errfile)
        count = 0
        try:
            for frame in _chain(first, frames):
                frame = np.asarray(frame)
                if frame.shape[:2] != shape or frame.dtype != np.uint8 or frame.shape[-1] != 3:
                    raise ValueError(
                        f"{path}: frame {count} is {frame.dtype} {frame.shape}, "
                        f"expected uint8 {(*shape, 3)}"
                    )
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
                count += 1
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg died; its message is reported below
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        if code != 0:
            errfile.seek(0)
            message = errfile.read().decode(errors="replace").strip().splitlines()
            reason = message[-1] if message else f"exit code {code}"
            raise EncodeError(f"{path}: ffmpeg failed after {count} frames: {reason}")


def _chain(first, rest):
    yield first
    yield from rest
