"""MediaPipe face mesh in tracking mode, following one person through a clip.

``FaceMeshTracker.process(rgb)`` returns the followed face's 478 points in pixels (x, y,
and z in x's pixel scale) or None. With several faces in view it starts on the largest
(or on the one asked for: ``face=2`` is the second from the left) and then keeps the one
nearest to the previous frame's face, so a second person entering the shot does not
steal the track. ``tracker.faces`` counts the faces seen per frame.

``shared_tracker(...)`` hands out one tracker per process and thread, reset between
clips (a reset gives bit-identical results to a new tracker, tested), so a worker that
extracts thousands of clips loads MediaPipe once.

MediaPipe's C++ side writes start-up chatter straight to the process's stderr (absl /
TFLite lines such as "inference_feedback_manager", "Created TensorFlow Lite XNNPACK
delegate", "absl::InitializeLog"). Every call into MediaPipe here runs with file
descriptor 2 captured; known chatter is dropped and everything else is written back, so
real errors still show. ``WAV2KP_MEDIAPIPE_LOGS=1`` shows all of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from types import TracebackType

import numpy as np

from wav2kp.quiet import NOISE

# MediaPipe's C++ side logs through glog/absl; keep its start-up chatter off the console.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FACE_CHOICES = "'largest' or N (the N-th face from the left)"

# Lines MediaPipe/TFLite print on every start that say nothing to a user: the one list of
# known console chatter (the report's kernel filter uses it too).
MEDIAPIPE_CHATTER = NOISE


class _NativeStderrFilter:
    """Captures file descriptor 2 while MediaPipe runs, then writes back the lines that
    are not ``MEDIAPIPE_CHATTER``. Re-entrant and shared by the threads of a process
    (fd 2 is process-wide): the first thread in redirects, the last one out restores."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None
        self._capture = None

    def enabled(self) -> bool:
        return os.environ.get("WAV2KP_MEDIAPIPE_LOGS", "") in ("", "0")

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0 and self.enabled():
                try:
                    if self._capture is None:
                        self._capture = tempfile.TemporaryFile()
                    self._saved = os.dup(2)
                    os.dup2(self._capture.fileno(), 2)
                except OSError:  # no usable stderr (closed): nothing to filter
                    self._saved = None
            self._depth += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth or self._saved is None:
                return
            saved, self._saved = self._saved, None
            os.dup2(saved, 2)
            os.close(saved)
            fd = self._capture.fileno()
            size = os.fstat(fd).st_size
            if not size:
                return
            text = os.pread(fd, size, 0)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not MEDIAPIPE_CHATTER.search(line.decode("utf-8", errors="replace"))
            ]
            if kept:
                with contextlib.suppress(OSError):
                    os.write(2, b"".join(kept))


_native_stderr = _NativeStderrFilter()


def quiet_mediapipe():
    """Context manager: MediaPipe's known start-up chatter dropped from fd 2 meanwhile."""
    return _native_stderr


class FaceMeshTracker:
    """Context manager around ``mediapipe.solutions.face_mesh.FaceMesh``.

    Tracking mode carries state from frame to frame: ``reset()`` between clips.
    ``face``: which face to follow when several are in view: ``"largest"`` (at the first
    detection), or an integer N: the N-th from the left at the first frame that shows
    at least N faces (frames before it give None).
    """

    def __init__(
        self,
        max_faces: int = 2,
        refine: bool = True,
        static: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        face: str | int = "largest",
    ) -> None:
        import mediapipe as mp

        self.face = parse_face(face)
        self.max_faces = max(int(max_faces), self.face if isinstance(self.face, int) else 1)
        self.refine = bool(refine)
        with _native_stderr:
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=bool(static),
                max_num_faces=self.max_faces,
                refine_landmarks=self.refine,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
            self._wait_for_start()
        self._forget()

    def _wait_for_start(self) -> None:
        # the graph opens its calculators (loading models, logging) on its own threads
        # after a (re)start: wait for that inside the stderr filter
        graph = getattr(self._mesh, "_graph", None)
        if graph is not None:
            graph.wait_until_idle()

    def _forget(self) -> None:
        self._previous_centre: np.ndarray | None = None
        self.n_faces_last = 0
        self.faces: list[int] = []  # faces found in each processed frame
        # at the first frame with several faces: (frame index, rank from the left of the
        # followed face (1-based, 0 = none followed yet), number of faces)
        self.first_crowd: tuple[int, int, int] | None = None

    def process(
        self, rgb: np.ndarray, output_size: tuple[int, int] | None = None
    ) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB -> (478, 3) float32 pixels of the followed face, or None.

        ``output_size``: (width, height) of the frame the points should be in when ``rgb``
        is a scaled-down copy of it (MediaPipe's coordinates are relative to the frame)."""
        frame = np.asarray(rgb)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}"
            )
        height, width = frame.shape[:2]
        if output_size is not None:
            width, height = output_size
        with _native_stderr:
            result = self._mesh.process(np.ascontiguousarray(frame))
        faces = result.multi_face_landmarks or []
        self.n_faces_last = len(faces)
        self.faces.append(len(faces))
        if not faces:
            return None
        scale = np.array([width, height, width], dtype=np.float32)
        candidates = [
            np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32) * scale
            for face in faces
        ]
        chosen = self._choose(candidates)
        if len(candidates) > 1 and self.first_crowd is None:
            lefts = sorted(float(c[:, 0].mean()) for c in candidates)
            rank = 0 if chosen is None else 1 + lefts.index(float(chosen[:, 0].mean()))
            self.first_crowd = (len(self.faces) - 1, rank, len(candidates))
        if chosen is None:
            return None
        self._previous_centre = chosen[:, :2].mean(axis=0)
        return chosen

    def _choose(self, candidates: list[np.ndarray]) -> np.ndarray | None:
        if self._previous_centre is not None:
            distances = [
                np.linalg.norm(c[:, :2].mean(axis=0) - self._previous_centre) for c in candidates
            ]
            return candidates[int(np.argmin(distances))]
        if self.face == "largest":
            areas = [np.prod(c[:, :2].max(axis=0) - c[:, :2].min(axis=0)) for c in candidates]
            return candidates[int(np.argmax(areas))]
        if len(candidates) < self.face:
            return None  # the asked-for person cannot be told apart yet
        return sorted(candidates, key=lambda c: float(c[:, 0].mean()))[self.face - 1]

    def reset(self) -> None:
        """Start a new clip: MediaPipe's tracking state and the followed face forgotten
        (the same results as a new tracker, without loading the models again)."""
        if self._mesh is not None:
            with _native_stderr:
                self._mesh.reset()
                self._wait_for_start()
        self._forget()

    def close(self) -> None:
        if self._mesh is not None:
            with _native_stderr:
                self._mesh.close()
            self._mesh = None

    def __enter__(self) -> FaceMeshTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def parse_face(face: str | int) -> str | int:
    """``"largest"`` or a positive int (also from a string such as ``"2"``)."""
    if isinstance(face, str) and face.strip().lower() == "largest":
        return "largest"
    try:
        number = int(face)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or (isinstance(face, float) and not float(face).is_integer()):
        raise ValueError(f"{face!r} is not a face to follow: use {FACE_CHOICES}")
    return number


_local = threading.local()


@contextlib.contextmanager
def shared_tracker(**config) -> Iterator[FaceMeshTracker]:
    """A tracker for one clip, reused across clips by this process and thread (MediaPipe
    loaded once per worker); ``config``: ``FaceMeshTracker``'s arguments. Reset on entry,
    so every clip starts from the same state as with a new tracker."""
    key = tuple(sorted(config.items()))
    cached = getattr(_local, "tracker", None)
    if cached is None or cached[0] != key:
        if cached is not None:
            cached[1].close()
        _local.tracker = (key, FaceMeshTracker(**config))
    tracker = _local.tracker[1]
    tracker.reset()
    try:
        yield tracker
    except BaseException:
        # a clip that failed half-way (or Ctrl-C) leaves no doubtful state behind
        _local.tracker = None
        tracker.close()
        raise
