"""Attach GOIDs to solved call sites: the rows of graph.call_edges.

The solver names scopes as PyCG does (`pkg.mod.C.method`, `pkg.mod.f.<lambda1>`); the database
keys entities by GOID.  A caller is looked up in its own file (a lambda or comprehension scope
belongs to the nearest enclosing definition, module-level code to the module); a callee by its
fully qualified name (when two files define the same module name, the first path wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from codeintel.analysis.callgraph import CallSite


@dataclass(frozen=True, slots=True)
class GoidKey:
    """What identifies a GOID by name: its file, module, qualified name, kind and ordinal."""

    goid: str
    path: str
    module: str
    qualname: str
    kind: str
    ordinal: int

    @property
    def full_name(self) -> str:
        return self.module if self.kind == "module" else f"{self.module}.{self.qualname}"


@dataclass(frozen=True, slots=True)
class CallEdge:
    """One row of graph.call_edges."""

    caller_goid: str | None
    callee_goid: str | None
    caller: str
    caller_module: str
    path: str
    line: int
    col: int
    callee: str | None
    callee_text: str
    kind: str
    resolution: str
    confidence: float


def link_call_sites(sites: Iterable[CallSite], goids: Sequence[GoidKey]) -> list[CallEdge]:
    """One `CallEdge` per (call site, caller, target), with caller and callee GOIDs where they exist.

    A site that reaches the same target more than once (through several receivers) is one edge
    whose confidence is the sum of its shares.
    """
    index = GoidIndex(goids)
    callers: dict[tuple[str, str, str], str | None] = {}
    edges: dict[tuple[str, int, int, str, str | None], CallEdge] = {}
    for site in sites:
        key = (site.path, site.caller, site.caller_module)
        if key not in callers:
            callers[key] = index.caller(*key)
        edge_key = (site.path, site.line, site.col, site.caller, site.callee)
        seen = edges.get(edge_key)
        if seen is not None:  # the same target reached twice (e.g. through two receivers)
            edges[edge_key] = replace(seen, confidence=min(1.0, round(seen.confidence + site.confidence, 6)))
            continue
        edges[edge_key] = CallEdge(
            callers[key], index.callee(site.callee), site.caller, site.caller_module,
            site.path, site.line, site.col, site.callee, site.callee_text, str(site.kind), str(site.resolution),
            site.confidence,
        )  # fmt: skip
    return list(edges.values())


class GoidIndex:
    """GOIDs by name: a caller's enclosing definition in its file, a callee's by full name."""

    def __init__(self, goids: Sequence[GoidKey]) -> None:
        self.by_file: dict[tuple[str, str], str] = {}
        self.by_name: dict[str, str] = {}
        for ref in sorted(goids, key=lambda k: (k.path, k.ordinal, k.qualname)):
            self.by_file.setdefault((ref.path, ref.full_name), ref.goid)
            self.by_name.setdefault(ref.full_name, ref.goid)  # two files, one module name: first path wins

    def caller(self, path: str, caller: str, module: str) -> str | None:
        return _enclosing(path, caller, module, self.by_file)

    def callee(self, name: str | None) -> str | None:
        return self.by_name.get(name) if name else None


def _enclosing(path: str, caller: str, module: str, by_file: dict[tuple[str, str], str]) -> str | None:
    name = caller
    while name:
        found = by_file.get((path, name))
        if found is not None:
            return found
        if name == module or "." not in name:
            break
        name = name.rsplit(".", 1)[0]
    return by_file.get((path, module))
