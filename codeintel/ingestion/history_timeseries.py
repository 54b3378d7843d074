"""What the `history_timeseries` step calls: plan the samples, list their files, measure new
blobs, and store the samples and the table laid out from them.

- Plan: the samples the grid asks for now (`codeintel.analysis.history_timeseries`), against
  those stored.  A stored sample whose commit is still the one standing at its grid point (and
  whose files were listed under the same scan profile) is kept as it is; the others are listed
  again or dropped.
- Files: each new sample's `.py` files (path, blob) from its commit's tree, read through the one
  `git cat-file --batch` process of the history (`blobs.open_blobs`); subtrees already read for
  an earlier sample are not read again.  The scan profile applies (include, exclude, ignored
  directories); symbolic links and submodules are not files.
- Metrics: per blob, computed once whatever the sample or path (a file that did not change
  since the sample before is never read or parsed again; its rows carry over).  A blob is
  parsed by `ast` and its functions measured by the code of `analytics.function_metrics`
  (`codeintel.analysis.metrics` over `codeintel.analysis.definitions`); where `ast` cannot parse
  it (Python 2, the syntax of a newer Python, undecodable text) tree-sitter gives its
  definitions and spans (`loc`) and the other metrics are missing (NULL), and the module row
  says why (`problem`); a binary or too large blob, or one whose measuring failed, is a module
  row with no functions.  Never a failure of the step.  New blobs are measured on the step
  executor's workers (blob contents travel, never paths to read).
- Identity: each (path, blob)'s definitions get the lineage the history walk stored for them
  (`history.versions`), matched by qualified name and same-name ordinal; the SQL then names
  the GOID of HEAD each lineage became.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import hashlib
import logging
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from codeintel.analysis.definitions import DefKind, FunctionNode, walk_definitions
from codeintel.analysis.history_timeseries import (
    Sample,
    TimeseriesSettings,
    choose_samples,
    first_parent_chain,
    sample_times,
    timeseries_sql,
)
from codeintel.analysis.metrics import compute_function_metrics
from codeintel.config import ScanProfile
from codeintel.gcpause import gc_paused
from codeintel.ingestion.history.blobs import BlobReader
from codeintel.ingestion.history.outline import decode_source, ordinals, parse_outline, source_lines, walk
from codeintel.ingestion.history.versions import id_text, name_key, ordinals_of_keys
from codeintel.ingestion.parsing import ParsedFile, ProblemKind, parse_bytes
from codeintel.ingestion.scan import NAMING_RULES, module_name
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import StorageGateway, Writer, to_arrow
from codeintel.storage.text import safe_text

logger = logging.getLogger(__name__)

# the code a blob's rows come from: stored rows of another digest are measured again
_MEASURING_CODE = (
    "analysis/metrics.py", "analysis/definitions.py", "ingestion/parsing.py", "ingestion/history/outline.py",
    "ingestion/history_timeseries.py",
)  # fmt: skip
_BATCH_BYTES = 16_000_000  # blob contents held at once on their way to the workers
_SMALL_WORK = (16, 400_000)  # fewer blobs or bytes than this: measured here (a pool would cost more)

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """What measuring needs of the step's executor (`codeintel.orchestration.executors`)."""

    workers: int

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]: ...
_REGULAR_FILE_MODES = (b"100644", b"100755")
LAYOUT_MEMORY_LIMIT = "256MB"
_TREE_MODE = b"40000"


@functools.cache
def measuring_code_digest() -> str:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.blake2b(digest_size=8)
    for name in _MEASURING_CODE:
        digest.update(name.encode() + b"\0" + (package / name).read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------ plan


@dataclass(frozen=True, slots=True)
class TimeseriesPlan:
    """The samples of this run, oldest first; which stored ones stay as they are; the digests
    stored beside the samples (scan profile) and the blobs (measuring code, size limit);
    whether stored blobs were measured by other code (they are dropped), and whether every
    blob is measured again (a full run: nothing stored is used)."""

    samples: list[Sample]
    kept: frozenset[datetime]
    stored: frozenset[datetime]
    listing: str
    code: str
    stale_blobs: bool = False
    fresh: bool = False
    root: str = ""  # the indexed directory in the repository (`ToolService.git_prefix`)

    @property
    def unchanged(self) -> bool:
        return not (self.stale_blobs or self.fresh) and self.kept == self.stored == {s.time for s in self.samples}

    @property
    def new(self) -> list[Sample]:
        return [s for s in self.samples if s.time not in self.kept]


def plan_timeseries(
    gateway: StorageGateway, settings: TimeseriesSettings, profile: ScanProfile, *, full: bool = False, root: str = ""
) -> TimeseriesPlan:
    """The samples the grid asks for on the history stored now, against the samples stored
    (none kept when `full`); `root`: the directory of the repository the files are listed
    from (`TimeseriesPlan.root`)."""
    listed_by = (profile.include, profile.exclude, profile.ignored_dirs, root, NAMING_RULES)
    listing = hashlib.blake2b(repr(listed_by).encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    code = f"{measuring_code_digest()}-{profile.max_file_size}"
    with gateway.reader() as con:  # one connection for the plan's few reads
        rows = con.execute(f"SELECT sample_time, sha, listing FROM {Table.TIMESERIES_SAMPLES}").fetchall()
        stale = con.execute(f"SELECT 1 FROM {Table.TIMESERIES_BLOBS} WHERE code <> ? LIMIT 1", [code]).fetchall()
        head = con.execute(
            f"SELECT c.sha, c.committer_time FROM {Table.HISTORY_STATE} s JOIN {Table.COMMITS} c ON c.sha = s.head"
        ).fetchall()
        commits = con.execute(f"SELECT sha, parents[1], committer_time FROM {Table.COMMITS}").fetchall() if head else []
    stored = frozenset(r[0] for r in rows)
    valid = {(t, sha) for t, sha, used in rows if used == listing and not full}
    if not head or settings.samples == 0:
        return TimeseriesPlan([], frozenset(), stored, listing, code, bool(stale), full, root)
    chain = first_parent_chain(head[0][0], {sha: (parent, time) for sha, parent, time in commits})
    samples = choose_samples(chain, sample_times(head[0][1], settings))
    kept = frozenset(s.time for s in samples if (s.time, s.sha) in valid)
    return TimeseriesPlan(samples, kept, stored, listing, code, bool(stale), full, root)


# ------------------------------------------------------------------------------------ files


class TreeLister:
    """The `.py` files (path -> blob) of commits' trees, read through `cat-file --batch`; a
    subtree seen before (same id at the same place) is not read again."""

    def __init__(self, blobs: BlobReader, profile: ScanProfile, root: str = "") -> None:
        self._blobs = blobs
        self._profile = profile
        self._root = [_git_name(part) for part in root.split("/") if part]  # the indexed directory's way down
        self._ignored = {d.encode("utf-8", "surrogateescape") for d in profile.ignored_dirs}
        self._seen: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._packages: frozenset[str] = frozenset()
        self._modules: dict[str, str] = {}

    def files(self, commit: str) -> dict[str, str]:
        """Path (as stored: `safe_text`) -> blob of each file of `commit` the scan profile takes."""
        data = self._blobs.read(commit)
        if data is None or not data.startswith(b"tree "):
            raise ValueError(f"{commit} is not a commit git can read")
        tree: str | None = data[5 : data.index(b"\n")].decode("ascii")
        for name in self._root:  # down to the indexed directory, whose files are named from it
            tree = self._subtree(tree, name, len(commit) // 2) if tree else None
        if tree is None:  # no such directory at that commit
            return {}
        p = self._profile
        return {
            safe_text(path): blob
            for path, blob in self._tree(tree, "", len(commit) // 2)
            if any(fnmatch.fnmatch(path, pat) for pat in p.include)
            and not any(fnmatch.fnmatch(path, pat) for pat in p.exclude)
        }

    def module_names(self, paths: Iterable[str]) -> dict[str, str]:
        """The import name of each path, with the packages of the same listing (as the scan);
        names already given with the same packages are not worked out again."""
        listed = list(paths)
        packages = frozenset(p.rpartition("/")[0] for p in listed if p.endswith("/__init__.py"))
        if packages != self._packages:
            self._packages, self._modules = packages, {}
        known, package_set = self._modules, set(packages)
        for p in listed:
            if p not in known:
                known[p] = module_name(p, package_set)[0]
        return {p: known[p] for p in listed}

    def _subtree(self, tree: str, name: bytes, id_len: int) -> str | None:
        data = self._blobs.read(tree)
        if data is None:
            raise ValueError(f"tree {tree} is missing")
        for mode, entry, oid in _entries(data, id_len):
            if entry == name and mode == _TREE_MODE:
                return oid
        return None

    def _tree(self, tree: str, prefix: str, id_len: int) -> list[tuple[str, str]]:
        found = self._seen.get((tree, prefix))
        if found is not None:
            return found
        data = self._blobs.read(tree)
        if data is None:
            raise ValueError(f"tree {tree} ({prefix or '/'}) is missing")
        found = []
        for mode, name, oid in _entries(data, id_len):
            if mode == _TREE_MODE:
                if name not in self._ignored:
                    found.extend(self._tree(oid, prefix + _fs_name(name) + "/", id_len))
            elif mode in _REGULAR_FILE_MODES:  # not symbolic links (120000), not submodules (160000)
                found.append((prefix + _fs_name(name), oid))
        self._seen[(tree, prefix)] = found
        return found


def _entries(data: bytes, id_len: int) -> Iterator[tuple[bytes, bytes, str]]:
    """(mode, name, object id) of each entry of a tree object's bytes."""
    at = 0
    while at < len(data):
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        yield data[at:space], data[space + 1 : nul], data[nul + 1 : nul + 1 + id_len].hex()
        at = nul + 1 + id_len


def _git_name(name: str) -> bytes:
    """A path part as git stores it (the inverse of `_fs_name`)."""
    return name.encode("utf-8", "surrogateescape")


def _fs_name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")  # as the file system names it (PEP 383)




# ------------------------------------------------------------------------------------ metrics


@dataclass(frozen=True, slots=True)
class MeasureJob:
    """Blobs to measure on a worker: (blob id, a path it had, content or None when missing)."""

    blobs: tuple[tuple[str, str, bytes | None], ...]
    max_size: int
    code: str


def measure_blobs(job: MeasureJob) -> pa.Table:
    """The rows of `history.timeseries_blobs` for each blob of `job`; a function whose text
    another version of the same file already had is not measured again."""
    rows: list[tuple[Any, ...]] = []
    known: dict[str, tuple[int, ...]] = {}
    last_path = None
    with gc_paused():  # trees and rows: see codeintel.gcpause
        for blob, path, data in job.blobs:
            if path != last_path:  # the versions of one file come together: keep the texts of one file's only
                known, last_path = {}, path
            try:
                rows.extend(measure_blob(blob, path, data, job.max_size, job.code, known))
            except Exception as exc:  # a bug of ours on one blob: that blob has no functions, nothing else lost
                logger.debug("measuring %s (%s) failed", blob, path, exc_info=True)
                rows.append(_module_row(blob, 0, None, f"extractor_error: {type(exc).__name__}: {exc}", job.code))
        return to_arrow(Table.TIMESERIES_BLOBS, rows)


def measure_blob(
    blob: str, path: str, data: bytes | None, max_size: int, code: str, known: dict[str, tuple[int, ...]] | None = None
) -> list[tuple[Any, ...]]:
    """The module row and one row per function and method of one blob (see the module docstring).

    `known`: metrics by the text of a function's span (decorators to last line), filled and
    reused: the same text parses to the same tree, so it measures the same.
    """
    known = {} if known is None else known
    if data is None:
        return [_module_row(blob, 0, None, "missing: git has no such object", code)]
    parsed = parse_bytes(path, data, max_size)
    if isinstance(parsed, ParsedFile):
        rows = [_module_row(blob, len(parsed.lines), "ast", None, code)]
        for qualname, ordinal, kind, start, end, node in iter_functions(parsed.tree):
            text = "\n".join(parsed.lines[start - 1 : end])
            values = known.get(text)
            if values is None:
                m = compute_function_metrics(node, parsed.lines)
                values = known[text] = (m.loc, m.sloc, m.cyclomatic, m.max_nesting_depth, m.param_count)
            rows.append((blob, kind, qualname, ordinal, name_key(qualname), start, end, *values, "ast", None, code))
        return rows
    problem = f"{parsed.kind}: {parsed.message}"
    if parsed.kind in (ProblemKind.BINARY, ProblemKind.TOO_LARGE):
        return [_module_row(blob, 0, None, problem, code)]
    lines = source_lines(decode_source(data))
    root, parser = parse_outline(lines)
    rows = [_module_row(blob, len(lines), parser, problem, code)]
    outline = walk(root)
    for o, ordinal in zip(outline, ordinals(outline), strict=True):
        if o.kind in (DefKind.FUNCTION, DefKind.METHOD):
            rows.append((
                blob, o.kind, o.qualname, ordinal, name_key(o.qualname), o.start, o.end, o.end - o.start + 1,
                None, None, None, None, parser, None, code,
            ))  # fmt: skip
    return rows


def iter_functions(tree: ast.Module) -> Iterator[tuple[str, int, str, int, int, FunctionNode]]:
    """(qualified name, same-name ordinal, kind, first line, last line, node) of each function
    and method, named as core.ast_nodes names them (`walk_definitions`)."""
    for node, qualname, ordinal, kind, _ in walk_definitions(tree):
        if not isinstance(node, ast.ClassDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            yield qualname, ordinal, str(kind), start, node.end_lineno or node.lineno, node


def _module_row(blob: str, n_lines: int, parser: str | None, problem: str | None, code: str) -> tuple[Any, ...]:
    return (blob, "module", "", 0, 0, 1, n_lines, n_lines, None, None, None, None, parser, problem, code)


def _measure(
    blobs: BlobReader, wanted: Sequence[tuple[str, str]], max_size: int, code: str, executor: Executor
) -> list[pa.Table]:
    """Rows for the (blob, path) of `wanted`: contents read here, measured on the executor's
    workers (serially when the work is small), a few megabytes at a time."""
    rows: list[pa.Table] = []
    pending: list[tuple[str, str, bytes | None]] = []
    size = 0
    for blob, path in wanted:
        data = blobs.read(blob)
        pending.append((blob, path, data))
        size += len(data or b"")
        if size >= _BATCH_BYTES:
            rows.extend(_measure_pending(pending, size, max_size, code, executor))
            pending, size = [], 0
    rows.extend(_measure_pending(pending, size, max_size, code, executor))
    return rows


def _measure_pending(
    pending: list[tuple[str, str, bytes | None]], size: int, max_size: int, code: str, executor: Executor
) -> list[pa.Table]:
    if not pending:
        return []
    if len(pending) < _SMALL_WORK[0] or size < _SMALL_WORK[1] or executor.workers < 2:
        return [measure_blobs(MeasureJob(tuple(pending), max_size, code))]
    by_path: dict[str, list[tuple[str, str, bytes | None]]] = {}
    for item in pending:  # the versions of a file together: most of their functions measure once
        by_path.setdefault(item[1], []).append(item)
    count = min(len(by_path), executor.workers * 4)
    batches: list[list[tuple[str, str, bytes | None]]] = [[] for _ in range(count)]
    loads = [0] * count
    for group in sorted(by_path.values(), key=lambda g: -sum(len(p[2] or b"") for p in g)):  # largest first,
        slot = loads.index(min(loads))  # onto the lightest batch
        batches[slot].extend(group)
        loads[slot] += sum(len(p[2] or b"") + 1 for p in group)
    jobs = [MeasureJob(tuple(batch), max_size, code) for batch in batches if batch]
    return executor.map(measure_blobs, jobs)


# ------------------------------------------------------------------------------------ collect and store


@dataclass(slots=True)
class TimeseriesFacts:
    """What a run adds: the new samples and their files, the blobs measured, and the lineage
    and file id of each definition of each (path, blob) of the samples (for the layout)."""

    samples: list[tuple[Any, ...]] = field(default_factory=list)
    files: list[tuple[Any, ...]] = field(default_factory=list)
    blobs: list[pa.Table] = field(default_factory=list)
    lineages: pa.Table = field(default_factory=lambda: _lineage_table({}))
    file_ids: pa.Table = field(default_factory=lambda: _file_id_table({}))
    measured: int = 0

    @property
    def note(self) -> str:
        return f"{len(self.samples)} samples listed, {self.measured} blobs parsed"


def collect_timeseries(
    gateway: StorageGateway, blobs: BlobReader, plan: TimeseriesPlan, profile: ScanProfile, executor: Executor
) -> TimeseriesFacts:
    """List the new samples' files, measure the blobs not measured yet, and read the lineages
    of every (path, blob) of the samples."""
    with gc_paused():  # rows of every sample and blob alive together: no collection walks them
        return _collect(gateway, blobs, plan, profile, executor)


def _collect(
    gateway: StorageGateway, blobs: BlobReader, plan: TimeseriesPlan, profile: ScanProfile, executor: Executor
) -> TimeseriesFacts:
    facts = TimeseriesFacts()
    lister = TreeLister(blobs, profile, plan.root)
    with gateway.reader() as con:
        keys: set[tuple[str, str]] = set(
            con.execute(
                f"SELECT DISTINCT path, blob FROM {Table.TIMESERIES_FILES} WHERE list_contains(?, sample_time)",
                [sorted(plan.kept)],
            ).fetchall()
        )
        measured = con.execute(
            f"SELECT blob FROM {Table.TIMESERIES_BLOBS} WHERE kind = 'module' AND code = ?", [plan.code]
        ).fetchall()
    done = set() if plan.fresh else {b for (b,) in measured}
    for sample in plan.new:
        files = lister.files(sample.sha)
        modules = lister.module_names(files)
        facts.samples.append((sample.time, sample.sha, sample.committed_at, len(files), plan.listing))
        facts.files.extend((sample.time, path, blob, modules[path]) for path, blob in sorted(files.items()))
        keys.update(files.items())
    # by path: a file's versions measured together (see measure_blobs)
    wanted = sorted({blob: path for path, blob in sorted(keys) if blob not in done}.items(), key=lambda bp: (bp[1], bp[0]))
    facts.blobs = _measure(blobs, wanted, profile.max_file_size, plan.code, executor)
    facts.measured = len(wanted)
    facts.lineages, facts.file_ids = read_lineages(gateway, keys)
    return facts


def read_lineages(gateway: StorageGateway, keys: Iterable[tuple[str, str]]) -> tuple[pa.Table, pa.Table]:
    """(path, blob, name key, same-key ordinal -> lineage id) of each definition the history
    walk stored for each (path, blob) of `keys`, and (path, blob -> file id)."""
    wanted = sorted(set(keys))
    lineage_cols: dict[str, list[Any]] = {c: [] for c in _LINEAGE_TYPES}
    file_cols: dict[str, list[Any]] = {"path": [], "blob": [], "file_id": []}
    with gateway.reader() as con:
        con.register(
            "_ci_ts_keys",
            pa.table({"path": pa.array([k[0] for k in wanted], pa.string()), "blob": [k[1] for k in wanted]}),
        )
        found = con.execute(
            f"SELECT v.path, v.blob, v.file_id, v.lineages, v.name_keys FROM {Table.VERSIONS} v "
            "JOIN _ci_ts_keys k ON k.path = v.path AND k.blob = v.blob"
        ).fetchall()
    texts: dict[int, str] = {}
    for path, blob, file_id, packed_lineages, packed_keys in found:
        file_cols["path"].append(path)
        file_cols["blob"].append(blob)
        file_cols["file_id"].append(file_id)
        lineages, name_keys = array("q"), array("I")
        lineages.frombytes(packed_lineages)
        name_keys.frombytes(packed_keys)
        lineage_cols["path"].extend([path] * len(name_keys))
        lineage_cols["blob"].extend([blob] * len(name_keys))
        lineage_cols["name_key"].extend(name_keys)
        lineage_cols["ordinal"].extend(ordinals_of_keys(name_keys))
        lineage_cols["lineage_id"].extend([texts.get(v) or texts.setdefault(v, id_text(v)) for v in lineages])
    return _lineage_table(lineage_cols), _file_id_table(file_cols)


_LINEAGE_TYPES = {
    "path": pa.string(), "blob": pa.string(), "name_key": pa.int64(), "ordinal": pa.int32(), "lineage_id": pa.string(),
}  # fmt: skip


def _lineage_table(columns: dict[str, list[Any]]) -> pa.Table:
    return pa.table({c: pa.array(columns.get(c, []), t) for c, t in _LINEAGE_TYPES.items()})


def _file_id_table(columns: dict[str, list[Any]]) -> pa.Table:
    return pa.table({c: pa.array(columns.get(c, []), pa.string()) for c in ("path", "blob", "file_id")})


def store_timeseries(writer: Writer, plan: TimeseriesPlan, facts: TimeseriesFacts) -> int:
    """Replace the samples not kept, add the blobs measured, drop blobs no sample holds, and
    lay `analytics.history_timeseries` out again; returns the rows written."""
    writer.set("memory_limit", LAYOUT_MEMORY_LIMIT)  # the layout spills beyond (reset when the writer ends)
    kept = sorted(plan.kept)
    for table in (Table.TIMESERIES_SAMPLES, Table.TIMESERIES_FILES):
        writer.execute(f"DELETE FROM {table} WHERE NOT list_contains(?::TIMESTAMPTZ[], sample_time)", [kept])
    writer.execute(f"DELETE FROM {Table.TIMESERIES_BLOBS} WHERE code <> ? OR ?", [plan.code, plan.fresh])
    writer.insert(Table.TIMESERIES_SAMPLES, to_arrow(Table.TIMESERIES_SAMPLES, facts.samples))
    writer.insert(Table.TIMESERIES_FILES, to_arrow(Table.TIMESERIES_FILES, facts.files))
    for measured in facts.blobs:
        writer.insert(Table.TIMESERIES_BLOBS, measured)
    writer.execute(
        f"DELETE FROM {Table.TIMESERIES_BLOBS} WHERE blob NOT IN (SELECT blob FROM {Table.TIMESERIES_FILES})"
    )
    writer.con.register("_ci_ts_lineages", facts.lineages)
    writer.con.register("_ci_ts_files", facts.file_ids)
    writer.execute(f"DELETE FROM {Table.HISTORY_TIMESERIES}")
    found = writer.con.execute(f"INSERT INTO {Table.HISTORY_TIMESERIES} BY NAME {timeseries_sql()}").fetchone()
    writer.rows_written += int(found[0]) if found else 0
    return writer.rows_written


def clear_timeseries(writer: Writer) -> None:
    for table in (Table.TIMESERIES_SAMPLES, Table.TIMESERIES_FILES, Table.TIMESERIES_BLOBS, Table.HISTORY_TIMESERIES):
        writer.execute(f"DELETE FROM {table}")
