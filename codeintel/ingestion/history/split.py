"""A cold walk of a long history in two processes: the older half and the newer half at once.

The history (`git rev-list --topo-order`, parents first) is cut after a commit that every later
commit descends from and that changes no `.py` file (nor is a merge), near 60 % of the commits
(the newer commits are the larger ones to walk).  The older walk takes that commit and its
ancestors; the newer one the commits after it (`HEAD ^cut`), starting from the versions the
cut has without knowing their history: they are parsed from their blobs and their definitions
given placeholder lineages, by path, name and same-name rank (one file id per path).  When both
are done (`apart._walk_in_halves`), `stitch_ids` gives each placeholder the lineage (and file
id) the older walk gave that definition in that version, and the newer walk's rows, versions
and HEAD definitions are what one walk of the whole history stores.

What the newer walk cannot know of the older half must not matter to it: its commits' parents
in the older half are the cut alone, so the generations (from `git rev-list`) and the versions
are all it needs, and the cut deleted no definition (nothing its children could add again).
The versions the older half made that the newer half makes again (a revert, a cherry-pick) are
listed from a `git log --raw` of the older half: the newer walk takes them as made before, as
one walk would.  Where the placeholders do not map one to one, the history is walked whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from codeintel.ingestion.history.gitlog import PY_PATHSPEC
from codeintel.ingestion.history.lineage import placeholder
from codeintel.ingestion.history.versions import VersionKey, id_text, ordinals_of_keys
from codeintel.ingestion.tools import ToolService


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a history is cut: after the first `position` commits (parents first), whose
    `boundary` (those with a child after the cut) the newer half starts from."""

    boundary: tuple[str, ...]
    position: int
    commits: int


def choose_cut(tools: ToolService, repo: Path, head: str, min_commits: int, *, share: float = 0.6) -> Cut | None:
    """Where to cut the history of `head`: after the commits in `git rev-list --topo-order`
    (parents first) up to one nearest `share` of them (rounded down to a multiple of `_GRID`,
    the newer commits being the larger ones to walk), where every commit before the cut that
    has a child after it (the boundary) is a merge or changes no `.py` file; or None: a history
    of fewer than `min_commits` commits (one walk is as quick: the second process and the
    stitch cost about a second), or no such place between a quarter and three quarters of it."""
    out = tools.git(["rev-list", "--topo-order", "--reverse", "--parents", head], cwd=repo).decode("ascii")
    order: list[str] = []
    parents: list[list[str]] = []
    for line in out.split("\n"):
        if line:
            sha, *ps = line.split()
            order.append(sha)
            parents.append(ps)
    n = len(order)
    if n < min_commits:
        return None
    index = {sha: i for i, sha in enumerate(order)}
    last_child = list(range(n))  # per commit, the position of its last child (itself when none)
    for i, ps in enumerate(parents):
        for p in ps:
            j = index.get(p)
            if j is not None and last_child[j] < i:
                last_child[j] = i
    touching = set(
        tools.git(["log", "--format=%H", "--no-merges", head, "--", PY_PATHSPEC], cwd=repo).decode("ascii").split()
    )
    ends: dict[int, list[int]] = {}  # position -> the commits whose last child is there
    open_: set[int] = set()  # commits up to i with a child after i
    bad = 0  # of those, how many are no merge and change a .py file
    cuts: list[Cut] = []
    for i in range(n):
        for j in ends.pop(i, ()):
            open_.discard(j)
            bad -= order[j] in touching and len(parents[j]) < 2
        if last_child[i] > i:
            open_.add(i)
            ends.setdefault(last_child[i], []).append(i)
            bad += order[i] in touching and len(parents[i]) < 2
        if bad == 0 and 0 < len(open_) <= _MAX_BOUNDARY and 0.25 * n <= i <= 0.75 * n:
            cuts.append(Cut(tuple(sorted(order[j] for j in open_)), i + 1, n))
    # the target moves by a grid step at most: a cold walk a few commits later cuts at the same place
    target = max(_GRID, int(share * n) // _GRID * _GRID)
    cuts.sort(key=lambda c: abs(c.position - target))
    return cuts[0] if cuts else None


_MAX_BOUNDARY = 1  # a cut with more (branches span it) seldom joins: see `stitch_ids`
_GRID = 256
_MAX_APART = 20


def generations(tools: ToolService, repo: Path, head: str) -> dict[str, int]:
    """Each commit's generation as a walk numbers it: 1 + the greatest of its parents' (0 for
    a parent outside the history, as beyond a shallow boundary)."""
    out = tools.git(["rev-list", "--topo-order", "--reverse", "--parents", head], cwd=repo).decode("ascii")
    found: dict[str, int] = {}
    for line in out.split("\n"):
        if line:
            sha, *ps = line.split()
            found[sha] = 1 + max((found.get(p, 0) for p in ps), default=0)
    return found


def versions_made(tools: ToolService, repo: Path, tips: Iterable[str], timeout_s: float) -> frozenset[VersionKey]:
    """The (path, blob) versions of `.py` files the commits up to `tips` made (`git log --raw`,
    merges' own versions included, as the walk's `-c` diffs give them)."""
    found: set[VersionKey] = set()
    args = [
        "-c", "core.quotepath=off", "log", "--full-history", "--sparse", "--no-color", "--no-abbrev", "--raw", "-M",
        "-c", "--format=", *tips, "--", PY_PATHSPEC,
    ]  # fmt: skip
    with tools.stream(tools.config.git, args, cwd=repo, timeout_s=timeout_s) as stream:
        for raw in stream:
            if not raw.startswith(b":"):
                continue
            meta, _, paths = raw.rstrip(b"\n").partition(b"\t")
            fields = meta.split()
            blob = fields[-2].decode("ascii")
            if blob.strip("0"):
                found.add((os.fsdecode(paths.split(b"\t")[-1]), blob))
    return frozenset(found)


# ------------------------------------------------------------------------------------ stitch


def stitch_ids(
    older_versions: pa.Table, orphans: pa.Table, made_again: pa.Table
) -> tuple[dict[str, str], dict[str, str]] | None:
    """(lineage, file id) placeholders of the newer walk -> the ids the older walk gave (as
    stored text), or None where they do not map one to one (a placeholder standing for two
    lineages, as a definition deleted and written again between two versions the newer walk
    took as made before; two placeholders for one lineage, as one renamed; a version no
    commit of the older half made): the newer walk then took apart what one walk would have
    joined, or joined what it would have kept apart.

    A definition of a version at the cut that the older walk's outline names otherwise (its
    outline came through diffs from a version the parsers could only guess at, Python 2
    code, and the newer walk's from parsing the version whole) keeps its placeholder: its
    lineage begins at the cut, as when one walk parses a version again (`versions.align`).

    `orphans`: per version made before that the newer walk met as an old version (path, blob,
    its definitions' placeholders and name keys, preorder), mapped by name as `versions.align`
    maps; `made_again`: those it made again, mapped by position (as `HistoryWalker._store`
    maps); `older_versions`: the older walk's `history.versions` rows.
    """
    made = {
        (p, b): (f, ln, k)
        for p, b, f, ln, k in zip(
            *(_text(older_versions, c) for c in ("path", "blob", "file_id")),
            older_versions.column("lineages").to_pylist(),
            older_versions.column("name_keys").to_pylist(),
            strict=True,
        )
    }
    lineages: dict[int, int] = {}
    files: dict[int, str] = {}
    apart = defs = 0
    for by_name, table in ((True, orphans), (False, made_again)):
        for path, blob, placeholders, keys in zip(
            _text(table, "path"), _text(table, "blob"), table.column("lineages").to_pylist(),
            table.column("name_keys").to_pylist(), strict=True,
        ):  # fmt: skip
            theirs = made.get((path, blob))
            if theirs is None:
                return None
            file_id, their_lineages, their_keys = theirs
            if files.setdefault(placeholder(path), file_id) != file_id:
                return None
            mine = np.frombuffer(placeholders, dtype=np.int64).tolist()
            found: Sequence[int | None]
            if by_name:
                found = _aligned(keys, their_lineages, their_keys)
            elif len(their_lineages) == len(placeholders):
                found = np.frombuffer(their_lineages, dtype=np.int64).tolist()
            else:
                return None
            defs += len(mine)
            for mark, lineage in zip(mine, found, strict=True):
                if lineage is None:  # named apart at the cut: its placeholder is its lineage from there on
                    apart += 1
                    continue
                if lineages.setdefault(mark, lineage) != lineage:
                    return None
    if len(set(lineages.values())) != len(lineages) or len(set(files.values())) != len(files):
        return None
    if apart > max(_MAX_APART, defs // 100):  # one walk would have kept more lineages through the cut
        return None
    return (
        {id_text(k): id_text(v) for k, v in lineages.items()},
        {id_text(k): v for k, v in files.items()},
    )


def _aligned(keys: bytes, their_lineages: bytes, their_keys: bytes) -> list[int | None]:
    """Per definition (name keys `keys`), the lineage the other version gives it: by position
    when the names agree, else by (name, same-name ordinal), as `versions.align` does."""
    mine = np.frombuffer(keys, dtype=np.uint32).tolist()
    theirs = np.frombuffer(their_keys, dtype=np.uint32).tolist()
    values = np.frombuffer(their_lineages, dtype=np.int64).tolist()
    if mine == theirs:
        return list(values)
    by_name = dict(zip(zip(theirs, ordinals_of_keys(theirs), strict=True), values, strict=True))
    return [by_name.get(k) for k in zip(mine, ordinals_of_keys(mine), strict=True)]


def remap_text(table: pa.Table, column: str, mapping: dict[str, str]) -> pa.Table:
    """`table` with the ids of `column` (text, maybe dictionary-encoded) mapped."""
    if not mapping or table.num_rows == 0:
        return table
    values = table.column(column)
    encoded = pa.types.is_dictionary(values.type)
    if encoded:
        values = values.cast(values.type.value_type)
    plain = values.to_pylist()
    mapped = pa.array([mapping.get(v, v) if v is not None else None for v in plain], type=pa.string())
    if encoded:
        mapped = mapped.dictionary_encode()
    return table.set_column(table.schema.get_field_index(column), column, mapped)


def remap_packed(table: pa.Table, column: str, mapping: dict[str, str]) -> pa.Table:
    """`table` with the lineages packed in `column` (int64 bytes per row) mapped."""
    if not mapping or table.num_rows == 0:
        return table
    values = {_value(k): _value(v) for k, v in mapping.items()}
    out = []
    for packed in table.column(column).to_pylist():
        ids = np.frombuffer(packed, dtype=np.int64)
        if any(i in values for i in ids.tolist()):
            ids = np.array([values.get(i, i) for i in ids.tolist()], dtype=np.int64)
        out.append(ids.tobytes())
    return table.set_column(table.schema.get_field_index(column), column, pa.array(out, type=pa.binary()))


def _value(text: str) -> int:
    value = int(text, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(table: pa.Table, column: str) -> list[Any]:
    values = table.column(column)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values.to_pylist()


def concat(tables: Iterable[pa.Table]) -> pa.Table:
    """One table of `tables` (same columns; text columns dictionary-encoded, as the walk's:
    shas, paths and names repeat row after row)."""
    parts = []
    for table in tables:
        columns = [
            c.cast(pa.string()).dictionary_encode() if c.type in (pa.string(), pa.large_string()) else c
            for c in table.columns
        ]
        parts.append(pa.table(columns, names=table.column_names))
    return pa.concat_tables(parts)
