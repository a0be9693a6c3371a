"""silero-vad's speech probability (wav2kp.features.voice) on real and synthetic audio."""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest
from wav2kp.features.voice import CHUNK, CHUNK_S, chunk_probabilities, speech_probability
from wav2kp.paths import project_root
from wav2kp.training.vad import read_grid_align, speech_from_words

SR, FPS = 16000, 25.0
GRID = project_root().parent / "shared" / "grid-s1"
SENTENCES = ("bbaf3s", "bbaf5a", "bbal8p")


@functools.cache
def grid_sentence(sentence: str, sample_rate: int | None = SR):
    """(samples, rate, frame times, speech truth) of a GRID speaker-1 sentence (cached:
    read-only for the tests)."""
    if not (GRID / "align" / f"{sentence}.align").is_file():
        pytest.skip(f"GRID sentences not available at {GRID}")
    from wav2kp.media.audio import load_audio

    samples, rate = load_audio(GRID / f"{sentence}.mp4", sample_rate=sample_rate)
    times = np.arange(int(len(samples) / rate * FPS)) / FPS
    truth = speech_from_words(read_grid_align(GRID / "align" / f"{sentence}.align"), times)
    return samples, rate, times, truth


def inner(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """Frames of ``mask`` at least ``margin`` frames from its edges (boundaries are fuzzy)."""
    out = mask.copy()
    for shift in range(1, margin + 1):
        out[shift:] &= mask[:-shift]
        out[:-shift] &= mask[shift:]
    return out


@pytest.mark.parametrize("sentence", SENTENCES)
def test_high_in_words_low_in_silence_of_a_grid_sentence(sentence):
    samples, sr, times, truth = grid_sentence(sentence)
    probability = speech_probability(samples, sr, times)
    assert probability.dtype == np.float32 and probability.shape == times.shape
    assert ((probability >= 0) & (probability <= 1)).all()
    # measured on these three: inner word frames 0.93-0.98 on average, silences <= 0.05
    assert probability[inner(truth)].mean() > 0.85
    assert probability[inner(~truth)].mean() < 0.15
    assert np.quantile(probability[inner(truth)], 0.1) > 0.5


def test_low_on_silence_and_noise():
    rng = np.random.default_rng(0)
    times = np.arange(int(3 * FPS)) / FPS
    assert speech_probability(np.zeros(3 * SR, np.float32), SR, times).max() < 0.1
    for level in (0.01, 0.05, 0.2):
        noise = (level * rng.standard_normal(3 * SR)).astype(np.float32)
        assert speech_probability(noise, SR, times).max() < 0.2, level


def test_times_follow_the_signal():
    """Speech delayed by a whole number of chunks: the probability moves with it."""
    samples, sr, times, truth = grid_sentence(SENTENCES[0])
    delay_chunks = 25
    delay_s = delay_chunks * CHUNK_S
    delayed = np.r_[np.zeros(delay_chunks * CHUNK, np.float32), samples]
    original = speech_probability(samples, sr, times)
    moved = speech_probability(delayed, sr, times + delay_s)
    # the state differs after the extra silence, so the values agree only roughly ...
    assert np.abs(moved - original).mean() < 0.03
    # ... but speech starts and ends at the same frames
    np.testing.assert_array_equal(moved > 0.5, original > 0.5)
    # chunk i sits at its centre, (i + 0.5) * 32 ms
    chunks = chunk_probabilities(samples, sr)
    centres = (np.arange(len(chunks)) + 0.5) * CHUNK_S
    np.testing.assert_allclose(speech_probability(samples, sr, centres), chunks, atol=1e-6)
    assert len(chunks) == -(-len(samples) // CHUNK)


def test_resampled_input_gives_the_same_probability():
    from wav2kp.media.audio import resample

    samples, sr, times, _ = grid_sentence(SENTENCES[1])
    reference = speech_probability(samples, sr, times)
    for rate in (22050, 44100):
        other = speech_probability(resample(samples, SR, rate), rate, times)
        assert np.abs(other - reference).mean() < 0.02, rate
        assert np.abs(other - reference).max() < 0.15, rate


def test_deterministic_and_stateless_across_calls_and_threads():
    samples, sr, times, _ = grid_sentence(SENTENCES[2])
    other, _, other_times, _ = grid_sentence(SENTENCES[0])
    first = speech_probability(samples, sr, times)
    speech_probability(other, sr, other_times)  # a call in between leaves no state behind
    np.testing.assert_array_equal(speech_probability(samples, sr, times), first)
    results = [None] * 4

    def work(k):
        results[k] = speech_probability(samples if k % 2 else other, sr,
                                        times if k % 2 else other_times)  # fmt: skip

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(results[1], first)
    np.testing.assert_array_equal(results[3], first)
    np.testing.assert_array_equal(results[0], speech_probability(other, sr, other_times))


def test_leaves_the_callers_torch_threads_alone():
    import torch

    before = torch.get_num_threads()
    speech_probability(np.zeros(SR, np.float32), SR, np.arange(10) / FPS)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("samples", "rate", "message"),
    [
        (np.zeros(0, np.float32), SR, "empty"),
        (np.r_[np.zeros(100), np.nan, np.zeros(10)], SR, "1 of 111 samples are NaN"),
        (np.r_[np.zeros(100), np.inf], SR, "NaN or infinite"),
        (np.zeros((SR, 2), np.float32), SR, "mono"),
        (np.zeros(SR, np.float32), 0, "sample rate"),
        (np.array(["a", "b"]), SR, "numeric"),
    ],
)
def test_bad_input_is_a_clear_error(samples, rate, message):
    with pytest.raises(ValueError, match=message):
        speech_probability(samples, rate, np.arange(5) / FPS)


def test_bad_times_are_a_clear_error():
    with pytest.raises(ValueError, match="NaN"):
        speech_probability(np.zeros(SR, np.float32), SR, np.array([0.0, np.nan]))


def test_short_input_and_no_times():
    assert speech_probability(np.zeros(100, np.float32), SR, np.array([0.0])).shape == (1,)
    assert speech_probability(np.zeros(SR, np.float32), SR, np.zeros(0)).shape == (0,)
