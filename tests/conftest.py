"""Shared fixtures: the optional real clips beside the checkout."""

from __future__ import annotations

import pytest
from wav2kp.paths import shared_realclips


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
