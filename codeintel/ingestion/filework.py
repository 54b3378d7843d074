"""Per-file work that runs in worker processes: read, parse once, extract, return rows.

`extract_batch` (module-level, picklable) takes a `FileBatch`, reads and parses each of its
files once and runs each of the batch's extractors (`EXTRACTORS`: one per per-file step) on the
tree, returning one `FileOutput` per file and extractor: the hash of the bytes it actually read
(recorded as processed) and rows per table as tuples in catalog column order.  Nothing here
touches the database.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from codeintel.analysis.callgraph import extract_call_facts, facts_to_json
from codeintel.analysis.definitions import DefKind, iter_definitions
from codeintel.analysis.goids import make_goid
from codeintel.analysis.imports import extract_all_names, extract_import_sites
from codeintel.analysis.metrics import compute_function_metrics
from codeintel.gcpause import gc_paused
from codeintel.ingestion.change_tracker import FileRef
from codeintel.ingestion.cst.extract import extract_cst
from codeintel.ingestion.parsing import (
    PARSE_STEP,
    ParsedFile,
    ParseProblem,
    ProblemKind,
    extractor_problem,
    read_and_parse,
    read_source,
    unusable_source,
)
from codeintel.ingestion.scan import hash_bytes
from codeintel.storage.catalog import Table, spec_of
from codeintel.storage.gateway import columns_to_arrow, to_arrow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FileBatch:
    """Files for one worker call, with what the work needs to know.

    `extractors` name what to extract from every file (keys of `EXTRACTORS`): first for the step
    that asked, then for steps later in the same run that need the same files; `steps` name the
    step each extractor works for (what a core.parse_errors row of a failure names).
    """

    root: str
    repo: str
    max_file_size: int
    files: tuple[FileRef, ...]
    extractors: tuple[str, ...]
    steps: tuple[str, ...]
    # a directory of this machine the step's process reads: a worker process of this machine
    # leaves its result's Arrow tables there (`BatchOutputs`); None: they travel in the result
    spool: str | None = None


@dataclass(slots=True)
class FileOutput:
    """Rows produced for one file, and the hash of the content they came from.

    Pickled (a worker's result on its way to the step's process), each Arrow table travels as an
    Arrow IPC stream: pickling a small table array by array costs far more than its bytes
    (sqlalchemy's cst_ingest, three tables a file: 0.7 s of the workers' time, against 0.1 s).
    """

    path: str
    hash: str | None
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    # rows already in the table's Arrow schema (many rows: built in the worker, pickled compactly)
    tables: dict[str, pa.Table] = field(default_factory=dict)

    def add(self, table: str, record: Any) -> None:
        names = spec_of(table).column_names
        self.rows.setdefault(table, []).append(tuple(getattr(record, n) for n in names))

    def __reduce__(self) -> tuple[Any, ...]:
        streams = {name: _to_ipc(table) for name, table in self.tables.items()}
        return _file_output, (self.path, self.hash, self.rows, streams)


def _to_ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    _write_ipc(table, sink)
    return sink.getvalue()


def _write_ipc(table: pa.Table, sink: pa.NativeFile) -> None:
    """Append `table` to `sink` as an Arrow IPC stream."""
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)


def _file_output(
    path: str, digest: str | None, rows: dict[str, list[tuple[Any, ...]]], streams: dict[str, pa.Buffer]
) -> FileOutput:
    """A `FileOutput` back from its pickled form (`FileOutput.__reduce__`)."""
    tables = {name: pa.ipc.open_stream(stream).read_all() for name, stream in streams.items()}
    return FileOutput(path, digest, rows, tables)


Parsed = ParsedFile | ParseProblem | None  # None: not parsed with ast (no extractor needs the tree)


def _each_parsed(batch: FileBatch) -> Iterator[tuple[FileRef, str | None, Parsed, bytes | None]]:
    """Each file of `batch`: the hash of its bytes, its ast tree (or why not), and its bytes."""
    root = Path(batch.root)
    needs_tree = any(name in EXTRACTORS for name in batch.extractors)
    for ref in batch.files:
        data: bytes | None = None  # with a tree, read again by a source extractor that needs it
        parsed: Parsed
        try:
            if needs_tree:
                digest, parsed = read_and_parse(root, ref.path, batch.max_file_size)
            else:
                found = read_source(root, ref.path)
                if isinstance(found, ParseProblem):
                    digest, parsed = None, found
                else:
                    data, digest = found, hash_bytes(found)
                    parsed = unusable_source(ref.path, data, batch.max_file_size)
        except Exception as exc:  # a bug of ours on this file: every extractor records it
            digest, parsed, data = ref.hash, extractor_problem(ref.path, PARSE_STEP, exc), None
        yield ref, digest or UNREAD, parsed, data


# the hash recorded as processed for a file that could not be read (gone since the scan): no file
# has it, so the file is redone when it is back, and its row is cleared when it stays gone
UNREAD = "unread"


class BatchOutputs(list[dict[str, FileOutput]]):
    """What `extract_batch` returns: per file of the batch, extractor name -> its output.

    Pickled in a worker process whose batch names a `spool` directory, the Arrow tables of all
    its outputs go into one file there, and only the file's name and where each file's rows are
    in it travel through the pool's pipe: handing 13 MB (a batch of sqlalchemy's name sites)
    through the pipe kept the worker waiting on the step's process, 0.05-0.1 s a batch.  The
    tables of one extractor and name are one IPC stream there, file after file (one writer for
    a batch, not one a file: 50 us each).  Unpickled, they are read from the mapped file (no
    copy), each file's rows a slice, and the file is removed at once (the mapping lives on with
    the tables).
    """

    spool: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        if self.spool is None or not any(out.tables for found in self for out in found.values()):
            return BatchOutputs, (list(self),)  # (rows alone: no file to make)
        # the tables of one extractor and name (and schema: a file's may be plain where the
        # others' are dictionary-encoded), and where each file's rows are among them
        group_of: dict[tuple[str, str, pa.Schema], int] = {}
        groups: list[list[pa.Table]] = []
        rows_in: list[int] = []
        shells: list[dict[str, tuple[Any, ...]]] = []
        for found in self:
            shell = {}
            for extractor, out in found.items():
                at = {}
                for table_name, table in out.tables.items():
                    group = group_of.setdefault((extractor, table_name, table.schema), len(groups))
                    if group == len(groups):
                        groups.append([])
                        rows_in.append(0)
                    at[table_name] = (group, rows_in[group], table.num_rows)
                    groups[group].append(table)
                    rows_in[group] += table.num_rows
                shell[extractor] = (out.path, out.hash, out.rows, at)
            shells.append(shell)
        name = None
        try:
            handle, name = tempfile.mkstemp(dir=self.spool, suffix=".arrows")
            os.close(handle)
            streams = []
            with pa.OSFile(name, "wb") as sink:
                for parts in groups:
                    start = sink.tell()
                    _write_ipc(pa.concat_tables(parts), sink)
                    streams.append((start, sink.tell() - start))
        except OSError as exc:  # the spool's disk full, or the spool gone: the tables travel in the result
            logger.warning("could not spool a batch's rows (%s): they travel through the pipe", exc)
            if name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(name)
            return BatchOutputs, (list(self),)
        return _spooled_outputs, (name, streams, shells)


def _spooled_outputs(
    name: str, streams: list[tuple[int, int]], shells: list[dict[str, tuple[Any, ...]]]
) -> BatchOutputs:
    """`BatchOutputs` back from the file its worker left (`BatchOutputs.__reduce__`)."""
    try:
        data = pa.memory_map(name).read_buffer()
    finally:
        os.unlink(name)
    tables = [_Rows(pa.ipc.open_stream(data.slice(start, size)).read_all()) for start, size in streams]
    found = BatchOutputs()
    for shell in shells:
        outputs = {}
        for extractor, (path, digest, rows, at) in shell.items():
            mine = {t: tables[group].slice(offset, n) for t, (group, offset, n) in at.items()}
            outputs[extractor] = FileOutput(path, digest, rows, mine)
        found.append(outputs)
    return found


class _Rows:
    """A table read from an IPC stream (a chunk per record batch: a file's rows, or more), sliced
    file by file: `pa.Table.slice` walks the chunks from the first, so that slicing a batch of
    15,000 small files' rows took the step's process 17 s; here a slice finds its first chunk by
    bisection."""

    def __init__(self, table: pa.Table) -> None:
        self.schema = table.schema
        self.batches = table.to_batches()
        self.starts = list(itertools.accumulate((b.num_rows for b in self.batches), initial=0))

    def slice(self, offset: int, length: int) -> pa.Table:
        """The rows `offset` to `offset + length` (as `pa.Table.slice`)."""
        found = []
        at = bisect.bisect_right(self.starts, offset) - 1
        while length > 0 and at < len(self.batches):
            part = self.batches[at].slice(offset - self.starts[at], length)
            found.append(part)
            offset += part.num_rows
            length -= part.num_rows
            at += 1
        return pa.Table.from_batches(found, schema=self.schema)


def extract_batch(batch: FileBatch) -> BatchOutputs:
    """Read and parse each file of `batch` once and run each of its extractors on the tree.

    One bad file costs rows, never the batch: a file that cannot be parsed gets one
    core.parse_errors row from the parsing step's extractor (`PROBLEM_OWNER`) and nothing from
    the others; an extractor that raises on a file gives, for that file and its step, no rows
    but one `extractor_error` (or `recursion`) row, and the file counts as processed.

    Returns:
        Per file of the batch, in order: extractor name -> its output.
    """
    with gc_paused():  # a batch's trees and rows: see codeintel.gcpause
        found = BatchOutputs(
            _extract(batch, ref, digest, parsed, data) for ref, digest, parsed, data in _each_parsed(batch)
        )
        _tables_of_the_batch(found)
    found.spool = batch.spool
    return found


# tables whose rows a file has a few of: made into one Arrow table for the whole batch, each file
# given its slice (a table a file cost 0.2 ms: a third of cst_ingest's time on small files)
BATCHED_TABLES = (Table.COMMENTS, Table.DEF_HEADERS)


def _tables_of_the_batch(found: list[dict[str, FileOutput]]) -> None:
    """Turn the rows of `BATCHED_TABLES` of every output of a batch into one Arrow table per
    table, each output keeping its slice of it (among `tables`, as a worker builds them)."""
    for table in BATCHED_TABLES:
        having = [out for outputs in found for out in outputs.values() if table in out.rows]
        if not having:
            continue
        whole = to_arrow(table, [row for out in having for row in out.rows[table]])
        at = 0
        for out in having:
            n = len(out.rows.pop(table))
            out.tables[table] = whole.slice(at, n)
            at += n


def _extract(
    batch: FileBatch, ref: FileRef, digest: str | None, parsed: Parsed, data: bytes | None
) -> dict[str, FileOutput]:
    found: dict[str, FileOutput] = {}
    for name, step in zip(batch.extractors, batch.steps, strict=True):
        out = found[name] = FileOutput(ref.path, digest)
        from_source = SOURCE_EXTRACTORS.get(name)
        if from_source is not None and _source_usable(parsed):
            if data is None:  # beside extractors of the tree: the bytes are read once more
                found_bytes = read_source(Path(batch.root), ref.path)
                data = found_bytes if isinstance(found_bytes, bytes) else None
            if data is None:
                continue  # gone since: no rows, as for the others
            # tree-sitter parses what ast cannot (syntax errors, newer syntax, bad encodings)
        elif isinstance(parsed, ParseProblem):
            if name == PROBLEM_OWNER or parsed.kind == ProblemKind.EXTRACTOR_ERROR:
                out.add(Table.PARSE_ERRORS, replace(parsed, step=step))
            continue
        try:
            if from_source is not None and data is not None:
                from_source(batch, ref, data, step, out)
            elif isinstance(parsed, ParsedFile):
                EXTRACTORS[name](batch, ref, parsed, out)
        except Exception as exc:
            out.rows.clear()
            out.tables.clear()
            out.add(Table.PARSE_ERRORS, extractor_problem(ref.path, step, exc))
            logger.debug("extractor %s failed on %s", name, ref.path, exc_info=True)
    return found


Extractor = Callable[[FileBatch, FileRef, ParsedFile, FileOutput], None]
SourceExtractor = Callable[[FileBatch, FileRef, bytes, str, FileOutput], None]  # (..., bytes, step, out)

# what a source extractor still reads: files ast could not parse for want of a valid tree only
_SOURCE_PROBLEMS = frozenset(
    {ProblemKind.SYNTAX, ProblemKind.UNSUPPORTED_SYNTAX, ProblemKind.ENCODING, ProblemKind.RECURSION}
)


def _source_usable(parsed: Parsed) -> bool:
    return not isinstance(parsed, ParseProblem) or parsed.kind in _SOURCE_PROBLEMS


def _definitions(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    for d in iter_definitions(parsed.tree, ref.module, ref.path, len(parsed.lines)):
        out.add(Table.AST_NODES, d)


@dataclass(frozen=True, slots=True)
class _MetricsRow:
    goid: str
    path: str
    module: str
    qualname: str
    kind: str
    start_line: int
    end_line: int
    metrics: Any

    def __getattr__(self, name: str) -> Any:  # columns beyond the identity come from metrics
        return getattr(self.metrics, name)


def _metrics(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    for d in iter_definitions(parsed.tree, ref.module, ref.path, len(parsed.lines)):
        if d.kind in (DefKind.FUNCTION, DefKind.METHOD):
            goid = make_goid(batch.repo, ref.path, d.kind, d.qualname, d.ordinal)
            metrics = compute_function_metrics(d.node, parsed.lines)  # type: ignore[arg-type]
            row = _MetricsRow(goid, ref.path, ref.module, d.qualname, d.kind, d.start_line, d.end_line, metrics)
            out.add(Table.FUNCTION_METRICS, row)


@dataclass(frozen=True, slots=True)
class _ModuleExports:
    path: str
    module: str
    all_names: list[str] | None


def _imports(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    for site in extract_import_sites(parsed.tree, ref.module, ref.path, ref.is_package):
        out.add(Table.IMPORT_SITES, site)
    names = extract_all_names(parsed.tree)
    out.add(Table.MODULE_EXPORTS, _ModuleExports(ref.path, ref.module, None if names is None else list(names)))


@dataclass(frozen=True, slots=True)
class _CallFacts:
    path: str
    module: str
    facts: str


def _call_facts(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    facts = extract_call_facts(parsed.tree, ref.module, ref.path, ref.is_package)
    if facts.errors:  # the tree nests too deeply to walk: a `recursion` row, as for every extractor
        raise RecursionError(facts.errors[0])
    out.add(Table.CALL_FACTS, _CallFacts(ref.path, ref.module, facts_to_json(facts)))


def _cst(batch: FileBatch, ref: FileRef, data: bytes, step: str, out: FileOutput) -> None:
    found = extract_cst(data, repo=batch.repo, path=ref.path, module=ref.module)
    out.rows[Table.COMMENTS] = found.comments  # (made Arrow tables for the whole batch at once)
    out.rows[Table.DEF_HEADERS] = found.headers
    out.tables[Table.NAME_SITES] = columns_to_arrow(Table.NAME_SITES, found.name_columns)
    # a syntax error or undecodable bytes are no row of its own: the file's one core.parse_errors
    # row is ast_ingest's, and these rows are what tree-sitter recovered around them
    for line, _, kind, message in found.problems:
        logger.debug("cst_ingest: %s:%s: %s: %s", ref.path, line, kind, message)


@functools.cache
def extractor_code_digest() -> str:
    """A digest of the code that reads, parses and extracts files (codeintel/analysis and
    codeintel/ingestion): when it changes, files an extractor failed on are tried again."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.blake2b(digest_size=12)
    for source in sorted([*(package / "analysis").rglob("*.py"), *(package / "ingestion").rglob("*.py")]):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


# one extractor per per-file step (names are what `FileBatch.extractors` carries)
EXTRACTORS: dict[str, Extractor] = {
    "definitions": _definitions,  # ast_ingest: core.ast_nodes
    "metrics": _metrics,  # function_metrics: analytics.function_metrics
    "imports": _imports,  # import_graph: graph.import_sites, graph.module_exports
    "call_facts": _call_facts,  # call_graph: graph.call_facts
}
# extractors that work on a file's bytes (tree-sitter), run on files ast could not parse too
SOURCE_EXTRACTORS: dict[str, SourceExtractor] = {
    "cst": _cst,  # cst_ingest: core.comments, core.def_headers, core.name_sites
}
PROBLEM_OWNER = "definitions"
