"""The MediaPipe 478 -> iBUG 68 mapping."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from wav2kp.extraction.landmarks import (
    GROUPS,
    MEDIAPIPE_68,
    MIRROR_68,
    PAIR_INDEX,
    inter_ocular,
    mediapipe_to_68,
    mouth_opening,
)

# MediaPipe's left/right twins of the mesh points the table uses (from the mesh itself:
# wav2kp.benchmarks.landmarks.mesh_mirror on real frames; checked on a flipped face below)
MESH_TWINS = {
    127: 356, 234: 454, 93: 323, 132: 361, 58: 288, 172: 397, 136: 365, 150: 379, 176: 400,
    148: 377, 70: 300, 63: 293, 69: 299, 224: 444, 221: 441, 107: 336, 75: 305, 97: 326,
    33: 263, 160: 387, 158: 385, 133: 362, 153: 380, 144: 373, 61: 291, 39: 269, 74: 304,
    37: 267, 321: 91, 405: 181, 314: 84, 78: 308, 82: 312, 317: 87,
}  # fmt: skip
MESH_TWINS.update({b: a for a, b in list(MESH_TWINS.items())})
MIDLINE = {152, 168, 6, 197, 195, 5, 4, 2, 0, 17, 13, 14}


def test_table_has_68_entries_with_valid_mesh_indices():
    assert len(MEDIAPIPE_68) == 68 and PAIR_INDEX.shape == (68, 2)
    assert PAIR_INDEX.min() >= 0 and PAIR_INDEX.max() < 468  # face mesh, not iris points
    assert sum(g.stop - g.start for g in GROUPS.values()) == 68


def test_jaw_ends_use_cheek_points_not_temples():
    assert MEDIAPIPE_68[0] == 127 and MEDIAPIPE_68[16] == 356
    assert MEDIAPIPE_68[8] == 152  # chin


def test_mirror_68_pairs_dlib_points_with_their_twins():
    assert sorted(MIRROR_68) == list(range(68))
    assert (MIRROR_68[MIRROR_68] == np.arange(68)).all()  # an involution
    pairs = {(0, 16), (3, 13), (8, 8), (17, 26), (21, 22), (27, 27), (31, 35), (33, 33),
             (36, 45), (39, 42), (40, 47), (41, 46), (48, 54), (51, 51), (55, 59), (57, 57),
             (60, 64), (62, 62), (65, 67), (66, 66)}  # fmt: skip
    for a, b in pairs:
        assert MIRROR_68[a] == b and MIRROR_68[b] == a


def test_every_left_right_pair_uses_mirror_image_mesh_points():
    for point in range(68):
        twin = MIRROR_68[point]
        mirrored = sorted(i if i in MIDLINE else MESH_TWINS[i] for i in PAIR_INDEX[point])
        assert mirrored == sorted(PAIR_INDEX[twin]), f"point {point} vs its mirror {twin}"
    assert sorted(PAIR_INDEX[13]) == [288, 361]  # the published table had 361 alone


def test_single_indices_copy_and_pairs_average():
    # a synthetic mesh whose point i sits at (i, 2i, 3i): mapped points reveal their indices
    mesh = np.stack([np.arange(478), 2 * np.arange(478), 3 * np.arange(478)], axis=1).astype(
        np.float32
    )
    lm68 = mediapipe_to_68(mesh)
    assert lm68.shape == (68, 2)
    np.testing.assert_allclose(lm68[0], [127, 254])
    np.testing.assert_allclose(lm68[3], [(132 + 58) / 2, 132 + 58])  # mean of two
    np.testing.assert_allclose(lm68[27], [(168 + 6) / 2, 168 + 6])
    np.testing.assert_allclose(lm68[62], [13, 26])  # inner upper lip


def test_batched_and_nan_frames_stay_nan():
    rng = np.random.default_rng(0)
    clip = rng.uniform(0, 100, size=(4, 478, 3)).astype(np.float32)
    clip[2] = np.nan
    out = mediapipe_to_68(clip)
    assert out.shape == (4, 68, 2) and out.dtype == np.float32
    assert np.isnan(out[2]).all() and np.isfinite(out[[0, 1, 3]]).all()
    np.testing.assert_allclose(out[1], mediapipe_to_68(clip[1]))


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="478"):
        mediapipe_to_68(np.zeros((68, 2)))


@pytest.fixture(scope="module")
def astronaut_68():
    from wav2kp.extraction.facemesh import FaceMeshTracker

    with FaceMeshTracker(static=True) as tracker:
        mesh = tracker.process(skimage.data.astronaut())
    assert mesh is not None and mesh.shape == (478, 3)
    return mediapipe_to_68(mesh)


def test_left_right_and_vertical_order_on_a_real_face(astronaut_68):
    lm = astronaut_68
    # dlib order: 36-41 is the subject's right eye = image left for a frontal face
    assert lm[36, 0] < lm[39, 0] < lm[42, 0] < lm[45, 0]
    assert lm[0, 0] < lm[8, 0] < lm[16, 0]
    assert lm[17, 0] < lm[26, 0] and lm[48, 0] < lm[54, 0] and lm[31, 0] < lm[35, 0]
    assert lm[8, 1] == lm[0:17, 1].max()  # chin is the lowest jaw point
    assert lm[19, 1] < lm[37, 1] < lm[30, 1] < lm[51, 1] < lm[57, 1] < lm[8, 1]
    assert np.all(np.diff(lm[27:31, 1]) > 0)  # nose bridge goes down


def test_jaw_ends_sit_near_eye_height(astronaut_68):
    lm = astronaut_68
    iod = float(inter_ocular(lm))
    assert iod > 20
    eye_y = lm[[36, 45], 1].mean()
    # 127/356 lie about at the eye corners' height; the temple variant is 0.17 IOD above
    assert abs(lm[0, 1] - eye_y) < 0.12 * iod and abs(lm[16, 1] - eye_y) < 0.12 * iod
    assert 0 <= mouth_opening(lm) < 0.2 * iod  # the astronaut's mouth is nearly closed


def test_a_mirrored_face_maps_to_the_mirrored_points(astronaut_68):
    # the same face flipped left/right: a symmetric table gives the mirror image of the
    # 68 points (the published table's jaw 13 was 0.086 IOD off here; now all < 0.05)
    from wav2kp.extraction.facemesh import FaceMeshTracker

    image = skimage.data.astronaut()
    with FaceMeshTracker(static=True) as tracker:
        flipped = mediapipe_to_68(tracker.process(image[:, ::-1].copy())).astype(np.float64)
    flipped[:, 0] = image.shape[1] - flipped[:, 0]
    error = np.linalg.norm(flipped[MIRROR_68] - astronaut_68, axis=1) / inter_ocular(astronaut_68)
    assert error.max() < 0.05 and np.median(error) < 0.015
