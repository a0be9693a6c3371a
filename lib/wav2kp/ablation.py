"""A small ablation: which choices make the keypoints good, on held-out sentences.

Each variant is the default training config with a few fields changed (the window's
alignment mode and future context, the target space, a PCA output head, ...). Every
variant trains with the same budget (epochs and/or minutes) and seed, then is scored on
the validation split with ``wav2kp.evaluate`` (mouth-opening r, mouth LMD, variance
ratio, A/V offset). Checkpoints are kept per variant, so a re-run only evaluates.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from wav2kp.train import (
    CorpusData,
    TrainConfig,
    load_corpus_for_training,
    load_predictor,
    train_model,
)

ABLATION_METRICS = [
    "mouth_open_r",
    "mouth_lmd_iod",
    "variance_ratio",
    "lvd_mouth_iod",
    "jitter_ratio",
    "av_offset_frames",
]


def _window(**changes) -> dict:
    base = dict(TrainConfig.preset("default").window)  # the default model's window
    base.update(changes)
    return base


# name -> TrainConfig overrides on top of the default preset
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "original alignment (fwd 40, x3)": {"window": _window(mode="original")},
    "future 0 ms": {"window": _window(future_ms=0.0)},
    "future 100 ms": {"window": _window(future_ms=100.0)},
    "past 200 ms": {"window": _window(past_ms=200.0)},
    "no normalisation (frame coords)": {"target_space": "frame"},
    "PCA head (8)": {"model_overrides": {"pca_components": 8}},
    "no velocity loss": {"velocity_weight": 0.0},
    "no emotion conditioning": {"emotion_conditioning": False},
}


def variant_config(
    overrides: Mapping[str, Any], budget: Mapping[str, Any], seed: int
) -> TrainConfig:
    """The default preset, then the variant's changes, then the shared budget."""
    values = copy.deepcopy(dict(overrides))
    values.update(budget)
    values["seed"] = seed
    return TrainConfig.preset(values.pop("model", "default"), **values)


def run_ablation(
    corpus: str | CorpusData,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    budget: Mapping[str, Any] | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train every variant with the same ``budget`` (TrainConfig fields, e.g.
    ``{"epochs": 20, "max_minutes": 2}``) and score it on the val split.

    Returns one row per variant: the mean over val clips of ``ABLATION_METRICS``, the
    best validation loss, epochs run, seconds of training and an ``error`` column (a
    variant that fails is reported, the others go on). Checkpoints go under
    ``out_dir/<variant>/`` (default ``data/models/<corpus>/ablation``).
    """
    from wav2kp.evaluate import evaluate_models
    from wav2kp.paths import CorpusPaths

    data = (
        corpus
        if isinstance(corpus, CorpusData)
        else load_corpus_for_training(corpus, progress=progress)
    )
    name = data.context.get("corpus", corpus if isinstance(corpus, str) else "corpus")
    variants = DEFAULT_VARIANTS if variants is None else variants
    budget = dict(budget or {"epochs": 20})
    out_dir = Path(out_dir) if out_dir is not None else CorpusPaths(name).models / "ablation"
    if not data.val:
        raise ValueError(f"corpus {name!r} has no val clips to score the ablation on")
    rows = []
    for variant, overrides in variants.items():
        row: dict[str, Any] = {"variant": variant, "error": ""}
        try:
            config = variant_config(overrides, budget, seed)
            folder = out_dir / _slug(variant)
            result = train_model(
                data.train, data.val, config, folder, progress=progress, context=data.context
            )
            predictor = load_predictor(result.best_checkpoint, name=variant)
            scores = evaluate_models([predictor], data.val, spaces=("aligned",), progress=False)
            failed = scores["error"].astype(bool)
            if failed.all():
                raise RuntimeError("; ".join(scores["error"].unique()))
            row.update(scores.loc[~failed, ABLATION_METRICS].mean().to_dict())
            row.update(
                best_val_loss=result.best_val_loss,
                epochs=result.epochs_run,
                train_seconds=float(result.history["seconds"].sum()),
                n_parameters=result.n_parameters,
            )
        except Exception as err:  # one broken variant must not stop the study
            row["error"] = f"{variant}: {type(err).__name__}: {err}"
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ABLATION_METRICS + ["best_val_loss", "epochs", "train_seconds", "n_parameters"]:
        if column not in table:
            table[column] = float("nan")
    return table[
        [
            "variant",
            *ABLATION_METRICS,
            "best_val_loss",
            "epochs",
            "train_seconds",
            "n_parameters",
            "error",
        ]
    ]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
