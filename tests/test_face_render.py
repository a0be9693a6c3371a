"""--format face: the reference video warped onto the predicted keypoints. Read back with
the project's own extractor, the face must give back the mouth it was rendered onto and
keep the reference's eyes and brows."""

from __future__ import annotations

import numpy as np
import pytest
from wav2kp.handoff import face as face_render
from wav2kp.handoff import vid2vid
from wav2kp.media.facewarp import tps_displacement
from wav2kp.media.probe import probe
from wav2kp.paths import shared_realclips
from wav2kp.predict import predict


def test_thin_plate_field_moves_controls_exactly_and_keeps_the_pinned_border():
    box = (slice(10, 110), slice(20, 140))
    controls = np.array([[60.0, 50.0], [80.0, 70.0], [100.0, 40.0], [40.0, 90.0]])
    values = np.array([[3.0, -2.0], [-1.0, 4.0], [0.0, 1.5], [2.0, 0.0]])
    ring = np.array([[20.0, 10.0], [139.0, 10.0], [20.0, 109.0], [139.0, 109.0], [80.0, 10.0],
                     [80.0, 109.0], [20.0, 60.0], [139.0, 60.0]])  # fmt: skip
    dx, dy = tps_displacement(np.r_[controls, ring], np.r_[values, 0 * ring], box, step=1,
                              smoothing=0.0)  # fmt: skip
    assert dx.shape == (100, 120)
    at = (controls - [20, 10]).astype(int)
    assert np.allclose(dx[at[:, 1], at[:, 0]], values[:, 0], atol=1e-3)
    assert np.allclose(dy[at[:, 1], at[:, 0]], values[:, 1], atol=1e-3)
    assert abs(dx[0, 0]) < 1e-3 and abs(dy[-1, -1]) < 1e-3


def test_lip_contours_move_with_their_68_point_lip_points():
    delta = np.zeros((68, 2))
    delta[66] = [0.0, 10.0]  # inner lower lip middle down
    delta[57] = [0.0, 8.0]  # outer lower lip middle down
    delta[67] = [0.0, 6.0]  # inner lower lip beside the middle (mesh 87)
    keys, moves = face_render.lip_contour_moves(delta)
    move = dict(zip(keys, moves, strict=True))
    assert np.allclose(move[14], [0, 10]) and np.allclose(move[17], [0, 8])  # 66, 57
    assert np.allclose(move[13], [0, 0]) and np.allclose(move[78], [0, 0])  # upper lip, corner
    assert np.allclose(move[87], [0, 6])
    # mesh 178 lies 3/4 of the way from the corner (78, still) to 87 along the contour
    assert np.allclose(move[178], [0, 4.5])


GRID = shared_realclips().parent / "grid-s1"


@pytest.fixture(scope="module")
def grid_pair(tmp_path_factory):
    """A short real reference (GRID s1) and another sentence's real mouth motion."""
    reference, driver = GRID / "bbaf3s.mp4", GRID / "bbaf5a.mp4"
    if not reference.is_file() or not driver.is_file():
        pytest.skip(f"GRID speaker 1 not available at {GRID}")
    from wav2kp.predict.references import extract_reference

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAV2KP_DATA", str(tmp_path_factory.mktemp("face-data")))
        track, mesh, _ = extract_reference(reference)
        driving, _, _ = extract_reference(driver)
    return track, mesh, driving, driver


def test_face_reads_back_the_predicted_mouth_and_the_reference_eyes(tmp_path, grid_pair):
    from wav2kp.media.audio import load_audio

    track, mesh, driving, driver = grid_pair
    times = driving.times - driving.times[0]
    composed = vid2vid.compose_on_reference(driving.landmarks, track, out_times=times)
    audio, rate = load_audio(driver, sample_rate=16000)
    renderer = face_render.FaceRenderer(track, mesh)
    result = face_render.render_and_measure(renderer, times, composed.landmarks, audio, rate,
                                            tmp_path)  # fmt: skip
    assert result["frames_read"] == result["frames"]
    assert abs(result["frames"] - len(times)) <= 1  # as many as the speech lasts
    assert result["opening_r"] >= 0.95
    assert result["mouth_lmd_iod"] <= 0.01
    assert result["eyes_brows_iod"] <= 0.005
    info = probe(tmp_path / "face.mp4")
    assert (info.width, info.height) == tuple(track.size) and info.has_audio
    assert info.fps == pytest.approx(face_render.reference_rate(track.times), rel=0.01)


def test_predict_writes_a_face_on_the_reference_video(tmp_path, monkeypatch):
    import soundfile as sf
    from wav2kp.benchmarks.predict import speech_sample, tiny_checkpoint
    from wav2kp.demo.corpus import clip_specs, make_clip

    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    checkpoint = tiny_checkpoint(tmp_path / "model", epochs=1, seconds=2.0)
    speech = tmp_path / "speech.wav"
    sf.write(speech, speech_sample(2.0, seed=5), 16000)
    make_clip(clip_specs("tiny")[0], tmp_path / "reference")
    video = next((tmp_path / "reference").glob("*.mp4"))
    summary = predict.predict_file(speech, checkpoint, tmp_path / "out", reference=video,
                                   formats="face", preview=False, progress=False)  # fmt: skip
    assert summary["files"] == {"face": "face.mp4"}
    info = probe(tmp_path / "out" / "face.mp4")
    assert [info.width, info.height] == summary["frame_size"] and info.has_audio
    assert info.duration == pytest.approx(2.0, abs=0.1)
    with pytest.raises(predict.PredictError, match="--format face"):
        predict.open_session(checkpoint, None, formats="face")
