"""scip_ingest's work: plan what to index, run pyrefly, decode, crosswalk, hand rows to the step.

Incremental rule: the files whose hash differs from what scip_ingest last processed are indexed
again (pyrefly with only those files as project includes, every other file still on the search
path), and so are the files that use them, but only when a file's interface changed: the
signatures (as the type checker shows them, inferred types included) and relationships of its
module- and class-level definitions, a digest stored per document.  A file "uses" another when one
of its occurrences names a symbol defined there (an import names the module's symbol); a deleted
file's users are indexed again, and an added file's possible users are the files with unresolved
imports.  This repeats while interfaces change; above `FULL_SHARE` of the files it is one full run.
The type checker's document for a file depends only on the file and the interfaces it uses, so
the result equals a full run's.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pyarrow as pa

from codeintel import scratch
from codeintel.analysis.crosswalk import crosswalk_sql, symbol_goids_sql
from codeintel.analysis.enclosing import EnclosingIndex
from codeintel.errors import StorageError
from codeintel.ingestion.change_tracker import StaleFiles
from codeintel.ingestion.filework import UNREAD
from codeintel.ingestion.mapping import Mapper
from codeintel.ingestion.parsing import ParseProblem, read_source
from codeintel.ingestion.scip.decode import (
    PathStripper,
    decode_diagnostics,
    decode_index,
    to_tables,
)
from codeintel.ingestion.scip.pyrefly import (
    IndexRequest,
    PyreflyIndexing,
    is_regular_file,
    source_roots,
    start_indexing,
)
from codeintel.ingestion.scip.spill import Spill
from codeintel.ingestion.tools import ToolService
from codeintel.storage.catalog import Table, spec_of
from codeintel.storage.gateway import StorageGateway, Writer
from codeintel.storage.text import fs_path

logger = logging.getLogger(__name__)

STEP = "scip_ingest"
WRITE_MEMORY_LIMIT = "256MB"
FULL_SHARE = 0.3  # above this share of the files to index again, one full run is cheaper
_WARM_UP_FILES = 200  # about what gives an index worth decoding in parts (decode.PARALLEL_MIN_BYTES)
# pyrefly's codes for imports it cannot resolve: an added file may resolve them
UNRESOLVED_IMPORT_CODES = ("missing-import", "missing-module-attribute", "import-error")


class PlanMode:
    NONE = "none"
    FULL = "full"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class ScipPlan:
    """What the first pyrefly run indexes, and the state it stands on."""

    mode: str
    files: tuple[str, ...]  # to index first
    hashes: tuple[tuple[str, str], ...]  # every current file and its hash
    gone: tuple[str, ...]
    changed: tuple[str, ...]  # the stale files (partial runs)
    source_roots: tuple[str, ...]
    too_large: tuple[str, ...] = ()  # current files over the scan's size limit: never indexed


def plan_scip(
    gateway: StorageGateway, stale_to_process: Sequence[str], gone: Sequence[str], *, full: bool, max_file_size: int = 0
) -> ScipPlan:
    """The first run of this scip_ingest: nothing, everything, or the stale files and the users of
    the deleted ones.  A file over `max_file_size` bytes (the scan's limit; 0: none) is not
    indexed, as no other step indexes it (a generated module of megabytes can overflow
    pyrefly's stack): one that grew past it since its last index loses its rows, and the users
    of its symbols are indexed again, as for a deleted file."""
    current = gateway.query(f"SELECT path, hash, size FROM {Table.FILE_STATE} ORDER BY path").to_pylist()
    hashes = tuple((r["path"], r["hash"]) for r in current)
    too_large = tuple(r["path"] for r in current if max_file_size and (r["size"] or 0) > max_file_size)
    big = set(too_large)
    grown = [p for p in stale_to_process if p in big]
    stale_to_process = [p for p in stale_to_process if p not in big]
    roots_rows = gateway.query(f"SELECT source_root, count(*) AS n FROM {Table.MODULES} GROUP BY 1").to_pylist()
    roots = source_roots([(r["source_root"] or "", int(r["n"])) for r in roots_rows])
    all_files = tuple(p for p, _ in hashes if p not in big)
    stored = gateway.query(f"SELECT count(*) AS n FROM {Table.SCIP_DOCUMENTS}").to_pylist()[0]["n"]
    if not stale_to_process and not gone and not grown and not full:
        return ScipPlan(PlanMode.NONE, (), hashes, (), (), roots, too_large)
    lost = [*gone, *grown]
    first = sorted(set(stale_to_process) | set(users_of(gateway, lost, exclude={*stale_to_process, *big})))
    if full or stored == 0 or len(first) > FULL_SHARE * max(len(all_files), 1):
        return ScipPlan(PlanMode.FULL, all_files, hashes, tuple(gone), tuple(stale_to_process), roots, too_large)
    return ScipPlan(PlanMode.PARTIAL, tuple(first), hashes, tuple(gone), tuple(stale_to_process), roots, too_large)


def users_of(gateway: StorageGateway, paths: Sequence[str], exclude: set[str]) -> list[str]:
    """Files (as last indexed) with an occurrence of a symbol defined in one of `paths`."""
    if not paths:
        return []
    found = gateway.query(
        f"""SELECT DISTINCT o.path FROM {Table.SCIP_OCCURRENCES} o
            WHERE o.symbol IN (SELECT symbol FROM {Table.SCIP_SYMBOLS} WHERE list_contains(?, def_path))
              AND NOT list_contains(?, o.path)
            ORDER BY 1""",
        [sorted(paths), sorted(paths)],
    )
    return [p for p in found.column(0).to_pylist() if p not in exclude]


def unresolved_importers(gateway: StorageGateway, exclude: set[str]) -> list[str]:
    found = gateway.query(
        f"SELECT DISTINCT path FROM {Table.TYPE_DIAGNOSTICS} WHERE list_contains(?, code) ORDER BY 1",
        [list(UNRESOLVED_IMPORT_CODES)],
    )
    return [p for p in found.column(0).to_pylist() if p not in exclude]


@dataclass
class Ahead:
    """A pyrefly run started ahead of its step (`start_ahead`), with the plan it follows."""

    plan: ScipPlan
    indexing: PyreflyIndexing

    def cancel(self) -> None:
        self.indexing.cleanup()


@dataclass
class ScipDelta:
    """What one scip_ingest run writes."""

    plan: ScipPlan
    indexed: list[str] = field(default_factory=list)
    tables: dict[str, list[pa.Table | Spill]] = field(default_factory=dict)
    externals: list[pa.Table] = field(default_factory=list)
    not_indexed: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # not indexed, and unreadable now: why
    pyrefly_seconds: float = 0.0
    rounds: int = 0
    mode: str = PlanMode.NONE
    final: dict[str, pa.Table | Spill] = field(default_factory=dict)  # what is written (symbols' GOIDs: by the write)
    enclosing: EnclosingIndex | None = None  # the last round's (every current file)
    # the rounds' spilled symbols and occurrences (removed after the write, or when collected)
    spill: tempfile.TemporaryDirectory[str] = field(
        default_factory=lambda: scratch.temporary_directory("codeintel-scip-decoded-")
    )

    @property
    def cleared(self) -> list[str]:
        """The files whose rows this run replaces (all stored ones on a full run), or drops (the
        deleted files, and those over the size limit)."""
        return sorted(set(self.indexed) | set(self.plan.gone) | set(self.plan.too_large))

    @property
    def note(self) -> str:
        if self.mode == PlanMode.NONE:
            return "GOIDs changed: crosswalk refreshed, nothing indexed"
        return (
            f"{self.mode}: {len(self.indexed)} files indexed in {self.rounds} pyrefly run(s) "
            f"(collected {self.pyrefly_seconds:.1f} s after they started), {len(self.not_indexed)} without a document"
            + (f", {len(self.plan.too_large)} over the size limit" if self.plan.too_large else "")
        )

    def add(self, name: str, table: pa.Table | Spill) -> None:
        self.tables.setdefault(name, []).append(table)

    def table(self, name: str) -> pa.Table:
        parts = [p.read_all() if isinstance(p, Spill) else p for p in self.tables.get(name, [])]
        return pa.concat_tables(parts) if parts else spec_of(name).arrow_schema.empty_table()

    def source(self, name: str) -> pa.Table | Spill:
        """What the write inserts: one round's spilled batches as they are, several rounds' rows
        together (small runs)."""
        parts = self.tables.get(name, [])
        return parts[0] if len(parts) == 1 else self.table(name)


def run_rounds(
    gateway: StorageGateway,
    plan: ScipPlan,
    start: StartFn,
    ahead: Ahead | None,
    strip_roots: tuple[str, ...],
    project: str,
    repo_root_path: object,
    mapper: Mapper | None = None,
) -> ScipDelta:
    """Index `plan.files`, then the users of files whose interface changed, until none did
    (`mapper`: where a large index is decoded in parts).

    Raises:
        ToolNotFoundError, ToolFailedError, IndexDecodeError: pyrefly is missing or failed.
    """
    repo_root = Path(str(repo_root_path))
    delta = ScipDelta(plan, mode=plan.mode)
    too_large = set(plan.too_large)
    all_files = {p for p, _ in plan.hashes} - too_large
    files: tuple[str, ...] = plan.files
    stored_iface = _stored_interfaces(gateway) if plan.mode == PlanMode.PARTIAL else {}
    indexing = ahead.indexing if ahead is not None else None
    enclosing = enclosing_index(gateway, sorted(all_files))
    added = [p for p in plan.changed if p not in stored_iface]
    delta.enclosing = enclosing
    while files:
        if indexing is None:
            indexing = start(IndexRequest(repo_root, files, plan.source_roots, project))
        try:
            output = indexing.wait()
            delta.pyrefly_seconds += output.seconds
            strip = PathStripper((*strip_roots, str(output.scratch)))
            wanted = set(files)
            spill_dir = Path(tempfile.mkdtemp(dir=delta.spill.name))
            decoded = decode_index(output.index, repo_root, strip, spill_dir, wanted, enclosing, mapper)
            tables = to_tables(decoded, project)
            diagnostics = decode_diagnostics(output.diagnostics, repo_root, strip, wanted)
        finally:
            indexing.cleanup()
            indexing = None
        delta.rounds += 1
        delta.indexed.extend(files)
        for name, table in (
            (Table.SCIP_DOCUMENTS, tables.documents), (Table.SCIP_SYMBOLS, tables.symbols),
            (Table.SCIP_OCCURRENCES, tables.occurrences), (Table.TYPE_DIAGNOSTICS, diagnostics),
        ):  # fmt: skip
            delta.add(name, table)
        delta.externals.append(tables.externals)
        if delta.mode == PlanMode.FULL:
            break
        docs = tables.documents
        new_iface = dict(zip(docs["path"].to_pylist(), docs["interface_hash"].to_pylist(), strict=True))
        changed = [p for p in files if new_iface.get(p) != stored_iface.get(p)]
        done = set(delta.indexed)
        users = set(users_of(gateway, changed, exclude=done | too_large))
        if added and delta.rounds == 1:
            users |= set(unresolved_importers(gateway, exclude=done | too_large))
        if not users:
            break
        if len(done) + len(users) > FULL_SHARE * max(len(all_files), 1):
            logger.info("scip: interfaces changed in %d files, their users are many: one full run", len(changed))
            full = replace(plan, mode=PlanMode.FULL, files=tuple(sorted(all_files)))
            rest = run_rounds(gateway, full, start, None, strip_roots, project, repo_root, mapper)
            rest.pyrefly_seconds += delta.pyrefly_seconds
            rest.rounds += delta.rounds
            return rest
        logger.info("scip: interfaces changed in %d files: indexing their %d users", len(changed), len(users))
        files = tuple(sorted(users))
    indexed_docs = set(delta.table(Table.SCIP_DOCUMENTS)["path"].to_pylist())
    delta.not_indexed = sorted(set(delta.indexed) - indexed_docs)
    for path in delta.not_indexed:  # gone or replaced since the scan: a `missing` row, redone next run
        found = read_source(repo_root, path)
        if isinstance(found, ParseProblem):
            delta.unreadable[path] = found.message
    return delta


class StartFn:
    """Starts a pyrefly run for a request (the tool service bound in)."""

    def __init__(self, service: ToolService) -> None:
        self.service = service

    def __call__(self, request: IndexRequest) -> PyreflyIndexing:
        return start_indexing(self.service, request)


def _stored_interfaces(gateway: StorageGateway) -> dict[str, str | None]:
    rows = gateway.query(f"SELECT path, interface_hash FROM {Table.SCIP_DOCUMENTS}").to_pylist()
    return {r["path"]: r["interface_hash"] for r in rows}


# --------------------------------------------------------------------- GOIDs: enclosing, crosswalk


def with_enclosing(table: pa.Table, index: EnclosingIndex) -> pa.Table:
    """`table` (path, line, ... enclosing_goid) with enclosing GOIDs filled in."""
    if table.num_rows == 0:
        return table
    paths = table["path"].to_pylist()
    lines = table["line"].to_pylist()
    goids = [index.lookup(p, ln) for p, ln in zip(paths, lines, strict=True)]
    at = table.schema.get_field_index("enclosing_goid")
    return table.set_column(at, "enclosing_goid", pa.array(goids, pa.string()))


def enclosing_index(gateway: StorageGateway, paths: Sequence[str]) -> EnclosingIndex:
    rows = gateway.query(
        f"SELECT path, goid, start_line, end_line, parent_goid FROM {Table.GOIDS} WHERE list_contains(?, path)",
        [sorted(paths)],
    )
    return EnclosingIndex.from_goid_rows(
        zip(*(rows[c].to_pylist() for c in ("path", "goid", "start_line", "end_line", "parent_goid")), strict=True)
    )


def collect_scip(
    gateway: StorageGateway,
    service: ToolService,
    repo_root: Path,
    project: str,
    stale: StaleFiles,
    *,
    full: bool,
    ahead: Ahead | None = None,
    mapper: Mapper | None = None,
    max_file_size: int = 0,
) -> ScipDelta:
    """Everything scip_ingest writes this run (nothing yet written).  `ahead`: a run started
    ahead (used when it follows the plan made now, else stopped); `mapper`: the step's worker
    processes on this machine, which decode a large index in parts; `max_file_size`: the scan's
    limit (see `plan_scip`).

    Raises:
        ToolNotFoundError, ToolFailedError, IndexDecodeError: the indexer is missing or failed
            (the step records a skip).
    """
    plan = plan_scip(gateway, [f.path for f in stale.to_process], stale.gone, full=full, max_file_size=max_file_size)
    if ahead is not None and (ahead.plan != plan or not all(is_regular_file(repo_root, f) for f in plan.files)):
        logger.info("scip: the run started ahead no longer fits the plan or its files: started again")
        ahead.cancel()
        ahead = None
    if plan.mode == PlanMode.NONE:
        if ahead is not None:
            ahead.cancel()
        return ScipDelta(plan)
    if mapper is not None and len(plan.files) >= _WARM_UP_FILES:
        mapper.warm_up()  # its workers decode the index: started while pyrefly runs
    roots = (str(repo_root), str(repo_root.resolve()))
    delta = run_rounds(gateway, plan, StartFn(service), ahead, roots, project, repo_root, mapper)
    index = delta.enclosing or enclosing_index(gateway, delta.indexed)
    diagnostics = with_enclosing(_sort(delta, Table.TYPE_DIAGNOSTICS), index)
    documents = _with_diagnostic_counts(delta.table(Table.SCIP_DOCUMENTS), diagnostics)
    delta.final[Table.SCIP_DOCUMENTS] = _with_file_hashes(documents, dict(plan.hashes))
    one_round = len(delta.tables.get(Table.SCIP_OCCURRENCES, [])) == 1  # sorted already: read back as it is
    delta.final[Table.SCIP_OCCURRENCES] = (
        delta.source(Table.SCIP_OCCURRENCES) if one_round else _sort(delta, Table.SCIP_OCCURRENCES)
    )
    delta.final[Table.TYPE_DIAGNOSTICS] = diagnostics
    delta.final[Table.SCIP_SYMBOLS] = delta.source(Table.SCIP_SYMBOLS)
    return delta


def start_ahead(
    gateway: StorageGateway, service: ToolService, repo_root: Path, project: str, stale: StaleFiles, *,
    full: bool, max_file_size: int = 0,
) -> Ahead | None:  # fmt: skip
    """Start the first pyrefly run of the coming scip_ingest now (it needs only the scan)."""
    plan = plan_scip(gateway, [f.path for f in stale.to_process], stale.gone, full=full, max_file_size=max_file_size)
    if plan.mode == PlanMode.NONE or not plan.files:
        return None
    return Ahead(plan, start_indexing(service, IndexRequest(repo_root, plan.files, plan.source_roots, project)))


_SORT_KEYS: dict[str, list[str]] = {
    Table.SCIP_OCCURRENCES: ["path", "line", "col", "symbol"],
    Table.TYPE_DIAGNOSTICS: ["path", "line", "col", "code", "message"],
}


def _sort(delta: ScipDelta, name: str) -> pa.Table:
    table = delta.table(name)
    if len(delta.tables.get(name, [])) > 1:  # several rounds (small ones): plain strings sort
        table = table.cast(spec_of(name).arrow_schema).sort_by([(k, "ascending") for k in _SORT_KEYS[name]])
    return table


def _with_diagnostic_counts(documents: pa.Table, diagnostics: pa.Table) -> pa.Table:
    counts = diagnostics.group_by("path").aggregate([("path", "count")]).to_pylist() if diagnostics.num_rows else []
    per_path = {r["path"]: r["path_count"] for r in counts}
    column = pa.array([per_path.get(p, 0) for p in documents["path"].to_pylist()], pa.int32())
    return documents.set_column(documents.schema.get_field_index("diagnostics"), "diagnostics", column)


def _with_file_hashes(documents: pa.Table, hashes: dict[str, str]) -> pa.Table:
    """The hash of each file as the scan saw it (core.file_state's): the text that was indexed."""
    column = pa.array([hashes.get(p) for p in documents["path"].to_pylist()], pa.string())
    return documents.set_column(documents.schema.get_field_index("hash"), "hash", column)


def write_scip(w: Writer, delta: ScipDelta, run_id: str) -> int:
    """Replace the rows of the indexed and deleted files, merge externals, refresh GOIDs, record
    the files processed (inside the step's transaction)."""
    pa.default_memory_pool().release_unused()
    # the transaction holds a whole index: DuckDB spills it rather than grow, and appends it on
    # one thread (on sqlalchemy, two threads' appends take twice the time and 100 MB more)
    w.set("memory_limit", WRITE_MEMORY_LIMIT)
    w.set("threads", 1)
    return _write_scip(w, delta, run_id)


def _write_scip(w: Writer, delta: ScipDelta, run_id: str) -> int:
    from codeintel.ingestion.change_tracker import ChangeTracker

    if delta.mode == PlanMode.NONE:  # GOIDs changed
        return _write_crosswalk(w)
    written = 0
    gateway_tables = delta.final
    clear = delta.cleared
    if delta.mode == PlanMode.FULL:
        clear = sorted(
            set(clear) | {p for (p,) in w.con.execute(f"SELECT path FROM {Table.SCIP_DOCUMENTS}").fetchall()}
        )
    # the occurrences first: DuckDB writes their row groups out as they fill, and their Arrow
    # copy is let go before the symbols, which DuckDB holds in memory until the commit
    for name in (Table.SCIP_OCCURRENCES, Table.SCIP_SYMBOLS, Table.SCIP_DOCUMENTS, Table.TYPE_DIAGNOSTICS):
        w.delete_paths(name, clear)
        written += _insert(w, name, gateway_tables.pop(name))
        delta.tables.pop(name, None)
        pa.default_memory_pool().release_unused()
    # externals: one row per symbol any occurrence names (the same whichever run brought it)
    externals = (
        pa.concat_tables(delta.externals) if delta.externals else spec_of(Table.SCIP_SYMBOLS).arrow_schema.empty_table()
    )
    if delta.mode == PlanMode.FULL:
        w.execute(f"DELETE FROM {Table.SCIP_SYMBOLS} WHERE def_path IS NULL")
    if externals.num_rows:
        w.con.register("_scip_externals", externals)
        w.execute(
            f"""INSERT INTO {Table.SCIP_SYMBOLS} SELECT * FROM (SELECT DISTINCT ON (symbol) * FROM _scip_externals ORDER BY symbol)
                WHERE symbol NOT IN (SELECT symbol FROM {Table.SCIP_SYMBOLS} WHERE def_path IS NULL)"""
        )
        w.con.unregister("_scip_externals")
    w.execute(
        f"""DELETE FROM {Table.SCIP_SYMBOLS} WHERE def_path IS NULL
            AND symbol NOT IN (SELECT DISTINCT symbol FROM {Table.SCIP_OCCURRENCES})"""
    )
    written += _write_crosswalk(w)
    delta.spill.cleanup()
    w.delete_paths(Table.PARSE_ERRORS, clear, f" AND step = '{STEP}'")
    errors = [
        (p, STEP, "missing", None, None, delta.unreadable[p], None, None)
        if p in delta.unreadable
        else (p, STEP, "not_indexed", None, None, _not_indexed_reason(p), None, None)
        for p in delta.not_indexed
    ]
    written += w.insert(Table.PARSE_ERRORS, errors)
    # a file that could not be read counts as processed with no file's hash: redone when it is back
    current = {p: (UNREAD if p in delta.unreadable else h) for p, h in delta.plan.hashes}
    processed = current if delta.mode == PlanMode.FULL else [*delta.indexed, *delta.plan.too_large]
    done = [(p, current[p]) for p in processed if p in current]
    gone = sorted(set(delta.plan.gone))
    if delta.mode == PlanMode.FULL:
        w.execute(f"DELETE FROM {Table.STEP_FILE_STATE} WHERE step = ?", [STEP])
    ChangeTracker.record(w, STEP, run_id, done, gone)
    return written


def _not_indexed_reason(path: str) -> str:
    try:
        fs_path(path).encode("utf-8")
    except UnicodeEncodeError:
        return "pyrefly cannot be given a file whose name is not UTF-8 (its config is TOML): not type-checked"
    return "pyrefly gave no document for this file (not type-checked)"


def _insert(w: Writer, name: str, source: pa.Table | Spill) -> int:
    """Append a table, or spilled batches read one at a time."""
    if isinstance(source, pa.Table):
        return w.insert(name, source)
    w.con.register("_scip_rows", source.reader())
    try:
        w.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _scip_rows")
    except duckdb.Error as exc:  # as Writer.insert: the real error, not the unregister's
        raise StorageError(f"writing {source.num_rows} rows to {name} failed: {exc}") from exc
    w.con.unregister("_scip_rows")
    w.rows_written += source.num_rows
    return source.num_rows


def _write_crosswalk(w: Writer) -> int:
    """The crosswalk of core.goids and the repository symbols as now written, and each symbol's
    GOID from it (a symbol no GOID names has none); returns the crosswalk's rows."""
    w.execute(f"DELETE FROM {Table.GOID_CROSSWALK}")
    found = w.con.execute(
        f"INSERT INTO {Table.GOID_CROSSWALK} {crosswalk_sql(Table.GOIDS, Table.SCIP_SYMBOLS)}"
    ).fetchone()
    written = int(found[0]) if found else 0
    w.rows_written += written
    w.execute(
        f"""UPDATE {Table.SCIP_SYMBOLS} s SET goid = m.goid
            FROM ({symbol_goids_sql(Table.GOIDS, Table.GOID_CROSSWALK, Table.AST_NODES)}) m
            WHERE s.symbol = m.symbol AND s.def_path = m.def_path AND s.goid IS DISTINCT FROM m.goid"""
    )
    w.execute(
        f"""UPDATE {Table.SCIP_SYMBOLS} s SET goid = NULL WHERE s.goid IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM {Table.GOID_CROSSWALK} c WHERE c.symbol = s.symbol AND c.path = s.def_path)"""
    )
    return written
