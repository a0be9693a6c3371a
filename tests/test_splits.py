"""Held-out-sentence (and speaker) splits: no overlap, deterministic, reused once saved."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wav2kp.features.splits import (
    check_no_overlap,
    ensure_split,
    load_split,
    make_split,
    split_summary,
)
from wav2kp.paths import CorpusPaths


def manifest_of(
    n_sentences: int, speakers=("ann", "bob"), emotions=("joy", "anger")
) -> pd.DataFrame:
    rows = [
        {"clip_id": f"{sp}_{em}_s{s:02d}", "speaker": sp, "emotion": em, "sentence_id": f"s{s:02d}"}
        for sp in speakers
        for em in emotions
        for s in range(n_sentences)
    ]
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(
    n_sentences=st.integers(1, 30),
    n_speakers=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    val=st.floats(0, 0.4),
    test=st.floats(0, 0.4),
)
def test_no_sentence_in_two_splits_and_deterministic(n_sentences, n_speakers, seed, val, test):
    manifest = manifest_of(n_sentences, speakers=[f"p{i}" for i in range(n_speakers)])
    split = make_split(manifest, val_fraction=val, test_fraction=test, seed=seed)
    check_no_overlap(split, "sentence_id")
    assert split["clip_id"].tolist() == manifest["clip_id"].tolist()
    assert split.equals(make_split(manifest.sample(frac=1, random_state=1), val_fraction=val,
                                   test_fraction=test, seed=seed).set_index("clip_id")
                        .loc[manifest["clip_id"]].reset_index())  # fmt: skip
    counts = split.groupby("split")["sentence_id"].nunique()
    assert counts.get("train", 0) >= 1
    if n_sentences >= 3 and val > 0 and test > 0:
        assert counts.get("val", 0) >= 1 and counts.get("test", 0) >= 1


def test_tiny_corpus_of_six_sentences_is_4_1_1():
    split = make_split(manifest_of(6), seed=0)
    summary = split_summary(split)
    assert summary["sentences"].to_dict() == {"train": 4, "val": 1, "test": 1}
    assert summary["clips"].sum() == 24


def test_split_by_speaker_holds_out_people():
    manifest = manifest_of(4, speakers=("a", "b", "c", "d", "e", "f"))
    split = make_split(manifest, by="speaker", seed=3)
    check_no_overlap(split, "speaker")
    assert set(split["split"]) == {"train", "val", "test"}


def test_different_seeds_give_different_splits():
    manifest = manifest_of(20)
    splits = {tuple(make_split(manifest, seed=s)["split"]) for s in range(5)}
    assert len(splits) > 1


def test_missing_metadata_makes_each_clip_its_own_group():
    manifest = pd.DataFrame({"clip_id": [f"v{i}" for i in range(10)]})
    split = make_split(manifest, seed=0)
    assert split["group"].tolist() == manifest["clip_id"].tolist()
    with pytest.raises(ValueError, match="more than once"):
        make_split(pd.DataFrame({"clip_id": ["a", "a"]}))
    with pytest.raises(ValueError, match="by must be"):
        make_split(manifest, by="emotion")


def write_manifest(paths: CorpusPaths, manifest: pd.DataFrame) -> None:
    paths.extracted.mkdir(parents=True, exist_ok=True)
    manifest.assign(status="ok").to_csv(paths.extracted / "manifest.csv", index=False)


def test_ensure_split_saves_once_and_reuses(tmp_path):
    paths = CorpusPaths("c", tmp_path)
    manifest = manifest_of(8)
    write_manifest(paths, manifest)
    first = ensure_split("c", seed=7, root=tmp_path)
    assert paths.split_file.is_file()
    again = ensure_split("c", root=tmp_path)  # unspecified settings: as saved
    assert again["split"].tolist() == first["split"].tolist()
    assert (
        ensure_split("c", seed=7, by="sentence", root=tmp_path)["split"].tolist()
        == first["split"].tolist()
    )
    # New clips: a known sentence joins its split, a new sentence goes to train.
    test_sentence = first.loc[first["split"] == "test", "sentence_id"].iloc[0]
    extra = pd.DataFrame(
        [
            {
                "clip_id": "carl_joy_x",
                "speaker": "carl",
                "emotion": "joy",
                "sentence_id": test_sentence,
            },
            {"clip_id": "carl_joy_new", "speaker": "carl", "emotion": "joy", "sentence_id": "s99"},
        ]
    )
    write_manifest(paths, pd.concat([manifest, extra]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grown = ensure_split("c", root=tmp_path).set_index("clip_id")["split"]
    assert any("2 new clip" in str(w.message) for w in caught)
    assert grown["carl_joy_x"] == "test" and grown["carl_joy_new"] == "train"
    check_no_overlap(load_split("c", tmp_path), "sentence_id")
    forced = ensure_split("c", seed=5, force=True, root=tmp_path)
    check_no_overlap(forced, "sentence_id")
    # Other settings than the saved split's: a new split, with a warning.
    with pytest.warns(UserWarning, match="making a new split"):
        by_speaker = ensure_split("c", by="speaker", root=tmp_path)
    check_no_overlap(by_speaker, "speaker")
    assert load_split("c", tmp_path)["split"].tolist() == by_speaker["split"].tolist()


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.csv"):
        ensure_split("nothing", root=tmp_path)


def test_split_defaults_have_one_place(tmp_path, monkeypatch):
    """make_split, ensure_split and RunConfig all take their defaults from SplitConfig."""
    import dataclasses
    import inspect
    import json

    from wav2kp.config import RunConfig, SplitConfig
    from wav2kp.features import splits

    defaults = SplitConfig().to_dict()
    signature = inspect.signature(make_split).parameters
    assert {name: signature[name].default for name in defaults} == defaults
    assert RunConfig().split == SplitConfig() and RunConfig().split_settings == defaults
    # ensure_split reads SplitConfig when it runs: other defaults there make another split
    write_manifest(CorpusPaths("c", tmp_path), manifest_of(20))
    ensure_split("c", root=tmp_path)
    saved = json.loads(splits.split_settings_path("c", tmp_path).read_text())
    assert saved == defaults
    wider = dataclasses.make_dataclass(
        "Wider", [("val_fraction", float, 0.3)], bases=(SplitConfig,), frozen=True
    )
    monkeypatch.setattr(splits, "SplitConfig", wider)
    write_manifest(CorpusPaths("d", tmp_path), manifest_of(20))
    split = ensure_split("d", root=tmp_path)
    assert json.loads(splits.split_settings_path("d", tmp_path).read_text())["val_fraction"] == 0.3
    assert (split["split"] == "val").sum() > (load_split("c", tmp_path)["split"] == "val").sum()
