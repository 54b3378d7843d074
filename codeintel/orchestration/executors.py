"""Executors for per-file work: serial, a local process pool, or a Dask cluster.

A per-file step splits its stale files into batches and maps a module-level (picklable) batch
function over them.  Workers only compute: they return plain rows, and the step's own process
does the single transactional write.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
import multiprocessing
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from functools import partial
from typing import Any, Protocol, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Below this much work a pool costs more than it saves.
SMALL_WORK_BYTES = 400_000
SMALL_WORK_FILES = 16


class StepExecutor(Protocol):
    """Maps a picklable function over items, returning results in input order."""

    workers: int

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        """`fn` over `items`, in order; where the work is queued with other steps' (a cluster),
        higher `priority` goes first."""
        ...

    def release(self) -> None:
        """The calling step's per-file work is done: give back what waiting for it took."""

    def close(self) -> None: ...


class SerialExecutor:
    """Runs everything in the calling process."""

    workers = 1

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        return [fn(item) for item in items]

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class ProcessExecutor:
    """A lazily started process pool (forkserver: safe beside threads), reused across steps.

    Steps running concurrently in threads (the Prefect runner) may share one instance: jobs wait
    in a queue ordered by priority (then arrival) and at most two a worker are in the pool, so
    a step of higher priority overtakes queued batches of others.  Each worker freezes the
    objects it starts with (`gc.freeze`): under a heavy main module (Prefect) the cyclic GC
    would otherwise traverse them over and over while parsing, which was measured to make
    ast_ingest on sqlalchemy nearly twice as slow.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Executor | None = None
        self._lock = threading.RLock()  # re-entered when a finished job dispatches the next
        self._waiting: list[tuple[int, int, Callable[[Any], Any], Any, Future[Any]]] = []
        self._arrivals = itertools.count()
        self._in_pool = 0

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        results: list[Future[R]] = []
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(_forkserver_preload())
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=gc.freeze)
            for item in items:
                result: Future[R] = Future()
                heapq.heappush(self._waiting, (-priority, next(self._arrivals), fn, item, result))
                results.append(result)
            self._dispatch()
        return [r.result() for r in results]

    def _dispatch(self) -> None:
        with self._lock:
            while self._waiting and self._in_pool < 2 * self.workers and self._pool is not None:
                _, _, fn, item, result = heapq.heappop(self._waiting)
                try:
                    job = self._pool.submit(fn, item)
                except Exception as exc:  # a broken pool (a worker died): every job left fails
                    result.set_exception(exc)
                    continue
                self._in_pool += 1
                job.add_done_callback(partial(self._finished, result))

    def _finished(self, result: Future[Any], job: Future[Any]) -> None:
        with self._lock:
            self._in_pool -= 1
        error = None if job.cancelled() else job.exception()
        if job.cancelled():
            result.set_exception(RuntimeError("the process pool was shut down"))
        elif error is not None:
            result.set_exception(error)
        else:
            result.set_result(job.result())
        self._dispatch()

    def release(self) -> None:
        """Stop the idle workers (they would only add to the peak memory); `map` restarts them."""
        self.close()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            waiting, self._waiting = self._waiting, []
        for *_, result in waiting:
            result.set_exception(RuntimeError("the process pool was shut down"))
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _forkserver_preload() -> list[str]:
    """Modules the forkserver imports once, so that every worker forks with them loaded.

    multiprocessing re-runs the parent's main module in each worker (by name, for `python -m`).
    When that module is heavy (a Prefect flow, or `prefect.engine` under a Prefect worker:
    seconds of imports), importing it once in the forkserver leaves each worker only the
    module's own body to run.  `pkg.__main__` modules are never re-run, so never preloaded.
    """
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    heavy_main = [name] if name and name != "__main__" and not name.endswith(".__main__") else []
    return ["codeintel.orchestration.worker_boot", "codeintel.ingestion.filework", *heavy_main]


class DaskExecutor:
    """Maps over a Dask cluster through a `distributed.Client` (given, or made from an address).

    `workers` counts the cluster's worker threads (`nthreads`, which lists every worker; the
    default `scheduler_info()` lists only the first five).  A client this class made itself
    (`connect`) is closed by `close`; a given one belongs to the caller.  `on_release` runs once,
    at the first `release`: a step running as a task on a Dask worker takes its thread back into
    the worker's pool there (see `flows.prefect_flow.step_context`).
    """

    def __init__(self, client: Any, *, owns_client: bool = False, on_release: Callable[[], None] | None = None) -> None:
        self.client = client
        self._owns_client = owns_client
        self._on_release = on_release
        self.workers = max(1, sum(client.nthreads().values()))

    @classmethod
    def connect(cls, address: str) -> DaskExecutor:
        from distributed import Client

        return cls(Client(address, set_as_default=False), owns_client=True)

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        futures = self.client.map(fn, list(items), pure=False, priority=priority)
        return list(self.client.gather(futures))

    def release(self) -> None:
        callback, self._on_release = self._on_release, None
        if callback is not None:
            callback()

    def close(self) -> None:
        self.release()
        if self._owns_client:
            self.client.close()


def make_batches(items: Sequence[T], sizes: Sequence[int], workers: int, per_worker: int = 4) -> list[list[T]]:
    """Split items into about `workers * per_worker` batches of similar total size (largest first)."""
    count = max(1, min(len(items), workers * per_worker))
    batches: list[list[T]] = [[] for _ in range(count)]
    loads = [0] * count
    for size, item in sorted(zip(sizes, items, strict=True), key=lambda pair: -pair[0]):
        slot = loads.index(min(loads))
        batches[slot].append(item)
        loads[slot] += max(size, 1)
    return [b for b in batches if b]


def should_parallelise(n_files: int, total_bytes: int) -> bool:
    return n_files >= SMALL_WORK_FILES and total_bytes >= SMALL_WORK_BYTES
