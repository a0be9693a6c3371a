"""Every default of a wav2kp run, in one place.

Two dataclasses hold them, each default written once:

- ``RunConfig``: the run's parameters, flat, named as the notebooks' papermill
  parameters (``corpus``, ``feature_kind``, ``split_seed``, ``past_ms``, ``seeds``,
  ``epochs``, ...). A notebook's parameter cell says ``None`` for "the default here";
  ``RunConfig.resolve(**parameters)`` fills them in (a named ``profile`` first, then the
  parameters given), refuses a name it does not know, and ``to_dict()`` is what run.json
  records. ``wav2kp train`` / ``wav2kp cv`` take the same names (``--set key=value``).
- ``TrainConfig``: how one model trains (optimiser, loss, budget, window, input
  features); ``TrainConfig.preset(name)`` gives the two models' recipes, and
  ``RunConfig.train_config(model, seed)`` the exact one a run trains.

Profiles (``PROFILES``): ``"fast"`` is what ``make report`` runs on 2 cores (shorter
budgets; ``wav2kp cv --study budget`` measures how closely they rank the ablation
variants as the full budget does);
``"full"`` is the full protocol (every model to its stated budget on 3 seeds, the
ablation on 3 seeds; ``make full-protocol``). README's generated results block names the
profile of the committed results file it comes from.

The ``original`` preset is the replica of fireis/wav2kp's model and training; the
departures that remain are listed once, in ``ORIGINAL_DEPARTURES``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# ---- the stages' own settings (windowing: notebook 03; features: notebook 02)

WINDOW_MODES = ("aligned", "original")
PAD_MODES = ("edge", "zeros")


@dataclass(frozen=True)
class WindowConfig:
    past_ms: float = 100.0
    future_ms: float = 200.0
    mode: str = "aligned"
    pad: str = "edge"
    original_window: int = 40  # feature frames per window in mode "original" (the original's 40)

    def __post_init__(self) -> None:
        if self.mode not in WINDOW_MODES:
            raise ValueError(f"window mode must be one of {WINDOW_MODES}, got {self.mode!r}")
        if self.pad not in PAD_MODES:
            raise ValueError(f"window pad must be one of {PAD_MODES}, got {self.pad!r}")
        if self.past_ms < 0 or self.future_ms < 0:
            raise ValueError(
                f"past_ms and future_ms must be >= 0, got {self.past_ms}, {self.future_ms}"
            )
        if self.original_window < 1:
            raise ValueError(f"original_window must be >= 1, got {self.original_window}")

    def context_frames(self, hop_s: float) -> tuple[int, int]:
        """(past, future) feature frames around the centre frame for a feature hop."""
        if hop_s <= 0:
            raise ValueError(f"feature hop must be > 0 s, got {hop_s}")
        if self.mode == "original":
            return 0, self.original_window - 1
        return int(round(self.past_ms / 1000 / hop_s)), int(round(self.future_ms / 1000 / hop_s))

    def n_context(self, hop_s: float) -> int:
        """C, the number of feature frames per window."""
        past, future = self.context_frames(hop_s)
        return past + 1 + future

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> WindowConfig:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


FEATURE_KINDS = ("mfcc", "logmel")
CMVN_MODES = ("none", "mean", "meanvar")
# the phonetic stream appended to the spectral features (wav2kp.features.phonetic):
# "allphone" = pocketsphinx's phones decoded without a transcript, per frame a one-hot
# viseme class (13) and the position within the phone
PHONE_MODES = ("none", "allphone")
PHONETIC_DIM = 14


# Every audio path works at one rate (the seed's MFCC and the speech models' input).
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE
    kind: str = "mfcc"  # "mfcc" | "logmel"
    n_mfcc: int = 40
    n_mels: int = 40
    n_fft: int = 400
    hop_length: int = 200
    deltas: bool = False  # append first and second time differences (x3 dims)
    # Invariance to who speaks, how loud and through which microphone (issue 10), off by
    # default so that the original's MFCC stays bit for bit:
    # ``floor_db``: log-mel levels more than this below the loudest frame within
    # ``cmvn_seconds`` are raised to that floor, so silence looks the same whatever the
    # recording's noise floor (log-mel only);
    # ``cmvn``: per-band mean ("mean") or mean and variance ("meanvar") normalisation
    # over a sliding window of ``cmvn_seconds`` centred on each frame: removes the gain
    # (loudness) and the fixed spectral colour of microphone, room and vocal tract.
    # Both are local, so features of a long file cut into chunks (``wav2kp.predict.predict``)
    # equal one pass wherever a chunk's margin covers half a window.
    floor_db: float | None = None
    cmvn: str = "none"
    cmvn_seconds: float = 3.0
    # a speaker-independent phonetic stream appended to every frame (PHONE_MODES; issue
    # 17): what is said, whoever says it
    phones: str = "none"

    def __post_init__(self) -> None:
        if self.phones not in PHONE_MODES:
            raise ValueError(f"phones must be one of {PHONE_MODES}, got {self.phones!r}")
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if self.cmvn not in CMVN_MODES:
            raise ValueError(f"cmvn must be one of {CMVN_MODES}, got {self.cmvn!r}")
        if self.floor_db is not None and (self.kind != "logmel" or self.floor_db <= 0):
            raise ValueError(
                f"floor_db needs kind 'logmel' and a positive level, got {self.kind!r}, "
                f"{self.floor_db!r}"
            )
        if self.cmvn_seconds <= 0:
            raise ValueError(f"cmvn_seconds must be positive, got {self.cmvn_seconds!r}")
        if min(self.sample_rate, self.n_mels, self.n_fft, self.hop_length) < 1:
            raise ValueError(f"feature sizes must be positive: {self}")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})")

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def hop_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    @property
    def base_dim(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def spectral_dim(self) -> int:
        """The spectral part of a frame (with its deltas); the phonetic part follows it."""
        return self.base_dim * (3 if self.deltas else 1)

    @property
    def phonetic_dim(self) -> int:
        return PHONETIC_DIM if self.phones != "none" else 0

    @property
    def dim(self) -> int:
        return self.spectral_dim + self.phonetic_dim

    def to_dict(self) -> dict:
        values = asdict(self)
        if values["phones"] == "none":  # added later: configs from before stay equal
            del values["phones"]
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> FeatureConfig:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


MODELS = ("default", "original")
SCHEDULERS = ("onecycle", "plateau", "none")
TARGET_SPACES = ("normalized", "frame")
ORIGINAL_UPSAMPLE = 3  # the original's keypoints upsampled x3 along time

# The original's input: torchaudio's MFCC with the defaults it used (40 coefficients of
# 40 mel bands, n_fft 400, hop 200 at 16 kHz), un-normalised (``FeatureConfig``
# field names)
ORIGINAL_FEATURES = {
    "sample_rate": 16000,
    "kind": "mfcc",
    "n_mfcc": 40,
    "n_mels": 40,
    "n_fft": 400,
    "hop_length": 200,
    "deltas": False,
}

# Everything the ``original`` preset still does differently from fireis/wav2kp (see
# ../shared/reference/seed-code-facts.md); shown in notebook 04 and the report.
ORIGINAL_DEPARTURES = (
    (
        "input width",
        "40 MFCC frames x 40 coefficients = 1,600 values per step, what the original's "
        "committed code produces; its trained checkpoint took 2,000 (50 frames), which "
        "that code cannot produce",
    ),
    (
        "end of clip",
        "a window that would run past the last MFCC frame is clamped to end on it (the "
        "original's slice is not recoverable for those frames; they are the last 0.5 s)",
    ),
    (
        "coordinates",
        "keypoints divided by the video frame's width and height; the original divided "
        "by 256 after cropping each frame vid2vid-style around the face",
    ),
    (
        "keypoint detector",
        "MediaPipe face mesh mapped to the 68 iBUG points; the original used face_alignment (FAN)",
    ),
    (
        "budget",
        "trained until its validation loss stops improving (no 1 % gain in 15 epochs), "
        "then refitted on train + validation for as many epochs; the original trained "
        "16,000 epochs with no stopping rule. The fast profile (make report) stops it "
        "after 5 epochs, far from that plateau",
    ),
    (
        "inference",
        "dropout off (eval mode); the original left it on",
    ),
    (
        "refit",
        "like every model here, the final replica is retrained on train + validation "
        "sentences (RunConfig.refit_on_val)",
    ),
)


# Fields added after results were cached, with the value that does what the code did
# before them: left out of cache keys at that value, so old results stay valid.
INERT_FIELDS: dict[str, Any] = {
    "plateau": False, "min_improvement": 0.0, "calibrate": False, "voices": {}, "av_correction": False,
    "opening_weight": 0.0, "spread_weight": 0.0, "silence_targets": False,
}  # fmt: skip


@dataclass
class TrainConfig:
    """Everything that decides one model's training run (a checkpoint stores it)."""

    model: str = "default"
    epochs: int = 40
    batch_size: int = 8
    crop_frames: int = 60  # frames per random crop; 0 = whole clips
    shuffle: bool = True  # clip / crop order drawn anew every epoch
    lr: float = 3e-3
    weight_decay: float = 1e-4
    clip_grad_norm: float = 5.0  # 0 = no gradient clipping
    scheduler: str = "onecycle"
    patience: int = 10  # epochs without val improvement before stopping; 0 = never
    velocity_weight: float = 1.0  # weight of the MSE on frame-to-frame differences
    # full motion (issue 17): the inner-lip gap itself, which the 136 values share out;
    # ``opening_weight``: MSE of the gap, its velocity and its acceleration;
    # ``spread_weight``: squared difference of the gap's spread (std) within each crop,
    # against regression to the mean where the model is unsure
    opening_weight: float = 0.0
    spread_weight: float = 0.0
    # train the jaw and mouth to rest on the closed neutral where the voice activity
    # detector (``wav2kp.training.vad``) hears nobody, so no gate is needed at inference
    silence_targets: bool = False
    seed: int = 0
    device: str = "auto"
    target_space: str = "normalized"
    window: dict = field(default_factory=lambda: WindowConfig().to_dict())
    # input features: None = the corpus's pipeline features (notebook 02), normalised with
    # the train statistics; a FeatureConfig dict = these features computed from each
    # clip's audio (``normalize_features`` False: fed raw, as the original did)
    features: dict | None = None
    normalize_features: bool = True
    model_overrides: dict = field(default_factory=dict)  # ModelConfig fields
    emotion_conditioning: bool = True  # default model: a learnt offset per emotion label
    feature_noise: float = 0.0  # std of Gaussian noise added to the (normalised) inputs
    mouth_weight: float = 1.0  # loss weight of the mouth points 48-67 relative to the rest
    # SpecAugment-style masking of the (normalised) features, per training crop: spans of
    # up to ``time_mask`` feature frames and bands of up to ``freq_mask`` feature
    # dimensions set to 0 (the train mean); ``n_masks`` of each per crop
    time_mask: int = 0
    freq_mask: int = 0
    n_masks: int = 2
    # waveform augmentation: ``wav2kp.training.augmentation.AugmentConfig`` fields; {} = none.
    # Adds that many perturbed copies of every training clip (other voices, levels,
    # microphones, rooms), so an epoch holds (1 + copies) times the frames.
    augment: dict = field(default_factory=dict)
    # rest the mouth on the closed neutral while nobody speaks (``wav2kp.training.vad``; applied
    # by ``load_predictor``, so evaluation and predict use it alike)
    silence_gate: bool = False
    # the budget: ``epochs``; with ``plateau``, training stops once the validation loss
    # has not improved by ``min_improvement`` (relative) for ``patience`` epochs (at most
    # ``epochs``), and a refit on train + val trains as many epochs as that took
    plateau: bool = False
    min_improvement: float = 0.0
    # rescale each utterance's predicted mouth motion to the training mouths' spread
    # (``wav2kp.training.calibration``; applied by ``load_predictor`` like the gate)
    calibrate: bool = False
    # synthetic voices (``wav2kp.training.voices``): {"copies": N} adds N espeak-ng voices reading
    # each training sentence, with the real mouth of that sentence time-warped onto them
    # (optional "corpus": the voices corpus, default "<training corpus>-voices"); {} = none
    voices: dict = field(default_factory=dict)
    # shift each training clip's keypoint times by its measured A/V lag's distance from
    # the corpus median (``wav2kp.features.sync.lag_shifts``) before building targets
    av_correction: bool = False
    max_minutes: float = 0.0  # wall-clock budget of one call (0 = none); resume continues
    # ``train_final_model``: after the selection run (early stopping on val), train again
    # on train + val for the full ``epochs`` and keep the last epoch
    refit_on_val: bool = False
    # CPU threads while training (0: torch's default). These models are small: one thread
    # is about as fast as two, and many threads on a busy machine are many times slower.
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {', '.join(MODELS)}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.target_space not in TARGET_SPACES:
            raise ValueError(
                f"target_space must be one of {TARGET_SPACES}, got {self.target_space!r}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.crop_frames < 0:
            raise ValueError("epochs and batch_size must be >= 1 and crop_frames >= 0")
        if isinstance(self.window, WindowConfig):
            self.window = self.window.to_dict()
        self.window = WindowConfig.from_dict(self.window).to_dict()  # validates, all fields
        if self.features is not None and not isinstance(self.features, dict):
            self.features = self.features.to_dict()

    @property
    def window_config(self) -> WindowConfig:
        return WindowConfig.from_dict(self.window)

    @property
    def upsample(self) -> int:
        """Keypoint-rate factor the model runs at (the original's x3 in original mode)."""
        return ORIGINAL_UPSAMPLE if self.window_config.mode == "original" else 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def preset(cls, model: str = "default", **overrides) -> TrainConfig:
        """``original``: the original's training; ``default``: the project's model."""
        base: dict[str, Any]
        if model == "original":
            base = dict(
                model="original",
                # to its validation plateau: no 1 % gain in 15 epochs (at most 1,000)
                epochs=1000,
                plateau=True,
                patience=15,
                min_improvement=0.01,
                batch_size=1,
                crop_frames=0,
                shuffle=False,
                lr=1e-4,
                weight_decay=0.0,
                clip_grad_norm=0.0,
                scheduler="none",
                velocity_weight=0.0,
                target_space="frame",
                window=WindowConfig(mode="original").to_dict(),
                features=dict(ORIGINAL_FEATURES),
                normalize_features=False,
                emotion_conditioning=False,
            )
        elif model == "default":
            # The project's model (models.py says why): log-mel of the corpus (notebook
            # 02), 100 ms past / 200 ms future audio (WindowConfig's defaults), emotion
            # offsets, random 60-frame crops, one-cycle AdamW; `wav2kp cv --study design`
            # is the cross-validation behind these choices.
            base = {}
        else:
            raise ValueError(f"unknown model preset {model!r}; known: {', '.join(MODELS)}")
        base.update(copy.deepcopy(overrides))
        base.setdefault("model", model)
        return cls(**base)


# ---------------------------------------------------------------- the split


@dataclass(frozen=True)
class SplitConfig:
    """How a corpus is split into train / val / test (``wav2kp.features.splits``): whole groups
    (sentences or speakers) held out, made once per corpus with its own seed. These
    defaults are the only ones: ``RunConfig``'s split fields, ``wav2kp.features.splits`` and
    ``wav2kp features`` read them."""

    by: str = "sentence"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Keyword arguments of ``wav2kp.features.splits.make_split`` / ``ensure_split``."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- the run


def parameter(default: Any, doc: str) -> Any:
    """A ``RunConfig`` field: its one default and what it means (README's parameter
    table is generated from both: ``wav2kp config --markdown``)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class RunConfig:
    """One run's parameters (notebook parameter names; module doc)."""

    corpus: str = parameter(
        "demo",
        "corpus name; `demo` = the demo corpus, `demo-tiny` = its small version the "
        "tests use, anything else = your own videos (01's `input_dir`)",
    )
    profile: str = parameter(
        "fast",
        "a named set of values applied under the parameters given (`PROFILES` in "
        "`wav2kp.config`): `fast` = what `make report` trains on 2 cores, `full` = the full "
        "protocol, `grid` = the real-speech run (`make report-grid`)",
    )
    seed: int = parameter(
        0, "the demo corpus's generation (01), and which clips get plots and videos"
    )
    # features (notebook 02)
    feature_kind: str = parameter(
        "logmel",
        "the corpus's audio features (02): `logmel` or `mfcc`; the `original` replica "
        "always gets the original's MFCC",
    )
    n_mfcc: int = parameter(FeatureConfig.n_mfcc, "MFCC coefficients (`feature_kind=mfcc`)")
    n_mels: int = parameter(FeatureConfig.n_mels, "mel bands")
    deltas: bool = parameter(FeatureConfig.deltas, "append delta and delta-delta features")
    cmvn: str = parameter(
        FeatureConfig.cmvn,
        "level invariance (02): sliding per-band mean (`mean`) or mean and variance "
        "(`meanvar`) normalisation",
    )
    floor_db: float | None = parameter(
        FeatureConfig.floor_db,
        "log-mel level floor, dB below the window's loudest frame (`None`: off)",
    )
    phones: str = parameter(
        FeatureConfig.phones,
        "a speaker-independent phonetic stream beside the spectral features (02): "
        "`allphone` = pocketsphinx's phones as viseme classes (`wav2kp.features.phonetic`), "
        "`none` = spectral features alone",
    )
    # split (02)
    split_by: str = parameter(
        SplitConfig.by,
        "the split holds out whole `sentence`s (or `speaker`s); made once per corpus (02) "
        "and fixed for every model",
    )
    val_fraction: float = parameter(
        SplitConfig.val_fraction, "share of groups held out for validation"
    )
    test_fraction: float = parameter(SplitConfig.test_fraction, "share of groups held out for test")
    split_seed: int = parameter(
        SplitConfig.seed, "the split's own seed (training seeds are `seeds`)"
    )
    # targets (03)
    pca_components: int | None = parameter(
        None, "03's target view: `None` = all 136 coordinates, an int = PCA fitted on train"
    )
    neutral: str = parameter(
        "closed", "the neutral face (03): `closed` (closed-mouth frames) or `mean` (all frames)"
    )
    # the default model's audio window (03 shows it, 04 trains it, 05's ridge uses it)
    past_ms: float = parameter(
        WindowConfig.past_ms,
        "the default model's audio before each keypoint frame (ms): shown in 03, trained "
        "in 04, used by 05's ridge",
    )
    future_ms: float = parameter(WindowConfig.future_ms, "... and after it (ms)")
    window_pad: str = parameter(
        WindowConfig.pad,
        "window edges: `edge` repeats the edge frames, `zeros` pads with the train mean",
    )
    # training (04)
    models: tuple[str, ...] = parameter(MODELS, "which models 04 trains (and 05 scores)")
    seeds: tuple[int, ...] = parameter(
        (0, 1, 2), "training seeds: every model is trained once per seed"
    )
    epochs: int | None = parameter(
        None, f"the default model's epochs (`None`: its preset's, {TrainConfig.epochs})"
    )
    # the default model's unseen-voice levers (issue 10, ``wav2kp cv --study levers``)
    augment: int = parameter(
        0,
        "waveform-augmented copies of every training clip (`wav2kp.training.augmentation`; 0 = "
        "none); copies multiply an epoch's steps",
    )
    voices: int = parameter(
        0, "espeak-ng voices per training sentence (`wav2kp.training.voices`; 0 = none)"
    )
    calibrate: bool = parameter(
        False,
        "rescale each utterance's predicted motion to the training spread (`wav2kp.training.calibration`)",
    )
    silence_gate: bool = parameter(
        False, "rest the mouth while nobody speaks (`wav2kp.training.vad`)"
    )
    silence_targets: bool = parameter(
        TrainConfig.silence_targets,
        "train the mouth to rest on the closed neutral where the voice activity detector "
        "hears nobody (`wav2kp.training.vad`), instead of gating it afterwards",
    )
    opening_weight: float = parameter(
        TrainConfig.opening_weight,
        "loss weight of the inner-lip gap, its velocity and acceleration (full motion)",
    )
    spread_weight: float = parameter(
        TrainConfig.spread_weight,
        "loss weight of the gap's spread within each training crop (against damped motion)",
    )
    original_epochs: int | None = parameter(
        None, "the original replica's epochs (`None`: its preset's, to its validation plateau)"
    )
    original_seeds: tuple[int, ...] | None = parameter(
        None, "the replica's training seeds (`None`: `seeds`)"
    )
    refit_on_val: bool = parameter(
        True,
        "the refit rule for every model and baseline: after model selection on the "
        "validation sentences, the final model is retrained on train + val",
    )
    device: str = parameter("auto", "torch device: `auto`, `cpu`, `cuda`, ...")
    workers: int | None = parameter(
        None,
        "parallel workers (01's extraction, 02's features, 04's training tasks on Dask): "
        "`None` = one per core as memory allows (`wav2kp.cluster.default_workers`), `0` = "
        "everything in the notebook's own process; docs/cluster.md for a cluster",
    )
    scheduler: str | None = parameter(
        None,
        "a running Dask scheduler's address (`None`: `$DASK_SCHEDULER_ADDRESS`, else an embedded cluster)",
    )
    # the ablation (04): variants of the default trained on train, scored on val
    ablation: bool = parameter(True, "run 04's ablation (variants of the default, scored on val)")
    ablation_seeds: tuple[int, ...] = parameter((0, 1, 2), "the ablation's training seeds")
    ablation_epochs: int | None = parameter(
        None, "the ablation's epochs (`None`: every variant's own preset's)"
    )

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILES)}")
        for name in self.models:
            if name not in MODELS:
                raise ValueError(f"unknown model {name!r} in models; known: {', '.join(MODELS)}")
        if not self.seeds:
            raise ValueError("seeds: at least one training seed")
        WindowConfig(past_ms=self.past_ms, future_ms=self.future_ms, pad=self.window_pad)

    # ---- building one

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def resolve(cls, **parameters: Any) -> RunConfig:
        """The defaults, then the named profile's values, then every parameter that is
        not None. An unknown name is an error that names it."""
        unknown = sorted(set(parameters) - set(cls.fields()))
        if unknown:
            raise ValueError(
                f"unknown run parameter(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(cls.fields())}"
            )
        given = {k: v for k, v in parameters.items() if v is not None}
        profile = given.get("profile", cls.profile)
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        values = {**PROFILES[profile], **given}
        for name in ("models", "seeds", "ablation_seeds", "original_seeds"):
            if values.get(name) is not None:
                values[name] = _as_tuple(values[name], int if "seeds" in name else str)
        return cls(**values)

    @classmethod
    def from_parameters(cls, namespace: dict[str, Any]) -> RunConfig:
        """``resolve`` over the entries of ``namespace`` (a notebook's ``globals()``) that
        are run parameters; everything else in it is ignored."""
        return cls.resolve(**{k: namespace[k] for k in cls.fields() if k in namespace})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    # ---- what it means for each stage

    @property
    def window(self) -> WindowConfig:
        """The default model's audio window."""
        return WindowConfig(past_ms=self.past_ms, future_ms=self.future_ms, pad=self.window_pad)

    @property
    def feature_settings(self) -> dict[str, Any]:
        """The corpus's pipeline features: keyword arguments of
        ``wav2kp.config.FeatureConfig`` (the others keep its defaults)."""
        return {
            "kind": self.feature_kind, "n_mfcc": self.n_mfcc, "n_mels": self.n_mels,
            "deltas": self.deltas, "cmvn": self.cmvn, "floor_db": self.floor_db,
            "phones": self.phones,
        }  # fmt: skip

    @property
    def split(self) -> SplitConfig:
        """The corpus split this run asks for."""
        return SplitConfig(
            by=self.split_by, val_fraction=self.val_fraction,
            test_fraction=self.test_fraction, seed=self.split_seed,
        )  # fmt: skip

    @property
    def split_settings(self) -> dict[str, Any]:
        """Keyword arguments of ``wav2kp.features.splits.ensure_split``."""
        return self.split.to_dict()

    def seeds_of(self, model: str) -> tuple[int, ...]:
        """The training seeds of ``model``."""
        if model == "original" and self.original_seeds is not None:
            return self.original_seeds
        return self.seeds

    def train_config(self, model: str, seed: int, **overrides: Any) -> TrainConfig:
        """The exact training recipe of ``model`` for one training seed in this run."""
        values: dict[str, Any] = dict(seed=seed, device=self.device, refit_on_val=self.refit_on_val)
        if model == "default":
            values["window"] = self.window.to_dict()
            if self.epochs is not None:
                values["epochs"] = self.epochs
            values.update(calibrate=self.calibrate, silence_gate=self.silence_gate,
                          silence_targets=self.silence_targets,
                          opening_weight=self.opening_weight, spread_weight=self.spread_weight)  # fmt: skip
            if self.augment:
                values["augment"] = {"copies": int(self.augment)}
            if self.voices:
                values["voices"] = {"copies": int(self.voices)}
        elif model == "original" and self.original_epochs is not None:
            values["epochs"] = self.original_epochs
        values.update(overrides)
        return TrainConfig.preset(model, **values)


# `make report` on 2 cores: the default on 3 seeds; the replica (ten times the CPU per
# epoch) on one seed and 5 epochs, far from its plateau (README's generated block names
# the profile it comes from); the ablation on one seed at 20 epochs, half the preset's:
# `wav2kp cv --study budget` (results/demo-cv-budget.json) measures how close its ranking
# of the variants comes to the full budget's (10 epochs came too far off)
_FAST = {
    "original_epochs": 5,
    "original_seeds": (0,),
    "ablation_seeds": (0,),
    "ablation_epochs": 20,
}
# GRID's model: the default with the levers `wav2kp cv --study mouth` keeps by issue 17's
# rule - a lever stays on only if it helps the unseen-voice proxies without costing the
# same voice more than 0.01 r (docs/results/grid-mouth-cv.md): the phonetic stream and the
# silence gate. Waveform augmentation (issue 10's choice) cost the same voice 0.034 r
# (docs/results/grid-levers-cv.md) and is off; the losses on the inner-lip gap fix the
# same voice's damped motion but did not help the proxies, so they are one setting away
# (`opening_weight=1 spread_weight=1`).
GRID_LEVERS: dict[str, Any] = {"phones": "allphone", "silence_gate": True}

# Named sets of values applied under the parameters given (RunConfig.resolve).
PROFILES: dict[str, dict[str, Any]] = {
    "fast": _FAST,
    # the full protocol: the presets' budgets, the ablation on 3 seeds
    "full": {},
    # the real-speech run (`make report-grid`, `make model-grid`): GRID's model on GRID
    # speaker 1, beside the baselines; the replica and the ablation are the demo run's
    "grid": {
        **_FAST,
        "corpus": "grid",
        "models": ("default",),
        "ablation": False,
        **GRID_LEVERS,
    },
}
# Profiles whose final models are kept in their own folder (models/<corpus>/<profile>/),
# apart from the models notebooks 05-06 and `wav2kp predict` use by default
# (``wav2kp.training.train.model_dir``): another budget of the same recipes, to compare with them.
PROFILES_KEPT_APART = ("full",)


def _as_tuple(value: Any, kind: type) -> tuple:
    """A list parameter from papermill or the command line: a list/tuple, or a string
    "0,1,2" / "[0, 1, 2]" / "default"."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "(")):
            value = ast.literal_eval(text)
        else:
            value = [v.strip() for v in text.split(",") if v.strip()]
    if isinstance(value, int | str):
        value = [value]
    return tuple(kind(v) for v in value)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value), the value read as a Python literal when it is one
    (ints, floats, bools, None, lists), else kept as a string."""
    if "=" not in text:
        raise ValueError(f"{text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise ValueError(f"parameter name {key!r} is not a valid Python identifier")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        lowered = raw.strip().lower()
        value = {"true": True, "false": False, "none": None, "null": None}.get(lowered, raw)
    return key, value


def config_digest(values: Any) -> str:
    """A short stable hash of JSON-able values (cache keys, fingerprints)."""
    import hashlib

    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- command lines

WORKERS_HELP = (
    "(default: one per core, as memory allows: wav2kp.cluster.default_workers; "
    "0: everything in this process)"
)


def add_corpus_argument(parser: argparse.ArgumentParser) -> None:
    """``--corpus``, defaulting to ``RunConfig``'s corpus (the one default)."""
    parser.add_argument(
        "--corpus", default=RunConfig.corpus, help=f"corpus name (default: {RunConfig.corpus})"
    )


def add_workers_argument(parser: argparse.ArgumentParser, what: str = "worker processes") -> None:
    """``--workers``: None (the machine-sized default of ``wav2kp.cluster``) unless given."""
    parser.add_argument("--workers", type=int, default=None, help=f"{what} {WORKERS_HELP}")


# ---------------------------------------------------------------- the parameter table

TABLE_BEGIN = "<!-- parameters:begin"
TABLE_END = "<!-- parameters:end -->"
TABLE_COMMAND = "wav2kp config --markdown"


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "`" + ",".join(str(v) for v in value) + "`"
    return f"`{value}`"


def parameter_table() -> str:
    """README's parameter table (markers included): every ``RunConfig`` field with its
    default (the default profile applied), the other profiles' values where they differ,
    and its doc."""
    default = RunConfig.resolve()
    profiles = {name: RunConfig.resolve(profile=name) for name in PROFILES}
    lines = [
        f"{TABLE_BEGIN} generated by `{TABLE_COMMAND}` from wav2kp.config.RunConfig; "
        "do not edit -->",
        "",
        f"| parameter | default (profile `{default.profile}`) | other profiles | meaning |",
        "|---|---|---|---|",
    ]
    for item in dataclasses.fields(RunConfig):
        value = getattr(default, item.name)
        others = "; ".join(
            f"`{name}`: {_shown(getattr(cfg, item.name))}"
            for name, cfg in profiles.items()
            if name != default.profile
            and getattr(cfg, item.name) != value
            and item.name != "profile"
        )
        doc = item.metadata["doc"].replace("|", "\\|")
        lines.append(f"| `{item.name}` | {_shown(value)} | {others} | {doc} |")
    return "\n".join([*lines, "", TABLE_END]) + "\n"


def replace_parameter_table(text: str, table: str, source: str = "README") -> str:
    """``text`` with its parameter table replaced by ``table``; ``ValueError`` naming
    ``source`` when it has no table."""
    start = text.find(TABLE_BEGIN)
    end = text.find(TABLE_END, start)
    if start < 0 or end < 0:
        raise ValueError(f"{source}: no parameter table ({TABLE_BEGIN} ... {TABLE_END}) found")
    return text[:start] + table.rstrip("\n") + text[end + len(TABLE_END) :]


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=None, help="a profile to resolve (default: fast)")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="any run parameter (repeatable)",
    )  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="print README's parameter table")
    parser.add_argument("--update-readme", metavar="README",
                        help="rewrite the parameter table of this README")  # fmt: skip


def run_cli(args: argparse.Namespace) -> int:
    """The resolved configuration as JSON (what run.json records), or the parameter table."""
    from pathlib import Path

    if args.update_readme:
        from wav2kp.atomic import write_text

        readme = Path(args.update_readme)
        write_text(
            readme, replace_parameter_table(readme.read_text(), parameter_table(), str(readme))
        )
        print(f"updated the parameter table of {readme}")
        return 0
    if args.markdown:
        print(parameter_table(), end="")
        return 0
    values = dict(parse_assignment(a) for a in args.assignments)
    if args.profile is not None:
        values["profile"] = args.profile
    print(json.dumps(RunConfig.resolve(**values).to_dict(), indent=1))
    return 0
