"""The ``wav2kp`` command line.

Each subcommand lives in the module that owns the work; that module defines
``add_cli_arguments(parser)`` and ``run_cli(args) -> int``. Modules are imported only
when their subcommand runs, so ``wav2kp --help`` stays fast (no torch/mediapipe import).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "config": (
        "wav2kp.config",
        "the run parameters: resolved as run.json records them, or README's table",
    ),
    "demo": ("wav2kp.demo.corpus", "generate the offline demo corpus (mp4 + manifest)"),
    "extract": ("wav2kp.extraction.extract", "extract audio, frames timestamps and face keypoints"),
    "features": (
        "wav2kp.features.features",
        "compute audio features (log-mel, or the original's MFCC) for extracted clips",
    ),
    "train": (
        "wav2kp.studies.train_run",
        "train the models notebook 04 trains (every model x seed)",
    ),
    "cv": ("wav2kp.studies.cv", "cross-validate model variants (variants x folds x seeds)"),
    "voices": (
        "wav2kp.training.voices",
        "espeak-ng voices reading a real corpus's sentences, its mouths warped on",
    ),
    "evaluate": ("wav2kp.evaluation.evaluate", "evaluate models on the held-out split"),
    "results": (
        "wav2kp.evaluation.results",
        "summarise a results file: tables with intervals, README block",
    ),
    "predict": (
        "wav2kp.predict.predict",
        "predict keypoints (and a vid2vid folder) for a speech file",
    ),
    "report": ("wav2kp.report.report", "run notebooks 01-06 with papermill and render the diary"),
    "bench": ("wav2kp.benchmarks", "run benchmarks and print numbers"),
}


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wav2kp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == load:
            importlib.import_module(module).add_cli_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(load=name if name in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run_cli(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
