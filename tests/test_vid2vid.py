"""vid2vid export round trip, the tree self-check, and composition onto a reference head."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_edgemap_faces import synthetic_face
from wav2kp.handoff import vid2vid


def _faces(n: int, **kwargs) -> np.ndarray:
    return np.stack([synthetic_face(**kwargs) for _ in range(n)])


def _export(root, n=4, seq="clip"):
    lm = _faces(n, mouth_open=0.05) + np.random.default_rng(0).uniform(-0.4, 0.4, (n, 68, 2))
    frame = np.full((512, 512, 3), 120, np.uint8)
    vid2vid.export_sequence(root, seq, lm, lambda i: frame)
    return lm


def test_export_round_trip(tmp_path):
    tmp_path = tmp_path / vid2vid.EXPORT_DIR  # 'face' in the path: vid2vid's --use_single_G
    lm = _export(tmp_path)
    kp_dir, img_dir = vid2vid.keypoint_dirs(tmp_path)
    files = sorted((kp_dir / "clip").iterdir())
    assert [p.name for p in files] == ["00000.txt", "00001.txt", "00002.txt", "00003.txt"]
    assert sorted(p.name for p in (img_dir / "clip").iterdir()) == [p.stem + ".jpg" for p in files]
    back = vid2vid.read_keypoint_file(files[2])
    assert back.shape == (68, 2)
    assert np.abs(back - lm[2]).max() <= 0.5  # rounded to whole pixels
    assert (back == np.round(back)).all()
    # the text is exactly what vid2vid's own writer (np.savetxt fmt %d) produces
    import io

    buffer = io.StringIO()
    np.savetxt(buffer, np.rint(lm[2]).astype(int), fmt="%d", delimiter=",")
    assert files[2].read_text() == buffer.getvalue()
    assert vid2vid.check_vid2vid_tree(tmp_path) == []
    # a shorter re-export trims the old tail, the trees stay in step
    vid2vid.export_sequence(tmp_path, "clip", lm[:3], lambda i: np.zeros((512, 512, 3), np.uint8))
    assert len(list((kp_dir / "clip").iterdir())) == len(list((img_dir / "clip").iterdir())) == 3
    assert vid2vid.check_vid2vid_tree(tmp_path) == []
    # vid2vid writes frames 2..N-1: fewer than 3 frames give it nothing to do
    vid2vid.export_sequence(tmp_path, "clip", lm[:2], lambda i: np.zeros((512, 512, 3), np.uint8))
    assert any("needs at least 3" in p for p in vid2vid.check_vid2vid_tree(tmp_path))


def test_export_refuses_missing_points(tmp_path):
    lm = _faces(2)
    lm[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        vid2vid.export_sequence(tmp_path, "s", lm, lambda i: np.zeros((8, 8, 3), np.uint8))


def test_check_catches_broken_trees(tmp_path):
    tmp_path = tmp_path / vid2vid.EXPORT_DIR
    _export(tmp_path)
    kp_dir, img_dir = (d / "clip" for d in vid2vid.keypoint_dirs(tmp_path))

    (img_dir / "00003.jpg").unlink()
    problems = vid2vid.check_vid2vid_tree(tmp_path)
    assert any("4 keypoint files but 3 images" in p for p in problems)
    assert any("00003" in p for p in problems)

    _export(tmp_path)
    text = (kp_dir / "00001.txt").read_text().splitlines()
    text[7] = "120.5,300.25"
    (kp_dir / "00001.txt").write_text("\n".join(text) + "\n")
    problems = vid2vid.check_vid2vid_tree(tmp_path)
    assert len(problems) == 1 and "00001.txt" in problems[0] and "integers" in problems[0]

    _export(tmp_path)
    (kp_dir / "00002.txt").write_text("\n".join(text[:67]) + "\n")
    problems = vid2vid.check_vid2vid_tree(tmp_path)
    assert len(problems) == 1 and "67 rows" in problems[0]

    _export(tmp_path)
    (img_dir.parent / "other").mkdir()  # an empty folder: vid2vid skips it
    assert vid2vid.check_vid2vid_tree(tmp_path) == []
    (img_dir.parent / "other" / "00000.png").write_bytes(b"")  # now it is a sequence
    assert any("sequence folders differ" in p for p in vid2vid.check_vid2vid_tree(tmp_path))
    shutil.rmtree(img_dir.parent / "other")

    (img_dir / "00000.jpg").write_bytes(b"not a jpeg")
    assert any("not readable" in p for p in vid2vid.check_vid2vid_tree(tmp_path))

    # vid2vid counts every file ending in one of its extensions, hidden ones included
    _export(tmp_path)
    (img_dir / ".00001.jpg.x1y2.jpg").write_bytes((img_dir / "00001.jpg").read_bytes())
    assert any("4 keypoint files but 5 images" in p for p in vid2vid.check_vid2vid_tree(tmp_path))
    _export(tmp_path)  # an export clears an interrupted run's leftovers
    assert vid2vid.check_vid2vid_tree(tmp_path) == []

    assert any("missing" in p for p in vid2vid.check_vid2vid_tree(tmp_path / "nothing"))


def test_check_wants_the_dataroot_single_g_needs(tmp_path):  # no 'face' in tmp_path
    # vid2vid's --use_single_G loads its face first-frame generator only when 'face' is in
    # --dataroot, and Cityscapes' when 'City' is
    _export(tmp_path / "plain")
    assert any("'face'" in p for p in vid2vid.check_vid2vid_tree(tmp_path / "plain"))
    _export(tmp_path / "City" / "x_face")
    assert any("Cityscapes" in p for p in vid2vid.check_vid2vid_tree(tmp_path / "City" / "x_face"))


def test_test_command_covers_every_frame(tmp_path, capsys):
    command = vid2vid.vid2vid_test_command(tmp_path, 1234)
    assert "--how_many 1234" in command and "--dataset_mode face" in command
    assert "--input_nc 15" in command and f"--dataroot {tmp_path.resolve()}/" in command
    assert "--loadSize 512 --use_single_G" in command
    assert command in capsys.readouterr().out


def test_mux_command_starts_the_speech_at_frame_two(tmp_path):
    speech = tmp_path / "my speech.wav"
    command = vid2vid.mux_command("seq", speech, 30000 / 1001)
    assert "-framerate 30000/1001 -start_number 2" in command
    assert "results/edge2face_512/test_latest/seq/fake_B_%05d.jpg" in command
    assert "-ss 0.066733 -i" in command  # 2 frames of 1001/30000 s: no 2-frame lead
    assert f"'{speech.resolve()}'" in command  # quoted for the shell
    assert "-ss 0.080000" in vid2vid.mux_command("seq", speech, 25)


def test_pingpong_indices():
    assert list(vid2vid.pingpong_indices(9, 4)) == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert list(vid2vid.pingpong_indices(3, 1)) == [0, 0, 0]
    times = np.array([0.0, 0.05, 0.09, 0.15])  # variable frame rate
    idx = vid2vid.reference_indices(np.arange(8) * 0.05, times)
    assert list(idx) == [0, 1, 2, 3, 2, 1, 0, 1]


def _reference_track(n=40):
    """A talking, moving, blinking head: mouth pattern A, blinks at frames 10-12."""
    rng = np.random.default_rng(1)
    mouth_a = 0.06 * (np.sin(np.arange(n) * 0.9) > 0)
    eyes = np.ones(n)
    eyes[10:13] = 0.0
    frames = [
        synthetic_face(
            center=(300 + 30 * np.sin(t / 7), 260 + 10 * np.cos(t / 5)),
            width=180 + 10 * np.sin(t / 9),
            angle=0.15 * np.sin(t / 6),
            mouth_open=mouth_a[t],
            eye_open=eyes[t],
        )
        for t in range(n)
    ]
    lm = np.stack(frames).astype(np.float64) + rng.normal(0, 0.2, (n, 68, 2))
    track = vid2vid.ReferenceTrack("ref", np.arange(n) / 30.0, lm, (640, 480))
    return track, mouth_a, eyes


def _inner_gap(lm):
    return np.linalg.norm(lm[:, [61, 62, 63]] - lm[:, [67, 66, 65]], axis=2).mean(1)


def _eye_gap(lm):
    return np.linalg.norm(lm[:, [37, 38, 43, 44]] - lm[:, [41, 40, 47, 46]], axis=2).mean(1)


def test_composition_keeps_head_and_blinks_mouth_follows_prediction():
    track, mouth_a, eyes = _reference_track()
    n = 40
    mouth_b = 0.08 * (0.5 + 0.5 * np.sin(np.arange(n) * 0.37 + 1.0))
    # the prediction sits elsewhere, at another scale, with a frozen head
    predicted = np.stack(
        [synthetic_face(center=(128, 140), width=110, mouth_open=m) for m in mouth_b]
    )
    result = vid2vid.compose_on_reference(predicted, track, out_times=track.times)
    out = result.landmarks
    assert out.shape == (n, 68, 2) and np.isfinite(out).all()
    # head pose: stable points stay where the reference head put them
    err = np.abs(out[:, vid2vid.STABLE_POINTS] - track.landmarks[:, vid2vid.STABLE_POINTS])
    assert err.max() < 2.0
    # blinks of the reference survive
    eye = _eye_gap(out)
    assert eye[10:13].max() < 1.5 and eye[[0, 5, 20, 30]].min() > 8
    # the mouth opening follows the prediction, not the reference's own speech
    gap = _inner_gap(out) / track.landmarks[:, 45, 0].__sub__(track.landmarks[:, 36, 0])
    assert np.corrcoef(gap, mouth_b)[0, 1] > 0.95
    assert abs(np.corrcoef(gap, mouth_a)[0, 1]) < 0.3


def test_composition_loops_reference_and_fills_missing_frames():
    track, _, _ = _reference_track(20)
    track.landmarks[5:8] = np.nan
    predicted = np.stack([synthetic_face(mouth_open=0.03 * (t % 3)) for t in range(50)])
    result = vid2vid.compose_on_reference(predicted, track, fps=30.0)
    assert len(result.landmarks) == 50 and np.isfinite(result.landmarks).all()
    assert result.reference_index.max() == 19 and result.reference_index[19] == 19
    assert result.reference_index[20] == 18  # ping-pong, no jump back to frame 0
    assert result.reference_missing.sum() >= 3
    # interpolated frames sit between their neighbours (no garbage)
    nose = result.landmarks[:, 30]
    i = int(np.nonzero(result.reference_index == 6)[0][0])
    assert np.linalg.norm(nose[i] - (track.landmarks[4, 30] + track.landmarks[8, 30]) / 2) < 5
    with pytest.raises(ValueError, match="no frame with a detected face"):
        empty = vid2vid.ReferenceTrack("e", np.zeros(2), np.full((2, 68, 2), np.nan), (64, 64))
        vid2vid.compose_on_reference(predicted, empty)


def test_reference_track_from_extraction_npz(tmp_path):
    track, _, _ = _reference_track(6)
    status = np.zeros(6, np.int8)
    status[2] = 2
    np.savez(
        tmp_path / "ref.npz",
        times=track.times,
        lm68=track.landmarks.astype(np.float32),
        frame_status=status,
        width=640,
        height=480,
    )
    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2

    for i in range(6):
        cv2.imwrite(str(frames / f"{i + 1:05d}.jpg"), np.full((480, 640, 3), i * 20, np.uint8))
    loaded = vid2vid.load_reference_track(tmp_path / "ref.npz", frames)
    assert loaded.size == (640, 480) and loaded.n_frames == 6
    assert np.isnan(loaded.landmarks[2]).all() and np.isfinite(loaded.landmarks[3]).all()
    assert loaded.image(3).shape == (480, 640, 3)
    result = vid2vid.compose_on_reference(loaded.landmarks[[0, 1, 3]], loaded, fps=30)
    vid2vid.export_composition(tmp_path / "out_face", "seq", result, loaded)
    assert vid2vid.check_vid2vid_tree(tmp_path / "out_face") == []
    (frames / "00006.jpg").unlink()
    with pytest.raises(ValueError, match="5 frame images for 6 frames"):
        vid2vid.load_reference_track(tmp_path / "ref.npz", frames)
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.npz"):
        vid2vid.load_reference_track(tmp_path / "bad.npz")


def test_composition_from_normalised_targets():
    from wav2kp.windowing.targets import TargetNormalizer

    track, _, _ = _reference_track(30)
    training = np.stack(
        [synthetic_face(center=(200, 220), mouth_open=0.1 * (t % 4) / 3) for t in range(24)]
    )
    normalizer = TargetNormalizer().fit([("spk", training)])
    mouth = 0.09 * (0.5 + 0.5 * np.sin(np.arange(30) * 0.5))
    wanted = np.stack([synthetic_face(center=(200, 220), mouth_open=m) for m in mouth])
    targets, _ = normalizer.transform(wanted, "spk")
    from_targets = vid2vid.compose_on_reference(targets, track, normalizer, "spk",
                                                out_times=track.times)  # fmt: skip
    from_pixels = vid2vid.compose_on_reference(wanted, track, out_times=track.times)
    gap = _inner_gap(from_targets.landmarks)
    assert np.corrcoef(gap, mouth)[0, 1] > 0.95
    # same motion whether given as targets (+ neutral face) or as pixels (rest estimated)
    assert np.abs(from_targets.landmarks - from_pixels.landmarks).max() < 3.0
    with pytest.raises(ValueError, match="normalizer"):
        vid2vid.compose_on_reference(targets, track)


def test_plot_reads_back_the_exported_files(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    _export(tmp_path, n=5)
    fig = vid2vid.plot_vid2vid_inputs(tmp_path, "clip", n_frames=3)
    assert len(fig.axes) == 6
    edge_panel = fig.axes[3].images[0].get_array()  # second row, first column
    assert np.asarray(edge_panel).max() == 255  # the edge map row holds drawn edges
    with pytest.raises(FileNotFoundError):
        vid2vid.plot_vid2vid_inputs(tmp_path, "nothing")


def test_liveliness_tells_a_frozen_head_from_a_composed_one():
    track, _, _ = _reference_track(40)
    frozen = np.stack([synthetic_face(mouth_open=0.04 * (t % 5) / 4) for t in range(40)])
    composed = vid2vid.compose_on_reference(frozen, track, out_times=track.times).landmarks
    still = vid2vid.liveliness(frozen, fps=30)
    alive = vid2vid.liveliness(composed, fps=30)
    assert still["head_translation_std_iod"] < 1e-6 and still["blinks_per_minute"] == 0
    assert alive["head_translation_std_iod"] > 0.05 and alive["head_rotation_std_deg"] > 2
    assert alive["blinks_per_minute"] == pytest.approx(60 / (40 / 30), rel=0.01)  # one blink
    assert alive["mouth_opening_std_iod"] == pytest.approx(still["mouth_opening_std_iod"], rel=0.3)


def test_head_motion_is_interpolated_between_reference_frames():
    # a 20 fps reference whose head slides 6 px per frame, output at 30 fps
    n_ref = 20
    ref = np.stack([synthetic_face(center=(200 + 6 * t, 250)) for t in range(n_ref)])
    track = vid2vid.ReferenceTrack("r20", np.arange(n_ref) / 20.0, ref.astype(float), (640, 480))
    predicted = np.stack([synthetic_face() for _ in range(25)])
    out = vid2vid.compose_on_reference(predicted, track, fps=30.0).landmarks
    expected = 200 + 6 * 20 * (np.arange(25) / 30.0)  # smooth, not held for 1-2 frames
    assert np.abs(out[:, 27, 0] - (expected + ref[0, 27, 0] - 200)).max() < 0.5
