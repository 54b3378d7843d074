"""Each step's freshness: `meta.step_status`, rewritten at the end of every run and published.

Every run publishes what it has (as dbt keeps each model's last good build): a step that failed,
or was not run because an upstream step failed, keeps its last good output, and this table says
so.  One row per pipeline step: the status of its last attempt, its last successful run (run id,
commit, time), whether its output is stale and why, and its last error.

A step is stale when its last attempt did not succeed, when it never succeeded, when its inputs
changed since it last succeeded (a per-file step with files it has not processed; any other
step whose inputs' fingerprint moved on), or when a step it depends on is stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codeintel.orchestration.ledger import RunStatus
from codeintel.orchestration.stepio import fingerprint
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import Writer

_DONE = (RunStatus.SUCCEEDED, RunStatus.SKIPPED)


@dataclass(frozen=True, slots=True)
class StepStatus:
    """One row of meta.step_status."""

    position: int
    step: str
    last_status: str | None
    last_run_id: str | None
    last_success_run_id: str | None
    last_success_commit: str | None
    last_success_at: Any
    stale: bool
    stale_reason: str | None
    last_error: str | None


def write_step_status(w: Writer, steps: Sequence[Any], deps: Mapping[str, tuple[str, ...]]) -> list[StepStatus]:
    """Recompute meta.step_status for `steps` (in dependency order) inside transaction `w`."""
    con = w.con
    # a not-run record has no times of its own: it counts from its run's start
    at = "coalesce(s.started_at, s.finished_at, r.started_at)"
    last = {
        r[0]: r[1:]
        for r in con.execute(
            f"""SELECT s.step, arg_max_null(s.status, {at}), arg_max_null(s.run_id, {at}), arg_max_null(s.error, {at})
                FROM {Table.STEP_RUNS} s JOIN {Table.PIPELINE_RUNS} r USING (run_id)
                WHERE s.status <> '{RunStatus.RUNNING}' GROUP BY s.step""",
        ).fetchall()
    }
    success = {
        r[0]: r[1:]
        for r in con.execute(
            f"""SELECT s.step, arg_max(s.run_id, s.finished_at), arg_max(r.commit, s.finished_at), max(s.finished_at)
                FROM {Table.STEP_RUNS} s JOIN {Table.PIPELINE_RUNS} r USING (run_id)
                WHERE s.status IN ('{RunStatus.SUCCEEDED}', '{RunStatus.SKIPPED}') GROUP BY s.step"""
        ).fetchall()
    }
    stored_fp = dict(con.execute(f"SELECT step, input_fingerprint FROM {Table.STEP_STATE}").fetchall())
    rows: list[StepStatus] = []
    stale_steps: set[str] = set()
    for position, step in enumerate(steps):
        status, run_id, error = last.get(step.name, (None, None, None))
        ok_run, ok_commit, ok_at = success.get(step.name, (None, None, None))
        reason = _stale_reason(con, step, deps, status, ok_run, stored_fp, stale_steps)
        if reason:
            stale_steps.add(step.name)
        rows.append(
            StepStatus(position, step.name, status, run_id, ok_run, ok_commit, ok_at, bool(reason), reason, error)
        )
    w.execute(f"DELETE FROM {Table.STEP_STATUS}")
    w.insert(Table.STEP_STATUS, rows)
    return rows


_STALE_FILES_SQL = f"""SELECT count(*) FROM {Table.FILE_STATE} cur
    FULL OUTER JOIN (SELECT path, hash FROM {Table.STEP_FILE_STATE} WHERE step = ?) mine ON cur.path = mine.path
    WHERE cur.hash IS DISTINCT FROM mine.hash"""


def _stale_reason(
    con: Any,
    step: Any,
    deps: Mapping[str, tuple[str, ...]],
    status: str | None,
    last_success: str | None,
    stored_fp: Mapping[str, str],
    stale_steps: set[str],
) -> str | None:
    if last_success is None:
        return "never succeeded" if status is None or status in _DONE else f"never succeeded (last attempt {status})"
    upstream = [d for d in deps[step.name] if d in stale_steps]
    if status == RunStatus.NOT_RUN:
        return f"not run (upstream stale: {', '.join(upstream) or 'failed'}); output of run {last_success}"
    if status not in _DONE:
        return f"last attempt {status}; output of run {last_success}"
    if upstream:
        return "upstream stale: " + ", ".join(upstream)
    if getattr(step, "file_work", None) is not None:
        found = con.execute(_STALE_FILES_SQL, [step.name]).fetchone()
        count = int(found[0]) if found else 0
        return f"{count} files changed since run {last_success}" if count else None
    if deps[step.name] and stored_fp.get(step.name) != fingerprint(con, deps[step.name], getattr(step, "reads", ())):
        return f"inputs changed since run {last_success}"
    return None


def read_step_status(con: Any) -> list[dict[str, Any]]:
    """meta.step_status as dicts, in pipeline order (empty for a database without it)."""
    try:
        rel = con.sql(f"SELECT * EXCLUDE (position) FROM {Table.STEP_STATUS} ORDER BY position")
    except Exception:  # an older database: no such table
        return []
    columns = rel.columns
    return [dict(zip(columns, row, strict=True)) for row in rel.fetchall()]
