"""Waveform augmentation: deterministic, timing-preserving copies with the same targets."""

from __future__ import annotations

import numpy as np
import pytest
from wav2kp.config import FeatureConfig
from wav2kp.features.features import FeatureStats, compute_features
from wav2kp.training.augmentation import (
    AugmentConfig,
    Perturbation,
    augment_clips,
    draw_perturbation,
    perturb,
)

SR = 16000


def tone_bursts(duration=2.0, onset=0.7):
    t = np.arange(int(duration * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 15))
    return (0.3 * voice * (t >= onset)).astype(np.float32)


def onset_time(samples, threshold=0.05):
    return np.flatnonzero(np.abs(samples) > threshold)[0] / SR


def test_speed_rescales_time_and_other_transforms_keep_it():
    audio = tone_bursts()
    rng = np.random.default_rng(0)
    fast = perturb(audio, Perturbation(speed=1.25), rng)
    assert len(fast) == pytest.approx(len(audio) / 1.25, abs=2)
    assert onset_time(fast) == pytest.approx(0.7 / 1.25, abs=0.005)
    busy = Perturbation(pitch_semitones=4.0, eq=(150.0, 4000.0, 1000.0, 6.0), reverb_rt60=0.5,
                        reverb_wet=0.5, snr_db=20.0, noise_colour=1.0, gain_db=-6.0)  # fmt: skip
    other = perturb(audio, busy, rng)
    assert len(other) == len(audio)
    # the sound still starts when it did: no delay from filters, room or pitch shift
    level = np.convolve(other**2, np.ones(160) / 160, mode="same")
    assert onset_time(np.sqrt(level), 0.5 * np.sqrt(level).max()) == pytest.approx(0.7, abs=0.03)
    assert np.abs(other).max() <= 1.0


def test_draws_are_deterministic_and_respect_probabilities():
    config = AugmentConfig(speed_p=0.0, pitch_p=1.0, noise_p=0.0, reverb_p=0.0, eq_p=0.0)
    first = draw_perturbation(config, np.random.default_rng(5))
    assert first == draw_perturbation(config, np.random.default_rng(5))
    assert first.speed == 1.0 and first.snr_db is None and first.eq is None
    assert -3.0 <= first.pitch_semitones <= 5.0
    assert AugmentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="reversed"):
        AugmentConfig(snr_db=(30.0, 5.0))


def test_augmented_copies_keep_targets_and_follow_the_speed(tmp_path):
    import soundfile as sf
    from wav2kp.config import WindowConfig
    from wav2kp.windowing.dataset import make_clip

    audio = tone_bursts(3.0)
    sf.write(tmp_path / "a.wav", audio, SR)
    config = FeatureConfig(kind="logmel", cmvn="mean")
    raw, feature_times = compute_features(audio, SR, config)
    stats = FeatureStats.fit([raw], config, ["a"])
    frame_times = np.arange(75) / 25.0
    landmarks = np.random.default_rng(0).normal(100, 5, size=(75, 68, 2)).astype(np.float32)
    clip = make_clip("a", frame_times, landmarks, np.ones(75, bool), raw, feature_times, stats,
                     WindowConfig(), None, audio_path=tmp_path / "a.wav")  # fmt: skip
    clip.targets[:] = np.arange(75)[:, None]
    augment = AugmentConfig(copies=3, speed_p=1.0, speed=(0.8, 0.8))
    copies = augment_clips([clip], augment, stats.to_dict(), seed=1, progress=False)
    assert [c.clip_id for c in copies] == ["a~aug0", "a~aug1", "a~aug2"]
    for copy in copies:
        np.testing.assert_allclose(copy.frame_times, frame_times / 0.8)
        np.testing.assert_array_equal(copy.targets, clip.targets)
        assert copy.features.shape[1] == clip.features.shape[1]
        assert len(copy.feature_times) == pytest.approx(len(feature_times) / 0.8, abs=2)
        assert np.asarray(copy.windows).shape == (75, *clip.windows.shape[1:])
    again = augment_clips([clip], augment, stats, seed=1, progress=False)
    np.testing.assert_array_equal(again[1].features, copies[1].features)
    other_seed = augment_clips([clip], augment, stats, seed=2, progress=False)
    assert not np.array_equal(other_seed[1].features, copies[1].features)
    with pytest.warns(UserWarning, match="no audio"):
        assert augment_clips([clip.__class__(**{**clip.__dict__, "audio_path": None})],
                             augment, stats, progress=False) == []  # fmt: skip
