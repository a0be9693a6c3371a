"""Target normaliser: pose removal, neutral faces, PCA, exact inverse, plain-JSON state."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dataset import synthetic_face
from wav2kp.windowing.targets import (
    TargetNormalizer,
    apply_pose,
    fill_pose,
    fit_similarity,
    mouth_gap,
    remove_pose,
)


def talking_frames(n=120, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    openings = 0.15 * np.abs(np.sin(np.linspace(0, 12, n))) + 0.01 * rng.random(n)
    faces = np.stack([synthetic_face(o) for o in openings])
    faces[:, 48:68, 0] *= 1 + offset  # a speaker-specific shape: mouth width
    faces += 0.002 * rng.standard_normal(faces.shape)
    pose = np.column_stack(
        [
            60 + 20 * rng.random(n),
            0.4 * rng.random(n) - 0.2,
            100 + 300 * rng.random(n),
            100 + 200 * rng.random(n),
        ]
    )
    return apply_pose(faces, pose), openings


@pytest.fixture(scope="module")
def fitted():
    ann, _ = talking_frames(seed=1)
    bob, _ = talking_frames(seed=2, offset=0.1)
    return TargetNormalizer().fit([("ann", ann), ("bob", bob)])


pose_strategy = st.tuples(
    st.floats(20, 400), st.floats(-np.pi, np.pi), st.floats(-500, 2000), st.floats(-500, 2000)
)


@settings(max_examples=50, deadline=None)
@given(
    pose=pose_strategy, opening=st.floats(0, 0.3), speaker=st.sampled_from(["ann", "bob", "new"])
)
def test_round_trip_returns_the_landmarks(fitted, pose, opening, speaker):
    pixels = apply_pose(synthetic_face(opening)[None], np.array([pose]))
    targets, fitted_pose = fitted.transform(pixels, speaker)
    back = fitted.inverse(targets, fitted_pose, speaker)
    assert np.abs(back - pixels).max() < 1e-4


@settings(max_examples=50, deadline=None)
@given(pose_a=pose_strategy, pose_b=pose_strategy, opening=st.floats(0, 0.3))
def test_pose_is_removed(fitted, pose_a, pose_b, opening):
    face = synthetic_face(opening)[None]
    targets_a, _ = fitted.transform(apply_pose(face, np.array([pose_a])), "ann")
    targets_b, _ = fitted.transform(apply_pose(face, np.array([pose_b])), "ann")
    np.testing.assert_allclose(targets_a, targets_b, atol=1e-7)


def test_fit_similarity_recovers_a_known_pose():
    pose = np.array([[75.0, 0.3, 120.0, -40.0], [10.0, -2.0, 0.0, 5.0]])
    template = synthetic_face()
    frames = apply_pose(np.stack([template, template]), pose)
    np.testing.assert_allclose(fit_similarity(template, frames), pose, atol=1e-9)
    np.testing.assert_allclose(remove_pose(frames, pose), np.stack([template, template]), atol=1e-9)


def test_missing_frames_give_nan_rows(fitted):
    pixels, _ = talking_frames(n=5)
    pixels[2] = np.nan
    targets, pose = fitted.transform(pixels, "ann")
    assert np.isnan(targets[2]).all() and np.isnan(pose[2]).all()
    assert np.isfinite(targets[[0, 1, 3, 4]]).all()


def test_template_is_canonical(fitted):
    t = fitted.template
    assert abs(np.linalg.norm(t[45] - t[36]) - 1) < 1e-9
    assert abs(t[45, 1] - t[36, 1]) < 1e-9  # eyes horizontal
    # Targets have unit RMS on the training frames.
    ann, _ = talking_frames(seed=1)
    targets, _ = fitted.transform(ann, "ann")
    assert 0.5 < np.sqrt(np.mean(targets**2)) < 1.5


def test_neutral_faces_are_closed_mouth_and_per_speaker(fitted):
    mean_normalizer = TargetNormalizer(neutral="mean").fit([("ann", talking_frames(seed=1)[0])])
    assert mouth_gap(fitted.neutrals["ann"]) < mouth_gap(mean_normalizer.neutrals["ann"])
    # bob's mouth is wider: his neutral differs.
    assert np.abs(fitted.neutrals["ann"] - fitted.neutrals["bob"]).max() > 0.005
    np.testing.assert_allclose(fitted.neutral_for("carol"), fitted.mean_neutral)
    # A new speaker's neutral from a reference clip.
    carol, _ = talking_frames(seed=3, offset=0.2)
    neutral = fitted.add_speaker("carol", carol)
    assert np.abs(neutral - fitted.neutrals["bob"]).max() > 0.005
    # Zero targets + pose give the speaker's neutral face in pixels.
    pose = np.array([[100.0, 0.1, 50.0, 60.0]])
    back = fitted.inverse(np.zeros((1, 136)), pose, "carol")
    np.testing.assert_allclose(back, apply_pose(neutral[None], pose))


def test_pca_targets_and_state_dict_round_trip():
    frames, _ = talking_frames(n=200, seed=4)
    normalizer = TargetNormalizer(pca_components=6).fit([("ann", frames)])
    assert normalizer.n_targets == 6
    targets, pose = normalizer.transform(frames, "ann")
    assert targets.shape == (200, 6)
    assert normalizer.explained_variance_ratio[0] > 0.8  # one-parameter mouth motion
    # Mouth motion lives in the PCA span: the reconstruction is close (noise is 0.002 IOD).
    back = normalizer.inverse(targets, pose, "ann")
    iod = np.linalg.norm(frames[:, 45] - frames[:, 36], axis=1)
    assert (np.abs(back - frames).max(axis=(1, 2)) / iod).max() < 0.02
    state = json.loads(json.dumps(normalizer.state_dict()))
    again = TargetNormalizer.from_state_dict(state)
    np.testing.assert_array_equal(again.transform(frames, "ann")[0], targets)


def test_validation_and_unfitted_use():
    with pytest.raises(ValueError, match="neutral"):
        TargetNormalizer(neutral="smile")
    with pytest.raises(RuntimeError, match="not fitted"):
        TargetNormalizer().transform(np.zeros((1, 68, 2)))
    with pytest.raises(ValueError, match="68, 2"):
        TargetNormalizer().fit([("ann", talking_frames(n=5)[0])]).transform(np.zeros((4, 136)))
    with pytest.raises(ValueError, match="no valid"):
        TargetNormalizer().fit([("ann", np.full((3, 68, 2), np.nan))])


def test_fill_pose_interpolates_missing_frames():
    pose = np.array([[1, 0.0, 0, 0], [np.nan] * 4, [3, 0.2, 4, 8], [np.nan] * 4])
    filled, mask = fill_pose(pose)
    assert mask.tolist() == [False, True, False, True]
    np.testing.assert_allclose(filled[1], [2, 0.1, 2, 4])
    np.testing.assert_allclose(filled[3], filled[2])
    identity, mask = fill_pose(np.full((2, 4), np.nan))
    assert mask.all() and (identity[:, 0] == 1).all()
