"""The committed result pages under ``docs/results/`` (``make results-docs``: ``python -m
wav2kp.studies pages``), each regenerated from a committed table under ``results/`` and
naming the commands that wrote it (``tests/test_results_pages.py`` checks they agree): the
final check of GRID's model (``final_page``, from ``levers.evaluate_final``'s clip table),
the unseen-voice lever study (``levers_page``, from ``wav2kp cv --study levers``'s task
table) and issue 17's k-fold mouth study (``mouth_page``, from ``wav2kp cv --study mouth``'s
task table, with each lever's verdict). A page whose table is not committed yet (its study
not run) is not written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.credits import GRID, corpus_credit
from wav2kp.evaluation.bootstrap import interval_shown
from wav2kp.evaluation.results import interval_text, paired_differences, summarise
from wav2kp.studies.levers import (
    LEVER_EPOCHS,
    LEVER_PROXIES,
    LEVERS,
    MOUTH_BASELINE,
    MOUTH_LEVERS,
    POOLED_PROXIES,
    SAME_VOICE,
    SAME_VOICE_COST,
    UNSEEN_SUFFIX,
    final_targets,
    lever_verdicts,
    pooled_set_name,
    silence_verdicts,
    study_summary,
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

# the unseen-voice proxies of ``LEVER_PROXIES``, in words (``sentences``: which sentences
# the ``val_*`` sets hear)
PROXIES_IN_WORDS = (
    "proxies for voices it never heard: `demo-tiny` (synthetic voices and faces, each clip "
    "against its own mouth) and the {sentences} heard through fixed recording conditions "
    "(`val_voice`: pitch +4 semitones and another EQ; `val_phone`: a telephone band with "
    "noise; `val_room`: a reverberant room; augmentation draws from similar families, so "
    "these show invariance to those changes, not to real new voices)"
)

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
# issue 10's GRID recipe under today's code and protocol: the "before" of issue 17
BEFORE_CSV = "results/grid-final-before.csv"
LEVERS_CSV = "results/grid-levers.csv"
MOUTH_CSV = "results/grid-mouth.csv"
PAGES = {  # page -> (command that prints it, the committed table it reads)
    "docs/results/grid-final.md": ("final-table", FINAL_CSV),
    "docs/results/grid-final-before.md": ("final-table", BEFORE_CSV),
    "docs/results/grid-levers-cv.md": ("levers-table", LEVERS_CSV),
    "docs/results/grid-mouth-cv.md": ("mouth-table", MOUTH_CSV),
}


# what each committed final table scored, and the commands that trained it
FINAL_RECIPES = {
    FINAL_CSV: {
        "model": "default",
        "train": lambda seeds: [
            "make report-grid   # extracts ../shared/grid-s1, trains GRID's model (profile "
            f"grid) on seeds {', '.join(map(str, seeds))}"
        ],
        "about": "GRID's model: the default with the levers `wav2kp cv --study mouth` keeps "
        "(docs/results/grid-mouth-cv.md): the phonetic stream beside log-mel and the "
        "silence gate (`wav2kp.config.GRID_LEVERS`), at the preset's 40 epochs. ",
    },
    BEFORE_CSV: {
        "model": "full/default",
        "train": lambda seeds: [
            "wav2kp extract ../shared/grid-s1 --corpus grid",
            "wav2kp train --corpus grid --profile full --set models=default --set "
            "ablation=False --set phones=none --set augment=2 --set epochs=13 --set "
            f"silence_gate=True --set seeds={','.join(map(str, seeds))}",
        ],
        "about": "Issue 10's GRID model, before issue 17 (kept for the comparison): the "
        "default on log-mel alone with two waveform-augmented copies of every training "
        "clip at the same optimiser steps (13 epochs) and the silence gate - today's "
        "gate (silero-vad, widened), where the shipped model used an energy gate. ",
    },
}


def final_page(csv: str | Path = FINAL_CSV, corpus: str = "grid") -> str:
    """docs/results/grid-final.md: the chosen model on the held-out sentences and on the
    unseen voices, from the committed clip table, with the commands that made it."""
    table = pd.read_csv(csv, dtype={"clip_id": str, "sentence_id": str})
    seeds = sorted(int(s) for s in table["seed"].unique())
    recipe = FINAL_RECIPES.get(Path(csv).as_posix(), FINAL_RECIPES[FINAL_CSV])
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
        *recipe["train"](seeds),
        *(f"wav2kp extract ../shared/{name} --corpus {name}" for name in unseen),
        f"python -m wav2kp.studies final --corpus grid --model {recipe['model']} "
        "--align-dir ../shared/grid-s1/align "
        + "".join(f"--unseen {name} " for name in unseen or ["''"])
        + f"--csv {Path(csv).as_posix()}",
        "```",
        "",
        recipe["about"],
        "Trained on GRID speaker 1's train + val sentences; scored on its held-out test "
        f"sentences and on voices it never heard: {'; '.join(described) or 'none'}; each "
        f"video against its own measured mouth.{pooled} Each model's mouth-opening r is "
        "also given minus the loudness envelope's on the same clips (paired). "
        "`model` is the network alone; `+gate` rests "
        "the mouth on the closed neutral in silence, by silero-vad's speech widened "
        "(`wav2kp.training.vad.GATE_CONFIG`; what `predict` uses when the checkpoint's "
        "`silence_gate` is on); `+calibrated` rescales each "
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
        f"(same voice) and on {PROXIES_IN_WORDS.format(sentences='val sentences')}. "
        "The test sentences and the realclips voices are never seen. Views "
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
    return {"final-table": final_page, "levers-table": levers_page,
            "mouth-table": mouth_page}[command](csv)  # fmt: skip


# ---------- the mouth study (issue 17) ----------

MOUTH_COLUMNS = (("mouth_open_r", "r", 3), ("variance_ratio", "var. ratio", 2),
                 ("syllable_band_ratio", "syllable band", 2),
                 ("mouth_jitter_ratio", "jitter", 2), ("silent_open_share", "silent open", 3),
                 ("bilabial_closure_rate", "closures", 2),
                 ("true_bilabial_closure_rate", "real closures", 2))  # fmt: skip
MOUTH_SET_TITLES = {
    SAME_VOICE: "same voice: each fold's held-out GRID sentences",
    POOLED_PROXIES: "unseen-voice proxies pooled (per run, the mean over "
    + ", ".join(LEVER_PROXIES)
    + ", of the sets that measure it)",
}


def _mean_sd(mean: float, sd: float, digits: int, sign: str = "") -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:{sign}.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")


def mouth_table(csv: str | Path, baseline: str = MOUTH_BASELINE) -> str:
    """Markdown of the mouth study's task table (``wav2kp cv --study mouth``'s CSV): per set
    (the held-out folds, each proxy, the proxies pooled) every variant's measures as mean ±
    sd over its runs (folds x seeds) and its mouth-opening r minus ``baseline``'s on the
    same fold and seed; then each lever's verdict (``levers.lever_verdicts``) and which
    silence option keeps silent mouths closed (``levers.silence_verdicts``)."""
    table = pd.read_csv(csv)
    summary = study_summary(table, baseline)
    variants = list(dict.fromkeys(table["variant"]))
    out = []
    failed = table[table["error"].fillna("") != ""]
    for variant, group in failed.groupby("variant", sort=False):
        total = int((table["variant"] == variant).sum())
        first = str(group["error"].iloc[0]).splitlines()[0][:200]
        out.append(f"- **{variant}**: {len(group)} of {total} runs failed, e.g. `{first}`")
    if out:
        out = ["Failed runs (left out of every table below):", "", *out, ""]
    cells = summary.set_index(["set", "variant", "metric"])
    for set_name in dict.fromkeys(summary["set"]):
        title = MOUTH_SET_TITLES.get(set_name, set_name)
        header = ["variant", "runs", *[t for _, t, _ in MOUTH_COLUMNS], f"Δ r vs {baseline}"]
        out += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for variant in variants:
            if (set_name, variant, "mouth_open_r") not in cells.index:
                continue
            row = [variant, str(int(cells.loc[(set_name, variant, "mouth_open_r"), "runs"]))]
            for metric, _, digits in [*MOUTH_COLUMNS, ("delta_r", "", 3)]:
                key = (set_name, variant, metric)
                found = key in cells.index
                sign = "+" if metric == "delta_r" else ""
                row.append(_mean_sd(cells.loc[key, "mean"], cells.loc[key, "sd"], digits, sign)
                           if found else "—")  # fmt: skip
            out.append("| " + " | ".join(row) + " |")
        measured = set(cells.loc[set_name].index.get_level_values("metric"))
        absent = [t for m, t, _ in MOUTH_COLUMNS if m not in measured]
        if absent:
            out.append(f"\nNot measured on this set: {', '.join(absent)}.")
        out.append("")
    verdicts = lever_verdicts(summary, baseline, variants=[v for v in variants if v != baseline])
    out += [f"**Decision** (issue 17's rule, `wav2kp.studies.levers.lever_verdicts`): a lever "
            "is on only when it helps unseen voices (its mouth-opening r minus the "
            f"baseline's, paired on fold and seed, is above 0 on average over the "
            f"unseen-voice {POOLED_PROXIES}) without costing the same voice more than {SAME_VOICE_COST:g} r "
            f"(the same paired difference on the held-out folds is at least "
            f"{-SAME_VOICE_COST:g}). Differences: mean ± sd over the paired runs; the runs "
            "share folds, so the sd is their spread, not an interval.", "",
            f"| lever | Δ r, unseen-voice {POOLED_PROXIES} | Δ r, same voice | helps unseen voices | "
            f"same-voice cost ≤ {SAME_VOICE_COST:g} r | verdict |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for row in verdicts.itertuples():
        unseen = _mean_sd(row.unseen_delta, row.unseen_sd, 3, "+")
        same = _mean_sd(row.same_delta, row.same_sd, 3, "+")
        out.append(f"| {row.variant} | {unseen} ({row.unseen_runs} runs) | {same} "
                   f"({row.same_runs} runs) | {'yes' if row.helps_unseen else 'no'} | "
                   f"{'yes' if row.same_voice_ok else 'no'} | **{row.verdict}**: {row.why} |")  # fmt: skip
    shares, where = silence_verdicts(summary)
    limit = f"{silence_limit() * 100:g} %"
    if shares.empty:
        out += ["", f"Silent frames with the mouth open (target ≤ {limit} on the same voice): "
                "no silence option of this table was measured."]  # fmt: skip
    else:
        meeting = [f"{r.variant} ({r.share * 100:.1f} %)" for r in shares.itertuples() if r.meets]
        missing = [f"{r.variant} ({r.share * 100:.1f} %)" for r in shares.itertuples()
                   if not r.meets]  # fmt: skip
        out += ["", f"Silent frames with the mouth open (target ≤ {limit} on the same voice; "
                f"measured on {where}): "
                + (f"met by {', '.join(meeting)}" if meeting else "met by no silence option")
                + (f"; not by {', '.join(missing)}" if missing else "") + "."]  # fmt: skip
    return "\n".join(out) + "\n"


def silence_limit() -> float:
    """The same-voice target for the share of silent frames with the mouth open."""
    from wav2kp.evaluation.results import TARGETS

    return next(t.high for _, m, t, _ in TARGETS["same_voice"] if m == "silent_open_share")


def mouth_study_command(csv: str | Path = MOUTH_CSV) -> str:
    """The command that writes the mouth study's task table ``csv`` (and its JSON)."""
    return ("wav2kp cv --corpus grid --profile grid --study mouth "
            f"--align-dir ../shared/grid-s1/align --out {Path(csv).with_suffix('').as_posix()}")  # fmt: skip


def mouth_page(csv: str | Path = MOUTH_CSV) -> str:
    """docs/results/grid-mouth-cv.md: issue 17's mouth levers, cross-validated over GRID's
    train + val sentences, from the committed task table, with the command that made it."""
    table = pd.read_csv(csv)
    folds = sorted({str(f).split("/")[-1] for f in table["fold"]})
    seeds = sorted(int(s) for s in table["seed"].unique())
    epochs = sorted({int(e) for e in table.get("epochs", pd.Series(dtype=float)).dropna()})
    runs = table.groupby("variant", sort=False).size()
    bare = MOUTH_LEVERS[MOUTH_BASELINE]
    described = []
    for variant in dict.fromkeys(table["variant"]):
        changes = {k: v for k, v in MOUTH_LEVERS.get(variant, {}).items() if bare.get(k) != v}
        described.append(f"- `{variant}`: " + (", ".join(f"`{k}={json.dumps(v)}`"
                                                        for k, v in changes.items())
                                               or "nothing (the baseline)"))  # fmt: skip
    return "\n".join([
        "# GRID: the mouth levers of issue 17 (k-fold over train + val sentences)",
        "",
        f"Generated by `python -m wav2kp.studies mouth-table --csv {Path(csv).as_posix()}` "
        "(`make results-docs`) from the committed task table, which these commands wrote "
        "(after `make report-grid`):",
        "",
        "```bash",
        "wav2kp demo --corpus demo-tiny --size tiny && wav2kp extract --corpus demo-tiny",
        mouth_study_command(csv),
        "```",
        "",
        f"{' and '.join(folds)} folds of GRID speaker 1's train + val sentences (whole "
        "sentences held out in turn, the feature statistics and target normaliser refitted "
        "on each fold's training clips; the test sentences are never used) x training seeds "
        f"{', '.join(map(str, seeds))}: {runs.max()} runs per variant, "
        f"{len(table)} in all, each trained for "
        f"{' or '.join(map(str, epochs)) or 'an unrecorded number of'} epochs (the "
        "screening budget). Each run is scored on its fold's held-out sentences (same "
        f"voice) and on {PROXIES_IN_WORDS.format(sentences='same held-out sentences')}. "
        "Every variant starts from the bare default "
        f"({', '.join(f'`{k}={json.dumps(v)}`' for k, v in bare.items())}: no waveform "
        "augmentation, no gate, whatever the profile adds) and changes:",
        "",
        *described,
        "",
        "Measures (pose-normalised space, means over a set's clips): mouth-opening r; the "
        "variance ratio; the syllable-band ratio (predicted / real amplitude of the mouth "
        "opening at 2-7 Hz); the jitter ratio (reported, not chased: the real track's jitter "
        "includes the tracker's noise); the share of truly silent frames (GRID's word "
        "alignments) with the mouth open; the rate of /p/, /b/, /m/ at which the lips close "
        "(`closures`) beside the real mouth's rate on the same clips (`real closures`, the "
        "ceiling). Cells: mean ± sd over the runs.",
        "",
        f"{GRID}",
        "",
        mouth_table(csv).rstrip(),
        "",
    ])  # fmt: skip
