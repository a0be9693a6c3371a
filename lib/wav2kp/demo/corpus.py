"""The offline demo corpus: Brazilian Portuguese sentences spoken by espeak-ng under OCC
emotion categories, lip-synced onto two real portraits, written as mp4 + tracks.

A stand-in with the shape of CH-Unicamp (sentences x emotion categories, 29.97 fps):
``data/raw/<corpus>/<clip_id>.mp4`` (512x512 H.264 + AAC 44.1 kHz), ``manifest.csv``,
``corpus.json`` (generator version and seed) and ``<clip_id>.tracks.csv``, one row per
video frame k (shown at k * 1001 / 30000 s):

- ``jaw`` commanded inner-lip opening, 0 (closed) .. ~1 (0.36 inter-ocular distances);
  exactly 0 during bilabial closures (p, b, m); ``lip_gap_px`` the same in pixels
- ``spread`` (-1..1), ``round`` (0..1) lip shape; ``closure`` bilabial closure (0..1)
- ``blink`` (0 open .. 1 closed), ``gaze_x``/``gaze_y`` iris shift (pixels); expression ``smile``, ``frown``, ``brow_raise``,
  ``brow_inner``, ``brow_lower`` (0..1)
- head pose: ``head_yaw``, ``head_pitch``, ``head_roll`` (degrees), ``head_tx``,
  ``head_ty`` (pixels), ``head_scale``
- ``phoneme``: the espeak phoneme sounding at that time (``_`` = silence)

Sizes: ``tiny`` 2 speakers x 6 short sentences x 2 emotions (24 clips, about 1 minute
of video), ``default`` 2 x 12 x 4 (96 clips, about 5 minutes), ``large`` 2 x 16 x 6;
``wav2kp demo`` prints the exact length of what it built.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.atomic import write_csv, write_json
from wav2kp.config import RunConfig, add_corpus_argument, add_workers_argument
from wav2kp.demo.motion import Expression
from wav2kp.demo.tts import Prosody

FPS = Fraction(30000, 1001)
SAMPLE_RATE = 44100
CORPUS_VERSION = 4  # bump when the generator changes what a seed produces

# Phonetically varied Brazilian Portuguese: bilabials (p b m), open /a/, rounded o/u,
# spread i/e, fricatives (f v s z S Z), nasal vowels, taps and trills. s01-s06 are short.
SENTENCES: dict[str, str] = {
    "s01": "O papai bebe mamão.",
    "s02": "A bola é azul.",
    "s03": "Vovó fez pipoca.",
    "s04": "Minha mãe mora em Belém.",
    "s05": "Pedro viu o barco.",
    "s06": "A menina comeu uva.",
    "s07": "Eu vou ao mercado amanhã de manhã.",
    "s08": "A professora pediu um pouco de paciência.",
    "s09": "Bem-vindo, a festa vai começar às sete.",
    "s10": "O sapo pulou no lago e espantou os peixes.",
    "s11": "Meu irmão mais velho trabalha muito bem.",
    "s12": "Você viu a lua cheia sobre o mar?",
    "s13": "Por favor, abra a porta e feche a janela.",
    "s14": "Isso é impossível, ninguém me avisou!",
    "s15": "Que bom te ver, fiquei muito feliz!",
    "s16": "Amanhã vamos passear no parque com a família.",
}

# OCC emotion categories: prosody (espeak) + facial expression
EMOTIONS: dict[str, tuple[Prosody, Expression]] = {
    "neutral": (Prosody(rate=150, pitch=48, pitch_range=45, volume=100), Expression()),
    "joy": (
        Prosody(rate=165, pitch=62, pitch_range=85, volume=125),
        Expression(smile=0.9, brow_raise=0.25, spread=0.15, jaw_scale=1.12, head_motion=1.3),
    ),
    "distress": (
        Prosody(rate=128, pitch=40, pitch_range=22, volume=80),
        Expression(frown=0.8, brow_inner=1.0, jaw_scale=0.8, head_motion=0.6, blink_rate=0.45),
    ),
    "anger": (
        Prosody(rate=160, pitch=44, pitch_range=70, volume=150),
        Expression(frown=0.3, brow_lower=1.0, spread=0.1, jaw_scale=1.18, head_motion=1.5),
    ),
    "fear": (
        Prosody(rate=175, pitch=66, pitch_range=35, volume=90),
        Expression(brow_raise=0.8, brow_inner=0.6, spread=0.2, jaw_scale=0.92, blink_rate=0.5),
    ),
    "relief": (
        Prosody(rate=140, pitch=50, pitch_range=55, volume=105),
        Expression(smile=0.45, brow_raise=0.15, jaw_scale=1.0, head_motion=0.9),
    ),
}

# speaker -> (espeak voice, pitch offset, rate factor)
SPEAKER_VOICES: dict[str, tuple[str, int, float]] = {
    "astronaut": ("pt-br+f3", 0, 1.0),
    "hopper": ("pt-br+f2", -6, 0.94),
}


@dataclass(frozen=True)
class CorpusSize:
    sentences: tuple[str, ...]
    emotions: tuple[str, ...]
    speakers: tuple[str, ...] = ("astronaut", "hopper")


SIZES: dict[str, CorpusSize] = {
    # tests and CI: short sentences, still enough for a split by sentence (4/1/1)
    "tiny": CorpusSize(tuple(f"s{i:02d}" for i in range(1, 7)), ("neutral", "joy")),
    # the demo: about 5 minutes of video
    "default": CorpusSize(
        tuple(f"s{i:02d}" for i in range(1, 13)), ("neutral", "joy", "distress", "anger")
    ),
    "large": CorpusSize(tuple(SENTENCES), tuple(EMOTIONS)),
}


@dataclass(frozen=True)
class ClipSpec:
    clip_id: str
    speaker: str
    emotion: str
    sentence_id: str
    text: str


def clip_specs(size: str = "default") -> list[ClipSpec]:
    if size not in SIZES:
        raise ValueError(f"unknown demo corpus size {size!r}; known: {', '.join(SIZES)}")
    cfg = SIZES[size]
    return [
        ClipSpec(f"{spk}_{emo}_{sid}", spk, emo, sid, SENTENCES[sid])
        for spk in cfg.speakers
        for emo in cfg.emotions
        for sid in cfg.sentences
    ]


def clip_rng(seed: int, clip_id: str) -> np.random.Generator:
    """Per-clip generator: independent of generation order and worker count."""
    return np.random.default_rng([int(seed), zlib.crc32(clip_id.encode("utf-8"))])


def frame_times(n_frames: int) -> np.ndarray:
    """Frame k is shown at k * 1001 / 30000 s."""
    return np.arange(n_frames, dtype=np.float64) * FPS.denominator / FPS.numerator


def synthesize_clip(spec: ClipSpec, seed: int) -> dict:
    """Audio (44.1 kHz) and per-frame tracks of one clip, without rendering."""
    from scipy.signal import resample_poly

    from wav2kp.demo import motion, visemes
    from wav2kp.demo.tts import synthesize

    rng = clip_rng(seed, spec.clip_id)
    prosody, expression = EMOTIONS[spec.emotion]
    voice, pitch_offset, rate_factor = SPEAKER_VOICES[spec.speaker]
    prosody = replace(
        prosody,
        rate=int(round(prosody.rate * rate_factor * rng.uniform(0.96, 1.04))),
        pitch=int(np.clip(prosody.pitch + pitch_offset + rng.integers(-3, 4), 0, 100)),
    )
    speech = synthesize(spec.text, prosody, voice=voice, seed=int(rng.integers(2**31)))
    if speech.duration <= 0 or not speech.phonemes:
        raise RuntimeError(f"{spec.clip_id}: espeak-ng produced no speech for {spec.text!r}")
    segments = visemes.segments_from_events(
        speech.phonemes, speech.duration, speech.audio, speech.sample_rate
    )
    lead, tail = rng.uniform(0.25, 0.40), rng.uniform(0.25, 0.40)
    for seg in segments:
        seg.start += lead
        seg.end += lead
    total = lead + speech.duration + tail
    n_frames = int(math.ceil(total * FPS))
    times = frame_times(n_frames)
    # audio: silence, speech, silence; resampled 22.05 -> 44.1 kHz; exactly n_frames long
    up = resample_poly(speech.audio.astype(np.float64), SAMPLE_RATE, speech.sample_rate)
    n_samples = int(round(n_frames * FPS.denominator * SAMPLE_RATE / FPS.numerator))
    audio = np.zeros(n_samples, dtype=np.float32)
    start = int(round(lead * SAMPLE_RATE))
    seg_audio = up[: max(0, n_samples - start)]
    audio[start : start + len(seg_audio)] = seg_audio
    peak = float(np.abs(audio).max())
    if peak > 0.95:
        audio *= 0.95 / peak
    jaw_scale = expression.jaw_scale * rng.uniform(0.93, 1.07)
    art = visemes.articulation(segments, times, jaw_scale=jaw_scale)
    tracks = pd.DataFrame({"frame": np.arange(n_frames), "time": times})
    tracks["jaw"] = np.clip(art["jaw"], 0, 1.2)
    tracks["spread"] = np.clip(art["spread"] + expression.spread, -1, 1)
    tracks["round"] = art["round"]
    tracks["closure"] = art["closure"]
    tracks["blink"] = motion.blink_track(times, expression.blink_rate, rng)
    for name, values in motion.gaze_tracks(times, rng).items():
        tracks[name] = values
    for name, values in motion.expression_tracks(times, expression, rng).items():
        tracks[name] = values
    energy = _frame_energy(audio, times)
    for name, values in motion.head_tracks(times, rng, expression.head_motion, energy).items():
        tracks[name] = values
    tracks["phoneme"] = art["phoneme"]
    return {"audio": audio, "tracks": tracks, "duration": n_frames / float(FPS)}


def _frame_energy(audio: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Speech loudness around each frame, 0..1."""
    half = int(0.02 * SAMPLE_RATE)
    centres = np.round(times * SAMPLE_RATE).astype(int)
    rms = np.array(
        [np.sqrt(np.mean(audio[max(c - half, 0) : c + half] ** 2) + 1e-12) for c in centres]
    )
    return rms / max(float(rms.max()), 1e-9)


TRACK_STATE_FIELDS = (
    "jaw", "spread", "round", "blink", "gaze_x", "gaze_y", "smile", "frown", "brow_raise",
    "brow_inner", "brow_lower", "head_yaw", "head_pitch", "head_roll", "head_tx", "head_ty",
    "head_scale",
)  # fmt: skip


def make_clip(spec: ClipSpec, out_dir: str | os.PathLike, seed: int = RunConfig.seed) -> dict:
    """Generate one clip (mp4 + tracks.csv) into ``out_dir``; returns its manifest row."""
    from wav2kp.demo.face import FaceState, renderer_for
    from wav2kp.media.encode import write_video

    out_dir = Path(out_dir)
    clip = synthesize_clip(spec, seed)
    tracks = clip["tracks"]
    renderer = renderer_for(spec.speaker)
    states = [
        FaceState(**{k: float(row[k]) for k in TRACK_STATE_FIELDS})
        for row in tracks[list(TRACK_STATE_FIELDS)].to_dict("records")
    ]
    tracks["lip_gap_px"] = [renderer.mouth_gap(s) * s.head_scale for s in states]
    video = out_dir / f"{spec.clip_id}.mp4"
    write_video(
        video, (renderer.render(s) for s in states), FPS, clip["audio"], SAMPLE_RATE, crf=20
    )
    tracks_file = out_dir / f"{spec.clip_id}.tracks.csv"
    write_csv(tracks_file, tracks.round(5))
    return manifest_row(spec, clip["duration"])


def manifest_row(spec: ClipSpec, duration: float) -> dict:
    return {
        **asdict(spec),
        "duration": round(float(duration), 4),
        "file": f"{spec.clip_id}.mp4",
        "tracks_file": f"{spec.clip_id}.tracks.csv",
    }


MANIFEST_COLUMNS = [
    "clip_id", "speaker", "emotion", "sentence_id", "text", "duration", "file", "tracks_file",
]  # fmt: skip


def _clip_complete(out_dir: Path, spec: ClipSpec) -> bool:
    # tracks.csv is written after the mp4, both atomically: both present = clip done
    return (out_dir / f"{spec.clip_id}.mp4").is_file() and (
        out_dir / f"{spec.clip_id}.tracks.csv"
    ).is_file()


def _duration_from_tracks(out_dir: Path, spec: ClipSpec) -> float:
    n = len(pd.read_csv(out_dir / f"{spec.clip_id}.tracks.csv", usecols=["frame"]))
    return n / float(FPS)


def _worker(spec: ClipSpec, out_dir: str, seed: int) -> dict:
    # one thread per worker (OpenCV, ffmpeg): parallelism comes from the pool
    import cv2

    cv2.setNumThreads(1)
    return make_clip(spec, out_dir, seed)


def build_corpus(
    out_dir: str | os.PathLike,
    size: str = "default",
    seed: int = RunConfig.seed,
    workers: int | None = None,
    progress: bool = True,
    clip_ids: list[str] | None = None,
) -> pd.DataFrame:
    """Generate the demo corpus into ``out_dir`` and return its manifest, on ``workers``
    processes (None: ``wav2kp.cluster.default_workers()``; 0 or 1: this one).

    ``clip_ids`` restricts generation to those clips of the size (a partial corpus).

    A re-run skips clips already complete (same seed and generator version); a clip that
    fails is reported by name and the others carry on (then a RuntimeError lists them).
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = clip_specs(size)
    if clip_ids is not None:
        unknown = set(clip_ids) - {s.clip_id for s in specs}
        if unknown:
            raise ValueError(f"not clips of size {size!r}: {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.clip_id in set(clip_ids)]
    info = {"generator": "wav2kp.demo", "version": CORPUS_VERSION, "seed": int(seed)}
    info_file = out_dir / "corpus.json"
    previous = json.loads(info_file.read_text()) if info_file.is_file() else None
    fresh = previous is not None and all(previous.get(k) == v for k, v in info.items())
    todo = [s for s in specs if not (fresh and _clip_complete(out_dir, s))]
    if previous is not None and not fresh:
        # clips from another seed/version would silently mix: regenerate everything,
        # and remove the old clips this generator listed (a folder of videos is a corpus)
        todo = list(specs)
        _remove_listed_clips(out_dir)
    write_json(info_file, {**info, "size": size})
    rows: dict[str, dict] = {
        s.clip_id: manifest_row(s, _duration_from_tracks(out_dir, s))
        for s in specs
        if s not in todo
    }
    errors: dict[str, str] = {}
    bar = tqdm(total=len(specs), initial=len(rows), desc=f"demo corpus ({size})",
               unit="clip", disable=not progress)  # fmt: skip
    if workers is None:
        from wav2kp.cluster import default_workers

        workers = default_workers()
    if todo and workers <= 1:
        for spec in todo:
            try:
                rows[spec.clip_id] = make_clip(spec, out_dir, seed)
            except Exception as exc:  # noqa: BLE001 - reported, the batch carries on
                errors[spec.clip_id] = f"{exc}"
            bar.update()
    elif todo:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no fork of mediapipe/torch state
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
            futures = {pool.submit(_worker, s, str(out_dir), seed): s for s in todo}
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    rows[spec.clip_id] = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported, the batch carries on
                    errors[spec.clip_id] = f"{exc}"
                bar.update()
    bar.close()
    manifest = pd.DataFrame([rows[s.clip_id] for s in specs if s.clip_id in rows],
                            columns=MANIFEST_COLUMNS)  # fmt: skip
    write_csv(out_dir / "manifest.csv", manifest)
    if errors:
        lines = "\n".join(f"  {out_dir / (cid + '.mp4')}: {msg}" for cid, msg in errors.items())
        raise RuntimeError(f"{len(errors)} demo clip(s) failed:\n{lines}")
    return manifest


def _remove_listed_clips(folder: Path) -> None:
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return
    old = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    for column in ("file", "tracks_file"):
        for name in old.get(column, []):
            path = folder / name
            # only plain files inside the folder, never anything a manifest points outside
            if name and path.resolve().parent == folder.resolve() and path.is_file():
                path.unlink()
    manifest.unlink()


def corpus_size(corpus: str) -> str:
    """'demo' -> 'default', 'demo-<size>' -> '<size>'."""
    if corpus == "demo":
        return "default"
    if corpus.startswith("demo-") and corpus[5:] in SIZES:
        return corpus[5:]
    raise ValueError(
        f"{corpus!r} is not a demo corpus name; use 'demo' or one of "
        + ", ".join(f"'demo-{s}'" for s in SIZES)
    )


def is_complete(folder: str | os.PathLike, size: str, seed: int = RunConfig.seed) -> bool:
    folder = Path(folder)
    info_file, manifest = folder / "corpus.json", folder / "manifest.csv"
    if not (info_file.is_file() and manifest.is_file()):
        return False
    info = json.loads(info_file.read_text())
    if info.get("version") != CORPUS_VERSION or info.get("seed") != seed:
        return False
    listed = set(pd.read_csv(manifest, usecols=["clip_id"])["clip_id"])
    specs = clip_specs(size)
    return listed == {s.clip_id for s in specs} and all(_clip_complete(folder, s) for s in specs)


def ensure_demo_corpus(
    corpus: str = RunConfig.corpus,
    seed: int = RunConfig.seed,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """The raw folder of a demo corpus, generated first if missing or incomplete."""
    from wav2kp.paths import CorpusPaths

    size = corpus_size(corpus)
    folder = CorpusPaths(corpus).raw
    if not is_complete(folder, size, seed):
        build_corpus(folder, size=size, seed=seed, workers=workers, progress=progress)
    return folder


# --- command line -------------------------------------------------------------------
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    add_corpus_argument(parser)
    parser.add_argument("--size", choices=sorted(SIZES), help="overrides the size in the name")
    parser.add_argument("--seed", type=int, default=RunConfig.seed)
    add_workers_argument(parser, "generator processes")
    parser.add_argument("--out", help="output folder (default: data/raw/<corpus>)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="then run the face-mesh detector check (detection rate, r(lip gap, jaw))",
    )


def run_cli(args: argparse.Namespace) -> int:
    from wav2kp.paths import CorpusPaths

    size = args.size or corpus_size(args.corpus)
    out = Path(args.out) if args.out else CorpusPaths(args.corpus).raw
    manifest = build_corpus(out, size=size, seed=args.seed, workers=args.workers)
    print(f"{len(manifest)} clips, {manifest['duration'].sum():.1f} s of video in {out}")
    if args.check:
        from wav2kp.demo.validate import validate_corpus

        table, overall = validate_corpus(out)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(
            f"detector check: detection rate {overall['detection_rate']:.3f}, "
            f"r(lip gap, jaw) pooled {overall['r_jaw']:.3f}, "
            f"median per clip {overall['r_jaw_median']:.3f}, errors {overall['errors']}"
        )
        return 0 if overall["errors"] == 0 else 1
    return 0
