"""Faults and awkward input for `wav2kp extract` (issue 13's matrix, extraction rows).

Each case ends in one line that names the file or option and says what to do, a
non-zero exit where the request cannot be done, and nothing half-written; the table of
cases and their lines is in docs/faults.md.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import psutil
import pytest
import skimage.data
from test_extract_videos import FFMPEG, face_frames, write_video
from wav2kp.cli import main
from wav2kp.extraction.extract import (
    TIMING_COLUMNS,
    CorpusBusy,
    corpus_lock,
    extract_corpus,
    load_extracted,
    load_manifest,
)
from wav2kp.extraction.gaps import MISSING
from wav2kp.paths import CorpusPaths

WAV2KP = [sys.executable, "-m", "wav2kp.cli"]
CHATTER = ("inference_feedback_manager", "XNNPACK delegate", "absl::InitializeLog")


def error_lines(text: str) -> list[str]:
    """What a user reads on stderr, without progress bars."""
    lines = [part for line in text.splitlines() for part in line.split("\r")]
    return [line for line in lines if line.strip() and "clip/s]" not in line and "%|" not in line]


def leftovers(root: Path) -> list[Path]:
    """Temp files and partial folders under ``root`` (the corpus lock file excepted)."""
    return [p for p in root.rglob(".*") if p.name != ".extract.lock"]


def same_outputs(a: CorpusPaths, b: CorpusPaths) -> None:
    left, right = load_manifest(a), load_manifest(b)
    columns = [c for c in left.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(left[columns], right[columns])
    for clip_id in left.loc[left["status"] == "ok", "clip_id"]:
        x, y = load_extracted(a, clip_id), load_extracted(b, clip_id)
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{clip_id}: {key}")


@pytest.fixture(scope="module")
def six_clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("six")
    for i in range(6):
        write_video(folder / f"c{i}.mp4", face_frames(45, 160 + 16 * i), fps=25)
    return folder


@pytest.fixture(scope="module")
def six_clean(six_clips, tmp_path_factory) -> CorpusPaths:
    paths = CorpusPaths("f", root=tmp_path_factory.mktemp("clean"))
    extract_corpus(six_clips, paths, workers=0, progress=False)
    return paths


@pytest.fixture
def one_clip(tmp_path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "a.mp4", face_frames(8, 96), fps=10)
    return folder


# ---------------------------------------------------------------- names and folders


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "..", "/tmp/abs"])
def test_corpus_names_cannot_leave_the_data_folder(name, one_clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    assert main(["extract", str(one_clip), "--corpus", name, "--workers", "0"]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("wav2kp extract: --corpus")
    assert "is not a corpus name" in err[0] and "e.g. 'myvideos'" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]  # nothing written


def test_output_inside_the_input_folder_is_refused(one_clip, monkeypatch, capsys):
    monkeypatch.setenv("WAV2KP_DATA", str(one_clip / "data"))
    assert main(["extract", str(one_clip), "--corpus", "x", "--workers", "0"]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "is inside the input folder" in err[0] and "WAV2KP_DATA" in err[0]
    assert not (one_clip / "data").exists()


def test_input_inside_the_output_folder_is_refused(tmp_path, monkeypatch, capsys):
    videos = tmp_path / "data" / "interim" / "x" / "mine"
    videos.mkdir(parents=True)
    write_video(videos / "a.mp4", face_frames(4, 96), fps=10)
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    assert main(["extract", str(videos), "--corpus", "x", "--workers", "0"]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "input folder is inside the output folder" in err[0]
    assert sorted(p.name for p in videos.iterdir()) == ["a.mp4"]


def test_output_folder_that_cannot_be_created(one_clip, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "plain_file"
    blocker.write_text("a file where a folder should go")
    monkeypatch.setenv("WAV2KP_DATA", str(blocker / "data"))
    assert main(["extract", str(one_clip), "--corpus", "x", "--workers", "0"]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "cannot create the output folder" in err[0]
    assert str(blocker) in err[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(one_clip, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    (data / "interim" / "x" / "extracted").mkdir(parents=True)
    (data / "interim" / "x" / "audio").mkdir()
    for folder in (data / "interim" / "x" / "extracted", data / "interim" / "x" / "audio"):
        folder.chmod(0o555)
    monkeypatch.setenv("WAV2KP_DATA", str(data))
    try:
        assert main(["extract", str(one_clip), "--corpus", "x", "--workers", "0"]) == 1
    finally:
        for folder in (data / "interim" / "x" / "extracted", data / "interim" / "x" / "audio"):
            folder.chmod(0o755)
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "read-only" in err[0]


def test_missing_input_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    assert main(["extract", str(tmp_path / "nowhere"), "--corpus", "x"]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "nowhere: input folder not found" in err[0]


# ---------------------------------------------------------------- what is in the video

HEAD = skimage.data.astronaut()[40:300, 100:360]  # the portrait's head, 260x260


def two_faces_video(path: Path, frames: int = 16) -> Path:
    """620x340: a 230 px head on the left, a 190 px head on the right."""
    canvas = np.full((frames, 340, 620, 3), 200, np.uint8)
    canvas[:, 20:250, 10:240] = cv2.resize(HEAD, (230, 230))
    canvas[:, 20:210, 320:510] = cv2.resize(HEAD, (190, 190))
    return write_video(path, canvas, fps=25)


def test_two_faces_warned_with_counts_and_another_face_can_be_followed(
    tmp_path, monkeypatch, capsys
):
    videos = tmp_path / "videos"
    videos.mkdir()
    two_faces_video(videos / "pair.mp4")
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    assert main(["extract", str(videos), "--corpus", "p", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    warning = load_manifest("p").set_index("clip_id").loc["pair", "warning"]
    assert warning.startswith(str(videos / "pair.mp4"))
    assert "2 or more faces in view in 16 of 16 frames" in warning  # 2 are looked for
    assert "followed the largest face, number 1 of 2 from the left" in warning
    assert "--face N" in warning and f"warning: {warning}" in out
    left = load_extracted("p", "pair")
    assert (left["faces"] == 2).all() and np.nanmean(left["lm68"][..., 0]) < 310

    assert main(["extract", str(videos), "--corpus", "p2", "--face", "2", "--workers", "0"]) == 0
    right = load_extracted("p2", "pair")
    assert np.nanmean(right["lm68"][..., 0]) > 310
    warning = load_manifest("p2").set_index("clip_id").loc["pair", "warning"]
    assert "followed face 2, number 2 of 2 from the left" in warning
    assert main(["extract", str(videos), "--corpus", "p3", "--face", "left"]) == 2
    assert "--face 'left'" in capsys.readouterr().err


def test_face_that_leaves_the_frame_is_flagged_not_filled(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    away = set(range(12, 28))  # 16 frames = 0.64 s without a face
    write_video(videos / "away.mp4", face_frames(40, 160, away), fps=25)
    paths = CorpusPaths("g", root=tmp_path / "data")
    row = extract_corpus(videos, paths, workers=0, progress=False).iloc[0]
    data = load_extracted(paths, "away")
    assert (data["frame_status"][12:28] == MISSING).all()
    assert np.isnan(data["lm68"][12:28]).all() and np.isnan(data["lm478"][12:28]).all()
    assert (data["faces"][12:28] == 0).all()
    assert row["status"] == "ok" and row["missing_frames"] == 16
    assert "face lost for 0.64 s from 0.48 s (16 frames left missing, not filled)" in row["warning"]


def av_video(path: Path, video_seconds: float, audio_seconds: float) -> Path:
    """25 fps face video and a tone of another length (no -shortest)."""
    frames = face_frames(int(video_seconds * 25), 128)
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x128", "-r", "25", "-i", "pipe:0",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={audio_seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
         str(path)],
        input=frames.tobytes(), check=True, capture_output=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("video_s,audio_s,word", [(1.0, 3.0, "longer"), (2.0, 0.4, "shorter")])
def test_audio_and_video_of_different_lengths_are_said_and_timed(video_s, audio_s, word, tmp_path):
    import soundfile as sf

    videos = tmp_path / "videos"
    videos.mkdir()
    av_video(videos / "av.mp4", video_s, audio_s)
    paths = CorpusPaths("av", root=tmp_path / "data")
    row = extract_corpus(videos, paths, workers=0, progress=False).iloc[0]
    assert row["status"] == "ok"
    assert row["audio_duration"] == pytest.approx(audio_s, abs=0.1)
    difference = abs(audio_s - video_s)
    assert f"audio is {difference:.2f} s {word} than the video" in row["warning"]
    data = load_extracted(paths, "av")
    # frames keep their own times; the audio keeps its own length from the same time 0
    np.testing.assert_allclose(data["times"], np.arange(int(video_s * 25)) / 25, atol=1e-3)
    assert sf.info(paths.audio / "av.wav").duration == pytest.approx(audio_s, abs=0.1)


# ---------------------------------------------------------------- interruptions


def _cli_process(videos: Path, data: Path, workers: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WAV2KP_DATA": str(data)}
    return subprocess.Popen(
        [*WAV2KP, "extract", str(videos), "--corpus", "f", "--workers", str(workers), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_first_clip(proc: subprocess.Popen, manifest: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and len(pd.read_csv(manifest)) >= 1:
            return
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60) if proc.poll() is not None else ("", "")
    pytest.fail(f"no clip finished before the deadline (exit {proc.poll()}): {err[-2000:]}")


def test_kill_9_on_dask_then_rerun_equals_an_uninterrupted_run(six_clips, six_clean, tmp_path):
    data = tmp_path / "data"
    paths = CorpusPaths("f", root=data)
    proc = _cli_process(six_clips, data, 2)
    _wait_for_first_clip(proc, paths.extracted / "manifest.csv")
    family = psutil.Process(proc.pid).children(recursive=True)
    assert family, "no worker processes"
    proc.kill()
    proc.communicate(timeout=60)
    # the workers notice their parent is gone and stop: nothing keeps writing
    gone, alive = psutil.wait_procs(family, timeout=60)
    assert not alive, f"processes left running: {[p.pid for p in alive]}"
    finished = load_manifest(paths)
    assert 1 <= len(finished) < 6
    kept = {c: (paths.extracted / f"{c}.npz").stat().st_mtime_ns for c in finished["clip_id"]}

    again = extract_corpus(six_clips, paths, workers=0, progress=False)
    assert not set(kept) & set(again.attrs["extracted_now"])  # finished clips not redone
    assert {c: (paths.extracted / f"{c}.npz").stat().st_mtime_ns for c in kept} == kept
    assert leftovers(data) == []
    same_outputs(six_clean, paths)


@pytest.mark.parametrize("workers", [0, 2])
def test_ctrl_c_leaves_no_partial_file_and_says_how_to_continue(
    workers, six_clips, six_clean, tmp_path
):
    data = tmp_path / "data"
    paths = CorpusPaths("f", root=data)
    proc = _cli_process(six_clips, data, workers)
    _wait_for_first_clip(proc, paths.extracted / "manifest.csv")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("wav2kp extract: interrupted; ")
    assert "finished clip(s) are listed in" in lines[0]
    assert "run the same command again to continue" in lines[0]
    assert leftovers(data) == []
    finished = load_manifest(paths)
    assert (finished["status"] == "ok").all() and 1 <= len(finished) < 6
    extract_corpus(six_clips, paths, workers=0, progress=False)
    same_outputs(six_clean, paths)


def test_a_second_extraction_of_the_same_corpus_refuses(
    six_clips, six_clean, tmp_path, monkeypatch, capsys
):
    data = tmp_path / "data"
    paths = CorpusPaths("f", root=data)
    first = _cli_process(six_clips, data, 0)
    owner = paths.interim / ".extract.lock.owner"
    deadline = time.time() + 120
    while not owner.exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.02)
    monkeypatch.setenv("WAV2KP_DATA", str(data))
    assert main(["extract", str(six_clips), "--corpus", "f", "--workers", "0"]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "another extraction is writing this corpus" in err[0]
    assert f"pid {first.pid} on " in err[0] and "wait for it to finish" in err[0]
    _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err[-2000:]
    same_outputs(six_clean, paths)  # the refused run wrote nothing into the first's files


def test_lock_is_released_when_its_holder_is_done(tmp_path):
    paths = CorpusPaths("l", root=tmp_path)
    with corpus_lock(paths), pytest.raises(CorpusBusy, match="another extraction"):
        with corpus_lock(paths):
            pass
    with corpus_lock(paths):  # free again
        assert (paths.interim / ".extract.lock.owner").is_file()
    assert not (paths.interim / ".extract.lock.owner").exists()


# ---------------------------------------------------------------- resources


def test_disk_full_stops_with_one_line_keeps_finished_clips_and_rerun_completes(
    six_clips, six_clean, tmp_path, monkeypatch, capsys
):
    import wav2kp.extraction.extract_clip as clip_module

    original, calls = clip_module.write_npz, []

    def fill_up(path, **arrays):
        calls.append(path)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, **arrays)

    monkeypatch.setattr(clip_module, "write_npz", fill_up)
    data = tmp_path / "data"
    monkeypatch.setenv("WAV2KP_DATA", str(data))
    assert main(["extract", str(six_clips), "--corpus", "f", "--workers", "0"]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1, err
    assert err[0].startswith("wav2kp extract: disk full while writing ")
    assert "No space left on device" in err[0]
    assert "2 finished clip(s) are listed in" in err[0] and "free some space" in err[0]
    paths = CorpusPaths("f", root=data)
    assert len(load_manifest(paths)) == 2
    assert leftovers(data) == []
    # the clip that hit the full disk left none of its files
    stopped = Path(calls[-1]).stem
    assert not list(paths.interim.rglob(f"{stopped}.*"))

    monkeypatch.setattr(clip_module, "write_npz", original)
    assert main(["extract", str(six_clips), "--corpus", "f", "--workers", "0"]) == 0
    same_outputs(six_clean, paths)


# ---------------------------------------------------------------- a quiet console


def test_extract_console_shows_progress_and_results_not_mediapipe_chatter(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(2):
        write_video(videos / f"q{i}.mp4", face_frames(10, 128), fps=25)
    env = {**os.environ, "WAV2KP_DATA": str(tmp_path / "data")}
    env.pop("WAV2KP_MEDIAPIPE_LOGS", None)
    done = subprocess.run(
        [*WAV2KP, "extract", str(videos), "--corpus", "q", "--workers", "1"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    assert "extracted 2 clip(s), 0 unchanged and skipped; 2 ok in the manifest" in done.stdout
    assert "Dask: 1 worker(s)" in done.stdout
    for chatter in CHATTER:
        assert chatter not in text
    assert error_lines(done.stderr) == []  # progress bars only


def test_real_messages_on_stderr_still_show_while_chatter_is_dropped(capfd):
    from wav2kp.extraction.facemesh import quiet_mediapipe

    with quiet_mediapipe():
        os.write(2, b"W0000 00:00:1.0 1 inference_feedback_manager.cc:114] Feedback manager\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"E0000 00:00:1.0 1 calculator_graph.cc:1] a real MediaPipe error\n")
        print("UserWarning: a real Python warning", file=sys.stderr, flush=True)
    err = capfd.readouterr().err
    assert "a real MediaPipe error" in err and "a real Python warning" in err
    assert "inference_feedback_manager" not in err and "XNNPACK" not in err
