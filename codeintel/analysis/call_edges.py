"""Attach GOIDs to solved call sites: the rows of graph.call_edges.

The solver names scopes as PyCG does (`pkg.mod.C.method`, `pkg.mod.f.<lambda1>`); the database
keys entities by GOID.  A caller is looked up in its own file (a lambda or comprehension scope
belongs to the nearest enclosing definition, module-level code to the module); a callee by its
fully qualified name in the file the solver found it in (two files may have one module name).
`solve_call_edges` is the whole-program phase of the call_graph step: solve, then link.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from codeintel.analysis.callgraph.model import facts_from_json
from codeintel.analysis.callgraph.pycg import SiteTargets, site_targets
from codeintel.analysis.callgraph.solver import solve
from codeintel.gcpause import free_in_background, gc_paused


@dataclass(frozen=True, slots=True)
class GoidKey:
    """What identifies a GOID by name: its file, module, qualified name, kind and ordinal;
    whether its definition runs only under a type checker (`if TYPE_CHECKING:`) and whether it
    is a `typing.overload` stub (which definition of a name Python keeps); and its lines
    (which of two definitions of one name a call site is in)."""

    goid: str
    path: str
    module: str
    qualname: str
    kind: str
    ordinal: int
    type_checking: bool = False
    start_line: int = 0
    end_line: int = 0
    overload: bool = False

    @property
    def full_name(self) -> str:
        return self.module if self.kind == "module" else f"{self.module}.{self.qualname}"


CALL_EDGE_COLUMNS = (
    "caller_goid", "callee_goid", "caller", "caller_module", "path", "line", "col", "callee", "callee_text",
    "kind", "resolution", "confidence",
)  # fmt: skip
# the order rows are written in: by site, then callee (unresolved first) and kind
CALL_EDGE_ORDER = ("path", "line", "col", "callee", "kind")


@dataclass(frozen=True, slots=True)
class SolvedEdges:
    """The rows of graph.call_edges as columns (unsorted; see `CALL_EDGE_ORDER`) and how long the
    solve and the linking took."""

    columns: dict[str, list[Any]]
    solve_seconds: float
    link_seconds: float


def solve_call_edges(facts: Iterable[str], goids: Sequence[GoidKey]) -> SolvedEdges:
    """Solve the whole program and link its call sites to GOIDs.

    Args:
        facts: Every module's facts as JSON text (`facts_to_json`), in an order that must not
            vary between runs (the solve's capped points-to sets depend on it).
        goids: The GOIDs of every module, class and function.

    Returns:
        The rows of graph.call_edges as columns, with phase times.
    """
    started = time.perf_counter()
    with gc_paused():  # millions of small long-lived objects: collections would only cost time
        # a generator: the solver owns the facts and drops each module's ops once linked
        solution = solve(facts_from_json(text) for text in facts)
        solved = time.perf_counter()
        columns = link_call_sites(site_targets(solution), goids)
        free_in_background(solution)  # the solver's millions of objects: 0.7 s to free
        del solution
    return SolvedEdges(columns, solved - started, time.perf_counter() - solved)


def link_call_sites(sites: Iterable[SiteTargets], goids: Sequence[GoidKey]) -> dict[str, list[Any]]:
    """One row per (call site, caller, target), with caller and callee GOIDs where they exist.

    A site that reaches the same target more than once (as a function and as a method, or from
    two sites at one position) is one row: the first kind in sort order, the shares summed.

    Args:
        sites: Solved sites with their targets (`site_targets`).
        goids: The GOIDs of every module, class and function.

    Returns:
        The rows as columns (`CALL_EDGE_COLUMNS`), in the order of `sites`.
    """
    index = GoidIndex(goids)
    callee_goids: dict[tuple[str, str | None], str | None] = {}
    cols: dict[str, list[Any]] = {name: [] for name in CALL_EDGE_COLUMNS}
    caller_goid, callee_goid, caller_col, caller_module, path_col, line_col, col_col, callee_col, text_col = (
        cols[name] for name in CALL_EDGE_COLUMNS[:9]
    )
    kind_col, resolution_col, confidence_col = cols["kind"], cols["resolution"], cols["confidence"]
    module_path = None
    callers: dict[str, Callers] = {}
    at_position: dict[tuple[int, int], list[int]] = {}  # rows of the module per site position
    for module, site, caller, targets in sites:
        if module.path != module_path:
            module_path, callers, at_position = module.path, {}, {}
        found_callers = callers.get(caller)
        if found_callers is None:
            found_callers = callers[caller] = index.callers(module.path, caller, module.module)
        goid = found_callers.at(site.line)
        here = at_position.setdefault((site.line, site.col), [])
        for callee, kind, resolution, confidence, callee_path in targets:
            seen = next((r for r in here if callee_col[r] == callee and caller_col[r] == caller), None)
            if seen is not None:  # the same target twice: one row
                if str(kind) < kind_col[seen]:
                    kind_col[seen], resolution_col[seen] = str(kind), str(resolution)
                confidence_col[seen] = min(1.0, round(confidence_col[seen] + confidence, 6))
                continue
            here.append(len(callee_col))
            if callee is None:
                callee_goid.append(None)
            else:
                found = callee_goids.get((callee, callee_path), _UNSEEN)
                if found is _UNSEEN:
                    found = callee_goids[(callee, callee_path)] = index.callee(callee, callee_path)
                callee_goid.append(found)
            caller_goid.append(goid)
            caller_col.append(caller)
            caller_module.append(module.module)
            path_col.append(module.path)
            line_col.append(site.line)
            col_col.append(site.col)
            callee_col.append(callee)
            text_col.append(site.text)
            kind_col.append(str(kind))
            resolution_col.append(str(resolution))
            confidence_col.append(confidence)
    return cols


_UNSEEN: Any = object()


@dataclass(frozen=True, slots=True)
class Callers:
    """The definitions a caller's name may be in one file: `first` (the one the name names), and
    where the name is defined more than once (a property's getter and setter, a function
    defined in both branches of an `if`), every definition's lines, so that a call site is
    given the one it is in."""

    first: str | None
    spans: tuple[tuple[int, int, str], ...] = ()  # (start line, end line, GOID) in source order

    def at(self, line: int | None) -> str | None:
        """The GOID of the definition a call site on `line` is in (the innermost where spans
        nest), else `first`."""
        if line is not None:
            inside = [(end - start, goid) for start, end, goid in self.spans if start <= line <= end]
            if inside:
                return min(inside)[1]
        return self.first

    @property
    def goids(self) -> frozenset[str]:
        if self.spans:
            return frozenset(goid for _, _, goid in self.spans)
        return frozenset() if self.first is None else frozenset((self.first,))


class GoidIndex:
    """GOIDs by name: a caller's enclosing definition in its file (by name, then by the call
    site's line where the name is defined more than once), a callee's by full name.  A callee's
    name defined more than once in a file names the definition Python keeps: the last that runs
    and is no `typing.overload` stub (a stub under `if TYPE_CHECKING:` yields to its twin in the
    else branch; overloads to their implementation, the one with the body; a redefinition
    replaces the first).  Of twins in the branches of an `if` either may run: the last is taken."""

    def __init__(self, goids: Sequence[GoidKey]) -> None:
        self.by_file: dict[tuple[str, str], str] = {}
        self.by_name: dict[str, str] = {}
        self.name_of: dict[str, str] = {}  # full name per GOID
        self.spans: dict[tuple[str, str], list[tuple[int, int, str]]] = {}  # names defined more than once
        seen: dict[tuple[str, str], GoidKey] = {}
        # what Python keeps first: runs, no overload stub, then the last defined
        for ref in sorted(goids, key=lambda k: (k.path, k.type_checking, k.overload, -k.ordinal, k.qualname)):
            self.name_of[ref.goid] = ref.full_name
            key = (ref.path, ref.full_name)
            first = seen.setdefault(key, ref)
            if first is not ref:
                spans = self.spans.setdefault(key, [(first.start_line, first.end_line, first.goid)])
                spans.append((ref.start_line, ref.end_line, ref.goid))
            self.by_file.setdefault(key, ref.goid)
            self.by_name.setdefault(ref.full_name, ref.goid)
        for spans in self.spans.values():
            spans.sort()

    def callers(self, path: str, caller: str, module: str) -> Callers:
        """The definitions `caller` (the solver's name of a call site's scope) may be in `path`:
        the nearest enclosing name that is a definition, else the module."""
        name = caller
        while name:
            if (path, name) in self.by_file:
                break
            if name == module or "." not in name:
                name = module
                break
            name = name.rsplit(".", 1)[0]
        key = (path, name)
        return Callers(self.by_file.get(key), tuple(self.spans.get(key, ())))

    def caller(self, path: str, caller: str, module: str, line: int | None = None) -> str | None:
        return self.callers(path, caller, module).at(line)

    def callee(self, name: str | None, path: str | None = None) -> str | None:
        """The GOID of `name` in file `path`, else (a callee known by name only) of its first file's."""
        if not name:
            return None
        found = self.by_file.get((path, name)) if path is not None else None
        return found if found is not None else self.by_name.get(name)
