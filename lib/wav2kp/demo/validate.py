"""Detector check of a demo corpus: does MediaPipe face mesh see the commanded mouth?

For every clip: decode frames, track the face, measure the inner-lip gap (mesh points 13
and 14) divided by the inter-ocular distance (iris centres 468, 473), and correlate it
with the commanded jaw opening in ``<clip_id>.tracks.csv``. Reports the detection rate
and Pearson r per clip and overall (over all frames pooled).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

UPPER_INNER, LOWER_INNER = 13, 14
LEFT_IRIS, RIGHT_IRIS = 468, 473


def measured_gaps(video: str | os.PathLike, every: int = 1) -> pd.DataFrame:
    """Per decoded frame: frame index, time, detected flag, normalised inner-lip gap."""
    from wav2kp.extraction.facemesh import FaceMeshTracker
    from wav2kp.media.decode import iter_frames

    rows = []
    with FaceMeshTracker(max_faces=1) as tracker:
        for k, (time, rgb) in enumerate(iter_frames(video, threads=1)):
            if k % every:
                continue
            pts = tracker.process(rgb)
            if pts is None:
                rows.append((k, time, False, np.nan))
                continue
            iod = float(np.linalg.norm(pts[LEFT_IRIS, :2] - pts[RIGHT_IRIS, :2]))
            gap = float(np.linalg.norm(pts[UPPER_INNER, :2] - pts[LOWER_INNER, :2]))
            rows.append((k, time, True, gap / max(iod, 1e-6)))
    return pd.DataFrame(rows, columns=["frame", "time", "detected", "lip_gap"])


def check_clip(video: str | os.PathLike, tracks_file: str | os.PathLike) -> dict:
    """Detection rate and r(measured lip gap, commanded jaw) for one clip."""
    video, tracks_file = Path(video), Path(tracks_file)
    measured = measured_gaps(video)
    tracks = pd.read_csv(tracks_file)
    if len(measured) != len(tracks):
        raise ValueError(
            f"{video}: {len(measured)} decoded frames but {len(tracks)} rows in {tracks_file}"
        )
    both = measured.assign(jaw=tracks["jaw"].to_numpy())
    found = both[both["detected"]]
    r = _pearson(found["lip_gap"].to_numpy(), found["jaw"].to_numpy())
    return {
        "frames": int(len(both)),
        "detection_rate": float(both["detected"].mean()) if len(both) else 0.0,
        "r_jaw": r,
        "_pairs": found[["lip_gap", "jaw"]].to_numpy(),
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def validate_corpus(
    folder: str | os.PathLike, clips: list[str] | None = None, progress: bool = True
) -> tuple[pd.DataFrame, dict]:
    """Per-clip table (clip_id, frames, detection_rate, r_jaw, error) and overall numbers
    (``detection_rate`` over all frames, ``r_jaw`` over all detected frames pooled,
    ``r_jaw_median`` over clips). A clip that cannot be read is reported, not fatal."""
    from tqdm.auto import tqdm

    folder = Path(folder)
    manifest = pd.read_csv(folder / "manifest.csv")
    if clips is not None:
        manifest = manifest[manifest["clip_id"].isin(clips)]
    rows, pairs = [], []
    for rec in tqdm(manifest.to_dict("records"), desc="detector check", disable=not progress):
        row = {"clip_id": rec["clip_id"], "error": ""}
        try:
            res = check_clip(folder / rec["file"], folder / rec["tracks_file"])
            pairs.append(res.pop("_pairs"))
            row.update(res)
        except Exception as exc:  # noqa: BLE001 - reported per clip, the check carries on
            row.update(frames=0, detection_rate=np.nan, r_jaw=np.nan, error=str(exc))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["clip_id", "frames", "detection_rate", "r_jaw", "error"])
    pooled = np.concatenate(pairs) if pairs else np.zeros((0, 2))
    total = table["frames"].sum()
    overall = {
        "clips": int(len(table)),
        "frames": int(total),
        "detection_rate": float((table["frames"] * table["detection_rate"]).sum() / total)
        if total
        else 0.0,
        "r_jaw": _pearson(pooled[:, 0], pooled[:, 1]) if len(pooled) else float("nan"),
        "r_jaw_median": float(table["r_jaw"].median()),
        "errors": int((table["error"] != "").sum()),
    }
    return table, overall
