"""The reference head a prediction is drawn on, chosen so it belongs to the model.

``wav2kp predict`` composes the predicted mouth onto a real head track
(``wav2kp.handoff.vid2vid.compose_on_reference``). :func:`resolve_reference` picks it, in this
order: the video / extraction / track the user passed; else a held-out (test split) clip
of the checkpoint's own corpus and one of its own speakers (never another corpus' face);
else that speaker's neutral face on a plain canvas (head frozen). :class:`Reference` says
which one was used and what to pass to change it. Reference videos are checked first
(a video, at least :data:`MIN_REFERENCE_SECONDS` long), then extracted once into
``data/interim/predict-references/`` (reused while the file is unchanged).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wav2kp.handoff import exports, vid2vid

MIN_REFERENCE_SECONDS = 1.0  # a reference shorter than this gives no head motion to loop
# The stretch of a reference that is looped (ping-pong) under the speech, at most: a
# longer reference video is extracted only this far (the extraction dominates the cost
# of a new reference), and the longest stretch with the face in it is used.
LOOP_SECONDS = 10.0
NEUTRAL_CANVAS = (512, 512)
REFERENCE_CACHE = "predict-references"  # under data/interim: extracted reference videos
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _error(message: str):
    from wav2kp.predict.errors import PredictError

    return PredictError(message)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def checkpoint_speakers(predictor) -> list[str]:
    """Speakers the checkpoint was trained on (its training fingerprint, else its
    context, else its normaliser's neutral faces)."""
    speakers = list(getattr(predictor, "speakers", None) or [])
    context = getattr(predictor, "context", None) or {}
    speakers = speakers or list(context.get("speakers") or [])
    if speakers:
        return [str(s) for s in speakers]
    normalizer = getattr(predictor, "normalizer", None)
    return sorted(str(s) for s in getattr(normalizer, "neutrals", {}) or {})


def checkpoint_corpus(predictor) -> str | None:
    """The corpus the checkpoint was trained on (None if it does not say)."""
    corpus = getattr(predictor, "corpus", None)
    if not corpus:
        corpus = (getattr(predictor, "context", None) or {}).get("corpus")
    return str(corpus) if corpus else None


@dataclass
class Reference:
    """The head the prediction is drawn on, and what the user should know about it."""

    track: vid2vid.ReferenceTrack
    description: str  # which reference, in words
    change: str  # what to pass to use another one
    speaker: str = ""  # the checkpoint speaker whose neutral face is the mouth's rest
    lm478: np.ndarray | None = None  # (N, 478, 3) MediaPipe mesh of the reference frames
    source: str = ""  # the file behind it, if any (fingerprint, never inside the output)
    segment: Segment | None = None  # the stretch of the source's frames that is looped
    extraction_seconds: float | None = None  # wall time of extracting it (None: not run)

    @property
    def eye_coordinates(self) -> np.ndarray | None:
        if self.lm478 is None:
            return None
        uv = exports.pupils_in_eye_coordinates(self.track.landmarks, self.lm478)
        return uv if np.isfinite(uv).any() else None


@dataclass(frozen=True)
class Segment:
    """Frames ``start .. stop - 1`` of an extracted reference: the stretch looped."""

    start: int
    stop: int
    of: int  # frames in the extraction
    start_seconds: float
    end_seconds: float
    why: str

    @property
    def is_whole(self) -> bool:
        return self.start == 0 and self.stop == self.of

    def describe(self) -> str:
        return (f"frames {self.start}-{self.stop - 1} of {self.of} "
                f"({self.start_seconds:.2f}-{self.end_seconds:.2f} s): {self.why}")  # fmt: skip

    def as_dict(self) -> dict:
        return {"first_frame": self.start, "frames": self.stop - self.start,
                "extracted_frames": self.of, "start_seconds": round(self.start_seconds, 4),
                "end_seconds": round(self.end_seconds, 4), "why": self.why}  # fmt: skip


def choose_segment(
    track: vid2vid.ReferenceTrack,
    what: str = "reference",
    loop_seconds: float = LOOP_SECONDS,
    min_seconds: float = MIN_REFERENCE_SECONDS,
) -> Segment:
    """The stretch of ``track`` to loop under the speech: the longest run of frames with
    the face found (short gaps the extraction interpolated count as found; a long gap
    would freeze the head on frames without a face), the earliest on ties, cut to
    ``loop_seconds``. :class:`PredictError` naming why when no run lasts ``min_seconds``
    (or half the clip, when that is shorter).
    Faces that move or turn are fine: the hand-off keeps them inside vid2vid's crop and
    repairs what its curve fit cannot take (``wav2kp.handoff.vid2vid.export_composition``)."""
    times = np.asarray(track.times, dtype=np.float64)
    n = len(times)
    found = np.isfinite(np.asarray(track.landmarks)).all(axis=(1, 2))
    step = float(np.median(np.diff(times))) if n > 1 else 0.0
    best, best_span = (0, 0), -1.0
    start = None
    for i, ok in enumerate([*found.tolist(), False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            span = times[i - 1] - times[start] + step
            if span > best_span + 1e-9:
                best, best_span = (start, i), span
            start = None
    # a short clip (a corpus clip under min_seconds) needs half of itself
    min_seconds = min(min_seconds, (times[-1] - times[0] + step) / 2 if n else 0.0)
    if best_span < min_seconds - 1e-9 or best_span <= 0:
        where = (f"the longest stretch with it is {max(best_span, 0.0):.2f} s (frames "
                 f"{best[0]}-{best[1] - 1})" if best[1] > best[0] else "none")  # fmt: skip
        raise _error(
            f"{what}: no usable stretch: the face is found in {int(found.sum())} of {n} "
            f"frames and {where}; a reference needs {min_seconds:.0f} s of video with the "
            "target speaker's face visible throughout; pass another video"
        )
    first, stop = best
    cut = int(np.searchsorted(times, times[first] + loop_seconds - step / 2, side="right"))
    stop = min(stop, max(first + 1, cut))
    if (first, stop) == (0, n):
        why = "the whole reference, the face found throughout"
    elif stop < best[1]:
        why = f"one loop ({loop_seconds:g} s) of the longest stretch with the face found"
    else:
        why = f"the longest stretch with the face found ({n - int(found.sum())} frames without it)"
    return Segment(first, stop, n, float(times[first]), float(times[stop - 1] + step), why)


def reference_cache_dir() -> Path:
    """Where extracted reference videos and decoded reference frames are kept."""
    from wav2kp.paths import data_root

    return data_root() / "interim" / REFERENCE_CACHE


def _file_key(path: Path) -> str:
    stat = path.stat()
    digest = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


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


def _load_mesh(npz: Path) -> np.ndarray | None:
    with np.load(npz, allow_pickle=False) as data:
        if "lm478" not in data:
            return None
        mesh = np.asarray(data["lm478"], dtype=np.float32)
        if "frame_status" in data:
            mesh[np.asarray(data["frame_status"]) == 2] = np.nan
    return mesh


def reference_from_npz(
    npz: Path, video: Path | None
) -> tuple[vid2vid.ReferenceTrack, np.ndarray | None]:
    """A reference track (and its MediaPipe mesh) from an extraction result, with frames
    from the kept frames folder (``interim/<corpus>/frames/<clip_id>``) or decoded from
    ``video`` into the reference cache."""
    npz = Path(npz)
    frames_dir = npz.parent.parent / "frames" / npz.stem
    with np.load(npz, allow_pickle=False) as data:
        n_frames = len(data["times"])
    usable = frames_dir.is_dir() and len(list(frames_dir.glob("*.jpg"))) == n_frames
    if not usable and video is not None and Path(video).is_file():
        cache = reference_cache_dir() / "frames" / f"{npz.stem}-{_file_key(Path(video))}"
        frames_dir = decode_frames_to(video, cache, n_frames)
        usable = True
    track = vid2vid.load_reference_track(npz, frames_dir if usable else None)
    return track, _load_mesh(npz)


def check_reference_video(video: Path) -> None:
    """Refuse what cannot be a reference before running MediaPipe on it."""
    from wav2kp.media.probe import probe

    if not video.is_file():
        raise _error(f"--reference {video}: file not found; pass a video of the target speaker")
    if video.suffix.lower() in IMAGE_SUFFIXES:
        raise _error(
            f"--reference {video}: an image, not a video; pass a video (at least "
            f"{MIN_REFERENCE_SECONDS:.0f} s) of the target speaker's face"
        )
    try:
        info = probe(video)
    except Exception as error:
        raise _error(
            f"--reference {video}: not a readable video ({_first_line(error)}); pass a video "
            "of the target speaker's face"
        ) from error
    if not info.has_video:
        raise _error(
            f"--reference {video}: has no video stream (audio only?); pass a video of the "
            "target speaker's face"
        )
    if info.duration is not None and info.duration < MIN_REFERENCE_SECONDS:
        raise _error(
            f"--reference {video}: {info.duration:.2f} s long; a reference needs at least "
            f"{MIN_REFERENCE_SECONDS:.0f} s of video (its head motion and blinks are looped)"
        )


def _reference_input(video: Path, inbox: Path, seconds: float | None = None) -> Path:
    """The video as extraction will read it: linked into ``inbox`` under a video suffix,
    with a silent audio track added when it has none (extraction needs one); ``seconds``:
    its first ``seconds`` only (stream copy: no re-encoding)."""
    import subprocess

    from wav2kp.extraction.extract import VIDEO_SUFFIXES, safe_clip_id
    from wav2kp.media.audio import SAMPLE_RATE
    from wav2kp.media.probe import ffmpeg_exe, probe

    inbox.mkdir(parents=True, exist_ok=True)
    stem = safe_clip_id(video.stem)
    info = probe(video)
    if info.has_audio and video.suffix.lower() in VIDEO_SUFFIXES and seconds is None:
        target = inbox / f"{stem}{video.suffix.lower()}"
        if not target.exists():
            try:
                target.symlink_to(video.resolve())
            except OSError:
                shutil.copyfile(video, target)
        return target
    target = inbox / f"{stem}.mkv"
    if not target.exists():
        tmp = inbox / f".{stem}.partial.mkv"
        command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(video)]
        if not info.has_audio:
            command += ["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=mono", "-shortest"]
        command += ["-map", "0:v:0", "-map", "1:a:0" if not info.has_audio else "0:a:0"]
        if seconds is not None:
            command += ["-t", f"{seconds:.6f}"]
        command += ["-c:v", "copy", "-c:a", "pcm_s16le", str(tmp)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise _error(
                f"--reference {video}: cannot be prepared for extraction "
                f"({(done.stderr.strip().splitlines() or ['ffmpeg failed'])[-1]})"
            )
        os.replace(tmp, target)
    return target


def extract_reference(video: str | os.PathLike, seconds: float | None = None):
    """Extract (frames kept) a reference video into the reference cache and load its head
    track: (track, MediaPipe mesh, extraction warning or ""). ``seconds``: only the first ``seconds`` of a longer video (one loop). A later call for
    the same unchanged file (and length) reuses the extraction."""
    from wav2kp.extraction import extract
    from wav2kp.paths import CorpusPaths

    video = Path(video)
    check_reference_video(video)
    duration = _video_seconds(video)
    if seconds is not None and duration <= seconds:
        seconds = None
    name = f"{extract.safe_clip_id(video.stem)}-{_file_key(video)}"
    if seconds is not None:
        name += f"-first{seconds:g}s"
    root = reference_cache_dir() / name
    inbox = _reference_input(video, root / "input", seconds)
    paths = CorpusPaths("reference", root=root)
    try:  # in this process: one clip, no cluster to start
        table = extract.extract_corpus(inbox.parent, paths, workers=0, keep_frames=True,
                                       progress=False)  # fmt: skip
    except (OSError, ValueError, RuntimeError) as error:  # ExtractError, a full disk: one line
        raise _error(f"--reference {video}: extraction failed ({_first_line(error)})") from error
    rows = table[table["file"] == inbox.name]
    if rows.empty:
        raise _error(f"--reference {video}: extraction did not list it; pass another video")
    row = rows.iloc[0]
    if row["status"] != "ok":
        reason = str(row.get("error") or row["status"]).replace(str(inbox), video.name)
        reason = reason.removeprefix(f"{inbox.name}: ").removeprefix(f"{video.name}: ")
        raise _error(
            f"--reference {video}: unusable as a reference ({reason}); pass a video in "
            "which the target speaker's face is visible"
        )
    track, mesh = reference_from_npz(paths.extracted / f"{row['clip_id']}.npz", inbox)
    warning = row.get("warning")
    warning = str(warning).replace(str(inbox), video.name) if isinstance(warning, str) else ""
    return track, mesh, warning


def neutral_reference(predictor, speaker: str = "", size=NEUTRAL_CANVAS):
    """A frozen neutral face centred on a plain canvas (the last-resort reference)."""
    from wav2kp.plots.edgemap import crop_box
    from wav2kp.windowing.targets import apply_pose

    normalizer = getattr(predictor, "normalizer", None)
    if normalizer is None:
        raise _error(
            "no reference given, no clip of the checkpoint's corpus and the checkpoint has "
            "no neutral face: pass --reference VIDEO"
        )
    face = normalizer.neutral_for(speaker or None)
    width, height = size
    # small enough that vid2vid's crop (2.5 face widths) fits inside the canvas
    iod = 0.15 * width
    pixels = apply_pose(face[None], np.array([[iod, 0.0, 0.0, 0.0]]))[0]
    x0, y0, x1, y1 = crop_box(pixels, (10**6, 10**6))
    pixels += np.array([width / 2 - (x0 + x1) / 2, height / 2 - (y0 + y1) / 2])
    return vid2vid.static_reference(pixels, size)


def demo_reference(corpus: str = "demo", speaker: str | None = None):
    """A reference clip of ``corpus``: a test-split clip (of ``speaker`` when given) with
    the most detected frames; None when the corpus has no extracted clip (of that
    speaker, when one is asked for and the split names speakers)."""
    from wav2kp.paths import CorpusPaths

    paths = CorpusPaths(corpus)
    candidates = sorted(paths.extracted.glob("*.npz")) if paths.extracted.is_dir() else []
    if not candidates:
        return None
    test_ids = None
    speakers: dict[str, str] = {}
    if paths.split_file.is_file():
        import pandas as pd

        split = pd.read_csv(paths.split_file, dtype=str, keep_default_na=False)
        test_ids = set(split.loc[split["split"] == "test", "clip_id"])
        if "speaker" in split.columns:
            speakers = dict(zip(split["clip_id"], split["speaker"], strict=True))
    if speaker:
        if speakers:
            own = [p for p in candidates if speakers.get(p.stem) == speaker]
        else:
            own = [p for p in candidates if p.stem.startswith(f"{speaker}_")]
        candidates = own or ([] if speakers else candidates)
        if not candidates:
            return None
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


def _raw_video_for(npz: Path) -> Path | None:
    """The source video of an extraction result (``<data>/interim/<corpus>/extracted/
    <clip>.npz``), from its corpus's extraction manifest."""
    from wav2kp.extraction.extract import source_video
    from wav2kp.paths import CorpusPaths

    corpus_dir = npz.parent.parent
    return source_video(CorpusPaths(corpus_dir.name, corpus_dir.parent.parent), npz.stem)


CHANGE_HINT = "pass --reference VIDEO (a video of the target speaker) to use another head"


def resolve_reference(
    reference, predictor, speaker: str = "", corpus: str | None = None
) -> Reference:
    """The head to draw on: ``reference`` (a ``ReferenceTrack``, an extraction ``.npz`` or
    a video), else a test clip of ``corpus`` (default: the checkpoint's own corpus) and of
    the checkpoint's speaker, else that speaker's neutral face on a plain canvas."""
    speakers = checkpoint_speakers(predictor)
    if speaker and speakers and speaker not in speakers:
        raise _error(
            f"--speaker {speaker}: not a speaker of this checkpoint; its speakers: "
            f"{', '.join(speakers)}"
        )
    if isinstance(reference, vid2vid.ReferenceTrack):
        return Reference(reference, f"reference track {reference.name}", CHANGE_HINT,
                         speaker or _speaker_of(reference.name, predictor))  # fmt: skip
    if reference is not None:
        path = Path(reference)
        if path.suffix == ".npz":
            if not path.is_file():
                raise _error(f"--reference {path}: extraction result not found")
            track, mesh = reference_from_npz(path, _raw_video_for(path))
            return looped(Reference(track, f"extracted clip {path.stem}", CHANGE_HINT,
                          speaker or _speaker_of(path.stem, predictor), mesh, str(path)),
                          f"--reference {path}")  # fmt: skip
        return looped_video(path, speaker or _speaker_of(path.stem, predictor))
    corpus = corpus or checkpoint_corpus(predictor)
    chosen = speaker or (speakers[0] if speakers else "")
    npz = None
    if corpus:
        for candidate in [chosen] if speaker or not speakers else speakers:
            npz = demo_reference(corpus, candidate or None)
            if npz is not None:
                chosen = candidate or _speaker_of(npz.stem, predictor)
                break
    if npz is not None:
        track, mesh = reference_from_npz(npz, _raw_video_for(npz))
        who = f", speaker {chosen}" if chosen else ""
        return looped(Reference(
            track,
            f"{corpus} corpus clip {npz.stem} (the checkpoint's corpus{who})",
            f"{CHANGE_HINT}, or --speaker NAME for another of its speakers "
            f"({', '.join(speakers) or 'none listed'})",
            chosen, mesh, str(npz),
        ), f"reference clip {npz}")  # fmt: skip
    track = neutral_reference(predictor, chosen)
    where = (
        f"no extracted clip of corpus {corpus!r} here"
        if corpus
        else "the checkpoint names no corpus"
    )
    return Reference(
        track,
        f"neutral face{f' of speaker {chosen}' if chosen else ''} on a plain canvas, head "
        f"frozen ({where})",
        f"{CHANGE_HINT}: real head motion, blinks and frames", chosen,
    )  # fmt: skip


def looped(reference: Reference, what: str, loop_seconds: float = LOOP_SECONDS) -> Reference:
    """``reference`` cut to the stretch that is looped (:func:`choose_segment`), its mesh
    alike; the description says which frames when it is not the whole clip."""
    segment = choose_segment(reference.track, what, loop_seconds)
    reference.segment = segment
    if segment.is_whole:
        return reference
    reference.track = reference.track.frames(segment.start, segment.stop)
    if reference.lm478 is not None:
        reference.lm478 = reference.lm478[segment.start : segment.stop]
    reference.description += f", {segment.describe()}"
    return reference


def looped_video(video: Path, speaker: str, loop_seconds: float = LOOP_SECONDS) -> Reference:
    """A reference video, extracted only as far as one loop (``loop_seconds``) when it
    is longer, and the whole of it only when that first stretch has no usable segment."""
    import time

    from wav2kp.predict.errors import PredictError

    what = f"--reference {video}"
    begun = time.perf_counter()
    check_reference_video(video)
    whole = _video_seconds(video) <= loop_seconds

    def load(seconds: float | None) -> Reference:
        track, mesh, warning = extract_reference(video, seconds)
        note = f" (extraction warning: {warning})" if warning else ""
        if seconds is not None and not whole:
            note += f" (extracted its first {seconds:g} s: one loop)"
        reference = Reference(track, f"reference video {video.name}{note}", CHANGE_HINT,
                              speaker, mesh, str(video))  # fmt: skip
        return looped(reference, what, loop_seconds)

    try:
        reference = load(loop_seconds)
    except PredictError:
        if whole:
            raise
        reference = load(None)  # the face is missing early on: look at all of it
    reference.extraction_seconds = time.perf_counter() - begun
    return reference


def _video_seconds(video: Path) -> float:
    from wav2kp.media.probe import probe

    info = probe(video)
    return float(info.duration or 0.0)


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
