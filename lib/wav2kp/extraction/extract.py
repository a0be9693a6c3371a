"""Extraction over a folder of talking-head videos (notebook 01, ``wav2kp extract``).

For every video: PCM audio (original rate/channels and 16 kHz mono), the real timestamp of
every frame, MediaPipe's 478 points and the 68-point layout per frame, short gaps
interpolated and long ones left missing, head pose, and one manifest row
(``wav2kp.extraction.extract_clip`` does one clip). Files written (see docs/architecture.md), each
atomically:

    <interim>/extracted/<clip_id>.npz      per-clip arrays
    <interim>/audio/<clip_id>.wav          16 kHz mono PCM16
    <interim>/audio/<clip_id>.orig.wav     original rate and channels, PCM16
    <interim>/frames/<clip_id>/%05d.jpg    only with keep_frames; 00000.jpg is npz row 0
    <interim>/extracted/manifest.csv       one row per input file

The clips run as tasks on a Dask client (``wav2kp.cluster``): an embedded LocalCluster
with one process per core by default, an existing cluster with ``scheduler=`` (or
``$DASK_SCHEDULER_ADDRESS``), or in this process with ``workers=0``. Every engine gives
the same files. Only this process writes the manifest; workers write the clips' files.

Bad inputs never stop the batch: each gets status ``error`` (unusable file) or
``rejected`` (usable file, too little face; or a file that crashed its worker every
time) and a one-line reason naming the file; things worth knowing about a good clip
(several faces, the face lost for a while, audio and video of different lengths) are in
its ``warning``. A re-run skips clips whose fingerprint (source content + parameters) is
unchanged, whichever engine made them; asking for frames later writes only the frames.
One extraction at a time per corpus (a lock file); a full disk stops the batch with one
line, the manifest keeping every finished clip.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wav2kp.atomic import is_temp_file, write_csv
from wav2kp.extraction.extract_clip import (
    EXTRACT_VERSION,
    MANIFEST_COLUMNS,
    METADATA_COLUMNS,
    TIMING_COLUMNS,
    ClipJob,
    ExtractParams,
    StorageFull,
    base_row,
    extract_clip,
    file_sha1,
    fingerprint,
    one_line,
    output_files,
    run_job,
)
from wav2kp.extraction.gaps import DETECTED, GapParams
from wav2kp.paths import CorpusPaths

__all__ = [
    "EXTRACT_VERSION", "MANIFEST_COLUMNS", "METADATA_COLUMNS", "ClipJob", "CorpusBusy",
    "ExtractError", "ExtractParams", "StorageFull", "TIMING_COLUMNS", "clip_signals", "dlib_cross_check",
    "extract_clip", "extract_corpus", "fingerprint", "load_extracted", "load_manifest",
    "plan_jobs", "safe_clip_id", "summarise",
]  # fmt: skip

VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv",
    ".3gp", ".ts", ".mts", ".ogv",
}  # fmt: skip

# The manifest is rewritten after finished clips at most this often (and at the end,
# on Ctrl-C and on errors): at 10^5 clips a rewrite per clip would cost more than the work.
MANIFEST_SAVE_SECONDS = 2.0


class ExtractError(Exception):
    """A problem with the whole request (folders, names, lock, disk): one line for the user."""


class CorpusBusy(ExtractError):
    """Another extraction holds the corpus's lock."""


# ---------------------------------------------------------------- inputs and identities


def safe_clip_id(stem: str) -> str:
    """A file-system and shell friendly id from a file stem: accents folded to ASCII,
    anything else outside ``[A-Za-z0-9_.-]`` replaced by ``_``."""
    text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")
    if not text:  # e.g. a name in a non-Latin script
        text = "clip_" + hashlib.sha1(stem.encode("utf-8")).hexdigest()[:8]
    return text


def find_videos(input_dir: Path) -> list[Path]:
    """Video files under ``input_dir`` (recursively), sorted by relative path."""
    files = [
        p
        for p in input_dir.rglob("*")
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: p.relative_to(input_dir).as_posix())


def read_input_metadata(input_dir: Path) -> dict[str, dict[str, Any]]:
    """Metadata rows of ``input_dir/manifest.csv`` keyed by ``file`` (relative path)."""
    manifest = input_dir / "manifest.csv"
    if not manifest.is_file():
        return {}
    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    if "file" not in table.columns:
        raise ExtractError(f"{manifest}: needs a 'file' column naming each video")
    return {Path(row["file"]).as_posix(): row for row in table.to_dict("records")}


def plan_jobs(
    input_dir: Path,
    paths: CorpusPaths,
    params: ExtractParams,
    previous: pd.DataFrame | None,
    clip_filter: str | list[str] | None = None,
    limit: int | None = None,
) -> list[ClipJob]:
    """One job per input video, with a unique clip_id. Its fingerprint is known here for
    files met before (the manifest's hash when size and modification time are unchanged,
    else hashed again); a new file is hashed by the worker that extracts it, so that the
    first run over 10^5 videos does not read them all here before any work starts."""
    metadata = read_input_metadata(input_dir)
    known = {}
    if previous is not None and len(previous):
        known = {str(r["file"]): r for r in previous.to_dict("records")}
    jobs: list[ClipJob] = []
    used: set[str] = set()
    for path in find_videos(input_dir):
        relative = path.relative_to(input_dir).as_posix()
        meta = metadata.get(relative) or metadata.get(path.name) or {}
        clip_id = safe_clip_id(meta.get("clip_id") or path.stem)
        if clip_id in used:  # same stem in two folders, or two names folding alike
            clip_id = f"{clip_id}_{hashlib.sha1(relative.encode()).hexdigest()[:6]}"
        used.add(clip_id)
        stat = path.stat()
        old = known.get(relative)
        if old is None:
            sha1 = ""  # new: hashed by its worker
        elif (
            _int(old.get("source_size")) == stat.st_size
            and _int(old.get("source_mtime_ns")) == stat.st_mtime_ns
            and isinstance(old.get("source_sha1"), str)
            and old["source_sha1"]
        ):
            sha1 = old["source_sha1"]  # unchanged size and mtime: skip re-hashing
        else:
            sha1 = file_sha1(path)  # touched: the same content need not be redone
        full_meta = {
            "speaker": meta.get("speaker") or "unknown",
            "emotion": meta.get("emotion") or "",
            "sentence_id": meta.get("sentence_id") or clip_id,
            "text": meta.get("text") or "",
        }
        jobs.append(
            ClipJob(
                clip_id=clip_id,
                source=str(path),
                relative=relative,
                metadata=full_meta,
                paths_root=str(paths.root) if paths.root is not None else None,
                corpus=paths.corpus,
                params=params.as_dict(),
                source_size=stat.st_size,
                source_mtime_ns=stat.st_mtime_ns,
                source_sha1=sha1,
                fingerprint=fingerprint(sha1, params) if sha1 else "",
            )
        )
    if clip_filter:
        patterns = [clip_filter] if isinstance(clip_filter, str) else list(clip_filter)
        jobs = [j for j in jobs if any(re.search(p, j.clip_id) for p in patterns)]
    if limit is not None:
        jobs = jobs[: int(limit)]
    return jobs


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- reading results


def _as_paths(corpus: str | CorpusPaths) -> CorpusPaths:
    return corpus if isinstance(corpus, CorpusPaths) else CorpusPaths(str(corpus))


def load_manifest(corpus: str | CorpusPaths) -> pd.DataFrame:
    """The extraction manifest (empty frame with the right columns if none yet)."""
    path = _as_paths(corpus).extracted / "manifest.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    table = pd.read_csv(
        path, dtype={"clip_id": str, "file": str, "sentence_id": str, "speaker": str}
    )
    for column in ("error", "warning", "emotion", "text", "speaker", "sentence_id"):
        if column in table:
            table[column] = table[column].fillna("")
    return table


def load_extracted(corpus: str | CorpusPaths, clip_id: str) -> dict[str, Any]:
    """One clip's arrays (``times``, ``lm478``, ``lm68``, ``frame_status``, ``faces``,
    ``pose_*``) and scalars (``width``, ``height``, ``fps``, ``audio_sample_rate``) as
    Python numbers."""
    path = _as_paths(corpus).extracted / f"{clip_id}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no extraction result for clip {clip_id!r}")
    with np.load(path, allow_pickle=False) as data:
        out = {key: data[key] for key in data.files}
    for key in ("width", "height", "audio_sample_rate"):
        out[key] = int(out[key])
    out["fps"] = float(out["fps"])
    return out


# ---------------------------------------------------------------- the batch


def _is_done(job: ClipJob, old: dict | None, paths: CorpusPaths) -> bool:
    """Extracted before with the same source and parameters, and its files are there."""
    if old is None or old.get("fingerprint") != job.fingerprint:
        return False
    if old.get("status") not in ("ok", "rejected"):
        return False  # errors are retried: they are cheap and may have been transient
    files = output_files(paths, job.clip_id)
    return all(files[key].exists() for key in ("npz", "wav", "orig_wav"))


def _needs_frames(job: ClipJob, old: dict, paths: CorpusPaths) -> bool:
    return old.get("status") in ("ok", "rejected") and not (
        output_files(paths, job.clip_id)["frames"].is_dir()
    )


@contextlib.contextmanager
def corpus_lock(paths: CorpusPaths, wait_seconds: float = 0.0) -> Iterator[None]:
    """Only one extraction writes a corpus at a time (``<interim>/.extract.lock``; the
    operating system releases it when the holder dies, even by kill -9). A second one
    waits up to ``wait_seconds``, then raises ``CorpusBusy`` saying who holds it."""
    from filelock import FileLock, Timeout

    paths.interim.mkdir(parents=True, exist_ok=True)
    lock = FileLock(paths.interim / ".extract.lock", timeout=wait_seconds)
    owner_file = paths.interim / ".extract.lock.owner"
    try:
        lock.acquire()
    except Timeout:
        try:
            owner = json.loads(owner_file.read_text())
            who = f"pid {owner['pid']} on {owner['host']}, started {owner['started']}"
        except (OSError, ValueError, KeyError):
            who = "another process"
        raise CorpusBusy(
            f"{paths.interim}: another extraction is writing this corpus ({who}); "
            "wait for it to finish, or extract into another --corpus"
        ) from None
    try:
        owner_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
        )
        yield
    finally:
        owner_file.unlink(missing_ok=True)
        lock.release()


def _sweep_partial_files(paths: CorpusPaths) -> None:
    """Remove temp files and half-written frame folders that a killed run left behind.
    Only while holding the corpus lock and with no worker of ours running: then no one
    else is writing these folders."""
    for folder in (paths.extracted, paths.audio):
        if folder.is_dir():
            for entry in folder.iterdir():
                if is_temp_file(entry):
                    entry.unlink(missing_ok=True)
    if paths.frames.is_dir():
        for entry in paths.frames.glob(".*.partial"):
            shutil.rmtree(entry, ignore_errors=True)


def check_layout(input_dir: Path, paths: CorpusPaths) -> None:
    """Refuse folders that overlap: outputs inside the input would be read back as input
    by the next run; an input inside the outputs could be overwritten."""
    source = input_dir.resolve()
    output = paths.interim.resolve()
    if output == source or source in output.parents:
        raise ExtractError(
            f"{output}: the output folder is inside the input folder {source}; "
            "set WAV2KP_DATA to a data folder outside the videos' folder"
        )
    if output in source.parents:
        raise ExtractError(
            f"{source}: the input folder is inside the output folder {output}; "
            "move the videos out of it"
        )


class _ManifestWriter:
    """Keeps the rows; writes the manifest after finished clips at most every
    ``MANIFEST_SAVE_SECONDS`` or ten times as long as a write takes (a large manifest),
    the first clip at once, and on demand."""

    def __init__(self, path: Path, rows: dict[str, dict]) -> None:
        self.path, self.rows = path, rows
        self.last = -float("inf")
        self.interval = MANIFEST_SAVE_SECONDS

    def table(self) -> pd.DataFrame:
        table = pd.DataFrame(list(self.rows.values()), columns=list(MANIFEST_COLUMNS))
        return table.sort_values("file", kind="stable").reset_index(drop=True)

    def save(self, force: bool = False) -> pd.DataFrame | None:
        if not force and time.monotonic() - self.last < self.interval:
            return None
        start = time.monotonic()
        table = self.table()
        write_csv(self.path, table)
        self.last = time.monotonic()
        self.interval = max(MANIFEST_SAVE_SECONDS, 10 * (self.last - start))
        return table


def extract_corpus(
    input_dir: str | os.PathLike | None,
    corpus: str | CorpusPaths,
    workers: int | None = None,
    keep_frames: bool = False,
    clip_filter: str | list[str] | None = None,
    limit: int | None = None,
    params: ExtractParams | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    client=None,
) -> pd.DataFrame:
    """Extract every video under ``input_dir`` into the corpus's interim folder.

    ``input_dir=None`` uses the corpus's raw folder. Engine: ``client`` (a
    ``distributed.Client``, left open), else ``scheduler`` (address or scheduler file;
    default ``$DASK_SCHEDULER_ADDRESS``), else an embedded LocalCluster of ``workers``
    processes (``None``: one per core, see ``wav2kp.cluster``); ``workers=0`` runs in
    this process (as does a lone clip when no cluster was asked for). ``keep_frames``:
    also write each frame as JPEG (added to clips extracted before, never a reason to
    extract again). Returns the manifest, also written to ``extracted/manifest.csv``
    while the clips finish, so a killed run resumes.

    Raises ``ExtractError`` (one line) for a missing or overlapping folder, a corpus
    another extraction is writing (``CorpusBusy``), or a full disk (``StorageFull``:
    the clips finished so far stay in the manifest). Ctrl-C stops it the same way.
    """
    paths = _as_paths(corpus)
    input_dir = Path(input_dir) if input_dir is not None else paths.raw
    if input_dir.exists() and not input_dir.is_dir():
        raise ExtractError(f"{input_dir}: not a folder; give the folder that holds the videos")
    if not input_dir.is_dir():
        raise ExtractError(f"{input_dir}: input folder not found")
    check_layout(input_dir, paths)
    params = params or ExtractParams()
    try:
        paths.extracted.mkdir(parents=True, exist_ok=True)
        paths.audio.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExtractError(
            f"{paths.interim}: cannot create the output folder ({error.strerror or error}); "
            "choose a writable data folder (WAV2KP_DATA)"
        ) from None
    if not os.access(paths.extracted, os.W_OK) or not os.access(paths.audio, os.W_OK):
        raise ExtractError(
            f"{paths.interim}: output folder is read-only; choose a writable data folder "
            "(WAV2KP_DATA)"
        )
    with corpus_lock(paths):
        _sweep_partial_files(paths)
        record_input_dir(paths, input_dir)
        table = _extract_locked(
            input_dir, paths, params, workers, keep_frames, clip_filter, limit, progress,
            scheduler, client,
        )  # fmt: skip
        # every task has ended: what a worker killed mid-write left behind goes now,
        # not only at the next run
        _sweep_partial_files(paths)
        return table


INPUT_FILE = "input.json"  # beside the manifest: the folder its ``file`` paths are relative to


def record_input_dir(paths: CorpusPaths, input_dir: Path) -> None:
    """Record the input folder (absolute) beside the manifest, so that a clip's source
    video is found from its ``file`` whatever the current folder (``input_dir``)."""
    from wav2kp.atomic import write_json

    folder = Path(input_dir).resolve()
    if input_dir_of(paths) != folder:  # a resumed run leaves finished files untouched
        write_json(paths.extracted / INPUT_FILE, {"input_dir": str(folder)})


def input_dir_of(corpus: str | CorpusPaths) -> Path | None:
    """The folder the corpus was last extracted from (None if not recorded)."""
    import json

    record = _as_paths(corpus).extracted / INPUT_FILE
    try:
        return Path(json.loads(record.read_text())["input_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def source_video(corpus: str | CorpusPaths, clip_id: str) -> Path | None:
    """A clip's original video: the extraction manifest's ``file`` (absolute, under the
    input folder the extraction recorded, under ``raw/``, or as given), else
    ``raw/<clip_id>.*``; the first that holds a video stream in any container ffmpeg
    reads (GRID's ``.mpg`` too), judged by its streams, not its suffix."""
    from wav2kp.media.probe import has_video_stream

    paths = _as_paths(corpus)
    candidates: list[Path] = []
    rows = load_manifest(paths)
    rows = rows[rows["clip_id"].astype(str) == str(clip_id)]
    if len(rows) and isinstance(rows["file"].iloc[0], str):
        file = Path(rows["file"].iloc[0])
        if file.is_absolute():
            candidates.append(file)
        else:
            source_dir = input_dir_of(paths)
            candidates += [source_dir / file] if source_dir is not None else []
            candidates += [paths.raw / file, file]
    if paths.raw.is_dir():
        candidates += sorted(paths.raw.glob(f"{clip_id}.*"))
    return next((c for c in candidates if c.is_file() and has_video_stream(c)), None)


def _extract_locked(
    input_dir, paths, params, workers, keep_frames, clip_filter, limit, progress, scheduler,
    client,
) -> pd.DataFrame:  # fmt: skip
    from tqdm.auto import tqdm

    from wav2kp.cluster import map_unordered

    previous = load_manifest(paths)
    jobs = plan_jobs(input_dir, paths, params, previous, clip_filter, limit)
    old_rows = {str(r["file"]): r for r in previous.to_dict("records")}
    # rows of files left out by clip_filter/limit are kept; rows of deleted files dropped
    present = {p.relative_to(input_dir).as_posix() for p in find_videos(input_dir)}
    selected = {j.relative for j in jobs}
    rows: dict[str, dict] = {
        f: r for f, r in old_rows.items() if f not in selected and f in present
    }
    todo: list[ClipJob] = []
    for job in jobs:
        job.keep_frames = bool(keep_frames)
        old = old_rows.get(job.relative)
        if _is_done(job, old, paths):
            rows[job.relative] = old
            if keep_frames and _needs_frames(job, old, paths):
                job.kind = "frames"
                todo.append(job)
        else:
            todo.append(job)
    # largest files first, so that no long clip is left running alone at the end
    todo.sort(key=lambda job: (job.kind != "extract", -job.source_size))
    manifest = _ManifestWriter(paths.extracted / "manifest.csv", rows)
    frame_errors: list[str] = []
    done: list[str] = []
    with _engine(todo, workers, scheduler, client, progress) as engine:
        bar = tqdm(
            total=len(todo), desc=f"extract {paths.corpus}", unit="clip", disable=not progress
        )
        try:
            for job, outcome in map_unordered(run_job, todo, engine, key=lambda job: job.task_key):
                result = _result_or_row(job, outcome)
                if job.kind == "frames":
                    if result.get("frames_error"):
                        frame_errors.append(result["frames_error"])
                else:
                    rows[job.relative] = result
                    done.append(job.clip_id)
                manifest.save()
                bar.update(1)
        except BaseException:
            # Ctrl-C, a full disk, a lost scheduler: keep what finished, then stop
            _save_quietly(manifest)
            bar.close()
            if engine is None or getattr(engine, "wav2kp_embedded", False):
                _close_engine(engine, interrupted=True)
                _sweep_partial_files(paths)
            raise
        bar.close()
    table = manifest.save(force=True)
    table.attrs["extracted_now"] = done  # for frames/s of this run
    if progress:
        _print_summary(table, selected, len(done), len(jobs) - len(done), frame_errors)
    return table


def _result_or_row(job: ClipJob, outcome) -> dict[str, Any]:
    """The task's result, or a row saying why it has none (its worker died, the
    scheduler went away). A full disk propagates: the batch stops."""
    try:
        return outcome.result()
    except StorageFull:
        raise
    except Exception as error:
        if type(error).__name__ == "KilledWorker":
            reason = (
                f"{job.source}: the worker process died every time it extracted this file "
                f"({_attempts(error)} attempts: a crash in the decoder or MediaPipe, or out of "
                "memory); skipped, the next run tries again"
            )
            status = "rejected"
        else:
            reason, status = one_line(job.source, error), "error"
        if job.kind == "frames":
            return {"frames_error": reason}
        row = base_row(job)
        row.update(status=status, error=reason)
        return row


def _attempts(error: BaseException) -> int | str:
    allowed = getattr(error, "allowed_failures", None)
    return allowed + 1 if isinstance(allowed, int) else "several"


def _save_quietly(manifest: _ManifestWriter) -> None:
    try:
        manifest.save(force=True)
    except OSError:
        pass  # e.g. the disk is full: the manifest written last (atomically) stays


@contextlib.contextmanager
def _engine(todo, workers, scheduler, client, progress) -> Iterator[Any]:
    """The Dask client to run on (None: in this process)."""
    from wav2kp.cluster import describe, get_client, scheduler_address

    if client is not None:
        yield client
        return
    asked_for_cluster = scheduler_address(scheduler) is not None
    if not todo or workers == 0 or (len(todo) == 1 and not asked_for_cluster):
        yield None
        return
    n_workers = None if workers is None else min(int(workers), len(todo))
    if n_workers is None and not asked_for_cluster:
        from wav2kp.cluster import default_workers

        n_workers = min(default_workers(), len(todo))
    engine = get_client(scheduler, n_workers)
    try:
        if progress:
            print(describe(engine), flush=True)
        yield engine
    finally:
        _close_engine(engine)


def _close_engine(engine, interrupted: bool = False) -> None:
    """Close the client (and an embedded cluster); ``interrupted``: its workers may be
    mid-task (see ``wav2kp.cluster.stop_now``)."""
    if engine is None or engine.status in ("closed", "closing"):
        return
    from wav2kp.cluster import stop_now

    if interrupted:
        stop_now(engine)
    else:
        with contextlib.suppress(Exception):
            engine.close()


def _print_summary(
    table: pd.DataFrame, selected: set[str], extracted: int, skipped: int, frame_errors: list[str]
) -> None:
    mine = table[table["file"].isin(selected)]
    print(
        f"extracted {extracted} clip(s), {skipped} unchanged and skipped; "
        f"{int((table['status'] == 'ok').sum())} ok in the manifest"
    )
    for _, r in mine[mine["status"] != "ok"].iterrows():
        print(f"  {r['status']}: {r['error']}")
    for _, r in mine[(mine["status"] == "ok") & (mine["warning"].fillna("") != "")].iterrows():
        print(f"  warning: {r['warning']}")
    for message in frame_errors:
        print(f"  frames not written: {message}")


def clip_signals(data: dict[str, Any]) -> pd.DataFrame:
    """Per-frame signals of one extracted clip for plots: time, status, inner-lip gap and
    jaw (chin) height in inter-ocular distances, head angles in degrees."""
    from wav2kp.extraction.landmarks import inter_ocular, mouth_opening
    from wav2kp.extraction.pose import rotation_to_euler

    lm = data["lm68"].astype(np.float64)
    iod = inter_ocular(lm)
    eyes_y = lm[:, [36, 45], 1].mean(axis=1)
    angles = rotation_to_euler(data["pose_rotation"])
    return pd.DataFrame(
        {
            "time": data["times"],
            "status": data["frame_status"],
            "mouth_opening": mouth_opening(lm) / iod,
            "jaw_drop": (lm[:, 8, 1] - eyes_y) / iod,
            "pitch": angles[:, 0],
            "yaw": angles[:, 1],
            "roll": angles[:, 2],
            "scale": data["pose_scale"],
        }
    )


def summarise(table: pd.DataFrame, wall_seconds: float | None = None) -> dict[str, Any]:
    """Key numbers of an extraction manifest (for ``metrics_extraction.json``)."""
    good = table[table["status"] == "ok"]
    decoded = table[table["frames"].notna() & (table["status"] != "error")]
    frames = float(decoded["frames"].sum())
    detected = float((decoded["frames"] * decoded["detection_rate"]).sum())
    out: dict[str, Any] = {
        "clips_total": int(len(table)),
        "clips_ok": int(len(good)),
        "clips_rejected": int((table["status"] == "rejected").sum()),
        "clips_error": int((table["status"] == "error").sum()),
        "frames": int(frames),
        "detection_rate": detected / frames if frames else float("nan"),
        "detection_rate_ok_clips": float(
            (good["frames"] * good["detection_rate"]).sum() / good["frames"].sum()
        )
        if len(good)
        else float("nan"),
        "interpolated_frames": int(decoded["interpolated_frames"].sum()),
        "missing_frames": int(decoded["missing_frames"].sum()),
        "video_seconds_ok": float(good["duration"].sum()),
        "clip_seconds": float(pd.to_numeric(decoded["seconds"], errors="coerce").sum()),
        # CPU of the clips' own work (decoding, MediaPipe, audio, writes; not start-up)
        "clip_cpu_seconds": float(pd.to_numeric(decoded.get("cpu_seconds"), errors="coerce").sum()),
    }
    out["cpu_ms_per_frame"] = 1000 * out["clip_cpu_seconds"] / frames if frames else float("nan")
    out["frames_per_second_per_worker"] = (
        frames / out["clip_seconds"] if out["clip_seconds"] else float("nan")
    )
    if wall_seconds:
        out["wall_seconds"] = float(wall_seconds)
    return out


def dlib_cross_check(
    corpus: str | CorpusPaths,
    input_dir: str | os.PathLike,
    table: pd.DataFrame,
    frames_per_clip: int = 3,
    max_clips: int | None = 12,
) -> pd.DataFrame:
    """Distance of the mapped 68 points to dlib's predictor on a few frames per ok clip,
    per face part in inter-ocular distances (needs dlib and its predictor, see
    ``wav2kp.extraction.landmarks.dlib_unavailable_reason``). Also compares jaw ends 0/16 at mesh points
    127/356 (used) with the temple variant 162/389."""
    from wav2kp.extraction.landmarks import DlibLandmarks, inter_ocular, mapping_errors
    from wav2kp.media.decode import read_frames_at

    paths = _as_paths(corpus)
    predictor = DlibLandmarks()
    clips = table[table["status"] == "ok"]
    if max_clips is not None and len(clips) > max_clips:
        clips = clips.iloc[np.linspace(0, len(clips) - 1, max_clips).astype(int)]
    rows = []
    for _, clip in clips.iterrows():
        data = load_extracted(paths, clip["clip_id"])
        detected = np.flatnonzero(data["frame_status"] == DETECTED)
        if len(detected) == 0:
            continue
        picks = detected[np.linspace(0, len(detected) - 1, frames_per_clip).astype(int)]
        frames = read_frames_at(Path(input_dir) / clip["file"], picks.tolist())
        for index in picks:
            lm68 = data["lm68"][index]
            reference = predictor(frames[int(index)], near=lm68)
            if reference is None:
                continue
            row = {
                "clip_id": clip["clip_id"],
                "frame": int(index),
                **mapping_errors(lm68, reference),
            }
            iod = float(inter_ocular(reference))
            temples = data["lm478"][index][[162, 389], :2]
            row["jaw_ends_127_356"] = float(
                np.linalg.norm(lm68[[0, 16]] - reference[[0, 16]], axis=1).mean() / iod
            )
            row["jaw_ends_162_389"] = float(
                np.linalg.norm(temples - reference[[0, 16]], axis=1).mean() / iod
            )
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- command line


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    from wav2kp.config import add_workers_argument

    parser.add_argument(
        "input_dir", nargs="?", help="folder of videos (default: data/raw/<corpus>)"
    )
    parser.add_argument("--corpus", required=True, help="name of the corpus to write")
    add_workers_argument(parser, "worker processes of the embedded Dask cluster")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="a running Dask cluster: scheduler address (tcp://HOST:8786) or scheduler "
        "file (default: $DASK_SCHEDULER_ADDRESS; none: an embedded cluster)",
    )
    parser.add_argument("--keep-frames", action="store_true", help="also write frames as JPEG")
    parser.add_argument(
        "--face",
        default=ExtractParams.face,
        help="whom to follow when several faces are in view: 'largest' or N, the N-th "
        "face from the left (default: %(default)s)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N videos")
    parser.add_argument("--filter", dest="clip_filter", default=None, help="regex on clip ids")
    parser.add_argument("--max-gap-frames", type=int, default=GapParams.max_gap_frames)
    parser.add_argument("--min-detection-rate", type=float, default=GapParams.min_detection_rate)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_cli(args: argparse.Namespace) -> int:
    def fail(message: str, code: int = 1) -> int:
        print(f"wav2kp extract: {message}", file=sys.stderr, flush=True)
        return code

    try:
        paths = CorpusPaths(args.corpus)
    except ValueError as error:
        return fail(f"--corpus {error}", 2)
    try:
        gaps = GapParams(
            max_gap_frames=args.max_gap_frames, min_detection_rate=args.min_detection_rate
        )
        params = ExtractParams(gaps=gaps, face=args.face)
    except ValueError as error:
        return fail(f"--face {error}", 2)
    # a batch system's SIGTERM (pre-emption, scancel) stops it like Ctrl-C does
    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        table = extract_corpus(
            args.input_dir,
            paths,
            workers=args.workers,
            keep_frames=args.keep_frames,
            clip_filter=args.clip_filter,
            limit=args.limit,
            params=params,
            scheduler=args.scheduler,
        )
    except StorageFull as error:
        return fail(
            f"{error}; {_finished_note(paths)}; free some space and run the same command again"
        )
    except ExtractError as error:
        return fail(str(error))
    except KeyboardInterrupt as interrupt:
        cause = f" by {interrupt.args[0]}" if interrupt.args else ""
        return fail(
            f"interrupted{cause}; {_finished_note(paths)}; run the same command again to continue",
            130,
        )
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return 0 if (table["status"] == "ok").any() else 1


def _finished_note(paths: CorpusPaths) -> str:
    manifest = paths.extracted / "manifest.csv"
    try:
        finished = int(load_manifest(paths)["status"].isin(["ok", "rejected"]).sum())
    except Exception:  # an unreadable manifest must not hide the real message
        return f"finished clips are listed in {manifest}"
    return f"{finished} finished clip(s) are listed in {manifest}"
