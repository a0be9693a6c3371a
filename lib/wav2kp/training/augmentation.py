"""Waveform augmentation: other voices, microphones and rooms for the same mouth motion.

A model trained on one real speaker learns that speaker's voice, level, microphone and
room along with the speech. ``augment_clips`` adds copies of the training clips whose
audio is changed in ways that leave the mouth motion as it was (issue 10):

- ``speed``: resampling by a factor (Kaldi's speed perturbation): tempo, pitch and
  formants change together; the keypoint frame times are scaled with it, so the mouth
  still follows the (faster or slower) speech;
- ``pitch_semitones``: pitch *and* formants shifted without a change of tempo (phase
  vocoder, ``torchaudio.functional.pitch_shift``): a crude other voice / vocal tract
  length (VTLP);
- ``gain_db``: louder or quieter;
- ``eq``: a random microphone response: high-pass, low-pass and one peaking band;
- ``reverb``: a synthetic room (exponentially decaying noise, RT60 drawn from a range)
  mixed with the direct sound;
- ``snr_db``: stationary coloured noise (white to brown) at a drawn signal-to-noise ratio.

Each copy draws its own combination (every transform applies with its probability) from
a generator seeded by ``seed``, the clip and the copy number, so the same call gives the
same copies. Copies keep the clip's landmarks, targets and pose; their features are
recomputed with the model's feature config and normalised with the train stats.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from wav2kp.media.audio import SAMPLE_RATE

MAX_DENOMINATOR = 50  # speed and pitch factors as fractions p/q with q <= 50


@dataclass(frozen=True)
class AugmentConfig:
    """How many augmented copies per training clip and what each may change."""

    copies: int = 2
    speed: tuple[float, float] = (0.9, 1.1)
    speed_p: float = 0.5
    pitch_semitones: tuple[float, float] = (-3.0, 5.0)
    pitch_p: float = 0.5
    gain_db: tuple[float, float] = (-15.0, 10.0)
    gain_p: float = 1.0
    eq_p: float = 0.5
    reverb_rt60: tuple[float, float] = (0.15, 0.7)
    reverb_p: float = 0.3
    snr_db: tuple[float, float] = (5.0, 30.0)
    noise_p: float = 0.5

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ValueError(f"copies must be >= 0, got {self.copies}")
        for name in ("speed", "pitch_semitones", "gain_db", "reverb_rt60", "snr_db"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: range ({low}, {high}) is reversed")
        if self.speed[0] <= 0:
            raise ValueError(f"speed factors must be positive, got {self.speed}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> AugmentConfig:
        fields = cls.__dataclass_fields__
        return cls(
            **{
                k: (tuple(v) if isinstance(v, list) else v)
                for k, v in values.items()
                if k in fields
            }
        )


@dataclass(frozen=True)
class Perturbation:
    """One drawn combination (None / 0 = that transform is off)."""

    speed: float = 1.0
    pitch_semitones: float = 0.0
    gain_db: float = 0.0
    eq: tuple[float, float, float, float] | None = None  # highpass Hz, lowpass Hz, peak Hz, dB
    reverb_rt60: float = 0.0
    reverb_wet: float = 0.0  # reverberant / direct energy ratio
    snr_db: float | None = None
    noise_colour: float = 0.0  # spectral slope: 0 white, 1 pink, 2 brown

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        # the speed actually applied (a small fraction), so keypoint times match it
        object.__setattr__(self, "speed", float(_ratio(self.speed)))


def draw_perturbation(config: AugmentConfig, rng: np.random.Generator) -> Perturbation:
    def maybe(p: float) -> bool:
        return bool(rng.random() < p)

    def uniform(bounds) -> float:
        return float(rng.uniform(*bounds))

    return Perturbation(
        speed=uniform(config.speed) if maybe(config.speed_p) else 1.0,
        pitch_semitones=uniform(config.pitch_semitones) if maybe(config.pitch_p) else 0.0,
        gain_db=uniform(config.gain_db) if maybe(config.gain_p) else 0.0,
        eq=(
            (
                float(rng.uniform(50, 300)),
                float(rng.uniform(3000, 7800)),
                float(np.exp(rng.uniform(np.log(300), np.log(4000)))),
                float(rng.uniform(-8, 8)),
            )
            if maybe(config.eq_p)
            else None
        ),
        reverb_rt60=uniform(config.reverb_rt60) if maybe(config.reverb_p) else 0.0,
        reverb_wet=float(rng.uniform(0.1, 1.0)),
        snr_db=uniform(config.snr_db) if maybe(config.noise_p) else None,
        noise_colour=float(rng.uniform(0.0, 2.0)),
    )


def _coloured_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    noise = np.fft.irfft(spectrum / freqs ** (slope / 2), n)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def _room_impulse(rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    n = max(int(rt60 * SAMPLE_RATE), 2)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[0] = 0.0
    tail *= np.sqrt(wet / max(float(np.sum(tail**2)), 1e-12))
    tail[0] = 1.0  # the direct sound first: no delay, the timing stays
    return tail


def perturb(
    samples: np.ndarray, perturbation: Perturbation, rng: np.random.Generator
) -> np.ndarray:
    """The 16 kHz mono ``samples`` with one drawn perturbation applied (float32).
    Output length is ``len(samples) / speed``."""
    p = perturbation
    x = np.asarray(samples, dtype=np.float32)
    if p.speed != 1.0:
        # play the samples back ``speed`` times faster (length / speed)
        x = _resample_by(x, p.speed)
    if p.pitch_semitones:
        x = pitch_shift(x, p.pitch_semitones)
    out = np.asarray(x, dtype=np.float64)
    if p.eq is not None:
        out = microphone(out, *p.eq)
    if p.reverb_rt60 > 0:
        from scipy.signal import fftconvolve

        out = fftconvolve(out, _room_impulse(p.reverb_rt60, p.reverb_wet, rng))[: len(out)]
    if p.snr_db is not None:
        power = float(np.mean(out**2))
        noise = _coloured_noise(len(out), p.noise_colour, rng)
        out = out + noise * np.sqrt(power / 10 ** (p.snr_db / 10))
    out *= 10 ** (p.gain_db / 20)
    peak_value = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak_value > 1.0:  # no clipping: scale down (levels are normalised downstream anyway)
        out /= peak_value
    return out.astype(np.float32)


def _ratio(factor: float) -> Fraction:
    return Fraction(factor).limit_denominator(MAX_DENOMINATOR)


def _resample_by(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster (length / factor), polyphase resampling with
    the factor as a small fraction (an arbitrary rate ratio would need a huge filter)."""
    from scipy.signal import resample_poly

    ratio = _ratio(factor)
    return resample_poly(x, ratio.denominator, ratio.numerator).astype(np.float32)


def pitch_shift(x: np.ndarray, semitones: float, n_fft: int = 512) -> np.ndarray:
    """Pitch and formants scaled by 2^(semitones/12), tempo kept: a phase-vocoder
    stretch by the factor, then played back that much faster."""
    import torch
    import torchaudio.functional as AF

    factor = float(_ratio(2.0 ** (semitones / 12.0)))
    hop = n_fft // 4
    window = torch.hann_window(n_fft)
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    spec = torch.stft(tensor, n_fft, hop, window=window, return_complex=True)
    advance = torch.linspace(0, np.pi * hop, spec.shape[-2])[..., None]
    stretched = AF.phase_vocoder(spec, 1.0 / factor, advance)
    longer = torch.istft(stretched, n_fft, hop, window=window,
                         length=int(round(len(x) * factor)))  # fmt: skip
    out = _resample_by(longer.numpy(), factor)
    if len(out) < len(x):
        out = np.pad(out, (0, len(x) - len(out)))
    return out[: len(x)]


def microphone(x: np.ndarray, highpass: float, lowpass: float, peak: float, peak_db: float):
    """A microphone/channel response: 2nd-order Butterworth high- and low-pass and one
    peaking band (RBJ cookbook, Q 1), as IIR filters (scipy; fast on long signals)."""
    from scipy.signal import butter, lfilter, sosfilt

    sos = np.vstack([
        butter(2, highpass, "highpass", fs=SAMPLE_RATE, output="sos"),
        butter(2, min(lowpass, 0.45 * SAMPLE_RATE), "lowpass", fs=SAMPLE_RATE, output="sos"),
    ])  # fmt: skip
    y = sosfilt(sos, x)
    gain = 10 ** (peak_db / 40)
    w0 = 2 * np.pi * peak / SAMPLE_RATE
    alpha = np.sin(w0) / 2.0  # Q = 1
    b = [1 + alpha * gain, -2 * np.cos(w0), 1 - alpha * gain]
    a = [1 + alpha / gain, -2 * np.cos(w0), 1 - alpha / gain]
    return lfilter(b, a, y)


def _clip_seed(seed: int, clip_id: str, copy: int) -> int:
    digest = hashlib.sha1(f"{seed}:{clip_id}:{copy}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def augment_clip(clip, samples: np.ndarray, feature_stats, perturbation, rng, copy: int = 0):
    """A copy of ``clip`` (``ClipData``) whose audio is ``samples`` (16 kHz) perturbed."""
    from wav2kp.config import WindowConfig
    from wav2kp.features.features import compute_features
    from wav2kp.windowing.dataset import LazyWindows
    from wav2kp.windowing.windowing import window_indices

    audio = perturb(samples, perturbation, rng)
    raw, feature_times = compute_features(audio, SAMPLE_RATE, feature_stats.feature_config)
    features = feature_stats.apply(raw)
    frame_times = np.asarray(clip.frame_times, dtype=np.float64) / perturbation.speed
    window = WindowConfig.from_dict(clip.extra.get("window_config", WindowConfig().to_dict()))
    # windows gathered lazily: many copies must not hold (T, C, D) each
    windows = LazyWindows(features, *window_indices(feature_times, frame_times, window), window.pad)
    return dataclasses.replace(
        clip,
        clip_id=f"{clip.clip_id}~aug{copy}",
        frame_times=frame_times,
        features=features,
        feature_times=feature_times,
        windows=windows,
        audio_path=None,
        extra={**clip.extra, "augmentation": asdict(perturbation), "augmented_from": clip.clip_id},
    )


def augment_clips(
    clips: Sequence, config: AugmentConfig, feature_stats, seed: int = 0, progress: bool = True
) -> list:
    """``config.copies`` augmented copies of every clip that has a readable audio file
    (module doc); a clip without one is left out with a warning."""
    import warnings

    from tqdm.auto import tqdm

    from wav2kp.features.features import FeatureStats
    from wav2kp.media.audio import load_audio

    if isinstance(feature_stats, dict):
        feature_stats = FeatureStats.from_dict(feature_stats)
    out = []
    if config.copies == 0:
        return out
    for clip in tqdm(clips, desc="augment", unit="clip", disable=not progress):
        if clip.audio_path is None:
            warnings.warn(f"augment: {clip.clip_id} has no audio file; not augmented", stacklevel=2)
            continue
        try:
            samples, _ = load_audio(clip.audio_path, sample_rate=SAMPLE_RATE)
        except (OSError, ValueError, RuntimeError) as exc:  # unreadable audio: name it, go on
            warnings.warn(f"augment: {clip.clip_id} not augmented: {exc}", stacklevel=2)
            continue
        for copy in range(config.copies):
            rng = np.random.default_rng(_clip_seed(seed, clip.clip_id, copy))
            perturbation = draw_perturbation(config, rng)
            out.append(augment_clip(clip, samples, feature_stats, perturbation, rng, copy))
    return out
