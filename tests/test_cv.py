"""Cross-validation of variants: tasks, folds, scoring, reuse, the Dask path."""

import numpy as np
import pytest
from wav2kp.benchmarks.training import synthetic_clips
from wav2kp.config import RunConfig
from wav2kp.studies.cv import (
    ABLATION_VARIANTS,
    METRICS,
    cv_tasks,
    execute,
    fold_data,
    run_cv,
    sentence_folds,
    study,
    variant_config,
)
from wav2kp.tasks import run_tasks
from wav2kp.training.train import CorpusData
from wav2kp.windowing.targets import TargetNormalizer

# small models: one thread is as fast, and much faster on a busy machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"epochs": 2, "batch_size": 4, "crop_frames": 20, "model_overrides": {"hidden": 16}}


@pytest.fixture(scope="module")
def corpus():
    """Synthetic clips (6 sentences) with real normalised targets (pose removed, neutral
    face); the last clip is the val split."""
    clips = synthetic_clips(n_clips=6, seconds=2.0, feature_dim=8, seed=5)
    normalizer = TargetNormalizer().fit([(c.speaker, c.landmarks) for c in clips[:-1]])
    for i, clip in enumerate(clips):
        targets, pose = normalizer.transform(clip.landmarks, clip.speaker)
        clip.targets, clip.pose = targets.astype(np.float32), pose.astype(np.float32)
        clip.sentence_id = f"s{i}"
    return CorpusData(clips[:-1], clips[-1:], [], {"normalizer": normalizer, "corpus": "synthetic"})


def test_variant_config_applies_the_run_recipe_the_budget_and_the_changes():
    cfg = RunConfig.resolve(past_ms=150.0, seeds=(0,))
    config = variant_config(cfg, ABLATION_VARIANTS["future 0 ms"], 7, {"epochs": 3})
    assert config.window["future_ms"] == 0.0 and config.window["past_ms"] == 150.0
    assert (config.epochs, config.seed, config.refit_on_val) == (3, 7, True)
    original = variant_config(cfg, {"model": "original"}, 0)
    assert original.model == "original" and original.window_config.mode == "original"
    assert variant_config(cfg, {}, 0).to_dict() == cfg.train_config("default", 0).to_dict()


def test_sentence_folds_hold_out_every_sentence_once(corpus):
    clips = [*corpus.train, *corpus.val]
    folds = sentence_folds(clips, 3, seed=1)
    held = [cid for _, heldout in folds for cid in heldout]
    assert sorted(held) == sorted(c.clip_id for c in clips)
    by_id = {c.clip_id: c.sentence_id for c in clips}
    for train, heldout in folds:
        assert not {by_id[i] for i in train} & {by_id[i] for i in heldout}
    assert folds == sentence_folds(clips, 3, seed=1)
    with pytest.raises(ValueError, match="folds"):
        sentence_folds(clips, 7)


def test_kfold_refits_the_normaliser_on_the_fold_training_clips(corpus):
    cfg = RunConfig.resolve()
    tasks = cv_tasks(cfg, corpus, {"default": SMALL}, folds=3, seeds=(0,), out_root="/unused")
    assert len(tasks) == 3 and len({t.key for t in tasks}) == 3
    train, heldout, context = fold_data(corpus, tasks[0])
    assert {c.clip_id for c in train} == set(tasks[0].train_ids)
    assert context["normalizer"] is not corpus.context["normalizer"]
    fitted = TargetNormalizer().fit([(c.speaker, c.landmarks) for c in train])
    expected, _ = fitted.transform(heldout[0].landmarks, heldout[0].speaker)
    np.testing.assert_allclose(heldout[0].targets, expected, atol=1e-5)
    # the val fold is the corpus as loaded (normaliser fitted on the train split)
    val_task = cv_tasks(cfg, corpus, {"default": SMALL}, "val", (0,), out_root="/unused")[0]
    assert fold_data(corpus, val_task)[2] is corpus.context


def test_val_fold_scores_every_variant_reports_failures_and_reuses_results(corpus, tmp_path):
    cfg = RunConfig.resolve()
    variants = {
        "default": {},
        "future 0 ms": {"window": {"future_ms": 0.0}},
        "frame coords": {"target_space": "frame"},
        "broken": {"model_overrides": {"temporal_kernel": 2}},  # fails when built
    }
    result = run_cv(cfg, variants, "val", (0, 1), SMALL, corpus, out_root=tmp_path, progress=False)
    table = result.table
    assert list(dict.fromkeys(table["variant"])) == list(variants)
    ok = table[table["error"] == ""]
    assert set(ok["variant"]) == {"default", "future 0 ms", "frame coords"}
    assert np.isfinite(ok[["mouth_lmd_iod", "variance_ratio", "cpu_seconds"]].to_numpy()).all()
    assert (ok["epochs"] == 2).all() and not ok["reused"].any()
    assert all("odd" in e for e in table.loc[table["variant"] == "broken", "error"])
    summary = result.summary()
    assert list(summary.index) == ["default", "future 0 ms", "frame coords"]
    assert (summary["seeds"] == 2).all() and set(METRICS) <= set(summary.columns)
    assert {"variant", "seed", "epoch", "val_loss"} <= set(result.histories.columns)
    # a re-run reads the finished tasks back: same numbers, nothing trained
    again = run_cv(cfg, {"default": {}}, "val", (0, 1), SMALL, corpus, out_root=tmp_path,
                   progress=False)  # fmt: skip
    assert again.table["reused"].all()
    first = ok[ok["variant"] == "default"].sort_values("seed")
    np.testing.assert_array_equal(
        again.table.sort_values("seed")[METRICS].to_numpy(float), first[METRICS].to_numpy(float)
    )


def test_budget_study_pairs_each_variant_at_every_budget():
    from wav2kp.studies.cv import BUDGET_EPOCHS

    options = study(RunConfig.resolve(), "budget")
    names = list(options["variants"])
    fast = RunConfig.resolve(profile="fast").ablation_epochs
    budgets = {fast, *BUDGET_EPOCHS}
    assert len(names) == (len(budgets) + 1) * len(ABLATION_VARIANTS)
    assert options["variants"][f"default @ {fast} epochs"] == {"epochs": fast}
    assert options["variants"]["default @ preset epochs"] == {} and options["seeds"] == (0, 1, 2)
    assert study(RunConfig.resolve(profile="full"), "ablation")["budget"] == {}


def test_rank_agreement_compares_each_budget_with_the_preset_and_the_seed_noise():
    import pandas as pd
    from wav2kp.studies.cv import CVResult, rank_agreement

    rows = []
    for seed, noise in ((0, 0.0), (1, 0.001)):
        scores = zip("abcd", (0.80, 0.81, 0.82, 0.83), (0.71, 0.70, 0.72, 0.73), strict=True)
        for name, full, short in scores:
            full += noise
            rows += [
                {"variant": f"{name} @ preset epochs", "seed": seed, "mouth_open_r": full},
                {"variant": f"{name} @ 10 epochs", "seed": seed, "mouth_open_r": short},
            ]
    result = CVResult(pd.DataFrame(rows).assign(error="", fold="val", cpu_seconds=1.0))
    agreement = rank_agreement(result)
    assert agreement["variants"] == 4 and agreement["seed_to_seed_rho_at_preset"] == 1.0
    short = agreement["budgets"]["10 epochs"]
    assert short["same_best"] and short["spearman_rho"] == pytest.approx(0.8)  # a, b swapped


def test_a_dask_client_gives_the_same_results_as_running_here(corpus, tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = RunConfig.resolve()
    variants = {"default": {}, "future 0 ms": {"window": {"future_ms": 0.0}}}
    here = run_tasks(
        cv_tasks(cfg, corpus, variants, "val", (0,), SMALL, tmp_path / "here"), corpus,
        progress=False, execute=execute,
    )  # fmt: skip
    with distributed.Client(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as client:
        there = run_tasks(
            cv_tasks(cfg, corpus, variants, "val", (0,), SMALL, tmp_path / "there"), corpus,
            client, progress=False, execute=execute,
        )  # fmt: skip
    assert here.keys() == there.keys()
    for key in here:
        assert not here[key]["error"] and not there[key]["error"]
        for metric in METRICS:  # NaN (e.g. closures of clips without text) equals NaN
            np.testing.assert_equal(here[key][metric], there[key][metric], err_msg=metric)


def test_an_invalid_variant_is_refused_before_anything_trains(corpus, tmp_path):
    with pytest.raises(ValueError, match="no-such-scheduler"):
        run_cv(RunConfig.resolve(), {"bad": {"scheduler": "no-such-scheduler"}}, "val", (0,),
               SMALL, corpus, out_root=tmp_path, progress=False)  # fmt: skip
    assert not any(tmp_path.iterdir())


def test_a_task_lost_on_the_cluster_is_a_failed_row_and_the_others_finish(
    corpus, tmp_path, monkeypatch
):
    """A task whose future fails on the cluster itself (workers died, its scattered data
    forgotten after a restart) ends as that task's error row; the study goes on."""
    from distributed import Client, LocalCluster
    from wav2kp.studies import cv

    original = cv.execute

    def lost(task, data):
        if task.name == "future 0 ms":
            raise RuntimeError("worker tcp://10.0.0.1:4000 died")
        return original(task, data)

    monkeypatch.setattr(cv, "execute", lost)  # workers are threads of this process
    variants = {"default": {}, "future 0 ms": {"window": {"future_ms": 0.0}}}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as local, Client(local) as client:  # fmt: skip
        with pytest.warns(UserWarning, match="lost on the cluster"):
            result = run_cv(RunConfig.resolve(), variants, "val", (0,), SMALL, corpus,
                            client=client, out_root=tmp_path, progress=False)  # fmt: skip
    rows = result.table.set_index("variant")
    assert rows.loc["default", "error"] == ""
    assert (
        "lost on the cluster: RuntimeError: worker tcp://10.0.0.1:4000 died"
        in (rows.loc["future 0 ms", "error"])
    )


def test_mouth_study_is_k_fold_over_seeds_and_each_lever_is_one_setting():
    from wav2kp.config import TrainConfig
    from wav2kp.studies.cv import variant_config

    cfg = RunConfig.resolve(profile="grid")
    options = study(cfg, "mouth")
    assert options["folds"] >= 3 and len(options["seeds"]) >= 3  # the minimum
    variants = options["variants"]
    base = variant_config(cfg, variants["log-mel (default)"], 0, options["budget"])
    assert isinstance(base, TrainConfig)
    # whatever the profile adds, the baseline is the bare default: no copies, no gate
    assert base.augment == {} and not base.silence_gate and base.features is None
    assert base.epochs == options["budget"]["epochs"]
    changed = {}
    for name, overrides in variants.items():
        config = variant_config(cfg, overrides, 0, options["budget"])
        changed[name] = {
            k for k, v in config.to_dict().items() if v != base.to_dict()[k] and k != "seed"
        }
    assert changed["log-mel (default)"] == set()
    assert changed["phonetic stream"] == {"features"}
    assert changed["full-motion losses"] == {"opening_weight", "spread_weight"}
    assert changed["silence targets"] == {"silence_targets"}
    assert changed["silence gate"] == {"silence_gate"}
    assert changed["all three"] == {
        "features",
        "opening_weight",
        "spread_weight",
        "silence_targets",
    }
