"""The notebook explorer: built headless and driven programmatically, and notebook 06's
explorer cell executed in a real kernel and driven through the widget protocol as
JupyterLab's frontend drives it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf
from test_edgemap_faces import synthetic_face
from wav2kp.plots import explorer
from wav2kp.windowing.dataset import ClipData


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


# ---------------------------------------------------------------- the notebook cell, live


class WidgetFrontend:
    """What JupyterLab's widget manager does, over the kernel protocol: it learns the
    widget models from ``comm_open``, keeps their state from ``comm_msg`` updates (binary
    buffers included) and sends the user's changes as ``update`` messages."""

    def __init__(self, client):
        self.client = client
        self.models: dict[str, dict] = {}

    def _absorb(self, msg) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind not in ("comm_open", "comm_msg"):
            return
        data = content.get("data", {})
        if kind == "comm_msg" and data.get("method") not in ("update", "echo_update"):
            return
        state = dict(data.get("state", {}))
        for path, buffer in zip(data.get("buffer_paths", []), msg.get("buffers", []), strict=False):
            state[path[0]] = bytes(buffer)
        self.models.setdefault(content["comm_id"], {}).update(state)

    def execute(self, code: str, timeout: float = 600) -> list[str]:
        """Run code as a cell; returns its text outputs; raises on an error."""
        texts: list[str] = []

        def hook(msg):
            self._absorb(msg)
            if msg["msg_type"] == "stream":
                texts.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == "ok", reply["content"]
        return texts

    def find(self, model: str, **state) -> str:
        (comm_id,) = [
            cid for cid, s in self.models.items()
            if s.get("_model_name") == model and all(s.get(k) == v for k, v in state.items())
        ]  # fmt: skip
        return comm_id

    def user_sets(self, comm_id: str, timeout: float = 120, **state) -> None:
        """The user moves a control: an update to the kernel, then everything the kernel
        sends back until it is idle again."""
        msg = self.client.session.msg(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "update", "state": state, "buffer_paths": []}},
        )
        self.client.shell_channel.send(msg)
        sent = msg["header"]["msg_id"]
        deadline = time.monotonic() + timeout
        while True:
            reply = self.client.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") != sent:
                continue
            self._absorb(reply)
            if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                return


def _decode_png(data: bytes) -> np.ndarray:
    import cv2

    assert data[:4] == b"\x89PNG", "not a PNG"
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_notebook_explorer_cell_driven_like_jupyterlab(chain_run, tmp_path):
    """Notebook 06's explorer cell, executed in a real kernel on the chain's trained model,
    then driven through the widget protocol: the picture follows the slider, the checkbox
    and the clip dropdown."""
    import jupytext
    from jupyter_client.manager import start_new_kernel
    from wav2kp.paths import project_root

    base, _ = chain_run
    source = project_root() / "notebooks" / "06_vid2vid_handoff.py"
    cells = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
    explorer_cell = next(i for i, code in enumerate(cells) if "KeypointExplorer(" in code)
    # papermill's way: the parameters cell, then the injected values
    injected = f"corpus = 'demo-tiny'\noutput_dir = {str(tmp_path)!r}\nseed = 0\n"
    env = {**os.environ, "WAV2KP_DATA": str(base / "data"), "MPLBACKEND": "agg"}
    manager, client = start_new_kernel(
        kernel_name="python3", env=env, cwd=str(project_root()), stderr=subprocess.DEVNULL,
        startup_timeout=120,
    )  # fmt: skip
    try:
        ui = WidgetFrontend(client)
        ui.execute(cells[0] + "\n" + injected)
        for code in cells[1 : explorer_cell + 1]:
            ui.execute(code)
        slider = ui.find("IntSliderModel", description="frame")
        dropdown = ui.find("DropdownModel", description="clip")
        checkbox = ui.find("CheckboxModel", description="vid2vid edge maps")
        # the frame view, then the edge-map strip (models are announced in creation order)
        overlay, edges = [c for c, s in ui.models.items() if s.get("_model_name") == "ImageModel"]
        audio = ui.find("AudioModel")
        first = ui.models[overlay]["value"]
        first_clip = ui.models[dropdown]["index"]
        assert _decode_png(first).shape == (explorer.VIEW_SIZE, explorer.VIEW_SIZE, 3)
        assert ui.models[audio]["value"][:4] == b"RIFF"

        # the slider: the view shows that frame, exactly as the library draws it
        ui.user_sets(slider, value=7)
        moved = ui.models[overlay]["value"]
        assert moved != first
        (check,) = ui.execute(
            "import hashlib\n"
            "c = explore.clip\n"
            "print(explore.frame_slider.value, hashlib.sha1(explorer._png(explorer.render_overlay("
            "c, 7, explore.clip_predictions(c), frame_source(c, 7)))).hexdigest())"
        )
        assert check.split() == ["7", hashlib.sha1(moved).hexdigest()]

        # the checkbox: vid2vid edge maps appear (true + the model, side by side)
        assert not ui.models[edges].get("value")
        ui.user_sets(checkbox, value=True)
        strip = _decode_png(ui.models[edges]["value"])
        assert strip.shape[1] == 2 * strip.shape[0]

        # the dropdown (the frontend sends the index): another clip, its frames and audio
        options = ui.models[dropdown]["_options_labels"]
        other = (first_clip + 1) % len(options)
        before_audio = ui.models[audio]["value"]
        ui.user_sets(dropdown, index=other)
        (answer,) = ui.execute(
            "print(explore.clip.clip_id, explore.clip.n_frames - 1, explore.frame_slider.value)"
        )
        clip_id, last, frame = answer.split()
        assert clip_id == options[other]
        assert ui.models[slider]["max"] == int(last)
        assert ui.models[slider].get("value", 7) == int(frame) == min(7, int(last))
        assert ui.models[overlay]["value"] != moved
        assert ui.models[audio]["value"] != before_audio
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
