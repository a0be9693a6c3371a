"""A quiet console: library chatter is dropped from `wav2kp report`, real warnings show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from wav2kp.quiet import StderrFilter, is_noise

# Lines as MediaPipe/TFLite, ipykernel and papermill print them (captured from a report).
NOISE_LINES = [
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "W0000 00:00:1796030644.587648   16226 inference_feedback_manager.cc:114] Feedback manager "
    "requires a model with a single signature inference. Disabling support for feedback tensors.",
    "W0000 00:00:1796030644.694256   16226 landmark_projection_calculator.cc:186] Using "
    "NORM_RECT without IMAGE_DIMENSIONS is only supported for the square ROI. Provide "
    "IMAGE_DIMENSIONS or use PROJECTION_MATRIX.",
    "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication "
    "(including code and outputs) is sent in plain text and is susceptible to eavesdropping.",
    "Passed unknown parameter: epochs",
    "I0000 00:00:1796030644.100000   16226 gl_context.cc:357] GL version: 3.2 (OpenGL ES 3.2)",
    # two processes writing into one pipe: the glog line cut into the TFLite one
    "INFO: W0000 00:00:1796030697.435970   19288 inference_feedback_manager.cc:114] Feedback",
]
REAL_LINES = [
    "UserWarning: the test split has only 228 frames; too few to judge",
    "WARNING: clip a.mp4 has no audio stream",
    "E0000 00:00:1796030644.1 1 face_landmarker_graph.cc:10] could not load the model file",
    "W0000 00:00:1796030644.2 1 some_calculator.cc:7] a MediaPipe warning not known as chatter",
    "Traceback (most recent call last):",
    "run 20261130-092346-demo: ok in 479 s",
]
MARKER = "real warning: the disk is almost full"
HEADER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---
"""


def test_noise_is_recognised_and_real_lines_are_not():
    assert all(is_noise(line) for line in NOISE_LINES)
    assert not any(is_noise(line) for line in REAL_LINES)


def test_filter_forwards_real_lines_of_a_child_process(capfd):
    script = "import os\n" + "".join(
        f"os.write(2, {(line + chr(10)).encode()!r})\n" for line in NOISE_LINES + REAL_LINES
    )
    with StderrFilter() as quiet:
        subprocess.run([sys.executable, "-c", script], stderr=quiet.fd, check=True)
    err = capfd.readouterr().err
    assert err.splitlines() == REAL_LINES
    assert quiet.dropped == len(NOISE_LINES)


def test_report_console_is_free_of_noise(tmp_path: Path):
    """A small `wav2kp report` whose notebook runs MediaPipe's face mesh in the kernel and in
    a worker process, and receives a parameter only another notebook declares."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    worker = "import os\n" + "".join(
        f"os.write(2, {(line + chr(10)).encode()!r})\n" for line in NOISE_LINES[:4]
    )
    (notebooks / "01_facemesh.py").write_text(
        HEADER
        + textwrap.dedent(f"""
        # %% tags=["parameters"]
        output_dir = "unset"

        # %%
        import os, subprocess, sys
        import numpy as np
        from wav2kp.extraction.facemesh import FaceMeshTracker

        with FaceMeshTracker() as tracker:
            tracker.process(np.zeros((96, 96, 3), np.uint8))
        # an extraction worker: a process the kernel starts, printing MediaPipe's lines
        subprocess.run([sys.executable, "-c", {worker!r}], check=True)
        os.write(2, b"{MARKER}\\n")
        """)
    )
    (notebooks / "02_declares_extra.py").write_text(
        HEADER
        + textwrap.dedent("""
        # %% tags=["parameters"]
        output_dir = "unset"
        extra = 0

        # %%
        print("extra", extra)
        """)
    )
    runs = tmp_path / "runs"
    env = {**os.environ, "WAV2KP_DATA": str(tmp_path / "data")}
    command = [
        sys.executable, "-m", "wav2kp.cli", "report", "--name", "quiet",
        "--notebooks-dir", str(notebooks), "--runs-dir", str(runs),
        "-p", "extra=1", "--no-browser-check",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    for noise in (
        "inference_feedback_manager", "XNNPACK delegate", "absl::InitializeLog",
        "running over TCP without encryption", "Passed unknown parameter", "NORM_RECT",
    ):  # fmt: skip
        assert noise not in console, f"{noise!r} reached the console:\n{console}"
    assert MARKER in console, "a real warning was swallowed"
    assert "ok in" in console and "diary:" in console
    # the worker did print the chatter (check=True): it was kept off the console
    (run_dir,) = runs.iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "ok"


GLOG_MARKERS = (
    "inference_feedback_manager",
    "XNNPACK delegate",
    "absl::InitializeLog",
    "NORM_RECT",
)


def _assert_no_glog(console: str) -> None:
    for noise in GLOG_MARKERS:
        assert noise not in console, f"{noise!r} reached the console:\n{console}"


def test_demo_portraits_in_worker_processes_print_no_glog(tmp_path: Path):
    """The demo corpus frames its portraits with MediaPipe in each worker process (spawned,
    as ``build_corpus`` does): none of MediaPipe's start-up lines reach the console."""
    script = textwrap.dedent("""
        import multiprocessing, sys
        from wav2kp.demo.face import portrait

        def frame(speaker):
            return portrait(speaker).iod

        if __name__ == "__main__":
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                print(pool.map(frame, ["astronaut", "hopper"]))
            sys.stderr.write("done\\n")
    """)
    (tmp_path / "portraits.py").write_text(script)  # a file: spawned workers import it
    done = subprocess.run(
        [sys.executable, str(tmp_path / "portraits.py")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    _assert_no_glog(console)
    assert done.stderr.strip() == "done", console  # and Python's own stderr still shows


def test_bench_routes_every_process_through_the_filter(tmp_path: Path):
    """`wav2kp bench` runs under ``quiet_stderr``: a benchmark whose worker processes
    print MediaPipe's lines straight to fd 2 shows only the real ones."""
    (tmp_path / "noisy_bench.py").write_text(
        textwrap.dedent(f"""
        import multiprocessing, os

        def worker(_):
            for line in {NOISE_LINES[:4] + [MARKER]!r}:
                os.write(2, (line + "\\n").encode())

        def run(quick=False):
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                pool.map(worker, range(2))
            worker(0)  # and this process itself
            return {{}}
        """)
    )
    script = (
        "import sys; from wav2kp import benchmarks, cli\n"
        "benchmarks.BENCHMARKS['noisy'] = 'noisy_bench'\n"
        "sys.exit(cli.main(['bench', 'noisy']))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    _assert_no_glog(console)
    assert done.stderr.count(MARKER) == 3, console  # real lines from all three processes
    assert "== noisy done in" in done.stdout
