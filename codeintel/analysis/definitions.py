"""Definitions in one module: the module itself, its classes, functions and methods.

One traversal yields every definition with its qualified name (dotted path of enclosing class
and function names, no `<locals>`), kind, parent, spans (the start includes decorators),
decorators, docstring, async flag, and whether it runs only under a type checker (in the body of
`if TYPE_CHECKING:`, or the else branch of `if not TYPE_CHECKING:`, nested ones included: a stub
whose runtime twin is in the other branch).  Two definitions with the same qualified name in one
file (a property and its setter, conditional definitions) get ordinals 0, 1, ... in source order.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
DefNode = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


class DefKind(StrEnum):
    MODULE = "module"
    CLASS = "class"
    FUNCTION = "function"
    METHOD = "method"


@dataclass(frozen=True, slots=True)
class Definition:
    """One module, class, function or method (a row of core.ast_nodes, plus its node)."""

    path: str
    module: str
    qualname: str
    ordinal: int
    kind: str
    name: str
    parent_qualname: str | None
    start_line: int
    end_line: int
    start_col: int
    end_col: int
    def_line: int
    decorators: tuple[str, ...]
    docstring: str | None
    is_async: bool
    node: DefNode
    type_checking: bool = False

    @property
    def full_name(self) -> str:
        return self.module if self.kind == DefKind.MODULE else f"{self.module}.{self.qualname}"


def iter_definitions(tree: ast.Module, module: str, path: str, n_lines: int) -> Iterator[Definition]:
    """Every definition of a parsed module, the module first, then in source order."""
    yield Definition(
        path,
        module,
        module,
        0,
        DefKind.MODULE,
        module.rpartition(".")[2],
        None,
        1,
        max(n_lines, 1),
        0,
        0,
        1,
        (),
        ast.get_docstring(tree, clean=False),
        False,
        tree,
    )
    checking: set[int] = set()
    for node, qualname, ordinal, kind, parent in walk_definitions(tree, checking):
        yield _definition(node, path, module, qualname, ordinal, kind, parent, id(node) in checking)


def walk_definitions(
    tree: ast.Module, type_checking: set[int] | None = None
) -> Iterator[tuple[ast.ClassDef | FunctionNode, str, int, DefKind, str | None]]:
    """(node, qualified name, same-name ordinal, kind, parent's qualified name) of every class,
    function and method in source order: the naming rules every reader of definitions shares.
    `type_checking`, when given, receives the ids of the nodes that run only under a type
    checker (`type_checking_branches`)."""
    seen: dict[str, int] = {}
    # explicit stack (not recursion): deeply nested analysed code must not exhaust the stack;
    # definitions are statements, so only statement lists are walked, never expressions
    stack: list[tuple[ast.stmt, str | None, str, bool]] = [
        (child, None, DefKind.MODULE, False) for child in reversed(tree.body)
    ]
    while stack:
        node, parent, parent_kind, checking = stack.pop()
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            qualname = node.name if parent is None else f"{parent}.{node.name}"
            ordinal = seen.get(qualname, 0)
            seen[qualname] = ordinal + 1
            kind = _kind(node, parent_kind)
            if checking and type_checking is not None:
                type_checking.add(id(node))
            yield node, qualname, ordinal, kind, parent
            stack.extend((child, qualname, kind, checking) for child in reversed(node.body))
        elif isinstance(node, ast.If) and type_checking is not None:
            body, orelse = type_checking_branches(node)
            stack.extend((child, parent, parent_kind, checking or orelse) for child in reversed(node.orelse))
            stack.extend((child, parent, parent_kind, checking or body) for child in reversed(node.body))
        else:
            stack.extend((child, parent, parent_kind, checking) for child in reversed(_nested_statements(node)))


def type_checking_branches(node: ast.If) -> tuple[bool, bool]:
    """Whether the body and whether the else branch of `node` run only under a type checker:
    `if TYPE_CHECKING:` (or `<name>.TYPE_CHECKING`: `typing.`, `t.`...), `if not TYPE_CHECKING:`."""
    test = node.test
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    inner = test.operand if isinstance(test, ast.UnaryOp) and negated else test
    named = (isinstance(inner, ast.Name) and inner.id == "TYPE_CHECKING") or (
        isinstance(inner, ast.Attribute) and inner.attr == "TYPE_CHECKING"
    )
    return (named and not negated, named and negated)


def _nested_statements(node: ast.stmt) -> list[ast.stmt]:
    """Statements directly inside a compound statement (if/for/while/try/with/match bodies)."""
    found: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        found.extend(getattr(node, name, ()))
    for handler in getattr(node, "handlers", ()):
        found.extend(handler.body)
    for case in getattr(node, "cases", ()):
        found.extend(case.body)
    return found


def _kind(node: ast.AST, parent_kind: str) -> DefKind:
    if isinstance(node, ast.ClassDef):
        return DefKind.CLASS
    return DefKind.METHOD if parent_kind == DefKind.CLASS else DefKind.FUNCTION


def _definition(
    node: ast.ClassDef | FunctionNode,
    path: str,
    module: str,
    qualname: str,
    ordinal: int,
    kind: DefKind,
    parent: str | None,
    type_checking: bool,
) -> Definition:
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return Definition(
        path=path,
        module=module,
        qualname=qualname,
        ordinal=ordinal,
        kind=kind,
        name=node.name,
        parent_qualname=parent,
        start_line=start,
        end_line=node.end_lineno or node.lineno,
        start_col=node.col_offset,
        end_col=node.end_col_offset or 0,
        def_line=node.lineno,
        decorators=tuple(_unparse(d) for d in node.decorator_list),
        docstring=ast.get_docstring(node, clean=False),
        is_async=isinstance(node, ast.AsyncFunctionDef),
        type_checking=type_checking,
        node=node,
    )


def _unparse(node: ast.expr) -> str:
    try:
        return ast.unparse(node)[:300]
    except (RecursionError, ValueError):
        return "<unparseable>"
