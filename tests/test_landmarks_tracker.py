"""FaceMeshTracker: pixels out, and the same person followed when several are in view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
from wav2kp.extraction.facemesh import FaceMeshTracker

FACE = skimage.data.astronaut()[40:300, 100:360]  # the portrait's head, 260x260


def two_faces(left: int, right: int) -> np.ndarray:
    """A 620x340 frame with the head at ``left`` px on the left, ``right`` px on the right."""
    canvas = np.full((340, 620, 3), 200, np.uint8)
    canvas[20 : 20 + left, 10 : 10 + left] = cv2.resize(FACE, (left, left))
    canvas[20 : 20 + right, 320 : 320 + right] = cv2.resize(FACE, (right, right))
    return canvas


def test_points_are_pixels_of_the_frame():
    image = skimage.data.astronaut()
    with FaceMeshTracker(static=True) as tracker:
        points = tracker.process(image)
        # the same face with 160 px of padding on the left: x shifts, y does not
        wide = np.concatenate([np.zeros((512, 160, 3), np.uint8), image], axis=1)
        shifted = tracker.process(wide)
    assert points.shape == (478, 3) and points.dtype == np.float32
    assert 150 < points[:, 0].mean() < 300 and 80 < points[:, 1].mean() < 250
    np.testing.assert_allclose(shifted[:, 0] - 160, points[:, 0], atol=3)
    np.testing.assert_allclose(shifted[:, 1], points[:, 1], atol=3)


def test_no_face_gives_none_and_bad_frames_are_refused():
    with FaceMeshTracker() as tracker:
        assert tracker.process(np.full((120, 160, 3), 90, np.uint8)) is None
        with pytest.raises(ValueError, match="uint8"):
            tracker.process(np.zeros((10, 10, 3), np.float32))


@pytest.mark.parametrize("left,right", [(230, 260), (260, 190)])
def test_starts_on_the_largest_face(left, right):
    with FaceMeshTracker(max_faces=2, static=True) as tracker:
        points = tracker.process(two_faces(left, right))
        assert tracker.n_faces_last == 2
    on_right = points[:, 0].mean() > 320
    assert on_right == (right > left)


def test_keeps_following_the_first_person_when_another_grows_larger():
    xs = []
    with FaceMeshTracker(max_faces=2) as tracker:
        for right in np.linspace(150, 290, 8).astype(int):
            points = tracker.process(two_faces(230, int(right)))
            xs.append(points[:, 0].mean())
    assert all(x < 310 for x in xs)  # always the left head, even once the right is bigger


def test_a_reused_tracker_gives_the_same_points_as_a_new_one():
    """Workers keep one tracker for thousands of clips (``shared_tracker``): after another
    clip, reset, the points must be bit-identical to a fresh tracker's."""
    from wav2kp.extraction.facemesh import shared_tracker

    clip_a = [two_faces(230, 160 + 10 * i) for i in range(6)]
    clip_b = [np.ascontiguousarray(skimage.data.astronaut()[:, ::-1]) for _ in range(4)]

    def run(tracker, frames):
        return [tracker.process(f) for f in frames]

    with FaceMeshTracker() as fresh:
        expected = run(fresh, clip_a)
        expected_faces = fresh.faces
    with shared_tracker(max_faces=2) as tracker:
        run(tracker, clip_b)
        first = tracker
    with shared_tracker(max_faces=2) as tracker:
        assert tracker is first  # the same MediaPipe graph, reset
        got = run(tracker, clip_a)
        assert tracker.faces == expected_faces and max(expected_faces) == 2
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
