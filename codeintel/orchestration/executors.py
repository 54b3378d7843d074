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
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
    # whether `map` runs on a cluster's workers (maybe other machines), not in processes of this
    # one: work that starts processes of its own (the history walk's halves) goes through it then
    remote: bool

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        """`fn` over `items`, in order; where the work is queued with other steps' (a cluster),
        higher `priority` goes first."""
        ...

    def warm_up(self) -> None:
        """Per-file work is planned: get ready for it in the background, so that the first `map`
        waits less (steps before it run meanwhile)."""

    def release(self) -> None:
        """The calling step's per-file work is done: give back what waiting for it took."""

    def close(self) -> None: ...


class SerialExecutor:
    """Runs everything in the calling process."""

    workers = 1
    remote = False

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        return [fn(item) for item in items]

    def warm_up(self) -> None:
        return None

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

    The threads calling `map` feed the pool; the pool's done-callbacks only record a result and
    wake them.  Those callbacks run in the pool's manager thread, and when a worker dies
    (Python 3.12+) while it holds the pool's own lock: a callback that submitted the next job
    would wait for that lock forever, leaving every map hanging.  So nothing here calls the pool
    while holding `_lock`, and the callbacks take nothing but `_lock`.  A worker that dies breaks
    the pool: every job in it or waiting for it fails (`BrokenProcessPool`), its maps raise at
    once, and the next `map` starts a new pool.  A map raises as soon as one of its jobs fails;
    its jobs still waiting are dropped.
    """

    remote = False

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # guards what follows; never held while calling the pool
        self._changed = threading.Condition(self._lock)  # a job finished or failed, or the pool went
        self._submitting = threading.Lock()  # jobs enter the pool one at a time, by priority
        self._waiting: list[tuple[int, int, Callable[[Any], Any], Any, Future[Any]]] = []
        self._arrivals = itertools.count()
        self._in_pool = 0  # jobs of the current pool not finished yet
        self._retired: list[ProcessPoolExecutor] = []  # broken pools still to shut down

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        if not items:
            return []
        results: list[Future[R]] = [Future() for _ in items]
        with self._lock:
            if self._pool is None:
                ctx = _forkserver_context()
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=gc.freeze)
            for item, result in zip(items, results, strict=True):
                heapq.heappush(self._waiting, (-priority, next(self._arrivals), fn, item, result))
        try:
            while True:
                self._dispatch()
                with self._changed:
                    if _settled(results):
                        break
                    if not self._can_dispatch():
                        self._changed.wait()
        finally:
            self._withdraw(results)
            self._shut_retired()
        for result in results:
            error = None if result.cancelled() else result.exception()
            if error is not None:
                raise error
        return [result.result() for result in results]

    def warm_up(self) -> None:
        """Start the forkserver in the background: it imports what workers need (0.25 s on these
        machines) while the steps before the first `map` run, and outlives the pools it forks."""
        threading.Thread(target=_start_forkserver, name="codeintel-forkserver", daemon=True).start()

    def _can_dispatch(self) -> bool:
        return bool(self._waiting) and self._pool is not None and self._in_pool < 2 * self.workers

    def _dispatch(self) -> None:
        """Move the waiting jobs of highest priority into the pool, while it has room."""
        with self._submitting:
            while True:
                with self._lock:
                    if not self._can_dispatch():
                        return
                    pool = self._pool
                    assert pool is not None
                    _, _, fn, item, result = heapq.heappop(self._waiting)
                    self._in_pool += 1
                try:
                    job = pool.submit(fn, item)
                except Exception as exc:  # a broken pool (a worker died), or one shut down
                    self._discard(pool, exc, result)
                    continue
                job.add_done_callback(partial(self._finished, pool, result))

    def _finished(self, pool: ProcessPoolExecutor, result: Future[Any], job: Future[Any]) -> None:
        """A job left `pool` (the pool's manager thread): record it and wake the maps.  Calls
        nothing of the pool: this thread may hold its lock (see the class)."""
        if job.cancelled():
            error: BaseException | None = RuntimeError("the process pool was shut down before the job ran")
        else:
            error = job.exception()
        if isinstance(error, BrokenProcessPool):
            self._discard(pool, error, result)
            return
        with self._changed:
            if self._pool is pool:
                self._in_pool -= 1
            if error is not None:
                _fail(result, error)
            elif not result.done():
                result.set_result(job.result())
            self._changed.notify_all()

    def _discard(self, pool: ProcessPoolExecutor, cause: BaseException, result: Future[Any]) -> None:
        """`pool` is broken: fail `result`, and, the first time, every job still waiting for
        `pool`; the next `map` starts a new pool."""
        with self._changed:
            stranded: list[Future[Any]] = []
            if self._pool is pool:
                self._pool, self._in_pool = None, 0
                stranded = [entry[-1] for entry in self._waiting]
                self._waiting = []
                self._retired.append(pool)
            _fail(result, cause)
            for waiting in stranded:
                error = BrokenProcessPool(
                    f"the process pool broke before this job started ({cause}): every job in or waiting "
                    "for it failed; the next map starts a new pool"
                )
                error.__cause__ = cause
                _fail(waiting, error)
            self._changed.notify_all()

    def _withdraw(self, results: list[Future[Any]]) -> None:
        """Drop the jobs of a map that ended early (one failed) which are still waiting."""
        if all(result.done() for result in results):
            return
        mine = set(results)
        with self._lock:  # results are settled under it only, so a job finishing now cannot race this
            kept = [entry for entry in self._waiting if entry[-1] not in mine]
            if len(kept) != len(self._waiting):
                self._waiting = kept
                heapq.heapify(self._waiting)
            for result in results:
                result.cancel()  # the map no longer waits for them

    def _shut_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for pool in retired:
            pool.shutdown(wait=True, cancel_futures=True)

    def release(self) -> None:
        """Stop the idle workers (they would only add to the peak memory); `map` restarts them."""
        self.close()

    def close(self) -> None:
        with self._changed:
            pool, self._pool, self._in_pool = self._pool, None, 0
            waiting, self._waiting = self._waiting, []
            for *_, result in waiting:
                _fail(result, RuntimeError("the process pool was shut down"))
            self._changed.notify_all()
        self._shut_retired()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _settled(results: list[Future[Any]]) -> bool:
    """Every job is done, or one failed (the map raises then, without waiting for the rest)."""
    done = True
    for result in results:
        if not result.done():
            done = False
        elif not result.cancelled() and result.exception() is not None:
            return True
    return done


def _fail(result: Future[Any], error: BaseException) -> None:
    if not result.done():
        result.set_exception(error)


def _forkserver_context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_forkserver_preload())
    return ctx


def _start_forkserver() -> None:
    from multiprocessing import forkserver

    _forkserver_context()
    try:
        forkserver.ensure_running()
    except Exception:  # the first map starts it (and reports what fails) all the same
        logger.debug("starting the forkserver ahead failed", exc_info=True)


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

    remote = True

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

    def warm_up(self) -> None:
        return None

    def release(self) -> None:
        callback, self._on_release = self._on_release, None
        if callback is not None:
            callback()

    def close(self) -> None:
        self.release()
        if self._owns_client:
            self.client.close()


def worker_died(exc: BaseException) -> bool:
    """Whether a map failed because a worker process died (not because a job raised): a broken
    process pool, or a Dask task that killed the workers it ran on (`KilledWorker`)."""
    return isinstance(exc, BrokenProcessPool) or type(exc).__name__ == "KilledWorker"


def make_batches(items: Sequence[T], sizes: Sequence[int], workers: int, per_worker: int = 4) -> list[list[T]]:
    """Split items into about `workers * per_worker` batches by total size (largest items first),
    the last `workers` of them half the size of the others.

    Executors run batches in this order, so each worker's last batch is a small one: the workers
    then finish close together even where a byte costs more in some files than in others (a
    worker idle while another finishes a full-size batch is lost time).
    """
    count = max(1, min(len(items), workers * per_worker))
    shares = [2 if i < count - workers else 1 for i in range(count)] if count > workers else [1] * count
    batches: list[list[T]] = [[] for _ in range(count)]
    loads = [0] * count
    for size, item in sorted(zip(sizes, items, strict=True), key=lambda pair: -pair[0]):
        slot = min(range(count), key=lambda i: loads[i] / shares[i])
        batches[slot].append(item)
        loads[slot] += max(size, 1)
    return [b for b in batches if b]


def should_parallelise(n_files: int, total_bytes: int) -> bool:
    return n_files >= SMALL_WORK_FILES and total_bytes >= SMALL_WORK_BYTES
