"""The whole chain 01-06, executed by papermill on the tiny demo corpus, as `make report`
does it (own data folder and runs folder, so nothing in data/ or reports/ is touched).
The run itself is the session fixture ``chain_run`` (conftest.py): other tests reuse its
trained model and corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
from wav2kp import cli
from wav2kp.evaluation import results
from wav2kp.metrics import METRIC_DIRECTIONS
from wav2kp.paths import project_root


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

    # the page's own links (the inline plots' in-SVG "#id" references excluded)
    links = re.findall(r' (?:href|src)="([^"#][^"]*)"', text)
    assert len(links) >= 6
    for link in links:
        assert (index.parent / link).exists(), f"dangling diary link {link}"


def test_diary_checked_in_a_browser(chain_run):
    """The run opened its diary in headless Chromium: links, videos, screenshot."""
    from wav2kp.report import browsercheck, diary

    missing = browsercheck.missing_browser_reason()
    if missing:
        pytest.skip(f"browser check: {missing}")
    base, record = chain_run
    run_dir = base / "reports" / "runs" / record.folder
    check = json.loads((run_dir / diary.BROWSER_CHECK).read_text())
    assert not check["broken_links"] and not check["bad_videos"], check
    videos = list(run_dir.rglob("*.mp4"))
    assert len(check["videos"]) == len(videos) > 0
    assert all(v["duration"] > 0 for v in check["videos"])
    assert (run_dir / check["screenshot"]).stat().st_size > 10_000
    # the diary links the screenshot and shows a thumbnail per video
    text = (base / "reports" / "index.html").read_text()
    assert f"{record.folder}/{diary.SCREENSHOT}" in text
    assert len(list((run_dir / diary.THUMBS).glob("*.jpg"))) == len(videos)


EVALUATED_MODELS = {"neutral_face", "mean_face", "loudness", "ridge", "original", "default",
                    "default_label_free", "default_audio_emotion"}  # fmt: skip


def test_every_model_is_scored_with_every_metric_in_both_spaces(chain_run):
    base, record = chain_run
    run_dir = base / "reports" / "runs" / record.folder
    table, protocol = results.load_results(run_dir)
    assert set(table["model"]) == EVALUATED_MODELS
    assert (table["error"] == "").all(), table.loc[table["error"] != "", "error"].tolist()
    assert set(table["space"]) == {"aligned", "frame"} and set(table["split"]) == {"test"}
    assert protocol["corpus"] == "demo-tiny" and protocol["seeds"] == [0]
    # every model on the same frames of a clip
    assert (table.groupby("clip_id")["n_frames_scored"].nunique() == 1).all()
    static = table["model"].isin(["mean_face", "neutral_face"])
    aligned, frame = table["space"] == "aligned", table["space"] == "frame"
    distances = ["mouth_lmd_iod", "mouth_lmd_px256", "face_lmd_iod", "lvd_mouth_iod", "lve_iod2"]
    assert np.isfinite(table.loc[aligned, distances].to_numpy()).all()
    assert np.isfinite(table.loc[frame, ["mouth_crop_px", "face_crop_px"]].to_numpy()).all()
    moving = table[~static & aligned]
    assert np.isfinite(moving[["mouth_open_r", "variance_ratio", "mouth_jitter_ratio"]]).all().all()
    assert (table.loc[static & aligned, "variance_ratio"] < 1e-3).all()
    # what the diary reads: per model, every metric of the pose-normalised space
    metrics_json = json.loads((run_dir / "metrics.json").read_text())
    for model in EVALUATED_MODELS:
        assert set(METRIC_DIRECTIONS) <= set(metrics_json[model]), model
    assert list(run_dir.rglob("*.mp4")), "no video in the run folder"


def test_default_beats_the_true_mean_face(chain_run):
    base, record = chain_run
    table, _ = results.load_results(base / "reports" / "runs" / record.folder)
    estimates = results.wide(results.summarise(table))
    for space, error in (("aligned", "mouth_lmd_iod"), ("frame", "mouth_crop_px")):
        for model in ("default", "default_label_free", "default_audio_emotion"):
            assert (
                estimates.loc[(space, model), error] < estimates.loc[(space, "mean_face"), error]
            ), (space, model)
    assert estimates.loc[("aligned", "default"), "mouth_open_r"] > 0.5


def test_the_results_command_regenerates_the_runs_tables(chain_run, capsys):
    base, record = chain_run
    run_dir = base / "reports" / "runs" / record.folder
    assert cli.main(["results", str(run_dir), "--markdown"]) == 0
    printed = capsys.readouterr().out
    table, protocol = results.load_results(run_dir)
    assert printed == results.markdown(table, protocol, source=str(run_dir))
    assert "too few test sentences to judge" in printed  # the tiny corpus has one


def test_vid2vid_tree_written(chain_run):
    base, record = chain_run
    run_dir = base / "reports" / "runs" / record.folder
    txts = sorted(run_dir.rglob("test_keypoints/*/*.txt"))
    imgs = sorted(run_dir.rglob("test_img/*/*.jpg"))
    assert txts and len(txts) == len(imgs)
    rows = np.loadtxt(txts[0], delimiter=",", dtype=np.int64)
    assert rows.shape == (68, 2)
    # the notebook-06 export passes the vid2vid-exact check: crop inside the frame, every
    # face edge reaches the generator's edge channel
    (metrics_file,) = run_dir.rglob("metrics_handoff.json")
    handoff = json.loads(metrics_file.read_text())
    assert handoff["vid2vid_check_ok"] and handoff["vid2vid_crop_fits"]
    assert handoff["face_edge_share"] == 1.0
    from wav2kp.handoff import vid2vid

    (root,) = {p.parent.parent.parent for p in txts}
    assert vid2vid.check_vid2vid_tree(root) == []


def test_faces_shown_in_notebooks_05_06_and_the_diary(chain_run):
    """Real video | face from the predicted keypoints for held-out sentences (05, 06),
    face.mp4 of the hand-off, and the diary's faces row."""
    from wav2kp.handoff import facecompare
    from wav2kp.media.probe import probe
    from wav2kp.report import diary

    base, record = chain_run
    run_dir = base / "reports" / "runs" / record.folder
    evaluated = sorted((run_dir / "evaluation_faces").glob(f"*{facecompare.COMPARISON_SUFFIX}"))
    handoff = run_dir / f"handoff{facecompare.COMPARISON_SUFFIX}"
    face = run_dir / "vid2vid_handoff" / "face.mp4"
    assert len(evaluated) == 1 and handoff.is_file() and face.is_file()
    for video in (*evaluated, handoff):
        info = probe(video)
        assert (info.width, info.height) == (512, 288) and info.has_audio
        assert 0.5 < info.duration <= facecompare.CLIP_SECONDS + 0.1
    assert probe(face).has_audio
    for name in ("05_evaluation", "06_vid2vid_handoff"):  # embedded in the rendered pages
        (page,) = [nb.html for nb in record.notebooks if nb.name == name]
        assert "real_vs_face.mp4" in (run_dir / page).read_text()
    text = (base / "reports" / "index.html").read_text()
    row = text[text.index(diary.FACES_CAPTION) :].split('<div class="videos">', 2)[1]
    for video in (*evaluated, handoff, face):
        assert video.relative_to(run_dir).as_posix() in row.split("</div>")[0]
