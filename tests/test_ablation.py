"""The ablation study: every variant trained with one budget and scored on val clips."""

import numpy as np
import pytest
from wav2kp.ablation import ABLATION_METRICS, DEFAULT_VARIANTS, run_ablation, variant_config
from wav2kp.benchmarks.training import synthetic_clips
from wav2kp.targets import TargetNormalizer
from wav2kp.train import CorpusData, TrainConfig

# small models: one thread is as fast, and much faster on a busy machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus():
    """Synthetic clips with real normalised targets (pose removed, neutral face)."""
    clips = synthetic_clips(n_clips=5, seconds=2.0, feature_dim=8, seed=5)
    normalizer = TargetNormalizer().fit([(c.speaker, c.landmarks) for c in clips[:-1]])
    for clip in clips:
        targets, pose = normalizer.transform(clip.landmarks, clip.speaker)
        clip.targets, clip.pose = targets.astype(np.float32), pose.astype(np.float32)
    return CorpusData(clips[:-1], clips[-1:], [], {"normalizer": normalizer, "corpus": "synthetic"})


def test_variant_config_applies_the_changes_and_the_shared_budget():
    config = variant_config(
        DEFAULT_VARIANTS["future 0 ms"], {"epochs": 3, "max_minutes": 1}, seed=7
    )
    default_past = TrainConfig.preset("default").window["past_ms"]
    assert config.window["future_ms"] == 0.0 and config.window["past_ms"] == default_past
    assert (config.epochs, config.max_minutes, config.seed) == (3, 1, 7)
    assert variant_config(DEFAULT_VARIANTS["default"], {}, 0).window_config.mode == "aligned"


def test_ablation_table_scores_every_variant_and_reports_failures(corpus, tmp_path):
    variants = {
        "default": {},
        "future 0 ms": {"window": {"past_ms": 200.0, "future_ms": 0.0}},
        "frame coords": {"target_space": "frame"},
        "broken": {"scheduler": "no-such-scheduler"},
    }
    budget = {"epochs": 2, "batch_size": 4, "crop_frames": 20, "model_overrides": {"hidden": 16}}
    table = run_ablation(corpus, variants, budget, out_dir=tmp_path, progress=False)
    assert list(table["variant"]) == list(variants)
    ok = table[table["error"] == ""]
    assert list(ok["variant"]) == ["default", "future 0 ms", "frame coords"]
    assert np.isfinite(ok[["mouth_lmd_iod", "variance_ratio", "best_val_loss"]].to_numpy()).all()
    assert (ok["epochs"] == 2).all()
    assert "broken" in table.loc[3, "error"] and "scheduler" in table.loc[3, "error"]
    assert set(ABLATION_METRICS) <= set(table.columns)
    # checkpoints are kept per variant: a re-run only evaluates (same numbers)
    again = run_ablation(corpus, {"default": {}}, budget, out_dir=tmp_path, progress=False)
    assert again.loc[0, "mouth_lmd_iod"] == pytest.approx(table.loc[0, "mouth_lmd_iod"])
    assert (tmp_path / "future_0_ms" / "best.pt").is_file()
