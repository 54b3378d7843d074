"""The run ledger: `meta.pipeline_runs` and `meta.step_runs`, written in every execution mode.

Each write is its own short transaction, so the ledger shows a step as running while it runs
and keeps the record of a failure even though the step's own transaction rolled back.  Runs whose
process died (same host, pid gone) are marked abandoned by the next run.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from codeintel.errors import ConfigError
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import StorageGateway


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to do / tool missing
    NOT_RUN = "not_run"  # an upstream step failed
    ABANDONED = "abandoned"  # its process died


def planned_steps(gateway: StorageGateway, run_id: str) -> list[str]:
    """The steps run `run_id` planned to run, in order (none for an unknown run)."""
    found = gateway.query(f"SELECT selected FROM {Table.PIPELINE_RUNS} WHERE run_id = ?", [run_id])
    return list(found.column(0)[0].as_py() or ()) if found.num_rows else []


def renamed_since(gateway: StorageGateway, repo: str, db: Path, *, full: bool) -> bool:
    """Whether the database's latest run named the repository otherwise; allowed only on --full.

    Raises:
        ConfigError: Renamed on a run that is not --full: GOIDs are keyed by the name, so the
            database would mix two names' rows.
    """
    found = gateway.query(f"SELECT repo, repo_root FROM {Table.PIPELINE_RUNS} ORDER BY started_at DESC LIMIT 1")
    if not found.num_rows or found.column(0)[0].as_py() == repo:
        return False
    if full:
        return True
    name, root = found.column(0)[0].as_py(), found.column(1)[0].as_py()
    raise ConfigError(
        f"{db} holds the index of repository {name!r} (last from {root}); this run names it {repo!r} "
        f"(by default the directory's name). GOIDs are keyed by the name, so one database cannot mix both. "
        f'Keep the name: CODEINTEL_REPO_NAME={name} (or repo_name = "{name}" in [tool.codeintel]); '
        f"rebuild it under {repo!r}: add --full; or export to another --db."
    )


def begin_run(
    gateway: StorageGateway,
    run_id: str,
    mode: str,
    repo: str,
    repo_root: str,
    commit: str | None,
    selected: Sequence[str],
) -> None:
    with gateway.writer(f"run {run_id} start") as w:
        _mark_abandoned(w.con)
        w.execute(
            f"INSERT INTO {Table.PIPELINE_RUNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, now(), NULL, ?, NULL)",
            [
                run_id,
                mode,
                repo,
                repo_root,
                commit,
                list(selected),
                socket.gethostname(),
                os.getpid(),
                RunStatus.RUNNING,
            ],
        )


def finish_run(gateway: StorageGateway, run_id: str, status: str, error: str | None = None) -> None:
    with gateway.writer(f"run {run_id} finish") as w:
        w.execute(
            f"UPDATE {Table.PIPELINE_RUNS} SET finished_at = now(), status = ?, error = ? WHERE run_id = ?",
            [status, error, run_id],
        )


def begin_step(gateway: StorageGateway, run_id: str, step: str, attempt: int | None = None) -> int:
    """Record that `step` starts; returns its attempt number (the next one when not given)."""
    with gateway.writer(f"run {run_id} step {step} start") as w:
        if attempt is None:
            found = w.con.execute(
                f"SELECT coalesce(max(attempt), 0) + 1 FROM {Table.STEP_RUNS} WHERE run_id = ? AND step = ?",
                [run_id, step],
            ).fetchone()
            attempt = int(found[0]) if found else 1
        w.execute(
            f"INSERT INTO {Table.STEP_RUNS} VALUES (?, ?, ?, ?, ?, ?, now(), NULL, 0, 0, 0, NULL, NULL)",
            [run_id, step, attempt, RunStatus.RUNNING, socket.gethostname(), os.getpid()],
        )
    return attempt


def finish_step(
    gateway: StorageGateway, run_id: str, step: str, attempt: int, status: str, *,
    rows: int = 0, files: int = 0, deleted: int = 0, note: str | None = None, error: str | None = None,
    ran: tuple[datetime, datetime] | None = None,
) -> None:  # fmt: skip
    """Record how the step ended; `ran`: when its own work started and ended (the runner's
    bookkeeping before and after it left out), else from `begin_step` to now."""
    started, finished = ran or (None, None)
    with gateway.writer(f"run {run_id} step {step} finish") as w:
        w.execute(
            f"UPDATE {Table.STEP_RUNS} SET status = ?, started_at = coalesce(?, started_at), "
            "finished_at = coalesce(?, now()), rows_written = ?, files_processed = ?, files_deleted = ?, "
            "note = ?, error = ? WHERE run_id = ? AND step = ? AND attempt = ?",
            [status, started, finished, rows, files, deleted, note, error, run_id, step, attempt],
        )


def record_not_run(gateway: StorageGateway, run_id: str, steps: Sequence[str], reason: str) -> None:
    if not steps:
        return
    with gateway.writer(f"run {run_id} not run") as w:
        for step in steps:
            w.execute(
                f"INSERT INTO {Table.STEP_RUNS} VALUES (?, ?, 1, ?, ?, ?, NULL, NULL, 0, 0, 0, NULL, ?)",
                [run_id, step, RunStatus.NOT_RUN, socket.gethostname(), os.getpid(), reason],
            )


def last_step_status(gateway: StorageGateway) -> dict[str, str]:
    """The status of each step's most recent attempt (any run)."""
    rows = gateway.query(
        f"""SELECT step, arg_max(status, coalesce(started_at, finished_at, TIMESTAMPTZ '1970-01-01')) AS status
            FROM {Table.STEP_RUNS} WHERE status <> '{RunStatus.NOT_RUN}' GROUP BY step"""
    )
    return dict(zip(rows["step"].to_pylist(), rows["status"].to_pylist(), strict=True))


def step_runs(gateway: StorageGateway, run_id: str) -> list[dict[str, Any]]:
    return gateway.query(
        f"SELECT * FROM {Table.STEP_RUNS} WHERE run_id = ? ORDER BY started_at NULLS LAST, step", [run_id]
    ).to_pylist()


def _mark_abandoned(con: Any) -> None:
    host = socket.gethostname()
    rows = con.execute(
        f"SELECT run_id, pid FROM {Table.PIPELINE_RUNS} WHERE status = ? AND host = ?", [RunStatus.RUNNING, host]
    ).fetchall()
    for run_id, pid in rows:
        if pid is not None and not _alive(int(pid)):
            con.execute(
                f"UPDATE {Table.PIPELINE_RUNS} SET status = ?, finished_at = now(), error = 'process died' WHERE run_id = ?",
                [RunStatus.ABANDONED, run_id],
            )
            con.execute(
                f"UPDATE {Table.STEP_RUNS} SET status = ?, finished_at = now(), error = 'process died' WHERE run_id = ? AND status = ?",
                [RunStatus.ABANDONED, run_id, RunStatus.RUNNING],
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
