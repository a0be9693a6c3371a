"""Issue 17's mouth study: the per-set summary of a k-fold task table, the lever rule (on
only when a lever helps unseen voices without costing the same voice more than 0.01 r),
the silence check, and the generated page, on small hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from wav2kp.studies import levers, pages
from wav2kp.studies.__main__ import main

BASE = levers.MOUTH_BASELINE


def task_table() -> pd.DataFrame:
    """A ``wav2kp cv`` task table in the study's format: 2 folds x 2 seeds per variant.
    The baseline's r differs by fold; each lever shifts it by a fixed amount per set."""
    # variant -> (shift of same-voice r, shift of demo-tiny r, shift of val_voice r,
    #             val_voice silent-open share)
    shifts = {
        BASE: (0.0, 0.0, 0.0, 0.30),
        # exactly the allowed cost on the same voice; +0.06 and -0.02 pool to +0.02
        "full-motion losses": (-0.01, 0.06, -0.02, 0.30),
        "silence gate": (-0.05, 0.01, 0.01, 0.01),  # helps, but costs the same voice
        "silence targets": (0.0, -0.01, -0.01, 0.05),  # free, but no help
    }
    rows = []
    for variant, (same, demo, voice, silent) in shifts.items():
        for fold, base_same, base_demo in (("1/2", 0.80, 0.5), ("2/2", 0.90, 0.7)):
            for seed in (0, 1):
                rows.append({
                    "kind": "cv", "variant": variant, "seed": seed, "fold": fold, "error": "",
                    "epochs": 20, "mouth_open_r": base_same + same, "variance_ratio": 0.9,
                    "syllable_band_ratio": 0.8, "mouth_jitter_ratio": 0.5,
                    "bilabial_closure_rate": 0.6, "true_bilabial_closure_rate": 0.9,
                    "demo-tiny:mouth_open_r": base_demo + demo, "demo-tiny:variance_ratio": 1.0,
                    "demo-tiny:silent_open_share": np.nan,  # no speech truth
                    "val_voice:mouth_open_r": 0.6 + voice, "val_voice:variance_ratio": 0.8,
                    "val_voice:silent_open_share": silent,
                })  # fmt: skip
    for seed in (0, 1):  # a variant whose every run failed
        rows.append({"kind": "cv", "variant": "phonetic stream", "seed": seed, "fold": "1/2",
                     "error": "phonetic stream (seed 0, fold 1/2): ImportError: no pocketsphinx"})  # fmt: skip
    return pd.DataFrame(rows)


def test_summary_pools_the_proxies_per_run_and_pairs_on_fold_and_seed():
    summary = levers.study_summary(task_table()).set_index(["set", "variant", "metric"])
    pooled = levers.POOLED_PROXIES
    # baseline's pooled r per run: (0.5 + 0.6) / 2 on fold 1, (0.7 + 0.6) / 2 on fold 2
    cell = summary.loc[(pooled, BASE, "mouth_open_r")]
    assert cell["runs"] == 4 and cell["mean"] == pytest.approx(0.6)
    assert cell["sd"] == pytest.approx(np.std([0.55, 0.55, 0.65, 0.65], ddof=1))
    # paired on fold and seed: the fold effect (0.1 on the same voice) cancels
    same = summary.loc[(levers.SAME_VOICE, "full-motion losses", levers.DELTA_R)]
    assert same["mean"] == pytest.approx(-0.01) and same["sd"] == pytest.approx(0, abs=1e-12)
    assert summary.loc[(pooled, "full-motion losses", levers.DELTA_R), "mean"] == pytest.approx(
        0.02
    )
    # the pooled silent share is over the sets that measure it (demo-tiny has no truth)
    assert summary.loc[(pooled, "silence gate", "silent_open_share"), "mean"] == pytest.approx(0.01)
    assert (BASE, levers.DELTA_R) not in summary.loc[levers.SAME_VOICE].index
    assert "phonetic stream" not in set(summary.index.get_level_values("variant"))


def test_lever_verdicts_apply_the_rule_at_its_boundaries():
    def summary_row(set_name, variant, mean):
        return {"set": set_name, "variant": variant, "metric": levers.DELTA_R, "mean": mean,
                "sd": 0.01, "runs": 9}  # fmt: skip

    same, pooled = levers.SAME_VOICE, levers.POOLED_PROXIES
    summary = pd.DataFrame([
        summary_row(pooled, "at the cost limit", 0.004), summary_row(same, "at the cost limit", -0.01),
        summary_row(pooled, "just too costly", 0.004), summary_row(same, "just too costly", -0.0101),
        summary_row(pooled, "no help", 0.0), summary_row(same, "no help", 0.05),
        summary_row(pooled, "worse everywhere", -0.02), summary_row(same, "worse everywhere", -0.03),
    ])  # fmt: skip
    verdicts = levers.lever_verdicts(summary, variants=[*dict.fromkeys(summary["variant"]),
                                                         "never ran"]).set_index("variant")  # fmt: skip
    assert verdicts["verdict"].to_dict() == {
        "at the cost limit": "on", "just too costly": "off", "no help": "off",
        "worse everywhere": "off", "never ran": "off",
    }  # fmt: skip
    assert verdicts.loc["just too costly", "why"] == "costs the same voice more than 0.01 r"
    assert verdicts.loc["no help", "why"] == "does not help unseen voices"
    assert verdicts.loc["worse everywhere", "why"] == (
        "does not help unseen voices; costs the same voice more than 0.01 r"
    )
    assert verdicts.loc["never ran", "why"].startswith("not measured")
    assert verdicts.loc["at the cost limit", "same_delta"] == -0.01


def test_mouth_page_shows_every_set_and_decides_each_lever(tmp_path):
    csv = tmp_path / "grid-mouth.csv"
    task_table().to_csv(csv, index=False)
    text = pages.mouth_page(csv)
    lines = text.splitlines()
    assert f"wav2kp cv --corpus grid --profile grid --study mouth --align-dir ../shared/grid-s1/align --out {tmp_path.as_posix()}/grid-mouth" in text  # fmt: skip
    assert "2 folds of GRID speaker 1's train + val sentences" in text
    assert "training seeds 0, 1: 4 runs per variant, 18 in all, each trained for 20 epochs" in text
    assert "GRID audio-visual corpus" in text
    assert "- **phonetic stream**: 2 of 2 runs failed, e.g. `phonetic stream (seed 0, fold 1/2): ImportError: no pocketsphinx`" in lines  # fmt: skip
    titles = [line for line in lines if line.startswith("**") and line.endswith("**")]
    assert titles == ["**same voice: each fold's held-out GRID sentences**", "**demo-tiny**",
                      "**val_voice**", f"**{pages.MOUTH_SET_TITLES[levers.POOLED_PROXIES]}**"]  # fmt: skip
    pooled = lines.index(titles[-1])
    assert lines[pooled + 4] == ("| log-mel (default) | 4 | 0.600 ± 0.058 | 0.90 ± 0.00 | — | — "
                                 "| 0.300 ± 0.000 | — | — | — |")  # fmt: skip
    assert lines[pooled + 5].endswith("| +0.020 ± 0.000 |")
    assert "| full-motion losses | 4 | 0.840 ± 0.058 |" in text  # the same voice: 0.85 - 0.01
    decisions = {line.split(" | ")[0][2:]: line.rsplit(" | ", 1)[1] for line in lines
                 if line.endswith(" |") and "**o" in line}  # fmt: skip
    assert decisions == {
        "phonetic stream": "**off**: not measured (no successful paired run) |",
        "full-motion losses": "**on**: helps unseen voices at a same-voice cost within 0.01 r |",
        "silence gate": "**off**: costs the same voice more than 0.01 r |",
        "silence targets": "**off**: does not help unseen voices |",
    }  # fmt: skip
    assert lines[-1] == (
        "Silent frames with the mouth open (target ≤ 2 % on the same voice; measured on the "
        "held-out sentences heard through val_voice (mean over those sets; the clean "
        "sentences' silence was not scored)): met by silence gate (1.0 %); not by silence "
        "targets (5.0 %).")  # fmt: skip


def test_silence_is_judged_on_the_held_out_sentences_when_scored():
    table = task_table()
    table["silent_open_share"] = table["variant"].map(
        {"silence gate": 0.03, "silence targets": 0.015}
    )
    shares, where = levers.silence_verdicts(levers.study_summary(table))
    assert where == "the held-out sentences"
    assert shares.set_index("variant")["meets"].to_dict() == {"silence gate": False,
                                                               "silence targets": True}  # fmt: skip


def test_mouth_table_command_names_the_missing_table_and_its_study(tmp_path, capsys):
    missing = tmp_path / "grid-mouth.csv"
    with pytest.raises(SystemExit, match=f"error: {missing}: no such task table; the mouth study "
                       "writes it: wav2kp cv --corpus grid --profile grid --study mouth"):  # fmt: skip
        main(["mouth-table", "--csv", str(missing)])
    csv = tmp_path / "mouth.csv"
    task_table().to_csv(csv, index=False)
    assert main(["mouth-table", "--csv", str(csv)]) == 0
    assert capsys.readouterr().out == pages.mouth_page(csv)
