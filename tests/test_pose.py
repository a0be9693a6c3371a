"""Head pose from the mesh: a 3D similarity to the clip's median face."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from wav2kp.extraction.pose import STABLE_POINTS, head_pose, rotation_to_euler, umeyama


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(25, 3))
    rot = Rotation.random(4, random_state=2).as_matrix()
    scale = rng.uniform(0.5, 3.0, 4)
    trans = rng.normal(size=(4, 3)) * 10
    target = scale[:, None, None] * np.einsum("tij,nj->tni", rot, source) + trans[:, None]
    r, t, s = umeyama(source, target)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(s, scale, rtol=1e-9)
    np.testing.assert_allclose(t, trans, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(r), 1.0)


def test_head_pose_follows_rotation_scale_and_translation_of_a_face():
    rng = np.random.default_rng(3)
    face = rng.normal(size=(478, 3)) * 40.0  # a rigid "face"
    angles = np.array([[0, 0, 0], [0, 15, 0], [10, 0, 0], [0, 0, -20], [0, 0, 0]], float)
    rot = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    scale = np.array([1.0, 1.0, 1.2, 0.9, 1.0])
    trans = np.array([[200, 200, 0], [210, 190, 0], [200, 205, 5], [190, 200, 0], [0, 0, 0]], float)
    clip = scale[:, None, None] * np.einsum("tij,nj->tni", rot, face) + trans[:, None]
    clip[4] = np.nan  # a missing frame
    r, t, s = head_pose(clip)
    assert r.dtype == np.float32 and r.shape == (5, 3, 3) and t.shape == (5, 3) and s.shape == (5,)
    assert np.isnan(r[4]).all() and np.isnan(t[4]).all() and np.isnan(s[4])
    # rotations relative to the first (neutral) frame equal the applied ones
    relative = np.einsum("tij,kj->tik", r[:4].astype(float), r[0].astype(float))
    np.testing.assert_allclose(rotation_to_euler(relative), angles[:4], atol=0.05)
    np.testing.assert_allclose(s[:4] / s[0], scale[:4], rtol=1e-4)
    # the mapped reference reproduces the frame's stable points
    centre = clip[:4, STABLE_POINTS].mean(axis=1)
    np.testing.assert_allclose(t[:4], centre, atol=1e-2 * 40)
    assert np.isnan(rotation_to_euler(r)[4]).all()


def test_expression_points_do_not_move_the_pose():
    rng = np.random.default_rng(4)
    face = rng.normal(size=(478, 3)) * 40.0
    clip = np.repeat(face[None], 3, axis=0)
    others = np.setdiff1d(np.arange(478), STABLE_POINTS)
    clip[1, others] += rng.normal(size=(len(others), 3)) * 15  # mouth/eyes move
    r, _, s = head_pose(clip)
    np.testing.assert_allclose(r[1], r[0], atol=1e-5)
    assert s[1] == pytest.approx(s[0], rel=1e-5)


def test_all_missing_clip_gives_nan_pose():
    r, t, s = head_pose(np.full((3, 478, 3), np.nan))
    assert np.isnan(r).all() and np.isnan(t).all() and np.isnan(s).all()
