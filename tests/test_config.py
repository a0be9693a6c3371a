"""One configuration path: RunConfig resolves notebook parameters, `wav2kp train` and
notebook 04 train the same thing, unknown names are errors."""

import jupytext
import pytest
from wav2kp.config import PROFILES, RunConfig, TrainConfig
from wav2kp.paths import project_root


def notebook_parameters(name: str) -> dict:
    """The parameter cell of a notebook source, evaluated."""
    notebook = jupytext.read(project_root() / "notebooks" / name)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    namespace: dict = {}
    exec(cell.source, namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def test_defaults_profiles_and_none():
    default = RunConfig.resolve()
    assert default.profile == "fast" and default.corpus == "demo"
    assert RunConfig.resolve(epochs=None, corpus=None) == default  # None = the default
    full = RunConfig.resolve(profile="full")
    assert full.ablation_epochs is None and full.original_epochs is None
    for name, value in PROFILES["fast"].items():
        assert getattr(default, name) == value
    # a parameter given wins over the profile
    assert RunConfig.resolve(ablation_epochs=3).ablation_epochs == 3
    assert RunConfig.resolve(seeds="0,1").seeds == (0, 1)
    assert RunConfig.resolve(seeds=[4]).seeds == (4,)


def test_unknown_names_are_errors_naming_them():
    with pytest.raises(ValueError, match="'epocs'"):
        RunConfig.resolve(epocs=3)
    with pytest.raises(ValueError, match="profile 'quick'"):
        RunConfig.resolve(profile="quick")
    with pytest.raises(ValueError, match="model 'seed'"):
        RunConfig.resolve(models=["default", "seed"])


def test_past_and_future_ms_change_what_the_default_model_trains_on():
    cfg = RunConfig.resolve(past_ms=200.0, future_ms=50.0)
    window = cfg.train_config("default", 0).window_config
    assert (window.past_ms, window.future_ms) == (200.0, 50.0)
    assert cfg.train_config("original", 0).window_config.mode == "original"
    assert RunConfig.resolve().window == TrainConfig.preset("default").window_config


def test_wav2kp_train_trains_what_notebook_04_trains():
    from wav2kp.cli import build_parser
    from wav2kp.studies.train_run import final_tasks
    from wav2kp.tasks import run_config_from_args

    parameters = notebook_parameters("04_training.py")
    run_parameters = {k: v for k, v in parameters.items() if k in RunConfig.fields()}
    # every run parameter of the notebook is "the default" (its one place: wav2kp.config)
    assert run_parameters and all(v is None for v in run_parameters.values())
    notebook = RunConfig.from_parameters(parameters)
    cli = run_config_from_args(build_parser("train").parse_args(["train"]))
    assert cli == notebook
    assert [t.config.to_dict() for t in final_tasks(cli)] == [
        t.config.to_dict() for t in final_tasks(notebook)
    ]
    source = (project_root() / "notebooks" / "04_training.py").read_text()
    assert "RunConfig.from_parameters(globals())" in source and "train_run(cfg" in source
    # and the command line reaches every field the same way
    args = build_parser("train").parse_args(
        ["train", "--profile", "full", "--set", "seeds=0,1", "--set", "past_ms=150"]
    )
    assert run_config_from_args(args) == RunConfig.resolve(
        profile="full", seeds=(0, 1), past_ms=150
    )


@pytest.mark.parametrize("name", ["02_features.py", "03_windowing.py", "04_training.py"])
def test_notebook_run_parameters_default_to_the_config(name):
    parameters = notebook_parameters(name)
    shared = {k: v for k, v in parameters.items() if k in RunConfig.fields()}
    assert shared and all(v is None for v in shared.values()), shared
    source = (project_root() / "notebooks" / name).read_text()
    assert "RunConfig.from_parameters(globals())" in source


def test_the_replica_departures_are_listed_once():
    from wav2kp.config import ORIGINAL_DEPARTURES

    names = [name for name, _ in ORIGINAL_DEPARTURES]
    assert len(names) == len(set(names))
    assert {"input width", "end of clip", "budget"} <= set(names)
    # what the replica does the same way as the original is not listed as a departure
    original = TrainConfig.preset("original")
    assert original.batch_size == 1 and original.clip_grad_norm == 0
    assert original.features["kind"] == "mfcc" and not original.normalize_features
    assert original.lr == 1e-4 and original.scheduler == "none" and original.weight_decay == 0


def test_each_profile_keeps_its_own_final_models(tmp_path):
    from wav2kp.studies.train_run import final_tasks

    fast = {t.out_dir for t in final_tasks(RunConfig.resolve(), root=tmp_path)}
    full = {t.out_dir for t in final_tasks(RunConfig.resolve(profile="full"), root=tmp_path)}
    assert not fast & full
    assert str(tmp_path / "models" / "demo" / "default" / "seed-0") in fast
    assert str(tmp_path / "models" / "demo" / "full" / "default" / "seed-2") in full


def test_unseen_voice_levers_reach_the_default_models_training_only():
    cfg = RunConfig.resolve(augment=2, voices=1, silence_gate=True, calibrate=True)
    default = cfg.train_config("default", seed=0)
    assert default.augment == {"copies": 2} and default.voices == {"copies": 1}
    assert default.silence_gate and default.calibrate
    original = cfg.train_config("original", seed=0)  # the replica stays the original's
    assert original.augment == {} and original.voices == {} and not original.silence_gate
    plain = RunConfig.resolve().train_config("default", seed=0)
    assert plain.augment == {} and plain.voices == {} and not plain.silence_gate
