"""Training loop: learning, masking, determinism, exact resume, checkpoints, predictors."""

import dataclasses

import numpy as np
import pytest
import torch
from wav2kp.benchmarks.training import synthetic_clips
from wav2kp.config import TrainConfig
from wav2kp.training.inference import load_predictor
from wav2kp.training.models import ModelConfig, build_model
from wav2kp.training.train import (
    _Sequences,
    clip_windows,
    masked_loss,
    target_weights,
    train_model,
    training_arrays,
)

# small models: one thread is as fast, and much faster on a busy machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clips():
    return synthetic_clips(n_clips=5, seconds=2.0, feature_dim=8, seed=3)


def small_config(**overrides):
    base = dict(
        epochs=4,
        batch_size=4,
        crop_frames=20,
        target_space="frame",
        window={"past_ms": 50.0, "future_ms": 100.0},
        model_overrides={"hidden": 16, "frame_bottleneck": 4, "dropout": 0.2},
    )
    base.update(overrides)
    return TrainConfig.preset("default", **base)


def weights(path):
    return torch.load(path, weights_only=True)["model_state"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_masked_loss_ignores_invalid_frames():
    pred = torch.zeros(1, 4, 2)
    target = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [100.0, 100.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False, True]])
    assert float(masked_loss(pred, target, mask)) == pytest.approx(1 / 3)
    # velocity term: only pairs of valid neighbours (0-1); pair 1-2 and 2-3 touch frame 2
    assert float(masked_loss(pred, target, mask, velocity_weight=1.0)) == pytest.approx(1 / 3 + 1.0)


def test_a_model_overfits_one_batch(clips):
    config = small_config()
    data = _Sequences(clips[:1], config)
    windows, targets, mask, _ = data.batch([(0, 0, 40)])
    torch.manual_seed(0)
    model = build_model(
        ModelConfig.preset(
            "default",
            context=windows.shape[2],
            feature_dim=8,
            output_dim=136,
            hidden=32,
            dropout=0.0,
        )
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss = masked_loss(model(windows), targets, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] / 10


def test_training_reduces_validation_loss(clips, tmp_path):
    result = train_model(
        clips[:-1], clips[-1:], small_config(epochs=15, lr=1e-2), tmp_path, progress=False
    )
    history = result.history
    assert list(history.columns) == [
        "epoch", "train_loss", "val_loss", "lr", "seconds", "cpu_seconds"
    ]  # fmt: skip
    assert (history["cpu_seconds"] > 0).all()
    assert len(history) == 15 and result.finished
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0] / 2
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    assert history["lr"].nunique() > 1  # the one-cycle schedule really steps


def test_same_seed_gives_identical_weights(clips, tmp_path):
    a = train_model(clips[:-1], clips[-1:], small_config(epochs=2), tmp_path / "a", progress=False)
    b = train_model(clips[:-1], clips[-1:], small_config(epochs=2), tmp_path / "b", progress=False)
    c = train_model(
        clips[:-1], clips[-1:], small_config(epochs=2, seed=1), tmp_path / "c", progress=False
    )
    assert_same_weights(weights(a.last_checkpoint), weights(b.last_checkpoint))
    assert not torch.equal(
        weights(a.last_checkpoint)["head.weight"], weights(c.last_checkpoint)["head.weight"]
    )


@pytest.mark.parametrize("scheduler", ["onecycle", "plateau"])
def test_resume_gives_the_same_result_as_uninterrupted(clips, tmp_path, scheduler):
    config = small_config(epochs=4, scheduler=scheduler)
    whole = train_model(clips[:-1], clips[-1:], config, tmp_path / "whole", progress=False)
    part = train_model(
        clips[:-1], clips[-1:], config, tmp_path / "part", progress=False, max_epochs_this_run=2
    )
    assert part.epochs_run == 2 and not part.finished
    # a different time budget is not a different run: it resumes
    resumed_config = dataclasses.replace(config, max_minutes=60.0)
    resumed = train_model(clips[:-1], clips[-1:], resumed_config, tmp_path / "part", progress=False)
    assert resumed.epochs_run == 4 and resumed.finished
    assert_same_weights(weights(whole.last_checkpoint), weights(resumed.last_checkpoint))
    cols = ["epoch", "train_loss", "val_loss", "lr"]
    assert whole.history[cols].equals(resumed.history[cols])
    # a finished run returns at once without training further
    again = train_model(clips[:-1], clips[-1:], config, tmp_path / "part", progress=False)
    assert again.epochs_run == 4
    assert_same_weights(weights(again.last_checkpoint), weights(resumed.last_checkpoint))


def test_a_changed_config_trains_afresh(clips, tmp_path):
    train_model(clips[:-1], clips[-1:], small_config(epochs=2), tmp_path, progress=False)
    with pytest.warns(UserWarning, match="another configuration; training afresh"):
        result = train_model(
            clips[:-1], clips[-1:], small_config(epochs=1, lr=1e-3), tmp_path, progress=False
        )
    assert result.epochs_run == 1


def test_early_stopping_on_a_stalled_validation_loss(clips, tmp_path):
    config = small_config(epochs=30, lr=1e-9, scheduler="none", patience=2)
    result = train_model(clips[:-1], clips[-1:], config, tmp_path, progress=False)
    assert result.stopped_early and result.epochs_run < 30


def test_predictor_round_trip_through_a_checkpoint(clips, tmp_path):
    result = train_model(clips[:-1], clips[-1:], small_config(epochs=3), tmp_path, progress=False)
    predictor = load_predictor(tmp_path)  # the folder -> best.pt
    clip = clips[-1]
    landmarks = predictor.predict_landmarks(clip)
    assert landmarks.shape == (clip.n_frames, 68, 2) and np.isfinite(landmarks).all()
    # the model restored from the checkpoint computes what the trained weights compute
    state = torch.load(result.best_checkpoint, weights_only=True)
    model = build_model(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model_state"])
    model.eval()
    windows = torch.from_numpy(np.asarray(clip_windows(clip, predictor.window_config)))
    emotion = torch.tensor([predictor.model_config.emotion_index(clip.emotion)])
    assert predictor.model_config.emotions == ("neutral",) and int(emotion) == 1
    with torch.no_grad():
        direct = model(windows[None], emotion)[0].numpy()
    np.testing.assert_allclose(predictor.predict_targets(clip), direct, atol=1e-5)
    np.testing.assert_allclose(landmarks, direct.reshape(-1, 68, 2) * 256, atol=1e-3)


def test_predictions_are_repeatable_in_eval_mode(clips, tmp_path):
    config = small_config(
        epochs=1, model_overrides={"hidden": 16, "frame_bottleneck": 4, "dropout": 0.5}
    )
    train_model(clips[:-1], clips[-1:], config, tmp_path, progress=False)
    predictor = load_predictor(tmp_path / "last.pt")
    np.testing.assert_array_equal(
        predictor.predict_landmarks(clips[0]), predictor.predict_landmarks(clips[0])
    )


def test_original_replica_trains_on_upsampled_keypoints_and_takes_every_third_output(
    clips, tmp_path
):
    # synthetic clips carry their own features and no audio: no MFCC to compute
    config = TrainConfig.preset("original", epochs=1, model_overrides={"hidden": 8}, features=None)
    windows, targets = training_arrays(clips[0], config)
    assert windows.shape[1:] == (40, 8)  # 40 forward feature frames
    assert len(windows) == len(targets) == 3 * clips[0].n_frames - 1
    train_model(clips[:-1], clips[-1:], config, tmp_path, progress=False)
    predictor = load_predictor(tmp_path)
    full = np.asarray(clip_windows(clips[-1], predictor.window_config, upsample=3))
    with torch.no_grad():
        every_step = predictor.model(torch.from_numpy(full)[None])[0].numpy()
    np.testing.assert_allclose(predictor.predict_targets(clips[-1]), every_step[::3], atol=1e-5)
    assert not predictor.model.training


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "best.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="best.pt"):
        load_predictor(path)
    with pytest.raises(FileNotFoundError):
        load_predictor(tmp_path / "missing.pt")


def test_normalized_targets_need_a_normalizer(clips, tmp_path):
    with pytest.raises(ValueError, match="normalizer"):
        train_model(
            clips[:-1],
            clips[-1:],
            small_config(target_space="normalized"),
            tmp_path,
            progress=False,
        )


def test_a_broken_clip_is_skipped_with_a_warning_naming_it(clips, tmp_path):
    broken = dataclasses.replace(
        clips[0], clip_id="broken_clip", feature_times=clips[0].feature_times[:1]
    )
    with pytest.warns(UserWarning, match="broken_clip"):
        result = train_model(
            [broken, *clips[1:-1]], clips[-1:], small_config(epochs=1), tmp_path, progress=False
        )
    assert result.epochs_run == 1


def test_mouth_weight_counts_mouth_errors_more():
    weights = target_weights(136, mouth_weight=4.0)
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[2 * 48] == pytest.approx(4 * weights[0].item())
    assert target_weights(136, 1.0) is None and target_weights(8, 4.0) is None  # PCA targets
    pred, mask = torch.zeros(1, 1, 136), torch.ones(1, 1, dtype=torch.bool)
    mouth_err, brow_err = torch.zeros(1, 1, 136), torch.zeros(1, 1, 136)
    mouth_err[..., 2 * 50], brow_err[..., 2 * 20] = 1.0, 1.0
    assert masked_loss(pred, mouth_err, mask, weights=weights) > masked_loss(
        pred, brow_err, mask, weights=weights
    )


def test_spec_augment_masks_feature_frames_everywhere_they_appear_and_feature_bands():
    from wav2kp.training.train import spec_augment

    # 1 crop of 6 windows, 3 context frames each, from feature frames 10..17 (D = 5)
    indices = (torch.arange(6)[:, None] + torch.arange(3)[None, :] + 10)[None]
    windows = torch.ones(1, 6, 3, 5)
    generator = torch.Generator().manual_seed(0)
    masked = spec_augment(
        windows, indices, time_mask=3, freq_mask=0, n_masks=1, generator=generator
    )
    assert torch.equal(windows, torch.ones(1, 6, 3, 5))  # input untouched
    hit = (masked == 0).all(dim=-1)[0]  # (6, 3): whole context frames zeroed
    hit_frames = set(indices[0][hit].tolist())
    # a masked feature frame is masked in every window holding it, others are kept
    assert torch.equal(
        hit, torch.isin(indices[0], torch.tensor(sorted(hit_frames), dtype=torch.long))
    )
    assert len(hit_frames) <= 3 and hit_frames <= set(range(10, 18))
    bands = spec_augment(windows, indices, 0, 2, 3, torch.Generator().manual_seed(1))
    zero_dims = (bands == 0).all(dim=(0, 1, 2))
    assert ((bands == 0) == zero_dims).all()  # a band is zero in every window and frame
    assert int(zero_dims.sum()) <= 6
    # across draws, masks do happen (and never exceed their widths)
    draws = [
        spec_augment(windows, indices, 3, 2, 1, torch.Generator().manual_seed(s)) for s in range(20)
    ]
    assert any(bool((d == 0).any()) for d in draws)


def test_spec_augment_training_is_deterministic_and_resumes_exactly(clips, tmp_path):
    config = small_config(time_mask=4, freq_mask=2)
    full = train_model(clips[:4], clips[4:], config, tmp_path / "a", progress=False)
    train_model(clips[:4], clips[4:], config, tmp_path / "b", progress=False, max_epochs_this_run=2)
    resumed = train_model(clips[:4], clips[4:], config, tmp_path / "b", progress=False)
    assert_same_weights(weights(full.last_checkpoint), weights(resumed.last_checkpoint))
    plain = train_model(clips[:4], clips[4:], small_config(), tmp_path / "c", progress=False)
    assert not torch.equal(
        weights(full.last_checkpoint)["head.weight"], weights(plain.last_checkpoint)["head.weight"]
    )


def test_refit_trains_on_train_and_val_for_the_full_schedule_and_keeps_the_last_epoch(
    clips, tmp_path
):
    from wav2kp.config import RunConfig
    from wav2kp.training.train import train_final_model

    config = small_config(epochs=3, patience=1, refit_on_val=True)
    final = train_final_model(clips[:3], clips[3:], config, tmp_path, progress=False, context={})
    assert final.epochs_run == 3 and final.finished and not final.stopped_early
    # no validation clips: best.pt is the last epoch
    assert_same_weights(weights(final.best_checkpoint), weights(final.last_checkpoint))
    # the same as training on all five clips by hand
    by_hand = train_model(
        clips, [], dataclasses.replace(config, patience=0), tmp_path / "by_hand", progress=False
    )
    assert_same_weights(weights(final.last_checkpoint), weights(by_hand.last_checkpoint))
    # without refit: trained on train, early stopping on val
    plain = dataclasses.replace(config, refit_on_val=False)
    one = train_final_model(clips[:3], clips[3:], plain, tmp_path / "p", progress=False)
    assert one.history["val_loss"].notna().all()
    # one rule for every model: the run's
    for rule in (True, False):
        cfg = RunConfig.resolve(refit_on_val=rule)
        assert {cfg.train_config(m, 0).refit_on_val for m in ("default", "original")} == {rule}


def test_the_original_trains_without_gradient_clipping(clips, tmp_path, monkeypatch):
    calls = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(
        torch.nn.utils, "clip_grad_norm_", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    original = TrainConfig.preset(
        "original", epochs=1, features=None, model_overrides={"hidden": 8}
    )
    assert original.clip_grad_norm == 0 and original.batch_size == 1 and not original.shuffle
    train_model(clips[:2], [], original, tmp_path / "o", progress=False)
    assert calls == []
    train_model(clips[:2], [], small_config(epochs=1), tmp_path / "d", progress=False)
    assert calls


KILL_SCRIPT = """
import sys
from wav2kp.benchmarks.training import synthetic_clips
from wav2kp.config import TrainConfig
from wav2kp.training.train import train_model

clips = synthetic_clips(n_clips=8, seconds=3.0, feature_dim=8, seed=3)
config = TrainConfig.preset(
    "default", epochs=int(sys.argv[2]), batch_size=4, crop_frames=20, target_space="frame",
    window={"past_ms": 50.0, "future_ms": 100.0},
    model_overrides={"hidden": 16, "frame_bottleneck": 4, "dropout": 0.2},
)
train_model(clips[:-1], clips[-1:], config, sys.argv[1], progress=False)
"""


def test_kill_9_during_training_then_the_same_command_resumes_to_the_same_weights(tmp_path):
    """docs/faults.md: a training killed outright (kill -9) and started again with the
    same command resumes from its last epoch and ends with the weights of an
    uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from wav2kp.training.checkpoints import load_checkpoint

    epochs = 30
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)

    def command(folder):
        return [sys.executable, str(script), str(folder), str(epochs)]

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed))
    deadline = time.monotonic() + 300
    epoch = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            epoch = load_checkpoint(killed / "last.pt")["state"]["epoch"]
        except (FileNotFoundError, ValueError):
            epoch = 0
        if epoch >= 2:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    at_kill = load_checkpoint(killed / "last.pt")["state"]["epoch"]
    assert 2 <= at_kill < epochs, "the kill should land mid-training"
    subprocess.run(command(killed), check=True)  # the same command again
    whole = tmp_path / "whole"
    subprocess.run(command(whole), check=True)
    resumed = load_checkpoint(killed / "last.pt")
    assert resumed["state"]["epoch"] == epochs
    assert_same_weights(resumed["model_state"], load_checkpoint(whole / "last.pt")["model_state"])
    assert_same_weights(weights(killed / "best.pt"), weights(whole / "best.pt"))


def test_a_plateau_recipe_stops_when_gains_fall_under_the_threshold(clips, tmp_path):
    from wav2kp.studies.train_run import refit_config

    # every epoch must beat the last counted gain by 90 %: after the first epochs none does
    config = small_config(epochs=40, plateau=True, patience=2, min_improvement=0.9)
    result = train_model(clips[:-1], clips[-1:], config, tmp_path, progress=False)
    assert result.stopped_early and result.epochs_run < 40
    history = result.history
    assert result.best_epoch == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    refit = refit_config(config, result.best_epoch)
    assert (refit.epochs, refit.patience, refit.plateau) == (result.best_epoch, 0, True)
    # with no threshold the patience counts epochs without any gain, as before
    plain = small_config(epochs=3)
    assert plain.min_improvement == 0 and not plain.plateau


def _gap_targets(gaps):
    """(1, T, 136) targets whose inner-lip gap (points 61-63 up, 65-67 down) is ``gaps``:
    the lower lip moved down by the gap, everything else at 0."""
    values = torch.zeros(1, len(gaps), 68, 2)
    for bottom in (65, 66, 67):
        values[0, :, bottom, 1] = torch.tensor(gaps, dtype=torch.float32)
    return values.reshape(1, len(gaps), 136)


def test_lip_gap_and_opening_loss_by_hand():
    from wav2kp.training.train import lip_gap, opening_loss

    true = _gap_targets([0.0, 1.0, 3.0, 0.0])
    np.testing.assert_allclose(lip_gap(true)[0].numpy(), [0.0, 1.0, 3.0, 0.0])
    moved_upper = true.clone().reshape(1, 4, 68, 2)
    moved_upper[0, :, 61:64, 1] = 1.0  # upper lip down by 1: the gap closes by 1
    np.testing.assert_allclose(lip_gap(moved_upper.reshape(1, 4, 136))[0], [-1, 0, 2, -1])
    pred = _gap_targets([0.0, 1.0, 1.0, 0.0])  # frame 2 damped from 3 to 1
    mask = torch.ones(1, 4, dtype=torch.bool)
    # gap: errors (0, 0, -2, 0) -> 4/4 = 1; velocity: (0, -2, 2) -> 8/3;
    # acceleration: (-2, 4) -> 20/2 = 10
    assert float(opening_loss(pred, true, mask)) == pytest.approx(1 + 8 / 3 + 10)
    mask[0, 3] = False  # frame 3 drops out: gap 4/3, velocity (0, -2) 4/2, acceleration 4/1
    assert float(opening_loss(pred, true, mask)) == pytest.approx(4 / 3 + 2 + 4)
    # the term joins the MSE only when asked, only for 68 x 2 targets
    mask[:] = True
    base = float(masked_loss(pred, true, mask))
    assert float(masked_loss(pred, true, mask, opening_weight=0.5)) == pytest.approx(
        base + 0.5 * (1 + 8 / 3 + 10)
    )


def test_spread_loss_punishes_damped_motion_not_its_timing():
    from wav2kp.training.train import spread_loss

    gaps = [0.0, 2.0, 0.0, 2.0]
    true = _gap_targets(gaps)
    mask = torch.ones(1, 4, dtype=torch.bool)
    damped = _gap_targets([g / 2 for g in gaps])  # std 1 -> 0.5
    assert float(spread_loss(damped, true, mask)) == pytest.approx(0.25, rel=1e-4)
    shifted = _gap_targets([2.0, 0.0, 2.0, 0.0])  # same spread, wrong timing: no penalty
    assert float(spread_loss(shifted, true, mask)) == pytest.approx(0.0, abs=1e-4)
    # gradients flow to the prediction only
    damped.requires_grad_(True)
    spread_loss(damped, true, mask).backward()
    assert damped.grad.abs().sum() > 0


def test_silence_targets_rest_the_mouth_where_nobody_speaks():
    from wav2kp.media.audio import load_audio
    from wav2kp.paths import project_root
    from wav2kp.training.train import silenced
    from wav2kp.training.vad import JAW_AND_MOUTH, read_grid_align

    grid = project_root().parent / "shared" / "grid-s1"
    if not (grid / "bbaf3s.mp4").is_file():
        pytest.skip(f"GRID speaker 1 not available at {grid}")
    samples, sr = load_audio(grid / "bbaf3s.mp4", sample_rate=16000)
    words = [(a, b) for a, b, w in read_grid_align(grid / "align" / "bbaf3s.align") if w != "sil"]
    first, last = words[0][0], words[-1][1]
    fps = 25.0
    n = int(len(samples) / sr * fps)
    clip = synthetic_clips(n_clips=1, seconds=n / fps, feature_dim=8, seed=3)[0]
    clip = dataclasses.replace(
        clip, frame_times=np.arange(n) / fps, targets=np.ones((n, 136), np.float32),
        extra={**clip.extra, "samples": samples, "sample_rate": sr},
    )  # fmt: skip
    out = silenced([clip])[0].targets.reshape(n, 68, 2)
    times = clip.frame_times
    from wav2kp.training.vad import GATE_CONFIG

    # the gate's rolls and ramps keep the mouth free around speech; beyond them it rests
    reach = max(GATE_CONFIG.pre_roll_s, GATE_CONFIG.post_roll_s) + GATE_CONFIG.ramp_s + 0.08
    quiet = (times < first - reach) | (times > last + reach)
    speech = (times > first + 0.1) & (times < last - 0.1)
    assert quiet.sum() >= 8 and speech.sum() > 20
    assert np.all(out[quiet][:, JAW_AND_MOUTH] == 0.0)
    assert np.mean(out[speech] == 1.0) > 0.95  # pauses inside the sentence may rest
    eyes = np.setdiff1d(np.arange(68), JAW_AND_MOUTH)
    assert np.all(out[:, eyes] == 1.0)  # the rest of the face keeps its motion
