"""SCIP symbol strings: parsed into package, module, qualified name and kind.

A SCIP symbol is `<scheme> <manager> <package> <version> <descriptor>...` (a space inside a
field is doubled; `local <id>` is a document-local symbol).  pyrefly uses scip-python's scheme:
the first descriptor is the module as a namespace (`` `flask.sansio.app`/ ``, or `flask/`), then
`Name#` (a class), `name().` (a function or method), `name.` (a term: variable, attribute),
`(name)` (a parameter), `[name]` (a type parameter) and `__init__:` (the module itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache


class SymbolKind(StrEnum):
    """What a SCIP symbol names (from its last descriptor; pyrefly leaves SCIP's own kind unset)."""

    MODULE = "module"
    CLASS = "class"
    FUNCTION = "function"
    METHOD = "method"
    ATTRIBUTE = "attribute"  # a term inside a class
    VARIABLE = "variable"  # a term anywhere else
    PARAMETER = "parameter"
    TYPE_PARAMETER = "type_parameter"
    NAMESPACE = "namespace"
    MACRO = "macro"
    LOCAL = "local"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ParsedSymbol:
    """The parts of one symbol that the tables store."""

    scheme: str
    package: str
    version: str
    module: str  # the namespace descriptor: the module's dotted name ('' for a local)
    qualified_name: str  # descriptors after the module, dotted; the module itself for a module symbol
    kind: SymbolKind
    display_name: str


_SUFFIX_KIND = {"#": SymbolKind.CLASS, ".": SymbolKind.VARIABLE, ":": SymbolKind.MODULE, "!": SymbolKind.MACRO}


@lru_cache(maxsize=1 << 12)
def parse_symbol(symbol: str) -> ParsedSymbol:
    """Parse one SCIP symbol string (never raises: malformed parts give kind `unknown`)."""
    if symbol.startswith("local "):
        return ParsedSymbol("local", "", "", "", symbol, SymbolKind.LOCAL, symbol[6:])
    if "  " in symbol:
        fields, rest = _split_fields(symbol, 4)
    else:
        *fields, rest = symbol.split(" ", 4) if symbol.count(" ") >= 4 else [*symbol.split(" "), ""]
    if len(fields) < 4:
        return ParsedSymbol("", "", "", "", symbol, SymbolKind.UNKNOWN, symbol)
    scheme, _manager, package, version = fields
    descriptors = _descriptors(rest)
    if not descriptors:
        return ParsedSymbol(scheme, _dot(package), _dot(version), "", "", SymbolKind.UNKNOWN, "")
    module = ""
    if descriptors[0][1] == "/":
        module = descriptors[0][0]
        descriptors = descriptors[1:]
    names = [name for name, _ in descriptors]
    if not descriptors:
        return ParsedSymbol(scheme, _dot(package), _dot(version), module, module, SymbolKind.NAMESPACE, module)
    name, suffix = descriptors[-1]
    parent = descriptors[-2][1] if len(descriptors) > 1 else "/"
    if suffix == ":" and len(descriptors) == 1 and name == "__init__":
        return ParsedSymbol(scheme, _dot(package), _dot(version), module, module, SymbolKind.MODULE, module)
    if suffix == "().":
        kind = SymbolKind.METHOD if parent == "#" else SymbolKind.FUNCTION
    elif suffix == "()":
        kind = SymbolKind.PARAMETER
    elif suffix == "[]":
        kind = SymbolKind.TYPE_PARAMETER
    elif suffix == "." and parent == "#":
        kind = SymbolKind.ATTRIBUTE
    else:
        kind = _SUFFIX_KIND.get(suffix, SymbolKind.UNKNOWN)
    return ParsedSymbol(scheme, _dot(package), _dot(version), module, ".".join(names), kind, name)


def _dot(field: str) -> str:
    return "" if field == "." else field


def _split_fields(symbol: str, count: int) -> tuple[list[str], str]:
    """The first `count` space-separated fields (`  ` is an escaped space) and the rest."""
    fields: list[str] = []
    i, n = 0, len(symbol)
    while len(fields) < count and i <= n:
        part: list[str] = []
        while i < n:
            if symbol[i] == " ":
                if i + 1 < n and symbol[i + 1] == " ":
                    part.append(" ")
                    i += 2
                    continue
                break
            part.append(symbol[i])
            i += 1
        fields.append("".join(part))
        i += 1
    return fields, symbol[i:] if i <= n else ""


_QUOTED = r"`(?:[^`]|``)*`"
_DESCRIPTOR = re.compile(
    rf"\((?P<param>{_QUOTED}|[^)`]*)\)"  # (parameter)
    rf"|\[(?P<tparam>{_QUOTED}|[^\]`]*)\]"  # [type parameter]
    rf"|(?P<name>{_QUOTED}|[^/#.:!(\[`\s]+)(?P<suffix>\([^)]*\)\.|[/#.:!])"  # name + suffix
)


# the same alternatives as one `findall` (a tuple per descriptor, no match objects): the fast path
_DESCRIPTOR_GROUPS = re.compile(
    rf"\(({_QUOTED}|[^)`]*)\)|\[({_QUOTED}|[^\]`]*)\]|({_QUOTED}|[^/#.:!(\[`\s]+)(\([^)]*\)\.|[/#.:!])"
)


def _descriptors(text: str) -> list[tuple[str, str]]:
    """(name, suffix) pairs; suffix '/', '#', '.', ':', '!', '().' (method), '()' (parameter), '[]'.

    Stops at the first part that is not a descriptor (a malformed tail is dropped)."""
    out: list[tuple[str, str]] = []
    covered = 0
    for param, tparam, name, suffix in _DESCRIPTOR_GROUPS.findall(text):
        if name:
            covered += len(name) + len(suffix)
            out.append(
                (name[1:-1].replace("``", "`") if name[0] == "`" else name, "()." if suffix[0] == "(" else suffix)
            )
        elif param:
            covered += len(param) + 2
            out.append((_unquote(param), "()"))
        elif tparam:
            covered += len(tparam) + 2
            out.append((_unquote(tparam), "[]"))
        else:  # `()` or `[]`: which one is not told by findall
            return _descriptors_slow(text)
    # the matches tile the text only when nothing was skipped between them
    return out if covered == len(text) else _descriptors_slow(text)


def _descriptors_slow(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    at = 0
    for m in _DESCRIPTOR.finditer(text):
        if m.start() != at:
            break
        at = m.end()
        if m.group("param") is not None:
            out.append((_unquote(m.group("param")), "()"))
        elif m.group("tparam") is not None:
            out.append((_unquote(m.group("tparam")), "[]"))
        else:
            suffix = m.group("suffix")
            out.append((_unquote(m.group("name")), "()." if suffix[0] == "(" else suffix))
    return out


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == "`" and name[-1] == "`":
        return name[1:-1].replace("``", "`")
    return name
