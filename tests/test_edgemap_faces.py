"""Synthetic 68-point faces for the hand-off tests (iBUG/dlib order, image coordinates).

Hand-made geometry, so tests control exactly where each part is (mouth opening, blinks,
head position) without a detector. Also checks the helper itself.
"""

from __future__ import annotations

import numpy as np


def synthetic_face(
    center=(256.0, 256.0),
    width: float = 200.0,
    mouth_open: float = 0.0,
    eye_open: float = 1.0,
    angle: float = 0.0,
) -> np.ndarray:
    """(68, 2) float32 face: ``width`` pixels from jaw point 0 to 16, ``mouth_open`` in
    face widths (lower lip and chin drop), ``eye_open`` 0 (closed) .. 1, rotated by
    ``angle`` radians about the face centre."""
    p = np.zeros((68, 2))
    t = np.linspace(0, np.pi, 17)
    p[:17] = np.c_[0.5 - 0.5 * np.cos(t), 0.2 + 0.8 * np.sin(t)]
    p[8:9, 1] += mouth_open * 0.6
    p[5:12, 1] += mouth_open * 0.4 * np.sin(t[5:12])
    bx = np.linspace(0.1, 0.42, 5)
    p[17:22] = np.c_[bx, 0.1 - 0.04 * np.sin(np.linspace(0, np.pi, 5))]
    p[22:27] = np.c_[1 - bx[::-1], p[17:22, 1][::-1]]
    p[27:31] = np.c_[np.full(4, 0.5), np.linspace(0.22, 0.55, 4)]
    p[31:36] = np.c_[np.linspace(0.4, 0.6, 5), [0.6, 0.62, 0.63, 0.62, 0.6]]
    h = 0.035 * eye_open
    for start, cx in ((36, 0.3), (42, 0.7)):
        xs = cx + np.array([-0.08, -0.03, 0.03, 0.08, 0.03, -0.03])
        ys = 0.25 + np.array([0, -h, -h, 0, h, h])
        p[start : start + 6] = np.c_[xs, ys]
    outer_x = 0.5 + np.array([-0.16, -0.1, -0.04, 0, 0.04, 0.1, 0.16, 0.1, 0.04, 0, -0.04, -0.1])
    outer_y = 0.78 + np.array(
        [0, -0.03, -0.045, -0.04, -0.045, -0.03, 0, 0.04, 0.055, 0.06, 0.055, 0.04]
    )
    outer_y[7:12] += mouth_open
    p[48:60] = np.c_[outer_x, outer_y]
    inner_x = 0.5 + np.array([-0.12, -0.05, 0, 0.05, 0.12, 0.05, 0, -0.05])
    inner_y = 0.78 + np.array([0, -0.01, -0.012, -0.01, 0, 0.01, 0.012, 0.01])
    inner_y[5:8] += mouth_open
    p[60:68] = np.c_[inner_x, inner_y]
    p = (p - 0.5) * width
    c, s = np.cos(angle), np.sin(angle)
    p = p @ np.array([[c, s], [-s, c]])
    return (p + np.asarray(center)).astype(np.float32)


def test_synthetic_face_layout():
    face = synthetic_face(mouth_open=0.1)
    assert face.shape == (68, 2)
    assert face[8, 1] > face[57, 1] > face[51, 1] > face[33, 1] > face[27, 1]  # chin .. nose
    assert face[36, 0] < face[39, 0] < face[42, 0] < face[45, 0]  # eyes left to right
    gap = face[66, 1] - face[62, 1]
    assert gap > synthetic_face()[66, 1] - synthetic_face()[62, 1]
