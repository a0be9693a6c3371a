"""wav2kp predict on generated and real speech, odd formats and bad inputs.

The checkpoint is a real one: the default architecture (small) trained for a few epochs
with ``wav2kp.train`` on a synthetic speaker whose mouth follows the speech loudness.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from wav2kp import predict, vid2vid
from wav2kp.benchmarks.predict import speech_sample, tiny_checkpoint
from wav2kp.media.probe import ffmpeg_exe, probe
from wav2kp.train import load_predictor

FPS = 30000 / 1001


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model"), epochs=2, seconds=3.0)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(path, speech_sample(3.0, seed=5), 16000)
    return path


def _ffmpeg(src, dst, *args):
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), *args, str(dst)],
                   check=True)  # fmt: skip
    return dst


def test_predict_writes_keypoints_vid2vid_tree_and_preview(tmp_path, checkpoint, speech):
    out = tmp_path / "out"
    summary = predict.predict_file(speech, checkpoint, out, corpus="no-such-corpus", progress=False)
    n = int(np.floor(3.0 * FPS))
    assert summary["frames"] == n and summary["vid2vid_problems"] == []
    assert "neutral face" in summary["reference"]
    with np.load(out / "keypoints.npz") as data:
        assert data["landmarks"].shape == (n, 68, 2) and np.isfinite(data["landmarks"]).all()
        assert np.allclose(data["times"], np.arange(n) / FPS)
        landmarks, exported = data["landmarks"], data["vid2vid_landmarks"]
        scale, offset = float(data["vid2vid_scale"]), data["vid2vid_offset"]
    table = pd.read_csv(out / "keypoints.csv")
    assert len(table) == n and list(table.columns[:4]) == ["frame", "time", "x0", "y0"]
    assert np.allclose(table["x33"], landmarks[:, 33, 0], atol=1e-3)
    seq_files = vid2vid.sequence_frames(out / vid2vid.EXPORT_DIR, "speech")
    assert len(seq_files) == n
    # the vid2vid files hold the exported points; npz says how they map to the csv's
    assert np.array_equal(vid2vid.read_keypoint_file(seq_files[10]), exported[10])
    assert np.array_equal(exported, np.rint(landmarks.astype(np.float64) * scale + offset))
    handoff = summary["vid2vid"]
    assert handoff["crop_box"] == [32, 32, 544, 544] and handoff["face_edge_share"] == 1.0
    assert handoff["first_output_frame"] == 2 and handoff["output_frames"] == n - 2
    info = probe(out / "preview.mp4")
    assert info.has_audio and info.has_video and info.width == 2 * predict.PREVIEW_PANEL
    assert info.duration == pytest.approx(3.0, abs=0.2)
    assert summary["realtime_factor_predict"] > 0
    assert f"--how_many {n}" in summary["vid2vid_command"]
    # a re-run with the same inputs is skipped
    assert predict.predict_file(
        speech, checkpoint, out, corpus="no-such-corpus", progress=False
    ).get("skipped")


def test_cli_predict(tmp_path, checkpoint, speech, capsys):
    from wav2kp.cli import main

    args = ["predict", str(speech), "--checkpoint", str(checkpoint), "--out", str(tmp_path),
            "--fps", "25", "--no-preview", "--corpus", "none"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "--how_many 75" in printed and "neutral face" in printed
    assert not (tmp_path / "preview.mp4").exists()
    assert len(vid2vid.sequence_frames(tmp_path / vid2vid.EXPORT_DIR, "speech")) == 75
    assert "-start_number 2" in printed and "-ss 0.080000" in printed  # the mux command
    # a new run into the same folder replaces the sequence (vid2vid crops all sequences
    # of a folder with the first one's face box, so heads must not be mixed)
    predict.predict_file(speech, checkpoint, tmp_path, preview=False, sequence="other",
                         corpus="none", progress=False)  # fmt: skip
    kp_root, img_root = vid2vid.keypoint_dirs(tmp_path / vid2vid.EXPORT_DIR)
    assert [p.name for p in kp_root.iterdir()] == [p.name for p in img_root.iterdir()] == ["other"]


def test_chunked_prediction_matches_one_pass(checkpoint):
    predictor = load_predictor(checkpoint)
    samples = speech_sample(6.0, seed=2)
    times, whole = predict.predict_track(predictor, samples, 16000, chunk_seconds=100)
    times_c, chunked = predict.predict_track(predictor, samples, 16000, chunk_seconds=1.0)
    assert np.array_equal(times, times_c) and len(times) == int(6.0 * FPS)
    assert np.abs(whole - chunked).max() < 1e-3  # pixels: chunk seams do not show


@pytest.mark.parametrize(
    ("suffix", "args"),
    [
        (".mp3", ["-ar", "44100", "-ac", "2"]),
        (".m4a", ["-ar", "22050", "-ac", "1"]),
        (".flac", ["-ar", "44100", "-ac", "2"]),
    ],
)
def test_predict_accepts_formats_rates_and_channels(tmp_path, checkpoint, speech, suffix, args):
    source = _ffmpeg(speech, tmp_path / f"speech{suffix}", *args)
    summary = predict.predict_file(
        source, checkpoint, tmp_path / "out", preview=False, corpus="none", progress=False
    )
    assert summary["frames"] == pytest.approx(3.0 * FPS, abs=2)
    assert summary["vid2vid_problems"] == []


def test_clear_errors_for_bad_input(tmp_path, checkpoint, speech, capsys):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"this is not audio at all" * 50)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    for path, cause in ((empty, "empty"), (garbage, ""), (silent, "silent")):
        with pytest.raises(predict.PredictError, match=path.name) as error:
            predict.predict_file(path, checkpoint, tmp_path / "out", progress=False)
        assert cause in str(error.value)
    from wav2kp.cli import main

    assert main(["predict", str(silent), "--checkpoint", str(checkpoint), "--out",
                 str(tmp_path / "cli")]) == 2  # fmt: skip
    assert "silent.wav" in capsys.readouterr().out
    with pytest.raises(predict.PredictError, match="checkpoint not found"):
        predict.predict_file(speech, tmp_path / "missing.pt", tmp_path / "o")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(predict.PredictError, match="broken.pt"):
        predict.predict_file(speech, broken, tmp_path / "o")
    with pytest.raises(predict.PredictError, match="nowhere.mp4"):
        predict.predict_file(speech, checkpoint, tmp_path / "o", reference=tmp_path / "nowhere.mp4")


def test_composition_follows_the_reference_head(tmp_path, checkpoint, speech):
    from wav2kp.benchmarks.predict import synthetic_face

    n_ref = 40
    ref = np.stack([synthetic_face(center=(300 + 2 * t, 250)) for t in range(n_ref)])
    track = vid2vid.ReferenceTrack("ref", np.arange(n_ref) / 30.0, ref.astype(float), (640, 480))
    summary = predict.predict_file(
        speech, checkpoint, tmp_path / "out", reference=track, preview=False, progress=False
    )
    with np.load(tmp_path / "out" / "keypoints.npz") as data:
        nose = data["landmarks"][:, 30, 0]
        index = data["reference_index"]
    assert summary["frame_size"] == [640, 480]
    assert index.max() == n_ref - 1 and index[n_ref] == n_ref - 2  # ping-pong
    assert np.abs(nose - ref[index, 30, 0]).max() < 2.0  # the head moves with the reference


@pytest.mark.realclips
def test_predict_real_speech_with_real_reference_video(tmp_path, checkpoint, realclips):
    wavs = sorted(realclips.glob("*.wav"))
    video = realclips / "pcavs_vox2_Pose_Source_731200067.mp4"
    if not wavs or not video.is_file():
        pytest.skip("no real speech or reference video in the real clips folder")
    summary = predict.predict_file(
        wavs[0], checkpoint, tmp_path / "out", reference=video, progress=False
    )
    assert summary["vid2vid_problems"] == [] and summary["frame_size"] == [224, 224]
    assert "pcavs" in summary["reference"]
    assert summary["frames"] == int(np.floor(sf.info(wavs[0]).duration * FPS))
    images = sorted((tmp_path / "out" / vid2vid.EXPORT_DIR / "test_img").rglob("*.jpg"))
    assert len(images) == summary["frames"]
    assert summary["vid2vid"]["face_edge_share"] == 1.0  # the 224x224 crop is padded


def _fake_corpus(root, monkeypatch):
    """A processed corpus on disk: split.csv, extraction npz, audio, kept frames."""
    import cv2
    from wav2kp.benchmarks.predict import synthetic_face
    from wav2kp.paths import CorpusPaths

    monkeypatch.setenv("WAV2KP_DATA", str(root))
    paths = CorpusPaths("fake")
    rows = [("a_joy_s1", "train", "a"), ("a_joy_s2", "test", "a"), ("a_neu_s2", "test", "a"),
            ("b_joy_s2", "test", "b")]  # fmt: skip
    for folder in (paths.extracted, paths.audio, paths.processed):
        folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["clip_id", "split", "speaker"]).to_csv(
        paths.split_file, index=False
    )
    for k, (clip_id, _, _) in enumerate(rows):
        n = 12 + 2 * k
        lm = np.stack([synthetic_face(mouth_open=0.02 * (t % 3)) for t in range(n)])
        lm[: k % 2] = np.nan  # a_joy_s2 misses its first frame
        np.savez(paths.extracted / f"{clip_id}.npz", times=np.arange(n) / 30.0, lm68=lm,
                 frame_status=np.isnan(lm[:, 0, 0]).astype(np.int8) * 2, width=512, height=512)  # fmt: skip
        sf.write(paths.audio / f"{clip_id}.wav", speech_sample(1.0, seed=k), 16000)
        frames = paths.frames / clip_id
        frames.mkdir(parents=True)
        for t in range(n):
            cv2.imwrite(str(frames / f"{t:05d}.jpg"), np.full((512, 512, 3), 90, np.uint8))
    return paths


def test_choose_handoff_clips_uses_held_out_audio_only(tmp_path, monkeypatch):
    paths = _fake_corpus(tmp_path, monkeypatch)
    chosen = predict.choose_handoff_clips("fake", speech_clip="a_joy_s2")
    assert chosen.reference_clip == "a_neu_s2" and chosen.speaker == "a"
    assert chosen.speech_audio == paths.audio / "a_joy_s2.wav"
    lone = predict.choose_handoff_clips("fake", speech_clip="b_joy_s2")
    assert lone.reference_clip == "b_joy_s2"  # no other test clip of speaker b
    with pytest.raises(ValueError, match="never training audio"):
        predict.choose_handoff_clips("fake", speech_clip="a_joy_s1")
    picks = {predict.choose_handoff_clips("fake", seed=s).speech_clip for s in range(12)}
    assert picks <= {"a_joy_s2", "a_neu_s2", "b_joy_s2"} and len(picks) > 1
    with pytest.raises(FileNotFoundError, match="split"):
        predict.choose_handoff_clips("other")


def test_demo_reference_prefers_test_clips_with_most_detections(tmp_path, monkeypatch):
    _fake_corpus(tmp_path, monkeypatch)
    assert predict.demo_reference("fake").stem == "b_joy_s2"  # longest fully detected test clip
    assert predict.demo_reference("fake", speaker="a").stem == "a_neu_s2"
    assert predict.demo_reference("absent") is None
    track, description = predict.resolve_reference(None, None, "a", tmp_path / "w", "fake")
    assert "a_neu_s2" in description and len(track.frame_paths) == track.n_frames == 16


def test_preview_shows_what_the_generator_gets(tmp_path, monkeypatch):
    import cv2
    from PIL import Image
    from wav2kp import edgemap

    paths = _fake_corpus(tmp_path, monkeypatch)
    track = vid2vid.load_reference_track(
        paths.extracted / "a_neu_s2.npz", paths.frames / "a_neu_s2"
    )
    predicted = np.stack([track.landmarks[t % 16] for t in range(40)])
    composition = vid2vid.compose_on_reference(predicted, track, fps=30)
    export = vid2vid.export_composition(tmp_path / "v_face", "s", composition, track)
    frames = list(predict.preview_frames(export, panel=128))
    assert len(frames) == 40 and frames[0].shape == (128, 256, 3)
    i = 30  # a ping-pong revisit, served from the cache
    image = np.asarray(Image.open(export.image_path(i)).convert("RGB"))
    seen = edgemap.generator_input(vid2vid.read_keypoint_file(vid2vid.sequence_frames(
        tmp_path / "v_face", "s")[i]), export.canvas.size, export.crop_box, frame=image)  # fmt: skip
    expected = cv2.resize(seen.edges, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.array_equal(frames[i][:, 128:, 0], expected)
