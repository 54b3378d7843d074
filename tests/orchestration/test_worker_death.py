"""A file whose worker process dies costs that file one row per step, not the step.

A worker is killed for real (`os._exit` / SIGKILL in the worker process, as the OOM killer or a
crash in native code would); what is simulated is only *which* file does it, since no file
kills the real extractors on purpose.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from codeintel.ingestion.filework import FileBatch, FileOutput, extract_batch
from codeintel.orchestration import stepio
from tests.conftest import MakeIndexer, MakeRepo

KILLER = "pkg/killer.py"


def _extract_or_exit(batch: FileBatch) -> list[dict[str, FileOutput]]:
    if any(f.path == KILLER for f in batch.files):
        os._exit(3)
    return extract_batch(batch)


def _extract_or_sigkill(batch: FileBatch) -> list[dict[str, FileOutput]]:
    if any(f.path == KILLER for f in batch.files):
        os.kill(os.getpid(), signal.SIGKILL)
    return extract_batch(batch)


def _files() -> dict[str, str]:
    files = {"pkg/__init__.py": ""}
    for i in range(12):
        files[f"pkg/mod{i}.py"] = f"def f{i}(x):\n    return g{i}(x)\n\n\ndef g{i}(x):\n    return x + {i}\n"
    files[KILLER] = "def boom():\n    return 1\n"
    return files


@pytest.mark.parametrize("extract", [_extract_or_exit, _extract_or_sigkill], ids=["exit", "sigkill"])
def test_a_file_that_kills_its_worker_is_one_row_per_step_and_the_rest_is_indexed(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer, monkeypatch: pytest.MonkeyPatch, extract: object
) -> None:
    monkeypatch.setattr(stepio, "extract_batch", extract)
    monkeypatch.setattr(stepio, "should_parallelise", lambda n_files, total_bytes: True)
    idx = make_indexer(make_repo(tmp_path, _files()))

    run = idx.run(["function_metrics"], executor="process", workers=2)

    assert run.ok, run.failed
    errors = idx.query("SELECT path, step, kind, error_type FROM core.parse_errors ORDER BY step")
    assert errors == [
        (KILLER, "ast_ingest", "worker_died", "WorkerDied"),
        (KILLER, "function_metrics", "worker_died", "WorkerDied"),
    ]
    indexed = {path for (path,) in idx.query("SELECT DISTINCT path FROM core.goids")}
    assert indexed == {p for p in _files() if p != KILLER}
    metrics = idx.query("SELECT count(*) FROM analytics.function_metrics")
    assert metrics == [(24,)]

    # the file counts as processed: the next run has nothing to do (until it or our code changes)
    again = idx.run(["function_metrics"], executor="process", workers=2)
    assert again.ok
    assert again.results["ast_ingest"].note == "no stale files"


@pytest.mark.slow
def test_on_dask_a_file_that_kills_its_workers_is_one_row_per_step(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dask retries a task whose worker died on other workers, then gives up (`KilledWorker`)."""
    distributed = pytest.importorskip("distributed")
    import dask
    monkeypatch.setattr(stepio, "extract_batch", _extract_or_exit)
    monkeypatch.setattr(stepio, "should_parallelise", lambda n_files, total_bytes: True)
    idx = make_indexer(make_repo(tmp_path, _files()))
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
    ):
        run = idx.run(["goids"], executor="dask", dask_address=cluster.scheduler_address)

    assert run.ok, run.failed
    assert idx.query("SELECT path, step, kind FROM core.parse_errors") == [(KILLER, "ast_ingest", "worker_died")]
    indexed = {path for (path,) in idx.query("SELECT DISTINCT path FROM core.goids")}
    assert indexed == {p for p in _files() if p != KILLER}


def _extract_noting_spool(batch: FileBatch) -> list[dict[str, FileOutput]]:
    with open(Path(batch.root).parent / "spools.txt", "a") as notes:  # (workers fork from a forkserver: not env)
        notes.write(f"{batch.spool}\t{batch.spool is not None and os.path.isdir(batch.spool)}\n")
    return extract_batch(batch)


def test_the_pools_workers_hand_their_rows_over_through_a_spool_removed_after_the_step(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stepio, "extract_batch", _extract_noting_spool)
    monkeypatch.setattr(stepio, "should_parallelise", lambda n_files, total_bytes: True)
    files = {p: text for p, text in _files().items() if p != KILLER}
    idx = make_indexer(make_repo(tmp_path, files))

    run = idx.run(["cst_ingest"], executor="process", workers=2)

    assert run.ok, run.failed
    seen = {tuple(line.split("\t")) for line in (idx.repo.parent / "spools.txt").read_text().splitlines()}
    assert len(seen) == 1, seen  # one spool for the step's map, there while its workers ran
    ((spool, existed),) = seen
    assert existed == "True"
    assert not Path(spool).exists()
    names = idx.query("SELECT count(DISTINCT path) FROM core.name_sites")
    assert names == [(len(files) - 1,)]  # every file with a name gave its rows (not the empty __init__)
