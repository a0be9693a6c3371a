"""wav2kp.media.encode: mp4 round trips through the ffmpeg binary."""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction

import imageio_ffmpeg
import numpy as np
import pytest
from wav2kp.media.encode import EncodeError, as_fraction, write_video


def ffmpeg_info(path) -> str:
    """ffmpeg's description of a file's streams (stderr of ``ffmpeg -i``)."""
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
    )
    return proc.stderr


def decoded_audio_samples(path, rate: int) -> int:
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-f", "s16le",
         "-ac", "1", "-ar", str(rate), "pipe:1"],
        capture_output=True, check=True,
    )  # fmt: skip
    return len(proc.stdout) // 2


def moving_square(n: int, h: int = 48, w: int = 64):
    for k in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[10:20, k % (w - 10) : k % (w - 10) + 10] = (255, 128, 0)
        yield frame


def test_roundtrip_frames_fps_and_audio(tmp_path):
    n, rate = 45, 22050
    fps = Fraction(30000, 1001)
    seconds = n / float(fps)
    t = np.arange(int(round(seconds * rate))) / rate
    audio = 0.3 * np.sin(2 * np.pi * 440 * t)
    out = write_video(tmp_path / "clip.mp4", moving_square(n), fps, audio, rate)
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == n
    info = ffmpeg_info(out)
    assert re.search(r"Video: h264.*yuv420p", info), info
    assert "29.97 fps" in info
    assert re.search(r"Audio: aac.*22050 Hz", info), info
    decoded = decoded_audio_samples(out, rate)
    assert abs(decoded - len(audio)) / rate < 0.05  # AAC framing: within 50 ms
    # the first decoded frame shows the square where it was drawn
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert tuple(meta["size"]) == (64, 48)
    first = np.frombuffer(next(reader), np.uint8).reshape(48, 64, 3)
    reader.close()
    assert first[12:18, 2:8, 0].mean() > 200 and first[30:40, 30:40].mean() < 30


def test_int16_audio_and_silent_video(tmp_path):
    audio = (np.random.default_rng(0).normal(0, 3000, 44100)).astype(np.int16)
    with_audio = write_video(tmp_path / "a.mp4", moving_square(30), 30, audio, 44100)
    assert "44100 Hz" in ffmpeg_info(with_audio)
    silent = write_video(tmp_path / "b.mp4", moving_square(10), "25")
    info = ffmpeg_info(silent)
    assert "Audio" not in info and "25 fps" in info


def test_fps_as_fraction():
    assert as_fraction(29.97) == Fraction(30000, 1001)
    assert as_fraction("30000/1001") == Fraction(30000, 1001)
    assert as_fraction(25) == 25
    assert as_fraction(30.0) == 30
    with pytest.raises(ValueError):
        as_fraction(0)


@pytest.mark.parametrize(
    "frames, message",
    [
        ([], "no frames"),
        ([np.zeros((48, 64, 3), np.float32)], "uint8"),
        ([np.zeros((47, 64, 3), np.uint8)], "even"),
        ([np.zeros((48, 64, 3), np.uint8), np.zeros((40, 64, 3), np.uint8)], "frame 1"),
    ],
)
def test_bad_frames_raise_and_leave_no_file(tmp_path, frames, message):
    target = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=message) as err:
        write_video(target, frames, 30)
    assert "bad.mp4" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_names_file(tmp_path):
    with pytest.raises(EncodeError, match="broken.mp4"):
        write_video(tmp_path / "broken.mp4", moving_square(3), 30, preset="no-such-preset")
    assert list(tmp_path.iterdir()) == []


def test_audio_without_rate_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sample_rate"):
        write_video(tmp_path / "x.mp4", moving_square(3), 30, np.zeros(100))
