"""Model architectures: the original replica's shapes, the default model, chunked inference."""

import numpy as np
import pytest
import torch
from wav2kp.training.models import (
    ModelConfig,
    OriginalLSTM,
    WindowTCN,
    build_model,
    predict_sequence,
)

# small models: one thread is as fast, and much faster on a busy machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_original_model_has_the_original_shapes():
    model = build_model(ModelConfig.preset("original", context=40, feature_dim=40, output_dim=136))
    assert isinstance(model, OriginalLSTM)
    assert model.lstm.input_size == 1600
    assert model.lstm.hidden_size == 200
    assert model.lstm.num_layers == 2
    assert model.lstm.batch_first
    assert model.dropout.p == pytest.approx(0.25)
    assert (model.linear.in_features, model.linear.out_features) == (200, 136)
    y = model(torch.zeros(2, 7, 40, 40))
    assert y.shape == (2, 7, 136)


def test_default_model_maps_windows_to_targets_per_frame():
    config = ModelConfig.preset("default", context=33, feature_dim=40, output_dim=136)
    model = build_model(config)
    assert isinstance(model, WindowTCN)
    y = model(torch.randn(3, 50, 33, 40))
    assert y.shape == (3, 50, 136)
    assert model.receptive_radius == sum(config.dilations)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model"):
        ModelConfig.preset("transformer", context=1, feature_dim=1, output_dim=1)


def test_model_config_round_trips_through_a_dict():
    config = ModelConfig.preset(
        "default", context=9, feature_dim=8, output_dim=12, pca_components=4
    )
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_pca_head_outputs_stay_in_the_fitted_subspace():
    config = ModelConfig.preset(
        "default", context=5, feature_dim=4, output_dim=10, pca_components=3
    )
    model = build_model(config)
    basis, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((10, 3)))
    mean = np.arange(10, dtype=np.float32)
    model.set_pca(mean, basis.T)
    y = model(torch.randn(2, 20, 5, 4)).detach().numpy().reshape(-1, 10) - mean
    residual = y - (y @ basis) @ basis.T
    assert np.abs(residual).max() < 1e-4
    assert np.abs(y).max() > 1e-3  # not trivially zero


@pytest.mark.parametrize("name", ["default", "original"])
def test_chunked_inference_equals_one_pass(name):
    torch.manual_seed(0)
    config = ModelConfig.preset(name, context=6, feature_dim=5, output_dim=8, hidden=16)
    model = build_model(config).eval()
    windows = np.random.default_rng(1).standard_normal((103, 6, 5)).astype(np.float32)
    with torch.no_grad():
        whole = model(torch.from_numpy(windows)[None])[0].numpy()
    chunked = predict_sequence(model, windows, chunk=17)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_predict_sequence_uses_eval_mode_and_restores_training_mode():
    config = ModelConfig.preset("default", context=4, feature_dim=3, output_dim=6, dropout=0.5)
    model = build_model(config).train()
    windows = np.random.default_rng(2).standard_normal((30, 4, 3)).astype(np.float32)
    first, second = predict_sequence(model, windows), predict_sequence(model, windows)
    np.testing.assert_array_equal(first, second)
    assert model.training
    with torch.no_grad():  # in training mode, dropout makes two passes differ
        a, b = model(torch.from_numpy(windows)[None]), model(torch.from_numpy(windows)[None])
    assert not torch.equal(a, b)


def test_emotion_conditioning_shifts_predictions_per_label():
    config = ModelConfig.preset(
        "default", context=4, feature_dim=3, output_dim=6, emotions=("joy", "neutral")
    )
    assert config.emotion_index("joy") == 1
    assert config.emotion_index("anger") == config.emotion_index("") == 2  # unknown -> neutral
    model = build_model(config).eval()
    torch.nn.init.normal_(model.emotion_embedding.weight)
    windows = torch.randn(1, 10, 4, 3)
    with torch.no_grad():
        joy, neutral = model(windows, torch.tensor([1])), model(windows, torch.tensor([2]))
    assert not torch.allclose(joy, neutral)
    np.testing.assert_allclose(
        predict_sequence(model, windows[0].numpy(), chunk=3, emotion=1), joy[0].numpy(), atol=1e-5
    )


def test_the_replica_is_called_original_and_seed_means_only_a_random_seed():
    from wav2kp.config import WINDOW_MODES, TrainConfig, WindowConfig
    from wav2kp.evaluation.evaluate import DEFAULT_MODELS
    from wav2kp.training.models import MODEL_NAMES

    assert "original" in MODEL_NAMES and "seed" not in MODEL_NAMES
    assert "original" in WINDOW_MODES and "seed" not in WINDOW_MODES
    assert "seed" not in DEFAULT_MODELS
    assert TrainConfig.preset("original").window_config.mode == "original"
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.preset("seed")
    with pytest.raises(ValueError, match="window mode"):
        WindowConfig(mode="seed")
