"""Flow-sensitive name bindings of the call-fact extractor: which definitions of a name reach a use.

Within a module, class or function body each assignment makes the name denote the variable
holding the assigned value (a *version*; no copy is emitted), and a use reads the version that
reaches it, so a later assignment on the same path hides the earlier one. Where control flow joins
(after an `if`, `try`, `with`, `match` or loop) a name whose versions differ denotes a new merge
variable fed by a copy of each; a loop head gives every name the loop assigns a merge variable fed
by the value before the loop and the value at the end of each iteration (the back edge). `del`
leaves the name bound to nothing.

What may run at another time stays flow-insensitive, through the name's *summary* variable that
every version is copied into: reads from nested functions, lambdas and generator expressions; the
module's globals as seen from functions and other modules (the module's table of globals holds the
summaries, so module-level code reads reaching versions but a function sees every value the module
assigns); and a name some nested scope rebinds (`global`, `nonlocal`, `:=` in a generator
expression), which reads its summary from that nested definition on (it is *pinned*). Comprehension
variables keep one variable each. Attributes and containers are unaffected (they have no versions).

A rebinding is an `Op.REBIND`: should the solve find no value for the new one (a call through a
decorator or external the analysis cannot see into, `q = q.filter(...)`), or should the call have
a target whose result is opaque, the name keeps its earlier values; a call known to return
nothing (None, numbers) kills them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from codeintel.analysis.callgraph.model import Op
from codeintel.analysis.callgraph.scopes import Loop, Scope, resolve_scope

ABSENT = -2  # no definition of the name reaches (-1: one does, but it holds no tracked value)
State = tuple[dict[str, int], bool]  # a scope's env and whether the point is reachable


class Bindings:
    """Variables, the constraint ops and the flow-sensitive name bindings of one module's extraction."""

    scope: Scope
    module_scope: Scope

    def __init__(self) -> None:
        self.n_vars = 0
        self.ops: list[tuple[int, ...]] = []
        self.strings: dict[str, int] = {}
        self.weak = 0  # > 0 inside a conditional expression or comprehension: := may not run
        self.call_results: dict[int, int] = {}  # variable holding a call's result -> its site

    def var(self) -> int:
        self.n_vars += 1
        return self.n_vars - 1

    def sid(self, text: str) -> int:
        found = self.strings.get(text)
        if found is None:
            found = self.strings[text] = len(self.strings)
        return found

    def copy(self, dst: int, src: int) -> None:
        if src >= 0 and src != dst:
            self.ops.append((Op.COPY, dst, src))

    def merge(self, values: Iterable[int]) -> int:
        """A variable holding the union of `values` (-1: none; a single variable is returned as is)."""
        seen: list[int] = []
        for value in values:
            if value >= 0 and value not in seen:
                seen.append(value)
        if len(seen) <= 1:
            return seen[0] if seen else -1
        dst = self.var()
        self.ops.extend((Op.COPY, dst, value) for value in seen)
        return dst

    # ----------------------------------------------------------------- names
    def load_name(self, name: str) -> int:
        """The variable a read of `name` in the current scope sees (-1: none)."""
        scope = self.scope
        target = resolve_scope(scope, name)
        while True:
            if target.kind == "comp":
                return self.comp_var(target, name)
            if not _immediate(scope, target):
                return self.summary(target, name)
            found = target.env.get(name, ABSENT)
            if found != ABSENT:
                return found
            if target.kind == "class" and target.parent is not None:
                # a class body reads a name it binds only later from the enclosing scopes
                target = resolve_scope(target.parent, name)
                continue
            # a function's local read before any definition reaches it is unbound; module code
            # reading a global it has not bound yet gets what the module's table of globals has
            return -1 if target.kind == "function" else self.summary(target, name)

    def store_name(self, name: str, src: int) -> None:
        """Bind `name` in the current scope to the value of variable `src` (-1: an untracked value)."""
        scope = self.scope
        if name in scope.global_decl:
            self.module_scope.bound.add(name)
        target = resolve_scope(scope, name)
        if target.kind == "comp":
            self.copy(self.comp_var(target, name), src)
        elif target is scope.real and _immediate(scope, target):
            self.bind(target, name, src, weak=self.weak > 0)
        else:  # a nested scope rebinds it: it may run at any time
            self.copy(self.summary(target, name), src)
            self.pin(target, name)

    def bind(self, target: Scope, name: str, src: int, weak: bool = False) -> None:
        """A new version of `name` in flow scope `target`; `weak` keeps the previous ones too."""
        kind = target.kind
        if kind == "module":
            self.copy(self.summary(target, name), src)
        else:
            if kind == "class" and src >= 0:
                self.ops.append((Op.STORE_ATTR, target.class_var, self.sid(name), src))
            if src >= 0:
                target.versions.setdefault(name, []).append(src)
            summary = target.vars.get(name)
            if summary is not None:
                self.copy(summary, src)
        if name in target.pinned:
            return
        previous = target.env.get(name, -1)
        if weak:
            src = self.merge((previous, src))
        elif previous >= 0 and src >= 0 and src != previous:
            # should the analysis find no value for the new one, the name keeps its earlier values
            # (`q = q.filter(...)` through a decorator it cannot see into) unless the call is
            # known to return nothing
            rebound = self.var()
            self.ops.append((Op.REBIND, rebound, src, previous, self.call_results.get(src, -1)))
            src = rebound
        self.set_env(target, name, src)

    def kill_name(self, name: str) -> None:
        """`del name`: no definition reaches the reads that follow (nested scopes keep their view)."""
        scope = self.scope
        target = resolve_scope(scope, name)
        if target.kind != "comp" and target is scope.real and name not in target.pinned:
            self.set_env(target, name, -1)

    def set_env(self, target: Scope, name: str, value: int) -> None:
        env = target.env
        for record in target.recorders:
            versions = record.get(name)
            if versions is None:
                record[name] = [env.get(name, -1), value]
            else:
                versions.append(value)
        env[name] = value

    def pin(self, target: Scope, name: str) -> None:
        """From here on every read of `name` in `target` sees all its values (a nested scope rebinds it)."""
        if name not in target.pinned:
            target.pinned.add(name)
            self.set_env(target, name, self.summary(target, name))

    def summary(self, target: Scope, name: str) -> int:
        """The variable holding every value `name` is given in `target` (created on first use)."""
        found = target.vars.get(name)
        if found is None:
            found = target.vars[name] = self.var()
            for version in target.versions.get(name, ()):
                self.ops.append((Op.COPY, found, version))
        return found

    def comp_var(self, target: Scope, name: str) -> int:
        found = target.vars.get(name)
        if found is None:
            found = target.vars[name] = self.var()
        return found

    # ----------------------------------------------------------------- control flow
    def state(self) -> State:
        return self.scope.env, self.scope.live

    def enter(self, state: State, fresh: bool = True) -> None:
        """Continue extraction from `state` (a copy of its env unless `fresh` is False)."""
        env, live = state
        self.scope.env = dict(env) if fresh else env
        self.scope.live = live

    def jump(self) -> None:
        """What follows is reached by no path (after return, raise, break or continue)."""
        self.scope.live = False

    def join(self, states: Sequence[State]) -> None:
        """Continue from the point where the reachable `states` meet (unreachable if none is)."""
        live = [env for env, reachable in states if reachable]
        if len(live) <= 1:
            env = live[0] if live else states[0][0]
            self.enter((env, bool(live)), fresh=False)
            return
        result = dict(live[0])
        differ: set[str] = set()
        for env in live[1:]:
            for name, value in env.items():
                if result.get(name, ABSENT) != value:
                    differ.add(name)
                    result.setdefault(name, value)
        for name in sorted(differ):
            result[name] = self.merge(env.get(name, -1) for env in live)
        self.enter((result, True), fresh=False)

    def loop_head(self, names: Iterable[str]) -> dict[str, int]:
        """Give each name the loop assigns a merge variable at the loop head (before: its value)."""
        scope = self.scope
        env = scope.env
        heads: dict[str, int] = {}
        for name in sorted(set(names)):
            if name in scope.pinned or resolve_scope(scope, name) is not scope:
                continue
            head = heads[name] = self.var()
            self.copy(head, env.get(name, -1))
            self.set_env(scope, name, head)
        return heads

    def loop_back(self, heads: dict[str, int], loop: Loop) -> None:
        """Feed the loop head with the states that start another iteration."""
        scope = self.scope
        states = [env for env in (*loop.continues, scope.env if scope.live else None) if env is not None]
        for name, head in heads.items():
            seen = {head}
            for env in states:
                value = env.get(name, -1)
                if value not in seen:
                    seen.add(value)
                    self.copy(head, value)

    def open_record(self) -> dict[str, list[int]]:
        """Start recording the versions names take (for the exception edges of a `try` or `with`)."""
        record: dict[str, list[int]] = {}
        self.scope.recorders.append(record)
        return record

    def close_record(self, record: dict[str, list[int]]) -> None:
        closed = self.scope.recorders.pop()
        assert closed is record, "records close in the order they opened"

    def widened(self, env: dict[str, int], record: dict[str, list[int]]) -> dict[str, int]:
        """`env` where each name of `record` holds every version it took (an exception may leave
        at any point of the recorded code)."""
        result = dict(env)
        for name in sorted(record):
            result[name] = self.merge((env.get(name, -1), *record[name]))
        return result


def _immediate(scope: Scope, target: Scope) -> bool:
    """Whether code of `scope` runs while `target`'s body is at the point being extracted
    (only class bodies and eager comprehensions lie between), not at some other time."""
    while scope is not target:
        if scope.kind == "function" or scope.lazy:
            return False
        if scope.parent is None:
            return False
        scope = scope.parent
    return True


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def assigned_names(nodes: Iterable[ast.AST]) -> set[str]:
    """Names that statements or expressions `nodes` bind in their own scope (nested function and
    class bodies excluded; `:=` inside comprehensions included), for loop heads."""
    out: set[str] = set()
    stack = list(nodes)
    push = stack.append
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is ast.Name:
            if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                out.add(node.id)  # type: ignore[attr-defined]
        elif kind in _NESTED:
            out.add(node.name)  # type: ignore[attr-defined]
        elif kind in _COMPREHENSIONS:
            out.update(
                sub.target.id
                for sub in ast.walk(node)
                if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name)
            )
        elif kind in _IMPORTS:
            for alias in node.names:  # type: ignore[attr-defined]
                if alias.name != "*":
                    out.add(alias.asname or alias.name.partition(".")[0])
        elif kind is not ast.Lambda:
            for field in node._fields:  # the children, as ast.iter_child_nodes gives them but faster
                value = getattr(node, field, None)
                if type(value) is list:
                    stack.extend(item for item in value if isinstance(item, ast.AST))
                elif isinstance(value, ast.AST):
                    if field != "ctx":
                        push(value)
                elif field in _NAME_FIELDS and type(value) is str:  # except ... as, match captures
                    out.add(value)
    return out


_IMPORTS = (ast.Import, ast.ImportFrom)
_NAME_FIELDS = ("name", "rest")
