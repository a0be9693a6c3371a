"""Extraction over a folder of talking-head videos (notebook 01, ``wav2kp extract``).

For every video: PCM audio (original rate/channels and 16 kHz mono), the real timestamp of
every frame, MediaPipe's 478 points and the 68-point layout per frame, short gaps
interpolated and long ones left missing, head pose, and one manifest row. Files written
(see docs/architecture.md), all atomically:

    <interim>/extracted/<clip_id>.npz      per-clip arrays
    <interim>/audio/<clip_id>.wav          16 kHz mono PCM16
    <interim>/audio/<clip_id>.orig.wav     original rate and channels, PCM16
    <interim>/frames/<clip_id>/%05d.jpg    only with keep_frames; 00000.jpg is npz row 0
    <interim>/extracted/manifest.csv       one row per input file

Bad inputs never stop the batch: each gets status ``error`` (unusable file) or
``rejected`` (usable file, too little face) and a one-line reason naming the file.
A re-run skips clips whose fingerprint (source content + parameters) is unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import traceback
import unicodedata
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wav2kp.atomic import write_csv, write_npz
from wav2kp.gaps import DETECTED, INTERPOLATED, MISSING, GapParams, clip_verdict, fill_gaps
from wav2kp.paths import CorpusPaths

# Bump when the extraction's output changes for the same input and parameters.
EXTRACT_VERSION = 1

VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv",
    ".3gp", ".ts", ".mts", ".ogv",
}  # fmt: skip

METADATA_COLUMNS = ("speaker", "emotion", "sentence_id", "text")
MANIFEST_COLUMNS = (
    "clip_id", "file", "status", "error", "frames", "fps", "duration", "width", "height",
    "detection_rate", "interpolated_frames", "missing_frames", "audio_sample_rate",
    "audio_channels", *METADATA_COLUMNS, "source_size", "source_mtime_ns", "source_sha1",
    "fingerprint", "seconds",
)  # fmt: skip


@dataclass(frozen=True)
class ExtractParams:
    """Everything that changes the extraction's output (part of the fingerprint)."""

    max_faces: int = 2
    refine_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    gaps: GapParams = field(default_factory=GapParams)
    audio_sample_rate: int = 16000
    keep_frames: bool = False
    jpeg_quality: int = 95

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ExtractParams:
        values = dict(values)
        if isinstance(values.get("gaps"), dict):
            values["gaps"] = GapParams(**values["gaps"])
        return cls(**values)


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
        raise ValueError(f"{manifest}: needs a 'file' column naming each video")
    return {Path(row["file"]).as_posix(): row for row in table.to_dict("records")}


@dataclass
class ClipJob:
    clip_id: str
    source: str
    relative: str
    metadata: dict[str, str]
    paths_root: str | None
    corpus: str
    params: dict
    source_size: int
    source_mtime_ns: int
    source_sha1: str
    fingerprint: str


def file_sha1(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(source_sha1: str, params: ExtractParams) -> str:
    blob = json.dumps(
        {"source": source_sha1, "params": params.as_dict(), "version": EXTRACT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def plan_jobs(
    input_dir: Path,
    paths: CorpusPaths,
    params: ExtractParams,
    previous: pd.DataFrame | None,
    clip_filter: str | list[str] | None = None,
    limit: int | None = None,
) -> list[ClipJob]:
    """One job per input video, with a unique clip_id and its fingerprint."""
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
        if (
            old is not None
            and _int(old.get("source_size")) == stat.st_size
            and _int(old.get("source_mtime_ns")) == stat.st_mtime_ns
            and isinstance(old.get("source_sha1"), str)
        ):
            sha1 = old["source_sha1"]  # unchanged size and mtime: skip re-hashing
        else:
            sha1 = file_sha1(path)
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
                fingerprint=fingerprint(sha1, params),
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


# ---------------------------------------------------------------- one clip


def _job_paths(job: ClipJob) -> CorpusPaths:
    return CorpusPaths(job.corpus, Path(job.paths_root) if job.paths_root else None)


def output_files(paths: CorpusPaths, clip_id: str) -> dict[str, Path]:
    return {
        "npz": paths.extracted / f"{clip_id}.npz",
        "wav": paths.audio / f"{clip_id}.wav",
        "orig_wav": paths.audio / f"{clip_id}.orig.wav",
        "frames": paths.frames / clip_id,
    }


def _base_row(job: ClipJob) -> dict[str, Any]:
    row = {c: None for c in MANIFEST_COLUMNS}
    row.update(
        clip_id=job.clip_id,
        file=job.relative,
        error="",
        source_size=job.source_size,
        source_mtime_ns=job.source_mtime_ns,
        source_sha1=job.source_sha1,
        fingerprint=job.fingerprint,
        **job.metadata,
    )
    return row


def extract_clip(job: ClipJob) -> dict[str, Any]:
    """Extract one clip; never raises: failures become an ``error`` row naming the file."""
    import time

    start = time.perf_counter()
    row = _base_row(job)
    try:
        row.update(_extract_clip(job))
    except Exception as error:  # one bad file must not stop the batch
        row["status"] = "error"
        row["error"] = _one_line(job.source, error)
        _remove_outputs(_job_paths(job), job.clip_id)
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def _one_line(source: str, error: BaseException) -> str:
    message = " ".join(str(error).split()) or type(error).__name__
    if source not in message:
        message = f"{source}: {message}"
    if not isinstance(error, (ValueError, RuntimeError, OSError)):
        frame = traceback.extract_tb(error.__traceback__)[-1:]
        where = f" [{frame[0].name}:{frame[0].lineno}]" if frame else ""
        message = f"{message} ({type(error).__name__}{where})"
    return message


def _remove_outputs(paths: CorpusPaths, clip_id: str) -> None:
    files = output_files(paths, clip_id)
    for key in ("npz", "wav", "orig_wav"):
        files[key].unlink(missing_ok=True)
    shutil.rmtree(paths.frames / f".{clip_id}.partial", ignore_errors=True)


def _extract_clip(job: ClipJob) -> dict[str, Any]:
    from wav2kp.audio import load_audio, write_wav
    from wav2kp.facemesh import FaceMeshTracker
    from wav2kp.landmarks import mediapipe_to_68
    from wav2kp.media.decode import DecodeLog, extract_audio_pcm, iter_frames
    from wav2kp.media.probe import MediaError, probe
    from wav2kp.pose import head_pose

    params = ExtractParams.from_dict(job.params)
    paths = _job_paths(job)
    files = output_files(paths, job.clip_id)
    source = Path(job.source)

    info = probe(source)
    if not info.has_video:
        raise MediaError(f"{source}: no video stream (audio-only file)")
    if not info.has_audio:
        raise MediaError(f"{source}: no audio stream (a speech model needs the voice)")

    def audio_job() -> tuple[int, int]:
        rate, n_channels = extract_audio_pcm(source, files["orig_wav"], info=info)
        samples, _ = load_audio(files["orig_wav"], sample_rate=params.audio_sample_rate)
        write_wav(files["wav"], samples, params.audio_sample_rate)
        return rate, n_channels

    # the audio is decoded while the frames are tracked (ffmpeg and torch release the GIL)
    audio_pool = ThreadPoolExecutor(max_workers=1)
    audio_future = audio_pool.submit(audio_job)

    try:
        frames_tmp = None
        if params.keep_frames:
            import cv2

            frames_tmp = paths.frames / f".{job.clip_id}.partial"
            shutil.rmtree(frames_tmp, ignore_errors=True)
            frames_tmp.mkdir(parents=True)

        times: list[float] = []
        points: list[np.ndarray | None] = []
        log = DecodeLog()
        size = (info.width or 0, info.height or 0)
        with FaceMeshTracker(
            max_faces=params.max_faces,
            refine=params.refine_landmarks,
            static=False,
            min_detection_confidence=params.min_detection_confidence,
            min_tracking_confidence=params.min_tracking_confidence,
        ) as tracker:
            for index, (time_s, rgb) in enumerate(iter_frames(source, log, info=info)):
                size = (rgb.shape[1], rgb.shape[0])
                times.append(time_s)
                points.append(tracker.process(rgb))
                if frames_tmp is not None:
                    jpg = frames_tmp / f"{index:05d}.jpg"
                    cv2.imwrite(
                        str(jpg),
                        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality],
                    )
    finally:
        # always wait: the audio thread must not write after a failure cleaned up
        audio_pool.shutdown(wait=True)
    sample_rate, channels = audio_future.result()
    if log.returncode not in (0, None):
        cause = log.last_error() or f"ffmpeg exit code {log.returncode}"
        raise MediaError(f"{source}: video decoding failed after {len(times)} frames ({cause})")
    if not times:
        raise MediaError(f"{source}: no decodable video frames (zero-length or corrupt)")
    covered = times[-1] - times[0] + (1.0 / info.fps if info.fps else 0.0)
    if log.errors() and info.duration and covered < 0.9 * info.duration:
        raise MediaError(
            f"{source}: truncated or corrupt video: frames decode for {covered:.2f} s of "
            f"{info.duration:.2f} s ({log.errors()[-1]})"
        )

    n_mesh = 478 if params.refine_landmarks else 468
    lm = np.full((len(times), n_mesh, 3), np.nan, dtype=np.float32)
    for i, p in enumerate(points):
        if p is not None:
            lm[i] = p[:n_mesh]
    times_arr = np.asarray(times, dtype=np.float64)
    if np.any(np.diff(times_arr) <= 0):
        raise MediaError(f"{source}: frame timestamps are not increasing")
    lm_filled, status = fill_gaps(lm, times_arr, params.gaps)
    lm68 = mediapipe_to_68(lm_filled).astype(np.float32)
    rotation, translation, scale = head_pose(lm_filled)
    ok, reason = clip_verdict(status, params.gaps)

    span = float(times_arr[-1] - times_arr[0]) if len(times_arr) > 1 else 0.0
    fps = (len(times_arr) - 1) / span if span > 0 else float(info.fps or 0.0)
    duration = info.duration if info.duration else span + (1.0 / fps if fps else 0.0)
    write_npz(
        files["npz"],
        times=times_arr,
        lm478=lm_filled.astype(np.float32),
        lm68=lm68,
        frame_status=status.astype(np.int8),
        pose_rotation=rotation,
        pose_translation=translation,
        pose_scale=scale,
        width=np.int32(size[0]),
        height=np.int32(size[1]),
        fps=np.float64(fps),
        audio_sample_rate=np.int32(sample_rate),
    )
    if frames_tmp is not None:
        shutil.rmtree(files["frames"], ignore_errors=True)
        os.replace(frames_tmp, files["frames"])
    return {
        "status": "ok" if ok else "rejected",
        "error": "" if ok else f"{source}: {reason}",
        "frames": len(times_arr),
        "fps": round(fps, 4),
        "duration": round(float(duration), 4),
        "width": size[0],
        "height": size[1],
        "detection_rate": round(float(np.mean(status == DETECTED)), 4),
        "interpolated_frames": int(np.sum(status == INTERPOLATED)),
        "missing_frames": int(np.sum(status == MISSING)),
        "audio_sample_rate": sample_rate,
        "audio_channels": channels,
    }


# ---------------------------------------------------------------- the batch


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
    for column in ("error", "emotion", "text", "speaker", "sentence_id"):
        if column in table:
            table[column] = table[column].fillna("")
    return table


def load_extracted(corpus: str | CorpusPaths, clip_id: str) -> dict[str, Any]:
    """One clip's arrays (``times``, ``lm478``, ``lm68``, ``frame_status``, ``pose_*``) and
    scalars (``width``, ``height``, ``fps``, ``audio_sample_rate``) as Python numbers."""
    path = _as_paths(corpus).extracted / f"{clip_id}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no extraction result for clip {clip_id!r}")
    with np.load(path, allow_pickle=False) as data:
        out = {key: data[key] for key in data.files}
    for key in ("width", "height", "audio_sample_rate"):
        out[key] = int(out[key])
    out["fps"] = float(out["fps"])
    return out


def _is_done(job: ClipJob, old: dict | None, paths: CorpusPaths, params: ExtractParams) -> bool:
    if old is None or old.get("fingerprint") != job.fingerprint:
        return False
    if old.get("status") not in ("ok", "rejected"):
        return False  # errors are retried: they are cheap and may have been transient
    files = output_files(paths, job.clip_id)
    needed = [files["npz"], files["wav"], files["orig_wav"]]
    if params.keep_frames:
        needed.append(files["frames"])
    return all(p.exists() for p in needed)


def extract_corpus(
    input_dir: str | os.PathLike | None,
    corpus: str | CorpusPaths,
    workers: int = 2,
    keep_frames: bool = False,
    clip_filter: str | list[str] | None = None,
    limit: int | None = None,
    params: ExtractParams | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Extract every video under ``input_dir`` into the corpus's interim folder.

    ``input_dir=None`` uses the corpus's raw folder. Returns the manifest (also written to
    ``extracted/manifest.csv`` after every finished clip, so a killed run resumes).
    """
    from tqdm.auto import tqdm

    paths = _as_paths(corpus)
    input_dir = Path(input_dir) if input_dir is not None else paths.raw
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder not found")
    params = params or ExtractParams()
    if keep_frames != params.keep_frames:
        params = ExtractParams.from_dict({**params.as_dict(), "keep_frames": bool(keep_frames)})
    paths.extracted.mkdir(parents=True, exist_ok=True)
    paths.audio.mkdir(parents=True, exist_ok=True)

    previous = load_manifest(paths)
    jobs = plan_jobs(input_dir, paths, params, previous, clip_filter, limit)
    old_rows = {str(r["file"]): r for r in previous.to_dict("records")}
    # rows of files left out by clip_filter/limit are kept; rows of deleted files dropped
    present = {p.relative_to(input_dir).as_posix() for p in find_videos(input_dir)}
    selected = {j.relative for j in jobs}
    rows: dict[str, dict] = {
        f: r for f, r in old_rows.items() if f not in selected and f in present
    }
    todo = []
    for job in jobs:
        old = old_rows.get(job.relative)
        if _is_done(job, old, paths, params):
            rows[job.relative] = old
        else:
            todo.append(job)

    def save() -> pd.DataFrame:
        table = pd.DataFrame(list(rows.values()), columns=list(MANIFEST_COLUMNS))
        table = table.sort_values("file", kind="stable").reset_index(drop=True)
        write_csv(paths.extracted / "manifest.csv", table)
        return table

    bar = tqdm(total=len(todo), desc=f"extract {paths.corpus}", unit="clip", disable=not progress)
    if todo and workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=get_context("spawn")) as pool:
            # largest files first, so that no long clip is left running alone at the end
            by_size = sorted(todo, key=lambda job: -job.source_size)
            futures = {pool.submit(extract_clip, job): job for job in by_size}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    rows[job.relative] = future.result()
                except Exception as error:  # a worker died (e.g. killed, out of memory)
                    row = _base_row(job)
                    row.update(status="error", error=_one_line(job.source, error))
                    rows[job.relative] = row
                save()
                bar.update(1)
    else:
        for job in todo:
            rows[job.relative] = extract_clip(job)
            save()
            bar.update(1)
    bar.close()
    table = save()
    table.attrs["extracted_now"] = [job.clip_id for job in todo]  # for frames/s of this run
    skipped = len(jobs) - len(todo)
    bad = table[table["file"].isin(selected) & (table["status"] != "ok")]
    if progress:
        print(
            f"extracted {len(todo)} clip(s), {skipped} unchanged and skipped; "
            f"{int((table['status'] == 'ok').sum())} ok in the manifest"
        )
        for _, r in bad.iterrows():
            print(f"  {r['status']}: {r['error']}")
    return table


def clip_signals(data: dict[str, Any]) -> pd.DataFrame:
    """Per-frame signals of one extracted clip for plots: time, status, inner-lip gap and
    jaw (chin) height in inter-ocular distances, head angles in degrees."""
    from wav2kp.landmarks import inter_ocular, mouth_opening
    from wav2kp.pose import rotation_to_euler

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
    }
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
    per face part in inter-ocular distances (needs the optional dlib extra, see
    ``wav2kp.landmarks.dlib_available``). Also compares jaw ends 0/16 at mesh points
    127/356 (used) with the temple variant 162/389."""
    from wav2kp.landmarks import DlibLandmarks, inter_ocular, mapping_errors
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
    parser.add_argument(
        "input_dir", nargs="?", help="folder of videos (default: data/raw/<corpus>)"
    )
    parser.add_argument("--corpus", required=True, help="name of the corpus to write")
    parser.add_argument("--workers", type=int, default=2, help="parallel clips (processes)")
    parser.add_argument("--keep-frames", action="store_true", help="also write frames as JPEG")
    parser.add_argument("--limit", type=int, default=None, help="only the first N videos")
    parser.add_argument("--filter", dest="clip_filter", default=None, help="regex on clip ids")
    parser.add_argument("--max-gap-frames", type=int, default=GapParams.max_gap_frames)
    parser.add_argument("--min-detection-rate", type=float, default=GapParams.min_detection_rate)


def run_cli(args: argparse.Namespace) -> int:
    gaps = GapParams(max_gap_frames=args.max_gap_frames, min_detection_rate=args.min_detection_rate)
    table = extract_corpus(
        args.input_dir,
        args.corpus,
        workers=args.workers,
        keep_frames=args.keep_frames,
        clip_filter=args.clip_filter,
        limit=args.limit,
        params=ExtractParams(gaps=gaps, keep_frames=args.keep_frames),
    )
    return 0 if (table["status"] == "ok").any() else 1
