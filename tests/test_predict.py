"""wav2kp predict on generated and real speech: outputs, formats, batches, reference choice,
the preview, odd audio formats.

The checkpoint is a real one: the default architecture (small) trained for a few epochs
with ``wav2kp.training.train`` on a synthetic speaker whose mouth follows the speech loudness. The
reference video is a real generated demo clip, extracted with MediaPipe like any video.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from wav2kp.benchmarks.predict import speech_sample, tiny_checkpoint
from wav2kp.handoff import exports, preview, vid2vid
from wav2kp.media.probe import ffmpeg_exe, probe
from wav2kp.predict import predict, references
from wav2kp.training.inference import load_predictor

FPS = 30000 / 1001


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model"), epochs=2, seconds=3.0)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(path, speech_sample(3.0, seed=5), 16000)
    return path


@pytest.fixture(scope="module")
def reference_video(tmp_path_factory):
    """A real face video: one generated demo clip (a photo animated by espeak's timing)."""
    from wav2kp.demo.corpus import clip_specs, make_clip

    folder = tmp_path_factory.mktemp("reference")
    make_clip(clip_specs("tiny")[0], folder)
    return next(folder.glob("*.mp4"))


@pytest.fixture(autouse=True)
def data_root(tmp_path_factory, monkeypatch):
    """Reference extractions are cached under the data root: one per module, not the
    checkout's data/."""
    root = tmp_path_factory.getbasetemp() / "predict-data"
    monkeypatch.setenv("WAV2KP_DATA", str(root))
    return root


def _ffmpeg(src, dst, *args):
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), *args, str(dst)],
                   check=True)  # fmt: skip
    return dst


def test_predict_writes_keypoints_vid2vid_tree_and_preview(tmp_path, checkpoint, speech):
    out = tmp_path / "out"
    summary = predict.predict_file(speech, checkpoint, out, progress=False)
    n = int(np.floor(3.0 * FPS))
    assert summary["frames"] == n and summary["vid2vid_problems"] == []
    assert "neutral face" in summary["reference"] and "--reference" in summary["reference_change"]
    assert summary["files"] == {"vid2vid": vid2vid.EXPORT_DIR, "npz": "keypoints.npz",
                                "csv": "keypoints.csv", "preview": "preview.mp4"}  # fmt: skip
    with np.load(out / "keypoints.npz") as data:
        assert data["landmarks"].shape == (n, 68, 2) and np.isfinite(data["landmarks"]).all()
        assert np.allclose(data["times"], np.arange(n) / FPS)
        assert np.isnan(data["pupils"]).all()  # a neutral face has no iris track
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
    # a short prediction: every frame drawn as vid2vid draws it (long ones are screened)
    assert handoff["frames_checked_exactly"] == n and handoff["check"].startswith("every frame")
    info = probe(out / "preview.mp4")
    assert info.has_audio and info.has_video and info.width == 2 * preview.PREVIEW_PANEL
    assert info.duration == pytest.approx(3.0, abs=0.2)
    # real-time factors: seconds of speech per second of work, from the same summary's
    # timings (the predict stage is part of the whole run, so it is the faster of the two)
    assert summary["audio_seconds"] == pytest.approx(3.0, abs=1e-3)
    assert summary["predict_seconds"] == summary["seconds"]["predict"]
    assert sum(summary["seconds"].values()) <= summary["total_seconds"]
    assert summary["realtime_factor_predict"] == pytest.approx(
        summary["audio_seconds"] / summary["predict_seconds"], rel=1e-9
    )
    assert summary["realtime_factor_total"] == pytest.approx(
        summary["audio_seconds"] / summary["total_seconds"], rel=1e-9
    )
    assert 0.1 < summary["realtime_factor_total"] < summary["realtime_factor_predict"] < 1e5
    assert f"--how_many {n}" in summary["vid2vid_command"]
    assert str(out.resolve()) in summary["vid2vid_command"]  # not the staging folder
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    # a re-run with the same inputs is skipped
    assert predict.predict_file(speech, checkpoint, out, progress=False).get("skipped")


def test_cli_predict_replaces_its_own_earlier_run_only(tmp_path, checkpoint, speech, capsys):
    from wav2kp.cli import main

    args = ["predict", str(speech), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"),
            "--fps", "25", "--no-preview"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "--how_many 75" in printed and "neutral face" in printed and "to change it" in printed
    assert "-start_number 2" in printed and "-ss 0.080000" in printed  # the mux command
    assert not (tmp_path / "o" / "preview.mp4").exists()
    assert len(vid2vid.sequence_frames(tmp_path / "o" / vid2vid.EXPORT_DIR, "speech")) == 75
    # a new run into the same folder replaces the earlier run's sequence (vid2vid crops all
    # sequences of a folder with the first one's face box, so heads must not be mixed)
    predict.predict_file(speech, checkpoint, tmp_path / "o", preview=False, sequence="other",
                         progress=False)  # fmt: skip
    kp_root, img_root = vid2vid.keypoint_dirs(tmp_path / "o" / vid2vid.EXPORT_DIR)
    assert [p.name for p in kp_root.iterdir()] == [p.name for p in img_root.iterdir()] == ["other"]
    # ... but a file it did not write stops it, and stays
    (tmp_path / "o" / "notes.txt").write_text("mine")
    with pytest.raises(predict.PredictError, match="notes.txt"):
        predict.predict_file(speech, checkpoint, tmp_path / "o", preview=False, progress=False,
                             sequence="third")  # fmt: skip
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine"
    assert [p.name for p in kp_root.iterdir()] == ["other"]


def test_batch_loads_model_and_reference_once(tmp_path, checkpoint, monkeypatch, capsys):
    from wav2kp.cli import main

    files = []
    for k in range(3):
        files.append(tmp_path / "in" / f"s{k}.wav")
        files[-1].parent.mkdir(exist_ok=True)
        sf.write(files[-1], speech_sample(1.5, seed=k), 16000)
    silent = tmp_path / "in" / "quiet.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    calls = {"load": 0, "reference": 0}
    load, resolve = predict.load_checkpoint_for_predict, predict.resolve_reference

    def counting_load(*args, **kwargs):
        calls["load"] += 1
        return load(*args, **kwargs)

    def counting_resolve(*args, **kwargs):
        calls["reference"] += 1
        return resolve(*args, **kwargs)

    from wav2kp.plots import edgemap

    canny = edgemap.canny_edges

    def counting_canny(*args, **kwargs):
        calls["canny"] += 1
        return canny(*args, **kwargs)

    calls["canny"] = 0
    monkeypatch.setattr(predict, "load_checkpoint_for_predict", counting_load)
    monkeypatch.setattr(predict, "resolve_reference", counting_resolve)
    monkeypatch.setattr(edgemap, "canny_edges", counting_canny)
    out = tmp_path / "out"
    code = main(["predict", *map(str, [files[0], silent, files[1], files[2]]), "--checkpoint",
                 str(checkpoint), "--out", str(out), "--preview-seconds", "0.5"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and {k: calls[k] for k in ("load", "reference")} == {"load": 1, "reference": 1}
    assert sorted(p.name for p in out.iterdir()) == ["s0", "s1", "s2"]  # nothing for quiet
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "quiet.wav: silent" in errors[0]
    assert "3 of 4 files done; 1 failed" in captured.out
    # the reference frame's edges are found once per distinct canvas, not once per file
    canvases = set()
    for k in range(3):
        with np.load(out / f"s{k}" / "keypoints.npz") as data:
            canvases.add((float(data["vid2vid_scale"]), *data["vid2vid_offset"].tolist()))
    assert calls["canny"] == len(canvases)
    for k in range(3):
        summary = json.loads((out / f"s{k}" / "predict.json").read_text())
        assert summary["sequence"] == f"s{k}" and summary["frames"] == int(1.5 * FPS)
        assert probe(out / f"s{k}" / "preview.mp4").duration == pytest.approx(0.5, abs=0.15)
    # two files with the same name cannot share a folder: that one is refused, not mixed
    other = tmp_path / "other" / "s0.wav"
    other.parent.mkdir()
    sf.write(other, speech_sample(1.0, seed=9), 16000)
    results = predict.predict_files([files[1], other, files[0]], checkpoint, tmp_path / "out2",
                                    preview=False, progress=False)  # fmt: skip
    assert "error" not in results[0]
    assert "same name as" in results[1]["error"] and "same name as" in results[2]["error"]


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
    summary = predict.predict_file(source, checkpoint, tmp_path / "out", preview=False,
                                   progress=False)  # fmt: skip
    assert summary["frames"] == pytest.approx(3.0 * FPS, abs=2)
    assert summary["vid2vid_problems"] == []


def test_all_formats_on_a_real_reference_video(tmp_path, checkpoint, speech, reference_video):
    out = tmp_path / "out"
    summary = predict.predict_file(
        speech, checkpoint, out, reference=reference_video, progress=False,
        formats="vid2vid,openpose,fsvid2vid,csv,npz,mediapipe", preview_seconds=1.0,
    )  # fmt: skip
    n = summary["frames"]
    assert summary["vid2vid_problems"] == [] and "reference video" in summary["reference"]
    assert summary["pupils"].startswith("MediaPipe iris")
    with np.load(out / "keypoints.npz") as data:
        landmarks, pupils = data["landmarks"], data["pupils"]
    # OpenPose: 70 points as ControlNet reads them, the pupils inside their eyes
    jsons = sorted((out / "openpose").glob("*.json"))
    assert len(jsons) == n
    for i in (0, n // 2, n - 1):
        points, canvas = exports.read_openpose_face(jsons[i])
        assert canvas == tuple(summary["frame_size"])
        assert np.allclose(points[:68], landmarks[i], atol=0.006)
        assert np.allclose(points[68:], pupils[i], atol=0.006)
        for eye, (a, b) in enumerate(exports.EYE_CORNERS):
            corners = points[[a, b]]
            width = np.linalg.norm(corners[1] - corners[0])
            assert np.linalg.norm(points[68 + eye] - corners.mean(axis=0)) < 0.35 * width
    # few-shot vid2vid: the loader's mapping, the predicted landmarks on reference frames
    reference, driving = exports.read_fsvid2vid(out / "fsvid2vid")
    assert reference["root"] == "reference" and len(reference["filenames"]) >= 3
    assert driving["sequence"] == "speech" and len(driving["filenames"]) == n
    assert np.allclose(driving["landmarks"], landmarks, atol=0.006)
    # MediaPipe: the reference's own mesh behind each frame (not predicted)
    with np.load(out / "mediapipe478.npz") as data:
        mesh = data["reference_lm478"][data["reference_index"]]
    assert mesh.shape == (n, 478, 3) and np.isfinite(mesh[0]).all()
    assert probe(out / "preview.mp4").duration == pytest.approx(1.0, abs=0.15)


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
    assert summary["frame_size"] == [640, 480] and summary["vid2vid_problems"] == []
    assert index.max() == n_ref - 1 and index[n_ref] == n_ref - 2  # ping-pong
    assert np.abs(nose - ref[index, 30, 0]).max() < 2.0  # the head moves with the reference


@pytest.mark.realclips
@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("pcavs_vox2_Pose_Source_731200067.mp4", [224, 224]),  # tight VoxCeleb2 crop
        ("liveportrait_d11.mp4", [512, 512]),
        ("retalking_face_1.mp4", [700, 700]),  # variable frame rate
        ("eamm_MEAD_M030_sad_3_001.mp4", [1920, 1080]),  # small face in full HD
        ("grid_s1_bbaf3s.mpg", [360, 288]),  # GRID's own MPEG-1 container
    ],
)
def test_predict_real_speech_with_real_reference_video(tmp_path, checkpoint, realclips, name,
                                                       size):  # fmt: skip
    wavs = sorted(realclips.glob("*.wav"))
    video = realclips / name
    if not wavs or not video.is_file():
        pytest.skip("no real speech or reference video in the real clips folder")
    summary = predict.predict_file(
        wavs[0], checkpoint, tmp_path / "out", reference=video, progress=False,
        formats="vid2vid,openpose",
    )  # fmt: skip
    assert summary["vid2vid_problems"] == [] and summary["frame_size"] == size
    assert summary["vid2vid"]["face_edge_share"] == 1.0  # every face edge reaches vid2vid
    assert name.split("_")[0] in summary["reference"]
    assert summary["frames"] == int(np.floor(sf.info(wavs[0]).duration * FPS))
    images = sorted((tmp_path / "out" / vid2vid.EXPORT_DIR / "test_img").rglob("*.jpg"))
    assert len(images) == summary["frames"]
    assert summary["pupils"].startswith("MediaPipe iris")
    segment = summary["reference_segment"]  # the looped stretch: face found throughout
    assert segment["first_frame"] == 0 and segment["frames"] == segment["extracted_frames"]
    assert summary["reference_extraction_seconds"] > 0


def test_a_long_reference_video_is_extracted_one_loop_only(tmp_path, reference_video):
    from wav2kp.benchmarks.predict import looped_video

    seconds = probe(reference_video).duration
    long = looped_video(reference_video, 3 * seconds, tmp_path / "long.mp4")
    loop = round(seconds / 2, 2)
    reference = references.looped_video(long, "", loop_seconds=loop)
    track = reference.track
    assert f"extracted its first {loop:g} s: one loop" in reference.description
    assert track.times[-1] - track.times[0] <= loop
    assert len(track.frame_paths) == track.n_frames
    # the extraction itself stopped after one loop (stream copy may run a few frames on)
    assert reference.segment.of <= int(np.ceil(loop * FPS)) + 3
    assert reference.extraction_seconds > 0
    assert reference.lm478 is not None and len(reference.lm478) == track.n_frames


def test_the_output_names_the_reference_extractions_share(
    tmp_path, checkpoint, speech, reference_video, capsys
):
    from wav2kp.cli import main

    results = [{"total_seconds": 2.0}, {"total_seconds": 1.0, "skipped": True}, {"error": "x"}]
    line = predict.extraction_share_line(6.0, results)
    assert line.startswith("reference extraction: 6.0 s, 75 % of this run's 8.0 s")
    assert predict.extraction_share_line(None, results) == ""
    code = main(["predict", str(speech), "--checkpoint", str(checkpoint), "--reference",
                 str(reference_video), "--out", str(tmp_path / "out"), "--no-preview"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = [x for x in out.splitlines() if x.startswith("reference extraction: ")]
    assert len(lines) == 1 and "% of this run's" in lines[0]
    # a prediction on the default reference extracts nothing: no such line
    main(["predict", str(speech), "--checkpoint", str(checkpoint), "--out",
          str(tmp_path / "out2"), "--no-preview"])  # fmt: skip
    assert "reference extraction" not in capsys.readouterr().out


def _fake_corpus(root, monkeypatch, corpus="fake", size=512, face_center=(256.0, 256.0)):
    """A processed corpus on disk: split.csv, extraction npz, audio, kept frames."""
    import cv2
    from wav2kp.benchmarks.predict import synthetic_face
    from wav2kp.paths import CorpusPaths

    monkeypatch.setenv("WAV2KP_DATA", str(root))
    paths = CorpusPaths(corpus)
    rows = [("a_joy_s1", "train", "a"), ("a_joy_s2", "test", "a"), ("a_neu_s2", "test", "a"),
            ("b_joy_s2", "test", "b")]  # fmt: skip
    for folder in (paths.extracted, paths.audio, paths.processed):
        folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["clip_id", "split", "speaker"]).to_csv(
        paths.split_file, index=False
    )
    rng = np.random.default_rng(0)
    for k, (clip_id, _, _) in enumerate(rows):
        n = 12 + 2 * k
        lm = np.stack([synthetic_face(center=face_center, mouth_open=0.02 * (t % 3)) for t in range(n)])  # fmt: skip
        lm[: k % 2] = np.nan  # a_joy_s2 misses its first frame
        np.savez(paths.extracted / f"{clip_id}.npz", times=np.arange(n) / 30.0, lm68=lm,
                 frame_status=np.isnan(lm[:, 0, 0]).astype(np.int8) * 2, width=size, height=size)  # fmt: skip
        sf.write(paths.audio / f"{clip_id}.wav", speech_sample(1.0, seed=k), 16000)
        frames = paths.frames / clip_id
        frames.mkdir(parents=True)
        for t in range(n):
            image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            image = cv2.GaussianBlur(image, (0, 0), 3)  # textured: Canny finds edges
            cv2.imwrite(str(frames / f"{t:05d}.jpg"), image)
    return paths


def test_choose_handoff_clips_uses_held_out_audio_only(tmp_path, monkeypatch):
    paths = _fake_corpus(tmp_path, monkeypatch)
    chosen = references.choose_handoff_clips("fake", speech_clip="a_joy_s2")
    assert chosen.reference_clip == "a_neu_s2" and chosen.speaker == "a"
    assert chosen.speech_audio == paths.audio / "a_joy_s2.wav"
    lone = references.choose_handoff_clips("fake", speech_clip="b_joy_s2")
    assert lone.reference_clip == "b_joy_s2"  # no other test clip of speaker b
    with pytest.raises(ValueError, match="never training audio"):
        references.choose_handoff_clips("fake", speech_clip="a_joy_s1")
    picks = {references.choose_handoff_clips("fake", seed=s).speech_clip for s in range(12)}
    assert picks <= {"a_joy_s2", "a_neu_s2", "b_joy_s2"} and len(picks) > 1
    with pytest.raises(FileNotFoundError, match="split"):
        references.choose_handoff_clips("other")


def test_demo_reference_prefers_test_clips_with_most_detections(tmp_path, monkeypatch):
    _fake_corpus(tmp_path, monkeypatch)
    assert references.demo_reference("fake").stem == "b_joy_s2"  # longest detected test clip
    assert references.demo_reference("fake", speaker="a").stem == "a_neu_s2"
    assert references.demo_reference("fake", speaker="nobody") is None
    assert references.demo_reference("absent") is None


def test_reference_comes_from_the_checkpoints_own_corpus_and_speaker(
    tmp_path, monkeypatch, checkpoint
):
    _fake_corpus(tmp_path, monkeypatch, corpus="fake")
    _fake_corpus(tmp_path, monkeypatch, corpus="demo")  # a demo corpus is there too
    predictor = load_predictor(checkpoint)
    predictor.fingerprint.update(corpus="fake", speakers=["a", "b"])
    chosen = references.resolve_reference(None, predictor)
    assert chosen.track.name == "a_neu_s2" and chosen.speaker == "a"
    assert "fake corpus clip a_neu_s2" in chosen.description and "speaker a" in chosen.description
    assert "--reference VIDEO" in chosen.change and "--speaker NAME" in chosen.change
    assert len(chosen.track.frame_paths) == chosen.track.n_frames == 16
    assert references.resolve_reference(None, predictor, speaker="b").track.name == "b_joy_s2"
    with pytest.raises(
        predict.PredictError, match="--speaker zed: not a speaker of this checkpoint"
    ):
        references.resolve_reference(None, predictor, speaker="zed")
    # a model of a corpus that is not here gets its own speaker's neutral face, never the demo's
    predictor.fingerprint.update(corpus="grid", speakers=["s1"])
    fallback = references.resolve_reference(None, predictor)
    assert fallback.track.frame_paths == [] and fallback.speaker == "s1"
    assert "neutral face of speaker s1" in fallback.description
    assert "no extracted clip of corpus 'grid'" in fallback.description


@pytest.mark.parametrize(("size", "face_center"), [(512, (256.0, 256.0)), (400, (180.0, 230.0))])
def test_preview_shows_what_the_generator_gets(tmp_path, monkeypatch, size, face_center):
    """The fast box-only renderer gives exactly vid2vid's generator input (read back from
    the export through ``edgemap.generator_input``) - also when the reference frame is
    smaller than vid2vid's crop (the canvas pads it), and in memory without an export."""
    import cv2
    from PIL import Image
    from wav2kp.plots import edgemap

    paths = _fake_corpus(tmp_path, monkeypatch, size=size, face_center=face_center)
    track = vid2vid.load_reference_track(
        paths.extracted / "a_neu_s2.npz", paths.frames / "a_neu_s2"
    )
    predicted = np.stack([track.landmarks[t % 16] for t in range(40)])
    composition = vid2vid.compose_on_reference(predicted, track, fps=30)
    export = vid2vid.export_composition(tmp_path / "v_face", "s", composition, track)
    view = preview.GeneratorView.from_export(export)
    cache = preview.FrameCache()
    frames = list(preview.preview_frames(view, panel=128, cache=cache))
    assert len(frames) == 40 and frames[0].shape == (128, 256, 3)
    files = vid2vid.sequence_frames(tmp_path / "v_face", "s")
    for i in (0, 17, 30):  # 30: a ping-pong revisit, served from the cache
        image = np.asarray(Image.open(export.image_path(i)).convert("RGB"))
        seen = edgemap.generator_input(vid2vid.read_keypoint_file(files[i]), export.canvas.size,
                                       export.crop_box, frame=image)  # fmt: skip
        expected = cv2.resize(seen.edges, (128, 128), interpolation=cv2.INTER_AREA)
        assert np.array_equal(frames[i][:, 128:, 0], expected)
    assert frames[30][:, 128:].any() and frames[30][:, :128].std() > 0
    assert len(cache.items) == 16  # one entry per distinct reference frame
    # without an export (no vid2vid format): the same canvas, frames warped in memory
    memory = preview.GeneratorView.from_composition(composition, track)
    assert memory.box == view.box and np.array_equal(memory.landmarks, view.landmarks)
    again = list(preview.preview_frames(memory, panel=128))
    assert np.abs(again[30].astype(int) - frames[30]).mean() < 2  # only the jpg round trip


def test_checkpoint_by_name_and_the_default_model(tmp_path, monkeypatch, checkpoint):
    import shutil

    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path))
    with pytest.raises(predict.PredictError, match="no default model"):
        predict.resolve_checkpoint(None)
    demo = tmp_path / "models" / "demo" / "default"
    demo.mkdir(parents=True)
    shutil.copy(checkpoint, demo / "best.pt")
    assert predict.resolve_checkpoint(None) == demo / "best.pt"
    assert predict.resolve_checkpoint("demo") == predict.resolve_checkpoint("demo/default")
    assert predict.resolve_checkpoint(str(demo)) == demo / "best.pt"
    grid = tmp_path / "models" / "grid" / "default" / "seed-0"  # a multi-seed model folder
    grid.mkdir(parents=True)
    shutil.copy(checkpoint, grid / "best.pt")
    assert predict.resolve_checkpoint(None) == grid / "best.pt"  # real speech first
    with pytest.raises(predict.PredictError, match="no model 'nope'"):
        predict.resolve_checkpoint("nope")
