"""Lever cross-validation and unseen-voice scoring on a small fake corpus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_dataset import write_fake_corpus
from wav2kp import robustness as R
from wav2kp.splits import ensure_split


@pytest.fixture
def corpus(tmp_path):
    paths = write_fake_corpus(tmp_path, n_sentences=6)
    ensure_split("fake", root=tmp_path)
    return paths


def test_sources_folds_and_perturbed_copies(corpus):
    sources = R.load_sources("fake", ("train", "val"), root=corpus.base, progress=False)
    assert sources and {s.split for s in sources} <= {"train", "val"}
    folds = R.sentence_folds(sources, 2, seed=0)
    by_sentence = pd.DataFrame({"s": [s.sentence_id for s in sources], "f": folds})
    assert (by_sentence.groupby("s")["f"].nunique() == 1).all()  # sentences never split
    assert set(folds) == {0, 1}
    heard = R.perturbed_sources(sources[:2], {"speed": 1.25, "snr_db": 20.0})
    assert len(heard[0].samples) == pytest.approx(len(sources[0].samples) / 1.25, abs=2)
    np.testing.assert_allclose(heard[0].times, sources[0].times / 1.25)
    np.testing.assert_array_equal(heard[0].lm68, sources[0].lm68)


def test_cv_scores_every_set_and_resumes(corpus, one_torch_thread):
    sources = R.load_sources("fake", ("train", "val"), root=corpus.base, progress=False)
    proxy = R.load_sources("fake", ("test",), root=corpus.base, progress=False)
    variants = {"plain": {}, "cmvn": {"features": {"cmvn": "mean"}}}
    conditions = {"val_phone": R.HELD_OUT_CONDITIONS["val_phone"]}
    out = corpus.base / "cv"
    budget = {"epochs": 1, "crop_frames": 20}
    table = R.run_cv(sources, variants, out, n_folds=2, budget=budget,
                     proxies={"proxy": proxy}, conditions=conditions, progress=False)  # fmt: skip
    assert set(table["set"]) == {"val", "val_phone", "proxy"}
    assert set(table["model"]) == {"model", "model+gate"}
    assert set(table["variant"]) == {"plain", "cmvn"} and set(table["fold"]) == {0, 1}
    assert np.isfinite(table["mouth_open_r"]).mean() > 0.5
    # each fold's val rows are exactly its held-out sentences, once per model
    val = table[(table["set"] == "val") & (table["model"] == "model")]
    assert sorted(val["clip_id"]) == sorted([s.clip_id for s in sources] * 2)  # 2 variants
    again = R.run_cv(sources, variants, out, n_folds=2, budget=budget,
                     proxies={"proxy": proxy}, conditions=conditions, progress=False)  # fmt: skip
    assert len(again) == len(table)  # finished runs are not trained or scored again
    summary = R.summarise_cv(table)
    assert summary.loc[("plain", "val", "model"), "runs"] == 2


def test_final_scores_held_out_sentences_and_unseen_voices(corpus, one_torch_thread):
    variant = {
        "features": {"cmvn": "mean"},
        "train": {"epochs": 2, "crop_frames": 20, "scheduler": "none"},
    }
    out = corpus.base / "final"
    table, targets = R.run_final("fake", variant, out, seeds=(0, 1), unseen_corpus="fake",
                                 unseen_exclude="^ann", progress=False, root=corpus.base)  # fmt: skip
    assert set(table["set"]) == {"fake test", "fake (unseen voices)"}
    unseen = table[table["set"] == "fake (unseen voices)"]
    assert not unseen["clip_id"].str.startswith("ann").any() and len(unseen)
    assert set(table["model"]) == {"model", "model+gate", "mean_face"}
    assert set(table["seed"]) == {0, 1} and set(table["space"]) == {"aligned", "frame"}
    same = targets[(targets["set"] == "fake test") & (targets["model"] == "model")]
    assert list(same["target"]) == [t[0] for t in R.SAME_VOICE_TARGETS]
    lmd = same.set_index("target").loc["mouth LMD vs mean face"]
    assert np.isfinite(lmd["estimate"]) and lmd["low"] <= lmd["estimate"] <= lmd["high"]
    # a handful of sentences is never judged
    assert (targets["verdict"] == "too few test sentences to judge").all()
    text = (out / "final_table.md").read_text()
    assert "**fake test** (2 training seeds" in text and "| model+gate |" in text
    assert (out / "seed1" / "best.pt").is_file()
    # the checkpoint carries the corpus and speakers it was trained on (predict's reference)
    from wav2kp.train import load_predictor

    assert load_predictor(out / "seed0").context["corpus"] == "fake"


def test_checkpoint_with_silence_gate_loads_gated(corpus, one_torch_thread):
    from wav2kp.train import TrainConfig, load_corpus_for_training, load_predictor, train_model
    from wav2kp.vad import SilenceGate

    data = load_corpus_for_training("fake", progress=False, root=corpus.base)
    config = TrainConfig.preset("default", epochs=1, crop_frames=20, silence_gate=True)
    result = train_model(data.train, [], config, corpus.base / "gated", progress=False,
                         context=data.context)  # fmt: skip
    gated = load_predictor(result.best_checkpoint)
    assert isinstance(gated, SilenceGate) and gated.window_config == config.window_config
    plain = gated.predictor
    # a new signal as predict builds it: speech, then a second of silence
    t = np.arange(32000) / 16000
    samples = (0.3 * np.sin(2 * np.pi * 200 * t) * (t < 1.0)).astype(np.float32)
    from wav2kp.dataset import clip_from_audio

    clip = clip_from_audio(samples, 16000, np.arange(50) / 25.0, None, plain.feature_stats,
                           plain.window_config)  # fmt: skip
    weights = gated.weights(clip)
    assert weights[:20].min() == 1.0 and weights[-15:].max() == 0.0
    diff = np.abs(gated.predict_targets(clip) - plain.predict_targets(clip)).reshape(-1, 68, 2)
    assert diff[weights == 1].max() < 1e-6  # speech untouched
    assert diff[weights < 1][:, 48:68].max() > 0  # silence pulled towards closed
    closed = gated.predict_targets(clip).reshape(-1, 68, 2)[weights == 0][:, 48:68]
    np.testing.assert_allclose(closed, 0.0)  # the closed neutral exactly
