"""Synthetic voices reading a real corpus's sentences, the real mouth warped onto them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_dataset import write_fake_corpus
from wav2kp.features.splits import ensure_split
from wav2kp.paths import CorpusPaths
from wav2kp.training import voices as V


def test_time_map_sends_each_word_to_its_real_time():
    real_words = [(0.5, 0.9, "bin"), (0.9, 1.5, "blue")]
    synth_words = [(0.0, 0.3), (0.3, 0.7)]
    synth, real = V.time_map(real_words, synth_words, lead=0.5, real_end=2.0, synth_end=1.6)
    np.testing.assert_allclose(np.interp([0.5, 0.8, 1.2], synth, real), [0.5, 0.9, 1.5])
    # the middle of a synthetic word is the middle of the real one (linear within words)
    assert np.interp(0.5 + 0.15, synth, real) == pytest.approx(0.7)
    assert np.all(np.diff(synth) > 0) and np.all(np.diff(real) > 0)


def test_warp_track_interpolates_and_keeps_missing_frames_missing():
    times = np.arange(5) * 0.04
    lm = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 68, 2), np.float32)
    valid = np.array([True, True, False, True, True])
    out, ok = V.warp_track(times, lm, valid, np.array([0.02, 0.05, 0.14, 0.16]))
    assert ok.tolist() == [True, False, True, True]
    np.testing.assert_allclose(out[0, 0, 0], 0.5)
    np.testing.assert_allclose(out[2, 0, 0], 3.5)
    assert np.isnan(out[1]).all()


@pytest.fixture
def aligned_corpus(tmp_path):
    paths = write_fake_corpus(tmp_path, n_sentences=4)
    manifest = pd.read_csv(paths.extracted / "manifest.csv")
    align = tmp_path / "align"
    align.mkdir()
    for s in range(4):  # 'sentence N': two spoken words between silences (GRID's format)
        end = int((1.0 + 0.1 * s) * 25000)
        lines = ["0 5000 sil", "5000 15000 sentence", f"15000 {end - 2500} {s}",
                 f"{end - 2500} {end} sil"]  # fmt: skip
        (align / f"s{s:02d}.align").write_text("\n".join(lines) + "\n")
    ensure_split("fake", root=tmp_path)
    return paths, align, manifest


def test_build_voices_writes_clips_and_trains_with_them(aligned_corpus, one_torch_thread):
    from wav2kp.config import TrainConfig
    from wav2kp.extraction.reader import read_extraction
    from wav2kp.training.train import load_corpus_for_training, train_model

    paths, align, _ = aligned_corpus
    root = paths.base
    table = V.build_voices("fake", align, copies=2, root=root, progress=False)
    assert (table["status"] == "ok").all() and len(table)
    out = CorpusPaths("fake-voices", root)
    first = table.iloc[0]
    extraction = read_extraction(out.extracted / f"{first['clip_id']}.npz")
    assert extraction.lm68.shape == (len(extraction.times), 68, 2) and extraction.valid.mean() > 0.8
    assert len(set(table["voice"])) > 1  # voices differ between copies
    audio_before = (out.audio / f"{first['clip_id']}.wav").read_bytes()
    again = V.build_voices("fake", align, copies=2, root=root, progress=False)  # resumes
    assert (out.audio / f"{first['clip_id']}.wav").read_bytes() == audio_before
    assert again["clip_id"].tolist() == table["clip_id"].tolist()
    # the real clips' phone timing, espeak's phones carried onto the alignment
    with np.load(out.interim / "source_phones" / f"{first['source_clip']}.npz") as phones:
        assert len(phones["phone_names"]) and np.all(np.diff(phones["phone_starts"]) >= 0)

    data = load_corpus_for_training("fake", progress=False, root=root)
    context = {**data.context, "corpus": "fake"}
    settings = {"copies": 1, "root": str(root)}
    extra = V.voice_clips(data.train, settings, context, seed=0)
    assert len(extra) == len(data.train)
    by_id = {c.clip_id: c for c in data.train}
    for clip in extra:
        source = by_id[clip.extra["voice_of"]]
        assert clip.speaker == source.speaker and clip.sentence_id == source.sentence_id
        assert np.isfinite(clip.targets[clip.valid]).all()
    config = TrainConfig.preset("default", epochs=1, crop_frames=20, voices=settings)
    result = train_model(data.train, [], config, root / "model", progress=False, context=context)
    assert result.epochs_run == 1
    import torch

    saved = torch.load(result.best_checkpoint, weights_only=True)
    # trained with the voices (the recipe says so), fingerprinted on the corpus's own
    # clips, so the model loads for the corpus it was trained on
    assert saved["train_config"]["voices"]["copies"] == 1
    assert set(saved["fingerprint"]["train_clips"]) == {c.clip_id for c in data.train}
    from wav2kp.training.inference import load_predictor

    load_predictor(result.best_checkpoint, corpus="fake", root=root)
