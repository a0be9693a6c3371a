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


def test_npz_deflated_or_stored_as_asked_and_read_alike(tmp_path):
    import zipfile

    x = np.linspace(0, 1, 1000, dtype=np.float32).reshape(10, 100)
    deflated = write_npz(tmp_path / "d.npz", x=x)
    stored = write_npz(tmp_path / "s.npz", compressed=False, x=x)
    for path, kind in ((deflated, zipfile.ZIP_DEFLATED), (stored, zipfile.ZIP_STORED)):
        with zipfile.ZipFile(path) as archive:
            assert [info.compress_type for info in archive.infolist()] == [kind]
        np.testing.assert_array_equal(np.load(path)["x"], x)


def test_permissions_follow_the_umask_without_ever_changing_it(tmp_path, monkeypatch):
    """Files get 0666 minus the process umask, and the umask is never touched: setting it
    (even to read it back) would race with other threads creating files."""
    import os

    previous = os.umask(0o027)
    try:

        def refuse(*_):
            raise AssertionError("atomic writes must not change the umask")

        monkeypatch.setattr(os, "umask", refuse)
        path = write_json(tmp_path / "r.json", {"a": 1})
        npz = write_npz(tmp_path / "x.npz", x=np.zeros(2))
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(npz.stat().st_mode) == 0o640


def test_temp_files_are_recognisable_for_cleanup(tmp_path):
    from wav2kp.atomic import is_temp_file

    with atomic_path(tmp_path / "clip.npz") as tmp:
        assert is_temp_file(tmp) and tmp.parent == tmp_path and tmp.suffix == ".npz"
    assert not is_temp_file(tmp_path / "clip.npz")
    assert not is_temp_file(tmp_path / ".extract.lock")
