"""Benchmark: the phonetic stream's phones (allphone, no transcript) against the forced
alignment of the transcript, and its speed.

On GRID sentences of ``../shared/grid-s1`` (manifest text; 40 sentences, 8 with
``quick``) and the 5 of ``../shared/grid-s2`` (a speaker the model never heard), per
12.5 ms feature frame: the share of frames where the decoded viseme class equals the
aligned one (all frames; speech frames only), the speech/silence agreement, and seconds of
decoding per second of audio (one core; a fresh decoder per utterance, as the features
use it). Allphone decoding is the only phone source at test time; forced alignment needs
the transcript.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.config import FeatureConfig


def _sentences(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return pd.DataFrame()
    table = pd.read_csv(manifest)
    return table.sample(min(n, len(table)), random_state=seed).sort_values("file")


def agreement(samples: np.ndarray, text: str, source: str) -> dict:
    """Frame agreement of allphone with the forced alignment for one utterance."""
    from wav2kp.features.phonetic import aligned_phones, allphone_segments, phonetic_frames

    times = np.arange(len(samples) // FeatureConfig().hop_length) * FeatureConfig().hop_seconds
    start = time.perf_counter()
    decoded = allphone_segments(samples)
    seconds = time.perf_counter() - start
    hyp = phonetic_frames(decoded, times)[:, :-1].argmax(axis=1)
    ref = phonetic_frames(aligned_phones(samples, text, source=source), times)[:, :-1]
    ref = ref.argmax(axis=1)
    speech = ref != 0  # class 0 is silence
    return {
        "viseme_agreement": float((hyp == ref).mean()),
        "speech_viseme_agreement": float((hyp[speech] == ref[speech]).mean()),
        "speech_silence_agreement": float(((hyp != 0) == speech).mean()),
        "decode_seconds": seconds,
        "audio_seconds": len(samples) / 16000,
    }


def run(quick: bool = False) -> dict:
    from wav2kp.media.audio import load_audio
    from wav2kp.paths import project_root

    shared = project_root().parent / "shared"
    sets = {"grid-s1": _sentences(shared / "grid-s1", 8 if quick else 40),
            "grid-s2": _sentences(shared / "grid-s2", 5)}  # fmt: skip
    out: dict = {}
    for name, table in sets.items():
        if table.empty:
            print(f"{name}: not available under {shared}; skipped")
            continue
        rows = []
        for row in table.itertuples():
            samples, _ = load_audio(shared / name / row.file, sample_rate=16000)
            rows.append(agreement(samples, row.text, f"{name}/{row.file}"))
        frame = pd.DataFrame(rows)
        summary = {
            "sentences": len(frame),
            **{k: round(float(frame[k].mean()), 3) for k in
               ("viseme_agreement", "speech_viseme_agreement", "speech_silence_agreement")},
            "decode_x_real_time": round(float(frame.audio_seconds.sum() / frame.decode_seconds.sum()), 1),
        }  # fmt: skip
        out[name] = summary
        print(f"{name}: {summary}")
    return out
