"""Benchmarks: each prints its numbers (and ratios against a reference measured in the
same run) and returns them as a dict. ``wav2kp bench NAME`` or ``wav2kp bench all``.

Each area owns one module here defining ``run(quick: bool) -> dict``.
"""

from __future__ import annotations

import argparse
import importlib
import time

BENCHMARKS = {
    "corpus": "wav2kp.benchmarks.corpus",
    "extraction": "wav2kp.benchmarks.extraction",
    "features": "wav2kp.benchmarks.features",
    "training": "wav2kp.benchmarks.training",
    "predict": "wav2kp.benchmarks.predict",
    "media": "wav2kp.benchmarks.media",
    "landmarks": "wav2kp.benchmarks.landmarks",
    "handoff": "wav2kp.benchmarks.handoff",
    "face": "wav2kp.benchmarks.face",
    "phones": "wav2kp.benchmarks.phones",
    "clipping": "wav2kp.benchmarks.clipping",
}


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", default=["all"], help="benchmarks to run, or 'all'")
    parser.add_argument("--quick", action="store_true", help="smaller inputs (smoke check)")
    parser.add_argument("--json", dest="json_out", help="also write all numbers to this file")


def run_cli(args: argparse.Namespace) -> int:
    names = list(BENCHMARKS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
    from wav2kp.quiet import quiet_stderr

    results = {}
    # benchmarks start worker processes (Dask, process pools) that load MediaPipe: every
    # process's stderr goes through the one filter of known chatter
    with quiet_stderr():
        for name in names:
            print(f"\n== benchmark: {name}", flush=True)
            start = time.perf_counter()
            results[name] = importlib.import_module(BENCHMARKS[name]).run(quick=args.quick)
            print(f"== {name} done in {time.perf_counter() - start:.1f} s", flush=True)
    if args.json_out:
        from wav2kp.atomic import write_json

        write_json(args.json_out, results)
    return 0
