"""Voice activity gate, silence weights, the mouth gate and the silence measure."""

from __future__ import annotations

import numpy as np
import pytest
from wav2kp.paths import project_root
from wav2kp.training.vad import (
    JAW_AND_MOUTH,
    VadConfig,
    gate_accuracy,
    gate_targets,
    read_grid_align,
    silence_weights,
    silent_open_share,
    speech_from_words,
    voice_activity,
)

SR, FPS = 16000, 25.0


def bursts(spans, duration, noise_floor=1e-3, seed=0):
    """Voiced-like bursts (150 Hz harmonics) in ``spans`` (seconds) over a noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * SR)) / SR
    on = np.zeros(len(t), bool)
    for a, b in spans:
        on |= (t >= a) & (t < b)
    voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))
    return (0.3 * voice * on + noise_floor * rng.standard_normal(len(t))).astype(np.float32)


def test_gate_finds_speech_bridges_short_pauses_and_leads_the_sound():
    spans = [(0.8, 1.4), (1.5, 2.2), (3.0, 3.6)]  # a 0.1 s pause inside the first phrase
    audio = bursts(spans, 4.5)
    times = np.arange(int(4.5 * FPS)) / FPS
    config = VadConfig(pre_roll_s=0.0, post_roll_s=0.0)
    active = voice_activity(audio, SR, times, config)
    truth = speech_from_words([(a, b, "w") for a, b in spans], times)
    assert gate_accuracy(active, truth)["accuracy"] > 0.93
    assert active[(times > 1.41) & (times < 1.49)].all()  # short pause bridged
    assert not active[(times > 2.4) & (times < 2.8)].any()  # real pause kept
    lead = voice_activity(audio, SR, times, VadConfig(pre_roll_s=0.12, post_roll_s=0.0))
    first = np.flatnonzero(lead)[0]
    assert times[first] == pytest.approx(0.8 - 0.12, abs=1.01 / FPS)
    # loudness does not matter: the gate is relative to the clip's loud level
    np.testing.assert_array_equal(voice_activity(0.05 * audio, SR, times, config), active)


def test_weights_ramp_into_silence_and_gate_only_jaw_and_mouth():
    active = np.array([0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    weights = silence_weights(active, 0.04, ramp_s=0.08)
    np.testing.assert_allclose(weights[4:7], 1.0)
    np.testing.assert_allclose(weights[[3, 7]], 0.5)
    np.testing.assert_allclose(weights[[0, 1, 9, 10, 11]], 0.0)
    targets = np.ones((len(active), 136))
    gated = gate_targets(targets, weights).reshape(len(active), 68, 2)
    np.testing.assert_allclose(
        gated[:, JAW_AND_MOUTH], weights[:, None, None].repeat(37, 1).repeat(2, 2)
    )
    others = np.setdiff1d(np.arange(68), JAW_AND_MOUTH)
    np.testing.assert_allclose(gated[:, others], 1.0)  # eyes, brows, nose untouched
    pca = gate_targets(np.ones((len(active), 8)), weights)
    np.testing.assert_allclose(pca, weights[:, None].repeat(8, 1))


def test_silent_open_share():
    speech = np.array([1] * 10 + [0] * 10, bool)
    opening = np.r_[np.full(10, 0.3), np.full(8, 0.1), [0.14, 0.2]]
    # closed at 0.1: speech excess 0.2, so silent frames above 0.1 + 0.02 count
    assert silent_open_share(opening, speech, closed_opening=0.1) == pytest.approx(0.2)
    assert np.isnan(silent_open_share(opening, np.ones(20, bool), 0.1))


def test_grid_align_reader(tmp_path):
    path = tmp_path / "x.align"
    path.write_text("0 17750 sil\n17750 22500 bin\n22500 27000 blue\n27000 74500 sil\n")
    words = read_grid_align(path)
    assert words[1] == (0.71, 0.9, "bin")
    speech = speech_from_words(words, np.array([0.5, 0.8, 1.0, 1.2]))
    np.testing.assert_array_equal(speech, [False, True, True, False])
    path.write_text("0 17750\n")
    with pytest.raises(ValueError, match=r"x\.align:1"):
        read_grid_align(path)


def test_gate_agrees_with_grid_alignments_on_real_speech():
    grid = project_root().parent / "shared" / "grid-s1"
    if not (grid / "align").is_dir():
        pytest.skip(f"GRID sentences not available at {grid}")
    from wav2kp.media.audio import load_audio

    scores = []
    for sentence in sorted(p.stem for p in (grid / "align").glob("*.align"))[:6]:
        samples, sr = load_audio(grid / f"{sentence}.mp4", sample_rate=SR)
        times = np.arange(int(len(samples) / sr * FPS)) / FPS
        truth = speech_from_words(read_grid_align(grid / "align" / f"{sentence}.align"), times)
        config = VadConfig(pre_roll_s=0.0, post_roll_s=0.0)
        scores.append(gate_accuracy(voice_activity(samples, sr, times, config), truth))
    assert np.mean([s["accuracy"] for s in scores]) > 0.9
