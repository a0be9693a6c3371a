"""Audio-visual sync check: the lag that best aligns loudness with mouth opening.

Speech gets louder when the mouth opens (vowels), so the log-RMS envelope of the audio and
the inner-lip gap ``|y66 - y62| / IOD`` should correlate best at lag ~0 in a well-synced
clip. Per clip we resample both onto a common grid (5 ms), z-score them and take the lag
within +-``max_lag_ms`` with the highest Pearson correlation. Natural speech often shows
the lips moving ~100 ms *before* the sound (they open before voicing starts), so a
consistent small negative lag is normal; what matters is clips that disagree.

Sign: a positive lag means the mouth moves *after* the sound (video late / audio early).
A corpus whose clips disagree (outliers far from the median lag) has a sync problem in
some files; a lag with weak correlation means the clip has too little speech to tell.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from wav2kp.metrics import mouth_opening

__all__ = ["audio_envelope", "corpus_av_lags", "estimate_av_lag", "flag_outliers", "mouth_opening"]


def audio_envelope(
    samples: np.ndarray,
    sr: int,
    times: np.ndarray,
    window_s: float = 0.04,
    band_hz: tuple[float, float] | None = (300.0, 3000.0),
    floor_db: float | None = 40.0,
) -> np.ndarray:
    """Log RMS energy (dB) of ``window_s`` of audio centred on each time.

    The speech band (``band_hz``, 300-3000 Hz: the formants that change with mouth
    shape) is kept, so hum and rumble do not count as loudness, and levels more than
    ``floor_db`` below the loudest are clipped, so the depth of silence does not matter.
    On real talking-head clips both made the lag estimate agree across variants.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if band_hz is not None and len(samples) > 64:
        from scipy.signal import butter, sosfiltfilt

        high = min(band_hz[1], 0.45 * sr)
        sos = butter(4, [band_hz[0], high], btype="band", fs=sr, output="sos")
        samples = sosfiltfilt(sos, samples)
    cumulative = np.concatenate([[0.0], np.cumsum(samples**2)])
    half = max(int(round(window_s * sr / 2)), 1)
    centres = np.round(np.asarray(times) * sr).astype(np.int64)
    lo = np.clip(centres - half, 0, len(samples))
    hi = np.clip(centres + half, 0, len(samples))
    power = (cumulative[hi] - cumulative[lo]) / np.maximum(hi - lo, 1)
    level = 10 * np.log10(power + 1e-10)
    if floor_db is not None and len(level):
        level = np.maximum(level, level.max() - floor_db)
    return level


def _zscore(x: np.ndarray) -> np.ndarray:
    std = x.std()
    return (x - x.mean()) / std if std > 0 else x * 0.0


def estimate_av_lag(
    frame_times: np.ndarray,
    opening: np.ndarray,
    samples: np.ndarray,
    sr: int,
    max_lag_ms: float = 300.0,
    step_ms: float = 5.0,
) -> dict:
    """``{"lag_ms", "correlation", "seconds", "at_limit"}`` for one clip (module doc).

    ``opening`` is per frame (NaN = missing frame, bridged by interpolation). Returns NaN
    lag and correlation when fewer than 0.5 s of usable frames or a flat signal.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    opening = np.asarray(opening, dtype=np.float64)
    good = np.isfinite(opening) & np.isfinite(frame_times)
    audio_end = len(samples) / sr
    nan = {"lag_ms": np.nan, "correlation": np.nan, "seconds": 0.0, "at_limit": False}
    if good.sum() < 2:
        return nan
    start, end = frame_times[good][0], min(frame_times[good][-1], audio_end)
    if end - start < 0.5:
        return {**nan, "seconds": max(end - start, 0.0)}
    step = step_ms / 1000
    grid = np.arange(start, end, step)
    video = _zscore(np.interp(grid, frame_times[good], opening[good]))
    audio = _zscore(audio_envelope(samples, sr, grid))
    if not video.any() or not audio.any():
        return {**nan, "seconds": end - start}
    max_shift = int(round(max_lag_ms / step_ms))
    best_lag, best_r = 0, -np.inf
    for shift in range(-max_shift, max_shift + 1):
        # opening at t + shift pairs with audio at t: positive shift = video late.
        if shift >= 0:
            a, v = audio[: len(audio) - shift], video[shift:]
        else:
            a, v = audio[-shift:], video[: len(video) + shift]
        if len(a) < 0.5 * len(audio):
            continue
        r = float(np.corrcoef(a, v)[0, 1])
        if r > best_r:
            best_lag, best_r = shift, r
    return {
        "lag_ms": best_lag * step_ms,
        "correlation": best_r,
        "seconds": end - start,
        "at_limit": abs(best_lag) == max_shift,
    }


def flag_outliers(
    lags: pd.DataFrame, min_correlation: float = 0.2, mad_factor: float = 3.0, min_ms: float = 40.0
) -> pd.DataFrame:
    """Add ``weak`` (correlation below ``min_correlation``, or best lag at the edge of
    the search range (``at_limit``): the lag is not trustworthy) and ``outlier``
    (trustworthy lag farther than max(``mad_factor`` x robust std, ``min_ms``) from the
    corpus median) columns to a ``lag_ms, correlation[, at_limit]`` table."""
    out = lags.copy()
    out["weak"] = ~(out["correlation"] >= min_correlation)
    if "at_limit" in out.columns:
        out["weak"] |= out["at_limit"].astype(bool)
    trusted = out.loc[~out["weak"], "lag_ms"]
    if len(trusted) == 0:
        out["outlier"] = False
        return out
    median = float(trusted.median())
    robust_std = 1.4826 * float((trusted - median).abs().median())
    limit = max(mad_factor * robust_std, min_ms)
    out["outlier"] = ~out["weak"] & ((out["lag_ms"] - median).abs() > limit)
    return out


def corpus_av_lags(corpus: str, max_lag_ms: float = 300.0, root=None) -> pd.DataFrame:
    """Lag per ``ok`` clip of an extracted corpus (``clip_id, lag_ms, correlation,
    seconds, weak, outlier``); a clip whose files cannot be read is warned about and left
    out."""
    from tqdm.auto import tqdm

    from wav2kp.extraction.reader import read_extraction
    from wav2kp.features.splits import ok_clips
    from wav2kp.media.audio import load_audio
    from wav2kp.paths import CorpusPaths

    paths = CorpusPaths(corpus, root)
    rows = []
    for cid in tqdm(ok_clips(corpus, root)["clip_id"].astype(str), desc="A/V lag", unit="clip"):
        try:
            extraction = read_extraction(paths.extracted / f"{cid}.npz")
            samples, sr = load_audio(paths.audio / f"{cid}.wav")
        except (OSError, ValueError) as exc:
            warnings.warn(f"A/V lag: clip {cid} skipped: {exc}", stacklevel=2)
            continue
        opening = np.where(extraction.valid, mouth_opening(extraction.lm68), np.nan)
        result = estimate_av_lag(extraction.times, opening, samples, sr, max_lag_ms)
        rows.append({"clip_id": cid, **result})
    table = pd.DataFrame(rows, columns=["clip_id", "lag_ms", "correlation", "seconds", "at_limit"])
    return flag_outliers(table)


# Search range of the per-clip lag for the correction: on GRID's 3 s sentences a
# +-300 ms search lets about a quarter of the clips jump to a neighbouring syllable;
# within +-120 ms the lags stay near the corpus median (``python -m wav2kp.studies
# lags --corpus grid`` prints both).
CORRECTION_MAX_LAG_MS = 120.0


def clip_lags(clips, max_lag_ms: float = CORRECTION_MAX_LAG_MS) -> pd.DataFrame:
    """``flag_outliers`` table of ``ClipData`` (their audio files and landmarks)."""
    from wav2kp.media.audio import load_audio

    rows = []
    for clip in clips:
        if clip.audio_path is None:
            continue
        try:
            samples, sr = load_audio(clip.audio_path)
        except (OSError, ValueError, RuntimeError) as exc:
            warnings.warn(f"A/V lag: clip {clip.clip_id} skipped: {exc}", stacklevel=2)
            continue
        truth = np.where(np.asarray(clip.valid)[:, None, None], clip.landmarks, np.nan)
        opening = mouth_opening(truth)
        result = estimate_av_lag(clip.frame_times, opening, samples, sr, max_lag_ms)
        rows.append({"clip_id": clip.clip_id, **result})
    table = pd.DataFrame(rows, columns=["clip_id", "lag_ms", "correlation", "seconds", "at_limit"])
    return flag_outliers(table)
