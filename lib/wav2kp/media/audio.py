"""Read any audio (or the audio track of any video) as float32 samples.

wav/flac/ogg go through soundfile; anything else (mp3, m4a, mp4, mkv, ...) is decoded
to PCM by libav (PyAV, ``wav2kp.media.decode``). Resampling uses torchaudio, so a 16 kHz
signal is the same whether it came from extraction or from a user's file at prediction time.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from wav2kp.atomic import atomic_path
from wav2kp.config import SAMPLE_RATE  # noqa: F401  (stored at extraction, read everywhere)
from wav2kp.media.probe import MediaError

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au"}


class AudioError(MediaError):
    """Audio that cannot be read; the message names the file and the cause."""


def load_audio(
    path: str | os.PathLike, sample_rate: int | None = SAMPLE_RATE, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Samples as float32 in [-1, 1] and their rate.

    ``mono=True`` gives shape (N,) (channels averaged), else (N, C).
    ``sample_rate=None`` keeps the file's own rate.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    samples = rate = None
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError):
            samples = None  # e.g. a wav with an unusual codec: let ffmpeg try
    if samples is None:
        samples, rate = _decode_with_ffmpeg(path)
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: audio stream holds no samples")
    if mono:
        samples = samples.mean(axis=1)
    if sample_rate is not None and int(sample_rate) != int(rate):
        samples = resample(samples, int(rate), int(sample_rate))
        rate = int(sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """torchaudio's band-limited sinc resampling along the first axis."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    with torch.no_grad():
        y = _resampler(int(orig_rate), int(new_rate))(x.T if x.ndim == 2 else x)
    return (y.T if x.ndim == 2 else y).numpy()


@functools.lru_cache(maxsize=8)
def _resampler(orig_rate: int, new_rate: int):
    # building the sinc kernel costs more than applying it to a short clip: keep it
    import torchaudio.transforms as T

    return T.Resample(orig_rate, new_rate)


def _decode_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    from wav2kp.media.decode import decode_audio

    try:
        return decode_audio(path, "flt", on_timeline=False)
    except MediaError as error:
        raise AudioError(str(error)) from error


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """PCM16 wav, written atomically."""
    data = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), data, int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)
