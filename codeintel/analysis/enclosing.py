"""The enclosing GOID of a position: the innermost definition whose lines hold it.

Every table that says where something is inside the code (comments, name sites, SCIP
occurrences, type diagnostics) records the definition it is in the same way: the innermost
module, class, function or method of core.goids whose `[start_line, end_line]` holds the line
(`start_line` counts decorators; `end_line` is the last line of the body as `ast` ends it, so a
comment after a function's last statement is outside it).  A line no definition holds, at module
level, gets the module's own GOID (core.goids has one per file); a line past the module's last
line too.  Lines only: two definitions never share a line unless one holds the other (a compound
statement cannot follow another on one line), and then the deeper one wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """The lines of one definition, and how deep it is nested (the module: 0)."""

    goid: str
    start_line: int
    end_line: int
    depth: int


def innermost_by_line(spans: Iterable[Span]) -> list[str | None]:
    """For one file, the innermost GOID of each line: `result[line]` (index 0 unused).

    Outer definitions are painted first and inner ones over them, so each line ends up with the
    deepest definition holding it.
    """
    ordered = sorted(spans, key=lambda s: (s.depth, s.start_line, -s.end_line))
    last = max((s.end_line for s in ordered), default=0)
    lines: list[str | None] = [None] * (last + 1)
    for span in ordered:
        start, end = max(span.start_line, 0), max(span.end_line, span.start_line)
        lines[start : end + 1] = [span.goid] * (end + 1 - start)
    return lines


class EnclosingIndex:
    """The enclosing GOID of positions in many files (built once, looked up per position).

    Build it from core.goids rows (`from_goid_rows`) or from spans per path; a file's lines are
    laid out on its first lookup.
    """

    def __init__(self, spans_by_path: dict[str, list[Span]]) -> None:
        self._spans = spans_by_path
        self._lines: dict[str, list[str | None]] = {}
        self._outer: dict[str, str | None] = {}

    @classmethod
    def from_goid_rows(cls, rows: Iterable[tuple[str, str, int, int, str | None]]) -> EnclosingIndex:
        """From (path, goid, start_line, end_line, parent_goid) rows, as core.goids holds them."""
        by_path: dict[str, list[tuple[str, int, int, str | None]]] = defaultdict(list)
        for path, goid, start, end, parent in rows:
            by_path[path].append((goid, start, end, parent))
        return cls({path: spans_with_depth(found) for path, found in by_path.items()})

    def restricted(self, paths: Iterable[str]) -> EnclosingIndex:
        """The index of `paths` only (what a worker decoding those files needs)."""
        return EnclosingIndex({p: self._spans[p] for p in paths if p in self._spans})

    def lookup(self, path: str, line: int | None) -> str | None:
        """The innermost GOID holding `line` of `path` (None: no definitions known for `path`)."""
        lines = self._lines.get(path)
        if lines is None:
            lines = self._lines[path] = innermost_by_line(self._spans.get(path, ()))
            self._outer[path] = _outermost(self._spans.get(path, ()))
        if line is not None and 0 < line < len(lines):
            found = lines[line]
            if found is not None:
                return found
        return self._outer[path]

    def lookup_many(self, path: str, lines: Sequence[int | None]) -> list[str | None]:
        """`lookup` for each of `lines` of one file."""
        return [self.lookup(path, line) for line in lines]


def spans_with_depth(rows: Iterable[tuple[str, int, int, str | None]]) -> list[Span]:
    """Spans of one file's (goid, start_line, end_line, parent_goid) rows, depth from the parents."""
    found = list(rows)
    parent_of = {goid: parent for goid, _, _, parent in found}
    depth: dict[str, int] = {}

    def depth_of(goid: str) -> int:
        chain: list[str] = []
        at = goid
        while at not in depth:
            parent = parent_of.get(at)
            if parent is None or parent not in parent_of or parent == at or parent in chain:
                depth[at] = 0
                break
            chain.append(at)
            at = parent
        for child in reversed(chain):
            depth[child] = depth[parent_of[child] or ""] + 1
        return depth[goid]

    return [Span(goid, start, end, depth_of(goid)) for goid, start, end, _ in found]


def _outermost(spans: Iterable[Span]) -> str | None:
    outer = min(spans, key=lambda s: (s.depth, s.start_line), default=None)
    return outer.goid if outer is not None and outer.depth == 0 else None
