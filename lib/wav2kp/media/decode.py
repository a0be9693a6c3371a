"""Decode video frames and audio through PyAV (libav* in process; no pipes, no text).

Each frame comes with its presentation time from the container (``frame.pts`` times the
stream's time base), so variable-frame-rate clips keep their timing. Times are seconds on
the container's timeline shifted to start at 0 (the earliest start of any stream), the
same origin the extracted audio is placed on. Frames are converted to RGB by libswscale
exactly as ``ffmpeg -pix_fmt rgb24`` converts them (bit for bit, see
``wav2kp bench media``), and turned upright by the same rule as ffmpeg's autorotate.

``iter_frames(..., max_side=N)`` decodes at reduced resolution (long side at most N);
``FrameScale.to_source`` maps points found in those frames back to full-resolution pixels.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from wav2kp.atomic import atomic_path
from wav2kp.media.probe import (
    MediaError,
    MediaInfo,
    display_matrix,
    first_video_stream,
    open_container,
    probe,
    upright_ops,
)

# libswscale's area averaging: the anti-aliased choice for shrinking (no moiré on fine
# texture such as beard or hair, which bilinear sampling would alias)
DOWNSCALE_INTERPOLATION = "AREA"
# Sources with full-resolution chroma (4:4:4) shrink through planar RGB: libswscale's
# packed rgb24 writer is far slower there (the decode column of ``wav2kp bench
# extraction`` on the 4:4:4 1080p real clip), for the same pixels to within one level
# (tests/test_media_read.py). Subsampled chroma (4:2:0) stays on rgb24: no faster there.
PLANAR_DOWNSCALE_SOURCES = frozenset({"yuv444p", "yuvj444p"})
READ_AHEAD_FRAMES = 3  # frames waiting between stages (memory: 3 decoded + 3 RGB frames)


@dataclass
class DecodeLog:
    """What went wrong while decoding; filled as frames are decoded."""

    lines: list[str] = field(default_factory=list)
    returncode: int | None = None  # 0 decoded to the end, 1 decoding stopped on an error
    scale: FrameScale | None = None  # set before the first frame is yielded

    def errors(self) -> list[str]:
        """The complaints (undecodable packets, a stream that ends early), one line each."""
        return [line[:200] for line in self.lines]

    def last_error(self) -> str:
        errors = self.errors()
        return errors[-1] if errors else ""


@dataclass(frozen=True)
class FrameScale:
    """Size of the decoded (upright) frames against the source's full displayed size.

    Points found in a decoded frame, in pixels with 0 at the left/top image edge (as
    MediaPipe's normalised coordinates times width/height are), map back to full
    resolution by ``to_source``: x times ``x``, y times ``y``. The two factors differ
    slightly when the reduced size is rounded to whole pixels."""

    width: int
    height: int
    source_width: int
    source_height: int

    @property
    def x(self) -> float:
        return self.source_width / self.width

    @property
    def y(self) -> float:
        return self.source_height / self.height

    @property
    def is_full(self) -> bool:
        return (self.width, self.height) == (self.source_width, self.source_height)

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) or (..., 3) points in decoded pixels -> full-resolution pixels. A third
        coordinate (MediaPipe's depth, in the scale of x) is scaled like x; NaN stays NaN."""
        points = np.asarray(points)
        factors = np.array([self.x, self.y, self.x][: points.shape[-1]])
        return (points * factors).astype(np.result_type(points.dtype, np.float32))


def frame_scale(
    width: int, height: int, max_side: int | None = None, scale: float | None = None
) -> FrameScale:
    """The decoded size for a source of ``width`` x ``height`` (displayed, upright):
    the long side at most ``max_side`` pixels, or every side times ``scale`` (<= 1);
    never enlarged; sizes rounded to whole pixels (at least 1)."""
    if max_side is not None and scale is not None:
        raise ValueError("give max_side or scale, not both")
    factor = 1.0
    if max_side is not None:
        if int(max_side) < 1:
            raise ValueError(f"max_side must be a positive number of pixels, got {max_side!r}")
        factor = min(1.0, int(max_side) / max(width, height))
    elif scale is not None:
        if not 0 < float(scale) <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale!r}")
        factor = float(scale)
    if factor >= 1.0:
        return FrameScale(width, height, width, height)
    return FrameScale(max(1, round(width * factor)), max(1, round(height * factor)), width, height)


def _upright(rgb: np.ndarray, ops: tuple[str, ...]) -> np.ndarray:
    for op in ops:
        if op == "transpose":
            rgb = rgb.transpose(1, 0, 2)
        elif op == "rot90":
            rgb = np.rot90(rgb, 1)
        elif op == "rot270":
            rgb = np.rot90(rgb, -1)
        elif op == "hflip":
            rgb = rgb[:, ::-1]
        elif op == "vflip":
            rgb = rgb[::-1]
    return np.ascontiguousarray(rgb) if ops else rgb


_TURNS = ("transpose", "rot90", "rot270")


def _decoded_frames(
    path: Path,
    log: DecodeLog,
    threads: int,
    max_side: int | None,
    scale: float | None,
) -> Iterator[tuple[float, object, tuple[str, ...], FrameScale]]:
    """(time, decoded ``av.VideoFrame``, the steps that turn it upright, its target size)
    for every frame, decoded in this thread."""
    import av

    with open_container(path) as container:
        stream = first_video_stream(container)
        if stream is None:
            raise MediaError(f"{path}: no video stream")
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = int(threads)
        origin = container.start_time / 1e6 if container.start_time is not None else 0.0
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fallback_step = 1.0 / float(rate) if rate else 1.0 / 25.0
        previous: float | None = None
        ops: tuple[str, ...] | None = None
        target: FrameScale | None = None
        count = 0
        log.returncode = 0
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as error:  # damaged container: keep what decoded so far
                log.lines.append(f"demuxing stopped after {count} frames: {_message(error)}")
                log.returncode = 1
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as error:  # one bad packet: skip it, as ffmpeg does
                log.lines.append(f"undecodable packet after frame {count}: {_message(error)}")
                continue
            for frame in frames:
                if frame.pts is not None and time_base is not None:
                    time = float(frame.pts * time_base) - origin
                else:  # no timestamp: continue from the previous frame at the nominal rate
                    time = 0.0 if previous is None else previous + fallback_step
                previous = time
                if ops is None:
                    ops = upright_ops(display_matrix(frame))
                    turned = any(op in _TURNS for op in ops)
                    width, height = (
                        (frame.height, frame.width) if turned else (frame.width, frame.height)
                    )
                    target = frame_scale(width, height, max_side, scale)
                    log.scale = target
                count += 1
                yield time, frame, ops, target
        expected = int(stream.frames or 0)
        if expected and count < expected and log.returncode == 0:
            log.lines.append(
                f"video stream ended after {count} of its {expected} indexed frames "
                "(file cut short?)"
            )


def _to_rgb(decoded: Iterator, threads: int) -> Iterator[tuple[float, np.ndarray]]:
    """(time, upright RGB uint8) of each decoded frame, at its target size."""
    try:
        yield from _converted(decoded, threads)
    finally:
        decoded.close()  # stops the decoding thread when the consumer stops early


def _converted(decoded: Iterator, threads: int) -> Iterator[tuple[float, np.ndarray]]:
    for time, frame, ops, target in decoded:
        turned = any(op in _TURNS for op in ops)
        coded = (target.height, target.width) if turned else (target.width, target.height)
        if target.is_full and (frame.width, frame.height) == coded:
            # = ffmpeg's own rgb24 conversion (libswscale, sliced over threads)
            rgb = frame.to_ndarray(format="rgb24", threads=threads)
        else:
            planar = frame.format.name in PLANAR_DOWNSCALE_SOURCES
            rgb = frame.reformat(
                width=coded[0],
                height=coded[1],
                format="gbrp" if planar else "rgb24",
                interpolation=DOWNSCALE_INTERPOLATION,
                threads=threads,
            ).to_ndarray()  # fmt: skip  (gbrp comes out as (H, W, 3) RGB too)
        yield time, _upright(rgb, ops)


def _message(error: BaseException) -> str:
    return " ".join(str(getattr(error, "strerror", None) or error).split())


def iter_frames(
    path: str | os.PathLike,
    log: DecodeLog | None = None,
    threads: int = 0,
    info: MediaInfo | None = None,
    max_side: int | None = None,
    scale: float | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_seconds, rgb_uint8 (H, W, 3))`` for every frame of the first video
    stream, decoded and converted ahead in background threads (libav releases the GIL)
    while the caller works on the previous frame.

    Frames come out upright (rotation metadata applied as players do). A truncated file
    yields the frames that could be decoded; ``log`` then holds the complaint. Raises
    ``MediaError`` if the file cannot be opened or has no video stream. ``info``: the
    file's probe, if known. ``threads``: decoder threads (0 = libav's choice).

    Reduced resolution (extraction speed): ``max_side=N`` decodes every frame scaled so
    that its long side is at most N pixels (never enlarged), ``scale=f`` scales both
    sides by f <= 1. Shrinking uses area averaging. ``log.scale`` (a :class:`FrameScale`)
    is set before the first frame is yielded; the same value is known up front as
    ``frame_scale(info.width, info.height, max_side, scale)``. Map points found in the
    frames back to full-resolution pixels with ``log.scale.to_source(points)``::

        log = DecodeLog()
        for time, rgb in iter_frames(video, log, max_side=480):
            points.append(tracker.process(rgb))          # pixels of the small frame
        full = log.scale.to_source(np.stack(points))     # pixels of the source video
    """
    path = Path(path)
    log = log if log is not None else DecodeLog()
    info = info or probe(path)
    if not info.has_video:
        raise MediaError(f"{path}: no video stream")
    if max_side is not None or scale is not None:
        frame_scale(info.width or 1, info.height or 1, max_side, scale)  # fail early
    # two stages, each in its own thread, like ffmpeg's decoder and filter threads: the
    # colour conversion of one frame overlaps the decoding of the next
    decoded = _read_ahead(_decoded_frames(path, log, threads, max_side, scale))
    yield from _read_ahead(_to_rgb(decoded, threads))


def _read_ahead(frames: Iterator, depth: int = READ_AHEAD_FRAMES) -> Iterator:
    """Run a generator in a thread, ``depth`` items ahead of the consumer; its exceptions
    surface in the consumer; closing the consumer stops the thread."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            items.put(("error", error))
            return
        finally:
            frames.close()
        items.put(("end", done))

    worker = threading.Thread(target=produce, name="wav2kp-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                items.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def read_frame_times(path: str | os.PathLike) -> np.ndarray:
    """Presentation times (seconds) of every video frame (decoded, not converted to RGB)."""
    path = Path(path)
    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{path}: no video stream")
    times = [item[0] for item in _decoded_frames(path, DecodeLog(), 0, None, None)]
    return np.array(times, dtype=np.float64)


def read_frames_at(path: str | os.PathLike, indices: list[int]) -> dict[int, np.ndarray]:
    """The frames with the given decode indices (0-based), as ``{index: rgb}``; stops
    decoding after the last one wanted."""
    wanted = set(int(i) for i in indices)
    found: dict[int, np.ndarray] = {}
    if not wanted:
        return found
    frames = iter_frames(path)
    for index, (_, rgb) in enumerate(frames):
        if index in wanted:
            found[index] = rgb
        if index >= max(wanted):
            break
    frames.close()
    return found


# ------------------------------------------------------------------------------ audio


def decode_audio(
    path: str | os.PathLike,
    sample_format: str = "s16",
    on_timeline: bool = True,
    info: MediaInfo | None = None,
) -> tuple[np.ndarray, int]:
    """The first audio stream as ``(samples (n, channels), sample_rate)`` at its own rate
    and channel count, in ``sample_format`` ('s16' -> int16, 'flt' -> float32).

    ``on_timeline``: placed on the container timeline like the video frames, so that
    sample 0 is time 0: silence where the stream starts late or has gaps, and clock drift
    absorbed, by libswresample's ``aresample=async=1:first_pts=0`` (as ``ffmpeg -af``
    applies it). Else the decoded samples as they are. Raises ``MediaError`` naming the file.
    """
    import av
    import av.filter

    path = Path(path)
    info = info or probe(path)
    if not info.has_audio:
        raise MediaError(f"{path}: no audio stream")
    chunks: list[np.ndarray] = []
    with open_container(path) as container:
        stream = container.streams.audio[0]
        origin_us = container.start_time if container.start_time is not None else 0
        graph = av.filter.Graph()
        steps = [graph.add_abuffer(template=stream)]
        if on_timeline:
            steps.append(graph.add("aresample", "async=1:first_pts=0"))
        steps.append(graph.add("aformat", f"sample_fmts={sample_format}"))
        steps.append(graph.add("abuffersink"))
        graph.link_nodes(*steps).configure()
        shift, surplus = None, 0  # surplus: of the last frame
        if stream.time_base is not None:
            shift = round(origin_us / 1e6 / stream.time_base)

        def drain() -> None:
            while True:
                try:
                    out = graph.pull()
                except (av.BlockingIOError, av.EOFError):
                    return
                chunks.append(out.to_ndarray().reshape(-1, out.layout.nb_channels))

        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue  # a damaged packet: skip it, as ffmpeg does
                for frame in frames:
                    surplus = _padding(frame, stream.time_base)
                    if frame.pts is not None and shift:
                        frame.pts -= shift
                    graph.push(frame)
                    drain()
        except av.FFmpegError as error:
            if not chunks:
                raise MediaError(f"{path}: cannot decode audio ({_message(error)})") from None
        graph.push(None)
        drain()
        rate = int(stream.codec_context.sample_rate)
    samples = np.concatenate(chunks) if chunks else np.zeros((0, 1), np.int16)
    if surplus:
        samples = samples[: max(0, len(samples) - surplus)]
    if len(samples) == 0:
        raise MediaError(f"{path}: audio stream holds no samples")
    return samples, rate


def _padding(frame, time_base) -> int:
    """Samples of an audio frame beyond its packet's duration: an MP4 edit list ends the
    last AAC frame early this way (encoder padding), and ffmpeg >= 9's demuxer drops them
    (PyAV's libavformat 62 only shortens the packet). Trusted only where timestamps
    resolve single samples (not Matroska's milliseconds)."""
    if not frame.duration or time_base is None or time_base > Fraction(1, frame.sample_rate):
        return 0
    return max(0, frame.samples - round(frame.duration * time_base * frame.sample_rate))


def extract_audio_pcm(
    path: str | os.PathLike, out_wav: str | os.PathLike, info: MediaInfo | None = None
) -> tuple[int, int]:
    """Write the first audio stream as PCM16 wav at its own rate and channel count.

    The audio is placed on the container timeline (silence padded if the stream starts
    late) so that sample 0 is time 0, the same origin as the frame times.
    Returns ``(sample_rate, channels)``; raises ``MediaError`` naming the file.
    """
    import soundfile as sf

    samples, rate = decode_audio(path, "s16", on_timeline=True, info=info)
    with atomic_path(out_wav, suffix=".wav") as tmp:
        sf.write(str(tmp), samples, rate, subtype="PCM_16", format="WAV")
    return rate, int(samples.shape[1])
