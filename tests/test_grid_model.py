"""The real-speech model out of the box: a GRID subset extracted, trained by the path
`make model-grid` takes (`wav2kp train` -> data/models/grid/default/seed-N), and
`wav2kp predict` with no --checkpoint picking it and a GRID reference of its speaker."""

from __future__ import annotations

import json

import pytest
from wav2kp.paths import shared_realclips


@pytest.fixture
def grid_dir():
    folder = shared_realclips().parent / "grid-s1"
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"GRID corpus not available at {folder}")
    return folder


@pytest.mark.slow
def test_small_grid_model_trains_and_predicts_by_default(grid_dir, tmp_path, monkeypatch,
                                                         one_torch_thread, capsys):  # fmt: skip
    from wav2kp.cli import main
    from wav2kp.config import RunConfig
    from wav2kp.extraction.extract import extract_corpus, input_dir_of
    from wav2kp.studies.train_run import train_run

    monkeypatch.setenv("WAV2KP_DATA", str(tmp_path / "data"))
    table = extract_corpus(grid_dir, "grid", workers=0, limit=8, progress=False)
    assert (table["status"] == "ok").sum() == 8
    assert input_dir_of("grid") == grid_dir.resolve()  # side-by-side videos find the sources
    # the `grid` profile (make model-grid), one seed, one epoch, no augmented copies
    cfg = RunConfig.resolve(profile="grid", seeds="0", epochs=1, augment=0, workers=0)
    run = train_run(cfg, progress=False)
    assert run.checkpoints("default") == [tmp_path / "data/models/grid/default/seed-0/best.pt"]
    speech = grid_dir / "bbaf3s.mp4"
    out = tmp_path / "out"
    assert main(["predict", str(speech), "--out", str(out), "--format", "npz",
                 "--no-preview"]) == 0  # fmt: skip
    printed = capsys.readouterr()
    record = json.loads((out / "predict.json").read_text())
    assert "grid/default" in record["checkpoint"]
    assert record["speaker"] == "s1"
    # a held-out GRID clip of speaker 1, and the line saying so and how to change it
    assert "grid" in record["reference"] and "--reference" in record["reference_change"]
    assert "reference" in (printed.out + printed.err).lower()
