"""An edit that leaves the call graph's program as it was: no solve, only positions and GOIDs.

`same_program` tells whether every changed file gave the call facts stored for it, up to
positions, and if so which sites moved; `goid_fixes` finds the stored edges whose caller or
callee GOID is no longer the one the definitions give (a definition moved).  The call-graph step
then updates the stored edges instead of solving again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from codeintel.analysis.call_edges import GoidIndex, GoidKey
from codeintel.analysis.callgraph.model import facts_without_positions
from codeintel.analysis.goids import overload_sql
from codeintel.ingestion.filework import FileOutput
from codeintel.storage.catalog import Table, spec_of
from codeintel.storage.gateway import StorageGateway

Moves = list[tuple[str, int, int, int, int]]  # path, old line, old column, new line, new column

MOVES_COLUMNS = ["path", "old_line", "old_col", "line", "col"]


def same_program(gateway: StorageGateway, outputs: Sequence[FileOutput]) -> Moves | None:
    """Whether every changed file gave the call facts stored for it, up to positions; if so, the
    sites that moved (else None: the solver has a new program).

    Edits of comments, docstrings, blank lines, or of code without calls, names or constants
    do: the program the solver sees is then the one it solved last time.  Positions must map one
    to one (two sites merging into one position would merge their edges): else None.
    """
    spec = spec_of(Table.CALL_FACTS)
    found = gateway.query(
        f"SELECT {spec.path_column}, module, facts FROM {Table.CALL_FACTS} WHERE list_contains(?, {spec.path_column})",
        [sorted(o.path for o in outputs)],
    )
    stored = {r[spec.path_column]: (r["module"], r["facts"]) for r in found.to_pylist()}
    moves: Moves = []
    for out in outputs:
        rows = out.rows.get(Table.CALL_FACTS, [])
        before = stored.get(out.path)
        if not rows or before is None:
            if rows or before is not None:
                return None  # facts appeared or disappeared (a file that now parses, or no longer does)
            continue
        ((_, module, text),) = rows
        if module != before[0]:
            return None
        new_doc, new_at = facts_without_positions(text)
        old_doc, old_at = facts_without_positions(before[1])
        if new_doc != old_doc:
            return None
        mapping: dict[tuple[int, int], tuple[int, int]] = {}
        for old, new in zip(old_at, new_at, strict=True):
            if mapping.setdefault(old, new) != new:
                return None  # one old position is now two
        if len(set(mapping.values())) != len(mapping):
            return None  # two old positions are now one
        moves.extend((out.path, *old, *new) for old, new in sorted(mapping.items()) if old != new)
    return moves


def moves_table(moves: Moves) -> pa.Table:
    return pa.table(list(zip(*moves, strict=True)), names=MOVES_COLUMNS)


@dataclass(frozen=True)
class GoidFixes:
    """Stored edges' callers and callees whose GOID is no longer the definitions' one: rows of
    (path, caller, caller_module, old_goid, caller_goid) and (callee, callee_goid) with the new
    GOIDs; and `sites`: (path, line, col, caller, caller_goid) of sites (at their positions before
    the moves) whose caller's name has several definitions in the file, where the site's new line
    is in another of them than the stored one."""

    callers: pa.Table
    callees: pa.Table
    sites: pa.Table | None = None

    def __bool__(self) -> bool:
        return bool(self.callers.num_rows or self.callees.num_rows or (self.sites is not None and self.sites.num_rows))


def read_goid_keys(gateway: StorageGateway) -> list[GoidKey]:
    found = gateway.query(
        f"""SELECT g.goid, g.path, g.module, g.qualname, g.kind, g.ordinal,
                   coalesce(a.type_checking, false) AS type_checking, g.start_line, g.end_line,
                   coalesce({overload_sql("a")}, false) AS overload
            FROM {Table.GOIDS} g LEFT JOIN {Table.AST_NODES} a USING (path, qualname, ordinal)"""
    )
    return [GoidKey(**k) for k in found.to_pylist()]


def goid_fixes(
    gateway: StorageGateway, keys: list[GoidKey], moves: Sequence[tuple[str, int, int, int, int]] = ()
) -> GoidFixes:
    """GOIDs looked up again per distinct caller and callee of the stored edges; a caller whose
    name has several definitions in its file (a getter and its setter) per site, at the site's
    line after `moves`."""
    index = GoidIndex(keys)
    callers = gateway.query(f"SELECT DISTINCT path, caller, caller_module, caller_goid FROM {Table.CALL_EDGES}")
    caller_fix = []
    twins: list[dict[str, Any]] = []
    for r in callers.to_pylist():
        defined = index.callers(r["path"], r["caller"], r["caller_module"])
        if defined.spans:
            twins.append(r)
        elif r["caller_goid"] != defined.first:
            caller_fix.append({**r, "old_goid": r["caller_goid"], "caller_goid": defined.first})
    site_fix = []
    if twins:
        moved = {(path, line, col): new_line for path, line, col, new_line, _ in moves}
        for r in _sites_of(gateway, twins):
            line = moved.get((r["path"], r["line"], r["col"]), r["line"])
            found = index.callers(r["path"], r["caller"], r["caller_module"]).at(line)
            if found != r["caller_goid"]:
                site_fix.append({**r, "caller_goid": found})
    callees = gateway.query(f"SELECT DISTINCT callee, callee_goid FROM {Table.CALL_EDGES} WHERE callee IS NOT NULL")
    # a GOID that still names its callee stays (of two files with one module name, the solver
    # chose the file; the name alone would give the first)
    callee_fix = [
        {**r, "callee_goid": found}
        for r in callees.to_pylist()
        if index.name_of.get(r["callee_goid"]) != r["callee"]
        and (found := index.callee(r["callee"])) != r["callee_goid"]
    ]
    return GoidFixes(
        pa.Table.from_pylist(caller_fix, callers.schema.append(pa.field("old_goid", pa.string()))),
        pa.Table.from_pylist(callee_fix, callees.schema),
        pa.Table.from_pylist(site_fix, _SITE_SCHEMA),
    )


_SITE_SCHEMA = pa.schema(
    [("path", pa.string()), ("line", pa.int32()), ("col", pa.int32()), ("caller", pa.string()),
     ("caller_module", pa.string()), ("caller_goid", pa.string())]
)  # fmt: skip


def _sites_of(gateway: StorageGateway, callers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct sites (path, line, col, caller, caller_module, caller_goid) of the stored
    edges of `callers` (rows of path, caller, caller_module)."""
    keys = sorted({"\0".join((r["path"], r["caller"], r["caller_module"])) for r in callers})
    return gateway.query(
        f"""SELECT DISTINCT path, line, col, caller, caller_module, caller_goid FROM {Table.CALL_EDGES}
            WHERE list_contains(?, concat_ws(chr(0), path, caller, caller_module))""",
        [keys],
    ).to_pylist()
