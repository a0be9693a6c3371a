"""Shared fixtures: the optional real clips beside the checkout; the whole 01-06 chain
run once on the tiny demo corpus."""

from __future__ import annotations

import pytest
from wav2kp.paths import shared_realclips
from wav2kp.report.report import run_report

# The chain's parameters: the tiny demo corpus and a few epochs, as CI can afford.
CI_PARAMETERS = {
    "corpus": "demo-tiny",
    "seed": 0,
    "workers": 2,
    "seeds": [0],
    "epochs": 4,
    "original_epochs": 1,
    "ablation": False,
    "video_clips": 1,
    "face_clips": 1,
    "trace_clips": 1,
}


@pytest.fixture(scope="session")
def realclips():
    """Folder of real talking-head clips (../shared/realclips); tests skip without it."""
    folder = shared_realclips()
    if not folder.is_dir() or not any(folder.glob("*.mp4")):
        pytest.skip(f"real clips not available at {folder}")
    return folder


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chain_run(tmp_path_factory: pytest.TempPathFactory):
    """`make report`'s run of notebooks 01-06 on demo-tiny, in a temp data and reports
    folder: (base folder, RunRecord); the data is under ``base / "data"``."""
    base = tmp_path_factory.mktemp("chain")
    with pytest.MonkeyPatch.context() as mp:
        # kernels inherit the environment: all data goes to the temp folder
        mp.setenv("WAV2KP_DATA", str(base / "data"))
        record = run_report(
            "ci-chain", dict(CI_PARAMETERS), runs_dir=base / "reports" / "runs", progress=False
        )
    return base, record
