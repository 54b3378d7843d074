"""What steps share for reading their inputs and writing their outputs.

- `collect_file_delta`: extract rows from the step's stale files (through the context's executor,
  parsing each file once for every per-file step of the run that needs it: `FileWorkAhead`) and
  gather them; `FileDelta.apply` then replaces those files' rows and records the step's file
  state inside the step's one write transaction.
- `step_writer`: the step's write transaction, which also bumps the step's output version in
  `meta.step_state`, so that whole-graph steps downstream know their inputs changed.
- `inputs_unchanged`: whether a whole-graph step's inputs are the same as when it last succeeded.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from codeintel import scratch
from codeintel.ingestion.change_tracker import FileRef, StaleFiles
from codeintel.ingestion.filework import FileBatch, FileOutput, extract_batch, extractor_code_digest
from codeintel.ingestion.parsing import ParseProblem, ProblemKind
from codeintel.orchestration.context import FileWork, PipelineContext
from codeintel.orchestration.executors import (
    SerialExecutor,
    StepExecutor,
    make_batches,
    should_parallelise,
    worker_died,
)
from codeintel.storage.catalog import Table, spec_of
from codeintel.storage.gateway import Writer
from codeintel.storage.text import arrow_array

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a step did: rows written, files (re)processed and deleted, and a note."""

    rows_written: int = 0
    files_processed: int = 0
    files_deleted: int = 0
    note: str | None = None
    skipped: bool = False

    @classmethod
    def noop(cls, note: str) -> StepResult:
        return cls(note=note)


@dataclass(slots=True)
class FileDelta:
    """Rows for the stale files of one step, ready to be written in one transaction."""

    step: str
    tables: tuple[str, ...]
    stale: StaleFiles
    outputs: list[FileOutput] = field(default_factory=list)

    def arrow(self, table: str) -> pa.Table:
        spec = spec_of(table)
        rows = [row for out in self.outputs for row in out.rows.get(table, ())]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in spec.columns]
        schema = spec.arrow_schema
        built = pa.Table.from_arrays(
            [arrow_array(list(col), schema.field(i).type) for i, col in enumerate(columns)], schema=schema
        )
        ready = [out.tables[table] for out in self.outputs if table in out.tables]  # built by the workers
        if not ready:
            return built
        parts = [built, *ready] if built.num_rows else ready
        if any(part.schema != parts[0].schema for part in parts):  # text dictionary-encoded in some only
            parts = [part.cast(schema) for part in parts]
        return _one_chunk(pa.concat_tables(parts))

    def _size(self, table: str) -> int:
        """Rows the outputs hold for `table`."""
        return sum(
            len(out.rows.get(table, ())) + (out.tables[table].num_rows if table in out.tables else 0)
            for out in self.outputs
        )

    def apply(self, writer: Writer, run_id: str) -> int:
        """Replace the rows of the stale files in every table and record what was processed."""
        from codeintel.ingestion.change_tracker import ChangeTracker

        clear = self.stale.paths_to_clear
        written = 0
        # the largest table's rows are joined (`arrow`) in a thread while the others are written:
        # Arrow and DuckDB let go of the GIL (sqlalchemy's name sites: 0.09 s of joining, beside
        # writing comments and headers)
        *others, largest = sorted(self.tables, key=self._size)
        with ThreadPoolExecutor(1, thread_name_prefix="codeintel-join") as pool:
            joined = pool.submit(self.arrow, largest)
            for table in others:
                writer.delete_paths(table, clear)
                written += writer.insert(table, self.arrow(table))
            writer.delete_paths(largest, clear)
            written += writer.insert(largest, joined.result())
        # every per-file step records the files it could not use (core.parse_errors, its rows only)
        writer.delete_paths(Table.PARSE_ERRORS, clear, f" AND step = '{self.step}'")
        written += writer.insert(Table.PARSE_ERRORS, self.arrow(Table.PARSE_ERRORS))
        processed = [(o.path, o.hash) for o in self.outputs if o.hash is not None]
        ChangeTracker.record(writer, self.step, run_id, processed, self.stale.gone)
        return written


# DuckDB inserts a table of one chunk per column in about 60% of the time it takes for the same
# rows in a chunk per file (sqlalchemy's name sites: 0.5 s against 0.8 s); joining them is a copy,
# into memory from the system allocator: Arrow's default (mimalloc) took 0.08-0.29 s for the
# 110 MB of sqlalchemy's name sites in a fresh process, malloc 0.025 s.  Past this size the copy
# may not fit in 32-bit string offsets and is not tried.
_MAX_ONE_CHUNK_BYTES = 1 << 30


def _one_chunk(table: pa.Table) -> pa.Table:
    """`table` with each column in one chunk (what DuckDB inserts fastest), when not huge."""
    if table.get_total_buffer_size() >= _MAX_ONE_CHUNK_BYTES:  # (`nbytes` walks every chunk's slices: slower)
        return table
    return table.combine_chunks(memory_pool=pa.system_memory_pool())


def collect_file_delta(ctx: PipelineContext, work: FileWork, *, priority: int = 0) -> FileDelta:
    """Extract rows from the files `work.step` has to (re)process; nothing is written yet.

    `priority`: where steps overlap on a cluster, batches of higher priority run first.
    """
    stale = ctx.change_tracker.stale_files(work.step)
    delta = FileDelta(work.step, work.tables, stale)
    ahead = ctx.work_ahead
    ready, files = ahead.take(work.step, stale.to_process)
    delta.outputs.extend(ready)
    if not files:
        return delta
    # the steps after this one that will need some of these files: extract for them on the way
    later = [
        (w, {(f.path, f.hash) for f in ctx.change_tracker.stale_files(w.step).to_process})
        for w in ahead.later(work.step)
    ]
    groups: dict[tuple[FileWork, ...], list[FileRef]] = {}
    for f in files:
        works = (work, *(w for w, needed in later if (f.path, f.hash) in needed))
        groups.setdefault(works, []).append(f)
    snap, ex = ctx.config.snapshot, ctx.config.execution
    parallel = should_parallelise(len(files), sum(f.size for f in files))
    executor = ctx.executor if parallel else SerialExecutor()
    with _spool_for(executor) as spool:
        jobs = [
            FileBatch(
                str(snap.repo_root),
                snap.repo_name,
                ex.scan.max_file_size,
                tuple(batch),
                tuple(w.extractor for w in works),
                tuple(w.step for w in works),
                spool,
            )
            for works, group in groups.items()
            for batch in make_batches(group, [f.size for f in group], executor.workers)
        ]
        extracted = _extract_isolating_deaths(executor, jobs, priority)
    for job, results in zip(jobs, extracted, strict=True):
        for ref, found in zip(job.files, results, strict=True):
            delta.outputs.append(found[work.extractor])
            for w, _ in later:
                if w.extractor in found:
                    ahead.keep(w.step, ref, found[w.extractor])
    ahead.share()
    return delta


@contextmanager
def _spool_for(executor: StepExecutor) -> Iterator[str | None]:
    """A directory for the workers of a process pool on this machine to leave their results'
    Arrow tables in (`filework.BatchOutputs`), removed with whatever is left there after the
    map; None for the rest (serial: nothing is pickled; a cluster: its workers' files are not
    this machine's)."""
    if executor.remote or isinstance(executor, SerialExecutor):
        yield None
        return
    try:
        made = scratch.temporary_directory("codeintel-rows-")
    except OSError as exc:  # no temporary directory to write in: the rows travel through the pipe
        logger.warning("no spool for the workers' rows (%s): they travel through the pipe", exc)
        yield None
        return
    with made as spool:
        yield spool


def _extract_isolating_deaths(
    executor: StepExecutor, jobs: list[FileBatch], priority: int
) -> list[list[dict[str, FileOutput]]]:
    """`extract_batch` over `jobs`; when a worker process dies on the way (killed by the OOM
    killer, a crash in native code), the files are tried again to find the ones it dies on:
    batch by batch, then file by file in a batch that still kills its worker.  Such a file gets
    one `worker_died` row per step instead of rows, like a file an extractor raised on; every
    other file is indexed.  (The pool is started again after each death.)"""
    try:
        return executor.map(extract_batch, jobs, priority)
    except Exception as exc:
        if not worker_died(exc):
            raise
        logger.warning("a worker process died extracting files (%s): trying them again to find which", exc)
    found: list[list[dict[str, FileOutput]]] = []
    for job in jobs:
        outputs = _map_one(executor, job, priority)
        if outputs is None:  # a file of this batch kills its worker: which?
            outputs = []
            for ref in job.files:
                single = replace(job, files=(ref,))
                alone = _map_one(executor, single, priority) if len(job.files) > 1 else None
                if alone is None:
                    logger.warning(
                        "%s: the worker process extracting it died; recorded in %s", ref.path, Table.PARSE_ERRORS
                    )
                outputs.extend(alone if alone is not None else [_died_on(single, ref)])
        found.append(outputs)
    return found


def _map_one(executor: StepExecutor, job: FileBatch, priority: int) -> list[dict[str, FileOutput]] | None:
    """`extract_batch(job)` on the executor; None when the worker running it died."""
    try:
        return executor.map(extract_batch, [job], priority)[0]
    except Exception as exc:
        if not worker_died(exc):
            raise
        return None


def _died_on(job: FileBatch, ref: FileRef) -> dict[str, FileOutput]:
    """The rows of a file whose worker process died: one `worker_died` problem per step."""
    outputs = {}
    for name, step in zip(job.extractors, job.steps, strict=True):
        out = outputs[name] = FileOutput(ref.path, ref.hash)
        message = "the worker process extracting this file died (killed, out of memory, or a crash in native code)"
        out.add(
            Table.PARSE_ERRORS, ParseProblem(ref.path, ProblemKind.WORKER_DIED, None, None, message, step, "WorkerDied")
        )
    return outputs


def write_file_delta(ctx: PipelineContext, deps: Sequence[str], delta: FileDelta) -> StepResult:
    """Write a per-file step's delta in its one transaction (nothing when nothing was stale)."""
    if not delta.stale:
        return StepResult.noop("no stale files")
    with step_writer(ctx, delta.step, deps) as w:
        rows = delta.apply(w, ctx.run_id)
    return StepResult(rows, len(delta.outputs), len(delta.stale.gone))


def current_rows(ctx: PipelineContext, table: str, delta: FileDelta) -> pa.Table:
    """All rows of a per-file table as they will be once `delta` is applied (read, not written)."""
    spec = spec_of(table)
    clear = sorted(delta.stale.paths_to_clear)
    stored = ctx.gateway.query(
        f"SELECT {', '.join(spec.column_names)} FROM {table} WHERE NOT list_contains(?, {spec.path_column})", [clear]
    )
    return pa.concat_tables([stored.cast(spec.arrow_schema), delta.arrow(table).cast(spec.arrow_schema)])


def same_rows(ctx: PipelineContext, table: str, rows: pa.Table) -> bool:
    """Whether `table` holds exactly `rows` (as a multiset: order does not matter)."""
    spec = spec_of(table)
    stored = ctx.gateway.query(f"SELECT {', '.join(spec.column_names)} FROM {table}")
    if stored.num_rows != rows.num_rows:
        return False
    new = rows.select(list(spec.column_names)).cast(spec.arrow_schema)
    return _row_counts(stored.cast(spec.arrow_schema)) == _row_counts(new)


def _row_counts(table: pa.Table) -> Counter[tuple[Any, ...]]:
    return Counter(zip(*table.to_pydict().values(), strict=True))


def fingerprint(con: Any, deps: Sequence[str], content: Sequence[str] = ()) -> str:
    """A digest of what a step's inputs are now: the output versions of `deps`, or, when
    `content` queries are given, the rows they return (an order-free hash of each query's rows).

    A step that reads only part of its deps' outputs (the graph steps read who calls whom, not
    where) gives the queries it reads through, so that a new version of a dep whose part it
    reads is the same leaves it "up to date".
    """
    if content:
        parts = ", ".join(f"(SELECT (count(*), sum(hash(t))) FROM ({sql}) AS t)" for sql in content)
        text = "content|" + repr(con.execute(f"SELECT {parts}").fetchone())
    elif not deps:
        return ""
    else:
        rows = con.execute(
            f"SELECT step, output_version FROM {Table.STEP_STATE} WHERE list_contains(?, step)", [list(deps)]
        ).fetchall()
        versions = dict(rows)
        text = "|".join(f"{d}={versions.get(d) or ''}" for d in sorted(deps))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def inputs_unchanged(
    ctx: PipelineContext, step: str, deps: Sequence[str], *, check: str | None = None, content: Sequence[str] = ()
) -> bool:
    """True when `step` last succeeded on exactly the inputs its deps hold now (and not --full).

    `check`, when given, is a SQL query returning one boolean that must also be true (e.g. that
    the step's outputs still exist). `content`: see `fingerprint`.
    """
    if ctx.config.full:
        return False
    with ctx.gateway.reader() as con:
        found = con.execute(f"SELECT input_fingerprint FROM {Table.STEP_STATE} WHERE step = ?", [step]).fetchone()
        if found is None or found[0] != fingerprint(con, deps, content):
            return False
        ok = con.execute(check).fetchone() if check else (True,)
        return bool(ok and ok[0])


@contextmanager
def step_writer(
    ctx: PipelineContext, step: str, deps: Sequence[str], *, changed: bool = True, content: Sequence[str] = ()
) -> Iterator[Writer]:
    """The step's single write transaction; also records its state in `meta.step_state`."""
    with ctx.gateway.writer(f"run {ctx.run_id} step {step}") as w:
        fp = fingerprint(w.con, deps, content)
        yield w
        record_step_state(w, step, ctx.run_id if changed else None, fp, ctx.run_id)


def record_step_state(writer: Writer, step: str, output_version: str | None, input_fp: str, run_id: str) -> None:
    """Upsert `meta.step_state` for `step` (a None output version keeps the old one)."""
    old = writer.con.execute(
        f"SELECT output_version, code_version, code_digest FROM {Table.STEP_STATE} WHERE step = ?", [step]
    ).fetchone()
    version = output_version or (old[0] if old else run_id)
    writer.execute(f"DELETE FROM {Table.STEP_STATE} WHERE step = ?", [step])
    writer.execute(
        f"INSERT INTO {Table.STEP_STATE} VALUES (?, ?, ?, ?, ?, ?)",
        [step, version, input_fp, run_id, *(old[1:] if old else (None, None))],
    )


def step_code_version(step: Any, ctx: PipelineContext) -> str:
    """`step`'s code version (`align_code_version`), with the size limit where the step skips the
    files over it (the per-file steps, and those that say `sized`): a new limit makes it redo
    every file, as new code does (a file it skipped is now read, or one it read now skipped)."""
    version = str(getattr(step, "code_version", "1"))
    if getattr(step, "file_work", None) is not None or getattr(step, "sized", False):
        version += f"; max_file_size {ctx.config.execution.scan.max_file_size}"
    return version


def align_code_version(ctx: PipelineContext, step: str, code_version: str) -> bool:
    """Make `step` redo everything when its analysis code changed since it last ran.

    Steps declare a `code_version` (e.g. the call-graph facts format); when the stored one differs,
    the step's file state and fingerprint are forgotten, so stored facts of an older format are
    recomputed instead of misread.  Returns True when it reset the step.
    """
    with ctx.gateway.reader() as con:
        found = con.execute(f"SELECT code_version FROM {Table.STEP_STATE} WHERE step = ?", [step]).fetchone()
    if found is not None and found[0] == code_version:
        return False
    with ctx.gateway.writer(f"run {ctx.run_id} step {step} code version") as w:
        if found is not None:
            w.execute(f"DELETE FROM {Table.STEP_FILE_STATE} WHERE step = ?", [step])
        w.execute(f"DELETE FROM {Table.STEP_STATE} WHERE step = ?", [step])
        w.execute(
            f"INSERT INTO {Table.STEP_STATE} VALUES (?, ?, '', ?, ?, NULL)",
            [step, ctx.run_id, ctx.run_id, code_version],
        )
    return found is not None


def retry_files_our_code_failed(ctx: PipelineContext, step: str) -> int:
    """Make a per-file step redo the files its extractor failed on (`extractor_error`, or a
    `recursion` while analysing), once CodeIntel's extraction code has changed since: a fixed
    bug then indexes them.  Otherwise such a file counts as done until it changes.  Returns
    how many files are made stale again.
    """
    digest = extractor_code_digest()
    with ctx.gateway.reader() as con:
        found = con.execute(f"SELECT code_digest FROM {Table.STEP_STATE} WHERE step = ?", [step]).fetchone()
    if found is None or found[0] == digest:
        return 0
    count = None
    with ctx.gateway.writer(f"run {ctx.run_id} step {step} code digest") as w:
        if found[0] is not None:  # None: the step's files are all to be (re)done anyway
            failed = f"SELECT path FROM {Table.PARSE_ERRORS} WHERE step = ? AND error_type IS NOT NULL"
            count = w.con.execute(f"SELECT count(*) FROM ({failed})", [step]).fetchone()
            w.execute(f"DELETE FROM {Table.STEP_FILE_STATE} WHERE step = ? AND path IN ({failed})", [step, step])
        w.execute(f"UPDATE {Table.STEP_STATE} SET code_digest = ? WHERE step = ?", [digest, step])
    return int(count[0]) if count else 0
