"""Executors: a process pool gives its workers back on `release`, Dask runs higher priority first.

A process pool's worker that dies fails every map in or waiting for the pool, at once (each
map runs in a thread of its own here, so that one that hangs fails the test), and the next map
starts a new pool.

The Dask tests use a real in-process `LocalCluster` (one worker, one thread), so that the order
in which queued work runs is the scheduler's and nothing else's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from codeintel.orchestration.executors import DaskExecutor, ProcessExecutor, SerialExecutor, make_batches

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
        os._exit(code)  # the worker process dies
    time.sleep(0.2)


def _killed(code: int) -> None:
    if code:
        os.kill(os.getpid(), signal.SIGKILL)  # as by the OOM killer
    time.sleep(0.2)


def _arrow_pool(_: int) -> str:
    import pyarrow as pa

    return str(pa.default_memory_pool().backend_name)


def _cst_query_compiled(_: int) -> int:
    from codeintel.ingestion.cst.extract import cst_query

    return cst_query.cache_info().currsize


def _nap(label: str) -> str:
    if label == "boom":
        raise ValueError(label)
    time.sleep(0.3)
    return label


@pytest.fixture
def one_slot_client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_batches_hold_every_item_once_and_each_workers_last_batch_is_a_small_one(workers: int) -> None:
    """Batches run in order: the last `workers` are about half the others, so that the workers
    finish close together."""
    sizes = [1000 + (i * 7919) % 5000 for i in range(400)]
    batches = make_batches(list(range(400)), sizes, workers)
    assert sorted(i for batch in batches for i in batch) == list(range(400))
    assert len(batches) == 4 * workers
    loads = [sum(sizes[i] for i in batch) for batch in batches]
    full, last = loads[:-workers], loads[-workers:]
    assert max(last) < 0.6 * min(full)
    assert min(last) > 0.4 * max(full)


def test_warming_a_process_pool_up_starts_its_forkserver_before_any_map() -> None:
    """In a fresh process (a forkserver outlives pools: this one's may be running already)."""
    code = (
        "import time, psutil\n"
        "from codeintel.orchestration.executors import ProcessExecutor\n"
        "ProcessExecutor(1).warm_up()\n"
        "for _ in range(100):\n"
        "    if any('forkserver' in ' '.join(c.cmdline()) for c in psutil.Process().children()):\n"
        "        print('started'); break\n"
        "    time.sleep(0.05)\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "started"


def test_process_workers_take_arrow_memory_from_the_system_allocator() -> None:
    """They build many small Arrow tables; malloc was measured cheaper there than mimalloc."""
    pool = ProcessExecutor(2)
    try:
        assert set(pool.map(_arrow_pool, [1, 2, 3])) == {"system"}
    finally:
        pool.close()


def test_process_workers_fork_with_cst_ingests_query_compiled() -> None:
    """Compiled once in the forkserver (0.02 s), not in each worker's first batch."""
    pool = ProcessExecutor(2)
    try:
        assert pool.map(_cst_query_compiled, [1, 2]) == [1, 1]
    finally:
        pool.close()


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


@pytest.mark.timeout(120)
@pytest.mark.parametrize("death", [_die, _killed], ids=["os._exit", "SIGKILL"])
def test_a_dead_worker_fails_every_waiting_map_instead_of_hanging(death: Callable[[int], None]) -> None:
    executor = ProcessExecutor(2)
    try:
        # two jobs a worker in the pool, the rest waiting, from three threads
        maps = []
        for name, count, priority in [("a", 6, 0), ("b", 6, 0), ("c", 3, 2)]:
            before = len(executor._waiting)
            maps.append(_MapIn(executor, _nap, [f"{name}-{i}" for i in range(count)], priority))
            _wait_until(lambda before=before: len(executor._waiting) > before, "the map to queue its jobs")
        broken = executor._pool
        killer = _MapIn(executor, death, [1], priority=5)  # overtakes the waiting jobs, kills its worker
        for m in [killer, *maps]:
            m.finish()
        for m in [killer, *maps]:
            assert isinstance(m.error, BrokenProcessPool), (m.items, m.error)
        assert "terminated abruptly" in str(maps[-1].error)  # in the pool, or waiting for it
        assert executor._waiting == [] and executor._pool is None
        # the executor is usable again: a new pool starts
        assert _MapIn(executor, abs, [-1, -2]).finish().result == [1, 2]
        assert executor._pool is not None and executor._pool is not broken
    finally:
        _close(executor)


@pytest.mark.timeout(120)
def test_a_map_whose_own_worker_dies_raises_and_the_next_map_starts_a_new_pool() -> None:
    executor = ProcessExecutor(1)
    try:
        assert _MapIn(executor, abs, [-1]).finish().result == [1]
        first = executor._pool
        dead = _MapIn(executor, _die, [0, 0, 1, 0, 0, 0]).finish()
        assert isinstance(dead.error, BrokenProcessPool), dead.error
        assert _MapIn(executor, abs, [-2, -3]).finish().result == [2, 3]
        assert executor._pool is not first
        dead = _MapIn(executor, _killed, [1]).finish()  # and again, on the new pool
        assert isinstance(dead.error, BrokenProcessPool), dead.error
        assert _MapIn(executor, abs, [-4]).finish().result == [4]
        assert executor._retired == []  # the broken pools were shut down
    finally:
        _close(executor)


@pytest.mark.timeout(120)
def test_a_failing_job_fails_its_map_at_once_and_leaves_the_pool_to_the_others() -> None:
    executor = ProcessExecutor(1)
    try:
        failing = _MapIn(executor, _nap, ["a-0", "boom", *(f"a-{i}" for i in range(2, 8))])
        _wait_until(lambda: len(executor._waiting) >= 6, "the failing map to queue its jobs")
        pool = executor._pool
        others = _MapIn(executor, _nap, ["b-0", "b-1", "b-2"])
        failing.finish()
        assert isinstance(failing.error, ValueError), failing.error
        assert not any(str(entry[3]).startswith("a-") for entry in executor._waiting)  # dropped, not run
        assert others.finish().result == ["b-0", "b-1", "b-2"]
        assert executor._pool is pool
    finally:
        _close(executor)


@pytest.mark.timeout(120)
def test_close_fails_the_waiting_maps_and_the_next_map_starts_a_new_pool() -> None:
    executor = ProcessExecutor(1)
    try:
        waiting = _MapIn(executor, _nap, [f"a-{i}" for i in range(6)])
        _wait_until(lambda: len(executor._waiting) >= 4, "the map to queue its jobs")
        _close(executor)
        assert isinstance(waiting.finish().error, RuntimeError)
        assert _MapIn(executor, abs, [-5]).finish().result == [5]
    finally:
        _close(executor)


class _MapIn(threading.Thread):
    """`executor.map` in a thread of its own, so that a map that hangs fails the test instead."""

    def __init__(self, executor: ProcessExecutor, fn: Callable[[Any], Any], items: list[Any], priority: int = 0):
        super().__init__(daemon=True)
        self.executor, self.fn, self.items, self.priority = executor, fn, items, priority
        self.result: list[Any] | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.executor.map(self.fn, self.items, self.priority)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float = 30) -> _MapIn:
        self.join(timeout)
        assert not self.is_alive(), f"a map of {self.items} hangs"
        return self


def _close(executor: ProcessExecutor, timeout: float = 30) -> None:
    closing = threading.Thread(target=executor.close, daemon=True)
    closing.start()
    closing.join(timeout)
    assert not closing.is_alive(), "closing the executor hangs"


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


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
