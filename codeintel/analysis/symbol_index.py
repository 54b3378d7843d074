"""The symbol index: every module, class, function and method as readers look it up.

One row per GOID with its dotted name (`pkg.mod.Class.method`; a module's is its own name), the
lower-case names that prefix and fuzzy search compare against, whether it is a test function,
and the call-graph counts a lookup ranks by; and, per name, how many call sites the call graph
could not resolve call that name.  Built once per run (by the docs_views step) so that the MCP
server answers lookups from an index instead of computing it per call.

A test function is a function or method whose name starts with `test`, in a test file: one
named `test_*.py` or `*_test.py`, or anywhere under a `tests/`, `test/` or `testing/` directory
(pytest's defaults, plus the directory layouts of the usual projects).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from codeintel.analysis.callgraph.model import CallKind
from codeintel.storage.catalog import Table

# what the symbol index is built from: every GOID with its call counts and metrics
SYMBOL_INDEX_SQL = f"""
    SELECT g.goid, g.urn, g.kind, g.module, g.qualname, g.name, g.path, g.start_line, g.end_line, g.parent_goid,
           i.callers, o.callees, u.unresolved_calls, m.cyclomatic, m.loc
    FROM {Table.GOIDS} g
    LEFT JOIN (SELECT callee_goid AS goid, count(DISTINCT caller_goid) AS callers FROM {Table.CALL_EDGES_MERGED}
               WHERE callee_goid IS NOT NULL GROUP BY 1) i USING (goid)
    LEFT JOIN (SELECT caller_goid AS goid, count(DISTINCT callee_goid) AS callees FROM {Table.CALL_EDGES_MERGED}
               WHERE callee_goid IS NOT NULL GROUP BY 1) o USING (goid)
    LEFT JOIN (SELECT caller_goid AS goid, count(*) AS unresolved_calls FROM {Table.CALL_EDGES_MERGED}
               WHERE kind = '{CallKind.UNRESOLVED}' GROUP BY 1) u USING (goid)
    LEFT JOIN {Table.FUNCTION_METRICS} m USING (goid)
"""
UNRESOLVED_SITES_SQL = (
    f"SELECT callee_text, caller_goid FROM {Table.CALL_EDGES_MERGED} WHERE kind = '{CallKind.UNRESOLVED}'"
)


def docs_complete_sql(views: int) -> str:
    """Whether the docs schema holds its `views` views and tables filled for the graph stored."""
    return (
        f"SELECT count(*) >= {views} AND (SELECT count(*) FROM {Table.SYMBOLS}) = "
        f"(SELECT count(*) FROM {Table.GOIDS}) AND ((SELECT count(*) FROM {Table.UNRESOLVED_NAMES}) > 0 OR NOT EXISTS "
        f"(SELECT 1 FROM {Table.CALL_EDGES_MERGED} WHERE kind = '{CallKind.UNRESOLVED}')) "
        f"AND ((SELECT count(*) FROM {Table.MODULE_EDGES}) > 0 "
        f"OR NOT EXISTS (SELECT 1 FROM {Table.IMPORT_EDGES} WHERE target_kind = 'internal')) "
        "FROM duckdb_views() WHERE schema_name = 'docs'"
    )


_TEST_FILE = re.compile(r"(^|/)((tests?|testing)/|test_[^/]*\.py$|[^/]*_test\.py$)")
# the name an unresolved call site calls: the last identifier of its text (`a.b(...).c` calls `c`);
# docs.v_unresolved_calls extracts it with the same pattern
CALLED_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")


@dataclass(frozen=True, slots=True)
class SymbolIndexRow:
    """One row of docs.symbols."""

    goid: str
    urn: str
    kind: str
    module: str
    qualname: str
    name: str
    full_name: str
    path: str
    start_line: int
    end_line: int
    parent_goid: str | None
    is_test: bool
    callers: int
    callees: int
    unresolved_calls: int
    cyclomatic: int | None
    loc: int | None
    name_lower: str
    qualname_lower: str
    full_name_lower: str


def full_name(kind: str, module: str, qualname: str) -> str:
    """The dotted name readers use: `module.qualname`, or the module's own name."""
    return module if kind == "module" else f"{module}.{qualname}"


def is_test_function(kind: str, name: str, path: str) -> bool:
    """Whether a definition is a test function (see the module docstring)."""
    return kind in ("function", "method") and name.startswith("test") and _TEST_FILE.search(path) is not None


def called_name(callee_text: str | None) -> str | None:
    """The name an unresolved call site calls (None when its text ends in a call or subscript)."""
    found = CALLED_NAME.search(callee_text or "")
    return found[1] if found else None


@dataclass(frozen=True, slots=True)
class UnresolvedName:
    """One row of docs.unresolved_names: how many unresolved call sites call a name, from how
    many callers (a caller list of a symbol with that name is a lower bound by that much)."""

    called_name: str
    sites: int
    callers: int


def build_unresolved_names(sites: Iterable[tuple[str | None, str | None]]) -> list[UnresolvedName]:
    """Per called name, the unresolved sites and their distinct callers, from (callee text,
    caller GOID) pairs; sorted by name."""
    counts: dict[str, int] = {}
    callers: dict[str, set[str]] = {}
    for text, caller in sites:
        name = called_name(text)
        if name is None:
            continue
        counts[name] = counts.get(name, 0) + 1
        callers.setdefault(name, set()).add(caller or "")
    return [UnresolvedName(n, counts[n], len(callers[n])) for n in sorted(counts)]


def build_symbol_index(rows: Iterable[Mapping[str, Any]]) -> list[SymbolIndexRow]:
    """Index rows from GOID rows joined with their counts and metrics.

    Args:
        rows: Mappings with the GOID columns (goid, urn, kind, module, qualname, name, path,
            start_line, end_line, parent_goid), `callers`, `callees`, `unresolved_calls`,
            `cyclomatic` and `loc` (None for what has no metrics).
    """
    out = []
    for r in rows:
        dotted = full_name(r["kind"], r["module"], r["qualname"])
        out.append(
            SymbolIndexRow(
                goid=r["goid"], urn=r["urn"], kind=r["kind"], module=r["module"], qualname=r["qualname"],
                name=r["name"], full_name=dotted, path=r["path"], start_line=r["start_line"],
                end_line=r["end_line"], parent_goid=r["parent_goid"],
                is_test=is_test_function(r["kind"], r["name"], r["path"]),
                callers=int(r["callers"] or 0), callees=int(r["callees"] or 0),
                unresolved_calls=int(r["unresolved_calls"] or 0), cyclomatic=r["cyclomatic"], loc=r["loc"],
                name_lower=r["name"].lower(), qualname_lower=r["qualname"].lower(), full_name_lower=dotted.lower(),
            )
        )
    out.sort(key=lambda s: s.goid)
    return out
