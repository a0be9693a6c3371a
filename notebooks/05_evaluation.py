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
# | jitter ratio | mean acceleration of the points, predicted / true (> 1 = shakier) | 1 |
# | A/V offset | lag (ms) maximising the correlation of predicted with true opening; + = late | 0 |
#
# Distances are in units of the inter-ocular distance (IOD, outer eye corners of the true
# frame) and also in pixels of a 256 px vid2vid-style face crop (side 2.5 x face width).
# Only frames whose ground truth was detected count, and every model is scored on
# exactly the same frames.
#
# Four predictors are compared: two baselines fitted here on the train split - the
# speaker's **mean face** posed with the clip's head pose (no audio at all) and a
# **ridge** regression from the same audio windows (alpha chosen on val) - and the
# trained **original** replica of the original network and the project's **default** model
# (notebook 04).

# %% tags=["parameters"]
corpus = "demo"
output_dir = "reports/scratch"
seed = 0
models = ["original", "default"]  # checkpoint names under data/models/<corpus>/ (or paths)
video_clips = 2  # side-by-side videos of test clips
trace_clips = 3  # mouth-opening trace plots
split = "test"
max_lag_frames = 10  # A/V offset search range (frames each way)
device = "auto"

# %%
import json
import warnings

import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import HTML, Markdown, display
from wav2kp import evaluate, render
from wav2kp.atomic import write_json
from wav2kp.paths import resolve_output_dir

warnings.filterwarnings("ignore", category=UserWarning, module="seaborn")
sns.set_theme(style="whitegrid", context="notebook")
pd.set_option("display.precision", 4)
out = resolve_output_dir(output_dir)
if isinstance(models, str):  # papermill -p models "original,default"
    models = [m.strip() for m in models.split(",") if m.strip()]


def save(fig, name):
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    display(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)


# %% [markdown]
# ## Load the clips, fit the baselines, load the trained models, score them
# `run_evaluation` does the whole step (the CLI `wav2kp evaluate` runs the same code).
# A checkpoint that is missing is reported and the rest are still evaluated.

# %%
run = evaluate.run_evaluation(
    corpus, models, output_dir=None, split=split, max_lag_frames=max_lag_frames, device=device
)
for problem in run.problems:
    display(Markdown(f"**Warning:** {problem}"))
display(Markdown(
    f"Evaluated **{len(run.clips)} {split} clips** "
    f"({sum(c.n_frames for c in run.clips)} frames) with models: "
    + ", ".join(f"`{p.name}`" for p in run.predictors)
))  # fmt: skip
ridge = run.predictor("ridge")
if ridge is not None and ridge.val_scores:
    display(Markdown(f"Ridge alpha chosen on val: **{ridge.alpha:g}**"))
    display(pd.Series(ridge.val_scores, name="val target MSE").rename_axis("alpha").to_frame().T)

# %% [markdown]
# ## Results per model
# Means over test clips (each clip counts once).

# %%
by_model = run.summary["model"]
display(by_model)

# %% [markdown]
# ## The project's targets (default model)
# mouth-opening r >= 0.85; variance ratio 0.8-1.25; mouth LMD <= 0.5 x mean face and
# <= 0.75 x original replica; |A/V offset| <= 1 frame (median over clips).

# %%
display(run.checks)
passed = int(run.checks["pass"].sum())
display(Markdown(f"**{passed} of {len(run.checks)} targets met.**"))

# %% [markdown]
# ### In words


# %%
def compare(model, reference):
    if model not in by_model.index or reference not in by_model.index:
        return f"- `{model}` vs `{reference}`: not comparable (one of them was not evaluated)"
    lmd = by_model.loc[model, "mouth_lmd_iod"] / by_model.loc[reference, "mouth_lmd_iod"]
    r_model, r_ref = (
        f"{r:.2f}" if np.isfinite(r) else "undefined (frozen mouth)"
        for r in by_model.loc[[model, reference], "mouth_open_r"]
    )
    return (
        f"- `{model}` vs `{reference}`: mouth LMD x{lmd:.2f} "
        f"({'better' if lmd < 1 else 'worse'}), mouth-opening r {r_model} vs {r_ref}"
    )


display(Markdown("\n".join(compare("default", ref) for ref in ("mean_face", "ridge", "original"))))

# %% [markdown]
# ## Per emotion and per speaker

# %%
display(run.summary["emotion"].unstack("model")[["mouth_open_r", "mouth_lmd_iod"]])
display(run.summary["speaker"].unstack("model")[["mouth_open_r", "mouth_lmd_iod"]])

# %% [markdown]
# ## Plots
# One point per test clip; dashed lines mark the ideal value.

# %%
order = [p.name for p in run.predictors]
save(render.plot_metrics(run.table, order=order), "evaluation_metrics.png")

# %%
save(render.plot_by_group(run.table, by="emotion", order=order), "evaluation_by_emotion.png")
if run.table["speaker"].nunique() > 1:
    save(render.plot_by_group(run.table, by="speaker", order=order), "evaluation_by_speaker.png")

# %% [markdown]
# ## A/V offset
# Correlation of predicted with true mouth opening when the prediction is shifted by a
# lag, averaged over test clips. A peak away from 0 means the keypoints run early or late
# against the audio (the original project's 29.97 x 3 vs 80 frames/s mismatch would show
# up here as a drift).

# %%
curves = evaluate.lag_curves(run.predictors, run.clips, max_lag_frames)
save(render.plot_lag_curves(curves, order=order), "evaluation_lag_curves.png")
pooled = evaluate.pooled_offsets(curves)
display(pooled.rename(columns={"r": "peak r"}))

# %% [markdown]
# ## Mouth opening over time
# The true inner-lip gap (black) against each model's, with the waveform underneath on the
# same time axis: lips should open where the speech is loud, at the same moments.

# %%
trace_models = [p for p in run.predictors if p.name != "mean_face"]
for clip in evaluate.choose_video_clips(run.clips, trace_clips, seed):
    predictions = {p.name: p.predict_landmarks(clip) for p in trace_models}
    save(render.plot_mouth_traces(clip, predictions), f"evaluation_trace_{clip.clip_id}.png")

# %% [markdown]
# ## Side-by-side videos
# Real frame | true keypoints | predicted keypoints of the original replica and the default
# model, drawn as vid2vid sees them (edge maps, cropped like vid2vid), with the clip's
# audio - the format of the original project's result videos, but on held-out speech.

# %%
known_problems = len(run.problems)
videos = evaluate.write_videos(run, corpus, out / "evaluation_videos", video_clips, seed)
for path in videos:
    display(HTML(render.video_html(path, width=256 * 4)))
for problem in run.problems[known_problems:]:
    display(Markdown(f"**Warning:** {problem}"))
if not videos:
    display(Markdown("No video written (see the warnings above)."))

# %% [markdown]
# ## Saved results
# `metrics.csv` (one row per model x clip), `metrics.json` ({model: {metric: value}} plus
# per emotion / speaker and the target checks), `metrics_by_model.csv`,
# `target_checks.csv`, and the headline numbers in `metrics_evaluation.json`.

# %%
run.files = evaluate.write_results(run.table, out, run.summary, run.checks)
headline_model = "default" if "default" in by_model.index else by_model.index[-1]
headline = {
    "model": headline_model,
    "split": split,
    "n_clips": len(run.clips),
    "n_frames_scored": int(by_model.loc[headline_model, "n_frames_scored"]),
    "targets_met": passed,
    "targets_total": len(run.checks),
    "missing": run.problems,
    **{k: by_model.loc[headline_model, k] for k in evaluate.METRICS},
    "mouth_lmd_vs_mean_face": run.checks.set_index("target").loc["mouth LMD vs mean face", "value"],
    "mouth_lmd_vs_original": run.checks.set_index("target").loc[
        "mouth LMD vs original replica", "value"
    ],
    "pooled_av_offset_ms": (
        float(pooled.loc[headline_model, "lag_ms"]) if headline_model in pooled.index else None
    ),
}
headline = {
    k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in headline.items()
}
write_json(out / "metrics_evaluation.json", headline)
print(json.dumps(headline, indent=1, default=str))
print("\n".join(str(p) for p in run.files.values()))
