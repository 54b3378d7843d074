"""Uses of repository symbols: where each module, class, function, method, attribute and global
is read, written, called, imported, subclassed, annotated with or decorated with.

Pure SQL text over the type checker's occurrences (`core.scip_occurrences`, what each name
refers to) and the syntax's name sites (`core.name_sites`, what the name does there); the
symbol_uses step runs it in its write transaction.  Rules:

- A use is an occurrence that is no definition, of a symbol defined in the repository (not an
  external, a local variable, a parameter or a type parameter), in a file whose index and name
  sites are of its current content (`FRESH_PATHS_SQL`).
- `def_goid` is the GOID of the symbol itself (a module, class, function or method: `def_kind`
  is its kind) or, for an attribute or a global variable (which have no GOID), of the class or
  module it belongs to (`def_kind` 'attribute' or 'variable'): `Config#debug.` belongs to
  class `Config`, `` `pkg.settings`/DEBUG. `` to module `pkg.settings`.
- `use_kind` comes from the role of the first name site inside the occurrence (`UseKind`; a
  module in a class's bases is read, not subclassed); where there is none, from the
  occurrence's SCIP roles (write, import), else 'reference'.  A keyword argument is a use of
  an attribute (a dataclass field); one the checker sends to a function (its `**kwargs`) is none.
- `user_goid` is the innermost definition holding the use (the occurrence's enclosing GOID;
  NULL in a file without GOIDs).
- `graph.symbol_use_edges` aggregates the uses per (user, definition) pair with counts by kind.
"""

from __future__ import annotations

from enum import StrEnum


class UseKind(StrEnum):
    """What a use does with the symbol (from the role of its name site)."""

    CALL = "call"
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    IMPORT = "import"
    ANNOTATION = "annotation"
    DECORATOR = "decorator"
    SUBCLASS = "subclass"
    KEYWORD_ARGUMENT = "keyword_argument"
    REFERENCE = "reference"  # no name site at the occurrence (and no SCIP role that says more)


# name site role -> use kind (role 'definition' is no use: the name is defined there)
ROLE_USE_KINDS: dict[str, UseKind] = {
    "call": UseKind.CALL,
    "read": UseKind.READ,
    "write": UseKind.WRITE,
    "delete": UseKind.DELETE,
    "import": UseKind.IMPORT,
    "annotation": UseKind.ANNOTATION,
    "decorator": UseKind.DECORATOR,
    "base_class": UseKind.SUBCLASS,
    "keyword_argument": UseKind.KEYWORD_ARGUMENT,
}

# SCIP SymbolRole bits
SCIP_ROLE_IMPORT = 2
SCIP_ROLE_WRITE = 4

# the last descriptor of a SCIP symbol: a term `x.`, type `C#`, meta `m:` or method `f().`
# (names plain or in backquotes); removing it leaves the symbol's owner (`pkg/`: the module `pkg/__init__:`)
_LAST_DESCRIPTOR = r"(?:[A-Za-z0-9_$+-]+|`(?:[^`]|``)*`)(?:[.#:]|\([^)]*\)\.)$"

# SCIP symbol -> GOID: the one scip_ingest gave it (`crosswalk.symbol_goids_sql`: where several
# definitions share a symbol, the one Python keeps, as the call graph names it), its first file's
# (where several files define it, `TWIN_GOIDS_SQL` names each using file's own)
SYMBOL_GOIDS_SQL = """
    SELECT s.symbol, arg_min(s.goid, s.def_path) AS goid, arg_min(g.kind, s.def_path) AS kind
    FROM core.scip_symbols s JOIN core.goids g ON g.goid = s.goid
    GROUP BY s.symbol
"""

# where files share a module name (each service of a monorepo with its own `app` package), they
# share its symbols.  Each such file's import root is its path before its module's path (`services/a/`
# for `flask.app` at `services/a/flask/app.py`, as the checker names it)
_TWINS_SQL = """
    SELECT s.symbol, s.def_path, s.goid,
           left(s.def_path, greatest(instr(s.def_path, replace(s.module, '.', '/')) - 1, 0)) AS root
    FROM core.scip_symbols s JOIN core.goids g ON g.goid = s.goid
    WHERE s.symbol IN (
        SELECT symbol FROM core.scip_symbols WHERE goid IS NOT NULL GROUP BY symbol HAVING min(goid) <> max(goid)
    )
"""


def twin_goids_sql(users: str) -> str:
    """Per (path, symbol) of the query `users` whose symbol several files define: the GOID of the
    path's own file's definition, else of the one under the longest import root holding the path,
    else of the first file's (`SYMBOL_GOIDS_SQL`'s)."""
    return f"""
    WITH twins AS ({_TWINS_SQL}),
    users AS (SELECT DISTINCT u.path, u.symbol FROM ({users}) u SEMI JOIN twins t ON t.symbol = u.symbol)
    SELECT u.path, u.symbol,
           arg_min(t.goid, (t.def_path <> u.path, NOT starts_with(u.path, t.root), -length(t.root), t.def_path)) AS goid
    FROM users u JOIN twins t ON t.symbol = u.symbol
    GROUP BY u.path, u.symbol
    """


TWIN_GOIDS_SQL = twin_goids_sql("SELECT path, symbol FROM core.scip_occurrences WHERE NOT is_definition")

# symbols defined in the repository that a use can refer to: not locals, parameters or type parameters
REPO_SYMBOLS_SQL = r"""
    SELECT symbol, min(display_name) AS display_name
    FROM core.scip_symbols
    WHERE NOT coalesce(is_external, false) AND def_path IS NOT NULL
          AND NOT starts_with(symbol, 'local ') AND NOT regexp_matches(symbol, '[)\]]$')
    GROUP BY symbol
"""

# files whose SCIP index and name sites are of their current content: where scip_ingest kept
# an older index (the indexer was missing this time), positions of an edited file could name
# the wrong symbols, so only these files' occurrences count
FRESH_PATHS_SQL = """
    SELECT f.path FROM core.file_state f
    JOIN meta.step_file_state s ON s.step = 'scip_ingest' AND s.path = f.path AND s.hash = f.hash
    JOIN meta.step_file_state c ON c.step = 'cst_ingest' AND c.path = f.path AND c.hash = f.hash
"""

_KIND_CASE = "CASE role " + " ".join(f"WHEN '{role}' THEN '{kind}'" for role, kind in ROLE_USE_KINDS.items()) + (
    f" ELSE CASE WHEN roles & {SCIP_ROLE_WRITE} <> 0 THEN '{UseKind.WRITE}'"
    f" WHEN roles & {SCIP_ROLE_IMPORT} <> 0 THEN '{UseKind.IMPORT}' ELSE '{UseKind.REFERENCE}' END END"
)


def symbol_uses_sql() -> str:
    """The rows of graph.symbol_uses (ordered by path, line, col, symbol)."""
    return f"""
    WITH goid_of AS ({SYMBOL_GOIDS_SQL}),
    repo AS ({REPO_SYMBOLS_SQL}),
    fresh AS ({FRESH_PATHS_SQL}),
    defs AS (  -- per repository symbol: its GOID, or the GOID of the class or module it belongs to
        SELECT r.symbol, r.display_name, coalesce(d.goid, w.goid) AS def_goid,
               CASE WHEN d.goid IS NOT NULL THEN d.kind WHEN w.kind = 'class' THEN 'attribute' ELSE 'variable' END AS def_kind
        FROM repo r
        LEFT JOIN goid_of d ON d.symbol = r.symbol
        LEFT JOIN goid_of w ON d.goid IS NULL
              AND w.symbol = {_owner_symbol("r.symbol")}
        WHERE coalesce(d.goid, w.goid) IS NOT NULL
    ),
    used AS (
        SELECT o.path, o.line, o.col, o.end_line, o.end_col, o.symbol, o.roles, o.enclosing_goid,
               f.display_name, f.def_goid, f.def_kind
        FROM core.scip_occurrences o
        JOIN defs f ON f.symbol = o.symbol
        JOIN fresh fr ON fr.path = o.path  -- a join: `IN (SELECT ...)` here makes the ASOF join below slow
        WHERE NOT o.is_definition
    ),
    at_start AS (  -- the name site where the occurrence starts (a hash join: nearly every use has one)
        SELECT u.*, n.name AS site_name, n.role, n.qualifier, n.name IS NOT NULL AS found
        FROM used u
        LEFT JOIN core.name_sites n ON n.path = u.path AND n.line = u.line AND n.col = u.col AND n.end_col > n.col
    ),
    rest AS (SELECT * EXCLUDE (found, site_name, role, qualifier) FROM at_start WHERE NOT found),
    sited AS (  -- else the first name site inside the occurrence (`.app` of `from .app import x` starts
                -- at the dot), by an ASOF join over the name sites of those lines alone (one over all
                -- of them sorts them all: sqlalchemy's 0.9 M, 1.1 s)
        SELECT * EXCLUDE (found) FROM at_start WHERE found
        UNION ALL
        SELECT u.*,
               CASE WHEN n.col < u.end_col OR u.end_line > u.line THEN n.name END AS site_name,
               CASE WHEN n.col < u.end_col OR u.end_line > u.line THEN n.role END AS role,
               CASE WHEN n.col < u.end_col OR u.end_line > u.line THEN n.qualifier END AS qualifier
        FROM rest u
        ASOF LEFT JOIN (
            SELECT n.* FROM core.name_sites n SEMI JOIN rest r ON r.path = n.path AND r.line = n.line
        ) n ON n.path = u.path AND n.line = u.line AND n.col >= u.col
    )
    SELECT path, line, col, end_line, end_col, coalesce(site_name, display_name) AS name,
           CASE WHEN role = 'base_class' AND def_kind = 'module' THEN '{UseKind.READ}' ELSE {_KIND_CASE} END AS use_kind,
           symbol, def_goid, def_kind, enclosing_goid AS user_goid, qualifier
    FROM sited
    WHERE role IS DISTINCT FROM 'definition'
          -- `f(k=v)` names f's parameter k; where f takes **kwargs the checker names f itself: no use
          AND NOT (role = 'keyword_argument' AND def_kind NOT IN ('attribute', 'variable'))
    ORDER BY path, line, col, symbol
    """


def _owner_symbol(symbol: str) -> str:
    """SQL: the symbol of the class or module SCIP symbol `symbol` (an SQL expression) belongs to
    (`pkg/`, a package, is its `pkg/__init__:`)."""
    owner = f"regexp_replace({symbol}, '{_LAST_DESCRIPTOR}', '')"
    return f"CASE WHEN ends_with({owner}, '/') THEN {owner} || '__init__:' ELSE {owner} END"


def _goid_symbol(use: str) -> str:
    """SQL: the symbol whose GOID a use (a row of graph.symbol_uses, alias `use`) names: its own,
    or (an attribute or a global) its class's or module's, as `symbol_uses_sql` finds it."""
    owner = _owner_symbol(f"{use}.symbol")
    return f"CASE WHEN {use}.def_kind IN ('attribute', 'variable') THEN {owner} ELSE {use}.symbol END"


# graph.symbol_uses once written: a use of a symbol several files define (or of a member of one)
# names the definition nearest it (`twin_goids_sql`; an update of those few rows costs 0.03 s on
# sqlalchemy, a join in `symbol_uses_sql` over every occurrence 0.13 s)
OWN_FILE_USES_SQL = f"""
    UPDATE graph.symbol_uses u SET def_goid = t.goid
    FROM ({twin_goids_sql(f"SELECT v.path, {_goid_symbol('v')} AS symbol FROM graph.symbol_uses v")}) t
    WHERE u.path = t.path AND {_goid_symbol("u")} = t.symbol AND u.def_goid IS DISTINCT FROM t.goid
"""


def symbol_uses_writes() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """What the symbol_uses step rewrites, in order: per table, the query giving its rows and the
    statements that then amend them (the uses first: the edges count them once amended)."""
    return (
        ("graph.symbol_uses", symbol_uses_sql(), (OWN_FILE_USES_SQL,)),
        ("graph.symbol_use_edges", symbol_use_edges_sql(), ()),
    )


_EDGE_COUNTS = {
    "calls": UseKind.CALL,
    "reads": UseKind.READ,
    "writes": UseKind.WRITE,
    "imports": UseKind.IMPORT,
    "annotations": UseKind.ANNOTATION,
    "subclasses": UseKind.SUBCLASS,
    "decorators": UseKind.DECORATOR,
}


def symbol_use_edges_sql() -> str:
    """The rows of graph.symbol_use_edges: graph.symbol_uses per (user, definition) pair.

    Two plain aggregations, per symbol of a pair and then per pair, with the pair's kinds as a
    bit set: `list(DISTINCT ...)` and `count(DISTINCT ...)` over the uses made DuckDB aggregate
    them three times and join the results (sqlalchemy: 0.35-0.42 s against 0.16 s)."""
    kinds = sorted(kind.value for kind in UseKind)
    bit = "CASE use_kind " + " ".join(f"WHEN '{kind}' THEN {1 << i}" for i, kind in enumerate(kinds)) + " END"
    per_symbol = ", ".join(f"count(*) FILTER (WHERE use_kind = '{kind}') AS {name}" for name, kind in _EDGE_COUNTS.items())
    per_pair = ", ".join(f"sum({name})::BIGINT AS {name}" for name in _EDGE_COUNTS)
    return f"""
    WITH per_symbol AS (
        SELECT user_goid, def_goid, count(*) AS uses, bit_or({bit}) AS kinds, {per_symbol},
               count(*) FILTER (WHERE def_kind IN ('attribute', 'variable')) AS member_uses
        FROM graph.symbol_uses
        WHERE user_goid IS NOT NULL
        GROUP BY user_goid, def_goid, symbol
    ),
    per_pair AS (
        SELECT user_goid, def_goid, sum(uses)::BIGINT AS uses, bit_or(kinds) AS kinds, {per_pair},
               sum(member_uses)::BIGINT AS member_uses, count(*) AS symbols
        FROM per_symbol
        GROUP BY user_goid, def_goid
    )
    SELECT user_goid, def_goid, uses, list_filter({kinds}, lambda k, i: (kinds >> (i - 1)) & 1 = 1) AS kinds,
           {", ".join(_EDGE_COUNTS)}, member_uses, symbols
    FROM per_pair
    ORDER BY user_goid, def_goid
    """
