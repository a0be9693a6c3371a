"""``python -m wav2kp.studies COMMAND``: the lever study's final check and tools, and the
committed result pages (``main``'s doc lists the commands)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.atomic import write_csv, write_text
from wav2kp.features.splits import ensure_split
from wav2kp.features.sync import CORRECTION_MAX_LAG_MS, corpus_av_lags
from wav2kp.studies.levers import (
    UNSEEN_CORPORA,
    UNSEEN_EXCLUDE,
    evaluate_final,
    gate_sweep,
    load_sources,
)
from wav2kp.studies.pages import (
    FINAL_CSV,
    LEVERS_CSV,
    MOUTH_CSV,
    PAGES,
    final_page,
    final_tables,
    levers_page,
    mouth_page,
    mouth_study_command,
    page_text,
)
from wav2kp.training.vad import VadConfig


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wav2kp.studies COMMAND``: ``final`` (score a trained model on the
    test sentences and unseen voices), ``final-table`` / ``levers-table`` / ``mouth-table``
    (markdown from committed result files; ``pages`` rewrites every page of ``PAGES``
    whose table is committed), ``vad`` (sweep
    the silence gate against GRID's alignments), ``lags`` (A/V lags: quartiles,
    implausible clips)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m wav2kp.studies", description=main.__doc__)
    parser.add_argument(
        "command",
        choices=["final", "final-table", "levers-table", "mouth-table", "pages", "vad", "lags"],
    )
    parser.add_argument("--corpus", default="grid")
    parser.add_argument(
        "--model", default="default", help="model folder under data/models/<corpus>/"
    )
    parser.add_argument("--align-dir", default=None, help="GRID align/ folder (speech truth)")
    parser.add_argument("--unseen", action="append", default=None, metavar="CORPUS",
                        help="an extracted corpus of voices the model never heard, repeatable "
                        "(scored alone and pooled; default: "
                        f"{' '.join(f'--unseen {c}' for c in UNSEEN_CORPORA)}; '' none)")  # fmt: skip
    parser.add_argument("--unseen-exclude", default=UNSEEN_EXCLUDE, help="regex of clip ids")
    parser.add_argument("--csv", type=Path, help="final: write the clip table here; "
                        "*-table: read it from here")  # fmt: skip
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # small models: one thread is as fast, and kind to a busy machine
    if args.command == "pages":  # every committed page, from its committed table
        for page, (_, table) in PAGES.items():
            if not Path(table).is_file():  # a study not yet run (and committed) has no page
                print(f"skipped {page}: no {table} yet (its study has not been run)")
                continue
            write_text(page, page_text(page))
            print(f"wrote {page}")
        return 0
    if args.command == "mouth-table":
        csv = args.csv or Path(MOUTH_CSV)
        if not Path(csv).is_file():
            raise SystemExit(f"error: {csv}: no such task table; the mouth study writes it: "
                             f"{mouth_study_command(csv)}")  # fmt: skip
        print(mouth_page(csv), end="")
        return 0
    if args.command == "levers-table":
        print(levers_page(args.csv or LEVERS_CSV), end="")
        return 0
    if args.command == "final-table":
        print(final_page(args.csv or FINAL_CSV, args.corpus), end="")
        return 0
    if args.command == "final":
        unseen = UNSEEN_CORPORA if args.unseen is None else args.unseen
        try:
            table, _ = evaluate_final(args.corpus, args.model, args.align_dir, unseen,
                                      args.unseen_exclude)  # fmt: skip
        except (ValueError, FileNotFoundError) as error:
            raise SystemExit(f"error: {error}") from error
        if args.csv:
            write_csv(args.csv, table.round(6))
        print(final_tables(table, args.corpus)[1])
        return 0
    if args.command == "lags":
        for max_lag in (300.0, CORRECTION_MAX_LAG_MS):
            lags = corpus_av_lags(args.corpus, max_lag_ms=max_lag)
            quartiles = np.percentile(lags["lag_ms"].dropna(), [25, 50, 75])
            print(f"search +-{max_lag:g} ms: lag quartiles {quartiles.round(1).tolist()} ms, "
                  f"{int(lags['weak'].sum())} weak, {int(lags['outlier'].sum())} implausible")  # fmt: skip
        flagged = lags[lags["outlier"] | lags["weak"]]
        print(
            flagged[["clip_id", "lag_ms", "correlation", "weak", "outlier"]].to_string(index=False)
        )
        return 0
    # vad
    ensure_split(args.corpus)
    sources = load_sources(args.corpus, ("train", "val"), args.align_dir)
    grid = itertools.product([0.3, 0.5, 0.7, 0.8, 0.9], [0.0, 0.1], [0.04, 0.08, 0.12, 0.16],
                             [0.0, 0.04], [0.04, 0.08])  # fmt: skip
    configs = [VadConfig(threshold=t, hysteresis=h, pre_roll_s=a, post_roll_s=b, ramp_s=r)
               for t, h, a, b, r in grid]  # fmt: skip
    if VadConfig() not in configs:
        configs.append(VadConfig())
    sweep = gate_sweep(sources, configs)
    # both errors cost: an open silent frame shows a moving mouth, a held speech frame cuts r
    sweep["sum"] = sweep["silent_open"] + sweep["speech_held"]
    default = sweep.index[[c == VadConfig() for c in configs]][0]
    with pd.option_context("display.width", 200, "display.max_rows", 40):
        print(sweep.sort_values("sum").round(4).head(30).to_string(index=False))
        print(f"best 30 of {len(sweep)} settings by sum; the defaults (VadConfig()):")
        print(sweep.loc[[default]].round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
