"""Demo corpus speech: espeak-ng synthesis and phoneme -> viseme articulation."""

from __future__ import annotations

import numpy as np
import pytest
from wav2kp.demo.tts import Prosody, synthesize
from wav2kp.demo.visemes import (
    Segment,
    articulation,
    normalise,
    phoneme_targets,
    segments_from_events,
)

FPS = 30000 / 1001


def test_tts_gives_audio_and_monotonic_phoneme_events():
    speech = synthesize("O papai bebe mamão.")
    assert speech.sample_rate == 22050
    assert speech.audio.dtype == np.float32 and 0.8 < speech.duration < 4.0
    assert np.abs(speech.audio).max() > 0.1
    times = [t for t, _ in speech.phonemes]
    assert len(times) >= 10
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] <= speech.duration + 1e-6
    names = [normalise(n) for _, n in speech.phonemes]
    assert names.count("p") == 2 and names.count("b") == 2 and names.count("m") == 2


def test_prosody_changes_rate_and_loudness():
    slow = synthesize("A menina comeu uva.", Prosody(rate=120, volume=70))
    fast = synthesize("A menina comeu uva.", Prosody(rate=220, volume=160))
    assert fast.duration < 0.8 * slow.duration
    assert np.sqrt(np.mean(fast.audio**2)) > 1.5 * np.sqrt(np.mean(slow.audio**2))


def test_tts_is_deterministic_and_rejects_bad_input():
    a = synthesize("Vovó fez pipoca.")
    synthesize("Outra frase qualquer.", Prosody(rate=200, pitch=80))  # history must not matter
    b = synthesize("Vovó fez pipoca.")
    assert np.array_equal(a.audio, b.audio) and a.phonemes == b.phonemes
    with pytest.raises(ValueError, match="empty"):
        synthesize("   ")
    with pytest.raises(ValueError, match="no voice"):
        synthesize("teste", voice="no-such-voice")


def test_voiceless_stop_closure_starts_at_the_silence_before_the_burst():
    speech = synthesize("O papai bebe mamão.")
    raw = speech.phonemes
    segs = segments_from_events(raw, speech.duration, speech.audio, speech.sample_rate)
    first_p = next(i for i, s in enumerate(segs) if normalise(s.name) == "p")
    # the event fires at the burst; the refined segment starts earlier, in silence
    assert segs[first_p].start < raw[first_p][0] - 0.01
    a = int(segs[first_p].start * speech.sample_rate) + 20
    b = int(raw[first_p][0] * speech.sample_rate) - 20
    assert np.sqrt(np.mean(speech.audio[a:b] ** 2)) < 0.02


def test_bilabials_close_the_lips_and_vowels_open_them():
    speech = synthesize("O papai bebe mamão.")
    segs = segments_from_events(speech.phonemes, speech.duration, speech.audio, speech.sample_rate)
    times = np.arange(0, speech.duration, 0.005)
    art = articulation(segs, times)
    for seg in segs:
        core = (times > seg.start + 0.3 * (seg.end - seg.start)) & (
            times < seg.end - 0.3 * (seg.end - seg.start)
        )
        if not core.any():
            continue
        if normalise(seg.name) in {"p", "b", "m"}:
            assert art["jaw"][core].max() < 1e-6, seg
            assert art["closure"][core].min() > 0.999
        if normalise(seg.name) in {"a", "aI", "E", "&U"} and seg.end - seg.start > 0.06:
            assert art["jaw"][core].max() > 0.3, seg
    assert np.all(np.abs(np.diff(art["jaw"])) < 0.2)  # smooth: no jumps at 200 Hz


def test_rounding_anticipates_a_rounded_vowel():
    # /s/ then /u/: lips round before the vowel sounds (coarticulation)
    segs = [Segment(0.0, 0.2, "_"), Segment(0.2, 0.35, "s"), Segment(0.35, 0.55, "'u")]
    segs.append(Segment(0.55, 0.9, "_"))
    times = np.array([0.1, 0.33, 0.45])
    art = articulation(segs, times)
    assert art["round"][0] < 0.1
    assert art["round"][1] > 0.3  # during /s/, already rounding towards /u/
    assert art["round"][2] > 0.8
    assert art["spread"][2] < 0
    assert list(art["phoneme"]) == ["_", "s", "u"]


def test_vowel_classes_have_distinct_shapes():
    (a,), (i,), (u,) = phoneme_targets("'a"), phoneme_targets("i"), phoneme_targets("u~")
    assert a.jaw > i.jaw and a.jaw > u.jaw
    assert i.spread > a.spread > u.spread
    assert u.round > a.round
    assert len(phoneme_targets("'aU")) == 2  # diphthong: two targets
    assert phoneme_targets("N") == []  # nasal coda shapes only its neighbours
    assert phoneme_targets("m")[0].bilabial


def test_events_out_of_order_are_refused():
    with pytest.raises(ValueError, match="order"):
        segments_from_events([(0.2, "a"), (0.1, "p")], 0.5)
