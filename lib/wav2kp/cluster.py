"""One Dask client for per-item work (clips, feature files, ablation variants).

    from wav2kp.cluster import get_client, map_unordered

    with get_client(scheduler=None, workers=None) as client:   # context closes what it started
        for item, outcome in map_unordered(work, items, client):
            result = outcome.result()     # re-raises the task's exception (or KilledWorker)

``scheduler``: a running Dask scheduler's address (``tcp://host:8786``) or the path of its
scheduler file (``dask scheduler --scheduler-file``); default: ``$DASK_SCHEDULER_ADDRESS``
(Dask's ``scheduler-address`` setting); neither: an embedded ``LocalCluster`` of
``workers`` processes with one thread each (default: one per core, fewer when memory is
short; see ``default_workers``). ``workers=0`` means no Dask at all: ``map_unordered``
with ``client=None`` runs the items one after the other in this process (debugging,
single clips).

A task lost with its worker (killed, out of memory, crashed) is re-run on another
worker up to Dask's ``distributed.scheduler.allowed-failures`` times (3 by default);
after that ``outcome.result()`` raises ``distributed.KilledWorker``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
# Memory one worker process needs for per-clip work (MediaPipe, torch for resampling,
# a decoded clip); the embedded cluster starts no more workers than fit.
WORKER_MEMORY_BYTES = 1_500_000_000
# Dask settings of an embedded cluster. One task per worker thread at a time (Dask would
# send a second one ahead): when a clip crashes its worker, only that clip counts the
# death, not an innocent one queued behind it. Per-clip tasks run for seconds, so Dask's
# millisecond-scale bookkeeping is slowed down (the statistical profiler every 10 ms, event
# loop ticks every 20 ms, memory polling every 100 ms: the dashboard's profile page stays
# empty). And the workers do not get Dask's MALLOC_TRIM_THRESHOLD_=65536 (set against
# pandas' heap fragmentation): it turns every video frame's allocation into mmap/munmap
# and page faults. With these, a worker spends the CPU per frame that the in-process
# engine does (``wav2kp bench extraction``); docs/cluster.md gives the same settings for
# an external cluster.
EMBEDDED_DASK_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}
# Tasks kept submitted per worker thread: enough to hide the scheduler round trip,
# few enough that 10^5 clips are never all in the scheduler at once.
TASKS_PER_THREAD = 2
MIN_IN_FLIGHT = 4


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes for an embedded cluster: one per usable core, but no more than
    the available memory holds at ``WORKER_MEMORY_BYTES`` each (at least one)."""
    import psutil

    by_memory = int(psutil.virtual_memory().available // WORKER_MEMORY_BYTES)
    return max(1, min(usable_cpus(), by_memory))


def scheduler_address(scheduler: str | os.PathLike | None = None) -> str | None:
    """The scheduler asked for: the argument, else ``$DASK_SCHEDULER_ADDRESS`` (read by
    Dask into its ``scheduler-address`` setting), else None (embedded cluster)."""
    if scheduler:
        return str(scheduler)
    import dask

    return dask.config.get("scheduler-address", None) or os.environ.get(SCHEDULER_ENV) or None


def get_client(
    scheduler: str | os.PathLike | None = None,
    workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    quiet: bool = True,
):
    """A ``distributed.Client``: connected to ``scheduler`` (address or scheduler file;
    see ``scheduler_address``) or to a new embedded ``LocalCluster`` of ``workers``
    processes (``None``: ``default_workers()``). Closing the client (or leaving its
    ``with`` block) shuts an embedded cluster down; an external cluster is left running.
    ``quiet``: Dask's own log lines only from warnings up (no start-up chatter)."""
    import dask
    from distributed import Client

    address = scheduler_address(scheduler)
    if address is not None:
        if Path(address).suffix == ".json" or Path(address).is_file():
            if not Path(address).is_file():
                raise FileNotFoundError(f"{address}: Dask scheduler file not found")
            client = Client(scheduler_file=str(address), set_as_default=False)
        else:
            client = Client(address, set_as_default=False)
        client.wav2kp_embedded = False
        return client
    n_workers = default_workers() if workers is None else int(workers)
    if n_workers < 1:
        raise ValueError(f"workers={workers}: an embedded Dask cluster needs at least 1 worker")
    environ = {
        key: value
        for key, value in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
        if key != "MALLOC_TRIM_THRESHOLD_"
    }
    settings = {**EMBEDDED_DASK_CONFIG, "distributed.nanny.pre-spawn-environ": environ}
    with _interrupts_ignored(), dask.config.set(settings):
        client = Client(
            n_workers=n_workers,
            threads_per_worker=int(threads_per_worker),
            processes=True,
            dashboard_address=":0" if _has_bokeh() else None,
            silence_logs=logging.WARNING if quiet else logging.INFO,
            set_as_default=False,
        )
    client.wav2kp_embedded = True
    client.close = _without_shutdown_warnings(client.close)
    # ... and by workers a nanny restarts later
    client.register_plugin(LeaveInterruptsToClient(), name="wav2kp-leave-interrupts")
    return client


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """Ctrl-C in a terminal reaches every process of the foreground group. Workers of an
    embedded cluster ignore it: the client stops the batch, keeps what finished and shuts
    them down (otherwise each would print a KeyboardInterrupt traceback)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class LeaveInterruptsToClient(WorkerPlugin):
    """Worker plugin: the worker process ignores SIGINT (see ``_interrupts_ignored``),
    and its tasks cut short when the client shuts the cluster down are not reported as
    "Async instruction ... ended with CancelledError" (the client said what stopped)."""

    def setup(self, worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)


def stop_now(client) -> None:
    """Close a client whose tasks are being abandoned (Ctrl-C, a full disk).

    An embedded cluster's worker processes (and their decoder subprocesses) are killed
    once their nannies are closing: their work is lost anyway, their files are written
    atomically, and a worker stopped politely while busy races the scheduler's shutdown
    and prints heartbeat tracebacks. An external cluster is left running (its abandoned
    tasks were cancelled)."""
    if not getattr(client, "wav2kp_embedded", False) or client.cluster is None:
        with contextlib.suppress(Exception):
            client.close()
        return
    import psutil

    cluster = client.cluster
    with _dask_logs_hidden(), contextlib.suppress(Exception):
        nannies = list(cluster.workers.values())
        processes = []
        for nanny in nannies:
            with contextlib.suppress(psutil.Error, TypeError, ValueError):
                worker = psutil.Process(nanny.pid)
                processes += [worker, *worker.children(recursive=True)]
        cluster.scale(0)  # nannies start closing: a dead worker is not restarted
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            nanny.status.name not in ("closing", "closed", "closing_gracefully")
            for nanny in nannies
        ):
            time.sleep(0.02)
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(processes, timeout=10)
        deadline = time.monotonic() + 30
        while cluster.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        client.close()


@contextlib.contextmanager
def _dask_logs_hidden() -> Iterator[None]:
    """Dask's own reports of a shutdown we asked for (lost workers, killed processes)."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _nanny_warnings_hidden() -> Iterator[None]:
    logger = logging.getLogger("distributed.nanny")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _without_shutdown_warnings(close: Callable) -> Callable:
    """Closing an embedded cluster ends its workers; those that take a few seconds to
    exit (torch unloading) get "Worker process still alive after 4.0 seconds, killing"
    from their nanny. Expected at shutdown, so not shown then (still shown mid-run)."""

    def quiet_close(*args, **kwargs):
        with _nanny_warnings_hidden():
            return close(*args, **kwargs)

    return quiet_close


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def dashboard_link(client) -> str | None:
    """The Dask dashboard's URL when the scheduler serves one (bokeh installed)."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        return client.dashboard_link or None
    except Exception:  # a scheduler that cannot say: no link rather than a wrong one
        return None


def describe(client) -> str:
    """One line: where the work runs (workers, threads, dashboard)."""
    threads = client.nthreads()
    if getattr(client, "wav2kp_embedded", False):
        where = "an embedded LocalCluster"
    else:
        where = f"scheduler {client.scheduler.address}"
    line = f"Dask: {len(threads)} worker(s), {sum(threads.values())} thread(s) on {where}"
    link = dashboard_link(client)
    return f"{line}; dashboard {link}" if link else line


# ---------------------------------------------------------------- running many items


@dataclass
class Finished:
    """The outcome of an item run in-process: ``result()`` returns it or re-raises."""

    value: Any = None
    error: BaseException | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def map_unordered(
    func: Callable[[Any], Any],
    items: Iterable[Any],
    client=None,
    *,
    key: Callable[[Any], str] | None = None,
    in_flight: int | None = None,
    retries: int = 0,
) -> Iterator[tuple[Any, Any]]:
    """Run ``func(item)`` for every item; yield ``(item, outcome)`` as each finishes,
    ``outcome.result()`` giving the return value or raising the task's error.

    With a client: at most ``in_flight`` tasks are submitted at a time (default
    ``TASKS_PER_THREAD`` per worker thread, re-read as workers come and go), in the
    order of ``items``; ``key(item)`` names each task (dashboard, logs); ``retries``:
    re-runs of a task that raised. Without a client: one after the other in this
    process, exceptions captured in the outcome (KeyboardInterrupt and SystemExit
    still propagate). Leaving the loop early (an exception, Ctrl-C, break) cancels the
    tasks not yet finished.
    """
    if client is None:
        yield from _map_serial(func, items)
        return
    from distributed import as_completed

    source = iter(items)
    pending = as_completed(loop=client.loop)
    by_key: dict[str, Any] = {}
    capacity = _Capacity(client, in_flight)
    exhausted = False

    def top_up() -> None:
        nonlocal exhausted
        while not exhausted and pending.count() < capacity.get():
            item = next(source, _END)
            if item is _END:
                exhausted = True
                return
            name = key(item) if key is not None else None
            future = client.submit(func, item, key=name, pure=False, retries=retries)
            by_key[future.key] = item
            pending.add(future)

    top_up()
    try:
        for future in pending:
            item = by_key.pop(future.key)
            yield item, future
            future.release()
            top_up()
    finally:
        leftover = list(pending.futures)  # submitted, not finished
        if leftover:
            with contextlib.suppress(Exception):  # the client may be closing already
                client.cancel(leftover)
        pending.clear()


_END = object()


def _map_serial(func: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Finished]]:
    for item in items:
        try:
            outcome = Finished(value=func(item))
        except Exception as error:
            outcome = Finished(error=error)
        yield item, outcome


class _Capacity:
    """How many tasks to keep submitted; asks the scheduler for its thread count at
    most every few seconds (workers can join or leave at any time)."""

    refresh_seconds = 5.0

    def __init__(self, client, fixed: int | None) -> None:
        self.client, self.fixed = client, fixed
        self.value, self.when = MIN_IN_FLIGHT, -float("inf")

    def get(self) -> int:
        if self.fixed is not None:
            return max(1, int(self.fixed))
        now = time.monotonic()
        if now - self.when > self.refresh_seconds:
            threads = sum(self.client.nthreads().values())
            self.value = max(MIN_IN_FLIGHT, TASKS_PER_THREAD * threads)
            self.when = now
        return self.value
