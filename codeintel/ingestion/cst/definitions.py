"""Definitions and their headers, from a tree-sitter tree, with the GOIDs core.goids gives them.

The rules are those of `codeintel.analysis.definitions` (which works on `ast`), so that a file
`ast` cannot parse (syntax of a newer Python, a syntax error) still gets the GOIDs a Python that
parses it would give: every `function_definition` and `class_definition` is a definition (in a
valid tree they stand only where statements do, which is where `ast` finds them); its qualified
name joins the names of the definitions holding it (compound statements are transparent); its
kind is `class`, `method` (a function directly in a class) or `function`; definitions with the
same qualified name in one file get ordinals 0, 1, ... in source order (preorder: a parent
before its children); the module is `kind=module`, `qualname=<module name>`.  Spans are ast's:
the first line counts decorators, the last is the last line of the body's last statement
(comments after it are outside).

The header is the source from `def`/`class`/`async` to the colon, decorators excluded; the
signature is the same on one line (comments dropped, line breaks inside brackets joined, the
trailing comma a line break asked for dropped).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codeintel.analysis.definitions import DefKind
from codeintel.analysis.enclosing import Span
from codeintel.analysis.goids import make_goid


@dataclass(frozen=True, slots=True)
class CstDefinition:
    """One class, function or method of a tree-sitter tree, with its GOID."""

    goid: str
    kind: str
    qualname: str
    ordinal: int
    name: str
    start_line: int
    end_line: int
    depth: int
    node: Any  # function_definition / class_definition
    decorated: Any  # the decorated_definition holding it, or None

    @property
    def span(self) -> Span:
        return Span(self.goid, self.start_line, self.end_line, self.depth)


def find_definitions(
    caps: dict[str, list[Any]], comment_ends: set[int], source: bytes, repo: str, path: str
) -> list[CstDefinition]:
    """The definitions of one tree from its query captures: `def` (every def and class node),
    `decorated` (decorated definitions) and `decorated_def` (the defs they decorate)."""
    decorated_defs = {node.start_byte for node in caps.get("decorated_def", ())}
    # a decorated definition ends where its def does (and so may outer ones): the innermost wins
    decorated_by_end: dict[int, list[Any]] = {}
    for node in caps.get("decorated", ()):
        decorated_by_end.setdefault(node.end_byte, []).append(node)
    found: list[CstDefinition] = []
    seen: dict[str, int] = {}
    # the definitions holding the current one: (end byte, qualname, kind)
    stack: list[tuple[int, str, str]] = []
    for node in sorted(caps.get("def", ()), key=lambda n: n.start_byte):
        start, end = node.start_byte, node.end_byte
        while stack and stack[-1][0] <= start:
            stack.pop()
        name_node = node.child_by_field_name("name")
        name = _text(source, name_node) if name_node is not None else "<unnamed>"
        parent_kind = stack[-1][2] if stack else DefKind.MODULE
        qualname = f"{stack[-1][1]}.{name}" if stack else name
        if node.type == "class_definition":
            kind = DefKind.CLASS
        else:
            kind = DefKind.METHOD if parent_kind == DefKind.CLASS else DefKind.FUNCTION
        ordinal = seen.get(qualname, 0)
        seen[qualname] = ordinal + 1
        decorated = None
        if start in decorated_defs:
            holding = [d for d in decorated_by_end.get(end, ()) if d.start_byte < start]
            decorated = max(holding, key=lambda d: d.start_byte, default=None)
        row = node.start_point[0]
        first = decorated.start_point[0] if decorated is not None else row
        last = last_row(node) if end in comment_ends else node.end_point[0]
        found.append(
            CstDefinition(
                make_goid(repo, path, kind, qualname, ordinal),
                kind,
                qualname,
                ordinal,
                name,
                first + 1,
                max(last, row) + 1,
                len(stack) + 1,
                node,
                decorated,
            )
        )
        stack.append((end, qualname, kind))
    return found


def module_span(repo: str, path: str, module: str, n_lines: int) -> Span:
    """The module's own span (all its lines), as core.goids has it."""
    return Span(make_goid(repo, path, DefKind.MODULE, module, 0), 1, max(n_lines, 1), 0)


def last_row(node: Any) -> int:
    """The row of the last token of `node` that is not a comment (as ast's `end_lineno`)."""
    while True:
        i = node.child_count - 1
        while i >= 0 and (child := node.child(i)) is not None and child.type == "comment":
            i -= 1
        if i < 0:
            return int(node.end_point[0])
        node = node.child(i)


def _text(source: bytes, node: Any) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


# ------------------------------------------------------------------------------------ headers

_BREAK = re.compile(rb"(,?)[ \t\f]*(?:\\?\r?\n[ \t\f]*)+")
_OPEN, _CLOSE = b"([{", b")]}"


class OneLine:
    """Source text of nodes on one line: comments out, line breaks joined (see module docstring)."""

    def __init__(self, source: bytes, comments: Sequence[tuple[int, int]]) -> None:
        self.source = source
        self.comments = comments  # (start byte, end byte), sorted
        self._starts = [c[0] for c in comments]

    def span(self, start: int, end: int) -> str:
        """`source[start:end]` on one line."""
        i = bisect_left(self._starts, start)
        if i == len(self._starts) or self._starts[i] >= end:  # no comment inside
            raw = self.source[start:end]
        else:
            pieces = []
            at = start
            while i < len(self.comments) and self.comments[i][0] < end:
                pieces.append(self.source[at : self.comments[i][0]])
                at = self.comments[i][1]
                i += 1
            pieces.append(self.source[at:end])
            raw = b"".join(pieces)
        if b"\n" in raw:
            raw = _BREAK.sub(_join, raw).strip()
        return raw.decode("utf-8", "replace")

    def node(self, node: Any | None) -> str | None:
        return None if node is None else self.span(node.start_byte, node.end_byte)

    def plain(self, node: Any) -> str:
        """The text of a node that holds no comment and no line break (a name)."""
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _join(m: re.Match[bytes]) -> bytes:
    """A line break in a header (with the blanks around it): one space, none next to a bracket;
    a comma before it goes when a closing bracket follows (a trailing comma the break asked for)."""
    text, start, end = m.string, m.start(), m.end()
    after = text[end : end + 1]
    if m.group(1):
        return b"" if not after or after in _CLOSE else b", "
    before = text[start - 1 : start] if start else b""
    if not before or not after or before in _OPEN or after in _CLOSE:
        return b""
    return b" "


def header_rows(defn: CstDefinition, source: bytes, text: OneLine, path: str) -> tuple[Any, ...]:
    """The core.def_headers row of one definition (catalog column order)."""
    node = defn.node
    colon = _header_colon(node)
    end = colon.end_byte if colon is not None else node.end_byte
    end_point = colon.end_point if colon is not None else node.end_point
    header = source[node.start_byte : end].decode("utf-8", "replace")
    signature = text.span(node.start_byte, end) if "\n" in header else header
    is_class = node.type == "class_definition"
    params = None if is_class else _params(node.child_by_field_name("parameters"), text)
    returns = None if is_class else text.node(node.child_by_field_name("return_type"))
    decorators = _decorators(defn.decorated, text)
    type_params = text.node(node.child_by_field_name("type_parameters"))
    is_async = not is_class and node.child(0).type == "async"
    line, col = node.start_point
    return (
        defn.goid,
        path,
        defn.kind,
        defn.qualname,
        defn.ordinal,
        defn.name,
        line + 1,
        col,
        end_point[0] + 1,
        end_point[1],
        header,
        signature,
        params,
        returns,
        decorators,
        type_params,
        is_async,
    )


def _header_colon(node: Any) -> Any | None:
    """The `:` ending the header (before the body, comments aside)."""
    at = node.child_by_field_name("body")
    at = at.prev_sibling if at is not None else None
    while at is not None and at.type == "comment":
        at = at.prev_sibling
    return at if at is not None and at.type == ":" else None


_PARAM_KINDS = {
    "list_splat_pattern": "var_positional",
    "dictionary_splat_pattern": "var_keyword",
}


def _params(parameters: Any | None, text: OneLine) -> list[tuple[str, str, str | None, str | None]]:
    """(name, kind, annotation, default) of each parameter, kinds as `inspect.Parameter`'s."""
    if parameters is None:
        return []
    found: list[tuple[str, str, str | None, str | None]] = []
    keyword_only = False
    for child in parameters.named_children:
        kind = child.type
        if kind == "identifier":  # most parameters: a bare name
            found.append((text.plain(child), "keyword_only" if keyword_only else "positional_or_keyword", None, None))
            continue
        if kind == "comment":
            continue
        if kind == "positional_separator":  # `/`: everything before is positional-only
            found = [(n, "positional_only" if k == "positional_or_keyword" else k, a, d) for n, k, a, d in found]
            continue
        if kind == "keyword_separator":  # a bare `*`
            keyword_only = True
            continue
        annotation = text.node(child.child_by_field_name("type"))
        default = text.node(child.child_by_field_name("value"))
        target = child.child_by_field_name("name") if kind in ("default_parameter", "typed_default_parameter") else None
        if kind == "typed_parameter":
            target = next((c for c in child.named_children if c.type != "type" and c.type != "comment"), None)
        elif target is None:
            target = child
        shape = _PARAM_KINDS.get(target.type) if target is not None else None
        if shape is None:
            shape = "keyword_only" if keyword_only else "positional_or_keyword"
        elif shape == "var_positional":
            keyword_only = True
        name_node = target
        if target is not None and target.type in _PARAM_KINDS:
            name_node = next((c for c in target.named_children if c.type == "identifier"), target)
        found.append((text.node(name_node) or "", shape, annotation, default))
    return found


def _decorators(decorated: Any | None, text: OneLine) -> list[tuple[str, int]]:
    if decorated is None:
        return []
    found = []
    for child in decorated.children:
        if child.type == "decorator":
            expr = child.named_child(0)
            while expr is not None and expr.type == "comment":
                expr = expr.next_named_sibling
            if expr is not None:
                found.append((text.node(expr) or "", child.start_point[0] + 1))
    return found
