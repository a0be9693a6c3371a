"""Output folders that never lose or mix anything: checked before work, written whole.

- :func:`check_output_parent`: the folder can be created and written (one line if not).
- :func:`check_no_inputs_inside`: no input file lies inside it.
- :func:`check_replaceable`: it is new, empty, or holds only what an earlier run wrote
  (listed in that run's summary); anything else is refused, never deleted.
- :class:`Staging`: one run's files go into a hidden folder beside it and are moved in
  when complete (replacing only the earlier run's own entries); a failure removes them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from wav2kp.handoff import exports, vid2vid

SUMMARY_FILE = "predict.json"
# Every top-level name predict writes into --out: the only names an earlier run's summary
# may hand to deletion (a forged predict.json naming '..', '/' or 'a/../..' must not).
OUTPUT_ENTRIES = frozenset({
    vid2vid.EXPORT_DIR, exports.NPZ_FILE, exports.CSV_FILE, exports.OPENPOSE_DIR,
    exports.FSVID2VID_DIR, exports.MEDIAPIPE_FILE, exports.PREVIEW_FILE, exports.FACE_FILE,
    SUMMARY_FILE,
})  # fmt: skip


def _error(message: str):
    from wav2kp.predict.errors import PredictError

    return PredictError(message)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_output_parent(out_dir: Path, option: str = "--out") -> None:
    """Refuse an output folder that cannot be created or written, in one line."""
    if out_dir.exists() and not out_dir.is_dir():
        raise _error(f"{option} {out_dir}: is a file, not a folder; choose a folder path")
    existing = out_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise _error(
            f"{option} {out_dir}: cannot be created ({existing} is a file); choose a folder path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _error(
            f"{option} {out_dir}: cannot be written ({existing} is read-only); choose a "
            "writable folder"
        )
    if out_dir.exists() and not os.access(out_dir, os.W_OK | os.X_OK):
        raise _error(f"{option} {out_dir}: read-only folder; choose a writable folder")


def check_no_inputs_inside(out_dir: Path, inputs: Sequence[Path], option: str = "--out") -> None:
    """Outputs never go into a folder that holds an input (it would mix with them)."""
    for item in inputs:
        if item is not None and Path(item).exists() and _inside(Path(item), out_dir):
            raise _error(
                f"{option} {out_dir}: holds the input {item}; write the outputs to a folder "
                "that contains no input (e.g. a new folder beside it)"
            )


def earlier_run(out_dir: Path) -> dict | None:
    """The ``predict.json`` of an earlier run in ``out_dir`` (None if there is none; a
    symlink is never taken for one)."""
    summary = out_dir / SUMMARY_FILE
    if summary.is_symlink() or not summary.is_file():
        return None
    try:
        earlier = json.loads(summary.read_text())
    except (OSError, ValueError):
        return None
    return earlier if isinstance(earlier.get("files"), dict) else None


def forged_entries(earlier: dict) -> list[str]:
    """The names an earlier summary lists that ``predict`` never writes (``..``, ``/``,
    ``a/../..``, absolute paths, anything outside :data:`OUTPUT_ENTRIES`)."""
    names = earlier.get("files", {}).values()
    return [str(name) for name in names if not isinstance(name, str) or name not in OUTPUT_ENTRIES]


def _owned_entries(earlier: dict) -> set[str]:
    """The earlier run's own entries: only fixed single names, whatever its summary says."""
    names = earlier.get("files", {}).values()
    return {name for name in names if isinstance(name, str) and name in OUTPUT_ENTRIES} | {
        SUMMARY_FILE
    }


def check_replaceable(out_dir: Path, option: str = "--out") -> dict | None:
    """``out_dir`` may be written when it is missing, empty, or holds only what an earlier
    ``predict`` wrote (returned, to be replaced); anything else is refused."""
    if not out_dir.is_dir():
        return None
    entries = sorted(p.name for p in out_dir.iterdir())
    if not entries:
        return None
    earlier = earlier_run(out_dir)
    if earlier is None:
        raise _error(
            f"{option} {out_dir}: exists and holds files wav2kp predict did not write "
            f"(e.g. {entries[0]}); choose a new or empty folder"
        )
    forged = forged_entries(earlier)
    if forged:
        raise _error(
            f"{option} {out_dir}: its {SUMMARY_FILE} lists {forged[0]!r}, which wav2kp predict "
            "never writes; nothing was deleted - move the folder away or choose a new one"
        )
    foreign = [name for name in entries if name not in _owned_entries(earlier)]
    if foreign:
        raise _error(
            f"{option} {out_dir}: holds {foreign[0]}, which the earlier prediction there did "
            "not write; move it away or choose a new folder"
        )
    sequence = earlier.get("sequence")
    for tree in vid2vid.keypoint_dirs(out_dir / vid2vid.EXPORT_DIR):
        others = (
            sorted(p.name for p in tree.iterdir() if p.name != sequence) if tree.is_dir() else []
        )
        if others:
            raise _error(
                f"{option} {out_dir}: {tree} holds sequence {others[0]} that the earlier "
                "prediction did not write; move it away or choose a new folder"
            )
    return earlier


STAGING_MARK = ".partial-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Staging folders of ``out_dir`` left by a run that was killed outright (``kill -9``:
    nothing could clean up): ``.<name>.partial-<pid>-*`` whose process is gone. Only
    those, never anything else."""
    removed = []
    prefix = f".{out_dir.name}{STAGING_MARK}"
    if not out_dir.parent.is_dir():
        return removed
    for folder in out_dir.parent.glob(f"{prefix}*"):
        pid = folder.name[len(prefix) :].split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class Staging:
    """A hidden folder beside ``out_dir`` that receives one run's files; :meth:`commit`
    moves them into ``out_dir`` (replacing only an earlier run's own files), :meth:`abort`
    removes everything, folders it had to create included. Nothing half-written is ever
    left in ``out_dir``; what a killed run left beside it goes with the next run."""

    def __init__(self, out_dir: Path, earlier: dict | None) -> None:
        self.out_dir = out_dir
        self.earlier = earlier
        self.created: list[Path] = []  # parent folders made here, innermost last
        missing = out_dir.parent
        while not missing.exists():
            self.created.insert(0, missing)
            missing = missing.parent
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(out_dir)
        prefix = f".{out_dir.name}{STAGING_MARK}{os.getpid()}-"
        self.folder = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))

    def commit(self) -> None:
        if not self.out_dir.exists():
            os.replace(self.folder, self.out_dir)
            return
        if self.earlier is not None:  # checked: only the earlier run's own entries
            for name in _owned_entries(self.earlier):
                old = self.out_dir / name  # a single fixed name: never outside out_dir
                if old.is_symlink():
                    old.unlink()  # the link itself, never what it points to
                elif old.is_dir():
                    shutil.rmtree(old)  # does not follow symlinks inside
                elif old.exists():
                    old.unlink()
        for item in sorted(self.folder.iterdir(), key=lambda p: p.name == SUMMARY_FILE):
            os.replace(item, self.out_dir / item.name)  # the summary last: marks complete
        self.folder.rmdir()

    def abort(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        for folder in reversed(self.created):
            try:
                folder.rmdir()  # only if still empty
            except OSError:
                break
