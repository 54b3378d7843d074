"""File versions as the walk knows them: per (path, blob), the lineage of each definition.

A version's definitions are listed in source order (preorder of its outline) with the lineage
each belongs to and its qualified name and kind; its outline (spans) is kept for the versions
used last (a budget of definitions) and parsed again from the blob when needed after that.
Lineage and file ids are 64-bit hashes of where they began (commit, path, name), so every run,
cold or incremental, names them alike.
"""

from __future__ import annotations

import hashlib
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from codeintel.ingestion.history.outline import Def, Module, walk

VersionKey = tuple[str, str]  # (path, blob)


def lineage_id(*parts: str | int) -> int:
    """A signed 64-bit id hashed from `parts` (the commit, path and name a lineage began at)."""
    key = "\0".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big", signed=True)


def id_text(value: int) -> str:
    """The stored form of an id: 16 hex digits."""
    return format(value & 0xFFFFFFFFFFFFFFFF, "016x")


def id_value(text: str) -> int:
    """The id `id_text` stored."""
    value = int(text, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def name_key(qualname: str) -> int:
    return zlib.crc32(qualname.encode("utf-8", "surrogatepass"))


@dataclass(slots=True)
class Version:
    """One (path, blob): its file's id, line count, and per definition (source order) its
    lineage, qualified name and kind."""

    file_id: int
    n_lines: int
    lineages: array[int]
    names: tuple[str, ...]
    kinds: str  # one letter per definition: c(lass), f(unction), m(ethod)

    @classmethod
    def of(cls, file_id: int, n_lines: int, defs: Sequence[Def]) -> Version:
        """The version whose definitions (preorder) are `defs` (their names are interned)."""
        return cls(
            file_id,
            n_lines,
            array("q", [d.lineage for d in defs]),
            tuple([d.qualname for d in defs]),
            "".join([d.kind[0] for d in defs]),
        )

    def packed(self, known: tuple[tuple[str, ...], bytes] | None = None) -> tuple[bytes, bytes]:
        """(lineages, name keys) as bytes, for storage.  `known`: names packed before and their
        keys, used when they are this version's (most versions of a file name the definitions
        the one before did)."""
        if known is not None and known[0] == self.names:
            keys = known[1]
        else:
            keys = array("I", [name_key(n) for n in self.names]).tobytes()
        return self.lineages.tobytes(), keys

    def defs(self) -> Iterable[tuple[str, str, int, int]]:
        """(qualified name, kind, same-name ordinal, lineage) of each definition."""
        kinds = {"c": "class", "f": "function", "m": "method"}
        seen: dict[str, int] = {}
        for name, kind, lineage in zip(self.names, self.kinds, self.lineages, strict=True):
            n = seen.get(name, 0)
            seen[name] = n + 1
            yield name, kinds[kind], n, lineage


@dataclass(slots=True)
class StoredVersion:
    """A version as stored by an earlier run: no names (they come from parsing its blob)."""

    file_id: int
    n_lines: int
    lineages: array[int]
    keys: array[int]


def align(root: Def, lineages: Sequence[int], keys: Sequence[int]) -> None:
    """Give the definitions of a freshly parsed outline the lineages stored for its version:
    by position when the names agree, else by (name, same-name ordinal); unknown ones keep 0."""
    defs = list(walk(root))
    mine = [name_key(d.qualname) for d in defs]
    if mine == list(keys):
        for d, lineage in zip(defs, lineages, strict=True):
            d.lineage = lineage
        return
    by_name: dict[tuple[int, int], int] = {}
    seen: dict[int, int] = {}
    for key, lineage in zip(keys, lineages, strict=True):
        n = seen.get(key, 0)
        seen[key] = n + 1
        by_name[(key, n)] = lineage
    for d, key, n in zip(defs, mine, ordinals_of_keys(mine), strict=True):
        d.lineage = by_name.get((key, n), 0)


def ordinals_of_keys(keys: Sequence[int]) -> list[int]:
    seen: dict[int, int] = {}
    out = []
    for key in keys:
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(n)
    return out


@dataclass(slots=True)
class Source:
    """A version's outline, and its lines (as `outline.decode_source` gives them) when kept."""

    root: Module
    lines: list[str] | None
    encoding: str


class OutlineCache:
    """The outlines of the versions used last, within a budget of definitions, and their lines
    within a budget of lines (lines are cheap to read again: a blob; outlines cost a parse)."""

    def __init__(self, defs_budget: int = 400_000, lines_budget: int = 1_000_000) -> None:
        self._roots: OrderedDict[VersionKey, tuple[Module, str, int]] = OrderedDict()
        self._lines: OrderedDict[VersionKey, list[str]] = OrderedDict()
        self._defs = self._n_lines = 0
        self.defs_budget, self.lines_budget = defs_budget, lines_budget

    def get(self, key: VersionKey) -> Source | None:
        found = self._roots.get(key)
        if found is None:
            return None
        self._roots.move_to_end(key)
        lines = self._lines.get(key)
        if lines is not None:
            self._lines.move_to_end(key)
        return Source(found[0], lines, found[1])

    def put(self, key: VersionKey, source: Source, n_defs: int) -> None:
        if key not in self._roots:
            self._roots[key] = (source.root, source.encoding, n_defs)
            self._defs += n_defs
            while self._defs > self.defs_budget and len(self._roots) > 1:
                _, (_, _, dropped) = self._roots.popitem(last=False)
                self._defs -= dropped
        if source.lines is not None and key not in self._lines:
            self._lines[key] = source.lines
            self._n_lines += len(source.lines)
            while self._n_lines > self.lines_budget and len(self._lines) > 1:
                _, gone = self._lines.popitem(last=False)
                self._n_lines -= len(gone)
