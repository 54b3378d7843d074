"""The published database as the server reads it: one snapshot at a time, never written.

The pipeline replaces the published file atomically (`os.replace`) after every run.  A
`SnapshotStore` keeps one open `Snapshot` and, at the start of every call, compares the file's
identity (device, inode, size, mtime) with the one it opened: a new file is opened for the next
call, while calls in flight finish on the snapshot they started with (it is closed when its last
user leaves).  The snapshot is attached `READ_ONLY` to a fresh in-memory DuckDB instance (a plain
`duckdb.connect(path)` would return the instance cached for that path, i.e. the replaced file)
with external access disabled, extensions neither installed nor loaded, and the configuration
locked: no statement can read or write a file, attach, install or change a setting.

Every call gets a `Query`: a cursor of its own with a deadline, enforced by `con.interrupt()`
from a timer (DuckDB has no statement timeout); an interrupted cursor is closed, the snapshot's
connection stays usable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from codeintel.errors import CodeIntelError, StorageError
from codeintel.serving.index import IndexLoader, SnapshotIndex

logger = logging.getLogger(__name__)

CATALOG = "codeintel"  # the name the snapshot is attached under
# What the server reads that the docs_views step makes; a snapshot made by an older CodeIntel lacks it.
REQUIRED = ("docs.symbols", "docs.unresolved_names", "docs.module_edges", "docs.v_function_summary", "docs.v_module_summary")
_SETTINGS: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "memory_limit": "2GB",
}


Params = Sequence[Any] | Mapping[str, Any] | None


def _params(params: Params) -> Any:
    return params if isinstance(params, Mapping) else list(params or [])


class DeadlineExceeded(CodeIntelError):
    """A call ran past its deadline; its query was interrupted."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What identifies a snapshot: the run that published it, its repository and commit."""

    db_path: Path
    repo: str
    repo_root: Path | None
    commit: str | None
    run_id: str
    built_at: str  # UTC, ISO 8601 with Z
    run_status: str
    stale: tuple[tuple[str, str], ...]  # (step, why) of the steps whose output is not current
    missing: tuple[str, ...]  # what the server needs that this snapshot lacks

    @property
    def short_commit(self) -> str:
        return self.commit[:12] if self.commit else "no-commit"

    def line(self) -> str:
        """The first line of every answer."""
        return f"snapshot {self.repo}@{self.short_commit} built {self.built_at} run {self.run_id}"


class Snapshot:
    """One published file, open read-only, with the calls using it counted, and its in-memory
    index (`SnapshotIndex`), built in a thread of its own from the moment the file is opened."""

    def __init__(self, identity: tuple[int, ...], con: duckdb.DuckDBPyConnection, info: SnapshotInfo) -> None:
        self.identity = identity
        self.con = con
        self.info = info
        self.users = 0
        self.retired = False
        self._lock = threading.Lock()
        self._idle: list[duckdb.DuckDBPyConnection] = []
        # a snapshot of an older CodeIntel lacks what the index reads; only tools that need nothing new run on it
        self.loader = IndexLoader(self.cursor) if not info.missing else None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:  # creating cursors of one connection from several threads at once is not safe
            if self._idle:
                return self._idle.pop()
            cur = self.con.cursor()
        cur.execute(f"USE {CATALOG}")
        return cur

    def give_back(self, cur: duckdb.DuckDBPyConnection) -> None:
        """A call's cursor, never interrupted, for the next call (a new one costs a connection and a USE)."""
        with self._lock:
            if len(self._idle) < _IDLE_CURSORS and not self.retired:
                self._idle.append(cur)
                return
        with contextlib.suppress(duckdb.Error):
            cur.close()

    def index(self, deadline: Deadline) -> SnapshotIndex:
        """The snapshot's index, once built (waiting for it within the call's deadline).

        Raises:
            DeadlineExceeded: it was not built within the deadline.
            StorageError: building it failed.
        """
        if self.loader is None:
            raise StorageError(f"{self.info.db_path} lacks {', '.join(self.info.missing)}: re-export it with this CodeIntel")
        try:
            found = self.loader.get(deadline.remaining())
        except duckdb.Error as exc:
            raise StorageError(f"could not read the snapshot's symbols and call edges: {exc}") from exc
        if found is None:
            raise DeadlineExceeded(f"the snapshot's index was still loading at the call's deadline of {deadline.seconds:g} s")
        return found

    def close(self) -> None:
        if self.loader is not None:
            self.loader.stop()  # nothing reads this snapshot any more: a load still running is cut short
        with self._lock:
            for cur in self._idle:
                with contextlib.suppress(duckdb.Error):
                    cur.close()
            self._idle.clear()
            self.con.close()


def file_identity(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB instance with `path` attached read-only as the default catalog, external
    access disabled and the configuration locked."""
    con = duckdb.connect(":memory:", config=dict(_SETTINGS))
    try:
        con.execute(f"ATTACH '{_sql_text(str(path))}' AS {CATALOG} (READ_ONLY)")
        con.execute(f"USE {CATALOG}")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # it would be drawn on stdout: the stdio transport's
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise StorageError(f"cannot open the published database {path}: {exc}") from exc
    return con


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def read_info(con: duckdb.DuckDBPyConnection, path: Path, repo_root: Path | None = None) -> SnapshotInfo:
    """The snapshot's identity from its own ledger: the last run is the one that published it."""
    try:
        run = con.execute(
            "SELECT run_id, repo, repo_root, commit, coalesce(finished_at, started_at), status "
            "FROM meta.pipeline_runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
        ).fetchone()
        stale = con.execute(
            "SELECT step, coalesce(stale_reason, last_error, 'stale') FROM meta.step_status WHERE stale ORDER BY position"
        ).fetchall()
        present = {
            f"{s}.{v}"
            for s, v in con.execute(
                f"""SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = '{CATALOG}'
                    UNION ALL SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = '{CATALOG}'"""
            ).fetchall()
        }
        unfilled = con.execute(
            "SELECT (SELECT count(*) FROM docs.symbols) = 0 AND (SELECT count(*) FROM core.goids) > 0"
        ).fetchone() if "docs.symbols" in present else None
        if unfilled and unfilled[0]:
            present.discard("docs.symbols")  # made by a CodeIntel that did not fill it yet
    except duckdb.Error as exc:
        raise StorageError(f"{path} is not a CodeIntel database this version can read: {exc}") from exc
    if run is None:
        raise StorageError(f"{path} holds no pipeline run; run `codeintel export --db {path}` first")
    run_id, repo, root, commit, built, status = run
    return SnapshotInfo(
        db_path=path,
        repo=repo,
        repo_root=repo_root or (Path(root) if root else None),
        commit=commit,
        run_id=run_id,
        built_at=_iso(built),
        run_status=status,
        stale=tuple((str(s), str(why)) for s, why in stale),
        missing=tuple(v for v in REQUIRED if v not in present),
    )


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


class SnapshotStore:
    """The published database at `db_path`, reopened when a publish replaces it.

    Args:
        db_path: The published copy (`codeintel export --db`).
        repo_root: Where the indexed repository is checked out, when not where it was indexed
            (source text, git state).
    """

    def __init__(self, db_path: Path, repo_root: Path | None = None) -> None:
        self.db_path = db_path
        self.repo_root = repo_root
        self._lock = threading.Lock()
        self._current: Snapshot | None = None
        self.reopen_error: str | None = None
        self.opened = 0  # how many snapshots were opened (tests, diagnostics)

    def open(self) -> SnapshotInfo:
        """Open the current file now (the server does this at start to fail early)."""
        with self.lease() as snap:
            return snap.info

    @contextmanager
    def lease(self) -> Iterator[Snapshot]:
        """The current snapshot, for one call: a publish during the call does not affect it."""
        with self._lock:
            snap = self._refresh()
            snap.users += 1
        try:
            yield snap
        finally:
            with self._lock:
                snap.users -= 1
                if snap.retired and snap.users == 0:
                    snap.close()

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.retired = True
                if self._current.users == 0:
                    self._current.close()
                self._current = None

    def _refresh(self) -> Snapshot:
        identity = file_identity(self.db_path)
        current = self._current
        if current is not None and (identity is None or identity == current.identity):
            if identity is None:
                self.reopen_error = f"{self.db_path} is gone; answering from the snapshot opened before"
            return current
        if identity is None:
            raise StorageError(
                f"no published database at {self.db_path}; run `codeintel export --db {self.db_path}` first"
            )
        try:
            snap = self._open(identity)
        except StorageError as exc:
            if current is None:
                raise
            self.reopen_error = f"could not open the new {self.db_path} ({exc}); answering from the previous snapshot"
            logger.warning("%s", self.reopen_error)
            return current
        self.reopen_error = None
        if current is not None:
            current.retired = True
            if current.users == 0:
                current.close()
            logger.info("snapshot %s replaced by %s", current.info.run_id, snap.info.run_id)
        self._current = snap
        return snap

    def _open(self, identity: tuple[int, ...]) -> Snapshot:
        started = time.perf_counter()
        con = connect_read_only(self.db_path)
        try:
            info = read_info(con, self.db_path, self.repo_root)
        except StorageError:
            con.close()
            raise
        self.opened += 1
        logger.info("opened snapshot %s in %.3fs", info.line(), time.perf_counter() - started)
        return Snapshot(identity, con, info)


class Deadline:
    """The time a call must end by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, what: str = "the call") -> None:
        if self.expired():
            raise DeadlineExceeded(f"{what} ran past its deadline of {self.seconds:g} s")


class Watchdog:
    """One thread that runs each call's interrupt at its deadline, unless cancelled first (a timer
    thread per call would cost a thread start, which waits for the scheduler, on every call)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[list[Any]] = []  # [end (monotonic), sequence, action or None once cancelled]
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, end: float, action: Callable[[], None]) -> Callable[[], None]:
        """Run `action` at `end` (time.monotonic); returns the cancel function."""
        entry: list[Any] = [end, next(self._seq), action]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="codeintel-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()

        def cancel() -> None:
            entry[2] = None

        return cancel

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                action = heapq.heappop(self._heap)[2]
            if action is not None:
                try:
                    action()
                except Exception:  # an interrupt that fails leaves that call to end by itself
                    logger.exception("interrupting a call at its deadline failed")


WATCHDOG = Watchdog()
_IDLE_CURSORS = 8  # cursors a snapshot keeps for the next calls


class Query:
    """One call's cursor on a snapshot; every statement is interrupted at the deadline."""

    def __init__(self, snapshot: Snapshot, deadline: Deadline) -> None:
        self.snapshot = snapshot
        self.info = snapshot.info
        self.deadline = deadline
        self._cur = snapshot.cursor()
        self._lock = threading.Lock()
        self._closed = False
        self._interrupted = False
        self._cancel = WATCHDOG.watch(deadline.end, self._interrupt)

    def _interrupt(self) -> None:
        with self._lock:
            if not self._closed:
                self._interrupted = True
                self._cur.interrupt()

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """All rows of one statement."""
        return self._run(sql, params, None)

    def first(self, sql: str, params: Params = None) -> tuple[Any, ...] | None:
        found = self._run(sql, params, 1)
        return found[0] if found else None

    def scalar(self, sql: str, params: Params = None) -> Any:
        found = self.first(sql, params)
        return None if found is None else found[0]

    @property
    def index(self) -> SnapshotIndex:
        """The snapshot's symbols and call edges in memory (see `codeintel.serving.index`)."""
        self.deadline.check()
        return self.snapshot.index(self.deadline)

    @property
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """The call's own cursor (to parse a statement, or fetch on from the last result)."""
        return self._cur

    def fetch_more(self, n: int) -> list[tuple[Any, ...]]:
        """The next `n` rows of the last statement's result."""
        return self._cur.fetchmany(n)

    def columns_and_rows(self, sql: str, params: Params, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and at most `limit` rows of one statement (the `sql` tool)."""
        self.deadline.check()
        try:
            self._cur.execute(sql, _params(params))
            names = [d[0] for d in self._cur.description or []]
            return names, self._cur.fetchmany(limit)
        except duckdb.InterruptException as exc:
            raise DeadlineExceeded(f"the query ran past its deadline of {self.deadline.seconds:g} s and was stopped") from exc

    def _run(self, sql: str, params: Params, limit: int | None) -> list[tuple[Any, ...]]:
        self.deadline.check()
        try:
            self._cur.execute(sql, _params(params))
            return self._cur.fetchmany(limit) if limit is not None else self._cur.fetchall()
        except duckdb.InterruptException as exc:
            raise DeadlineExceeded(f"the call ran past its deadline of {self.deadline.seconds:g} s and was stopped") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._cancel()
        if not self._interrupted:
            self.snapshot.give_back(self._cur)
            return
        with contextlib.suppress(duckdb.Error):  # an interrupted cursor may refuse; the connection is not affected
            self._cur.close()

    def __enter__(self) -> Query:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
