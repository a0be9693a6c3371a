"""Demo faces: framing of the real portraits and the mouth/eye/head deformation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from wav2kp.demo.face import (
    FRAME_SIZE,
    INTEROCULAR_PX,
    FaceRenderer,
    FaceState,
    detect_landmarks,
    load_photo,
    portrait,
)


@pytest.fixture(scope="module", params=["astronaut", "hopper"])
def renderer(request):
    return FaceRenderer(portrait(request.param))


def mouth_darkness(renderer, frame) -> float:
    """Fraction of dark pixels in a box around the rest mouth."""
    lm = renderer.face.landmarks
    x0, x1 = int(lm[78, 0]) + 4, int(lm[308, 0]) - 4
    y0, y1 = int(lm[13, 1]) - 4, int(lm[14, 1] + 0.4 * renderer.iod)
    gray = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    return float((gray < 50).mean())


def test_portraits_are_framed_consistently(renderer):
    face = renderer.face
    assert face.image.shape == (FRAME_SIZE, FRAME_SIZE, 3) and face.image.dtype == np.uint8
    assert abs(face.iod - INTEROCULAR_PX) < 4  # re-detected on the framed image
    eyes = face.landmarks[[468, 473]]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 4  # level eyes
    assert face.landmarks[152, 1] < FRAME_SIZE - 40  # the chin is in the frame


def test_jaw_opens_a_dark_mouth_that_face_mesh_measures(renderer):
    closed = renderer.render(FaceState(jaw=0.0))
    half = renderer.render(FaceState(jaw=0.5))
    wide = renderer.render(FaceState(jaw=1.0))
    dark = [mouth_darkness(renderer, f) for f in (closed, half, wide)]
    assert dark[0] < 0.05 < dark[1] < dark[2]
    gaps = []
    for frame in (closed, half, wide):
        pts = detect_landmarks(frame)
        gaps.append(np.linalg.norm(pts[13] - pts[14]) / np.linalg.norm(pts[468] - pts[473]))
    assert gaps[0] < 0.05 and gaps[0] < gaps[1] < gaps[2]
    assert 0.2 < gaps[2] < 0.5  # about the commanded 0.36 inter-ocular distances


def test_blink_closes_the_eyes(renderer):
    lm = renderer.face.landmarks
    open_eye = renderer.render(FaceState())
    shut = renderer.render(FaceState(blink=1.0))
    y0, y1 = int(lm[159, 1]) - 2, int(lm[145, 1]) + 2
    x0, x1 = int(lm[33, 0]) + 3, int(lm[133, 0]) - 3
    diff = np.abs(open_eye[y0:y1, x0:x1].astype(int) - shut[y0:y1, x0:x1]).mean()
    assert diff > 15
    # the lower face does not move in a blink
    mouth = slice(int(lm[13, 1]) - 10, int(lm[152, 1]))
    assert np.abs(open_eye[mouth].astype(int) - shut[mouth]).max() == 0


def test_head_motion_is_one_resampling_of_the_deformed_face(renderer):
    state = FaceState(jaw=0.7, smile=0.5, head_roll=3, head_tx=4, head_ty=-3, head_scale=1.02)
    direct = renderer.render(state)
    # reference: deform, paint, then move the whole frame (two resamplings)
    dx, dy, lips = renderer.displacement(state)
    deformed = cv2.remap(renderer.face.image, renderer.grid_x + dx, renderer.grid_y + dy,
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    deformed = renderer._paint_cavity(deformed, lips)
    moved = cv2.warpAffine(deformed, renderer._head_matrix(state), (FRAME_SIZE, FRAME_SIZE),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    diff = np.abs(direct.astype(int) - moved)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) < 12
    assert np.abs(direct.astype(int) - renderer.render(FaceState(jaw=0.7, smile=0.5))).mean() > 3


def test_rest_state_keeps_the_portrait_outside_the_mouth(renderer):
    frame = renderer.render(FaceState())
    lm = renderer.face.landmarks
    top = slice(0, int(lm[1, 1]))  # above the nose tip: untouched at rest
    assert np.abs(frame[top].astype(int) - renderer.face.image[top]).max() <= 1


def test_unknown_speaker_is_refused():
    with pytest.raises(ValueError, match="unknown demo speaker"):
        load_photo("nobody")


def test_head_turn_moves_the_nose_more_than_the_outline(renderer):
    lm = renderer.face.landmarks
    straight = detect_landmarks(renderer.render(FaceState()))
    turned = detect_landmarks(renderer.render(FaceState(head_yaw=6.0)))
    nose_shift = turned[1, 0] - straight[1, 0]
    outline_shift = np.mean(turned[[234, 454], 0] - straight[[234, 454], 0])
    assert nose_shift > 4 and nose_shift > outline_shift + 3
    assert abs(turned[1, 1] - straight[1, 1]) < 3  # a turn, not a nod
    assert renderer.depth_shift[int(lm[1, 1]), int(lm[1, 0])] > renderer.depth_shift[5, 5]


def test_gaze_moves_the_irises_not_the_lids(renderer):
    ahead = renderer.render(FaceState())
    aside = renderer.render(FaceState(gaze_x=4.0))
    a, b = detect_landmarks(ahead), detect_landmarks(aside)
    for iris in (468, 473):
        assert 2.0 < b[iris, 0] - a[iris, 0] < 6.0
    lm = renderer.face.landmarks
    brow = slice(int(lm[105, 1]) - 5, int(lm[105, 1]) + 5)
    assert np.abs(ahead[brow].astype(int) - aside[brow]).max() == 0  # brows untouched
