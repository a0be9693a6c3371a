"""Atomic writes: all or nothing, and files readable like any other result."""

from __future__ import annotations

import json
import stat

import numpy as np
import pandas as pd
import pytest
from wav2kp.atomic import atomic_path, write_csv, write_json, write_npz


def test_failed_write_leaves_no_file_and_no_temp(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_previous_result(tmp_path):
    target = write_json(tmp_path / "m.json", {"r": 0.9})
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("{broken")
        raise ValueError("crash")
    assert json.loads(target.read_text()) == {"r": 0.9}


def test_writers_round_trip_with_group_readable_permissions(tmp_path):
    npz = write_npz(tmp_path / "a" / "clip.npz", x=np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(np.load(npz)["x"], np.arange(5))
    csv = write_csv(tmp_path / "t.csv", pd.DataFrame({"a": [1, 2]}))
    assert pd.read_csv(csv)["a"].tolist() == [1, 2]
    for path in (npz, csv):
        assert stat.S_IMODE(path.stat().st_mode) & 0o044, "result not readable by others"
