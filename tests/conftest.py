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
