"""Dataset loading from extraction + feature files, on a small generated corpus."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from wav2kp.config import FeatureConfig, WindowConfig
from wav2kp.extraction.reader import read_extraction
from wav2kp.features.features import FeatureStats, load_feature_stats
from wav2kp.paths import CorpusPaths
from wav2kp.windowing.dataset import (
    ClipData,
    clip_from_audio,
    fit_normalizer_and_stats,
    load_clips,
    load_normalizer,
)
from wav2kp.windowing.targets import TargetNormalizer, apply_pose


def synthetic_face(mouth_open: float = 0.0) -> np.ndarray:
    """A plausible 68-point face in inter-ocular units (y down); ``mouth_open`` lowers
    the lower lip and the chin."""
    pts = np.zeros((68, 2))
    t = np.linspace(np.pi, 0, 17)
    pts[0:17] = np.column_stack([0.9 * np.cos(t), 0.1 + np.sin(t)])
    pts[17:22] = np.column_stack([np.linspace(-0.8, -0.15, 5), np.full(5, -0.45)])
    pts[22:27] = np.column_stack([np.linspace(0.15, 0.8, 5), np.full(5, -0.45)])
    pts[27:31] = np.column_stack([np.zeros(4), np.linspace(-0.3, 0.25, 4)])
    pts[31:36] = np.column_stack([np.linspace(-0.2, 0.2, 5), np.full(5, 0.35)])
    for start, cx in ((36, -0.325), (42, 0.325)):
        a = np.linspace(np.pi, -np.pi, 7)[:-1]
        pts[start : start + 6] = np.column_stack([cx + 0.175 * np.cos(a), -0.2 - 0.06 * np.sin(a)])
    a = np.linspace(np.pi, -np.pi, 13)[:-1]
    pts[48:60] = np.column_stack([0.3 * np.cos(a), 0.6 - 0.1 * np.sin(a)])
    a = np.linspace(np.pi, -np.pi, 9)[:-1]
    pts[60:68] = np.column_stack([0.2 * np.cos(a), 0.6 - 0.03 * np.sin(a)])
    lower = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    jaw_weight = np.sin(np.linspace(0, np.pi, 17))
    pts[lower, 1] += mouth_open * jaw_weight
    pts[[55, 56, 57, 58, 59, 65, 66, 67], 1] += mouth_open
    return pts


def write_fake_corpus(root, corpus="fake", n_sentences=6, speakers=("ann", "bob"), seed=0):
    """Extraction + audio files as engineer B's stage writes them, for a few short clips:
    audio bursts drive the mouth opening, heads move with a random similarity pose."""
    rng = np.random.default_rng(seed)
    paths = CorpusPaths(corpus, root)
    paths.extracted.mkdir(parents=True)
    paths.audio.mkdir(parents=True)
    rows = []
    sr, fps = 16000, 30000 / 1001
    for speaker in speakers:
        for s in range(n_sentences):
            cid = f"{speaker}_neutral_s{s:02d}"
            duration = 1.0 + 0.1 * s
            n = int(duration * fps)
            times = np.arange(n) / fps
            opening = 0.15 * np.clip(np.sin(2 * np.pi * (2 + s * 0.3) * times), 0, None)
            t_audio = np.arange(int(duration * sr)) / sr
            envelope = np.interp(t_audio, times, opening / 0.15)
            audio = 0.3 * envelope * np.sin(
                2 * np.pi * 220 * t_audio
            ) + 0.001 * rng.standard_normal(len(t_audio))
            sf.write(paths.audio / f"{cid}.wav", audio.astype(np.float32), sr, subtype="PCM_16")
            pose = np.column_stack(
                [
                    80 + 5 * rng.standard_normal(n),
                    0.1 * rng.standard_normal(n),
                    200 + 10 * rng.standard_normal(n),
                    150 + 10 * rng.standard_normal(n),
                ]
            )
            faces = np.stack([synthetic_face(o) for o in opening])
            lm68 = apply_pose(faces, pose).astype(np.float32)
            status = np.zeros(n, dtype=np.int8)
            status[3] = 2
            lm68[3] = np.nan
            np.savez_compressed(
                paths.extracted / f"{cid}.npz",
                times=times, lm68=lm68, frame_status=status,
                width=np.array(400), height=np.array(300), fps=np.array(fps),
            )  # fmt: skip
            rows.append(
                {"clip_id": cid, "file": f"{cid}.mp4", "status": "ok", "error": "", "speaker": speaker,
                 "emotion": "neutral", "sentence_id": f"s{s:02d}", "text": f"sentence {s}"}
            )  # fmt: skip
    rows.append(
        {"clip_id": "broken", "file": "broken.mp4", "status": "error", "error": "broken.mp4: bad"}
    )
    pd.DataFrame(rows).to_csv(paths.extracted / "manifest.csv", index=False)
    return paths


@pytest.fixture
def fake_corpus(tmp_path):
    return write_fake_corpus(tmp_path)


def test_load_clips_fills_every_field(fake_corpus):
    root = fake_corpus.base
    clips = load_clips("fake", splits=None, root=root, progress=False)
    assert len(clips) == 12  # the error row of the manifest is left out
    assert {c.split for c in clips} == {"train", "val", "test"}
    config = WindowConfig()
    for clip in clips:
        assert isinstance(clip, ClipData)
        T = clip.n_frames
        assert clip.landmarks.shape == (T, 68, 2)
        assert clip.windows.shape == (T, config.n_context(0.0125), 40)
        assert clip.targets.shape == (T, 136)
        assert clip.pose.shape == (T, 4) and np.isfinite(clip.pose).all()
        assert not clip.valid[3] and np.isnan(clip.targets[3]).all()
        assert np.isfinite(clip.targets[clip.valid]).all()
        assert clip.extra["pose_filled"][3] and not clip.extra["pose_filled"][0]
        assert clip.frame_size == (400, 300)
        assert clip.speaker in ("ann", "bob") and clip.emotion == "neutral"
        assert clip.audio_path.is_file()


def test_saved_state_is_fitted_on_train_only(fake_corpus):
    root = fake_corpus.base
    normalizer, stats = fit_normalizer_and_stats("fake", root=root)
    split = pd.read_csv(fake_corpus.split_file)
    train = set(split.loc[split["split"] == "train", "clip_id"])
    assert set(stats.clip_ids) == train
    reloaded = load_feature_stats("fake", root)
    np.testing.assert_allclose(reloaded.mean, stats.mean)
    # Stats equal a direct fit on the train feature files only.
    arrays = [np.load(fake_corpus.features / f"{c}.npz")["features"] for c in sorted(train)]
    direct = FeatureStats.fit(arrays)
    np.testing.assert_allclose(stats.mean, direct.mean, rtol=1e-6)
    np.testing.assert_allclose(stats.std, direct.std, rtol=1e-6)
    assert load_normalizer("fake", root).state_dict() == json.loads(
        json.dumps(normalizer.state_dict())
    )


def test_broken_clip_is_skipped_with_a_named_warning(fake_corpus):
    root = fake_corpus.base
    fit_normalizer_and_stats("fake", root=root)
    split = pd.read_csv(fake_corpus.split_file)
    victim = split.loc[split["split"] == "test", "clip_id"].iloc[0]
    (fake_corpus.extracted / f"{victim}.npz").write_bytes(b"not an npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = load_clips("fake", splits=("test",), root=root, progress=False)
    assert victim not in {c.clip_id for c in clips}
    assert any(victim in str(w.message) for w in caught)


def test_read_extraction_names_the_file(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, times=np.arange(3.0))
    with pytest.raises(ValueError, match="x.npz"):
        read_extraction(bad)


def test_clip_from_audio_for_prediction():
    sr = 16000
    samples = np.random.default_rng(0).standard_normal(sr).astype(np.float32) * 0.1
    config = FeatureConfig()
    stats = FeatureStats(mean=np.zeros(40), std=np.ones(40), config=config.to_dict())
    frame_times = np.arange(25) / 25
    clip = clip_from_audio(
        samples, sr, frame_times, None, stats, WindowConfig(past_ms=100, future_ms=50)
    )
    assert clip.windows.shape == (25, 8 + 1 + 4, 40)
    assert not clip.valid.any() and np.isnan(clip.landmarks).all()
    assert clip.split == "" and np.isfinite(clip.pose).all()
    given = clip_from_audio(
        samples, sr, frame_times, config, stats, pose=np.array([50.0, 0.0, 10.0, 20.0])
    )
    np.testing.assert_allclose(given.pose[7], [50, 0, 10, 20])
    with pytest.raises(ValueError, match="differs"):
        clip_from_audio(samples, sr, frame_times, FeatureConfig(n_mfcc=13), stats)


def test_targets_of_loaded_clips_invert_to_the_landmarks(fake_corpus):
    root = fake_corpus.base
    clips = load_clips("fake", splits=("train",), root=root, progress=False)
    normalizer = load_normalizer("fake", root)
    assert isinstance(normalizer, TargetNormalizer)
    for clip in clips[:3]:
        back = normalizer.inverse(clip.targets, clip.pose, clip.speaker)
        err = np.abs(back[clip.valid] - clip.landmarks[clip.valid])
        assert err.max() < 1e-2  # float32 storage of pose and targets


def test_inference_windows_match_training_windows(fake_corpus):
    """A clip's audio given to clip_from_audio yields exactly the windows load_clips built."""
    root = fake_corpus.base
    config = WindowConfig(past_ms=150, future_ms=100)
    clip = load_clips("fake", splits=("train",), window_config=config, root=root, progress=False)[0]
    stats = load_feature_stats("fake", root)
    samples, sr = sf.read(clip.audio_path, dtype="float32")
    again = clip_from_audio(
        samples, sr, clip.frame_times, None, stats, config, speaker=clip.speaker
    )
    np.testing.assert_array_equal(again.windows, clip.windows)
    np.testing.assert_array_equal(again.feature_times, clip.feature_times)


def test_original_mode_windows_look_forward_40_frames(fake_corpus):
    root = fake_corpus.base
    clip = load_clips(
        "fake",
        splits=("val",),
        window_config=WindowConfig(mode="original"),
        root=root,
        progress=False,
    )[0]
    assert clip.windows.shape == (clip.n_frames, 40, 40)
    start = round(5 * len(clip.features) / clip.n_frames)
    np.testing.assert_array_equal(clip.windows[5], clip.features[start : start + 40])


@pytest.mark.realclips
def test_real_speech_gives_windows_for_any_frame_rate(realclips):
    from wav2kp.media.audio import load_audio

    for name in ("makeittalk_M6_04_16k.wav", "sadtalker_RD_Radio31_000.wav"):
        samples, sr = load_audio(realclips / name)
        stats = FeatureStats(mean=np.zeros(40), std=np.ones(40), config=FeatureConfig().to_dict())
        rng = np.random.default_rng(0)
        vfr = np.cumsum(rng.uniform(0.03, 0.06, size=int(len(samples) / sr / 0.045)))
        clip = clip_from_audio(samples, sr, vfr, None, stats)
        assert len(clip.features) == 1 + len(samples) // 200
        assert clip.windows.shape[:2] == (len(vfr), WindowConfig().n_context(0.0125))
        assert np.isfinite(clip.windows).all()


def test_state_fitted_on_an_old_split_is_refitted(fake_corpus):
    root = fake_corpus.base
    fit_normalizer_and_stats("fake", pca_components=5, root=root)
    old_train = set(load_feature_stats("fake", root).clip_ids)
    with pytest.warns(UserWarning, match="making a new split"):
        fit_normalizer_and_stats("fake", pca_components=5, split_by="speaker", root=root)
    # Simulate a split changed by hand after fitting: load_clips notices and refits.
    split = pd.read_csv(fake_corpus.split_file)
    split["split"] = np.where(split["split"] == "train", "val", "train")
    split.to_csv(fake_corpus.split_file, index=False)
    with pytest.warns(UserWarning, match="another train split"):
        clips = load_clips("fake", splits=("train",), root=root, progress=False)
    new_train = set(load_feature_stats("fake", root).clip_ids)
    assert new_train == {c.clip_id for c in clips} and new_train != old_train
    assert load_normalizer("fake", root).n_targets == 5  # settings kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # up to date now: no refit
        load_clips("fake", splits=("train",), root=root, progress=False)
