"""One clip's extraction: what a Dask worker (or the in-process engine) runs per video.

``run_job(job)`` probes the video, extracts PCM audio, decodes the frames with their
timestamps, tracks the face (MediaPipe, loaded once per worker), interpolates short gaps,
estimates head pose, writes the clip's files atomically and returns its manifest row.
It never raises for a bad input (the row says ``error`` and why, naming the file); it
raises ``StorageFull`` when the disk is full, since every later clip would fail alike.
Frames as JPEG (``keep_frames``) are an addition, never a reason to extract again: a
``frames`` job writes them for a clip extracted earlier.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import shutil
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wav2kp.atomic import write_npz
from wav2kp.extraction.facemesh import parse_face
from wav2kp.extraction.gaps import (
    DETECTED,
    INTERPOLATED,
    MISSING,
    GapParams,
    clip_verdict,
    fill_gaps,
    find_runs,
)
from wav2kp.media.audio import SAMPLE_RATE
from wav2kp.paths import CorpusPaths

# Bump when the extraction's output changes for the same input and parameters.
# 2: per-frame face counts (``faces``); frames no longer part of the fingerprint.
EXTRACT_VERSION = 2
FRAME_JPEG_QUALITY = 95
# Audio and video of one file that differ in length by more than this get a warning.
AV_LENGTH_WARNING_SECONDS = 0.5
# Decoder threads per clip: a worker has one core; libav's frame threads would add CPU
# (measured on the demo corpus: 0.77 vs 1.20 ms per frame) without making it faster.
DECODE_THREADS = 1

METADATA_COLUMNS = ("speaker", "emotion", "sentence_id", "text")
MANIFEST_COLUMNS = (
    "clip_id", "file", "status", "error", "warning", "frames", "fps", "duration", "width",
    "height", "detection_rate", "interpolated_frames", "missing_frames", "multi_face_frames",
    "audio_sample_rate", "audio_channels", "audio_duration", *METADATA_COLUMNS,
    "source_size", "source_mtime_ns", "source_sha1", "fingerprint", "seconds", "cpu_seconds",
)  # fmt: skip
# Columns that measure the run, not the result (differ between two identical runs).
TIMING_COLUMNS = ("seconds", "cpu_seconds")


@dataclass(frozen=True)
class ExtractParams:
    """Everything that changes the extraction's output (part of the fingerprint).

    ``face``: whom to follow when several faces are in view: ``"largest"`` or N, the
    N-th face from the left (see ``wav2kp.extraction.facemesh.FaceMeshTracker``).
    ``decode_max_side``: frames are decoded for MediaPipe with their long side at most
    this many pixels (None: full resolution); points are in the source's pixels either
    way, and kept frames (``keep_frames``) are always full resolution. At 1280 the 1080p
    real clip's points stay within 0.004 inter-ocular distances of full-resolution
    decoding for a third less CPU per frame (``wav2kp bench extraction``, and the test
    ``test_reduced_resolution_keypoints_match_full_resolution_on_real_clips``)."""

    max_faces: int = 2
    refine_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    face: str = "largest"
    decode_max_side: int | None = 1280
    gaps: GapParams = field(default_factory=GapParams)
    audio_sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "face", str(parse_face(self.face)))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ExtractParams:
        values = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if isinstance(values.get("gaps"), dict):
            values["gaps"] = GapParams(**values["gaps"])
        return cls(**values)


def file_sha1(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(source_sha1: str, params: ExtractParams) -> str:
    from wav2kp.extraction.landmarks import MAPPING_ID

    blob = json.dumps(
        {"source": source_sha1, "params": params.as_dict(), "version": EXTRACT_VERSION,
         "lm68_mapping": MAPPING_ID},  # a new 478 -> 68 table redoes the lm68 points
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


@dataclass
class ClipJob:
    """One unit of work, small enough to ship to a worker.

    ``kind``: ``"extract"`` (everything; frames too when ``keep_frames``) or ``"frames"``
    (only the JPEG frames of a clip extracted before)."""

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
    kind: str = "extract"
    keep_frames: bool = False

    @property
    def paths(self) -> CorpusPaths:
        return CorpusPaths(self.corpus, Path(self.paths_root) if self.paths_root else None)

    @property
    def task_key(self) -> str:
        """Dask task name: readable on the dashboard, unique per corpus, clip, source
        version and parameters (a client may run several corpora at once)."""
        identity = json.dumps(
            [self.paths_root, self.corpus, self.relative, self.source_size,
             self.source_mtime_ns, self.params, self.keep_frames],
            sort_keys=True,
        )  # fmt: skip
        return f"{self.kind}-{self.clip_id}-{hashlib.sha1(identity.encode()).hexdigest()[:10]}"


class StorageFull(RuntimeError):
    """The output disk is full (or over quota): the batch stops, finished clips stay."""


def output_files(paths: CorpusPaths, clip_id: str) -> dict[str, Path]:
    return {
        "npz": paths.extracted / f"{clip_id}.npz",
        "wav": paths.audio / f"{clip_id}.wav",
        "orig_wav": paths.audio / f"{clip_id}.orig.wav",
        "frames": paths.frames / clip_id,
    }


def base_row(job: ClipJob) -> dict[str, Any]:
    row = {c: None for c in MANIFEST_COLUMNS}
    row.update(
        clip_id=job.clip_id,
        file=job.relative,
        error="",
        warning="",
        source_size=job.source_size,
        source_mtime_ns=job.source_mtime_ns,
        source_sha1=job.source_sha1,
        fingerprint=job.fingerprint,
        **job.metadata,
    )
    return row


def one_line(source: str, error: BaseException) -> str:
    """An error as one line that names the file."""
    message = " ".join(str(error).split()) or type(error).__name__
    if source not in message:
        message = f"{source}: {message}"
    if not isinstance(error, (ValueError, RuntimeError, OSError)):
        frame = traceback.extract_tb(error.__traceback__)[-1:]
        where = f" [{frame[0].name}:{frame[0].lineno}]" if frame else ""
        message = f"{message} ({type(error).__name__}{where})"
    return message


def is_storage_full(error: BaseException) -> bool:
    """A write failed for lack of space or quota (also when ffmpeg reported it)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return "No space left on device" in text or "Disk quota exceeded" in text


def _cpu_seconds() -> float:
    """CPU of this process and its finished children (decoder processes), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ---------------------------------------------------------------- the task


def run_job(job: ClipJob) -> dict[str, Any]:
    """The task run per clip. ``extract`` jobs return the clip's manifest row;
    ``frames`` jobs return ``{"frames_error": ""}`` or the reason the frames failed."""
    if job.kind == "frames":
        return {"frames_error": write_frames(job)}
    return extract_clip(job)


def extract_clip(job: ClipJob) -> dict[str, Any]:
    """Extract one clip; bad input becomes an ``error`` row naming the file. Whatever
    happens (an error, Ctrl-C, a full disk) no half-written file of the clip remains."""
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    row = base_row(job)
    try:
        if not job.source_sha1:  # a new file: hashed here, in parallel, not by the client
            row["source_sha1"] = file_sha1(job.source)
            row["fingerprint"] = fingerprint(
                row["source_sha1"], ExtractParams.from_dict(job.params)
            )
        row.update(_extract_clip(job))
    except Exception as error:  # one bad file must not stop the batch
        _remove_outputs(job.paths, job.clip_id)
        if is_storage_full(error):
            raise StorageFull(
                f"disk full while writing {job.paths.interim} (clip {job.clip_id}): "
                f"{' '.join(str(error).split())}"
            ) from None
        row["status"] = "error"
        row["error"] = one_line(job.source, error)
    except BaseException:  # Ctrl-C, SystemExit: leave nothing half-written, then stop
        _remove_outputs(job.paths, job.clip_id)
        raise
    row["seconds"] = round(time.perf_counter() - start, 3)
    row["cpu_seconds"] = round(_cpu_seconds() - cpu_start, 3)
    return row


def _remove_outputs(paths: CorpusPaths, clip_id: str) -> None:
    files = output_files(paths, clip_id)
    for key in ("npz", "wav", "orig_wav"):
        files[key].unlink(missing_ok=True)
    shutil.rmtree(_partial_frames(paths, clip_id), ignore_errors=True)


def _partial_frames(paths: CorpusPaths, clip_id: str) -> Path:
    return paths.frames / f".{clip_id}.partial"


class _FrameWriter:
    """JPEG frames into a hidden folder, renamed to ``frames/<clip_id>`` when complete."""

    def __init__(self, paths: CorpusPaths, clip_id: str) -> None:
        self.final = output_files(paths, clip_id)["frames"]
        self.partial = _partial_frames(paths, clip_id)
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        self.count = 0

    def add(self, rgb: np.ndarray) -> None:
        import cv2

        target = self.partial / f"{self.count:05d}.jpg"
        ok = cv2.imwrite(
            str(target),
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, FRAME_JPEG_QUALITY],
        )
        if not ok:  # cv2 reports a failed write (e.g. a full disk) only as False
            free = shutil.disk_usage(self.partial).free
            cause = "No space left on device" if free < rgb.nbytes else "write failed"
            raise OSError(errno.ENOSPC if free < rgb.nbytes else errno.EIO, f"{target}: {cause}")
        self.count += 1

    def commit(self) -> None:
        shutil.rmtree(self.final, ignore_errors=True)
        os.replace(self.partial, self.final)

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


def write_frames(job: ClipJob) -> str:
    """Decode a clip extracted before and write its frames as JPEG, one per npz row.
    Returns "" or a one-line reason (the extraction itself is left as it is)."""
    from wav2kp.media.decode import iter_frames

    paths = job.paths
    npz = output_files(paths, job.clip_id)["npz"]
    try:
        with np.load(npz, allow_pickle=False) as data:
            times = data["times"]
        writer = _FrameWriter(paths, job.clip_id)
        try:
            for time_s, rgb in iter_frames(job.source, threads=DECODE_THREADS):
                if writer.count < len(times) and abs(time_s - times[writer.count]) > 1e-3:
                    raise ValueError(
                        f"frame {writer.count} decodes at {time_s:.4f} s but was extracted "
                        f"at {times[writer.count]:.4f} s"
                    )
                writer.add(rgb)
            if writer.count != len(times):
                raise ValueError(f"{writer.count} frames decoded, {len(times)} extracted")
            writer.commit()
        except BaseException:
            writer.discard()
            raise
    except Exception as error:
        if is_storage_full(error):
            raise StorageFull(
                f"disk full while writing frames of {job.clip_id} into {paths.frames}: "
                f"{' '.join(str(error).split())}"
            ) from None
        return one_line(job.source, error)
    return ""


def write_clip_audio(
    source: Path, files: dict[str, Path], info, sample_rate: int
) -> tuple[int, int, float]:
    """The clip's audio as PCM at its own rate and channels (``orig_wav``) and as mono at
    ``sample_rate`` (``wav``); returns (original rate, channels, seconds)."""
    import soundfile as sf

    from wav2kp.media.audio import load_audio, write_wav
    from wav2kp.media.decode import extract_audio_pcm

    rate, n_channels = extract_audio_pcm(source, files["orig_wav"], info=info)
    samples, _ = load_audio(files["orig_wav"], sample_rate=sample_rate)
    write_wav(files["wav"], samples, sample_rate)
    return rate, n_channels, float(sf.info(str(files["orig_wav"])).duration)


def _extract_clip(job: ClipJob) -> dict[str, Any]:
    from wav2kp.extraction.facemesh import shared_tracker
    from wav2kp.extraction.landmarks import mediapipe_to_68
    from wav2kp.extraction.pose import head_pose
    from wav2kp.media.decode import DecodeLog, iter_frames
    from wav2kp.media.probe import MediaError, probe

    params = ExtractParams.from_dict(job.params)
    paths = job.paths
    files = output_files(paths, job.clip_id)
    source = Path(job.source)

    info = probe(source)
    if not info.has_video:
        raise MediaError(f"{source}: no video stream (audio-only file)")
    if not info.has_audio:
        raise MediaError(f"{source}: no audio stream (a speech model needs the voice)")

    # the audio is decoded while the frames are tracked (libav and torch release the GIL)
    audio_pool = ThreadPoolExecutor(max_workers=1)
    audio_future = audio_pool.submit(
        write_clip_audio, source, files, info, params.audio_sample_rate
    )
    frames: _FrameWriter | None = None
    frames_later = False  # frames decoded at reduced size: the JPEGs need a full pass
    try:
        times: list[float] = []
        points: list[np.ndarray | None] = []
        log = DecodeLog()
        size = (info.width or 0, info.height or 0)
        decoded = iter_frames(
            source, log, info=info, threads=DECODE_THREADS, max_side=params.decode_max_side
        )
        with shared_tracker(
            max_faces=params.max_faces,
            refine=params.refine_landmarks,
            static=False,
            min_detection_confidence=params.min_detection_confidence,
            min_tracking_confidence=params.min_tracking_confidence,
            face=params.face,
        ) as tracker:
            for time_s, rgb in decoded:
                if not times:
                    scale = log.scale
                    size = (scale.source_width, scale.source_height)
                    if job.keep_frames and scale.is_full:
                        frames = _FrameWriter(paths, job.clip_id)
                    frames_later = job.keep_frames and not scale.is_full
                times.append(time_s)
                found = tracker.process(rgb)
                points.append(None if found is None else scale.to_source(found))
                if frames is not None:
                    frames.add(rgb)
            faces = np.asarray(tracker.faces, dtype=np.int8)
            first_crowd = tracker.first_crowd
    except BaseException:
        if frames is not None:
            frames.discard()
        raise
    finally:
        # always wait: the audio thread must not write after a failure cleaned up
        audio_pool.shutdown(wait=True)
    sample_rate, channels, audio_seconds = audio_future.result()
    if log.returncode not in (0, None):
        cause = log.last_error() or f"decoder exit code {log.returncode}"
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
    # stored, not deflated: float32 landmarks compress by about a tenth, and deflating
    # them costs a few percent of the tracking's own CPU per frame
    write_npz(
        files["npz"],
        compressed=False,
        times=times_arr,
        lm478=lm_filled.astype(np.float32),
        lm68=lm68,
        frame_status=status.astype(np.int8),
        faces=faces,
        pose_rotation=rotation,
        pose_translation=translation,
        pose_scale=scale,
        width=np.int32(size[0]),
        height=np.int32(size[1]),
        fps=np.float64(fps),
        audio_sample_rate=np.int32(sample_rate),
    )
    if frames is not None:
        frames.commit()
    elif frames_later and (reason_frames := write_frames(job)):
        raise MediaError(reason_frames)
    video_seconds = span + (1.0 / fps if fps else 0.0)
    warnings = [
        *_crowd_warnings(faces, first_crowd, times_arr, params),
        *_gap_warnings(status, times_arr),
        *_length_warnings(video_seconds, audio_seconds),
    ]
    return {
        "status": "ok" if ok else "rejected",
        "error": "" if ok else f"{source}: {reason}",
        "warning": f"{source}: " + "; ".join(warnings) if warnings else "",
        "frames": len(times_arr),
        "fps": round(fps, 4),
        "duration": round(float(duration), 4),
        "width": size[0],
        "height": size[1],
        "detection_rate": round(float(np.mean(status == DETECTED)), 4),
        "interpolated_frames": int(np.sum(status == INTERPOLATED)),
        "missing_frames": int(np.sum(status == MISSING)),
        "multi_face_frames": int(np.sum(faces >= 2)),
        "audio_sample_rate": sample_rate,
        "audio_channels": channels,
        "audio_duration": round(audio_seconds, 4),
    }


# ---------------------------------------------------------------- what a user should know


def _crowd_warnings(
    faces: np.ndarray, first_crowd: tuple[int, int, int] | None, times: np.ndarray, params
) -> list[str]:
    crowded = int(np.sum(faces >= 2))
    if not crowded:
        return []
    most = int(faces.max())
    looked_for = max(params.max_faces, int(params.face) if params.face.isdigit() else 1)
    count = f"{most} faces" if most < looked_for else f"{most} or more faces"
    line = f"{count} in view in {crowded} of {len(faces)} frames"
    if first_crowd is not None:
        index, rank, n = first_crowd
        who = "the largest face" if params.face == "largest" else f"face {params.face}"
        if rank:
            line += f"; followed {who}, number {rank} of {n} from the left at {times[index]:.2f} s"
        else:
            line += f"; {who} not told apart at {times[index]:.2f} s"
    return [line + "; to follow another, extract with --face N (N-th from the left)"]


def _gap_warnings(status: np.ndarray, times: np.ndarray, shown: int = 3) -> list[str]:
    """Faces lost for longer than the interpolation limit: said, left missing."""
    runs = find_runs(status == MISSING)
    if not runs:
        return []
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    spans = sorted(
        ((times[stop - 1] - times[start] + step, start, stop) for start, stop in runs),
        reverse=True,
    )
    parts = [f"{seconds:.2f} s from {times[start]:.2f} s" for seconds, start, _ in spans[:shown]]
    more = f" and {len(spans) - shown} shorter" if len(spans) > shown else ""
    total = int(sum(stop - start for _, start, stop in spans))
    return [f"face lost for {', '.join(parts)}{more} ({total} frames left missing, not filled)"]


def _length_warnings(video_seconds: float, audio_seconds: float) -> list[str]:
    difference = audio_seconds - video_seconds
    if abs(difference) <= AV_LENGTH_WARNING_SECONDS:
        return []
    longer = "longer" if difference > 0 else "shorter"
    return [
        f"audio is {abs(difference):.2f} s {longer} than the video ({audio_seconds:.2f} s vs "
        f"{video_seconds:.2f} s); both keep their own timestamps from time 0, so keypoints "
        "exist only while there is video"
        + ("" if difference > 0 else " and the end of the video has no speech")
    ]
