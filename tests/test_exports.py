"""Export formats, each read back the way its consumer reads it.

OpenPose JSON as ControlNet decodes it (``decode_json_as_poses``: triplets, confidence < 1
is missing, canvas from ``canvas_width/height``) and draws it (``draw_facepose``);
imaginaire's few-shot vid2vid folders as its test loader lists and decodes them (paired
folder metadata, ``decode_json``, its inference mapping and minimum sequence length).
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from wav2kp.benchmarks.predict import synthetic_face
from wav2kp.handoff import exports, vid2vid


def _faces(n=6, size=(640, 480)):
    return np.stack([synthetic_face(center=(300 + 3 * t, 240 - t), width=180) for t in range(n)])


def _mesh_with_iris(lm68, gaze=(0.5, 0.1)):
    """A (T, 478, 3) mesh whose iris centres sit at ``gaze`` (u along the eye corners, v
    across) in each eye; other points NaN-free zeros (only the iris is read)."""
    mesh = np.zeros((len(lm68), 478, 3))
    for centre, (a, b) in zip(exports.IRIS_CENTRES, exports.EYE_CORNERS, strict=True):
        axis = lm68[:, b] - lm68[:, a]
        normal = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
        mesh[:, centre, :2] = lm68[:, a] + gaze[0] * axis + gaze[1] * normal
    return mesh


def test_parse_formats_defaults_order_and_unknown_names():
    assert exports.parse_formats(None) == exports.DEFAULT_FORMATS == ("vid2vid", "npz", "csv")
    assert exports.parse_formats("") == exports.DEFAULT_FORMATS
    assert exports.parse_formats("openpose, CSV,openpose") == ("openpose", "csv")
    with pytest.raises(exports.ExportError, match=r"--format: unknown format 'jpeg'.*openpose"):
        exports.parse_formats("csv,jpeg")


def test_pupils_follow_the_eyes_they_were_measured_in():
    lm = _faces().astype(np.float64)
    mesh = _mesh_with_iris(lm, gaze=(0.45, 0.08))
    uv = exports.pupils_in_eye_coordinates(lm, mesh)
    assert uv.shape == (len(lm), 2, 2)
    assert np.allclose(uv, [0.45, 0.08])
    assert np.allclose(exports.pupils_on_frames(lm, uv), mesh[:, exports.IRIS_CENTRES, :2])
    # carried onto a moved, rotated, scaled face the pupils move with the eyes
    angle, scale, shift = 0.3, 1.4, np.array([40.0, -25.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = lm @ rot.T * scale + shift
    expected = mesh[:, exports.IRIS_CENTRES, :2] @ rot.T * scale + shift
    assert np.allclose(exports.pupils_on_frames(moved, uv), expected)
    # the right pupil (468) belongs to the 36-41 eye
    right_eye = lm[:, 36:42].mean(axis=1)
    left_eye = lm[:, 42:48].mean(axis=1)
    pupils = exports.pupils_on_frames(lm, uv)
    assert (np.linalg.norm(pupils[:, 0] - right_eye, axis=1) < np.linalg.norm(pupils[:, 0] - left_eye, axis=1)).all()  # fmt: skip
    # missing frames and meshes without an iris give missing pupils, never guesses
    mesh[2] = np.nan
    uv = exports.pupils_in_eye_coordinates(lm, mesh)
    assert np.isnan(uv[2]).all() and np.isfinite(uv[[0, 1, 3]]).all()
    assert np.isnan(exports.pupils_in_eye_coordinates(lm, mesh[:, :468])).all()


def test_openpose_json_reads_back_as_controlnet_decodes_and_draws_it(tmp_path):
    lm = _faces(4)
    pupils = exports.pupils_on_frames(lm, np.full((4, 2, 2), [0.5, 0.05]))
    pupils[1, 1] = np.nan  # one pupil unknown in frame 1
    size = (640, 480)
    assert exports.write_openpose(tmp_path, "talk", lm, pupils, size) == 4
    files = sorted(tmp_path.glob("*.json"))
    assert [f.name for f in files] == [f"talk_{i:012d}_keypoints.json" for i in range(4)]
    data = json.loads(files[1].read_text())
    assert data["version"] == exports.OPENPOSE_VERSION and len(data["people"]) == 1
    person = data["people"][0]
    assert len(person["face_keypoints_2d"]) == 3 * 70
    assert len(person["pose_keypoints_2d"]) == 3 * 18 and not any(person["pose_keypoints_2d"])
    assert (data["canvas_width"], data["canvas_height"]) == size
    for i, path in enumerate(files):
        points, canvas = exports.read_openpose_face(path)
        assert canvas == size and points.shape == (70, 2)
        assert np.allclose(points[:68], lm[i], atol=0.006)
        if i == 1:
            assert np.isnan(points[69]).all() and np.allclose(points[68], pupils[1, 0], atol=0.006)
        else:
            assert np.allclose(points[68:], pupils[i], atol=0.006)
    # ControlNet's drawing: a white dot of radius 3 at each present point, nothing else
    points, canvas = exports.read_openpose_face(files[1])
    image = exports.render_openpose_face(points, canvas)
    assert image.shape == (480, 640, 3)
    for x, y in points[np.isfinite(points).all(axis=1)]:
        assert image[int(y), int(x)].tolist() == [255, 255, 255]
    n_labels, _ = cv2.connectedComponents((image[..., 0] > 0).astype(np.uint8))
    assert 20 < n_labels - 1 <= 69  # dots (neighbours merge), the missing pupil not drawn
    # the same face written with normalised coordinates draws the same image
    normalised = points / np.array(canvas)
    assert np.array_equal(exports.render_openpose_face(normalised, canvas), image)


def _frame_files(folder, n, size=(640, 480)):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:05d}.jpg"
        cv2.imwrite(str(path), np.full((size[1], size[0], 3), 20 * i, np.uint8))
        paths.append(path)
    return paths


def test_fsvid2vid_folders_read_back_as_imaginaire_lists_them(tmp_path):
    ref_lm = _faces(5).astype(np.float64)
    ref_lm[1] = np.nan  # a reference frame without a face is not a few-shot example
    ref_frames = _frame_files(tmp_path / "ref", 5)
    driving = _faces(7) + 1.5
    index = np.array([0, 2, 3, 4, 3, 2, 0])  # a ping-ponged reference: frames repeat
    info = exports.write_fsvid2vid(
        tmp_path / "fs", "talk", driving, lambda i: ref_frames[index[i]],
        "refclip", ref_lm, lambda i: ref_frames[i],
    )  # fmt: skip
    assert info["few_shot_seq_index"] == 0 and info["driving_seq_index"] == 1
    mapping = exports.read_fsvid2vid(tmp_path / "fs")
    assert [(m["root"], m["sequence"]) for m in mapping] == [("reference", "refclip"), ("driving", "talk")]  # fmt: skip
    reference, drive = mapping
    assert reference["filenames"] == ["00000", "00002", "00003", "00004"]
    assert np.allclose(reference["landmarks"], ref_lm[[0, 2, 3, 4]], atol=0.006)
    assert drive["filenames"] == [f"{i:05d}" for i in range(7)]
    assert np.allclose(drive["landmarks"], driving, atol=0.006)
    images = [cv2.imread(str(p)) for p in drive["image_paths"]]
    assert all(im.shape == (480, 640, 3) for im in images)
    assert np.array_equal(images[6], cv2.imread(str(ref_frames[0])))
    # a repeated reference frame is stored once and hard-linked
    assert os.stat(drive["image_paths"][0]).st_ino == os.stat(drive["image_paths"][6]).st_ino
    crop = exports.imaginaire_face_crop(drive["landmarks"][0], (480, 640))
    assert 0 <= crop[2] < crop[3] <= 640 and crop[0] < crop[1]
    # imaginaire drops sequences shorter than 3 frames at inference: refused up front
    with pytest.raises(exports.ExportError, match="at least 3"):
        exports.write_fsvid2vid(tmp_path / "fs2", "t", driving, lambda i: ref_frames[0],
                                "r", ref_lm[:3], lambda i: ref_frames[i])  # fmt: skip
    (tmp_path / "fs" / "driving" / "landmarks-dlib68" / "talk" / "00003.json").unlink()
    with pytest.raises(ValueError, match="00003.json: landmark file missing"):
        exports.read_fsvid2vid(tmp_path / "fs")


def test_mediapipe_export_holds_the_reference_mesh_behind_each_frame(tmp_path):
    lm = _faces(5).astype(np.float64)
    mesh = _mesh_with_iris(lm)
    index = np.array([0, 1, 2, 3, 4, 3, 2, 1])
    path = exports.write_mediapipe(tmp_path / "m.npz", np.arange(8) / 30, index, mesh,
                                   np.arange(5) / 30, (640, 480))  # fmt: skip
    with np.load(path) as data:
        per_frame = data["reference_lm478"][data["reference_index"]]
        assert per_frame.shape == (8, 478, 3) and not bool(data["predicted"])
        assert np.allclose(per_frame[5], mesh[3], atol=1e-4)
    with pytest.raises(exports.ExportError, match="no MediaPipe mesh"):
        exports.write_mediapipe(tmp_path / "x.npz", np.arange(3), index[:3], np.zeros((5, 68, 2)),
                                np.arange(5), (640, 480))  # fmt: skip


def test_write_formats_writes_what_was_asked(tmp_path):
    lm = _faces(6).astype(np.float64)
    frames = _frame_files(tmp_path / "ref", 6)
    track = vid2vid.ReferenceTrack("ref", np.arange(6) / 30, lm, (640, 480), frames)
    index = np.array([0, 1, 2, 3, 4, 5])
    prediction = exports.Prediction(
        "talk", np.arange(6) / 30, lm, lm, None, index, np.zeros(6, bool), track, None, 30.0
    )
    written = exports.write_formats(tmp_path / "out", ["csv", "openpose"], prediction)
    assert written.files == {"csv": "keypoints.csv", "openpose": "openpose"}
    assert set(written.seconds) == set(written.files) and written.problems == []
    assert written.vid2vid is None and written.handoff is None
    points, _ = exports.read_openpose_face(
        sorted((tmp_path / "out" / "openpose").glob("*.json"))[0]
    )
    assert np.isnan(points[68:]).all()  # no iris track: pupils missing, not invented
    assert not (tmp_path / "out" / "keypoints.npz").exists()
