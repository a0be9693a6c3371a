"""probe and decode: stream facts and real per-frame timestamps (VFR safe)."""

from __future__ import annotations

import subprocess
import threading

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
from test_extract_videos import FFMPEG, face_frames, write_video
from wav2kp.media.decode import (
    DecodeLog,
    extract_audio_pcm,
    frame_scale,
    iter_frames,
    read_frame_times,
    read_frames_at,
)
from wav2kp.media.probe import MediaError, probe


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


def test_probe_counts_channels_and_ignores_cover_art(tmp_path):
    wav = tmp_path / "six.wav"
    sf.write(wav, np.zeros((4800, 6), np.float32), 48000)
    info = probe(wav)
    assert not info.has_video and info.audio_channels == 6 and info.audio_sample_rate == 48000
    assert info.duration == pytest.approx(0.1, abs=0.01)
    cover = tmp_path / "cover.png"
    subprocess.run([FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "color=red:s=64x64",
                    "-frames:v", "1", str(cover)], check=True)  # fmt: skip
    song = tmp_path / "song.mp3"
    subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(wav), "-i", str(cover), "-map", "0",
                    "-map", "1", "-c:a", "libmp3lame", "-c:v", "mjpeg",
                    "-disposition:v", "attached_pic", str(song)], check=True)  # fmt: skip
    info = probe(song)
    assert info.has_audio and not info.has_video  # the album cover is not a video


def test_truncated_mp4_without_index_names_the_cause(tmp_path):
    path = write_video(tmp_path / "a.mp4", face_frames(20, 64), fps=20)  # moov at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match=r"cut.mp4: cannot open as media \(.*moov atom not found"):
        probe(cut)


# ------------------------------------------------------------------ reduced resolution


def dot_frames(n: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames with one soft white dot each, and the dot centres (x, y) in pixels with 0 at
    the left/top image edge."""
    rng = np.random.default_rng(0)
    centres = np.column_stack([rng.uniform(0.2, 0.8, n) * width, rng.uniform(0.2, 0.8, n) * height])
    yy, xx = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    frames = np.zeros((n, height, width, 3), np.uint8)
    for k, (cx, cy) in enumerate(centres):
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 6.0**2))
        frames[k] = (255 * blob)[..., None].astype(np.uint8)
    return frames, centres


def centroid(rgb: np.ndarray) -> np.ndarray:
    weight = rgb[..., 1].astype(np.float64)
    yy, xx = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]] + 0.5
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()


def test_frame_scale_rounds_and_never_enlarges():
    scale = frame_scale(1920, 1080, max_side=640)
    assert (scale.width, scale.height) == (640, 360) and scale.x == scale.y == 3.0
    assert frame_scale(224, 224, max_side=640).is_full
    odd = frame_scale(700, 500, scale=0.33)
    assert (odd.width, odd.height) == (231, 165)
    assert odd.x == pytest.approx(700 / 231) and odd.y == pytest.approx(500 / 165)
    points = np.array([[[10.0, 20.0, -3.0], [np.nan, np.nan, np.nan]]], np.float32)
    back = odd.to_source(points)
    np.testing.assert_allclose(back[0, 0], [10 * 700 / 231, 20 * 500 / 165, -3 * 700 / 231])
    assert np.isnan(back[0, 1]).all() and back.dtype == np.float32
    for bad in ({"max_side": 0}, {"scale": 1.5}, {"scale": 0}, {"max_side": 9, "scale": 0.5}):
        with pytest.raises(ValueError):
            frame_scale(100, 100, **bad)


def test_reduced_resolution_points_map_back_to_full_resolution(tmp_path):
    frames, centres = dot_frames(12, 400, 240)
    path = write_video(tmp_path / "dots.mp4", frames, fps=12, audio=False,
                       extra=["-crf", "0"])  # fmt: skip
    full = [centroid(rgb) for _, rgb in iter_frames(path)]
    log = DecodeLog()
    small = list(iter_frames(path, log, max_side=100))
    assert log.scale == frame_scale(400, 240, max_side=100)
    assert all(rgb.shape == (60, 100, 3) for _, rgb in small)
    np.testing.assert_allclose([t for t, _ in small], np.arange(12) / 12, atol=1e-3)
    mapped = log.scale.to_source(np.array([centroid(rgb) for _, rgb in small]))
    np.testing.assert_allclose(full, centres, atol=0.3)  # the measurement itself
    # a 4x smaller frame locates the dot within a quarter of its own pixel
    assert np.abs(mapped - centres).max() < 1.0


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuvj444p", "yuv420p"])
def test_reduced_frames_are_libswscale_area_rgb_whatever_the_chroma_layout(tmp_path, pix_fmt):
    """Shrunk frames equal libswscale's area-averaged rgb24 of the decoded frame (to one
    level: 4:4:4 sources go through planar RGB, which is faster there)."""
    import av

    frames = face_frames(6, 240)[:, :, :200]  # 200 wide, 240 high
    path = write_video(tmp_path / f"{pix_fmt}.mp4", frames, fps=12, audio=False,
                       extra=["-pix_fmt", pix_fmt, "-crf", "12"])  # fmt: skip
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
        assert decoded[0].format.name == pix_fmt
        expected = [
            f.reformat(width=100, height=120, format="rgb24", interpolation="AREA").to_ndarray()
            for f in decoded
        ]
    log = DecodeLog()
    ours = [rgb for _, rgb in iter_frames(path, log, max_side=120)]
    assert (log.scale.width, log.scale.height) == (100, 120)
    assert len(ours) == len(expected) == 6
    for a, b in zip(ours, expected, strict=True):
        assert a.shape == b.shape == (120, 100, 3)
        assert np.abs(a.astype(int) - b).max() <= 1


# ------------------------------------------------------------------------ rotation


def phone_video(tmp_path, upright: np.ndarray, flags: list[str], name: str):
    """Upright frames stored as a phone does: pixels turned, display matrix saying how to
    turn them back (``flags``: ffmpeg's -display_rotation/-display_hflip/-display_vflip
    describing the stored pixels)."""
    stored = tmp_path / f"{name}.stored.mp4"
    rotation = {"90": -1, "-90": 1, "180": 2}
    turned = upright
    if "-display_hflip" in flags:
        turned = turned[:, :, ::-1]
    if "-display_vflip" in flags:
        turned = turned[:, ::-1]
    if "-display_rotation" in flags:
        # display_rotation R (counter-clockwise, for display) undoes a clockwise turn by R
        turned = np.rot90(turned, rotation[flags[flags.index("-display_rotation") + 1]], (1, 2))
    write_video(stored, np.ascontiguousarray(turned), fps=10, extra=["-crf", "0"])
    out = tmp_path / f"{name}.mp4"
    subprocess.run([FFMPEG, "-loglevel", "error", *flags, "-i", str(stored), "-c", "copy",
                    str(out)], check=True)  # fmt: skip
    return out


ROTATIONS = {
    "rotate90": ["-display_rotation", "90"],
    "rotate-90": ["-display_rotation", "-90"],
    "rotate180": ["-display_rotation", "180"],
    "rotate90_hflip": ["-display_hflip", "-display_rotation", "90"],
    "rotate-90_vflip": ["-display_vflip", "-display_rotation", "-90"],
    "hflip": ["-display_hflip"],
    "vflip": ["-display_vflip"],
}


@pytest.mark.parametrize("name", list(ROTATIONS))
def test_rotated_phone_video_decodes_upright_like_ffmpeg(tmp_path, name):
    from wav2kp.benchmarks.media import cli_frames

    upright = face_frames(4, 96)[:, :, 8:72]  # 96 high, 64 wide: a portrait
    path = phone_video(tmp_path, upright, ROTATIONS[name], name)
    info = probe(path)
    assert (info.width, info.height) == (64, 96)
    ours = [rgb for _, rgb in iter_frames(path)]
    assert all(rgb.shape == (96, 64, 3) for rgb in ours)
    # the picture is the upright one (lossless H.264 leaves only colour rounding)
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(ours, upright, strict=True)) < 3
    # and exactly what ffmpeg's own autorotate makes of the file
    theirs = [rgb for _, rgb in cli_frames(path)]
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    if name.startswith("rotate"):
        assert info.rotation in (90, 180, 270)


def test_rotated_phone_video_gives_keypoints_in_the_upright_frame(tmp_path):
    from wav2kp.extraction.facemesh import FaceMeshTracker
    from wav2kp.extraction.landmarks import mediapipe_to_68

    upright = face_frames(3, 192)[:, :, 32:160]  # 192 high, 128 wide
    path = phone_video(tmp_path, upright, ["-display_rotation", "90"], "phone")
    log = DecodeLog()
    with FaceMeshTracker(static=True) as tracker:
        found = [tracker.process(rgb) for _, rgb in iter_frames(path, log, max_side=160)]
        truth = [tracker.process(np.ascontiguousarray(rgb)) for rgb in upright]
    assert (log.scale.width, log.scale.height) == (107, 160)  # upright, long side 160
    assert all(p is not None for p in found + truth)
    points = log.scale.to_source(mediapipe_to_68(np.stack(found)))
    reference = mediapipe_to_68(np.stack(truth))
    eyes, mouth = points[:, 36:48, 1].mean(axis=1), points[:, 48:68, 1].mean(axis=1)
    assert (eyes < mouth).all()  # upright: eyes above the mouth
    # the same face as on the upright original, within a few full-resolution pixels
    assert np.nanmedian(np.linalg.norm(points - reference, axis=-1)) < 3.0


# ------------------------------------------------------------------------ timelines


def flash_and_beep(path, video_delay: float, extra: list[str]) -> None:
    """A white video frame at 0.6 s of the video's own clock and a 1 kHz beep at the same
    moment, the video stream starting ``video_delay`` s after the audio stream."""
    beep = f"between(t,{0.6 + video_delay},{0.7 + video_delay})"
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "color=black:s=64x48:r=25:d=1.2,"
         "drawbox=c=white:t=fill:enable='between(t,0.6,0.639)'",
         "-f", "lavfi", "-i", f"aevalsrc='0.8*sin(2*PI*1000*t)*{beep}':s=48000:d=1.4",
         "-vf", f"setpts=PTS+{video_delay}/TB", "-af", "adelay=0",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", *extra, str(path)],
        check=True,
    )  # fmt: skip


@pytest.mark.parametrize("suffix,extra", [(".ts", ["-output_ts_offset", "10"]), (".mkv", [])])
def test_video_and_audio_share_one_timeline(tmp_path, suffix, extra):
    """MPEG-TS clocks start anywhere and each stream starts on its own: frame times and
    audio samples must keep the streams' real offset (the ffmpeg CLI path rebased each
    stream to its own start and lost it)."""
    path = tmp_path / f"av{suffix}"
    flash_and_beep(path, 0.2, extra)
    times = []
    flash = None
    for t, rgb in iter_frames(path):
        times.append(t)
        if flash is None and rgb.mean() > 128:
            flash = t
    rate, _ = extract_audio_pcm(path, tmp_path / "a.wav")
    audio, _ = sf.read(tmp_path / "a.wav", always_2d=True)
    beep = np.argmax(np.abs(audio[:, 0]) > 0.3) / rate
    assert times[0] == pytest.approx(0.2, abs=0.03)  # the video starts after the audio
    # (AAC's encoder delay in a TS without edit list shifts both by up to 21 ms)
    assert flash == pytest.approx(0.8, abs=0.025)
    assert abs(flash - beep) < 0.005  # what was together in time stays together
    info = probe(path)
    assert info.video_start == pytest.approx(times[0], abs=0.005)


def test_probe_reports_each_stream_duration(tmp_path):
    path = tmp_path / "long_audio.mp4"
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=1",
         "-f", "lavfi", "-i", "sine=sample_rate=16000:d=3", "-c:v", "libx264", "-c:a", "aac",
         str(path)],
        check=True,
    )  # fmt: skip
    info = probe(path)
    assert info.video_duration == pytest.approx(1.0, abs=0.05)
    assert info.audio_duration == pytest.approx(3.0, abs=0.05)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert info.video_end == pytest.approx(1.0, abs=0.05) and info.video_frames == 25


# ------------------------------------------------------------------ other containers


@pytest.mark.parametrize(
    "suffix,codec", [(".avi", "mpeg4"), (".mkv", "libx264"), (".mpg", "mpeg1video"),
                     (".webm", "libvpx-vp9"), (".mov", "prores")],
)  # fmt: skip
def test_other_containers_decode_frames_and_timestamps(tmp_path, suffix, codec):
    frames = face_frames(10, 64)
    path = tmp_path / f"clip{suffix}"
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x64",
         "-r", "25", "-i", "pipe:0", "-c:v", codec, "-q:v", "2", str(path)],
        input=frames.tobytes(), check=True,
    )  # fmt: skip
    decoded = list(iter_frames(path))
    assert len(decoded) == 10
    times = np.array([t for t, _ in decoded])
    np.testing.assert_allclose(times - times[0], np.arange(10) / 25, atol=2e-3)
    assert times[0] == pytest.approx(probe(path).video_start or 0.0, abs=1e-6)
    errors = [[np.abs(f.astype(int) - src).mean() for src in frames] for _, f in decoded]
    assert (np.argmin(errors, axis=1) == np.arange(10)).all()


@pytest.mark.realclips
def test_real_mpeg_program_stream(realclips):
    path = realclips / "grid_s1_bbaf3s.mpg"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    info = probe(path)
    assert (info.video_codec, info.audio_codec) == ("mpeg1video", "mp2")
    assert (info.width, info.height, info.fps) == (360, 288, 25.0)
    times = read_frame_times(path)
    assert len(times) == 75
    np.testing.assert_allclose(times, np.arange(75) / 25, atol=1e-6)


def test_closing_early_stops_the_decoding_thread(tmp_path):
    path = write_video(tmp_path / "a.mp4", face_frames(30, 64), fps=10, audio=False)
    frames = iter_frames(path)
    next(frames), next(frames)
    frames.close()
    assert not [t for t in threading.enumerate() if t.name == "wav2kp-decode"]
    assert sorted(read_frames_at(path, [3, 1])) == [1, 3]
    assert not [t for t in threading.enumerate() if t.name == "wav2kp-decode"]


def audio_and_video(path, video_s: float, audio_s: float, audio_delay: float = 0.0):
    """A clip whose video lasts ``video_s`` and whose audio (a beep every second, from its
    own start) lasts ``audio_s`` and starts ``audio_delay`` s after the video."""
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"color=black:s=64x48:r=25:d={video_s},"
         "drawbox=c=white:t=fill:enable='lt(mod(t,1),0.039)'",
         "-f", "lavfi", "-i",
         f"aevalsrc='0.8*sin(2*PI*1000*t)*lt(mod(t,1),0.1)':s=16000:d={audio_s}",
         "-af", f"asetpts=PTS+{audio_delay}/TB",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    "video_s,audio_s,delay", [(1.0, 3.0, 0.0), (3.0, 1.2, 0.0), (3.0, 1.0, 1.0), (2.0, 2.0, 0.0)]
)
def test_audio_longer_or_shorter_than_the_video(tmp_path, video_s, audio_s, delay):
    """Both streams' spans are reported (extraction words the warning from them), and
    nothing is cut or stretched: every frame and sample stays on the one timeline."""
    path = audio_and_video(tmp_path / "clip.mp4", video_s, audio_s, delay)
    info = probe(path)
    assert info.video_start == pytest.approx(0.0, abs=1e-6)
    assert info.video_end == pytest.approx(video_s, abs=0.05)
    # (an audio stream's start includes AAC's encoder delay: 64 ms at 16 kHz)
    assert info.audio_start == pytest.approx(delay, abs=0.07)
    assert info.audio_end == pytest.approx(audio_s + delay, abs=0.05)
    times = read_frame_times(path)
    assert len(times) == round(video_s * 25)
    rate, _ = extract_audio_pcm(path, tmp_path / "a.wav", info=info)
    audio, _ = sf.read(tmp_path / "a.wav", always_2d=True)
    assert len(audio) / rate == pytest.approx(audio_s + delay, abs=0.05)
    # the beeps sit on the seconds of the shared timeline, where the flashes are
    loud = np.convolve(np.abs(audio[:, 0]), np.ones(80) / 80, "same") > 0.25  # 5 ms envelope
    onsets = np.flatnonzero(np.diff(np.concatenate([[False], loud]).astype(int)) == 1) / rate
    assert np.allclose(onsets, np.round(onsets), atol=0.01)
    assert onsets[0] == pytest.approx(delay, abs=0.01)
