"""The exported vid2vid tree against vid2vid's own test-time crop, on every reference size.

vid2vid crops a square of 2.5 face widths set on the first frame and cuts its edge map
by numpy slicing: a crop that starts outside the frame gives a corner. Here every export
goes through ``wav2kp.plots.edgemap.generator_input`` (that path, reproduced step by step) and
each face part must arrive in the generator-size edge channel where the real frame's
crop puts it.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_edgemap_faces import synthetic_face
from wav2kp.handoff import vid2vid
from wav2kp.plots import edgemap

# (reference frame size, face centre, face width): tight crops (VoxCeleb-like 224, the
# demo's 512, video-retalking's 700), a small face in a corner of a full-HD frame and a
# face too tall for it
REFERENCES = {
    "224 tight": ((224, 224), (112, 125), 140),
    "224 corner": ((224, 224), (70, 80), 110),
    "512 tight": ((512, 512), (256, 270), 330),
    "700 tight": ((700, 700), (350, 360), 380),
    "700 off-centre": ((700, 700), (520, 250), 300),
    "1920x1080 corner": ((1920, 1080), (1780, 160), 230),
    "1920x1080 large": ((1920, 1080), (960, 540), 700),
}
MARKER = 30  # nose tip: painted into the reference frames to follow the image mapping


def _reference(folder, size, centre, width, n=10) -> vid2vid.ReferenceTrack:
    """A moving, talking head on a textured frame (png files), a marker at keypoint 30."""
    rng = np.random.default_rng(int(width))
    w, h = size
    texture = rng.integers(40, 215, (h // 24 + 2, w // 24 + 2)).astype(np.uint8)
    background = np.repeat(
        cv2.resize(texture, (w, h), interpolation=cv2.INTER_CUBIC)[..., None], 3, axis=2
    )  # grey, so the magenta marker is the only colour

    faces = np.stack([
        synthetic_face(center=(centre[0] + 2 * np.sin(t), centre[1]), width=width,
                       mouth_open=0.03 * (t % 3), angle=0.03 * np.sin(t))
        for t in range(n)
    ]).astype(np.float64)  # fmt: skip
    folder.mkdir(parents=True)
    for t, face in enumerate(faces):
        frame = background.copy()
        x, y = face[MARKER]
        cv2.circle(frame, (int(x), int(y)), max(3, int(width / 40)), (255, 0, 255), -1)
        cv2.imwrite(str(folder / f"{t:05d}.png"), frame)
    return vid2vid.ReferenceTrack("ref", np.arange(n) / 25.0, faces, size,
                                  sorted(folder.glob("*.png")))  # fmt: skip


def _compose(track, n_out=24):
    predicted = np.stack(
        [synthetic_face(mouth_open=0.05 * abs(np.sin(t / 2))) for t in range(n_out)]
    )
    return vid2vid.compose_on_reference(predicted, track, fps=25.0)


def _ideal_channel(points, size, box, load_size):
    """The face edges where the real frame's crop (PIL, black outside the frame) puts
    them. (Curve pixels depend on absolute coordinates, so the map is drawn in place.)"""
    out = edgemap.generator_size((box[2] - box[0], box[3] - box[1]), load_size)
    return edgemap.pil_resize(edgemap.pil_crop(edgemap.draw_edge_map(points, size), box), out)


@pytest.mark.parametrize("case", list(REFERENCES))
def test_export_fits_vid2vids_crop_on_every_reference_size(tmp_path, case):
    size, centre, width = REFERENCES[case]
    track = _reference(tmp_path / "ref", size, centre, width)
    composition = _compose(track)
    root = tmp_path / vid2vid.EXPORT_DIR
    export = vid2vid.export_composition(root, "seq", composition, track)

    report = vid2vid.inspect_tree(root)
    assert report.problems == []
    (seq,) = report.sequences
    load = edgemap.DEFAULT_LOAD_SIZE
    margin = round(vid2vid.CANVAS_MARGIN * load)
    assert seq.crop_box == export.crop_box == (margin, margin, margin + load, margin + load)
    assert seq.frame_size == export.canvas.size and edgemap.crop_fits(seq.crop_box, seq.frame_size)
    assert seq.face_edge_share_min == 1.0

    # what vid2vid reads back: keypoint files, and its crop of them
    files = vid2vid.sequence_frames(root, "seq")
    points = np.stack([vid2vid.read_keypoint_file(f) for f in files])
    assert np.array_equal(points, export.landmarks)
    assert edgemap.crop_box(points[0], export.canvas.size) == seq.crop_box
    # the keypoints map back to the composition (reference pixels) up to the rounding
    back = export.canvas.to_reference(points)
    assert np.abs(back - composition.landmarks).max() <= 0.5 / export.canvas.scale + 1e-9

    for i in (0, len(points) // 2, len(points) - 1):
        seen = edgemap.generator_input(points[i], export.canvas.size, seq.crop_box)
        assert seen.edges.shape == (load, load)
        # numpy slicing and the PIL crop agree: the channel is exactly the ideal one
        assert np.array_equal(seen.edges, _ideal_channel(points[i], export.canvas.size,
                                                         seq.crop_box, load))  # fmt: skip
        for name, _, edges in edgemap.FACE_PARTS:  # every face part lands in the channel
            indices = sorted({k for e in edges for k in e if k < 68})
            part = np.full((68, 2), np.nan)
            part[indices] = points[i][indices]
            if name == "face":  # the forehead is drawn from the jaw
                part[:17] = points[i][:17]
            channel = edgemap.generator_input(part, export.canvas.size, seq.crop_box).edges
            assert channel.sum() > 255 * 10, f"{case}: {name} missing from the edge channel"


@pytest.mark.parametrize("case", ["224 tight", "700 off-centre", "1920x1080 large"])
def test_exported_images_and_keypoints_agree_pixel_for_pixel(tmp_path, case):
    size, centre, width = REFERENCES[case]
    track = _reference(tmp_path / "ref", size, centre, width)
    composition = _compose(track, n_out=12)
    export = vid2vid.export_composition(tmp_path / "v_face", "seq", composition, track)
    for i in (0, 7):
        image = cv2.imread(str(export.image_path(i)))[..., ::-1]
        magenta = (image[..., 0] > 170) & (image[..., 1] < 90) & (image[..., 2] > 170)
        ys, xs = np.nonzero(magenta)
        # the marker painted at the reference's keypoint 30 sits at the exported point
        reference_point = track.landmarks[composition.reference_index[i], MARKER]
        expected = export.canvas.to_export(reference_point)
        assert np.hypot(xs.mean() - expected[0], ys.mean() - expected[1]) < 1.5
    if max(export.canvas.padding()) > 16:  # the padding adds no edges of its own
        image = cv2.imread(str(export.image_path(0)))[..., ::-1]
        canny = edgemap.canny_edges(image)  # vid2vid adds these to the edge channel
        (w, h), s = track.size, export.canvas.scale
        (tx, ty), (cw, ch) = export.canvas.offset, export.canvas.size
        xs, ys = np.arange(cw) + 0.5, np.arange(ch) + 0.5
        dx = np.maximum(np.maximum(tx - xs, xs - tx - s * w), 0)
        dy = np.maximum(np.maximum(ty - ys, ys - ty - s * h), 0)
        padding = np.hypot(dx[None, :], dy[:, None]) > 10  # past the 8 px fade
        assert padding.sum() > 1000 and canny[padding].mean() < 0.001


def test_overflowing_tree_is_flagged_and_its_channel_is_a_corner(tmp_path):
    # the reference frames as they are: a tight 512 crop, vid2vid's box starts at -k
    size, centre, width = REFERENCES["512 tight"]
    track = _reference(tmp_path / "ref", size, centre, width)
    composition = _compose(track, n_out=8)
    root = tmp_path / "asis_face"
    vid2vid.export_composition(root, "seq", composition, track,
                               canvas=vid2vid.Canvas.identity(size))  # fmt: skip
    report = vid2vid.inspect_tree(root)
    (seq,) = report.sequences
    x0, y0, x1, y1 = seq.crop_box
    assert x0 < 0 and y0 < 0 and (x1, y1) == size and not seq.crop_fits
    assert seq.face_edge_share_min == 0.0
    assert any("does not fit" in p and f"{-x0}x{-y0} corner" in p for p in report.problems)
    points = vid2vid.read_keypoint_file(vid2vid.sequence_frames(root, "seq")[0])
    channel = edgemap.generator_view(points, size, seq.crop_box)
    corner = edgemap.draw_edge_map(points, size)[y0:, x0:]  # what numpy slicing keeps
    assert np.array_equal(channel, edgemap.pil_resize(corner, channel.shape[::-1]))
    ideal = _ideal_channel(points, size, seq.crop_box, edgemap.DEFAULT_LOAD_SIZE)
    assert (
        ideal.sum() > 0
        and (channel.astype(int) * ideal).sum() < 0.05 * (ideal.astype(int) ** 2).sum()
    )


def test_check_flags_faces_that_leave_the_crop_or_the_frame(tmp_path):
    root = tmp_path / "moving_face"
    frame = np.full((600, 600, 3), 90, np.uint8)
    faces = [synthetic_face(center=(300, 300), width=200)] * 4
    faces += [synthetic_face(center=(300 + 90 * k, 300), width=200) for k in range(1, 4)]
    vid2vid.export_sequence(root, "seq", np.stack(faces), lambda i: frame)
    problems = vid2vid.check_vid2vid_tree(root)
    assert any("frames 5-6: face edges leave vid2vid's crop" in p for p in problems)
    assert any("frames 6: face edges leave the 600x600 frame" in p for p in problems)
    report = vid2vid.inspect_tree(root)
    assert report.sequences[0].face_edge_share_min < 0.8


def test_check_flags_an_empty_edge_channel(tmp_path):
    root = tmp_path / "flat_face"
    face = synthetic_face(center=(300, 300), width=200)
    flat = face.copy()
    flat[36:42] = flat[36]  # a collapsed eye: its pieces draw nothing
    frame = np.full((600, 600, 3), 90, np.uint8)
    vid2vid.export_sequence(root, "seq", np.stack([face, face, flat, face]), lambda i: frame)
    problems = vid2vid.check_vid2vid_tree(root)
    assert any("frames 2: edge right_eye[0] draws nothing" in p for p in problems)


def test_repeated_reference_frames_are_written_once(tmp_path):
    import os

    size, centre, width = REFERENCES["224 tight"]
    track = _reference(tmp_path / "ref", size, centre, width, n=6)
    composition = _compose(track, n_out=40)  # ping-pongs over the 6 reference frames
    root = tmp_path / "links_face"
    export = vid2vid.export_composition(root, "seq", composition, track)
    images = sorted(vid2vid.keypoint_dirs(root)[1].joinpath("seq").glob("*.jpg"))
    assert len(images) == 40 and export.images_written == 6
    assert len({os.stat(p).st_ino for p in images}) == 6  # hard links to 6 files
    for i in range(40):
        first = int(np.argmax(composition.reference_index == composition.reference_index[i]))
        assert os.path.samefile(images[i], images[first])
    assert vid2vid.check_vid2vid_tree(root) == []


def test_handoff_summary_says_how_to_get_back(tmp_path):
    size, centre, width = REFERENCES["700 tight"]
    track = _reference(tmp_path / "ref", size, centre, width)
    composition = _compose(track, n_out=20)
    export = vid2vid.export_composition(tmp_path / "s_face", "seq", composition, track)
    summary = vid2vid.handoff_summary(export, 25.0, tmp_path / "speech.wav")
    assert summary["problems"] == [] and summary["face_edge_share"] == 1.0
    assert summary["first_output_frame"] == 2 and summary["output_frames"] == 18
    assert "fake_B_%05d.jpg (frames 00002..00019)" in summary["output_files"]
    assert summary["audio_offset_seconds"] == pytest.approx(0.08)
    assert "-ss 0.080000" in summary["mux_command"] and "--how_many 20" in summary["test_command"]
    # output pixel (u, v) of vid2vid's 512x512 result -> reference pixels
    canvas, (x0, y0, _, _) = export.canvas, export.crop_box
    (tx, ty), scale = canvas.offset, canvas.scale
    assert summary["output_to_reference"].startswith(
        f"x_ref = (u {vid2vid._signed(x0 - tx)}) / {scale:.12g}, "
        f"y_ref = (v {vid2vid._signed(y0 - ty)}) / {scale:.12g}"
    )
    u, v = 200.0, 300.0
    expected = canvas.to_reference(np.array([u + x0, v + y0]))
    assert ((u + x0 - tx) / scale, (v + y0 - ty) / scale) == pytest.approx(tuple(expected))
    assert summary["canvas"]["scale"] == scale and summary["crop_box"] == list(export.crop_box)


def test_crop_figure_shows_both_crops(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    size, centre, width = REFERENCES["512 tight"]
    track = _reference(tmp_path / "ref", size, centre, width, n=4)
    composition = _compose(track, n_out=6)
    export = vid2vid.export_composition(tmp_path / "f_face", "seq", composition, track)
    frame = cv2.imread(str(track.frame_paths[0]))[..., ::-1]
    fig = vid2vid.plot_crop_fix(frame, composition.landmarks[0], tmp_path / "f_face", "seq")
    before, after = (ax.get_title() for ax in fig.axes)
    box = edgemap.crop_box(composition.landmarks[0], size)
    assert str(box) in before and "does not fit" in before
    assert str(export.crop_box) in after and "576x576" in after


def test_folder_size_counts_linked_images_once(tmp_path):
    from wav2kp.benchmarks.handoff import folder_bytes

    size, centre, width = REFERENCES["224 tight"]
    track = _reference(tmp_path / "ref", size, centre, width, n=3)
    root = tmp_path / "size_face"
    vid2vid.export_composition(root, "seq", _compose(track, n_out=12), track)
    images = vid2vid.keypoint_dirs(root)[1]
    disk, apparent = folder_bytes(images)
    one = sum(p.stat().st_size for p in sorted((images / "seq").glob("*.jpg"))[:3])
    assert apparent > 3 * one  # 12 names ...
    assert disk < 1.5 * one + 3 * 4096  # ... for 3 files on disk
