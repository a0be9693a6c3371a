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
# # 06 - Hand-off to NVIDIA vid2vid
#
# The keypoints exist to drive vid2vid's face model (`edge2face`), which turns a
# sequence of 68-point faces into video. The original project fell short here in three
# ways: its "test" outputs were made from **training audio**, it copied **placeholder
# images** into vid2vid's image folder, and its keypoints carried **no head motion or
# blinks**, so the synthesized faces looked frozen.
#
# This notebook does the hand-off properly:
#
# 1. The speech comes from a **held-out test clip** (its sentence never appears in
#    training).
# 2. The model predicts mouth and jaw motion from that audio; the motion is **composed
#    onto a real head track** of the same speaker (head pose, blinks and brows of another
#    test clip), in that clip's frame coordinates (`wav2kp.handoff.vid2vid.compose_on_reference`).
# 3. The folder is written in vid2vid's layout - `test_keypoints/<seq>/%05d.txt` (68
#    integer `x,y` rows) beside `test_img/<seq>/%05d.jpg` (the **real frames** of the
#    reference clip) - on a canvas where **vid2vid's own face crop fits**: it crops a
#    square of 2.5 face widths set on the first frame, and on a tight talking-head clip
#    like ours that square is larger than the frame, so vid2vid's numpy slicing would
#    hand its generator an empty corner of the edge map. The frames are scaled so the
#    crop is exactly 512 px and padded where the clip does not reach
#    (`wav2kp.handoff.vid2vid.plan_canvas`). The folder is then **checked frame by frame** the
#    way vid2vid will read it.
# 4. We show what vid2vid's generator will get: the real frame and the edge channel
#    (synthesized forehead, quadratic pieces, 2 px lines, crop and resize), reproduced
#    step by step by `wav2kp.plots.edgemap.generator_input`, and a preview video with the
#    speech.
# 5. Without vid2vid, the face on the CPU: `face.mp4`, the reference's frames with the
#    lower face warped onto the keypoints (`--format face`), beside the real video of the
#    speech clip.
#
# The same runs from the command line on any speech file:
# `wav2kp predict speech.mp3 --checkpoint data/models/demo/default/best.pt --reference
# me.mp4 --out out/`.

# %% tags=["parameters"]
corpus = None  # None everywhere: the default in wav2kp.config.RunConfig
profile = None  # a named set of run values (wav2kp.config.PROFILES: fast, full, grid)
output_dir = "reports/scratch"
seed = None  # picks the speech clip when none is given
model = "default"
checkpoint = None  # default: data/models/<corpus>/<model> (its first training seed)
reference_clip = None  # a test-split clip of the audio's speaker (default: picked here)
speech_clip = None  # a held-out test clip whose audio is used (default: picked by seed)
preview_frames = 4  # edge-map preview images
explorer_clips = 4  # test clips offered in the explorer

# %%
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import HTML, Image, Markdown, display
from wav2kp import metrics
from wav2kp.atomic import write_json
from wav2kp.config import RunConfig
from wav2kp.handoff import vid2vid
from wav2kp.paths import CorpusPaths, resolve_output_dir
from wav2kp.plots import render
from wav2kp.predict import predict, references
from wav2kp.training.inference import checkpoint_file

sns.set_theme(style="whitegrid", context="notebook")
cfg = RunConfig.from_parameters(globals())  # corpus, seed
corpus, seed = cfg.corpus, cfg.seed
out = resolve_output_dir(output_dir)
paths = CorpusPaths(corpus)
checkpoint = checkpoint_file(Path(checkpoint) if checkpoint else paths.models / model)
if not checkpoint.is_file():
    raise FileNotFoundError(f"{checkpoint}: no trained model; run notebook 04 first")


def save(fig, name):
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    display(fig)
    plt.close(fig)


# %% [markdown]
# ## Which audio, which head
# The speech clip must come from the test split; the reference head is another test
# clip of the same speaker when there is one.

# %%
clips = references.choose_handoff_clips(corpus, speech_clip, reference_clip, seed=seed)
display(pd.Series({
    "speech clip (audio)": clips.speech_clip,
    "reference clip (head, blinks, frames)": clips.reference_clip,
    "speaker": clips.speaker,
    "checkpoint": str(checkpoint),
}, name="hand-off").to_frame())  # fmt: skip

# %% [markdown]
# ## Predict, compose on the reference head, export the vid2vid folder
# `predict_file` is what `wav2kp predict` runs: keypoints (`keypoints.npz`,
# `keypoints.csv`), the vid2vid tree, the face (`face.mp4`), a preview mp4 with the
# speech, and a summary. No face is rendered of people whose videos forbid it.

# %%
from wav2kp.extraction.extract import source_video
from wav2kp.handoff import exports, facecompare

reference_video = source_video(corpus, clips.reference_clip)  # demo: raw/; others: input folder
speech_video = source_video(corpus, clips.speech_clip)
if reference_video is None:
    raise FileNotFoundError(f"no source video found for {clips.reference_clip} (corpus {corpus})")
refusal = facecompare.face_refusal(reference_video, speech_video)
formats = exports.DEFAULT_FORMATS + (() if refusal else ("face",))
handoff_dir = out / "vid2vid_handoff"
summary = predict.predict_file(
    clips.speech_audio, checkpoint, handoff_dir, reference=clips.reference_npz,
    corpus=corpus, speaker=clips.speaker, sequence=clips.speech_clip, progress=False,
    formats=formats,
)  # fmt: skip
display(pd.Series({k: summary[k] for k in (
    "reference", "frames", "audio_seconds", "fps", "frame_size",
    "reference_frames_interpolated", "realtime_factor_predict", "realtime_factor_total",
)}, name="predict").to_frame())  # fmt: skip

# %% [markdown]
# ## vid2vid's crop: the reference as it is, and the exported canvas
# Left: the reference clip's frame with the square vid2vid would crop from it (set on the
# first frame); where it leaves the frame, vid2vid's numpy slicing keeps only the red
# corner of the edge map. Right: the exported frame, scaled and padded so the crop (green)
# is exactly 512 px inside it. `predict.json` records the mapping back to the reference's
# pixels.

# %%
from wav2kp.media.decode import read_frames_at

vid2vid_root = handoff_dir / vid2vid.EXPORT_DIR
handoff = summary["vid2vid"]
with np.load(handoff_dir / "keypoints.npz") as data:
    first_points, first_reference = data["landmarks"][0], int(data["reference_index"][0])
reference_frame = read_frames_at(reference_video, [first_reference])[first_reference]
fig = vid2vid.plot_crop_fix(reference_frame, first_points, vid2vid_root, clips.speech_clip)
save(fig, "handoff_crop.png")
display(pd.Series({
    "reference frame size": summary["frame_size"],
    "exported frame size": handoff["canvas"]["size"],
    "scale, offset (exported = reference * scale + offset)":
        (round(handoff["canvas"]["scale"], 4), handoff["canvas"]["offset"]),
    "padding left, top, right, bottom (px)": handoff["canvas"]["padding_ltrb"],
    "vid2vid's crop box": handoff["crop_box"],
    "face-edge pixels reaching the edge channel (worst frame)": handoff["face_edge_share"],
    "images written (the rest are hard links)": handoff["images_written"],
}, name="canvas").to_frame())  # fmt: skip

# %% [markdown]
# ## What vid2vid's generator will get
# Read back from the exported files through vid2vid's own test-time path: the real frame
# and the edge channel, cropped with vid2vid's box (set on the first frame and kept) and
# resized to 512 px. Background edges outside the face come from the real frame.

# %%
fig = vid2vid.plot_vid2vid_inputs(vid2vid_root, clips.speech_clip, n_frames=preview_frames)
save(fig, "handoff_edge_maps.png")

# %% [markdown]
# ## Preview with the speech
# Left: the real frame with the keypoints, right: the edge channel, both as vid2vid's
# generator gets them.

# %%
display(HTML(render.video_html(handoff_dir / "preview.mp4", width=512)))

# %% [markdown]
# ## The face, without vid2vid
# Left: the real video of the speech clip; right: `face.mp4`, the same speech on the
# reference clip's head - its real frames with the lower face (lips, jaw, chin, cheeks)
# warped onto the exported keypoints and the mouth interior taken from its own frames at
# a similar opening (`wav2kp.handoff.face`). A warp of the reference, not a learnt
# generator: it moves no head and shows no mouth the reference never opens.

# %%
import time

from wav2kp.credits import corpus_credit

began = time.perf_counter()
face_comparison = None
if refusal:
    display(Markdown(f"No face rendered: {refusal}"))
else:
    with np.load(handoff_dir / "keypoints.npz") as data:
        face_points = data["landmarks"]
    with np.load(clips.speech_npz) as data:
        speech_points, speech_size = data["lm68"], (int(data["width"]), int(data["height"]))
    face_comparison = facecompare.write_handoff_face(
        out / f"handoff{facecompare.COMPARISON_SUFFIX}", speech_video, speech_points,
        speech_size, handoff_dir / exports.FACE_FILE, face_points, summary["frame_size"],
        clips.speech_audio,
    )  # fmt: skip
    display(HTML(render.video_html(face_comparison, width=512)))
    credit = corpus_credit(corpus)
    display(Markdown(
        f"`face.mp4` rendered in {summary['seconds']['face']:.1f} s, the comparison in "
        f"{time.perf_counter() - began:.1f} s." + (f" Video: {credit}." if credit else "")
    ))  # fmt: skip

# %% [markdown]
# ## Does the mouth still follow the speech after composition?
# Mouth opening (inner-lip gap / inter-ocular distance) of the exported keypoints
# against the true opening of the speech clip (its real video), on the same timeline.
# The head, eyes and brows come from the other clip; only the mouth and jaw should
# follow this audio.

# %%
with np.load(handoff_dir / "keypoints.npz") as data:
    exported_times, exported = data["times"], data["landmarks"]
with np.load(clips.speech_npz) as data:
    true_times, true_lm = data["times"], data["lm68"]
exported_open = metrics.mouth_opening(exported)
true_open = np.interp(exported_times, true_times, metrics.mouth_opening(true_lm))
r = float(pd.Series(exported_open).corr(pd.Series(true_open)))
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(
    true_times, metrics.mouth_opening(true_lm), label=f"true ({clips.speech_clip})", color="0.3"
)
ax.plot(exported_times, exported_open, label="exported (composed on reference)", color="tab:red")
ax.set_xlabel("time (s)")
ax.set_ylabel("mouth opening (IOD)")
ax.set_title(f"exported vs true mouth opening, r = {r:.2f}")
ax.legend(loc="upper right")
save(fig, "handoff_mouth_opening.png")

# %% [markdown]
# ## Alive, not frozen
# The original hand-off drew the model's output on a fixed head. Compare the head
# motion, blinks and mouth motion of the model's raw prediction, the exported
# (composed) keypoints and the real video of the speech clip.

# %%
with np.load(handoff_dir / "keypoints.npz") as data:
    raw_prediction = data["predicted"]
fps = summary["fps"]
alive = pd.DataFrame({
    "model output alone": vid2vid.liveliness(raw_prediction, fps),
    "exported (composed on reference)": vid2vid.liveliness(exported, fps),
    f"real video ({clips.speech_clip})": vid2vid.liveliness(true_lm, fps),
}).T  # fmt: skip
display(alive.round(3))

# %% [markdown]
# ## Self-check of the folder, and the vid2vid commands
# The trees as vid2vid lists them (same sequences, files and names, 68 integer rows per
# keypoint file, readable images of one size), `face` in the path (its `--use_single_G`
# needs it), and for every frame: the crop fits, no face edge is cut by it or leaves the
# frame, no edge channel is empty. vid2vid stops after 300 frames unless `--how_many`
# says otherwise, so the command covers every frame. It uses the first two frames as
# history and writes frames 2 .. N-1, so the speech goes under its output starting
# 2 frames in. (vid2vid's own environment is PyTorch 0.4-era; its keypoint reader passes
# a float to `np.linspace`, which needs NumPy < 1.18 there.)

# %%
inspection = vid2vid.inspect_tree(vid2vid_root)
problems = inspection.problems
display(pd.DataFrame([{
    "sequence": r.name, "frames": r.n_frames, "frame size": r.frame_size,
    "vid2vid crop": r.crop_box, "crop fits": r.crop_fits,
    "face edges reaching the edge channel (worst frame)": r.face_edge_share_min,
} for r in inspection.sequences]))  # fmt: skip
display(Markdown("**vid2vid folder check: OK**" if not problems else
                 "**vid2vid folder problems:**\n\n" + "\n".join(f"- {p}" for p in problems)))  # fmt: skip
command = vid2vid.vid2vid_test_command(vid2vid_root, summary["frames"])
display(Markdown(f"vid2vid writes `{handoff['output_files']}`; the speech under it:\n\n"
                 f"`{handoff['mux_command']}`"))  # fmt: skip

# %% [markdown]
# ## Explorer
# Pick a test clip, scrub its frames, and compare the true keypoints (green) with the
# model's prediction from the clip's audio, on the video frame or as vid2vid edge maps.
# The audio player plays the clip.

# %%
from wav2kp.plots import explorer
from wav2kp.training.inference import load_predictor
from wav2kp.windowing import dataset

predictor = load_predictor(checkpoint)
test_clips = dataset.load_clips(corpus, splits=("test",), window_config=predictor.window_config,
                                progress=False)[:explorer_clips]  # fmt: skip
predictions = {predictor.name: {c.clip_id: predictor.predict_landmarks(c) for c in test_clips}}
raw_videos = {c.clip_id: source_video(corpus, c.clip_id) for c in test_clips}
kept = explorer.frames_folder_source(paths.frames)
from_video = explorer.video_file_source(lambda c: raw_videos.get(c.clip_id))


def frame_source(clip, index):
    frame = kept(clip, index)
    return frame if frame is not None else from_video(clip, index)


explore = explorer.KeypointExplorer(test_clips, predictions, frame_source=frame_source)
explore.select(clips.speech_clip if clips.speech_clip in explore.clips else test_clips[0].clip_id)
display(explore.widget)
# a still of the current view, for the static HTML report (widgets need a live kernel)
explorer_png = out / "explorer_frame.png"
cv2.imwrite(str(explorer_png), cv2.cvtColor(explore.last_view, cv2.COLOR_RGB2BGR))
display(Image(filename=str(explorer_png)))

# %%
metrics_handoff = {
    "speech_clip": clips.speech_clip,
    "reference_clip": clips.reference_clip,
    "frames_exported": summary["frames"],
    "audio_seconds": summary["audio_seconds"],
    "vid2vid_check_ok": not problems,
    "vid2vid_problems": len(problems),
    "vid2vid_crop_fits": all(r.crop_fits for r in inspection.sequences),
    "face_edge_share": min(r.face_edge_share_min for r in inspection.sequences),
    "reference_frames_interpolated": summary["reference_frames_interpolated"],
    "mouth_open_r_vs_true": r,
    "head_translation_std_iod": alive.iloc[1]["head_translation_std_iod"],
    "head_rotation_std_deg": alive.iloc[1]["head_rotation_std_deg"],
    "blinks_per_minute": alive.iloc[1]["blinks_per_minute"],
    "realtime_factor_predict": summary["realtime_factor_predict"],
    "realtime_factor_total": summary["realtime_factor_total"],
    "face_video": summary["files"].get("face", ""),
    "face_seconds": summary["seconds"].get("face", 0.0),
}
write_json(out / "metrics_handoff.json", metrics_handoff)
pd.Series(metrics_handoff, name="hand-off").to_frame()
