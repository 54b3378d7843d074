"""cst_ingest's rows for one file: comments, def headers and name sites, from one tree-sitter parse.

One query (run by tree-sitter in C) captures what the rows need: every identifier, comment and
definition, and the identifiers or subtrees whose syntactic position gives a role.  Python then
only visits the captures, never the whole tree.

Name roles, first that applies (an identifier has one):
  import (any identifier of an import statement: module path parts, names, aliases);
  definition (the name of a def or class, a parameter, a type parameter);
  keyword_argument (`k` in `f(k=v)` or `class A(metaclass=M)`, `x` in `case P(x=0)`);
  decorator / base_class / annotation (any identifier of the expression a decorator applies or
  calls, and of a class's base, but not of their arguments: `g` in `@d(g())` is a call, `M` in
  `metaclass=M` a read, `T` in `class C(Base[T])` an annotation; a parameter's or return's
  annotation, an annotated assignment's type, type parameter bounds, a `type` alias's value);
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
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa

from codeintel.analysis.enclosing import innermost_by_line
from codeintel.ingestion.cst.definitions import OneLine, find_definitions, header_rows, module_span
from codeintel.ingestion.cst.parser import prepare_source, python_language, python_parser
from codeintel.ingestion.cst.pragmas import parse_comment
from codeintel.storage.text import arrow_array, safe_text


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
        # a decorator's and a base's own expression, not its arguments (`g` in `@d(g())` is called,
        # `T` in `class C(Base[T])` is a type argument)
        "(decorator [(identifier) (attribute)] @ctx_decorator)",
        "(decorator (call function: (_) @ctx_decorator))",
        "(decorator (subscript value: (_) @ctx_decorator))",
        "(class_definition superclasses: (argument_list [(identifier) (attribute)] @ctx_base_class))",
        "(class_definition superclasses: (argument_list (subscript value: (_) @ctx_base_class)))",
        "(class_definition superclasses: (argument_list (subscript subscript: (_) @ctx_annotation)))",
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
def cst_query() -> Any:
    """The query (compiled once per process) that captures what the rows need."""
    from tree_sitter import Query

    return Query(python_language(), _QUERY)


@dataclass(slots=True)
class CstRows:
    """Rows for one file, in catalog column order, and the problems met (line, col, kind, message).

    Name sites, by far the most rows, are kept as Arrow columns of the catalog's types
    (`name_columns`, by column name in catalog order), built from arrays rather than a Python
    value at a time; `names` gives them as rows.
    """

    comments: list[tuple[Any, ...]] = field(default_factory=list)
    headers: list[tuple[Any, ...]] = field(default_factory=list)
    name_columns: dict[str, pa.Array] = field(default_factory=dict)
    problems: list[tuple[int | None, int | None, str, str]] = field(default_factory=list)

    @property
    def names(self) -> list[tuple[Any, ...]]:
        return list(zip(*(column.to_pylist() for column in self.name_columns.values()), strict=True))


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
    caps: dict[str, list[Any]] = QueryCursor(cst_query()).captures(root)
    n_lines = root.end_point[0] + (1 if root.end_point[1] else 0)
    comment_nodes = caps.get("comment", [])
    comment_ranges = sorted((c.start_byte, c.end_byte) for c in comment_nodes)
    defs = find_definitions(caps, {end for _, end in comment_ranges}, source, repo, path)
    module_goid = module_span(repo, path, module, n_lines)
    enclosing = innermost_by_line([module_goid, *(d.span for d in defs)])
    one_line = OneLine(source, comment_ranges)
    rows.headers = [header_rows(d, source, one_line, path) for d in defs]
    rows.comments = _comment_rows(comment_nodes, source, path, enclosing, module_goid.goid)
    rows.name_columns = _name_columns(caps, source, path, enclosing, module_goid.goid, has_error=root.has_error)
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


def _name_columns(
    caps: dict[str, list[Any]],
    source: bytes,
    path: str,
    enclosing: list[str | None],
    module_goid: str,
    *,
    has_error: bool,
) -> dict[str, pa.Array]:
    """core.name_sites' columns for one file (by name, in catalog order, as Arrow arrays), built a
    column at a time: a name's line, context, call and attribute are found by bisection (numpy)
    over arrays of start and end bytes, not by a Python step per name."""
    ids = caps.get("id", [])
    count = len(ids)
    starts = _bytes_of(ids, _START)
    plain = source.isascii() and not has_error  # (see _name_ends)
    if plain:
        starts.sort()  # the query gives them in no fixed order
        ends = _name_ends(source, starts)
    else:
        ends = _bytes_of(ids, _END)
        order = np.argsort(starts)  # (a tie moves whole rows)
        starts, ends = starts[order], ends[order]
    line_starts = _line_starts(source)
    lines = np.searchsorted(line_starts, starts, side="right")
    cols = starts - line_starts[lines - 1]
    call_at, called = _lookup(_last_by_end(caps, "callee", "applied"), ends)
    roles = np.where(called, _CODE[Role.CALL], _CODE[Role.READ]).astype(np.int8)
    # a context (import, decorator, bases, annotation) gives its names its role, but for names
    # whose position decides it: keyword arguments and definitions always, writes and deletes
    # outside a context
    in_context = _apply_contexts(caps, starts, roles)
    weak_role, weak = _lookup(_weak_roles(caps), starts)
    weak &= ~in_context
    roles[weak] = weak_role[weak]
    strong_role, strong = _lookup(_strong_roles(caps), starts)
    roles[strong] = strong_role[strong]
    call_at = call_at[called]
    call_lines = np.searchsorted(line_starts, call_at, side="right")
    attr_at, attributed = _lookup(_last_by_end(caps, "attribute"), ends)
    per_line = [goid or module_goid for goid in enclosing]
    if len(per_line) <= len(line_starts):  # a name on a line past the module's last (never in practice)
        per_line += [module_goid] * (len(line_starts) + 1 - len(per_line))
    line_column = _int32(lines)
    return {
        "path": _encoded(np.zeros(count, dtype=np.int32), pa.array([safe_text(path)], type=pa.string())),
        "line": line_column,
        "col": _int32(cols),
        "end_line": line_column,
        "end_col": _int32(cols + (ends - starts)),
        "name": _texts(source, starts, ends, checked=plain),
        "role": _encoded(roles, _ROLE_NAMES),
        "enclosing_goid": _encoded(lines, arrow_array(per_line, pa.string())),
        "call_line": _int32(_scatter(count, called, call_lines), missing=~called),
        "call_col": _int32(_scatter(count, called, call_at - line_starts[call_lines - 1]), missing=~called),
        "qualifier": arrow_array(_qualifiers(source, attr_at, attributed, starts), pa.string()),
    }


_ROLE_NAMES = pa.array([role.value for role in Role], type=pa.string())
_CODE = {role.value: code for code, role in enumerate(Role)}


def _apply_contexts(caps: dict[str, list[Any]], starts: Any, roles: Any) -> Any:
    """Set the role of the names (by start byte) a context holds; returns which it holds."""
    ctx_starts, ctx_ends, ctx_roles = _flat_contexts(caps)
    if not ctx_starts:
        return np.zeros(len(starts), dtype=bool)
    at = np.searchsorted(np.array(ctx_starts, dtype=np.int64), starts, side="right") - 1
    inside = at >= 0
    at = np.maximum(at, 0)
    inside &= starts < np.array(ctx_ends, dtype=np.int64)[at]
    roles[inside] = np.array([_CODE[r] for r in ctx_roles], dtype=np.int8)[at[inside]]
    return inside


def _lookup(table: tuple[Any, Any], keys: Any) -> tuple[Any, Any]:
    """For each of `keys`, the value `table` (sorted unique keys, values) has for it, and whether
    it has one (values where it has none are arbitrary)."""
    found_keys, values = table
    if len(found_keys) == 0:
        return np.zeros(len(keys), dtype=values.dtype), np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(found_keys, keys), len(found_keys) - 1)
    return values[at], found_keys[at] == keys


def _last_by_end(caps: dict[str, list[Any]], *names: str) -> tuple[Any, Any]:
    """(sorted unique end bytes, start bytes) of the nodes captured as `names`: where several end
    at one byte, the last captured."""
    nodes = [node for name in names for node in caps.get(name, ())]
    return _last_wins(_bytes_of(nodes, _END), _bytes_of(nodes, _START))


_START, _END = operator.attrgetter("start_byte"), operator.attrgetter("end_byte")


def _bytes_of(nodes: list[Any], which: Callable[[Any], int]) -> Any:
    """`which` (a start or end byte) of each node, as an int64 array."""
    return np.fromiter(map(which, nodes), dtype=np.int64, count=len(nodes))


_NAME_BYTES = np.zeros(256, dtype=bool)  # the bytes an ASCII name is made of
_NAME_BYTES[np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", dtype=np.uint8)] = True


def _name_ends(source: bytes, starts: Any) -> Any:
    """Where each name starting at `starts` ends, found in the source rather than read from its
    node one at a time: the first byte from its start that cannot be in a name.  Only for ASCII
    source that parsed without error: there a name's node is exactly the longest run of name
    bytes from its start (tree-sitter's lexer takes the longest identifier; an error could leave
    an empty, "missing" one; other letters than ASCII can end a name in ways a byte cannot tell).
    """
    inside = _NAME_BYTES[np.frombuffer(source, dtype=np.uint8)]
    run_ends = np.flatnonzero(inside[:-1] > inside[1:]) + 1  # a name byte, then one that is not
    run_ends = np.append(run_ends, len(source))
    return run_ends[np.searchsorted(run_ends, starts, side="right")]


def _last_wins(keys: Any, values: Any) -> tuple[Any, Any]:
    """(sorted unique keys, the value of each key's last occurrence)."""
    unique, first = np.unique(keys[::-1], return_index=True)
    return unique, values[::-1][first]


def _weak_roles(caps: dict[str, list[Any]]) -> tuple[Any, Any]:
    """(start bytes, role codes) of the names written or deleted (a context holding them wins)."""
    weak: dict[int, str] = {}
    for node in caps.get("write", ()):
        weak[node.start_byte] = Role.WRITE.value
    for node in caps.get("target", ()):
        if node.type == "identifier":  # most targets
            weak[node.start_byte] = Role.WRITE.value
        else:
            _mark_targets(node, Role.WRITE.value, weak)
    for node in caps.get("delete_target", ()):
        _mark_targets(node, Role.DELETE.value, weak)
    keys = np.fromiter(weak.keys(), dtype=np.int64, count=len(weak))
    codes = np.array([_CODE[role] for role in weak.values()], dtype=np.int8)
    order = np.argsort(keys)
    return keys[order], codes[order]


def _strong_roles(caps: dict[str, list[Any]]) -> tuple[Any, Any]:
    """(start bytes, role codes) of keyword arguments and definitions (whatever holds them; a
    definition wins over a keyword argument)."""
    keywords = caps.get("keyword_argument", [])
    definitions = caps.get("definition", [])
    starts = np.array([node.start_byte for node in (*keywords, *definitions)], dtype=np.int64)
    codes = np.repeat(
        np.array([_CODE[Role.KEYWORD_ARGUMENT], _CODE[Role.DEFINITION]], dtype=np.int8),
        [len(keywords), len(definitions)],
    )
    return _last_wins(starts, codes)


def _texts(source: bytes, starts: Any, ends: Any, *, checked: bool = False) -> pa.Array:
    """The text of each name (bytes start:end, in source order), as an Arrow string array.

    Arrow takes them straight from the source: the names and the gaps between them are the
    values of one string array over the source's bytes (offsets start0, end0, start1, ...), and
    every other value is a name.  Where that does not hold (bytes that are not UTF-8: U+FFFD
    then; names out of order, never seen) each name is decoded on its own.
    """
    count = len(starts)
    bounds = np.empty(2 * count, dtype=np.int64)
    bounds[0::2], bounds[1::2] = starts, ends
    if count and len(source) < 2**31 and bool(np.all(bounds[1:] >= bounds[:-1])):
        spans = pa.StringArray.from_buffers(2 * count - 1, pa.py_buffer(bounds.astype(np.int32)), pa.py_buffer(source))
        try:
            if not checked:  # (`checked`: the source is known to be UTF-8)
                spans.validate(full=True)
        except pa.ArrowInvalid:
            pass
        else:
            return spans.take(np.arange(0, 2 * count, 2))
    found = [source[s:e].decode("utf-8", "replace") for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    return arrow_array(found, pa.string())


def _encoded(indices: Any, values: pa.Array) -> pa.DictionaryArray:
    """A text column as `values` taken at `indices` (a numpy array), dictionary-encoded: a
    file's path, the roles and the enclosing GOIDs repeat row after row, and kept encoded they
    are half the bytes a worker builds, sends and the step's process joins (DuckDB inserts them
    as their text: `storage.gateway.columns_to_arrow`)."""
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), values)


def _int32(values: Any, missing: Any = None) -> pa.Array:
    """An int32 column of `values` (a numpy array), null where `missing`."""
    return pa.array(values.astype(np.int32), mask=missing)


def _scatter(count: int, present: Any, values: Any) -> Any:
    """`count` values: `values` where `present`, 0 elsewhere."""
    found = np.zeros(count, dtype=np.int64)
    found[present] = values
    return found


def _qualifiers(source: bytes, attr_starts: Any, present: Any, name_starts: Any) -> list[str | None]:
    """The qualifier column: for each name an attribute ends with, its object's text."""
    found: list[str | None] = [None] * len(name_starts)
    seen: dict[bytes, str] = {}
    where = np.flatnonzero(present)
    ends = name_starts[where]
    starts = np.maximum(attr_starts[where], ends - 4 * MAX_QUALIFIER)
    for at, start, end in zip(where.tolist(), starts.tolist(), ends.tolist(), strict=True):
        raw = source[start:end]
        qualifier = seen.get(raw)
        if qualifier is None:
            qualifier = seen[raw] = _qualifier(raw)
        found[at] = qualifier
    return found


def _line_starts(source: bytes) -> Any:
    """The byte offset where each line starts (line N at index N - 1)."""
    breaks = np.flatnonzero(np.frombuffer(source, dtype=np.uint8) == _NEWLINE) + 1
    return np.concatenate((np.zeros(1, dtype=np.int64), breaks.astype(np.int64)))


_NEWLINE = ord("\n")


def _qualifier(raw: bytes) -> str:
    """The object of an attribute from the source before its name (at most 4 * MAX_QUALIFIER
    bytes of it): its text before the dot, on one line, bounded."""
    raw = raw.rstrip(b" \t\r\n\\\f")
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
