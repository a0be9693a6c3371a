"""Unseen-voice levers on `wav2kp cv` (proxies, views), the lever table, and the final
evaluation on held-out sentences and unseen voices, on a small fake corpus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_dataset import write_fake_corpus
from wav2kp.config import RunConfig
from wav2kp.evaluation.results import TARGETS, target_checks
from wav2kp.features.splits import ensure_split
from wav2kp.studies import levers, pages

BUDGET = {"epochs": 1, "crop_frames": 20}


@pytest.fixture
def corpus(tmp_path):
    paths = write_fake_corpus(tmp_path, n_sentences=6)
    ensure_split("fake", root=tmp_path)
    return paths


def test_cv_scores_proxies_and_views_and_reuses(corpus, one_torch_thread):
    from wav2kp.studies.cv import CVResult, run_cv
    from wav2kp.training.train import load_corpus_for_training

    root = corpus.base
    cfg = RunConfig.resolve(corpus="fake")
    data = load_corpus_for_training("fake", progress=False, root=root)
    proxies = levers.proxy_sets(data, ["val_phone"], root=root)
    heard = proxies["val_phone"]
    assert len(heard) == len(data.train) + len(data.val)
    assert all(c.clip_id.endswith("~val_phone") and c.audio_path.is_file() for c in heard)
    variants = {"plain": {}, "calibrated": {"calibrate": True}}
    result = run_cv(cfg, variants, folds=2, budget=BUDGET, data=data, views=("gate", "calibrated"),
                    proxies=proxies, root=root, progress=False)  # fmt: skip
    table = result.table
    assert not result.errors() and len(table) == 4
    for column in ("heldout+gate:mouth_open_r", "heldout+calibrated:variance_ratio",
                   "val_phone:mouth_open_r", "val_phone+gate:mouth_jitter_ratio"):  # fmt: skip
        assert np.isfinite(table[column].astype(float)).all(), column
    # a fold scores the condition copies of its held-out sentences only
    assert (table["val_phone:clips"] < len(heard)).all() and (table["val_phone:clips"] > 0).all()
    assert table.groupby("fold")["val_phone:clips"].first().sum() == len(heard)
    # the calibrated checkpoint scores calibrated: its held-out variance ratio is the
    # plain model's calibrated view (the same training: calibrate is inference-only)
    plain = table[table["variant"] == "plain"].set_index("fold")
    calibrated = table[table["variant"] == "calibrated"].set_index("fold")
    np.testing.assert_allclose(
        calibrated["variance_ratio"], plain["heldout+calibrated:variance_ratio"], rtol=1e-6
    )
    summary = result.summary()
    assert "val_phone:mouth_open_r" in summary.columns and summary.loc["plain", "folds"] == 2
    again = run_cv(cfg, variants, folds=2, budget=BUDGET, data=data, views=("gate", "calibrated"),
                   proxies=proxies, root=root, progress=False)  # fmt: skip
    assert again.table["reused"].all()
    # another proxy set is scored again from the checkpoints, without training
    fewer = {"val_phone": heard[:4]}
    rescored = run_cv(cfg, {"plain": {}}, folds=2, budget=BUDGET, data=data, views=("gate",),
                      proxies=fewer, root=root, progress=False)  # fmt: skip
    assert not rescored.table["reused"].any()
    assert (rescored.table["epochs"] == 1).all()
    assert isinstance(rescored, CVResult)


def test_lever_table_pairs_variants_with_the_baseline(tmp_path):
    rows = []
    for variant, shift in (("log-mel (default)", 0.0), ("lever", 0.05)):
        for fold in ("1/2", "2/2"):
            rows.append({"variant": variant, "fold": fold, "seed": 0, "error": "",
                         "mouth_open_r": 0.8 + shift + (fold == "2/2") * 0.1,
                         "variance_ratio": 0.9, "val_phone:mouth_open_r": 0.5 + shift,
                         "heldout+gate:mouth_open_r": 0.7})  # fmt: skip
    csv = tmp_path / "levers.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    text = pages.lever_table(csv)
    assert "**held-out GRID sentences (same voice)**" in text and "**val_phone**" in text
    assert "model + gate" in text
    lever_rows = [line for line in text.splitlines() if line.startswith("| lever |")]
    # paired on fold and seed: +0.05 on both folds, no spread, though the folds differ by 0.1
    assert lever_rows[0].endswith("| +0.050 ± 0.000 |")
    baseline = next(line for line in text.splitlines() if line.startswith("| log-mel"))
    assert baseline == "| log-mel (default) | 0.850 ± 0.071 | 0.90 ± 0.00 | — |"


def test_final_scores_every_seed_on_test_sentences_and_unseen_voices(corpus, one_torch_thread):
    from wav2kp.studies.train_run import train_run

    root = corpus.base
    cfg = RunConfig.resolve(corpus="fake", models="default", seeds="0,1", epochs=1, ablation=False)
    run = train_run(cfg, progress=False, root=root)
    assert len(run.checkpoints("default")) == 2
    table, targets = levers.evaluate_final("fake", unseen_corpus="fake", unseen_exclude="^ann",
                                           progress=False, root=root)  # fmt: skip
    _, text = pages.final_tables(table, "fake")
    assert set(table["set"]) == {"fake test", "fake (unseen voices)"}
    unseen = table[table["set"] == "fake (unseen voices)"]
    assert len(unseen) and not unseen["clip_id"].str.startswith("ann").any()
    assert set(table["model"]) == {"model", "model+gate", "model+calibrated",
                                   "model+calibrated+gate", "mean_face", "loudness"}  # fmt: skip
    # the loudness floor predicts from each clip's own audio, unseen voices included
    loud = unseen[(unseen["model"] == "loudness") & (unseen["space"] == "aligned")]
    assert (loud["error"].fillna("") == "").all() and loud["mouth_open_r"].notna().all()
    assert set(table["seed"]) == {0, 1} and set(table["space"]) == {"aligned", "frame"}
    same = targets[(targets["set"] == "fake test") & (targets["model"] == "model")]
    assert list(same["target"]) == [t[0] for t in TARGETS["same_voice"]]
    lmd = same.set_index("target").loc["mouth LMD vs mean face"]
    assert np.isfinite(lmd["estimate"]) and lmd["low"] <= lmd["estimate"] <= lmd["high"]
    too_few = {
        "fake test": "too few test sentences to judge",
        "fake (unseen voices)": "too few videos to judge",
    }  # one voice per video
    assert (targets["verdict"] == targets["set"].map(too_few)).all()
    assert "**fake test** (2 training seeds" in text and "| model+calibrated |" in text
    # the markdown is regenerated from the saved clip table alone
    csv = root / "final.csv"
    table.to_csv(csv, index=False)
    assert (
        pages.final_tables(pd.read_csv(csv, dtype={"clip_id": str, "sentence_id": str}), "fake")[1]
        == text
    )


def test_checkpoint_with_silence_gate_and_calibration_loads_wrapped(corpus, one_torch_thread):
    from wav2kp.config import TrainConfig
    from wav2kp.training.calibration import Calibrated
    from wav2kp.training.inference import load_predictor, unwrapped
    from wav2kp.training.train import load_corpus_for_training, train_model
    from wav2kp.training.vad import SilenceGate
    from wav2kp.windowing.dataset import clip_from_audio

    data = load_corpus_for_training("fake", progress=False, root=corpus.base)
    config = TrainConfig.preset("default", epochs=1, crop_frames=20, silence_gate=True)
    result = train_model(data.train, [], config, corpus.base / "gated", progress=False,
                         context=data.context)  # fmt: skip
    gated = load_predictor(result.best_checkpoint)
    assert isinstance(gated, SilenceGate) and gated.window_config == config.window_config
    plain = gated.predictor
    # a new signal as predict builds it: a second of speech (espeak-ng, which silero-vad
    # hears as speech; a pure tone it rightly does not), then a second of silence
    from wav2kp.demo.tts import synthesize
    from wav2kp.media.audio import resample

    speech = synthesize("O papai bebe mamão com a menina.")
    voiced = resample(speech.audio, speech.sample_rate, 16000)[:16000]
    samples = np.r_[voiced, np.zeros(16000, np.float32)]
    clip = clip_from_audio(samples, 16000, np.arange(50) / 25.0, None, plain.feature_stats,
                           plain.window_config)  # fmt: skip
    weights = gated.weights(clip)
    assert weights[:20].min() == 1.0 and weights[-15:].max() == 0.0
    diff = np.abs(gated.predict_targets(clip) - plain.predict_targets(clip)).reshape(-1, 68, 2)
    assert diff[weights == 1].max() < 1e-6  # speech untouched
    assert diff[weights < 1][:, 48:68].max() > 0  # silence pulled towards closed
    closed = gated.predict_targets(clip).reshape(-1, 68, 2)[weights == 0][:, 48:68]
    np.testing.assert_allclose(closed, 0.0)  # the closed neutral exactly
    # calibrated under the gate: the same weights (calibration is applied at loading)
    both = TrainConfig.preset(
        "default", epochs=1, crop_frames=20, silence_gate=True, calibrate=True
    )
    again = train_model(data.train, [], both, corpus.base / "calibrated", progress=False,
                        context=data.context)  # fmt: skip
    wrapped = load_predictor(again.best_checkpoint)
    assert isinstance(wrapped, SilenceGate) and isinstance(wrapped.predictor, Calibrated)
    assert type(unwrapped(wrapped)).__name__ == "Predictor"
    np.testing.assert_allclose(
        unwrapped(wrapped).predict_targets(clip), plain.predict_targets(clip)
    )
    calibrated = Calibrated(plain)
    gain = calibrated.gain(clip, plain.predict_targets(clip))
    assert 1 / 3 <= gain <= 3 and gain != 1.0
    # the gain rescales the mouth motion around its mean; correlation is unchanged
    from wav2kp import metrics

    lm_plain = plain.predict_landmarks(clip)
    lm_cal = calibrated.predict_landmarks(clip)
    o_plain, o_cal = metrics.mouth_opening(lm_plain), metrics.mouth_opening(lm_cal)
    assert np.corrcoef(o_plain, o_cal)[0, 1] > 0.99
    # (the opening is a lip distance, only near-linear in the scaled targets)
    assert np.std(o_cal) / np.std(o_plain) == pytest.approx(gain, rel=0.1)


def clip_scores(n_units: int, variance_ratio: float, lmd: float, frames: int = 60, seed: int = 0):
    """A final-evaluation clip table of ``n_units`` test sentences (one clip each, scored
    on ``frames`` frames): the model's scores around the given values, the mean face's
    mouth LMD at 0.05."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_units):
        noise = rng.normal(0, 0.01)
        common = {"clip_id": f"c{k}", "sentence_id": f"s{k}", "speaker": "s1", "emotion": "neutral", "space": "aligned", "error": "",
                  "n_frames_scored": frames, "seed": 0}  # fmt: skip
        rows.append({**common, "model": "model", "mouth_open_r": 0.97 + noise,
                     "variance_ratio": variance_ratio + noise, "mouth_jitter_ratio": 1.0 + noise,
                     "mouth_lmd_iod": lmd + noise / 10, "silent_open_share": 0.0})  # fmt: skip
        rows.append({**common, "model": "mean_face", "mouth_open_r": np.nan,
                     "variance_ratio": 0.0, "mouth_jitter_ratio": np.nan, "mouth_lmd_iod": 0.05,
                     "silent_open_share": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "variance_ratio,verdict",
    [(1.0, "met"), (1.5, "not met"), (0.5, "not met"), (1.1, "not shown")],  # 0.9 to 1.1
)
def test_targets_are_judged_on_enough_sentences(variance_ratio, verdict):
    table = clip_scores(25, variance_ratio, lmd=0.01)
    targets = target_checks(table, "model", "aligned", "sentence_id", targets="same_voice")
    by_name = targets.set_index("target")
    assert by_name.loc["variance ratio", "verdict"] == verdict
    low, high = by_name.loc["variance ratio", ["low", "high"]]
    assert low <= variance_ratio + 0.01 and high >= variance_ratio - 0.01
    # the other targets: r 0.97 >= 0.93, jitter 1.0 <= 1.1, LMD 0.01 / 0.05 = 0.2 <= 0.4
    for name in ("mouth-opening r", "mouth jitter ratio", "mouth LMD vs mean face",
                 "silent frames with the mouth open"):  # fmt: skip
        assert by_name.loc[name, "verdict"] == "met", name
    assert by_name.loc["mouth LMD vs mean face", "estimate"] == pytest.approx(0.2, rel=0.05)
    assert (by_name["n_units"] == 25).all() and (by_name["n_frames"] == 25 * 60).all()


def test_a_ratio_target_far_above_its_threshold_is_not_met():
    table = clip_scores(25, 1.0, lmd=0.04)  # 0.04 / 0.05 = 0.8 > 0.4
    targets = target_checks(table, "model", "aligned", "sentence_id", targets="same_voice")
    assert targets.set_index("target").loc["mouth LMD vs mean face", "verdict"] == "not met"


def test_no_verdict_below_twenty_sentences_or_a_thousand_frames():
    few_units = target_checks(
        clip_scores(19, 1.0, 0.01), "model", "aligned", "sentence_id", targets="same_voice"
    )
    assert (few_units["verdict"] == "too few test sentences to judge").all()
    few_frames = target_checks(
        clip_scores(25, 1.0, 0.01, frames=39),
        "model",
        "aligned",
        "sentence_id",
        targets="same_voice",
    )
    assert (few_frames["verdict"] == "too few test sentences to judge").all()
    enough = target_checks(
        clip_scores(20, 1.0, 0.01, frames=50),
        "model",
        "aligned",
        "sentence_id",
        targets="same_voice",
    )
    assert (enough["verdict"] == "met").all()
