"""Demo corpus generation: layout, determinism, resume and the face-mesh detector check."""

from __future__ import annotations

import re
import subprocess

import imageio_ffmpeg
import numpy as np
import pandas as pd
import pytest
from wav2kp.demo.corpus import (
    MANIFEST_COLUMNS,
    SIZES,
    build_corpus,
    clip_specs,
    corpus_size,
    frame_times,
    synthesize_clip,
)
from wav2kp.demo.validate import validate_corpus

# half of the tiny corpus (both speakers and emotions, 3 of its 6 sentences) keeps the
# suite fast on a shared 2-core machine; CI builds the whole tiny corpus in the chain
SUBSET = [s.clip_id for s in clip_specs("tiny") if s.sentence_id in ("s01", "s02", "s05")]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-tiny")
    manifest = build_corpus(folder, size="tiny", seed=0, workers=2, progress=False, clip_ids=SUBSET)
    return folder, manifest


def test_tiny_corpus_layout_and_manifest(tiny_corpus):
    folder, manifest = tiny_corpus
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert len(clip_specs("tiny")) == 24
    assert clip_specs("tiny")[0].sentence_id == "s01"
    assert len({s.sentence_id for s in clip_specs("tiny")}) >= 6  # a split by sentence
    assert list(manifest["clip_id"]) == SUBSET
    assert set(manifest["speaker"]) == {"astronaut", "hopper"}
    assert set(manifest["emotion"]) == {"neutral", "joy"}
    assert (manifest["clip_id"] == manifest["speaker"] + "_" + manifest["emotion"] + "_"
            + manifest["sentence_id"]).all()  # fmt: skip
    on_disk = pd.read_csv(folder / "manifest.csv")
    pd.testing.assert_frame_equal(on_disk, manifest, check_dtype=False)
    for rec in manifest.to_dict("records"):
        assert (folder / rec["file"]).is_file() and (folder / rec["tracks_file"]).is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_clip_video_matches_tracks_and_audio(tiny_corpus):
    folder, manifest = tiny_corpus
    rec = manifest.iloc[0]
    tracks = pd.read_csv(folder / rec["tracks_file"])
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(folder / rec["file"]))
    assert frames == len(tracks)
    np.testing.assert_allclose(tracks["time"], frame_times(len(tracks)), atol=1e-5)
    assert abs(rec["duration"] - len(tracks) * 1001 / 30000) < 1e-3
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i",
                           str(folder / rec["file"])], capture_output=True, text=True).stderr  # fmt: skip
    assert re.search(r"h264.*yuv420p.*512x512", info) and "29.97 fps" in info
    assert re.search(r"Audio: aac.*44100 Hz", info)
    for column in ("jaw", "spread", "round", "blink", "head_roll", "head_tx", "phoneme"):
        assert column in tracks
    assert tracks["jaw"].between(0, 1.2).all() and tracks["blink"].between(0, 1).all()
    # speech in the middle, rest at both ends
    assert tracks["jaw"].max() > 0.3 and tracks["jaw"].iloc[:3].max() < 0.1
    # bilabial closures appear in the tracks of a sentence full of p/b/m
    s01 = pd.read_csv(folder / "hopper_neutral_s01.tracks.csv")
    assert (s01["closure"] > 0.99).sum() >= 4 and (
        s01.loc[s01["closure"] > 0.99, "jaw"] < 1e-4
    ).all()


def test_same_seed_same_tracks_and_manifest(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    ids = ["astronaut_joy_s02", "hopper_neutral_s05"]
    assert set(ids) <= set(SUBSET)
    again = build_corpus(tmp_path, size="tiny", seed=0, workers=1, progress=False, clip_ids=ids)
    for cid in ids:
        assert (tmp_path / f"{cid}.tracks.csv").read_bytes() == (
            folder / f"{cid}.tracks.csv"
        ).read_bytes()
    full = pd.read_csv(folder / "manifest.csv").set_index("clip_id").loc[ids].reset_index()
    pd.testing.assert_frame_equal(again, full, check_dtype=False)


def test_different_seed_changes_the_clip():
    spec = clip_specs("tiny")[0]
    a, b = synthesize_clip(spec, seed=0), synthesize_clip(spec, seed=1)
    assert not np.array_equal(a["tracks"]["blink"].to_numpy()[:50], b["tracks"]["blink"].to_numpy()[:50]) or len(a["tracks"]) != len(b["tracks"])  # fmt: skip


def test_resume_skips_complete_clips(tiny_corpus, tmp_path):
    ids = ["hopper_joy_s01", "hopper_joy_s02"]
    build_corpus(tmp_path, size="tiny", workers=1, progress=False, clip_ids=ids)
    done = tmp_path / "hopper_joy_s01.mp4"
    stamp = done.stat().st_mtime_ns
    (tmp_path / "hopper_joy_s02.mp4").unlink()  # an interrupted clip
    manifest = build_corpus(tmp_path, size="tiny", workers=1, progress=False, clip_ids=ids)
    assert done.stat().st_mtime_ns == stamp  # untouched
    assert (tmp_path / "hopper_joy_s02.mp4").is_file()  # redone
    assert list(manifest["clip_id"]) == ids
    # another seed must not mix with the clips of this one: everything is redone and
    # the old seed's clips are gone (extraction reads every video in the folder)
    build_corpus(tmp_path, size="tiny", seed=3, workers=1, progress=False, clip_ids=ids[:1])
    assert done.stat().st_mtime_ns != stamp
    assert not (tmp_path / "hopper_joy_s02.mp4").exists()
    assert not (tmp_path / "hopper_joy_s02.tracks.csv").exists()


def test_detector_sees_the_commanded_mouth(tiny_corpus):
    folder, _ = tiny_corpus
    table, overall = validate_corpus(folder, progress=False)
    assert overall["errors"] == 0 and overall["clips"] == len(SUBSET)
    assert overall["detection_rate"] >= 0.99
    assert overall["r_jaw"] >= 0.9, table
    assert table["r_jaw"].min() >= 0.7, table


def test_corpus_names_and_bad_input(tmp_path):
    assert corpus_size("demo") == "default"
    assert corpus_size("demo-tiny") == "tiny"
    with pytest.raises(ValueError, match="demo corpus name"):
        corpus_size("myvideos")
    with pytest.raises(ValueError, match="unknown demo corpus size"):
        build_corpus(tmp_path, size="huge")
    with pytest.raises(ValueError, match="not clips"):
        build_corpus(tmp_path, size="tiny", clip_ids=["nobody_joy_s01"])
    default = SIZES["default"]
    assert len(default.sentences) >= 12 and len(default.emotions) >= 4


def test_cli_options():
    from wav2kp.cli import build_parser

    args = build_parser(load="demo").parse_args(
        ["demo", "--corpus", "demo-tiny", "--seed", "3", "--workers", "1", "--check"]
    )
    assert (args.corpus, args.seed, args.workers, args.check, args.size) == (
        "demo-tiny", 3, 1, True, None,
    )  # fmt: skip
    with pytest.raises(SystemExit):
        build_parser(load="demo").parse_args(["demo", "--size", "huge"])


def test_a_failing_clip_is_named_and_the_batch_carries_on(tmp_path, monkeypatch):
    import wav2kp.demo.corpus as corpus

    real = corpus.make_clip

    def flaky(spec, out_dir, seed=0):
        if spec.clip_id == "hopper_joy_s01":
            raise RuntimeError("espeak-ng exploded")
        return real(spec, out_dir, seed)

    monkeypatch.setattr(corpus, "make_clip", flaky)
    ids = ["hopper_joy_s01", "hopper_joy_s02"]
    with pytest.raises(RuntimeError, match=r"hopper_joy_s01\.mp4: espeak-ng exploded"):
        build_corpus(tmp_path, size="tiny", workers=1, progress=False, clip_ids=ids)
    assert (tmp_path / "hopper_joy_s02.mp4").is_file()
    written = pd.read_csv(tmp_path / "manifest.csv")
    assert list(written["clip_id"]) == ["hopper_joy_s02"]
