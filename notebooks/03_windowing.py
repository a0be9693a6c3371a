# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 - Audio windows, training targets and the dataset
#
# What a model sees and what it must predict, per keypoint frame:
#
# * **Audio window** (`wav2kp.windowing.windowing`): the feature frames from `past_ms` before to
#   `future_ms` after the frame's *real timestamp* (taken from the video stream, so
#   variable frame rates are fine). Lips move ahead of the sound they make, so published
#   models hear 100-200 ms of future audio (ObamaNet: 200 ms; Eskimez et al.: up to 80 ms).
#   Edges are padded by repeating the first/last feature frame.
# * **The original scheme** (`original`) upsampled the 29.97 fps keypoints x3 and gave frame
#   *i* the 40 feature frames starting at `round(i * n_mfcc / n_kp)`: audio from *after*
#   the frame only, placed by proportion rather than by time. Below we measure how far
#   that puts the audio from the true time along each clip.
# * **Targets** (`wav2kp.windowing.targets`): each frame is similarity-aligned on stable points
#   (eye corners, nose bridge) to a template, which removes head pose; the target is the
#   aligned shape minus the speaker's *neutral* (closed-mouth) face, scaled to unit RMS,
#   optionally projected on a PCA. The per-frame pose is kept, so predictions map back to
#   pixels exactly.
# * Both the feature stats and the target normaliser are fitted on the **train split
#   only** and saved in `processed/<corpus>/` (`feature_stats.json`,
#   `target_normalizer.json`); training and inference reuse them.

# %% tags=["parameters"]
corpus = None  # None everywhere: the default in wav2kp.config.RunConfig
profile = None  # a named set of run values (wav2kp.config.PROFILES: fast, full, grid)
output_dir = "reports/scratch"
past_ms = None  # the default model's audio window (notebook 04 trains with it)
future_ms = None
window_pad = None  # "edge" repeats the edge frames, "zeros" pads with the train mean
pca_components = None  # None: all 136 coordinates; an int: PCA fitted on train
neutral = None  # neutral face: "closed" (closed-mouth frames) or "mean" (all frames)
split_by = None  # the split's settings (notebook 02 makes it; used here if it has not)
val_fraction = None
test_fraction = None
split_seed = None

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display
from sklearn.decomposition import PCA
from wav2kp.atomic import write_csv, write_json
from wav2kp.config import RunConfig, WindowConfig
from wav2kp.features.splits import check_no_overlap, ensure_split, split_summary
from wav2kp.paths import resolve_output_dir
from wav2kp.windowing.dataset import fit_normalizer_and_stats, load_clips
from wav2kp.windowing.targets import STABLE_POINTS
from wav2kp.windowing.windowing import aligned_offsets, original_drift, window_times

cfg = RunConfig.from_parameters(globals())
out = resolve_output_dir(output_dir)
sns.set_theme(style="whitegrid", context="notebook")
window_config = cfg.window

# %% [markdown]
# ## Fit on train, load every clip

# %%
split = ensure_split(cfg.corpus, **cfg.split_settings)
normalizer, stats = fit_normalizer_and_stats(
    cfg.corpus, pca_components=cfg.pca_components, neutral=cfg.neutral,
    split_by=cfg.split_by, seed=cfg.split_seed,
)  # fmt: skip
clips = load_clips(
    cfg.corpus, splits=None, window_config=window_config, normalizer=normalizer,
    feature_stats=stats,
)  # fmt: skip
train = [c for c in clips if c.split == "train"]
hop = stats.feature_config.hop_seconds
n_past, n_future = window_config.context_frames(hop)
print(
    f"{len(clips)} clips; window = {n_past} past + 1 + {n_future} future feature frames "
    f"({window_config.n_context(hop) * hop * 1000:.0f} ms) x {stats.feature_config.dim} dims; "
    f"targets: {normalizer.n_targets} dims"
)

# %% [markdown]
# ## The split: no sentence in two splits

# %%
summary = split_summary(split)
check_no_overlap(split, "group")
if cfg.split_by == "sentence" and "sentence_id" in split.columns:
    check_no_overlap(split, "sentence_id")
    print("checked: no sentence appears in more than one split")
texts = pd.DataFrame(
    [
        {"split": c.split, "sentence_id": c.sentence_id, "text": c.extra.get("text", "")}
        for c in clips
    ]
)
display(summary)
display(texts.drop_duplicates().sort_values(["split", "sentence_id"]).reset_index(drop=True))
write_csv(out / "split_summary.csv", summary.reset_index())

# %% [markdown]
# ## Window geometry on one clip
# Normalised features of a training clip; for three keypoint frames (dashed lines at
# their timestamps) the aligned window (green, centred on the frame) and the original
# scheme's forward window (orange).

# %%
clip = train[0]
frames = np.linspace(0, clip.n_frames - 1, 5).astype(int)[1:-1]
aligned_spans = window_times(clip.feature_times, clip.frame_times, window_config)[frames]
original_spans = window_times(clip.feature_times, clip.frame_times, WindowConfig(mode="original"))[
    frames
]
fig, ax = plt.subplots(figsize=(11, 4))
ax.imshow(
    clip.features[:, : stats.feature_config.base_dim].T,
    aspect="auto",
    origin="lower",
    cmap="coolwarm",
    vmin=-3,
    vmax=3,
    extent=[
        clip.feature_times[0] - hop / 2,
        clip.feature_times[-1] + hop / 2,
        -0.5,
        stats.feature_config.base_dim - 0.5,
    ],
)
ax.grid(False)
for k, (frame, a, s) in enumerate(zip(frames, aligned_spans, original_spans, strict=True)):
    ax.axvline(clip.frame_times[frame], color="black", ls="--", lw=1)
    ax.axvspan(
        a[0] - hop / 2,
        a[-1] + hop / 2,
        ymin=0.52,
        ymax=0.98,
        color="tab:green",
        alpha=0.35,
        label="aligned" if k == 0 else None,
    )
    ax.axvspan(
        s[0] - hop / 2,
        s[-1] + hop / 2,
        ymin=0.02,
        ymax=0.48,
        color="tab:orange",
        alpha=0.35,
        label="original" if k == 0 else None,
    )
ax.set_xlabel("time (s)")
ax.set_ylabel("feature")
ax.set_title(f"{clip.clip_id}: audio windows of frames {frames.tolist()}")
ax.legend(loc="upper right")
fig.tight_layout()
fig.savefig(out / "window_geometry.png", dpi=120)
plt.show()

# %% [markdown]
# ## How far the original scheme's audio sits from the true time
# For every (upsampled) keypoint frame, the centre of its audio window minus the frame's
# true time. A forward 40-frame window is centred ~244 ms late; the proportional index
# formula then drifts with any audio/video length mismatch, and the window clamped at the
# clip end slides up to 0.5 s early at the end of every clip. Aligned windows stay within
# half a feature hop (6.25 ms).

# %%
drift = pd.concat(
    [original_drift(c.frame_times, c.feature_times).assign(clip_id=c.clip_id) for c in clips],
    ignore_index=True,
)
drift["centre_offset_ms"] = drift["centre_offset_s"] * 1000
aligned = (
    np.concatenate([aligned_offsets(c.frame_times, c.feature_times, window_config) for c in clips])
    * 1000
)
fig, ax = plt.subplots(figsize=(10, 4))
sns.lineplot(
    data=drift,
    x="time",
    y="centre_offset_ms",
    units="clip_id",
    estimator=None,
    alpha=0.3,
    lw=1,
    ax=ax,
    color="tab:orange",
)
ax.plot([], [], color="tab:orange", label="original scheme (one line per clip)")
ax.axhspan(
    aligned.min(), aligned.max(), color="tab:green", alpha=0.6, label="aligned windows (all frames)"
)
ax.axhline(0, color="black", lw=0.8)
ax.set_xlabel("time along the clip (s)")
ax.set_ylabel("audio window centre - frame time (ms)")
ax.set_title("Misalignment of the original windowing vs exact time alignment")
ax.legend(loc="lower left")
fig.tight_layout()
fig.savefig(out / "original_drift.png", dpi=120)
plt.show()

# %% [markdown]
# ## Head pose removed
# Left: one clip's 68 points over all frames in pixels (head motion smears them).
# Right: the same frames aligned on the stable points (red) - what remains is facial
# motion, mostly mouth and jaw.

# %%
aligned_shapes, pose = normalizer.align(clip.landmarks)
ok = clip.valid
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, shapes, title in (
    (axes[0], clip.landmarks[ok], "raw (pixels)"),
    (axes[1], aligned_shapes[ok], "aligned (IOD units)"),
):
    colours = np.repeat(np.arange(len(shapes)), 68)
    ax.scatter(shapes[..., 0].ravel(), shapes[..., 1].ravel(), c=colours, s=2, cmap="viridis")
    ax.scatter(
        shapes[:, list(STABLE_POINTS), 0].ravel(),
        shapes[:, list(STABLE_POINTS), 1].ravel(),
        s=2,
        color="tab:red",
    )
    ax.set_title(f"{clip.clip_id}: {title}")
    ax.invert_yaxis()
    ax.set_aspect("equal")
fig.tight_layout()
fig.savefig(out / "pose_removal.png", dpi=120)
plt.show()


def spread_iod(shapes, iod):
    """Mean per-point std over frames, in inter-ocular distances."""
    return float(np.mean(np.nanstd(shapes / iod[:, None, None], axis=0)))


iod_px = np.linalg.norm(clip.landmarks[ok, 45] - clip.landmarks[ok, 36], axis=1)
raw_spread = spread_iod(
    clip.landmarks[ok][:, list(STABLE_POINTS)], np.full(ok.sum(), np.nanmean(iod_px))
)
aligned_spread = spread_iod(aligned_shapes[ok][:, list(STABLE_POINTS)], np.ones(ok.sum()))
print(f"stable points move {raw_spread:.3f} IOD raw, {aligned_spread:.4f} IOD after alignment")

# %% [markdown]
# ## Neutral faces
# Each training speaker's neutral face (mean of their closed-mouth frames, aligned) and
# the mean neutral used for speakers never seen in training.

# %%
POLYLINES = [range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36),
             [*range(36, 42), 36], [*range(42, 48), 42], [*range(48, 60), 48], [*range(60, 68), 60]]  # fmt: skip


def plot_face(ax, shape, **style):
    for line in POLYLINES:
        ax.plot(shape[list(line), 0], shape[list(line), 1], **style)


fig, ax = plt.subplots(figsize=(5, 5))
palette = sns.color_palette("tab10", len(normalizer.neutrals))
for colour, (speaker, face) in zip(palette, sorted(normalizer.neutrals.items()), strict=True):
    plot_face(ax, face, color=colour, lw=1.2, label=None)
    ax.plot([], [], color=colour, label=speaker)
plot_face(ax, normalizer.mean_neutral, color="black", lw=1, ls="--")
ax.plot([], [], color="black", ls="--", label="mean (unknown speaker)")
ax.invert_yaxis()
ax.set_aspect("equal")
ax.legend(fontsize=8)
ax.set_title(f"neutral faces ({cfg.neutral})")
fig.tight_layout()
fig.savefig(out / "neutral_faces.png", dpi=120)
plt.show()

# %% [markdown]
# ## How many dimensions does the motion need?
# Explained variance of a PCA of the training residuals (aligned shape - neutral).
# Published work uses 8 components for the mouth (ObamaNet); a handful covers most of the
# motion here too.

# %%
residuals = np.concatenate([normalizer.residuals(c.landmarks[c.valid], c.speaker) for c in train])
cumulative = np.cumsum(PCA().fit(residuals).explained_variance_ratio_)
components_for = {
    f"{int(q * 100)}%": int(np.searchsorted(cumulative, q) + 1) for q in (0.8, 0.9, 0.95, 0.99)
}
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(np.arange(1, 31), cumulative[:30], marker="o", ms=3)
for label, k in components_for.items():
    ax.axvline(k, color="gray", lw=0.6, ls=":")
    ax.text(k, 0.05 + 0.1 * list(components_for).index(label), f" {label}: {k}", fontsize=8)
ax.set_xlabel("PCA components")
ax.set_ylabel("cumulative explained variance")
ax.set_ylim(0, 1.02)
ax.set_title("PCA of train targets")
fig.tight_layout()
fig.savefig(out / "pca_variance.png", dpi=120)
plt.show()
print("components needed:", components_for)

# %%
original_centre = drift["centre_offset_ms"]
metrics = {
    "clips": len(clips),
    "clips_per_split": {k: int(v) for k, v in summary["clips"].items()},
    "window_past_frames": n_past,
    "window_future_frames": n_future,
    "window_frames": window_config.n_context(hop),
    "feature_dim": stats.feature_config.dim,
    "target_dim": normalizer.n_targets,
    "neutral": cfg.neutral,
    "valid_frame_fraction": float(np.mean(np.concatenate([c.valid for c in clips]))),
    "aligned_max_abs_offset_ms": float(np.abs(aligned).max()),
    "original_median_centre_offset_ms": float(original_centre.median()),
    "original_max_abs_centre_offset_ms": float(original_centre.abs().max()),
    "original_frames_off_by_over_100ms": float((original_centre.abs() > 100).mean()),
    "stable_point_spread_raw_iod": raw_spread,
    "stable_point_spread_aligned_iod": aligned_spread,
    "pca_components_for_variance": components_for,
    "target_scale_iod": float(normalizer.scale),
}
write_json(out / "metrics_windowing.json", metrics)
pd.Series(metrics, dtype=object).to_frame("value")
