"""The phonetic stream of one clip on a time axis, above its mouth opening (notebook 02)."""

from __future__ import annotations

import numpy as np


def plot_phonetic_stream(features, feature_times, config, mouth_times, opening, visemes, title=""):
    """A figure: the viseme class of each feature frame (``config.phones``' part of
    ``features``; ``visemes`` names the classes: ``wav2kp.features.phonetic.VISEMES``), the
    position within each phone, and the measured inner-lip gap."""
    import matplotlib.pyplot as plt

    names = tuple(visemes)

    if not config.phonetic_dim:
        raise ValueError(f"features of {config} carry no phonetic stream (phones='none')")
    stream = np.asarray(features)[:, config.spectral_dim :]
    classes, position = stream[:, :-1], stream[:, -1]
    fig, axes = plt.subplots(
        2, 1, figsize=(11, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    hop = feature_times[1] - feature_times[0]
    axes[0].imshow(classes.T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest",
                   extent=[feature_times[0] - hop / 2, feature_times[-1] + hop / 2, -0.5, len(names) - 0.5])  # fmt: skip
    axes[0].plot(feature_times, position * 0.8 - 0.4 + classes.argmax(axis=1), color="tab:orange",
                 lw=0.8, label="position within the phone")  # fmt: skip
    axes[0].set_yticks(range(len(names)), names)
    axes[0].grid(False)
    axes[0].legend(loc="upper right", fontsize="small")
    axes[0].set_title(title or "phonetic stream (pocketsphinx allphone, viseme classes)")
    axes[1].plot(mouth_times, opening, color="tab:red", label="inner-lip gap / IOD")
    axes[1].set_ylabel("mouth opening")
    axes[1].set_xlabel("time (s)")
    axes[1].legend(loc="upper right")
    fig.tight_layout()
    return fig
