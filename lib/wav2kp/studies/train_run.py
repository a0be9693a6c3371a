"""What notebook 04 and ``wav2kp train`` train: ``train_run(RunConfig)`` trains the final
models (every model x training seed, refitted on train + val under the refit rule) and the
validation runs behind notebook 04's curves and ablation table (``wav2kp.studies.cv``:
trained and scored on the val fold), in parallel on a Dask client when one is given. It
trains and scores, so it sits above training and evaluation; one model's training is
``wav2kp.training.train``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from wav2kp.config import RunConfig, TrainConfig
from wav2kp.studies import cv
from wav2kp.tasks import Task, add_run_arguments, open_client, run_config_from_args, run_tasks
from wav2kp.training.train import CorpusData, load_corpus_for_training, model_dir


@dataclass
class TrainRun:
    """What ``train_run`` trained: ``finals`` (one row per model and seed: checkpoint,
    epochs, CPU seconds, parameters, error), ``validation`` (``wav2kp.studies.cv.CVResult`` of
    each model's recipe on the val fold: curves and val scores) and ``ablation`` (the
    ablation variants on the val fold; None when not asked for)."""

    config: RunConfig
    finals: pd.DataFrame
    validation: Any
    ablation: Any = None

    def checkpoints(self, model: str) -> list[Path]:
        rows = self.finals[(self.finals["model"] == model) & (self.finals["error"] == "")]
        return [Path(p) for p in rows["checkpoint"]]


def refit_config(config: TrainConfig, selected_epochs: int) -> TrainConfig:
    """A ``plateau`` recipe's final model under the refit rule: as many epochs on train +
    val as its selection run needed to reach the plateau (its best epoch)."""
    return dataclasses.replace(config, epochs=max(1, int(selected_epochs)), patience=0)


def final_tasks(
    cfg: RunConfig, root=None, selected_epochs: dict[tuple[str, int], int] | None = None
) -> list[Any]:
    """The final models ``cfg`` asks for, as ``wav2kp.tasks.Task``s (model x seed). A
    ``plateau`` recipe refitted on train + val needs its selection run's best epoch
    (``selected_epochs[(model, seed)]``); without it, it keeps its epoch cap."""
    tasks = []
    for model in cfg.models:
        for seed in cfg.seeds_of(model):
            config = cfg.train_config(model, seed)
            if config.plateau and config.refit_on_val and selected_epochs is not None:
                config = refit_config(config, selected_epochs[(model, seed)])
            out_dir = str(model_dir(cfg.corpus, model, seed, root, cfg.profile))
            tasks.append(Task(kind="final", name=model, config=config, out_dir=out_dir))
    return tasks


def train_run(
    cfg: RunConfig,
    data: CorpusData | None = None,
    client=None,
    progress: bool = True,
    root=None,
) -> TrainRun:
    """Train what ``cfg`` asks for (module doc), every task in parallel on ``client``
    (a ``distributed.Client``; None: one after the other here). Finished work is reused:
    final models resume from their ``last.pt`` (nothing to do when finished on the same
    data), validation runs are keyed by their configuration and data."""
    data = data or load_corpus_for_training(cfg.corpus, progress=progress, root=root)
    validation, ablation = cv.validation_tasks(cfg, data, root=root)
    # a plateau recipe's final model needs its selection run first (how many epochs);
    # the others train alongside the validation runs
    waits = {m for m in cfg.models if cfg.train_config(m, 0).plateau and cfg.refit_on_val}
    early = [t for t in final_tasks(cfg, root) if t.name not in waits]
    results = run_tasks(
        [*early, *validation, *ablation], data, client, progress, execute=cv.execute
    )
    selected = {
        (t.name, t.config.seed): results[t.key].get("best_epoch") or t.config.epochs
        for t in validation
        if t.name in waits
    }
    finals = final_tasks(cfg, root, selected if waits and data.val else None)
    late = [t for t in finals if t.key not in results]
    if late:
        results.update(run_tasks(late, data, client, progress, execute=cv.execute))

    def rows(tasks):
        return [{**results[t.key], "name": t.name} for t in tasks]

    return TrainRun(
        cfg,
        pd.DataFrame(rows(finals)),
        cv.CVResult.from_outcomes(rows(validation)),
        cv.CVResult.from_outcomes(rows(ablation)) if ablation else None,
    )


# ---------- command line ----------


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")


def run_cli(args: argparse.Namespace) -> int:
    import json

    cfg = run_config_from_args(args)
    print(json.dumps(cfg.to_dict(), indent=1))
    if not args.dry_run:
        # the run's own features (notebook 02's step), so `make model-grid` trains on what
        # the profile says even where no notebook ran
        from wav2kp.config import FeatureConfig
        from wav2kp.features.features import ensure_corpus_features

        ensure_corpus_features(cfg.corpus, FeatureConfig(**cfg.feature_settings),
                               cfg.split_settings, cfg.workers)  # fmt: skip
    if args.dry_run:
        for task in final_tasks(cfg):
            print(f"{task.name} seed {task.config.seed} -> {task.out_dir}")
        return 0
    with open_client(cfg) as client:
        run = train_run(cfg, client=client)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(run.finals.drop(columns=["history"], errors="ignore").to_string(index=False))
        print(run.validation.summary().round(4).to_string())
    failed = run.finals["error"].astype(bool).sum()
    return 1 if failed else 0
