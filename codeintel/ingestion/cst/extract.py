"""cst_ingest's rows for one file: comments, def headers and name sites, from one tree-sitter parse.

One query (run by tree-sitter in C) captures what the rows need: every identifier, comment and
definition, and the identifiers or subtrees whose syntactic position gives a role.  Python then
only visits the captures, never the whole tree.

Name roles, first that applies (an identifier has one):
  import (any identifier of an import statement: module path parts, names, aliases);
  definition (the name of a def or class, a parameter, a type parameter);
  keyword_argument (`k` in `f(k=v)` or `class A(metaclass=M)`, `x` in `case P(x=0)`);
  decorator / base_class / annotation (any identifier inside a decorator expression, a class's
  bases and keywords, a parameter's or return's annotation, an annotated assignment's type, type
  parameter bounds, a `type` alias's value);
  write (targets of `=`, augmented and annotated assignment, `for`, comprehensions, `with ... as`,
  `except ... as`, `:=`, `global`/`nonlocal`, match captures, a `type` alias's name; the attribute
  name in `a.b = 1`: `a` is read) and delete (`del x`, `del a.b`'s `b`);
  call (the last name of a called expression: `f` in `f()`, `merge` in `self.session.merge()`);
  read (everything else).
`call_line`/`call_col` are where the call expression starts (`ast.Call`'s lineno/col_offset:
where graph.call_edges puts the site) for every name that a call calls, and for the name a
decorator applies (`property`, `route` in `@app.route("/")`: the decorator expression's start,
where the call graph puts a decorator's site), whatever its role.  `qualifier` is the source text
of the object of an attribute name (`self.session` for `merge`), on one line, at most 200
characters.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from codeintel.analysis.enclosing import innermost_by_line
from codeintel.ingestion.cst.definitions import OneLine, find_definitions, header_rows, module_span
from codeintel.ingestion.cst.parser import prepare_source, python_language, python_parser
from codeintel.ingestion.cst.pragmas import parse_comment


class Role(StrEnum):
    CALL = "call"
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    IMPORT = "import"
    ANNOTATION = "annotation"
    DECORATOR = "decorator"
    BASE_CLASS = "base_class"
    KEYWORD_ARGUMENT = "keyword_argument"
    DEFINITION = "definition"


class Placement(StrEnum):
    OWN_LINE = "own_line"
    TRAILING = "trailing"


MAX_QUALIFIER = 200

_DEFS = ("function_definition", "class_definition")
_TYPE_PARAM_NAMES = (
    "(type_parameter (type (identifier) @definition))",
    "(type_parameter (type (constrained_type . (type (identifier) @definition))))",
    "(type_parameter (type (splat_type (identifier) @definition)))",
    # PEP 696 defaults (`[T = int]`), which this grammar does not know: `T =` ends up in an ERROR
    '(type_parameter (ERROR . (identifier) @definition . "="))',
)
_PARAM_LISTS = ("parameters", "lambda_parameters")

_QUERY = "\n".join(
    [
        "(function_definition) @def",
        "(class_definition) @def",
        "(comment) @comment",
        "(decorated_definition) @decorated",
        "(decorated_definition definition: (_) @decorated_def)",
        "(identifier) @id",
        # definitions
        *(f"({d} name: (identifier) @definition)" for d in _DEFS),
        *(f"({p} (identifier) @definition)" for p in _PARAM_LISTS),
        *(
            f"({p} ({s} (identifier) @definition))"
            for p in _PARAM_LISTS
            for s in ("list_splat_pattern", "dictionary_splat_pattern")
        ),
        "(default_parameter name: (identifier) @definition)",
        "(typed_default_parameter name: (identifier) @definition)",
        "(typed_parameter . (identifier) @definition)",
        "(typed_parameter (list_splat_pattern (identifier) @definition))",
        "(typed_parameter (dictionary_splat_pattern (identifier) @definition))",
        *(f"({d} type_parameters: {p})" for d in _DEFS for p in _TYPE_PARAM_NAMES),
        *(f"(type_alias_statement left: (type (generic_type {p})))" for p in _TYPE_PARAM_NAMES),
        # keyword arguments
        "(keyword_argument name: (identifier) @keyword_argument)",
        "(keyword_pattern . (identifier) @keyword_argument)",
        # calls and attributes (a called name ends where its callee does, an attribute's name where
        # the attribute does)
        "(call function: (_) @callee)",
        "(attribute) @attribute",
        "(decorator [(identifier) (attribute)] @applied)",
        # writes and deletes
        "(named_expression name: (identifier) @write)",
        "(global_statement (identifier) @write)",
        "(nonlocal_statement (identifier) @write)",
        "(case_pattern (dotted_name . (identifier) @write .))",
        "(keyword_pattern (dotted_name . (identifier) @write .))",
        '(as_pattern (case_pattern) "as" (identifier) @write)',
        "(splat_pattern (identifier) @write)",
        "(assignment left: (_) @target)",
        "(augmented_assignment left: (_) @target)",
        "(for_statement left: (_) @target)",
        "(for_in_clause left: (_) @target)",
        "(as_pattern alias: (as_pattern_target) @target)",
        "(type_alias_statement left: (type [(identifier) @write (generic_type . (identifier) @write)]))",
        "(delete_statement (_) @delete_target)",
        # contexts
        "(import_statement) @ctx_import",
        "(import_from_statement) @ctx_import",
        "(future_import_statement) @ctx_import",
        "(decorator) @ctx_decorator",
        "(class_definition superclasses: (argument_list) @ctx_base_class)",
        "(typed_parameter type: (type) @ctx_annotation)",
        "(typed_default_parameter type: (type) @ctx_annotation)",
        "(function_definition return_type: (type) @ctx_annotation)",
        "(assignment type: (type) @ctx_annotation)",
        *(f"({d} type_parameters: (type_parameter) @ctx_annotation)" for d in _DEFS),
        "(type_alias_statement left: (type (generic_type (type_parameter) @ctx_annotation)))",
        "(type_alias_statement right: (type) @ctx_annotation)",
    ]
)
_CONTEXTS = (
    ("ctx_import", Role.IMPORT.value),
    ("ctx_decorator", Role.DECORATOR.value),
    ("ctx_base_class", Role.BASE_CLASS.value),
    ("ctx_annotation", Role.ANNOTATION.value),
)
# what an assignment target holds: names written, lists of targets walked, attributes' names written
_TARGET_LISTS = frozenset(
    {
        "pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression",
        "expression_list", "list_splat_pattern", "list_splat", "as_pattern_target", "parenthesized_list_splat",
    }
)  # fmt: skip


@functools.cache
def _query() -> Any:
    from tree_sitter import Query

    return Query(python_language(), _QUERY)


@dataclass(slots=True)
class CstRows:
    """Rows for one file, in catalog column order, and the problems met (line, col, kind, message)."""

    comments: list[tuple[Any, ...]] = field(default_factory=list)
    headers: list[tuple[Any, ...]] = field(default_factory=list)
    names: list[tuple[Any, ...]] = field(default_factory=list)
    problems: list[tuple[int | None, int | None, str, str]] = field(default_factory=list)


def extract_cst(data: bytes, *, repo: str, path: str, module: str) -> CstRows:
    """Comments, def headers and name sites of one file's bytes (see the module docstring)."""
    from tree_sitter import QueryCursor

    prepared = prepare_source(data)
    source = prepared.data
    rows = CstRows()
    if prepared.encoding_error is not None:
        line, col, message = prepared.encoding_error
        rows.problems.append((line, col, "encoding", message))
    tree = python_parser().parse(source)
    root = tree.root_node
    if root.has_error:
        rows.problems.append(_first_error(root))
    caps: dict[str, list[Any]] = QueryCursor(_query()).captures(root)
    n_lines = root.end_point[0] + (1 if root.end_point[1] else 0)
    comment_nodes = caps.get("comment", [])
    comment_ranges = sorted((c.start_byte, c.end_byte) for c in comment_nodes)
    defs = find_definitions(caps, {end for _, end in comment_ranges}, source, repo, path)
    module_goid = module_span(repo, path, module, n_lines)
    enclosing = innermost_by_line([module_goid, *(d.span for d in defs)])
    one_line = OneLine(source, comment_ranges)
    rows.headers = [header_rows(d, source, one_line, path) for d in defs]
    rows.comments = _comment_rows(comment_nodes, source, path, enclosing, module_goid.goid)
    rows.names = _name_rows(caps, source, path, enclosing, module_goid.goid)
    return rows


def _first_error(root: Any) -> tuple[int | None, int | None, str, str]:
    """Where the first syntax error tree-sitter recovered from is (a core.parse_errors row)."""
    node = root
    while True:
        if node.type == "ERROR" or node.is_missing:
            break
        child = next((c for c in node.children if c.has_error), None)
        if child is None:
            break
        node = child
    what = f"missing {node.type!r}" if node.is_missing else "unexpected syntax"
    line, col = node.start_point
    message = f"tree-sitter: {what}; the rest of the file gives comments, headers and names all the same"
    return line + 1, col + 1, "syntax", message


def _comment_rows(
    nodes: list[Any], source: bytes, path: str, enclosing: list[str | None], module_goid: str
) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    n_lines = len(enclosing)
    for node in nodes:
        start, end = node.start_byte, node.end_byte
        row, col = node.start_point
        text = source[start:end].decode("utf-8", "replace")
        line = row + 1
        before = source[start - col : start]
        placement = Placement.OWN_LINE if not before.strip() else Placement.TRAILING
        goid = (enclosing[line] if line < n_lines else None) or module_goid
        facts = parse_comment(text)
        common = (path, line, col, col + end - start, text, placement, goid)
        tag = (facts.tag, facts.tag_text)
        if not facts.pragmas:
            found.append((*common, None, None, *tag))
        for pragma, codes in facts.pragmas:
            found.append((*common, pragma, list(codes), *tag))
    return found


def _name_rows(
    caps: dict[str, list[Any]], source: bytes, path: str, enclosing: list[str | None], module_goid: str
) -> list[tuple[Any, ...]]:
    starts, ends, roles = _flat_contexts(caps)

    def context(start: int) -> str | None:
        at = bisect_right(starts, start) - 1
        return roles[at] if at >= 0 and start < ends[at] else None

    # start byte -> the role of a name whose position alone decides it: written or deleted names
    # (unless a context holds them), keyword arguments and definitions (whatever holds them)
    weak: dict[int, str] = {}
    for node in caps.get("write", ()):
        weak[node.start_byte] = Role.WRITE.value
    for node in caps.get("target", ()):
        _mark_targets(node, Role.WRITE.value, weak)
    for node in caps.get("delete_target", ()):
        _mark_targets(node, Role.DELETE.value, weak)
    decided = {start: context(start) or role for start, role in weak.items()}
    for node in caps.get("keyword_argument", ()):
        decided[node.start_byte] = Role.KEYWORD_ARGUMENT.value
    for node in caps.get("definition", ()):
        decided[node.start_byte] = Role.DEFINITION.value
    line_starts = _line_starts(source)
    # end byte of a name -> (call line, call col) if a call calls it, and where the object of the
    # attribute it names starts if it names one
    by_end: dict[int, tuple[int | None, int | None, int | None]] = {
        node.end_byte: (None, None, node.start_byte) for node in caps.get("attribute", ())
    }
    for node in (*caps.get("callee", ()), *caps.get("applied", ())):
        end = node.end_byte
        line, col = _position(line_starts, node.start_byte)
        by_end[end] = (line, col, by_end.get(end, _NOT_SPECIAL)[2])
    if len(enclosing) <= len(line_starts):  # a name on a line past the module's last (never in practice)
        enclosing = [*enclosing, *([module_goid] * (len(line_starts) + 1 - len(enclosing)))]
    found: list[tuple[Any, ...]] = []
    append = found.append
    get_decided, get_by_end, bisect = decided.get, by_end.get, bisect_right
    read, call = Role.READ.value, Role.CALL.value
    # captures do not come in source order: a name's line and the context holding it are found by
    # bisection
    for node in caps.get("id", ()):
        start = node.start_byte
        end = node.end_byte
        call_line, call_col, qualified = get_by_end(end, _NOT_SPECIAL)
        role = get_decided(start)
        if role is None:
            at = bisect(starts, start) - 1
            if at >= 0 and start < ends[at]:
                role = roles[at]
            else:
                role = read if call_line is None else call
        line = bisect(line_starts, start)
        col = start - line_starts[line - 1]
        append(
            (
                path,
                line,
                col,
                line,
                col + end - start,
                source[start:end].decode("utf-8", "replace"),
                role,
                enclosing[line] or module_goid,
                call_line,
                call_col,
                None if qualified is None else _qualifier(source, qualified, start),
            )
        )
    return found


_NOT_SPECIAL: tuple[None, None, None] = (None, None, None)


def _line_starts(source: bytes) -> list[int]:
    """The byte offset where each line starts (line N at index N - 1)."""
    starts = [0]
    find = source.find
    at = find(b"\n")
    while at >= 0:
        at += 1
        starts.append(at)
        at = find(b"\n", at)
    return starts


def _position(line_starts: list[int], offset: int) -> tuple[int, int]:
    line = bisect_right(line_starts, offset)
    return line, offset - line_starts[line - 1]


def _qualifier(source: bytes, start: int, name_start: int) -> str:
    """The object of an attribute: its source text before the dot, on one line, bounded."""
    raw = source[max(start, name_start - 4 * MAX_QUALIFIER) : name_start].rstrip(b" \t\r\n\\\f")
    qualifier = raw[:-1].rstrip(b" \t\r\n\\\f").decode("utf-8", "replace")  # the dot
    if "\n" in qualifier or "  " in qualifier:
        qualifier = " ".join(qualifier.split())
    if len(qualifier) > MAX_QUALIFIER:
        qualifier = "..." + qualifier[3 - MAX_QUALIFIER :]
    return qualifier


def _flat_contexts(caps: dict[str, list[Any]]) -> tuple[list[int], list[int], list[str]]:
    """The byte ranges of the contexts that give their names a role, as disjoint ranges sorted by
    start (starts, ends, roles): where one holds another, the inner one wins inside it."""
    ranges = sorted(
        ((n.start_byte, -n.end_byte, role) for name, role in _CONTEXTS for n in caps.get(name, ())),
    )
    starts: list[int] = []
    ends: list[int] = []
    roles: list[str] = []
    for start, neg_end, role in ranges:
        end = -neg_end
        if ends and start < ends[-1]:  # inside the previous range: split it around this one
            outer_end, outer_role = ends[-1], roles[-1]
            ends[-1] = start
            _add_range(starts, ends, roles, start, min(end, outer_end), role)
            if end < outer_end:
                _add_range(starts, ends, roles, end, outer_end, outer_role)
            continue
        _add_range(starts, ends, roles, start, end, role)
    return starts, ends, roles


def _add_range(starts: list[int], ends: list[int], roles: list[str], start: int, end: int, role: str) -> None:
    starts.append(start)
    ends.append(end)
    roles.append(role)


def _mark_targets(node: Any, role: str, roles: dict[int, str]) -> None:
    """Mark the names an assignment (or `del`) target binds (or unbinds)."""
    stack = [node]
    while stack:
        target = stack.pop()
        kind = target.type
        if kind == "identifier":
            roles[target.start_byte] = role
        elif kind == "attribute":
            name = target.child_by_field_name("attribute")
            if name is not None:
                roles[name.start_byte] = role
        elif kind in _TARGET_LISTS:
            stack.extend(target.named_children)
        # a subscript binds no name: its names are read
