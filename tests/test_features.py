"""Audio features: torchaudio's frame count and times, corpus files, train-only stats, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio
from hypothesis import given, settings
from hypothesis import strategies as st
from wav2kp.config import FeatureConfig
from wav2kp.features.features import (
    FeatureStats,
    compute_corpus_features,
    compute_features,
    fit_feature_stats,
    read_features,
)
from wav2kp.paths import CorpusPaths


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(n_samples=st.integers(400, 40_000))
def test_frame_count_and_centre_times(n_samples):
    features, times = compute_features(noise(n_samples), 16000)
    assert features.shape == (1 + n_samples // 200, 40)
    assert features.dtype == np.float32 and times.dtype == np.float64
    np.testing.assert_allclose(times, np.arange(len(features)) * 200 / 16000)


def test_default_config_is_the_original_mfcc():
    signal = noise(16000)
    original = torchaudio.transforms.MFCC(sample_rate=16000, melkwargs={"n_mels": 40})
    expected = original(torch.from_numpy(signal)).T.numpy()
    features, _ = compute_features(signal, 16000)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-4)
    assert FeatureConfig().frame_rate == 80


def test_options_change_dims_and_resampling():
    signal = noise(44100)
    features, times = compute_features(signal, 44100)  # resampled to 16 kHz
    assert len(features) == 1 + 16000 // 200
    deltas, _ = compute_features(signal, 44100, FeatureConfig(deltas=True))
    assert deltas.shape == (len(features), 120)
    np.testing.assert_allclose(deltas[:, :40], features, atol=1e-4)
    logmel, _ = compute_features(signal, 44100, FeatureConfig(kind="logmel", n_mels=64))
    assert logmel.shape == (len(features), 64) and np.isfinite(logmel).all()
    assert FeatureConfig(kind="logmel", n_mels=64, deltas=True).dim == 192
    with pytest.raises(ValueError, match="kind"):
        FeatureConfig(kind="wav2vec")
    with pytest.raises(ValueError, match="mono"):
        compute_features(np.zeros(0), 16000)


def test_stats_normalise_and_serialise():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(3, 2, size=(n, 4)) for n in (10, 50, 7)]
    stats = FeatureStats.fit(arrays, FeatureConfig(), ["a", "b", "c"])
    stacked = np.concatenate(arrays)
    np.testing.assert_allclose(stats.mean, stacked.mean(axis=0))
    np.testing.assert_allclose(stats.std, stacked.std(axis=0))
    normalised = stats.apply(stacked)
    np.testing.assert_allclose(normalised.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(normalised.std(axis=0), 1, atol=1e-5)
    again = FeatureStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    np.testing.assert_array_equal(again.apply(stacked), normalised)
    assert again.feature_config == FeatureConfig() and again.clip_ids == ["a", "b", "c"]
    with pytest.raises(ValueError, match="4 dims"):
        stats.apply(np.zeros((3, 40)))


def fake_audio_corpus(root, n=4):
    paths = CorpusPaths("c", root)
    paths.audio.mkdir(parents=True)
    paths.extracted.mkdir(parents=True)
    rows = []
    for i in range(n):
        sf.write(paths.audio / f"clip{i}.wav", noise(8000 + 1000 * i, seed=i) * (i + 1), 16000)
        rows.append({"clip_id": f"clip{i}", "status": "ok", "sentence_id": f"s{i}"})
    rows.append({"clip_id": "gone", "status": "ok", "sentence_id": "s9"})  # no audio file
    rows.append({"clip_id": "rejected", "status": "rejected", "sentence_id": "s8"})
    pd.DataFrame(rows).to_csv(paths.extracted / "manifest.csv", index=False)
    return paths


def test_corpus_features_skip_up_to_date_and_name_errors(tmp_path):
    paths = fake_audio_corpus(tmp_path)
    with pytest.warns(UserWarning, match="gone.wav"):
        first = compute_corpus_features("c", root=tmp_path)
    status = first.set_index("clip_id")["status"]
    assert (status.drop("gone") == "computed").all() and status["gone"] == "error"
    assert "rejected" not in status.index
    features, times, config, _ = read_features(paths.features / "clip2.npz")
    assert features.shape == (1 + 10000 // 200, 40) and config == FeatureConfig()
    with pytest.warns(UserWarning):
        second = compute_corpus_features("c", root=tmp_path)
    assert (second.set_index("clip_id")["status"].drop("gone") == "skipped").all()
    # A changed config or changed audio recomputes.
    with pytest.warns(UserWarning):
        third = compute_corpus_features("c", FeatureConfig(deltas=True), root=tmp_path)
    assert (third.set_index("clip_id")["status"].drop("gone") == "computed").all()
    sf.write(paths.audio / "clip0.wav", noise(8000, seed=42), 16000)
    with pytest.warns(UserWarning):
        fourth = compute_corpus_features("c", FeatureConfig(deltas=True), root=tmp_path)
    assert fourth.set_index("clip_id")["status"].to_dict()["clip0"] == "computed"
    assert fourth.set_index("clip_id")["status"].to_dict()["clip1"] == "skipped"


def test_stats_use_the_train_split_only(tmp_path):
    paths = fake_audio_corpus(tmp_path)
    with pytest.warns(UserWarning):
        compute_corpus_features("c", root=tmp_path)
    split = pd.DataFrame(
        {
            "clip_id": ["clip0", "clip1", "clip2", "clip3"],
            "split": ["train", "val", "train", "test"],
        }
    )
    stats = fit_feature_stats("c", split, root=tmp_path)
    assert stats.clip_ids == ["clip0", "clip2"]
    train = [read_features(paths.features / f"clip{i}.npz")[0] for i in (0, 2)]
    np.testing.assert_allclose(
        stats.mean, np.concatenate(train).astype(np.float64).mean(axis=0), rtol=1e-9
    )
    everything = [read_features(paths.features / f"clip{i}.npz")[0] for i in range(4)]
    assert not np.allclose(stats.std, np.concatenate(everything).std(axis=0), rtol=1e-3)
    assert (paths.processed / "feature_stats.json").is_file()


def test_cli_makes_split_features_and_stats(tmp_path, monkeypatch):
    from wav2kp.cli import main

    fake_audio_corpus(tmp_path / "data", n=6)
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    with pytest.warns(UserWarning):
        code = main(["features", "--corpus", "c", "--kind", "logmel", "--n-mels", "32"])
    assert code == 1  # one clip has no audio: reported, the rest done
    paths = CorpusPaths("c", tmp_path / "data")
    assert paths.split_file.is_file()
    stats = json.loads((paths.processed / "feature_stats.json").read_text())
    assert len(stats["mean"]) == 32 and stats["config"]["kind"] == "logmel"


def test_parallel_workers_give_the_same_files(tmp_path):
    paths = fake_audio_corpus(tmp_path)
    with pytest.warns(UserWarning):
        compute_corpus_features("c", root=tmp_path, workers=1)
    serial = {i: read_features(paths.features / f"clip{i}.npz")[0] for i in range(4)}
    with pytest.warns(UserWarning):
        result = compute_corpus_features("c", root=tmp_path, workers=2, force=True)
    assert result["clip_id"].tolist() == ["clip0", "clip1", "clip2", "clip3", "gone"]
    for i in range(4):
        np.testing.assert_array_equal(read_features(paths.features / f"clip{i}.npz")[0], serial[i])


def speech_burst(n: int, seed: int = 0) -> np.ndarray:
    """Noise bursts with silent gaps between them, like syllables and pauses."""
    t = np.arange(n) / 16000
    envelope = (np.sin(2 * np.pi * 2.0 * t) > 0.3).astype(np.float32)
    return noise(n, seed) * envelope + 1e-4 * noise(n, seed + 1)


def test_cmvn_removes_gain_and_a_fixed_microphone_colour():
    from scipy.signal import lfilter

    signal = speech_burst(3 * 16000)
    coloured = lfilter([1.0, -0.9], [1.0], signal).astype(np.float32)  # a bright microphone
    plain = FeatureConfig(kind="logmel")
    cmvn = FeatureConfig(kind="logmel", cmvn="mean", cmvn_seconds=10.0)
    base_plain, _ = compute_features(signal, 16000, plain)
    loud_plain, _ = compute_features(4.0 * coloured, 16000, plain)
    base, _ = compute_features(signal, 16000, cmvn)
    loud, _ = compute_features(4.0 * coloured, 16000, cmvn)
    # gain and a linear filter are an offset per band in log-mel: the mean removes it
    assert np.abs(loud_plain - base_plain).mean() > 5.0
    assert np.abs(loud - base).mean() < 0.1 * np.abs(loud_plain - base_plain).mean()
    # a window longer than the clip is the utterance mean: each band centred on 0
    np.testing.assert_allclose(base.mean(axis=0), 0, atol=1e-3)
    scaled, _ = compute_features(signal, 16000, FeatureConfig(kind="logmel", cmvn="meanvar"))
    assert 0.5 < scaled.std() < 1.5 and np.isfinite(scaled).all()


def test_floor_makes_silence_independent_of_the_noise_floor():
    quiet = speech_burst(2 * 16000)
    noisy = quiet + 0.003 * noise(len(quiet), 7)
    floored = FeatureConfig(kind="logmel", floor_db=30.0, cmvn_seconds=10.0)
    a, _ = compute_features(quiet, 16000, floored)
    b, _ = compute_features(noisy, 16000, floored)
    plain_a, _ = compute_features(quiet, 16000, FeatureConfig(kind="logmel"))
    plain_b, _ = compute_features(noisy, 16000, FeatureConfig(kind="logmel"))
    silent = plain_a.max(axis=1) < plain_a.max() - 40  # the gaps between bursts
    assert silent.sum() > 10
    assert np.abs(plain_a[silent] - plain_b[silent]).mean() > 10  # noise fills the gaps
    assert np.abs(a[silent] - b[silent]).mean() < 1.0  # both at the floor
    assert a.min() >= a.max() - 30.0 - 1e-3  # the window holds the whole clip here
    with pytest.raises(ValueError, match="floor_db"):
        FeatureConfig(kind="mfcc", floor_db=30.0)
    with pytest.raises(ValueError, match="cmvn"):
        FeatureConfig(cmvn="utterance")


def test_sliding_cmvn_is_local_so_chunks_equal_one_pass():
    signal = speech_burst(12 * 16000, seed=3)
    config = FeatureConfig(kind="logmel", floor_db=40.0, cmvn="meanvar", cmvn_seconds=2.0)
    whole, times = compute_features(signal, 16000, config)
    start = 4 * 16000  # a chunk starting 4 s in, on the hop grid
    part, part_times = compute_features(signal[start:], 16000, config)
    offset = start // config.hop_length
    # away from the chunk's start (more than half a window + the STFT's reach), equal
    inner = slice(int(1.1 * 80) + 3, len(part) - int(1.1 * 80) - 3)
    np.testing.assert_allclose(part[inner], whole[offset:][inner], atol=1e-3)


@pytest.mark.parametrize("frequency", [500.0, 1000.0, 3000.0])
def test_logmel_is_power_in_db_on_htk_mel_bands(frequency):
    # 64 bands between 0 and 8 kHz, centres evenly spaced on the HTK mel scale
    # (mel = 2595 log10(1 + f / 700)): a pure tone is loudest in the band centred nearest
    # it, and twice the amplitude is four times the power, +10 log10(4) = 6.02 dB
    t = np.arange(16000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    config = FeatureConfig(kind="logmel", n_mels=64)
    quiet, _ = compute_features(tone, 16000, config)
    loud, _ = compute_features(2 * tone, 16000, config)
    mel = 2595 * np.log10(1 + np.array([frequency, 8000.0]) / 700)
    nearest = int(np.round(mel[0] / (mel[1] / 65))) - 1
    inner = slice(10, 40)  # away from the padded edges
    assert quiet[inner].mean(axis=0).argmax() == nearest
    heard = quiet[inner] > quiet[inner].max() - 60  # bands above the dB floor
    assert heard.sum() >= 60  # at least the tone's own bands in every frame
    np.testing.assert_allclose((loud[inner] - quiet[inner])[heard], 10 * np.log10(4), atol=1e-3)


def test_cli_defaults_are_the_pipelines_features_and_keep_the_saved_split(tmp_path, monkeypatch):
    """`wav2kp features` with no options computes notebook 02's features (RunConfig's) and
    keeps a split already made with other settings (no silent reshuffle)."""
    from wav2kp.cli import main
    from wav2kp.config import RunConfig
    from wav2kp.features.splits import ensure_split, split_settings_path

    fake_audio_corpus(tmp_path / "data", n=6)
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    made = ensure_split("c", seed=7)
    with pytest.warns(UserWarning) as caught:
        assert main(["features", "--corpus", "c"]) == 1  # the clip with no audio
    assert not [w for w in caught if "new split" in str(w.message)]
    paths = CorpusPaths("c", tmp_path / "data")
    assert json.loads(split_settings_path("c").read_text())["seed"] == 7
    assert pd.read_csv(paths.split_file)["split"].tolist() == made["split"].tolist()
    stats = json.loads((paths.processed / "feature_stats.json").read_text())
    assert stats["config"] == FeatureConfig(**RunConfig().feature_settings).to_dict()


def test_feature_workers_default_to_the_machine_sized_one(tmp_path, monkeypatch):
    from wav2kp import cluster

    asked = []
    monkeypatch.setattr(cluster, "default_workers", lambda: asked.append(1) or 2)
    fake_audio_corpus(tmp_path)
    with pytest.warns(UserWarning):
        compute_corpus_features("c", root=tmp_path)
    assert asked == [1]


def test_training_commands_bring_the_corpus_features_to_the_runs_settings(tmp_path):
    """`wav2kp train` on a corpus no notebook prepared (or prepared otherwise) first makes
    the features its run asks for: a fresh `make model-grid` must not train on MFCC."""
    from wav2kp.features.features import ensure_corpus_features

    paths = fake_audio_corpus(tmp_path, n=6)
    with pytest.warns(UserWarning):  # the clip without audio
        compute_corpus_features("c", FeatureConfig(), root=tmp_path)
    wanted = FeatureConfig(kind="logmel", n_mels=24)
    with pytest.warns(UserWarning):
        stats = ensure_corpus_features("c", wanted, root=tmp_path, workers=0, progress=False)
    assert stats.feature_config == wanted and len(stats.mean) == 24
    assert read_features(paths.features / "clip1.npz")[2] == wanted
    assert paths.split_file.is_file()
    before = (paths.processed / "feature_stats.json").stat().st_mtime_ns
    again = ensure_corpus_features("c", wanted, root=tmp_path, workers=0)  # up to date
    np.testing.assert_array_equal(again.mean, stats.mean)
    assert (paths.processed / "feature_stats.json").stat().st_mtime_ns == before
