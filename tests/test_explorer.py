"""The notebook explorer builds headless and redraws when driven programmatically."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from test_edgemap_faces import synthetic_face
from wav2kp import explorer
from wav2kp.dataset import ClipData


def _clip(clip_id: str, n: int, audio_path=None) -> ClipData:
    landmarks = np.stack([synthetic_face(mouth_open=0.08 * (t % 2)) for t in range(n)])
    valid = np.ones(n, bool)
    valid[-1] = False
    landmarks[-1] = np.nan
    return ClipData(
        clip_id=clip_id, speaker="s", emotion="neutral", sentence_id="x", split="test",
        frame_times=np.arange(n) / 30.0, landmarks=landmarks, valid=valid,
        frame_size=(512, 512), audio_path=audio_path,
        features=np.zeros((4, 2), np.float32), feature_times=np.arange(4) / 80.0,
        windows=np.zeros((n, 1, 2), np.float32), targets=np.zeros((n, 2), np.float32),
        pose=np.zeros((n, 4), np.float32),
    )  # fmt: skip


def test_explorer_builds_and_follows_the_slider(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.sin(np.arange(16000) / 10.0), 16000)
    clips = [_clip("a", 6, wav), _clip("b", 3)]
    shifted = {c.clip_id: c.landmarks + np.array([30.0, 0.0]) for c in clips}
    frame_calls = []

    def source(clip, index):
        frame_calls.append((clip.clip_id, index))
        return np.full((512, 512, 3), 200, np.uint8)

    ex = explorer.KeypointExplorer(clips, {"model": shifted}, frame_source=source)
    first = ex.last_view.copy()
    assert first.shape == (explorer.VIEW_SIZE, explorer.VIEW_SIZE, 3)
    assert ex.frame_slider.max == 5 and len(ex.audio.value) > 1000
    assert ex.image.value[:4] == b"\x89PNG"

    ex.frame_slider.value = 1  # the mouth opens in odd frames: the picture must change
    assert not np.array_equal(ex.last_view, first)
    assert frame_calls[-1] == ("a", 1)
    # both colours are drawn: true (green) and the model (its own colour)
    for color in (explorer.TRUE_COLOR, explorer.MODEL_COLORS[0]):
        assert (np.abs(ex.last_view.astype(int) - color).sum(axis=2) < 30).sum() > 50

    ex.show_edges.value = True
    assert ex.edges_image.value[:4] == b"\x89PNG"

    ex.select("b", 2)  # missing true keypoints on the last frame: drawn as missing
    assert ex.frame_slider.max == 2 and "missing" in ex.status.value
    assert ex.audio.layout.display == "none"
    green = (np.abs(ex.last_view.astype(int) - explorer.TRUE_COLOR).sum(axis=2) < 30).sum()
    assert green < 200  # only the legend text, no face


def test_explorer_rejects_mismatched_predictions():
    clip = _clip("a", 4)
    with pytest.raises(ValueError, match="a: prediction shape"):
        explorer.KeypointExplorer([clip], {"m": {"a": np.zeros((3, 68, 2))}})
    with pytest.raises(ValueError, match="at least one clip"):
        explorer.KeypointExplorer([])


def test_frames_folder_source(tmp_path):
    import cv2

    folder = tmp_path / "a"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), np.full((512, 512, 3), 50 + 100 * i, np.uint8))
    source = explorer.frames_folder_source(tmp_path)
    clip = _clip("a", 2)
    assert source(clip, 1).mean() == pytest.approx(150, abs=3)
    assert source(clip, 5) is None
