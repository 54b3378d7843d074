"""The pipeline as a Prefect flow: one generic task per step, wired from `PIPELINE_DEPS` alone.

`export_flow` builds one picklable `PipelineContextConfig`, plans the steps, submits
`run_pipeline_step_task` once per step in topological order with `wait_for=` the futures of the
step's planned dependencies (so independent steps overlap), waits on every future, records the
steps that never ran, and either publishes the database or fails naming the failed steps, the
never-run steps and the resume command.  It knows nothing of what any step does.

Task runners: threads (default) or Dask (`runner="dask"`: a temporary `LocalCluster` of
`dask_workers` processes, or the cluster at `dask_address`).  With `runner="threads"` and a
`dask_address`, tasks stay in this process and only the per-file work goes to the cluster (the
topology for clusters that cannot share the DuckDB file).  The CLI calls `export_flow(...)` with
keyword arguments; `python -m flows.prefect_flow REPO ...` runs the same flow.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import Task

from codeintel.config import load_config
from codeintel.errors import CodeIntelError, ConfigError, StepFailedError, StorageLockTimeout
from codeintel.ingestion.tools import ToolService
from codeintel.orchestration import ledger
from codeintel.orchestration.context import (
    Ahead,
    FileWorkAhead,
    PipelineContext,
    PipelineContextConfig,
    build_executor,
)
from codeintel.orchestration.executors import DaskExecutor, ProcessExecutor, StepExecutor
from codeintel.orchestration.selection import plan_steps
from codeintel.orchestration.status import read_step_status
from codeintel.orchestration.steps import (
    PIPELINE_DEPS,
    begin_pipeline,
    end_pipeline,
    failure_message,
    file_work_ahead,
    run_pipeline,
    run_step,
    step_retries,
)

T = TypeVar("T")
R = TypeVar("R")

RUNNERS = ("threads", "dask")
GRANULARITIES = ("step", "pipeline")
# Faults that go away by themselves (another run holds the DB lock): retried once by default.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (StorageLockTimeout,)
TRANSIENT_RETRIES = 1
TRANSIENT_RETRY_DELAY_S = 2.0
MAX_CONCURRENT_STEPS = 8


# ------------------------------------------------------------------------------------ logging


class _InRunContext(logging.Filter):
    """Pass records only inside a flow or task run (the API handler needs a run id)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return FlowRunContext.get() is not None or TaskRunContext.get() is not None


class CodeIntelAPILogHandler(APILogHandler):
    """Prefect's API log handler, attached to the `codeintel` logger of whatever process runs."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_InRunContext())


def send_codeintel_logs_to_prefect(level: int = logging.INFO) -> None:
    """Make `codeintel.*` records of this process appear in the flow run's logs (idempotent).

    Works without `PREFECT_LOGGING_EXTRA_LOGGERS`, in the flow's process and on Dask workers.
    """
    logger = logging.getLogger("codeintel")
    if not any(isinstance(h, CodeIntelAPILogHandler) for h in logger.handlers):
        logger.addHandler(CodeIntelAPILogHandler())
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)


# -------------------------------------------------------------------------------------- tasks


def is_retryable(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a step when it declares retries, or when its error is transient (lock timeout).

    `task_run.name` is the step name (`task_run_name="{step_name}"`).  The pipeline granularity
    task is never retried (a rerun would begin the same run id twice).
    """
    if task_run.name not in PIPELINE_DEPS:
        return False
    declared, _ = step_retries(task_run.name)
    error = getattr(state.data, "result", state.data)  # an exception, or a record holding one
    return declared > 0 or isinstance(error, TRANSIENT_ERRORS)


class _BorrowedExecutor:
    """A run's shared executor as one step sees it: the step's context must not close it."""

    def __init__(self, inner: StepExecutor) -> None:
        self.inner = inner
        self.workers = inner.workers
        self.remote = inner.remote

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        return self.inner.map(fn, items, priority)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def release(self) -> None:
        return None  # other steps of the run may be using it

    def close(self) -> None:
        return None


# run id -> the per-file executor of that run, and its per-file work done ahead, shared by its
# steps running in this process (threads runner): one process pool a run and one parse a file,
# as in a local run, instead of one a step.
_RUN_SHARED: dict[str, tuple[StepExecutor, FileWorkAhead]] = {}


@contextmanager
def shared_executor(cfg: PipelineContextConfig, names: Sequence[str], *, warm: bool) -> Iterator[None]:
    """Give the run's step tasks in this process one executor, and one `FileWorkAhead` planned
    for `names`, until the run ends (the executor is closed then).

    With `warm`, a process pool starts its workers at once, while the first steps wait on the
    API and scan: each worker imports the main module (with Prefect: seconds).  Only worth it
    when per-file work is likely (a first run, or `full`); otherwise the pool starts on demand.
    """
    executor = build_executor(cfg.execution)
    ahead = FileWorkAhead()
    ahead.plan(file_work_ahead(names))
    _RUN_SHARED[cfg.run_id] = (executor, ahead)
    warm_up = None
    if warm and isinstance(executor, ProcessExecutor):
        warm_up = threading.Thread(target=executor.map, args=(_ready, list(range(executor.workers))), daemon=True)
        warm_up.start()
    try:
        yield
    finally:
        _RUN_SHARED.pop(cfg.run_id, None)
        if warm_up is not None:
            warm_up.join()
        executor.close()


def _ready(_: int) -> None:
    """A no-op job that makes the pool start a worker process."""


@contextmanager
def step_context(cfg: PipelineContextConfig, *, one_step: bool = True) -> Iterator[PipelineContext]:
    """A live context for `cfg`; on a Dask worker its per-file work uses the whole cluster.

    In the flow's process the steps share the run's executor and work done ahead
    (`shared_executor`).  On a Dask worker the step secedes from the worker's thread pool while
    its batches run, so that this worker's slot runs batches too (no deadlock with one thread a
    worker), and rejoins once its per-file work is done (`PipelineContext.release_workers`): a
    whole-program phase then holds the slot, instead of sharing its process, and the GIL, with
    batches of other steps.  A `one_step` task there hands its work done ahead to the steps
    after it through the cluster (`DaskAheadStore`).
    """
    if not _on_dask_worker():
        executor, ahead = _RUN_SHARED.get(cfg.run_id, (None, None))
        with PipelineContext(cfg, _BorrowedExecutor(executor) if executor else None, ahead) as ctx:
            yield ctx
        return
    from distributed import get_client, rejoin, secede

    client = get_client()
    secede()
    executor = DaskExecutor(client, on_release=rejoin)
    ahead = FileWorkAhead(DaskAheadStore(client, cfg.run_id)) if one_step else None
    try:
        with PipelineContext(cfg, executor, ahead) as ctx:
            if ahead is not None:
                ahead.plan(file_work_ahead(ledger.planned_steps(ctx.gateway, cfg.run_id)))
            yield ctx
    finally:
        executor.release()  # rejoin, if the step did not already


class DaskAheadStore:
    """Work done ahead, kept on the cluster (a published dataset a step) until its step takes it.

    The step that extracted it scatters it to its own worker; the taker fetches it from there.
    What a failed run leaves is dropped when the flow ends (`drop_ahead`).
    """

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def put(self, step: str, outputs: Ahead) -> None:
        [future] = self.client.scatter([outputs], hash=False)
        self.client.publish_dataset(future, name=_ahead_name(self.run_id, step), override=True)

    def take(self, step: str) -> Ahead | None:
        name = _ahead_name(self.run_id, step)
        future = self.client.get_dataset(name, default=None)
        if future is None:
            return None
        outputs: Ahead = future.result()
        self.client.unpublish_dataset(name)
        return outputs


def _ahead_name(run_id: str, step: str) -> str:
    return f"codeintel-ahead-{run_id}-{step}"


def drop_ahead(task_runner: TaskRunner[Any], run_id: str) -> None:
    """Unpublish the run's work done ahead that no step took (its step failed or never ran)."""
    client = getattr(task_runner, "client", None)
    if client is None:
        return
    prefix = _ahead_name(run_id, "")
    for name in client.list_datasets():
        if str(name).startswith(prefix):
            client.unpublish_dataset(name)


def _on_dask_worker() -> bool:
    """Whether this thread runs a task of a Dask worker (`distributed` imported by then)."""
    if "distributed" not in sys.modules:  # importing it only to find out would cost 0.25 s
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def _current_attempt() -> int:
    context = TaskRunContext.get()
    return max(1, context.task_run.run_count) if context and context.task_run else 1


@task(task_run_name="{step_name}", cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=is_retryable)
def run_pipeline_step_task(step_name: str, ctx_cfg: PipelineContextConfig) -> dict[str, Any]:
    """Run one pipeline step in whatever process runs this task; attempt = Prefect's run count."""
    send_codeintel_logs_to_prefect()
    with step_context(ctx_cfg) as ctx:
        result = run_step(ctx, step_name, attempt=_current_attempt())
    return {"step": step_name, "rows": result.rows_written, "files": result.files_processed}


@task(task_run_name="pipeline", cache_policy=NO_CACHE, persist_result=False)
def run_whole_pipeline_task(ctx_cfg: PipelineContextConfig, select: list[str] | None, exclude: list[str]) -> list[str]:
    """`granularity="pipeline"`: the whole selection, in order, inside one task."""
    send_codeintel_logs_to_prefect()
    with step_context(ctx_cfg, one_step=False) as ctx:  # run_pipeline keeps work ahead in this process
        return run_pipeline(ctx, select, exclude).steps


def step_task(step_name: str) -> Task[Any, Any]:
    """The generic task with the step's retry policy (declared by its class, else transient)."""
    declared, delay = step_retries(step_name)
    if declared > 0:
        return run_pipeline_step_task.with_options(retries=declared, retry_delay_seconds=delay)
    return run_pipeline_step_task.with_options(retries=TRANSIENT_RETRIES, retry_delay_seconds=TRANSIENT_RETRY_DELAY_S)


# ------------------------------------------------------------------------------ task runners


def make_task_runner(runner: str, dask_address: str | None, dask_workers: int) -> TaskRunner[Any]:
    """Threads, or Dask: the cluster at `dask_address` or a temporary LocalCluster of processes."""
    if runner == "threads":
        return ThreadPoolTaskRunner(max_workers=MAX_CONCURRENT_STEPS)
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    cluster = {"n_workers": dask_workers, "processes": True, "threads_per_worker": 1, "dashboard_address": None}
    return DaskTaskRunner(cluster_kwargs=cluster)


def freeze_dask_workers(task_runner: TaskRunner[Any]) -> None:
    """Freeze what each Dask worker holds now (its imports, Prefect's among them) out of the GC.

    As in `ProcessExecutor`: per-file parsing makes the cyclic GC run often, and it would walk
    every object Prefect's import created, every time.
    """
    client = getattr(task_runner, "client", None)
    if client is not None:
        client.run(gc.freeze)


@contextmanager
def api_for_dask_workers(runner: str, dask_address: str | None) -> Iterator[None]:
    """Point Dask workers at this flow's Prefect API instead of a server of their own each.

    With `PREFECT_API_URL` set, the workers receive it with the serialized run context.  Without
    it this flow runs on an ephemeral server (a local subprocess); a temporary LocalCluster on
    this machine shares that server.  An existing cluster may be on other hosts, which cannot
    reach it, so then we refuse and say how to set `PREFECT_API_URL`.
    """
    if runner != "dask" or PREFECT_API_URL.value():
        yield
        return
    if dask_address:
        raise ConfigError(
            f"runner 'dask' with the cluster at {dask_address} needs a Prefect server every worker "
            "can reach: start one (`prefect server start`) and set PREFECT_API_URL "
            "(`prefect config set PREFECT_API_URL=http://<host>:4200/api`) in the flow's and the "
            "workers' environment"
        )
    from prefect.server.api.server import SubprocessASGIServer

    with temporary_settings({PREFECT_API_URL: SubprocessASGIServer().api_url}):
        yield


# --------------------------------------------------------------------------------------- flow


def build_context_config(
    repo: str,
    db: str | None,
    full: bool,
    runner: str,
    dask_address: str | None,
    workers: int,
    lock_timeout: float | None = None,
    out_dir: str | None = None,
) -> PipelineContextConfig:
    """The one config every task rebuilds its context from."""
    if runner not in RUNNERS:
        raise ConfigError(f"runner {runner!r} is not one of {', '.join(RUNNERS)}")
    cli: dict[str, Any] = {
        "db": db, "workers": workers if workers > 0 else None, "lock_timeout": lock_timeout, "out_dir": out_dir
    }  # fmt: skip
    if runner == "threads" and dask_address:
        cli.update(executor="dask", dask_address=dask_address)
    mode = "prefect-dask" if runner == "dask" or dask_address else "prefect"
    loaded = load_config(Path(repo), cli=cli)
    commit = ToolService(loaded.execution.tools).git_head(loaded.snapshot.repo_root)
    loaded = replace(loaded, snapshot=replace(loaded.snapshot, commit=commit))
    return PipelineContextConfig.from_loaded(loaded, mode=mode, full=full)


def submit_steps(
    runner: TaskRunner[Any], names: Sequence[str], cfg: PipelineContextConfig
) -> dict[str, PrefectFuture[Any]]:
    """Submit every step in topological order, waiting for the futures of its planned deps."""
    futures: dict[str, PrefectFuture[Any]] = {}
    for name in names:
        upstream = [futures[dep] for dep in PIPELINE_DEPS[name] if dep in futures]
        futures[name] = runner.submit(step_task(name), {"step_name": name, "ctx_cfg": cfg}, wait_for=upstream)
    return futures


def outcome(futures: Mapping[str, PrefectFuture[Any]]) -> tuple[dict[str, str], list[str]]:
    """Wait on every future: (failed step -> error, steps that never ran)."""
    failed: dict[str, str] = {}
    not_run: list[str] = []
    for name, future in futures.items():
        future.wait()
        state = future.state
        if state.is_completed():
            continue
        if state.is_failed() or state.is_crashed():
            error = _exception_of(state)
            failed[name] = f"{type(error).__name__}: {error}" if error else (state.message or str(state.type))
        else:
            not_run.append(name)
    return failed, not_run


def _exception_of(state: State[Any]) -> BaseException | None:
    try:
        found = state.result(raise_on_failure=False)
    except Exception:  # the result could not be read back: fall back to the state's message
        return None
    return found if isinstance(found, BaseException) else None


def summary_markdown(run_id: str, rows: Sequence[Mapping[str, Any]], status: Sequence[Mapping[str, Any]] = ()) -> str:
    """A table of the run's step attempts (from `meta.step_runs`) and of each step's freshness
    (`meta.step_status`)."""
    lines = [
        f"# CodeIntel export `{run_id}`",
        "",
        "| step | status | attempt | rows | files | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        started, finished = r.get("started_at"), r.get("finished_at")
        seconds = f"{(finished - started).total_seconds():.2f}" if started and finished else ""
        lines.append(
            f"| {r['step']} | {r['status']} | {r['attempt']} | {r['rows_written']} | {r['files_processed']} | {seconds} |"
        )
    if status:
        lines += ["", "## Published data", "", "| step | stale | last good run | commit | why stale |", "|---|---|---|---|---|"]
        for s in status:
            commit = (s["last_success_commit"] or "")[:10]
            why = (s["stale_reason"] or "").replace("|", "/")
            lines.append(
                f"| {s['step']} | {'yes' if s['stale'] else 'no'} | {s['last_success_run_id'] or ''} | {commit} | {why} |"
            )
    return "\n".join(lines)


def dump_published_db(cfg: PipelineContextConfig) -> str | None:
    """Dump what was just published to the configured out dir (if any); the error, if it failed."""
    if cfg.storage.out_dir is None:
        return None
    from codeintel.serving.dump import dump_published

    try:
        done = dump_published(cfg.storage.db_path, cfg.storage.out_dir)
    except CodeIntelError as exc:
        get_run_logger().error("published %s, but the dump to %s failed: %s", cfg.storage.db_path, cfg.storage.out_dir, exc)
        return f"published {cfg.storage.db_path}, but the dump to {cfg.storage.out_dir} failed: {exc}"
    get_run_logger().info("dumped %d files (%d rows) to %s", done.files, done.rows, cfg.storage.out_dir)
    return None


def publish_summary(ctx: PipelineContext) -> None:
    rows = ledger.step_runs(ctx.gateway, ctx.run_id)
    with ctx.gateway.reader() as con:
        status = read_step_status(con)
    create_markdown_artifact(
        summary_markdown(ctx.run_id, rows, status), key="codeintel-export", description=f"CodeIntel run {ctx.run_id}"
    )


@flow(name="codeintel-export", persist_result=False)
def export_flow(
    repo: str,
    db: str | None = None,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
    full: bool = False,
    runner: str = "threads",
    dask_address: str | None = None,
    dask_workers: int = 2,
    granularity: str = "step",
    workers: int = 0,
    lock_timeout: float | None = None,
    out_dir: str | None = None,
) -> dict[str, list[str]]:
    """Export `repo` into the CodeIntel database, one Prefect task per pipeline step.

    Args:
        repo: The repository to index.
        db: The published database path (default from config: build/codeintel.duckdb).
        select: Step selectors (dbt syntax: `goids+`, `state:modified`); all steps when empty.
        exclude: Selectors to leave out.
        full: Forget the selected steps' state and redo every file.
        runner: "threads" (tasks in this process) or "dask" (tasks on a Dask cluster).
        dask_address: An existing Dask scheduler; with runner "threads" only per-file work uses it.
        dask_workers: Worker processes of the temporary LocalCluster (runner "dask", no address).
        granularity: "step" (a task per step) or "pipeline" (the whole run in one task).
        workers: Per-file worker processes of each step (0: one per core).
        lock_timeout: Seconds to wait for the database lock (default from config).
        out_dir: After publishing, dump every table and docs view there as Parquet and JSONL
            (default from config: CODEINTEL_OUT_DIR, `[tool.codeintel] out_dir`; none).

    Returns:
        {"succeeded": [...]} step names.

    Raises:
        StepFailedError: naming the failed steps, the never-run steps and the resume command.
    """
    if granularity not in GRANULARITIES:
        raise ConfigError(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    send_codeintel_logs_to_prefect()
    cfg = build_context_config(repo, db, full, runner, dask_address, workers, lock_timeout, out_dir)
    get_run_logger().info(
        "codeintel run %s (%s, %s granularity) of %s", cfg.run_id, cfg.mode, granularity, cfg.snapshot.repo_root
    )
    with PipelineContext(cfg) as ctx, api_for_dask_workers(runner, dask_address):
        ctx.gateway.ensure_schema()
        if granularity == "pipeline":
            return _run_in_one_task(ctx, make_task_runner(runner, dask_address, dask_workers), select, exclude or [])
        names = plan_steps(ctx, select, exclude or ())
        begin_pipeline(ctx, names)
        try:
            # Dask tasks run on the workers, which use the cluster for per-file work instead.
            first_run = cfg.full or not ledger.last_step_status(ctx.gateway)
            executor_scope = shared_executor(cfg, names, warm=first_run) if runner == "threads" else nullcontext()
            with executor_scope, make_task_runner(runner, dask_address, dask_workers) as task_runner:
                freeze_dask_workers(task_runner)
                failed, not_run = outcome(submit_steps(task_runner, names, cfg))
                drop_ahead(task_runner, cfg.run_id)
        except BaseException as exc:
            end_pipeline(ctx, {"flow": f"{type(exc).__name__}: {exc}"}, [])
            raise
        ledger.record_not_run(ctx.gateway, ctx.run_id, not_run, "an upstream step failed")
        end_pipeline(ctx, failed, not_run)
        ctx.gateway.publish()  # every run publishes what it has; meta.step_status says what is stale
        publish_summary(ctx)
        dump_error = dump_published_db(cfg)
        if failed:
            raise StepFailedError(failure_message(ctx, failed, not_run, published=True), failed, not_run, published=True)
        if dump_error:
            raise CodeIntelError(dump_error)
        return {"succeeded": [n for n in names if n not in not_run and n not in failed]}


def _run_in_one_task(
    ctx: PipelineContext, runner: TaskRunner[Any], select: list[str] | None, exclude: list[str]
) -> dict[str, list[str]]:
    with runner:
        future = runner.submit(run_whole_pipeline_task, {"ctx_cfg": ctx.config, "select": select, "exclude": exclude})
        future.wait()
    publish_summary(ctx)
    dump_error = dump_published_db(ctx.config)  # the task published, failed steps or not
    succeeded = list(future.result())  # raises the task's StepFailedError
    if dump_error:
        raise CodeIntelError(dump_error)
    return {"succeeded": succeeded}


# ---------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m flows.prefect_flow REPO [--db ...] [--runner threads|dask] ...`."""
    parser = argparse.ArgumentParser(prog="python -m flows.prefect_flow", description=export_flow.__doc__)
    parser.add_argument("repo")
    parser.add_argument("--db")
    parser.add_argument("--select", nargs="*", default=None)
    parser.add_argument("--exclude", nargs="*", default=None)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--runner", choices=RUNNERS, default="threads")
    parser.add_argument("--dask-address")
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--granularity", choices=GRANULARITIES, default="step")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    try:
        export_flow(**vars(args))
    except (StepFailedError, ConfigError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    # Run the module's own flow, not this `__main__` copy, so that tasks sent to Dask workers
    # are pickled by reference (`flows.prefect_flow.run_pipeline_step_task`), not by value.
    from flows.prefect_flow import main as module_main

    sys.exit(module_main())
