"""evaluate_models / score_landmarks / run_evaluation on synthetic clips and a fake corpus."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from test_baselines import synthetic_corpus
from test_metrics import speech_opening, talking_face, times
from wav2kp import metrics
from wav2kp.evaluation import evaluate, results
from wav2kp.evaluation.baselines import fit_baselines
from wav2kp.windowing.targets import apply_pose


class Oracle:
    """Returns the ground truth (delayed by ``lag`` frames): a perfect or late model."""

    def __init__(self, name: str, lag: int = 0, nan_frames: tuple[int, ...] = (), seed=None):
        self.name, self.lag, self.nan_frames, self.seed = name, lag, nan_frames, seed

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
    fitted, _ = fit_baselines(normalizer, clips)
    predictors = [*fitted, Oracle("default"), Oracle("original", lag=2), Broken()]
    df = evaluate.evaluate_models(predictors, test_clips, progress=False)
    return test_clips, df


def test_one_row_per_model_space_and_clip_with_metadata(evaluated):
    clips, df = evaluated
    models = {"mean_face", "neutral_face", "ridge", "default", "original", "broken"}
    assert len(df) == len(models) * 2 * len(clips)
    assert set(df["model"]) == models and set(df["space"]) == {"aligned", "frame"}
    assert set(df["split"]) == {"test"} and set(df["seed"]) == {0}
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
    _, clips = synthetic_corpus()
    clip = [c for c in clips if c.split == "test"][0]
    df = evaluate.evaluate_models(
        [Oracle("default"), Oracle("holes", nan_frames=(10, 11))], [clip], progress=False
    )
    assert df["n_frames_scored"].tolist() == [clip.valid.sum() - 2] * 4


def test_the_perfect_model_is_perfect_in_both_spaces(evaluated):
    _, df = evaluated
    perfect = df[df["model"] == "default"].set_index("space")
    assert perfect.loc["aligned", "mouth_lmd_iod"].to_numpy() == pytest.approx(0.0, abs=1e-9)
    assert perfect.loc["aligned", "face_lmd_iod"].to_numpy() == pytest.approx(0.0, abs=1e-9)
    assert perfect.loc["aligned", "mouth_open_r"].to_numpy() == pytest.approx(1.0)
    for metric in metrics.FRAME_METRICS:
        assert perfect.loc["frame", metric].to_numpy() == pytest.approx(0.0, abs=1e-6)


def test_a_right_face_in_the_wrong_pose_is_scored_like_the_right_face():
    # a frame-coordinate model (like the original replica) whose face is right but whose
    # head pose is off gets the truth's scores: its face is placed with the video's pose
    opening = speech_opening(150)
    truth = talking_face(opening)
    n = len(truth)
    pose = np.column_stack([np.full(n, 1.3), np.full(n, 0.2), np.full(n, 40.0), np.full(n, -25.0)])
    wrong_pose = apply_pose(truth, pose)
    still = talking_face(np.full(n, opening.mean()))
    table = evaluate.score_landmarks(
        {"right_face": wrong_pose, "still": still}, truth, times(n), clip_id="c"
    ).set_index(["model", "space"])
    assert table.loc[("right_face", "aligned"), "mouth_lmd_iod"] == pytest.approx(0, abs=1e-9)
    assert table.loc[("right_face", "aligned"), "mouth_open_r"] == pytest.approx(1.0)
    assert table.loc[("still", "aligned"), "mouth_lmd_iod"] > 0.01
    assert table.loc[("right_face", "frame"), "mouth_crop_px"] == pytest.approx(0, abs=1e-6)
    assert table.loc[("still", "frame"), "mouth_crop_px"] > 0.5
    # each space has its own measures: none is a copy of the other's
    aligned_only = [m for m in metrics.METRIC_DIRECTIONS if m not in metrics.FRAME_METRICS]
    assert table.loc[(slice(None), "frame"), aligned_only].isna().all().all()
    assert table.loc[(slice(None), "aligned"), list(metrics.FRAME_METRICS)].isna().all().all()
    # scored as given, in pixels, the wrong pose costs a lot
    raw = metrics.face_lmd(wrong_pose, truth)
    assert raw > 0.05


def test_score_extraction_reads_an_extracted_clip_and_skips_missing_frames(tmp_path):
    opening = speech_opening(120)
    truth = talking_face(opening).astype(np.float32)
    status = np.zeros(len(truth), np.int8)
    status[[5, 6]] = 2
    truth[[5, 6]] = np.nan
    path = tmp_path / "someone_else.npz"
    np.savez(path, times=times(len(truth)), lm68=truth, frame_status=status)
    late = np.concatenate([truth[:1], truth[:-1]])
    table = evaluate.score_extraction(
        {"late": np.nan_to_num(late, nan=100.0), "truth": np.nan_to_num(truth, nan=100.0)}, path
    )
    assert set(table["clip_id"]) == {"someone_else"}
    assert (table["n_frames_scored"] == len(truth) - 3).all()  # 5, 6 and 7 (late's NaN-free copy)
    late_row = table[(table["model"] == "late") & (table["space"] == "aligned")].iloc[0]
    assert late_row["av_offset_frames"] == 1
    # a table of many such clips summarises with intervals over clips
    many = pd.concat(
        [table.assign(clip_id=f"c{i}", sentence_id=f"c{i}") for i in range(3)], ignore_index=True
    )
    summary = results.summarise(many, unit="clip_id").set_index(["space", "model", "metric"])
    assert summary.loc[("aligned", "truth", "mouth_open_r"), "estimate"] == pytest.approx(1.0)
    assert summary.loc[("aligned", "truth", "mouth_open_r"), "n_units"] == 3


def test_score_landmarks_refuses_a_prediction_of_another_length():
    truth = talking_face(speech_opening(50))
    with pytest.raises(ValueError, match="clip7"):
        evaluate.score_landmarks(truth[:-1], truth, times(50), clip_id="clip7")


def test_training_seeds_are_rows_of_their_own_and_spread_in_the_summary():
    _, clips = synthetic_corpus(n_train=0, n_val=0, n_test=3)
    predictors = [Oracle("default", seed=0), Oracle("default", lag=1, seed=1), Oracle("x", lag=2)]
    df = evaluate.evaluate_models(predictors, clips, progress=False)
    assert sorted(set(zip(df["model"], df["seed"], strict=True))) == [
        ("default", 0), ("default", 1), ("x", 0)
    ]  # fmt: skip
    summary = results.summarise(df).set_index(["space", "model", "metric"])
    row = summary.loc[("aligned", "default", "av_offset_frames")]
    assert row["n_seeds"] == 2
    assert row["estimate"] == pytest.approx(0.5)  # mean over seeds 0 and 1 frame late
    assert row["seed_sd"] == pytest.approx(np.std([0, 1], ddof=1))
    with pytest.raises(ValueError, match="unique"):
        evaluate.evaluate_models([Oracle("a", seed=1), Oracle("a", seed=1)], clips, progress=False)


def test_lag_curves_peak_at_the_models_delay():
    normalizer, clips = synthetic_corpus()
    test_clips = [c for c in clips if c.split == "test"]
    fitted, _ = fit_baselines(normalizer, clips, names=("mean_face",))
    curves = evaluate.lag_curves(
        [Oracle("default"), Oracle("late", lag=3), *fitted], test_clips, max_lag_frames=5
    )
    assert set(curves["lag_frames"]) == set(range(-5, 6))
    pooled = evaluate.pooled_offsets(curves)
    assert pooled.loc["default", "lag_frames"] == 0
    assert pooled.loc["default", "r"] == pytest.approx(1.0)
    assert pooled.loc["late", "lag_frames"] == 3
    assert pooled.loc["late", "lag_ms"] == pytest.approx(3 * 1001 / 30)
    assert "mean_face" not in pooled.index  # a frozen mouth has no offset


def test_video_clips_spread_over_speakers_and_emotions():
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


def test_checkpoints_of_every_seed_are_found_in_seed_order(tmp_path):
    folder = tmp_path / "default"
    for sub in ("", "seed-10", "seed-2", "seed-0", "seed-0/selection", "seed-x", "other"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / "best.pt").write_bytes(b"")
    found = evaluate.checkpoint_paths("any", str(folder))
    assert [p.relative_to(folder).as_posix() for p in found] == [
        "seed-0/best.pt", "seed-2/best.pt", "seed-10/best.pt"
    ]  # fmt: skip
    # a folder without seed folders is one checkpoint; a file is itself
    assert evaluate.checkpoint_paths("any", str(folder / "other")) == [folder / "other" / "best.pt"]
    assert evaluate.checkpoint_paths("any", str(folder / "x.pt")) == [folder / "x.pt"]
    assert evaluate.checkpoint_paths("any", str(tmp_path / "nothing")) == []
    assert evaluate.model_name(str(folder)) == "default"
    assert evaluate.model_name(str(folder / "seed-2" / "best.pt")) == "default"
    assert evaluate.model_name(str(folder / "seed-2")) == "default"
    assert evaluate.model_name("models/my_model.pt") == "my_model"


def test_run_evaluation_on_a_corpus(tmp_path, monkeypatch):
    from test_dataset import write_fake_corpus
    from wav2kp import cli
    from wav2kp.training import train
    from wav2kp.windowing import dataset

    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path))
    paths = write_fake_corpus(tmp_path)
    manifest = pd.read_csv(paths.extracted / "manifest.csv")
    manifest.loc[manifest["speaker"] == "bob", "emotion"] = "joy"  # two emotion labels
    manifest.to_csv(paths.extracted / "manifest.csv", index=False)
    clips = dataset.load_clips("fake", splits=None, progress=False)
    config = train.TrainConfig.preset("default", epochs=1, device="cpu", refit_on_val=False)
    context = train.load_corpus_for_training("fake", progress=False).context
    train.train_model(
        [c for c in clips if c.split == "train"],
        [c for c in clips if c.split == "val"],
        config,
        paths.models / "default",
        context=context,
        progress=False,
    )
    run = evaluate.run_evaluation("fake", output_dir=tmp_path / "out", progress=False)
    names = {p.name for p in run.predictors}
    assert names == {"mean_face", "neutral_face", "loudness", "ridge", "default",
                     results.LABEL_FREE, results.AUDIO_LABEL}  # fmt: skip
    # without its label the default model takes "neutral": other predictions for joy only
    default, label_free = run.predictor("default"), run.predictor(results.LABEL_FREE)
    for clip in run.clips:
        same = np.array_equal(default.predict_landmarks(clip), label_free.predict_landmarks(clip))
        assert same == (clip.emotion == "neutral"), clip.clip_id
    assert any("'original'" in p and "no checkpoint" in p for p in run.problems)
    assert set(run.table["split"]) == {"test"}
    assert set(run.table["clip_id"]) == {c.clip_id for c in clips if c.split == "test"}
    # the baselines follow the trained model's rule (no refit here) and its window
    assert run.protocol["refit"] is False
    assert run.protocol["window"] == config.window
    ridge = run.predictor("ridge")
    assert ridge.window == config.window_config
    # the results file regenerates the clip table, and its tables from it
    table, protocol = results.load_results(tmp_path / "out")
    assert protocol["corpus"] == "fake" and protocol["seeds"] == [0]
    pd.testing.assert_frame_equal(
        table.reset_index(drop=True),
        run.table[table.columns].reset_index(drop=True),
        check_dtype=False,
    )
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"mean_face", "ridge", "default", "details"} <= set(data)
    checks = run.checks().set_index("target")
    assert "not measurable" in checks.loc["mouth LMD vs original replica", "verdict"]
    assert checks.loc["mouth-opening r", "verdict"] == "too few test sentences to judge"

    # the command line does the same and writes a side-by-side video
    out = tmp_path / "cli"
    code = cli.main(["evaluate", "--corpus", "fake", "--out", str(out), "--videos", "1"])
    assert code == 0
    assert (out / "results.json").is_file() and len(list((out / "videos").glob("*.mp4"))) == 1


def test_label_free_row_is_what_predict_gives_through_the_silence_gate(tmp_path):
    """The label-free row claims to be `predict`'s output: a gated model's label-free copy
    must keep the gate (GRID's checkpoints are gated), on a real tiny model."""
    from wav2kp.benchmarks.predict import speech_sample, tiny_checkpoint
    from wav2kp.predict.predict import _feature_setup, predict_track
    from wav2kp.training.inference import load_predictor, unwrapped
    from wav2kp.training.vad import SilenceGate
    from wav2kp.windowing.dataset import clip_from_audio

    gated = SilenceGate(load_predictor(tiny_checkpoint(tmp_path / "model", epochs=1, emotions=("neutral", "happy")),
                                       name=results.REFERENCE), name=results.REFERENCE)  # fmt: skip
    assert evaluate.uses_emotion(gated)
    sample_rate = 16000
    silence = np.zeros(sample_rate, np.float32)  # a second of silence each side: the gate acts
    samples = np.concatenate([silence, speech_sample(2.0, seed=3), silence])
    times, predicted = predict_track(gated, samples, sample_rate)  # what `predict` writes
    # the same speech as an evaluation clip, carrying a true label the row must ignore
    config, stats = _feature_setup(gated)
    clip = clip_from_audio(samples, sample_rate, times, config, stats, gated.window_config)
    clip = replace(clip, emotion="angry")
    (label_free,), _ = evaluate.label_free_variants([gated], [])
    assert label_free.name == results.LABEL_FREE
    np.testing.assert_allclose(label_free.predict_landmarks(clip), predicted, atol=1e-4)
    # without the gate the same copy moves the mouth in the silence: the test can tell
    bare = unwrapped(gated).with_emotion("").predict_landmarks(clip)
    assert np.abs(bare - predicted).max() > 1e-3
    # the calibration keeps itself on a copy too, under the gate (load_predictor's order)
    from wav2kp.training.calibration import Calibrated

    both = SilenceGate(Calibrated(unwrapped(gated), name="m"), name="m").with_emotion("")
    assert isinstance(both, SilenceGate) and isinstance(both.predictor, Calibrated)
    assert both.predictor.predictor.emotion == "" and both.name == "m ()"


# ---------- motion and lip closures on real speech (issue 17) ----------

SPOKEN = "bin blue by m seven please"  # a GRID-style sentence: /b/ /b/ /b/ /m/ /p/


class OpenMouth:
    """A mouth that follows the truth's syllables but never closes: the closed frames of
    the truth (and its silence) held at the resting opening."""

    def __init__(self, name: str, rest: float):
        self.name, self.rest, self.seed = name, rest, None

    def predict_landmarks(self, clip):
        opening = clip.extra["opening"]
        return talking_face(np.where(opening > 0, opening, self.rest))


def spoken_clip(folder, text: str = SPOKEN):
    """A clip of real English speech (espeak-ng, en-us) whose true mouth closes exactly
    over espeak's own /p/, /b/ and /m/ and rests closed in silence, opening 0.2 +- 0.08
    (IOD) at 4 Hz elsewhere; the audio in a corpus-like ``interim/<corpus>/audio/``.
    ``extra["opening"]``: the lower lip's shift (IOD); closed is -0.06, where the
    template face's inner lips (6 px apart at rest) touch."""
    from wav2kp.demo.tts import synthesize
    from wav2kp.media.audio import resample, write_wav
    from wav2kp.windowing.dataset import ClipData

    speech = synthesize(text, voice="en-us")
    audio = write_wav(folder / "interim" / "spoken" / "audio" / "bbbm7p.wav",
                      resample(speech.audio, speech.sample_rate, 16000), 16000)  # fmt: skip
    t = np.arange(int(speech.duration * 25)) / 25.0
    opening = 0.2 + 0.08 * np.sin(2 * np.pi * 4.0 * t)
    starts = [s for s, _ in speech.phonemes] + [speech.duration]
    for (start, name), end in zip(speech.phonemes, starts[1:], strict=True):
        if name in ("p", "b", "m", "_", "_:"):  # lips closed, or silence
            inside = (t >= start) & (t < end)
            if not inside.any():  # a closure shorter than a frame: the nearest frame
                inside = np.arange(len(t)) == np.argmin(np.abs(t - (start + end) / 2))
            opening[inside] = -0.06
    opening[t < speech.phonemes[0][0]] = -0.06
    n = len(t)
    return ClipData(
        clip_id="bbbm7p", speaker="s", emotion="neutral", sentence_id="bbbm7p", split="test",
        frame_times=t, landmarks=talking_face(opening).astype(np.float32),
        valid=np.ones(n, bool), frame_size=(400, 400), audio_path=audio,
        features=np.zeros((1, 1), np.float32), feature_times=np.zeros(1),
        windows=np.zeros((n, 1, 1), np.float32), targets=np.zeros((n, 136), np.float32),
        pose=np.zeros((n, 4), np.float32), extra={"text": text, "opening": opening},
    )  # fmt: skip


def test_closures_and_syllable_band_on_real_speech_through_evaluate_models(tmp_path, monkeypatch):
    from wav2kp.evaluation import phones

    clip = spoken_clip(tmp_path)
    untimed = replace(clip, clip_id="no_text", sentence_id="no_text",
                      extra={**clip.extra, "text": ""})  # fmt: skip
    predictors = [Oracle("default"), OpenMouth("open", rest=0.12)]
    phones._MEMORY.clear()
    table = evaluate.evaluate_models(predictors, [clip, untimed], progress=False)
    aligned = table[table["space"] == "aligned"].set_index(["clip_id", "model"])
    perfect, open_ = aligned.loc[("bbbm7p", "default")], aligned.loc[("bbbm7p", "open")]
    # pocketsphinx's alignment finds the five bilabials espeak said, and within +-1 frame
    # the true mouth is closed on every one: the real mouth's rate, the ceiling, is 1
    assert perfect["n_bilabials"] == 5
    assert perfect["true_bilabial_closure_rate"] == 1.0 == open_["true_bilabial_closure_rate"]
    assert perfect["bilabial_closure_rate"] == 1.0 and open_["bilabial_closure_rate"] == 0.0
    # reported beside jitter: the band amplitude of the truth itself, and of a mouth that
    # skips the closures (more band power: the closures are dips of its syllables)
    assert perfect["syllable_band_ratio"] == pytest.approx(1.0)
    assert np.isfinite(perfect["mouth_jitter_ratio"]) and 0 < open_["syllable_band_ratio"] < 1
    # a clip without a transcript: no closures (NaN, never a guess), the band still scored
    no_text = aligned.loc[("no_text", "open")]
    assert np.isnan(no_text["bilabial_closure_rate"])
    assert np.isnan(no_text["true_bilabial_closure_rate"])
    assert no_text["syllable_band_ratio"] == pytest.approx(open_["syllable_band_ratio"])
    # the closure target: the model's rate over the real mouth's on the same sentences
    for model, ratio in (("default", 1.0), ("open", 0.0)):
        checks = results.target_checks(table, model, targets="same_voice").set_index("target")
        assert checks.loc["bilabial closures vs real mouth", "estimate"] == pytest.approx(ratio)
    # the alignment is kept beside the corpus's audio and read back, not decoded again
    cache = tmp_path / "interim" / "spoken" / "alignments" / "bbbm7p.json"
    assert cache.is_file()
    phones._MEMORY.clear()

    def no_decoding(*args, **kwargs):
        raise AssertionError("aligned again despite the cache")

    monkeypatch.setattr(phones, "aligned_phones", no_decoding)
    again = evaluate.evaluate_models(predictors, [clip], progress=False)
    pd.testing.assert_frame_equal(again, table[table["clip_id"] == "bbbm7p"].reset_index(drop=True))


def test_a_transcripts_pause_tokens_are_not_words():
    from types import SimpleNamespace

    from wav2kp.evaluation.phones import clip_text

    grid = SimpleNamespace(extra={"text": "lay green at z eight sp please"})
    assert clip_text(grid) == "lay green at z eight please"  # "sp" is not in CMUdict
    assert clip_text(SimpleNamespace(extra={})) == "" == clip_text(SimpleNamespace(extra=None))
