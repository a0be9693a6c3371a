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


NOTEBOOKS = sorted(p.name for p in (project_root() / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("name", NOTEBOOKS)
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
    # GRID's run trains the models `wav2kp predict` picks: in the corpus's own folder
    grid = {t.out_dir for t in final_tasks(RunConfig.resolve(profile="grid"), root=tmp_path)}
    assert grid == {str(tmp_path / "models" / "grid" / "default" / f"seed-{s}") for s in (0, 1, 2)}


def test_the_grid_profile_is_the_levers_the_mouth_study_keeps_at_the_presets_budget():
    from wav2kp.config import GRID_LEVERS, FeatureConfig

    cfg = RunConfig.resolve(profile="grid")
    assert (cfg.corpus, cfg.models, cfg.ablation) == ("grid", ("default",), False)
    model = cfg.train_config("default", seed=0)
    assert model.silence_gate and model.augment == {}
    assert model.epochs == TrainConfig.preset("default").epochs
    # the corpus's features carry the phonetic stream; the model without it is one setting away
    assert FeatureConfig(**cfg.feature_settings).phones == GRID_LEVERS["phones"] == "allphone"
    plain = RunConfig.resolve(profile="grid", phones="none")
    assert FeatureConfig(**plain.feature_settings).phonetic_dim == 0
    # a parameter given still wins over the profile
    assert RunConfig.resolve(profile="grid", epochs=2).train_config("default", 0).epochs == 2


def test_unseen_voice_levers_reach_the_default_models_training_only():
    cfg = RunConfig.resolve(augment=2, voices=1, silence_gate=True, calibrate=True)
    default = cfg.train_config("default", seed=0)
    assert default.augment == {"copies": 2} and default.voices == {"copies": 1}
    assert default.silence_gate and default.calibrate
    original = cfg.train_config("original", seed=0)  # the replica stays the original's
    assert original.augment == {} and original.voices == {} and not original.silence_gate
    plain = RunConfig.resolve().train_config("default", seed=0)
    assert plain.augment == {} and plain.voices == {} and not plain.silence_gate


# ---- one default per name, and the README table generated from them


def test_readme_parameter_table_is_what_the_command_prints(capsys):
    from wav2kp.cli import main
    from wav2kp.config import TABLE_BEGIN, TABLE_END

    assert main(["config", "--markdown"]) == 0
    printed = capsys.readouterr().out
    readme = (project_root() / "README.md").read_text()
    start, end = readme.index(TABLE_BEGIN), readme.index(TABLE_END)
    assert readme[start : end + len(TABLE_END)] + "\n" == printed
    # one row per RunConfig field, in order, each with its resolved default
    rows = [line.split(" | ") for line in printed.splitlines() if line.startswith("| `")]
    assert [row[0].strip("| `") for row in rows] == list(RunConfig.fields())
    default = RunConfig.resolve()
    for row in rows:
        value = getattr(default, row[0].strip("| `"))
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert row[1] == f"`{shown}`"


def test_update_readme_rewrites_only_the_parameter_table(tmp_path):
    from wav2kp.cli import main
    from wav2kp.config import parameter_table

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- parameters:begin -->\nold\n<!-- parameters:end -->\nrest\n")
    assert main(["config", "--update-readme", str(readme)]) == 0
    assert readme.read_text() == "intro\n" + parameter_table() + "rest\n"
    readme.write_text("no table here\n")
    with pytest.raises(ValueError, match=f"{readme}: no parameter table"):
        main(["config", "--update-readme", str(readme)])


def test_config_command_prints_what_a_run_resolves_to(capsys):
    import json

    from wav2kp.cli import main

    assert main(["config", "--profile", "grid", "--set", "seeds=0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == RunConfig.resolve(profile="grid", seeds=(0,)).to_dict()


def test_every_command_line_takes_the_corpus_and_workers_defaults_from_the_config(monkeypatch):
    from wav2kp.cli import build_parser
    from wav2kp.tasks import run_config_from_args

    monkeypatch.setattr(RunConfig, "corpus", "elsewhere")
    monkeypatch.setattr(RunConfig, "seed", 5)
    for command in ("features", "evaluate", "demo"):
        args = build_parser(command).parse_args([command])
        assert args.corpus == "elsewhere", command
    for command in ("evaluate", "demo"):  # which clips get videos; the demo's generation
        assert build_parser(command).parse_args([command]).seed == 5, command
    # train resolves the corpus through RunConfig, so a profile can name one
    args = build_parser("train").parse_args(["train", "--profile", "grid"])
    assert args.corpus is None and run_config_from_args(args).corpus == "grid"
    for command in ("extract", "features", "demo", "train", "cv"):
        argv = [command, "somewhere"] if command == "extract" else [command]
        args = build_parser(command).parse_args([*argv, "--corpus", "c"])
        assert args.workers is None, command  # None: wav2kp.cluster.default_workers


def test_demo_corpus_workers_default_to_the_machine_sized_one(tmp_path, monkeypatch):
    from wav2kp import cluster
    from wav2kp.demo.corpus import build_corpus

    asked = []
    monkeypatch.setattr(cluster, "default_workers", lambda: asked.append(1) or 1)
    build_corpus(tmp_path, size="tiny", progress=False, clip_ids=[])
    assert asked == [1]


def _parameter_examples(text: str) -> list[tuple[str, str]]:
    """(how, name) of every parameter an example sets: PARAMS="a=1 b=2", -p/--param a=1,
    --set a=1, and a Makefile's `$(foreach p,...,--param $(p))` lists."""
    import re

    found = []
    for params in re.findall(r'PARAMS="([^"]*)"', text):
        found += [("param", item.split("=")[0]) for item in params.split() if "=" in item]
    found += [("param", n) for n in re.findall(r"(?:-p|--param) ([A-Za-z_]\w*)=", text)]
    found += [("set", n) for n in re.findall(r"--set ([A-Za-z_]\w*)=", text)]
    return found


def test_every_parameter_in_the_docs_examples_is_one_a_notebook_or_train_takes():
    from wav2kp.report.report import declared_parameters

    root = project_root()
    notebook_names = set()
    for name in NOTEBOOKS:
        notebook_names |= set(declared_parameters(root / "notebooks" / name))
    files = [root / "Makefile", root / "README.md", *sorted((root / "docs").glob("**/*.md"))]
    checked = 0
    for path in files:
        # docs/faults.md shows misspelt names being refused
        lines = [line for line in path.read_text().splitlines() if "unknown" not in line]
        for how, name in _parameter_examples("\n".join(lines)):
            if name == "key":  # the form itself: --set key=value
                continue
            known = notebook_names if how == "param" else set(RunConfig.fields())
            assert name in known, f"{path.name}: {how} {name!r} is not a parameter"
            checked += 1
    assert checked >= 8


def test_parameter_examples_are_found():
    assert _parameter_examples('make report PARAMS="epochs=5 demo_size=tiny"') == [
        ("param", "epochs"), ("param", "demo_size"),
    ]  # fmt: skip
    assert _parameter_examples("wav2kp train --set seeds=0 -p corpus=x") == [
        ("param", "corpus"), ("set", "seeds"),
    ]  # fmt: skip
