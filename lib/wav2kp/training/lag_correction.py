"""A/V lag correction at training time (``TrainConfig.av_correction``): each training clip's
keypoint times moved so that its audio-visual lag (``wav2kp.features.sync``) equals the
corpus median, its windows rebuilt at the new times."""

from __future__ import annotations

import dataclasses

import numpy as np

from wav2kp.config import WindowConfig
from wav2kp.features.sync import CORRECTION_MAX_LAG_MS, clip_lags
from wav2kp.windowing.dataset import LazyWindows
from wav2kp.windowing.windowing import window_indices


def lag_corrected(clips, max_lag_ms: float = CORRECTION_MAX_LAG_MS) -> list:
    """The clips with each one's keypoint times moved so that its A/V lag equals the
    median of the trusted lags (weak and implausible lags: left as they are); windows
    are rebuilt at the new times, targets stay with their frames."""
    table = clip_lags(clips, max_lag_ms)
    trusted = table[~table["weak"] & ~table["outlier"]]
    if trusted.empty:
        return list(clips)
    median = float(trusted["lag_ms"].median())
    shifts = {str(r.clip_id): (float(r.lag_ms) - median) / 1000 for r in trusted.itertuples()}
    out = []
    for clip in clips:
        shift = shifts.get(clip.clip_id, 0.0)
        if shift == 0.0:
            out.append(clip)
            continue
        # a video late by ``shift`` s: frame k shows the mouth of the sound at t_k - shift
        times = np.asarray(clip.frame_times, np.float64) - shift
        window = WindowConfig.from_dict(clip.extra.get("window_config", WindowConfig().to_dict()))
        windows = LazyWindows(clip.features, *window_indices(clip.feature_times, times, window),
                              window.pad)  # fmt: skip
        out.append(dataclasses.replace(clip, frame_times=times, windows=windows,
                                       extra={**clip.extra, "av_shift_s": shift}))  # fmt: skip
    return out
