"""Plots and the side-by-side video on synthetic clips."""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import matplotlib
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from test_baselines import synthetic_corpus
from wav2kp.evaluation import evaluate, results
from wav2kp.evaluation.baselines import fit_baselines
from wav2kp.media.probe import probe
from wav2kp.plots import render

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def fitted():
    normalizer, clips = synthetic_corpus()
    fitted, _ = fit_baselines(normalizer, clips, names=("mean_face", "ridge"))
    return fitted, [c for c in clips if c.split == "test"]


def with_audio(clip, folder, seconds_extra=0.2, rate=16000):
    duration = clip.frame_times[-1] + seconds_extra
    t = np.arange(int(duration * rate)) / rate
    path = folder / f"{clip.clip_id}.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    clip.audio_path = path
    return clip


def test_side_by_side_video_has_every_frame_and_an_audio_stream(fitted, tmp_path):
    (_, ridge), clips = fitted
    clip = with_audio(clips[0], tmp_path)
    frames = [np.full((*clip.frame_size[::-1], 3), 128, np.uint8)] * clip.n_frames
    out = render.write_side_by_side(
        tmp_path / "clip.mp4", clip, {"ridge": ridge.predict_landmarks(clip)}, frames
    )
    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert n_frames == clip.n_frames
    info = probe(out)
    assert info.audio_codec == "aac" and info.video_codec == "h264"
    assert (info.width, info.height) == (768, 288)
    assert render.video_html(out).startswith("<video")


def panel_points(clip, points: np.ndarray) -> np.ndarray:
    """Where frame-pixel ``points`` land in a 256-px panel: the vid2vid face box set on
    the first complete true frame, scaled to the panel."""
    from wav2kp.plots.edgemap import crop_box, first_complete_frame

    size = tuple(int(v) for v in clip.frame_size)
    x0, y0, x1, _ = crop_box(clip.landmarks[first_complete_frame(clip.landmarks)], size)
    return (np.asarray(points, np.float64) - (x0, y0)) * (render.PANEL / (x1 - x0))


# eye corners, mouth corners, the chin: points every face edge map passes through
ON_AN_EDGE = [8, 36, 39, 42, 45, 48, 54]


def test_side_by_side_frames_show_the_keypoints(fitted):
    (mean_face, _), clips = fitted
    clip = clips[0]
    frames = list(render.side_by_side_frames(clip, mean_face.predict_landmarks(clip)))
    assert len(frames) == clip.n_frames
    first = frames[0]
    assert first.shape == (32 + 256, 3 * 256, 3)
    video, true, predicted = np.split(first[32:], 3, axis=1)
    assert (video == 60).all()  # no source video: a blank grey panel
    # the true keypoints in white: bright pixels at each edge point, in grey only
    assert (true[..., 0] == true[..., 1]).all() and (true[..., 1] == true[..., 2]).all()
    points = panel_points(clip, clip.landmarks[0])
    for i in ON_AN_EDGE:
        x, y = np.round(points[i]).astype(int)
        assert true[y - 2 : y + 3, x - 2 : x + 3].min(axis=-1).max() >= 200, i
    # background everywhere beside, below and (left, right) of the face
    left, right = int(points[:, 0].min()) - 6, int(points[:, 0].max()) + 7
    bottom = int(points[:, 1].max()) + 7
    assert not true[:, :left].any() and not true[:, right:].any() and not true[bottom:].any()
    # the prediction in the first model's colour (255 on an edge gives the colour itself)
    assert tuple(predicted.reshape(-1, 3).max(axis=0)) == render.PREDICTION_COLOURS[0]
    # a missing ground-truth frame is shown as missing, not as a stale face
    missing = np.flatnonzero(~clip.valid)
    if missing.size:
        assert np.split(frames[missing[0]][32:], 3, axis=1)[1].max() < 255


def test_side_by_side_draws_each_prediction_where_it_is(fitted):
    (mean_face, ridge), clips = fitted
    clip = clips[0]
    shift = 20.0  # frame pixels to the right
    predictions = {"truth": clip.landmarks, "shifted": clip.landmarks + (shift, 0.0),
                   "ridge": ridge.predict_landmarks(clip)}  # fmt: skip
    frame = next(render.side_by_side_frames(clip, predictions))
    assert frame.shape == (32 + 256, 5 * 256, 3)
    _, true, truth, shifted, ridged = np.split(frame[32:], 5, axis=1)
    drawn = [panel.max(axis=-1) for panel in (true, truth, shifted, ridged)]
    # the truth drawn as a prediction is the true panel's shape in another colour
    assert np.array_equal(drawn[0] > 0, drawn[1] > 0)
    for panel, colour in zip((truth, shifted, ridged), render.PREDICTION_COLOURS, strict=False):
        assert tuple(panel.reshape(-1, 3).max(axis=0)) == colour

    # shifted by 20 frame pixels: the drawing's centre moves by 20 pixels in panel scale
    def centre(intensity):
        ys, xs = np.indices(intensity.shape)
        weights = intensity.astype(np.float64)
        return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()

    moved = centre(drawn[2]) - centre(drawn[1])
    expected = panel_points(clip, [[shift, 0.0]])[0] - panel_points(clip, [[0.0, 0.0]])[0]
    np.testing.assert_allclose(moved, expected, atol=0.5)
    # ridge's own points, not the truth's: bright where ridge put the mouth corners
    points = panel_points(clip, predictions["ridge"][0])
    for i in (48, 54):
        x, y = np.round(points[i]).astype(int)
        assert drawn[3][y - 2 : y + 3, x - 2 : x + 3].max() >= 200, i


def test_side_by_side_refuses_mismatched_inputs(fitted):
    (mean_face, _), clips = fitted
    clip = clips[0]
    with pytest.raises(ValueError, match=clip.clip_id):
        next(render.side_by_side_frames(clip, mean_face.predict_landmarks(clip)[:5]))
    with pytest.raises(ValueError, match="video frames"):
        next(render.side_by_side_frames(clip, mean_face.predict_landmarks(clip), [None] * 3))


def test_plots_have_a_panel_per_metric_and_a_trace_per_model(fitted, tmp_path):
    baselines, clips = fitted
    df = evaluate.evaluate_models(baselines, clips, progress=False)
    fig = render.plot_metrics(df)
    # these clips carry no transcript: no bilabial closures, so no panel for them
    assert df["bilabial_closure_rate"].isna().all()
    assert len(fig.axes) == len(render.METRIC_LABELS) - 1
    intervals = render.plot_intervals(results.summarise(df), order=["ridge", "mean_face"])
    assert [ax.get_title() for ax in intervals.axes] == [
        "mouth-opening r", "variance ratio", "mouth LMD (IOD)", "mouth jitter ratio",
        "syllable-band ratio"]  # fmt: skip
    # a summary that predates the newer metrics (an old results file) still plots
    old = results.summarise(df.drop(columns=["syllable_band_ratio", "bilabial_closure_rate"]))
    assert len(render.plot_intervals(old).axes) == 4
    with pytest.raises(ValueError, match="measures none of the metrics"):
        render.plot_intervals(old, metric_names=["bilabial_closure_rate"])
    assert [t.get_text() for t in intervals.axes[0].get_yticklabels()] == ["ridge", "mean_face"]
    assert len(intervals.axes[0].lines) == 3 + 1  # ridge: seed range, interval, dot; ideal line
    by_emotion = render.plot_by_group(df, by="emotion")
    assert len(by_emotion.axes) == 3
    assert {t.get_text() for t in by_emotion.axes[0].get_xticklabels()} == set(df["emotion"])
    clip = with_audio(clips[0], tmp_path)
    traces = render.plot_mouth_traces(clip, {m.name: m.predict_landmarks(clip) for m in baselines})
    top, wave = traces.axes
    assert len(top.lines) == 1 + len(baselines)
    assert wave.get_xlim() == top.get_xlim()
    fig.savefig(tmp_path / "metrics.png")
    assert (tmp_path / "metrics.png").stat().st_size > 1000


def test_frames_at_times_picks_the_nearest_decoded_frame(tmp_path):
    from wav2kp.media.encode import write_video

    fps = 25.0
    # frame k is a flat grey of level 10 * k, easy to read back after H.264
    frames = [np.full((32, 32, 3), 10 * k, np.uint8) for k in range(20)]
    path = write_video(tmp_path / "ramp.mp4", frames, fps=fps)
    wanted = np.array([0.0, 0.039, 0.21, 0.49, 0.76, 10.0])  # the last is past the end
    picked = [int(round(f.mean() / 10)) for f in render.frames_at_times(path, wanted)]
    assert picked == [0, 1, 5, 12, 19, 19]


def test_a_wild_model_does_not_flatten_the_traces(fitted):
    (mean_face, _), clips = fitted
    clip = clips[0]
    wild = clip.landmarks.astype(np.float64).copy()
    wild[:, 66, 1] += 500.0  # an absurd mouth opening
    fig = render.plot_mouth_traces(
        clip, {"wild": wild, "mean_face": mean_face.predict_landmarks(clip)}
    )
    top = fig.axes[0].get_ylim()[1]
    true_open = np.nanmax(
        np.where(clip.valid, render.metrics.mouth_opening(clip.landmarks), np.nan)
    )
    assert top == pytest.approx(2 * true_open)


def test_lag_curve_plot_has_a_line_per_model(fitted):
    baselines, clips = fitted
    curves = evaluate.lag_curves(baselines, clips, max_lag_frames=4)
    fig = render.plot_lag_curves(curves)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["ridge"]  # the mean face is frozen: no curve to draw


def test_clip_without_frame_size_gets_a_canvas_around_its_keypoints(fitted):
    from dataclasses import replace

    (mean_face, _), clips = fitted
    clip = replace(clips[0], frame_size=(0, 0))
    frame = next(render.side_by_side_frames(clip, mean_face.predict_landmarks(clip)))
    assert frame.shape == (32 + 256, 3 * 256, 3) and frame[32:, 256:512].max() == 255


def first_panel(frame: np.ndarray) -> np.ndarray:
    return frame[32:, :256]


def check_source_video_is_shown(clip, model, video, corpus_dir, monkeypatch, in_raw=True):
    """``evaluate.source_video`` finds ``video`` through the extraction manifest (in
    ``raw/``, or with ``in_raw=False`` in the input folder the extraction recorded, as
    for ``wav2kp extract ../shared/grid-s1``), and the side-by-side video's first panel
    shows its frames (not the blank grey panel)."""
    from wav2kp.extraction.extract import record_input_dir
    from wav2kp.media.decode import iter_frames
    from wav2kp.paths import CorpusPaths
    from wav2kp.plots.edgemap import crop_and_resize, crop_box, first_complete_frame

    monkeypatch.setenv("WAV2KP_DATA", str(corpus_dir))
    paths = CorpusPaths(clip.clip_id)
    paths.extracted.mkdir(parents=True)
    paths.raw.mkdir(parents=True)
    pd.DataFrame([{"clip_id": clip.clip_id, "file": video.name, "status": "ok"}]).to_csv(
        paths.extracted / "manifest.csv", index=False
    )
    if in_raw:
        (paths.raw / video.name).symlink_to(video.resolve())
    else:
        record_input_dir(paths, video.parent)
    (paths.raw / f"{clip.clip_id}.tracks.csv").write_text("frame,time\n")  # not a video
    found = evaluate.source_video(clip.clip_id, clip)
    assert found == (paths.raw / video.name if in_raw else video.resolve())
    frames = list(render.side_by_side_frames(clip, model.predict_landmarks(clip),
                                             render.frames_at_times(found, clip.frame_times)))  # fmt: skip
    blank = first_panel(next(render.side_by_side_frames(clip, model.predict_landmarks(clip))))
    assert (blank == 60).all()  # what a missing source gives
    decoded = dict(iter_frames(found))
    size = tuple(int(v) for v in clip.frame_size)
    box = crop_box(clip.landmarks[first_complete_frame(clip.landmarks)], size)
    for frame, t in zip(frames, clip.frame_times, strict=True):
        nearest = min(decoded, key=lambda s: abs(s - t))
        expected = crop_and_resize(decoded[nearest], box, render.PANEL)
        np.testing.assert_array_equal(first_panel(frame), expected)
    assert first_panel(frames[0]).std() > 5


def clip_on_video_times(clip, times):
    """The synthetic clip with its frames placed at the video's frame times."""
    import dataclasses

    n = min(clip.n_frames, len(times))
    fields = {}
    for f in dataclasses.fields(clip):
        value = getattr(clip, f.name)
        if isinstance(value, np.ndarray) and value.shape[:1] == (clip.n_frames,):
            value = value[:n]
        fields[f.name] = value
    fields["frame_times"] = np.asarray(times[:n], np.float64)
    return dataclasses.replace(clip, **fields)


@pytest.mark.realclips
@pytest.mark.parametrize("in_raw", [True, False])  # linked into raw/, or in the input folder
def test_side_by_side_shows_a_grid_mpg_source(fitted, tmp_path, monkeypatch, realclips, in_raw):
    video = realclips / "grid_s1_bbaf3s.mpg"
    if not video.is_file():
        pytest.skip(f"{video} not available")
    from wav2kp.media.decode import read_frame_times

    (mean_face, _), clips = fitted
    clip = clip_on_video_times(clips[0], read_frame_times(video))
    check_source_video_is_shown(clip, mean_face, video, tmp_path / "data", monkeypatch, in_raw)


@pytest.mark.parametrize("suffix,codec,in_raw", [(".flv", "flv1", True),
                                                (".vob", "mpeg2video", True),
                                                (".mp4", "libx264", False)])  # fmt: skip
def test_side_by_side_shows_any_container_ffmpeg_reads(fitted, tmp_path, monkeypatch, suffix,
                                                       codec, in_raw):  # fmt: skip
    from test_extract_videos import FFMPEG, face_frames
    from wav2kp.media.decode import read_frame_times

    (mean_face, _), clips = fitted
    size = tuple(int(v) for v in clips[0].frame_size)
    frames = face_frames(clips[0].n_frames, max(size))[:, : size[1], : size[0]]
    video = tmp_path / f"source{suffix}"
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{size[0]}x{size[1]}", "-r", "25", "-i", "pipe:0", "-c:v", codec, "-q:v", "3",
         str(video)],
        input=np.ascontiguousarray(frames).tobytes(), check=True,
    )  # fmt: skip
    clip = clip_on_video_times(clips[0], read_frame_times(video))
    check_source_video_is_shown(clip, mean_face, video, tmp_path / "data", monkeypatch, in_raw)
