"""load_audio: any container to float32 samples at the rate asked for."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
from test_extract_videos import FFMPEG, face_frames, write_video
from wav2kp.media.audio import AudioError, load_audio, write_wav


def tone(freq: float, rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return mono if channels == 1 else np.stack([mono, 0.5 * mono], axis=1)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_wav_is_resampled_and_mixed_to_mono(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, tone(440, 44100, 1.0, channels=2), 44100, subtype="PCM_16")
    samples, rate = load_audio(path)
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 16000) <= 2
    assert abs(peak_hz(samples, rate) - 440) < 3
    # mono is the channel mean: 0.5 and 0.25 amplitude -> 0.375
    assert np.abs(samples).max() == pytest.approx(0.375, abs=0.02)


def test_original_rate_and_channels_kept_on_request(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, tone(300, 22050, 0.5, channels=2), 22050)
    samples, rate = load_audio(path, sample_rate=None, mono=False)
    assert rate == 22050 and samples.shape == (11025, 2)


@pytest.mark.parametrize("suffix,codec", [(".mp3", "libmp3lame"), (".m4a", "aac")])
def test_compressed_audio_goes_through_ffmpeg(tmp_path, suffix, codec):
    wav = tmp_path / "src.wav"
    sf.write(wav, tone(500, 48000, 1.0), 48000)
    path = tmp_path / f"tone{suffix}"
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-i", str(wav), "-c:a", codec, str(path)], check=True
    )
    samples, rate = load_audio(path)
    assert rate == 16000 and 0.95 < len(samples) / 16000 < 1.1
    assert abs(peak_hz(samples, rate) - 500) < 3


def test_audio_track_of_a_video(tmp_path):
    video = write_video(tmp_path / "v.mp4", face_frames(10, 64), fps=10, audio_rate=32000)
    samples, rate = load_audio(video)
    assert rate == 16000 and abs(peak_hz(samples, rate) - 440) < 3


def test_write_wav_round_trip(tmp_path):
    data = tone(200, 16000, 0.25)
    path = write_wav(tmp_path / "out" / "a.wav", data, 16000)
    back, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and sf.info(path).subtype == "PCM_16"
    np.testing.assert_allclose(back, data, atol=1e-4)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: no such file"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioError, match="empty.wav: empty file"):
        load_audio(empty)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="garbage.wav"):
        load_audio(garbage)
    silent_video = write_video(tmp_path / "mute.mp4", face_frames(3, 64), audio=False)
    with pytest.raises(AudioError, match="mute.mp4: no audio stream"):
        load_audio(silent_video)


def test_one_sample_rate_for_every_stage():
    """Extraction stores, and features, models, baselines, augmentation, synthetic voices,
    the silence gate and predict read, audio at ``wav2kp.media.audio.SAMPLE_RATE``: no module
    writes its own 16 kHz (the original replica's recipe in wav2kp.config keeps its own)."""
    import inspect
    import io
    import tokenize

    from wav2kp.evaluation import baselines
    from wav2kp.extraction import extract_clip
    from wav2kp.features import features
    from wav2kp.media import audio
    from wav2kp.paths import project_root
    from wav2kp.predict import predict
    from wav2kp.training import augmentation, voices

    assert audio.SAMPLE_RATE == 16000
    assert features.FeatureConfig().sample_rate == audio.SAMPLE_RATE
    assert extract_clip.ExtractParams().audio_sample_rate == audio.SAMPLE_RATE
    assert augmentation.SAMPLE_RATE == voices.SAMPLE_RATE == audio.SAMPLE_RATE
    for function in (load_audio, predict.read_speech, baselines.LoudnessBaseline.__init__):
        assert inspect.signature(function).parameters["sample_rate"].default == audio.SAMPLE_RATE
    package = project_root() / "lib" / "wav2kp"
    literals = []
    for path in sorted(package.rglob("*.py")):
        if path.name in ("audio.py", "config.py") or "benchmarks" in path.parts:
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        literals += [f"{path.name}:{t.start[0]}" for t in tokens
                     if t.type == tokenize.NUMBER and t.string.replace("_", "") == "16000"]  # fmt: skip
    assert not literals, f"16 kHz written outside wav2kp.media.audio: {literals}"
