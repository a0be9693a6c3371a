"""The phonetic stream: pocketsphinx phones on real speech, forced alignment against GRID's
own word times, per-frame encoding, and its place in the features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wav2kp.config import PHONETIC_DIM, FeatureConfig
from wav2kp.features import phonetic
from wav2kp.features.features import FeatureStats, compute_features
from wav2kp.features.phonetic import (
    VISEMES,
    PhoneSegment,
    aligned_phones,
    allphone_segments,
    cached_allphone_segments,
    phonetic_frames,
    viseme_of,
)
from wav2kp.paths import project_root
from wav2kp.training.vad import read_grid_align

GRID = project_root().parent / "shared" / "grid-s1"


@pytest.fixture(scope="module")
def grid_sentence():
    """(samples at 16 kHz, transcript, GRID word alignment) of one real GRID sentence."""
    from wav2kp.media.audio import load_audio

    video = GRID / "bbaf3s.mp4"
    if not video.is_file():
        pytest.skip(f"GRID speaker 1 not available at {GRID}")
    samples, _ = load_audio(video, sample_rate=16000)
    return samples, "bin blue at f three soon", read_grid_align(GRID / "align" / "bbaf3s.align")


def test_every_phone_of_the_model_has_a_viseme():
    from pocketsphinx import get_model_path

    phones = set()
    for line in (Path(get_model_path()) / "en-us" / "cmudict-en-us.dict").read_text().splitlines():
        phones.update(p.rstrip("012") for p in line.split()[1:])
    assert phones, "CMUdict read as empty"
    unmapped = {p for p in phones if p not in phonetic.VISEME_OF}
    assert not unmapped
    assert viseme_of("B") == viseme_of("M") == "bilabial"
    assert viseme_of("+NSN+") == "silence"
    assert len(VISEMES) + 1 == PHONETIC_DIM


def test_frames_are_one_hot_with_the_position_inside_each_phone():
    segments = [PhoneSegment("SIL", 0.0, 0.1), PhoneSegment("M", 0.1, 0.2),
                PhoneSegment("AA", 0.2, 0.4)]  # fmt: skip
    times = np.array([0.05, 0.1, 0.15, 0.3, 0.39, 0.5])
    frames = phonetic_frames(segments, times)
    assert frames.shape == (6, PHONETIC_DIM)
    classes = [VISEMES[i] for i in frames[:, :-1].argmax(axis=1)]
    assert classes == ["silence", "bilabial", "bilabial", "open", "open", "silence"]
    np.testing.assert_array_equal(frames[:, :-1].sum(axis=1), 1.0)
    # position: 0 at a phone's start, half-way 0.5, past every segment 0
    np.testing.assert_allclose(frames[:, -1], [0.5, 0.0, 0.5, 0.5, 0.95, 0.0], atol=1e-6)


def test_forced_alignment_places_words_where_grid_says(grid_sentence):
    samples, text, words = grid_sentence
    segments = aligned_phones(samples, text, source="bbaf3s")
    spoken = [w for _, _, w in words if w not in ("sil", "sp")]
    starts = {}
    for seg in segments:
        if seg.word and seg.word not in starts:
            starts[seg.word] = seg.start
    assert list(starts) == spoken
    grid_starts = {w: a for a, _, w in words if w in starts}
    errors = [abs(starts[w] - grid_starts[w]) for w in spoken]
    assert np.median(errors) < 0.04  # one 25 fps frame
    assert max(errors) < 0.1
    assert [s.phone for s in segments if s.word == "bin"] == ["B", "IH", "N"]


def test_forced_alignment_names_the_clip_on_unknown_words(grid_sentence):
    samples, _, _ = grid_sentence
    with pytest.raises(ValueError, match="clip7.*qzxv"):
        aligned_phones(samples, "bin qzxv", source="clip7")
    # GRID's short-pause token is not a word
    assert aligned_phones(samples, "bin blue sp at f three soon", source="x")


def test_allphone_hears_speech_where_the_alignment_has_it(grid_sentence):
    samples, text, _ = grid_sentence
    decoded = allphone_segments(samples)
    aligned = aligned_phones(samples, text)
    times = np.arange(0, len(samples) / 16000, 0.0125)
    hyp = phonetic_frames(decoded, times)[:, 0] == 0  # not silence
    ref = phonetic_frames(aligned, times)[:, 0] == 0
    assert (hyp == ref).mean() > 0.85
    # deterministic, and the cache returns what decoding returns
    assert allphone_segments(samples) == decoded


def test_cache_by_content(grid_sentence, tmp_path, monkeypatch):
    samples, _, _ = grid_sentence
    first = cached_allphone_segments(samples[:16000], root=tmp_path)
    assert len(list((tmp_path / "interim" / "phones").glob("*.json"))) == 1
    monkeypatch.setattr(phonetic, "allphone_segments", lambda *_: pytest.fail("decoded again"))
    assert cached_allphone_segments(samples[:16000], root=tmp_path) == first


def test_features_carry_the_stream_and_stats_leave_it_raw(grid_sentence, monkeypatch, tmp_path):
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path))
    samples, _, _ = grid_sentence
    config = FeatureConfig(kind="logmel", phones="allphone")
    plain, times = compute_features(samples, 16000, FeatureConfig(kind="logmel"))
    both, times2 = compute_features(samples, 16000, config)
    assert both.shape == (len(plain), 40 + PHONETIC_DIM) and config.dim == both.shape[1]
    np.testing.assert_array_equal(both[:, :40], plain)
    np.testing.assert_array_equal(times, times2)
    stats = FeatureStats.fit([both], config)
    np.testing.assert_array_equal(stats.apply(both)[:, 40:], both[:, 40:])
    assert abs(stats.apply(both)[:, :40].mean()) < 1e-3
    # a config without the stream stays what it was before the field existed
    assert "phones" not in FeatureConfig().to_dict()
    assert FeatureConfig.from_dict(config.to_dict()) == config


def test_the_stream_plot_names_each_viseme_and_refuses_features_without_it():
    import matplotlib

    matplotlib.use("Agg")
    from wav2kp.plots.phones import plot_phonetic_stream

    config = FeatureConfig(kind="logmel", phones="allphone")
    times = np.arange(40) * config.hop_seconds
    stream = phonetic_frames([PhoneSegment("M", 0.1, 0.2), PhoneSegment("AA", 0.2, 0.4)], times)
    features = np.concatenate([np.zeros((40, config.spectral_dim), np.float32), stream], axis=1)
    fig = plot_phonetic_stream(features, times, config, times, np.sin(times), VISEMES)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(VISEMES)
    # the drawn image is the one-hot part: bilabial where M was, open where AA was
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (len(VISEMES), 40)
    assert image[VISEMES.index("bilabial"), 10] == 1 and image[VISEMES.index("open"), 20] == 1
    with pytest.raises(ValueError, match="no phonetic stream"):
        plot_phonetic_stream(features[:, :40], times, FeatureConfig(kind="logmel"), times,
                             np.sin(times), VISEMES)  # fmt: skip
