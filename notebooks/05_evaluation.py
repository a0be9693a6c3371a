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
# # 05 - Evaluation on held-out speech
#
# The original wav2kp never computed a test metric: its "validation" videos were made
# from training audio. Here every model is scored on the **test split**, whose sentence
# texts never appear in training (see notebook 02), with numbers that say how good the
# keypoints are for lip sync:
#
# | metric | what it measures | ideal |
# |---|---|---|
# | mouth LMD | mean distance of the 20 lip points after centring each set (RAD-NeRF's LMD) | 0 |
# | face LMD | the same over all 68 points | 0 |
# | mouth LVD | error of the lip points' frame-to-frame motion | 0 |
# | lip vertex error | per frame the worst lip point's squared error (2D LVE) | 0 |
# | mouth-opening r | Pearson r of predicted vs true inner-lip gap over time | 1 |
# | variance ratio | std of predicted / true mouth opening (a frozen mouth scores 0) | 1 |
# | mouth jitter ratio | mean acceleration of the lip points, predicted / true (> 1 = shakier); reported, no target: the true track's jitter includes the tracker's noise | 1 |
# | syllable-band ratio | amplitude of the mouth opening at 2-7 Hz (syllables), predicted / true; < 1 damped, > 1 exaggerated | 1 |
# | bilabial closures | share of /p/ /b/ /m/ (forced alignment of the transcript) where the mouth closes within +-1 frame, beside the real mouth's own share (its ceiling); only where the corpus has transcripts | the real mouth's |
# | mouth / face error (crop px) | frame coordinates: raw distance of the points in vid2vid's 256 px crop | 0 |
# | A/V offset | lag (ms) maximising the correlation of predicted with true opening; + = late | 0 |
#
# **Equal footing.** Every model is scored on exactly the same frames, in the same two
# spaces: the *pose-normalised* space (head pose removed from the truth and from every
# prediction alike, so the `original` replica's frame coordinates are mapped exactly like
# the default model's pose-free output) and *frame coordinates* (every prediction's
# pose-free face placed with the test video's measured head pose). Each space has its own
# measures: the pose-normalised space the ones above but the crop errors (distances in
# inter-ocular distances, IOD; jitter on the mouth, free of head motion); frame
# coordinates the raw-position errors in pixels of vid2vid's crop, set on the first frame
# and resized to 256 px (not centred per frame, so not a copy of the LMD). All
# models, baselines included, follow one rule for the validation sentences: when the
# trained models were refit on train + val (notebook 04), so are the baselines. The ridge
# baseline sees exactly the default model's audio window.
#
# The predictors:
# - **closed-mouth neutral** and **mean face** (no audio): the speaker's closed-mouth
#   face, and the true mean of the training faces (the best constant face);
# - **loudness**: the mouth opened by the loudness envelope of the speech, with one scale
#   and one lag fitted on train; it learns nothing about the speaker, so on a new voice it
#   is the floor an audio model must clear;
# - **ridge**: a linear map from the default model's audio windows;
# - the **original** replica and the project's **default** model (notebook 04), every
#   training seed found; the default is scored with the clip's true emotion label *and*
#   without one (`predict` has none for new speech).
#
# **Uncertainty.** A number is the mean over test clips of the seed-averaged score,
# shown with the spread over training seeds and a 95 % bootstrap interval that resamples
# test *sentences* (clips of one sentence share their text, so they are not independent).
# A target is met only when the whole interval meets it; with fewer than 20 test sentences
# or 1,000 frames no target is judged.

# %% tags=["parameters"]
corpus = None  # None: the default in wav2kp.config.RunConfig
output_dir = "reports/scratch"
profile = None  # the profile the models were trained under (recorded with the results)
seed = None  # which clips get plots and videos
models = None  # trained models to score, every seed found (`wav2kp evaluate` takes paths)
device = None
video_clips = 2  # side-by-side videos of test clips
face_clips = 2  # of those, real video | face rendered from the predicted keypoints
trace_clips = 3  # mouth-opening trace plots
split = "test"
max_lag_frames = 10  # A/V offset search range (frames each way)

# %%
import warnings

import pandas as pd
import seaborn as sns
from IPython.display import HTML, Markdown, display
from wav2kp.atomic import write_json
from wav2kp.config import RunConfig
from wav2kp.evaluation import evaluate, results
from wav2kp.paths import resolve_output_dir
from wav2kp.plots import render

warnings.filterwarnings("ignore", category=UserWarning, module="seaborn")
sns.set_theme(style="whitegrid", context="notebook")
pd.set_option("display.precision", 4)
out = resolve_output_dir(output_dir)
cfg = RunConfig.from_parameters(globals())  # corpus, profile, seed, models, device


def save(fig, name):
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    display(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)


# %% [markdown]
# ## Load the models, fit the baselines, score everything
# `run_evaluation` does the whole step (the CLI `wav2kp evaluate` runs the same code). A
# checkpoint that is missing is reported and the rest are still evaluated.

# %%
run = evaluate.run_evaluation(
    cfg.corpus, cfg.models, output_dir=None, split=split, max_lag_frames=max_lag_frames,
    device=cfg.device, profile=cfg.profile,
)  # fmt: skip
for problem in run.problems:
    display(Markdown(f"**Warning:** {problem}"))
protocol = run.protocol
display(Markdown(
    f"Evaluated **{len(run.clips)} {split} clips** of "
    f"{len({c.sentence_id for c in run.clips})} sentences "
    f"({sum(c.n_frames for c in run.clips)} frames); training seeds {protocol['seeds']}; "
    f"baselines fitted on {'train + val (refit rule)' if protocol['refit'] else 'train only'}; "
    f"audio window of the default model: {protocol['window']}."
))  # fmt: skip
ridge = run.predictor("ridge")
if ridge is not None and ridge.val_scores:
    display(Markdown(f"Ridge alpha chosen on val: **{ridge.alpha:g}**"))
loudness = run.predictor("loudness")
if loudness is not None:
    display(Markdown(f"Loudness baseline: lag fitted on train **{loudness.lag_ms:+.0f} ms**"))

# %% [markdown]
# ## Results
# The same block the README shows (generated from this run's `results.json` by
# `wav2kp results`): mean ± sd over training seeds [95 % interval over test sentences].

# %%
display(Markdown(results.markdown(run.table, protocol)))

# %% [markdown]
# The same numbers as a picture: dot = estimate, thick bar = 95 % interval over test
# sentences, thin bar = range over training seeds; dashed = ideal.

# %%
order = results.ordered_models(run.table["model"].unique())
save(render.plot_intervals(run.summary, order=order), "evaluation_intervals.png")

# %% [markdown]
# ## Per emotion and per speaker
# Means over clips (pose-normalised space, seeds averaged).

# %%
scores = results.clip_scores(run.table)
scores = scores[scores["space"] == "aligned"]
for group in ("emotion", "speaker"):
    display(
        scores.groupby(["model", group])[["mouth_open_r", "mouth_lmd_iod"]]
        .mean()
        .unstack("model")
        .reindex(columns=order, level="model")
    )

# %% [markdown]
# ## Plots
# One point per test clip (seeds averaged); dashed lines mark the ideal value.

# %%
save(render.plot_metrics(scores, order=order), "evaluation_metrics.png")
save(render.plot_by_group(scores, by="emotion", order=order), "evaluation_by_emotion.png")
if scores["speaker"].nunique() > 1:
    save(render.plot_by_group(scores, by="speaker", order=order), "evaluation_by_speaker.png")

# %% [markdown]
# ## A/V offset
# Correlation of predicted with true mouth opening when the prediction is shifted by a
# lag, averaged over test clips and seeds. A peak away from 0 means the keypoints run early
# or late against the audio (the original project's 29.97 x 3 vs 80 frames/s mismatch
# would show up here as a drift).

# %%
curves = evaluate.lag_curves(run.predictors, run.clips, max_lag_frames)
save(render.plot_lag_curves(curves, order=order), "evaluation_lag_curves.png")
pooled = evaluate.pooled_offsets(curves)
display(pooled.rename(columns={"r": "peak r"}))

# %% [markdown]
# ## Mouth opening over time
# The true inner-lip gap (black) against each model's (first training seed), with the
# waveform underneath on the same time axis: lips should open where the speech is loud,
# at the same moments.

# %%
traced = {}
for predictor in sorted(run.predictors, key=evaluate.training_seed):
    if predictor.name not in ("mean_face", "neutral_face"):
        traced.setdefault(predictor.name, predictor)
for clip in evaluate.choose_video_clips(run.clips, trace_clips, cfg.seed):
    predictions = {name: p.predict_landmarks(clip) for name, p in traced.items()}
    save(render.plot_mouth_traces(clip, predictions), f"evaluation_trace_{clip.clip_id}.png")

# %% [markdown]
# ## Side-by-side videos
# Real frame | true keypoints | predicted keypoints of the original replica and the default
# model, drawn as vid2vid sees them (edge maps, cropped like vid2vid), with the clip's
# audio - the format of the original project's result videos, but on held-out speech.

# %%
known_problems = len(run.problems)
videos = evaluate.write_videos(run, cfg.corpus, out / "evaluation_videos", video_clips, cfg.seed)
for path in videos:
    display(HTML(render.video_html(path, width=256 * 4)))
for problem in run.problems[known_problems:]:
    display(Markdown(f"**Warning:** {problem}"))
if not videos:
    display(Markdown("No video written (see the warnings above)."))

# %% [markdown]
# ## Faces from the predicted keypoints
# Left: the real video of a held-out sentence; right: the same frames with the lower face
# (lips, jaw, chin, cheeks) warped onto the keypoints the default model predicted from
# this audio - what `wav2kp predict --format face` renders. It is a warp of the real
# frames, not a learnt generator: only the mouth and jaw differ between the panels, so
# any difference is the model's. The first seconds of the clips above, with their audio.

# %%
import time

from wav2kp.credits import corpus_credit
from wav2kp.handoff import facecompare

began = time.perf_counter()
face_model = traced.get(results.REFERENCE) or next(reversed(traced.values()), None)
faces, face_problems = ([], []) if face_model is None else facecompare.write_evaluation_faces(
    evaluate.choose_video_clips(run.clips, face_clips, cfg.seed), face_model, cfg.corpus,
    out / "evaluation_faces",
)  # fmt: skip
face_seconds = time.perf_counter() - began
for path in faces:
    display(HTML(render.video_html(path, width=512)))
for problem in face_problems:
    display(Markdown(f"**Warning:** {problem}"))
credit = corpus_credit(cfg.corpus)
display(Markdown(
    (f"Faces of `{face_model.name}` in {face_seconds:.1f} s." if faces else "No face rendered.")
    + (f" Video: {credit}." if credit and faces else "")
))  # fmt: skip

# %% [markdown]
# ## Saved results
# `results.json` (the results file: protocol + one row per model x seed x space x clip;
# `wav2kp results <run folder> --markdown` regenerates the table above from it),
# `metrics.csv` (the same rows), `metrics_summary.csv` (estimates, intervals, seed
# spread), `target_checks.csv`, `paired_differences.csv`, `metrics.json` (estimates per
# model, pose-normalised space) and the headline numbers in `metrics_evaluation.json`.

# %%
run.files = evaluate.write_results(run, out)
estimates = results.wide(run.summary).loc["aligned"]
headline_model = results.REFERENCE if results.REFERENCE in estimates.index else estimates.index[-1]
checks = run.checks(headline_model)
headline = {
    "model": headline_model,
    "space": "aligned",
    "split": split,
    "n_clips": len(run.clips),
    "n_sentences": len({c.sentence_id for c in run.clips}),
    "seeds": protocol["seeds"],
    "targets_met": int(checks["met"].sum()),
    "targets_total": len(checks),
    "verdicts": dict(zip(checks["target"], checks["verdict"], strict=True)),
    "missing": run.problems + face_problems,
    "face_videos": len(faces),
    "face_seconds": face_seconds,
    **{k: results.plain(v) for k, v in estimates.loc[headline_model].items()},
}
write_json(out / "metrics_evaluation.json", headline)
print("\n".join(str(p) for p in run.files.values()))
