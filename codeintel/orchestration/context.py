"""Pipeline contexts: the picklable config that crosses processes, and the live context.

`PipelineContextConfig` is all a worker process or a Prefect task receives; it round-trips
through JSON.  `PipelineContext` adds the live services (gateway, tool service, change tracker,
executor, logger, per-file work done ahead) and is built from the config inside whichever
process runs a step.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codeintel.config import (
    ExecutionConfig,
    HistoryConfig,
    LoadedConfig,
    PathsConfig,
    ScanProfile,
    SnapshotConfig,
    StorageConfig,
    ToolsConfig,
)
from codeintel.ingestion.change_tracker import ChangeTracker, FileRef
from codeintel.ingestion.filework import FileOutput
from codeintel.ingestion.tools import ToolService
from codeintel.orchestration.executors import (
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    StepExecutor,
)
from codeintel.storage.gateway import StorageGateway


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True, slots=True)
class PipelineContextConfig:
    """Everything a step needs to rebuild its context in any process."""

    snapshot: SnapshotConfig
    execution: ExecutionConfig
    paths: PathsConfig
    storage: StorageConfig
    run_id: str = field(default_factory=new_run_id)
    mode: str = "local"
    full: bool = False

    @classmethod
    def from_loaded(
        cls, loaded: LoadedConfig, *, mode: str = "local", full: bool = False, run_id: str | None = None
    ) -> PipelineContextConfig:
        return cls(loaded.snapshot, loaded.execution, loaded.paths, loaded.storage, run_id or new_run_id(), mode, full)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PipelineContextConfig:
        data: dict[str, Any] = json.loads(text)
        ex = data["execution"]
        execution = ExecutionConfig(
            scan=ScanProfile(**{k: tuple(v) if isinstance(v, list) else v for k, v in ex["scan"].items()}),  # type: ignore[arg-type]
            tools=ToolsConfig(**ex["tools"]),
            history=HistoryConfig(**ex.get("history", {})),
            executor=ex["executor"],
            workers=ex["workers"],
            dask_address=ex["dask_address"],
        )
        snap = data["snapshot"]
        return cls(
            snapshot=SnapshotConfig(Path(snap["repo_root"]), snap["repo_name"], snap["commit"]),
            execution=execution,
            paths=PathsConfig(Path(data["paths"]["build_dir"])),
            storage=StorageConfig(
                Path(data["storage"]["db_path"]),
                float(data["storage"]["lock_timeout_s"]),
                Path(out) if (out := data["storage"].get("out_dir")) else None,
            ),
            run_id=data["run_id"],
            mode=data["mode"],
            full=data["full"],
        )


@dataclass(frozen=True, slots=True)
class FileWork:
    """What a per-file step extracts: the extractor it runs on each stale file
    (`filework.EXTRACTORS`) and the tables the rows go to."""

    step: str
    extractor: str
    tables: tuple[str, ...]


Ahead = dict[tuple[str, str | None], FileOutput]  # (path, hash) -> output


class AheadStore(Protocol):
    """Where work done ahead waits when its step may run in another process (a Dask task)."""

    def put(self, step: str, outputs: Ahead) -> None: ...

    def take(self, step: str) -> Ahead | None: ...


class FileWorkAhead:
    """Per-file work done ahead for per-file steps still to come in this run.

    When a per-file step parses its stale files, the extractors of the per-file steps that
    depend on it run on the same trees for the files those steps will find stale (same path
    and hash), so a cold run parses each file once instead of once a step.  Only dependants:
    they cannot have started yet, whatever runs steps side by side.  The outputs wait here (or,
    with a `store`, in the store: steps as Dask tasks) until their step takes them; a step that
    finds none (a file that changed, an extractor that failed) extracts its files itself.
    """

    def __init__(self, store: AheadStore | None = None) -> None:
        self._ahead: dict[str, list[FileWork]] = {}
        self._outputs: dict[str, Ahead] = {}
        self._lock = threading.Lock()
        self._store = store

    def plan(self, ahead: Mapping[str, Sequence[FileWork]]) -> None:
        """Per step: the per-file steps of this run to extract for while it parses."""
        with self._lock:
            self._ahead = {step: list(work) for step, work in ahead.items()}
            self._outputs = {}

    def later(self, step: str) -> list[FileWork]:
        """The per-file steps `step` extracts for (planned, depending on it)."""
        return list(self._ahead.get(step, ()))

    def keep(self, step: str, ref: FileRef, output: FileOutput) -> None:
        with self._lock:
            self._outputs.setdefault(step, {})[(ref.path, ref.hash)] = output

    def share(self) -> None:
        """Hand what was kept to the store, if any, for steps that run in other processes."""
        if self._store is None:
            return
        with self._lock:
            kept, self._outputs = self._outputs, {}
        for step, outputs in kept.items():
            self._store.put(step, outputs)

    def take(self, step: str, files: Sequence[FileRef]) -> tuple[list[FileOutput], list[FileRef]]:
        """The outputs done ahead for `step` among `files`, and the files still to extract."""
        with self._lock:
            ready = self._outputs.pop(step, None)
        if ready is None and self._store is not None:
            ready = self._store.take(step)
        ready = ready or {}
        found = [ready[(f.path, f.hash)] for f in files if (f.path, f.hash) in ready]
        return found, [f for f in files if (f.path, f.hash) not in ready]


class StartedAhead(Protocol):
    """Something a step started ahead of its turn (an external tool running in the background)."""

    def cancel(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StartAhead:
    """Work a step can start before its turn: `start(ctx)` is called as soon as step `after` has
    run (by the local runner, which runs steps one by one; Prefect and Dask run steps side by
    side instead).  The step takes what was started with `ctx.run_ahead.take(its name)` and does
    the work itself when there is nothing (another runner, a start that failed)."""

    after: str
    start: Callable[[PipelineContext], StartedAhead | None]


class RunAhead:
    """What steps started ahead in this process, until they take it (or the run ends)."""

    def __init__(self) -> None:
        self._started: dict[str, StartedAhead] = {}
        self._lock = threading.Lock()

    def start(self, step: str, ahead: StartAhead, ctx: PipelineContext) -> None:
        """Start `step`'s work ahead; a failure only means the step will do it in its turn."""
        try:
            started = ahead.start(ctx)
        except Exception as exc:
            logging.getLogger(__name__).info("step %s: nothing started ahead (%s)", step, exc)
            return
        if started is not None:
            with self._lock:
                old, self._started[step] = self._started.get(step), started
            if old is not None:
                old.cancel()

    def take(self, step: str) -> StartedAhead | None:
        with self._lock:
            return self._started.pop(step, None)

    def cancel_all(self) -> None:
        with self._lock:
            started, self._started = list(self._started.values()), {}
        for item in started:
            item.cancel()


class PipelineContext:
    """Config plus live services, local to one process."""

    def __init__(
        self, config: PipelineContextConfig, executor: StepExecutor | None = None, work_ahead: FileWorkAhead | None = None
    ) -> None:
        self.config = config
        self.gateway = StorageGateway(config.storage)
        self.tool_service = ToolService(config.execution.tools)
        self.change_tracker = ChangeTracker(self.gateway)
        self.logger = logging.getLogger("codeintel.pipeline")
        self.work_ahead = work_ahead or FileWorkAhead()
        self.run_ahead = RunAhead()
        self._executor = executor

    @property
    def executor(self) -> StepExecutor:
        if self._executor is None:
            self._executor = build_executor(self.config.execution)
        return self._executor

    @property
    def repo_root(self) -> Path:
        return self.config.snapshot.repo_root

    @property
    def run_id(self) -> str:
        return self.config.run_id

    def warm_up_workers(self) -> None:
        """Per-file work is planned: let the executor get ready for it in the background (a
        process pool starts what its workers fork from while the first steps run)."""
        executor = self.local_executor()
        if executor is not None:
            executor.warm_up()

    def local_executor(self) -> StepExecutor | None:
        """The executor when its work runs on this machine (a process pool, or this process),
        else None; asking reaches no cluster (a cluster is reached when work needs it)."""
        execution = self.config.execution
        if self._executor is None and execution.executor == "dask" and execution.dask_address:
            return None
        return None if self.executor.remote else self.executor

    def release_workers(self) -> None:
        """Whole-program phases call it after their per-file work (`StepExecutor.release`).

        A process pool stops its idle workers, so they do not add to the peak memory of the
        solve (a later `executor.map` starts new ones); a Dask worker running the step takes its
        thread back into its pool, so no batch of another step runs beside the solve in that
        process.  A pool shared by the run's concurrent steps is left alone.
        """
        if self._executor is not None:
            self._executor.release()

    def close(self) -> None:
        self.run_ahead.cancel_all()
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> PipelineContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_executor(execution: ExecutionConfig) -> StepExecutor:
    """The executor `execution` asks for."""
    if execution.executor == "serial" or (execution.worker_count == 1 and execution.executor == "process"):
        return SerialExecutor()
    if execution.executor == "dask":
        if not execution.dask_address:
            return ProcessExecutor(execution.worker_count)
        return DaskExecutor.connect(execution.dask_address)
    return ProcessExecutor(execution.worker_count)
