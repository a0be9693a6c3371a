"""Benchmark: ``--format face``, faithful and fast (issue 18).

``wav2kp bench face``:

1. **Faithful.** Each reference (GRID clips of speaker 1 and of speaker 2, whom the model
   never heard; never the ``../shared/realclips`` videos, whose README forbids making
   talking videos of the people shown) is driven by real speech: another GRID sentence's measured mouth
   motion, composed onto the reference as ``predict`` composes a prediction, with that
   sentence's audio. ``face.mp4`` is rendered (in a temporary folder, deleted after),
   read back with the project's extractor and compared (``wav2kp.handoff.face.
   face_fidelity``): mouth-opening r and mouth LMD against the points it was rendered
   onto, eyes and brows against the reference track. Targets: r >= 0.95, LMD <= 0.01
   IOD, eyes/brows <= 0.005 IOD; beside it the floor: the same measure on the unwarped
   reference frames encoded and read back alike (re-tracking alone). Rendering speed is measured on one core (one BLAS and
   OpenCV thread, ffmpeg with one thread), encoding included; target >= 25 frames/s at
   512x512 (a GRID speaker-2 clip cropped square and scaled to 512x512).
2. **Fast on long speech.** ``predict`` on a 10-minute speech file (1 minute with
   ``--quick``) with ``--format face`` beside the same run without it (the default
   formats, no preview): wall seconds over the speech's duration (target <= 2).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from wav2kp.paths import shared_realclips

DRIVER = "grid-s1/bbaf5a.mp4"  # whose real mouth motion and audio drive the faces
# Faces are rendered on GRID speakers only (CC BY 4.0, recorded for research): the realclips
# README forbids making talking videos of the people shown there.
GRID_REFERENCES = ("grid-s1/bbaf3s.mp4", "grid-s1/bbal8p.mp4", "grid-s2/bbaf2s.mpg",
                   "grid-s2/bbal5n.mpg")  # fmt: skip
SQUARE_SOURCE = "grid-s2/bbaf4a.mpg"  # 720x576: cropped square, scaled to 512x512


def shared_root() -> Path:
    return shared_realclips().parent


def references() -> list[Path]:
    """The GRID reference videos found under ../shared."""
    return [shared_root() / name for name in GRID_REFERENCES if (shared_root() / name).is_file()]


def square_reference(folder: Path, size: int = 512) -> Path | None:
    """A GRID speaker-2 clip cropped to its centre square and scaled to ``size`` pixels
    (the 512x512 of the speed target), written into ``folder``."""
    import subprocess

    from wav2kp.media.encode import ffmpeg_exe

    source = shared_root() / SQUARE_SOURCE
    if not source.is_file():
        return None
    out = Path(folder) / f"grid-s2-square-{size}.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-vf",
                    f"crop=ih:ih,scale={size}:{size}", "-c:v", "libx264", "-crf", "18",
                    "-c:a", "aac", str(out)], check=True)  # fmt: skip
    return out


def one_core():
    """Limits for a one-core measurement: one BLAS thread and one OpenCV thread."""
    import contextlib

    import cv2
    from threadpoolctl import threadpool_limits

    @contextlib.contextmanager
    def limits():
        before = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            with threadpool_limits(1):
                yield
        finally:
            cv2.setNumThreads(before)

    return limits()


def fidelity(quick: bool = False) -> dict:
    """Per reference: read-back r, LMD, eyes/brows error and frames per second."""
    from wav2kp.handoff import face as face_render
    from wav2kp.handoff import vid2vid
    from wav2kp.media.audio import load_audio
    from wav2kp.predict.references import extract_reference

    driver = shared_root() / DRIVER
    videos = references()
    if not videos or not driver.is_file():
        print(f"  no GRID references under {shared_root()} or driver {driver}: skipped")
        return {}
    if quick:
        videos = videos[-2:]
    results = {}
    driving, _, _ = extract_reference(driver)
    times = driving.times - driving.times[0]
    audio, rate = load_audio(driver, sample_rate=16000)
    print(f"  driven by {driver.name}'s measured mouth and audio ({len(times)} frames)")
    print(f"  {'reference':42s} {'size':>9s} {'fps':>6s} {'r':>6s} {'LMD':>7s} "
          f"{'eyes':>7s} {'floor':>7s} {'frames/s':>8s}")  # fmt: skip
    square_folder = tempfile.TemporaryDirectory(prefix="wav2kp-bench-face-square-")
    square = square_reference(Path(square_folder.name))
    videos = videos + ([square] if square is not None else [])
    for video in videos:
        track, mesh, _ = extract_reference(video)
        composed = vid2vid.compose_on_reference(driving.landmarks, track, out_times=times)
        renderer = face_render.FaceRenderer(track, mesh)
        with tempfile.TemporaryDirectory(prefix="wav2kp-bench-face-") as tmp, one_core():
            numbers = face_render.render_and_measure(
                renderer, times, composed.landmarks, audio, rate, tmp
            )
            plan = renderer.plan(times, composed.landmarks, len(audio) / rate)
            numbers["eyes_brows_floor_iod"] = face_render.tracking_floor(renderer, plan, tmp)
        results[video.name] = numbers
        size = "x".join(str(v) for v in numbers["size"])
        print(f"  {video.name:42s} {size:>9s} {numbers['fps']:6.2f} {numbers['opening_r']:6.3f} "
              f"{numbers['mouth_lmd_iod']:7.4f} {numbers['eyes_brows_iod']:7.4f} "
              f"{numbers['eyes_brows_floor_iod']:7.4f} "
              f"{numbers['frames_per_second']:8.1f}", flush=True)  # fmt: skip
    square_folder.cleanup()
    keys = ("opening_r", "mouth_lmd_iod", "eyes_brows_iod", "eyes_brows_floor_iod")
    mean = {k: float(np.mean([r[k] for r in results.values()])) for k in keys}
    print(f"  mean over {len(results)}: r {mean['opening_r']:.3f} (>= 0.95), LMD "
          f"{mean['mouth_lmd_iod']:.4f} IOD (<= 0.01), eyes/brows {mean['eyes_brows_iod']:.4f} "
          f"IOD (<= 0.005; unwarped floor {mean['eyes_brows_floor_iod']:.4f})")  # fmt: skip
    return {"references": results, "mean": mean}


def long_speech(quick: bool = False) -> dict:
    """``predict`` with and without ``--format face`` on long speech; seconds / duration."""
    import soundfile as sf

    from wav2kp.benchmarks.predict import (
        _default_checkpoint,
        _measure,
        speech_sample,
        tiny_checkpoint,
    )
    from wav2kp.predict.predict import predict_file

    seconds = 60.0 if quick else 600.0
    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-face-long-") as tmp:
        tmp = Path(tmp)
        video = square_reference(tmp)  # 512x512, 25 fps
        if video is None:
            print(f"  no GRID clip {SQUARE_SOURCE} under {shared_root()}: skipped")
            return {}
        checkpoint = _default_checkpoint() or tiny_checkpoint(tmp / "model", epochs=1)
        minute = speech_sample(min(seconds, 60.0), seed=7)
        speech = tmp / "speech.wav"
        samples = np.tile(minute, int(np.ceil(seconds / 60.0)))[: int(seconds * 16000)]
        sf.write(speech, samples, 16000)
        old = os.environ.get("WAV2KP_DATA")
        os.environ["WAV2KP_DATA"] = str(tmp / "data")
        try:
            # start-up first (the reference's extraction, cached): not part of the ratio
            warm = tmp / "warm.wav"
            sf.write(warm, speech_sample(3.0, seed=3), 16000)
            predict_file(warm, checkpoint, tmp / "warm", reference=video, preview=False,
                         progress=False, formats="csv")  # fmt: skip
            runs = {}
            with one_core():
                for name, formats in (
                    ("without_face", None),
                    ("with_face", "vid2vid,npz,csv,face"),
                ):
                    summary, numbers = _measure(lambda f=formats, n=name: predict_file(
                        speech, checkpoint, tmp / n, reference=video, preview=False,
                        progress=False, formats=f))  # fmt: skip
                    numbers["face_seconds"] = summary["seconds"].get("face", 0.0)
                    numbers["ratio_to_duration"] = numbers["wall_seconds"] / seconds
                    runs[name] = numbers
        finally:
            if old is None:
                os.environ.pop("WAV2KP_DATA", None)
            else:
                os.environ["WAV2KP_DATA"] = old
    for name, numbers in runs.items():
        print(f"  predict {name:13s} {seconds / 60:.0f} min speech: {numbers['wall_seconds']:7.1f} s "
              f"wall ({numbers['ratio_to_duration']:.2f}x its duration; target <= 2 with the "
              f"face), {numbers['cpu_seconds']:.1f} s CPU + {numbers['child_cpu_seconds']:.1f} s "
              "ffmpeg")  # fmt: skip
    return {"speech_seconds": seconds, "runs": runs}


def run(quick: bool = False) -> dict:
    print("face fidelity (read back with the project's extractor) and speed, one core:")
    out = {"fidelity": fidelity(quick)}
    print("predict on long speech with and without --format face:")
    out["long_speech"] = long_speech(quick)
    return out
