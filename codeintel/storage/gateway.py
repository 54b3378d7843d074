"""The one door to the DuckDB files.

`StorageGateway` opens short-lived connections to the work database behind the inter-process
lock (exclusive to write, shared to read), creates the catalog's tables when missing, checks the
schema version, turns records into Arrow tables at the edge, and publishes a consistent read-only
copy after a successful run (temp file + `os.replace`), which readers use without any lock.
"""

from __future__ import annotations

import logging
import operator
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from codeintel.config import StorageConfig
from codeintel.errors import StorageError
from codeintel.storage.attach import Attached, attached
from codeintel.storage.catalog import CATALOG, SCHEMA_VERSION, SCHEMAS, spec_of
from codeintel.storage.lock import file_lock
from codeintel.storage.text import arrow_array, safe_value

logger = logging.getLogger(__name__)


def to_arrow(table: str, rows: Iterable[Any]) -> pa.Table:
    """Convert records (dataclasses, mappings or tuples in column order) to `table`'s Arrow schema."""
    spec = spec_of(table)
    names = spec.column_names
    tuples: list[Sequence[Any]] = []
    getter: Any = None
    for row in rows:
        if isinstance(row, tuple):
            tuples.append(row)
        elif isinstance(row, Mapping):
            tuples.append([row.get(name) for name in names])
        else:
            getter = getter or operator.attrgetter(*names)
            tuples.append(getter(row))
    schema = spec.arrow_schema
    columns = list(zip(*tuples, strict=True)) if tuples else [() for _ in names]
    arrays = [arrow_array(col, schema.field(i).type) for i, col in enumerate(columns)]
    return pa.Table.from_arrays(arrays, schema=schema)


def columns_to_arrow(table: str, columns: Mapping[str, Sequence[Any] | pa.Array]) -> pa.Table:
    """Columns by name (every column of `table`: values, or Arrow arrays) to `table`'s Arrow schema;
    an array dictionary-encoded over values of its column's type stays encoded (DuckDB inserts
    it as its values)."""
    schema = spec_of(table).arrow_schema
    arrays = [_column(columns[f.name], f.type) for f in schema]
    fields = [f.with_type(a.type) for f, a in zip(schema, arrays, strict=True)]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _column(values: Sequence[Any] | pa.Array, type: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        if values.type == type or (pa.types.is_dictionary(values.type) and values.type.value_type == type):
            return values
        return values.cast(type)
    return arrow_array(values, type)


class Writer:
    """One write transaction on the work database (see `StorageGateway.writer`)."""

    def __init__(self, attached: Attached) -> None:
        self.con = attached.con
        self.rows_written = 0
        self._settings = attached

    def set(self, name: str, value: str | int) -> None:
        """Change a DuckDB setting (`memory_limit`, `threads`) for the rest of the transaction:
        it is the database instance's, which the writer has to itself; reset when it ends."""
        self._settings.set(name, value)

    def insert(self, table: str, data: pa.Table | Iterable[Any]) -> int:
        """Append rows to `table`; returns how many."""
        arrow = data if isinstance(data, pa.Table) else to_arrow(table, data)
        if arrow.num_rows == 0:
            return 0
        sql = f"INSERT INTO {table} BY NAME SELECT * FROM _ci_rows"
        return self._counted("_ci_rows", arrow, sql, f"writing {arrow.num_rows} rows to {table}")

    def insert_batches(self, table: str, batches: pa.RecordBatchReader) -> int:
        """Append the rows of a stream of record batches to `table`, one batch after another (a
        table read from a file need not be in memory at once); returns how many."""
        sql = f"INSERT INTO {table} BY NAME SELECT * FROM _ci_rows"
        return self._counted("_ci_rows", batches, sql, f"writing rows to {table}")

    def replace_all(self, table: str, data: pa.Table | Iterable[Any]) -> int:
        """Replace every row of `table`."""
        self.con.execute(f"DELETE FROM {table}")
        return self.insert(table, data)

    def delete_paths(self, table: str, paths: Iterable[str], extra_where: str = "") -> None:
        """Delete the rows of `table` that came from one of `paths` (its spec's path column)."""
        batch = pa.table({"path": pa.array(sorted(set(paths)), type=pa.string())})
        if batch.num_rows == 0:
            return
        self.con.register("_ci_paths", batch)
        column = spec_of(table).path_column
        try:
            self.con.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT path FROM _ci_paths){extra_where}")
        except duckdb.Error as exc:
            raise StorageError(f"deleting rows of {batch.num_rows} files from {table} failed: {exc}") from exc
        self.con.unregister("_ci_paths")

    def update_from(self, table: str, data: pa.Table, match: Mapping[str, str], columns: Sequence[str]) -> int:
        """Set `columns` of `table` from the row of `data` each row matches; returns how many.

        `match` pairs a column of `table` with the column of `data` it must equal (NULL equals
        NULL); each row of `table` must match at most one row of `data`.
        """
        if data.num_rows == 0:
            return 0
        sets = ", ".join(f"{c} = u.{c}" for c in columns)
        match_sql = " AND ".join(f"t.{mine} IS NOT DISTINCT FROM u.{theirs}" for mine, theirs in match.items())
        sql = f"UPDATE {table} AS t SET {sets} FROM _ci_update AS u WHERE {match_sql}"
        return self._counted("_ci_update", data, sql, f"updating {table} from {data.num_rows} rows")

    def _counted(self, name: str, rows: pa.Table | pa.RecordBatchReader, sql: str, what: str) -> int:
        """Run `sql` (an insert or update that reads `rows` as `name`); count what it wrote."""
        self.con.register(name, rows)
        try:
            found = self.con.execute(sql).fetchone()
        except duckdb.Error as exc:  # keep the real error; unregistering in an aborted transaction would mask it
            raise StorageError(f"{what} failed: {exc}") from exc
        self.con.unregister(name)
        count = int(found[0]) if found else 0
        self.rows_written += count
        return count

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, [safe_value(p) for p in params or ()])


@dataclass
class StorageGateway:
    """Short-lived, lock-guarded connections to the work DB, and publishing of the read copy."""

    config: StorageConfig

    @property
    def path(self) -> Path:
        return self.config.work_db_path

    @contextmanager
    def writer(self, holder: str) -> Iterator[Writer]:
        """One transaction under the exclusive lock: commits on success, rolls back on error.

        The commit writes the changes into the database file itself (a checkpoint), not into
        the write-ahead log first: detaching, right after, checkpoints anyway, so the log would
        be written only to be read back at once (sqlalchemy's cst_ingest: 0.185 s to commit and
        close, 0.15 s without the log).  A commit's checkpoint is as atomic as the log's: a
        killed commit leaves the file as it was.
        """
        with (
            file_lock(self.config.lock_path, exclusive=True, timeout_s=self.config.lock_timeout_s, holder=holder),
            self._connection(read_only=False) as att,
        ):
            con = att.con
            con.execute("BEGIN TRANSACTION")
            writer = Writer(att)
            try:
                yield writer
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection under the shared lock (writers wait, readers share)."""
        with file_lock(self.config.lock_path, exclusive=False, timeout_s=self.config.lock_timeout_s):
            if not self.path.exists():
                raise StorageError(f"database {self.path} does not exist yet; run `codeintel export` first")
            with self._connection(read_only=True) as att:
                yield att.con

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one read query and return its result as Arrow."""
        with self.reader() as con:
            rel = con.sql(sql, params=[safe_value(p) for p in params] if params else None)
            return rel.to_arrow_table() if rel is not None else pa.table({})

    @contextmanager
    def held_reader(self) -> Iterator[HeldReader]:
        """A `query` that keeps one read connection (and the shared lock) from its first query
        until `release()` or the end of the block: a burst of small reads opens one connection,
        not one each.  Release it before taking the writer in the same process."""
        held = HeldReader(self)
        try:
            yield held
        finally:
            held.release()

    def read(self, table: str, where: str = "", params: Sequence[Any] | None = None) -> pa.Table:
        """Read a catalog table (optionally filtered by a SQL `where` clause)."""
        spec = spec_of(table)
        return self.query(f"SELECT * FROM {spec.name} {('WHERE ' + where) if where else ''}", params)

    def ensure_schema(self) -> None:
        """Create schemas and missing tables; never drop anything; check the schema version.

        Refuses, before writing anything, when the work DB or the published DB is a file that is
        not a CodeIntel database.  A work DB of an older schema version is rebuilt (everything in
        it derives from the repository; the next run is a cold one); one of a newer version is
        refused.
        """
        with file_lock(self.config.lock_path, exclusive=True, timeout_s=self.config.lock_timeout_s, holder="schema"):
            refuse_foreign(self.config.db_path)
            version = refuse_foreign(self.path)
            if version is not None and version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has schema version {version}, made by a newer CodeIntel than this one "
                    f"(schema {SCHEMA_VERSION}); upgrade CodeIntel, or pass --db elsewhere"
                )
            if version is not None and version < SCHEMA_VERSION:
                logger.warning("%s has schema version %s (now %s): rebuilding it", self.path, version, SCHEMA_VERSION)
                self.path.unlink()
        with self.writer("create schema") as w:
            for schema in SCHEMAS:
                w.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for spec in CATALOG.values():
                w.execute(spec.ddl())
            found = w.con.execute("SELECT max(version) FROM meta.schema_version").fetchone()
            if found is None or found[0] is None:
                w.execute("INSERT INTO meta.schema_version VALUES (?, now())", [SCHEMA_VERSION])

    def publish(self) -> Path:
        """Copy the work DB to `config.db_path` atomically; readers never see a partial copy."""
        target = self.config.db_path
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with file_lock(self.config.lock_path, exclusive=True, timeout_s=self.config.lock_timeout_s, holder="publish"):
            with self._connection(read_only=False) as att:
                att.con.execute("CHECKPOINT")
            try:
                shutil.copyfile(self.path, tmp)
                with open(tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        logger.info("published %s", target)
        return target

    def _connection(self, *, read_only: bool) -> AbstractContextManager[Attached]:
        """The work DB attached for the block (`attach`: no database instance built per use)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return attached(self.path, read_only=read_only)


class HeldReader:
    """See `StorageGateway.held_reader`."""

    def __init__(self, gateway: StorageGateway) -> None:
        self._gateway = gateway
        self._held = ExitStack()
        self._con: duckdb.DuckDBPyConnection | None = None

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        if self._con is None:
            self._con = self._held.enter_context(self._gateway.reader())
        rel = self._con.sql(sql, params=[safe_value(p) for p in params] if params else None)
        return rel.to_arrow_table() if rel is not None else pa.table({})

    def release(self) -> None:
        self._con = None
        self._held.close()


def refuse_foreign(path: Path) -> int | None:
    """The schema version of the CodeIntel database at `path` (None when there is no file).

    Raises:
        StorageError: `path` exists but is not a CodeIntel database (not DuckDB, or DuckDB
            without `meta.schema_version`): nothing may replace or write into it.
    """
    if not path.exists():
        return None
    fix = "pass --db a path of its own (or move that file away) and export again"
    if not path.is_file():
        raise StorageError(f"{path} exists and is not a file; CodeIntel will not replace it: {fix}")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise StorageError(f"{path} exists and is not a CodeIntel database ({exc}); CodeIntel will not replace it: {fix}") from exc
    try:
        found = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'schema_version'"
        ).fetchone()
        if not found or not found[0]:
            raise StorageError(
                f"{path} is a DuckDB database but not a CodeIntel one (no meta.schema_version); "
                f"CodeIntel will not replace it or write into it: {fix}"
            )
        version = con.execute("SELECT max(version) FROM meta.schema_version").fetchone()
    finally:
        con.close()
    return int(version[0]) if version and version[0] is not None else SCHEMA_VERSION


def open_published(db_path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published copy (no lock: it is replaced, never written)."""
    if not db_path.exists():
        raise StorageError(f"no published database at {db_path}; run `codeintel export --db {db_path}` first")
    try:
        return duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        raise StorageError(f"cannot open {db_path}: {exc}") from exc
