"""Same extraction whatever runs it: in this process, 1 or 2 Dask workers, a worker
killed midway, a clip that kills its worker every time, and resume across engines."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import dask
import numpy as np
import pandas as pd
import pytest
from distributed.diagnostics.plugin import WorkerPlugin
from test_extract_videos import face_frames, write_video
from wav2kp.cluster import get_client
from wav2kp.extraction.extract import TIMING_COLUMNS, extract_corpus, load_extracted, load_manifest
from wav2kp.paths import CorpusPaths

# the crash plugin below must reach worker processes, which cannot import this file
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLIPS = {f"clip{i}": (24 + 6 * i, 112 + 16 * i) for i in range(6)}  # frames, size


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name, (frames, size) in CLIPS.items():
        write_video(folder / f"{name}.mp4", face_frames(frames, size), fps=25)
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    return folder


@pytest.fixture(scope="module")
def in_process(videos, tmp_path_factory) -> CorpusPaths:
    paths = CorpusPaths("e", root=tmp_path_factory.mktemp("serial"))
    extract_corpus(videos, paths, workers=0, progress=False)
    return paths


@pytest.fixture(scope="module")
def two_workers():
    # a clip whose worker dies twice is given up (Dask's default: 4 deaths)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        client = get_client(workers=2)
    with client:
        yield client


def assert_same_extraction(a: CorpusPaths, b: CorpusPaths) -> None:
    """Identical manifests (but for timings) and bit-identical arrays and audio."""
    left, right = load_manifest(a), load_manifest(b)
    columns = [c for c in left.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(left[columns], right[columns])
    for clip_id in left.loc[left["status"] != "error", "clip_id"]:
        x, y = load_extracted(a, clip_id), load_extracted(b, clip_id)
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{clip_id}: {key}")
        for wav in (f"{clip_id}.wav", f"{clip_id}.orig.wav"):
            assert (a.audio / wav).read_bytes() == (b.audio / wav).read_bytes()


def test_in_process_run_is_complete(in_process):
    table = load_manifest(in_process).set_index("clip_id")
    assert (table.loc[list(CLIPS), "status"] == "ok").all()
    assert table.loc["broken", "status"] == "error"
    assert "broken.mp4" in table.loc["broken", "error"]


def test_one_and_two_workers_give_the_in_process_results(videos, in_process, two_workers, tmp_path):
    one = CorpusPaths("e", root=tmp_path / "one")
    with get_client(workers=1) as client:
        extract_corpus(videos, one, client=client, progress=False)
    two = CorpusPaths("e", root=tmp_path / "two")
    table = extract_corpus(videos, two, client=two_workers, progress=False)
    assert sorted(table.attrs["extracted_now"]) == sorted([*CLIPS, "broken"])
    assert_same_extraction(in_process, one)
    assert_same_extraction(in_process, two)


def test_resume_skips_clips_finished_by_another_engine(videos, in_process, two_workers, tmp_path):
    paths = CorpusPaths("e", root=tmp_path / "mixed")
    first = extract_corpus(videos, paths, workers=0, limit=3, progress=False)
    done = first.loc[first["status"] == "ok", "clip_id"].tolist()
    stamps = {c: (paths.extracted / f"{c}.npz").stat().st_mtime_ns for c in done}
    rest = extract_corpus(videos, paths, client=two_workers, progress=False)
    assert not set(done) & set(rest.attrs["extracted_now"])
    assert {c: (paths.extracted / f"{c}.npz").stat().st_mtime_ns for c in done} == stamps
    # and back: nothing left to do in this process either
    again = extract_corpus(videos, paths, workers=0, progress=False)
    assert again.attrs["extracted_now"] == ["broken"]  # only the error is retried
    assert_same_extraction(in_process, paths)


def test_worker_killed_midway_every_clip_once_same_results(
    videos, in_process, two_workers, tmp_path
):
    paths = CorpusPaths("e", root=tmp_path / "killed")
    result: dict = {}
    run = threading.Thread(
        target=lambda: result.update(
            table=extract_corpus(videos, paths, client=two_workers, progress=False)
        )
    )
    run.start()
    victim = None
    deadline = time.time() + 300
    while run.is_alive() and time.time() < deadline:
        busy = [w for w, keys in two_workers.processing().items() if keys]
        if busy and (paths.extracted / "manifest.csv").exists():
            pid = two_workers.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            victim = busy[0]
            break
        time.sleep(0.05)
    run.join(timeout=600)
    assert victim is not None, "the batch finished before a worker could be killed"
    table = result["table"]
    assert sorted(table.attrs["extracted_now"]) == sorted([*CLIPS, "broken"])  # once each
    assert table["clip_id"].is_unique
    assert not [p for p in paths.interim.rglob(".*") if p.name != ".extract.lock"]
    assert_same_extraction(in_process, paths)


class CrashOn(WorkerPlugin):
    """Makes one clip kill its worker process every time it is extracted (as a decoder
    crash would); installed on every worker, restarted ones included."""

    def __init__(self, clip_id: str) -> None:
        self.clip_id = clip_id

    def setup(self, worker) -> None:
        import wav2kp.extraction.extract_clip as module

        original, clip_id = module._extract_clip, self.clip_id

        def crashing(job):
            if job.clip_id == clip_id:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(job)

        module._extract_clip = crashing


def test_clip_that_kills_its_worker_every_time_is_rejected(
    videos, in_process, two_workers, tmp_path
):
    paths = CorpusPaths("e", root=tmp_path / "crash")
    two_workers.register_plugin(CrashOn("clip2"), name="crash-clip2")
    try:
        table = extract_corpus(videos, paths, client=two_workers, progress=False)
    finally:
        two_workers.unregister_worker_plugin("crash-clip2")
        # restarted workers carry the patch: replace them with clean ones (generous
        # timeout: on a loaded 2-core machine two MediaPipe workers can take minutes)
        two_workers.restart(timeout=600)
    row = table.set_index("clip_id").loc["clip2"]
    assert row["status"] == "rejected"
    assert "clip2.mp4" in row["error"] and "died every time" in row["error"]
    assert "2 attempts" in row["error"]
    others = table[~table["clip_id"].isin(["clip2", "broken"])]
    assert (others["status"] == "ok").all() and len(others) == len(CLIPS) - 1
    # the next run tries the crashed clip again (now without the crash): it completes
    again = extract_corpus(videos, paths, client=two_workers, progress=False)
    assert sorted(again.attrs["extracted_now"]) == ["broken", "clip2"]
    assert_same_extraction(in_process, paths)
