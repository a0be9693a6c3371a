"""Media reading: PyAV (``wav2kp.media``) against the ffmpeg command-line path it replaced
(``ffmpeg -i`` stderr parsed for the probe; ``showinfo`` lines paired with raw rgb24 frames
from a pipe for decoding; ``-af aresample=async=1:first_pts=0`` for the audio), on the same
files in the same run.

Per file: frame count, largest timestamp difference, frames whose pixels differ (and the
largest difference), metadata fields that differ, whether the extracted audio samples are
identical, and CPU and wall milliseconds per decoded frame for each path with their ratio.
Inputs: the demo corpus (``data/raw/demo-tiny`` or ``data/raw/demo``; build it with
``wav2kp demo --corpus demo-tiny``), every video in ``../shared/realclips``, and generated
files: phone video with each display rotation/flip, a MPEG-TS whose audio starts before
its video, AVI with B-frames, Matroska, WebM. Then decoding beside its real consumer:
every frame of the realclips mp4s handed to the MediaPipe face mesh, both paths (wall
time there is what extraction sees). ``--quick``: three demo clips, two realclips, one
tracked clip, no repeats. Wall clock on a busy machine favours the path with more
threads; CPU seconds (this process and its ffmpeg children) are the robust measure.

The reference functions below (``cli_probe``, ``cli_frames``, ``cli_audio``) are the
previous implementation, kept here only to be measured against.
"""

from __future__ import annotations

import os
import queue
import re
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# ------------------------------------------------------------- the ffmpeg CLI reference


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


_SHOWINFO = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+).*?pts_time:(\S+).*?\bs:(\d+)x(\d+)")


def cli_frames(path: str | os.PathLike) -> Iterator[tuple[float, np.ndarray]]:
    """(time, rgb) per frame: ``showinfo`` pts_time lines read by a thread, paired with
    raw rgb24 frames from ffmpeg's stdout (the previous ``media.decode.iter_frames``)."""
    cmd = [
        _ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "info", "-threads", "0",
        "-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", "showinfo=checksum=0", "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    info: queue.Queue = queue.Queue()

    def read_stderr() -> None:
        for raw in proc.stderr:
            m = _SHOWINFO.search(raw.decode("utf-8", errors="replace"))
            if m:
                info.put((m.group(2), int(m.group(3)), int(m.group(4))))
        info.put(None)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    previous = None
    try:
        while (item := info.get()) is not None:
            pts, width, height = item
            buf = proc.stdout.read(width * height * 3)
            if len(buf) < width * height * 3:
                break
            try:
                t = float(pts)
            except ValueError:  # NOPTS
                t = 0.0 if previous is None else previous + 0.04
            previous = t
            yield t, np.frombuffer(buf, np.uint8).reshape(height, width, 3)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def cli_probe(path: str | os.PathLike) -> dict:
    """The fields the previous probe parsed from ``ffmpeg -i`` stderr."""
    text = subprocess.run(
        [_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True, text=True, errors="replace",
    ).stderr  # fmt: skip
    out: dict = {}
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    out["duration"] = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    lines = text.splitlines()
    video = next((i for i, s in enumerate(lines) if re.search(r"Stream #.*: Video:", s)), None)
    audio = next((s for s in lines if re.search(r"Stream #.*: Audio:", s)), None)
    out["has_video"], out["has_audio"] = video is not None, audio is not None
    if video is not None:
        desc = lines[video].split("Video:", 1)[1]
        out["video_codec"] = desc.strip().split()[0].rstrip(",")
        size = re.search(r"[ ,](\d{1,5})x(\d{1,5})[ ,\[]", desc + " ")
        width, height = int(size[1]), int(size[2])
        rate = re.search(r"(\d+(?:\.\d+)?)k? fps", desc) or re.search(
            r"(\d+(?:\.\d+)?)k? tbr", desc
        )
        out["fps"] = float(rate[1]) if rate else None
        tail = "\n".join(lines[video + 1 : video + 8])
        rot = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees", tail)
        turned = bool(rot) and round(float(rot[1])) % 180 != 0
        out["width"], out["height"] = (height, width) if turned else (width, height)
    if audio is not None:
        desc = audio.split("Audio:", 1)[1]
        out["audio_codec"] = desc.strip().split()[0].rstrip(",")
        hz = re.search(r"(\d+) Hz", desc)
        out["audio_sample_rate"] = int(hz[1]) if hz else None
        layouts = {"mono": 1, "stereo": 2, "5.1": 6}
        m = re.search(r"(\d+) channels", desc)
        out["audio_channels"] = (
            int(m[1])
            if m
            else next(
                (n for name, n in layouts.items() if re.search(rf"\b{re.escape(name)}\b", desc)),
                None,
            )
        )
    return out


def cli_audio(path: str | os.PathLike) -> np.ndarray:
    """int16 (n, channels) of ``-map 0:a:0 -af aresample=async=1:first_pts=0``."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-") as tmp:
        wav = Path(tmp) / "a.wav"
        subprocess.run(
            [_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(path),
             "-map", "0:a:0", "-vn", "-af", "aresample=async=1:first_pts=0",
             "-c:a", "pcm_s16le", "-f", "wav", str(wav)],
            check=True, capture_output=True,
        )  # fmt: skip
        return sf.read(str(wav), dtype="int16", always_2d=True)[0]


# ------------------------------------------------------------------------ the inputs


def generated_inputs(folder: Path) -> list[Path]:
    """Containers and metadata the demo corpus and realclips lack (small, 1-2 s each)."""
    ff = _ffmpeg()
    folder.mkdir(parents=True, exist_ok=True)
    src = ["-f", "lavfi", "-i", "testsrc2=size=192x144:rate=25",
           "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100", "-t", "2"]  # fmt: skip
    made = {
        "b_frames.avi": [*src, "-c:v", "mpeg4", "-bf", "2", "-c:a", "pcm_s16le"],
        "h264.mkv": [*src, "-c:v", "libx264", "-c:a", "aac"],
        "vp9.webm": [*src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus"],
        # the audio starts 40 ms before the video, on a clock that does not start at 0
        "offset.ts": ["-f", "lavfi", "-i", "testsrc2=size=192x144:rate=25", "-f", "lavfi",
                      "-i", "sine=frequency=300:sample_rate=48000", "-t", "2",
                      "-af", "adelay=0", "-vf", "setpts=PTS+0.04/TB", "-c:v", "libx264",
                      "-c:a", "aac", "-output_ts_offset", "10"],
    }  # fmt: skip
    paths = []
    for name, args in made.items():
        out = folder / name
        subprocess.run([ff, "-loglevel", "error", "-y", *args, str(out)], check=True)
        paths.append(out)
    base = folder / "portrait.mp4"
    subprocess.run([ff, "-loglevel", "error", "-y", *src, "-c:v", "libx264", "-c:a", "aac",
                    str(base)], check=True)  # fmt: skip
    for name, flags in {
        "rotate90": ["-display_rotation", "90"],
        "rotate-90": ["-display_rotation", "-90"],
        "rotate180": ["-display_rotation", "180"],
        "rotate90_hflip": ["-display_rotation", "90", "-display_hflip"],
        "rotate-90_hflip": ["-display_rotation", "-90", "-display_hflip"],
        "hflip": ["-display_hflip"],
        "vflip": ["-display_vflip"],
    }.items():
        out = folder / f"{name}.mp4"
        subprocess.run([ff, "-loglevel", "error", "-y", *flags, "-i", str(base), "-c", "copy",
                        str(out)], check=True)  # fmt: skip
        paths.append(out)
    return paths


def _inputs(quick: bool, folder: Path) -> dict[str, list[Path]]:
    from wav2kp.paths import CorpusPaths, shared_realclips

    groups: dict[str, list[Path]] = {}
    for corpus in ("demo-tiny", "demo"):
        raw = CorpusPaths(corpus).raw
        clips = sorted(raw.glob("*.mp4")) if raw.is_dir() else []
        if clips:
            groups[f"demo corpus ({corpus})"] = clips[:3] if quick else clips
            break
    real = shared_realclips()
    if real.is_dir():
        videos = [p for p in sorted(real.iterdir()) if p.suffix in (".mp4", ".mpg")]
        groups["realclips"] = videos[:2] if quick else videos
    groups["generated"] = generated_inputs(folder)
    return groups


# ------------------------------------------------------------------------ measuring


def _cpu() -> float:
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(frames_fn, repeats: int) -> tuple[float, float, int]:
    cpu, wall, count = 0.0, 0.0, 0
    for _ in range(repeats):
        c0, w0 = _cpu(), time.perf_counter()
        for _ in frames_fn():
            count += 1
        cpu += _cpu() - c0
        wall += time.perf_counter() - w0
    return cpu, wall, count


def compare_file(path: Path, repeats: int = 2) -> dict:
    """Timestamps, pixels, metadata and audio of both paths, and their speed."""
    from wav2kp.media.decode import decode_audio, iter_frames
    from wav2kp.media.probe import probe

    row: dict = {"file": path.name}
    dt, differing, worst, n = 0.0, 0, 0, 0
    first_diff = None
    for (t_cli, a_cli), (t_av, a_av) in zip(cli_frames(path), iter_frames(path), strict=True):
        dt = max(dt, abs(t_cli - t_av))
        if a_cli.shape != a_av.shape:
            differing += 1
            worst = 255
        else:
            d = int(np.abs(a_cli.astype(np.int16) - a_av).max())
            if d:
                differing += 1
                worst = max(worst, d)
                first_diff = n if first_diff is None else first_diff
        n += 1
    row.update(frames=n, max_dt_s=dt, frames_differing=differing, max_pixel_diff=worst)
    info, old = probe(path).as_dict(), cli_probe(path)
    row["metadata_differs"] = {
        k: (v, info[k])
        for k, v in old.items()
        if not (v == info[k] or (isinstance(v, float) and info[k] and abs(v - info[k]) < 0.011))
    }
    if info["has_audio"]:
        new = decode_audio(path, "s16")[0]
        ref = cli_audio(path)
        same = new.shape == ref.shape and bool((new == ref).all())
        row["audio_identical"] = same
        if not same:
            row["audio_samples"] = (len(ref), len(new))
    # speed: the two paths alternate, each ``repeats`` times, in the same process
    cli_cpu = av_cpu = cli_wall = av_wall = 0.0
    for _ in range(repeats):
        c, w, _ = _timed(lambda: cli_frames(path), 1)
        cli_cpu, cli_wall = cli_cpu + c, cli_wall + w
        c, w, _ = _timed(lambda: iter_frames(path), 1)
        av_cpu, av_wall = av_cpu + c, av_wall + w
    total = max(1, n * repeats)
    row.update(
        cli_cpu_ms=1e3 * cli_cpu / total,
        pyav_cpu_ms=1e3 * av_cpu / total,
        cli_wall_ms=1e3 * cli_wall / total,
        pyav_wall_ms=1e3 * av_wall / total,
    )
    return row


def tracking_speed(paths: list[Path], repeats: int) -> dict:
    """Decoding beside its real consumer: each frame handed to the MediaPipe face mesh (as
    extraction does), CLI path against PyAV, alternating, in this process. Returns CPU and
    wall ms per frame of each, and the same-frame check that both fed identical pixels."""
    from wav2kp.extraction.facemesh import FaceMeshTracker
    from wav2kp.media.decode import iter_frames

    totals = {"cli": [0.0, 0.0], "pyav": [0.0, 0.0]}
    frames = 0
    same = True
    for path in paths:
        for _ in range(repeats):
            found = {}
            for name, source in (("cli", cli_frames), ("pyav", iter_frames)):
                with FaceMeshTracker(static=False) as tracker:
                    c0, w0 = _cpu(), time.perf_counter()
                    points = [tracker.process(rgb) for _, rgb in source(path)]
                    totals[name][0] += _cpu() - c0
                    totals[name][1] += time.perf_counter() - w0
                found[name] = points
            frames += len(found["cli"])
            same &= all(
                (a is None and b is None) or (a is not None and b is not None and (a == b).all())
                for a, b in zip(found["cli"], found["pyav"], strict=True)
            )
    result = {"frames": frames, "identical_keypoints": bool(same)}
    for name, (cpu, wall) in totals.items():
        result[f"{name}_cpu_ms"] = 1e3 * cpu / max(1, frames)
        result[f"{name}_wall_ms"] = 1e3 * wall / max(1, frames)
    result["cpu_ratio_pyav_vs_cli"] = result["pyav_cpu_ms"] / result["cli_cpu_ms"]
    result["wall_ratio_pyav_vs_cli"] = result["pyav_wall_ms"] / result["cli_wall_ms"]
    return result


def run(quick: bool = False) -> dict:
    repeats = 1 if quick else 3
    results: dict = {"repeats": repeats, "load_before": os.getloadavg()[0], "groups": {}}
    with tempfile.TemporaryDirectory(prefix="wav2kp-bench-media-") as tmp:
        groups = _inputs(quick, Path(tmp) / "generated")
        header = (
            f"{'file':44s} {'frames':>6s} {'max|dt| s':>9s} {'px diff':>8s} "
            f"{'CPU ms/frame cli  pyav  ratio':>30s} {'wall ms/frame cli  pyav  ratio':>31s}"
        )
        for group, paths in groups.items():
            print(f"\n-- {group}: {len(paths)} files\n{header}", flush=True)
            rows = []
            for path in paths:
                row = compare_file(path, repeats)
                rows.append(row)
                px = f"{row['frames_differing']}/{row['max_pixel_diff']}"
                print(
                    f"{row['file'][:44]:44s} {row['frames']:6d} {row['max_dt_s']:9.1e} {px:>8s} "
                    f"{row['cli_cpu_ms']:15.2f} {row['pyav_cpu_ms']:5.2f} "
                    f"{row['pyav_cpu_ms'] / row['cli_cpu_ms']:6.2f} "
                    f"{row['cli_wall_ms']:16.2f} {row['pyav_wall_ms']:5.2f} "
                    f"{row['pyav_wall_ms'] / row['cli_wall_ms']:6.2f}",
                    flush=True,
                )
                notes = []
                if row["metadata_differs"]:
                    notes.append(f"metadata (cli, pyav): {row['metadata_differs']}")
                if row.get("audio_identical") is False:
                    notes.append(f"audio differs, samples (cli, pyav) {row['audio_samples']}")
                for note in notes:
                    print(f"    {note}", flush=True)
            frames = sum(r["frames"] for r in rows)
            summary = {
                "files": len(rows),
                "frames": frames,
                "max_dt_s": max(r["max_dt_s"] for r in rows),
                "files_with_pixel_differences": sum(r["frames_differing"] > 0 for r in rows),
                "files_with_metadata_differences": sum(bool(r["metadata_differs"]) for r in rows),
                "files_with_audio_differences": sum(
                    r.get("audio_identical") is False for r in rows
                ),
            }
            for key in ("cli_cpu_ms", "pyav_cpu_ms", "cli_wall_ms", "pyav_wall_ms"):
                summary[key] = sum(r[key] * r["frames"] for r in rows) / max(1, frames)
            summary["cpu_ratio_pyav_vs_cli"] = summary["pyav_cpu_ms"] / summary["cli_cpu_ms"]
            summary["wall_ratio_pyav_vs_cli"] = summary["pyav_wall_ms"] / summary["cli_wall_ms"]
            print(
                f"{group}: {frames} frames; largest |dt| {summary['max_dt_s']:.1e} s; files with "
                f"pixel differences {summary['files_with_pixel_differences']}, metadata "
                f"differences {summary['files_with_metadata_differences']}, audio differences "
                f"{summary['files_with_audio_differences']}; CPU ms/frame cli "
                f"{summary['cli_cpu_ms']:.2f} pyav {summary['pyav_cpu_ms']:.2f} "
                f"(ratio {summary['cpu_ratio_pyav_vs_cli']:.2f}); wall ratio "
                f"{summary['wall_ratio_pyav_vs_cli']:.2f}",
                flush=True,
            )
            results["groups"][group] = {"summary": summary, "files": rows}
        tracked = [p for p in groups.get("realclips", []) if p.suffix == ".mp4"]
        tracked = tracked[:1] if quick else tracked
        if tracked:
            speed = tracking_speed(tracked, 1)
            results["decode_and_track"] = speed
            print(
                f"\n-- decoding beside the face mesh ({len(tracked)} realclips, "
                f"{speed['frames']} frames): CPU ms/frame cli {speed['cli_cpu_ms']:.1f} pyav "
                f"{speed['pyav_cpu_ms']:.1f} (ratio {speed['cpu_ratio_pyav_vs_cli']:.2f}); "
                f"wall ms/frame cli {speed['cli_wall_ms']:.1f} pyav {speed['pyav_wall_ms']:.1f} "
                f"(ratio {speed['wall_ratio_pyav_vs_cli']:.2f}); identical keypoints: "
                f"{speed['identical_keypoints']}",
                flush=True,
            )
    results["load_after"] = os.getloadavg()[0]
    print(
        f"\nload average before/after: {results['load_before']:.1f} / {results['load_after']:.1f}"
    )
    return results
