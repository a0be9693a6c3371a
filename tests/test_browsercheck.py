"""The diary in a real headless browser (the system Chromium): links, videos, screenshot,
and the corpus filter as a reader clicks it."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from test_diary import VIDEO_FPS, VIDEO_FRAMES, brightness_video, evaluation, make_run
from wav2kp.report import browsercheck, diary

missing = browsercheck.missing_browser_reason()
pytestmark = pytest.mark.skipif(missing is not None, reason=f"browser check: {missing}")


@pytest.fixture
def diary_page(tmp_path: Path) -> Path:
    runs = tmp_path / "reports" / "runs"
    demo = make_run(runs, "20260101-100000-demo", "demo", metrics=evaluation(0.85))
    grid = make_run(runs, "20260102-100000-grid", "grid", metrics=evaluation(0.91))
    brightness_video(demo / "evaluation_videos" / "a clip.mp4")  # a space: URL-escaped
    brightness_video(grid / "preview.mp4")
    return diary.write_diary(runs)


def test_diary_links_videos_and_screenshot(diary_page: Path, tmp_path: Path):
    shot = tmp_path / "shot.png"
    result = browsercheck.check_page(diary_page, screenshot=shot)
    assert result.ok, result.problems()
    # notebooks, run folders, thumbnails and videos of both runs
    assert len(result.links) >= 8
    assert sum(link.endswith(".mp4") for link in result.links) == 2
    assert len(result.videos) == 2
    for video in result.videos:
        assert video["duration"] == pytest.approx(VIDEO_FRAMES / VIDEO_FPS, abs=0.1)
        assert (video["width"], video["height"]) == (96, 64)
    image = cv2.imread(str(shot))
    assert image.shape[1] == browsercheck.WINDOW_WIDTH and image.shape[0] > 600
    assert image.std() > 10  # a rendered page, not a blank one
    assert result.screenshot == "shot.png" and result.browser.startswith("chrom")


def test_diary_served_over_http(diary_page: Path):
    with browsercheck.serve_directory(diary_page.parent) as base:
        result = browsercheck.check_page(base + diary_page.name)
    assert result.ok, result.problems()
    assert all(link.startswith(base) for link in result.links)
    assert len(result.videos) == 2


def test_broken_link_and_unplayable_video_are_reported(diary_page: Path):
    runs = diary_page.parent / "runs"
    (runs / "20260101-100000-demo" / "01_x.html").unlink()
    (runs / "20260102-100000-grid" / "preview.mp4").write_bytes(b"\x00" * 4096)
    result = browsercheck.check_page(diary_page)
    assert not result.ok
    assert [b["url"].rsplit("/", 2)[-2:] for b in result.broken_links] == [
        ["20260101-100000-demo", "01_x.html"]
    ]
    (bad,) = result.bad_videos
    assert bad["url"].endswith("preview.mp4") and "error" in bad
    assert any("01_x.html" in p for p in result.problems())


def test_corpus_filter_hides_the_other_corpora(diary_page: Path):
    from selenium.webdriver.common.by import By

    with browsercheck.chromium() as browser:
        browser.get(diary_page.resolve().as_uri())

        def visible_cards():
            cards = browser.find_elements(By.CSS_SELECTOR, "article.run")
            return [c.get_attribute("data-group") for c in cards if c.is_displayed()]

        assert visible_cards() == ["grid", "demo"]
        browser.find_element(By.CSS_SELECTOR, "label[for=show-grid]").click()
        assert visible_cards() == ["grid"]
        trends = browser.find_elements(By.CSS_SELECTOR, "figure.trend")
        assert [t.get_attribute("data-group") for t in trends if t.is_displayed()] == ["grid"]
        browser.find_element(By.CSS_SELECTOR, "label[for=show-demo]").click()
        assert visible_cards() == ["demo"]
        browser.find_element(By.CSS_SELECTOR, "label[for=show-all]").click()
        assert visible_cards() == ["grid", "demo"]


def test_diary_only_command_checks_and_fails_on_a_broken_diary(diary_page: Path, capsys):
    from wav2kp import cli

    runs = diary_page.parent / "runs"
    assert cli.main(["report", "--diary-only", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "links resolve, 2 videos load" in out
    assert (diary_page.parent / diary.SCREENSHOT).stat().st_size > 10_000
    (runs / "20260102-100000-grid" / "01_x.html").unlink()
    assert cli.main(["report", "--diary-only", "--runs-dir", str(runs)]) == 1
    captured = capsys.readouterr()
    assert "1 broken links" in captured.out and "01_x.html" in captured.err
