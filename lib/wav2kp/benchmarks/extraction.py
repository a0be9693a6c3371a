"""Extraction speed: frames/s and CPU seconds per frame end to end (probe, decode, audio,
face mesh, gaps, pose, atomic writes, manifest) in this process and on 1 and 2 Dask
workers, against MediaPipe alone on the same frames (the same tracker settings, frames
decoded beforehand at full resolution), printed as ratios measured in one run.

Target (issue 11): CPU per frame <= 1.2 x MediaPipe alone. CPU seconds are measured
(process time of every process involved), not wall time, so that other load on a shared
machine changes them little; frames/s are printed too. The Dask runs are measured on
warm workers (steady state: what a 10^5-clip corpus sees); the cluster's start-up is
printed separately. Inputs: the real clips in ../shared/realclips when present (each
twice, so that 2 workers have work to share), else generated talking-head videos.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_CPU_RATIO = 1.2


def _inputs(folder: Path, quick: bool, source: Path | None = None) -> list[Path]:
    """Videos to extract, linked into ``folder``: those of ``source`` (once each) if
    given, else the real clips (twice each), else generated ones."""
    from wav2kp.extraction.extract import VIDEO_SUFFIXES, find_videos
    from wav2kp.paths import shared_realclips

    if source is not None:
        folder.mkdir(parents=True, exist_ok=True)
        links = []
        for video in find_videos(Path(source)):
            link = folder / f"{video.stem}_r0{video.suffix}"
            os.symlink(video.resolve(), link)
            links.append(link)
        return links
    real = []
    if shared_realclips().is_dir():
        real = sorted(p for p in shared_realclips().iterdir() if p.suffix in VIDEO_SUFFIXES)
    if quick:
        real = [p for p in real if p.stat().st_size < 700_000][:2]
    sources = real or [
        _generated_clip(folder.parent / f"generated{i}.mp4", 60 if quick else 200, 384 + 64 * i)
        for i in range(1 if quick else 3)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for r in range(1 if quick else 2):
        for src in sources:
            link = folder / f"{src.stem}_r{r}{src.suffix}"
            os.symlink(src, link)
            links.append(link)
    return links


def _generated_clip(path: Path, n_frames: int, size: int) -> Path:
    """A ``size``-pixel square 25 fps clip of the astronaut portrait drifting, with a tone."""
    import subprocess

    import cv2
    import imageio_ffmpeg
    import skimage.data

    face = cv2.resize(skimage.data.astronaut(), (size, size))
    frames = []
    for i in range(n_frames):
        centre = (size / 2, size * 0.4)
        matrix = cv2.getRotationMatrix2D(centre, 5 * np.sin(i / 9), 1 + 0.05 * np.sin(i / 13))
        matrix[:, 2] += (4 * np.sin(i / 5), 3 * np.cos(i / 7))
        frames.append(cv2.warpAffine(face, matrix, (size, size), borderMode=cv2.BORDER_REFLECT))
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", "25", "-i", "pipe:0",
        "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=44100:duration={n_frames / 25}",
        "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        str(path),
    ]  # fmt: skip
    subprocess.run(cmd, input=np.stack(frames).tobytes(), check=True)
    return path


def _cpu_seconds() -> float:
    """CPU of this process and its waited-for children, user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _mediapipe_alone(videos: list[Path]) -> dict[str, tuple[int, float, float]]:
    """Per video: (frames, wall seconds, CPU seconds) of face mesh tracking alone, on
    frames decoded beforehand at full resolution, with extraction's tracker settings."""
    from wav2kp.extraction.extract import ExtractParams
    from wav2kp.extraction.facemesh import FaceMeshTracker
    from wav2kp.media.decode import iter_frames

    params = ExtractParams()
    out = {}
    for video in videos:
        frames = [rgb.copy() for _, rgb in iter_frames(video)]
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        with FaceMeshTracker(
            max_faces=params.max_faces,
            refine=params.refine_landmarks,
            min_detection_confidence=params.min_detection_confidence,
            min_tracking_confidence=params.min_tracking_confidence,
            face=params.face,
        ) as tracker:
            for rgb in frames:
                tracker.process(rgb)
        out[video.name] = (len(frames), time.perf_counter() - start, _cpu_seconds() - cpu_start)
    return out


def _parts(videos: list[Path]) -> dict[str, dict[str, float]]:
    """Per video, CPU seconds of the extraction's parts done alone, as extraction does
    them: probing, decoding the frames for MediaPipe, the audio (PCM and 16 kHz)."""
    from wav2kp.extraction.extract import ExtractParams
    from wav2kp.extraction.extract_clip import DECODE_THREADS, write_clip_audio
    from wav2kp.media.decode import iter_frames
    from wav2kp.media.probe import probe

    params = ExtractParams()
    out = {}
    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-parts-") as tmp:
        for video in videos:
            start = _cpu_seconds()
            info = probe(video)
            probed = _cpu_seconds()
            for _ in iter_frames(
                video, info=info, threads=DECODE_THREADS, max_side=params.decode_max_side
            ):
                pass
            decoded = _cpu_seconds()
            files = {"orig_wav": Path(tmp) / "o.wav", "wav": Path(tmp) / "a.wav"}
            write_clip_audio(video, files, info, params.audio_sample_rate)
            out[video.name] = {
                "probe": probed - start,
                "decode": decoded - probed,
                "audio": _cpu_seconds() - decoded,
            }
    return out


def _worker_cpu() -> float:
    """Run on a worker: its process's CPU so far (decoding and audio run in-process)."""
    return _cpu_seconds()


def _warm_cluster(workers: int, input_dir: Path, root: Path):
    """An embedded cluster whose workers have extracted a clip each (MediaPipe loaded),
    and its start-up: (client, wall seconds, CPU seconds of every process)."""
    from wav2kp.cluster import get_client
    from wav2kp.extraction.extract import extract_corpus
    from wav2kp.paths import CorpusPaths

    start, cpu_start = time.perf_counter(), _cpu_seconds()
    client = get_client(workers=workers)
    warm = root / f"warm{workers}"
    warm.mkdir(parents=True)
    for video in sorted(input_dir.iterdir())[: workers + 1]:
        os.symlink(video.resolve(), warm / video.name)
    extract_corpus(
        warm, CorpusPaths("warm", root=root / f"w{workers}"), client=client, progress=False
    )
    cpu = _cpu_seconds() - cpu_start + sum(client.run(_worker_cpu).values())
    return client, time.perf_counter() - start, cpu


def _extract(input_dir: Path, root: Path, client) -> dict:
    """One end-to-end extraction into a new folder: in this process (``client`` None) or
    on a warm cluster; CPU of this process (client, local scheduler) and the workers."""
    from wav2kp.extraction.extract import extract_corpus
    from wav2kp.paths import CorpusPaths

    workers_before = sum(client.run(_worker_cpu).values()) if client else 0.0
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    table = extract_corpus(
        input_dir, CorpusPaths("bench", root=root), workers=0, client=client, progress=False
    )
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    if client is not None:
        cpu += sum(client.run(_worker_cpu).values()) - workers_before
    decoded = table[table["status"] != "error"]
    return {
        "frames": int(decoded["frames"].sum()),
        "seconds": seconds,
        "cpu": cpu,
        "clip_cpu": dict(zip(decoded["file"], decoded["cpu_seconds"], strict=True)),
        "errors": table.loc[table["status"] == "error", "error"].tolist(),
    }


ENGINES = {"in process": 0, "1 worker": 1, "2 workers": 2}


def run(
    quick: bool = False, source: str | os.PathLike | None = None, rounds: int | None = None
) -> dict:
    """``wav2kp bench extraction``; ``source``: a folder of videos instead of the real
    clips (e.g. the demo corpus: ``python -m wav2kp.benchmarks.extraction data/raw/demo``)."""
    from wav2kp.extraction.extract import ExtractParams
    from wav2kp.extraction.facemesh import FaceMeshTracker
    from wav2kp.media.audio import resample

    rounds = rounds or (1 if quick else 3)
    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-extract-") as tmp:
        tmp_path = Path(tmp)
        videos = _inputs(tmp_path / "videos", quick, Path(source) if source else None)
        # one-time costs in this process (model loading, torch import) before any timing
        with FaceMeshTracker() as tracker:
            tracker.process(np.zeros((64, 64, 3), np.uint8))
        resample(np.zeros(4410, np.float32), 44100, 16000)
        clusters = {
            name: _warm_cluster(n, tmp_path / "videos", tmp_path)
            for name, n in ENGINES.items()
            if n
        }
        # rounds in turn, so that the machine's other load falls on every engine alike
        alone_rounds, engine_rounds = [], {name: [] for name in ENGINES}
        parts_rounds = []
        try:
            for r in range(rounds):
                alone_rounds.append(_mediapipe_alone(videos))
                parts_rounds.append(_parts([v for v in videos if "_r0" in v.name]))
                for name in ENGINES:
                    client = clusters[name][0] if name in clusters else None
                    engine_rounds[name].append(
                        _extract(
                            tmp_path / "videos", tmp_path / f"{name}-{r}".replace(" ", ""), client
                        )
                    )
        finally:
            for client, _, _ in reversed(list(clusters.values())):
                client.close()

    def median(values):
        return float(np.median(list(values)))

    ref_frames = sum(f for f, _, _ in alone_rounds[0].values())
    ref_cpu = median(sum(c for _, _, c in a.values()) for a in alone_rounds) / ref_frames
    ref_fps = ref_frames / median(sum(s for _, s, _ in a.values()) for a in alone_rounds)
    result: dict = {
        "inputs": sorted({v.name.rsplit("_r", 1)[0] for v in videos}),
        "clips": len(videos),
        "frames": ref_frames,
        "rounds": rounds,
        "decode_max_side": ExtractParams().decode_max_side,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "mediapipe_alone_fps": ref_fps,
        "mediapipe_alone_cpu_ms_per_frame": 1000 * ref_cpu,
        "target_cpu_ratio": TARGET_CPU_RATIO,
    }
    print(
        f"{len(videos)} clips, {ref_frames} frames, decoded for MediaPipe at long side <= "
        f"{result['decode_max_side']}; medians of {rounds} round(s) (load average "
        f"{result['load_average_1min']:.1f} on {result['cpu_count']} cores)\n"
        f"  {'':28s} {'frames/s':>9s} {'CPU ms/frame':>13s} {'CPU ratio':>10s} {'fps ratio':>10s}\n"
        f"  {'MediaPipe alone':28s} {ref_fps:9.1f} {1000 * ref_cpu:13.2f} {1.0:10.2f} {1.0:10.2f}"
    )
    for name, runs in engine_rounds.items():
        for r in runs:
            if r["frames"] != ref_frames or r["errors"]:
                raise RuntimeError(f"{name}: {r['frames']} of {ref_frames} frames ({r['errors']})")
        key = name.replace(" ", "_")
        fps = ref_frames / median(r["seconds"] for r in runs)
        cpu = median(r["cpu"] for r in runs) / ref_frames
        result[f"{key}_fps"] = fps
        result[f"{key}_cpu_ms_per_frame"] = 1000 * cpu
        result[f"{key}_cpu_ratio"] = cpu / ref_cpu
        result[f"{key}_fps_ratio"] = fps / ref_fps
        line = (
            f"  {'end to end, ' + name:28s} {fps:9.1f} {1000 * cpu:13.2f} "
            f"{cpu / ref_cpu:10.2f} {fps / ref_fps:10.2f}"
        )
        if name in clusters:
            _, seconds, startup_cpu = clusters[name]
            result[f"{key}_startup_seconds"] = seconds
            result[f"{key}_startup_cpu_seconds"] = startup_cpu
            line += (
                f"   (start-up incl. a first clip each: {seconds:.0f} s, {startup_cpu:.1f} CPU s)"
            )
        print(line)
    result["speedup_2_vs_1_workers"] = result["2_workers_fps"] / result["1_worker_fps"]
    print(
        f"  2 workers / 1 worker frames/s: {result['speedup_2_vs_1_workers']:.2f}x; "
        f"target: CPU ratio <= {TARGET_CPU_RATIO}"
    )
    # where the CPU goes: per source clip, in process, in ms per frame; "rest" = end to
    # end - MediaPipe alone - the parts (MediaPipe on reduced frames, gaps, pose, writes)
    print(
        f"  per clip, in process, CPU ms/frame: {'frames':>6s} {'end to end':>10s} "
        f"{'MediaPipe':>9s} {'probe':>6s} {'decode':>6s} {'audio':>6s} {'rest':>6s} {'ratio':>6s}"
    )
    keys = ("end", "mediapipe", "probe", "decode", "audio")
    per_clip, totals, total_frames = {}, dict.fromkeys(keys, 0.0), 0
    for name in sorted(alone_rounds[0]):
        if "_r0" not in name:
            continue
        frames = alone_rounds[0][name][0]
        row = {
            "end": median(r["clip_cpu"][name] for r in engine_rounds["in process"]),
            "mediapipe": median(a[name][2] for a in alone_rounds),
            **{k: median(p[name][k] for p in parts_rounds) for k in ("probe", "decode", "audio")},
        }
        for key in keys:
            totals[key] += row[key]
        total_frames += frames
        clip = name.rsplit("_r", 1)[0]
        per_clip[clip] = {"frames": frames, **{k: 1000 * v / frames for k, v in row.items()}}
        if len(alone_rounds[0]) <= 24:  # a long corpus: its total only
            _print_parts(clip, frames, row)
    _print_parts("all clips", total_frames, totals)
    result["per_clip"] = per_clip
    return result


def _print_parts(name: str, frames: int, row: dict[str, float]) -> None:
    ms = {k: 1000 * v / frames for k, v in row.items()}
    rest = ms["end"] - ms["mediapipe"] - ms["probe"] - ms["decode"] - ms["audio"]
    print(
        f"    {name[:34]:34s} {frames:6d} {ms['end']:10.2f} {ms['mediapipe']:9.2f} "
        f"{ms['probe']:6.2f} {ms['decode']:6.2f} {ms['audio']:6.2f} {rest:6.2f} "
        f"{ms['end'] / ms['mediapipe']:6.2f}"
    )


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", help="folder of videos (default: the real clips)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (median)")
    parser.add_argument("--json", dest="json_out", help="also write the numbers to this file")
    args = parser.parse_args()
    numbers = run(source=args.source, rounds=args.rounds)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(numbers, indent=2, default=str) + "\n")
