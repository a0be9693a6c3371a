"""Checkpoint files, and the fingerprint of the data a model was trained on.

A checkpoint (``torch.save`` of plain values, read with ``weights_only=True``) holds the
model's config and weights, its ``TrainConfig``, the inference ``context`` (target
normaliser, feature config and statistics, corpus) and a ``fingerprint`` of what it was
trained on:

- ``corpus`` and ``speakers`` (the training clips' speakers),
- ``split``: the settings the corpus split was made with and a digest of every clip's
  assignment,
- ``train_clips``: every training clip id with its extraction fingerprint (source file +
  extraction parameters, from the extraction manifest),
- ``features``: the corpus's feature config and a digest of its train statistics;
  ``inputs``: what the model was fed (the same, or e.g. the original's raw MFCC),
- ``normalizer``: a digest of the target normaliser's state,
- ``window``: the audio window.

``fingerprint_changes(saved, current)`` names what differs. Resuming a run on changed
data trains afresh (saying why); ``verify_against_corpus`` refuses a checkpoint whose
corpus has changed since (evaluation, ``load_predictor(..., corpus=...)``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wav2kp.atomic import atomic_path
from wav2kp.config import config_digest

CHECKPOINT_FORMAT = "wav2kp-checkpoint-2"


class CheckpointMismatch(ValueError):
    """A checkpoint was trained on other data than it is being used with."""


def plain(value: Any) -> Any:
    """Objects -> plain values torch.load(weights_only=True) accepts."""
    if hasattr(value, "state_dict") and not isinstance(value, torch.nn.Module):
        return plain(value.state_dict())
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def save_checkpoint(path: Path, payload: dict) -> Path:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable wav2kp checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        hint = f" (an older {found} file: train it again)" if found else ""
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} file{hint}")
    return payload


# ---------------------------------------------------------------- fingerprints


def split_digest(assignment: dict[str, str]) -> str:
    """Digest of a clip -> split assignment (order-free)."""
    return config_digest(sorted((str(k), str(v)) for k, v in assignment.items()))


def digest_of(value: Any) -> str:
    """Digest of an object's state (normaliser, feature stats); "" for None."""
    return "" if value is None else config_digest(plain(value))


def training_fingerprint(clips: Sequence, context: dict, inputs: dict, window: dict) -> dict:
    """The fingerprint of a training run on ``clips`` (ClipData) with the corpus
    ``context`` (``load_corpus_for_training``'s: corpus, split, feature config and
    stats, normaliser) and the model's own ``inputs`` ({"config", "stats"})."""
    return {
        "corpus": str(context.get("corpus", "")),
        "speakers": sorted({str(c.speaker) for c in clips}),
        "split": dict(context.get("split") or {}),
        # the corpus's own clips: copies derived from them (waveform augmentation,
        # synthetic voices) follow from these and the training config, and are not in the
        # corpus a later load is checked against
        "train_clips": {
            str(c.clip_id): str(c.extra.get("extraction_fingerprint", ""))
            for c in clips
            if not c.is_derived
        },
        "features": {
            "config": plain(context.get("feature_config")) or {},
            "stats": digest_of(context.get("feature_stats")),
        },
        "inputs": {"config": plain(inputs.get("config")) or {}, "stats": inputs.get("stats", "")},
        "normalizer": digest_of(context.get("normalizer")),
        "window": dict(window),
    }


def _describe_dict_change(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    parts = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return ", ".join(parts) or "changed"


def _clip_changes(old: dict, new: dict, what: str = "train clips") -> list[str]:
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
    out = []

    def listed(ids):
        return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    if added:
        out.append(f"{what}: {len(added)} added ({listed(added)})")
    if removed:
        out.append(f"{what}: {len(removed)} removed ({listed(removed)})")
    if changed:
        out.append(f"{what}: {len(changed)} re-extracted ({listed(changed)})")
    return out


def fingerprint_changes(saved: dict | None, current: dict, items: Sequence[str] | None = None):
    """One line per item of ``current`` that differs from ``saved`` (all items, or only
    ``items``), naming what changed. A checkpoint without a fingerprint differs in all."""
    if not saved:
        return ["the checkpoint holds no fingerprint of its training data"]
    out: list[str] = []
    for item in items or list(current):
        old, new = saved.get(item), current.get(item)
        if old == new:
            continue
        if item == "train_clips":
            out += _clip_changes(old or {}, new or {})
        elif item == "split":
            old_settings, new_settings = (old or {}).get("settings"), (new or {}).get("settings")
            if old_settings != new_settings:
                out.append(
                    f"split: {_describe_dict_change(old_settings or {}, new_settings or {})}"
                )
            else:
                out.append("split: clips assigned differently (same settings; clips added?)")
        elif item in ("features", "inputs"):
            old_config, new_config = (old or {}).get("config"), (new or {}).get("config")
            if old_config != new_config:
                out.append(f"{item}: {_describe_dict_change(old_config or {}, new_config or {})}")
            else:
                out.append(f"{item}: statistics refitted (other train clips)")
        elif isinstance(old, dict) and isinstance(new, dict):
            out.append(f"{item}: {_describe_dict_change(old, new)}")
        elif item == "normalizer":
            out.append("normalizer: refitted (other train clips or settings)")
        else:
            out.append(f"{item}: {old!r} -> {new!r}")
    return out


def corpus_state(corpus: str, root=None) -> dict:
    """The corpus's files as they are now, in fingerprint terms: ``corpus``, ``split``,
    ``features``, ``normalizer`` and every ok clip's extraction fingerprint."""
    import pandas as pd

    from wav2kp.features.features import FeatureStats, feature_stats_path
    from wav2kp.features.splits import split_settings_path
    from wav2kp.paths import CorpusPaths
    from wav2kp.windowing.dataset import load_normalizer, normalizer_path

    paths = CorpusPaths(corpus, root)
    state: dict[str, Any] = {"corpus": corpus}
    if paths.split_file.is_file():
        split = pd.read_csv(paths.split_file, dtype={"clip_id": str})
        settings_file = split_settings_path(corpus, root)
        state["split"] = {
            "settings": json.loads(settings_file.read_text()) if settings_file.is_file() else {},
            "digest": split_digest(dict(zip(split["clip_id"], split["split"], strict=True))),
        }
    if feature_stats_path(corpus, root).is_file():
        stats = FeatureStats.load(feature_stats_path(corpus, root))
        state["features"] = {"config": stats.feature_config.to_dict(), "stats": digest_of(stats)}
    if normalizer_path(corpus, root).is_file():
        state["normalizer"] = digest_of(load_normalizer(corpus, root))
    manifest = paths.extracted / "manifest.csv"
    clips: dict[str, str] = {}
    if manifest.is_file():
        table = pd.read_csv(manifest, dtype=str).fillna("")
        if "status" in table:
            table = table[table["status"] == "ok"]
        fingerprints = table["fingerprint"] if "fingerprint" in table else [""] * len(table)
        clips = dict(zip(table["clip_id"], fingerprints, strict=True))
    state["clips"] = clips
    return state


def verify_against_corpus(payload: dict, corpus: str, root=None, source: str = "") -> None:
    """Raise ``CheckpointMismatch`` naming every change when the corpus's split, feature
    statistics, target normaliser or the training clips' extraction differ from what the
    checkpoint was trained on."""
    saved = payload.get("fingerprint")
    name = source or "checkpoint"
    if not saved:
        raise CheckpointMismatch(f"{name}: holds no fingerprint of its training data")
    if saved.get("corpus") and saved["corpus"] != corpus:
        raise CheckpointMismatch(f"{name}: trained on corpus {saved['corpus']!r}, not {corpus!r}")
    state = corpus_state(corpus, root)
    current = {k: state[k] for k in ("split", "features", "normalizer") if k in state}
    current["train_clips"] = {
        cid: state["clips"][cid] for cid in saved.get("train_clips", {}) if cid in state["clips"]
    }
    changes = fingerprint_changes(saved, current, items=list(current))
    if changes:
        raise CheckpointMismatch(
            f"{name}: corpus {corpus!r} changed since this model was trained - "
            + "; ".join(changes)
            + " (train it again)"
        )
