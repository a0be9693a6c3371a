"""What people would rather look at than a table: metric plots, mouth-opening traces over
the waveform, and side-by-side videos (real frame | true keypoints | predicted keypoints,
drawn as vid2vid edge maps) with the clip's audio, like the original project's results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from wav2kp import metrics

# a clip to draw: a ``wav2kp.windowing.dataset.ClipData``, taken by its fields (plots sit
# below the stages, so they import none of them)
ClipData = Any


log = logging.getLogger(__name__)

METRIC_LABELS = {
    "mouth_lmd_iod": "mouth LMD (IOD)",
    "mouth_lmd_px256": "mouth LMD (px @256)",
    "face_lmd_iod": "face LMD (IOD)",
    "face_lmd_px256": "face LMD (px @256)",
    "lvd_mouth_iod": "mouth LVD (IOD/frame)",
    "lve_iod2": "lip vertex error (IOD²)",
    "mouth_open_r": "mouth-opening r",
    "variance_ratio": "variance ratio",
    "mouth_jitter_ratio": "mouth jitter ratio",
    "syllable_band_ratio": "syllable-band ratio",
    "bilabial_closure_rate": "bilabial closures",
    "av_offset_ms": "A/V offset (ms)",
    "mouth_crop_px": "mouth error (crop px)",
    "face_crop_px": "face error (crop px)",
    "lve_crop_px2": "lip vertex error (crop px²)",
}
# Where the ideal value lies, drawn as a dashed reference line.
IDEAL = {
    "mouth_open_r": 1.0,
    "variance_ratio": 1.0,
    "mouth_jitter_ratio": 1.0,
    "syllable_band_ratio": 1.0,
    "av_offset_ms": 0.0,
}
PANEL = 256


def plot_metrics(
    df: pd.DataFrame,
    metric_names: Sequence[str] | None = None,
    order: Sequence[str] | None = None,
    columns: int = 3,
):
    """One box plot per metric (a point per clip) across models; dashed line = ideal."""
    # a space's table holds only its own measures: the other space's are all NaN
    metric_names = [
        m for m in (metric_names or METRIC_LABELS) if m in df.columns and df[m].notna().any()
    ]
    order = list(order) if order else list(dict.fromkeys(df["model"]))
    rows = -(-len(metric_names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    palette = dict(zip(order, sns.color_palette("deep", len(order)), strict=True))
    for ax, metric in zip(axes.flat, metric_names, strict=False):
        data = df[df["model"].isin(order)]
        sns.boxplot(
            data=data, x="model", y=metric, hue="model", order=order, palette=palette,
            ax=ax, showfliers=False, legend=False,
        )  # fmt: skip
        sns.stripplot(data=data, x="model", y=metric, order=order, color="0.2", size=3, ax=ax)
        if metric in IDEAL:
            ax.axhline(IDEAL[metric], color="0.4", linestyle="--", linewidth=1)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=30)
    for ax in axes.flat[len(metric_names) :]:
        ax.remove()
    fig.tight_layout()
    return fig


def plot_by_group(
    df: pd.DataFrame,
    metric_names: Sequence[str] = ("mouth_open_r", "mouth_lmd_iod", "variance_ratio"),
    by: str = "emotion",
    order: Sequence[str] | None = None,
):
    """Per-``by`` (emotion or speaker) means with 95 % intervals over clips, one bar per
    model, one panel per metric."""
    metric_names = [m for m in metric_names if m in df.columns]
    order = list(order) if order else list(dict.fromkeys(df["model"]))
    groups = sorted(df[by].dropna().unique())
    fig, axes = plt.subplots(
        1, len(metric_names), figsize=(max(5, 0.9 * len(groups) + 2.5) * len(metric_names) / 1.6, 3.6),
        squeeze=False,
    )  # fmt: skip
    for k, (ax, metric) in enumerate(zip(axes[0], metric_names, strict=True)):
        sns.barplot(
            data=df[df["model"].isin(order)], x=by, y=metric, hue="model", hue_order=order,
            order=groups, errorbar=("ci", 95), ax=ax, legend=k == len(metric_names) - 1,
        )  # fmt: skip
        if metric in IDEAL:
            ax.axhline(IDEAL[metric], color="0.4", linestyle="--", linewidth=1)
        ax.set_title(f"{METRIC_LABELS.get(metric, metric)} by {by}")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=30)
    if axes[0, -1].get_legend() is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1, 1), fontsize=8)
    fig.tight_layout()
    return fig


def plot_lag_curves(curves: pd.DataFrame, order: Sequence[str] | None = None):
    """Correlation of predicted with true mouth opening against the lag (ms; positive =
    prediction late), mean over clips with a 95 % band; the peak is the A/V offset."""
    data = curves.dropna(subset=["r"])
    order = list(order) if order else list(dict.fromkeys(data["model"]))
    order = [m for m in order if m in set(data["model"])]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    sns.lineplot(data=data, x="lag_ms", y="r", hue="model", hue_order=order,
                 errorbar=("ci", 95), marker="o", ax=ax)  # fmt: skip
    ax.axvline(0, color="0.4", linestyle="--", linewidth=1)
    ax.set_xlabel("lag of the prediction (ms, + = late)")
    ax.set_ylabel("mouth-opening r")
    ax.set_title("A/V offset: correlation against lag")
    fig.tight_layout()
    return fig


def plot_intervals(
    summary: pd.DataFrame,
    metric_names: Sequence[str] = metrics.MOUTH_METRICS,
    space: str = "aligned",
    order: Sequence[str] | None = None,
):
    """One panel per metric, one row per model (``wav2kp.evaluation.results.summarise`` output):
    the estimate (dot), its 95 % bootstrap interval over test sentences (thick bar) and
    the range of the per-seed means (thin bar); dashed line = ideal. A metric the summary
    does not measure (an older results file, clips without transcripts) gets no panel."""
    data = summary[(summary["space"] == space) & summary["metric"].isin(metric_names)]
    measured = set(data.loc[np.isfinite(data["estimate"].astype(float)), "metric"])
    metric_names = [m for m in metric_names if m in measured]
    if not metric_names:
        raise ValueError(f"the summary measures none of the metrics to plot in space {space!r}")
    order = list(order) if order else list(dict.fromkeys(data["model"]))
    order = [m for m in order if m in set(data["model"])]
    fig, axes = plt.subplots(1, len(metric_names), figsize=(3.4 * len(metric_names), 0.45 * len(order) + 1.4),
                             sharey=True, squeeze=False)  # fmt: skip
    colours = dict(zip(order, sns.color_palette("deep", len(order)), strict=True))
    for ax, metric in zip(axes[0], metric_names, strict=True):
        rows = data[data["metric"] == metric].set_index("model")
        for y, model in enumerate(order):
            if model not in rows.index or not np.isfinite(rows.loc[model, "estimate"]):
                continue
            row = rows.loc[model]
            ax.plot([row["seed_min"], row["seed_max"]], [y, y], color=colours[model], linewidth=1)
            ax.plot([row["low"], row["high"]], [y, y], color=colours[model], linewidth=5,
                    alpha=0.45, solid_capstyle="butt")  # fmt: skip
            ax.plot(row["estimate"], y, "o", color=colours[model])
        if metric in IDEAL:
            ax.axvline(IDEAL[metric], color="0.4", linestyle="--", linewidth=1)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_yticks(range(len(order)), order)
        ax.set_ylim(len(order) - 0.5, -0.5)
    fig.tight_layout()
    return fig


def load_waveform(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float waveform and its rate (soundfile; torchaudio does no file I/O here)."""
    import soundfile as sf

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise ValueError(f"{path}: cannot read audio: {err}") from err
    return audio.mean(axis=1), int(rate)


def plot_mouth_traces(
    clip: ClipData,
    predictions: Mapping[str, np.ndarray],
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
):
    """Mouth opening (inner-lip gap / IOD) over time for the truth and each model,
    with the waveform underneath on the same time axis. Missing GT frames are gaps."""
    if audio is None and clip.audio_path is not None and Path(clip.audio_path).exists():
        audio, sample_rate = load_waveform(clip.audio_path)
    has_audio = audio is not None and sample_rate
    fig, axes = plt.subplots(
        2 if has_audio else 1, 1, figsize=(11, 4.5 if has_audio else 3), sharex=True,
        squeeze=False, gridspec_kw={"height_ratios": [3, 1]} if has_audio else None,
    )  # fmt: skip
    ax = axes[0, 0]
    valid = metrics.valid_frames(clip.landmarks, clip.valid)
    times = clip.frame_times
    true_open = np.where(valid, metrics.mouth_opening(clip.landmarks), np.nan)
    ax.plot(times, true_open, color="black", linewidth=2, label="true")
    top = 2.0 * np.nanmax(true_open) if np.isfinite(true_open).any() else None
    clipped = []
    for name, pred in predictions.items():
        opening = np.where(valid, metrics.mouth_opening(pred), np.nan)
        r = metrics.mouth_opening_correlation(pred, clip.landmarks, clip.valid)
        ax.plot(times, opening, linewidth=1.2, label=f"{name} (r={r:.2f})")
        if top is not None and np.nanmax(opening, initial=0.0) > top:
            clipped.append(name)
    if clipped:  # one wild model must not flatten everyone else's trace
        ax.set_ylim(0, top)
        ax.text(0.01, 0.97, f"clipped at 2x the true maximum: {', '.join(clipped)}",
                transform=ax.transAxes, va="top", fontsize=8, color="0.3")  # fmt: skip
    ax.set_ylabel("mouth opening (IOD)")
    ax.set_title(f"{clip.clip_id}  ({clip.speaker}, {clip.emotion}, {clip.split})")
    ax.legend(loc="upper right", fontsize=8, ncol=2)
    if has_audio:
        wave_ax = axes[1, 0]
        audio = np.asarray(audio, dtype=np.float32)
        step = max(1, len(audio) // 20000)  # plotting every sample of long audio is slow
        wave_ax.plot(np.arange(0, len(audio), step) / sample_rate, audio[::step],
                     color="0.35", linewidth=0.5)  # fmt: skip
        wave_ax.set_ylabel("audio")
        wave_ax.set_yticks([])
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(times[0], times[-1])
    fig.tight_layout()
    return fig


def _edge_image(points: np.ndarray, size) -> np.ndarray:
    """vid2vid's edge map (wav2kp.plots.edgemap); plain polylines of the same face parts if the
    curve fit fails on a degenerate piece, so one odd frame cannot stop a video."""
    from wav2kp.plots.edgemap import FACE_PARTS, draw_edge_map, with_forehead

    try:
        return draw_edge_map(points, size)
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as err:
        log.warning("edge map fit failed on one frame (%s); drawing polylines instead", err)
    width, height = size
    image = np.zeros((height, width), np.uint8)
    full = with_forehead(points)
    for _, _, edges in FACE_PARTS:
        for edge in edges:
            cv2.polylines(image, [full[list(edge)].astype(np.int32)], False, 255, 2)
    return image


def _edge_panel(points: np.ndarray, size, box, color) -> np.ndarray:
    from wav2kp.plots.edgemap import crop_and_resize

    if not np.isfinite(points).all():
        panel = np.zeros((PANEL, PANEL, 3), np.uint8)
        cv2.putText(panel, "missing", (80, 135), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (90, 90, 90), 2)
        return panel
    edges = crop_and_resize(_edge_image(points, size), box, PANEL)
    return (edges[..., None].astype(np.float32) / 255.0 * np.asarray(color)).astype(np.uint8)


def label_panel(panel: np.ndarray, text: str) -> np.ndarray:
    """``panel`` under a dark bar with ``text`` (the side-by-side videos' panel titles)."""
    bar = np.full((32, panel.shape[1], 3), 30, np.uint8)
    cv2.putText(bar, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])


def frames_at_times(video_path: str | os.PathLike, frame_times: np.ndarray):
    """Yield, for each of ``frame_times``, the decoded video frame nearest in time (RGB).

    Streams the video (memory stays at two frames), so the keypoint frames are matched to
    the pictures by their real timestamps, not by an assumed frame rate."""
    from wav2kp.media.decode import iter_frames

    wanted = np.asarray(frame_times, dtype=np.float64)
    decoded = iter_frames(video_path)
    try:
        prev_time, prev_frame = next(decoded)
    except StopIteration:
        raise ValueError(f"{video_path}: no video frame could be decoded") from None
    next_item = next(decoded, None)
    for target in wanted:
        while next_item is not None and abs(next_item[0] - target) <= abs(prev_time - target):
            prev_time, prev_frame = next_item
            next_item = next(decoded, None)
        yield prev_frame
    decoded.close()


PREDICTION_COLOURS = ((120, 230, 255), (255, 200, 90), (150, 255, 150), (255, 140, 200))


def _as_predictions(clip: ClipData, predictions) -> dict[str, np.ndarray]:
    if not isinstance(predictions, Mapping):
        predictions = {"predicted": predictions}
    out = {}
    for name, pred in predictions.items():
        pred = np.asarray(pred, dtype=np.float64)
        if pred.shape != clip.landmarks.shape:
            raise ValueError(
                f"clip {clip.clip_id}: {name} prediction shape {pred.shape} != "
                f"{clip.landmarks.shape}"
            )
        out[str(name)] = pred
    if not out:
        raise ValueError(f"clip {clip.clip_id}: no prediction to draw")
    return out


def _canvas_size(clip: ClipData) -> tuple[int, int]:
    """(width, height) to draw on: the source frame's, or (clips built from audio alone
    carry none) a canvas that holds every true keypoint with a margin."""
    width, height = (int(v) for v in clip.frame_size)
    if width > 0 and height > 0:
        return width, height
    extent = np.nanmax(np.asarray(clip.landmarks, dtype=np.float64), axis=(0, 1))
    if not np.isfinite(extent).all():
        raise ValueError(f"clip {clip.clip_id}: no frame size and no keypoint to size a canvas")
    return int(extent[0] * 1.25) + 2, int(extent[1] * 1.25) + 2


def side_by_side_frames(
    clip: ClipData,
    predictions: Mapping[str, np.ndarray] | np.ndarray,
    video_frames: Iterable[np.ndarray] | None = None,
):
    """Yield (32 + 256, 256 * (2 + n), 3) RGB frames: real frame | true keypoints | each
    model's predicted keypoints, drawn as vid2vid edge maps, all cropped with vid2vid's
    face box (set on the first complete true frame) and resized to 256 px.

    ``predictions``: {model name: (T, 68, 2)} (or one array). ``video_frames``: RGB
    frames, one per keypoint frame (e.g. :func:`frames_at_times`); None gives a blank
    first panel."""
    from wav2kp.plots.edgemap import crop_and_resize, crop_box, first_complete_frame

    predictions = _as_predictions(clip, predictions)
    if isinstance(video_frames, Sequence) and len(video_frames) != clip.n_frames:
        raise ValueError(
            f"clip {clip.clip_id}: {len(video_frames)} video frames for {clip.n_frames} "
            "keypoint frames"
        )
    size = _canvas_size(clip)
    box = crop_box(clip.landmarks[first_complete_frame(clip.landmarks)], size)
    true = np.where(np.asarray(clip.valid)[:, None, None], clip.landmarks, np.nan)
    pictures = iter(video_frames) if video_frames is not None else None
    for i in range(clip.n_frames):
        picture = next(pictures, None) if pictures is not None else None
        if picture is not None:
            real = crop_and_resize(np.asarray(picture, np.uint8), box, PANEL)
        else:
            real = np.full((PANEL, PANEL, 3), 60, np.uint8)
        panels = [
            label_panel(real, "video"),
            label_panel(_edge_panel(true[i], size, box, (255, 255, 255)), "true keypoints"),
        ]
        for k, (name, pred) in enumerate(predictions.items()):
            colour = PREDICTION_COLOURS[k % len(PREDICTION_COLOURS)]
            panels.append(label_panel(_edge_panel(pred[i], size, box, colour), name))
        yield np.hstack(panels)


def write_side_by_side(
    path: str | os.PathLike,
    clip: ClipData,
    predictions: Mapping[str, np.ndarray] | np.ndarray,
    video_frames: Iterable[np.ndarray] | None = None,
    video_path: str | os.PathLike | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
) -> Path:
    """mp4 (H.264 + AAC) of :func:`side_by_side_frames` at the clip's frame rate, with the
    clip's audio (from ``clip.audio_path`` unless given) starting at the first frame.
    ``video_path``: the source video, its frames matched to the keypoint frames by time
    (instead of passing ``video_frames``)."""
    from wav2kp.media.encode import write_video

    if video_path is not None and video_frames is None:
        video_frames = frames_at_times(video_path, clip.frame_times)
    if audio is None and clip.audio_path is not None and Path(clip.audio_path).is_file():
        audio, sample_rate = load_waveform(clip.audio_path)
    if audio is not None:
        start = max(0, int(round(float(clip.frame_times[0]) * sample_rate)))
        audio = np.asarray(audio, np.float32)[start:]
        if len(audio) == 0:
            audio = None
    fps = 1.0 / metrics.frame_period(clip.frame_times)  # write_video snaps 29.97 to 30000/1001
    frames = side_by_side_frames(clip, predictions, video_frames)
    return write_video(path, frames, fps=fps, audio=audio, sample_rate=sample_rate)


def video_html(path: str | os.PathLike, width: int = 768) -> str:
    """An HTML5 video tag with the mp4 embedded (base64), so it plays in the HTML report."""
    import base64

    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<video controls width="{width}" src="data:video/mp4;base64,{data}"></video>'
        f"<br><small>{Path(path).name}</small>"
    )
