"""The types the type checker gives a definition, read from its hover signature.

pyrefly's hover text for a function is `name: def name[T: bound](params) -> Return: ...`, the
return type inferred where the code has no annotation; its types nest brackets and arrows of
their own (`(...) -> Any` is a callable, `[T](T) -> T` a generic one), so the return type is
what follows the `->` after the bracket that closes the parameter list, found by counting
brackets (outside string literals), never by a pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = frozenset(_OPEN.values())
_TAIL = ": ..."
_SPECIAL = re.compile(r"""[()\[\]{}'"\\]""")


# (GOID, SCIP symbol, hover signature) of every function and method the crosswalk names
DEFINITION_SIGNATURES_SQL = """
    SELECT x.goid, x.symbol, s.signature
    FROM core.goid_crosswalk x
    JOIN core.goids g ON g.goid = x.goid AND g.kind IN ('function', 'method')
    JOIN core.scip_symbols s ON s.symbol = x.symbol AND s.def_path = x.path
    WHERE s.signature IS NOT NULL
    ORDER BY x.goid
"""


@dataclass(frozen=True, slots=True)
class DefinitionType:
    """One row of analytics.definition_types: what the checker says a function or method returns."""

    goid: str
    symbol: str
    signature: str
    return_type: str | None


def return_type(signature: str | None) -> str | None:
    """The return type of a `def` hover signature (None: not a function's, or unreadable)."""
    if not signature:
        return None
    start = signature.find("def ")
    if start < 0:
        return None
    at = _skip_name(signature, start + 4)
    if at < len(signature) and signature[at] == "[":  # type parameters
        at = _matching(signature, at)
        if at < 0:
            return None
        at += 1
    if at >= len(signature) or signature[at] != "(":
        return None
    end = _matching(signature, at)
    if end < 0:
        return None
    rest = signature[end + 1 :].lstrip()
    if not rest.startswith("->"):
        return None
    found = rest[2:].strip()
    if found.endswith(_TAIL):
        found = found[: -len(_TAIL)].rstrip()
    return " ".join(found.split()) or None


def definition_types(rows: Iterable[tuple[str, str, str | None]]) -> list[DefinitionType]:
    """Per (GOID, SCIP symbol, hover signature) of a function or method, its return type."""
    return [DefinitionType(goid, symbol, sig, return_type(sig)) for goid, symbol, sig in rows if sig]


def _skip_name(text: str, at: int) -> int:
    while at < len(text) and (text[at].isalnum() or text[at] == "_"):
        at += 1
    return at


def _matching(text: str, at: int) -> int:
    """The index of the bracket closing the one at `at` (-1: none), strings skipped."""
    stack: list[str] = []
    quote = ""
    escaped = -1
    for m in _SPECIAL.finditer(text, at):
        ch, i = m.group(), m.start()
        if quote:
            if ch == "\\" and escaped != i:
                escaped = i + 1  # the next character is escaped
            elif ch == quote and escaped != i:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
        elif ch in _OPEN:
            stack.append(_OPEN[ch])
        elif ch in _CLOSE:
            if not stack or stack.pop() != ch:
                return -1
            if not stack:
                return i
    return -1
