"""The call graph with the type checker's answers: graph.call_edges_merged.

The points-to analysis (graph.call_edges) leaves some call sites unresolved (a method called on
a typed parameter, `def f(s: Session): s.merge()`) and the type checker (pyrefly's SCIP index)
misses what needs inference from untyped values; the merge keeps both.  A call site is joined
to what SCIP says its called name refers to: graph.call_edges' (path, line, col), the start of
the call expression, is core.name_sites' (call_line, call_col) of the name the call calls
(`merge` in `self.s.merge()`, `route` in `@app.route("/")`), whose own (path, line, col) is the
occurrence's in core.scip_occurrences, whose symbol the crosswalk turns into a GOID.  Rules:

- A function or method is the target itself; a class (`Foo()`) is its constructor as the
  points-to analysis names it: the first `__init__` in the class's MRO (C3 over the bases the
  type checker resolves, external bases skipped, `metaclass=` no base), else the class.
- Both give the same target: the points-to row stays, its resolution gains `+scip` (`import+scip`)
  and its confidence rises (`1 - (1 - c) * (1 - SCIP_CONFIDENCE)`).
- Only SCIP gives a repository target: a new row, resolution 'scip', confidence SCIP_CONFIDENCE
  when the points-to analysis found nothing for that called name (its unresolved row is then
  dropped: the site is resolved), DISAGREE_CONFIDENCE when it found other targets (both stay).
  Constructing a repository class with no `__init__` in the repository: the points-to analysis
  names the external base's `__init__`, SCIP the class; that is no disagreement.
- Without a SCIP index (the indexer skipped), the merged edges are the points-to edges; a file
  whose stored index or name sites are older than its content keeps its points-to edges only.

Pure: SQL text for the step's transaction, and the one computation SQL does badly (MROs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from codeintel.analysis.goids import overload_sql
from codeintel.analysis.symbol_uses import FRESH_PATHS_SQL, SYMBOL_GOIDS_SQL, TWIN_GOIDS_SQL

SCIP_RESOLUTION = "scip"
AGREED_SUFFIX = "+scip"
SCIP_CONFIDENCE = 0.9
DISAGREE_CONFIDENCE = 0.5
CONSTRUCTORS_TABLE = "_ci_constructors"  # (class_goid, callee_goid), registered by the step

# the name a call site calls: the last identifier of its text (`a.b(...).c` calls `c`), as
# docs.v_unresolved_calls and the symbol index take it
_CALLED_NAME = r"regexp_extract(e.callee_text, '([A-Za-z_][A-Za-z0-9_]*)\s*$', 1)"

# the bases of every class, in order, as the type checker resolves them: a repository class
# (base_goid) or an external one (its SCIP symbol).  The name sites say which names are bases:
# not keyword values (`metaclass=M`) nor type arguments (`T` in `class C(Base[T])`).
CLASS_BASES_SQL = f"""
    WITH goid_of AS ({SYMBOL_GOIDS_SQL}), twin_of AS ({TWIN_GOIDS_SQL}), fresh AS ({FRESH_PATHS_SQL})
    SELECT n.enclosing_goid AS class_goid, coalesce(t.goid, d.goid) AS base_goid, o.symbol AS base_symbol
    FROM core.name_sites n
    JOIN core.goids c ON c.goid = n.enclosing_goid AND c.kind = 'class'
    JOIN core.scip_occurrences o ON o.path = n.path AND o.line = n.line AND o.col = n.col AND NOT o.is_definition
    LEFT JOIN goid_of d ON d.symbol = o.symbol
    LEFT JOIN twin_of t ON t.path = o.path AND t.symbol = o.symbol
    WHERE n.role = 'base_class' AND n.path IN (SELECT path FROM fresh)
          AND (d.kind = 'class' OR (d.goid IS NULL AND ends_with(o.symbol, '#')))
    ORDER BY n.enclosing_goid, n.line, n.col
"""

# each class's own __init__ (the one Python keeps, as the call graph names it: `call_edges.GoidIndex`)
INITS_SQL = f"""
    SELECT g.parent_goid AS class_goid,
           arg_min(g.goid, (coalesce(a.type_checking, false), coalesce({overload_sql("a")}, false), -g.ordinal, g.goid))
               AS init_goid
    FROM core.goids g LEFT JOIN core.ast_nodes a USING (path, qualname, ordinal)
    WHERE g.kind = 'method' AND g.name = '__init__' AND g.parent_goid IS NOT NULL
    GROUP BY g.parent_goid
"""

@dataclass(frozen=True, slots=True)
class ClassBase:
    """One base of a class: a repository class (`base_goid`) or an external one (its symbol only:
    it has no `__init__` the call graph can name, and is skipped)."""

    class_goid: str
    base_goid: str | None
    base_symbol: str


def constructor_targets(bases: Iterable[ClassBase], inits: Mapping[str, str]) -> dict[str, str]:
    """Per repository class with a known constructor, what constructing it calls.

    Args:
        bases: Every class's bases in source order (`CLASS_BASES_SQL`).
        inits: Class GOID -> GOID of the `__init__` it defines (`INITS_SQL`).

    Returns:
        Class GOID -> the first `__init__` in its MRO, for every class whose MRO has one.
    """
    parents: dict[str, list[str]] = {}
    for b in bases:
        if b.base_goid is not None and b.base_goid != b.class_goid:
            found = parents.setdefault(b.class_goid, [])
            if b.base_goid not in found:
                found.append(b.base_goid)
    mros: dict[str, list[str]] = {}
    targets: dict[str, str] = {}
    for cls in sorted(set(parents) | set(inits)):
        init = next((inits[c] for c in _mro(cls, parents, mros, set()) if c in inits), None)
        if init is not None:
            targets[cls] = init
    return targets


def _mro(cls: str, parents: Mapping[str, Sequence[str]], done: dict[str, list[str]], active: set[str]) -> list[str]:
    """C3 linearisation over repository classes (depth-first order where C3 has none)."""
    found = done.get(cls)
    if found is not None:
        return found
    if cls in active:  # a cycle in bad data: stop there
        return [cls]
    active.add(cls)
    bases = list(parents.get(cls, ()))
    seqs = [list(_mro(b, parents, done, active)) for b in bases] + [bases]
    merged: list[str] = [cls]
    while any(seqs):
        head = next((s[0] for s in seqs if s and not any(s[0] in t[1:] for t in seqs)), None)
        if head is None:  # inconsistent hierarchy: depth-first, first seen wins
            rest = [c for s in seqs for c in s]
            merged += [c for i, c in enumerate(rest) if c not in merged and c not in rest[:i]]
            break
        merged.append(head)
        seqs = [s[1:] if s and s[0] == head else s for s in seqs]
    active.discard(cls)
    done[cls] = merged
    return merged


def constructors_table(base_rows: Iterable[Mapping[str, Any]], init_rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """What constructing each class calls (`constructor_targets` over the rows of
    `CLASS_BASES_SQL` and `INITS_SQL`), as the table the merge reads (`CONSTRUCTORS_TABLE`)."""
    bases = [ClassBase(**r) for r in base_rows]
    targets = constructor_targets(bases, {r["class_goid"]: r["init_goid"] for r in init_rows})
    classes = sorted(targets)
    return pa.table(
        {"class_goid": pa.array(classes, pa.string()), "callee_goid": pa.array([targets[c] for c in classes], pa.string())}
    )


def merged_call_edges_sql() -> str:
    """The rows of graph.call_edges_merged (graph.call_edges' columns and order).

    Reads the constructor targets from `CONSTRUCTORS_TABLE` (class_goid, callee_goid).
    """
    return f"""
    WITH goid_of AS ({SYMBOL_GOIDS_SQL}),
    twin_of AS ({TWIN_GOIDS_SQL}),
    fresh AS ({FRESH_PATHS_SQL}),
    resolved AS (  -- names a call calls (role 'call', or a decorator's) that SCIP resolves to a repository function, method or class
        SELECT n.path, n.call_line AS line, n.call_col AS col, n.name AS called, n.enclosing_goid,
               coalesce(k.callee_goid, t.goid, d.goid) AS callee_goid,
               CASE WHEN d.kind = 'class' THEN 'constructor' ELSE d.kind END AS kind
        FROM core.name_sites n
        JOIN core.scip_occurrences o ON o.path = n.path AND o.line = n.line AND o.col = n.col AND NOT o.is_definition
        JOIN goid_of d ON d.symbol = o.symbol AND d.kind IN ('function', 'method', 'class')
        LEFT JOIN twin_of t ON t.path = o.path AND t.symbol = o.symbol
        LEFT JOIN {CONSTRUCTORS_TABLE} k ON k.class_goid = coalesce(t.goid, d.goid)
        WHERE n.call_line IS NOT NULL AND n.path IN (SELECT path FROM fresh)
    ),
    scip AS (  -- one row per site and target
        SELECT path, line, col, callee_goid, min(called) AS called, min(kind) AS kind, min(enclosing_goid) AS enclosing_goid
        FROM resolved GROUP BY path, line, col, callee_goid
    ),
    named AS (SELECT DISTINCT path, line, col, called FROM resolved),
    pt AS (SELECT e.*, {_CALLED_NAME} AS called FROM graph.call_edges e),
    found AS (  -- per site and called name: whether the points-to analysis resolved it to any target,
                -- and to any but an external class's constructor (a repository class without __init__ of its own)
        SELECT path, line, col, called, bool_or(callee IS NOT NULL) AS any_target,
               bool_or(callee IS NOT NULL AND NOT (kind = 'constructor' AND callee_goid IS NULL)) AS other_target,
               min(callee_text) AS callee_text
        FROM pt GROUP BY path, line, col, called
    ),
    callers AS (  -- per site: who calls there, as the points-to analysis names it
        SELECT path, line, col, min(caller) AS caller, arg_min(caller_module, caller) AS caller_module,
               arg_min(caller_goid, caller) AS caller_goid
        FROM pt GROUP BY path, line, col
    ),
    kept AS (
        SELECT p.caller_goid, p.callee_goid, p.caller, p.caller_module, p.path, p.line, p.col, p.callee, p.callee_text,
               p.kind,
               CASE WHEN s.path IS NULL THEN p.resolution ELSE p.resolution || '{AGREED_SUFFIX}' END AS resolution,
               CASE WHEN s.path IS NULL THEN p.confidence
                    ELSE round(1 - (1 - p.confidence) * (1 - {SCIP_CONFIDENCE}), 6) END AS confidence
        FROM pt p
        LEFT JOIN scip s ON s.path = p.path AND s.line = p.line AND s.col = p.col AND s.callee_goid = p.callee_goid
        LEFT JOIN named m ON p.callee IS NULL AND m.path = p.path AND m.line = p.line AND m.col = p.col AND m.called = p.called
        WHERE m.path IS NULL  -- an unresolved row SCIP resolves is dropped
    ),
    added AS (
        SELECT coalesce(c.caller_goid, s.enclosing_goid) AS caller_goid, s.callee_goid,
               coalesce(c.caller, CASE WHEN eg.kind = 'module' THEN eg.module ELSE eg.module || '.' || eg.qualname END) AS caller,
               coalesce(c.caller_module, eg.module) AS caller_module, s.path, s.line, s.col,
               tg.module || '.' || tg.qualname AS callee, coalesce(f.callee_text, s.called) AS callee_text, s.kind,
               '{SCIP_RESOLUTION}' AS resolution,
               CASE WHEN coalesce(CASE WHEN s.kind = 'constructor' THEN f.other_target ELSE f.any_target END, false)
                    THEN {DISAGREE_CONFIDENCE} ELSE {SCIP_CONFIDENCE} END AS confidence
        FROM scip s
        JOIN core.goids tg ON tg.goid = s.callee_goid
        LEFT JOIN core.goids eg ON eg.goid = s.enclosing_goid
        LEFT JOIN callers c ON c.path = s.path AND c.line = s.line AND c.col = s.col
        LEFT JOIN found f ON f.path = s.path AND f.line = s.line AND f.col = s.col AND f.called = s.called
        WHERE NOT EXISTS (
            SELECT 1 FROM pt p WHERE p.path = s.path AND p.line = s.line AND p.col = s.col AND p.callee_goid = s.callee_goid
        )
    )
    SELECT * FROM kept
    UNION ALL
    SELECT * FROM added
    ORDER BY path, line, col, callee NULLS FIRST, kind, caller
    """


# (rows from SCIP alone, points-to rows SCIP confirms) in graph.call_edges_merged
MERGE_COUNTS_SQL = f"""SELECT count(*) FILTER (WHERE resolution = '{SCIP_RESOLUTION}'),
    count(*) FILTER (WHERE ends_with(resolution, '{AGREED_SUFFIX}')) FROM graph.call_edges_merged"""

# without a SCIP index: the points-to edges as they are
# whether there is an index at all (scip_ingest skipped or indexed nothing: the steps degrade)
SCIP_INDEXED_SQL = "SELECT count(*) > 0 FROM core.scip_documents"
NO_SCIP_NOTE = "no SCIP index (scip_ingest skipped or indexed nothing)"
COPY_CALL_EDGES_SQL = "SELECT * FROM graph.call_edges ORDER BY path, line, col, callee NULLS FIRST, kind, caller"
