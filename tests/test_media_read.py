"""probe and decode: stream facts and real per-frame timestamps (VFR safe)."""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
from test_extract_videos import FFMPEG, face_frames, write_video
from wav2kp.media.decode import DecodeLog, extract_audio_pcm, iter_frames, read_frame_times
from wav2kp.media.probe import MediaError, parse_ffmpeg_info, probe


def test_probe_reports_streams(tmp_path):
    path = write_video(
        tmp_path / "a.mp4", face_frames(12, 96), fps=12, audio_rate=22050, audio_channels=1
    )
    info = probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.rotation) == (96, 96, 0)
    assert info.fps == pytest.approx(12.0)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.audio_sample_rate == 22050 and info.audio_channels == 1
    assert info.duration == pytest.approx(1.0, abs=0.1)


def test_probe_applies_rotation_to_the_size_like_the_decoder(tmp_path):
    src = write_video(tmp_path / "a.mp4", face_frames(3, 64)[:, :, :48], fps=10, audio=False)
    rotated = tmp_path / "rot.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-loglevel",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(src),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    info = probe(rotated)
    assert info.rotation in (90, 270) and (info.width, info.height) == (64, 48)
    _, frame = next(iter(iter_frames(rotated)))
    assert frame.shape == (48, 64, 3)


def test_parse_channel_layouts_and_missing_streams():
    text = (
        "Input #0, wav, from 'x.wav':\n  Duration: 00:01:02.50, bitrate: 1 kb/s\n"
        "  Stream #0:0: Audio: pcm_s16le, 48000 Hz, 5.1, s16, 4608 kb/s\n"
    )
    info = parse_ffmpeg_info(text, "x.wav")
    assert not info.has_video and info.audio_channels == 6 and info.duration == pytest.approx(62.5)


def test_unreadable_inputs_raise_naming_the_file(tmp_path):
    empty = tmp_path / "zero.mp4"
    empty.touch()
    with pytest.raises(MediaError, match="zero.mp4: empty file"):
        probe(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(MediaError, match="junk.mp4: cannot open"):
        probe(junk)
    with pytest.raises(MediaError, match="nothere.mp4: no such file"):
        probe(tmp_path / "nothere.mp4")


def test_frames_decode_in_order_with_their_pixels(tmp_path):
    frames = face_frames(8, 64)
    path = write_video(
        tmp_path / "a.mp4", frames, fps=8, extra=["-crf", "0", "-preset", "ultrafast"]
    )
    decoded = list(iter_frames(path))
    assert len(decoded) == 8
    times = np.array([t for t, _ in decoded])
    np.testing.assert_allclose(times, np.arange(8) / 8, atol=1e-3)
    # lossless H.264 in yuv420p: colours are close, and each frame matches its own source
    errors = [
        [np.abs(f.astype(int) - src.astype(int)).mean() for src in frames] for _, f in decoded
    ]
    assert (np.argmin(errors, axis=1) == np.arange(8)).all()


def test_variable_frame_rate_timestamps_come_from_the_stream(tmp_path):
    times = np.array([0.0, 0.04, 0.1, 0.13, 0.25, 0.3, 0.41, 0.45, 0.5, 0.62, 0.7])
    path = write_video(tmp_path / "vfr.mp4", face_frames(len(times), 64), fps=25, times=times)
    decoded = read_frame_times(path)
    np.testing.assert_allclose(decoded, times, atol=2e-3)
    assert len(decoded) == imageio_ffmpeg.count_frames_and_secs(str(path))[0]


@pytest.mark.realclips
def test_real_vfr_clip_keeps_irregular_frame_times(realclips):
    path = realclips / "retalking_face_1.mp4"
    times = read_frame_times(path)
    steps = np.diff(times)
    assert len(times) == imageio_ffmpeg.count_frames_and_secs(str(path))[0]
    assert (steps > 0).all()
    # both single (1/30 s) and doubled (1/15 s) frame intervals occur; mean rate about 22.1
    assert (
        np.isclose(steps, 1 / 30, atol=1e-3).sum() > 20
        and np.isclose(steps, 1 / 15, atol=1e-3).sum() > 20
    )
    assert (len(times) - 1) / (times[-1] - times[0]) == pytest.approx(22.1, abs=0.3)
    assert times[0] == pytest.approx(0.033, abs=2e-3)  # video starts after the audio


def test_truncated_file_decodes_partly_and_logs_the_damage(tmp_path):
    path = write_video(
        tmp_path / "a.mp4", face_frames(40, 64), fps=20, extra=["-movflags", "+faststart"]
    )
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    log = DecodeLog()
    n = sum(1 for _ in iter_frames(cut, log))
    assert 0 < n < 40 and log.errors()


def test_audio_extraction_keeps_rate_channels_and_timeline(tmp_path):
    video = write_video(
        tmp_path / "a.mp4", face_frames(20, 64), fps=20, audio_rate=48000, audio_channels=2
    )
    # the same video with its audio starting 0.3 s late
    late = tmp_path / "late.mp4"
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-i", str(video), "-itsoffset", "0.3", "-i", str(video),
         "-map", "0:v", "-map", "1:a", "-c", "copy", str(late)],
        check=True,
    )  # fmt: skip
    rate, channels = extract_audio_pcm(late, tmp_path / "late.orig.wav")
    assert (rate, channels) == (48000, 2)
    samples, sr = sf.read(tmp_path / "late.orig.wav")
    assert sf.info(tmp_path / "late.orig.wav").subtype == "PCM_16"
    # silence first, then the tone, at its place on the container's timeline
    onset = np.argmax(np.abs(samples[:, 0]) > 0.05) / sr
    assert onset == pytest.approx(0.3, abs=0.04)
    with pytest.raises(MediaError, match="no audio stream"):
        extract_audio_pcm(
            write_video(tmp_path / "mute.mp4", face_frames(2, 64), audio=False), tmp_path / "x.wav"
        )
    assert not (tmp_path / "x.wav").exists()
