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
# # 02 - Audio features, the split, and an A/V sync check
#
# This step turns each extracted clip's 16 kHz audio into a sequence of feature frames
# (`wav2kp.features.features`), decides once which clips are used for training, validation and
# testing (`wav2kp.features.splits`), and checks that sound and mouth motion are in sync
# (`wav2kp.features.sync`).
#
# * **Features.** Log-mel energies (torchaudio, 40 mel bands, in dB), 25 ms windows
#   every 12.5 ms (80 frames/s), the original project's framing. Frame *k* is centred at
#   *k* x 12.5 ms; these times are what notebook 03 aligns keypoint frames to. The
#   original used 40 MFCC from the same 40 bands (`feature_kind="mfcc"`); on the demo
#   corpus log-mel predicts mouth opening better on held-out sentences
#   (`wav2kp cv --study design`, shown in notebook 04). Options:
#   MFCC, more mel bands, delta and delta-delta features.
# * **Phonetic stream** (`phones="allphone"`, issue 17): log-mel describes one speaker's
#   spectrum; a phone recogniser trained on many speakers says what is said, whoever says
#   it. pocketsphinx (its US-English model ships in the wheel) decodes phones without a
#   transcript; each frame gets its viseme class (one-hot: phones that look alike on the
#   lips share one) and its position within the phone, appended to the log-mel frame
#   (`wav2kp.features.phonetic`; `wav2kp bench phones` scores the phones against forced
#   alignment of GRID's transcripts).
# * **Split.** Whole sentences are held out (as the original did): a sentence text in
#   val or test never appears in training, so a model cannot pass by memorising a
#   text's mouth motion. `split_by="speaker"` holds out whole people instead. The split
#   is saved once (`processed/<corpus>/split.csv`) and reused by every model.
# * **Normalisation stats** (per-dimension mean/std) are fitted on the training clips
#   only and saved for training and inference.
# * **A/V sync.** Loudness rises when the mouth opens, so per clip we find the lag
#   (within +-120 ms) that best correlates the audio's log-RMS envelope with the inner-lip
#   gap. A clip far from the corpus median points at a badly muxed file.

# %% tags=["parameters"]
corpus = None  # None: the default in wav2kp.config.RunConfig (for every run parameter)
profile = None  # a named set of run values (wav2kp.config.PROFILES: fast, full, grid)
output_dir = "reports/scratch"
feature_kind = None  # "logmel" or "mfcc" (the original's)
n_mfcc = None
n_mels = None
deltas = None  # append delta and delta-delta features
cmvn = None  # sliding per-band normalisation: "none", "mean" or "meanvar"
floor_db = None  # log-mel level floor, dB below the window's loudest frame (None: off)
phones = None  # the phonetic stream: "allphone" or "none"
split_by = None  # "sentence" or "speaker"
val_fraction = None
test_fraction = None
split_seed = None  # the split's own seed (fixed; training seeds are notebook 04's)
workers = None  # threads for the features
# A/V lag search range: +-120 ms. On GRID's 3 s sentences +-300 ms let a quarter of the
# clips lock onto a neighbouring syllable (+-200-300 ms); a file muxed further off than
# 120 ms still shows up, as a lag at the limit ("weak", listed below).
max_lag_ms = 120.0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display
from wav2kp.atomic import write_csv, write_json
from wav2kp.config import FeatureConfig, RunConfig
from wav2kp.credits import corpus_credit
from wav2kp.extraction.reader import read_extraction
from wav2kp.features.features import compute_corpus_features, fit_feature_stats, read_features
from wav2kp.features.splits import check_no_overlap, ensure_split, split_summary
from wav2kp.features.sync import audio_envelope, corpus_av_lags, mouth_opening
from wav2kp.media.audio import load_audio
from wav2kp.paths import CorpusPaths, resolve_output_dir

cfg = RunConfig.from_parameters(globals())
corpus = cfg.corpus
out = resolve_output_dir(output_dir)
paths = CorpusPaths(corpus)
sns.set_theme(style="whitegrid", context="notebook")
config = FeatureConfig(**cfg.feature_settings)
if corpus_credit(corpus):
    display(Markdown(f"Results on this corpus: **{corpus_credit(corpus)}**."))
print(config, f"-> {config.dim} dims at {config.frame_rate:g} frames/s")

# %% [markdown]
# ## The split
# Made once and saved; a later run (or another model) reuses it unchanged.

# %%
split = ensure_split(corpus, **cfg.split_settings)
check_no_overlap(split, "group")
if "sentence_id" in split.columns and cfg.split_by == "sentence":
    check_no_overlap(split, "sentence_id")
summary = split_summary(split)
write_csv(out / "split_summary.csv", summary.reset_index())
display(summary)

# %% [markdown]
# ## Features for every clip
# Written as `processed/<corpus>/features/<clip_id>.npz`; files whose audio and settings
# are unchanged are skipped. Stats are then fitted on the training clips only.

# %%
result = compute_corpus_features(corpus, config, workers=cfg.workers)
display(result["status"].value_counts().to_frame())
errors = result[result["status"] == "error"]
if len(errors):
    display(errors[["clip_id", "error"]])
stats = fit_feature_stats(corpus, split, config)
print(f"stats from {len(stats.clip_ids)} train clips, {stats.n_frames} frames")

# %% [markdown]
# ## Features and mouth opening on one time axis
# The feature image (log-mel by default) of one training clip above its inner-lip gap (normalised by the
# inter-ocular distance) and the audio loudness. Mouth opening peaks should coincide
# with loud (vowel) stretches.

# %%
example = split.loc[split["split"] == "train", "clip_id"].iloc[0]
features, feature_times, _, _ = read_features(paths.features / f"{example}.npz")
extraction = read_extraction(paths.extracted / f"{example}.npz")
opening = np.where(extraction.valid, mouth_opening(extraction.lm68), np.nan)
samples, sr = load_audio(paths.audio / f"{example}.wav")

fig, axes = plt.subplots(
    2, 1, figsize=(11, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
)
hop = feature_times[1] - feature_times[0]
# Shown normalised with the train stats: raw coefficient 0 (energy) would swamp the colours.
axes[0].imshow(
    stats.apply(features)[:, : config.base_dim].T,
    aspect="auto",
    origin="lower",
    cmap="coolwarm",
    vmin=-3,
    vmax=3,
    extent=[feature_times[0] - hop / 2, feature_times[-1] + hop / 2, -0.5, config.base_dim - 0.5],
)
axes[0].set_ylabel(f"{config.kind} (z-score)")
axes[0].grid(False)
axes[0].set_title(f"{example}: {config.kind} ({config.frame_rate:g} frames/s) and mouth opening")
axes[1].plot(extraction.times, opening, color="tab:red", label="inner-lip gap / IOD")
axes[1].set_ylabel("mouth opening")
loud = axes[1].twinx()
loud.plot(
    feature_times, audio_envelope(samples, sr, feature_times), color="tab:blue", alpha=0.5, lw=1
)
loud.set_ylabel("log RMS (dB)", color="tab:blue")
loud.grid(False)
axes[1].set_xlabel("time (s)")
axes[1].legend(loc="upper right")
fig.tight_layout()
fig.savefig(out / "features_and_mouth.png", dpi=120)
plt.show()

# %% [markdown]
# ## The phonetic stream
# With `phones="allphone"`, the same clip's decoded viseme classes above its mouth
# opening: bilabials (p, b, m) should sit on the gap's closures, open vowels on its peaks.

# %%
if config.phonetic_dim:
    from wav2kp.features.phonetic import VISEMES
    from wav2kp.plots.phones import plot_phonetic_stream

    fig = plot_phonetic_stream(features, feature_times, config, extraction.times, opening,
                               VISEMES, title=f"{example}: phonetic stream and mouth opening")  # fmt: skip
    fig.savefig(out / "phonetic_stream.png", dpi=120)
    plt.show()
else:
    print("phones='none': no phonetic stream in this run's features")

# %% [markdown]
# ## A/V lag per clip
# Positive lag: the mouth moves after the sound. Clips with weak correlation (little
# speech) give no trustworthy lag; outliers are far from the corpus median.

# %%
lags = corpus_av_lags(corpus, max_lag_ms=max_lag_ms)
write_csv(out / "av_lags.csv", lags)
fig, ax = plt.subplots(figsize=(8, 3.5))
trusted = lags[~lags["weak"]]
sns.histplot(trusted["lag_ms"], binwidth=10, ax=ax, color="tab:blue", label="clips")
for _, row in lags[lags["outlier"]].iterrows():
    ax.axvline(row["lag_ms"], color="tab:red", ls="--", lw=1)
    ax.annotate(
        row["clip_id"],
        (row["lag_ms"], ax.get_ylim()[1] * 0.9),
        color="tab:red",
        fontsize=8,
        rotation=90,
    )
if len(trusted):
    ax.axvline(trusted["lag_ms"].median(), color="black", lw=1, label="median")
ax.set_xlabel("lag of mouth opening behind audio loudness (ms)")
ax.set_title(f"A/V lag, {len(trusted)} clips ({int(lags['outlier'].sum())} outliers in red)")
ax.legend()
fig.tight_layout()
fig.savefig(out / "av_lag.png", dpi=120)
plt.show()
flagged = lags[lags["outlier"] | lags["weak"]]
display(flagged if len(flagged) else "no clip flagged")

# %%
metrics = {
    "clips": int(len(split)),
    "clips_per_split": {k: int(v) for k, v in summary["clips"].items()},
    "groups_per_split": {k: int(v) for k, v in summary["groups"].items()},
    "split_by": cfg.split_by,
    "feature_kind": config.kind,
    "feature_dim": config.dim,
    "feature_frames_per_s": config.frame_rate,
    "feature_errors": int((result["status"] == "error").sum()),
    "stats_train_frames": int(stats.n_frames),
    "av_lag_median_ms": float(trusted["lag_ms"].median()) if len(trusted) else None,
    "av_lag_mad_ms": float((trusted["lag_ms"] - trusted["lag_ms"].median()).abs().median())
    if len(trusted)
    else None,
    "av_lag_correlation_mean": float(lags["correlation"].mean()) if len(lags) else None,
    "av_lag_outliers": int(lags["outlier"].sum()),
    "av_lag_weak": int(lags["weak"].sum()),
}
write_json(out / "metrics_features.json", metrics)
pd.Series(metrics, dtype=object).to_frame("value")
