"""Cross-validation of model variants: variants x folds x training seeds, on a Dask client.

A **variant** is a name and ``TrainConfig`` overrides applied on top of the run's recipe
for the default model (``RunConfig.train_config``); ``{"model": "original"}`` starts from
the original replica's recipe instead. To study a lever (an augmentation, a feature, a
window), give it as a variant and run it::

    from wav2kp.config import RunConfig
    from wav2kp.studies.cv import run_cv

    cfg = RunConfig.resolve(corpus="demo")
    result = run_cv(cfg, {"default": {}, "past 200 ms": {"window": {"past_ms": 200.0}}},
                    folds=5, seeds=(0, 1, 2))
    result.summary()   # per variant: mean and spread over seeds of each metric

or from the shell: ``wav2kp cv --study design`` (the cross-validation behind the
default's design: features, past and future context, refit), ``wav2kp cv --variants
my.json --folds 5`` (a JSON object ``{name: overrides}``). A new ``TrainConfig`` field
is a new lever.

**Folds**: ``"val"`` trains on the train split and scores the validation split (notebook
04's ablation is this one-fold case); an integer k splits the train + validation
*sentences* into k groups and holds out each in turn, the target normaliser and feature
statistics refitted on each fold's training clips (no held-out sentence leaks into them).
The test split is never touched.

Each task follows the refit rule of its config: with ``refit_on_val`` it trains on all of
the fold's training clips for the full schedule and is scored at its last epoch (what a
final model is); without, it holds out part of the fold's training sentences for early
stopping. Held-out clips are scored with ``wav2kp.evaluation.evaluate`` (mean over clips).

**Proxies and views** (issue 10: voices the model never heard). ``data.proxies`` (a
``wav2kp.training.train.CorpusData`` field) names further clip sets every task's model is scored
on, each clip against its own measured landmarks: another corpus (other voices and
faces), or held-out sentences heard through other recording conditions
(``wav2kp.studies.levers.proxy_sets``). A proxy clip of a sentence the task trained on is
never scored. ``views`` name post-processings of the trained model scored beside it
(``VIEWS``: the silence gate, the motion calibration), so an inference-time lever needs
no training of its own. Their scores are extra columns ``"<set>[+<view>]:<metric>"``
(``set`` is ``heldout`` or the proxy's name); ``METRICS`` stay the held-out sentences'
scores of the model as configured.

**Reuse**: a task is keyed by its resolved config, its fold's clip ids and the data's
fingerprint; its checkpoints and ``result.json`` live in ``models/<corpus>/cv/<key>/``,
and a finished task is read back instead of trained again (a half-trained one resumes;
one scored by other evaluation code is scored again from its checkpoint).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wav2kp.config import RunConfig, TrainConfig, config_digest
from wav2kp.tasks import Task, open_client, run_tasks, task_error, task_key, task_row
from wav2kp.training.inference import VIEWS

METRICS = [
    "mouth_open_r",
    "mouth_lmd_iod",
    "variance_ratio",
    "lvd_mouth_iod",
    "mouth_jitter_ratio",
    "syllable_band_ratio",
    "bilabial_closure_rate",
    "true_bilabial_closure_rate",
    "av_offset_frames",
]
# extra scores of proxies and views (module doc): the mouth-opening measures, the
# bilabial closures where clips carry a transcript and, where clips carry the truth of who
# speaks when, the share of silent frames with an open mouth
EXTRA_METRICS = ("mouth_open_r", "variance_ratio", "mouth_jitter_ratio", "syllable_band_ratio",
                 "bilabial_closure_rate", "true_bilabial_closure_rate", "av_offset_frames",
                 "mouth_lmd_iod", "silent_open_share")  # fmt: skip


# ---------------------------------------------------------------- variants and studies


def _window(**changes) -> dict:
    return {"window": changes}


# notebook 04's ablation: one choice of the default model changed at a time
ABLATION_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "original alignment (fwd 40, x3)": _window(mode="original"),
    "future 0 ms": _window(future_ms=0.0),
    "future 100 ms": _window(future_ms=100.0),
    "past 200 ms": _window(past_ms=200.0),
    "no normalisation (frame coords)": {"target_space": "frame"},
    "PCA head (8)": {"model_overrides": {"pca_components": 8}},
    "no velocity loss": {"velocity_weight": 0.0},
    "no emotion conditioning": {"emotion_conditioning": False},
}

# the choices that made the default (features, past and future context, refit),
# cross-validated
DESIGN_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "MFCC features (the original's)": {
        "features": {"kind": "mfcc", "n_mfcc": 40, "n_mels": 40},
        "normalize_features": True,
    },
    "past 200 ms": _window(past_ms=200.0),
    "future 0 ms": _window(future_ms=0.0),
    "future 100 ms": _window(future_ms=100.0),
    "no refit (early stopping on held-out sentences)": {"refit_on_val": False},
}

STUDIES = ("ablation", "design", "budget", "levers", "mouth")
BUDGET_EPOCHS = (10, 20)  # the short budgets the ``budget`` study compares with the preset


def study(cfg: RunConfig, name: str) -> dict[str, Any]:
    """Keyword arguments of ``run_cv`` for a named study: ``ablation`` (notebook 04's
    variants on the val fold at the run's ablation budget), ``design`` (5-fold CV over
    train + val sentences of the default's design choices, 3 seeds), ``budget`` (the
    ablation at the ``fast`` profile's budget and at the full budget, 3 seeds: does the
    short budget rank the variants the same?), ``levers`` (``wav2kp.studies.levers``: the
    unseen-voice levers, 3 folds, scored on proxies and under views)."""
    if name == "ablation":
        return dict(
            variants=ABLATION_VARIANTS,
            folds="val",
            seeds=cfg.ablation_seeds,
            budget=_ablation_budget(cfg),
        )
    if name == "design":
        return dict(variants=DESIGN_VARIANTS, folds=5, seeds=(0, 1, 2), budget={})
    if name == "levers":  # issue 10's robustness levers, scored on unseen-voice proxies
        from wav2kp.studies.levers import lever_study

        return lever_study()
    if name == "mouth":  # issue 17: phonetic stream, full motion, silence
        from wav2kp.studies.levers import mouth_study

        return mouth_study()
    if name == "budget":
        from wav2kp.config import PROFILES

        fast = PROFILES["fast"].get("ablation_epochs")
        variants: dict[str, dict[str, Any]] = {}
        for epochs in sorted({fast, *BUDGET_EPOCHS} - {None}):
            variants.update(
                {
                    f"{k} @ {epochs} epochs": {**v, "epochs": epochs}
                    for k, v in ABLATION_VARIANTS.items()
                }
            )
        variants.update({f"{k} @ preset epochs": v for k, v in ABLATION_VARIANTS.items()})
        return dict(variants=variants, folds="val", seeds=(0, 1, 2), budget={})
    raise ValueError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")


def _ablation_budget(cfg: RunConfig) -> dict[str, Any]:
    return {} if cfg.ablation_epochs is None else {"epochs": cfg.ablation_epochs}


def variant_config(
    cfg: RunConfig, overrides: Mapping[str, Any], seed: int, budget: Mapping[str, Any] = ()
) -> TrainConfig:
    """The run's recipe for ``overrides.get("model", "default")`` and ``seed``, then the
    budget, then the variant's overrides (a ``window`` override changes only the fields
    it names)."""
    values = copy.deepcopy(dict(budget or {}))
    values.update(copy.deepcopy(dict(overrides)))
    model = values.pop("model", "default")
    base = cfg.train_config(model, seed)
    if "window" in values:
        values["window"] = {**base.window, **values["window"]}
    return TrainConfig.from_dict({**base.to_dict(), **values, "seed": seed})


# ---------------------------------------------------------------- tasks


def data_digest(data) -> str:
    """What the corpus's clips are, for cache keys: corpus, split, feature statistics,
    normaliser and every clip's extraction fingerprint."""
    from wav2kp.training.checkpoints import digest_of

    clips = [*data.train, *data.val]
    return config_digest(
        {
            "corpus": data.context.get("corpus", ""),
            "split": data.context.get("split", {}),
            "stats": digest_of(data.context.get("feature_stats")),
            "normalizer": digest_of(data.context.get("normalizer")),
            "clips": sorted(
                (c.clip_id, str(c.extra.get("extraction_fingerprint", ""))) for c in clips
            ),
        }
    )


def sentence_folds(clips: Sequence, k: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """k (train ids, held-out ids) pairs: the clips' sentences shuffled with ``seed`` and
    cut into k groups; each group is held out once (a clip without a sentence id is its
    own sentence)."""
    groups = sorted({c.sentence_id or c.clip_id for c in clips})
    if k < 2 or k > len(groups):
        raise ValueError(f"{k} folds need between 2 and {len(groups)} sentences")
    order = np.random.default_rng(seed).permutation(len(groups))
    parts = np.array_split(np.array(groups, dtype=object)[order], k)
    out = []
    for part in parts:
        held = set(part.tolist())
        out.append(
            (
                [c.clip_id for c in clips if (c.sentence_id or c.clip_id) not in held],
                [c.clip_id for c in clips if (c.sentence_id or c.clip_id) in held],
            )
        )
    return out


def cv_tasks(
    cfg: RunConfig,
    data,
    variants: Mapping[str, Mapping[str, Any]],
    folds: int | str = "val",
    seeds: Iterable[int] = (0,),
    budget: Mapping[str, Any] | None = None,
    out_root: str | Path | None = None,
    root=None,
    views: Sequence[str] = (),
) -> list[Task]:
    """The tasks of a cross-validation (module doc); ``out_root`` default
    ``models/<corpus>/cv``."""
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        raise ValueError(f"unknown view(s) {unknown}; known: {', '.join(VIEWS)}")
    from wav2kp.paths import CorpusPaths

    out_root = Path(out_root) if out_root else CorpusPaths(cfg.corpus, root).models / "cv"
    if folds == "val":
        if not data.val:
            raise ValueError(f"corpus {cfg.corpus!r} has no val clips to score on")
        fold_list = [("val", [c.clip_id for c in data.train], [c.clip_id for c in data.val])]
    else:
        pairs = sentence_folds([*data.train, *data.val], int(folds), cfg.split_seed)
        fold_list = [(f"{i + 1}/{len(pairs)}", tr, ho) for i, (tr, ho) in enumerate(pairs)]
    digest = data_digest(data)
    tasks = []
    for name, overrides in variants.items():
        for seed in seeds:
            config = variant_config(cfg, overrides, int(seed), budget or {})
            for fold, train_ids, heldout_ids in fold_list:
                key = task_key(config, train_ids, heldout_ids, digest)
                tasks.append(
                    Task("cv", name, config, str(out_root / key), fold,
                         tuple(train_ids), tuple(heldout_ids), digest, tuple(views))
                )  # fmt: skip
    return tasks


def validation_tasks(cfg: RunConfig, data, root=None) -> tuple[list[Task], list[Task]]:
    """Notebook 04's validation runs: (each model's recipe on the val fold with its first
    training seed, for its curves and val scores; with ``cfg.ablation`` the ablation
    variants at the ablation budget on ``cfg.ablation_seeds``)."""
    if not data.val:
        return [], []
    models = []
    for model in cfg.models:  # the curves: each model's first seed; every seed's selection
        variant = {"model": model} if model != "default" else {}  # run for a plateau recipe
        plateau = cfg.train_config(model, 0).plateau and cfg.refit_on_val
        seeds = cfg.seeds_of(model) if plateau else cfg.seeds_of(model)[:1]
        models += cv_tasks(cfg, data, {model: variant}, "val", seeds, root=root)
    ablation = cv_tasks(cfg, data, **study(cfg, "ablation"), root=root) if cfg.ablation else []
    return models, ablation


# ---------------------------------------------------------------- running tasks


_FOLD_CACHE: dict[str, tuple] = {}


def fold_data(data, task: Task):
    """(train clips, held-out clips, context) of a task's fold: the val fold as loaded;
    any other fold with the normaliser and feature statistics refitted on its training
    clips, and every clip rebuilt with them."""
    by_id = {c.clip_id: c for c in [*data.train, *data.val]}
    train = [by_id[i] for i in task.train_ids if i in by_id]
    heldout = [by_id[i] for i in task.heldout_ids if i in by_id]
    if task.fold == "val":
        return train, heldout, data.context
    cache_key = config_digest([task.data_digest, sorted(task.train_ids)])
    if cache_key not in _FOLD_CACHE:
        if len(_FOLD_CACHE) > 8:
            _FOLD_CACHE.clear()
        _FOLD_CACHE[cache_key] = _refit_fold(train, [*train, *heldout], data.context)
    rebuilt, context = _FOLD_CACHE[cache_key]
    return (
        [rebuilt[c.clip_id] for c in train],
        [rebuilt[c.clip_id] for c in heldout],
        context,
    )


def _refit_fold(train: Sequence, clips: Sequence, context: dict):
    from wav2kp.config import FeatureConfig, WindowConfig
    from wav2kp.features.features import FeatureStats
    from wav2kp.windowing import dataset as ds
    from wav2kp.windowing.targets import TargetNormalizer

    old_norm = context["normalizer"]
    if isinstance(old_norm, dict):
        old_norm = TargetNormalizer.from_state_dict(old_norm)
    old_stats = context.get("feature_stats")
    if isinstance(old_stats, dict):
        old_stats = FeatureStats.from_dict(old_stats)
    config = old_stats.feature_config if old_stats is not None and old_stats.config else None

    def raw(clip):
        if old_stats is None:  # features of unknown origin: kept as they are
            return np.asarray(clip.features, np.float64)
        try:
            return ds.raw_features(clip, config or FeatureConfig())[0]
        except (OSError, ValueError):  # no audio (synthetic clips): undo the normalisation
            std = np.where(old_stats.std > 1e-8, old_stats.std, 1.0)
            return np.asarray(clip.features, np.float64) * std + old_stats.mean

    raws = {c.clip_id: raw(c) for c in clips}
    if old_stats is None:
        dim = next(iter(raws.values())).shape[1]
        stats = FeatureStats(mean=np.zeros(dim), std=np.ones(dim))
    else:
        stats = FeatureStats.fit(
            [raws[c.clip_id] for c in train], config, [c.clip_id for c in train]
        )
    normalizer = TargetNormalizer(
        pca_components=old_norm.pca_components, neutral=old_norm.neutral
    ).fit([(c.speaker, np.where(c.valid[:, None, None], c.landmarks, np.nan)) for c in train])
    rebuilt = {}
    for c in clips:
        window = WindowConfig.from_dict(c.extra.get("window_config", WindowConfig().to_dict()))
        rebuilt[c.clip_id] = ds.make_clip(
            c.clip_id, c.frame_times, c.landmarks, c.valid, raws[c.clip_id], c.feature_times,
            stats, window, normalizer, speaker=c.speaker, emotion=c.emotion,
            sentence_id=c.sentence_id, split=c.split, frame_size=c.frame_size,
            audio_path=c.audio_path,
            extra={k: v for k, v in c.extra.items() if k not in ("feature_config", "feature_stats")},
        )  # fmt: skip
    refitted = {**context, "normalizer": normalizer}
    if old_stats is not None:
        refitted["feature_stats"] = stats
    return rebuilt, refitted


def _inner_split(clips: Sequence, fraction: float, seed: int):
    """Held-out sentences for early stopping inside a fold's training clips."""
    groups = sorted({c.sentence_id or c.clip_id for c in clips})
    n = max(1, int(round(fraction * len(groups))))
    held = set(np.random.default_rng(seed).permutation(groups)[:n].tolist())
    return (
        [c for c in clips if (c.sentence_id or c.clip_id) not in held],
        [c for c in clips if (c.sentence_id or c.clip_id) in held],
    )


def execute(task: Task, data) -> dict[str, Any]:
    """Run one task (in this process or on a Dask worker) and return its result row; a
    finished cross-validation task is read back from its ``result.json``."""
    started_cpu, started = time.process_time(), time.perf_counter()
    row = task_row(task)
    result_file = Path(task.out_dir) / "result.json"
    try:
        if task.kind == "cv" and result_file.is_file():
            saved = json.loads(result_file.read_text())
            scoring = scoring_digest(task, data)
            if saved.get("key") == task.key and saved.get("scoring") == scoring:
                return {**saved, "name": task.name, "reused": True}
        row.update(_execute(task, data))
        row["scoring"] = scoring_digest(task, data)
    except Exception as err:  # one broken task must not stop the study
        row["error"] = task_error(task, err)
    row["cpu_seconds"] = time.process_time() - started_cpu
    row["wall_seconds"] = time.perf_counter() - started
    row["reused"] = False
    if task.kind == "cv" and not row["error"]:
        from wav2kp.atomic import write_json

        write_json(result_file, row)
    return row


def scoring_digest(task: Task | None = None, data=None) -> str:
    """Digest of what scores a model: the code (``wav2kp.metrics``, ``wav2kp.evaluation.evaluate``,
    and the views' modules when a task has views), the task's views and the proxy sets'
    clips. A saved result scored otherwise is scored again (from its finished
    checkpoint, without training again)."""
    import hashlib
    import sys

    from wav2kp import metrics
    from wav2kp.evaluation import evaluate
    from wav2kp.features import voice
    from wav2kp.training import calibration, vad

    # the gate and calibration score variants too (a checkpoint's silence_gate, calibrate)
    modules = [metrics, evaluate, calibration, vad, voice, sys.modules[__name__]]
    digest = hashlib.sha1()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    if task is not None and task.views:
        digest.update(json.dumps(sorted(task.views)).encode())
    proxies = getattr(data, "proxies", None) or {}
    if proxies:
        digest.update(json.dumps({name: sorted(c.clip_id for c in clips)
                                  for name, clips in sorted(proxies.items())}).encode())  # fmt: skip
    return digest.hexdigest()[:16]


def _execute(task: Task, data) -> dict[str, Any]:
    import dataclasses

    from wav2kp.training.inference import load_predictor
    from wav2kp.training.train import train_final_model, train_model

    if task.kind == "final":
        result = train_final_model(
            data.train, data.val, task.config, task.out_dir, progress=False, context=data.context
        )
        return {
            "checkpoint": str(result.best_checkpoint),
            **_result_fields(result),
        }
    train, heldout, context = fold_data(data, task)
    config = task.config
    if config.plateau and task.fold == "val":
        # the selection run: trained until the val loss stops improving, scored at its best
        result = train_model(train, heldout, config, task.out_dir, progress=False,
                             context=context)  # fmt: skip
        checkpoint = result.best_checkpoint
    elif config.refit_on_val and not config.plateau:
        # the final model's procedure: all training clips, the full schedule, last epoch;
        # held-out loss only watched (a plateau scheduler would use it: not given then)
        config = dataclasses.replace(config, patience=0)
        watch = heldout if config.scheduler != "plateau" else []
        result = train_model(train, watch, config, task.out_dir, progress=False, context=context)
        checkpoint = result.last_checkpoint
    else:  # early stopping on held-out sentences of the fold's own training clips
        inner_train, inner_val = _inner_split(train, 0.2, task.config.seed)
        result = train_model(
            inner_train, inner_val, config, task.out_dir, progress=False, context=context
        )
        checkpoint = result.best_checkpoint
    from wav2kp.evaluation.evaluate import evaluate_models

    predictor = load_predictor(checkpoint, name=task.name)
    scores = evaluate_models([predictor], heldout, spaces=("aligned",), progress=False)
    failed = scores["error"].astype(bool)
    if failed.all():
        raise RuntimeError("; ".join(scores["error"].unique()))
    return {
        **scores.loc[~failed, METRICS].mean().to_dict(),
        "silent_open_share": heldout_silence(predictor, heldout),
        "heldout_clips": int((~failed).sum()),
        **extra_scores(predictor, heldout, train, task.views, getattr(data, "proxies", None)),
        "checkpoint": str(checkpoint),
        **_result_fields(result),
    }


def heldout_silence(predictor, heldout) -> float:
    """Mean ``silent_open_share`` over the held-out clips that carry speech truth (GRID's
    alignments: ``wav2kp cv --align-dir``); NaN without."""
    from wav2kp.training.inference import unwrapped
    from wav2kp.training.vad import clip_silence_share

    normalizer = unwrapped(predictor).normalizer
    shares = [
        clip_silence_share(
            clip, np.asarray(predictor.predict_landmarks(clip), np.float64), normalizer
        )
        for clip in heldout
        if clip.extra.get("speech_truth") is not None
    ]
    return float(np.nanmean(shares)) if np.isfinite(shares).any() else float("nan")


def extra_scores(predictor, heldout, train, views=(), proxies=None) -> dict[str, float]:
    """``"<set>[+<view>]:<metric>"`` means over clips (module doc): the held-out clips
    under each view, and every proxy set (minus clips of sentences in ``train``) as the
    model is and under each view; ``<set>:clips`` counts the clips scored."""
    from wav2kp.training.inference import unwrapped
    from wav2kp.training.vad import clip_silence_share

    model = unwrapped(predictor)
    trained = {c.sentence_id or c.clip_id for c in train}
    sets = {"heldout": list(heldout)} if views else {}
    for name, clips in (proxies or {}).items():
        sets[name] = [c for c in clips if (c.sentence_id or c.clip_id) not in trained]
    out: dict[str, float] = {}
    for set_name, clips in sets.items():
        if not clips:
            continue
        out[f"{set_name}:clips"] = float(len(clips))
        forms = {"": predictor} if set_name != "heldout" else {}
        forms.update({f"+{view}": VIEWS[view](model) for view in views})
        for suffix, form in forms.items():
            rows = []
            for clip in clips:
                try:
                    pred = np.asarray(form.predict_landmarks(clip), np.float64)
                except Exception as err:  # one clip must not sink the task
                    warnings.warn(f"{form.name} on {clip.clip_id}: {err}", stacklevel=2)
                    continue
                row = _sequence_scores(pred, clip)
                row["silent_open_share"] = clip_silence_share(clip, pred, model.normalizer)
                rows.append(row)
            if rows:
                means = pd.DataFrame(rows).mean(numeric_only=True)
                for metric in EXTRA_METRICS:
                    out[f"{set_name}{suffix}:{metric}"] = float(means.get(metric, np.nan))
    return out


def _sequence_scores(pred: np.ndarray, clip) -> dict[str, float]:
    """The metrics of ``wav2kp.evaluation.evaluate`` in the pose-normalised space for one clip."""
    from wav2kp.evaluation.evaluate import score_landmarks
    from wav2kp.evaluation.phones import clip_phones

    table = score_landmarks(pred, clip.landmarks, clip.frame_times, clip.valid,
                            spaces=("aligned",), clip_id=clip.clip_id,
                            phones=clip_phones(clip))  # fmt: skip
    row = table.iloc[0]
    return {m: float(row[m]) for m in EXTRA_METRICS if m in row and not row["error"]}


def _result_fields(result) -> dict[str, Any]:
    return {
        # CPU seconds of the training itself, wherever and whenever it ran (NaN for
        # checkpoints older than that record)
        "train_cpu_seconds": float(result.history["cpu_seconds"].sum(min_count=1)),
        "epochs": result.epochs_run,
        "epochs_trained_now": result.epochs_this_call,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "train_seconds": float(result.history["seconds"].sum()),
        "n_parameters": result.n_parameters,
        "history": result.history.to_dict("records"),
    }


# ---------------------------------------------------------------- results


@dataclass
class CVResult:
    """One row per task (variant, fold, seed): metrics, epochs, seconds, error."""

    table: pd.DataFrame
    histories: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def from_outcomes(cls, rows: Sequence[Mapping[str, Any]]) -> CVResult:
        records, curves = [], []
        for row in rows:
            record = {k: v for k, v in row.items() if k != "history"}
            records.append(record)
            for epoch in row.get("history") or []:
                curves.append(
                    {"variant": row["name"], "seed": row["seed"], "fold": row["fold"], **epoch}
                )
        table = pd.DataFrame(records).rename(columns={"name": "variant"})
        for column in [*METRICS, "epochs", "cpu_seconds", "error"]:
            if column not in table:
                table[column] = "" if column == "error" else np.nan
        return cls(table, pd.DataFrame(curves))

    @property
    def extra_metrics(self) -> list[str]:
        """The proxy and view columns (``"<set>[+<view>]:<metric>"``) present."""
        return [c for c in self.table.columns if ":" in str(c) and not c.endswith(":clips")]

    def summary(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """Per variant (in the order run): each metric's mean over folds per seed, then the
        mean and standard deviation over seeds; ``seeds`` and ``folds`` counted,
        ``cpu_seconds`` summed over its tasks. ``metrics`` default: ``METRICS`` and
        every proxy / view column."""
        metrics = list(METRICS) + self.extra_metrics if metrics is None else list(metrics)
        ok = self.table[self.table["error"].fillna("") == ""]
        if ok.empty:
            return pd.DataFrame()
        per_seed = ok.groupby(["variant", "seed"], sort=False)[list(metrics)].mean()
        grouped = per_seed.groupby(level="variant", sort=False)
        out = grouped.mean().add_suffix("")
        spread = grouped.std(ddof=1).add_suffix("_sd")
        out = out.join(spread)
        out["seeds"] = grouped.size()
        out["folds"] = ok.groupby("variant", sort=False)["fold"].nunique()
        out["cpu_seconds"] = ok.groupby("variant", sort=False)["cpu_seconds"].sum()
        order = [v for v in dict.fromkeys(self.table["variant"]) if v in out.index]
        return out.loc[order]

    def errors(self) -> list[str]:
        return [e for e in self.table["error"].fillna("") if e]


def run_cv(
    cfg: RunConfig,
    variants: Mapping[str, Mapping[str, Any]],
    folds: int | str = "val",
    seeds: Iterable[int] = (0,),
    budget: Mapping[str, Any] | None = None,
    data=None,
    client=None,
    out_root: str | Path | None = None,
    progress: bool = True,
    root=None,
    views: Sequence[str] = (),
    proxies: Mapping[str, Sequence] | None = None,
) -> CVResult:
    """Cross-validate ``variants`` (module doc) and return every task's row; ``views``
    and ``proxies`` (clip sets, set on ``data.proxies``) are scored besides."""
    from wav2kp.training.train import load_corpus_for_training

    data = data or load_corpus_for_training(cfg.corpus, progress=progress, root=root)
    if proxies is not None:
        data.proxies = {name: list(clips) for name, clips in proxies.items()}
    tasks = cv_tasks(cfg, data, variants, folds, seeds, budget, out_root, root, views)
    results = run_tasks(tasks, data, client, progress, execute=execute)
    return CVResult.from_outcomes([{**results[t.key], "name": t.name} for t in tasks])


def rank_agreement(result: CVResult, metric: str = "mouth_open_r") -> dict[str, Any]:
    """For the ``budget`` study: per short budget, Spearman's rho between the variants'
    mean ``metric`` (over seeds) at that budget and at the preset budget, and whether the
    best variant is the same; beside it the ceiling the noise allows: the mean rho between
    the rankings of two single seeds at the preset budget."""
    from itertools import combinations

    from scipy.stats import spearmanr

    ok = result.table[result.table["error"].fillna("") == ""].copy()
    ok[["base", "budget"]] = ok["variant"].str.rsplit(" @ ", n=1, expand=True)
    means = ok.pivot_table(index="base", columns="budget", values=metric, aggfunc="mean")
    full = means["preset epochs"].dropna()
    higher_is_better = metric in ("mouth_open_r",)

    def best(values):
        return values.idxmax() if higher_is_better else values.idxmin()

    out: dict[str, Any] = {"metric": metric, "variants": int(len(full)), "budgets": {}}
    for budget in [b for b in means.columns if b != "preset epochs"]:
        short = means[budget].reindex(full.index)
        out["budgets"][budget] = {
            "spearman_rho": float(spearmanr(short, full).statistic),
            "same_best": bool(best(short) == best(full)),
        }
    at_full = ok[ok["budget"] == "preset epochs"].pivot_table(
        index="base", columns="seed", values=metric
    )
    pairs = [spearmanr(at_full[a], at_full[b]).statistic for a, b in combinations(at_full, 2)]
    out["seed_to_seed_rho_at_preset"] = float(np.mean(pairs)) if pairs else float("nan")
    return out


# ---------------------------------------------------------------- command line


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    from wav2kp.tasks import add_run_arguments

    add_run_arguments(parser)
    parser.add_argument(
        "--study", choices=STUDIES, help="a named study (see wav2kp.studies.cv.study)"
    )
    parser.add_argument("--variants", type=Path, help="JSON file: {variant name: overrides}")
    parser.add_argument("--folds", default=None, help="'val' or a number of folds (default val)")
    parser.add_argument("--seeds", default=None, help="training seeds, e.g. 0,1,2 (default 0)")
    parser.add_argument("--variant", action="append", default=None,
                        help="only this variant of the study (repeatable)")  # fmt: skip
    parser.add_argument("--views", default=None, help=f"views scored besides: {', '.join(VIEWS)}")
    parser.add_argument(
        "--proxy",
        action="append",
        default=None,
        help="proxy set: a corpus name or a wav2kp.studies.levers condition (repeatable)",
    )
    parser.add_argument("--align-dir", default=None,
                        help="GRID-style word alignments: the silence measure on proxies")  # fmt: skip
    parser.add_argument(
        "--out", type=Path,
        help="write the results to OUT.json (summary, config, command) and OUT.csv (every task)",
    )  # fmt: skip


def run_cli(args: argparse.Namespace) -> int:
    import sys

    from wav2kp.tasks import run_config_from_args

    cfg = run_config_from_args(args)
    if args.study:
        options = study(cfg, args.study)
    elif args.variants:
        options = dict(variants=json.loads(args.variants.read_text()), folds="val", seeds=(0,))
    else:
        raise SystemExit("wav2kp cv: give --study NAME or --variants FILE")
    if args.folds is not None:
        options["folds"] = "val" if args.folds == "val" else int(args.folds)
    if args.seeds is not None:
        options["seeds"] = tuple(int(s) for s in str(args.seeds).split(",") if s.strip())
    if args.variant:
        unknown = sorted(set(args.variant) - set(options["variants"]))
        if unknown:
            raise SystemExit(f"wav2kp cv: unknown variant(s) {unknown}; known: "
                             f"{', '.join(options['variants'])}")  # fmt: skip
        options["variants"] = {k: v for k, v in options["variants"].items() if k in args.variant}
    if args.views is not None:
        options["views"] = tuple(v for v in args.views.split(",") if v)
    if args.proxy is not None:
        options["proxies"] = tuple(args.proxy)
    if args.align_dir or options.get("proxies"):
        from wav2kp.training.train import load_corpus_for_training

        options["data"] = load_corpus_for_training(cfg.corpus)
    if args.align_dir:  # the silence measure on the held-out sentences too
        from wav2kp.training.vad import attach_speech_truth

        attach_speech_truth([*options["data"].train, *options["data"].val], args.align_dir)
    if options.get("proxies"):
        from wav2kp.studies.levers import proxy_sets

        options["proxies"] = proxy_sets(options["data"], options["proxies"], args.align_dir,
                                        folds=options.get("folds", "val"))  # fmt: skip
    else:
        options.pop("proxies", None)
    with open_client(cfg) as client:
        result = run_cv(cfg, client=client, **options)
    summary = result.summary()
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary.round(4).to_string())
    agreement = rank_agreement(result) if args.study == "budget" else None
    if agreement:
        print(json.dumps(agreement, indent=1))
    for error in result.errors():
        print(f"error: {error}")
    if args.out:
        save_results(args.out, result, cfg, options, agreement, " ".join(["wav2kp", *sys.argv[1:]]))
    return 1 if result.errors() else 0


def save_results(out: Path, result: CVResult, cfg: RunConfig, options, agreement, command):
    """``out.json``: the command, commit, run configuration, options and the summary (and
    the budget study's rank agreement); ``out.csv``: every task's row."""
    from wav2kp.atomic import write_csv, write_json
    from wav2kp.paths import git_commit, project_root

    out = Path(out)
    write_csv(out.with_suffix(".csv"), result.table)
    write_json(
        out.with_suffix(".json"),
        {
            "command": command,
            "commit": git_commit(project_root()),
            "config": cfg.to_dict(),
            "folds": options.get("folds"),
            "seeds": list(options.get("seeds", ())),
            "budget": dict(options.get("budget") or {}),
            "variants": options["variants"],
            "views": list(options.get("views") or ()),
            "proxies": sorted(options.get("proxies") or ()),
            "summary": summary_records(result.summary()),
            "rank_agreement": agreement,
            "cpu_seconds": float(result.table["cpu_seconds"].sum()),
        },
    )


def summary_records(summary: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(summary.reset_index().to_json(orient="records"))


def load_results(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(summary table indexed by variant, the whole saved record) of ``save_results``."""
    record = json.loads(Path(path).with_suffix(".json").read_text())
    return pd.DataFrame(record["summary"]).set_index("variant"), record
