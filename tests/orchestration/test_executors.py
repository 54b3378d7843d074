"""Executors: a process pool gives its workers back on `release`, Dask runs higher priority first.

The Dask tests use a real in-process `LocalCluster` (one worker, one thread), so that the order
in which queued work runs is the scheduler's and nothing else's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from codeintel.orchestration.executors import DaskExecutor, ProcessExecutor, SerialExecutor

_GATE = threading.Event()
_ORDER: list[str] = []


def _blocker(_: int) -> None:
    _GATE.wait(timeout=30)


def _record(label: str) -> str:
    _ORDER.append(label)
    return label


def _stamp(label: str) -> tuple[str, float]:
    time.sleep(0.15)
    return label, time.monotonic()


def _die(code: int) -> None:
    if code:
        os._exit(code)  # the worker process dies, as under the OOM killer
    time.sleep(0.2)


@pytest.fixture
def one_slot_client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def test_release_stops_the_pool_and_the_next_map_starts_it_again() -> None:
    executor = ProcessExecutor(2)
    try:
        assert executor.map(abs, [-1, -2]) == [1, 2]
        assert executor._pool is not None
        executor.release()
        assert executor._pool is None
        assert executor.map(abs, [-3]) == [3]
    finally:
        executor.close()


def test_the_pool_runs_waiting_jobs_of_higher_priority_first() -> None:
    executor = ProcessExecutor(1)
    found: dict[str, list[tuple[str, float]]] = {}
    try:
        low = threading.Thread(target=lambda: found.update(low=executor.map(_stamp, [f"low-{i}" for i in range(6)])))
        low.start()
        deadline = time.monotonic() + 60
        while len(executor._waiting) < 4:  # two jobs in the pool, four waiting
            assert time.monotonic() < deadline
            time.sleep(0.005)
        found["high"] = executor.map(_stamp, ["high-0", "high-1"], priority=1)
        low.join(timeout=60)
    finally:
        executor.close()
    high_done = max(t for _, t in found["high"])
    later_low = sorted(t for _, t in found["low"])[2:]  # the four that were waiting
    assert all(high_done < t for t in later_low), found


def test_a_dead_worker_fails_every_waiting_map_instead_of_hanging() -> None:
    executor = ProcessExecutor(1)
    errors: list[BaseException] = []

    def others() -> None:
        try:
            executor.map(_die, [0] * 6)
        except BaseException as exc:
            errors.append(exc)

    try:
        other = threading.Thread(target=others)
        other.start()
        deadline = time.monotonic() + 60
        while len(executor._waiting) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with pytest.raises(BrokenProcessPool):
            executor.map(_die, [1], priority=1)  # overtakes the waiting jobs, kills the worker
        other.join(timeout=30)
        assert not other.is_alive(), "a map waiting behind the dead worker hangs"
        assert errors and isinstance(errors[0], BrokenProcessPool)
    finally:
        executor.close()


def test_serial_map_ignores_priority() -> None:
    assert SerialExecutor().map(abs, [-1, 2], priority=5) == [1, 2]


def test_dask_release_runs_its_callback_once(one_slot_client: Any) -> None:
    calls: list[int] = []
    executor = DaskExecutor(one_slot_client, on_release=lambda: calls.append(1))
    assert executor.map(abs, [-4, 5]) == [4, 5]
    executor.release()
    executor.release()
    executor.close()
    assert calls == [1]


def test_dask_runs_queued_work_of_higher_priority_first(one_slot_client: Any) -> None:
    _GATE.clear()
    _ORDER.clear()
    executor = DaskExecutor(one_slot_client)
    lows, highs = [f"low-{i}" for i in range(6)], ["high-0", "high-1"]
    busy = one_slot_client.submit(_blocker, 0, pure=False)  # holds the only slot
    low = threading.Thread(target=executor.map, args=(_record, lows, 0))
    low.start()
    _wait_for_tasks(one_slot_client, 1 + len(lows))
    high = threading.Thread(target=executor.map, args=(_record, highs, 1))
    high.start()
    _wait_for_tasks(one_slot_client, 1 + len(lows) + len(highs))
    _GATE.set()
    low.join(timeout=30)
    high.join(timeout=30)
    busy.result(timeout=30)
    # the scheduler may already have handed a worker what it can queue (worker-saturation);
    # what is still queued on the scheduler runs by priority
    assert sorted(_ORDER) == sorted(lows + highs)
    assert max(_ORDER.index(h) for h in highs) < 3, _ORDER  # at most one low ahead of them


def _wait_for_tasks(client: Any, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))) < count:
        assert time.monotonic() < deadline, "the tasks never reached the scheduler"
        time.sleep(0.02)
