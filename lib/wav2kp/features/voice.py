"""Is somebody speaking? silero-vad's speech probability at any times of a signal.

``silero-vad`` is a small recurrent voice-activity network trained on many languages,
voices and noises; its wheel bundles the model (``silero_vad/data/silero_vad.jit``, read
by ``load_silero_vad`` from the installed package, so nothing is downloaded). It reads
16 kHz audio in 512-sample chunks (32 ms), carrying a state from chunk to chunk, and gives
one probability per chunk.

``speech_probability`` runs it over a whole signal (its state reset first, so a call
depends on its own samples only) and reads the chunk probabilities at any times by
linear interpolation between chunk centres (chunk ``i`` covers samples
``[512 i, 512 (i + 1))``; times before the first centre or after the last take the
end chunk's value). ``wav2kp.training.vad`` turns it into the silence gate.

Deterministic (same samples, same output). Each thread keeps its own model (the network
holds its state in the module, so one instance must not serve two threads at once).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from wav2kp.config import SAMPLE_RATE

SILERO_RATE = SAMPLE_RATE  # silero's 16 kHz network (the 8 kHz one is not used)
CHUNK = 512  # samples per silero chunk at 16 kHz
CHUNK_S = CHUNK / SILERO_RATE

_LOCAL = threading.local()
_IMPORT_LOCK = threading.Lock()


def _model():
    """This thread's silero-vad model (loaded once per thread from the installed wheel)."""
    model = getattr(_LOCAL, "model", None)
    if model is None:
        import torch

        with _IMPORT_LOCK:
            # importing silero_vad sets torch's thread count to 1 for the whole process;
            # keep the caller's setting
            threads = torch.get_num_threads()
            try:
                from silero_vad import load_silero_vad

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's notice
                    model = load_silero_vad()
            finally:
                torch.set_num_threads(threads)
        _LOCAL.model = model
    return model


def _check_signal(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"speech probability needs a mono signal (N,), got shape {samples.shape}")
    if len(samples) == 0:
        raise ValueError("speech probability of an empty signal (0 samples)")
    if not np.issubdtype(samples.dtype, np.number):
        raise ValueError(f"speech probability needs numeric samples, got dtype {samples.dtype}")
    bad = ~np.isfinite(samples)
    if bad.any():
        raise ValueError(
            f"speech probability: {int(bad.sum())} of {len(samples)} samples are NaN or "
            f"infinite (first at sample {int(np.flatnonzero(bad)[0])})"
        )
    if not (isinstance(sample_rate, int | np.integer) and sample_rate > 0):
        raise ValueError(f"speech probability: sample rate must be a positive integer, "
                         f"got {sample_rate!r}")  # fmt: skip
    return samples.astype(np.float32, copy=False)


def chunk_probabilities(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(ceil(N / 512),) float32: silero's speech probability per 512-sample chunk of the
    signal at 16 kHz (resampled first when ``sample_rate`` differs; the last chunk is
    padded with zeros)."""
    import torch

    samples = _check_signal(samples, sample_rate)
    if int(sample_rate) != SILERO_RATE:
        from wav2kp.media.audio import resample

        samples = resample(samples, int(sample_rate), SILERO_RATE)
    padded = np.zeros(-(-len(samples) // CHUNK) * CHUNK, dtype=np.float32)
    padded[: len(samples)] = samples
    with torch.inference_mode():
        # audio_forward resets the state, then steps the network through every chunk
        probability = _model().audio_forward(torch.from_numpy(padded)[None], SILERO_RATE)
    return np.clip(probability.numpy()[0], 0.0, 1.0).astype(np.float32)


def speech_probability(samples: np.ndarray, sample_rate: int, times: np.ndarray) -> np.ndarray:
    """(T,) float32 in [0, 1]: silero-vad's probability that somebody speaks at each of
    ``times`` (seconds from the first sample) of a mono float signal (module doc).

    Empty, non-mono or non-finite samples are a ``ValueError`` naming the problem."""
    probability = chunk_probabilities(samples, sample_rate)
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"speech probability: times must be 1-D, got shape {times.shape}")
    if not np.isfinite(times).all():
        raise ValueError("speech probability: times hold NaN or infinite values")
    centres = (np.arange(len(probability)) + 0.5) * CHUNK_S
    return np.interp(times, centres, probability).astype(np.float32)
