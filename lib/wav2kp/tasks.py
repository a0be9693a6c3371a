"""Running trainings as tasks, here or on a Dask cluster: the ``Task`` (one training: a
final model or one variant x fold x seed of a cross-validation), its cache key, the runner
(``run_tasks``: one row per task, a lost or failed task one row saying so) and the client
(``open_client``) for a run's ``workers`` / ``scheduler``; and a run's command-line options
(``--corpus``, ``--profile``, ``--set key=value``, Dask). What a task computes is given to
``run_tasks`` by the study that makes the tasks (``wav2kp.studies.cv.execute``), so this
runner sits below training and evaluation alike."""

from __future__ import annotations

import argparse
import contextlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wav2kp.config import INERT_FIELDS, RunConfig, TrainConfig, config_digest

# bump when what a task computes (``execute``) changes: cached results are redone
# (2: mouth jitter in the aligned space)
RESULT_VERSION = 2
RUN_ONLY_FIELDS = ("max_minutes", "device", "num_threads")


@dataclass
class Task:
    """One training: a final model (``kind="final"``, see ``wav2kp.studies.train_run.train_run``) or
    one variant x fold x seed of a cross-validation (``kind="cv"``)."""

    kind: str
    name: str
    config: TrainConfig
    out_dir: str
    fold: str = ""
    train_ids: tuple[str, ...] = ()
    heldout_ids: tuple[str, ...] = ()
    data_digest: str = ""
    views: tuple[str, ...] = ()  # VIEWS scored beside the model (not part of the key)

    @property
    def key(self) -> str:
        if self.kind == "final":
            return f"final-{self.name}-{self.config.seed}"
        return task_key(self.config, self.train_ids, self.heldout_ids, self.data_digest)


def task_key(config: TrainConfig, train_ids, heldout_ids, data_digest: str) -> str:
    recipe = {
        k: v
        for k, v in config.to_dict().items()
        if k not in RUN_ONLY_FIELDS and not (k in INERT_FIELDS and v == INERT_FIELDS[k])
    }
    return config_digest(
        {
            "version": RESULT_VERSION,
            "config": recipe,
            "train": sorted(train_ids),
            "heldout": sorted(heldout_ids),
            "data": data_digest,
        }
    )


def task_row(task: Task) -> dict[str, Any]:
    return {
        "kind": task.kind,
        "name": task.name,
        "model": task.config.model,
        "seed": task.config.seed,
        "fold": task.fold,
        "key": task.key,
        "error": "",
    }


def task_error(task: Task, err: BaseException, what: str = "") -> str:
    """One line naming the task and what went wrong."""
    return (
        f"{task.name} (seed {task.config.seed}, fold {task.fold or '-'}): {what}"
        + f"{type(err).__name__}: {err}".splitlines()[0]
    )


def run_tasks(
    tasks: Sequence[Task],
    data,
    client=None,
    progress: bool = True,
    *,
    execute: Callable[[Task, Any], dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Every task's result row by ``task.key``, ``execute(task, data)`` of each (a
    function a Dask worker can import): on ``client`` (the data scattered to the workers
    once; a task lost with its worker is retried) or here, one after the other. Results
    are the same either way (same seeds, one thread per task)."""
    from tqdm.auto import tqdm

    unique: dict[str, Task] = {}
    for task in tasks:
        unique.setdefault(task.key, task)
    bar = tqdm(total=len(unique), desc="training", unit="task", disable=not progress)
    results: dict[str, dict[str, Any]] = {}
    if client is None:
        for key, task in unique.items():
            bar.set_postfix_str(f"{task.name} seed {task.config.seed} {task.fold}".strip())
            results[key] = execute(task, data)
            bar.update()
    else:
        from asyncio import CancelledError

        from distributed import as_completed

        shared = client.scatter(data.without_windows(), broadcast=True, hash=False)
        futures = {
            client.submit(execute, task, shared, key=f"train-{key}", pure=False, retries=1): key
            for key, task in unique.items()
        }
        for future in as_completed(futures, loop=client.loop):
            key = futures[future]
            try:
                results[key] = future.result()
            except (Exception, CancelledError) as err:
                # lost on the cluster (its workers died twice, its data was forgotten
                # after a worker restart, ...): this task's row says so and the others
                # go on; finished work is reused by the same command run again
                results[key] = {**task_row(unique[key]), "reused": False,
                                "error": task_error(unique[key], err, "lost on the cluster: ")}  # fmt: skip
            bar.update()
    bar.close()
    for row in results.values():
        if row.get("error"):
            warnings.warn(row["error"], stacklevel=2)
    return results


@contextlib.contextmanager
def open_client(cfg: RunConfig):
    """A Dask client for ``cfg.workers`` / ``cfg.scheduler`` (``workers=0``: None, work
    runs in this process), closed on exit."""
    if cfg.workers == 0:
        yield None
        return
    import dask

    from wav2kp.cluster import get_client

    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536 (memory handed back to the
    # system early); training allocates and frees tensors every step, and with that
    # setting a 10-epoch default-model run spent 10x the system time (+35 % CPU in all).
    # Training workers keep glibc's own adaptive threshold.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        client = get_client(cfg.scheduler, cfg.workers)
    try:
        yield client
    finally:
        client.close()


# ---------------------------------------------------------------- a run's command line


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--corpus``, ``--profile`` and ``--set key=value`` (any ``RunConfig`` field), plus
    the Dask options; defaults all come from ``wav2kp.config``."""
    from wav2kp.config import PROFILES, add_workers_argument

    # None: the profile's corpus, else RunConfig's (resolve)
    parser.add_argument(
        "--corpus",
        default=None,
        help=f"corpus name (default: the profile's, else {RunConfig.corpus})",
    )
    parser.add_argument(
        "--profile", default=None, help=f"{', '.join(PROFILES)} (default: {RunConfig.profile})"
    )
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="any run parameter, e.g. --set seeds=0,1,2 --set epochs=20 (repeatable)",
    )  # fmt: skip
    add_workers_argument(parser, "Dask worker processes")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    from wav2kp.config import parse_assignment

    values = dict(parse_assignment(a) for a in args.assignments)
    for name in ("corpus", "profile", "workers", "scheduler"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    return RunConfig.resolve(**values)
