"""Benchmark: the vid2vid hand-off on every reference size (before/after), and its cost.

1. Crop: speech predicted onto each real reference video (``../shared/realclips``: the
   224x224 VoxCeleb2 crop, the 512x512 and 700x700 talking heads, the 1920x1080 frame
   with a small face) and onto the demo corpus' notebook-06 reference (when the demo
   corpus and model are built), with ``wav2kp.predict.predict.predict_file``. Each composition
   is exported as before this change (the reference's own frames and pixels,
   ``Canvas.identity``) and as now (``plan_canvas``), and both trees are read back
   through vid2vid's exact test-time crop (``wav2kp.handoff.vid2vid.inspect_tree``): the crop
   box, the frame size, the share of face-edge pixels that reach the generator's edge
   channel (worst frame) and the number of problems are printed.
2. Cost: 10 minutes of speech (1 with ``quick``) over a 10-second reference (250
   synthetic 512x512 jpg frames): CPU seconds and folder size of (a) one copied image
   per output frame (the export before the canvas), (b) the canvas export writing every
   output frame (a JPEG encode each), (c) the canvas export writing each reference
   frame once and hard-linking the repeats; and the CPU seconds of the tree check.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

REAL_REFERENCES = (  # (label, file in ../shared/realclips)
    ("224x224", "pcavs_vox2_Pose_Source_731200067.mp4"),
    ("512x512", "liveportrait_d11.mp4"),
    ("700x700", "retalking_face_1.mp4"),
    ("1920x1080", "eamm_MEAD_M030_sad_3_001.mp4"),
)


def folder_bytes(folder: Path) -> tuple[int, int]:
    """(bytes on disk counting each file once however many links it has, apparent bytes
    summed over every name)."""
    seen, disk, apparent = set(), 0, 0
    for path in Path(folder).rglob("*"):
        if path.is_file():
            stat = path.stat()
            apparent += stat.st_size
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                disk += stat.st_blocks * 512
    return disk, apparent


def _tree_numbers(root: Path) -> dict:
    from wav2kp.handoff import vid2vid

    report = vid2vid.inspect_tree(root)
    seq = report.sequences[0]
    return {
        "frame_size": list(seq.frame_size),
        "crop_box": list(seq.crop_box),
        "crop_fits": seq.crop_fits,
        "face_edge_share_min": seq.face_edge_share_min,
        "face_edge_share_mean": seq.face_edge_share_mean,
        "problems": report.problems,
    }


def crop_before_after(label: str, speech, checkpoint, work: Path, **predict_options) -> dict:
    """Predict onto one reference, then read the export as it was and as it is now."""
    from wav2kp.handoff import vid2vid
    from wav2kp.predict.predict import predict_file

    out = work / label.replace(" ", "_")
    summary = predict_file(speech, checkpoint, out, preview=False, progress=False,
                           **predict_options)  # fmt: skip
    with np.load(out / "keypoints.npz") as data:
        composition = vid2vid.Composition(
            data["landmarks"].astype(np.float64), data["reference_index"], data["reference_missing"]
        )
        size = (int(data["width"]), int(data["height"]))
    # before: keypoints in the reference's pixels beside frames of the reference's size
    # (only the geometry matters to the crop; plain frames stand in for the real ones)
    plain = vid2vid.ReferenceTrack("plain", np.zeros(1), composition.landmarks[:1], size)
    before_root = out / "before_face"
    vid2vid.export_composition(before_root, summary["sequence"], composition, plain,
                               canvas=vid2vid.Canvas.identity(size), steady=False)  # fmt: skip
    return {
        "reference": summary["reference"],
        "reference_size": list(size),
        "frames": summary["frames"],
        "before": _tree_numbers(before_root),
        "after": _tree_numbers(out / vid2vid.EXPORT_DIR),
    }


def _print_crop(label: str, row: dict) -> None:
    for when in ("before", "after"):
        r = row[when]
        print(f"  {label:22s} {when:6s} frame {r['frame_size'][0]}x{r['frame_size'][1]}, "
              f"crop {tuple(r['crop_box'])}, fits {r['crop_fits']}, face edges reaching the "
              f"edge channel {100 * r['face_edge_share_min']:.1f} % (worst frame), "
              f"{len(r['problems'])} problems")  # fmt: skip


def _synthetic_reference(folder: Path, n: int = 250, size: int = 512):
    """A 10 s, 25 fps reference: jpg frames of a drifting texture, a moving, blinking head."""
    import cv2

    from wav2kp.benchmarks.predict import synthetic_face
    from wav2kp.handoff import vid2vid

    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 255, (40, 40, 3)).astype(np.uint8), (size + 64, size + 64),
                         interpolation=cv2.INTER_CUBIC)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    faces = []
    for t in range(n):
        dx, dy = int(16 + 12 * np.sin(t / 20)), int(16 + 8 * np.cos(t / 30))
        cv2.imwrite(str(folder / f"{t:05d}.jpg"), texture[dy : dy + size, dx : dx + size])
        faces.append(synthetic_face(center=(size / 2 + dx, size / 2 + 10 + dy), width=0.55 * size,
                                    eye_open=0.1 if t % 90 < 3 else 1.0))  # fmt: skip
    return vid2vid.ReferenceTrack("synthetic10s", np.arange(n) / 25.0, np.stack(faces).astype(float),
                                  (size, size), sorted(folder.glob("*.jpg")))  # fmt: skip


def _export_copying_each_frame(root: Path, seq: str, points, paths) -> None:
    """The export before the canvas: keypoint file + a copy of the reference jpg per frame."""
    from wav2kp.atomic import atomic_path, write_text
    from wav2kp.handoff import vid2vid

    kp_dir, img_dir = (d / seq for d in vid2vid.keypoint_dirs(root))
    kp_dir.mkdir(parents=True)
    img_dir.mkdir(parents=True)
    for i, (lm, source) in enumerate(zip(points, paths, strict=True)):
        write_text(kp_dir / f"{i:05d}.txt", vid2vid.keypoint_text(lm))
        with atomic_path(img_dir / f"{i:05d}.jpg") as tmp:
            shutil.copyfile(source, tmp)


def export_cost(work: Path, minutes: float) -> dict:
    from wav2kp.benchmarks.predict import synthetic_face
    from wav2kp.handoff import vid2vid

    reference = _synthetic_reference(work / "reference")
    fps = 30000 / 1001
    n_out = int(minutes * 60 * fps)
    mouth = 0.06 * np.abs(np.sin(np.arange(n_out) / 4.0))
    predicted = np.stack([synthetic_face(mouth_open=m) for m in mouth])
    composition = vid2vid.compose_on_reference(predicted, reference, fps=fps)
    canvas = vid2vid.plan_canvas(composition.landmarks[0], reference.size)
    paths = [reference.frame_paths[i] for i in composition.reference_index]
    rows = {}

    def measure(name, export):
        root = work / f"{name}_face"
        start = time.process_time()
        export(root)
        seconds = time.process_time() - start
        disk, apparent = folder_bytes(vid2vid.keypoint_dirs(root)[1])
        rows[name] = {"cpu_seconds": seconds, "image_bytes_on_disk": disk,
                      "image_bytes_apparent": apparent}  # fmt: skip
        return root

    measure("copy_per_frame", lambda root: _export_copying_each_frame(
        root, "seq", np.rint(composition.landmarks), paths))  # fmt: skip
    measure("canvas_encode_per_frame", lambda root: vid2vid.export_sequence(
        root, "seq", canvas.to_export(composition.landmarks),
        lambda i: canvas.warp(reference.image(int(composition.reference_index[i])))))  # fmt: skip
    root = measure("canvas_once_and_links", lambda root: vid2vid.export_composition(
        root, "seq", composition, reference, canvas=canvas))  # fmt: skip
    start = time.process_time()
    problems = vid2vid.check_vid2vid_tree(root)
    rows["check_cpu_seconds"] = time.process_time() - start
    rows["check_problems"] = problems
    rows["output_frames"] = n_out
    rows["reference_frames"] = reference.n_frames
    rows["distinct_images"] = len({os.stat(p).st_ino for p in
                                   (vid2vid.keypoint_dirs(root)[1] / "seq").glob("*.jpg")})  # fmt: skip
    return rows


def run(quick: bool = False) -> dict:
    from wav2kp.benchmarks.predict import _default_checkpoint, speech_sample, tiny_checkpoint
    from wav2kp.paths import shared_realclips

    out: dict = {"crop": {}}
    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-handoff-") as tmp:
        work = Path(tmp)
        checkpoint = _default_checkpoint() or tiny_checkpoint(work / "model", epochs=1)
        realclips = shared_realclips()
        speech = realclips / "sadtalker_RD_Radio31_000.wav"
        if not speech.is_file():
            import soundfile as sf

            speech = work / "speech.wav"
            sf.write(speech, speech_sample(8.0, seed=3), 16000)
        print("crop of vid2vid's test-time path, before (reference frames as they are) and "
              "after (plan_canvas):")  # fmt: skip
        for label, name in REAL_REFERENCES:
            video = realclips / name
            if not video.is_file():
                print(f"  {label}: {video} not available, skipped")
                continue
            row = crop_before_after(label, speech, checkpoint, work, reference=video)
            _print_crop(f"{label} ({name.split('_')[0]})", row)
            out["crop"][label] = row
        try:
            from wav2kp.predict.references import choose_handoff_clips

            clips = choose_handoff_clips("demo", seed=0)
        except (FileNotFoundError, ValueError) as error:
            print(f"  notebook 06 demo hand-off: skipped ({error})")
        else:
            row = crop_before_after(
                "demo notebook 06", clips.speech_audio, checkpoint, work,
                reference=clips.reference_npz, corpus="demo", speaker=clips.speaker,
                sequence=clips.speech_clip,
            )  # fmt: skip
            _print_crop(f"demo nb06 ({clips.speech_clip})", row)
            out["crop"]["demo notebook 06"] = row
        minutes = 1.0 if quick else 10.0
        cost = export_cost(work / "cost", minutes)
        print(f"export of {minutes:g} min of speech ({cost['output_frames']} frames) over a "
              f"10 s reference ({cost['reference_frames']} frames):")  # fmt: skip
        for name in ("copy_per_frame", "canvas_encode_per_frame", "canvas_once_and_links"):
            r = cost[name]
            print(f"  {name:24s} {r['cpu_seconds']:7.1f} CPU s, images "
                  f"{r['image_bytes_on_disk'] / 2**20:7.1f} MiB on disk "
                  f"({r['image_bytes_apparent'] / 2**20:.1f} MiB summed over names)")  # fmt: skip
        ratio = cost["canvas_encode_per_frame"]["cpu_seconds"] / max(
            cost["canvas_once_and_links"]["cpu_seconds"], 1e-9
        )
        print(f"  once + links: {cost['distinct_images']} distinct images, {ratio:.1f}x less CPU "
              f"than an encode per frame; tree check {cost['check_cpu_seconds']:.1f} CPU s, "
              f"{len(cost['check_problems'])} problems")  # fmt: skip
        out["export_cost"] = cost
    return out
