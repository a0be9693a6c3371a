"""evaluate_models / summarise / target_checks / result files on synthetic clips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_baselines import synthetic_corpus
from wav2kp import evaluate
from wav2kp.baselines import fit_baselines


class Oracle:
    """Returns the ground truth (delayed by ``lag`` frames): a perfect or late model."""

    def __init__(self, name: str, lag: int = 0, nan_frames: tuple[int, ...] = ()):
        self.name, self.lag, self.nan_frames = name, lag, nan_frames

    def predict_landmarks(self, clip):
        lm = clip.landmarks.astype(np.float64)
        filled = pd.DataFrame(lm.reshape(len(lm), -1)).ffill().bfill().to_numpy(copy=True)
        out = filled.reshape(lm.shape)
        if self.lag:
            out = np.concatenate([np.repeat(out[:1], self.lag, axis=0), out[: -self.lag]])
        out[list(self.nan_frames)] = np.nan
        return out


class Broken:
    name = "broken"

    def predict_landmarks(self, clip):
        raise RuntimeError("checkpoint corrupt")


@pytest.fixture(scope="module")
def evaluated():
    normalizer, clips = synthetic_corpus()
    test_clips = [c for c in clips if c.split == "test"]
    predictors = [
        *fit_baselines(normalizer, clips),
        Oracle("default"),
        Oracle("original", lag=2),
        Broken(),
    ]
    df = evaluate.evaluate_models(predictors, test_clips, progress=False)
    return test_clips, df


def test_one_row_per_model_and_clip_with_metadata(evaluated):
    clips, df = evaluated
    assert len(df) == 5 * len(clips)
    assert set(df["model"]) == {"mean_face", "ridge", "default", "original", "broken"}
    assert set(df["split"]) == {"test"}
    assert {"speaker", "emotion", "clip_id", *evaluate.METRICS} <= set(df.columns)
    broken = df[df["model"] == "broken"]
    assert broken["error"].str.contains("checkpoint corrupt").all()
    assert broken["error"].str.contains(clips[0].clip_id).any()
    assert (df[df["model"] != "broken"]["error"] == "").all()


def test_models_are_scored_on_the_same_frames(evaluated):
    _, df = evaluated
    scored = df[df["model"] != "broken"].groupby("clip_id")["n_frames_scored"].nunique()
    assert (scored == 1).all()


def test_a_nan_frame_of_one_model_removes_it_for_all():
    normalizer, clips = synthetic_corpus()
    clip = [c for c in clips if c.split == "test"][0]
    df = evaluate.evaluate_models(
        [Oracle("default"), Oracle("holes", nan_frames=(10, 11))], [clip], progress=False
    )
    assert df["n_frames_scored"].tolist() == [clip.valid.sum() - 2] * 2


def test_summary_and_target_checks(evaluated):
    _, df = evaluated
    summary = evaluate.summarise(df)
    by_model = summary["model"]
    assert by_model.loc["default", "mouth_lmd_iod"] == pytest.approx(0.0, abs=1e-9)
    assert by_model.loc["default", "mouth_open_r"] == pytest.approx(1.0)
    assert by_model.loc["ridge", "mouth_lmd_iod"] < by_model.loc["mean_face", "mouth_lmd_iod"]
    assert set(summary["emotion"].index.get_level_values("model")) == set(by_model.index)
    assert "broken" not in by_model.index
    checks = evaluate.target_checks(summary)
    assert len(checks) == 5 and checks["pass"].all()
    # the late model fails the offset target and its own r target
    late = evaluate.target_checks(summary, model="original").set_index("target")
    assert not late.loc["|A/V offset| (frames)", "pass"]
    assert late.loc["|A/V offset| (frames)", "value"] == pytest.approx(2.0, rel=0.05)
    # a missing original replica makes that target unmeasurable, not passed
    no_original = evaluate.target_checks(summary["model"].drop(index="original")).set_index(
        "target"
    )
    assert not no_original.loc["mouth LMD vs original replica", "pass"]
    assert "missing" in no_original.loc["mouth LMD vs original replica", "note"]


def test_result_files(evaluated, tmp_path):
    _, df = evaluated
    summary = evaluate.summarise(df)
    checks = evaluate.target_checks(summary)
    paths = evaluate.write_results(df, tmp_path, summary, checks)
    assert pd.read_csv(paths["csv"]).shape[0] == len(df)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["default"]["mouth_open_r"] == pytest.approx(1.0)
    assert data["ridge"]["mouth_lmd_iod"] == pytest.approx(
        summary["model"].loc["ridge", "mouth_lmd_iod"]
    )
    assert set(data["details"]["per_emotion"]["default"]) == set(df["emotion"])
    assert len(data["details"]["target_checks"]) == 5
    assert any("checkpoint corrupt" in e for e in data["details"]["errors"])


def test_duplicate_model_names_are_refused():
    _, clips = synthetic_corpus(n_train=1, n_val=0, n_test=1)
    with pytest.raises(ValueError, match="unique"):
        evaluate.evaluate_models([Oracle("a"), Oracle("a")], clips, progress=False)


def test_run_evaluation_on_a_corpus_reports_a_missing_checkpoint(tmp_path, monkeypatch):
    from test_dataset import write_fake_corpus
    from wav2kp import cli, dataset, train

    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path))
    paths = write_fake_corpus(tmp_path)
    clips = dataset.load_clips("fake", splits=None, progress=False)
    config = train.TrainConfig.preset("default", epochs=1, device="cpu")
    context = {"normalizer": dataset.load_normalizer("fake").state_dict()}
    train.train_model(
        [c for c in clips if c.split == "train"],
        [c for c in clips if c.split == "val"],
        config,
        paths.models / "default",
        context=context,
        progress=False,
    )
    run = evaluate.run_evaluation("fake", output_dir=tmp_path / "out", progress=False)
    assert {p.name for p in run.predictors} == {"mean_face", "ridge", "default"}
    assert any("'original'" in p and "no checkpoint" in p for p in run.problems)
    assert set(run.table["split"]) == {"test"}
    assert set(run.table["clip_id"]) == {c.clip_id for c in clips if c.split == "test"}
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"mean_face", "ridge", "default", "details"} <= set(data)
    checks = run.checks.set_index("target")
    assert not checks.loc["mouth LMD vs original replica", "pass"]  # no original replica to compare

    # the command line does the same and writes a side-by-side video
    out = tmp_path / "cli"
    code = cli.main(["evaluate", "--corpus", "fake", "--out", str(out), "--videos", "1"])
    assert code == 0
    assert (out / "metrics.csv").is_file() and len(list((out / "videos").glob("*.mp4"))) == 1


def test_video_clips_spread_over_speakers_and_emotions():
    from dataclasses import replace

    _, clips = synthetic_corpus(n_train=0, n_val=0, n_test=8)
    speakers, emotions = ("ann", "bob"), ("joy", "anger", "calm", "calm")
    variants = [
        replace(clip, speaker=speakers[i % 2], emotion=emotions[i // 2 % 4], clip_id=f"c{i}")
        for i, clip in enumerate(clips)
    ]
    for seed in range(5):
        picked = evaluate.choose_video_clips(variants, 2, seed)
        assert len({c.speaker for c in picked}) == 2 and len({c.emotion for c in picked}) == 2
        assert picked == evaluate.choose_video_clips(variants, 2, seed)
    assert len(evaluate.choose_video_clips(variants, 20)) == len(variants)
    assert evaluate.choose_video_clips(variants, 0) == []


def test_lag_curves_peak_at_the_models_delay():
    normalizer, clips = synthetic_corpus()
    test_clips = [c for c in clips if c.split == "test"]
    mean_face, _ = fit_baselines(normalizer, clips)
    curves = evaluate.lag_curves(
        [Oracle("default"), Oracle("late", lag=3), mean_face], test_clips, max_lag_frames=5
    )
    assert set(curves["lag_frames"]) == set(range(-5, 6))
    pooled = evaluate.pooled_offsets(curves)
    assert pooled.loc["default", "lag_frames"] == 0
    assert pooled.loc["default", "r"] == pytest.approx(1.0)
    assert pooled.loc["late", "lag_frames"] == 3
    assert pooled.loc["late", "lag_ms"] == pytest.approx(3 * 1001 / 30)
    assert "mean_face" not in pooled.index  # a frozen mouth has no offset
