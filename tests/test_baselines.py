"""Baselines on synthetic clips whose mouth motion is a learnable function of the audio."""

from __future__ import annotations

import numpy as np
import pytest
from test_metrics import LOWER_LIP, template_face
from wav2kp import metrics
from wav2kp.baselines import MeanFaceBaseline, RidgeBaseline, fit_baselines
from wav2kp.dataset import ClipData

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
    mean_face, ridge = fit_baselines(normalizer, clips)
    test_clip = clips[-1]
    for model in (mean_face, ridge):
        pred = model.predict_landmarks(test_clip)
        assert pred.shape == (test_clip.n_frames, 68, 2)
        assert np.isfinite(pred).all()
    assert {mean_face.name, ridge.name} == {"mean_face", "ridge"}
    assert ridge.alpha in ridge.alphas and set(ridge.val_scores) == set(ridge.alphas)


def test_mean_face_is_the_posed_speaker_mean_with_a_still_mouth():
    normalizer, clips = synthetic_corpus()
    model = MeanFaceBaseline(normalizer).fit([c for c in clips if c.split == "train"])
    clip = clips[-1]
    pred = model.predict_landmarks(clip)
    expected = normalizer.inverse(np.zeros_like(clip.targets), clip.pose, clip.speaker)
    np.testing.assert_allclose(pred, expected, rtol=1e-5)
    # only the pose moves it: the mouth opening relative to the face scale is constant
    opening = metrics.mouth_opening(pred)
    assert np.ptp(opening) < 1e-5


def test_ridge_beats_mean_face_on_a_learnable_mapping():
    normalizer, clips = synthetic_corpus()
    mean_face, ridge = fit_baselines(normalizer, clips)
    for clip in (c for c in clips if c.split == "test"):
        scores = {
            m.name: metrics.evaluate_sequence(
                m.predict_landmarks(clip), clip.landmarks, clip.frame_times, clip.valid
            )
            for m in (mean_face, ridge)
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


def test_ridge_refuses_windows_of_another_size():
    normalizer, clips = synthetic_corpus()
    _, ridge = fit_baselines(normalizer, clips)
    clip = clips[-1]
    clip.windows = clip.windows[:, :3]
    with pytest.raises(ValueError, match=clip.clip_id):
        ridge.predict_landmarks(clip)


def test_fit_baselines_needs_train_clips():
    normalizer, clips = synthetic_corpus()
    with pytest.raises(ValueError, match="no train clips"):
        fit_baselines(normalizer, [c for c in clips if c.split != "train"])
