"""Atomic writes: write to a temp file in the same folder, then rename.

A killed run never leaves a half-written result that a resume would mistake for done.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# Temp files are named ".<target name>.tmp-<random><suffix>" beside their target.
TEMP_MARKER = ".tmp-"


def is_temp_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is one of ``atomic_path``'s temp files (left by a killed run)."""
    name = Path(path).name
    return name.startswith(".") and TEMP_MARKER in name


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is renamed onto ``path``.

    The temp name keeps the target's suffix (``suffix`` overrides) so that writers which
    pick a format from the extension (ffmpeg, cv2, np.savez) behave the same.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp(path, suffix if suffix else path.suffix)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _create_temp(path: Path, suffix: str) -> Path:
    """A new empty file beside ``path``, created with mode 0666 so that the process's
    umask gives it the usual permissions (no umask query: changing the umask, even
    briefly, would race with other threads creating files)."""
    while True:
        tmp = path.parent / f".{path.name}{TEMP_MARKER}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_npz(path: str | os.PathLike, *, compressed: bool = True, **arrays: Any) -> Path:
    """An npz, compressed unless ``compressed=False``; no pickles (object arrays are
    refused by np.load later)."""
    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
    return Path(path)


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
