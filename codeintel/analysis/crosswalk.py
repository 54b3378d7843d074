"""The GOID crosswalk: which SCIP symbol names each GOID.

A GOID and a SCIP symbol name the same definition when they agree on the file, the kind and the
qualified name (never on lines: an edit elsewhere moves lines, and both ids ignore them).  The
SCIP symbol's qualified name is its descriptors after the module (`App#route().decorator().` ->
`App.route.decorator`), the GOID's is core.goids' qualname; a module matches its file.  A
definition repeated under one name (a property and its setter, conditional definitions: GOID
ordinals 0, 1, ...) is one SCIP symbol: every ordinal maps to it.  Where the kinds disagree (a
decorated function the checker sees as an attribute), a definition still matches on file and
qualified name alone when that is unambiguous (`match` = 'name').
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class CrosswalkMatch(StrEnum):
    QUALNAME = "qualname"  # path + kind + qualified name
    NAME = "name"  # path + qualified name, the kinds differ (one candidate only)
    PATH = "path"  # a module: its file (the checker named the module otherwise)


@dataclass(frozen=True, slots=True)
class GoidRow:
    goid: str
    path: str
    kind: str
    qualname: str
    ordinal: int


@dataclass(frozen=True, slots=True)
class ScipDefinition:
    """A repository symbol defined in `path` (from core.scip_symbols)."""

    symbol: str
    path: str
    kind: str
    qualified_name: str


CrosswalkRow = tuple[str, str, str, str, str, str]  # goid, symbol, path, kind, qualname, match

_MATCHABLE = ("module", "class", "function", "method")


def build_crosswalk(goids: Iterable[GoidRow], symbols: Iterable[ScipDefinition]) -> list[CrosswalkRow]:
    """One row per GOID that a SCIP symbol names, sorted by GOID."""
    exact: dict[tuple[str, str, str], str] = {}
    by_name: dict[tuple[str, str], list[str]] = defaultdict(list)
    modules: dict[str, str] = {}
    for s in sorted(symbols, key=lambda s: (s.path, s.symbol)):
        if s.kind == "module":
            modules.setdefault(s.path, s.symbol)
            exact.setdefault((s.path, "module", s.qualified_name), s.symbol)
        elif s.kind in _MATCHABLE or s.kind in ("attribute", "variable"):
            exact.setdefault((s.path, s.kind, s.qualified_name), s.symbol)
            by_name[(s.path, s.qualified_name)].append(s.symbol)
    rows: list[CrosswalkRow] = []
    for g in goids:
        symbol = exact.get((g.path, g.kind, g.qualname))
        match = CrosswalkMatch.QUALNAME
        if symbol is None and g.kind == "module":
            symbol, match = modules.get(g.path), CrosswalkMatch.PATH
        elif symbol is None:
            candidates = by_name.get((g.path, g.qualname), [])
            symbol, match = (candidates[0] if len(candidates) == 1 else None), CrosswalkMatch.NAME
        if symbol is not None:
            rows.append((g.goid, symbol, g.path, g.kind, g.qualname, str(match)))
    rows.sort()
    return rows


def goid_of_symbols(goids: Iterable[GoidRow], crosswalk: Iterable[CrosswalkRow]) -> dict[tuple[str, str], str]:
    """Per (SCIP symbol, defining path), the GOID it names (the lowest ordinal where several
    definitions share it)."""
    ordinal = {g.goid: g.ordinal for g in goids}
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for goid, symbol, path, *_ in crosswalk:
        key = (ordinal.get(goid, 0), goid)
        if (symbol, path) not in best or key < best[(symbol, path)]:
            best[(symbol, path)] = key
    return {at: goid for at, (_, goid) in best.items()}
