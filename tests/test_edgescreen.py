"""The closed-form screen of long sequences against vid2vid's exact per-frame check."""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_edgemap_faces import synthetic_face
from wav2kp.handoff import edgescreen, vid2vid
from wav2kp.plots import edgemap


def _random_faces(n: int, seed: int = 0) -> np.ndarray:
    """Faces of every size and pose around a 512x512 frame's centre, some near or over
    the crop and frame borders, some with noisy points (pieces near |a| = 1)."""
    rng = np.random.default_rng(seed)
    faces = [
        synthetic_face(
            center=(256 + rng.normal(0, 60), 256 + rng.normal(0, 60)),
            width=rng.uniform(40, 260), mouth_open=rng.uniform(0, 0.15),
            eye_open=rng.uniform(0, 1), angle=rng.normal(0, 0.3),
        ) + rng.normal(0, rng.choice([0, 1, 4]), (68, 2))
        for _ in range(n)
    ]  # fmt: skip
    return np.rint(np.stack(faces))


def test_forehead_of_all_frames_is_vid2vids():
    faces = _random_faces(50, seed=1)
    together = edgescreen.with_forehead_all(faces)
    for face, mine in zip(faces, together, strict=True):
        assert np.array_equal(edgemap.with_forehead(face), mine)


def test_screen_never_vouches_for_a_frame_the_exact_check_faults():
    size = (512, 512)
    box = edgemap.crop_box(synthetic_face(center=(256, 256), width=200), size)
    faces = _random_faces(400)
    fine = edgescreen.surely_fine(faces, size, box)
    faulted = 0
    for face, vouched in zip(faces, fine, strict=True):
        reach = edgemap.crop_reach(face, size, box)
        exact_fine = (
            reach.total > 0 and reach.reached == reach.total and not reach.empty_edges
            and not reach.failed_fits
        )  # fmt: skip
        faulted += not exact_fine
        assert exact_fine or not vouched, reach
    # the sample holds both kinds, and the screen vouches for most ordinary frames
    assert faulted > 30 and fine.sum() > 100


def test_frames_to_check_all_short_ones_and_a_sample_of_long_ones():
    size = (512, 512)
    face = synthetic_face(center=(256, 256), width=200)
    box = edgemap.crop_box(face, size)
    assert list(edgescreen.frames_to_check(np.stack([face] * 10), size, box)) == list(range(10))
    n = edgescreen.EXACT_ALL_BELOW + 100
    faces = np.stack([face] * n)
    faces[700:703] += (150, 0)  # leaves the crop
    checked = edgescreen.frames_to_check(faces, size, box)
    every = edgescreen.SAMPLE_EVERY
    expected = sorted({*range(0, n, every), 700, 701, 702, n - 1})
    assert list(checked) == expected


def test_screened_check_flags_late_frames_that_leave_the_crop(tmp_path):
    """A long sequence whose late frames drift out of the crop and then off the frame:
    the screened check reports the same problems and shares as the full one."""
    n = edgescreen.EXACT_ALL_BELOW + 200
    still = synthetic_face(center=(300, 300), width=200)
    faces = np.stack([still] * n)
    for k, frame in enumerate(range(n - 40, n)):  # the last 40 frames drift right
        faces[frame] = synthetic_face(center=(300 + 6 * k, 300), width=200)
    faces[n - 101] = synthetic_face(center=(460, 300), width=200)  # one frame, alone
    image = np.full((600, 600, 3), 90, np.uint8)
    root = tmp_path / "drift_face"
    vid2vid.export_sequence(root, "seq", faces, lambda i: image, frame_keys=np.zeros(n, int))
    full = vid2vid.inspect_tree(root)
    screened = vid2vid.inspect_tree(root, screen=True)
    assert screened.problems == full.problems
    assert any("face edges leave vid2vid's crop" in p for p in screened.problems)
    assert any(f"frames {n - 101}, " in p for p in screened.problems)
    a, b = full.sequences[0], screened.sequences[0]
    assert a.frames_checked == n and b.frames_checked < n // 10
    assert (a.frames_cut, a.frames_off_frame) == (b.frames_cut, b.frames_off_frame)
    assert a.face_edge_share_min == b.face_edge_share_min < 1
    assert np.isclose(a.face_edge_share_mean, b.face_edge_share_mean)


def test_fresh_export_writes_the_same_tree_without_temp_files(tmp_path):
    faces = np.stack([synthetic_face(center=(256 + k, 256), width=200) for k in range(6)])
    frames = [np.full((512, 512, 3), 40 * k, np.uint8) for k in range(3)]
    keys = np.array([0, 1, 2, 1, 0, 2])
    trees = {}
    for fresh in (False, True):
        root = tmp_path / f"fresh_{fresh}_face"
        vid2vid.export_sequence(root, "s", faces, lambda i: frames[keys[i]],
                                frame_keys=keys, fresh=fresh)  # fmt: skip
        kp, img = (d / "s" for d in vid2vid.keypoint_dirs(root))
        trees[fresh] = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        assert os.path.samefile(img / "00004.jpg", img / "00000.jpg")
        assert len({os.stat(p).st_ino for p in img.iterdir()}) == 3
        assert vid2vid.check_vid2vid_tree(root) == []
    assert trees[True] == trees[False]
    # fresh promises a new folder: one that holds frames already is refused
    with pytest.raises(ValueError, match="not empty"):
        vid2vid.export_sequence(tmp_path / "fresh_True_face", "s", faces, lambda i: frames[0],
                                fresh=True)  # fmt: skip


def test_piece_fits_are_bit_identical_to_vid2vids_curve_fit():
    """The exact check's solver (edgemap._solve_quadratic) gives curve_fit's coefficients
    to the last bit, and fails where curve_fit raises (vid2vid's own call)."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    rng = np.random.default_rng(3)
    compared = 0
    for k in range(400):
        n = 2 if k % 4 == 0 else 3
        x = (rng.integers(0, 1500) + np.cumsum(rng.integers(0, 12, n))).astype(np.float64)
        y = (rng.integers(0, 1500) + rng.integers(-6, 7, n)).astype(np.float64)
        model = edgemap._quadratic if n == 3 else edgemap._linear
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (RuntimeWarning, OptimizeWarning))
            try:
                expected = curve_fit(model, x, y)[0]
            except RuntimeError:  # does not converge: vid2vid's data loader dies here
                expected = None
        ours = edgemap._solve_quadratic(x, y)
        assert (ours is None) == (expected is None), (x, y)
        if expected is not None:
            assert np.array_equal(ours, expected), (x, y, ours, expected)
            compared += 1
    assert compared > 300
