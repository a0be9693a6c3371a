"""Keypoint models: audio windows (B, T, C, D) in, normalised targets (B, T, K) out.

Two families live here:

- ``original``: a faithful replica of the original wav2kp network (LSTM(flattened C x D
  window, hidden 200, 2 layers, batch_first) -> Dropout(0.25) -> Linear(200 -> K) at
  every step). Recurrent, so long inputs are run in chunks that carry the LSTM state.
- ``default`` (the project's model): a small
  frame-wise encoder (a shared projection of each feature frame, then one layer over the
  whole window) followed by residual dilated temporal convolutions across keypoint
  frames, a learnt offset per emotion label, and an optional PCA output head.
  Convolutional, so chunked inference with an overlap of its receptive radius is exact
  (``wav2kp bench training`` times it per audio hour).
  Its input frames are whatever ``FeatureConfig`` makes: log-mel, and with
  ``phones="allphone"`` the phonetic stream beside it (``wav2kp.features.phonetic``: GRID's
  model, ``wav2kp cv --study mouth``).

Why this default: the choices are compared on held-out sentences by commands. Committed
and shown by notebook 04: the ablation (future context, alignment, pose-free targets,
PCA head, velocity loss, emotion conditioning, one at a time) at 10, 20 and 40 epochs on
3 seeds (``wav2kp cv --study budget``, ``results/demo-cv-budget.json``). Not committed
(90 trainings at the full budget, hours on 2 cores): ``wav2kp cv --study design``
(5-fold cross-validation over the demo's train + validation sentences, 3 seeds: log-mel
vs the original's MFCC, 100 vs 200 ms of past audio, 0 / 100 / 200 ms of future audio,
refitting on all training sentences vs early stopping on some). Variants tried earlier and not adopted (wider or
narrower hidden sizes, more dilations, dropout, feature noise, a mouth-weighted loss,
SpecAugment-style masks, delta features) are ``TrainConfig`` overrides too: give them to
``wav2kp cv`` to measure them. A bidirectional recurrent layer over the whole sequence
does not fit the inference budget (``wav2kp bench training`` prints seconds per audio
hour).

Every model is described by a ``ModelConfig`` (plain JSON-able fields) so a checkpoint
can rebuild it with ``build_model(config)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import nn

MODEL_NAMES = ("original", "default")


@dataclass
class ModelConfig:
    """Architecture of one model. ``context`` x ``feature_dim`` is the audio window of a
    keypoint frame (ClipData.windows' C and D), ``output_dim`` the target size K."""

    name: str = "default"
    context: int = 40
    feature_dim: int = 40
    output_dim: int = 136
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.1
    # default model only
    frame_bottleneck: int = 16  # per feature frame projection before the window layer
    temporal_kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4)
    pca_components: int = 0  # 0: predict all K values directly
    # emotion conditioning: a learnt offset per label; index 0 = unknown/none (stays 0)
    emotions: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        d["emotions"] = list(self.emotions)
        return d

    def emotion_index(self, emotion: str | None) -> int:
        """1-based index of a known emotion label; an unknown or empty one is taken as
        ``neutral`` when the model knows it (new speech usually has no label), else 0
        (no conditioning)."""
        for label in (emotion, "neutral"):
            if label in self.emotions:
                return self.emotions.index(label) + 1
        return 0

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "dilations" in d:
            d["dilations"] = tuple(int(x) for x in d["dilations"])
        if "emotions" in d:
            d["emotions"] = tuple(str(x) for x in d["emotions"])
        return cls(**d)

    @classmethod
    def preset(cls, name: str, context: int, feature_dim: int, output_dim: int, **overrides):
        """The named architecture for the given input/output sizes."""
        if name == "original":
            base = dict(hidden=200, layers=2, dropout=0.25)
        elif name == "default":
            base = dict(hidden=128, dropout=0.1, frame_bottleneck=16, dilations=(1, 2, 4))
        else:
            raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
        base.update(overrides)
        return cls(
            name=name, context=context, feature_dim=feature_dim, output_dim=output_dim, **base
        )


class OriginalLSTM(nn.Module):
    """The original wav2kp network: LSTM over flattened windows, dropout, linear head."""

    recurrent = True
    receptive_radius = 0

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.input_size = config.context * config.feature_dim
        self.lstm = nn.LSTM(
            input_size=self.input_size,
            hidden_size=config.hidden,
            num_layers=config.layers,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.linear = nn.Linear(config.hidden, config.output_dim)

    def forward(self, windows: torch.Tensor, emotion=None, state=None, return_state: bool = False):
        # ``emotion`` is accepted for a common interface; the original had no conditioning
        batch, steps = windows.shape[:2]
        out, state = self.lstm(windows.reshape(batch, steps, self.input_size), state)
        y = self.linear(self.dropout(out))
        return (y, state) if return_state else y


class _TemporalBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(
            channels,
            channels,
            kernel,
            dilation=dilation,
            padding=dilation * (kernel - 1) // 2,
            padding_mode="replicate",
        )
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.act(self.conv(x)))


class WindowTCN(nn.Module):
    """The default model: frame-wise window encoder + dilated temporal convolutions.

    The window encoder projects every feature frame to a few values (shared weights),
    then mixes the whole window with one linear layer: cheap, and it keeps the timing
    inside the window. The temporal blocks let each keypoint frame see its neighbours'
    windows (smooth, coherent motion). An optional PCA head predicts a few component
    weights that fixed buffers turn back into the K targets (low-dimensional output
    for small data).
    """

    recurrent = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.temporal_kernel % 2 != 1:
            raise ValueError("temporal_kernel must be odd (symmetric context)")
        self.config = config
        b = config.frame_bottleneck
        self.frame_proj = nn.Linear(config.feature_dim, b)
        self.window_layer = nn.Linear(config.context * b, config.hidden)
        self.input_act = nn.GELU()
        self.emotion_embedding = None
        if config.emotions:
            self.emotion_embedding = nn.Embedding(len(config.emotions) + 1, config.hidden)
            nn.init.zeros_(self.emotion_embedding.weight)
        self.input_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            _TemporalBlock(config.hidden, config.temporal_kernel, d, config.dropout)
            for d in config.dilations
        )
        out = config.pca_components if config.pca_components > 0 else config.output_dim
        self.head = nn.Linear(config.hidden, out)
        if config.pca_components > 0:
            self.register_buffer("pca_mean", torch.zeros(config.output_dim))
            self.register_buffer(
                "pca_components", torch.zeros(config.pca_components, config.output_dim)
            )
        self.receptive_radius = sum(d * (config.temporal_kernel - 1) // 2 for d in config.dilations)

    def set_pca(self, mean: np.ndarray, components: np.ndarray) -> None:
        """Fix the PCA output basis (fitted on the training targets)."""
        if self.config.pca_components <= 0:
            raise ValueError("this model has no PCA head (pca_components=0)")
        self.pca_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.pca_components.copy_(torch.as_tensor(components, dtype=torch.float32))

    def forward(self, windows: torch.Tensor, emotion: torch.Tensor | None = None) -> torch.Tensor:
        """``windows`` (B, T, C, D); ``emotion`` (B,) indices (``config.emotion_index``)."""
        batch, steps, context, _ = windows.shape
        h = self.frame_proj(windows).reshape(batch, steps, -1)
        h = self.window_layer(h)
        if self.emotion_embedding is not None and emotion is not None:
            h = h + self.emotion_embedding(emotion)[:, None, :]
        h = self.input_dropout(self.input_act(h))
        h = h.transpose(1, 2)  # (B, H, T) for the convolutions
        for block in self.blocks:
            h = block(h)
        y = self.head(h.transpose(1, 2))
        if self.config.pca_components > 0:
            y = y @ self.pca_components + self.pca_mean
        return y


def build_model(config: ModelConfig) -> nn.Module:
    if config.name == "original":
        return OriginalLSTM(config)
    if config.name == "default":
        return WindowTCN(config)
    raise ValueError(f"unknown model {config.name!r}; known: {', '.join(MODEL_NAMES)}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def predict_sequence(
    model: nn.Module,
    windows: np.ndarray | torch.Tensor,
    chunk: int = 4096,
    device=None,
    emotion: int = 0,
) -> np.ndarray:
    """Run ``model`` (in eval mode) over one long sequence of windows (T, C, D) in chunks.

    Memory stays bounded by ``chunk`` frames. Recurrent models carry their state from
    chunk to chunk; convolutional ones see an overlap of their receptive radius on both
    sides, so the result equals a single pass over the whole sequence.
    """
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    n = len(windows)
    emotion_index = torch.tensor([emotion], device=device)
    out: list[np.ndarray] = []
    try:
        if getattr(model, "recurrent", False):
            state = None
            for start in range(0, n, chunk):
                x = torch.as_tensor(np.asarray(windows[start : start + chunk]), dtype=torch.float32)
                y, state = model(x.unsqueeze(0).to(device), emotion_index, state, return_state=True)
                out.append(y[0].cpu().numpy())
        else:
            radius = int(getattr(model, "receptive_radius", 0))
            for start in range(0, n, chunk):
                lo, hi = max(0, start - radius), min(n, start + chunk + radius)
                x = torch.as_tensor(np.asarray(windows[lo:hi]), dtype=torch.float32)
                y = model(x.unsqueeze(0).to(device), emotion_index)[0].cpu().numpy()
                out.append(y[start - lo : start - lo + min(chunk, n - start)])
    finally:
        model.train(was_training)
    if not out:
        k = model.config.output_dim
        return np.zeros((0, k), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
