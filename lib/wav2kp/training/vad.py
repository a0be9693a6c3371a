"""Voice activity: when is somebody speaking, and a mouth that rests when nobody is.

``voice_activity`` thresholds silero-vad's speech probability
(``wav2kp.features.voice.speech_probability``, a network trained on many voices and
noises) at each keypoint frame, with hysteresis (speech starts at ``threshold`` and lasts
until the probability drops below ``threshold - hysteresis``), short pauses bridged,
short bursts dropped, and a pre-roll for the mouth's lead over the sound and a post-roll
(hangover) for its close after it. Its settings (``VadConfig``) were chosen against the
truth of GRID's word alignments (``read_grid_align``; ``gate_accuracy`` scores a gate
against them, and ``VadConfig`` names the sweep that compares settings).

``silence_weights`` turns activity into a per-frame weight that ramps smoothly between
0 (silence) and 1 (speech); ``gate_targets`` pulls predicted mouth and jaw targets
towards 0 by it (0 is the speaker's closed neutral face, ``wav2kp.windowing.targets``), and
``SilenceGate`` wraps any trained predictor with that gate.

``silent_open_share`` is the issue-10 silence measure: the share of silent frames whose
mouth is open by more than 10 % of the mean speech-time opening.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SILENCE_WORDS = frozenset({"sil", "sp", "spn", ""})
GRID_ALIGN_RATE = 25_000  # GRID align files count time in 1/25,000 s
JAW_AND_MOUTH = np.r_[0:17, 48:68]  # iBUG points that speech moves


@dataclass(frozen=True)
class VadConfig:
    """Silence-gate settings on silero-vad's speech probability (defaults chosen on GRID's
    alignments, see module doc)."""

    # ``python -m wav2kp.studies vad --corpus grid --align-dir ../shared/grid-s1/align``
    # (after ``make report-grid`` has extracted GRID) sweeps these on GRID's train + val
    # sentences against the word alignments and prints, per setting, the share of silent
    # frames the gate leaves open and of speech frames it holds; no sweep table is
    # committed, so run it for the numbers
    threshold: float = 0.8  # speech starts where the probability reaches this
    hysteresis: float = 0.0  # ... and lasts until it drops below threshold - hysteresis
    min_pause_s: float = 0.2  # shorter pauses inside speech count as speech
    min_speech_s: float = 0.06  # shorter bursts count as silence
    # the mouth opens before the sound starts, and silero's probability rises a frame or
    # two after it (its recurrent state needs a few chunks): speech starts this much early
    pre_roll_s: float = 0.12
    post_roll_s: float = 0.0  # hangover: the mouth closes this long after the speech ends
    ramp_s: float = 0.04  # gate ramps between silence and speech (no jump in the mouth)

    def __post_init__(self):
        if not 0.0 < self.threshold <= 1.0 or not 0.0 <= self.hysteresis < self.threshold:
            raise ValueError(f"VadConfig: need 0 < threshold <= 1 and 0 <= hysteresis < "
                             f"threshold, got {self.threshold!r}, {self.hysteresis!r}")  # fmt: skip
        durations = {k: v for k, v in self.to_dict().items() if k.endswith("_s")}
        negative = [k for k, v in durations.items() if v < 0]
        if negative:
            raise ValueError(f"VadConfig: negative durations {negative}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> VadConfig:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


# The mouth gate's settings: silero's speech, widened. Resting the mouth exactly where
# VadConfig's detector says nobody speaks cost 0.06 r on GRID's held-out sentences in a
# first run of `wav2kp cv --study mouth` (the real mouth moves before and after the sound);
# rolls of 0.4 s with 0.15 s ramps keep the mouth free around speech and still close it in
# the long silences where an ungated model mouths noise (the study's "silence gate" rows).
GATE_CONFIG = VadConfig(pre_roll_s=0.4, post_roll_s=0.4, ramp_s=0.15)


# ---------- truth: GRID word alignments ----------


def read_grid_align(path: str | os.PathLike) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, word)`` rows of a GRID ``.align`` file (times in 1/25,000 s)."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise ValueError(f"{path}:{number}: expected 'start end word', got {line!r}")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: times are not integers: {line!r}") from exc
        rows.append((start / GRID_ALIGN_RATE, end / GRID_ALIGN_RATE, parts[2]))
    return rows


def speech_from_words(words, times: np.ndarray) -> np.ndarray:
    """(T,) True where ``times`` fall inside a word that is not silence."""
    times = np.asarray(times, dtype=np.float64)
    speech = np.zeros(len(times), dtype=bool)
    for start, end, word in words:
        if word.lower() not in SILENCE_WORDS:
            speech |= (times >= start) & (times < end)
    return speech


# ---------- the gate ----------


def _runs(mask: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, stop, value) runs of a boolean array."""
    if len(mask) == 0:
        return []
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    starts = np.r_[0, edges]
    stops = np.r_[edges, len(mask)]
    return [(int(a), int(b), bool(mask[a])) for a, b in zip(starts, stops, strict=True)]


def _fill_short(mask: np.ndarray, value: bool, max_len: int, inner_only: bool) -> np.ndarray:
    """Runs of ``value`` no longer than ``max_len`` flipped (only those with both
    neighbours when ``inner_only``)."""
    out = mask.copy()
    for start, stop, v in _runs(mask):
        if v != value or stop - start > max_len:
            continue
        if inner_only and (start == 0 or stop == len(mask)):
            continue
        out[start:stop] = not value
    return out


def hysteresis_activity(probability: np.ndarray, on: float, off: float) -> np.ndarray:
    """(T,) bool: active from where ``probability`` reaches ``on`` until it drops below
    ``off`` (<= ``on``)."""
    active = np.zeros(len(probability), dtype=bool)
    state = False
    for i, p in enumerate(np.asarray(probability, dtype=np.float64)):
        state = p >= off if state else p >= on
        active[i] = state
    return active


def activity_from_probability(
    probability: np.ndarray, times: np.ndarray, config: VadConfig | None = None
) -> np.ndarray:
    """(T,) bool: speech at ``times`` from the speech probability there (module doc)."""
    config = config or VadConfig()
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        return np.zeros(0, dtype=bool)
    active = hysteresis_activity(probability, config.threshold,
                                 config.threshold - config.hysteresis)  # fmt: skip
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    active = _fill_short(active, False, int(round(config.min_pause_s / period)), True)
    active = _fill_short(active, True, int(round(config.min_speech_s / period)), False)
    pre, post = int(round(config.pre_roll_s / period)), int(round(config.post_roll_s / period))
    out = active.copy()
    for start, stop, v in _runs(active):
        if v:
            out[max(start - pre, 0) : min(stop + post, len(out))] = True
    return out


def voice_activity(
    samples: np.ndarray, sr: int, times: np.ndarray, config: VadConfig | None = None
) -> np.ndarray:
    """(T,) bool: speech at each of ``times`` (seconds) of a mono signal (module doc)."""
    from wav2kp.features.voice import speech_probability

    times = np.asarray(times, dtype=np.float64)
    return activity_from_probability(speech_probability(samples, sr, times), times, config)


def silence_weights(active: np.ndarray, frame_period: float, ramp_s: float) -> np.ndarray:
    """(T,) weight 1 in speech, 0 deep in silence, ramping linearly over ``ramp_s`` into
    each silence (a weight never drops inside speech)."""
    active = np.asarray(active, dtype=bool)
    if len(active) == 0 or active.all():
        return np.ones(len(active))
    if not active.any():
        return np.zeros(len(active))
    from scipy.ndimage import distance_transform_edt

    distance = distance_transform_edt(~active) * frame_period  # s to the nearest speech frame
    ramp = max(ramp_s, 1e-9)
    return np.clip(1.0 - distance / ramp, 0.0, 1.0)


def gate_targets(targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Normalised targets (T, K) with the jaw and mouth points (all values when K is not
    136 = 68 x 2) scaled by ``weights`` (T,): 0 = the speaker's closed neutral."""
    targets = np.array(targets, dtype=np.float64, copy=True)
    weights = np.asarray(weights, dtype=np.float64)[:, None]
    if targets.shape[1] == 136:
        columns = np.stack([2 * JAW_AND_MOUTH, 2 * JAW_AND_MOUTH + 1], axis=1).ravel()
        targets[:, columns] *= weights
    else:
        targets *= weights
    return targets


def clip_voice_activity(clip, config: VadConfig | None = None) -> np.ndarray:
    """(T,) voice activity at a ``ClipData``'s frame times, from its 16 kHz audio
    (``clip.extra["samples"]`` and ``clip.extra["sample_rate"]`` when given, else
    ``clip.audio_path``)."""
    from wav2kp.media.audio import SAMPLE_RATE, load_audio

    samples = clip.extra.get("samples") if isinstance(clip.extra, dict) else None
    if samples is not None:
        sr = int(clip.extra.get("sample_rate", SAMPLE_RATE))
    elif clip.audio_path is not None:
        samples, sr = load_audio(clip.audio_path, sample_rate=SAMPLE_RATE)
    else:
        raise ValueError(f"{clip.clip_id}: no audio to tell speech from silence")
    return voice_activity(samples, sr, clip.frame_times, config)


def rewrapped(wrapper, inner, name: str | None = None):
    """A copy of an inference wrapper (``SilenceGate``, ``calibration.Calibrated``) around
    ``inner``, a copy its wrapped model made of itself (e.g. ``with_emotion``); named
    ``name``, else the wrapper's name with the suffix the copy added to the model's."""
    other = object.__new__(type(wrapper))  # copy.copy would recurse in __getattr__
    other.__dict__.update(vars(wrapper), predictor=inner)
    other.name = name or wrapper.name + inner.name.removeprefix(wrapper.predictor.name)
    return other


class SilenceGate:
    """A ``KeypointPredictor`` that rests the mouth of a normalised-target predictor
    (``predict_targets`` + ``normalizer``) on the speaker's closed neutral while nobody
    speaks; other predictors' landmarks pass through unchanged."""

    def __init__(self, predictor, config: VadConfig | None = None, name: str | None = None):
        self.predictor = predictor
        self.config = config or GATE_CONFIG
        self.name = name or f"{predictor.name}+gate"

    def __getattr__(self, item):  # window_config, context, ... of the wrapped model
        return getattr(self.predictor, item)

    def with_emotion(self, emotion, name: str | None = None) -> SilenceGate:
        """The gate around the wrapped model's ``with_emotion`` copy: a copy made through
        ``__getattr__`` would be the bare model, without the gate ``predict`` uses."""
        return rewrapped(self, self.predictor.with_emotion(emotion, name), name)

    def weights(self, clip) -> np.ndarray:
        return self.weights_of(clip, self.config)

    @staticmethod
    def weights_of(clip, config: VadConfig | None = None) -> np.ndarray:
        """(T,) the gate's weight per frame of ``clip``: 0 in silence, 1 in speech."""
        config = config or GATE_CONFIG
        active = clip_voice_activity(clip, config)
        period = float(np.median(np.diff(clip.frame_times))) if clip.n_frames > 1 else 0.04
        return silence_weights(active, period, config.ramp_s)

    def predict_targets(self, clip) -> np.ndarray:
        return gate_targets(self.predictor.predict_targets(clip), self.weights(clip))

    def predict_landmarks(self, clip) -> np.ndarray:
        from wav2kp.windowing.targets import fill_pose

        normalizer = getattr(self.predictor, "normalizer", None)
        if getattr(self.predictor, "target_space", "normalized") != "normalized" or not (
            hasattr(self.predictor, "predict_targets") and normalizer is not None
        ):
            return self.predictor.predict_landmarks(clip)
        pose, _ = fill_pose(clip.pose)
        targets = self.predict_targets(clip)
        return np.asarray(normalizer.inverse(targets, pose, clip.speaker), dtype=np.float32)


# ---------- measures ----------


def gate_accuracy(active: np.ndarray, truth: np.ndarray) -> dict:
    """Frame agreement of a gate with the truth: accuracy, speech recall, silence recall."""
    active, truth = np.asarray(active, bool), np.asarray(truth, bool)
    return {
        "accuracy": float((active == truth).mean()) if len(truth) else np.nan,
        "speech_recall": float(active[truth].mean()) if truth.any() else np.nan,
        "silence_recall": float((~active[~truth]).mean()) if (~truth).any() else np.nan,
    }


def silent_open_share(
    opening: np.ndarray, speech: np.ndarray, closed_opening: float, share_of_mean: float = 0.1
) -> float:
    """Share of silent frames (``~speech``) whose mouth opening (e.g. inner-lip gap / IOD)
    exceeds the closed neutral's by more than ``share_of_mean`` of the mean speech-time
    excess; NaN without silent or speech frames."""
    opening = np.asarray(opening, dtype=np.float64)
    speech = np.asarray(speech, dtype=bool)
    ok = np.isfinite(opening)
    silent, talking = ok & ~speech, ok & speech
    if not silent.any() or not talking.any():
        return float("nan")
    excess = opening - closed_opening
    limit = share_of_mean * max(float(excess[talking].mean()), 1e-9)
    return float((excess[silent] > limit).mean())


def clip_silence_share(clip, predicted: np.ndarray, normalizer) -> float:
    """``silent_open_share`` of a prediction (T, 68, 2) on a clip that carries the truth
    of who speaks when (``clip.extra["speech_truth"]``, e.g. from GRID's alignments;
    NaN without), the closed opening being the speaker's neutral face's."""
    from wav2kp import metrics

    truth = clip.extra.get("speech_truth") if isinstance(clip.extra, dict) else None
    if truth is None or normalizer is None:
        return float("nan")
    neutral = normalizer.neutral_for(clip.speaker or None)
    closed = float(metrics.mouth_opening(neutral[None])[0])
    return silent_open_share(metrics.mouth_opening(predicted), truth, closed)


def attach_speech_truth(clips, align_dir) -> int:
    """Put each clip's speech truth (``<align_dir>/<sentence_id>.align``, GRID's word
    alignment, at the clip's frame times) in ``clip.extra["speech_truth"]``; returns how
    many clips got one."""
    count = 0
    for clip in clips:
        path = Path(align_dir) / f"{clip.sentence_id or clip.clip_id}.align"
        if path.is_file():
            clip.extra["speech_truth"] = speech_from_words(read_grid_align(path), clip.frame_times)
            count += 1
    return count
