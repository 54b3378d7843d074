"""Finding symbols by what an agent types: a dotted name, part of one, a GOID, a URN or path:line.

`resolve` turns one reference into one symbol, or into ranked candidates when it is ambiguous,
or into the nearest names when nothing matches (misses are actionable).  `search` is
`find_symbol`: exact, prefix or fuzzy matches over every module, class, function and method of
`docs.symbols`, ranked by how well the name matches, then by caller count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codeintel.serving.snapshot import Query

NAME, QUALNAME = 1, 2  # see codeintel.serving.index (which imports this module)

SYMBOL_COLUMNS = (
    "s.goid, s.kind, s.full_name, s.path, s.start_line, s.end_line, s.name, s.module, s.qualname, s.is_test, s.callers"
)
KIND_ORDER = "CASE s.kind WHEN 'function' THEN 0 WHEN 'method' THEN 1 WHEN 'class' THEN 2 ELSE 3 END"
KINDS = ("function", "method", "class", "module")
_GOID = re.compile(r"[0-9a-f]{8,32}")
_PATH_LINE = re.compile(r"(?P<path>.+\.pyi?):(?P<line>\d+)")


@dataclass(frozen=True, slots=True)
class Symbol:
    """One row of docs.symbols."""

    goid: str
    kind: str
    full_name: str
    path: str
    start_line: int
    end_line: int
    name: str
    module: str
    qualname: str
    is_test: bool
    callers: int

    @property
    def at(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    def describe(self) -> str:
        return f"{self.kind} {self.full_name} {self.at}"


@dataclass
class Lookup:
    """What a reference resolved to: one symbol, ranked candidates, or nearest names."""

    text: str
    symbol: Symbol | None = None
    candidates: list[Symbol] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    others: list[Symbol] = field(default_factory=list)  # other definitions of the same dotted name

    @property
    def goids(self) -> list[str]:
        """The symbol's GOID and those of the other definitions of its name."""
        return [s.goid for s in ([self.symbol] if self.symbol else []) + self.others]

    def problem(self) -> str:
        """Why no single symbol was found, and what to pass instead (for a tool's answer)."""
        if self.candidates:
            listed = "; ".join(f"{c.full_name} ({c.kind} {c.at}, goid {c.goid[:12]})" for c in self.candidates[:8])
            more = f" (+{len(self.candidates) - 8} more)" if len(self.candidates) > 8 else ""
            return f"{self.text!r} is ambiguous: {len(self.candidates)} symbols match, most called first: {listed}{more}; pass a full name or a goid"
        near = ", ".join(self.suggestions) if self.suggestions else "none"
        return f"no symbol {self.text!r} in this snapshot; nearest names: {near} (find_symbol searches by prefix or fuzzily)"


def _symbols(rows: Sequence[tuple[Any, ...]]) -> list[Symbol]:
    return [Symbol(*r[:11]) for r in rows]


def resolve(q: Query, text: str) -> Lookup:
    """One symbol for `text`: a GOID (or a unique prefix of 8+ hex digits), a URN, `path:line`
    (the innermost definition there), a full dotted name, a qualified name, a dotted suffix, or
    a bare name."""
    text = text.strip()
    lookup = Lookup(text)
    if not text:
        return lookup
    index = q.index
    if _GOID.fullmatch(text):
        found = index.with_prefix(text, 20)
        if found:
            return _pick(q, lookup, found)
    if text.startswith("goid:"):
        found = _symbols(q.rows(f"SELECT {SYMBOL_COLUMNS} FROM docs.symbols s WHERE s.urn = ?", [text]))
        if found:
            return _pick(q, lookup, found)
    at = _PATH_LINE.fullmatch(text)
    if at:
        found = _symbols(
            q.rows(
                f"""SELECT {SYMBOL_COLUMNS} FROM docs.symbols s
                    WHERE (s.path = $path OR ends_with(s.path, '/' || $path)) AND s.start_line <= $line AND s.end_line >= $line
                    ORDER BY s.path = $path DESC, s.end_line - s.start_line, s.start_line DESC,
                             -- only a module shares its span with a definition in it (a file of one
                             -- function, of a class on one line: a compound statement takes a line of
                             -- its own): the definition
                             s.kind = 'module', s.goid LIMIT 1""",
                {"path": at["path"], "line": int(at["line"])},
            )
        )
        if found:
            lookup.symbol = found[0]
            return lookup
    # a full dotted name, a qualified name, a dotted suffix, a bare name: the first that matches
    for matched in (index.by_full_name.get(text), index.by_qualname.get(text), index.ending_with(text), index.by_name.get(text)):
        if matched:
            return _pick(q, lookup, list(matched))
    lookup.suggestions = nearest_names(q, text)
    return lookup


def _pick(q: Query, lookup: Lookup, found: list[Symbol]) -> Lookup:
    """One symbol, or the ranked candidates.

    Definitions that share one dotted name (typing overloads, a property's getter and setter, a
    redefinition) are one symbol to a reader: `symbol` is the last definition that is not an
    `@overload` (the one Python keeps, with the body), `others` the rest; callers may have been
    resolved to any of them, so walks start from all (`Lookup.goids`).
    """
    ranked = rank(found)
    if len(ranked) == 1:
        lookup.symbol = ranked[0]
        return lookup
    if len({s.full_name for s in ranked}) > 1:
        lookup.candidates = ranked
        return lookup
    overloads = q.index.overloads
    best = max(ranked, key=lambda s: (s.goid not in overloads, s.start_line, s.goid))
    lookup.symbol = best
    lookup.others = sorted((s for s in ranked if s is not best), key=lambda s: (s.start_line, s.goid))
    return lookup


def rank(symbols: list[Symbol]) -> list[Symbol]:
    """Most called first, then functions before methods, classes and modules, then by name."""
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(symbols, key=lambda s: (-s.callers, order.get(s.kind, 9), s.full_name, s.goid))


def nearest_names(q: Query, text: str, n: int = 5) -> list[str]:
    """The `n` names closest to `text` (Jaro-Winkler on the bare name and on the dotted name)."""
    name = text.rsplit(".", 1)[-1].lower()
    rows = q.rows(
        """SELECT full_name, max(greatest(jaro_winkler_similarity(name_lower, $n),
                                          jaro_winkler_similarity(full_name_lower, $t))) AS score
           FROM docs.symbols WHERE kind <> 'module' OR contains($t, '.')
           GROUP BY full_name ORDER BY score DESC, length(full_name), full_name LIMIT $k""",
        {"n": name, "t": text.lower(), "k": n},
    )
    return [r[0] for r in rows if r[1] > 0.6]


# -------------------------------------------------------------------------------- find_symbol

MATCHES = ("auto", "exact", "prefix", "fuzzy")
_CONDITIONS = {
    "exact": ("s.name = $t OR s.qualname = $t OR s.full_name = $t",
              "CASE WHEN s.full_name = $t THEN 0 WHEN s.qualname = $t THEN 1 ELSE 2 END"),
    "prefix": ("starts_with(s.name_lower, $l) OR starts_with(s.qualname_lower, $l) OR starts_with(s.full_name_lower, $l)",
               "CASE WHEN starts_with(s.qualname_lower, $l) THEN 0 WHEN starts_with(s.name_lower, $l) THEN 1 ELSE 2 END"),
    "fuzzy": ("jaro_winkler_similarity(s.name_lower, $b) >= 0.8 OR contains(s.full_name_lower, $l)",
              "round(1 - greatest(jaro_winkler_similarity(s.name_lower, $b), CASE WHEN contains(s.full_name_lower, $l) THEN 0.9 ELSE 0 END), 4)"),
}  # fmt: skip


@dataclass
class SearchResult:
    match: str  # the mode that found these
    total: int
    rows: list[tuple[Any, ...]]  # kind, full_name, at, cc, callers, goid


def search(q: Query, text: str, match: str, kind: str | None, limit: int, offset: int) -> SearchResult:
    """Symbols matching `text` (`auto`: exact, else prefix, else fuzzy), best first."""
    modes = ("exact", "prefix", "fuzzy") if match == "auto" else (match,)
    result = SearchResult(modes[-1], 0, [])
    for mode in modes:
        result = _search(q, text, mode, kind, limit, offset)
        if result.total:
            return result
    return result


def _search(q: Query, text: str, mode: str, kind: str | None, limit: int, offset: int) -> SearchResult:
    found = _search_index(q, text, mode, kind, limit, offset) if mode in ("exact", "prefix") else None
    if found is not None:
        return found
    condition, score = _CONDITIONS[mode]
    kind_sql = "AND s.kind = $kind" if kind else ""
    params: dict[str, Any] = {
        "t": text, "l": text.lower(), "b": text.rsplit(".", 1)[-1].lower(), "lim": limit, "off": offset
    }  # fmt: skip
    if kind:
        params["kind"] = kind
    used = {p for p in params if f"${p}" in condition or f"${p}" in score or p in ("lim", "off", "kind")}
    rows = q.rows(
        f"""SELECT s.kind, s.full_name, s.path || ':' || s.start_line || '-' || s.end_line, s.cyclomatic, s.callers,
                   s.goid, count(*) OVER () AS total
            FROM docs.symbols s WHERE ({condition}) {kind_sql}
            ORDER BY {score}, s.callers DESC, {KIND_ORDER}, s.full_name, s.goid
            LIMIT $lim OFFSET $off""",
        {k: v for k, v in params.items() if k in used},
    )
    total = int(rows[0][6]) if rows else _count(q, condition, kind_sql, params, used) if offset else 0
    return SearchResult(mode, total, [r[:6] for r in rows])


def _search_index(q: Query, text: str, mode: str, kind: str | None, limit: int, offset: int) -> SearchResult | None:
    """`_CONDITIONS[mode]` on the snapshot's index, ranked the same way (None: the prefixes are
    not loaded yet)."""
    index = q.index
    if mode == "exact":
        found = {s.goid: s for group in (index.by_name, index.by_qualname, index.by_full_name) for s in group.get(text, ())}
        scored = [(0 if s.full_name == text else 1 if s.qualname == text else 2, s) for s in found.values()]
    else:
        matches = index.starting_with(text.lower())
        if matches is None:
            return None
        scored = [
            (0 if fields & QUALNAME else 1 if fields & NAME else 2, s)
            for goid, fields in matches.items() if (s := index.symbols.get(goid)) is not None
        ]  # fmt: skip
    if kind:
        scored = [(score, s) for score, s in scored if s.kind == kind]
    order = {k: i for i, k in enumerate(KINDS[:3])}
    scored.sort(key=lambda t: (t[0], -t[1].callers, order.get(t[1].kind, 3), t[1].full_name, t[1].goid))
    rows = [(s.kind, s.full_name, s.at, index.facts[s.goid].cyclomatic, s.callers, s.goid) for _, s in scored[offset : offset + limit]]
    return SearchResult(mode, len(scored), rows)


def _count(q: Query, condition: str, kind_sql: str, params: dict[str, Any], used: set[str]) -> int:
    args = {k: v for k, v in params.items() if k in used and k not in ("lim", "off")}
    return int(q.scalar(f"SELECT count(*) FROM docs.symbols s WHERE ({condition}) {kind_sql}", args))
