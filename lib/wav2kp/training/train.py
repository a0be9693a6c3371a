"""Training: random crops, masked loss, atomic checkpoints, exact resume.

``train_model(train_clips, val_clips, config, out_dir)`` trains one model on ClipData and
writes ``out_dir/last.pt`` (every epoch: everything needed to resume bit-for-bit) and
``out_dir/best.pt`` (lowest validation loss; the last epoch when there is no validation).
A checkpoint (``wav2kp.training.checkpoints``) bundles the model with everything inference needs
and a fingerprint of the data it was trained on; resuming on changed data (another split,
feature kind, normaliser, re-extracted clips) trains afresh and says what changed.
``wav2kp.training.inference.load_predictor`` turns a checkpoint into a predictor.

Each model is fed the features its ``TrainConfig`` names (``wav2kp.windowing.dataset.with_features``):
the corpus's pipeline features (log-mel by default), or for the ``original`` replica the
original's raw MFCC computed from the audio, bit for bit.

What notebook 04 and ``wav2kp train`` run (the final models with the validation runs,
which are scored too) is ``wav2kp.studies.train_run``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from wav2kp.config import PROFILES_KEPT_APART, RunConfig, TrainConfig
from wav2kp.training.checkpoints import (
    CHECKPOINT_FORMAT,
    fingerprint_changes,
    load_checkpoint,
    plain,
    save_checkpoint,
    training_fingerprint,
)
from wav2kp.training.inference import resolve_device
from wav2kp.training.models import ModelConfig, build_model, count_parameters
from wav2kp.windowing import dataset as ds
from wav2kp.windowing.dataset import ClipData, LazyWindows, clip_windows

__all__ = [
    "CHECKPOINT_FORMAT",
    "ClipData",
    "CorpusData",
    "LazyWindows",
    "TrainResult",
    "clip_windows",
    "load_corpus_for_training",
    "train_final_model",
    "train_model",
]


def training_arrays(clip: ClipData, config: TrainConfig) -> tuple[LazyWindows, np.ndarray]:
    """(windows (N, C, D), gathered lazily; targets (N, K) with NaN rows) a model trains on
    for one clip (see ``wav2kp.windowing.dataset.training_arrays``)."""
    return ds.training_arrays(clip, config.window_config, config.target_space, config.upsample)


def model_inputs(clips: Sequence[ClipData], config: TrainConfig, context: dict):
    """(FeatureConfig or None, FeatureStats or None) the model is fed: the corpus's
    (``context``) when ``config.features`` is None; else those features, raw (identity
    statistics) or normalised with statistics fitted on ``clips``."""
    from wav2kp.config import FeatureConfig
    from wav2kp.features.features import FeatureStats

    corpus_config = context.get("feature_config")
    corpus_config = (
        FeatureConfig.from_dict(corpus_config) if isinstance(corpus_config, dict) else corpus_config
    )
    corpus_stats = context.get("feature_stats")
    corpus_stats = (
        FeatureStats.from_dict(corpus_stats) if isinstance(corpus_stats, dict) else corpus_stats
    )
    if config.features is None:
        return corpus_config, corpus_stats
    wanted = FeatureConfig.from_dict(config.features)
    if not config.normalize_features:
        return wanted, ds.identity_stats(wanted)
    if wanted == corpus_config and corpus_stats is not None:
        return wanted, corpus_stats
    raws, ids = [], []
    for clip in clips:
        try:
            raws.append(ds.raw_features(clip, wanted)[0])
            ids.append(clip.clip_id)
        except (OSError, ValueError) as err:
            warnings.warn(f"clip {clip.clip_id}: no {wanted.kind} features: {err}", stacklevel=2)
    return wanted, FeatureStats.fit(raws, wanted, ids)


# ---------- loss ----------


MOUTH_POINTS = tuple(range(48, 68))


def target_weights(n_targets: int, mouth_weight: float) -> torch.Tensor | None:
    """Per-value loss weights (mean 1) giving the mouth points ``mouth_weight`` times the
    weight of the rest; None when uniform or when targets are not 68 x 2 points (PCA)."""
    if mouth_weight == 1.0 or n_targets != 136:
        return None
    weights = torch.ones(68, 2)
    weights[list(MOUTH_POINTS)] = float(mouth_weight)
    weights = weights.reshape(136)
    return weights / weights.mean()


# inner-lip point pairs (top, bottom) of the 68 iBUG points
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
_GAP_TOP = [2 * top + 1 for top, _ in INNER_LIP_PAIRS]  # y values of the (68, 2) layout
_GAP_BOTTOM = [2 * bottom + 1 for _, bottom in INNER_LIP_PAIRS]


def lip_gap(values: torch.Tensor) -> torch.Tensor:
    """(..., 136) normalised targets -> (...) the mean inner-lip gap in target units.
    Targets are pose-free (upright) shapes minus the neutral over one scale, so the gap is
    a difference of y values, linear in the targets."""
    return (values[..., _GAP_BOTTOM] - values[..., _GAP_TOP]).mean(dim=-1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def opening_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE of the inner-lip gap, of its velocity and of its acceleration, over valid frames
    (pairs, triples)."""
    gp, gt = lip_gap(pred), lip_gap(target)
    loss = _masked_mean((gp - gt) ** 2, mask)
    if pred.shape[1] > 1:
        pairs = mask[:, 1:] & mask[:, :-1]
        loss = loss + _masked_mean((gp.diff(dim=1) - gt.diff(dim=1)) ** 2, pairs)
    if pred.shape[1] > 2:
        triples = mask[:, 2:] & mask[:, 1:-1] & mask[:, :-2]
        loss = loss + _masked_mean((gp.diff(n=2, dim=1) - gt.diff(n=2, dim=1)) ** 2, triples)
    return loss


def spread_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Squared difference of the inner-lip gap's standard deviation over each sequence's
    valid frames, predicted vs true (sequences with fewer than 2 valid frames left out)."""
    m = mask.to(pred.dtype)
    n = m.sum(dim=1)
    keep = n >= 2
    if not bool(keep.any()):
        return pred.sum() * 0.0

    def spread(gap: torch.Tensor) -> torch.Tensor:
        mean = (gap * m).sum(dim=1) / n.clamp_min(1.0)
        return torch.sqrt(((gap - mean[:, None]) ** 2 * m).sum(dim=1) / n.clamp_min(1.0) + 1e-8)

    gap_pred = lip_gap(pred)
    gap_true = lip_gap(target).detach()
    return ((spread(gap_pred) - spread(gap_true))[keep] ** 2).mean()


def masked_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    velocity_weight: float = 0.0,
    weights: torch.Tensor | None = None,
    opening_weight: float = 0.0,
    spread_weight: float = 0.0,
):
    """MSE over valid frames (+ weighted MSE of frame-to-frame differences where both
    frames are valid); ``weights`` (K,) weigh the target values. ``target`` holds zeros
    where ``mask`` is False. With 68 x 2 targets, ``opening_weight`` adds ``opening_loss``
    and ``spread_weight`` ``spread_loss`` (``TrainConfig`` says why)."""
    m = mask.unsqueeze(-1).to(pred.dtype)
    if weights is not None:
        m = m * weights.to(pred.device)
    k = pred.shape[-1]
    frames = mask.to(pred.dtype).sum()
    loss = ((pred - target) ** 2 * m).sum() / (frames * k).clamp_min(1.0)
    if velocity_weight > 0 and pred.shape[1] > 1:
        pairs = mask[:, 1:] & mask[:, :-1]
        mv = pairs.unsqueeze(-1).to(pred.dtype) * (
            1.0 if weights is None else weights.to(pred.device)
        )
        dp, dt = pred.diff(dim=1), target.diff(dim=1)
        pair_count = pairs.to(pred.dtype).sum()
        loss = loss + velocity_weight * ((dp - dt) ** 2 * mv).sum() / (pair_count * k).clamp_min(
            1.0
        )
    if k == 136 and opening_weight > 0:
        loss = loss + opening_weight * opening_loss(pred, target, mask)
    if k == 136 and spread_weight > 0:
        loss = loss + spread_weight * spread_loss(pred, target, mask)
    return loss


def silenced(clips: Sequence[ClipData]) -> list[ClipData]:
    """The clips with their jaw and mouth targets pulled to the closed neutral (0) where
    the voice activity detector hears nobody, by the gate's own ramped weights
    (``wav2kp.training.vad``): the model learns to rest the mouth in silence."""
    from wav2kp.training.vad import SilenceGate, gate_targets

    out = []
    for clip in clips:
        weights = SilenceGate.weights_of(clip)
        targets = gate_targets(clip.targets, weights).astype(np.float32)
        out.append(dataclasses.replace(clip, targets=targets))
    return out


# ---------- the training loop ----------


@dataclass
class TrainResult:
    history: pd.DataFrame
    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_val_loss: float
    best_epoch: int
    epochs_run: int  # epochs completed in total (all calls)
    n_parameters: int
    stopped_early: bool
    finished: bool  # False when a time budget or max_epochs_this_run cut it short
    epochs_this_call: int = 0  # 0: a finished run read back, nothing trained

    @property
    def seconds_per_epoch(self) -> float:
        return float(self.history["seconds"].mean()) if len(self.history) else float("nan")

    def summary(self) -> dict:
        return {
            "epochs": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "seconds_per_epoch": self.seconds_per_epoch,
            "n_parameters": self.n_parameters,
            "stopped_early": self.stopped_early,
            "finished": self.finished,
        }


class _Sequences:
    """Training arrays of many clips as tensors, with crop sampling and batching."""

    def __init__(
        self,
        clips: Sequence[ClipData],
        config: TrainConfig,
        emotions: Sequence[str] = (),
        inputs: tuple | None = None,
    ):
        self.windows, self.targets, self.masks, emotion_index = [], [], [], []
        self.skipped: list[str] = []
        self.skipped_ids: set[str] = set()
        feature_config, feature_stats = inputs or (None, None)
        for clip in clips:
            try:
                if feature_config is not None and feature_stats is not None:
                    clip = ds.with_features(clip, feature_config, feature_stats)
                windows, targets = training_arrays(clip, config)
                if not np.isfinite(windows.features).all():
                    raise ValueError("non-finite audio features")
            except (ValueError, IndexError, OSError) as err:  # one bad clip must not stop training
                message = str(err) if clip.clip_id in str(err) else f"{clip.clip_id}: {err}"
                warnings.warn(f"clip skipped: {message}", stacklevel=3)
                self.skipped.append(message)
                self.skipped_ids.add(clip.clip_id)
                continue
            mask = np.isfinite(targets).all(axis=1)
            self.windows.append(windows)  # gathered per batch: memory O(features), not O(N C D)
            self.targets.append(torch.from_numpy(np.nan_to_num(targets, nan=0.0)))
            self.masks.append(torch.from_numpy(mask))
            # 1-based index of the clip's emotion among the model's labels, 0 = unknown
            emotion_index.append(
                list(emotions).index(clip.emotion) + 1 if clip.emotion in emotions else 0
            )
        self.emotions = torch.tensor(emotion_index, dtype=torch.long)
        self.lengths = torch.tensor([len(w) for w in self.windows], dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def n_valid(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks))

    def crops(
        self, crop: int, generator: torch.Generator, shuffle: bool = True
    ) -> list[tuple[int, int, int]]:
        """(clip, start, stop) crops covering about as many frames as the clips hold,
        clips drawn in proportion to their length; crop 0 = every clip whole, in a new
        random order each epoch (``shuffle``) or in the given order."""
        if crop <= 0:
            order = (
                torch.randperm(len(self), generator=generator).tolist()
                if shuffle
                else list(range(len(self)))
            )
            return [(i, 0, len(self.windows[i])) for i in order]
        n = max(1, math.ceil(float(self.lengths.sum()) / crop))
        clips = torch.multinomial(self.lengths, n, replacement=True, generator=generator).tolist()
        out = []
        for i in clips:
            length = len(self.windows[i])
            start = int(torch.randint(0, max(length - crop, 0) + 1, (1,), generator=generator))
            out.append((i, start, min(start + crop, length)))
        return out

    def batch(self, crops: list[tuple[int, int, int]]):
        """Padded (B, L, C, D) windows, (B, L, K) targets, (B, L) mask, (B,) emotions."""
        length = max(stop - start for _, start, stop in crops)
        w0, t0 = self.windows[crops[0][0]], self.targets[crops[0][0]]
        windows = torch.zeros(len(crops), length, *w0.shape[1:])
        targets = torch.zeros(len(crops), length, t0.shape[1])
        mask = torch.zeros(len(crops), length, dtype=torch.bool)
        for b, (i, start, stop) in enumerate(crops):
            n = stop - start
            windows[b, :n] = torch.from_numpy(self.windows[i][start:stop])
            targets[b, :n] = self.targets[i][start:stop]
            mask[b, :n] = self.masks[i][start:stop]
        return windows, targets, mask, self.emotions[[i for i, _, _ in crops]]

    def batch_indices(self, crops: list[tuple[int, int, int]], length: int) -> torch.Tensor:
        """(B, L, C) feature frame index of every context frame of ``batch(crops)``
        (padding rows repeat the last one)."""
        out = torch.zeros(len(crops), length, self.windows[crops[0][0]].indices.shape[1])
        for b, (i, start, stop) in enumerate(crops):
            rows = torch.from_numpy(self.windows[i].indices[start:stop])
            out[b, : len(rows)] = rows
            out[b, len(rows) :] = rows[-1]
        return out.long()


def spec_augment(
    windows: torch.Tensor,
    indices: torch.Tensor,
    time_mask: int,
    freq_mask: int,
    n_masks: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment-style masks on a batch of windows (B, L, C, D) whose context frames
    come from feature frames ``indices`` (B, L, C): per crop, ``n_masks`` spans of up to
    ``time_mask`` feature frames (masked wherever they appear, in every window that sees
    them) and ``n_masks`` bands of up to ``freq_mask`` dimensions are set to 0."""
    windows = windows.clone()
    batch, dims = windows.shape[0], windows.shape[-1]

    def draw(high: int) -> int:
        return int(torch.randint(0, max(high, 0) + 1, (1,), generator=generator))

    for b in range(batch):
        for _ in range(n_masks):
            if time_mask > 0:
                lo, hi = int(indices[b].min()), int(indices[b].max())
                width = draw(time_mask)
                start = lo + draw(hi - lo)
                hit = (indices[b] >= start) & (indices[b] < start + width)
                windows[b][hit] = 0.0
            if freq_mask > 0:
                width = min(draw(freq_mask), dims)
                start = draw(dims - width)
                windows[b, ..., start : start + width] = 0.0
    return windows


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # A generator per epoch: crop sampling needs no saved state to resume exactly.
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


@torch.no_grad()
def _evaluate_loss(model, data: _Sequences, device, config: TrainConfig, weights=None) -> float:
    model.eval()
    total, weight = 0.0, 0
    for i in range(len(data)):
        windows, targets, mask, emotion = data.batch([(i, 0, len(data.windows[i]))])
        pred = model(windows.to(device), emotion.to(device))
        n = int(mask.sum())
        if n:
            loss = masked_loss(pred, targets.to(device), mask.to(device), config.velocity_weight,
                               weights, config.opening_weight, config.spread_weight)  # fmt: skip
            total += float(loss) * n
            weight += n
    model.train()
    return total / weight if weight else float("nan")


def _make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    if config.scheduler == "onecycle":
        # at least 8 steps: OneCycleLR divides by zero when its warm-up is one step long
        # (4 steps in all); tiny runs (tests, smoke checks) then stop part-way through it
        total_steps = max(config.epochs * steps_per_epoch, 8)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=0.25
        )
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    return None


def _fit_pca(data: _Sequences, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    rows = torch.cat([t[m] for t, m in zip(data.targets, data.masks, strict=True)]).numpy()
    pca = PCA(n_components=min(n_components, rows.shape[1], len(rows)), svd_solver="full").fit(rows)
    components = np.zeros((n_components, rows.shape[1]), np.float32)
    components[: len(pca.components_)] = pca.components_
    return pca.mean_, components


# Settings that change how a run is executed, not what it computes: a resume may differ.
RUN_ONLY_FIELDS = ("max_minutes", "device", "num_threads", "silence_gate", "calibrate")


def _same_run(saved: dict, current: dict) -> bool:
    def strip(config: dict) -> dict:
        return {k: v for k, v in config.items() if k not in RUN_ONLY_FIELDS}

    return strip(saved) == strip(current)


def train_model(
    train_clips: Sequence[ClipData],
    val_clips: Sequence[ClipData],
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = True,
    progress: bool = True,
    context: dict | None = None,
    max_epochs_this_run: int | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``train_clips``, validating on ``val_clips`` each epoch.

    ``context`` is stored in the checkpoint for inference: ``normalizer`` (a
    ``TargetNormalizer`` or its state dict; needed for the "normalized" target space),
    ``feature_config``, ``feature_stats`` (objects with ``to_dict``/``state_dict`` or
    dicts). With ``resume`` an existing ``last.pt`` of the same config continues where it
    stopped (a finished run returns at once); a different config starts afresh.
    ``max_epochs_this_run`` (and ``config.max_minutes``) stop this call early; the next
    call resumes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if not train_clips:
        raise ValueError("no training clips")
    context = dict(context or {})
    if config.model not in ("default", "original"):
        raise ValueError(f"unknown model {config.model!r}")
    if config.target_space == "normalized" and context.get("normalizer") is None:
        raise ValueError(
            "target_space 'normalized' needs context['normalizer'] to map back to pixels"
        )
    device = resolve_device(config.device)
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    threads_before = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(
            train_clips, val_clips, config, out_dir, last_path, best_path, resume, progress,
            context, max_epochs_this_run, device,
        )  # fmt: skip
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        torch.set_num_threads(threads_before)


def _train(
    train_clips, val_clips, config, out_dir, last_path, best_path, resume, progress, context,
    max_epochs_this_run, device,
) -> TrainResult:  # fmt: skip
    started = time.perf_counter()
    emotions = ()
    if config.emotion_conditioning and config.model != "original":
        emotions = tuple(sorted({str(c.emotion) for c in train_clips if c.emotion}))
    if config.av_correction:
        from wav2kp.training.lag_correction import lag_corrected

        train_clips = lag_corrected(train_clips)
    if config.voices:
        from wav2kp.training.voices import voice_clips

        train_clips = [*train_clips, *voice_clips(train_clips, config.voices, context, config.seed)]
    if config.augment:
        from wav2kp.training.augmentation import AugmentConfig, augment_clips

        stats = context.get("feature_stats")
        if stats is None:
            raise ValueError("augment needs context['feature_stats'] to normalise new features")
        copies = augment_clips(
            train_clips, AugmentConfig.from_dict(config.augment), stats, config.seed, progress
        )
        train_clips = [*train_clips, *copies]
    if config.silence_targets:
        train_clips, val_clips = silenced(train_clips), silenced(val_clips or [])
    inputs = model_inputs(train_clips, config, context)
    train = _Sequences(train_clips, config, emotions, inputs)
    val = _Sequences(val_clips, config, emotions, inputs) if val_clips else None
    val = val if val is not None and len(val) else None
    if len(train) == 0 or train.n_valid == 0:
        raise ValueError("no valid target frame in the training clips")
    sample_windows, sample_targets = train.windows[0], train.targets[0]
    loss_weights = target_weights(int(sample_targets.shape[1]), config.mouth_weight)
    model_config = ModelConfig.preset(
        config.model,
        context=int(sample_windows.shape[1]),
        feature_dim=int(sample_windows.shape[2]),
        output_dim=int(sample_targets.shape[1]),
        **({"emotions": emotions} if emotions else {}),
        **config.model_overrides,
    )
    torch.manual_seed(config.seed)
    model = build_model(model_config).to(device)
    if getattr(model_config, "pca_components", 0) > 0 and model_config.name == "default":
        model.set_pca(*_fit_pca(train, model_config.pca_components))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(
        len(train.crops(config.crop_frames, _epoch_generator(config.seed, 0), config.shuffle))
        / config.batch_size
    )
    scheduler = _make_scheduler(optimizer, config, steps_per_epoch)
    state = dict(
        epoch=0, history=[], best_val=math.inf, best_epoch=0, bad_epochs=0, stopped_early=False
    )

    feature_config, feature_stats = inputs
    used_clips = [c for c in train_clips if c.clip_id not in train.skipped_ids]
    fingerprint = plain(
        training_fingerprint(
            used_clips,
            context,
            {"config": feature_config, "stats": ds.stats_digest(feature_stats)},
            config.window,
        )
    )
    # inference needs the features the model was fed; calibration the training spread
    from wav2kp.training.calibration import motion_spread

    model_context = {**context, "feature_config": feature_config, "feature_stats": feature_stats,
                     "motion_spread": motion_spread(used_clips)}  # fmt: skip
    payload_base = {
        "format": CHECKPOINT_FORMAT,
        "model_config": model_config.to_dict(),
        "train_config": plain(config.to_dict()),
        "context": plain({k: v for k, v in model_context.items() if v is not None}),
        "fingerprint": fingerprint,
        "n_parameters": count_parameters(model),
    }
    saved = None
    if resume and last_path.is_file():
        try:
            saved = load_checkpoint(last_path)
        except ValueError as err:
            warnings.warn(f"{err}; training afresh", stacklevel=3)
    if saved is not None:
        same = _same_run(saved["train_config"], payload_base["train_config"])
        changes = fingerprint_changes(saved.get("fingerprint"), fingerprint)
        if not same or saved["model_config"] != payload_base["model_config"]:
            warnings.warn(
                f"{last_path}: saved with another configuration; training afresh", stacklevel=3
            )
        elif changes:
            warnings.warn(
                f"{last_path}: trained on other data ({'; '.join(changes)}); training afresh",
                stacklevel=3,
            )
        else:
            model.load_state_dict(saved["model_state"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            torch.set_rng_state(saved["rng"]["torch"])
            if torch.cuda.is_available() and saved["rng"].get("cuda"):
                torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
            state = saved["state"]

    def payload(full: bool) -> dict:
        out = dict(payload_base, model_state=model.state_dict(), state=dict(state))
        if full:
            out["optimizer"] = optimizer.state_dict()
            out["scheduler"] = scheduler.state_dict() if scheduler is not None else None
            out["rng"] = {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            }
        return out

    finished = state["epoch"] >= config.epochs or state["stopped_early"]
    epochs_this_run = 0
    bar = tqdm(
        total=config.epochs,
        initial=state["epoch"],
        desc=f"train {config.model}",
        disable=not progress,
        unit="epoch",
    )
    model.train()
    while not finished:
        if max_epochs_this_run is not None and epochs_this_run >= max_epochs_this_run:
            break
        if config.max_minutes and (time.perf_counter() - started) / 60 >= config.max_minutes:
            break
        epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
        crops = train.crops(
            config.crop_frames, _epoch_generator(config.seed, state["epoch"]), config.shuffle
        )
        total, weight = 0.0, 0
        for b in range(0, len(crops), config.batch_size):
            windows, targets, mask, emotion = train.batch(crops[b : b + config.batch_size])
            if config.time_mask > 0 or config.freq_mask > 0:  # global RNG: checkpointed
                windows = spec_augment(
                    windows,
                    train.batch_indices(crops[b : b + config.batch_size], len(windows[0])),
                    config.time_mask,
                    config.freq_mask,
                    config.n_masks,
                )
            if config.feature_noise > 0:  # augmentation; the global RNG is checkpointed
                windows = windows + config.feature_noise * torch.randn(windows.shape)
            windows, targets, mask = windows.to(device), targets.to(device), mask.to(device)
            pred = model(windows, emotion.to(device))
            loss = masked_loss(pred, targets, mask, config.velocity_weight, loss_weights,
                               config.opening_weight, config.spread_weight)  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            optimizer.step()
            if isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
                scheduler.step()
            n = int(mask.sum())
            total, weight = total + float(loss.detach()) * n, weight + n
        train_loss = total / max(weight, 1)
        val_loss = _evaluate_loss(model, val, device, config, loss_weights) if val else train_loss
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        state["epoch"] += 1
        state["history"] = [
            *state["history"],
            {
                "epoch": state["epoch"],
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "seconds": time.perf_counter() - epoch_start,
                # this process's CPU (one thread per training: the training's own)
                "cpu_seconds": time.process_time() - epoch_cpu,
            },
        ]
        if val_loss < state["best_val"] or val is None:  # no validation: best = last
            state.update(best_val=val_loss, best_epoch=state["epoch"])
            save_checkpoint(best_path, payload(full=False))
        # patience counts epochs without a gain of at least ``min_improvement`` (relative)
        # over the loss of the last such gain (0: any gain)
        reference = state.get("plateau_ref", math.inf)
        if val is None or val_loss < reference * (1 - config.min_improvement):
            state.update(plateau_ref=val_loss, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
            if config.patience and state["bad_epochs"] >= config.patience:
                state["stopped_early"] = True
        finished = state["epoch"] >= config.epochs or state["stopped_early"]
        save_checkpoint(last_path, payload(full=True))
        epochs_this_run += 1
        bar.update(1)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
    bar.close()
    if not best_path.is_file():  # e.g. all-NaN validation
        save_checkpoint(best_path, payload(full=False))
    return TrainResult(
        history=pd.DataFrame(
            state["history"],
            columns=["epoch", "train_loss", "val_loss", "lr", "seconds", "cpu_seconds"],
        ),
        out_dir=out_dir,
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        best_val_loss=float(state["best_val"]),
        best_epoch=int(state["best_epoch"]),
        epochs_run=int(state["epoch"]),
        n_parameters=count_parameters(model),
        stopped_early=bool(state["stopped_early"]),
        finished=bool(finished),
        epochs_this_call=epochs_this_run,
    )


def train_final_model(
    train_clips: Sequence[ClipData],
    val_clips: Sequence[ClipData],
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = True,
    progress: bool = True,
    context: dict | None = None,
    max_epochs_this_run: int | None = None,
) -> TrainResult:
    """The final model under the refit rule: with ``config.refit_on_val`` (and val clips)
    trained on train + val for ``config.epochs`` with no early stopping (its ``best.pt``
    is the last epoch; for a ``plateau`` recipe, ``refit_config`` has already set the
    epochs its selection run needed); otherwise trained on train with early stopping on
    val. The validation view of the same recipe is the cross-validation's (``wav2kp.studies.cv``,
    the ``val`` fold), so nothing is trained twice."""
    if config.refit_on_val and val_clips:
        train_clips, val_clips = [*train_clips, *val_clips], []
        config = dataclasses.replace(config, patience=0)
    return train_model(
        train_clips, val_clips, config, out_dir, resume=resume, progress=progress,
        context=context, max_epochs_this_run=max_epochs_this_run,
    )  # fmt: skip


def val_plateau(history: pd.DataFrame, tail: float = 0.25) -> dict[str, float]:
    """Has the validation loss stopped improving? The best loss before the last ``tail``
    of the epochs, the best within it, and the relative improvement the tail brought
    (near 0: a plateau, more epochs would not help)."""
    losses = pd.Series(history["val_loss"]).dropna().to_numpy()
    if len(losses) < 4:
        return {"epochs": float(len(losses)), "improvement_last_quarter": float("nan")}
    cut = max(1, int(round(len(losses) * (1 - tail))))
    before, after = float(np.min(losses[:cut])), float(np.min(losses[cut:]))
    return {
        "epochs": float(len(losses)),
        "best_before": before,
        "best_last_quarter": after,
        "improvement_last_quarter": (before - after) / before if before > 0 else float("nan"),
    }


# ---------- the corpus as training sees it ----------


@dataclass
class CorpusData:
    train: list[ClipData]
    val: list[ClipData]
    test: list[ClipData]
    context: dict
    # further clip sets every cross-validation task is scored on (``wav2kp.studies.cv``)
    proxies: dict = dataclasses.field(default_factory=dict)

    def without_windows(self) -> CorpusData:
        """A light copy for shipping to workers: training gathers windows from features,
        so the materialised (T, C, D) windows are dropped."""

        def light(clips):
            return [
                dataclasses.replace(c, windows=np.empty((c.n_frames, 0, 0), np.float32))
                for c in clips
            ]

        return CorpusData(light(self.train), light(self.val), light(self.test), self.context,
                          {name: light(clips) for name, clips in self.proxies.items()})  # fmt: skip


def load_corpus_for_training(
    corpus: str, progress: bool = True, root=None, window=None
) -> CorpusData:
    """Clips of a processed corpus split by ``split.csv`` (features normalised with the
    train stats, targets with the train normaliser, both fitted if missing), with the
    context a checkpoint must carry (normaliser, feature config and stats, corpus, split
    settings and digest). ``window``: the windows ``ClipData.windows`` holds (baselines;
    models gather their own), default ``WindowConfig()``."""
    import json

    from wav2kp.features.features import FeatureStats, feature_stats_path
    from wav2kp.features.splits import split_settings_path
    from wav2kp.training.checkpoints import split_digest

    clips = ds.load_clips(corpus, splits=None, root=root, progress=progress, window_config=window)
    by_split = {s: [c for c in clips if c.split == s] for s in ("train", "val", "test")}
    if not by_split["train"]:
        raise ValueError(
            f"corpus {corpus!r}: no clip in the train split (run notebooks 01-03 first)"
        )
    stats = FeatureStats.load(feature_stats_path(corpus, root))
    settings_file = split_settings_path(corpus, root)
    split = ds.ensure_split(corpus, root=root)
    context = {
        "normalizer": ds.load_normalizer(corpus, root),
        "feature_stats": stats,
        "feature_config": stats.feature_config,
        "corpus": corpus,
        "split": {
            "settings": json.loads(settings_file.read_text()) if settings_file.is_file() else {},
            "digest": split_digest(dict(zip(split["clip_id"], split["split"], strict=True))),
        },
    }
    return CorpusData(by_split["train"], by_split["val"], by_split["test"], context)


# ---------- where the final models live ----------


def model_dir(
    corpus: str, model: str, seed: int, root=None, profile: str = RunConfig.profile
) -> Path:
    """Where a final model of one training seed lives: ``models/<corpus>/<model>/seed-<n>/``
    (the models ``make report``, notebooks 05-06 and ``predict`` use by default), or
    ``models/<corpus>/<profile>/<model>/seed-<n>/`` for a profile in
    ``PROFILES_KEPT_APART``, so the full protocol's models and the report's never
    overwrite each other. (``wav2kp.training.inference.checkpoint_file`` picks the first seed of a
    model folder.)"""
    from wav2kp.paths import CorpusPaths

    base = CorpusPaths(corpus, root).models
    base = base / profile if profile in PROFILES_KEPT_APART else base
    return base / model / f"seed-{int(seed)}"
