"""wav2kp.cluster: which cluster a client connects to, and bounded task submission."""

from __future__ import annotations

import time

import pytest
from distributed import LocalCluster
from wav2kp import cluster
from wav2kp.cluster import default_workers, get_client, map_unordered, scheduler_address


def slow_square(x: int) -> int:
    time.sleep(0.02)
    if x == 7:
        raise ValueError("seven is refused")
    return x * x


@pytest.fixture(scope="module")
def threads_cluster():
    """A scheduler with two in-process worker threads (starts in a second)."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as local:
        yield local


def test_scheduler_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    import dask

    with dask.config.set({"scheduler-address": None}):
        assert scheduler_address() is None
        assert scheduler_address("tcp://h:1") == "tcp://h:1"
    with dask.config.set({"scheduler-address": "tcp://from-config:8786"}):
        assert scheduler_address() == "tcp://from-config:8786"
        assert scheduler_address("tcp://h:1") == "tcp://h:1"


def test_embedded_cluster_is_sized_to_the_machine(monkeypatch):
    import psutil

    class Memory:
        available = 3 * cluster.WORKER_MEMORY_BYTES + 1

    monkeypatch.setattr(cluster, "usable_cpus", lambda: 8)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory())
    assert default_workers() == 3  # memory for 3 workers on 8 cores
    Memory.available = 100 * cluster.WORKER_MEMORY_BYTES
    assert default_workers() == 8
    Memory.available = 0
    assert default_workers() == 1


def test_connects_to_a_running_scheduler_from_the_environment(threads_cluster, monkeypatch):
    monkeypatch.setenv(cluster.SCHEDULER_ENV, threads_cluster.scheduler_address)
    import dask

    with dask.config.set({"scheduler-address": None}):
        client = get_client()
    try:
        assert client.scheduler.address == threads_cluster.scheduler_address
        assert client.wav2kp_embedded is False
        line = cluster.describe(client)
        assert f"on scheduler {threads_cluster.scheduler_address}" in line
        port = client.scheduler_info()["services"]["dashboard"]
        assert line.endswith(f":{port}/status")  # the dashboard this scheduler serves
    finally:
        client.close()
    # closing our client leaves the user's cluster running
    assert threads_cluster.status.name == "running"
    assert len(threads_cluster.scheduler.workers) == 2


def test_scheduler_file_missing_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="scheduler file not found"):
        get_client(scheduler=tmp_path / "scheduler.json")


def test_tasks_in_flight_stay_bounded_and_errors_come_with_their_item(threads_cluster):
    from distributed import Client

    with Client(threads_cluster, set_as_default=False) as client:
        scheduler = threads_cluster.scheduler
        peak, results = 0, {}
        for item, outcome in map_unordered(
            slow_square, range(40), client, in_flight=3, key=lambda x: f"square-{x}"
        ):
            peak = max(peak, len(scheduler.tasks))
            try:
                results[item] = outcome.result()
            except ValueError as error:
                results[item] = str(error)
        assert peak <= 3
        assert results == {x: (x * x if x != 7 else "seven is refused") for x in range(40)}
        _wait_until_empty(scheduler)  # each result released once handed over


def _wait_until_empty(scheduler, seconds: float = 10) -> None:
    deadline = time.time() + seconds
    while scheduler.tasks and time.time() < deadline:
        time.sleep(0.05)
    assert len(scheduler.tasks) == 0


STARTED: list[int] = []  # items slow_recorded began (the workers are threads of this process)


def slow_recorded(x: int) -> int:
    STARTED.append(x)
    time.sleep(0.5)
    return x


def test_leaving_early_cancels_the_rest(threads_cluster):
    from distributed import Client

    STARTED.clear()
    with Client(threads_cluster, set_as_default=False) as client:
        outcomes = map_unordered(slow_recorded, range(100), client, in_flight=10)
        first = next(outcomes)
        outcomes.close()  # leave the loop early: the tasks not handed over are cancelled
        del first  # the one handed over is ours to drop
        _wait_until_empty(threads_cluster.scheduler)
        time.sleep(0.5)  # a task that was not cancelled would have started by now
    # of the 10 submitted, only those already running on the 2 worker threads (and the
    # one that starts as the first finishes) ever ran; uncancelled, all 10 would
    assert len(STARTED) <= 4, STARTED


def test_without_a_client_items_run_here_in_order():
    outcomes = list(map_unordered(slow_square, range(9)))
    assert [item for item, _ in outcomes] == list(range(9))
    assert outcomes[3][1].result() == 9
    with pytest.raises(ValueError, match="seven"):
        outcomes[7][1].result()
