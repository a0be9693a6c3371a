"""Summaries over seeds with intervals, verdicts, the results file and the README block,
on hand-made clip tables with known answers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from wav2kp import cli
from wav2kp.evaluation import bootstrap, results
from wav2kp.paths import project_root


def clip_table(scores: dict[tuple[str, int], dict[str, np.ndarray]], n_sentences: int,
               clips_per_sentence: int = 2, frames: int = 60) -> pd.DataFrame:  # fmt: skip
    """Rows model x seed x space x clip; ``scores[(model, seed)][metric]`` holds one value
    per clip (sentence-major), the same in both spaces."""
    rows = []
    n_clips = n_sentences * clips_per_sentence
    for (model, seed), values in scores.items():
        for space in results.SPACES:
            for i in range(n_clips):
                row = {"model": model, "seed": seed, "space": space, "clip_id": f"c{i:03d}",
                       "speaker": "spk", "emotion": "neutral",
                       "sentence_id": f"s{i // clips_per_sentence:03d}", "split": "test",
                       "n_frames_valid": frames, "n_frames_scored": frames,
                       "frame_period_ms": 1001 / 30, "error": ""}  # fmt: skip
                row.update({m: np.nan for m in results.METRICS})
                row.update({m: float(v[i]) for m, v in values.items()})
                rows.append(row)
    return pd.DataFrame(rows)


def constant(n: int, **values: float) -> dict[str, np.ndarray]:
    return {m: np.full(n, v) for m, v in values.items()}


def test_summary_averages_seeds_per_clip_and_reports_their_spread():
    n = 10
    table = clip_table(
        {("default", 0): constant(n, mouth_open_r=0.8), ("default", 1): constant(n, mouth_open_r=0.9),
         ("ridge", 0): {"mouth_open_r": np.linspace(0.5, 0.7, n)}},
        n_sentences=5,
    )  # fmt: skip
    summary = results.summarise(table).set_index(["space", "model", "metric"])
    row = summary.loc[("aligned", "default", "mouth_open_r")]
    assert row["estimate"] == pytest.approx(0.85)
    assert (row["low"], row["high"]) == pytest.approx((0.85, 0.85))  # no sentence varies
    assert row["seed_sd"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert (row["seed_min"], row["seed_max"]) == pytest.approx((0.8, 0.9))
    assert (row["n_seeds"], row["n_units"], row["n_clips"], row["n_frames"]) == (2, 5, 10, 600)
    ridge = summary.loc[("aligned", "ridge", "mouth_open_r")]
    assert ridge["estimate"] == pytest.approx(0.6) and ridge["low"] < 0.6 < ridge["high"]
    assert ridge["n_seeds"] == 1 and np.isnan(ridge["seed_sd"])
    # a frozen mouth's undefined r stays undefined
    assert np.isnan(summary.loc[("aligned", "default", "variance_ratio"), "estimate"])
    wide = results.wide(results.summarise(table))
    assert wide.loc[("frame", "default"), "mouth_open_r"] == pytest.approx(0.85)


def test_failed_rows_do_not_count():
    table = clip_table({("default", 0): constant(4, mouth_open_r=0.9)}, n_sentences=2)
    table.loc[0, ["mouth_open_r", "error"]] = [-5.0, "c000: broke"]
    summary = results.summarise(table).set_index(["space", "model", "metric"])
    assert summary.loc[("aligned", "default", "mouth_open_r"), "estimate"] == pytest.approx(0.9)


def test_paired_differences_are_exact_when_one_model_is_always_better():
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0.3, 0.9, 40)
    table = clip_table(
        {("default", 0): {"mouth_open_r": difficulty + 0.1}, ("ridge", 0): {"mouth_open_r": difficulty},
         ("mean_face", 0): {"mouth_open_r": np.full(40, np.nan)}},
        n_sentences=20,
    )  # fmt: skip
    diffs = results.paired_differences(table).set_index(["space", "model", "metric"])
    ridge = diffs.loc[("aligned", "ridge", "mouth_open_r")]
    assert (ridge["estimate"], ridge["low"], ridge["high"]) == pytest.approx((0.1, 0.1, 0.1))
    assert np.isnan(diffs.loc[("aligned", "mean_face", "mouth_open_r"), "estimate"])
    assert "default" not in diffs.index.unique("model")


def checks_for(default_r: np.ndarray, n_sentences: int, frames: int = 60) -> pd.DataFrame:
    n = len(default_r)
    default = {"mouth_open_r": default_r, "variance_ratio": np.full(n, 1.0),
               "mouth_lmd_iod": np.full(n, 0.01), "av_offset_frames": np.zeros(n)}  # fmt: skip
    table = clip_table(
        {("default", 0): default, ("mean_face", 0): constant(n, mouth_lmd_iod=0.03),
         ("original", 0): constant(n, mouth_lmd_iod=0.012)},
        n_sentences=n_sentences, clips_per_sentence=n // n_sentences, frames=frames,
    )  # fmt: skip
    return results.target_checks(table).set_index("target")


def test_target_verdicts_use_the_far_end_of_the_interval():
    checks = checks_for(np.full(40, 0.9), n_sentences=20)
    assert checks.loc["mouth-opening r", "verdict"] == "met"
    assert checks.loc["variance ratio", "verdict"] == "met"
    assert checks.loc["mouth LMD vs mean face", "estimate"] == pytest.approx(1 / 3)
    assert checks.loc["mouth LMD vs mean face", "verdict"] == "met"
    # 0.01 / 0.012 = 0.83 > 0.75
    assert checks.loc["mouth LMD vs original replica", "verdict"] == "not met"
    assert checks.loc["A/V offset (frames)", "verdict"] == "met"
    assert checks["met"].tolist() == [True, True, True, False, True]
    # a mean above the threshold whose interval reaches below it is not met
    straddling = checks_for(np.repeat(np.tile([0.80, 0.95], 10), 2), n_sentences=20)
    row = straddling.loc["mouth-opening r"]
    assert row["estimate"] > 0.85 and row["low"] < 0.85
    assert row["verdict"] == "not shown" and not row["met"]


def test_no_verdict_below_twenty_sentences_or_a_thousand_frames():
    few_sentences = checks_for(np.full(38, 0.9), n_sentences=19)
    assert (few_sentences["verdict"] == bootstrap.TOO_FEW).all()
    assert not few_sentences["met"].any()
    few_frames = checks_for(np.full(40, 0.9), n_sentences=20, frames=24)  # 960 frames
    assert (few_frames["verdict"] == bootstrap.TOO_FEW).all()


def test_a_missing_model_makes_its_target_unmeasurable():
    table = clip_table({("default", 0): constant(40, mouth_lmd_iod=0.01)}, n_sentences=20)
    checks = results.target_checks(table).set_index("target")
    assert checks.loc["mouth LMD vs mean face", "verdict"].startswith("not measurable")
    assert "'mean_face'" in checks.loc["mouth LMD vs mean face", "verdict"]
    assert not checks["met"].any()


def demo_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 8
    scores = {}
    for seed in range(3):
        scores[("default", seed)] = {
            "mouth_open_r": rng.uniform(0.7, 0.9, n), "variance_ratio": rng.uniform(0.8, 1.1, n),
            "mouth_lmd_iod": rng.uniform(0.01, 0.02, n), "face_lmd_iod": rng.uniform(0.01, 0.02, n),
            "mouth_lmd_px256": rng.uniform(0.5, 1.5, n),
            "mouth_jitter_ratio": rng.uniform(0.8, 1.2, n),
            "syllable_band_ratio": rng.uniform(0.8, 1.2, n),
            "bilabial_closure_rate": rng.uniform(0.6, 1.0, n),
            "true_bilabial_closure_rate": np.ones(n),
            "av_offset_ms": np.zeros(n), "av_offset_frames": np.zeros(n),
            "mouth_crop_px": rng.uniform(0.5, 1.5, n), "face_crop_px": rng.uniform(0.5, 1.5, n),
            "lve_crop_px2": rng.uniform(1.0, 3.0, n),
        }  # fmt: skip
        scores[(results.LABEL_FREE, seed)] = {
            k: v * 0.95 for k, v in scores[("default", seed)].items()
        }
    scores[("mean_face", 0)] = constant(n, mouth_lmd_iod=0.03, face_lmd_iod=0.025,
                                        variance_ratio=0.0, mouth_lmd_px256=2.0)  # fmt: skip
    return clip_table(scores, n_sentences=2, clips_per_sentence=4)


def test_results_file_round_trip_keeps_every_value(tmp_path):
    table = demo_table()
    table.loc[3, "error"] = "c003: failed"
    protocol = {"corpus": "demo", "split": "test", "seeds": [0, 1, 2], "refit": True}
    path = results.save_results(tmp_path / "r.json", table, protocol)
    loaded, loaded_protocol = results.load_results(path)
    assert loaded_protocol == protocol
    pd.testing.assert_frame_equal(loaded, table[loaded.columns], check_dtype=False)
    assert np.isnan(loaded.loc[loaded["model"] == "mean_face", "mouth_open_r"]).all()
    # one clip-table row per line: regenerated files give small diffs
    assert len(path.read_text().splitlines()) > len(table)
    # a run folder holding the file works too
    (tmp_path / "run" / "05").mkdir(parents=True)
    results.save_results(tmp_path / "run" / "05" / results.RESULTS_FILE, table, protocol)
    assert len(results.load_results(tmp_path / "run")[0]) == len(table)


def test_results_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        results.load_results(tmp_path / "nothing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="bad.json"):
        results.load_results(bad)
    with pytest.raises(FileNotFoundError, match="no results.json"):
        results.load_results(tmp_path)


def test_markdown_is_deterministic_and_shows_both_spaces_and_both_label_rows():
    table = demo_table()
    protocol = {"corpus": "demo", "split": "test", "split_seed": 0, "seeds": [0, 1, 2],
                "refit": True, "window": {"past_ms": 100.0, "future_ms": 200.0}}  # fmt: skip
    text = results.markdown(table, protocol, source="results/x.json")
    assert text == results.markdown(table.copy(), dict(protocol), source="results/x.json")
    assert text.startswith(results.README_BEGIN) and text.rstrip().endswith(results.README_END)
    assert "`wav2kp results results/x.json --markdown`" in text
    assert "Pose-normalised space" in text and "Frame coordinates" in text
    assert "mouth error (crop px)" in text and "mouth jitter ratio" in text
    assert "| syllable-band ratio | bilabial closures | real mouth's bilabial closures |" in text
    assert "not in this results file" not in text.lower()
    # a results file scored before frame space had measures of its own says so
    motion = ["mouth_jitter_ratio", "syllable_band_ratio", "bilabial_closure_rate",
              "true_bilabial_closure_rate"]  # fmt: skip
    older = table.drop(columns=["mouth_crop_px", "face_crop_px", "lve_crop_px2", *motion])
    old_text = results.markdown(older, protocol)
    assert "**Frame coordinates** — not in this results file" in old_text
    assert (
        "Not in this results file (scored before they were defined): mouth jitter ratio, "
        "syllable-band ratio, bilabial closures, real mouth's bilabial closures." in old_text
    )
    assert "| mouth jitter ratio |" not in old_text and "crop px) |" not in old_text
    assert "no emotion label" in text and "true emotion label" in text
    assert "training seeds 0, 1, 2" in text and "train + val" in text
    assert "100 ms past, 200 ms future" in text
    assert bootstrap.TOO_FEW in text  # 2 test sentences
    trained = {
        "default": {"epochs": 40, "seeds": [0, 1, 2]},
        "original": {"epochs": 5, "seeds": [0]},
    }
    described = results.markdown(table, {**protocol, "profile": "fast", "trained": trained})
    assert (
        "(profile `fast`): `default` 40 epochs on seeds 0, 1, 2; `original` 5 epochs on seed 0."
        in described
    )
    to_plateau = {**trained, "original": {"epochs": 57, "seeds": [0, 1, 2], "plateau": True,
                                          "epochs_by_seed": {"0": 121, "1": 119, "2": 57}}}  # fmt: skip
    described = results.markdown(table, {**protocol, "profile": "full", "trained": to_plateau})
    assert (
        "`original` 121, 119, 57 epochs (to its validation plateau, refitted as long) on "
        "seeds 0, 1, 2." in described
    )
    assert "mean face (static)" in text and "—" in text  # the frozen mouth's undefined r
    default_r = (
        results.summarise(table)
        .set_index(["space", "model", "metric"])
        .loc[("aligned", "default", "mouth_open_r")]
    )
    assert f"{default_r['estimate']:.2f} ± {default_r['seed_sd']:.2f}" in text


def test_readme_block_can_be_replaced(tmp_path):
    text = f"intro\n{results.README_BEGIN} -->\nold\n{results.README_END}\noutro\n"
    new = f"{results.README_BEGIN} -->\nnew\n{results.README_END}\n"
    assert results.replace_readme_block(text, new) == f"intro\n{new}outro\n"
    with pytest.raises(ValueError, match="no results block"):
        results.readme_block("no block here")


def test_results_command_prints_and_updates_the_readme_block(tmp_path, capsys):
    path = results.save_results(tmp_path / "r.json", demo_table(), {"corpus": "demo"})
    assert cli.main(["results", str(path), "--markdown"]) == 0
    printed = capsys.readouterr().out
    table, protocol = results.load_results(path)
    assert printed == results.markdown(table, protocol, source=str(path))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{results.README_BEGIN} -->\nold\n{results.README_END}\nend\n")
    assert cli.main(["results", str(path), "--update-readme", str(readme)]) == 0
    assert results.readme_block(readme.read_text()) == printed
    assert readme.read_text().endswith("end\n")


def test_readme_results_block_is_what_the_command_prints_for_the_committed_file():
    readme = (project_root() / "README.md").read_text()
    block = results.readme_block(readme)
    source = re.search(r"`wav2kp results (\S+) --markdown`", block)
    assert source, "the README block must name the command that generates it"
    table, protocol = results.load_results(project_root() / source.group(1))
    assert block == results.markdown(table, protocol, source=source.group(1))


def test_no_interval_is_printed_over_fewer_than_five_units():
    """A 2-sentence "95 % interval" (0.0191 [0.0191, 0.0191]) is the spread of two numbers."""
    from wav2kp.evaluation import bootstrap

    assert bootstrap.MIN_INTERVAL_UNITS == 5
    assert results.interval_text(0.0190, 0.0192, 4, 4) == ""
    assert results.interval_text(0.0190, 0.0192, 5, 4) == " [0.0190, 0.0192]"
    assert results.interval_text(-0.01, 0.02, 5, 2, "+") == " [-0.01, +0.02]"
    row = pd.Series({"estimate": 0.0191, "low": 0.0191, "high": 0.0191, "n_seeds": 1,
                     "seed_sd": np.nan, "n_units": 2})  # fmt: skip
    assert results._cell(row, 4) == "0.0191"
    assert results._cell(row.replace(2, 20), 4) == "0.0191 [0.0191, 0.0191]"
