"""The GOID crosswalk: which SCIP symbol names each GOID.

A GOID and a SCIP symbol name the same definition when they agree on the file, the kind and the
qualified name (never on lines: an edit elsewhere moves lines, and both ids ignore them).  The
SCIP symbol's qualified name is its descriptors after the module (`App#route().decorator().` ->
`App.route.decorator`), the GOID's is core.goids' qualname; a module matches its file.  A
definition repeated under one name (a property and its setter, conditional definitions: GOID
ordinals 0, 1, ...) is one SCIP symbol: every ordinal maps to it.  Where the kinds disagree (a
decorated function the checker sees as an attribute), a definition still matches on file and
qualified name alone when that is unambiguous (`match` = 'name').  Where several symbols fit one
key, the least (by code point) wins.

The crosswalk is one SQL query over core.goids and the repository symbols of core.scip_symbols
(the ones stored for other files and the ones just written), run inside scip_ingest's write, so
no GOID or symbol becomes a Python object.
"""

from __future__ import annotations

from enum import StrEnum

from codeintel.analysis.goids import overload_sql


class CrosswalkMatch(StrEnum):
    QUALNAME = "qualname"  # path + kind + qualified name
    NAME = "name"  # path + qualified name, the kinds differ (one candidate only)
    PATH = "path"  # a module: its file (the checker named the module otherwise)


DEFINITION_KINDS = ("module", "class", "function", "method", "attribute", "variable")


def crosswalk_sql(goids: str, symbols: str) -> str:
    """The query giving the crosswalk's rows (goid, symbol, path, kind, qualname, match), sorted:
    one per GOID that a repository symbol of `symbols` names."""
    kinds = ", ".join(f"'{k}'" for k in DEFINITION_KINDS)
    return f"""
        WITH defs AS (
            SELECT symbol, def_path AS path, kind, qualified_name FROM {symbols}
            WHERE def_path IS NOT NULL AND kind IN ({kinds})
        ),
        exact AS (SELECT path, kind, qualified_name, min(symbol) AS symbol FROM defs GROUP BY ALL),
        modules AS (SELECT path, min(symbol) AS symbol FROM defs WHERE kind = 'module' GROUP BY ALL),
        by_name AS (
            SELECT path, qualified_name, min(symbol) AS symbol, count(*) AS n FROM defs
            WHERE kind <> 'module' GROUP BY ALL
        ),
        matched AS (
            SELECT g.goid, g.path, g.kind, g.qualname,
                   CASE WHEN e.symbol IS NOT NULL THEN e.symbol
                        WHEN g.kind = 'module' THEN m.symbol
                        WHEN b.n = 1 THEN b.symbol END AS symbol,
                   CASE WHEN e.symbol IS NOT NULL THEN '{CrosswalkMatch.QUALNAME}'
                        WHEN g.kind = 'module' THEN '{CrosswalkMatch.PATH}'
                        ELSE '{CrosswalkMatch.NAME}' END AS match
            FROM {goids} g
            LEFT JOIN exact e ON e.path = g.path AND e.kind = g.kind AND e.qualified_name = g.qualname
            LEFT JOIN modules m ON g.kind = 'module' AND m.path = g.path
            LEFT JOIN by_name b ON g.kind <> 'module' AND b.path = g.path AND b.qualified_name = g.qualname
        )
        SELECT goid, symbol, path, kind, qualname, match FROM matched WHERE symbol IS NOT NULL ORDER BY ALL"""


def symbol_goids_sql(goids: str, crosswalk: str, definitions: str) -> str:
    """The query giving, per (symbol, path) of `crosswalk`, the GOID it names where several
    definitions share the symbol: the one Python keeps, as the call graph names a callee
    (`call_edges.GoidIndex`): one that runs (not only under a type checker: the stub in
    `if TYPE_CHECKING:` has its runtime twin in the else branch; `definitions` holds the flag,
    core.ast_nodes' `type_checking`), no `typing.overload` stub, then the highest ordinal (a
    redefinition replaces the first), then the least GOID."""
    return f"""
        SELECT c.symbol, c.path AS def_path,
               arg_min(c.goid, (coalesce(g.type_checking, false), coalesce(g.overload, false),
                                -coalesce(g.ordinal, 0), c.goid)) AS goid
        FROM {crosswalk} c LEFT JOIN (
            SELECT g.goid, any_value(g.ordinal) AS ordinal, bool_or(coalesce(d.type_checking, false)) AS type_checking,
                   bool_or(coalesce({overload_sql("d")}, false)) AS overload
            FROM {goids} g LEFT JOIN {definitions} d USING (path, qualname, ordinal)
            GROUP BY g.goid
        ) g USING (goid)
        GROUP BY c.symbol, c.path"""
