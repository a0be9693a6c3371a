"""Benchmark: ``wav2kp predict`` real-time factors and output size on this machine.

``wav2kp bench predict``: a 10-minute speech file (1 minute with ``--quick``) without the
preview, with the whole preview and with ``preview_seconds``; CPU seconds (the process and
its ffmpeg children) beside wall seconds; the output folder's size on disk; and the
per-file cost of 3-second files predicted one per call against eight in one call (the
start-up paid once); and the cost of a reference video not seen before (one loop of a
long one extracted, against the whole). Targets (issue 11): >= 50x real time without the preview, >= 10x
with it.

Also home of the synthetic speaker used by the hand-off tests (a 68-point face whose
mouth follows the speech loudness), so tests and benchmark share one definition.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SENTENCES = (
    "Eu vou ao mercado amanhã de manhã.",
    "O gato dorme no sofá da sala.",
    "Hoje o céu está muito azul e bonito.",
    "Ela comprou pão, queijo e frutas frescas.",
    "Nós vamos viajar para a praia no verão.",
    "Meu irmão toca violão todas as noites.",
)


# --------------------------------------------------------------------------- synthetic data


def synthetic_face(
    center=(256.0, 256.0),
    width: float = 200.0,
    mouth_open: float = 0.0,
    eye_open: float = 1.0,
    angle: float = 0.0,
) -> np.ndarray:
    """(68, 2) float32 face in iBUG/dlib order and image coordinates: ``width`` pixels
    from jaw point 0 to 16, ``mouth_open`` in face widths (lower lip and chin drop),
    ``eye_open`` 0 (closed) .. 1, rotated by ``angle`` radians about the centre."""
    p = np.zeros((68, 2))
    t = np.linspace(0, np.pi, 17)
    p[:17] = np.c_[0.5 - 0.5 * np.cos(t), 0.2 + 0.8 * np.sin(t)]
    p[8, 1] += mouth_open * 0.6
    p[5:12, 1] += mouth_open * 0.4 * np.sin(t[5:12])
    bx = np.linspace(0.1, 0.42, 5)
    p[17:22] = np.c_[bx, 0.1 - 0.04 * np.sin(np.linspace(0, np.pi, 5))]
    p[22:27] = np.c_[1 - bx[::-1], p[17:22, 1][::-1]]
    p[27:31] = np.c_[np.full(4, 0.5), np.linspace(0.22, 0.55, 4)]
    p[31:36] = np.c_[np.linspace(0.4, 0.6, 5), [0.6, 0.62, 0.63, 0.62, 0.6]]
    h = 0.035 * eye_open
    for start, cx in ((36, 0.3), (42, 0.7)):
        xs = cx + np.array([-0.08, -0.03, 0.03, 0.08, 0.03, -0.03])
        ys = 0.25 + np.array([0, -h, -h, 0, h, h])
        p[start : start + 6] = np.c_[xs, ys]
    outer_x = 0.5 + np.array([-0.16, -0.1, -0.04, 0, 0.04, 0.1, 0.16, 0.1, 0.04, 0, -0.04, -0.1])
    outer_y = 0.78 + np.array(
        [0, -0.03, -0.045, -0.04, -0.045, -0.03, 0, 0.04, 0.055, 0.06, 0.055, 0.04]
    )
    outer_y[7:12] += mouth_open
    p[48:60] = np.c_[outer_x, outer_y]
    inner_x = 0.5 + np.array([-0.12, -0.05, 0, 0.05, 0.12, 0.05, 0, -0.05])
    inner_y = 0.78 + np.array([0, -0.01, -0.012, -0.01, 0, 0.01, 0.012, 0.01])
    inner_y[5:8] += mouth_open
    p[60:68] = np.c_[inner_x, inner_y]
    p = (p - 0.5) * width
    c, s = np.cos(angle), np.sin(angle)
    p = p @ np.array([[c, s], [-s, c]])
    return (p + np.asarray(center)).astype(np.float32)


def speech_sample(seconds: float, seed: int = 0, sample_rate: int = 16000) -> np.ndarray:
    """About ``seconds`` of speech: espeak-ng sentences (``wav2kp.demo.tts``) when present,
    else syllable-like voiced bursts; mono float32 at ``sample_rate``."""
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    total = 0
    try:
        from wav2kp.demo.tts import synthesize
        from wav2kp.media.audio import resample

        while total < seconds * sample_rate:
            speech = synthesize(SENTENCES[int(rng.integers(len(SENTENCES)))])
            audio = resample(speech.audio, speech.sample_rate, sample_rate)
            pieces += [audio, np.zeros(int(0.25 * sample_rate), np.float32)]
            total += len(audio) + int(0.25 * sample_rate)
    except (ImportError, OSError, RuntimeError):
        pieces, total = [], 0
        while total < seconds * sample_rate:
            n = int(rng.uniform(0.12, 0.3) * sample_rate)
            t = np.arange(n) / sample_rate
            f0 = rng.uniform(100, 180)
            voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
            burst = (0.3 * np.sin(np.pi * t / t[-1]) * voiced).astype(np.float32)
            gap = np.zeros(int(rng.uniform(0.03, 0.15) * sample_rate), np.float32)
            pieces += [burst, gap]
            total += n + len(gap)
    return np.concatenate(pieces)[: int(seconds * sample_rate)].astype(np.float32)


def loudness_track(samples: np.ndarray, sample_rate: int, times: np.ndarray) -> np.ndarray:
    """Smoothed RMS loudness (0..1) at ``times``: how far the synthetic mouth opens."""
    step = int(0.01 * sample_rate)
    n = len(samples) // step
    rms = np.sqrt((samples[: n * step].reshape(n, step) ** 2).mean(axis=1))
    rms = np.convolve(rms, np.ones(5) / 5, mode="same")
    rms = rms / max(rms.max(), 1e-9)
    return np.interp(times, (np.arange(n) + 0.5) * step / sample_rate, rms)


def synthetic_speaker_clip(seconds: float, seed: int, fps: float = 30000 / 1001):
    """(samples, sample_rate, frame_times, landmarks (T, 68, 2)): a speaker whose mouth
    opening follows the speech loudness, with a slowly moving head."""
    sample_rate = 16000
    samples = speech_sample(seconds, seed, sample_rate)
    times = np.arange(int(len(samples) / sample_rate * fps)) / fps
    opening = 0.1 * loudness_track(samples, sample_rate, times)
    landmarks = np.stack(
        [
            synthetic_face(
                center=(256 + 10 * np.sin(t + seed), 256 + 5 * np.cos(0.7 * t)),
                mouth_open=m,
                angle=0.05 * np.sin(0.5 * t + seed),
            )
            for t, m in zip(times, opening, strict=True)
        ]
    )
    return samples, sample_rate, times, landmarks


def tiny_checkpoint(
    out_dir: str | Path,
    epochs: int = 4,
    seconds: float = 4.0,
    seed: int = 0,
    emotions: Sequence[str] = (),
):
    """Train the default architecture (small) on synthetic speakers; returns best.pt.
    ``emotions``: labels given to the clips in turn (a model conditioned on them).

    Uses the real training path (``wav2kp.training.train.train_model``) with the inference context
    a checkpoint must carry (normaliser, feature config and stats)."""
    from wav2kp.config import FeatureConfig, TrainConfig
    from wav2kp.features.features import FeatureStats, compute_features
    from wav2kp.training.train import train_model
    from wav2kp.windowing.dataset import make_clip
    from wav2kp.windowing.targets import TargetNormalizer

    out_dir = Path(out_dir)
    best = out_dir / "best.pt"
    if best.is_file():
        return best
    feature_config = FeatureConfig()
    raw = [synthetic_speaker_clip(seconds, seed + k) for k in range(4)]
    features = [compute_features(s, sr, feature_config) for s, sr, _, _ in raw]
    stats = FeatureStats.fit([f for f, _ in features], feature_config)
    normalizer = TargetNormalizer().fit([("synth", lm) for *_, lm in raw])
    clips = [
        make_clip(
            f"synth_{k}",
            times,
            lm,
            np.ones(len(times), bool),
            feats,
            feat_times,
            stats,
            TrainConfig().window_config,
            normalizer,
            speaker="synth",
            emotion=emotions[k % len(emotions)] if emotions else "",
            split="train",
            frame_size=(512, 512),
        )  # fmt: skip
        for k, ((_, _, times, lm), (feats, feat_times)) in enumerate(
            zip(raw, features, strict=True)
        )
    ]
    config = TrainConfig.preset(
        "default", epochs=epochs, batch_size=4, crop_frames=40, seed=seed, device="cpu",
        scheduler="none",  # OneCycleLR fails on a handful of steps (ZeroDivisionError)
        patience=0, model_overrides={"hidden": 32},
    )  # fmt: skip
    context = {
        "normalizer": normalizer.state_dict(),
        "feature_config": feature_config.to_dict(),
        "feature_stats": stats.to_dict(),
    }
    result = train_model(clips[:3], clips[3:], config, out_dir, progress=False, context=context)
    return result.best_checkpoint


# --------------------------------------------------------------------------- benchmark


def _default_checkpoint() -> Path | None:
    """The model ``wav2kp predict`` picks without ``--checkpoint`` (GRID's, else the
    demo's), so the bench times what users run (GRID's reads the phonetic stream)."""
    from wav2kp.predict.errors import PredictError
    from wav2kp.predict.predict import resolve_checkpoint

    try:
        return resolve_checkpoint(None)
    except PredictError:
        return None


def disk_usage(folder: Path) -> int:
    """Bytes on disk under ``folder``, each hard-linked file counted once (like ``du``)."""
    seen, total = set(), 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            stat = os.lstat(os.path.join(root, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def _measure(call) -> tuple[object, dict]:
    """Run ``call()``; wall seconds, this process' CPU seconds and its children's (ffmpeg)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, wall = time.process_time(), time.perf_counter()
    result = call()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return result, {
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "child_cpu_seconds": child,
    }


def _cli(args: list[str], env: dict) -> dict:
    """``wav2kp predict ...`` in a fresh process, as a user runs it."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "wav2kp.cli", "predict", *args]
    done, numbers = _measure(
        lambda: subprocess.run(command, env=env, capture_output=True, text=True)
    )
    if done.returncode != 0:
        raise RuntimeError(f"wav2kp predict failed: {done.stderr.strip()[-500:]}")
    return numbers


def looped_video(video: Path, seconds: float, out: Path) -> Path:
    """``video`` repeated (stream copy) to at least ``seconds``: a long reference."""
    import subprocess

    from wav2kp.media.probe import ffmpeg_exe, probe

    repeats = int(np.ceil(seconds / max(float(probe(video).duration or 1.0), 1e-3)))
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-stream_loop", str(repeats - 1), "-i", str(video), "-c", "copy", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return out


def new_reference_cost(video: Path, speech: Path, checkpoint, tmp: Path, seconds: float) -> dict:
    """The cost of a reference not seen before: ``predict`` on ``speech`` with a
    ``seconds``-long reference video (``video`` repeated), in a fresh data folder, which
    extracts one loop of it (``wav2kp.predict.references.LOOP_SECONDS``); and extracting
    the whole video, as before, for comparison."""
    from wav2kp.predict.predict import predict_file
    from wav2kp.predict.references import LOOP_SECONDS, extract_reference

    long = looped_video(video, seconds, tmp / "long_reference.mp4")
    old_data = os.environ.get("WAV2KP_DATA")
    try:
        os.environ["WAV2KP_DATA"] = str(tmp / "data-new-reference")
        summary, run_numbers = _measure(lambda: predict_file(
            speech, checkpoint, tmp / "out-new-reference", reference=long, preview=False,
            progress=False))  # fmt: skip
        os.environ["WAV2KP_DATA"] = str(tmp / "data-whole-reference")
        _, whole = _measure(lambda: extract_reference(long))
    finally:
        if old_data is None:
            os.environ.pop("WAV2KP_DATA", None)
        else:
            os.environ["WAV2KP_DATA"] = old_data
    extraction = float(summary["reference_extraction_seconds"])
    total = extraction + float(summary["total_seconds"])
    return {
        "reference_seconds": seconds,
        "loop_seconds": LOOP_SECONDS,
        "speech_seconds": summary["audio_seconds"],
        "extraction_one_loop_seconds": extraction,
        "extraction_share": extraction / total,
        "realtime_factor_with_new_reference": summary["audio_seconds"] / total,
        "run_wall_seconds": run_numbers["wall_seconds"],
        "extraction_whole_seconds": whole["wall_seconds"],
        "segment": summary["reference_segment"],
    }


def run(quick: bool = False) -> dict:
    """Real-time factors of ``predict`` on a 10-minute file (1 minute with ``quick``)
    without and with the preview (whole, and limited with ``preview_seconds``), output
    size, and per-file cost of 3-second files one per call vs many in one call.

    Same model, reference and speech in every run: the model ``predict`` picks by default
    when one exists (``make model-grid``'s or the demo's; else a tiny model trained here: the
    same architecture family, smaller), a
    generated demo clip as the reference video (extracted once, cached), and espeak speech
    (a minute of sentences, repeated). Wall seconds on a shared machine are noisy: CPU
    seconds (this process + its ffmpeg children) are printed beside them."""
    import soundfile as sf

    from wav2kp.demo.corpus import clip_specs, make_clip
    from wav2kp.predict.predict import predict_file

    seconds = 60.0 if quick else 600.0
    preview_limit = 20.0 if quick else 60.0
    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-predict-") as tmp:
        tmp = Path(tmp)
        checkpoint = _default_checkpoint()
        model_source = f"predict's default model {checkpoint}"
        if checkpoint is None:
            checkpoint = tiny_checkpoint(tmp / "model", epochs=1)
            model_source = "tiny synthetic model (no default model to predict with)"
        make_clip(clip_specs("tiny")[0], tmp / "reference")
        video = next((tmp / "reference").glob("*.mp4"))
        minute = speech_sample(min(seconds, 60.0), seed=7)
        speech = tmp / "speech.wav"
        sf.write(
            speech, np.tile(minute, int(np.ceil(seconds / 60.0)))[: int(seconds * 16000)], 16000
        )
        short = []
        for k in range(8):
            short.append(tmp / "short" / f"s{k}.wav")
            short[-1].parent.mkdir(exist_ok=True)
            sf.write(short[-1], speech_sample(3.0, seed=20 + k), 16000)
        env = dict(os.environ, WAV2KP_DATA=str(tmp / "data"))
        old_data = os.environ.get("WAV2KP_DATA")
        os.environ["WAV2KP_DATA"] = env["WAV2KP_DATA"]
        try:
            # start-up: model load + reference extraction (cached for every later run)
            _, startup = _measure(lambda: predict_file(
                short[0], checkpoint, tmp / "warm", reference=video, preview=False,
                progress=False))  # fmt: skip
            runs = {}
            for name, options in (
                ("without_preview", {"preview": False}),
                ("with_preview", {"preview": True}),
                (f"with_preview_{preview_limit:.0f}s", {"preview": True, "preview_seconds": preview_limit}),
            ):  # fmt: skip
                out = tmp / f"out_{name}"
                summary, numbers = _measure(lambda o=out, kw=options: predict_file(
                    speech, checkpoint, o, reference=video, progress=False, **kw))  # fmt: skip
                numbers["output_mb"] = disk_usage(out) / 1e6
                numbers["stages"] = summary.get("seconds", {})
                numbers["stages_cpu"] = summary.get("cpu_seconds", {})
                runs[name] = numbers
            base = ["--checkpoint", str(checkpoint), "--reference", str(video)]
            single = [
                _cli([str(f), *base, "--out", str(tmp / "one" / f.stem)], env) for f in short[:3]
            ]
            batch = _cli([*map(str, short), *base, "--out", str(tmp / "batch")], env)
            new_reference = new_reference_cost(video, short[0], checkpoint, tmp,
                                               20.0 if quick else 60.0)  # fmt: skip
        finally:
            if old_data is None:
                os.environ.pop("WAV2KP_DATA", None)
            else:
                os.environ["WAV2KP_DATA"] = old_data
    duration = summary["audio_seconds"]
    out = {
        "audio_seconds": duration,
        "frames": summary["frames"],
        "model": model_source,
        "reference": summary["reference"],
        "startup": startup,
        "runs": runs,
        "short_file_seconds": 3.0,
        "single_call_per_file": {k: float(np.mean([s[k] for s in single])) for k in single[0]},
        "batch_per_file": {k: v / len(short) for k, v in batch.items()},
        "new_reference": new_reference,
    }
    print(f"predict on {duration:.0f} s of speech ({out['frames']} frames), {model_source}, "
          f"reference: {out['reference']}")  # fmt: skip
    print(f"  start-up (model load + reference extraction, once): {startup['wall_seconds']:.1f} s "
          f"wall, {startup['cpu_seconds'] + startup['child_cpu_seconds']:.1f} s CPU")  # fmt: skip
    print(f"  {'run':<24}{'wall s':>8}{'CPU s':>8}{'RT wall':>9}{'RT CPU':>8}{'output MB':>11}")
    for name, n in runs.items():
        cpu = n["cpu_seconds"] + n["child_cpu_seconds"]
        print(f"  {name:<24}{n['wall_seconds']:8.1f}{cpu:8.1f}{duration / n['wall_seconds']:8.1f}x"
              f"{duration / cpu:7.1f}x{n['output_mb']:11.1f}")  # fmt: skip
        n["realtime_factor_wall"] = duration / n["wall_seconds"]
        n["realtime_factor_cpu"] = duration / cpu
        stages = ", ".join(
            f"{k} {v:.1f}/{n['stages_cpu'].get(k, float('nan')):.1f}"
            for k, v in n["stages"].items()
        )
        print(f"    stages (wall/CPU s, CPU without ffmpeg): {stages}")
    one, many = out["single_call_per_file"], out["batch_per_file"]
    print(f"  3 s files, one per call: {one['wall_seconds']:.1f} s wall / "
          f"{one['cpu_seconds'] + one['child_cpu_seconds']:.1f} s CPU per file; "
          f"{len(short)} in one call: {many['wall_seconds']:.1f} s wall / "
          f"{many['cpu_seconds'] + many['child_cpu_seconds']:.1f} s CPU per file "
          f"({one['wall_seconds'] / many['wall_seconds']:.1f}x faster per file)")  # fmt: skip
    n = new_reference
    print(f"  a new {n['reference_seconds']:.0f} s reference video, {n['speech_seconds']:.0f} s of "
          f"speech: extracting one loop ({n['loop_seconds']:g} s) took "
          f"{n['extraction_one_loop_seconds']:.1f} s, {100 * n['extraction_share']:.0f} % of the "
          f"run ({n['realtime_factor_with_new_reference']:.2f}x real time); the whole video "
          f"would take {n['extraction_whole_seconds']:.1f} s")  # fmt: skip
    return out
