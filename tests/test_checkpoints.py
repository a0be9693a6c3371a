"""A checkpoint knows what it was trained on: the original gets its MFCC, resume and
loading refuse changed data naming what changed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_dataset import write_fake_corpus
from wav2kp.config import FeatureConfig, TrainConfig
from wav2kp.training.checkpoints import CheckpointMismatch, load_checkpoint
from wav2kp.training.inference import load_predictor
from wav2kp.training.train import _Sequences, load_corpus_for_training, model_inputs, train_model
from wav2kp.windowing.dataset import fit_normalizer_and_stats

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LOGMEL = FeatureConfig(kind="logmel")
TINY = {"epochs": 2, "model_overrides": {"hidden": 8, "frame_bottleneck": 4}}


@pytest.fixture
def corpus(tmp_path):
    """The fake corpus (audio + extraction) with log-mel pipeline features, its
    extraction manifest carrying fingerprints."""
    paths = write_fake_corpus(tmp_path)
    manifest = pd.read_csv(paths.extracted / "manifest.csv")
    manifest["fingerprint"] = [f"fp-{c}" for c in manifest["clip_id"]]
    manifest.to_csv(paths.extracted / "manifest.csv", index=False)
    fit_normalizer_and_stats("fake", feature_config=LOGMEL, root=tmp_path)
    return tmp_path


def train(root, out, **overrides):
    data = load_corpus_for_training("fake", progress=False, root=root)
    config = TrainConfig.preset(overrides.pop("model", "default"), **{**TINY, **overrides})
    return train_model(data.train, data.val, config, out, progress=False, context=data.context)


def test_the_original_is_fed_the_original_mfcc_bit_for_bit_on_a_logmel_corpus(corpus, tmp_path):
    import torchaudio
    from wav2kp.media.audio import load_audio

    data = load_corpus_for_training("fake", progress=False, root=corpus)
    clip = data.train[0]
    assert clip.extra["feature_config"]["kind"] == "logmel"
    config = TrainConfig.preset("original", epochs=1, model_overrides={"hidden": 8})
    inputs = model_inputs(data.train, config, data.context)
    fed = _Sequences([clip], config, (), inputs).windows[0].features
    samples, _ = load_audio(clip.audio_path, sample_rate=16000)
    # the original's call, verbatim
    mfcc = torchaudio.transforms.MFCC(sample_rate=16000, melkwargs={"n_mels": 40})
    expected = mfcc(torch.from_numpy(np.asarray(samples, np.float32))).T.numpy()
    np.testing.assert_array_equal(fed, expected)
    # the trained replica gets the same at inference, from a log-mel clip
    result = train_model(data.train, data.val, config, tmp_path / "o", progress=False,
                         context=data.context)  # fmt: skip
    predictor = load_predictor(result.best_checkpoint, corpus="fake", root=corpus)
    np.testing.assert_array_equal(predictor.model_clip(clip).features, expected)
    assert predictor.predict_landmarks(data.val[0]).shape == (data.val[0].n_frames, 68, 2)


def test_a_checkpoint_records_what_it_was_trained_on(corpus, tmp_path):
    result = train(corpus, tmp_path / "m")
    saved = load_checkpoint(result.best_checkpoint)["fingerprint"]
    data = load_corpus_for_training("fake", progress=False, root=corpus)
    assert saved["corpus"] == "fake" and saved["speakers"] == ["ann", "bob"]
    assert saved["train_clips"] == {c.clip_id: f"fp-{c.clip_id}" for c in data.train}
    assert saved["features"]["config"]["kind"] == "logmel" and saved["features"]["stats"]
    assert saved["split"]["settings"]["seed"] == 0 and saved["normalizer"]
    assert saved["window"]["past_ms"] == 100.0
    predictor = load_predictor(result.best_checkpoint, corpus="fake", root=corpus)
    assert predictor.corpus == "fake" and predictor.speakers == ["ann", "bob"]


def test_a_model_trained_with_augmented_copies_loads_for_its_corpus(corpus, tmp_path):
    """Augmented copies are not corpus clips: the fingerprint lists the corpus's own
    training clips, so evaluation and predict accept the model (they refused it, naming
    every copy as a removed training clip)."""
    result = train(corpus, tmp_path / "m", augment={"copies": 1})
    saved = load_checkpoint(result.best_checkpoint)["fingerprint"]
    data = load_corpus_for_training("fake", progress=False, root=corpus)
    assert saved["train_clips"] == {c.clip_id: f"fp-{c.clip_id}" for c in data.train}
    predictor = load_predictor(result.best_checkpoint, corpus="fake", root=corpus)
    assert predictor.predict_landmarks(data.val[0]).shape == (data.val[0].n_frames, 68, 2)


def change_split(root):
    from wav2kp.features.splits import ensure_split

    with pytest.warns(UserWarning):
        ensure_split("fake", seed=1, root=root)
        fit_normalizer_and_stats("fake", feature_config=LOGMEL, root=root)


def change_feature_kind(root):
    fit_normalizer_and_stats("fake", feature_config=FeatureConfig(kind="mfcc"), root=root)


def re_extract_a_training_clip(root):
    from wav2kp.paths import CorpusPaths

    paths = CorpusPaths("fake", root)
    split = pd.read_csv(paths.split_file)
    clip = split.loc[split["split"] == "train", "clip_id"].iloc[0]
    manifest = pd.read_csv(paths.extracted / "manifest.csv")
    manifest.loc[manifest["clip_id"] == clip, "fingerprint"] = "fp-new"
    manifest.to_csv(paths.extracted / "manifest.csv", index=False)
    return clip


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (change_split, r"split: seed 0 -> 1"),
        (change_feature_kind, r"features: kind 'logmel' -> 'mfcc'"),
        (re_extract_a_training_clip, r"train clips: 1 re-extracted \(\w+"),
    ],
)
def test_loading_for_a_changed_corpus_is_refused_naming_the_change(corpus, tmp_path, change, named):
    result = train(corpus, tmp_path / "m")
    load_predictor(result.best_checkpoint, corpus="fake", root=corpus)  # unchanged: fine
    change(corpus)
    with pytest.raises(CheckpointMismatch, match=named):
        load_predictor(result.best_checkpoint, corpus="fake", root=corpus)
    load_predictor(result.best_checkpoint)  # without a corpus to check against: loads


def test_resume_on_changed_data_trains_afresh_and_says_what_changed(corpus, tmp_path):
    out = tmp_path / "m"
    train(corpus, out, max_minutes=0)
    finished = load_checkpoint(out / "last.pt")
    assert finished["state"]["epoch"] == 2
    # the same command on the same data: finished, nothing trained
    again = train(corpus, out)
    assert torch.equal(
        load_checkpoint(again.last_checkpoint)["model_state"]["head.weight"],
        finished["model_state"]["head.weight"],
    )
    change_split(corpus)
    with pytest.warns(UserWarning, match=r"trained on other data \(split: seed 0 -> 1"):
        retrained = train(corpus, out)
    fresh = train(corpus, tmp_path / "fresh")  # the new data from scratch
    assert torch.equal(
        load_checkpoint(retrained.last_checkpoint)["model_state"]["head.weight"],
        load_checkpoint(fresh.last_checkpoint)["model_state"]["head.weight"],
    )
    saved = load_checkpoint(retrained.last_checkpoint)["fingerprint"]
    assert saved["split"]["settings"]["seed"] == 1
    # plain JSON values only: a tuple, numpy scalar or Path would not come back equal
    assert json.loads(json.dumps(saved)) == saved


def test_an_older_checkpoint_format_is_refused_and_retrained_over(tmp_path):
    from wav2kp.benchmarks.training import synthetic_clips

    torch.save({"format": "wav2kp-checkpoint-1"}, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="older wav2kp-checkpoint-1 file: train it again"):
        load_checkpoint(tmp_path / "last.pt")
    clips = synthetic_clips(n_clips=3, seconds=1.0, feature_dim=8, seed=1)
    config = TrainConfig.preset("default", target_space="frame", **TINY)
    with pytest.warns(UserWarning, match="older wav2kp-checkpoint-1 file"):
        result = train_model(clips[:2], clips[2:], config, tmp_path, progress=False)
    assert result.epochs_run == 2 and load_checkpoint(result.last_checkpoint)["fingerprint"]


def test_train_run_refits_a_plateau_recipe_for_the_epochs_its_selection_needed(corpus):
    from wav2kp.config import RunConfig
    from wav2kp.studies.train_run import train_run

    cfg = RunConfig.resolve(
        corpus="fake", models=["original"], seeds=[0], original_epochs=3, ablation=False,
        workers=0,
    )  # fmt: skip
    run = train_run(cfg, progress=False, root=corpus)
    (selection,) = run.validation.table.to_dict("records")
    (final,) = run.finals.to_dict("records")
    assert not final["error"] and not selection["error"]
    assert final["epochs"] == selection["best_epoch"] <= 3
    saved = load_checkpoint(final["checkpoint"])
    assert saved["train_config"]["epochs"] == selection["best_epoch"]
    assert set(saved["fingerprint"]["train_clips"]) == {
        c.clip_id for c in load_corpus_for_training("fake", False, corpus).train
    } | {c.clip_id for c in load_corpus_for_training("fake", False, corpus).val}
    assert "models/fake/original/seed-0" in final["checkpoint"]
