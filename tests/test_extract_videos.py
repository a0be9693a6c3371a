"""Small generated inputs for the extraction tests (imported by the test_extract*,
test_media_read*, test_audio* modules; holds a sanity test of its own)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import skimage.data

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def face_transform(i: int, size: int) -> np.ndarray:
    """2x3 affine matrix from the 512x512 astronaut to frame ``i`` (drift, tilt, zoom)."""
    angle = 4.0 * np.sin(i / 5.0)
    zoom = 1.6 * (size / 512) * (1.0 + 0.05 * np.sin(i / 7.0))
    matrix = cv2.getRotationMatrix2D((225.0, 150.0), angle, zoom)
    # the centre (225, 150) of the portrait's face lands near the frame centre, jittered
    matrix[:, 2] += (
        size / 2 - 225 + 3.0 * np.sin(i / 3.0),
        0.45 * size - 150 + 2.0 * np.cos(i / 4.0),
    )
    return matrix


def face_frames(n: int, size: int = 256, blank: set[int] | frozenset = frozenset()) -> np.ndarray:
    """(n, size, size, 3) uint8: the astronaut portrait moved by ``face_transform``;
    frames listed in ``blank`` are a flat grey (no face)."""
    face = skimage.data.astronaut()
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        if i in blank:
            frames[i] = 128
        else:
            frames[i] = cv2.warpAffine(
                face, face_transform(i, size), (size, size), borderMode=cv2.BORDER_REFLECT
            )
    return frames


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 25.0,
    audio: bool = True,
    audio_rate: int = 44100,
    audio_channels: int = 2,
    times: np.ndarray | None = None,
    extra: list[str] | None = None,
) -> Path:
    """Encode frames (RGB uint8) as H.264 mp4, with a 440 Hz tone as AAC when ``audio``.
    ``times`` (seconds per frame) makes a variable-frame-rate file with exactly those
    presentation times."""
    path = Path(path)
    n, h, w, _ = frames.shape
    duration = (times[-1] + 1.0 / fps) if times is not None else n / fps
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0"]  # fmt: skip
    if audio:
        cmd += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate={audio_rate}:duration={duration}",
        ]
    vf = []
    if times is not None:
        expr = "+".join(f"eq(N,{i})*{t:.6f}" for i, t in enumerate(times))
        vf = [
            "-vf",
            f"settb=1/1000,setpts='({expr})/TB'",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "1/1000",
        ]
    cmd += [*vf, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac", "-ac", str(audio_channels), "-shortest"]
    cmd += [*(extra or []), str(path)]
    subprocess.run(
        cmd, input=np.ascontiguousarray(frames).tobytes(), check=True, capture_output=True
    )
    return path


def write_audio_only_mp4(path: Path, seconds: float = 1.0) -> Path:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=300:sample_rate=16000:duration={seconds}", "-c:a", "aac", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def test_generated_face_video_has_the_requested_frames(tmp_path):
    path = write_video(tmp_path / "a.mp4", face_frames(5, 128), fps=10)
    assert path.stat().st_size > 0
    count, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert count == 5
