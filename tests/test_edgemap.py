"""wav2kp.plots.edgemap reproduces vid2vid's face edge map (parts, forehead, pieces, crop)."""

from __future__ import annotations

import numpy as np
import pytest
from test_edgemap_faces import synthetic_face
from wav2kp.plots import edgemap

SIZE = (512, 512)


def _lit_near(image: np.ndarray, xy, radius: int = 2) -> bool:
    x, y = int(round(xy[0])), int(round(xy[1]))
    return bool(image[y - radius : y + radius + 1, x - radius : x + radius + 1].any())


def test_edges_pass_through_used_keypoints_only():
    face = synthetic_face(mouth_open=0.05)
    image = edgemap.draw_edge_map(face, SIZE)
    assert image.shape == (512, 512) and image.dtype == np.uint8
    assert set(np.unique(image)) == {0, 255}
    used = sorted({i for _, _, edges in edgemap.FACE_PARTS for e in edges for i in e if i < 68})
    assert len(used) == 65  # 27, 29, 30 are not drawn by vid2vid
    for index in used:
        assert _lit_near(image, face[index]), f"no edge pixel at keypoint {index}"
    for index in (29, 30):  # nose bridge below 28: vid2vid draws 28 -> 31, not the bridge
        assert not _lit_near(image, face[index])


def test_lips_move_the_drawn_lower_lip():
    closed = edgemap.draw_edge_map(synthetic_face(mouth_open=0.0), SIZE)
    opened = edgemap.draw_edge_map(synthetic_face(mouth_open=0.1), SIZE)
    column = 256
    lowest = [np.nonzero(img[300:430, column])[0].max() for img in (closed, opened)]
    assert lowest[1] - lowest[0] >= 15  # 0.1 face widths = 20 px lower lip drop


def test_forehead_is_synthesised_above_the_eyes():
    face = synthetic_face()
    points = edgemap.with_forehead(face)
    assert points.shape == (83, 2)
    baseline = (np.rint(face[0, 1]) + np.rint(face[16, 1])) / 2
    # point 75 is jaw point 8 (chin) mirrored to the top of the head at 2/3 the distance
    expected_top = baseline - (np.rint(face[8, 1]) - baseline) * 2 / 3
    assert abs(points[75, 1] - expected_top) <= 1
    assert points[75, 0] == np.rint(face[8, 0])
    eyes_top = face[36:48, 1].min()
    assert (points[68:83, 1] < eyes_top + 1).all()
    image = edgemap.draw_edge_map(face, SIZE)
    assert _lit_near(image, points[75])
    rows = np.nonzero(image[:, 256])[0]
    assert rows.min() < face[17:27, 1].min() - 30  # forehead arc well above the brows


def test_pieces_with_steep_quadratics_are_dropped():
    # x as a function of y through (0,0), (1,1), (-1,2) has a = 1.5 > 1: vid2vid drops it
    assert edgemap.fit_piece(np.array([0, 1, 2]), np.array([0, 1, -1])) is None
    xs, ys = edgemap.fit_piece(np.array([0, 10, 20]), np.array([0, 4, 0]))
    assert xs.min() == 0 and xs.max() == 20 and ys.max() in (3, 4)

    face = synthetic_face()
    zigzag = face.copy()
    zigzag[17] = (150, 150)
    zigzag[18] = (151, 151)
    zigzag[19] = (152, 149)
    brow_curves = edgemap.edge_curves(zigzag)[1]  # edge 1 = right brow, pieces 17-19, 19-21
    assert len(brow_curves) == 1 and len(edgemap.edge_curves(face)[1]) == 2
    assert not _lit_near(edgemap.draw_edge_map(zigzag, SIZE), (150.5, 150), radius=0)


def test_lines_are_two_pixels_wide():
    # vid2vid's brush: offsets -1..0 in x and y around every curve pixel
    image = np.zeros((10, 10), np.uint8)
    edgemap._draw_curve(image, np.array([5]), np.array([5]))
    assert list(zip(*np.nonzero(image), strict=True)) == [(4, 4), (4, 5), (5, 4), (5, 5)]
    face = synthetic_face()
    face[17:22] = np.c_[np.linspace(100, 140, 5), np.full(5, 100.0)]
    image = edgemap.draw_edge_map(face, SIZE)
    for column in range(104, 137, 4):  # a flat brow: 2 px, 3 where the fit's rounding
        rows = np.nonzero(image[90:110, column])[0]  # truncates to the row above
        assert 2 <= len(rows) <= 3 and np.ptp(rows) == len(rows) - 1


def test_distance_maps_one_per_edge():
    face = synthetic_face()
    result = edgemap.render_edge_map(face, SIZE, distance_maps=True)
    maps = result.distance_maps
    assert maps.shape == (edgemap.N_EDGES, 512, 512) == (14, 512, 512)
    # every map is zero on its own edge and grows with the distance from it
    for index in range(14):
        assert maps[index].min() == 0
    mouth = 12  # outer mouth upper lip edge
    x, y = np.rint(face[51]).astype(int)
    assert maps[mouth, y, x] <= 1
    assert maps[mouth, y - 60, x] == pytest.approx(60 / 3, abs=2)
    assert maps[mouth, 0, 0] > maps[mouth, y - 60, x]
    # every drawn edge pixel is a zero of some map (distances are /3 and truncated, so
    # pixels 1-2 px away read 0 too)
    assert ((result.edges > 0) <= (maps == 0).any(axis=0)).all()


def test_part_labels_and_background_edges():
    face = synthetic_face(mouth_open=0.05)
    labels = edgemap.part_labels(face, SIZE)
    assert labels[10, 10] == 0
    assert labels[int(face[30, 1]) + 5, 256] == 3  # nose
    assert labels[int((face[62, 1] + face[66, 1]) / 2), 256] == 6  # inner mouth
    frame = np.zeros((512, 512, 3), np.uint8)
    frame[:, 20:] = 200  # a vertical step edge outside the face
    frame[250:260, 240:270] = 0  # a square inside the face: Canny edges must be masked
    edges = edgemap.draw_edge_map(face, SIZE, frame=frame)
    assert edges[200:300, 18:22].any()
    plain = edgemap.draw_edge_map(face, SIZE)
    assert (edges[245:265, 235:275] == plain[245:265, 235:275]).all()
    with pytest.raises(ValueError, match="reference frame"):
        edgemap.draw_edge_map(face, SIZE, frame=np.zeros((100, 100, 3), np.uint8))


def test_missing_points_draw_nothing_there():
    empty = edgemap.draw_edge_map(np.full((68, 2), np.nan), SIZE)
    assert not empty.any()
    face = synthetic_face()
    face[48:68] = np.nan
    image = edgemap.draw_edge_map(face, SIZE)
    assert image.any() and not image[360:420, 200:312].any()
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        edgemap.draw_edge_map(np.zeros((67, 2)), SIZE)


def test_crop_box_follows_vid2vid_rule():
    face = synthetic_face(center=(600, 300), width=160)
    x0, y0, x1, y1 = edgemap.crop_box(face, (1280, 720))
    span = np.rint(face[:, 0]).max() - np.rint(face[:, 0]).min()
    assert x1 - x0 == pytest.approx(2.5 * span, abs=2) and y1 - y0 == x1 - x0
    assert (x0 + x1) / 2 == pytest.approx(np.rint(face[:, 0]).mean(), abs=3)
    ys = np.rint(face[:, 1])
    assert (y0 + y1) / 2 == pytest.approx((3 * ys.min() + ys.max()) / 4, abs=2)
    # near the frame's left edge the square is shifted inside
    left = edgemap.crop_box(synthetic_face(center=(90, 300), width=160), (1280, 720))
    assert left[0] >= 0
    view = edgemap.generator_view(face, (1280, 720), load_size=256)
    assert view.shape == (256, 256) and view.any()
    series = np.stack([np.full((68, 2), np.nan), face])
    assert edgemap.first_complete_frame(series) == 1


def test_canny_on_the_crop_matches_the_full_frame_inside_it():
    import cv2
    from skimage import data

    image = cv2.resize(data.astronaut(), (960, 540))
    full = edgemap.canny_edges(image)
    for box in [(400, 100, 650, 350), (-60, -20, 200, 240), (850, 400, 1050, 600)]:
        part = edgemap.canny_edges(image, box)
        inside = (slice(max(box[1], 0), min(box[3], 540)), slice(max(box[0], 0), min(box[2], 960)))
        assert full[inside].sum() > 100
        # equal but for rare hysteresis paths that leave the margin and come back
        assert (part[inside] != full[inside]).sum() <= 0.01 * full[inside].sum()
        assert part.sum() == part[inside].sum()  # nothing outside the box
