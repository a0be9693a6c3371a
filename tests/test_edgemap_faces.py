"""Synthetic 68-point faces for the hand-off tests (iBUG/dlib order, image coordinates).

Hand-made geometry (defined once in ``wav2kp.benchmarks.predict``), so tests control
exactly where each part is (mouth opening, blinks, head position) without a detector.
"""

from __future__ import annotations

from wav2kp.benchmarks.predict import synthetic_face

__all__ = ["synthetic_face"]


def test_synthetic_face_layout():
    face = synthetic_face(mouth_open=0.1)
    assert face.shape == (68, 2)
    assert face[8, 1] > face[57, 1] > face[51, 1] > face[33, 1] > face[27, 1]  # chin .. nose
    assert face[36, 0] < face[39, 0] < face[42, 0] < face[45, 0]  # eyes left to right
    gap = face[66, 1] - face[62, 1]
    assert gap > synthetic_face()[66, 1] - synthetic_face()[62, 1]
