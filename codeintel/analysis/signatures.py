"""The types the type checker gives a definition, read from its hover signature.

pyrefly's hover text for a function is `name: def name[T: bound](params) -> Return: ...`, the
return type inferred where the code has no annotation; its types nest brackets and arrows of
their own (`(...) -> Any` is a callable, `[T](T) -> T` a generic one), so the return type is
what follows the `->` after the bracket that closes the parameter list, found by counting
brackets (outside string literals), never by a pattern.
"""

from __future__ import annotations

import re

import pyarrow as pa

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = frozenset(_OPEN.values())
_TAIL = ": ..."
_SPECIAL = re.compile(r"""[()\[\]{}'"\\]""")
_NAME = re.compile(r"\w*")  # `\w`: what `str.isalnum()` takes, and `_`


# (GOID, SCIP symbol, hover signature) of every function and method the crosswalk names
DEFINITION_SIGNATURES_SQL = """
    SELECT x.goid, x.symbol, s.signature
    FROM core.goid_crosswalk x
    JOIN core.goids g ON g.goid = x.goid AND g.kind IN ('function', 'method')
    JOIN core.scip_symbols s ON s.symbol = x.symbol AND s.def_path = x.path
    WHERE s.signature <> ''
    ORDER BY x.goid
"""


def return_type(signature: str | None) -> str | None:
    """The return type of a `def` hover signature (None: not a function's, or unreadable)."""
    if not signature:
        return None
    start = signature.find("def ")
    if start < 0:
        return None
    name = _NAME.match(signature, start + 4)
    at = name.end() if name else start + 4
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


def definition_types(signatures: pa.Table) -> pa.Table:
    """The rows of analytics.definition_types: `signatures` (DEFINITION_SIGNATURES_SQL's) with
    each one's return type."""
    found = [return_type(signature) for signature in signatures.column("signature").to_pylist()]
    return signatures.append_column("return_type", pa.array(found, pa.string()))


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
