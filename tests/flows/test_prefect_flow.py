"""`export_flow` with real Prefect (test harness API) and a real Dask cluster of worker processes.

Checks that every runner stores the same tables as a local run, that the task graph Prefect
records is exactly `PIPELINE_DEPS`, that `codeintel` logs and a summary artifact reach the API,
that a transient lock timeout is retried and recovers, and that a step failing for real fails
the flow, leaves its descendants not run, and is caught up by the next `state:modified` run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.states import State

from codeintel.config import StorageConfig, load_config
from codeintel.errors import StepFailedError
from codeintel.ingestion.filework import FileOutput
from codeintel.orchestration.context import PipelineContext, PipelineContextConfig
from codeintel.orchestration.selection import descendants
from codeintel.orchestration.steps import PIPELINE_DEPS, run_pipeline
from codeintel.storage.gateway import StorageGateway
from codeintel.storage.lock import file_lock
from flows.prefect_flow import DaskAheadStore, drop_ahead, export_flow

Digests = Callable[[Path], dict[str, str]]


def run_flow(repo: Path, db: Path, **params: Any) -> State[Any]:
    params.setdefault("workers", 2)
    return export_flow(repo=str(repo), db=str(db), return_state=True, **params)


def flow_run_id_of(flow_state: State[Any]) -> UUID:
    flow_run_id = flow_state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def task_runs(flow_state: State[Any]) -> dict[str, Any]:
    """The flow run's task runs, by name."""
    flow_run_id = flow_run_id_of(flow_state)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run for run in runs}


def work_rows(db: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return StorageGateway(StorageConfig(db_path=db)).query(sql, params).to_pylist()


def published_rows(db: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of `sql` on the published copy (what readers see)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rel = con.sql(sql)
        return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def local_db(sample_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample repo exported with no Prefect at all (run_pipeline, 2 worker processes)."""
    db = tmp_path_factory.mktemp("local") / "ci.duckdb"
    loaded = load_config(sample_repo, cli={"db": db, "workers": 2}, env={})
    with PipelineContext(PipelineContextConfig.from_loaded(loaded)) as ctx:
        run_pipeline(ctx)
    return db


@pytest.fixture(scope="module")
def threads_run(
    prefect_api: str, sample_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[State[Any], Path]:
    db = tmp_path_factory.mktemp("threads") / "ci.duckdb"
    state = run_flow(sample_repo, db)
    assert state.is_completed(), state.message
    return state, db


def test_a_threads_run_stores_the_same_tables_as_a_local_run(
    threads_run: tuple[State[Any], Path], local_db: Path, table_digests: Digests
) -> None:
    expected = table_digests(local_db)
    assert expected["core.goids"].split(":")[0] != "0"
    assert table_digests(threads_run[1]) == expected


def test_a_threads_run_parses_each_file_once_for_all_per_file_steps(
    prefect_api: str, sample_repo: Path, tmp_path: Path, parse_counts: Counter[str]
) -> None:
    state = run_flow(sample_repo, tmp_path / "ci.duckdb", workers=1)  # per-file work in this process
    assert state.is_completed(), state.message
    assert len(parse_counts) == len(list(sample_repo.rglob("*.py"))) and set(parse_counts.values()) == {1}


def test_a_threads_run_decoding_the_index_in_the_shared_pool_stores_the_same_tables(
    prefect_api: str,
    sample_repo: Path,
    local_db: Path,
    tmp_path: Path,
    table_digests: Digests,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from codeintel.ingestion.scip import decode

    spread: list[int] = []
    real = decode._decode_parts

    def counting(parts: list[Any], mapper: Any) -> list[Any]:
        spread.append(len(parts) if mapper is not None else 0)
        return real(parts, mapper)

    monkeypatch.setattr(decode, "PARALLEL_MIN_BYTES", 0)  # the sample's index is small: in parts anyway
    monkeypatch.setattr(decode, "_decode_parts", counting)
    state = run_flow(sample_repo, tmp_path / "ci.duckdb")
    assert state.is_completed(), state.message
    assert spread == [4]  # two a worker, in the run's shared process pool
    assert table_digests(tmp_path / "ci.duckdb") == table_digests(local_db)


def test_work_done_ahead_goes_through_the_cluster_once_and_a_run_drops_what_is_left(dask_cluster: Any) -> None:
    from types import SimpleNamespace

    from distributed import Client

    output = FileOutput("pkg/a.py", "h1", {"graph.call_facts": [("pkg/a.py", "pkg.a", "{}")]})
    with Client(dask_cluster) as client:
        store = DaskAheadStore(client, "run1")
        store.put("call_graph", {("pkg/a.py", "h1"): output})
        store.put("import_graph", {("pkg/a.py", "h1"): output})  # its step never runs
        DaskAheadStore(client, "run2").put("call_graph", {})  # another run's
        assert store.take("call_graph") == {("pkg/a.py", "h1"): output}
        assert store.take("call_graph") is None  # taken once
        drop_ahead(SimpleNamespace(client=client), "run1")
        assert sorted(client.list_datasets()) == ["codeintel-ahead-run2-call_graph"]
        drop_ahead(SimpleNamespace(client=client), "run2")


CLUSTER_CASES = [
    # flow parameters (besides repo/db), steps run in this process?, per-file batches on the cluster?
    pytest.param({"runner": "dask", "dask_address": "CLUSTER"}, False, True, id="dask-tasks-on-the-cluster"),
    pytest.param(
        {"runner": "threads", "dask_address": "CLUSTER"}, True, True, id="threads-tasks-per-file-work-on-the-cluster"
    ),
    pytest.param({"granularity": "pipeline"}, True, False, id="pipeline-in-one-task"),
]


@pytest.mark.parametrize(("params", "steps_here", "batches_on_cluster"), CLUSTER_CASES)
def test_every_runner_topology_stores_the_same_tables_as_a_local_run(
    params: dict[str, Any],
    steps_here: bool,
    batches_on_cluster: bool,
    dask_cluster: Any,
    sample_repo: Path,
    local_db: Path,
    tmp_path: Path,
    table_digests: Digests,
) -> None:
    from distributed import Client, get_task_stream

    params = {k: dask_cluster.scheduler_address if v == "CLUSTER" else v for k, v in params.items()}
    db = tmp_path / "ci.duckdb"
    with Client(dask_cluster) as client, get_task_stream(client) as stream:
        state = run_flow(sample_repo, db, **params)
        leftover = [n for n in client.list_datasets() if str(n).startswith("codeintel-ahead-")]
        threads = sum(client.nthreads().values())
    assert state.is_completed(), state.message
    assert table_digests(db) == table_digests(local_db)
    keys = [str(t["key"]) for t in stream.data]
    assert any("extract_batch" in k for k in keys) == batches_on_cluster
    # each file is parsed once: only the first per-file steps (ast_ingest, extracting for the
    # three after it, and cst_ingest, tree-sitter's: the two roots of the per-file steps) send
    # batches (at most 4 a worker thread each); no work done ahead is left behind
    assert len({k for k in keys if "extract_batch" in k}) <= 4 * threads * 2
    assert leftover == []
    pids = {r["pid"] for r in work_rows(db, "SELECT pid FROM meta.step_runs")}
    assert (pids == {os.getpid()}) == steps_here
    if params.get("granularity") == "pipeline":
        assert set(task_runs(state)) == {"pipeline"}


def test_each_step_is_one_task_run_waiting_for_exactly_its_pipeline_deps(threads_run: tuple[State[Any], Path]) -> None:
    runs = task_runs(threads_run[0])
    assert set(runs) == set(PIPELINE_DEPS)
    names_by_id = {run.id: name for name, run in runs.items()}
    for name, run in runs.items():
        waited = {names_by_id[ref.id] for ref in run.task_inputs.get("wait_for", [])}
        assert waited == set(PIPELINE_DEPS[name]), name
        assert run.state_name == "Completed"


def _poll(read: Callable[[], list[Any]], timeout_s: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = read()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_codeintel_logs_and_a_step_summary_artifact_reach_the_prefect_api(threads_run: tuple[State[Any], Path]) -> None:
    flow_run_id = flow_run_id_of(threads_run[0])
    with get_client(sync_client=True) as client:

        def codeintel_logs() -> list[Any]:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            return [log for log in logs if log.name.startswith("codeintel.") and "step goids" in log.message]

        assert _poll(codeintel_logs), "no codeintel log record in the flow run's logs"
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["codeintel-export"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    assert len(artifacts) == 1
    for step in PIPELINE_DEPS:
        assert f"| {step} | succeeded | 1 |" in str(artifacts[0].data)
        assert f"| {step} | no |" in str(artifacts[0].data)  # the published data: not stale


class _HoldLockOnFirstSubmit(logging.Handler):
    """When the flow submits its first task, another thread takes the DB lock for `hold_s`."""

    def __init__(self, lock_path: Path, hold_s: float) -> None:
        super().__init__(logging.DEBUG)
        self.lock_path, self.hold_s = lock_path, hold_s
        self.holder: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.holder is not None or "Submitting task" not in record.getMessage():
            return
        acquired = threading.Event()
        self.holder = threading.Thread(target=self._hold, args=(acquired,), daemon=True)
        self.holder.start()
        acquired.wait(10)

    def _hold(self, acquired: threading.Event) -> None:
        with file_lock(self.lock_path, exclusive=True, timeout_s=10, holder="test: another run"):
            acquired.set()
            time.sleep(self.hold_s)


@pytest.fixture
def lock_held_on_first_submit(tmp_path: Path) -> Iterator[_HoldLockOnFirstSubmit]:
    logger = logging.getLogger("prefect.flow_runs")
    handler = _HoldLockOnFirstSubmit(StorageConfig(db_path=tmp_path / "ci.duckdb").lock_path, hold_s=1.5)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_a_lock_timeout_is_retried_and_the_step_recovers(
    prefect_api: str,
    sample_repo: Path,
    tmp_path: Path,
    lock_held_on_first_submit: _HoldLockOnFirstSubmit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODEINTEL_LOCK_TIMEOUT", "0.5")
    state = run_flow(sample_repo, tmp_path / "ci.duckdb", select=["repo_scan"])
    assert lock_held_on_first_submit.holder is not None
    assert state.is_completed(), state.message
    run = task_runs(state)["repo_scan"]
    assert run.run_count == 2
    with get_client(sync_client=True) as client:
        history = [s.name for s in client.read_task_run_states(run.id)]
    assert "Retrying" in history
    rows = work_rows(tmp_path / "ci.duckdb", "SELECT attempt, status FROM meta.step_runs WHERE step = 'repo_scan'")
    assert rows == [{"attempt": 2, "status": "succeeded"}]


def test_a_failing_step_fails_the_flow_its_descendants_do_not_run_and_the_next_run_catches_up(
    prefect_api: str, sample_repo: Path, tmp_path: Path, local_db: Path, table_digests: Digests
) -> None:
    db = tmp_path / "ci.duckdb"
    gateway = StorageGateway(StorageConfig(db_path=db))
    gateway.ensure_schema()
    with gateway.writer("test: schema drift") as w:  # a real fault: the step's insert cannot bind
        w.execute("ALTER TABLE analytics.function_metrics DROP COLUMN cyclomatic")
    with pytest.raises(StepFailedError) as failure:
        export_flow(repo=str(sample_repo), db=str(db), workers=2)
    downstream = descendants("function_metrics", PIPELINE_DEPS)
    assert downstream, "function_metrics has no dependants left to check"
    message = str(failure.value)
    assert "failed: function_metrics: " in message
    assert "not run (upstream failed): " + ", ".join(failure.value.not_run) in message
    assert "--select state:modified" in message
    assert failure.value.failed == ("function_metrics",) and set(failure.value.not_run) == downstream
    # a failed run publishes what it has: the steps that succeeded, and which steps are stale
    stale = {r["step"]: r["stale"] for r in published_rows(db, "SELECT step, stale FROM meta.step_status")}
    assert {step for step, flag in stale.items() if flag} == {"function_metrics", *downstream}
    assert published_rows(db, "SELECT count(*) AS n FROM core.goids")[0]["n"] > 0
    assert published_rows(db, "SELECT count(*) AS n FROM analytics.function_metrics")[0]["n"] == 0
    statuses = {r["step"]: r["status"] for r in work_rows(db, "SELECT step, status FROM meta.step_runs")}
    expected_status = {step: "not_run" if step in downstream else "succeeded" for step in PIPELINE_DEPS}
    assert statuses == {**expected_status, "function_metrics": "failed"}

    with gateway.writer("test: repair") as w:
        w.execute("DROP TABLE analytics.function_metrics")
    state = run_flow(sample_repo, db, select=["state:modified"])
    assert state.is_completed(), state.message
    runs = work_rows(
        db,
        "SELECT step, status, files_processed FROM meta.step_runs WHERE run_id = (SELECT arg_max(run_id, started_at) FROM meta.pipeline_runs)",
    )
    done = {r["step"]: (r["status"], r["files_processed"]) for r in runs}
    assert done["function_metrics"] == ("succeeded", 21)
    assert all(done[step][0] == "succeeded" for step in downstream)
    assert all(done[step][1] == 0 for step in ("ast_ingest", "goids") if step in done)
    assert not any(r["stale"] for r in published_rows(db, "SELECT stale FROM meta.step_status"))
    caught_up, expected = table_digests(db), table_digests(local_db)
    del caught_up["core.change_state"], expected["core.change_state"]  # this run saw no change
    assert caught_up == expected


def test_under_dask_the_halves_of_a_long_history_are_the_clusters_tasks(
    dask_cluster: Any, make_repo: Any, tmp_path: Path, table_digests: Digests
) -> None:
    """The git_history task (on a Dask worker) hands the two halves of a cold walk (`split`) to
    the cluster, one task each; the tables are a local run's, where they walk as processes."""
    from distributed import Client, get_task_stream

    from tests.ingestion.test_git_history_split import scripted_history

    repo = scripted_history(make_repo, tmp_path)
    (repo.root / "pyproject.toml").write_text("[tool.codeintel]\nhistory_split_min_commits = 10\n", encoding="utf-8")
    local = tmp_path / "local.duckdb"
    loaded = load_config(repo.root, cli={"db": local, "workers": 2}, env={})
    with PipelineContext(PipelineContextConfig.from_loaded(loaded)) as ctx:
        run_pipeline(ctx, ["git_history"])
    db = tmp_path / "dask.duckdb"
    with Client(dask_cluster) as client, get_task_stream(client) as stream:
        state = run_flow(repo.root, db, runner="dask", dask_address=dask_cluster.scheduler_address, select=["git_history"])
    assert state.is_completed(), state.message
    halves = [t for t in stream.data if "walk_part" in str(t["key"])]
    assert len(halves) == 2
    expected = {t: d for t, d in table_digests(local).items() if t.startswith("history.")}
    assert expected["history.function_changes"].split(":")[0] != "0"
    assert {t: d for t, d in table_digests(db).items() if t.startswith("history.")} == expected
