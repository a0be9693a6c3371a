"""Demo corpus generation speed: the default size (quick: tiny) with 1 and 2 workers.

Prints seconds, seconds of compute per second of video and the 2-worker speed-up.
Target: the default corpus in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import os
import tempfile
import time


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (workers, ffmpeg): unlike
    wall time, it barely depends on what else the machine is running."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(quick: bool = False) -> dict:
    from wav2kp.demo.corpus import build_corpus

    size = "tiny" if quick else "default"
    results: dict = {"size": size, "cpu_count": os.cpu_count(), "load_before": _load()}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="wav2kp-bench-corpus-") as tmp:
            start, cpu_start = time.perf_counter(), _cpu_seconds()
            manifest = build_corpus(tmp, size=size, seed=0, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            cpu = _cpu_seconds() - cpu_start
        video_s = float(manifest["duration"].sum())
        results[f"workers{workers}_s"] = round(seconds, 2)
        results[f"workers{workers}_s_per_video_s"] = round(seconds / video_s, 4)
        results[f"workers{workers}_cpu_s"] = round(cpu, 2)
        results["clips"], results["video_s"] = len(manifest), round(video_s, 1)
        print(
            f"demo corpus {size}: {len(manifest)} clips, {video_s:.1f} s of video, "
            f"{workers} worker(s): {seconds:.1f} s ({seconds / video_s:.3f} s per video s), "
            f"CPU {cpu:.1f} s ({cpu / video_s:.3f} CPU s per video s)",
            flush=True,
        )
    results["speedup_2_vs_1"] = round(results["workers1_s"] / results["workers2_s"], 2)
    results["load_after"] = _load()
    # what 2 otherwise idle cores would take: the CPU work split over 2 cores
    results["idle_2core_estimate_s"] = round(results["workers2_cpu_s"] / 2, 1)
    target = 120.0  # seconds for the default size on 2 cores
    line = f"speed-up 2 vs 1 workers: {results['speedup_2_vs_1']:.2f}x"
    if size == "default":
        line += (
            f"; 2 workers / 2-minute target: {results['workers2_s'] / target:.2f}"
            f" (CPU work / 2 cores: {results['idle_2core_estimate_s']:.0f} s"
            f" = {results['idle_2core_estimate_s'] / target:.2f} of the target)"
        )
    print(f"{line}; load average {results['load_before']:.1f} -> {results['load_after']:.1f}")
    return results
