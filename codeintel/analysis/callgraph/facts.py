"""Per-file phase of the call graph: turn one module's syntax tree into `ModuleFacts`.

The extractor walks the tree once and writes a constraint program (copies, allocations,
attribute and subscript loads/stores, calls, imports) over module-local variable numbers. Names
are resolved lexically here, and flow-sensitively within a scope (`flow`: a use sees only the
definitions that reach it; the body of `if TYPE_CHECKING:` and the else branch of
`if not TYPE_CHECKING:` never run); everything that needs other files (imports, base classes, builtins
shadowed by star imports) is left to the solver. A file whose tree is too deep to walk yields
facts with an error and no constraints instead of an exception.
"""

from __future__ import annotations

import ast
import builtins
import logging
from collections.abc import Callable

from codeintel.analysis.callgraph.flow import Bindings, assigned_names
from codeintel.analysis.callgraph.model import (
    NO_BOUND,
    Alloc,
    ClassFacts,
    Flavor,
    FunctionFacts,
    ModuleFacts,
    Op,
    SiteFacts,
    SiteShape,
)
from codeintel.analysis.callgraph.scopes import Loop, Scope, resolve_scope, scan_body
from codeintel.analysis.definitions import type_checking_branches

logger = logging.getLogger(__name__)

BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("__") or n == "__import__")
MAX_CONST_LEN = 60
MAX_TEXT = 200
_TRANSPARENT_DECORATORS = frozenset(
    {"staticmethod", "classmethod", "property", "cached_property", "abstractmethod", "overload"}
)
_ACCESSOR_DECORATORS = frozenset({"setter", "getter", "deleter"})
_DYNAMIC_BUILTINS = frozenset({"eval", "exec", "compile", "__import__"})
_HEAPS = {ast.List: Alloc.LIST, ast.Tuple: Alloc.TUPLE, ast.Set: Alloc.SET}
_COMP_HEAPS = {ast.ListComp: Alloc.LIST, ast.SetComp: Alloc.SET, ast.GeneratorExp: Alloc.GENERATOR}


def extract_call_facts(tree: ast.Module, module: str, path: str, is_package: bool) -> ModuleFacts:
    """Extract the call-graph facts of one module.

    Args:
        tree: The parsed module.
        module: Its import name (`pkg.mod`; a package's `__init__` is `pkg`).
        path: Its path, stored in the call-site rows.
        is_package: Whether the file is a package `__init__` (matters for relative imports).

    Returns:
        The module's facts; a tree too deep to walk gives facts with no constraints and the
        error recorded in `errors`.
    """
    try:
        return _Extractor(module, path, is_package).run(tree)
    except RecursionError:
        logger.warning("call facts: %s nests too deeply; no call facts extracted", path)
        empty = _Extractor(module, path, is_package)
        return empty.finish(errors=(f"{path}: RecursionError: code nests too deeply to analyse",))


def expr_text(node: ast.expr) -> str:
    """Return short source-like text of a called expression (cheap for common shapes)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{expr_text(node.value)}.{node.attr}"[:MAX_TEXT]
    if isinstance(node, ast.Call):
        return f"{expr_text(node.func)}(...)"[:MAX_TEXT]
    try:
        return ast.unparse(node)[:MAX_TEXT]
    except (RecursionError, ValueError):
        return type(node).__name__


def _constant_key(node: ast.expr) -> str | None:
    """Return the heap key of a constant subscript/dict key ("s:name", "i:3"), else None."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str) and len(value) <= MAX_CONST_LEN:
            return "s:" + value
        if isinstance(value, int) and not isinstance(value, bool):
            return f"i:{value}"
    elif (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        return f"i:{-node.operand.value}"
    return None


class _Extractor(Bindings):
    """Walks one module and accumulates its constraint program."""

    def __init__(self, module: str, path: str, is_package: bool) -> None:
        super().__init__()
        self.module = module
        self.path = path
        self.is_package = is_package
        self.scopes: list[str] = [""]
        self.functions: list[FunctionFacts | None] = []
        self.classes: list[ClassFacts | None] = []
        self.sites: list[SiteFacts] = []
        self.consts: dict[tuple[int, int], int] = {}
        self.heaps = 0
        self.all_names: list[str] | None = None
        self.star_imports: list[str] = []
        self.module_scope = Scope("module", "", 0, None)
        self.scope = self.module_scope
        self.last_function = -1
        self.pytest_modules: set[str] = set()  # local names of the pytest module
        self.fixture_decorators: set[str] = set()  # local names of pytest.fixture
        self.fixtures: list[tuple[str, int]] = []
        self.fixture_params: list[tuple[int, str, int]] = []

    # ----------------------------------------------------------------- plumbing
    def const(self, kind: Alloc, text: str) -> int:
        key = (int(kind), self.sid(text))
        found = self.consts.get(key)
        if found is None:
            found = self.consts[key] = self.var()
            self.ops.append((Op.ALLOC, found, *key))
        return found

    def heap(self, kind: Alloc) -> int:
        dst = self.var()
        self.heaps += 1
        self.ops.append((Op.ALLOC, dst, kind, self.heaps))
        return dst

    def site(self, node: ast.AST, text: str, shape: SiteShape) -> int:
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", 0)
        self.sites.append(SiteFacts(self.scope.real.index, line, col, text[:MAX_TEXT], shape))
        return len(self.sites) - 1

    def run(self, tree: ast.Module) -> ModuleFacts:
        scan_body(self.module_scope, tree.body)
        self.stmts(tree.body)
        return self.finish(errors=())

    def finish(self, errors: tuple[str, ...]) -> ModuleFacts:
        module_scope = self.module_scope
        names = module_scope.vars
        glob = tuple((n, names[n], n in module_scope.bound) for n in names)
        return ModuleFacts(
            module=self.module,
            path=self.path,
            is_package=self.is_package,
            n_vars=self.n_vars,
            scopes=tuple(self.scopes),
            strings=tuple(self.strings),
            globals=glob,
            all_names=None if self.all_names is None else tuple(self.all_names),
            star_imports=tuple(self.star_imports),
            functions=tuple(f for f in self.functions if f is not None),
            classes=tuple(c for c in self.classes if c is not None),
            sites=tuple(self.sites),
            ops=tuple(self.ops),
            errors=errors,
            fixtures=tuple(self.fixtures),
            fixture_params=tuple(self.fixture_params),
        )

    # ----------------------------------------------------------------- names
    def is_builtin(self, name: str) -> bool:
        scope = resolve_scope(self.scope, name)
        return scope.kind == "module" and name not in scope.bound and name in BUILTIN_NAMES

    # ----------------------------------------------------------------- statements
    def stmts(self, body: list[ast.stmt]) -> None:
        index = 0
        while index < len(body):
            node = body[index]
            handler = _STMT_HANDLERS.get(type(node))
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Dict, ast.List)):
                index = self.assign_folded(body, index)
                continue
            if handler is not None:
                handler(self, node)
            else:
                self.generic(node)
            index += 1

    def generic(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                self.stmts([child])
            elif isinstance(child, ast.expr):
                self.expr(child)
            else:
                self.generic(child)

    def s_If(self, node: ast.If) -> None:
        self.expr(node.test)
        checker_body, checker_else = type_checking_branches(node)
        if checker_body or checker_else:  # `TYPE_CHECKING` is false when the code runs
            self.stmts(node.orelse if checker_body else node.body)
            return
        start = self.state()
        self.enter(start)
        self.stmts(node.body)
        body = self.state()
        self.enter(start, fresh=False)
        self.stmts(node.orelse)
        self.join([body, self.state()])

    def s_While(self, node: ast.While) -> None:
        heads = self.loop_head(assigned_names([node.test, *node.body]))
        self.expr(node.test)
        forever = isinstance(node.test, ast.Constant) and bool(node.test.value)
        done = (dict(self.scope.env), self.scope.live and not forever)
        loop = self.loop_body(node.body, heads)
        self.loop_exit(node.orelse, done, loop)

    def loop_body(self, body: list[ast.stmt], heads: dict[str, int]) -> Loop:
        loop = Loop()
        self.scope.loops.append(loop)
        self.stmts(body)
        self.scope.loops.pop()
        self.loop_back(heads, loop)
        return loop

    def loop_exit(self, orelse: list[ast.stmt], done: tuple[dict[str, int], bool], loop: Loop) -> None:
        """After the body: `else` runs when the loop ends at its head, `break` skips it."""
        self.enter(done, fresh=False)
        self.stmts(orelse)
        self.join([self.state(), *((env, True) for env in loop.breaks)])

    def s_Break(self, node: ast.Break | ast.Continue) -> None:
        loops = self.scope.loops
        if loops:
            jumps = loops[-1].breaks if isinstance(node, ast.Break) else loops[-1].continues
            if self.scope.live:
                jumps.append(dict(self.scope.env))
        self.jump()

    s_Continue = s_Break

    def s_Pass(self, node: ast.stmt) -> None:
        return

    s_Global = s_Nonlocal = s_Pass

    def s_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.kill_name(target.id)
            elif isinstance(target, (ast.Tuple, ast.List)):
                self.s_Delete(ast.Delete(targets=target.elts))
            else:
                self.expr(target)

    def s_Assert(self, node: ast.Assert) -> None:
        self.expr(node.test)
        if node.msg is not None:
            self.expr(node.msg)

    def s_Expr(self, node: ast.Expr) -> None:
        if not isinstance(node.value, ast.Constant):
            self.expr(node.value)

    def s_Assign(self, node: ast.Assign) -> None:
        self.assign(node.targets, node.value)

    def assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        if isinstance(value, (ast.Tuple, ast.List)) and all(isinstance(t, (ast.Tuple, ast.List)) for t in targets):
            elements = [self.expr(e) for e in value.elts if not isinstance(e, ast.Starred)]
            if len(elements) == len(value.elts):
                for target in targets:
                    self.store_unpack(target, value, elements)
                return
        src = self.expr(value)
        if (
            self.scope.kind == "module"
            and len(targets) == 1
            and isinstance(targets[0], ast.Name)
            and targets[0].id == "__all__"
        ):
            self.all_names = _string_list(value)
        for target in targets:
            self.store(target, src)

    def assign_folded(self, body: list[ast.stmt], index: int) -> int:
        """Fold `d = {...}` followed by `d[k] = v` stores into the literal (a strong update)."""
        node = body[index]
        assert isinstance(node, ast.Assign)
        literal, extra, consumed = _fold_literal(node, body, index + 1)
        for dropped in extra:
            self.expr(dropped)
        self.assign(node.targets, literal)
        return index + 1 + consumed

    def s_AugAssign(self, node: ast.AugAssign) -> None:
        src = self.expr(node.value)
        target = node.target
        if isinstance(target, ast.Name):
            if isinstance(node.value, (ast.List, ast.Tuple)):  # `x += [f]`: x keeps what it had, and more
                self.weak += 1
                self.store_name(target.id, src)
                self.weak -= 1
            return
        self.store(target, src)

    def s_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.store(node.target, self.expr(node.value))

    def s_Return(self, node: ast.Return) -> None:
        if node.value is None:
            self.jump()
            return
        src = self.expr(node.value)
        if src >= 0:
            self.scope.real.returns.append(src)
        self.jump()

    def s_For(self, node: ast.For | ast.AsyncFor) -> None:
        src = self.expr(node.iter)
        tmp = self.var()
        if src >= 0:
            site = self.site(node.iter, expr_text(node.iter), SiteShape.PROTOCOL)
            self.ops.append((Op.ITER, tmp, src, site))
        heads = self.loop_head(assigned_names([node.target, *node.body]))
        done = (dict(self.scope.env), self.scope.live)
        self.store(node.target, tmp)
        loop = self.loop_body(node.body, heads)
        self.loop_exit(node.orelse, done, loop)

    s_AsyncFor = s_For

    def s_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            src = self.expr(item.context_expr)
            tmp = self.var()
            if src >= 0:
                site = self.site(item.context_expr, expr_text(item.context_expr), SiteShape.PROTOCOL)
                self.ops.append((Op.WITH, tmp, src, site))
            if item.optional_vars is not None:
                self.store(item.optional_vars, tmp)
        # __exit__ may swallow an exception raised anywhere in the body
        live = self.scope.live
        record = self.open_record()
        self.stmts(node.body)
        self.close_record(record)
        if record:
            end = self.state()
            self.join([end, (self.widened(end[0], record), live)])

    s_AsyncWith = s_With

    def s_Try(self, node: ast.Try) -> None:
        live = self.scope.live
        final = self.open_record() if node.finalbody else None  # what `finally` may see
        caught = self.open_record()  # what a handler may see
        self.stmts(node.body)
        self.close_record(caught)
        body = self.state()
        entry = self.widened(body[0], caught) if node.handlers else body[0]
        self.enter(body, fresh=False)
        self.stmts(node.orelse)
        ends = [self.state()]
        for handler in node.handlers:
            self.enter((entry, live))
            self.handler(handler)
            ends.append(self.state())
        self.join(ends)
        if final is not None:
            self.close_record(final)
            self.finally_body(node.finalbody, final, live)

    def handler(self, handler: ast.ExceptHandler) -> None:
        classes = []
        if handler.type is not None:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            classes = [self.expr(t) for t in types]
        if handler.name:
            tmp = self.var()
            for cls in classes:
                if cls >= 0:
                    self.ops.append((Op.INSTANCE_OF, tmp, cls))
            self.store_name(handler.name, tmp)
        self.stmts(handler.body)
        if handler.name:
            self.kill_name(handler.name)  # Python deletes the name when the handler ends

    def finally_body(self, body: list[ast.stmt], record: dict[str, list[int]], live: bool) -> None:
        """`finally` runs after the try statement completes or leaves: its code sees every version
        the try statement's names took; the code after it sees what normal completion left,
        except for the names `finally` itself rebinds."""
        normal, completes = self.state()
        wide = self.widened(normal, record)
        self.enter((wide, live))
        self.stmts(body)
        end, finishes = self.state()
        after = dict(normal)
        for name, value in end.items():
            if wide.get(name) != value:
                after[name] = value
        self.enter((after, completes and finishes), fresh=False)

    s_TryStar = s_Try

    def s_Raise(self, node: ast.Raise) -> None:
        if node.exc is not None:
            src = self.expr(node.exc)
            if src >= 0 and not isinstance(node.exc, ast.Call):
                site = self.site(node.exc, expr_text(node.exc), SiteShape.PROTOCOL)
                self.ops.append((Op.RAISE, site, src))
        if node.cause is not None:
            self.expr(node.cause)
        self.jump()

    def s_Match(self, node: ast.Match) -> None:
        subject = self.expr(node.subject)
        start = self.state()
        ends = []
        exhaustive = False
        for case in node.cases:
            self.enter(start)
            self.bind_pattern(case.pattern, subject)
            if case.guard is not None:
                self.expr(case.guard)
            self.stmts(case.body)
            ends.append(self.state())
            exhaustive = exhaustive or (case.guard is None and _irrefutable(case.pattern))
        if not exhaustive:
            ends.append(start)
        self.join(ends)

    def bind_pattern(self, pattern: ast.pattern, subject: int) -> None:
        """Bind the capture names of a match pattern to the parts of the subject they capture."""
        if isinstance(pattern, ast.MatchAs):
            if pattern.pattern is not None:
                self.bind_pattern(pattern.pattern, subject)
            if pattern.name is not None:
                self.store_name(pattern.name, subject)
        elif isinstance(pattern, ast.MatchValue):
            self.expr(pattern.value)
        elif isinstance(pattern, ast.MatchSequence):
            self.bind_sequence(pattern.patterns, subject)
        elif isinstance(pattern, ast.MatchMapping):
            for key, sub in zip(pattern.keys, pattern.patterns, strict=True):
                self.bind_pattern(sub, self.part(Op.LOAD_SUB, subject, self.key_var(key)))
            if pattern.rest is not None:
                self.store_name(pattern.rest, subject)
        elif isinstance(pattern, ast.MatchClass):
            self.expr(pattern.cls)
            for sub in pattern.patterns:  # by position: which attribute depends on __match_args__
                self.bind_pattern(sub, -1)
            for attr, sub in zip(pattern.kwd_attrs, pattern.kwd_patterns, strict=True):
                self.bind_pattern(sub, self.part(Op.LOAD_ATTR, subject, self.sid(attr)))
        elif isinstance(pattern, ast.MatchOr):
            self.weak += 1  # one alternative matches
            for sub in pattern.patterns:
                self.bind_pattern(sub, subject)
            self.weak -= 1

    def bind_sequence(self, patterns: list[ast.pattern], subject: int) -> None:
        star = next((i for i, p in enumerate(patterns) if isinstance(p, ast.MatchStar)), -1)
        for index, sub in enumerate(patterns):
            if isinstance(sub, ast.MatchStar):
                if sub.name is not None:
                    tmp = -1
                    if subject >= 0:
                        tmp = self.var()
                        upper = NO_BOUND if index == len(patterns) - 1 else index - len(patterns) + 1
                        self.heaps += 1
                        self.ops.append((Op.SLICE, tmp, subject, index, upper, self.heaps))
                    self.store_name(sub.name, tmp)
                continue
            key = index if star < 0 or index < star else index - len(patterns)
            self.bind_pattern(sub, self.part(Op.LOAD_SUB, subject, self.const(Alloc.CONST, f"i:{key}")))

    def part(self, op: Op, subject: int, key: int) -> int:
        """A variable holding attribute or item `key` of `subject` (-1 when the subject has no value)."""
        if subject < 0:
            return -1
        dst = self.var()
        self.ops.append((op, dst, subject, key))
        return dst

    def s_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            dst = self.var()
            if alias.asname:
                self.ops.append((Op.IMPORT, dst, self.sid(alias.name)))
                self.store_name(alias.asname, dst)
            else:
                top = alias.name.partition(".")[0]
                self.ops.append((Op.IMPORT, dst, self.sid(top)))
                self.store_name(top, dst)
            if alias.name == "pytest":
                self.pytest_modules.add(alias.asname or "pytest")

    def s_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self.absolute_module(node.module, node.level)
        if base is None:
            return
        for alias in node.names:
            if alias.name == "*":
                if self.scope.kind == "module" and base not in self.star_imports:
                    self.star_imports.append(base)
                continue
            dst = self.var()
            self.ops.append((Op.IMPORT_FROM, dst, self.sid(base), self.sid(alias.name)))
            self.store_name(alias.asname or alias.name, dst)
            if base == "pytest" and alias.name == "fixture":
                self.fixture_decorators.add(alias.asname or alias.name)

    def absolute_module(self, name: str | None, level: int) -> str | None:
        if level == 0:
            return name
        parts = self.module.split(".")
        if not self.is_package:
            parts = parts[:-1]
        if level - 1 > len(parts):
            return None
        parts = parts[: len(parts) - (level - 1)]
        if name:
            parts.append(name)
        return ".".join(parts) if parts else None

    def s_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        decorators = [self.expr(d) for d in node.decorator_list]
        value = self.define_function(node, node.name)
        self.record_pytest(node, self.last_function)
        value = self.decorate(node, decorators, value)
        self.store_name(node.name, value)

    def record_pytest(self, node: ast.FunctionDef | ast.AsyncFunctionDef, index: int) -> None:
        """Record a module-level fixture, and the fixture-filled parameters of a test or fixture."""
        scope = self.scope
        fixture = self.fixture_name(node.decorator_list, node.name)
        if fixture is not None and scope.kind == "module":
            self.fixtures.append((fixture, index))
        elif not node.name.startswith("test") or not self.collects_tests(scope):
            return
        facts = self.functions[index]
        assert facts is not None
        args = node.args
        n_positional = len(facts.params) - len(args.defaults)
        first = 1 if facts.flavor in (Flavor.METHOD, Flavor.CLASSMETHOD) else 0
        requested = [*zip(facts.param_names[first:n_positional], facts.params[first:n_positional], strict=True)]
        requested.extend(
            (name, var)
            for name, var, default in zip(facts.kwonly_names, facts.kwonly, args.kw_defaults, strict=True)
            if default is None
        )
        self.fixture_params.extend((index, name, var) for name, var in requested)

    def collects_tests(self, scope: Scope) -> bool:
        """Whether pytest collects `test*` functions defined in `scope` (module or `Test*` class)."""
        if scope.kind == "class":
            return scope.parent is self.module_scope and scope.qual.startswith("Test")
        return scope.kind == "module"

    def fixture_name(self, decorators: list[ast.expr], name: str) -> str | None:
        """The fixture name a `@pytest.fixture` / `@fixture(name=...)` decorator gives, else None."""
        for decorator in decorators:
            called = decorator.func if isinstance(decorator, ast.Call) else decorator
            if isinstance(called, ast.Attribute):
                value = called.value
                found = called.attr == "fixture" and isinstance(value, ast.Name) and value.id in self.pytest_modules
            else:
                found = isinstance(called, ast.Name) and called.id in self.fixture_decorators
            if not found:
                continue
            keywords = decorator.keywords if isinstance(decorator, ast.Call) else []
            for keyword in keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
            return name
        return None

    s_AsyncFunctionDef = s_FunctionDef

    def s_ClassDef(self, node: ast.ClassDef) -> None:
        decorators = [self.expr(d) for d in node.decorator_list]
        bases = tuple(v for v in (self.expr(b) for b in node.bases) if v >= 0)
        for keyword in node.keywords:
            self.expr(keyword.value)
        outer = self.scope
        index = len(self.classes)
        self.classes.append(None)
        scope = self.new_scope("class", node.name)
        scope.class_index = index
        scope.class_var = self.var()
        self.ops.append((Op.ALLOC, scope.class_var, Alloc.CLASS, index))
        scan_body(scope, node.body)
        self.scope = scope
        try:
            self.stmts(node.body)
        finally:
            self.scope = outer
        names = tuple(sorted(scope.bound))
        self.classes[index] = ClassFacts(scope.index, node.lineno, scope.class_var, bases, names)
        value = self.decorate(node, decorators, scope.class_var)
        self.store_name(node.name, value)

    def decorate(self, node: ast.AST, decorators: list[int], value: int) -> int:
        assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for expr, dec in zip(reversed(node.decorator_list), reversed(decorators), strict=True):
            if dec < 0 or _transparent(expr):
                continue
            site = self.site(expr, expr_text(expr), SiteShape.DECORATOR)
            out = self.var()
            self.ops.append((Op.DECORATE, out, site, dec, value))
            value = out
        return value

    def new_scope(self, kind: str, name: str) -> Scope:
        outer = self.scope.real
        qual = f"{outer.qual}.{name}" if outer.qual else name
        self.scopes.append(qual)
        return Scope(kind, qual, len(self.scopes) - 1, self.scope)

    # ----------------------------------------------------------------- functions
    def define_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, name: str) -> int:
        args = node.args
        defaults = [self.expr(d) for d in args.defaults]
        kw_defaults = [-1 if d is None else self.expr(d) for d in args.kw_defaults]
        outer = self.scope
        scope = self.new_scope("function", name)
        positional = [*args.posonlyargs, *args.args]
        scope.bound.update(a.arg for a in (*positional, *args.kwonlyargs))
        for extra in (args.vararg, args.kwarg):
            if extra is not None:
                scope.bound.add(extra.arg)
        if isinstance(node, ast.Lambda):
            body: list[ast.stmt] = []
        else:
            body = node.body
            scan_body(scope, body)
        params = tuple(self.param_var(scope, a.arg) for a in positional)
        kwonly = tuple(self.param_var(scope, a.arg) for a in args.kwonlyargs)
        vararg = -1 if args.vararg is None else self.param_var(scope, args.vararg.arg)
        kwarg = -1 if args.kwarg is None else self.param_var(scope, args.kwarg.arg)
        for param, default in zip(params[len(params) - len(defaults) :], defaults, strict=True):
            if default >= 0:
                self.ops.append((Op.COPY, param, default))
        for param, default in zip(kwonly, kw_defaults, strict=True):
            if default >= 0:
                self.ops.append((Op.COPY, param, default))
        flavor, owner = self.flavor(node, outer)
        scope.ret = self.var()
        if params and flavor in (Flavor.METHOD, Flavor.PROPERTY):
            self.ops.append((Op.ALLOC, params[0], Alloc.INSTANCE, owner))
        elif params and flavor == Flavor.CLASSMETHOD:
            self.ops.append((Op.ALLOC, params[0], Alloc.CLASS, owner))
        scope.first_param = params[0] if params else -1
        index = len(self.functions)
        self.functions.append(None)
        scope.function_index = index
        self.scope = scope
        weak, self.weak = self.weak, 0  # the body runs when called, unconditionally
        try:
            if isinstance(node, ast.Lambda):
                result = self.expr(node.body)
                if result >= 0:
                    self.ops.append((Op.COPY, scope.ret, result))
            else:
                self.stmts(body)
        finally:
            self.scope = outer
            self.weak = weak
        if scope.generator:
            self.heaps += 1
            self.ops.append((Op.ALLOC, scope.ret, Alloc.GENERATOR, self.heaps))
        else:
            self.ops.extend((Op.COPY, scope.ret, r) for r in scope.returns)
        names = tuple(a.arg for a in positional)
        kw_names = tuple(a.arg for a in args.kwonlyargs)
        line = node.lineno
        self.functions[index] = FunctionFacts(
            scope.index, line, params, names, vararg, kwonly, kw_names, kwarg, scope.ret,
            flavor, owner, scope.generator, bool(scope.returns),
        )  # fmt: skip
        value = self.var()
        self.ops.append((Op.ALLOC, value, Alloc.FUNCTION, index))
        self.last_function = index
        return value

    def param_var(self, scope: Scope, name: str) -> int:
        """The variable of a parameter: the first version of its name in the function."""
        found = scope.env.get(name)
        if found is None:
            found = scope.env[name] = self.var()
            scope.versions[name] = [found]
        return found

    def flavor(self, node: ast.AST, outer: Scope) -> tuple[int, int]:
        if outer.kind != "class" or isinstance(node, ast.Lambda):
            return Flavor.FUNCTION, -1
        assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        names = {_decorator_name(d) for d in node.decorator_list}
        if "staticmethod" in names:
            return Flavor.STATIC, outer.class_index
        if "classmethod" in names or node.name in ("__new__", "__init_subclass__", "__class_getitem__"):
            flavor = Flavor.STATIC if node.name == "__new__" else Flavor.CLASSMETHOD
            return flavor, outer.class_index
        if names & {"property", "cached_property"}:
            return Flavor.PROPERTY, outer.class_index
        return Flavor.METHOD, outer.class_index

    # ----------------------------------------------------------------- stores
    def store(self, target: ast.expr, src: int) -> None:
        if isinstance(target, ast.Name):
            self.store_name(target.id, src)
        elif isinstance(target, ast.Attribute):
            obj = self.expr(target.value)
            if obj >= 0 and src >= 0:
                self.ops.append((Op.STORE_ATTR, obj, self.sid(target.attr), src))
        elif isinstance(target, ast.Subscript):
            obj = self.expr(target.value)
            key = self.key_var(target.slice)
            if obj >= 0 and src >= 0:
                self.ops.append((Op.STORE_SUB, obj, key, src))
        elif isinstance(target, (ast.Tuple, ast.List)):
            if src >= 0:
                self.unpack_from(target, src)
        elif isinstance(target, ast.Starred):
            self.store(target.value, src)

    def store_unpack(self, target: ast.expr, value: ast.expr | None, elements: list[int]) -> None:
        """Store literal elements into a tuple target pairwise (nested targets recurse)."""
        if value is None or not isinstance(target, (ast.Tuple, ast.List)):
            if value is not None:
                self.store(target, elements[0] if elements else -1)
            return
        assert isinstance(value, (ast.Tuple, ast.List))
        targets = target.elts
        star = next((i for i, t in enumerate(targets) if isinstance(t, ast.Starred)), -1)
        if star < 0 and len(targets) != len(elements):
            src = self.literal_heap(Alloc.TUPLE, elements)
            self.unpack_from(target, src)
            return
        if star < 0:
            for t, v, e in zip(targets, value.elts, elements, strict=True):
                self.assign_element(t, v, e)
            return
        after = len(targets) - star - 1
        middle = elements[star : len(elements) - after]
        for t, v, e in zip(targets[:star], value.elts, elements, strict=False):
            self.assign_element(t, v, e)
        starred = targets[star]
        assert isinstance(starred, ast.Starred)
        self.store(starred.value, self.literal_heap(Alloc.LIST, middle))
        tail = zip(
            targets[star + 1 :], value.elts[len(elements) - after :], elements[len(elements) - after :], strict=False
        )
        for t, v, e in tail:
            self.assign_element(t, v, e)

    def assign_element(self, target: ast.expr, value: ast.expr, element: int) -> None:
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
            inner = [self.var() for _ in value.elts]
            if not any(isinstance(e, ast.Starred) for e in value.elts):
                for var, elt_var in zip(inner, self.elements_of(element, len(value.elts)), strict=True):
                    self.ops.append((Op.COPY, var, elt_var))
                self.store_unpack(target, value, inner)
                return
        self.store(target, element)

    def elements_of(self, src: int, count: int) -> list[int]:
        out = []
        for index in range(count):
            tmp = self.var()
            self.ops.append((Op.LOAD_SUB, tmp, src, self.const(Alloc.CONST, f"i:{index}")))
            out.append(tmp)
        return out

    def literal_heap(self, kind: Alloc, elements: list[int]) -> int:
        heap = self.heap(kind)
        count = len(elements)
        for index, element in enumerate(elements):
            if element >= 0:
                self.ops.append((Op.STORE_SUB, heap, self.const(Alloc.CONST, f"i:{index}"), element))
                self.ops.append((Op.STORE_SUB, heap, self.const(Alloc.CONST, f"i:{index - count}"), element))
        return heap

    def unpack_from(self, target: ast.Tuple | ast.List, src: int) -> None:
        targets = target.elts
        star = next((i for i, t in enumerate(targets) if isinstance(t, ast.Starred)), -1)
        for index, element in enumerate(targets):
            tmp = self.var()
            if index == star:
                upper = NO_BOUND if index == len(targets) - 1 else index - len(targets) + 1
                self.heaps += 1
                self.ops.append((Op.SLICE, tmp, src, index, upper, self.heaps))
                assert isinstance(element, ast.Starred)
                self.store(element.value, tmp)
                continue
            key = index if star < 0 or index < star else index - len(targets)
            self.ops.append((Op.LOAD_SUB, tmp, src, self.const(Alloc.CONST, f"i:{key}")))
            self.store(element, tmp)

    def key_var(self, node: ast.expr) -> int:
        if isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                if part is not None:
                    self.expr(part)
            return -1
        key = _constant_key(node)
        if key is not None:
            return self.const(Alloc.CONST, key)
        return self.expr(node)

    # ----------------------------------------------------------------- expressions
    def expr(self, node: ast.expr) -> int:
        handler = _EXPR_HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.comprehension):
                self.generic(child)
        return -1

    def e_Name(self, node: ast.Name) -> int:
        return self.load_name(node.id)

    def e_Constant(self, node: ast.Constant) -> int:
        value = node.value
        if isinstance(value, str):
            if len(value) <= MAX_CONST_LEN:
                return self.const(Alloc.CONST, "s:" + value)
            return self.const(Alloc.TYPE_INSTANCE, "str")
        if isinstance(value, bool) or value is None or value is ...:
            return -1
        if isinstance(value, int):
            return self.const(Alloc.CONST, f"i:{value}")
        if isinstance(value, float | complex | bytes):
            return self.const(Alloc.TYPE_INSTANCE, type(value).__name__)
        return -1

    def e_JoinedStr(self, node: ast.JoinedStr) -> int:
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.expr(value.value)
        return self.const(Alloc.TYPE_INSTANCE, "str")

    def e_Attribute(self, node: ast.Attribute) -> int:
        obj = self.expr(node.value)
        if obj < 0:
            return -1
        dst = self.var()
        self.ops.append((Op.LOAD_ATTR, dst, obj, self.sid(node.attr)))
        return dst

    def e_Subscript(self, node: ast.Subscript) -> int:
        obj = self.expr(node.value)
        index = node.slice
        if isinstance(index, ast.Slice):
            lower = _int_bound(index.lower, 0)
            upper = _int_bound(index.upper, NO_BOUND)
            self.key_var(index)
            if obj < 0:
                return -1
            dst = self.var()
            if lower is None or upper is None or index.step is not None:
                lower, upper = 0, NO_BOUND
            self.heaps += 1
            self.ops.append((Op.SLICE, dst, obj, lower, upper, self.heaps))
            return dst
        key = self.key_var(index)
        if obj < 0:
            return -1
        dst = self.var()
        self.ops.append((Op.LOAD_SUB, dst, obj, key))
        return dst

    def e_Call(self, node: ast.Call) -> int:
        func = node.func
        shape = _call_shape(func, self)
        fvar = self.expr(func)
        pos: list[int] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                value = self.expr(arg.value)
                pos.append(-(value + 2) if value >= 0 else -1)
            else:
                pos.append(self.expr(arg))
        kws: list[int] = []
        dstar: list[int] = []
        for keyword in node.keywords:
            value = self.expr(keyword.value)
            if keyword.arg is None:
                dstar.append(value)
            else:
                kws.extend((self.sid(keyword.arg), value))
        result = self.var()
        site = self.site(node, expr_text(func), shape)
        self.call_results[result] = site
        self.ops.append((Op.CALL, site, fvar, result, len(pos), *pos, len(kws) // 2, *kws, len(dstar), *dstar))
        if isinstance(func, ast.Name) and self.is_builtin(func.id):
            return self.builtin_call(func.id, node, pos, result)
        return result

    def builtin_call(self, name: str, node: ast.Call, pos: list[int], result: int) -> int:
        """Model builtins whose effect on values is static: super, getattr, setattr."""
        args = node.args
        if name == "super":
            return self.super_call(pos)
        if name in ("getattr", "setattr", "hasattr") and len(args) >= 2 and pos[0] >= 0:
            attr = args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                if name == "getattr":
                    self.ops.append((Op.LOAD_ATTR, result, pos[0], self.sid(attr.value)))
                    if len(pos) > 2 and pos[2] >= 0:
                        self.ops.append((Op.COPY, result, pos[2]))
                elif name == "setattr" and len(pos) > 2 and pos[2] >= 0:
                    self.ops.append((Op.STORE_ATTR, pos[0], self.sid(attr.value), pos[2]))
        return result

    def super_call(self, pos: list[int]) -> int:
        dst = self.var()
        if len(pos) >= 2 and pos[0] >= 0 and pos[1] >= 0:
            self.ops.append((Op.SUPER, dst, pos[0], pos[1]))
            return dst
        scope = self.scope.real
        while scope.parent is not None and scope.kind == "function":
            parent = scope.parent.real
            if parent.kind == "class":
                if scope.first_param >= 0:
                    self.ops.append((Op.SUPER, dst, parent.class_var, scope.first_param))
                break
            scope = parent
        return dst

    def e_Lambda(self, node: ast.Lambda) -> int:
        real = self.scope.real
        real.lambdas += 1
        return self.define_function(node, f"<lambda{real.lambdas}>")

    def e_literal(self, node: ast.List | ast.Tuple | ast.Set) -> int:
        elements = node.elts
        if isinstance(node, ast.Set) or any(isinstance(e, ast.Starred) for e in elements):
            heap = self.heap(_HEAPS[type(node)])
            for element in elements:
                if isinstance(element, ast.Starred):
                    inner = self.expr(element.value)
                    if inner >= 0:
                        tmp = self.var()
                        self.ops.append((Op.LOAD_SUB, tmp, inner, -1))
                        self.ops.append((Op.STORE_SUB, heap, -1, tmp))
                else:
                    value = self.expr(element)
                    if value >= 0:
                        self.ops.append((Op.STORE_SUB, heap, -1, value))
            return heap
        return self.literal_heap(_HEAPS[type(node)], [self.expr(e) for e in elements])

    def e_Dict(self, node: ast.Dict) -> int:
        heap = self.heap(Alloc.DICT)
        for key, value in zip(node.keys, node.values, strict=True):
            src = self.expr(value)
            if src < 0:
                if key is not None:
                    self.expr(key)
                continue
            if key is None:
                tmp = self.var()
                self.ops.append((Op.LOAD_SUB, tmp, src, -1))
                self.ops.append((Op.STORE_SUB, heap, -1, tmp))
            else:
                self.ops.append((Op.STORE_SUB, heap, self.key_var(key), src))
        return heap

    def e_comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> int:
        outer = self.scope
        scope = Scope("comp", outer.qual, outer.index, outer)
        scope.lazy = isinstance(node, ast.GeneratorExp)
        first = True
        for generator in node.generators:
            src = self.expr(generator.iter)
            if first:  # the first iterable is evaluated where the comprehension stands
                self.scope = scope
                self.weak += 1  # a := in the comprehension runs any number of times, maybe none
                first = False
            for name in ast.walk(generator.target):
                if isinstance(name, ast.Name):
                    scope.bound.add(name.id)
            tmp = self.var()
            if src >= 0:
                site = self.site(generator.iter, expr_text(generator.iter), SiteShape.PROTOCOL)
                self.ops.append((Op.ITER, tmp, src, site))
            self.store(generator.target, tmp)
            for condition in generator.ifs:
                self.expr(condition)
        try:
            return self.comprehension_result(node)
        finally:
            self.scope = outer
            self.weak -= 1

    def comprehension_result(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> int:
        if isinstance(node, ast.DictComp):
            heap = self.heap(Alloc.DICT)
            key = self.expr(node.key)
            value = self.expr(node.value)
            if value >= 0:
                self.ops.append((Op.STORE_SUB, heap, key, value))
            return heap
        heap = self.heap(_COMP_HEAPS[type(node)])
        value = self.expr(node.elt)
        if value >= 0:
            self.ops.append((Op.STORE_SUB, heap, -1, value))
        return heap

    def e_union(self, node: ast.BoolOp | ast.IfExp) -> int:
        if isinstance(node, ast.IfExp):
            self.expr(node.test)
            values, parts = [], [node.body, node.orelse]
        else:
            values, parts = [self.expr(node.values[0])], node.values[1:]
        self.weak += 1  # a := in a part that may not run keeps the previous value too
        values.extend(self.expr(part) for part in parts)
        self.weak -= 1
        return self.merge(values)

    def e_NamedExpr(self, node: ast.NamedExpr) -> int:
        value = self.expr(node.value)
        if isinstance(node.target, ast.Name):
            self.scope.real.bound.add(node.target.id)
        self.store(node.target, value)
        return value

    def e_Await(self, node: ast.Await) -> int:
        return self.expr(node.value)

    def e_Yield(self, node: ast.Yield | ast.YieldFrom) -> int:
        if node.value is None:
            return -1
        value = self.expr(node.value)
        scope = self.scope.real
        scope.generator = True
        if value >= 0 and scope.ret >= 0:
            if isinstance(node, ast.YieldFrom):
                tmp = self.var()
                self.ops.append((Op.LOAD_SUB, tmp, value, -1))
                value = tmp
            self.ops.append((Op.STORE_SUB, scope.ret, -1, value))
        return -1

    def e_BinOp(self, node: ast.BinOp) -> int:
        left = self.expr(node.left)
        right = self.expr(node.right)
        if isinstance(node.op, ast.Mod) and _is_str(node.left):
            return self.const(Alloc.TYPE_INSTANCE, "str")
        if isinstance(node.op, ast.Add):
            if _is_str(node.left) or _is_str(node.right):
                return self.const(Alloc.TYPE_INSTANCE, "str")
            if isinstance(node.left, (ast.List, ast.Tuple)) or isinstance(node.right, (ast.List, ast.Tuple)):
                dst = self.var()
                for part in (left, right):
                    if part >= 0:
                        self.ops.append((Op.COPY, dst, part))
                return dst
        return -1

    def e_Starred(self, node: ast.Starred) -> int:
        return self.expr(node.value)

    def e_Compare(self, node: ast.Compare) -> int:
        self.expr(node.left)
        for comparator in node.comparators:
            self.expr(comparator)
        return -1

    def e_UnaryOp(self, node: ast.UnaryOp) -> int:
        self.expr(node.operand)
        return -1


def _irrefutable(pattern: ast.pattern) -> bool:
    """Whether a case pattern matches every subject (a capture or `_`, maybe among alternatives)."""
    if isinstance(pattern, ast.MatchOr):
        return any(_irrefutable(p) for p in pattern.patterns)
    return isinstance(pattern, ast.MatchAs) and (pattern.pattern is None or _irrefutable(pattern.pattern))


def _is_str(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _int_bound(node: ast.expr | None, default: int) -> int | None:
    if node is None:
        return default
    key = _constant_key(node)
    if key is None or not key.startswith("i:"):
        return None
    return int(key[2:])


def _string_list(node: ast.expr) -> list[str] | None:
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    names = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return names if len(names) == len(node.elts) else None


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _transparent(node: ast.expr) -> bool:
    """Decorators that keep the function itself as the bound value (no call edge)."""
    if isinstance(node, ast.Name):
        return node.id in _TRANSPARENT_DECORATORS
    if isinstance(node, ast.Attribute):
        return node.attr in _ACCESSOR_DECORATORS or node.attr in _TRANSPARENT_DECORATORS
    return False


def _call_shape(func: ast.expr, extractor: _Extractor) -> SiteShape:
    if isinstance(func, ast.Name):
        if func.id in _DYNAMIC_BUILTINS and extractor.is_builtin(func.id):
            return SiteShape.DYNAMIC
        return SiteShape.NAME
    if isinstance(func, ast.Attribute):
        return SiteShape.ATTRIBUTE
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr":
        args = func.args
        if len(args) < 2 or not (isinstance(args[1], ast.Constant) and isinstance(args[1].value, str)):
            return SiteShape.DYNAMIC
    if isinstance(func, ast.Subscript) and isinstance(func.value, ast.Call):
        inner = func.value.func
        if isinstance(inner, ast.Name) and inner.id in ("globals", "locals", "vars"):
            return SiteShape.DYNAMIC
    return SiteShape.OTHER


def _fold_literal(node: ast.Assign, body: list[ast.stmt], start: int) -> tuple[ast.expr, list[ast.expr], int]:
    """Merge constant-key stores that directly follow `name = {...}` into a copy of the literal.

    Returns the (possibly new) literal, the replaced value expressions (still evaluated for the
    calls they contain) and the number of following statements consumed.
    """
    literal = node.value
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        return literal, [], 0
    name = node.targets[0].id
    dropped: list[ast.expr] = []
    consumed = 0
    for stmt in body[start:]:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            break
        keys = _subscript_path(stmt.targets[0], name)
        if keys is None or _mentions(stmt.value, name):
            break
        updated = _replace_in(literal, keys, stmt.value, dropped)
        if updated is None:
            break
        literal = updated
        consumed += 1
    return literal, dropped, consumed


def _subscript_path(target: ast.expr, name: str) -> list[str] | None:
    keys: list[str] = []
    while isinstance(target, ast.Subscript):
        key = _constant_key(target.slice)
        if key is None:
            return None
        keys.append(key)
        target = target.value
    if not keys or not (isinstance(target, ast.Name) and target.id == name):
        return None
    return keys[::-1]


def _mentions(node: ast.expr, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _replace_in(literal: ast.expr, keys: list[str], value: ast.expr, dropped: list[ast.expr]) -> ast.expr | None:
    """Return a copy of `literal` with the entry at the key path set to `value`, else None."""
    key, rest = keys[0], keys[1:]
    if isinstance(literal, ast.Dict):
        if any(k is None for k in literal.keys):
            return None
        entries = [
            (_constant_key(k) if k is not None else None, k, v)
            for k, v in zip(literal.keys, literal.values, strict=True)
        ]
        if any(k is None for k, _, _ in entries):
            return None
        new_keys: list[ast.expr | None] = []
        new_values: list[ast.expr] = []
        found = False
        for entry_key, key_node, entry_value in entries:
            if entry_key == key and not found:
                found = True
                replacement = value if not rest else _replace_in(entry_value, rest, value, dropped)
                if replacement is None:
                    return None
                if not rest:
                    dropped.append(entry_value)
                entry_value = replacement
            new_keys.append(key_node)
            new_values.append(entry_value)
        if not found:
            if rest:
                return None
            new_keys.append(ast.Constant(value=_key_value(key)))
            new_values.append(value)
        return ast.Dict(keys=new_keys, values=new_values)
    if (
        isinstance(literal, ast.List)
        and key.startswith("i:")
        and not any(isinstance(e, ast.Starred) for e in literal.elts)
    ):
        index = int(key[2:])
        if not -len(literal.elts) <= index < len(literal.elts):
            return None
        elements = list(literal.elts)
        replacement = value if not rest else _replace_in(elements[index], rest, value, dropped)
        if replacement is None:
            return None
        if not rest:
            dropped.append(elements[index])
        elements[index] = replacement
        return ast.List(elts=elements, ctx=ast.Load())
    return None


def _key_value(key: str) -> str | int:
    return key[2:] if key.startswith("s:") else int(key[2:])


_Handler = Callable[[_Extractor, ast.AST], None]
_STMT_HANDLERS: dict[type, Callable[..., None]] = {}
_EXPR_HANDLERS: dict[type, Callable[..., int]] = {}
for _name in dir(_Extractor):
    if _name.startswith("s_"):
        _STMT_HANDLERS[getattr(ast, _name[2:])] = getattr(_Extractor, _name)
    elif _name.startswith("e_") and hasattr(ast, _name[2:]):
        _EXPR_HANDLERS[getattr(ast, _name[2:])] = getattr(_Extractor, _name)
_EXPR_HANDLERS.update(
    {
        ast.List: _Extractor.e_literal,
        ast.Tuple: _Extractor.e_literal,
        ast.Set: _Extractor.e_literal,
        ast.ListComp: _Extractor.e_comprehension,
        ast.SetComp: _Extractor.e_comprehension,
        ast.DictComp: _Extractor.e_comprehension,
        ast.GeneratorExp: _Extractor.e_comprehension,
        ast.BoolOp: _Extractor.e_union,
        ast.IfExp: _Extractor.e_union,
        ast.YieldFrom: _Extractor.e_Yield,
    }
)
