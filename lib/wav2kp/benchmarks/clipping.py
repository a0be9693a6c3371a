"""Benchmark: how much clipping real speech takes before the predicted mouth stops
following it; the measurement behind ``wav2kp.predict.predict.CLIPPED_REFUSE``.

``wav2kp bench clipping``: real recordings (sentences of GRID speaker 1 from
``../shared/grid-s1`` and the audio of every file of ``../shared/realclips``), each driven
into hard clipping by the gain that puts a given share of its samples at full scale
(``LEVELS``: 0 to 50 %, as ``predict`` counts them: ``clipped_share`` on the file's own
samples), then heard as ``predict`` hears it (``model_samples``) and predicted by the model
``predict`` uses by default, exactly as it runs it (``predict_track``, the checkpoint's
silence gate included). Per level and file: the correlation of the predicted mouth opening
with the one predicted from the same file unclipped, and the ratio of their variances;
printed as the median and the worst file per level. The refusal threshold is the lowest
level whose median file falls below ``R_BOUND``.

Without a trained model under data/models/ (``make model-grid``) the numbers are those of a
tiny model trained here on synthetic speech, and say so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

LEVELS = (0.0, 0.01, 0.02, 0.05, 0.10, 0.20, 0.30, 0.50)  # shares of samples clipped
R_BOUND = 0.9  # the median file's r with its unclipped prediction must stay at or above this
GRID_SENTENCES = 16  # spread over the corpus (every k-th sentence); --quick: 4
AUDIO_SUFFIXES = (".wav", ".mp4", ".mpg", ".m4a", ".flac", ".mp3")


def clipping_gain(native: np.ndarray, share: float) -> float:
    """The gain after which ``share`` of the samples of ``native`` (N, C) reach full scale
    (``wav2kp.predict.predict.CLIP_LEVEL`` in any channel); 1 for a share of 0."""
    from wav2kp.predict.predict import CLIP_LEVEL

    if share <= 0:
        return 1.0
    peaks = np.abs(native).max(axis=-1)
    level = float(np.quantile(peaks, 1.0 - share, method="higher"))
    return CLIP_LEVEL / max(level, 1e-9)


def clip_hard(native: np.ndarray, gain: float) -> np.ndarray:
    """``native`` amplified by ``gain`` and cut at full scale, as an overdriven recorder does."""
    return np.clip(native * gain, -1.0, 1.0).astype(np.float32)


def speech_files(quick: bool = False) -> list[Path]:
    """The real recordings measured: every k-th GRID s1 sentence and every realclips file."""
    from wav2kp.paths import shared_realclips

    realclips = shared_realclips()
    grid = sorted((realclips.parent / "grid-s1").glob("*.mp4"))
    count = 4 if quick else GRID_SENTENCES
    step = max(1, len(grid) // count)
    chosen = grid[::step][:count]
    others = sorted(p for p in realclips.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return chosen + (others[:2] if quick else others)


def default_model(quick: bool):
    """(predictor, description): the model ``wav2kp predict`` uses by default, else a tiny
    one trained on synthetic speech (said in the description)."""
    from wav2kp.predict.errors import PredictError
    from wav2kp.predict.predict import load_checkpoint_for_predict

    try:
        predictor, path = load_checkpoint_for_predict(None)
        return predictor, str(path)
    except PredictError:
        from wav2kp.benchmarks.predict import tiny_checkpoint

        folder = Path(tempfile.mkdtemp(prefix="wav2kp-bench-clipping-"))
        path = tiny_checkpoint(folder / "model", epochs=2 if quick else 6)
        predictor, _ = load_checkpoint_for_predict(path)
        return predictor, (f"{path} (no trained model under data/models: a tiny model on "
                           "synthetic speech; `make model-grid` for the real one)")  # fmt: skip


def mouth_track(predictor, native: np.ndarray, native_rate: int, speaker: str) -> np.ndarray:
    """The predicted mouth opening (T,) of a file's samples, as ``wav2kp predict`` runs it."""
    from wav2kp import metrics
    from wav2kp.predict.predict import NTSC_FPS, model_samples, predict_track

    samples = model_samples(native, native_rate)
    _, landmarks = predict_track(predictor, samples, 16000, NTSC_FPS, speaker)
    return metrics.mouth_opening(landmarks)


def measure(predictor, files, levels=LEVELS, speaker: str = "") -> list[dict]:
    """One row per file and level: the share clipped, r and the variance ratio of the
    mouth opening against the file's unclipped prediction."""
    from wav2kp.media.audio import load_audio
    from wav2kp.predict.predict import clipped_share

    rows = []
    for path in files:
        native, rate = load_audio(path, sample_rate=None, mono=False)
        reference = mouth_track(predictor, native, rate, speaker)
        own = clipped_share(native)
        for level in levels:
            clipped = clip_hard(native, clipping_gain(native, level))
            opening = mouth_track(predictor, clipped, rate, speaker)
            r = float(np.corrcoef(reference, opening)[0, 1]) if opening.std() > 0 else 0.0
            rows.append({
                "file": Path(path).name, "level": level, "own_share": own,
                "share": clipped_share(clipped), "r": r,
                "variance_ratio": float(opening.var() / max(reference.var(), 1e-12)),
            })  # fmt: skip
    return rows


def summarise(rows: list[dict], bound: float = R_BOUND) -> tuple[list[dict], float | None]:
    """Per level: files, median share, median and worst r, median variance ratio; and the
    threshold: the lowest level whose median r is below ``bound`` (None: none is)."""
    table, threshold = [], None
    for level in dict.fromkeys(row["level"] for row in rows):
        mine = [row for row in rows if row["level"] == level]
        r = np.array([row["r"] for row in mine])
        median_r = float(np.median(r))
        table.append({
            "level": level, "files": len(mine),
            "share": float(np.median([row["share"] for row in mine])),
            "median_r": median_r, "worst_r": float(r.min()),
            "variance_ratio": float(np.median([row["variance_ratio"] for row in mine])),
        })  # fmt: skip
        if threshold is None and median_r < bound:
            threshold = float(level)
    return table, threshold


def markdown(table: list[dict], threshold: float | None, bound: float = R_BOUND) -> str:
    lines = ["| clipped share (target) | files | clipped share (measured, median) | "
             "r with unclipped (median) | r (worst file) | variance ratio (median) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for row in table:
        lines.append(f"| {100 * row['level']:g} % | {row['files']} | {100 * row['share']:.2f} % | "
                     f"{row['median_r']:.3f} | {row['worst_r']:.3f} | "
                     f"{row['variance_ratio']:.2f} |")  # fmt: skip
    lines.append("")
    lines.append(
        f"refusal threshold (lowest level whose median r < {bound:g}): "
        + ("none of these levels" if threshold is None else f"{100 * threshold:g} %")
    )
    return "\n".join(lines)


def run(quick: bool = False) -> dict:
    import torch

    from wav2kp.predict.predict import CLIPPED_REFUSE
    from wav2kp.predict.references import checkpoint_speakers

    torch.set_num_threads(1)  # small models; kind to a shared machine
    files = speech_files(quick)
    if not files:
        print("no real speech found (../shared/grid-s1, ../shared/realclips): nothing to measure")
        return {"files": 0}
    predictor, description = default_model(quick)
    speakers = checkpoint_speakers(predictor)
    speaker = speakers[0] if speakers else ""
    print(f"model: {description}")
    print(f"{len(files)} files: {', '.join(p.name for p in files)}")
    rows = measure(predictor, files, LEVELS, speaker)
    table, threshold = summarise(rows)
    print(markdown(table, threshold))
    print(f"wav2kp.predict.predict.CLIPPED_REFUSE = {100 * CLIPPED_REFUSE:g} %"
          + ("" if threshold == CLIPPED_REFUSE else " (differs from this measurement)"))  # fmt: skip
    return {"model": description, "levels": table, "threshold": threshold,
            "clipped_refuse": CLIPPED_REFUSE, "rows": rows}  # fmt: skip
