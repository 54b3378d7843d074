"""The walk over the history: each commit's file changes mapped definition by definition.

Commits come parents first.  For a file a commit changed, the old version's outline (with the
lineage of each definition) is updated through the diff (`outline.update_outline`); the
definitions it kept carry their lineage on, those of the regions parsed again are matched by
the lines they kept (`outline.match_region`).  Across the commit's files, a definition deleted
in one place and created with the same body (or nearly) in another is a move.  What remains
unmatched was created (a new lineage, named by commit, path and name) or deleted.

A merge commit's versions that differ from every parent (`git log -c`) are diffed against the
first parent here (`difflib`); definitions the side branches brought keep their lineage by
name or body; lines the merge wrote itself (in no parent: a conflict resolution) are changes of
the merge.  A commit at the boundary of a shallow clone is a starting point: its files are
parsed, nothing is attributed to it.

Each (path, blob) is processed once, by the first commit in the walk that produces it: a later
commit producing the same version (a revert, a cherry-pick) uses its lineages.
"""

from __future__ import annotations

import codecs
import difflib
import heapq
import logging
import re
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain, compress, count, islice
from operator import ne
from pathlib import Path
from typing import Any

import pyarrow as pa

from codeintel.errors import CodeIntelError
from codeintel.ingestion.history.blobs import BlobReader
from codeintel.ingestion.history.gitlog import CommitRecord, FileDiff, Hunk, MergeFile
from codeintel.ingestion.history.outline import (
    CLASS,
    Def,
    Module,
    Region,
    Shift,
    apply_hunks,
    count_in,
    decode_source,
    match_children,
    match_region,
    parse_outline,
    source_encoding,
    source_lines,
    update_outline,
    walk,
)
from codeintel.ingestion.history.versions import (
    OutlineCache,
    Source,
    StoredVersion,
    Version,
    VersionKey,
    align,
    id_text,
    lineage_id,
    name_key,
)
from codeintel.storage.catalog import Table, spec_of
from codeintel.storage.text import arrow_array

logger = logging.getLogger(__name__)


class Event(StrEnum):
    """What a commit did to a definition (`history.function_changes.event`)."""

    CREATED = "created"
    MODIFIED = "modified"
    RENAMED = "renamed"  # its qualified name changed in the same file
    MOVED = "moved"  # it now lives in another file (a file renamed, or the definition moved)
    DELETED = "deleted"


DEFAULT_BOTS = (
    r"\[bot\]|^(dependabot|renovate|pre-commit-ci|github-actions|greenkeeper|pyup-bot|snyk-bot|allcontributors)\b"
)


@dataclass(frozen=True, slots=True)
class WalkSettings:
    """What flags a commit: more `.py` files than `huge_commit_files` (huge), in the
    blame-ignore list (ignored), an author matching `bot_pattern` (a bot)."""

    huge_commit_files: int = 30
    ignore_revs: frozenset[str] = frozenset()
    bot_pattern: str = DEFAULT_BOTS
    defs_budget: int = 300_000  # definitions of the outlines kept
    lines_budget: int = 800_000  # lines of the versions kept
    max_file_size: int = 0  # a larger version (bytes) has no definitions, is never parsed (0: no limit)


class Columns:
    """Rows of one stored table, gathered as columns and turned into Arrow every `chunk` rows
    (a history is hundreds of thousands of rows: as Python objects they would not fit); text
    columns dictionary-encoded (shas, paths, names repeat row after row).  Spooled (`spool`),
    each chunk goes to an Arrow IPC stream file instead of memory (a cold walk apart)."""

    def __init__(self, table: str, names: tuple[str, ...], chunk: int = 50_000) -> None:
        schema = spec_of(table).arrow_schema
        self.table_name = table
        self.names = names
        self._types = [schema.field(name).type for name in names]
        self.schema = pa.schema(
            [
                (n, pa.dictionary(pa.int32(), t) if t == pa.string() else t)
                for n, t in zip(names, self._types, strict=True)
            ]
        )
        self.chunk = chunk
        self._pending: list[list[Any]] = [[] for _ in names]
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0
        self._sink: pa.NativeFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def spool(self, path: Path) -> None:
        """Write the rows to an Arrow IPC stream at `path` from now on (`close` ends it)."""
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, self.schema)
        for batch in self._batches:
            self._writer.write_batch(batch)
        self._batches = []

    def close(self) -> None:
        """End the spooled file (every row written)."""
        self._flush()
        if self._writer is not None and self._sink is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def add(self, *values: Any) -> None:
        for column, value in zip(self._pending, values, strict=True):
            column.append(value)
        self._rows += 1
        if len(self._pending[0]) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self._pending[0]:
            arrays = []
            for col, kind in zip(self._pending, self._types, strict=True):
                array = arrow_array(col, kind)
                arrays.append(array.dictionary_encode() if kind == pa.string() else array)
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
            if self._writer is not None:
                self._writer.write_batch(batch)
            else:
                self._batches.append(batch)
            self._pending = [[] for _ in self.names]

    def table(self) -> pa.Table:
        if self._writer is not None or self._sink is not None:
            raise CodeIntelError(f"the rows of {self.table_name} were spooled to a file")
        self._flush()
        return pa.Table.from_batches(self._batches, schema=self.schema)

    def batches(self) -> pa.RecordBatchReader:
        return self.table().to_reader()

    def values(self, name: str) -> list[Any]:
        """Every value of one column."""
        return self.table().column(name).cast(self._types[self.names.index(name)]).to_pylist()

    def __len__(self) -> int:
        return self._rows


COMMIT_COLUMNS = (
    "sha", "parents", "author_name", "author_email", "author_time", "committer_name", "committer_email",
    "committer_time", "subject", "generation", "is_merge", "py_files", "lines_added", "lines_deleted", "is_huge",
    "is_ignored", "is_bot", "is_shallow_boundary",
)  # fmt: skip
FILE_CHANGE_COLUMNS = (
    "sha", "path", "old_path", "status", "lines_added", "lines_deleted", "file_id", "old_blob", "new_blob",
)  # fmt: skip
FUNCTION_CHANGE_COLUMNS = (
    "sha", "lineage_id", "path", "qualname", "kind", "ordinal", "event", "lines_added", "lines_deleted", "old_path",
    "old_qualname", "file_id",
)  # fmt: skip
VERSION_COLUMNS = ("path", "blob", "file_id", "n_lines", "lineages", "name_keys", "created_by")
MERGE_LINEAGE_COLUMNS = ("sha", "lineage_id", "parent")


@dataclass
class WalkOutput:
    """What a walk found, as rows of the history tables."""

    commits: Columns = field(default_factory=lambda: Columns(Table.COMMITS, COMMIT_COLUMNS))
    file_changes: Columns = field(default_factory=lambda: Columns(Table.FILE_CHANGES, FILE_CHANGE_COLUMNS))
    function_changes: Columns = field(default_factory=lambda: Columns(Table.FUNCTION_CHANGES, FUNCTION_CHANGE_COLUMNS))
    versions: Columns = field(default_factory=lambda: Columns(Table.VERSIONS, VERSION_COLUMNS, chunk=5_000))
    merge_lineages: Columns = field(default_factory=lambda: Columns(Table.MERGE_LINEAGES, MERGE_LINEAGE_COLUMNS))
    stats: Counter[str] = field(default_factory=Counter)

    def tables(self) -> dict[str, Columns]:
        """The tables, by the name of their field."""
        return {
            "commits": self.commits, "file_changes": self.file_changes, "function_changes": self.function_changes,
            "versions": self.versions, "merge_lineages": self.merge_lineages,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class WalkedCommit:
    """A commit walked: its parents, generation and the lineages its rows are of."""

    parents: tuple[str, ...]
    generation: int
    changed: array[int]


@dataclass(frozen=True, slots=True)
class Deletion:
    """A definition a commit deleted (not moved): the version it was in, its name and rank."""

    path: str
    blob: str
    qualname: str
    ordinal: int


@dataclass(slots=True)
class _Row:
    event: Event
    old: Def | None
    new: Def | None
    added: int
    deleted: int
    old_path: str | None = None  # where `old` was, when in another file than the work's old one


@dataclass(slots=True)
class _FileWork:
    """One file change of the commit being walked."""

    path: str  # new path, or the old one when deleted
    old_path: str | None
    old_key: VersionKey | None = None
    new_key: VersionKey | None = None
    old_root: Module | None = None
    new_root: Module | None = None
    old_lines: list[str] | None = None
    new_lines: list[str] | None = None
    encoding: str = "utf-8"
    n_new: int = 0
    file_id: int = 0
    deleted: list[Def] = field(default_factory=list)
    created: list[Def] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    # pairs whose old definition lost every line of its body: that body may have moved
    # elsewhere in the commit (`_moves` decides; `_finish` rows what is left)
    rewritten: list[_Row] = field(default_factory=list)
    old_version: Version | StoredVersion | None = None
    removed: tuple[list[int], list[int]] | None = None  # old lines the diff removed (starts, counts)
    added: tuple[list[int], list[int]] | None = None  # new lines it added; None: the whole file
    new_defs: list[Def] | None = None  # walk(new_root), once known

    def lines_added(self, d: Def) -> int:
        return d.end - d.start + 1 if self.added is None else count_in(d.start, d.end, *self.added)

    def lines_deleted(self, d: Def) -> int:
        return d.end - d.start + 1 if self.removed is None else count_in(d.start, d.end, *self.removed)


class HistoryWalker:
    """Walks commits (parents first) and writes what it finds to a `WalkOutput`.

    `stored` looks up versions an earlier run stored (incremental runs; None when cold).
    `made_before`: versions commits before the walked ones made, whose history another walk
    knows (the newer half of a history cut in two, `split`): met, they are parsed, with
    placeholder lineages and file ids, and kept as made before (`orphans` lists those met as
    old versions, `made_again` those a walked commit makes again).
    `merge_files`: per merge, its `.py` files against its first parent (`merges.MergeFiles`;
    None: no `history.merge_lineages` rows); `load_stored`: versions an earlier run stored that
    the walk did not expect to need, and `load_commits`: commits an earlier run walked (their
    parents, generation and the lineages they changed), for an incremental walk;
    `stored_outlines`: the outlines an earlier run stored of versions it may meet (HEAD's,
    `history.head_files`): met, they are not parsed again.
    """

    def __init__(
        self,
        blobs: BlobReader,
        settings: WalkSettings,
        *,
        shallow: frozenset[str] = frozenset(),
        generations: dict[str, int] | None = None,
        stored: dict[VersionKey, StoredVersion] | None = None,
        deletions: dict[str, list[Deletion]] | None = None,
        made_before: frozenset[VersionKey] | None = None,
        merge_files: Callable[[str], list[FileDiff] | None] | None = None,
        load_stored: Callable[[list[VersionKey]], dict[VersionKey, StoredVersion]] | None = None,
        load_commits: Callable[[list[str]], dict[str, WalkedCommit]] | None = None,
        stored_outlines: dict[VersionKey, Module] | None = None,
    ) -> None:
        self.blobs = blobs
        self.stored_outlines = dict(stored_outlines or {})
        self.merge_files = merge_files
        self.load_stored = load_stored
        self.load_commits = load_commits
        # per commit walked (or loaded): its parents and the lineages it changed (`_exclusive_lineages`)
        self.walked: dict[str, WalkedCommit] = {}
        self._changed: list[int] = []
        self.made_before = made_before
        # versions made before, as met: as old versions (placeholders by name), made again (by position)
        self.orphans = Columns(Table.VERSIONS, ("path", "blob", "lineages", "name_keys"))
        self.made_again = Columns(Table.VERSIONS, ("path", "blob", "lineages", "name_keys"))
        self.settings = settings
        self.shallow = shallow
        self.generations = generations if generations is not None else {}
        self.versions: dict[VersionKey, Version | StoredVersion] = dict(stored or {})
        self.outlines = OutlineCache(settings.defs_budget, settings.lines_budget)
        self.out = WalkOutput()
        self._bots = re.compile(settings.bot_pattern, re.IGNORECASE)
        self._names: dict[str, str] = {}
        self._packed: dict[str, tuple[tuple[str, ...], bytes]] = {}  # per path, the names packed last and their keys
        self._texts: dict[str, list[str]] = {}  # blob -> lines, for the commit being walked
        # per commit, the definitions it deleted for good (not moved): a child may add them again
        self.deletions: dict[str, list[Deletion]] = dict(deletions or {})

    # ------------------------------------------------------------------------ commits

    def walk(self, commits: Iterable[CommitRecord]) -> WalkOutput:
        for commit in commits:
            self.process(commit)
        return self.out

    def process(self, commit: CommitRecord) -> None:
        generation = 1 + max((self.generations.get(p, 0) for p in commit.parents), default=0)
        self.generations[commit.sha] = generation
        boundary = commit.sha in self.shallow
        self._texts = {}
        self._changed = []
        try:
            if commit.is_merge:
                works = [w for mf in commit.merge_files if (w := self._merge_file(commit.sha, mf)) is not None]
            else:
                works = [self._light(self._file(commit.sha, f)) for f in commit.files]
                if not boundary:
                    self._moves(works, works)
                    if len(commit.parents) == 1:
                        self._readded(commit.parents[0], works)
                    self._note_deletions(commit.sha, works)
            self._finish(commit.sha, works, record=not boundary)
            if commit.is_merge and not boundary:
                self._merge_sides(commit)
            self.walked[commit.sha] = WalkedCommit(tuple(commit.parents), generation, array("q", set(self._changed)))
            if not boundary and not commit.is_merge:
                for f, work in zip(commit.files, works, strict=True):
                    self.out.file_changes.add(
                        commit.sha, work.path, f.old_path if f.status == "R" else None, f.status, f.lines_added,
                        f.lines_deleted, id_text(work.file_id), f.old_blob, f.new_blob,
                    )  # fmt: skip
        finally:
            self._texts = {}
        self._commit_row(commit, generation, boundary)

    def _commit_row(self, commit: CommitRecord, generation: int, boundary: bool) -> None:
        s = self.settings
        added = sum(f.lines_added for f in commit.files)
        deleted = sum(f.lines_deleted for f in commit.files)
        n_files = len(commit.merge_files) if commit.is_merge else len(commit.files)
        self.out.stats["commits"] += 1
        self.out.commits.add(
            commit.sha, commit.parents, commit.author_name, commit.author_email, commit.author_time * 1_000_000,
            commit.committer_name, commit.committer_email, commit.committer_time * 1_000_000, commit.subject,
            generation, commit.is_merge, n_files, added, deleted, n_files > s.huge_commit_files,
            _ignored(commit.sha, s.ignore_revs), bool(self._bots.search(commit.author_name))
            or bool(self._bots.search(commit.author_email)), boundary,
        )  # fmt: skip

    # ------------------------------------------------------------------------ one file

    def _file(self, sha: str, f: FileDiff) -> _FileWork:
        path = f.new_path or f.old_path or ""
        work = _FileWork(path, f.old_path if f.status in ("R", "D") else None)
        n_old = 0
        if f.old_blob is not None and f.old_path is not None:
            work.old_key = (f.old_path, f.old_blob)
            version, source = self._old(work.old_key)
            work.old_root, work.old_lines, work.encoding = source.root, source.lines, source.encoding
            work.file_id, n_old, work.old_version = version.file_id, version.n_lines, version
        if f.new_blob is None or f.new_path is None:
            work.deleted = walk(work.old_root) if work.old_root else []
            return work
        work.new_key = (f.new_path, f.new_blob)
        if work.old_root is None:
            self._added_lines(work, f)
            work.new_root, parser = parse_outline(work.new_lines or [], self.settings.max_file_size)
            self.out.stats[f"parsed_{parser}"] += 1
            work.created = walk(work.new_root)
            known = self.versions.get(work.new_key)
            work.file_id = known.file_id if known is not None else lineage_id("file", sha, f.new_path)
            return work
        if f.old_blob == f.new_blob:  # renamed, content as it was
            work.new_root, work.new_lines, work.n_new = work.old_root, work.old_lines, n_old
            return self._renamed(work)
        if not f.hunks:  # the content changed, and git gave no hunks (a type change): pair by name
            work.new_lines = self._lines(f.new_blob)
            work.encoding = source_encoding([line.encode("utf-8") for line in work.new_lines[:2]])
            work.new_root, _ = parse_outline(work.new_lines, self.settings.max_file_size)
            work.n_new = len(work.new_lines)
            return self._paired_by_name(work)
        work.n_new = n_old + sum(h.new_count - h.old_count for h in f.hunks)
        update = update_outline(
            work.old_root, f.hunks, lambda: self._patched_lines(work, f), n_old, work.n_new, self.settings.max_file_size
        )
        self.out.stats["parsed_lines"] += update.parsed_lines
        self.out.stats["widened"] += update.widened
        if update.parser:
            self.out.stats[f"reparsed_{update.parser}"] += 1
        work.new_root = update.root
        if work.new_lines is None and work.old_lines is not None:
            self._patched_lines(work, f)  # cheap: kept for the next version
        self._map(work, f.hunks, update.regions, update.updated, update.shift, defer=True)
        return self._renamed(work) if work.old_path else work

    def _light(self, work: _FileWork) -> _FileWork:
        """Cache the new outline and lines now, and let go of the lines a move will not need:
        a commit may change hundreds of files."""
        if work.new_key is not None and work.new_root is not None and work.new_key not in self.versions:
            source = Source(work.new_root, work.new_lines, work.encoding)
            work.new_defs = walk(work.new_root)
            self.outlines.put(work.new_key, source, len(work.new_defs))
        if not work.deleted and not work.rewritten:
            work.old_lines = None
        if not work.created:
            work.new_lines = None
        return work

    def _added_lines(self, work: _FileWork, f: FileDiff) -> None:
        """A new file's lines, from its patch (all lines added)."""
        added = [raw for h in f.hunks for raw in h.added]
        if sum(h.new_count for h in f.hunks) != len(added):  # a patch git cut short: read the blob
            work.new_lines = self._lines(f.new_blob or "")
            work.encoding = source_encoding([line.encode("utf-8") for line in work.new_lines[:2]])
        else:
            work.encoding = source_encoding(added[:2])
            work.new_lines = apply_hunks([], f.hunks, work.encoding)
        work.n_new = len(work.new_lines)

    def _patched_lines(self, work: _FileWork, f: FileDiff) -> list[str]:
        """A changed file's new lines: its old lines with the hunks applied, or (old lines not
        kept, or the diff changed the encoding cookie) its blob."""
        if work.new_lines is not None:
            return work.new_lines
        assert f.new_blob is not None
        if work.old_lines is None:
            work.new_lines = self._lines(f.new_blob)
            return work.new_lines
        work.new_lines = apply_hunks(work.old_lines, f.hunks, work.encoding)
        if f.hunks[0].new_start <= 2 or f.hunks[0].old_start <= 2:
            cookie = source_encoding([line.encode("utf-8", "replace") for line in work.new_lines[:2]])
            if codecs_name(cookie) != codecs_name(work.encoding):
                work.new_lines = self._lines(f.new_blob)
                work.encoding = cookie
        return work.new_lines

    def _map(
        self,
        work: _FileWork,
        hunks: Sequence[Hunk],
        regions: Sequence[Region],
        updated: Sequence[tuple[Def, Def]],
        shift: Shift,
        *,
        defer: bool = False,
    ) -> None:
        """Lineages and rows of a file's definitions, from the outline update.  With `defer`, a
        pair whose old definition lost every line of its body (paired by its header or name
        alone; a body of `_MOVED_BODY` lines or more: a line or two rewritten is an edit)
        waits in `rewritten` for the commit's moves: where its body went elsewhere, that is
        where it went."""
        work.removed = ([h.old_start for h in hunks], [h.old_count for h in hunks])
        work.added = ([h.new_start for h in hunks], [h.new_count for h in hunks])
        moved = work.old_path is not None and work.old_path != work.path
        for new, old in updated:
            n_add, n_del = work.lines_added(new), work.lines_deleted(old)
            work.rows.append(_Row(Event.MOVED if moved else Event.MODIFIED, old, new, n_add, n_del))
        for region in regions:
            pairs = match_region(region, hunks, shift)
            matched_old = {id(o) for o, _ in pairs}
            matched_new = {id(n) for _, n in pairs}
            for old, new in pairs:
                new.lineage = old.lineage
                n_add, n_del = work.lines_added(new), work.lines_deleted(old)
                event = Event.MOVED if moved else Event.RENAMED if old.qualname != new.qualname else Event.MODIFIED
                body = old.end - old.body + 1
                if defer and body >= _MOVED_BODY and count_in(old.body, old.end, *work.removed) == body:
                    work.rewritten.append(_Row(event, old, new, n_add, n_del))
                elif n_add or n_del or event != Event.MODIFIED:
                    work.rows.append(_Row(event, old, new, n_add, n_del))
            work.deleted.extend(d for d in region.old_defs if id(d) not in matched_old)
            work.created.extend(d for d in region.new_defs if id(d) not in matched_new)

    def _renamed(self, work: _FileWork) -> _FileWork:
        """A file renamed: every definition kept moves with it (rows for those not yet rowed)."""
        if work.old_path is None or work.old_path == work.path or work.new_root is None:
            return work
        rowed = {id(r.new) for r in (*work.rows, *work.rewritten)} | {id(d) for d in work.created}
        for d in walk(work.new_root):
            if id(d) not in rowed:
                work.rows.append(_Row(Event.MOVED, d, d, 0, 0))
        return work

    def _paired_by_name(self, work: _FileWork) -> _FileWork:
        assert work.old_root is not None and work.new_root is not None
        olds: dict[str, list[Def]] = {}
        for d in walk(work.old_root):
            olds.setdefault(d.qualname, []).append(d)
        for d in walk(work.new_root):
            same = olds.get(d.qualname)
            if same:
                old = same.pop(0)
                d.lineage = old.lineage
                work.rows.append(_Row(Event.MODIFIED, old, d, d.end - d.start + 1, old.end - old.start + 1))
            else:
                work.created.append(d)
        work.deleted = [d for ds in olds.values() for d in ds]
        return work

    # ------------------------------------------------------------------------ moves

    def _moves(self, sources: list[_FileWork], works: list[_FileWork]) -> None:
        """Definitions deleted in one place (`sources`) and created with the same body in
        another (`works`: another file, or elsewhere in the same one): moves, keeping their
        lineage.  Outermost ones first: what is nested in a moved definition moves with it (by
        name and rank); what is left is matched by body again.  A definition rewritten whole
        under its name (`_FileWork.rewritten`) is a source too: when its body is found
        elsewhere, it moved there, and what now bears its name was created."""
        rewritten = {id(r.old): (w, r) for w in sources for r in w.rewritten}
        gone = [(w, d) for w in sources for d in w.deleted] + [(w, r.old) for w, r in rewritten.values() if r.old]
        born = [(w, d) for w in works for d in w.created]
        if not gone or not born:
            return
        old_text = {id(d): self._body(self._text(w.old_lines, w.old_key), d) for w, d in gone}
        new_text = {id(d): self._body(self._text(w.new_lines, w.new_key), d) for w, d in born}
        nested_gone = {id(c) for _, d in gone for c in walk(d)}
        nested_born = {id(c) for _, d in born for c in walk(d)}
        pairs = _body_pairs(
            [g for g in gone if id(g[1]) not in nested_gone], [b for b in born if id(b[1]) not in nested_born],
            old_text, new_text,
        )  # fmt: skip
        free_old = {id(d) for _, d in gone} - {id(p[0][1]) for p in pairs}
        free_new = {id(d) for _, d in born} - {id(p[1][1]) for p in pairs}
        for (gw, old), (bw, new) in list(pairs):
            for oc, nc in match_children(old, new):
                if id(oc) in free_old and id(nc) in free_new:
                    free_old.discard(id(oc))
                    free_new.discard(id(nc))
                    pairs.append(((gw, oc), (bw, nc)))
        pairs += _body_pairs(
            [g for g in gone if id(g[1]) in free_old], [b for b in born if id(b[1]) in free_new], old_text, new_text
        )
        for (gw, old), (bw, new) in pairs:
            new.lineage = old.lineage
            if (left := rewritten.get(id(old))) is not None:
                gw.rewritten.remove(left[1])
                assert left[1].new is not None
                gw.created.append(left[1].new)
            else:
                gw.deleted.remove(old)
            bw.created.remove(new)
            a, b = _line_changes(
                self._def_lines(gw.old_key, old, gw.old_lines), self._def_lines(bw.new_key, new, bw.new_lines)
            )
            if gw.path != bw.path:
                event = Event.MOVED
            elif old.qualname != new.qualname:
                event = Event.RENAMED
            else:
                event = Event.MODIFIED
            bw.rows.append(_Row(event, old, new, a, b, gw.old_key[0] if gw.old_key else None))
            self.out.stats["moves"] += 1

    def _note_deletions(self, sha: str, works: list[_FileWork]) -> None:
        """Remember what this commit deleted (its moves are known by now), for its children."""
        gone = []
        for work in works:
            if work.deleted and work.old_key is not None and work.old_root is not None:
                ords = _Ordinals(walk(work.old_root))
                gone += [Deletion(*work.old_key, d.qualname, ords.of(d)) for d in work.deleted]
        if gone:
            self.deletions[sha] = gone

    def _readded(self, parent: str, works: list[_FileWork]) -> None:
        """Definitions the parent deleted and this commit adds again (a package split in two
        commits: out with the old, in with the new): moves across the two commits."""
        gone = self.deletions.get(parent)
        if not gone or not any(w.created for w in works):
            return
        by_key: dict[VersionKey, set[tuple[str, int]]] = {}
        for d in gone:
            by_key.setdefault((d.path, d.blob), set()).add((d.qualname, d.ordinal))
        sources = []
        for key, names in sorted(by_key.items()):
            _, source = self._old(key)
            defs = walk(source.root)
            ords = _Ordinals(defs)
            source_work = _FileWork(key[0], None, old_key=key, old_root=source.root, old_lines=source.lines)
            source_work.deleted = [d for d in defs if (d.qualname, ords.of(d)) in names]
            sources.append(source_work)
        before = self.out.stats["moves"]
        self._moves(sources, works)
        self.out.stats["readded"] += self.out.stats["moves"] - before

    def _text(self, lines: list[str] | None, key: VersionKey | None) -> list[str]:
        if lines is not None:
            return lines
        return self._lines(key[1]) if key is not None else []

    def _body(self, lines: list[str], d: Def) -> tuple[str, ...]:
        """A definition's body as compared for moves: its lines after the header, stripped,
        blank lines left out."""
        return tuple(s for line in lines[d.body - 1 : d.end] if (s := line.strip()))

    def _def_lines(self, key: VersionKey | None, d: Def, lines: list[str] | None = None) -> list[str]:
        """A definition's lines as counted for changes: whole (indentation counts, as in git)."""
        lines = self._text(lines, key)
        return [line.rstrip() for line in lines[d.start - 1 : d.end] if line.strip()]

    # ------------------------------------------------------------------------ merges

    def _merge_file(self, sha: str, mf: MergeFile) -> _FileWork | None:
        """A version a merge made that no parent has: mapped from the first parent's version
        (by a diff), definitions the other parents brought by name, and lines that are in no
        parent's version of a definition changes of the merge."""
        if mf.blob is None:
            return None
        key = (mf.path, mf.blob)
        if key in self.versions:
            return None
        parents = [(pk, *self._old(pk)) for pk in _keys(mf.parents)]
        for pk, _, source in parents:
            if source.lines is not None:
                self._texts[pk[1]] = source.lines
        work = _FileWork(mf.path, None, new_key=key)
        work.new_lines = self._lines(mf.blob)
        work.encoding = source_encoding([line.encode("utf-8", "replace") for line in work.new_lines[:2]])
        work.n_new = len(work.new_lines)
        if not parents:
            work.new_root, _ = parse_outline(work.new_lines, self.settings.max_file_size)
            work.created = list(walk(work.new_root))
            work.file_id = lineage_id("file", sha, mf.path)
            return work
        (base_key, base_version, base), others = parents[0], parents[1:]
        base_lines = self._lines(base_key[1])
        work.old_key, work.old_root, work.old_lines, work.file_id = (
            base_key,
            base.root,
            base_lines,
            base_version.file_id,
        )
        hunks = line_diff(base_lines, work.new_lines)
        new_lines = work.new_lines
        update = update_outline(base.root, hunks, lambda: new_lines, base_version.n_lines, len(new_lines), self.settings.max_file_size)
        work.new_root = update.root
        self._map(work, hunks, update.regions, update.updated, update.shift)
        merged = walk(work.new_root)
        ords = _Ordinals(merged)
        created = {id(d) for d in work.created}
        used = {d.lineage for d in merged if id(d) not in created}
        # a merge renames nothing: a definition the diff pairs with a first-parent one of another
        # name, where another parent has one of its very name, came from that parent
        renamed = [r for r in work.rows if r.old is not None and r.new is not None and r.old.qualname != r.new.qualname]
        for _, _, other in others:  # what another parent brought: by name and same-name rank
            theirs = walk(other.root)
            their_ords = _Ordinals(theirs)
            names = {(d.qualname, d.kind, their_ords.of(d)): d for d in theirs}
            for d in list(work.created):
                found = names.get((d.qualname, d.kind, ords.of(d)))
                if found is not None and found.lineage not in used:
                    d.lineage = found.lineage
                    used.add(found.lineage)
                    work.created.remove(d)
                    work.rows.append(_Row(Event.MODIFIED, found, d, 0, 0))
            for row in list(renamed):
                new = row.new
                assert new is not None
                found = names.get((new.qualname, new.kind, ords.of(new)))
                if found is not None and found.lineage != new.lineage and found.lineage not in used:
                    used.discard(new.lineage)
                    new.lineage = found.lineage
                    used.add(found.lineage)
                    renamed.remove(row)
                    work.rows.remove(row)
                    work.rows.append(_Row(Event.MODIFIED, found, new, 0, 0))
        work.deleted = []  # what the merge left out of the first parent's version, it took from another
        self._merge_rows(work, [(k, source.root) for k, _, source in parents])
        return work

    def _merge_rows(self, work: _FileWork, parents: list[tuple[VersionKey, Def]]) -> None:
        """Keep only the rows of definitions whose merged text is in no parent: the lines the
        merge wrote itself are its changes."""
        assert work.new_key is not None
        by_lineage = [({d.lineage: d for d in walk(root)}, key) for key, root in parents]
        rows = []
        for row in work.rows:
            new = row.new
            assert new is not None
            mine_lines = self._def_lines(work.new_key, new)
            theirs = [self._def_lines(key, d) for defs, key in by_lineage if (d := defs.get(new.lineage))]
            if mine_lines in theirs:  # (most often: a parent's text as it was, no Counter needed)
                continue
            mine = Counter(mine_lines)
            texts = [Counter(lines) for lines in theirs]
            if any(t == mine for t in texts):
                continue
            # (Counter's arithmetic is Python; these loops count the same a third as slowly)
            if not texts:  # (no parent has it)
                added, deleted = len(mine_lines), 0
            elif len(texts) == 1:
                added, deleted = _excess(mine, texts[0]), _excess(texts[0], mine)
            else:  # lines both of the first two parents had and the merge dropped
                added = _excess(mine, Counter(chain.from_iterable(theirs)))
                deleted = _both_dropped(texts[0], texts[1], mine)
            if added or deleted:
                rows.append(_Row(Event.MODIFIED, row.old, new, added, deleted))
        work.rows = rows

    def _merge_sides(self, commit: CommitRecord) -> None:
        """`history.merge_lineages` of a merge: the definitions it has otherwise than its first
        parent (in a file the first parent has otherwise, and there not at all, or not the same
        lines in the same place), each with the other parent it has it as (by position in
        `parents`; None: as none, the merge's own lines, one the first parent has not, or one of
        three parents or more whose file is the merge's), `merges.reached` follows them there."""
        files = self.merge_files(commit.sha) if self.merge_files is not None else None
        if not files:
            return
        # only a definition changed on one side since the two sides parted can have a change
        # there that reaches HEAD through one side or the other (`merges.reached`); None: the
        # sides parted too far back to look (every definition is looked at)
        found = self._exclusive_lineages(commit)
        changed, first_side = found if found is not None else (None, None)
        if changed is not None and not changed:
            return
        combined = {mf.path: mf for mf in commit.merge_files}  # files that differ from every parent
        sides: dict[int, int | None] = {}
        for f in files:
            if f.new_blob is None or f.new_path is None:
                continue
            version = self.versions.get((f.new_path, f.new_blob))
            if changed is not None and version is not None and changed.isdisjoint(version.lineages):
                continue
            new = self._known((f.new_path, f.new_blob))
            if new is None:
                continue
            defs = [d for d in walk(new.root) if d.lineage in changed] if changed is not None else None
            if defs is not None and not defs:
                continue
            old = self._known((f.old_path, f.old_blob)) if f.old_path and f.old_blob else None
            moved = _not_in_place(self._lines, new, f.new_blob, old, f.old_blob, defs)
            if not moved:
                continue
            # one the first parent has not (new on another side) goes down every parent: the first
            # has no change of it to leave out (and what reaches its line stays a short list)
            first = self.versions.get((f.old_path, f.old_blob)) if f.old_path and f.old_blob else None
            had = set(first.lineages) if first is not None else set()
            for d in moved:
                if d.lineage not in had:
                    sides.setdefault(d.lineage, None)
            moved = [d for d in moved if d.lineage in had]
            mf = combined.get(f.new_path)
            if mf is None:  # the merge's file is another parent's: with two parents, the second's
                for d in moved:
                    sides.setdefault(d.lineage, 1 if len(commit.parents) == 2 else None)
                continue
            left = moved  # those not yet found as a parent has them
            for k, (path, blob) in enumerate(mf.parents):
                theirs = self._known((path, blob)) if k > 0 and path and blob and left else None
                if theirs is not None:
                    differ = {id(d) for d in _not_in_place(self._lines, new, f.new_blob, theirs, blob, left)}
                    for d in left:
                        if id(d) not in differ:
                            sides.setdefault(d.lineage, k)
                    left = [d for d in left if id(d) in differ]
            for d in left:
                sides.setdefault(d.lineage, None)
        for lineage, same in sorted(sides.items()):
            if same is not None and first_side is not None and lineage not in first_side:
                same = None  # (no change of it on the first parent's side to leave out: down every parent)
            self.out.merge_lineages.add(commit.sha, id_text(lineage), same)
        self.out.stats["merge_lineages"] += len(sides)

    def _exclusive_lineages(self, commit: CommitRecord) -> tuple[set[int], set[int]] | None:
        """The lineages changed by the commits one side of merge `commit` has and the other has
        not (its first parent's against the others'; commits by generation, newest first, until
        every commit left is on both sides: git's merge-base walk), and those of them the first
        parent's side changed; None past `_SIDES_LOOKED` commits (a long-lived branch: looking
        costs more than it saves).  A commit neither walked nor loaded is where the walk stops
        (a shallow boundary)."""
        flags: dict[str, int] = {}
        for k, parent in enumerate(commit.parents):
            flags[parent] = flags.get(parent, 0) | (1 if k == 0 else 2)
        self._load_walked(list(flags))
        heap = [(-self._generation(p), p) for p in flags]
        heapq.heapify(heap)
        single = sum(1 for f in flags.values() if f != 3)  # queued commits on one side only
        out: set[int] = set()
        first: set[int] = set()
        looked = 0
        while heap and single:
            looked += 1
            if looked > _SIDES_LOOKED:
                return None
            _, sha = heapq.heappop(heap)
            mine = flags[sha]
            if mine != 3:
                single -= 1
            known = self.walked.get(sha)
            if known is None:
                continue
            if mine != 3:
                out.update(known.changed)
                if mine == 1:
                    first.update(known.changed)
            self._load_walked([p for p in known.parents if p not in flags])
            for parent in known.parents:
                before = flags.get(parent)
                now = (before or 0) | mine
                if before is None:
                    flags[parent] = now
                    heapq.heappush(heap, (-self._generation(parent), parent))
                    single += now != 3
                elif now != before:
                    flags[parent] = now
                    single -= 1  # (queued on one side, now on both)
        return out, first

    def _generation(self, sha: str) -> int:
        known = self.walked.get(sha)
        return known.generation if known is not None else self.generations.get(sha, 0)

    def _load_walked(self, shas: list[str]) -> None:
        if self.load_commits is None:
            return
        wanted = [s for s in shas if s not in self.walked]
        if wanted:
            self.walked.update(self.load_commits(wanted))

    def _known(self, key: VersionKey) -> Source | None:
        """The outline (with lineages) and lines of a version the walk knows or may ask for (made
        by a walked commit, made before a newer half's commits, or stored), else None."""
        if key not in self.versions and not (self.made_before is not None and key in self.made_before):
            if self.load_stored is None:
                return None
            self.versions.update(self.load_stored([key]))
            if key not in self.versions:
                return None
        return self._old(key)[1]

    # ------------------------------------------------------------------------ finishing

    def _finish(self, sha: str, works: list[_FileWork], *, record: bool) -> None:
        """New lineages for what was created, the new versions, and the rows."""
        for work in works:
            work.rows += work.rewritten  # (those whose body went nowhere else: the same definition)
            work.rewritten = []
            new_defs = work.new_defs if work.new_defs is not None else walk(work.new_root) if work.new_root is not None else []
            ords = _Ordinals(new_defs)
            for d in work.created:
                d.lineage = lineage_id(sha, work.path, d.qualname, ords.of(d))
            remap = self._store(sha, work, new_defs)
            if not record:
                continue
            old_ords = _Ordinals(walk(work.old_root) if work.old_root is not None and work.deleted else [])
            rows = work.rows
            rows += [_Row(Event.CREATED, None, d, work.lines_added(d), 0) for d in work.created]
            rows += [_Row(Event.DELETED, d, None, 0, work.lines_deleted(d)) for d in work.deleted]
            fid = id_text(work.file_id)
            for row in rows:
                self._function_row(sha, work, row, ords, old_ords, remap, fid)

    def _function_row(
        self,
        sha: str,
        work: _FileWork,
        row: _Row,
        ords: _Ordinals,
        old_ords: _Ordinals,
        remap: dict[int, int],
        fid: str,
    ) -> None:
        if row.new is not None:
            d, path, ordinal = row.new, work.path, ords.of(row.new)
            lineage = remap.get(id(d), d.lineage)
        else:
            assert row.old is not None and work.old_key is not None
            d, path, ordinal, lineage = row.old, work.old_key[0], old_ords.of(row.old), row.old.lineage
        old = row.old
        old_path = row.old_path or (work.old_key[0] if old is not None and work.old_key else None)
        old_path = old_path if old_path != path else None
        old_name = old.qualname if old is not None and old.qualname != d.qualname else None
        self._changed.append(lineage)
        self.out.function_changes.add(
            sha, id_text(lineage), path, d.qualname, d.kind, ordinal, str(row.event), row.added, row.deleted,
            old_path, old_name, fid,
        )  # fmt: skip
        self.out.stats[f"event_{row.event}"] += 1

    def _store(self, sha: str, work: _FileWork, defs: list[Def]) -> dict[int, int]:
        """Record the new version (unless another commit made it first: then its lineages
        win, returned as id(definition) -> lineage)."""
        if work.new_key is None or work.new_root is None:
            return {}
        known = self.versions.get(work.new_key)
        if known is None and self.made_before is not None and work.new_key in self.made_before:
            known = self._made_again(work.new_key)
        if known is not None:
            if len(defs) == len(known.lineages):
                return {id(d): lineage for d, lineage in zip(defs, known.lineages, strict=True)}
            return {}
        version = Version.of(work.file_id, work.n_new, defs)
        before = work.old_version
        if isinstance(before, Version):  # most versions name the same definitions as the one before
            if version.names == before.names:
                version.names = before.names
            if version.kinds == before.kinds:
                version.kinds = before.kinds
            if version.lineages == before.lineages:
                version.lineages = before.lineages
        self.versions[work.new_key] = version
        self.outlines.put(work.new_key, Source(work.new_root, work.new_lines, work.encoding), len(version.names))
        path = work.new_key[0]
        lineages, keys = version.packed(self._packed.get(path))
        self._packed[path] = (version.names, keys)
        self.out.versions.add(path, work.new_key[1], id_text(version.file_id), version.n_lines, lineages, keys, sha)
        return {}

    def release(self) -> None:
        """Let go of the outlines and lines kept for the walk (what follows needs little)."""
        self.outlines = OutlineCache(20_000, 50_000)

    # ------------------------------------------------------------------------ versions and blobs

    def head(self, key: VersionKey) -> tuple[Version, Module]:
        """The version at `key` with its definitions' names, and its outline (parsed if need be)."""
        version, source = self._old(key)
        assert isinstance(version, Version)
        return version, source.root

    def _old(self, key: VersionKey) -> tuple[Version | StoredVersion, Source]:
        """The version at `key`, its outline (lineages on its definitions) and its lines."""
        version = self.versions.get(key)
        source = self.outlines.get(key)
        if version is not None and source is not None:
            return version, source
        parsed = self._parsed(key)
        root, lines = parsed.root, parsed.lines or []
        if version is None:  # a version no walked commit made: its history is unknown
            self.out.stats["orphan_versions"] += 1
            logger.debug("history: version %s of %s was made by no commit walked", key[1], key[0])
            if self.made_before is None:
                defs = walk(root)
                ords = _Ordinals(defs)
                for d in defs:
                    d.lineage = lineage_id("orphan", key[0], key[1], d.qualname, ords.of(d))
                version = Version.of(lineage_id("orphan-file", key[0]), len(lines), defs)
            else:  # placeholders for the ids another walk knows (`stitch.stitch_ids`)
                version = self._placeholders(key, parsed, self.orphans)
        else:
            align(root, version.lineages, _keys_of(version))
            if isinstance(version, StoredVersion):
                version = Version(version.file_id, version.n_lines, version.lineages, *_names_kinds(root, self._intern))
        self.versions[key] = version
        self.outlines.put(key, parsed, len(version.lineages))
        return version, parsed

    def _parsed(self, key: VersionKey) -> Source:
        """The outline of the blob at `key`, parsed (or as stored), with its lines."""
        data = self.blobs.read(key[1])
        self.out.stats["blobs_read"] += 1
        lines = source_lines(decode_source(data)) if data is not None else []
        encoding = source_encoding(data.split(b"\n", 2)[:2]) if data is not None else "utf-8"
        root = self.stored_outlines.pop(key, None)
        if root is None:
            root, parser = parse_outline(lines, self.settings.max_file_size)
            self.out.stats[f"parsed_{parser}"] += 1
        else:
            self.out.stats["outlines_stored"] += 1
        return Source(root, lines, encoding)

    def _placeholders(self, key: VersionKey, parsed: Source, listed: Columns) -> Version:
        """The version at `key` made before the commits walked (`made_before`): its parsed
        definitions given their placeholders, listed in `listed` for the stitch."""
        defs = walk(parsed.root)
        ords = _Ordinals(defs)
        for d in defs:
            d.lineage = placeholder(key[0], d.qualname, ords.of(d))
        version = Version.of(placeholder(key[0]), len(parsed.lines or []), defs)
        listed.add(key[0], key[1], *version.packed())
        return version

    def _made_again(self, key: VersionKey) -> Version:
        """A version made before the commits walked (`made_before`) that one of them makes
        again: parsed, its definitions given their placeholders (one walk gives the new
        definitions of a version made before the lineages it has, by position: `_store`;
        `stitch.stitch_ids` checks those are the lineages the placeholders stand for)."""
        parsed = self._parsed(key)
        version = self._placeholders(key, parsed, self.made_again)
        self.versions[key] = version
        self.outlines.put(key, parsed, len(version.lineages))
        return version

    def _lines(self, blob: str) -> list[str]:
        """The lines of a blob of this commit (known, or read)."""
        lines = self._texts.get(blob)
        if lines is None:
            data = self.blobs.read(blob)
            self.out.stats["blobs_read"] += 1
            lines = source_lines(decode_source(data)) if data is not None else []
            self._texts[blob] = lines
        return lines

    def _intern(self, name: str) -> str:
        return self._names.setdefault(name, name)


def _not_in_place(
    lines_of: Callable[[str], list[str]],
    new: Source,
    new_blob: str,
    old: Source | None,
    old_blob: str | None,
    defs: list[Def] | None = None,
) -> list[Def]:
    """The definitions of version `new` (or those of `defs`) that version `old` has not, or not
    as they are (`_in_place`).  Of all, those in the lines both versions begin or end with (and
    so are their nearest non-blank neighbours) are as they were, and not looked at one by one:
    a merge's file is most often its first parent's with a few changes."""
    if old is None:
        return walk(new.root) if defs is None else list(defs)
    new_lines = new.lines if new.lines is not None else lines_of(new_blob)
    old_lines = old.lines if old.lines is not None else lines_of(old_blob or "")
    if defs is not None:  # a few: each looked at
        by_lineage = {d.lineage: d for d in walk(old.root)}
        return [
            d for d in defs if (o := by_lineage.get(d.lineage)) is None or not _in_place(new_lines, d, old_lines, o)
        ]
    head, tail = _same_ends(new_lines, old_lines)
    mine = _not_within(new.root, _inside(new_lines, head, tail))
    if not mine:
        return []
    theirs = {d.lineage: d for d in _not_within(old.root, _inside(old_lines, head, tail))}
    return [d for d in mine if (o := theirs.get(d.lineage)) is None or not _in_place(new_lines, d, old_lines, o)]


def _same_ends(a: list[str], b: list[str]) -> tuple[int, int]:
    """How many lines `a` and `b` begin with alike, and how many of the rest they end with alike
    (compared in C: `map` over both)."""
    n = min(len(a), len(b))
    head = next(compress(count(), map(ne, a, b)), n)
    rest = n - head
    return head, next(compress(count(), map(ne, islice(reversed(a), rest), islice(reversed(b), rest))), rest)


def _inside(lines: list[str], head: int, tail: int) -> Callable[[Def], bool]:
    """Whether a definition is inside the first `head` or last `tail` lines of `lines` with its
    nearest non-blank neighbours (all the same in two versions that begin and end alike)."""
    last_head = head - 1  # the last non-blank line of the head (0-based)
    while last_head >= 0 and not lines[last_head].strip():
        last_head -= 1
    first_tail = len(lines) - tail  # the first non-blank line of the tail
    while first_tail < len(lines) and not lines[first_tail].strip():
        first_tail += 1
    # (0-based: the line after a definition is d.end, the line before it d.start - 2)
    return lambda d: d.end <= last_head or d.start - 2 >= first_tail


def _not_within(root: Def, inside: Callable[[Def], bool]) -> list[Def]:
    """The definitions (preorder) not `inside` (nor are those nested in one that is)."""
    out: list[Def] = []
    stack = root.children[::-1]
    while stack:
        d = stack.pop()
        if inside(d):
            continue
        out.append(d)
        if d.children:
            stack.extend(d.children[::-1])
    return out


def _in_place(new_lines: list[str], new: Def, old_lines: list[str], old: Def) -> bool:
    """Whether a definition is as it was and where it was: the same lines, and the same nearest
    non-blank line above or below it.  A diff of the two versions (what `git log -L` asks)
    leaves such a definition alone; one moved among its neighbours (both changed), it marks.
    Lines added or removed right next to it change one neighbour only."""
    if new_lines[new.start - 1 : new.end] != old_lines[old.start - 1 : old.end]:
        return False
    return _neighbour(new_lines, new.start - 2, -1) == _neighbour(old_lines, old.start - 2, -1) or _neighbour(
        new_lines, new.end, 1
    ) == _neighbour(old_lines, old.end, 1)


def _neighbour(lines: list[str], at: int, step: int) -> str | None:
    """The first non-blank line from index `at` on, going by `step` (None past either end)."""
    while 0 <= at < len(lines):
        if lines[at].strip():
            return lines[at]
        at += step
    return None


def codecs_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding


def _keys(parents: Sequence[tuple[str | None, str | None]]) -> list[VersionKey]:
    return [(p, b) for p, b in parents if p is not None and b is not None]


def _keys_of(version: Version | StoredVersion) -> Sequence[int]:
    if isinstance(version, StoredVersion):
        return version.keys
    return [name_key(n) for n in version.names]


def _names_kinds(root: Def, intern: Callable[[str], str]) -> tuple[tuple[str, ...], str]:
    defs = list(walk(root))
    return tuple(intern(d.qualname) for d in defs), "".join(d.kind[0] for d in defs)


def _excess(counts: dict[str, int], other: dict[str, int]) -> int:
    """How many lines `counts` has more than `other` (`sum((counts - other).values())`)."""
    get = other.get
    return sum(n - m for line, n in counts.items() if n > (m := get(line, 0)))


def _both_dropped(first: dict[str, int], second: dict[str, int], mine: dict[str, int]) -> int:
    """How many lines both parents have more than `mine`
    (`sum(((first - mine) & (second - mine)).values())`)."""
    found = 0
    for line, n in first.items():
        m = mine.get(line, 0)
        if n > m and (other := second.get(line, 0)) > m:
            found += min(n, other) - m
    return found


class _Ordinals:
    """Same-name ordinals of the definitions of a version (preorder), computed only for names
    that occur more than once (most occur once: ordinal 0)."""

    def __init__(self, defs: list[Def]) -> None:
        self._defs: list[Def] | None = defs
        self._dups: dict[int, int] = {}

    def of(self, d: Def) -> int:
        if self._defs is not None:
            names = [x.qualname for x in self._defs]
            if len(set(names)) < len(names):  # some name occurs twice (a set is quicker to make than a Counter)
                counts = Counter(names)
                seen: dict[str, int] = {}
                for x, name in zip(self._defs, names, strict=True):
                    if counts[name] > 1:
                        n = seen.get(name, 0)
                        seen[name] = n + 1
                        self._dups[id(x)] = n
            self._defs = None
        return self._dups.get(id(d), 0)



def placeholder(path: str, qualname: str = "", ordinal: int = 0) -> int:
    """The placeholder id of a file (no name), or of a definition by name and same-name rank,
    in a version made before the commits walked (`HistoryWalker.made_before`): one id in
    every such version, as one lineage is (`stitch.stitch_ids` tells which)."""
    return lineage_id("placeholder", path, qualname, ordinal) if qualname else lineage_id("placeholder-file", path)


def _ignored(sha: str, ignore: frozenset[str]) -> bool:
    if not ignore:
        return False
    if sha in ignore:
        return True
    return any(len(rev) < 40 and sha.startswith(rev) for rev in ignore)


# commits a merge's sides are looked at for what they changed (`_exclusive_lineages`)
_SIDES_LOOKED = 50
_MOVED_BODY = 3  # lines of body a definition rewritten whole needs for its body to be looked for elsewhere


def _line_changes(old: list[str], new: list[str]) -> tuple[int, int]:
    """(added, deleted) lines between two texts of a definition, as multisets of lines."""
    counts = Counter(new)
    counts.subtract(old)
    return sum(v for v in counts.values() if v > 0), -sum(v for v in counts.values() if v < 0)


def _common(a: Counter[str], b: Counter[str]) -> int:
    """How many lines two multisets of lines share (`sum((a & b).values())`, without the
    Counter it would build)."""
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    return sum(v if v <= (w := get(k, 0)) else w for k, v in a.items())


def _body_pairs(
    gone: list[tuple[_FileWork, Def]],
    born: list[tuple[_FileWork, Def]],
    old_text: dict[int, tuple[str, ...]],
    new_text: dict[int, tuple[str, ...]],
) -> list[tuple[tuple[_FileWork, Def], tuple[_FileWork, Def]]]:
    """Moves by body: the same body (a short one only under the same name), then a similar one."""
    pairs: list[tuple[tuple[_FileWork, Def], tuple[_FileWork, Def]]] = []
    by_body: dict[tuple[str, ...], list[tuple[_FileWork, Def]]] = {}
    for item in gone:
        body = old_text[id(item[1])]
        if body:
            by_body.setdefault(body, []).append(item)
    rest_born = []
    for item in born:
        body = new_text[id(item[1])]
        candidates = by_body.get(body)
        pick = None
        if candidates:  # a short body (`pass`, `return None`) says little: only under the same name
            pick = next((c for c in candidates if c[1].name == item[1].name), None)
            if pick is None and len(body) >= 3:
                pick = candidates[0]
        if pick is None:
            rest_born.append(item)
            continue
        candidates.remove(pick)  # type: ignore[union-attr]
        pairs.append((pick, item))
    taken = {id(p[0][1]) for p in pairs}
    rest_gone = [g for g in gone if id(g[1]) not in taken]
    return pairs + _similar_pairs(rest_gone, rest_born, old_text, new_text)


def _similar_pairs(
    gone: list[tuple[_FileWork, Def]],
    born: list[tuple[_FileWork, Def]],
    old_text: dict[int, tuple[str, ...]],
    new_text: dict[int, tuple[str, ...]],
) -> list[tuple[tuple[_FileWork, Def], tuple[_FileWork, Def]]]:
    """Moves whose body changed a little: the same name and at least half the lines in
    common; another name and four fifths (between bodies of four lines or more); a class
    only from a class, a function or method only from a function or method."""
    if not gone or not born:
        return []
    scored: list[tuple[float, int, int]] = []
    small = len(gone) * len(born) <= 2500
    by_name: dict[str, list[int]] = {}
    for i, (_, d) in enumerate(gone):
        by_name.setdefault(d.name, []).append(i)
    sizes = [len(old_text[id(d)]) for _, d in gone]
    counted: dict[int, Counter[str]] = {}  # per gone definition, its lines (counted once)
    for j, (_, n) in enumerate(born):
        b = Counter(new_text[id(n)])
        nb = len(new_text[id(n)])
        candidates = range(len(gone)) if small else by_name.get(n.name, [])
        for i in candidates:
            o = gone[i][1]
            if (o.kind == CLASS) != (n.kind == CLASS):  # a class's body is not a function's
                continue
            total, least = sizes[i] + nb, min(sizes[i], nb)
            same = o.name == n.name
            # dice is at most 2 * least / total: skip pairs that cannot reach 0.5 (0.8), in integers
            if not total or (4 * least < total if same else 5 * least < 2 * total or least < 4):
                continue
            a = counted.get(i)
            if a is None:
                a = counted[i] = Counter(old_text[id(o)])
            dice = 2 * _common(a, b) / total
            if (same and dice >= 0.5) or (not same and dice >= 0.8):
                scored.append((dice + (1.0 if same else 0.0), i, j))
    pairs = []
    used_i: set[int] = set()
    used_j: set[int] = set()
    for _, i, j in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            pairs.append((gone[i], born[j]))
    return pairs


def line_diff(old: Sequence[str], new: Sequence[str]) -> list[Hunk]:
    """`-U0` hunks from `old` to `new`: lines found once in each side anchor the diff
    (patience diff), the stretches between anchors are diffed by `difflib`."""
    ops: list[tuple[int, int, int, int]] = []  # old [i1, i2) became new [j1, j2)
    _diff(old, new, 0, len(old), 0, len(new), ops)
    hunks = []
    for i1, i2, j1, j2 in ops:
        hunk = Hunk(i1 + 1 if i2 > i1 else i1, i2 - i1, j1 + 1 if j2 > j1 else j1, j2 - j1)
        hunk.removed = [line.encode("utf-8", "surrogatepass") for line in old[i1:i2]]
        hunk.added = [line.encode("utf-8", "surrogatepass") for line in new[j1:j2]]
        hunks.append(hunk)
    return hunks


def _diff(
    a: Sequence[str], b: Sequence[str], i1: int, i2: int, j1: int, j2: int, ops: list[tuple[int, int, int, int]]
) -> None:
    while i1 < i2 and j1 < j2 and a[i1] == b[j1]:
        i1, j1 = i1 + 1, j1 + 1
    while i2 > i1 and j2 > j1 and a[i2 - 1] == b[j2 - 1]:
        i2, j2 = i2 - 1, j2 - 1
    if i1 == i2 or j1 == j2:
        if i1 < i2 or j1 < j2:
            ops.append((i1, i2, j1, j2))
        return
    anchors = _unique_anchors(a, b, i1, i2, j1, j2)
    if not anchors:
        if (i2 - i1) * (j2 - j1) > 4_000_000:  # too big to diff closely: one change
            ops.append((i1, i2, j1, j2))
            return
        matcher = difflib.SequenceMatcher(None, a[i1:i2], b[j1:j2], autojunk=False)
        for tag, x1, x2, y1, y2 in matcher.get_opcodes():
            if tag != "equal":
                ops.append((i1 + x1, i1 + x2, j1 + y1, j1 + y2))
        return
    for ai, bj in anchors:
        _diff(a, b, i1, ai, j1, bj, ops)
        i1, j1 = ai + 1, bj + 1
    _diff(a, b, i1, i2, j1, j2, ops)


def _unique_anchors(a: Sequence[str], b: Sequence[str], i1: int, i2: int, j1: int, j2: int) -> list[tuple[int, int]]:
    """Lines that occur once in a[i1:i2] and once in b[j1:j2], in an order both sides agree on
    (longest increasing subsequence)."""
    seen_a: dict[str, int] = {}
    for i in range(i1, i2):
        seen_a[a[i]] = -1 if a[i] in seen_a else i
    seen_b: dict[str, int] = {}
    for j in range(j1, j2):
        seen_b[b[j]] = -1 if b[j] in seen_b else j
    pairs = sorted((i, seen_b[line]) for line, i in seen_a.items() if i >= 0 and seen_b.get(line, -1) >= 0)
    # longest increasing subsequence of the new positions (patience sorting)
    tails: list[int] = []
    tail_index: list[int] = []
    back = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        pos = bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tail_index.append(k)
        else:
            tails[pos] = j
            tail_index[pos] = k
        back[k] = tail_index[pos - 1] if pos else -1
    out = []
    k = tail_index[-1] if tail_index else -1
    while k >= 0:
        out.append(pairs[k])
        k = back[k]
    return out[::-1]
