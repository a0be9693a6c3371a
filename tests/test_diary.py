"""The diary page: metrics read defensively, corpus groups, trends, thumbnails, status."""

from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from wav2kp.media.encode import write_video
from wav2kp.report import diary

VIDEO_FRAMES, VIDEO_FPS = 30, 15


def brightness_video(path: Path) -> Path:
    """Frame i is uniformly grey with level 8 * i: a thumbnail tells which frame it is."""
    frames = (np.full((64, 96, 3), 8 * i, np.uint8) for i in range(VIDEO_FRAMES))
    return write_video(path, frames, fps=VIDEO_FPS)


def make_run(runs: Path, folder: str, corpus: str, status: str = "ok", metrics=None, **extra):
    run_dir = runs / folder
    run_dir.mkdir(parents=True)
    day, time_ = folder[:8], folder[9:15]
    record = {
        "name": folder.split("-", 2)[2], "status": status,
        "started": f"{day[:4]}-{day[4:6]}-{day[6:]}T{time_[:2]}:{time_[2:4]}:{time_[4:]}+00:00",
        "parameters": {"corpus": corpus, "seed": 0, "output_dir": str(run_dir)},
        "commit": "abc1234", "seconds": 12.0,
        "notebooks": [{"name": "01_x", "status": "ok", "html": "01_x.html"}],
        "metrics": metrics or {}, **extra,
    }  # fmt: skip
    (run_dir / "01_x.html").write_text("<html></html>")
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def evaluation(r: float, **more) -> dict:
    return {
        "metrics": {
            "default": {
                "mouth_open_r": r,
                "variance_ratio": 0.95,
                "mouth_jitter_ratio": 1.0,
                **more,
            },
            "original": {"mouth_open_r": 0.4, "variance_ratio": 0.5},
            "details": {"n_clips": 4, "per_emotion": {"default": {"joy": {"mouth_open_r": 0}}}},
        },
        "metrics_training": {"default": {"n_parameters": 234000, "final_epochs": 40}},
    }


def test_estimate_reads_numbers_and_intervals():
    assert diary.estimate(0.5) == diary.Estimate(0.5)
    assert diary.estimate({"mean": 0.8, "low": 0.7, "high": 0.9}) == diary.Estimate(0.8, 0.7, 0.9)
    assert diary.estimate({"value": 2, "ci": [1, 3]}) == diary.Estimate(2.0, 1.0, 3.0)
    assert diary.estimate({"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}).text() == "1 [0.5, 1.5]"
    for unusable in (None, float("nan"), "0.5", True, {"low": 1}, [1, 2]):
        assert diary.estimate(unusable) is None


def test_model_metrics_finds_models_wherever_they_are():
    run = {"metrics": evaluation(0.8)}
    models = diary.model_metrics(run)
    assert set(models) == {"default", "original"}  # 'details' holds no headline metrics
    assert diary.key_metrics(run)["mouth_open_r"] == 0.8
    nested = {"metrics": {"metrics": {"models": {"default": {"mouth_open_r": {"mean": 0.7,
              "ci": [0.6, 0.8]}, "variance_ratio": 1.0}}}}}  # fmt: skip
    assert diary.model_metrics(nested)["default"]["mouth_open_r"] == diary.Estimate(0.7, 0.6, 0.8)
    flat = {"metrics": {"metrics_evaluation": {"model": "mine", "mouth_open_r": 0.6}}}
    assert diary.key_metrics(flat) == {"mouth_open_r": 0.6}
    renamed = {"parameters": {"model": "tcn"}, "metrics": {"metrics": {
        "ridge": {"mouth_open_r": 0.5, "variance_ratio": 1}, "tcn": {"mouth_open_r": 0.9,
        "variance_ratio": 1}}}}  # fmt: skip
    assert diary.primary_model(renamed, diary.model_metrics(renamed)) == "tcn"
    assert diary.key_metrics({"metrics": {"metrics": "broken"}}) == {}


@pytest.mark.parametrize(
    ("corpus", "group"),
    [("demo", "demo"), ("demo-tiny", "demo"), ("grid", "grid"), ("grid-s1", "grid"),
     ("myvideos", "own"), ("demolition", "own"), (None, "own")],
)  # fmt: skip
def test_corpus_group(corpus, group):
    assert diary.corpus_group(corpus) == group


def test_diary_shows_corpora_side_by_side_with_trends_filters_and_thumbnails(tmp_path: Path):
    runs = tmp_path / "reports" / "runs"
    make_run(runs, "20260101-100000-demo", "demo", metrics=evaluation(0.80))
    demo = make_run(runs, "20260102-100000-demo", "demo", metrics=evaluation(0.85))
    # the evaluation's summary: bootstrap intervals per space (the diary shows 'aligned')
    (demo / diary.SUMMARY_FILE).write_text(
        "space,model,metric,estimate,low,high,seed_sd\n"
        "aligned,default,mouth_open_r,0.85,0.8,0.9,\n"
        "frame,default,mouth_open_r,0.7,0.6,0.75,\n"
        "aligned,default,mouth_jitter_ratio,1.0,nan,nan,\n"
        "aligned,default,variance_ratio,0.95,0.95,0.95,\n"  # one sentence: no interval
    )
    grid = make_run(
        runs, "20260103-100000-grid", "grid",
        metrics=evaluation({"mean": 0.91, "low": 0.89, "high": 0.93}),
    )  # fmt: skip
    brightness_video(grid / "evaluation_videos" / "clip.mp4")
    make_run(runs, "20260104-100000-mine", "myvideos", status="failed",
             failure="04_training.py: cell 3 raised ValueError: no clips")  # fmt: skip
    make_run(runs, "20260105-100000-demo", "demo", status="running")  # killed: lock free
    live = make_run(runs, "20260106-100000-demo", "demo", status="running")
    with open(live / diary.RUN_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a report is running there right now
        text = diary.write_diary(runs).read_text()

    # one card per run with its corpus group, newest first
    cards = re.findall(r'<article class="run (\w+)" data-group="(\w+)"', text)
    assert cards == [("running", "demo"), ("interrupted", "demo"), ("failed", "own"),
                     ("ok", "grid"), ("ok", "demo"), ("ok", "demo")]  # fmt: skip
    assert "interrupted — the same command again resumes it" in text
    assert "no clips" in text and "default · 234 k parameters · 40 epochs" in text
    # the filter: a radio and a rule per corpus group present
    for group in ("demo", "grid", "own"):
        assert f'id="show-{group}"' in text
        assert f"#show-{group}:checked ~ main [data-group]:not([data-group={group}])" in text
    # a trend plot per corpus group with runs, drawn inline
    figures = re.findall(r'<figure class="trend" data-group="(\w+)"><svg', text)
    assert figures == ["demo", "grid"]
    # GRID beside demo: the newest finished run of each corpus as a column
    side = text[text.index("side by side") : text.index("Runs (newest first)")]
    assert "20260103-100000-grid" in side and "20260102-100000-demo" in side
    assert "20260101-100000-demo" not in side
    assert "0.91 [0.89, 0.93]" in side and "0.85 [0.8, 0.9]" in side
    assert "0.7 [0.6, 0.75]" not in text and "0.95 [0.95, 0.95]" not in text
    assert "Cooke, J. Barker" in text and "CC BY 4.0" in text  # GRID credited

    # the video's thumbnail: its frame at 40 %, linked to the video
    (thumb,) = (grid / diary.THUMBS).iterdir()
    assert f'src="runs/20260103-100000-grid/{diary.THUMBS}/{thumb.name}"' in text
    assert 'href="runs/20260103-100000-grid/evaluation_videos/clip.mp4"' in text
    level = cv2.imread(str(thumb)).mean()
    assert level == pytest.approx(8 * int(0.4 * VIDEO_FRAMES), abs=6)
    assert cv2.imread(str(thumb)).shape[1] == 240


def test_unreadable_video_is_a_plain_link(tmp_path: Path):
    runs = tmp_path / "runs"
    run_dir = make_run(runs, "20260101-100000-demo", "demo", metrics=evaluation(0.8))
    (run_dir / "broken.mp4").write_bytes(b"not a video")
    text = diary.write_diary(runs).read_text()
    assert 'href="runs/20260101-100000-demo/broken.mp4"' in text
    assert not (run_dir / diary.THUMBS).exists()


def test_empty_diary(tmp_path: Path):
    text = diary.write_diary(tmp_path / "runs").read_text()
    assert "no runs yet" in text and "Trends" not in text


def test_corpus_comes_from_the_resolved_configuration_when_not_a_parameter(tmp_path: Path):
    runs = tmp_path / "runs"
    run_dir = make_run(runs, "20260101-100000-demo", "unused", metrics=evaluation(0.8))
    stored = json.loads((run_dir / "run.json").read_text())
    del stored["parameters"]["corpus"]  # `make report` without PARAMS: the default corpus
    stored["config"] = {"corpus": "demo", "seeds": [0]}
    (run_dir / "run.json").write_text(json.dumps(stored))
    text = diary.write_diary(runs).read_text()
    assert 'data-group="demo"' in text and '<span class="badge demo">demo</span>' in text


def test_model_description_reads_both_training_formats():
    listed = {"metrics": {"metrics_training": {"final_models": [
        {"model": "default", "n_parameters": 217752, "epochs": 40, "seed": 0},
        {"model": "default", "n_parameters": 217752, "epochs": 40, "seed": 1},
        {"model": "original", "n_parameters": 1790536, "epochs": 5, "seed": 0},
    ]}}}  # fmt: skip
    assert diary.model_description(listed, "default") == (
        "default · 218 k parameters · 40 epochs · 2 seeds"
    )
    assert diary.model_description(listed, "original").endswith("5 epochs · 1 seed")
    per_model = {"metrics": evaluation(0.8)}
    assert diary.model_description(per_model, "default") == "default · 234 k parameters · 40 epochs"
    assert diary.model_description({"metrics": {}}, "default") == "default"


def test_faces_are_shown_first_beside_the_line_drawings(tmp_path: Path):
    runs = tmp_path / "runs"
    run_dir = make_run(runs, "20260101-100000-demo", "demo", metrics=evaluation(0.8))
    brightness_video(run_dir / "evaluation_videos" / "s1_joy_s03.mp4")
    brightness_video(run_dir / "evaluation_faces" / "s1_joy_s03_real_vs_face.mp4")
    brightness_video(run_dir / "vid2vid_handoff" / "face.mp4")
    brightness_video(run_dir / "vid2vid_handoff" / "preview.mp4")
    text = diary.write_diary(runs).read_text()
    faces = re.search(r'<div class="faces"><p>([^<]*)</p><div class="videos">(.*?)</div></div>',
                      text, re.S)  # fmt: skip
    assert faces is not None and faces.group(1) == diary.FACES_CAPTION
    shown = re.findall(r'<a class="video" href="runs/20260101-100000-demo/([^"]+)"><img src="'
                       r'runs/20260101-100000-demo/thumbs/([^"]+)"', faces.group(2))  # fmt: skip
    assert shown == [
        ("evaluation_faces/s1_joy_s03_real_vs_face.mp4",
         "evaluation_faces__s1_joy_s03_real_vs_face.jpg"),
        ("vid2vid_handoff/face.mp4", "vid2vid_handoff__face.jpg"),
    ]  # fmt: skip
    # the line drawings and the preview follow, in their own row
    rest = text[faces.end() :]
    assert 'href="runs/20260101-100000-demo/evaluation_videos/s1_joy_s03.mp4"' in rest
    assert 'href="runs/20260101-100000-demo/vid2vid_handoff/preview.mp4"' in rest
    assert "real_vs_face" not in rest and "face.mp4" not in rest
    assert len(list((run_dir / diary.THUMBS).glob("*.jpg"))) == 4


def test_a_run_without_faces_has_no_faces_row(tmp_path: Path):
    runs = tmp_path / "runs"
    run_dir = make_run(runs, "20260101-100000-demo", "demo", metrics=evaluation(0.8))
    brightness_video(run_dir / "evaluation_videos" / "clip.mp4")
    text = diary.write_diary(runs).read_text()
    assert diary.FACES_CAPTION not in text and 'class="faces"' not in text


def test_mouth_measures_are_headlines_and_older_runs_simply_lack_them(tmp_path: Path):
    runs = tmp_path / "reports" / "runs"
    make_run(runs, "20260101-100000-demo", "demo", metrics=evaluation(0.80))  # predates them
    make_run(runs, "20260102-100000-grid", "grid", metrics=evaluation(
        0.90, syllable_band_ratio=0.93, bilabial_closure_rate=float("nan")))  # fmt: skip
    text = diary.write_diary(runs).read_text()
    chips = re.findall(r'<div class="chip"><span>(\w+)</span><b>([^<]*)</b>', text)
    assert ("syllable_band_ratio", "0.93") in chips
    # NaN is absent, never shown as a number: no chip, no side-by-side row, no trend panel
    assert "bilabial_closure_rate" not in text
    side = text[text.index("side by side") : text.index("Runs (newest first)")]
    row = re.search(r"<tr><th>syllable_band_ratio</th>(.*?)</tr>", side).group(1)
    assert row == "<td>0.93</td><td></td>"  # the grid run has it, the older demo run not
    trends = diary.trend_table(diary.load_runs(runs))
    assert set(trends["metric"]) == {"mouth_open_r", "variance_ratio", "mouth_jitter_ratio",
                                     "syllable_band_ratio"}  # fmt: skip
    assert "syllable-band ratio" in diary.trend_svg(trends)
