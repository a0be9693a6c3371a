"""The whole chain 01-06, executed by papermill on the tiny demo corpus, as `make report`
does it (own data folder and runs folder, so nothing in data/ or reports/ is touched)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from wav2kp.paths import project_root
from wav2kp.report import run_report

CI_PARAMETERS = {
    "corpus": "demo-tiny",
    "seed": 0,
    "workers": 2,
    "epochs": 4,
    "max_minutes": 0.5,
    "run_ablation": False,
    "video_clips": 1,
    "trace_clips": 1,
}


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("chain")
    with pytest.MonkeyPatch.context() as mp:
        # kernels inherit the environment: all data goes to the temp folder
        mp.setenv("WAV2KP_DATA", str(base / "data"))
        record = run_report(
            "ci-chain", dict(CI_PARAMETERS), runs_dir=base / "reports" / "runs", progress=False
        )
    return base, record


def test_all_six_notebooks_ran(chain_run):
    base, record = chain_run
    sources = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.py"))
    assert [nb.name for nb in record.notebooks] == [p.stem for p in sources]
    assert len(sources) == 6
    assert all(nb.status == "ok" for nb in record.notebooks), record.failure
    run_dir = base / "reports" / "runs" / record.folder
    for nb in record.notebooks:
        assert (run_dir / nb.html).stat().st_size > 10_000


def test_diary_lists_the_run_with_resolving_links(chain_run):
    base, record = chain_run
    index = base / "reports" / "index.html"
    text = index.read_text()
    assert record.folder in text
    import re

    links = re.findall(r'(?:href|src)="([^"]+)"', text)
    assert len(links) >= 6
    for link in links:
        assert (index.parent / link).is_file(), f"dangling diary link {link}"


def test_results_table_has_all_four_models(chain_run):
    base, record = chain_run
    run_dir = base / "reports" / "runs" / record.folder
    metrics = json.loads((run_dir / "metrics.json").read_text())
    text = json.dumps(metrics)
    for model in ("mean_face", "ridge", "original", "default"):
        assert model in text, f"{model} missing from metrics.json"
    assert list(run_dir.rglob("*.mp4")), "no video in the run folder"


def test_vid2vid_tree_written(chain_run):
    base, record = chain_run
    run_dir = base / "reports" / "runs" / record.folder
    txts = sorted(run_dir.rglob("test_keypoints/*/*.txt"))
    imgs = sorted(run_dir.rglob("test_img/*/*.jpg"))
    assert txts and len(txts) == len(imgs)
    rows = np.loadtxt(txts[0], delimiter=",", dtype=np.int64)
    assert rows.shape == (68, 2)
