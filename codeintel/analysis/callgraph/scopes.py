"""Lexical scopes for call-fact extraction: which names a body binds, and where a name lives.

A pre-scan of each function, class or module body (not descending into nested scopes) collects
the names it binds, its `global` / `nonlocal` declarations and whether it yields. The extractor
then resolves every name reference statically with Python's LEGB rules (class bodies are not
visible from nested functions), without looking at any other file. A module, class or function
scope also carries the state of its flow-sensitive bindings (see `flow`): which variable each
name denotes at the point being extracted, and the loops and `try` bodies around that point.
"""

from __future__ import annotations

import ast


class Scope:
    """One lexical scope being extracted (module, class, function or comprehension)."""

    __slots__ = (
        "bound",
        "class_index",
        "class_var",
        "env",
        "first_param",
        "function_index",
        "generator",
        "global_decl",
        "index",
        "kind",
        "lambdas",
        "lazy",
        "live",
        "loops",
        "nonlocal_decl",
        "parent",
        "pinned",
        "qual",
        "recorders",
        "ret",
        "returns",
        "vars",
        "versions",
    )

    def __init__(self, kind: str, qual: str, index: int, parent: Scope | None) -> None:
        self.kind = kind
        self.qual = qual
        self.index = index
        self.parent = parent
        self.bound: set[str] = set()
        self.global_decl: set[str] = set()
        self.nonlocal_decl: set[str] = set()
        # comprehension variables; of the other scopes, the summary variable of a name (every
        # value it is ever given: what nested scopes, other modules and pinned names read)
        self.vars: dict[str, int] = {}
        # flow-sensitive state (module, class and function scopes): name -> the variable of the
        # definitions reaching the current point (-1: bound to no value we track); live is False
        # in code no path reaches (after return, raise, break, continue)
        self.env: dict[str, int] = {}
        self.live = True
        self.loops: list[Loop] = []
        self.recorders: list[dict[str, list[int]]] = []  # open `try`/`with` bodies: name -> versions
        self.versions: dict[str, list[int]] = {}  # function and class scopes: every version of a name
        self.pinned: set[str] = set()  # names a nested scope rebinds: read through the summary
        self.lazy = False  # a generator expression: its body runs when iterated, not where it stands
        self.lambdas = 0
        self.class_index = -1
        self.class_var = -1
        self.function_index = -1
        self.first_param = -1
        self.generator = False
        self.ret = -1
        self.returns: list[int] = []

    @property
    def real(self) -> Scope:
        """The nearest enclosing scope that is not a comprehension (calls are attributed to it)."""
        scope = self
        while scope.kind == "comp" and scope.parent is not None:
            scope = scope.parent
        return scope


class Loop:
    """A loop being extracted: the states its `break` and `continue` statements leave with."""

    __slots__ = ("breaks", "continues")

    def __init__(self) -> None:
        self.breaks: list[dict[str, int]] = []
        self.continues: list[dict[str, int]] = []


def scan_body(scope: Scope, body: list[ast.stmt]) -> None:
    """Record in `scope` the names `body` binds and its `global` / `nonlocal` declarations.

    Only statements are walked (nested scopes are not entered); names bound inside expressions
    (`:=`) are added by the extractor when it meets them.

    Args:
        scope: The scope to fill.
        body: The statements of the scope.
    """
    stack: list[ast.AST] = list(body)
    bound = scope.bound
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is ast.Assign:
            for target in node.targets:  # type: ignore[attr-defined]
                _bind_target(target, bound)
        elif kind in (ast.AugAssign, ast.AnnAssign):
            _bind_target(node.target, bound)  # type: ignore[attr-defined]
        elif kind in _NESTED:
            bound.add(node.name)  # type: ignore[attr-defined]
        elif kind in (ast.Import, ast.ImportFrom):
            _scan_import(node, bound)  # type: ignore[arg-type]
        elif kind in (ast.For, ast.AsyncFor):
            _bind_target(node.target, bound)  # type: ignore[attr-defined]
            stack.extend(node.body)  # type: ignore[attr-defined]
            stack.extend(node.orelse)  # type: ignore[attr-defined]
        elif kind in (ast.With, ast.AsyncWith):
            for item in node.items:  # type: ignore[attr-defined]
                if item.optional_vars is not None:
                    _bind_target(item.optional_vars, bound)
            stack.extend(node.body)  # type: ignore[attr-defined]
        elif kind in (ast.If, ast.While):
            stack.extend(node.body)  # type: ignore[attr-defined]
            stack.extend(node.orelse)  # type: ignore[attr-defined]
        elif kind in _TRY:
            _scan_try(node, bound, stack)
        elif kind is ast.Global:
            scope.global_decl.update(node.names)  # type: ignore[attr-defined]
        elif kind is ast.Nonlocal:
            scope.nonlocal_decl.update(node.names)  # type: ignore[attr-defined]
        elif kind is ast.Delete:
            for target in node.targets:  # type: ignore[attr-defined]
                _bind_target(target, bound)
        elif kind is ast.Match:
            for case in node.cases:  # type: ignore[attr-defined]
                for sub in ast.walk(case.pattern):
                    name = getattr(sub, "name", None)
                    if isinstance(name, str):
                        bound.add(name)
                stack.extend(case.body)


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_TRY = (ast.Try, ast.TryStar)


def _scan_try(node: ast.AST, bound: set[str], stack: list[ast.AST]) -> None:
    assert isinstance(node, (ast.Try, ast.TryStar))
    stack.extend(node.body)
    for handler in node.handlers:
        if handler.name:
            bound.add(handler.name)
        stack.extend(handler.body)
    stack.extend(node.orelse)
    stack.extend(node.finalbody)


def _bind_target(target: ast.expr, bound: set[str]) -> None:
    if isinstance(target, ast.Name):
        bound.add(target.id)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _bind_target(element, bound)
    elif isinstance(target, ast.Starred):
        _bind_target(target.value, bound)


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
