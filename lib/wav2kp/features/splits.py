"""Train / val / test split of a corpus, by held-out sentence (or speaker).

The original project held out whole sentence texts: a sentence seen in validation or
test never appears in training, so a model cannot score well by memorising a text's
mouth motion. We do the same by grouping clips on ``sentence_id`` (``by="sentence"``),
or on ``speaker`` to measure generalisation to unseen people (``by="speaker"``).

The split is made once per corpus (``processed/<corpus>/split.csv``) and reused by every
model, so results stay comparable.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.atomic import write_csv, write_json
from wav2kp.config import SplitConfig
from wav2kp.paths import CorpusPaths

SPLITS = ("train", "val", "test")
SPLIT_BY = ("sentence", "speaker")


def clip_groups(manifest: pd.DataFrame, by: str = SplitConfig.by) -> pd.Series:
    """The group each clip belongs to (sentence_id or speaker); a clip without the
    metadata is its own group (a folder of videos with no manifest)."""
    if by not in SPLIT_BY:
        raise ValueError(f"split by must be one of {SPLIT_BY}, got {by!r}")
    column = "sentence_id" if by == "sentence" else "speaker"
    if column in manifest.columns:
        groups = manifest[column].astype("string")
        missing = groups.isna() | (groups.str.strip() == "")
        groups = groups.mask(missing, manifest["clip_id"].astype("string"))
    else:
        groups = manifest["clip_id"].astype("string")
    return groups.astype(str)


def _group_counts(n_groups: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """How many groups go to val and test: at least one each when possible, training
    always keeps at least one group."""
    n_test = int(round(test_fraction * n_groups))
    n_val = int(round(val_fraction * n_groups))
    if test_fraction > 0 and n_groups >= 2:
        n_test = max(n_test, 1)
    if val_fraction > 0 and n_groups >= 3:
        n_val = max(n_val, 1)
    # Training keeps at least one group; shrink val first, then test.
    while n_val + n_test > n_groups - 1 and n_val > 0:
        n_val -= 1
    while n_val + n_test > n_groups - 1 and n_test > 0:
        n_test -= 1
    return n_val, n_test


def make_split(
    manifest: pd.DataFrame,
    by: str = SplitConfig.by,
    val_fraction: float = SplitConfig.val_fraction,
    test_fraction: float = SplitConfig.test_fraction,
    seed: int = SplitConfig.seed,
) -> pd.DataFrame:
    """Assign every clip of ``manifest`` (needs ``clip_id``) to train / val / test.

    Whole groups (sentences or speakers) go to one split, chosen by a seeded shuffle of
    the sorted group names, so the result depends only on the group names and the seed.
    Returns ``clip_id, split, group`` (+ ``speaker``, ``sentence_id`` when known), in
    the manifest's order.
    """
    if "clip_id" not in manifest.columns:
        raise ValueError("manifest has no clip_id column")
    if manifest["clip_id"].duplicated().any():
        dupes = manifest.loc[manifest["clip_id"].duplicated(), "clip_id"].tolist()
        raise ValueError(f"manifest lists clip_id more than once: {dupes[:5]}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    groups = clip_groups(manifest, by)
    names = sorted(groups.unique())
    order = np.random.default_rng(seed).permutation(len(names))
    shuffled = [names[i] for i in order]
    n_val, n_test = _group_counts(len(names), val_fraction, test_fraction)
    assignment = {g: "test" for g in shuffled[:n_test]}
    assignment.update({g: "val" for g in shuffled[n_test : n_test + n_val]})
    out = pd.DataFrame(
        {
            "clip_id": manifest["clip_id"].astype(str).to_numpy(),
            "split": [assignment.get(g, "train") for g in groups],
            "group": groups.to_numpy(),
        }
    )
    for column in ("speaker", "sentence_id"):
        if column in manifest.columns:
            out[column] = manifest[column].to_numpy()
    return out


def split_summary(split: pd.DataFrame) -> pd.DataFrame:
    """Clips, groups (and sentences / speakers when known) per split, train/val/test order."""
    agg = {"clips": ("clip_id", "count"), "groups": ("group", "nunique")}
    for column in ("sentence_id", "speaker"):
        if column in split.columns:
            agg[f"{column.removesuffix('_id')}s"] = (column, "nunique")
    summary = split.groupby("split").agg(**agg)
    return summary.reindex([s for s in SPLITS if s in summary.index])


def check_no_overlap(split: pd.DataFrame, column: str = "group") -> None:
    """Raise if any value of ``column`` (default the split group) sits in two splits."""
    per_value = split.groupby(column)["split"].nunique()
    leaking = per_value[per_value > 1]
    if len(leaking):
        raise AssertionError(
            f"{column} values found in more than one split: {list(leaking.index)[:5]}"
        )


def ok_clips(corpus: str, root=None) -> pd.DataFrame:
    """The extraction manifest's rows with status ``ok``."""
    paths = CorpusPaths(corpus, root)
    manifest_file = paths.extracted / "manifest.csv"
    if not manifest_file.is_file():
        raise FileNotFoundError(
            f"{manifest_file}: no extraction manifest; run `wav2kp extract` first"
        )
    manifest = pd.read_csv(
        manifest_file, dtype={"clip_id": str, "sentence_id": str, "speaker": str}
    )
    if "status" in manifest.columns:
        manifest = manifest[manifest["status"] == "ok"]
    return manifest.reset_index(drop=True)


def ensure_split(
    corpus: str,
    by: str | None = None,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    seed: int | None = None,
    force: bool = False,
    root=None,
) -> pd.DataFrame:
    """The corpus split: read ``split.csv`` if it exists, else make and save it.

    A setting left ``None`` means "as the saved split was made" (or the default,
    ``wav2kp.config.SplitConfig``). A saved split is never reshuffled unless
    ``force``, or a setting is given that differs from the one it was made with (then a
    new split is made, with a warning), so every model sees the same held-out clips.
    Clips extracted after the split was made join the split of their group when that
    group is known, else training (never val/test, which would change what earlier
    models were tested on).
    """
    paths = CorpusPaths(corpus, root)
    manifest = ok_clips(corpus, root)
    settings_file = split_settings_path(corpus, root)
    have_split = paths.split_file.is_file()
    saved_settings = SplitConfig().to_dict()
    if have_split and settings_file.is_file():
        saved_settings.update(json.loads(settings_file.read_text()))
    asked = {"by": by, "val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed}
    settings = {k: saved_settings[k] if v is None else v for k, v in asked.items()}
    if have_split and not force and settings != saved_settings:
        warnings.warn(
            f"{paths.split_file}: made with {saved_settings}, now asked for {settings}: "
            "making a new split (models trained on the old one are not comparable)",
            stacklevel=2,
        )
        force = True
    if have_split and not force:
        saved = pd.read_csv(paths.split_file, dtype={"clip_id": str, "group": str})
        new = manifest[~manifest["clip_id"].isin(saved["clip_id"])]
        if len(new) == 0:
            if not settings_file.is_file():
                write_json(settings_file, settings)
            return saved
        group_split = dict(zip(saved["group"], saved["split"], strict=False))
        extra = make_split(new, by=settings["by"], val_fraction=0, test_fraction=0)
        extra["split"] = [group_split.get(g, "train") for g in extra["group"]]
        warnings.warn(
            f"{paths.split_file}: {len(new)} new clip(s) added to the saved split",
            stacklevel=2,
        )
        split = pd.concat([saved, extra], ignore_index=True)
    else:
        split = make_split(manifest, **settings)
    write_csv(paths.split_file, split)
    write_json(settings_file, settings)
    return split


def split_settings_path(corpus: str, root=None) -> Path:
    """The settings a saved split was made with (beside ``split.csv``)."""
    return CorpusPaths(corpus, root).processed / "split.json"


def load_split(corpus: str, root=None) -> pd.DataFrame:
    paths = CorpusPaths(corpus, root)
    if not paths.split_file.is_file():
        raise FileNotFoundError(
            f"{paths.split_file}: no split yet; run notebook 02 or `wav2kp features`"
        )
    return pd.read_csv(paths.split_file, dtype={"clip_id": str, "group": str})
