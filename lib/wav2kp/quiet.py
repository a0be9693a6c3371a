"""A quiet console: known library chatter is dropped, everything else still shows.

MediaPipe/TFLite log through glog/absl straight to file descriptor 2 (before absl is
initialised ``GLOG_minloglevel`` does not apply), ipykernel warns about TCP transport on
every kernel start, and papermill logs each parameter a notebook does not declare. None
of it is actionable for a user, and it buries progress and real warnings.

- :data:`NOISE` recognises those lines (and only those);
- :class:`StderrFilter` is a pipe whose reader thread forwards every other line to
  ``sys.stderr``; give its ``fd`` to a child process as its stderr;
- :func:`quiet_stderr` routes this process's own file descriptor 2 through such a filter,
  so that every process it starts (Dask workers, process pools) inherits the filter too;
- :func:`quiet_kernel_manager` is a jupyter kernel manager class that starts kernels on
  IPC sockets (local only, so no unencrypted-TCP warning) with their stderr, and that of
  every process they start, going through such a filter;
- :func:`quiet_papermill` hides papermill's "Passed unknown parameter" log lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

# Each pattern names one known source; ``search`` (not ``match``) because two processes
# writing to one pipe can interleave inside a line.
NOISE_PATTERNS: tuple[str, ...] = (
    r"Created TensorFlow Lite XNNPACK delegate",  # TFLite, once per interpreter
    r"All log messages before absl::InitializeLog\(\) is called",  # absl, once per process
    r"inference_feedback_manager\.cc",  # MediaPipe, per graph
    r"landmark_projection_calculator\.cc.*NORM_RECT without IMAGE_DIMENSIONS",  # MediaPipe
    # glog line heads: "I1130 09:23:46.587648 16226 file.cc:1]", or before absl is
    # initialised "W0000 00:00:1796030644.587648 16226 file.cc:1]" (seconds since 1970)
    r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ gl_context",  # MediaPipe with a GPU context
    r"^I\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ ",  # absl/glog INFO lines (never warnings)
    r"Kernel is running over TCP without encryption",  # ipykernel >= 7
    r"Passed unknown parameter",  # papermill
)
NOISE = re.compile("|".join(f"(?:{p})" for p in NOISE_PATTERNS))


def is_noise(line: str) -> bool:
    """True for a console line that is known, harmless library chatter."""
    return NOISE.search(line) is not None


class StderrFilter:
    """A pipe whose writer end (``fd``) child processes use as stderr; a daemon thread
    forwards each complete line that is not noise to ``sys.stderr`` (or, given
    ``target_fd``, straight to that file descriptor). A progress bar's carriage-return
    updates are forwarded as they come, not held until the line ends.

    ``dropped`` counts the lines held back. Use as a context manager; closing waits
    (briefly) for the reader to drain what was written before.
    """

    def __init__(self, target_fd: int | None = None) -> None:
        self._read_fd, self.fd = os.pipe()
        self._target_fd = target_fd
        self.dropped = 0
        self._muted = False
        self._thread = threading.Thread(target=self._forward, name="stderr-filter", daemon=True)
        self._thread.start()

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace")
        if self._muted or is_noise(line):
            self.dropped += 1
            return
        if self._target_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._target_fd, raw)
            return
        stream = sys.stderr
        if stream is not None:
            stream.write(line)
            stream.flush()

    def _forward(self) -> None:
        pending = b""
        with os.fdopen(self._read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(line + b"\n")
                if b"\r" in pending:  # a progress bar redrawing its line: show it now
                    shown, cr, pending = pending.rpartition(b"\r")
                    self._emit(shown + cr)
        if pending:
            self._emit(pending + b"\n")

    def mute(self) -> None:
        """Drop everything from now on (what kernels print while being stopped)."""
        self._muted = True

    @contextlib.contextmanager
    def muted_on_interrupt(self) -> Iterator[None]:
        """Ctrl-C mutes the filter before the KeyboardInterrupt unwinds: the kernels'
        complaints about being shut down mid-cell are not news to the user who pressed it.
        (Only in the main thread, where signal handlers live.)"""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def on_interrupt(signum: int, frame: Any) -> None:
            self.mute()
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def close(self, timeout: float = 2.0) -> None:
        """Close our copy of the writer end. The reader ends once every process holding
        a copy (an orphaned grandchild, say) has closed it; we do not wait longer."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._thread.join(timeout)

    @property
    def forwarding(self) -> bool:
        """Whether the reader still runs (some process still holds the writer end)."""
        return self._thread.is_alive()

    def __enter__(self) -> StderrFilter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[StderrFilter | None]:
    """This process's file descriptor 2 goes through a :class:`StderrFilter` meanwhile:
    native libraries' chatter (MediaPipe's glog lines) is dropped, whether this process
    or one it starts writes it (children inherit fd 2: Dask workers, process pools);
    every other line reaches the real stderr. ``WAV2KP_MEDIAPIPE_LOGS=1`` shows all of
    it (yields None then, as without a usable fd 2)."""
    if os.environ.get("WAV2KP_MEDIAPIPE_LOGS", "") not in ("", "0"):
        yield None
        return
    try:
        real = os.dup(2)
    except OSError:  # no stderr to filter
        yield None
        return
    if sys.stderr is not None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
    stderr_filter = StderrFilter(target_fd=real)
    os.dup2(stderr_filter.fd, 2)
    try:
        yield stderr_filter
    finally:
        if sys.stderr is not None:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
        os.dup2(real, 2)
        stderr_filter.close()
        if not stderr_filter.forwarding:  # else an orphan still writes: keep its target
            os.close(real)


def quiet_kernel_manager(stderr_filter: StderrFilter) -> type:
    """A kernel manager class (for papermill/nbclient's ``kernel_manager_class``) whose
    kernels talk over IPC sockets in a private temp folder and write their stderr through
    ``stderr_filter``."""
    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            # IPC: the sockets are files only this user can reach, and the kernel has no
            # reason to warn about plain-text TCP. A short private path: socket paths are
            # limited to about 100 characters.
            self._ipc_dir = tempfile.mkdtemp(prefix="wav2kp-kernel-")
            self.transport = "ipc"
            self.ip = os.path.join(self._ipc_dir, "k")

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw.setdefault("stderr", stderr_filter.fd)
            await super()._async_launch_kernel(kernel_cmd, **kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self._ipc_dir, ignore_errors=True)

        cleanup_resources = _async_cleanup_resources

    return QuietKernelManager


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_noise(record.getMessage())


@contextlib.contextmanager
def quiet_papermill() -> Iterator[None]:
    """Drop papermill's noise log records (other papermill warnings still show)."""
    logger = logging.getLogger("papermill")
    drop = _DropNoise()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
