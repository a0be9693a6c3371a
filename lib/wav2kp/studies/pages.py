"""The committed result pages under ``docs/results/`` (``make results-docs``: ``python -m
wav2kp.studies pages``), each regenerated from a committed table under ``results/`` and
naming the commands that wrote it (``tests/test_results_pages.py`` checks they agree): the
final check of GRID's model (``final_page``, from ``levers.evaluate_final``'s clip table)
and the unseen-voice lever study (``levers_page``, from ``wav2kp cv --study levers``'s task
table)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.credits import GRID, corpus_credit
from wav2kp.evaluation.bootstrap import interval_shown
from wav2kp.evaluation.results import interval_text, paired_differences, summarise
from wav2kp.studies.levers import (
    LEVER_EPOCHS,
    LEVERS,
    UNSEEN_SUFFIX,
    final_targets,
    pooled_set_name,
    unseen_corpus_name,
)

BASELINE = "loudness"  # the floor an unseen voice's model is judged against (TARGETS)
# what each unseen-voice corpus of the final page is, in words
UNSEEN_DESCRIPTIONS = {
    "grid-s2": "the 5 sentences of GRID speaker 2 in `../shared/grid-s2` (one voice; "
    "never trained on: `evaluate_final` refuses an unseen corpus that shares a clip id or "
    "a speaker with the training corpus)",
    "realclips": "the videos of `../shared/realclips` that are not GRID speaker 1 (one voice each)",
}

# ---------- the final check of a chosen model ----------


def summary_markdown(sets: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, str]]) -> str:
    """Markdown: per set, every model's metrics as mean [95 % interval] (pose-normalised
    space; no interval over fewer than 5 units), then the chosen model's target verdicts."""
    every_column = [("mouth_open_r", "mouth-opening r", 2), ("variance_ratio", "variance ratio", 2),
                    ("mouth_jitter_ratio", "mouth jitter ratio", 2),
                    ("syllable_band_ratio", "syllable-band ratio", 2),
                    ("bilabial_closure_rate", "bilabial closures", 2),
                    ("true_bilabial_closure_rate", "real mouth's bilabial closures", 2),
                    ("mouth_lmd_iod", "mouth LMD (IOD)", 4),
                    ("av_offset_frames", "lag (frames)", 1)]  # fmt: skip
    out = []
    for set_name, (table, targets, unit) in sets.items():
        columns = [c for c in every_column if c[0] in table and table[c[0]].notna().any()]
        summary = summarise(table[table["space"] == "aligned"], unit=unit)
        wide = summary.set_index(["model", "metric"])
        seeds = int(table["seed"].nunique())
        units = "test sentences" if unit == "sentence_id" else "videos"
        n_units = int(summary["n_units"].max())
        over = (f"intervals: 95 % bootstrap over {n_units} {units}" if interval_shown(n_units)
                else f"{n_units} {units}: too few for an interval")  # fmt: skip
        out.append(f"**{set_name}** ({seeds} training seed{'s' if seeds > 1 else ''}; "
                   f"{over}; pose-normalised space)\n")  # fmt: skip
        out.append(
            "| model | " + " | ".join(title for _, title, _ in columns) + " | seed sd of r |"
        )
        out.append("|---" * (len(columns) + 2) + "|")
        for model in dict.fromkeys(summary["model"]):
            cells = []
            for metric, _, digits in columns:
                row = wide.loc[(model, metric)]
                if not np.isfinite(row["estimate"]):
                    cells.append("—")
                else:
                    cells.append(
                        f"{row['estimate']:.{digits}f}"
                        + interval_text(row["low"], row["high"], row["n_units"], digits)
                    )
            sd = wide.loc[(model, "mouth_open_r"), "seed_sd"]
            cells.append("—" if not np.isfinite(sd) else f"{sd:.3f}")
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("")
        out += loudness_differences(table, unit, units)
        out.append(f"| target | threshold | estimate{' [95 %]' * interval_shown(n_units)} | "
                   "verdict |")  # fmt: skip
        out.append("|---|---|---|---|")
        for row in targets.itertuples():
            out.append(f"| {row.target} ({row.model}) | {row.threshold} | {row.estimate:.3f}"
                       f"{interval_text(row.low, row.high, row.n_units, 3)} | {row.verdict} |")  # fmt: skip
        shown = {metric for metric, _, _ in columns}
        left_out = [title for metric, title, _ in every_column if metric not in shown]
        if left_out:
            out.append(f"\nNot in this table (scored before they were defined): "
                       f"{', '.join(left_out)}.")  # fmt: skip
        out.append("")
    return "\n".join(out)


def loudness_differences(table: pd.DataFrame, unit: str, units: str) -> list[str]:
    """Markdown lines: each model's mouth-opening r minus the loudness envelope's, paired
    per clip, with its 95 % interval over ``unit`` (none without the loudness rows)."""
    aligned = table[table["space"] == "aligned"]
    if BASELINE not in set(aligned["model"]):
        return []
    diffs = paired_differences(aligned, reference=BASELINE, metrics=("mouth_open_r",),
                               unit=unit, reference_first=False)  # fmt: skip
    diffs = diffs[diffs["model"] != "mean_face"]  # a frozen mouth has no r
    order = {model: k for k, model in enumerate(dict.fromkeys(aligned["model"]))}
    diffs = diffs.sort_values("model", key=lambda m: m.map(order), kind="stable")
    if diffs.empty:
        return []
    n_units = int(diffs["n_units"].max())
    out = [f"Mouth-opening r minus the loudness envelope's, paired on the same {units}"
           + (f" (95 % interval over {n_units} {units})" if interval_shown(n_units) else "")
           + ":", "", "| model | Δ r vs loudness envelope |", "|---|---|"]  # fmt: skip
    for row in diffs.itertuples():
        cell = "—" if not np.isfinite(row.estimate) else (
            f"{row.estimate:+.3f}" + interval_text(row.low, row.high, row.n_units, 3, "+"))  # fmt: skip
        out.append(f"| {row.model} | {cell} |")
    return [*out, ""]


def final_tables(table: pd.DataFrame, corpus: str) -> tuple[pd.DataFrame, str]:
    """(target table, markdown) of ``evaluate_final``'s clip table."""
    targets, sets = final_targets(table, corpus)
    return targets, summary_markdown(sets)


# ---------- the lever study ----------

LEVER_COLUMNS = (("mouth_open_r", "r", 3), ("variance_ratio", "var. ratio", 2),
                 ("mouth_jitter_ratio", "mouth jitter", 2),
                 ("syllable_band_ratio", "syllable band", 2),
                 ("bilabial_closure_rate", "closures", 2),
                 ("true_bilabial_closure_rate", "real closures", 2), ("av_offset_frames", "lag", 2),
                 ("silent_open_share", "silent open", 3))  # fmt: skip


def lever_table(csv: str | Path, baseline: str = "log-mel (default)") -> str:
    """Markdown of a lever study's task table (``wav2kp cv --out``'s CSV): per set
    (held-out sentences, each proxy) and view, every variant's mean ± sd over its runs
    (folds x seeds), and its difference from ``baseline`` paired on the same fold and
    seed (mean ± sd of the paired differences)."""
    table = pd.read_csv(csv)
    table = table[table["error"].fillna("") == ""].copy()  # one block: columns are added
    for metric, _, _ in LEVER_COLUMNS:  # the main columns are the held-out set as configured
        if metric in table:
            table[f"heldout:{metric}"] = table[metric]
    prefixes = sorted({c.split(":")[0] for c in table.columns if ":" in c and "clips" not in c},
                      key=lambda p: (p.split("+")[0] != "heldout", p))  # fmt: skip
    runs = table.groupby("variant", sort=False).size()
    out = [f"{len(table)} training runs: per variant {runs.max()} (folds x seeds). Cells: mean "
           "± sd over runs; Δ: difference from the baseline on the same fold and seed, mean ± "
           f"sd (baseline: {baseline}).", ""]  # fmt: skip
    base = table[table["variant"] == baseline].set_index(["fold", "seed"])
    for prefix in prefixes:
        columns = [(m, t, d) for m, t, d in LEVER_COLUMNS if f"{prefix}:{m}" in table.columns
                   and table[f"{prefix}:{m}"].notna().any()]  # fmt: skip
        if not columns:
            continue
        set_name, _, view = prefix.partition("+")
        title = {"heldout": "held-out GRID sentences (same voice)"}.get(set_name, set_name)
        out += [f"**{title}**" + (f", model + {view}" if view else ""), ""]
        header = ["variant", *[t for _, t, _ in columns], "Δ r"]
        out += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for variant, group in table.groupby("variant", sort=False):
            cells = [variant]
            for metric, _, digits in columns:
                values = group[f"{prefix}:{metric}"].dropna()
                cells.append("—" if values.empty else
                             f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0:.{digits}f}")  # fmt: skip
            key = f"{prefix}:mouth_open_r"
            mine = group.set_index(["fold", "seed"])[key]
            diff = (mine - base[key].reindex(mine.index)).dropna() if key in base else mine[:0]
            cells.append("—" if variant == baseline or diff.empty else
                         f"{diff.mean():+.3f} ± {diff.std(ddof=1) if len(diff) > 1 else 0:.3f}")  # fmt: skip
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


# ---------- the committed result pages (docs/results/, regenerated by `make results-docs`) ----------

FINAL_CSV = "results/grid-final.csv"
LEVERS_CSV = "results/grid-levers.csv"
PAGES = {  # page -> (command that prints it, the committed table it reads)
    "docs/results/grid-final.md": ("final-table", FINAL_CSV),
    "docs/results/grid-levers-cv.md": ("levers-table", LEVERS_CSV),
}


def final_page(csv: str | Path = FINAL_CSV, corpus: str = "grid") -> str:
    """docs/results/grid-final.md: the chosen model on the held-out sentences and on the
    unseen voices, from the committed clip table, with the commands that made it."""
    table = pd.read_csv(csv, dtype={"clip_id": str, "sentence_id": str})
    seeds = sorted(int(s) for s in table["seed"].unique())
    # the unseen corpora this table was scored on, in its order (the command names them)
    unseen_sets = [n for n in dict.fromkeys(table["set"]) if n.endswith(UNSEEN_SUFFIX)]
    unseen = [unseen_corpus_name(n) for n in unseen_sets]
    described = [UNSEEN_DESCRIPTIONS.get(name, f"the videos of corpus `{name}`") for name in unseen]
    pooled = (f" Together they form the set `{pooled_set_name(unseen_sets)}` (units: videos)."
              if len(unseen) > 1 else "")  # fmt: skip
    return "\n".join([
        "# GRID: the default model on held-out sentences and on voices it never heard",
        "",
        f"Generated by `python -m wav2kp.studies final-table --csv {Path(csv).as_posix()}` "
        "(`make results-docs`) from the committed clip table, which these commands wrote:",
        "",
        "```bash",
        "make report-grid   # extracts ../shared/grid-s1, trains GRID's model (profile "
        f"grid) on seeds {', '.join(map(str, seeds))}",
        *(f"wav2kp extract ../shared/{name} --corpus {name}" for name in unseen),
        "python -m wav2kp.studies final --corpus grid --model default "
        "--align-dir ../shared/grid-s1/align "
        + "".join(f"--unseen {name} " for name in unseen or ["''"])
        + f"--csv {Path(csv).as_posix()}",
        "```",
        "",
        "GRID's model: the default with the levers the lever study chose for unseen "
        "voices (two waveform-augmented copies of every training clip, the same "
        "optimiser steps; the silence gate). "
        "Trained on GRID speaker 1's train + val sentences; scored on its held-out test "
        f"sentences and on voices it never heard: {'; '.join(described) or 'none'}; each "
        f"video against its own measured mouth.{pooled} Each model's mouth-opening r is "
        "also given minus the loudness envelope's on the same clips (paired). "
        "`model` is the network alone; `+gate` rests "
        "the mouth on the closed neutral while the energy VAD hears no speech (what "
        "`predict` uses: the checkpoint's `silence_gate`); `+calibrated` rescales each "
        "utterance's motion to the training spread. The loudness envelope and the true "
        "mean face are fitted on the same train + val sentences. A target is met only "
        "when its whole 95 % interval meets it; below 20 units or 1,000 frames no verdict "
        "is given.",
        "",
        f"{corpus_credit(corpus) or ''}",
        "",
        *(["This table predates mouth jitter, and its loudness rows on unseen voices took "
           "each video's neutral face from that video's own ground truth (the model gets the "
           "training neutral); rerun the `final` command above for today's protocol.", ""]
          if "mouth_jitter_ratio" not in table else []),  # fmt: skip
        final_tables(table, corpus)[1].rstrip(),
        "",
    ])  # fmt: skip


def levers_page(csv: str | Path = LEVERS_CSV) -> str:
    """docs/results/grid-levers-cv.md: the unseen-voice lever study, from its committed
    task table, with the command that made it."""
    names = ", ".join(f"`{name}`" for name in LEVERS)
    return "\n".join([
        "# GRID: what each unseen-voice lever buys (cross-validated on train + val only)",
        "",
        f"Generated by `python -m wav2kp.studies levers-table --csv {Path(csv).as_posix()}` "
        "(`make results-docs`) from the committed task table, which this command wrote "
        "(after `make report-grid`):",
        "",
        "```bash",
        "wav2kp voices --corpus grid --align-dir ../shared/grid-s1/align   # builds grid-voices",
        "wav2kp demo --corpus demo-tiny --size tiny && wav2kp extract --corpus demo-tiny",
        "wav2kp cv --corpus grid --study levers --seeds 0,1,2 "
        f"--align-dir ../shared/grid-s1/align --out {Path(csv).with_suffix('').as_posix()}",
        "```",
        "",
        f"Variants of the default model ({names}), each trained on GRID's train "
        f"sentences for the screening budget ({LEVER_EPOCHS} epochs; variants that add "
        "clips keep the number of optimiser steps) and scored on the val sentences "
        "(same voice) and on proxies for voices it never heard: `demo-tiny` (synthetic "
        "voices and faces, each clip against its own mouth) and the val sentences heard "
        "through fixed recording conditions (`val_voice`: pitch +4 semitones and another "
        "EQ; `val_phone`: a telephone band with noise; `val_room`: a reverberant room; "
        "augmentation draws from similar families, so these show invariance to those "
        "changes, not to real new voices). The test sentences and the realclips voices are never seen. Views "
        "(`gate`, `calibrated`) are inference-time levers scored on each variant's model.",
        "",
        f"{GRID}",
        "",
        lever_table(csv).rstrip(),
        "",
    ])  # fmt: skip


def page_text(page: str) -> str:
    """The text of a committed result page (a key of ``PAGES``)."""
    command, csv = PAGES[page]
    return final_page(csv) if command == "final-table" else levers_page(csv)
