"""``wav2kp predict``: a speech file in, keypoints + a vid2vid folder + a preview out.

1. Speech is read in any format, rate and channel count (``wav2kp.audio.load_audio``);
   unreadable, empty or silent files fail with an error naming the file.
2. The trained model predicts keypoints at ``fps`` in chunks of audio (bounded memory on
   long files; each chunk carries extra audio and warm-up frames so chunk seams do not
   show).
3. The predicted mouth/jaw motion is composed onto a real reference head track
   (``wav2kp.vid2vid.compose_on_reference``): a reference video (extracted here), else a
   reference clip of the demo corpus, else a neutral face on a plain canvas (frozen).
4. Written to ``out_dir``: ``keypoints.npz``, ``keypoints.csv`` (reference pixels; the npz
   also holds the vid2vid frames' points and the mapping between the two),
   ``vid2vid_face/`` (on a canvas where vid2vid's crop fits; checked frame by frame),
   ``preview.mp4`` (what vid2vid's generator gets: real frame | edge channel, with the
   speech), ``predict.json``. A re-run with the same inputs returns the earlier result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wav2kp import vid2vid
from wav2kp.atomic import write_csv, write_json, write_npz

NTSC_FPS = 30000 / 1001
SILENCE_DBFS = -60.0  # loudest 50 ms stretch quieter than this: no speech to follow
CHUNK_SECONDS = 30.0
MARGIN_SECONDS = 2.0  # extra audio each side of a chunk and warm-up frames before it
NEUTRAL_CANVAS = (512, 512)
PREVIEW_PANEL = 256
SUMMARY_FILE = "predict.json"


class PredictError(ValueError):
    """Input that cannot be predicted from; the message names the file and the cause."""


# --------------------------------------------------------------------------- audio


def check_speech(samples: np.ndarray, sample_rate: int, path: str | os.PathLike) -> None:
    """Refuse signals with nothing to follow: too short for one frame, or silent."""
    if len(samples) < sample_rate // 10:
        raise PredictError(f"{path}: {len(samples) / sample_rate:.3f} s of audio is too short")
    step = max(1, int(0.05 * sample_rate))
    usable = len(samples) // step * step
    frames = samples[:usable].reshape(-1, step) if usable else samples[None]
    loudest = float(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).max())
    level = 20 * np.log10(max(loudest, 1e-12))
    if level < SILENCE_DBFS:
        raise PredictError(
            f"{path}: silent (loudest 50 ms at {level:.0f} dBFS, below {SILENCE_DBFS:.0f})"
        )


def load_speech(path: str | os.PathLike, sample_rate: int = 16000) -> tuple[np.ndarray, int]:
    """Mono float32 speech at ``sample_rate``; :class:`PredictError` for bad input."""
    from wav2kp.audio import load_audio

    try:
        samples, rate = load_audio(path, sample_rate=sample_rate)
    except PredictError:
        raise
    except Exception as error:  # AudioError, decoder failures: say which file
        message = str(error)
        if str(path) not in message:
            message = f"{path}: {message}"
        raise PredictError(message) from error
    if not np.isfinite(samples).all():
        raise PredictError(f"{path}: audio holds NaN or infinite samples")
    check_speech(samples, rate, path)
    return samples, rate


# --------------------------------------------------------------------------- model


def _feature_setup(predictor):
    """FeatureConfig and FeatureStats carried by the checkpoint."""
    from wav2kp.features import FeatureConfig, FeatureStats

    context = getattr(predictor, "context", {}) or {}
    stats = context.get("feature_stats")
    if stats is None:
        raise ValueError(f"checkpoint of {predictor.name!r} holds no feature stats")
    stats = stats if isinstance(stats, FeatureStats) else FeatureStats.from_dict(stats)
    config = context.get("feature_config")
    if config is None:
        config = stats.config or None
    if isinstance(config, dict):
        config = FeatureConfig.from_dict(config)
    return config or FeatureConfig(), stats


def predict_track(
    predictor,
    samples: np.ndarray,
    sample_rate: int,
    fps: float = NTSC_FPS,
    speaker: str = "",
    chunk_seconds: float = CHUNK_SECONDS,
    margin_seconds: float = MARGIN_SECONDS,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame times (T,) and predicted landmarks (T, 68, 2) for a mono signal, in the
    predictor's default canvas (a frontal face; only the motion matters downstream).

    The signal is cut into ``chunk_seconds`` pieces, each predicted with
    ``margin_seconds`` of extra audio and warm-up frames on both sides, so memory stays
    bounded and windowed models give the same result as one pass.
    """
    from tqdm.auto import tqdm

    from wav2kp.dataset import clip_from_audio

    feature_config, stats = _feature_setup(predictor)
    duration = len(samples) / sample_rate
    n_frames = int(np.floor(duration * fps))
    if n_frames < 1:
        raise ValueError(f"{duration:.3f} s of audio holds no frame at {fps:.3f} fps")
    times = np.arange(n_frames) / fps
    hop = feature_config.hop_length * sample_rate / feature_config.sample_rate
    per_chunk = max(1, int(round(chunk_seconds * fps)))
    out = np.empty((n_frames, 68, 2), np.float32)
    starts = range(0, n_frames, per_chunk)
    for start in tqdm(starts, desc="predict", unit="chunk", disable=not progress):
        stop = min(start + per_chunk, n_frames)
        # warm-up frames on both sides: models look at neighbouring frames too
        first = int(np.searchsorted(times, times[start] - margin_seconds))
        last = int(np.searchsorted(times, times[stop - 1] + margin_seconds, side="right"))
        # audio start on the feature hop grid, so feature frames match a one-pass run
        begin = int(np.floor(max(0.0, times[first] - margin_seconds) * sample_rate / hop) * hop)
        end = min(len(samples), int(np.ceil((times[last - 1] + margin_seconds) * sample_rate)))
        clip = clip_from_audio(
            samples[begin:end],
            sample_rate,
            times[first:last] - begin / sample_rate,
            feature_config,
            stats,
            predictor.window_config,
            speaker=speaker,
            clip_id=f"speech[{start}:{stop}]",
        )
        predicted = np.asarray(predictor.predict_landmarks(clip), dtype=np.float32)
        out[start:stop] = predicted[start - first : stop - first]
    return times, out


# --------------------------------------------------------------------------- references


def neutral_reference(predictor, speaker: str = "", size=NEUTRAL_CANVAS):
    """A frozen neutral face centred on a plain canvas (the last-resort reference)."""
    from wav2kp.targets import apply_pose

    normalizer = getattr(predictor, "normalizer", None)
    if normalizer is None:
        raise ValueError(
            "no reference given, no demo corpus and the checkpoint has no neutral face: "
            "pass --reference VIDEO"
        )
    from wav2kp.edgemap import crop_box

    face = normalizer.neutral_for(speaker or None)
    width, height = size
    # small enough that vid2vid's crop (2.5 face widths) fits inside the canvas
    iod = 0.15 * width
    pixels = apply_pose(face[None], np.array([[iod, 0.0, 0.0, 0.0]]))[0]
    x0, y0, x1, y1 = crop_box(pixels, (10**6, 10**6))
    pixels += np.array([width / 2 - (x0 + x1) / 2, height / 2 - (y0 + y1) / 2])
    return vid2vid.static_reference(pixels, size)


def demo_reference(corpus: str = "demo", speaker: str | None = None):
    """The demo corpus' reference clip: a test-split clip (of ``speaker`` when given)
    with the most detected frames; its frames are decoded on demand if not kept."""
    from wav2kp.paths import CorpusPaths

    paths = CorpusPaths(corpus)
    candidates = sorted(paths.extracted.glob("*.npz")) if paths.extracted.is_dir() else []
    if not candidates:
        return None
    test_ids = None
    if paths.split_file.is_file():
        import pandas as pd

        split = pd.read_csv(paths.split_file, dtype=str)
        test_ids = set(split.loc[split["split"] == "test", "clip_id"])
    if speaker:
        prefixed = [p for p in candidates if p.stem.startswith(f"{speaker}_")]
        candidates = prefixed or candidates
    if test_ids:
        candidates = [p for p in candidates if p.stem in test_ids] or candidates
    best, best_count = None, -1
    for path in candidates:
        try:
            with np.load(path, allow_pickle=False) as data:
                count = int(np.isfinite(data["lm68"]).all(axis=(1, 2)).sum())
        except (OSError, KeyError, ValueError):
            continue
        if count > best_count:
            best, best_count = path, count
    return best


def decode_frames_to(video: str | os.PathLike, folder: Path, n_expected: int) -> Path:
    """Write a video's frames as ``%05d.jpg`` (skipped when already complete)."""
    import cv2

    from wav2kp.atomic import atomic_path
    from wav2kp.media.decode import iter_frames

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == n_expected:
        return folder
    count = 0
    for count, (_, rgb) in enumerate(iter_frames(video), start=1):
        with atomic_path(folder / f"{count - 1:05d}.jpg") as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if count != n_expected:
        raise ValueError(f"{video}: decoded {count} frames, the extraction has {n_expected}")
    return folder


def reference_from_npz(npz: Path, video: Path | None, work_dir: Path) -> vid2vid.ReferenceTrack:
    """A reference track from an extraction result, with frames from the kept frames
    folder (``interim/<corpus>/frames/<clip_id>``) or decoded from ``video``."""
    frames_dir = npz.parent.parent / "frames" / npz.stem
    with np.load(npz, allow_pickle=False) as data:
        n_frames = len(data["times"])
    usable = frames_dir.is_dir() and len(list(frames_dir.glob("*.jpg"))) == n_frames
    if not usable and video is not None and Path(video).is_file():
        frames_dir = decode_frames_to(video, work_dir / "reference_frames" / npz.stem, n_frames)
        usable = True
    return vid2vid.load_reference_track(npz, frames_dir if usable else None)


def extract_reference(video: str | os.PathLike, work_dir: Path) -> vid2vid.ReferenceTrack:
    """Run extraction (frames kept) on a reference video and load its head track.
    Re-runs reuse the earlier extraction (``wav2kp.extract`` fingerprints the source)."""
    from wav2kp import extract
    from wav2kp.paths import CorpusPaths

    video = Path(video).resolve()
    if not video.is_file():
        raise PredictError(f"{video}: reference video not found")
    inbox = work_dir / "reference" / "input"
    inbox.mkdir(parents=True, exist_ok=True)
    for old in inbox.iterdir():  # one video per prediction
        if old.name != video.name:
            old.unlink()
    link = inbox / video.name
    if not link.exists():
        try:
            link.symlink_to(video)
        except OSError:
            shutil.copyfile(video, link)
    paths = CorpusPaths("reference", root=work_dir / "reference")
    table = extract.extract_corpus(inbox, paths, workers=0, keep_frames=True, progress=False)
    rows = table[table["file"] == video.name]
    if rows.empty:
        raise PredictError(f"{video}: extraction did not list the reference video")
    row = rows.iloc[0]
    if row["status"] != "ok":
        raise PredictError(f"{video}: reference extraction {row['status']}: {row['error']}")
    return reference_from_npz(paths.extracted / f"{row['clip_id']}.npz", video, work_dir)


def resolve_reference(reference, predictor, speaker: str, work_dir: Path, corpus: str = "demo"):
    """(ReferenceTrack, description) for ``reference``: a ReferenceTrack, an extraction
    ``.npz``, a video file, or None (demo corpus clip, else a neutral face)."""
    if isinstance(reference, vid2vid.ReferenceTrack):
        return reference, f"reference track {reference.name}"
    if reference is not None:
        path = Path(reference)
        if path.suffix == ".npz":
            from wav2kp.paths import CorpusPaths

            video = _raw_video_for(path, CorpusPaths)
            return reference_from_npz(path, video, work_dir), f"extracted clip {path.stem}"
        return extract_reference(path, work_dir), f"reference video {path.name}"
    npz = demo_reference(corpus, speaker or None)
    if npz is not None:
        from wav2kp.paths import CorpusPaths

        video = _raw_video_for(npz, CorpusPaths)
        return reference_from_npz(npz, video, work_dir), f"{corpus} corpus clip {npz.stem}"
    track = neutral_reference(predictor, speaker)
    return track, "neutral face on a plain canvas (no reference video, no demo corpus): head frozen"


def _raw_video_for(npz: Path, corpus_paths) -> Path | None:
    """The source video of an extraction result, from the extraction manifest."""
    manifest = npz.parent / "manifest.csv"
    if manifest.is_file():
        import pandas as pd

        table = pd.read_csv(manifest, dtype=str)
        row = table[table["clip_id"] == npz.stem]
        if len(row) and isinstance(row.iloc[0].get("file"), str):
            file = Path(row.iloc[0]["file"])
            if file.is_file():
                return file
            corpus = npz.parent.parent.name
            candidate = corpus_paths(corpus).raw / file
            if candidate.is_file():
                return candidate
    return None


@dataclass
class HandoffClips:
    """Which held-out clip's audio drives the hand-off and whose head it is drawn on."""

    speech_clip: str
    reference_clip: str
    speaker: str
    speech_audio: Path  # 16 kHz mono wav of the speech clip
    reference_npz: Path  # extraction result of the reference clip
    speech_npz: Path  # extraction result of the speech clip (its true keypoints)


def choose_handoff_clips(
    corpus: str,
    speech_clip: str | None = None,
    reference_clip: str | None = None,
    seed: int = 0,
    split_name: str = "test",
) -> HandoffClips:
    """Pick the speech clip (a ``test``-split clip: never training audio) and a reference
    clip of the same speaker (another test clip when there is one). Given names are
    checked: a speech clip outside the test split is refused."""
    import pandas as pd

    from wav2kp.paths import CorpusPaths

    paths = CorpusPaths(corpus)
    if not paths.split_file.is_file():
        raise FileNotFoundError(f"{paths.split_file}: no split; run notebooks 01-03 first")
    split = pd.read_csv(paths.split_file, dtype=str, keep_default_na=False)
    extracted = {p.stem for p in paths.extracted.glob("*.npz")}
    split = split[split["clip_id"].isin(extracted)]
    if "speaker" not in split.columns:
        split = split.assign(speaker="")
    held_out = split[split["split"] == split_name].sort_values("clip_id")
    if speech_clip is None:
        if held_out.empty:
            raise ValueError(f"corpus {corpus!r}: no extracted clip in the {split_name} split")
        rng = np.random.default_rng(seed)
        speech_clip = str(held_out["clip_id"].iloc[int(rng.integers(len(held_out)))])
    row = split[split["clip_id"] == speech_clip]
    if row.empty:
        raise ValueError(f"corpus {corpus!r}: speech clip {speech_clip!r} is not extracted/split")
    if row["split"].iloc[0] != split_name:
        raise ValueError(
            f"speech clip {speech_clip!r} is in the {row['split'].iloc[0]!r} split; the "
            f"hand-off must use held-out ({split_name}) audio, never training audio"
        )
    speaker = str(row["speaker"].iloc[0])
    if reference_clip is None:
        same = held_out[(held_out["speaker"] == speaker) & (held_out["clip_id"] != speech_clip)]
        reference_clip = str(same["clip_id"].iloc[0]) if len(same) else speech_clip
    if reference_clip not in extracted:
        raise ValueError(f"corpus {corpus!r}: reference clip {reference_clip!r} is not extracted")
    audio = paths.audio / f"{speech_clip}.wav"
    if not audio.is_file():
        raise FileNotFoundError(f"{audio}: the speech clip's audio is missing (run notebook 01)")
    return HandoffClips(
        speech_clip, reference_clip, speaker, audio,
        paths.extracted / f"{reference_clip}.npz", paths.extracted / f"{speech_clip}.npz",
    )  # fmt: skip


# --------------------------------------------------------------------------- preview


class _FrameCache:
    """Exported frames and their Canny edges per reference frame, within a memory
    budget: a ping-ponged reference revisits its frames, and decoding + Canny are most of
    a preview frame's cost."""

    def __init__(self, budget_bytes: int = 256 << 20) -> None:
        self.budget = budget_bytes
        self.used = 0
        self.items: dict = {}

    def get(self, key, path: Path) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image

        from wav2kp.edgemap import canny_edges

        if key in self.items:
            return self.items[key]
        rgb = np.asarray(Image.open(path).convert("RGB"))  # decoded as vid2vid does (PIL)
        item = (rgb, canny_edges(rgb))
        if self.used + rgb.nbytes + item[1].nbytes <= self.budget:
            self.items[key] = item
            self.used += rgb.nbytes + item[1].nbytes
        return item


def preview_frames(export: vid2vid.Vid2vidExport, panel: int = PREVIEW_PANEL, with_reference=True):
    """RGB frames read back from the exported vid2vid folder: [the real frame with the
    keypoints |] the edge channel, both exactly as vid2vid's generator gets them
    (``wav2kp.edgemap.generator_input``: its crop, set on the first frame, and resize)."""
    import cv2

    from wav2kp import edgemap
    from wav2kp.explorer import draw_keypoints

    box = export.crop_box
    size = export.canvas.size
    cache = _FrameCache()
    for i, points in enumerate(export.landmarks):
        frame, frame_edges = cache.get(export.frame_keys[i], export.image_path(i))
        seen = edgemap.generator_input(points, size, box, frame=frame, frame_edges=frame_edges,
                                       load_size=export.canvas.load_size)  # fmt: skip
        edge_panel = cv2.resize(seen.edges, (panel, panel), interpolation=cv2.INTER_AREA)
        edge_panel = np.repeat(edge_panel[..., None], 3, axis=2)
        if not with_reference:
            yield edge_panel
            continue
        real = cv2.resize(seen.image, (panel, panel), interpolation=cv2.INTER_AREA)
        scale = panel / (box[2] - box[0])
        shown = draw_keypoints(real.copy(), (points - box[:2]) * scale, (80, 255, 120), radius=2)
        yield np.hstack([shown, edge_panel])


def write_preview(path, export, audio, sample_rate, fps, with_reference=True):
    from wav2kp.media.encode import write_video

    frames = preview_frames(export, with_reference=with_reference)
    return write_video(path, frames, fps=fps, audio=audio, sample_rate=sample_rate)


# --------------------------------------------------------------------------- outputs


def keypoints_table(times: np.ndarray, landmarks: np.ndarray):
    """One row per frame: ``frame, time, x0, y0, ..., x67, y67`` (pixels)."""
    import pandas as pd

    columns = {"frame": np.arange(len(times)), "time": np.round(times, 6)}
    for k in range(68):
        columns[f"x{k}"] = np.round(landmarks[:, k, 0], 3)
        columns[f"y{k}"] = np.round(landmarks[:, k, 1], 3)
    return pd.DataFrame(columns)


def _fingerprint(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, (str, os.PathLike)) and Path(part).is_file():
            stat = Path(part).stat()
            digest.update(f"{Path(part).resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


@dataclass
class PredictOptions:
    fps: float = NTSC_FPS
    preview: bool = True
    preview_with_reference: bool = True
    chunk_seconds: float = CHUNK_SECONDS
    corpus: str = "demo"
    speaker: str = ""
    sequence: str | None = None
    progress: bool = True


def predict_file(
    speech_path: str | os.PathLike,
    checkpoint,
    out_dir: str | os.PathLike,
    reference=None,
    fps: float = NTSC_FPS,
    **options,
) -> dict:
    """Predict keypoints for a speech file and write everything the hand-off needs.

    ``checkpoint``: a checkpoint path/folder or an already loaded predictor.
    ``reference``: a reference video, an extraction ``.npz``, a ``ReferenceTrack`` or None.
    Options: ``preview`` (bool), ``preview_with_reference``, ``chunk_seconds``, ``corpus``
    (where to look for the demo reference), ``speaker`` (neutral face to use; default the
    reference clip's speaker when the checkpoint knows it), ``sequence`` (vid2vid folder
    name, default the speech file's stem), ``progress``. Returns the summary written to
    ``predict.json``. ``out_dir/vid2vid`` holds this one sequence (vid2vid crops every
    sequence of a folder with the first one's face box).
    """
    opts = PredictOptions(fps=float(fps), **options)
    speech_path = Path(speech_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / SUMMARY_FILE
    ckpt_id = checkpoint if isinstance(checkpoint, (str, os.PathLike)) else id(checkpoint)
    if isinstance(ckpt_id, (str, os.PathLike)) and Path(ckpt_id).is_dir():
        from wav2kp.inference import checkpoint_file

        ckpt_id = checkpoint_file(ckpt_id)
    fingerprint = _fingerprint(
        speech_path, ckpt_id, reference if not isinstance(reference, vid2vid.ReferenceTrack)
        else reference.name, opts,
    )  # fmt: skip
    if summary_path.is_file():
        earlier = json.loads(summary_path.read_text())
        if earlier.get("fingerprint") == fingerprint and all(
            (out_dir / name).exists() for name in earlier.get("files", {}).values()
        ):
            return dict(earlier, skipped=True)

    started = time.perf_counter()
    samples, rate = load_speech(speech_path)
    duration = len(samples) / rate
    predictor = _load(checkpoint)
    reference_started = time.perf_counter()
    try:
        reference_track, description = resolve_reference(
            reference, predictor, opts.speaker, out_dir, opts.corpus
        )
    except PredictError:
        raise
    except (ValueError, OSError) as error:  # unreadable reference: the message names it
        raise PredictError(f"reference: {error}") from error
    model_started = time.perf_counter()
    speaker = opts.speaker or _speaker_of(reference_track.name, predictor)
    times, predicted = predict_track(
        predictor, samples, rate, opts.fps, speaker, opts.chunk_seconds, progress=opts.progress
    )
    composition = vid2vid.compose_on_reference(
        predicted, reference_track, getattr(predictor, "normalizer", None), speaker or None,
        out_times=times,
    )  # fmt: skip
    predict_seconds = time.perf_counter() - model_started

    sequence = opts.sequence or speech_path.stem
    files = {"keypoints_npz": "keypoints.npz", "keypoints_csv": "keypoints.csv"}
    landmarks = composition.landmarks.astype(np.float32)
    vid2vid_root = out_dir / vid2vid.EXPORT_DIR
    # vid2vid sets its face crop on the first sequence and reuses it for all: a folder
    # must not mix sequences of different heads, so an earlier run's sequence goes.
    for tree in vid2vid.keypoint_dirs(vid2vid_root):
        for old in tree.glob("*"):
            if old.is_dir() and old.name != sequence:
                shutil.rmtree(old)
    export = vid2vid.export_composition(vid2vid_root, sequence, composition, reference_track)
    n_frames = export.n_frames
    files["vid2vid"] = vid2vid.EXPORT_DIR
    handoff = vid2vid.handoff_summary(export, opts.fps, speech_path)
    write_npz(
        out_dir / files["keypoints_npz"],
        times=times,
        landmarks=landmarks,
        predicted=predicted,
        reference_index=composition.reference_index,
        reference_missing=composition.reference_missing,
        fps=np.float64(opts.fps),
        width=np.int32(reference_track.size[0]),
        height=np.int32(reference_track.size[1]),
        **export.npz_fields(),
    )
    write_csv(out_dir / files["keypoints_csv"], keypoints_table(times, landmarks))
    export_seconds = time.perf_counter() - model_started

    if opts.preview:
        from wav2kp.audio import load_audio

        audio, audio_rate = load_audio(speech_path, sample_rate=None, mono=False)
        write_preview(
            out_dir / "preview.mp4", export, audio, audio_rate, opts.fps,
            opts.preview_with_reference,
        )  # fmt: skip
        files["preview"] = "preview.mp4"
    total_seconds = time.perf_counter() - started
    summary = {
        "speech": str(speech_path),
        "checkpoint": str(ckpt_id) if not isinstance(ckpt_id, int) else "<in memory>",
        "model": getattr(predictor, "name", ""),
        "reference": description,
        "speaker": speaker,
        "sequence": sequence,
        "fps": opts.fps,
        "frames": int(n_frames),
        "audio_seconds": duration,
        "frame_size": list(reference_track.size),
        "reference_frames_interpolated": int(composition.reference_missing.sum()),
        "vid2vid_problems": handoff["problems"],
        "vid2vid_command": handoff["test_command"],
        "vid2vid": handoff,
        "coordinates": "keypoints.npz 'landmarks' and keypoints.csv: the reference's own "
        "pixels; vid2vid files and 'vid2vid_landmarks': the exported frames' pixels, "
        "x = x_ref * vid2vid_scale + vid2vid_offset[0] (y alike)",
        "reference_seconds": model_started - reference_started,
        "predict_seconds": predict_seconds,
        "export_seconds": export_seconds,
        "total_seconds": total_seconds,
        "realtime_factor_predict": duration / max(predict_seconds, 1e-9),
        "realtime_factor_total": duration / max(total_seconds, 1e-9),
        "files": files,
        "fingerprint": fingerprint,
    }
    write_json(summary_path, summary)
    return summary


def _load(checkpoint):
    if isinstance(checkpoint, (str, os.PathLike)):
        from wav2kp.train import load_predictor

        path = Path(checkpoint)
        if not path.exists():
            raise PredictError(f"{path}: checkpoint not found")
        try:
            return load_predictor(path)
        except (ValueError, OSError, KeyError) as error:
            raise PredictError(f"{path}: cannot load the checkpoint ({error})") from error
    return checkpoint


def _speaker_of(clip_name: str, predictor) -> str:
    """The reference clip's speaker when the checkpoint has a neutral face for it
    (demo clip ids are ``<speaker>_<emotion>_<sentence>``)."""
    normalizer = getattr(predictor, "normalizer", None)
    if normalizer is None:
        return ""
    for speaker in sorted(normalizer.neutrals, key=len, reverse=True):
        if clip_name.startswith(f"{speaker}_"):
            return speaker
    return ""


# --------------------------------------------------------------------------- command line


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("speech", help="speech file (wav/flac/mp3/m4a/..., any rate/channels)")
    parser.add_argument(
        "--checkpoint", required=True, help="model checkpoint (best.pt or its folder)"
    )
    parser.add_argument("--reference", default=None,
                        help="video of the target speaker (head motion, blinks, frames); "
                        "default: the demo corpus' reference clip, else a neutral face")  # fmt: skip
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--fps", type=float, default=29.97, help="keypoint frame rate (29.97)")
    parser.add_argument("--corpus", default="demo", help="corpus to take a reference clip from")
    parser.add_argument("--speaker", default="", help="speaker whose neutral face to use")
    parser.add_argument("--no-preview", action="store_true", help="skip the preview mp4")
    parser.add_argument("--preview-edges-only", action="store_true",
                        help="preview shows vid2vid's edge map alone, not beside the frame")  # fmt: skip


def run_cli(args: argparse.Namespace) -> int:
    from wav2kp.media.encode import as_fraction

    try:
        summary = predict_file(
            args.speech, args.checkpoint, args.out, reference=args.reference,
            fps=float(as_fraction(args.fps)), preview=not args.no_preview, corpus=args.corpus,
            speaker=args.speaker, preview_with_reference=not args.preview_edges_only,
        )  # fmt: skip
    except PredictError as error:
        print(f"error: {error}")
        return 2
    print(f"reference: {summary['reference']}")
    print(f"{summary['frames']} frames, {summary['audio_seconds']:.1f} s of speech, "
          f"{summary['realtime_factor_total']:.1f}x real time -> {args.out}")  # fmt: skip
    for problem in summary["vid2vid_problems"]:
        print(f"vid2vid folder problem: {problem}")
    handoff = summary["vid2vid"]
    print(f"vid2vid: {handoff['test_command']}")
    print(f"  writes {handoff['output_files']}; speech on it: {handoff['mux_command']}")
    return 0 if not summary["vid2vid_problems"] else 1
