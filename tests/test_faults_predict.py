"""Fault and bad-input matrix of ``wav2kp predict`` (issue 13): one row per case.

Every row runs the real command line and asserts: a non-zero exit, exactly one line on
stderr (``error: ...``, no traceback) naming the file or option, saying what to do, and
no output left behind (no output folder, no staging folder, foreign files untouched).
The lines the user sees are listed in ``docs/faults.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from wav2kp.benchmarks.predict import speech_sample, tiny_checkpoint
from wav2kp.cli import main
from wav2kp.media.encode import write_video


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Inputs shared by the rows: a real checkpoint and broken variants, speech, videos."""
    root = tmp_path_factory.mktemp("kit")
    checkpoint = tiny_checkpoint(root / "model", epochs=1, seconds=2.0)
    payload = torch.load(checkpoint, weights_only=True)
    old = dict(payload, format="wav2kp-checkpoint-0")
    torch.save(old, root / "old.pt")
    no_norm = dict(payload, context={k: v for k, v in payload["context"].items() if k != "normalizer"})  # fmt: skip
    torch.save(no_norm, root / "no_normaliser.pt")
    (root / "README.md").write_text("# not a checkpoint\n")
    speech = root / "speech.wav"
    sf.write(speech, speech_sample(2.0, seed=3), 16000)
    sf.write(root / "silence.wav", np.zeros(32000, np.float32), 16000)
    t = np.arange(32000) / 16000
    sf.write(root / "clipped.wav", np.clip(3 * np.sin(2 * np.pi * 150 * t), -1, 1).astype(np.float32), 16000)  # fmt: skip
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (128, 128, 3), dtype=np.uint8) for _ in range(40)]
    write_video(root / "no_face.mp4", noise, fps=25)  # no face, no audio track
    write_video(root / "short.mp4", noise[:10], fps=25)  # 0.4 s
    import cv2

    cv2.imwrite(str(root / "portrait.png"), noise[0])
    return root


@pytest.fixture(autouse=True)
def data_root(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path_factory.getbasetemp() / "faults-data"))


# (case, extra arguments, speech file, what the one line must contain)
ROWS = [
    ("output folder under a regular file", ["--out", "{tmp}/afile/out"], "speech.wav",
     ["--out", "afile is a file", "choose a folder"]),
    ("output folder is a file", ["--out", "{tmp}/afile"], "speech.wav",
     ["--out", "is a file, not a folder"]),
    ("output folder read-only", ["--out", "{tmp}/readonly/out"], "speech.wav",
     ["--out", "read-only", "writable folder"]),
    ("output folder holds the input", ["--out", "{kit}"], "speech.wav",
     ["--out", "holds the input", "speech.wav", "contains no input"]),
    ("output folder holds files from elsewhere", ["--out", "{tmp}/theirs"], "speech.wav",
     ["--out", "did not write", "mine.txt", "new or empty folder"]),
    ("reference is audio only", ["--reference", "{kit}/speech.wav"], "speech.wav",
     ["--reference", "speech.wav", "no video stream", "pass a video"]),
    ("reference is an image", ["--reference", "{kit}/portrait.png"], "speech.wav",
     ["--reference", "portrait.png", "an image, not a video"]),
    ("reference video without a face", ["--reference", "{kit}/no_face.mp4"], "speech.wav",
     ["--reference", "no_face.mp4", "unusable as a reference", "face is visible"]),
    ("reference shorter than one second", ["--reference", "{kit}/short.mp4"], "speech.wav",
     ["--reference", "short.mp4", "at least 1 s"]),
    ("reference missing", ["--reference", "{kit}/nowhere.mp4"], "speech.wav",
     ["--reference", "nowhere.mp4", "not found"]),
    ("speech all silence", [], "silence.wav", ["silence.wav", "silent", "speech in it"]),
    ("speech clipped", [], "clipped.wav",
     ["clipped.wav", "clipped (78.1 % of samples", "--allow-clipped"]),
    ("speech file missing", [], "absent.wav", ["absent.wav", "no such file"]),
    ("checkpoint is not one", ["--checkpoint", "{kit}/README.md"], "speech.wav",
     ["README.md", "not a wav2kp checkpoint", "wav2kp train"]),
    ("checkpoint from an incompatible version", ["--checkpoint", "{kit}/old.pt"], "speech.wav",
     ["old.pt", "incompatible wav2kp version", "retrain"]),
    ("checkpoint missing its normaliser", ["--checkpoint", "{kit}/no_normaliser.pt"],
     "speech.wav", ["no_normaliser.pt", "no normaliser", "retrain"]),
    ("checkpoint not found", ["--checkpoint", "{kit}/gone.pt"], "speech.wav",
     ["gone.pt", "checkpoint not found"]),
    ("unknown format", ["--format", "vid2vid,gif"], "speech.wav", ["--format", "'gif'"]),
    ("preview length not positive", ["--preview-seconds", "0"], "speech.wav",
     ["--preview-seconds", "must be positive"]),
    ("unknown speaker", ["--speaker", "zed"], "speech.wav",
     ["--speaker zed", "not a speaker of this checkpoint", "synth"]),
    ("mediapipe export without a mesh", ["--format", "mediapipe"], "speech.wav",
     ["--format mediapipe", "no MediaPipe mesh", "--reference VIDEO"]),
]  # fmt: skip


def _args(row_args, kit: Path, tmp: Path) -> list[str]:
    return [a.format(kit=kit, tmp=tmp) for a in row_args]


@pytest.mark.parametrize(("case", "row_args", "speech", "needles"), ROWS, ids=[r[0] for r in ROWS])
def test_fault_row(case, row_args, speech, needles, kit, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("a file where a folder is expected")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "mine.txt").write_text("keep me")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: make the check see the folder as read-only
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == readonly else real_access(p, mode, **kw))  # fmt: skip
    args = _args(row_args, kit, tmp_path)
    if "--checkpoint" not in args:
        args += ["--checkpoint", str(kit / "model" / "best.pt")]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["predict", str(kit / speech), *args, "--no-preview"])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code != 0, case
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    # nothing left behind: no output, no staging folder, foreign files untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (theirs / "mine.txt").read_text() == "keep me" and len(list(theirs.iterdir())) == 1
    assert not list(kit.glob(".*partial*"))
    readonly.chmod(0o755)


def test_output_folder_of_an_earlier_run_is_replaced_and_says_so(kit, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--checkpoint", str(kit / "model" / "best.pt"), "--out", str(out), "--no-preview"]
    assert main(["predict", str(kit / "speech.wav"), *base]) == 0
    first = (out / "predict.json").read_text()
    other = tmp_path / "other.wav"
    sf.write(other, speech_sample(1.0, seed=8), 16000)
    assert main(["predict", str(other), *base, "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert (out / "predict.json").read_text() != first
    assert sorted(p.name for p in out.iterdir()) == ["keypoints.csv", "predict.json"]
    assert "replaced the earlier prediction" in captured.out


@pytest.mark.parametrize("fault", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_interrupted_run_leaves_the_earlier_output_whole(kit, tmp_path, monkeypatch, fault):
    """A failure while writing (the disk fills, Ctrl-C) leaves the earlier run's folder
    exactly as it was, no staging folder, and no folder it had to create."""
    from wav2kp.handoff import exports
    from wav2kp.predict import predict

    out = tmp_path / "out"
    predict.predict_file(kit / "speech.wav", kit / "model" / "best.pt", out, preview=False,
                         progress=False)  # fmt: skip
    snapshot = {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")}

    def failing(*args, **kwargs):
        raise fault

    monkeypatch.setattr(exports, "write_keypoints_csv", failing)
    other = tmp_path / "other.wav"
    sf.write(other, speech_sample(1.0, seed=8), 16000)
    if isinstance(fault, OSError):
        results = predict.predict_files([other], kit / "model" / "best.pt", out, preview=False,
                                        progress=False)  # fmt: skip
        assert "No space left on device" in results[0]["error"]
        assert "other.wav" in results[0]["error"]
    else:
        with pytest.raises(KeyboardInterrupt):
            predict.predict_file(other, kit / "model" / "best.pt", out, preview=False,
                                 progress=False)  # fmt: skip
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")} == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.wav", "out"]
    with pytest.raises(type(fault)):  # a new nested folder: nothing of it stays
        predict.predict_file(other, kit / "model" / "best.pt", tmp_path / "new" / "deep" / "out",
                             preview=False, progress=False)  # fmt: skip
    assert not (tmp_path / "new").exists()


def test_kill_9_then_the_same_command_again(kit, tmp_path):
    """``kill -9`` mid-write leaves only a hidden staging folder beside the output (no
    output); the same command again removes it and completes."""
    import signal
    import subprocess
    import sys
    import time

    speech = tmp_path / "long.wav"
    sf.write(speech, np.tile(speech_sample(5.0, seed=4), 4), 16000)  # 20 s
    out = tmp_path / "out"
    command = [sys.executable, "-m", "wav2kp.cli", "predict", str(speech), "--checkpoint",
               str(kit / "model" / "best.pt"), "--out", str(out), "--no-preview"]  # fmt: skip
    env = dict(os.environ)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    staged = []
    while time.monotonic() < deadline and proc.poll() is None:
        staged = [p for p in tmp_path.glob(".out.partial-*") if any(p.rglob("*.txt"))]
        if staged:
            break
        time.sleep(0.05)
    assert staged, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and staged[0].exists()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(".out.partial-*"))  # the killed run's leftovers went
    assert (out / "predict.json").is_file() and (out / "keypoints.csv").is_file()


def test_mildly_clipped_speech_is_predicted_with_a_warning(kit, tmp_path, capsys):
    samples = speech_sample(2.0, seed=3)
    samples = samples / np.abs(samples).max() * 0.9
    peaks = np.argsort(np.abs(samples))[-int(0.005 * len(samples)) :]  # 0.5 % at full scale
    samples[peaks] = np.sign(samples[peaks])
    path = tmp_path / "hot.wav"
    sf.write(path, samples.astype(np.float32), 16000)
    out = tmp_path / "out"
    code = main(["predict", str(path), "--checkpoint", str(kit / "model" / "best.pt"), "--out",
                 str(out), "--no-preview", "--format", "csv"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0 and (out / "keypoints.csv").is_file()
    assert "warning: " in captured.err and "hot.wav: 0.50 % of samples clipped" in captured.err
    (warning,) = json.loads((out / "predict.json").read_text())["warnings"]
    assert "hot.wav: 0.50 % of samples clipped" in warning


def _grid_sentence_clipped(share: float, target: Path) -> Path:
    """A real GRID recording (../shared/grid-s1) overdriven until ``share`` of its samples
    sit at full scale, written at its own rate and channels."""
    from wav2kp.benchmarks.clipping import clip_hard, clipping_gain
    from wav2kp.media.audio import load_audio
    from wav2kp.paths import shared_realclips

    source = shared_realclips().parent / "grid-s1" / "bbaf3s.mp4"
    if not source.is_file():
        pytest.skip(f"GRID corpus not available at {source.parent}")
    native, rate = load_audio(source, sample_rate=None, mono=False)
    sf.write(target, clip_hard(native, clipping_gain(native, share)), rate, subtype="FLOAT")
    return target


def test_real_recording_with_mild_clipping_is_predicted_with_a_warning(kit, tmp_path, capsys):
    """Issue 17: a GRID sentence at 4.1 % clipped was refused; the mouth still follows it."""
    speech = _grid_sentence_clipped(0.041, tmp_path / "bbaf3s_hot.wav")
    out = tmp_path / "out"
    code = main(["predict", str(speech), "--checkpoint", str(kit / "model" / "best.pt"), "--out",
                 str(out), "--no-preview", "--format", "npz"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads((out / "predict.json").read_text())
    assert record["clipped_share"] == pytest.approx(0.041, abs=0.001)
    (warning,) = record["warnings"]
    assert warning.startswith(f"{speech}: 4.10 % of samples clipped; predicted anyway")
    assert f"warning: {warning}" in captured.err.splitlines()


def test_speech_clipped_beyond_the_threshold_is_refused_and_the_batch_carries_on(
    kit, tmp_path, capsys
):
    from wav2kp.predict.predict import CLIPPED_REFUSE

    mild = _grid_sentence_clipped(0.02, tmp_path / "mild.wav")
    share = min(0.95, CLIPPED_REFUSE + 0.05)
    ruined = _grid_sentence_clipped(share, tmp_path / "ruined.wav")
    out = tmp_path / "out"
    code = main(["predict", str(mild), str(ruined), str(kit / "speech.wav"), "--checkpoint",
                 str(kit / "model" / "best.pt"), "--out", str(out), "--no-preview",
                 "--format", "npz"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {ruined}: clipped ({100 * share:.1f} % of samples at full scale; from "
        f"{100 * CLIPPED_REFUSE:g} % on the mouth no longer follows the speech); re-record "
        "or lower the gain, or pass --allow-clipped to predict anyway"
    ]
    assert "2 of 3 files done; 1 failed" in captured.out
    assert (out / "mild" / "keypoints.npz").is_file() and (
        out / "speech" / "keypoints.npz"
    ).is_file()
    assert not (out / "ruined").exists()
    assert "mild.wav: 2.00 % of samples clipped" in captured.err


@pytest.fixture
def deletions_confined(monkeypatch):
    """Every deletion must stay inside the given folder; one outside raises instead of
    running (so a regression cannot take the machine with it) and is recorded."""
    import pathlib
    import shutil

    confined: dict = {"root": None, "outside": []}
    real_rmtree, real_unlink = shutil.rmtree, pathlib.Path.unlink

    def check(path) -> None:
        root = confined["root"]
        absolute = Path(os.path.abspath(path))
        if root is not None and root != absolute and root not in absolute.parents:
            confined["outside"].append(str(path))
            raise PermissionError(f"test guard: deletion outside {root}: {path}")

    def rmtree(path, *args, **kwargs):
        check(path)
        return real_rmtree(path, *args, **kwargs)

    def unlink(self, *args, **kwargs):
        check(self)
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    return confined


FORGED_NAMES = ["..", "/", "a/../..", "../precious.txt", "{box}", "{box}/precious.txt",
                "keypoints.csv/../.."]  # fmt: skip


@pytest.mark.parametrize("forged", FORGED_NAMES)
def test_forged_summary_deletes_nothing_outside_out(kit, tmp_path, forged, deletions_confined, capsys):  # fmt: skip
    """A ``predict.json`` planted in ``--out`` naming paths outside it (issue 19: it made
    predict delete the parent folder) is refused with one line; nothing is deleted."""
    import json

    box = tmp_path / "box"
    out = box / "out"
    out.mkdir(parents=True)
    (box / "precious.txt").write_text("keep me")
    (out / "keypoints.csv").write_text("an earlier run's file")
    summary = {"files": {"csv": "keypoints.csv", "evil": forged.format(box=box)}}
    (out / "predict.json").write_text(json.dumps(summary))
    deletions_confined["root"] = out
    code = main(["predict", str(kit / "speech.wav"), "--checkpoint", str(kit / "model" / "best.pt"),
                 "--out", str(out), "--no-preview", "--format", "csv"])  # fmt: skip
    err = capsys.readouterr().err
    assert deletions_confined["outside"] == []
    assert code != 0 and "never writes" in err and "predict.json" in err, err
    assert (box / "precious.txt").read_text() == "keep me"
    assert (out / "keypoints.csv").read_text() == "an earlier run's file"  # untouched too


def test_symlinked_entries_are_unlinked_never_followed(kit, tmp_path, deletions_confined):
    """An owned name that is a symlink to a folder outside ``--out`` is replaced by
    removing the link; the folder it points to keeps every file."""
    import json

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "vid2vid_face").symlink_to(outside, target_is_directory=True)
    (out / "keypoints.csv").symlink_to(outside / "precious.txt")
    summary = {"files": {"vid2vid": "vid2vid_face", "csv": "keypoints.csv"}}
    (out / "predict.json").write_text(json.dumps(summary))
    deletions_confined["root"] = out
    code = main(["predict", str(kit / "speech.wav"), "--checkpoint", str(kit / "model" / "best.pt"),
                 "--out", str(out), "--no-preview", "--format", "csv"])  # fmt: skip
    assert code == 0 and deletions_confined["outside"] == []
    assert (outside / "precious.txt").read_text() == "keep me"
    assert not (out / "vid2vid_face").exists() and not (out / "keypoints.csv").is_symlink()


def test_symlinked_summary_is_not_taken_for_an_earlier_run(kit, tmp_path, capsys):
    import json

    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"files": {"csv": "keypoints.csv"}}))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keypoints.csv").write_text("not predict's")
    (out / "predict.json").symlink_to(elsewhere)
    code = main(["predict", str(kit / "speech.wav"), "--checkpoint", str(kit / "model" / "best.pt"),
                 "--out", str(out), "--no-preview", "--format", "csv"])  # fmt: skip
    assert code != 0 and "did not write" in capsys.readouterr().err
    assert (out / "keypoints.csv").read_text() == "not predict's"


def test_the_predict_bench_times_the_model_predict_picks(tmp_path, monkeypatch):
    """`wav2kp bench predict` must time what users run: predict's default model (GRID's
    when `make model-grid` made it), not a demo-only lookup that fell back to a tiny
    model while GRID's phonetic model was the default."""
    from wav2kp.benchmarks.predict import _default_checkpoint
    from wav2kp.predict.predict import resolve_checkpoint

    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path))
    assert _default_checkpoint() is None  # nothing trained: the bench trains a tiny model
    grid = tmp_path / "models" / "grid" / "default" / "seed-0"
    tiny_checkpoint(grid, epochs=1)
    assert _default_checkpoint() == resolve_checkpoint(None)
    assert _default_checkpoint().is_relative_to(tmp_path / "models" / "grid")
