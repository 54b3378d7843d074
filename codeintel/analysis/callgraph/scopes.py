"""Lexical scopes for call-fact extraction: which names a body binds, and where a name lives.

A pre-scan of each function, class or module body (not descending into nested scopes) collects
the names it binds, its `global` / `nonlocal` declarations and whether it yields. The extractor
then resolves every name reference statically with Python's LEGB rules (class bodies are not
visible from nested functions), without looking at any other file.
"""

from __future__ import annotations

import ast

_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class Scope:
    """One lexical scope being extracted (module, class, function or comprehension)."""

    __slots__ = (
        "bound",
        "class_index",
        "class_var",
        "first_param",
        "function_index",
        "generator",
        "global_decl",
        "index",
        "kind",
        "lambdas",
        "nonlocal_decl",
        "parent",
        "qual",
        "ret",
        "vars",
    )

    def __init__(self, kind: str, qual: str, index: int, parent: Scope | None) -> None:
        self.kind = kind
        self.qual = qual
        self.index = index
        self.parent = parent
        self.bound: set[str] = set()
        self.global_decl: set[str] = set()
        self.nonlocal_decl: set[str] = set()
        self.vars: dict[str, int] = {}
        self.lambdas = 0
        self.class_index = -1
        self.class_var = -1
        self.function_index = -1
        self.first_param = -1
        self.generator = False
        self.ret = -1

    @property
    def real(self) -> Scope:
        """The nearest enclosing scope that is not a comprehension (calls are attributed to it)."""
        scope = self
        while scope.kind == "comp" and scope.parent is not None:
            scope = scope.parent
        return scope


def scan_body(scope: Scope, body: list[ast.stmt]) -> None:
    """Record in `scope` the names `body` binds, its declarations and whether it yields.

    Args:
        scope: The scope to fill.
        body: The statements of the scope (nested scopes are not entered).
    """
    stack: list[ast.AST] = list(body)
    bound = scope.bound
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                bound.add(node.id)
            continue
        if isinstance(node, _NESTED):
            _scan_nested_header(node, bound, stack)
            continue
        if isinstance(node, _COMPS):
            stack.append(node.generators[0].iter)
            continue
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            scope.generator = True
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            _scan_import(node, bound)
        elif isinstance(node, ast.Global):
            scope.global_decl.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            scope.nonlocal_decl.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        stack.extend(ast.iter_child_nodes(node))


def _scan_nested_header(node: ast.AST, bound: set[str], stack: list[ast.AST]) -> None:
    """A nested def/class binds its name; its decorators, defaults and bases belong outside."""
    if isinstance(node, ast.Lambda):
        stack.extend(node.args.defaults)
        stack.extend(d for d in node.args.kw_defaults if d is not None)
        return
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    bound.add(node.name)
    stack.extend(node.decorator_list)
    if isinstance(node, ast.ClassDef):
        stack.extend(node.bases)
        stack.extend(k.value for k in node.keywords)
    else:
        stack.extend(node.args.defaults)
        stack.extend(d for d in node.args.kw_defaults if d is not None)


def _scan_import(node: ast.Import | ast.ImportFrom, bound: set[str]) -> None:
    for alias in node.names:
        if alias.name == "*":
            continue
        if alias.asname:
            bound.add(alias.asname)
        elif isinstance(node, ast.Import):
            bound.add(alias.name.partition(".")[0])
        else:
            bound.add(alias.name)


def resolve_scope(scope: Scope, name: str) -> Scope:
    """Return the scope whose variable `name` denotes when read from `scope`.

    Args:
        scope: The scope the name is read in.
        name: The name.

    Returns:
        The binding scope; the module scope for globals, builtins and unknown names.
    """
    current: Scope | None = scope
    innermost = True
    module = scope
    while module.parent is not None:
        module = module.parent
    while current is not None:
        if current.kind == "module" or name in current.global_decl:
            return module
        visible = innermost or current.kind != "class"
        if visible and name in current.bound and name not in current.nonlocal_decl:
            return current
        if current.kind != "comp":
            innermost = False
        current = current.parent
    return module
