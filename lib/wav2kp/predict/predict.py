"""``wav2kp predict``: speech files in, keypoints + hand-off folders + a preview out.

1. Speech is read in any format, rate and channel count (``wav2kp.media.audio``); unreadable,
   empty or silent files fail with one line naming the file; clipped speech is predicted
   with a warning (printed and in ``predict.json``), and refused only from
   ``CLIPPED_REFUSE`` of samples clipped, where the mouth no longer follows the speech.
2. The trained model predicts keypoints at ``fps`` in chunks of audio (bounded memory on
   long files; each chunk carries extra audio and warm-up frames so seams do not show).
3. The predicted mouth/jaw motion is composed onto a real reference head track
   (``wav2kp.handoff.vid2vid.compose_on_reference``). The reference is, in this order: the video
   or extraction given with ``reference``; else a held-out clip of the checkpoint's own
   corpus and speaker (never another corpus' face); else that speaker's neutral face on a
   plain canvas (head frozen). The summary says which one was used and how to change it.
4. Written to ``out_dir`` in the formats asked for (``wav2kp.handoff.exports``; default vid2vid,
   npz, csv) plus ``preview.mp4`` (reference frame | vid2vid edge map, with the speech)
   and ``predict.json``. Everything is written into a hidden staging folder beside
   ``out_dir`` and moved into place when complete: a failure leaves nothing behind. An
   existing ``out_dir`` is replaced only where an earlier ``predict`` wrote it (listed in
   its ``predict.json``); a folder holding anything else is refused. A re-run with the
   same inputs returns the earlier result.

Many files in one call (:func:`predict_files`, ``wav2kp predict a.wav b.wav --out DIR``)
load the model and the reference once and write ``DIR/<name>/`` per file; a bad file is
reported in one line and the others carry on.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wav2kp.atomic import write_json
from wav2kp.handoff import exports, vid2vid
from wav2kp.handoff.preview import FrameCache, GeneratorView, write_preview
from wav2kp.media.audio import SAMPLE_RATE
from wav2kp.media.encode import NTSC_FPS as NTSC_FRACTION
from wav2kp.predict.errors import PredictError
from wav2kp.predict.references import Reference, resolve_reference
from wav2kp.predict.staging import (
    SUMMARY_FILE,
    Staging,
    check_no_inputs_inside,
    check_output_parent,
    check_replaceable,
)

NTSC_FPS = float(NTSC_FRACTION)  # the keypoints' rate: vid2vid's and the original's
SILENCE_DBFS = -60.0  # loudest 50 ms stretch quieter than this: no speech to follow
CLIP_LEVEL = 0.99  # |sample| at or above this share of full scale counts as clipped
CLIPPED_WARN = 0.001  # predict with a warning from 0.1 % of samples clipped ...
# ... and refuse from this share on: the lowest share of clipped samples at which the mouth
# predicted from real speech (GRID, realclips) stops following the one predicted from the
# same speech unclipped (median file's mouth-opening r below
# wav2kp.benchmarks.clipping.R_BOUND). Measured by `wav2kp bench clipping`.
CLIPPED_REFUSE = 0.10  # measured with GRID's model (phonetic stream + gate); 0.20 with issue 10's
CHUNK_SECONDS = 30.0
MARGIN_SECONDS = 2.0  # extra audio each side of a chunk and warm-up frames before it


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --------------------------------------------------------------------------- speech


@dataclass
class Speech:
    path: Path
    samples: np.ndarray  # mono float32 at ``rate`` (the model's input)
    rate: int
    native: np.ndarray  # (N, C) float32 at ``native_rate``: the file as it is (preview)
    native_rate: int
    clipped_share: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def check_speech(samples: np.ndarray, sample_rate: int, path: str | os.PathLike) -> None:
    """Refuse signals with nothing to follow: too short for one frame, or silent."""
    if len(samples) < sample_rate // 10:
        raise PredictError(
            f"{path}: {len(samples) / sample_rate:.3f} s of audio is too short "
            "(at least 0.1 s of speech is needed)"
        )
    step = max(1, int(0.05 * sample_rate))
    usable = len(samples) // step * step
    frames = samples[:usable].reshape(-1, step) if usable else samples[None]
    loudest = float(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).max())
    level = 20 * np.log10(max(loudest, 1e-12))
    if level < SILENCE_DBFS:
        raise PredictError(
            f"{path}: silent (loudest 50 ms at {level:.0f} dBFS, below "
            f"{SILENCE_DBFS:.0f}); pass a recording with speech in it"
        )


def clipped_share(native: np.ndarray) -> float:
    """Share of samples at (or beyond) full scale in any channel: a clipped recording."""
    if native.size == 0:
        return 0.0
    return float((np.abs(native) >= CLIP_LEVEL).any(axis=-1).mean())


def read_speech(
    path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, allow_clipped: bool = False
) -> Speech:
    """The file's samples as they are (for the preview) and mono at ``sample_rate`` (for
    the model: the same as ``load_audio(path, sample_rate)``); :class:`PredictError` for
    unreadable, empty, non-finite, silent or badly clipped audio."""
    from wav2kp.media.audio import load_audio

    path = Path(path)
    try:
        native, native_rate = load_audio(path, sample_rate=None, mono=False)
    except Exception as error:  # AudioError, decoder failures: say which file
        message = _first_line(error)
        if str(path) not in message:
            message = f"{path}: {message}"
        raise PredictError(f"{message} (pass a readable audio file)") from error
    if not np.isfinite(native).all():
        raise PredictError(f"{path}: audio holds NaN or infinite samples; re-export it")
    samples = model_samples(native, native_rate, sample_rate)
    check_speech(samples, sample_rate, path)
    share = clipped_share(native)
    if share >= CLIPPED_REFUSE and not allow_clipped:
        raise PredictError(
            f"{path}: clipped ({100 * share:.1f} % of samples at full scale; from "
            f"{100 * CLIPPED_REFUSE:g} % on the mouth no longer follows the speech); "
            "re-record or lower the gain, or pass --allow-clipped to predict anyway"
        )
    return Speech(path, samples, sample_rate, native, native_rate, share)


def model_samples(native: np.ndarray, native_rate: int, sample_rate: int = SAMPLE_RATE):
    """What the model hears of a file's (N, C) samples: mono at ``sample_rate``, float32."""
    from wav2kp.media.audio import resample

    mono = native.mean(axis=1)
    samples = mono if native_rate == sample_rate else resample(mono, native_rate, sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)


def clipping_warning(path, share: float) -> str | None:
    """The warning a prediction from clipped speech carries (None below CLIPPED_WARN)."""
    if share < CLIPPED_WARN:
        return None
    if share >= CLIPPED_REFUSE:  # only with --allow-clipped
        return (f"{path}: {100 * share:.2f} % of samples clipped, beyond the "
                f"{100 * CLIPPED_REFUSE:g} % from which the mouth no longer follows the "
                "speech (predicted because --allow-clipped was given)")  # fmt: skip
    return (f"{path}: {100 * share:.2f} % of samples clipped; predicted anyway (below the "
            f"{100 * CLIPPED_REFUSE:g} % from which the mouth no longer follows the speech), "
            "keypoints may be less accurate")  # fmt: skip


# --------------------------------------------------------------------------- checkpoint


# Models `predict` uses when no --checkpoint is given, first found first (under
# data/models/): the real-speech model (make model-grid or make report-grid) before the demo
# corpus' synthetic-speech model (make report).
DEFAULT_MODELS = ("grid/default", "demo/default")


def available_models() -> list[Path]:
    """Checkpoints under ``data/models/<corpus>/<model>/best.pt``."""
    from wav2kp.paths import data_root

    return sorted((data_root() / "models").glob("*/*/best.pt"))


def resolve_checkpoint(spec) -> Path:
    """``spec``: a checkpoint file, its folder, or a model name ``CORPUS/MODEL`` (or
    ``CORPUS`` for its default model) under ``data/models/``."""
    from wav2kp.paths import data_root
    from wav2kp.training.inference import checkpoint_file

    if spec is None or str(spec) == "":
        models = data_root() / "models"
        for name in DEFAULT_MODELS:
            if (models / name).is_dir() and checkpoint_file(models / name).is_file():
                return checkpoint_file(models / name)
        found = ", ".join(str(p) for p in available_models()[:5]) or "none yet"
        raise PredictError(
            f"--checkpoint: none given and no default model ({', '.join(DEFAULT_MODELS)} under "
            f"{models}); pass a best.pt or CORPUS/MODEL (models here: {found}), or build "
            "one with make report / make report-grid"
        )
    path = checkpoint_file(spec)  # a model folder: its best.pt (or its first seed's)
    if path.is_file():
        return path
    path = Path(spec)
    models = data_root() / "models"
    if path.suffix or path.is_absolute():  # a file name, not a model name
        raise PredictError(
            f"{spec}: checkpoint not found (no such file); pass a best.pt written by "
            "`wav2kp train` or notebook 04, or a model name CORPUS/MODEL"
        )
    for folder in (models / str(spec), models / str(spec) / "default"):
        candidate = checkpoint_file(folder) if folder.is_dir() else folder / "best.pt"
        if candidate.is_file():
            return candidate
    raise PredictError(
        f"{spec}: checkpoint not found (no such file, and no model {str(spec)!r} under "
        f"{models}); pass a best.pt written by `wav2kp train` or notebook 04"
    )


def _diagnose_checkpoint(path: Path, error: BaseException) -> str:
    """Why ``path`` did not load, in words a user can act on."""
    import torch

    from wav2kp.training.checkpoints import CHECKPOINT_FORMAT

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return f"{path}: not a wav2kp checkpoint (not a PyTorch file); pass a best.pt written by `wav2kp train`"
    if not isinstance(payload, dict) or "format" not in payload:
        return f"{path}: a PyTorch file but not a wav2kp checkpoint; pass a best.pt written by `wav2kp train`"
    if payload.get("format") != CHECKPOINT_FORMAT:
        return (
            f"{path}: written by an incompatible wav2kp version (format "
            f"{payload.get('format')!r}, this version reads {CHECKPOINT_FORMAT!r}); "
            "retrain it with this version (`wav2kp train`)"
        )
    return (
        f"{path}: does not match this wav2kp version's model ({_first_line(error)}); "
        "retrain it with this version (`wav2kp train`)"
    )


def load_checkpoint_for_predict(spec, device: str = "cpu"):
    """(predictor, checkpoint path) for ``spec`` (see :func:`resolve_checkpoint`), checked
    for what prediction needs: feature statistics and the target normaliser."""
    from wav2kp.training.inference import load_predictor

    path = resolve_checkpoint(spec)
    try:
        predictor = load_predictor(path, device=device)
    except Exception as error:  # torch's pickling advice, key errors: one line instead
        raise PredictError(_diagnose_checkpoint(path, error)) from error
    context = getattr(predictor, "context", None) or {}
    missing = [
        what
        for key, what in (("feature_stats", "feature statistics"), ("normalizer", "normaliser"))
        if context.get(key) is None
    ]
    if missing:
        raise PredictError(
            f"{path}: the checkpoint holds no {' and no '.join(missing)} (saved without its "
            "inference context); retrain it with `wav2kp train` or notebook 04"
        )
    return predictor, path


# --------------------------------------------------------------------------- model


def _feature_setup(predictor):
    """FeatureConfig and FeatureStats carried by the checkpoint."""
    from wav2kp.config import FeatureConfig
    from wav2kp.features.features import FeatureStats

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

    from wav2kp.windowing.dataset import clip_from_audio

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
    # a bar only when there is progress to show (several chunks: long files)
    for start in tqdm(
        starts, desc="predict", unit="chunk", disable=not progress or len(starts) < 2
    ):
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


# --------------------------------------------------------------------------- predict


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
    formats: tuple[str, ...] = exports.DEFAULT_FORMATS
    preview: bool = True
    preview_seconds: float | None = None  # None: the whole file
    preview_with_reference: bool = True
    chunk_seconds: float = CHUNK_SECONDS
    corpus: str | None = None  # reference corpus; None: the checkpoint's own
    speaker: str = ""
    sequence: str | None = None
    allow_clipped: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.formats = exports.parse_formats(self.formats)


@dataclass
class Session:
    """A loaded model and a resolved reference, shared by every file of one call."""

    predictor: object
    checkpoint: str
    reference: Reference
    options: PredictOptions
    eye_uv: np.ndarray | None = field(default=None, repr=False)  # pupils in eye coordinates
    preview_cache: FrameCache | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.eye_uv = self.reference.eye_coordinates
        self.preview_cache = FrameCache()

    def fingerprint(self, speech_path: Path) -> str:
        opts = asdict(self.options)
        opts.pop("progress")
        return _fingerprint(speech_path, self.checkpoint, self.reference.source, opts)

    def predict(self, speech_path, out_dir) -> dict:
        """One speech file into ``out_dir`` (see the module docstring)."""
        speech_path, out_dir = Path(speech_path), Path(out_dir)
        opts = self.options
        check_output_parent(out_dir)
        sources = [Path(self.reference.source)] if self.reference.source else []
        check_no_inputs_inside(out_dir, [speech_path, *sources])
        fingerprint = self.fingerprint(speech_path)
        earlier = check_replaceable(out_dir)
        if (
            earlier is not None
            and earlier.get("fingerprint") == fingerprint
            and all((out_dir / name).exists() for name in earlier.get("files", {}).values())
        ):
            return dict(earlier, skipped=True)
        started = time.perf_counter()
        speech = read_speech(speech_path, allow_clipped=opts.allow_clipped)
        staging = Staging(out_dir, earlier)
        try:
            summary = self._write(speech, staging.folder, out_dir, fingerprint, started)
            staging.commit()
        except BaseException:
            staging.abort()
            raise
        if earlier is not None:
            summary = dict(summary, replaced=earlier.get("speech", "?"))
        return summary

    def _write(self, speech: Speech, folder: Path, out_dir: Path, fingerprint: str,
               started: float) -> dict:  # fmt: skip
        opts = self.options
        reference = self.reference
        track = reference.track
        model_started, model_cpu = time.perf_counter(), time.process_time()
        times, predicted = predict_track(
            self.predictor, speech.samples, speech.rate, opts.fps, reference.speaker,
            opts.chunk_seconds, progress=opts.progress,
        )  # fmt: skip
        composition = vid2vid.compose_on_reference(
            predicted, track, getattr(self.predictor, "normalizer", None),
            reference.speaker or None, out_times=times,
        )  # fmt: skip
        landmarks = composition.landmarks.astype(np.float32)
        pupils = None
        if self.eye_uv is not None:
            pupils = exports.pupils_on_frames(landmarks, self.eye_uv[composition.reference_index])
        predict_seconds = time.perf_counter() - model_started
        predict_cpu = time.process_time() - model_cpu

        sequence = opts.sequence or speech.path.stem
        prediction = exports.Prediction(
            sequence, times, landmarks, predicted, pupils, composition.reference_index,
            composition.reference_missing, track, reference.lm478, opts.fps, speech.path,
            speech.native, speech.native_rate,
            reference.segment.start if reference.segment is not None else 0,
        )  # fmt: skip
        written = exports.write_formats(folder, opts.formats, prediction, staged=True)
        files, timings = dict(written.files), dict(written.seconds)
        cpu_timings = {"predict": predict_cpu, **written.cpu_seconds}
        timings["predict"] = predict_seconds
        if opts.preview:
            begun, cpu = time.perf_counter(), time.process_time()
            files["preview"] = exports.PREVIEW_FILE
            view = (
                GeneratorView.from_export(written.vid2vid)
                if written.vid2vid is not None
                else GeneratorView.from_composition(composition, track)
            )
            write_preview(
                folder / exports.PREVIEW_FILE, view, speech.native, speech.native_rate, opts.fps,
                opts.preview_with_reference, opts.preview_seconds, self.preview_cache,
            )  # fmt: skip
            timings["preview"] = time.perf_counter() - begun
            cpu_timings["preview"] = time.process_time() - cpu  # without ffmpeg's own
        total_seconds = time.perf_counter() - started
        duration = speech.duration
        summary = {
            "speech": str(speech.path),
            "checkpoint": self.checkpoint,
            "model": getattr(self.predictor, "name", ""),
            "reference": reference.description,
            "reference_change": reference.change,
            "speaker": reference.speaker,
            "sequence": sequence,
            "fps": opts.fps,
            "frames": int(len(landmarks)),
            "audio_seconds": duration,
            "frame_size": list(track.size),
            "formats": list(opts.formats),
            "pupils": "MediaPipe iris centres of the reference"
            if pupils is not None
            else "none (the reference has no iris track)",
            "clipped_share": speech.clipped_share,
            "warnings": [w for w in [clipping_warning(speech.path, speech.clipped_share)] if w],
            "reference_frames_interpolated": int(composition.reference_missing.sum()),
            "reference_segment": None if reference.segment is None else reference.segment.as_dict(),
            "reference_extraction_seconds": reference.extraction_seconds,
            "vid2vid_problems": written.problems,
            "seconds": timings,
            "cpu_seconds": cpu_timings,
            "predict_seconds": predict_seconds,
            "total_seconds": total_seconds,
            "realtime_factor_predict": duration / max(predict_seconds, 1e-9),
            "realtime_factor_total": duration / max(total_seconds, 1e-9),
            "files": files,
            "fingerprint": fingerprint,
        }
        if written.handoff is not None:
            # written in the staging folder: its paths are the output folder's once moved
            handoff = _relocate(written.handoff, str(folder.resolve()), str(out_dir.resolve()))
            summary.update(
                vid2vid=handoff,
                vid2vid_problems=handoff["problems"],
                vid2vid_command=handoff["test_command"],
                coordinates="keypoints.npz 'landmarks' and keypoints.csv: the reference's own "
                "pixels; vid2vid files and 'vid2vid_landmarks': the exported frames' pixels, "
                "x = x_ref * vid2vid_frame_scale[t] + vid2vid_frame_offset[t, 0] (y alike) for "
                "frame t; vid2vid_scale, vid2vid_offset: the canvas, every frame's mapping "
                "unless the head was kept inside vid2vid's crop (vid2vid.steadied)",
            )  # fmt: skip
        write_json(folder / SUMMARY_FILE, summary)
        return summary


def _relocate(value, old: str, new: str):
    """``value`` (JSON-like) with every string's ``old`` path replaced by ``new``."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, old, new) for v in value]
    return value


def open_session(checkpoint, reference=None, **options) -> Session:
    """Load the model and resolve the reference once (the start-up a batch pays once)."""
    opts = PredictOptions(**options)
    if isinstance(checkpoint, (str, os.PathLike)) or checkpoint is None:
        predictor, path = load_checkpoint_for_predict(checkpoint)
        checkpoint_id = str(path)
    else:
        # an in-memory model has no file to fingerprint: its identity stands in
        predictor, checkpoint_id = checkpoint, f"<in memory {id(checkpoint)}>"
    try:
        resolved = resolve_reference(reference, predictor, opts.speaker, opts.corpus)
    except PredictError:
        raise
    except (ValueError, OSError) as error:  # unreadable reference: one line naming it
        raise PredictError(f"--reference {reference}: {_first_line(error)}") from error
    if "mediapipe" in opts.formats and resolved.lm478 is None:
        raise PredictError(
            f"--format mediapipe: the reference ({resolved.description}) has no MediaPipe "
            "mesh; pass --reference VIDEO or drop the format"
        )
    if "face" in opts.formats and (resolved.lm478 is None or not resolved.track.frame_paths):
        raise PredictError(
            f"--format face: the reference ({resolved.description}) has no video frames and "
            "MediaPipe mesh to warp; pass --reference VIDEO of the speaker or drop the format"
        )
    return Session(predictor, checkpoint_id, resolved, opts)


def predict_file(
    speech_path: str | os.PathLike,
    checkpoint,
    out_dir: str | os.PathLike,
    reference=None,
    fps: float = NTSC_FPS,
    **options,
) -> dict:
    """Predict keypoints for one speech file and write everything into ``out_dir``.

    ``checkpoint``: a checkpoint path/folder, a model name ``CORPUS/MODEL``, or a loaded
    predictor. ``reference``: a reference video, an extraction ``.npz``, a
    ``ReferenceTrack`` or None (the checkpoint corpus' clip, else a neutral face).
    Options (:class:`PredictOptions`): ``formats``, ``preview``, ``preview_seconds``,
    ``preview_with_reference``, ``chunk_seconds``, ``corpus``, ``speaker``, ``sequence``
    (vid2vid sequence name, default the speech file's stem), ``allow_clipped``,
    ``progress``. Returns the summary written to ``predict.json``.
    """
    session = open_session(checkpoint, reference, fps=float(fps), **options)
    return session.predict(speech_path, out_dir)


def batch_names(speech_paths: Sequence[Path]) -> dict[Path, str]:
    """Each file's folder name (its stem); files whose stems collide get none."""
    from collections import Counter

    counts = Counter(Path(p).stem for p in speech_paths)
    return {Path(p): Path(p).stem for p in speech_paths if counts[Path(p).stem] == 1}


def predict_files(
    speech_paths: Sequence[str | os.PathLike],
    checkpoint,
    out_dir: str | os.PathLike,
    reference=None,
    fps: float = NTSC_FPS,
    on_result=None,
    **options,
) -> list[dict]:
    """Many speech files with one model load and one reference: ``out_dir/<stem>/`` each
    (one file alone goes straight into ``out_dir``). A file that fails gets a result
    ``{"speech": ..., "error": one line}`` and the others carry on. ``on_result(result)``
    is called as each file finishes."""
    out_dir = Path(out_dir)
    paths = [Path(p) for p in speech_paths]
    check_output_parent(out_dir)
    check_no_inputs_inside(out_dir, paths)
    session = open_session(checkpoint, reference, fps=float(fps), **options)
    return predict_files_with(session, paths, out_dir, on_result)


def predict_files_with(session: Session, paths: Sequence[Path], out_dir: Path, on_result=None):
    """:func:`predict_files` with an already opened session."""
    single = len(paths) == 1
    names = batch_names(paths)
    results = []
    for path in paths:
        try:
            if not single and path not in names:
                others = [str(p) for p in paths if p.stem == path.stem and p != path]
                raise PredictError(
                    f"{path}: same name as {others[0]}, both would go to "
                    f"{out_dir / path.stem}; rename one or predict them separately"
                )
            target = out_dir if single else out_dir / names[path]
            result = dict(session.predict(path, target), out_dir=str(target))
        except (PredictError, exports.ExportError, OSError, ValueError) as error:
            message = _first_line(error)
            if str(path) not in message and not message.startswith("--"):
                message = f"{path}: {message}"
            result = {"speech": str(path), "error": message}
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


# --------------------------------------------------------------------------- command line


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("speech", nargs="+",
                        help="speech file(s): wav/flac/mp3/m4a/..., any rate and channels")  # fmt: skip
    parser.add_argument("--checkpoint", default=None,
                        help="model: a best.pt, its folder, or CORPUS/MODEL under data/models "
                        f"(default: the first of {', '.join(DEFAULT_MODELS)} found)")  # fmt: skip
    parser.add_argument("--reference", default=None,
                        help="video of the target speaker (head motion, blinks, frames); "
                        "default: a held-out clip of the checkpoint's own corpus and speaker, "
                        "else that speaker's neutral face")  # fmt: skip
    parser.add_argument("--out", required=True,
                        help="output folder (several speech files: one sub-folder each)")  # fmt: skip
    parser.add_argument("--format", default=None,
                        help=f"comma-separated: {','.join(exports.FORMATS)} "
                        f"(default {','.join(exports.DEFAULT_FORMATS)})")  # fmt: skip
    parser.add_argument("--fps", type=float, default=29.97, help="keypoint frame rate (29.97)")
    parser.add_argument("--corpus", default=None,
                        help="corpus to take the reference clip from (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--speaker", default="",
                        help="speaker of the checkpoint whose clip / neutral face to use")  # fmt: skip
    parser.add_argument("--no-preview", action="store_true", help="skip the preview mp4")
    parser.add_argument("--preview-seconds", type=float, default=None,
                        help="preview only the first SECONDS (long files)")  # fmt: skip
    parser.add_argument("--preview-edges-only", action="store_true",
                        help="preview shows vid2vid's edge map alone, not beside the frame")  # fmt: skip
    parser.add_argument("--allow-clipped", action="store_true",
                        help="predict even from recordings clipped beyond CLIPPED_REFUSE "
                        f"({100 * CLIPPED_REFUSE:g} %% of samples at full scale)")  # fmt: skip


def _print_result(result: dict) -> None:
    if "error" in result:
        print(f"error: {result['error']}", file=sys.stderr, flush=True)
        return
    note = " (unchanged, skipped)" if result.get("skipped") else ""
    print(f"{result['speech']}: {result['frames']} frames, {result['audio_seconds']:.1f} s of "
          f"speech, {result['realtime_factor_total']:.1f}x real time -> "
          f"{result['out_dir']}{note}", flush=True)  # fmt: skip
    if result.get("replaced"):
        print(f"  replaced the earlier prediction in {result['out_dir']} (from "
              f"{result['replaced']})")  # fmt: skip
    for warning in result.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    for problem in result.get("vid2vid_problems", []):
        print(f"vid2vid folder problem: {problem}", file=sys.stderr)
    handoff = result.get("vid2vid")
    if handoff:
        steadied, repaired = handoff.get("steadied"), handoff.get("repaired_fits")
        if steadied:
            print(f"  vid2vid: {steadied['frames_moved']} frames moved back inside its crop "
                  f"(the head travels; up to {steadied['max_shift_px']:g} px; mapping per "
                  "frame in keypoints.npz)")  # fmt: skip
        if repaired:
            print(f"  vid2vid: {repaired['frames']} frames' points nudged by at most "
                  f"{repaired['max_nudge_px']} px so that its curve fit converges")  # fmt: skip
        print(f"  vid2vid: {handoff['test_command']}")
        print(f"    writes {handoff['output_files']}; speech on it: {handoff['mux_command']}")


def extraction_share_line(extraction_seconds: float | None, results: Sequence[dict]) -> str:
    """One line: the reference extraction's share of this run's time ("" when no video
    was extracted). A new reference dominates a short prediction; it is extracted once
    and reused by later runs."""
    if extraction_seconds is None:
        return ""
    rest = sum(float(r.get("total_seconds", 0.0)) for r in results if not r.get("skipped"))
    share = extraction_seconds / max(extraction_seconds + rest, 1e-9)
    return (f"reference extraction: {extraction_seconds:.1f} s, {100 * share:.0f} % of this "
            f"run's {extraction_seconds + rest:.1f} s (done once per reference video and "
            "reused while the file is unchanged)")  # fmt: skip


def run_cli(args: argparse.Namespace) -> int:
    from wav2kp.media.encode import as_fraction

    if args.preview_seconds is not None and args.preview_seconds <= 0:
        print(f"error: --preview-seconds {args.preview_seconds:g}: must be positive "
              "(or use --no-preview)", file=sys.stderr)  # fmt: skip
        return 2
    options = dict(
        fps=float(as_fraction(args.fps)), preview=not args.no_preview,
        preview_seconds=args.preview_seconds, corpus=args.corpus, speaker=args.speaker,
        preview_with_reference=not args.preview_edges_only, allow_clipped=args.allow_clipped,
    )  # fmt: skip
    try:
        options["formats"] = exports.parse_formats(args.format)
        out_dir = Path(args.out)
        paths = [Path(p) for p in args.speech]
        check_output_parent(out_dir)
        check_no_inputs_inside(out_dir, paths)
        session = open_session(args.checkpoint, args.reference, **options)
    except (PredictError, exports.ExportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"model: {session.checkpoint}" + ("" if args.checkpoint else
          " (the default; pass --checkpoint to choose another)"))  # fmt: skip
    print(f"reference: {session.reference.description}")
    print(f"  to change it: {session.reference.change}")
    results = predict_files_with(session, paths, out_dir, _print_result)
    line = extraction_share_line(session.reference.extraction_seconds, results)
    if line:
        print(line)
    failed = [r for r in results if "error" in r]
    if len(results) > 1:
        print(f"{len(results) - len(failed)} of {len(results)} files done"
              + (f"; {len(failed)} failed (listed above)" if failed else ""))  # fmt: skip
    problems = any(r.get("vid2vid_problems") for r in results)
    return 2 if failed else (1 if problems else 0)
