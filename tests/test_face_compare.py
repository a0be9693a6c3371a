"""Real video | face for the report (notebooks 05 and 06, the diary): a held-out clip's own
frames with the lower face warped onto predicted keypoints, beside the real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wav2kp.handoff import facecompare
from wav2kp.handoff.face import FaceRenderError
from wav2kp.media.decode import iter_frames
from wav2kp.media.encode import write_video
from wav2kp.media.probe import probe
from wav2kp.paths import CorpusPaths, shared_realclips
from wav2kp.plots.render import PANEL

GRID = shared_realclips().parent / "grid-s1"
CLIP = "bbaf3s"  # GRID speaker 1 (CC BY 4.0): faces of GRID speakers may be rendered


def test_faces_of_the_realclips_people_are_refused(tmp_path: Path):
    forbidden = shared_realclips() / "liveportrait_d11.mp4"
    reason = facecompare.face_refusal(tmp_path / "mine.mp4", forbidden)
    assert reason is not None and "liveportrait_d11.mp4" in reason and "README" in reason
    assert facecompare.face_refusal(tmp_path / "mine.mp4", None) is None
    assert facecompare.face_refusal(GRID / f"{CLIP}.mp4") is None
    with pytest.raises(FaceRenderError, match="talking videos"):
        facecompare.write_clip_face(tmp_path / "x.mp4", tmp_path / "x.npz", forbidden,
                                    np.zeros(1), np.zeros((1, 68, 2)))  # fmt: skip
    assert not (tmp_path / "x.mp4").exists()


def test_face_videos_are_recognised_by_name():
    assert facecompare.is_face_video("runs/a/evaluation_faces/s1_x_real_vs_face.mp4")
    assert facecompare.is_face_video("runs/a/vid2vid_handoff/face.mp4")
    assert not facecompare.is_face_video("runs/a/evaluation_videos/s1_x.mp4")
    assert not facecompare.is_face_video("runs/a/vid2vid_handoff/preview.mp4")


def test_missing_frames_are_interpolated_and_points_resampled():
    points = np.zeros((4, 68, 2))
    points[:, :, 0] = np.arange(4)[:, None] * 10.0
    points[1, 5] = np.nan  # an incomplete frame counts as missing
    points[3] = np.nan
    filled = facecompare.fill_missing(points)
    assert np.allclose(filled[1, :, 0], 10.0) and np.allclose(filled[3, :, 0], 20.0)  # held
    resampled = facecompare.resample_points(np.array([0.0, 0.1, 0.2, 0.3]), points,
                                            np.array([0.05, 0.15]))  # fmt: skip
    assert np.allclose(resampled[:, :, 0], [[5.0], [15.0]])
    with pytest.raises(ValueError, match="no frame"):
        facecompare.fill_missing(np.full((2, 68, 2), np.nan))


@pytest.fixture(scope="module")
def grid_clip(tmp_path_factory):
    """GRID speaker 1's clip extracted the project's way: (npz, video)."""
    video = GRID / f"{CLIP}.mp4"
    if not video.is_file():
        pytest.skip(f"GRID speaker 1 not available at {GRID}")
    from wav2kp.extraction import extract

    root = tmp_path_factory.mktemp("grid-extract")
    (root / "input").mkdir()
    (root / "input" / video.name).symlink_to(video)
    paths = CorpusPaths("grid-one", root=root / "data")
    table = extract.extract_corpus(root / "input", paths, workers=0, progress=False)
    assert (table["status"] == "ok").all(), table
    return paths.extracted / f"{CLIP}.npz", video


def decoded(path: Path) -> np.ndarray:
    return np.stack([rgb for _, rgb in iter_frames(path)]).astype(np.float64)


def test_clip_face_is_the_real_clip_where_the_prediction_is_true_and_opens_the_mouth_where_not(
    tmp_path: Path, grid_clip
):
    npz, video = grid_clip
    with np.load(npz) as data:
        times, true = data["times"], data["lm68"].astype(np.float64)
    predicted = true.copy()
    opened = slice(10, 20)  # frames whose predicted jaw and lower lip drop
    iod = np.linalg.norm(true[:, 36:42].mean(1) - true[:, 42:48].mean(1), axis=-1)
    drop = 0.12 * iod[opened, None]
    predicted[opened, 5:12, 1] += drop * 0.6
    predicted[opened, 55:60, 1] += drop
    predicted[opened, 64:68, 1] += drop
    path = tmp_path / f"{CLIP}{facecompare.COMPARISON_SUFFIX}"
    speech = npz.parent.parent / "audio" / f"{CLIP}.wav"  # what the extraction wrote
    plan = facecompare.write_clip_face(path, npz, video, times, predicted,
                                       audio_path=speech, seconds=1.0)  # fmt: skip

    n = int(np.searchsorted(times, times[0] + 1.0 - 1e-9))
    assert len(plan.times) == n == 25  # 1 s of a 25 fps clip
    assert np.allclose(plan.targets, predicted[:n])
    info = probe(path)
    assert (info.width, info.height) == (2 * PANEL, 32 + PANEL)
    assert info.has_audio and info.duration == pytest.approx(1.0, abs=0.1)
    frames = decoded(path)
    assert len(frames) == n
    real, face = frames[:, 32:, :PANEL], frames[:, 32:, PANEL:]
    difference = np.abs(real - face).mean(axis=-1)  # (T, 256, 256)
    # regions of the panels (vid2vid's crop of the first frame, 256 px)
    from wav2kp.plots.edgemap import crop_box

    x0, y0, x1, _ = crop_box(true[0], (360, 288))
    scale = PANEL / (x1 - x0)
    lips = (np.r_[true[opened, 48:68], predicted[opened, 48:68]] - (x0, y0)) * scale
    (lx0, ly0), (lx1, ly1) = lips.reshape(-1, 2).min(0).astype(int), lips.reshape(-1, 2).max(0)
    mouth = (slice(ly0, int(ly1) + 1), slice(lx0, int(lx1) + 1))
    above_nose = slice(0, int((true[0, 27, 1] - y0) * scale))
    still = np.r_[0:8, 22:25]
    # where the prediction is the truth, the face is the real frame (encoding aside)
    assert difference[still].mean() < 2.0
    still_mouth = difference[still][:, mouth[0], mouth[1]].mean()
    assert still_mouth < 4.0
    # where it opens the mouth, the mouth changes and nothing above the nose does
    assert difference[opened][:, mouth[0], mouth[1]].mean() > max(8.0, 3 * still_mouth)
    assert difference[opened][:, above_nose].mean() < 2.0


def test_handoff_face_puts_the_speech_video_beside_the_face_video(tmp_path: Path, grid_clip):
    npz, video = grid_clip
    track, _ = facecompare.load_clip_track(npz, video, seconds=0.6)
    # a stand-in "face video": the clip's frames upside down, so the panels differ
    face_video = write_video(tmp_path / "face.mp4", (im[::-1] for im in track.images), fps=25)
    flipped = track.landmarks.copy()
    flipped[..., 1] = track.size[1] - 1 - flipped[..., 1]
    out = facecompare.write_handoff_face(
        tmp_path / f"handoff{facecompare.COMPARISON_SUFFIX}", video, track.landmarks,
        track.size, face_video, flipped, track.size, audio_path=None,
    )  # fmt: skip
    frames = decoded(out)
    assert len(frames) == len(track.images) == 15
    left, right = frames[:, 32:, :PANEL], frames[:, 32:, PANEL:]
    # each panel is its own video cropped on its own face: the right one is the left upside
    # down (the crop box of the flipped points is the flipped box, up to a pixel)
    assert np.abs(left - right[:, ::-1]).mean() < 12.0
    assert np.abs(left - right).mean() > 20.0


def test_the_diary_shows_a_rendered_face_that_loads_in_a_browser(tmp_path: Path, grid_clip):
    from wav2kp.report import browsercheck, diary

    missing = browsercheck.missing_browser_reason()
    if missing:
        pytest.skip(f"browser check: {missing}")
    from test_diary import evaluation, make_run

    npz, video = grid_clip
    with np.load(npz) as data:
        times, true = data["times"], data["lm68"].astype(np.float64)
    runs = tmp_path / "reports" / "runs"
    run_dir = make_run(runs, "20260101-100000-grid", "grid", metrics=evaluation(0.8))
    path = run_dir / "evaluation_faces" / f"{CLIP}{facecompare.COMPARISON_SUFFIX}"
    facecompare.write_clip_face(path, npz, video, times, true, audio_path=None, seconds=1.0)
    page = diary.write_diary(runs)
    assert diary.FACES_CAPTION in page.read_text()
    result = browsercheck.check_page(page)
    assert result.ok, result.problems()
    (loaded,) = result.videos
    assert loaded["url"].endswith(path.name)
    assert (loaded["width"], loaded["height"]) == (2 * PANEL, 32 + PANEL)
    assert loaded["duration"] == pytest.approx(1.0, abs=0.1)
    assert any(link.endswith(".jpg") for link in result.links)  # its thumbnail decodes
