"""extract_corpus end to end: good clips, every kind of bad input, re-runs and resume."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data
import soundfile as sf
from test_extract_videos import face_frames, face_transform, write_audio_only_mp4, write_video
from wav2kp.extraction.extract import (
    TIMING_COLUMNS,
    ExtractParams,
    extract_corpus,
    load_extracted,
    load_manifest,
    safe_clip_id,
)
from wav2kp.extraction.gaps import DETECTED, INTERPOLATED, MISSING, GapParams
from wav2kp.paths import CorpusPaths

SIZE = 160


def test_safe_clip_ids():
    assert safe_clip_id("Olá mundo 1") == "Ola_mundo_1"
    assert safe_clip_id("a/b:c*d") == "a_b_c_d"
    assert safe_clip_id("日本語").startswith("clip_")
    assert safe_clip_id("日本語") != safe_clip_id("中文")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One extraction over a folder holding a good clip and every kind of bad input."""
    src = tmp_path_factory.mktemp("videos")
    write_video(src / "Olá mundo 1.mp4", face_frames(25, SIZE), fps=25)
    blank = {8, 9} | set(range(15, 23))  # a 2-frame gap and an 8-frame gap
    (src / "sub").mkdir()
    write_video(src / "sub" / "gappy.mp4", face_frames(30, SIZE, blank), fps=25)
    write_video(src / "solid.mp4", np.full((20, 64, 64, 3), 90, np.uint8), fps=20)
    write_video(src / "mute.mp4", face_frames(5, 64), fps=10, audio=False)
    write_audio_only_mp4(src / "voice.mp4")
    (src / "empty.mp4").touch()
    full = write_video(
        src / "whole.mp4", face_frames(30, 64), fps=20, extra=["-movflags", "+faststart"]
    )
    (src / "cut.mp4").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    (src / "notes.txt").write_text("not a video, ignored")
    pd.DataFrame(
        [
            {
                "file": "sub/gappy.mp4",
                "speaker": "astro",
                "emotion": "joy",
                "sentence_id": "s01",
                "text": "olá",
            }
        ]
    ).to_csv(src / "manifest.csv", index=False)
    paths = CorpusPaths("t", root=tmp_path_factory.mktemp("data"))
    params = ExtractParams(
        gaps=GapParams(max_gap_frames=5, max_gap_seconds=0.25, min_detection_rate=0.5)
    )
    table = extract_corpus(src, paths, workers=0, params=params, progress=False)
    return src, paths, params, table


def row(table: pd.DataFrame, clip_id: str) -> pd.Series:
    return table.set_index("clip_id").loc[clip_id]


def test_every_input_gets_a_row_and_bad_ones_a_reason(batch):
    src, paths, _, table = batch
    assert sorted(table["clip_id"]) == sorted(
        ["Ola_mundo_1", "gappy", "solid", "mute", "voice", "empty", "cut"]
    )
    status = dict(zip(table["clip_id"], table["status"], strict=True))
    assert status["Ola_mundo_1"] == "ok" and status["gappy"] == "ok"
    assert status["solid"] == "rejected"
    for clip in ("mute", "voice", "empty", "cut"):
        assert status[clip] == "error"
    errors = dict(zip(table["clip_id"], table["error"], strict=True))
    assert "solid.mp4" in errors["solid"] and "0%" in errors["solid"]
    assert "mute.mp4" in errors["mute"] and "no audio stream" in errors["mute"]
    assert "voice.mp4" in errors["voice"] and "no video stream" in errors["voice"]
    assert "empty.mp4" in errors["empty"] and "empty file" in errors["empty"]
    assert "cut.mp4" in errors["cut"] and "truncated" in errors["cut"]
    assert all("\n" not in e for e in table["error"])
    for clip in ("mute", "voice", "empty", "cut"):  # nothing half-written for errors
        assert not (paths.extracted / f"{clip}.npz").exists()
        assert not (paths.audio / f"{clip}.wav").exists()
    # the manifest on disk is the returned table; metadata from the input manifest
    on_disk = load_manifest(paths)
    assert list(on_disk["clip_id"]) == list(table["clip_id"])
    gappy = row(on_disk, "gappy")
    assert (gappy["speaker"], gappy["emotion"], gappy["sentence_id"]) == ("astro", "joy", "s01")
    good = row(on_disk, "Ola_mundo_1")
    assert good["speaker"] == "unknown" and good["sentence_id"] == "Ola_mundo_1"
    assert good["file"] == "Olá mundo 1.mp4"


def test_good_clip_files_follow_the_contract(batch):
    _, paths, _, table = batch
    data = load_extracted(paths, "Ola_mundo_1")
    n = 25
    assert data["times"].dtype == np.float64 and data["times"].shape == (n,)
    np.testing.assert_allclose(data["times"], np.arange(n) / 25, atol=1e-3)
    assert data["lm478"].shape == (n, 478, 3) and data["lm478"].dtype == np.float32
    assert data["lm68"].shape == (n, 68, 2) and data["lm68"].dtype == np.float32
    assert data["frame_status"].dtype == np.int8 and (data["frame_status"] == DETECTED).all()
    assert data["pose_rotation"].shape == (n, 3, 3) and np.isfinite(data["pose_rotation"]).all()
    assert data["pose_translation"].shape == (n, 3) and data["pose_scale"].shape == (n,)
    assert (data["width"], data["height"], data["audio_sample_rate"]) == (SIZE, SIZE, 44100)
    assert data["fps"] == pytest.approx(25.0, rel=1e-3)
    assert (data["lm68"] >= 0).all() and (data["lm68"] <= SIZE).all()
    r = row(table, "Ola_mundo_1")
    assert (r["frames"], r["width"], r["height"], r["detection_rate"]) == (n, SIZE, SIZE, 1.0)
    assert (r["audio_sample_rate"], r["audio_channels"]) == (44100, 2)
    wav, rate = sf.read(paths.audio / "Ola_mundo_1.wav")
    assert rate == 16000 and wav.ndim == 1 and abs(len(wav) / rate - 1.0) < 0.05
    orig = sf.info(paths.audio / "Ola_mundo_1.orig.wav")
    assert (orig.samplerate, orig.channels, orig.subtype) == (44100, 2, "PCM_16")


def test_keypoints_follow_the_moving_face_in_pixels(batch):
    """The astronaut is moved by a known affine per frame: the extracted 68 points must
    be the still portrait's points carried by that same transform."""
    from wav2kp.extraction.facemesh import FaceMeshTracker
    from wav2kp.extraction.landmarks import inter_ocular, mediapipe_to_68

    _, paths, _, _ = batch
    with FaceMeshTracker(static=True) as tracker:
        still = mediapipe_to_68(tracker.process(skimage.data.astronaut()))
    lm68 = load_extracted(paths, "Ola_mundo_1")["lm68"]
    expected = np.stack(
        [
            still @ face_transform(i, SIZE)[:, :2].T + face_transform(i, SIZE)[:, 2]
            for i in range(len(lm68))
        ]
    )
    error = np.linalg.norm(lm68 - expected, axis=-1).mean(axis=1) / inter_ocular(expected)
    assert error.max() < 0.08  # mean point error under 8% of the inter-ocular distance


def test_short_gap_interpolated_long_gap_missing(batch):
    _, paths, _, table = batch
    data = load_extracted(paths, "gappy")
    status = data["frame_status"]
    assert (status[[8, 9]] == INTERPOLATED).all()
    assert (status[15:23] == MISSING).all() and np.isnan(data["lm68"][15:23]).all()
    assert np.isnan(data["pose_scale"][15:23]).all()
    assert np.isfinite(data["lm68"][8:10]).all()
    r = row(table, "gappy")
    assert (r["interpolated_frames"], r["missing_frames"]) == (2, 8)
    assert r["detection_rate"] == pytest.approx(20 / 30, abs=1e-3)


def test_rerun_skips_finished_and_redoes_changed_sources_and_parameters(batch, tmp_path):
    src, paths, params, table = batch
    npz = paths.extracted / "Ola_mundo_1.npz"
    before = npz.stat().st_mtime_ns
    again = extract_corpus(src, paths, workers=0, params=params, progress=False)
    assert npz.stat().st_mtime_ns == before
    keep = ["clip_id", "status", "fingerprint", *TIMING_COLUMNS]
    ok = again["status"] != "error"  # errors are retried (they are cheap)
    pd.testing.assert_frame_equal(
        again.loc[ok, keep].reset_index(drop=True),
        table.loc[table["status"] != "error", keep].reset_index(drop=True),
    )
    # a changed source file is redone (its fingerprint changes)
    write_video(src / "solid.mp4", np.full((10, 64, 64, 3), 30, np.uint8), fps=20)
    third = extract_corpus(
        src, paths, workers=0, params=params, clip_filter="solid", progress=False
    )
    assert row(third, "solid")["fingerprint"] != row(table, "solid")["fingerprint"]
    assert row(third, "solid")["frames"] == 10
    assert npz.stat().st_mtime_ns == before  # filtered out: untouched, row kept
    assert row(third, "Ola_mundo_1")["fingerprint"] == row(table, "Ola_mundo_1")["fingerprint"]


def test_keep_frames_writes_one_jpeg_per_row(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "a.mp4", face_frames(6, 96), fps=10)
    paths = CorpusPaths("k", root=tmp_path / "data")
    table = extract_corpus(src, paths, workers=0, keep_frames=True, progress=False)
    assert table["status"].tolist() == ["ok"]
    jpgs = sorted((paths.frames / "a").glob("*.jpg"))
    assert [p.name for p in jpgs] == [f"{i:05d}.jpg" for i in range(6)]
    import cv2

    assert cv2.imread(str(jpgs[0])).shape == (96, 96, 3)
    assert not list(paths.frames.glob(".*partial"))
    # a source deleted since the last run leaves the manifest
    write_video(src / "b.mp4", face_frames(4, 96), fps=10)
    assert extract_corpus(src, paths, workers=0, progress=False)["clip_id"].tolist() == ["a", "b"]
    (src / "a.mp4").unlink()
    assert extract_corpus(src, paths, workers=0, progress=False)["clip_id"].tolist() == ["b"]


def _extract_script(src: Path, root: Path) -> list[str]:
    code = (
        "from wav2kp.extraction.extract import extract_corpus\n"
        "from wav2kp.paths import CorpusPaths\n"
        f"extract_corpus({str(src)!r}, CorpusPaths('r', root=__import__('pathlib').Path({str(root)!r})),"
        " workers=0, progress=False)\n"
    )
    return [sys.executable, "-c", code]


def test_killed_run_resumes_to_the_same_result(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_video(src / f"clip{i}.mp4", face_frames(30, 128 + 16 * i), fps=25)
    killed_root, clean_root = tmp_path / "killed", tmp_path / "clean"
    manifest = killed_root / "interim" / "r" / "extracted" / "manifest.csv"
    proc = subprocess.Popen(
        _extract_script(src, killed_root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if manifest.exists() and len(pd.read_csv(manifest)) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "extraction finished before it could be killed"
        proc.kill()
    finally:
        proc.wait()
    done_before = pd.read_csv(manifest)
    assert 1 <= len(done_before) < 3
    first = killed_root / "interim" / "r" / "extracted" / f"{done_before['clip_id'][0]}.npz"
    first_mtime = first.stat().st_mtime_ns

    resumed = extract_corpus(src, CorpusPaths("r", root=killed_root), workers=0, progress=False)
    clean = extract_corpus(src, CorpusPaths("r", root=clean_root), workers=0, progress=False)
    assert first.stat().st_mtime_ns == first_mtime  # finished clip not redone
    cols = [c for c in clean.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(resumed[cols], clean[cols])
    for clip_id in clean["clip_id"]:
        a = load_extracted(CorpusPaths("r", root=killed_root), clip_id)
        b = load_extracted(CorpusPaths("r", root=clean_root), clip_id)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{clip_id}:{key}")
    # the resumed run removed the killed run's temp files (the lock file stays)
    leftovers = [p for p in (killed_root / "interim").rglob("*") if p.name.startswith(".")]
    assert [p.name for p in leftovers] == [".extract.lock"]


def test_cli_extracts_into_the_named_corpus(tmp_path, monkeypatch):
    from wav2kp.cli import main

    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "a b.mp4", face_frames(5, 96), fps=10)
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    assert main(["extract", str(src), "--corpus", "cli", "--workers", "0"]) == 0
    table = load_manifest("cli")
    assert table["clip_id"].tolist() == ["a_b"] and table["status"].tolist() == ["ok"]
    assert (tmp_path / "data" / "interim" / "cli" / "extracted" / "a_b.npz").is_file()
    assert os.environ["WAV2KP_DATA"] == str(tmp_path / "data")


@pytest.mark.realclips
def test_real_clips_extract_with_faces_and_stream_timing(realclips, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("retalking_face_1.mp4", "pcavs_vox2_Pose_Source_731200067.mp4"):
        os.symlink(realclips / name, src / name)
    paths = CorpusPaths("real", root=tmp_path / "data")
    table = extract_corpus(src, paths, workers=0, progress=False).set_index("clip_id")
    assert (table["status"] == "ok").all() and (table["detection_rate"] > 0.95).all()
    vfr = table.loc["retalking_face_1"]
    assert (vfr["frames"], vfr["width"], vfr["audio_sample_rate"], vfr["audio_channels"]) == (
        135,
        700,
        44100,
        2,
    )
    assert vfr["fps"] == pytest.approx(22.1, abs=0.3)
    data = load_extracted(paths, "pcavs_vox2_Pose_Source_731200067")
    assert data["width"] == 224 and (data["lm68"][data["frame_status"] == 0] <= 224).all()
    # the head turns in this clip: the pose sees several degrees of yaw
    from wav2kp.extraction.pose import rotation_to_euler

    yaw = rotation_to_euler(data["pose_rotation"])[:, 1]
    assert np.nanmax(yaw) - np.nanmin(yaw) > 5


def test_clip_ids_stay_unique_when_names_fold_alike(tmp_path):
    from wav2kp.extraction.extract import plan_jobs

    src = tmp_path / "in"
    (src / "other").mkdir(parents=True)
    for name in ("a b.mp4", "a_b.mp4", "other/a b.mp4", "Ação.MOV"):
        (src / name).write_bytes(name.encode())
    jobs = plan_jobs(src, CorpusPaths("u", root=tmp_path), ExtractParams(), previous=None)
    ids = [j.clip_id for j in jobs]
    assert len(set(ids)) == 4 and "Acao" in ids and "a_b" in ids
    assert len({j.task_key for j in jobs}) == 4
    # the same plan again gives the same ids
    again = plan_jobs(src, CorpusPaths("u", root=tmp_path), ExtractParams(), previous=None)
    assert [(j.clip_id, j.task_key) for j in again] == [(j.clip_id, j.task_key) for j in jobs]


def test_single_frame_video(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "one.mp4", face_frames(1, 128), fps=25)
    paths = CorpusPaths("one", root=tmp_path / "data")
    table = extract_corpus(src, paths, workers=0, progress=False)
    assert table["status"].tolist() == ["ok"] and table["frames"].tolist() == [1]
    data = load_extracted(paths, "one")
    assert data["lm68"].shape == (1, 68, 2) and np.isfinite(data["pose_scale"]).all()


def test_frames_asked_for_later_are_added_without_extracting_again(tmp_path):
    """`wav2kp extract` without frames, then notebook 01 (or predict) with keep_frames:
    only the JPEGs are written; the finished extraction is not redone."""
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "a.mp4", face_frames(7, 96), fps=10)
    write_video(src / "b.mp4", face_frames(5, 112), fps=10)
    paths = CorpusPaths("f", root=tmp_path / "data")
    first = extract_corpus(src, paths, workers=0, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in paths.interim.rglob("*.*") if p.is_file()}
    assert not paths.frames.exists()

    second = extract_corpus(src, paths, workers=0, keep_frames=True, progress=False)
    assert second.attrs["extracted_now"] == []  # nothing extracted again ...
    after = {p.name: p.stat().st_mtime_ns for p in paths.interim.rglob("*.*") if p.is_file()}
    assert {k: after[k] for k in stamps if k != "manifest.csv"} == {
        k: v for k, v in stamps.items() if k != "manifest.csv"
    }
    pd.testing.assert_frame_equal(first, second)
    for clip_id, n in (("a", 7), ("b", 5)):  # ... only the frames added, one per npz row
        jpgs = sorted((paths.frames / clip_id).glob("*.jpg"))
        assert len(jpgs) == n == len(load_extracted(paths, clip_id)["times"])
    # the same frames as an extraction that wrote them from the start
    direct = CorpusPaths("f", root=tmp_path / "direct")
    extract_corpus(src, direct, workers=0, keep_frames=True, progress=False)
    for jpg in sorted((paths.frames / "a").glob("*.jpg")):
        assert jpg.read_bytes() == (direct.frames / "a" / jpg.name).read_bytes()


def _iod_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per frame: mean distance of the 68 points over the inter-ocular distance of ``a``."""
    from wav2kp.extraction.landmarks import inter_ocular

    return np.linalg.norm(a - b, axis=-1).mean(axis=-1) / inter_ocular(a)


def test_reduced_resolution_decoding_gives_source_pixels_and_full_size_frames(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "a.mp4", face_frames(12, 256), fps=25)
    full_paths = CorpusPaths("full", root=tmp_path / "data")
    small_paths = CorpusPaths("small", root=tmp_path / "data")
    full = extract_corpus(
        src, full_paths, workers=0, params=ExtractParams(decode_max_side=None), progress=False
    )
    small = extract_corpus(
        src,
        small_paths,
        workers=0,
        keep_frames=True,
        params=ExtractParams(decode_max_side=160),
        progress=False,
    )
    assert full["fingerprint"][0] != small["fingerprint"][0]  # a parameter of the result
    a, b = load_extracted(full_paths, "a"), load_extracted(small_paths, "a")
    assert (b["width"], b["height"]) == (256, 256) and (small["width"][0], small["height"][0]) == (
        256,
        256,
    )
    # points in the source's pixels, close to full-resolution decoding (160 px is far
    # below the default 1280: a loose bound; the real 1080p clip is held to 0.005 below)
    assert _iod_errors(a["lm68"], b["lm68"]).max() < 0.02
    import cv2

    jpgs = sorted((small_paths.frames / "a").glob("*.jpg"))
    assert len(jpgs) == 12 and cv2.imread(str(jpgs[0])).shape == (256, 256, 3)


@pytest.mark.realclips
def test_reduced_resolution_keypoints_match_full_resolution_on_real_clips(realclips, tmp_path):
    """The default decode size (long side 1280) against full resolution on every real clip
    larger than that (the 1080p one): within 0.005 inter-ocular distances on every frame."""
    from wav2kp.media.probe import probe

    default = ExtractParams()
    large = [
        p for p in sorted(realclips.glob("*.mp*"))
        if max(probe(p).width or 0, probe(p).height or 0) > default.decode_max_side
    ]  # fmt: skip
    assert large, "no real clip larger than the decode size"
    src = tmp_path / "in"
    src.mkdir()
    for path in large:
        os.symlink(path, src / path.name)
    reduced = CorpusPaths("reduced", root=tmp_path / "data")
    full = CorpusPaths("full", root=tmp_path / "data")
    extract_corpus(src, reduced, workers=0, params=default, progress=False)
    extract_corpus(src, full, workers=0, params=ExtractParams(decode_max_side=None), progress=False)
    for path in large:
        a, b = load_extracted(full, path.stem), load_extracted(reduced, path.stem)
        both = (a["frame_status"] == DETECTED) & (b["frame_status"] == DETECTED)
        assert both.mean() > 0.95
        errors = _iod_errors(a["lm68"][both], b["lm68"][both])
        assert errors.max() <= 0.005, f"{path.name}: {errors.max():.4f} IOD"
        assert (b["width"], b["height"]) == (a["width"], a["height"])


def test_source_video_found_under_the_recorded_input_folder_from_anywhere(tmp_path, monkeypatch):
    """A corpus extracted from a folder outside data/ (``wav2kp extract ../shared/grid-s1``):
    its clips' videos are found for the side-by-side panels and predict's reference frames
    through the input folder the extraction recorded, whatever the current folder; an
    audio-only file of the same name is not taken for the video."""
    from wav2kp.extraction.extract import record_input_dir, source_video
    from wav2kp.predict.references import _raw_video_for

    videos = tmp_path / "elsewhere" / "videos"
    videos.mkdir(parents=True)
    video = write_video(videos / "s1.mpg", np.zeros((5, 32, 32, 3), np.uint8), audio=False)
    paths = CorpusPaths("ext", root=tmp_path / "data")
    paths.extracted.mkdir(parents=True)
    pd.DataFrame([{"clip_id": "s1", "file": "s1.mpg", "status": "ok"}]).to_csv(
        paths.extracted / "manifest.csv", index=False
    )
    monkeypatch.chdir(tmp_path)
    assert source_video(paths, "s1") is None  # nothing says where s1.mpg lives
    record_input_dir(paths, Path("elsewhere/videos"))  # relative: recorded absolute
    monkeypatch.chdir(paths.extracted)
    assert source_video(paths, "s1") == video.resolve()
    assert _raw_video_for(paths.extracted / "s1.npz") == video.resolve()
    # without a recorded folder, raw/<clip_id>.* is the fallback, judged by its streams
    (paths.extracted / "input.json").unlink()
    paths.raw.mkdir(parents=True)
    write_audio_only_mp4(paths.raw / "s1.mp4")
    assert source_video(paths, "s1") is None
    (paths.raw / "s1.mkv").symlink_to(video)
    assert source_video(paths, "s1") == paths.raw / "s1.mkv"
