"""Baselines on synthetic clips whose mouth motion is a learnable function of the audio."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_metrics import LOWER_LIP, template_face
from wav2kp import metrics
from wav2kp.config import WindowConfig
from wav2kp.evaluation.baselines import (
    LoudnessBaseline,
    MeanFaceBaseline,
    NeutralFaceBaseline,
    RidgeBaseline,
    _inputs,
    _training_rows,
    fit_baselines,
    loudness_db,
)
from wav2kp.windowing.dataset import ClipData
from wav2kp.windowing.windowing import build_windows

CONTEXT, FEATURE_DIM = 5, 8


class SimilarityNormalizer:
    """A small real normaliser for tests: targets = aligned points - the speaker's mean
    face (136 values); pose [scale, angle, tx, ty] maps aligned points to pixels."""

    def __init__(self, mean_faces: dict[str, np.ndarray]):
        self.mean_faces = mean_faces

    def inverse(self, targets, pose, speaker):
        aligned = self.mean_faces[speaker][None] + np.asarray(targets).reshape(-1, 68, 2)
        scale, angle, tx, ty = (np.asarray(pose)[:, i, None] for i in range(4))
        cos, sin = np.cos(angle), np.sin(angle)
        x = scale * (cos * aligned[..., 0] - sin * aligned[..., 1]) + tx
        y = scale * (sin * aligned[..., 0] + cos * aligned[..., 1]) + ty
        return np.stack([x, y], axis=-1)


def aligned_mean_face() -> np.ndarray:
    face = template_face(iod=1.0, centre=(0.0, 0.0))
    return face - face.mean(axis=0)


AUDIO_TO_OPENING = np.random.default_rng(123).normal(0, 1, size=CONTEXT * FEATURE_DIM)


def synthetic_clip(
    clip_id: str,
    split: str,
    n_frames: int = 90,
    seed: int = 0,
    speaker: str = "spk",
    emotion: str = "neutral",
    normalizer: SimilarityNormalizer | None = None,
    fps: float = 30000 / 1001,
    missing: tuple[int, ...] = (),
) -> ClipData:
    """A clip whose lower lip opens by a fixed linear function of its audio windows."""
    rng = np.random.default_rng(seed)
    normalizer = normalizer or SimilarityNormalizer({speaker: aligned_mean_face()})
    features = rng.normal(0, 1, size=(n_frames + CONTEXT, FEATURE_DIM)).astype(np.float32)
    windows = np.stack([features[t : t + CONTEXT] for t in range(n_frames)])
    drive = windows.reshape(n_frames, -1) @ AUDIO_TO_OPENING / np.sqrt(CONTEXT * FEATURE_DIM)
    opening = 0.08 * (1 + np.tanh(drive)) + rng.normal(0, 0.003, n_frames)
    targets = np.zeros((n_frames, 68, 2))
    targets[:, LOWER_LIP, 1] = opening[:, None]
    targets = targets.reshape(n_frames, -1).astype(np.float32)
    pose = np.c_[
        np.full(n_frames, 120.0) + rng.normal(0, 1, n_frames).cumsum() * 0.1,
        rng.normal(0, 0.002, n_frames).cumsum(),
        np.full(n_frames, 160.0),
        np.full(n_frames, 150.0),
    ].astype(np.float32)
    landmarks = normalizer.inverse(targets, pose, speaker).astype(np.float32)
    valid = np.ones(n_frames, bool)
    valid[list(missing)] = False
    landmarks[~valid] = np.nan
    targets[~valid] = np.nan
    return ClipData(
        clip_id=clip_id,
        speaker=speaker,
        emotion=emotion,
        sentence_id=clip_id,
        split=split,
        frame_times=np.arange(n_frames) / fps,
        landmarks=landmarks,
        valid=valid,
        frame_size=(320, 320),
        audio_path=None,
        features=features,
        feature_times=np.arange(len(features)) / 80.0,
        windows=windows,
        targets=targets,
        pose=pose,
    )


def synthetic_corpus(n_train: int = 6, n_val: int = 2, n_test: int = 2):
    normalizer = SimilarityNormalizer({"spk": aligned_mean_face()})
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    emotions = ["neutral", "joy"]
    clips = [
        synthetic_clip(
            f"spk_{emotions[i % 2]}_s{i:02d}",
            split,
            seed=i,
            emotion=emotions[i % 2],
            normalizer=normalizer,
            missing=(3, 4) if i % 3 == 0 else (),
        )
        for i, split in enumerate(splits)
    ]
    return normalizer, clips


def test_baselines_fit_and_predict_landmark_shapes():
    normalizer, clips = synthetic_corpus()
    fitted, problems = fit_baselines(normalizer, clips)
    # the synthetic clips have no audio file: the loudness baseline says so, the rest fit
    assert [m.name for m in fitted] == ["mean_face", "neutral_face", "ridge"]
    assert len(problems) == 1 and "loudness" in problems[0] and "no audio" in problems[0]
    test_clip = clips[-1]
    for model in fitted:
        pred = model.predict_landmarks(test_clip)
        assert pred.shape == (test_clip.n_frames, 68, 2)
        assert np.isfinite(pred).all()
    ridge = fitted[-1]
    assert ridge.alpha in ridge.alphas and set(ridge.val_scores) == set(ridge.alphas)


def test_mean_face_is_the_true_mean_of_the_training_targets():
    normalizer, clips = synthetic_corpus()
    train = [c for c in clips if c.split == "train"]
    model = MeanFaceBaseline(normalizer).fit(train)
    rows = np.concatenate([c.targets[c.valid] for c in train])
    clip = clips[-1]
    expected = normalizer.inverse(np.tile(rows.mean(axis=0), (clip.n_frames, 1)), clip.pose, "spk")
    np.testing.assert_allclose(model.predict_landmarks(clip), expected, rtol=1e-5, atol=1e-3)
    # the synthetic mouths are open on average: the mean face's mouth is open too
    assert rows.reshape(-1, 68, 2)[:, LOWER_LIP, 1].mean() > 0.05
    # only the pose moves it: the mouth opening relative to the face scale is constant
    assert np.ptp(metrics.mouth_opening(model.predict_landmarks(clip))) < 1e-5
    # an unknown speaker gets the mean over every training frame
    stranger = replace(clip, speaker="nobody")
    np.testing.assert_allclose(model.predict_targets(stranger)[0], rows.mean(axis=0), rtol=1e-6)


def test_neutral_face_is_the_normalisers_zero():
    normalizer, clips = synthetic_corpus()
    model = NeutralFaceBaseline(normalizer).fit(clips)
    clip = clips[-1]
    expected = normalizer.inverse(np.zeros_like(clip.targets), clip.pose, clip.speaker)
    np.testing.assert_allclose(model.predict_landmarks(clip), expected, rtol=1e-5)


def test_the_true_mean_face_beats_the_closed_neutral_on_open_mouths():
    normalizer, clips = synthetic_corpus()
    fitted, _ = fit_baselines(normalizer, clips, names=("mean_face", "neutral_face"))
    for clip in (c for c in clips if c.split == "test"):
        lmd = {m.name: metrics.mouth_lmd(m.predict_landmarks(clip), clip.landmarks, valid=clip.valid)
               for m in fitted}  # fmt: skip
        assert lmd["mean_face"] < 0.7 * lmd["neutral_face"]


def test_ridge_beats_mean_face_on_a_learnable_mapping():
    normalizer, clips = synthetic_corpus()
    fitted, _ = fit_baselines(normalizer, clips, names=("mean_face", "ridge"))
    for clip in (c for c in clips if c.split == "test"):
        scores = {
            m.name: metrics.evaluate_sequence(
                m.predict_landmarks(clip), clip.landmarks, clip.frame_times, clip.valid
            )
            for m in fitted
        }
        assert scores["ridge"]["mouth_lmd_iod"] < 0.5 * scores["mean_face"]["mouth_lmd_iod"]
        assert scores["ridge"]["mouth_open_r"] > 0.8
        # a posed static face is a frozen mouth: no variance, no defined correlation
        assert scores["mean_face"]["variance_ratio"] < 1e-3
        assert np.isnan(scores["mean_face"]["mouth_open_r"])


def test_ridge_uses_only_valid_train_frames_and_is_deterministic():
    normalizer, clips = synthetic_corpus()
    train = [c for c in clips if c.split == "train"]
    a = RidgeBaseline(normalizer).fit(train, [c for c in clips if c.split == "val"])
    b = RidgeBaseline(normalizer).fit(train, [c for c in clips if c.split == "val"])
    np.testing.assert_array_equal(a.predict_targets(clips[-1]), b.predict_targets(clips[-1]))
    # without a val split alpha still gets chosen (leave-one-out on train)
    c = RidgeBaseline(normalizer).fit(train)
    assert c.alpha in c.alphas


def test_ridge_refit_keeps_the_val_alpha_and_learns_from_val_too():
    from sklearn.linear_model import Ridge

    normalizer, clips = synthetic_corpus()
    train = [c for c in clips if c.split == "train"]
    val = [c for c in clips if c.split == "val"]
    selected = RidgeBaseline(normalizer).fit(train, val)
    refit = RidgeBaseline(normalizer).fit(train, val, refit=True)
    assert refit.alpha == selected.alpha and refit.val_scores == selected.val_scores
    x, y = _training_rows([*train, *val])
    expected = Ridge(alpha=refit.alpha).fit(x, y)
    np.testing.assert_allclose(refit.model.coef_, expected.coef_)
    assert not np.allclose(refit.model.coef_, selected.model.coef_)
    # fit_baselines applies the same rule to every baseline
    fitted, _ = fit_baselines(normalizer, clips, refit=True, names=("mean_face", "ridge"))
    all_rows = np.concatenate([c.targets[c.valid] for c in [*train, *val]])
    np.testing.assert_allclose(fitted[0].speaker_means["spk"], all_rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(fitted[1].model.coef_, expected.coef_)


def test_ridge_sees_exactly_the_window_it_is_given():
    normalizer, clips = synthetic_corpus()
    clips = [replace(c, feature_times=np.arange(len(c.features)) / 80.0) for c in clips]
    window = WindowConfig(past_ms=25.0, future_ms=50.0)  # 2 + 1 + 4 feature frames at 80 /s
    fitted, _ = fit_baselines(normalizer, clips, window=window, names=("ridge",))
    ridge = fitted[0]
    assert ridge.window == window
    assert ridge.model.n_features_in_ == 7 * FEATURE_DIM
    expected = build_windows(clips[-1].features, clips[-1].feature_times,
                             clips[-1].frame_times, window)  # fmt: skip
    np.testing.assert_array_equal(_inputs(clips[-1], window), expected.reshape(len(expected), -1))
    # without a window it uses the clip's own (here CONTEXT frames)
    assert RidgeBaseline(normalizer).fit(clips[:6]).model.n_features_in_ == CONTEXT * FEATURE_DIM


def test_ridge_refuses_windows_of_another_size():
    normalizer, clips = synthetic_corpus()
    fitted, _ = fit_baselines(normalizer, clips, names=("ridge",))
    clip = clips[-1]
    clip.windows = clip.windows[:, :3]
    with pytest.raises(ValueError, match=clip.clip_id):
        fitted[0].predict_landmarks(clip)


def test_fit_baselines_needs_train_clips_and_known_names():
    normalizer, clips = synthetic_corpus()
    with pytest.raises(ValueError, match="no train clips"):
        fit_baselines(normalizer, [c for c in clips if c.split != "train"])
    with pytest.raises(ValueError, match="unknown baselines"):
        fit_baselines(normalizer, clips, names=("mean_face", "oracle"))


# ---------- the loudness baseline, on clips whose mouth follows their loudness ----------

SR, FPS, LAG_S = 16000, 30000 / 1001, 0.06


def loud_speech(n_frames: int, seed: int, gain: float = 0.3):
    """(samples, level 0..1 at any time): noise whose level in dB follows a slow random
    envelope between -40 dB and 0 dB below ``gain``."""
    rng = np.random.default_rng(seed)
    duration = n_frames / FPS + 0.5
    knots = np.arange(0, duration + 0.1, 0.1)
    shape = np.clip(rng.normal(0.5, 0.35, len(knots)), 0, 1)

    def level(t):
        return np.interp(t, knots, shape)

    t = np.arange(int(duration * SR)) / SR
    amplitude = gain * 10 ** ((-40 + 40 * level(t)) / 20)
    return (amplitude * rng.normal(0, 1, len(t))).astype(np.float32), level


@pytest.fixture(scope="module")
def loudness_corpus(tmp_path_factory):
    """A real normaliser and clips whose mouth opening at frame time t is the speech
    level at t + 60 ms; the last clip is a speaker the normaliser never saw."""
    import soundfile as sf
    from test_metrics import talking_face
    from wav2kp.windowing.targets import TargetNormalizer

    folder = tmp_path_factory.mktemp("loudness")
    raw = []
    for i, (split, speaker) in enumerate(
        [("train", "ann")] * 4 + [("test", "ann"), ("test", "zoe")]
    ):
        n = 150
        samples, level = loud_speech(n, seed=i, gain=0.3 if i % 2 else 0.03)
        times = np.arange(n) / FPS
        landmarks = talking_face(0.03 + 0.25 * level(times + LAG_S), iod=90 + 5 * i, seed=i)
        path = folder / f"c{i}.wav"
        sf.write(path, samples, SR)
        raw.append((f"c{i}", split, speaker, times, landmarks.astype(np.float32), path))
    normalizer = TargetNormalizer().fit([(s, lm) for _, sp, s, _, lm, _ in raw if sp == "train"])
    clips = []
    for cid, split, speaker, times, landmarks, path in raw:
        targets, pose = normalizer.transform(landmarks, speaker)
        clips.append(ClipData(
            clip_id=cid, speaker=speaker, emotion="", sentence_id=cid, split=split,
            frame_times=times, landmarks=landmarks, valid=np.ones(len(times), bool),
            frame_size=(400, 400), audio_path=path, features=np.zeros((2, 1), np.float32),
            feature_times=np.array([0.0, 0.0125]), windows=np.zeros((len(times), 1, 1)),
            targets=targets.astype(np.float32), pose=pose.astype(np.float32),
        ))  # fmt: skip
    return normalizer, clips


def test_loudness_baseline_finds_the_lag_and_follows_the_loudness(loudness_corpus):
    normalizer, clips = loudness_corpus
    model = LoudnessBaseline(normalizer).fit([c for c in clips if c.split == "train"])
    assert model.lag_ms == pytest.approx(LAG_S * 1000, abs=10)
    assert model.train_errors[model.lag_ms] < model.train_errors[0.0]
    for clip in (c for c in clips if c.split == "test"):
        pred = model.predict_landmarks(clip)
        assert metrics.mouth_opening_correlation(pred, clip.landmarks) > 0.95
        assert metrics.variance_ratio(pred, clip.landmarks) == pytest.approx(1.0, abs=0.15)
        # the rest of the face is the neutral: only mouth points move
        aligned, _ = normalizer.align(pred)
        others = np.setdiff1d(np.arange(68), np.arange(48, 68))
        assert np.ptp(aligned[:, others], axis=0).max() < 1e-3


def test_loudness_baseline_ignores_the_recording_gain(loudness_corpus):
    normalizer, clips = loudness_corpus
    model = LoudnessBaseline(normalizer).fit([c for c in clips if c.split == "train"])
    samples, rate = model._clip_audio(clips[-1])
    neutral = model.neutral(clips[-1])
    quiet = model.predict_aligned(samples, rate, clips[-1].frame_times, neutral)
    loud = model.predict_aligned(10 * samples, rate, clips[-1].frame_times, neutral)
    np.testing.assert_allclose(quiet, loud, atol=1e-9)


def test_loudness_baseline_gives_an_unseen_speaker_the_training_neutral_as_the_model(
    loudness_corpus,
):
    """An unseen speaker's neutral must not come from the test clip's own ground truth:
    the baseline gets what a trained model gets (the normaliser's training neutral)."""
    from dataclasses import replace

    normalizer, clips = loudness_corpus
    model = LoudnessBaseline(normalizer).fit([c for c in clips if c.split == "train"])
    stranger = clips[-1]
    assert stranger.speaker not in normalizer.neutrals
    # a stranger whose own face differs from the training speaker's: wider lips
    wide = stranger.landmarks.astype(np.float64).copy()
    centre = wide[:, 48:68].mean(axis=1, keepdims=True)
    wide[:, 48:68, 0] = centre[..., 0] + 1.3 * (wide[:, 48:68, 0] - centre[..., 0])
    stranger = replace(stranger, landmarks=wide.astype(np.float32))
    own = normalizer.neutral_from_landmarks(stranger.landmarks)
    training = normalizer.neutral_for(stranger.speaker)
    assert np.abs(own - training).max() > 0.02  # the two neutrals tell apart
    np.testing.assert_allclose(model.neutral(stranger), training)
    assert np.allclose(model.neutral(clips[0]), normalizer.neutrals["ann"])
    # the face around the mouth is exactly the model's: its neutral placed with the pose
    predicted = model.predict_landmarks(stranger).astype(np.float64)
    at_rest = normalizer.inverse(
        np.zeros((stranger.n_frames, normalizer.n_targets)), stranger.pose, stranger.speaker
    )
    others = np.setdiff1d(np.arange(68), np.arange(48, 68))
    np.testing.assert_allclose(predicted[:, others], at_rest[:, others], atol=1e-3)


def test_loudness_level_is_relative_and_floored():
    samples = np.r_[np.zeros(SR), 0.5 * np.ones(SR)].astype(np.float32)
    times = np.array([0.5, 1.5])
    assert loudness_db(samples, SR, times)[1] == pytest.approx(20 * np.log10(0.5), abs=1e-6)
    model = LoudnessBaseline(normalizer=None)
    np.testing.assert_allclose(model.level(samples, SR, times), [0.0, 1.0])
