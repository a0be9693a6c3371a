"""Extraction speed: end to end (decode + audio + face mesh + gaps/pose + atomic writes)
against MediaPipe alone on the same frames already decoded in memory, and 1 vs 2 workers.

Targets: end-to-end / MediaPipe-alone >= 0.85 (decoding and writing hide behind the
tracking), and 2 workers >= 1.7x the frames/s of 1 worker (on a machine with 2 free
cores). Inputs: the real clips in ../shared/realclips when present, else generated
talking-head-sized videos of a real face photo.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _inputs(folder: Path, quick: bool) -> list[Path]:
    """Videos to extract, linked into ``folder`` (repeated so that pool start-up is a
    small part of the multi-worker run)."""
    from wav2kp.paths import shared_realclips

    real = sorted(shared_realclips().glob("*.mp4")) if shared_realclips().is_dir() else []
    if quick:
        real = [p for p in real if p.stat().st_size < 700_000][:2]
    sources = real or [_generated_clip(folder.parent / "generated.mp4", 60 if quick else 200)]
    repeats = 1 if quick else 2
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for r in range(repeats):
        for src in sources:
            link = folder / f"{src.stem}_r{r}{src.suffix}"
            os.symlink(src, link)
            links.append(link)
    return links


def _generated_clip(path: Path, n_frames: int) -> Path:
    """A 512x512 25 fps clip of the astronaut portrait drifting, with a tone as audio."""
    import subprocess

    import cv2
    import imageio_ffmpeg
    import skimage.data

    face = skimage.data.astronaut()
    frames = []
    for i in range(n_frames):
        matrix = cv2.getRotationMatrix2D(
            (256.0, 200.0), 5 * np.sin(i / 9), 1 + 0.05 * np.sin(i / 13)
        )
        matrix[:, 2] += (4 * np.sin(i / 5), 3 * np.cos(i / 7))
        frames.append(cv2.warpAffine(face, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT))
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "512x512", "-r", "25", "-i", "pipe:0",
        "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=44100:duration={n_frames / 25}",
        "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        str(path),
    ]  # fmt: skip
    subprocess.run(cmd, input=np.stack(frames).tobytes(), check=True)
    return path


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg), user + system."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _mediapipe_alone(videos: list[Path]) -> tuple[int, float, float]:
    """Frames and seconds of face mesh tracking on frames decoded beforehand (one tracker
    per clip, as extraction does)."""
    from wav2kp.facemesh import FaceMeshTracker
    from wav2kp.media.decode import iter_frames

    frames_total, seconds, cpu = 0, 0.0, 0.0
    for video in videos:
        frames = [rgb.copy() for _, rgb in iter_frames(video)]
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        with FaceMeshTracker() as tracker:
            for rgb in frames:
                tracker.process(rgb)
        seconds += time.perf_counter() - start
        cpu += _cpu_seconds() - cpu_start
        frames_total += len(frames)
    return frames_total, seconds, cpu


def _end_to_end(input_dir: Path, out_root: Path, workers: int) -> tuple[int, float, float, float]:
    from wav2kp.extract import extract_corpus
    from wav2kp.paths import CorpusPaths

    start, cpu_start = time.perf_counter(), _cpu_seconds()
    table = extract_corpus(
        input_dir, CorpusPaths("bench", root=out_root), workers=workers, progress=False
    )
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start  # meaningful for 1 worker (in-process) only
    ok = table[table["status"] != "error"]
    detected = float((ok["frames"] * ok["detection_rate"]).sum() / max(ok["frames"].sum(), 1))
    return int(ok["frames"].sum()), seconds, cpu, detected


def run(quick: bool = False) -> dict:
    from wav2kp.audio import resample
    from wav2kp.facemesh import FaceMeshTracker

    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-extract-") as tmp:
        tmp_path = Path(tmp)
        videos = _inputs(tmp_path / "videos", quick)
        # one-time costs (model loading, torch import for resampling) before any timing;
        # worker processes of the 2-worker run pay them again, inside its time
        with FaceMeshTracker() as tracker:
            tracker.process(np.zeros((64, 64, 3), np.uint8))
        resample(np.zeros(4410, np.float32), 44100, 16000)
        ref_frames, ref_seconds, ref_cpu = _mediapipe_alone(videos)
        frames1, seconds1, cpu1, detection = _end_to_end(tmp_path / "videos", tmp_path / "w1", 1)
        frames2, seconds2, _, _ = _end_to_end(tmp_path / "videos", tmp_path / "w2", 2)

    mediapipe_fps = ref_frames / ref_seconds
    fps1, fps2 = frames1 / seconds1, frames2 / seconds2
    result = {
        "inputs": sorted({v.name.rsplit("_r", 1)[0] for v in videos}),
        "clips": len(videos),
        "frames": frames1,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "mediapipe_alone_fps": mediapipe_fps,
        "end_to_end_fps_1_worker": fps1,
        "end_to_end_fps_2_workers": fps2,
        "ratio_end_to_end_vs_mediapipe": fps1 / mediapipe_fps,
        # CPU seconds per frame: insensitive to other load on a shared machine
        "mediapipe_alone_cpu_ms_per_frame": 1000 * ref_cpu / ref_frames,
        "end_to_end_cpu_ms_per_frame": 1000 * cpu1 / frames1,
        "cpu_ratio_mediapipe_vs_end_to_end": (ref_cpu / ref_frames) / (cpu1 / frames1),
        "speedup_2_vs_1_workers": fps2 / fps1,
        "detection_rate": detection,
        "target_ratio": 0.85,
        "target_speedup": 1.7,
    }
    print(
        f"{len(videos)} clips, {frames1} frames (load average {result['load_average_1min']:.1f} "
        f"on {result['cpu_count']} cores)\n"
        f"  MediaPipe alone on decoded frames : {mediapipe_fps:7.1f} frames/s\n"
        f"  end to end, 1 worker              : {fps1:7.1f} frames/s "
        f"(ratio {result['ratio_end_to_end_vs_mediapipe']:.2f}, target >= 0.85)\n"
        f"  CPU per frame: MediaPipe alone {result['mediapipe_alone_cpu_ms_per_frame']:.2f} ms, "
        f"end to end {result['end_to_end_cpu_ms_per_frame']:.2f} ms "
        f"(ratio {result['cpu_ratio_mediapipe_vs_end_to_end']:.2f})\n"
        f"  end to end, 2 workers             : {fps2:7.1f} frames/s "
        f"(speed-up {result['speedup_2_vs_1_workers']:.2f}x, target >= 1.7x)\n"
        f"  detection rate                    : {detection:.3f}"
    )
    return result
