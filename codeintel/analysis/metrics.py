"""Per-function metrics computed from an already parsed ``ast`` function node.

This module owns the numbers stored in ``analytics.function_metrics``: line counts, radon-compatible
cyclomatic complexity, nesting depth, parameters by kind, typedness, and counts of returns,
yields, raises and awaits. It is pure: it takes a ``FunctionDef``/``AsyncFunctionDef`` node and
the file's source lines and returns a frozen record. Each function is scanned once, iteratively
(deeply nested code cannot exhaust the interpreter stack); nested functions and classes are
scanned only for their line layout, never for their counts.

Conventions (they are the contract of the stored columns):

* The span of a function runs from its first decorator (or the ``def`` line when undecorated) to
  its last line. ``loc`` is the number of physical lines in that span, nested definitions included.
* ``blank_lines`` and ``comment_lines`` count lines of the span that are empty or hold only a
  comment; lines inside a multi-line string are never blank or comment lines.
* ``docstring_lines`` counts the lines of the docstrings of the function and of the functions and
  classes nested in it (a docstring sharing its line with other code is counted as code).
* ``sloc = loc - blank_lines - comment_lines - docstring_lines``; ``lloc`` is the number of
  statements in the span, the ``def`` statement and nested statements included.
* ``cyclomatic`` follows radon 6.0.1's ``ComplexityVisitor`` exactly: 1, plus 1 per ``if``/``elif``
  and conditional expression, 1 + (1 if it has an ``else``) per ``for``/``async for``/``while``,
  one per ``except`` handler plus one for a ``try``'s ``else``, 1 + one per ``if`` for every
  ``for`` of a comprehension, one per ``assert`` (whose expression is not looked into), one per
  ``match`` case minus one when some case is irrefutable (``_`` or a bare capture name), and
  ``len(values) - 1`` per boolean operator. ``with`` and ``except*`` (``TryStar``) add nothing, as in
  radon. Lambdas count towards the enclosing function; nested ``def``s and classes do not, nor do
  decorators, defaults and annotations of the function itself.
* ``max_nesting_depth`` counts nested compound statements (``if``, ``for``, ``while``, ``try``,
  ``with``, ``match`` and their async forms) of the function's own body; ``elif`` stays at the depth
  of its ``if``. A body without compound statements has depth 0.
* The receiver is a first positional parameter named ``self`` or ``cls``. Counts by kind describe
  the raw signature (receiver included); ``param_count``, ``annotated_params`` and ``typedness``
  leave the receiver out. ``typedness`` is ``full`` when every other parameter and the return are
  annotated, ``untyped`` when none is, ``partial`` otherwise (``__init__`` needs ``-> None`` too).
* ``return_count``, ``yield_count`` (``yield`` and ``yield from``), ``raise_count`` and
  ``await_count`` count the function's own code: nested functions, classes and lambdas are skipped,
  comprehensions are included.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = ["FunctionMetrics", "Typedness", "compute_function_metrics"]

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

# Traversal flags carried by every pending node.
_LINES_ONLY = 1  # inside a nested scope or the signature: only the line layout matters
_IN_LAMBDA = 2  # a yield here belongs to the lambda, not to the function
_NO_CC = 4  # inside an assert: radon does not look into it

_RECEIVER_NAMES = frozenset({"self", "cls"})
# Fields that never hold child nodes worth visiting (contexts, operators, scalars).
_SKIPPED_FIELDS = frozenset(
    {
        "ctx",
        "op",
        "ops",
        "id",
        "arg",
        "attr",
        "name",
        "names",
        "module",
        "level",
        "kind",
        "conversion",
        "is_async",
        "type_comment",
        "simple",
    }
)


class Typedness(StrEnum):
    """How much of a function's signature carries annotations (receiver excluded)."""

    UNTYPED = "untyped"
    PARTIAL = "partial"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class FunctionMetrics:
    """Metrics of one function or method; see the module docstring for the conventions."""

    loc: int
    lloc: int
    sloc: int
    comment_lines: int
    blank_lines: int
    docstring_lines: int
    cyclomatic: int
    max_nesting_depth: int
    positional_only_params: int
    positional_or_keyword_params: int
    has_vararg: bool
    keyword_only_params: int
    has_kwarg: bool
    param_count: int
    annotated_params: int
    has_return_annotation: bool
    typedness: Typedness
    has_docstring: bool
    return_count: int
    yield_count: int
    raise_count: int
    await_count: int
    is_async: bool
    is_generator: bool


@dataclass(frozen=True, slots=True)
class _Signature:
    """Parameter counts of a function signature."""

    positional_only: int
    positional_or_keyword: int
    has_vararg: bool
    keyword_only: int
    has_kwarg: bool
    param_count: int
    annotated: int
    has_return_annotation: bool
    typedness: Typedness


def _docstring_node(node: ast.AST) -> ast.expr | None:
    """Return the docstring expression of a function, class or module node, if any."""
    body = getattr(node, "body", None)
    if not body or not isinstance(body[0], ast.Expr):
        return None
    value = body[0].value
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value
    return None


def _match_complexity(node: ast.Match) -> int:
    """Radon's count for a match: its cases, less one if some case pattern is irrefutable."""
    # radon tests ``getattr(case.pattern, "pattern", False) is None``: a bare MatchAs (``_`` or
    # a capture name) is the catch-all; at most one is discounted.
    catch_all = any(getattr(case.pattern, "pattern", False) is None for case in node.cases)
    return max(0, len(node.cases) - catch_all)


class _Scanner:
    """One iterative pass over a function: counts, nesting, statements and string layout."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = lines
        self.cyclomatic = 1
        self.max_depth = 0
        self.lloc = 1  # the def statement itself
        self.returns = 0
        self.yields = 0
        self.raises = 0
        self.awaits = 0
        self.string_spans: list[tuple[int, int]] = []
        self.docstrings: list[ast.expr] = []

    def scan(self, node: FunctionNode) -> None:
        """Scan the body of ``node`` for counts and its signature for line layout only."""
        stack: list[tuple[ast.AST, int, int]] = [(child, 0, 0) for child in node.body]
        signature: list[ast.AST] = [*node.decorator_list, node.args]
        if node.returns is not None:
            signature.append(node.returns)
        stack.extend((child, _LINES_ONLY, 0) for child in signature)
        self._run(stack)

    def _run(self, stack: list[tuple[ast.AST, int, int]]) -> None:
        push = stack.append
        pop = stack.pop
        constant, name, node_base = ast.Constant, ast.Name, ast.AST
        info_get = _TYPE_INFO.get
        while stack:
            node, flags, depth = pop()
            node_type = type(node)
            if node_type is constant:
                if node.end_lineno != node.lineno:  # type: ignore[attr-defined]
                    self.string_spans.append((node.lineno, node.end_lineno))  # type: ignore[attr-defined]
                continue
            is_stmt, fields, handler, layout_handler = info_get(node_type) or _type_info(node_type)
            if is_stmt:
                self.lloc += 1
            if flags & _LINES_ONLY:
                handler = layout_handler
            if handler is not None:
                flags, depth = handler(self, node, flags, depth)
            for field in fields:
                value = getattr(node, field)
                if type(value) is list:
                    for child in value:
                        # names are leaves: not pushing them saves a third of the work
                        if type(child) is not name and isinstance(child, node_base):
                            push((child, flags, depth))
                elif type(value) is not name and isinstance(value, node_base):
                    push((value, flags, depth))

    # --- line layout ------------------------------------------------------------------------

    def _nested_scope(self, node: ast.AST, flags: int, depth: int) -> tuple[int, int]:
        doc = _docstring_node(node)
        if doc is not None:
            self.docstrings.append(doc)
        return _LINES_ONLY, depth

    def _string(self, node: ast.AST, flags: int, depth: int) -> tuple[int, int]:
        if node.end_lineno != node.lineno:  # type: ignore[attr-defined]
            self.string_spans.append((node.lineno, node.end_lineno))  # type: ignore[attr-defined]
        return flags, depth

    # --- own code: one visit_<Kind> per node kind that matters --------------------------------

    def _cc(self, flags: int, amount: int) -> None:
        if not flags & _NO_CC:
            self.cyclomatic += amount

    def _nest(self, depth: int) -> int:
        depth += 1
        if depth > self.max_depth:
            self.max_depth = depth
        return depth

    def visit_If(self, node: ast.If, flags: int, depth: int) -> tuple[int, int]:
        self._cc(flags, 1)
        line = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        if line.lstrip().startswith("elif"):
            return flags, depth  # the parent if already nested the elif's body
        return flags, self._nest(depth)

    def visit_For(
        self, node: ast.For | ast.AsyncFor | ast.While, flags: int, depth: int
    ) -> tuple[int, int]:
        self._cc(flags, 1 + bool(node.orelse))
        return flags, self._nest(depth)

    visit_AsyncFor = visit_For
    visit_While = visit_For

    def visit_Try(self, node: ast.Try, flags: int, depth: int) -> tuple[int, int]:
        self._cc(flags, len(node.handlers) + bool(node.orelse))
        return flags, self._nest(depth)

    def visit_Match(self, node: ast.Match, flags: int, depth: int) -> tuple[int, int]:
        self._cc(flags, _match_complexity(node))
        return flags, self._nest(depth)

    def visit_With(self, node: ast.AST, flags: int, depth: int) -> tuple[int, int]:
        return flags, self._nest(depth)

    visit_AsyncWith = visit_With
    visit_TryStar = visit_With  # radon 6.0.1 gives except* no complexity

    def visit_IfExp(self, node: ast.IfExp, flags: int, depth: int) -> tuple[int, int]:
        self._cc(flags, 1)
        return flags, depth

    def visit_BoolOp(self, node: ast.BoolOp, flags: int, depth: int) -> tuple[int, int]:
        self._cc(flags, len(node.values) - 1)
        return flags, depth

    def visit_comprehension(
        self, node: ast.comprehension, flags: int, depth: int
    ) -> tuple[int, int]:
        self._cc(flags, 1 + len(node.ifs))
        return flags, depth

    def visit_Assert(self, node: ast.Assert, flags: int, depth: int) -> tuple[int, int]:
        self._cc(flags, 1)
        return flags | _NO_CC, depth

    def visit_Lambda(self, node: ast.Lambda, flags: int, depth: int) -> tuple[int, int]:
        return flags | _IN_LAMBDA, depth

    def visit_Return(self, node: ast.Return, flags: int, depth: int) -> tuple[int, int]:
        self.returns += 1
        return flags, depth

    def visit_Raise(self, node: ast.Raise, flags: int, depth: int) -> tuple[int, int]:
        self.raises += 1
        return flags, depth

    def visit_Yield(
        self, node: ast.Yield | ast.YieldFrom, flags: int, depth: int
    ) -> tuple[int, int]:
        if not flags & _IN_LAMBDA:
            self.yields += 1
        return flags, depth

    visit_YieldFrom = visit_Yield

    def visit_Await(self, node: ast.Await, flags: int, depth: int) -> tuple[int, int]:
        self.awaits += 1
        return flags, depth

    def visit_FunctionDef(self, node: ast.AST, flags: int, depth: int) -> tuple[int, int]:
        return self._nested_scope(node, flags, depth)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_JoinedStr(self, node: ast.AST, flags: int, depth: int) -> tuple[int, int]:
        return self._string(node, flags, depth)


_Handler = Callable[[_Scanner, Any, int, int], tuple[int, int]]
# Handlers for the function's own code, keyed by node type (from the visit_<Kind> methods).
_HANDLERS: dict[type, _Handler] = {
    getattr(ast, name.removeprefix("visit_")): method
    for name, method in vars(_Scanner).items()
    if name.startswith("visit_")
}
# Handlers inside nested scopes and the signature, where only the line layout is recorded.
_LAYOUT_HANDLERS: dict[type, _Handler] = {
    ast.FunctionDef: _Scanner._nested_scope,
    ast.AsyncFunctionDef: _Scanner._nested_scope,
    ast.ClassDef: _Scanner._nested_scope,
    ast.JoinedStr: _Scanner._string,
}


class _TypeInfo(NamedTuple):
    """What the scanner needs to know about one node type."""

    is_stmt: bool
    fields: tuple[str, ...]  # fields that may hold child nodes
    handler: _Handler | None  # for the function's own code
    layout_handler: _Handler | None  # inside nested scopes and the signature


_TYPE_INFO: dict[type, _TypeInfo] = {}


def _type_info(node_type: type) -> _TypeInfo:
    """Build and cache the scanner's description of a node type."""
    fields = tuple(f for f in node_type._fields if f not in _SKIPPED_FIELDS)  # type: ignore[attr-defined]
    info = _TypeInfo(
        is_stmt=issubclass(node_type, ast.stmt),
        fields=fields,
        handler=_HANDLERS.get(node_type),
        layout_handler=_LAYOUT_HANDLERS.get(node_type),
    )
    _TYPE_INFO[node_type] = info
    return info


def _signature(node: FunctionNode) -> _Signature:
    """Count parameters by kind and annotations; the receiver is left out of the totals."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    params = [*positional, *args.kwonlyargs]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    if positional and positional[0].arg in _RECEIVER_NAMES:
        params.remove(positional[0])
    annotated = sum(a.annotation is not None for a in params)
    has_return = node.returns is not None
    if annotated == len(params) and has_return:
        typedness = Typedness.FULL
    elif annotated == 0 and not has_return:
        typedness = Typedness.UNTYPED
    else:
        typedness = Typedness.PARTIAL
    return _Signature(
        positional_only=len(args.posonlyargs),
        positional_or_keyword=len(args.args),
        has_vararg=args.vararg is not None,
        keyword_only=len(args.kwonlyargs),
        has_kwarg=args.kwarg is not None,
        param_count=len(params),
        annotated=annotated,
        has_return_annotation=has_return,
        typedness=typedness,
    )


@dataclass(frozen=True, slots=True)
class _LineCounts:
    loc: int
    blank: int
    comment: int
    docstring: int


def _docstring_lines(docstrings: list[ast.expr], lines: Sequence[str]) -> set[int]:
    """Line numbers taken by docstrings, except a docstring sharing its first line with code."""
    taken: set[int] = set()
    for doc in docstrings:
        first = lines[doc.lineno - 1] if doc.lineno <= len(lines) else ""
        if first.encode("utf-8")[: doc.col_offset].strip():
            continue  # e.g. ``def f(): "doc"``: the line is code
        taken.update(range(doc.lineno, (doc.end_lineno or doc.lineno) + 1))
    return taken


def _count_lines(node: FunctionNode, scanner: _Scanner, lines: Sequence[str]) -> _LineCounts:
    """Classify every line of the function's span as blank, comment, docstring or code."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    last = node.end_lineno or node.lineno
    in_string: set[int] = set()
    for start, end in scanner.string_spans:
        in_string.update(range(start + 1, end + 1))
    docstring = _docstring_lines(scanner.docstrings, lines)
    blank = comment = 0
    for number in range(first, min(last, len(lines)) + 1):
        if number in in_string or number in docstring:
            continue
        text = lines[number - 1].lstrip()
        if not text or text.isspace():
            blank += 1
        elif text[0] == "#":
            comment += 1
    return _LineCounts(last - first + 1, blank, comment, len(docstring))


def compute_function_metrics(node: FunctionNode, lines: Sequence[str]) -> FunctionMetrics:
    """Compute the metrics of one function or method.

    Args:
        node: The function's node, from ``ast.parse`` of the whole file.
        lines: The file's source lines (with or without line endings), as from
            ``source.splitlines()``; used for line counts and to tell ``elif`` from ``else: if``.

    Returns:
        The function's metrics, following the conventions in the module docstring.
    """
    scanner = _Scanner(lines)
    own_doc = _docstring_node(node)
    if own_doc is not None:
        scanner.docstrings.append(own_doc)
    scanner.scan(node)
    counts = _count_lines(node, scanner, lines)
    sig = _signature(node)
    return FunctionMetrics(
        loc=counts.loc,
        lloc=scanner.lloc,
        sloc=counts.loc - counts.blank - counts.comment - counts.docstring,
        comment_lines=counts.comment,
        blank_lines=counts.blank,
        docstring_lines=counts.docstring,
        cyclomatic=scanner.cyclomatic,
        max_nesting_depth=scanner.max_depth,
        positional_only_params=sig.positional_only,
        positional_or_keyword_params=sig.positional_or_keyword,
        has_vararg=sig.has_vararg,
        keyword_only_params=sig.keyword_only,
        has_kwarg=sig.has_kwarg,
        param_count=sig.param_count,
        annotated_params=sig.annotated,
        has_return_annotation=sig.has_return_annotation,
        typedness=sig.typedness,
        has_docstring=own_doc is not None,
        return_count=scanner.returns,
        yield_count=scanner.yields,
        raise_count=scanner.raises,
        await_count=scanner.awaits,
        is_async=isinstance(node, ast.AsyncFunctionDef),
        is_generator=scanner.yields > 0,
    )
