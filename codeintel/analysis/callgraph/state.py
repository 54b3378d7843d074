"""Core of the points-to solver: variables, interned values, the worklist and the hooks.

`SolverState` links every module's ops into global variable numbers, interns abstract values
as integer ids (`key` tuples of ints only, so nothing depends on string hashing), and runs a
difference-propagating worklist. Hooks are tuples `(handler_id, ...)` attached to a variable;
they run on each batch of new values. Classes are looked up with C3 MRO computed from the
current values of their base variables and re-triggered when those change.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from codeintel.analysis.callgraph.model import NO_BOUND, Alloc, Flavor, ModuleFacts, Op

MAX_POINTS_TO = 24
SMALL_SET = 16

# value kinds (first element of a value key)
FUNC, CLASS, INST, BOUND, MODULE, EXT, BUILTIN, BMETHOD, CONST, TYPEINST, HEAP, SUPER = range(12)
# hook kinds
(
    H_LOAD_ATTR, H_STORE_ATTR, H_LOAD_SUB, H_LOAD_SUB_KEY, H_STORE_SUB, H_STORE_SUB_KEY, H_SLICE,
    H_ITER, H_NEXT, H_CALL, H_CTOR, H_BIND, H_SUPER, H_SUPER_SELF, H_RAISE, H_INSTOF, H_WITH,
    H_DECORATE, H_BASES, H_CLASSOF,
) = range(20)  # fmt: skip
# edge flags
E_PLAIN, E_CTOR, E_PROTOCOL, E_DECORATOR = range(4)
# A hook is `(H_kind, ...)`: ints, plus for calls three tuples of argument variables. The
# layout depends on the first element, so the alias stays loose instead of a 20-way union.
Hook = tuple[Any, ...]
SLOT_ALL = -1
SLOT_STAR = -2
_HEAP_TYPES = {
    Alloc.LIST: "list", Alloc.TUPLE: "tuple", Alloc.DICT: "dict", Alloc.SET: "set",
    Alloc.GENERATOR: "generator",
}  # fmt: skip
_BUILTIN_NAMES = frozenset(dir(builtins))
_FLOW_OPS = frozenset({Op.COPY, Op.ALLOC, Op.IMPORT, Op.IMPORT_FROM, Op.REBIND})


class SolverState:
    """Variables, values and the propagation engine of the whole-program solve."""

    def __init__(self, facts: Iterable[ModuleFacts]) -> None:
        self.facts = list(facts)
        # points-to sets, pending deltas and copy successors are lists while small (most hold
        # one value: a list costs 64 bytes where a set costs 216); successors become sets when
        # they grow past SMALL_SET, points-to lists never do (capped at MAX_POINTS_TO)
        self.pts: list[list[int] | None] = []
        self.succ: list[list[int] | set[int] | None] = []
        self.hooks: list[list[Hook] | None] = []
        self.delta: list[list[int] | None] = []
        self.work: list[int] = []
        self.value_ids: dict[tuple[int, ...], int] = {}
        self.values: list[tuple[int, ...]] = []
        self.string_ids: dict[str, int] = {}
        self.strings: list[str] = []
        self.fields: dict[tuple[int, int], int] = {}
        self.heap_slots: dict[int, list[int]] = {}
        self.edges: dict[int, dict[int, int]] = {}
        self.done: set[tuple[int, ...]] = set()
        self.pending_keys: list[tuple[int, Hook]] = []
        self.rebinds: list[tuple[int, int, int]] = []  # (version, previous version, call site or -1)
        self.opaque_sites: set[int] = set()  # call sites that called what an external call returned
        self._init_tables()

    # ------------------------------------------------------------------ tables
    def _init_tables(self) -> None:
        self.module_index: dict[str, int] = {}
        self.var_base: list[int] = []
        self.site_base: list[int] = []
        self.site_module: list[int] = []
        self.func_base: list[int] = []
        self.class_base: list[int] = []
        self.func_module: list[int] = []
        self.class_module: list[int] = []
        n_vars = n_sites = n_funcs = n_classes = 0
        # one module name, several files (each service of a monorepo with its own `app` package,
        # `tests/conftest.py` beside `examples/x/tests/conftest.py`): per name, the file of each
        # source root; an import finds the one of the importer's root, else the first file
        self.root_of: list[str] = []
        self.twins: dict[str, dict[str, int]] = {}
        for index, facts in enumerate(self.facts):
            root = _source_root(facts)
            self.root_of.append(root)
            first = self.module_index.setdefault(facts.module, index)
            if first != index:
                self.twins.setdefault(facts.module, {self.root_of[first]: first}).setdefault(root, index)
            self.var_base.append(n_vars)
            self.site_base.append(n_sites)
            self.func_base.append(n_funcs)
            self.class_base.append(n_classes)
            self.site_module.extend([index] * len(facts.sites))
            self.func_module.extend([index] * len(facts.functions))
            self.class_module.extend([index] * len(facts.classes))
            n_vars += facts.n_vars
            n_sites += len(facts.sites)
            n_funcs += len(facts.functions)
            n_classes += len(facts.classes)
        self._add_namespace_packages()
        self.n_sites = n_sites
        self._grow(n_vars)
        self.class_mro: dict[int, list[tuple[int, int]]] = {}
        self.mro_users: dict[int, dict[int, None]] = {}
        # per class: (attr, start) -> the hooks (with the value they ran on) that looked it up
        self.class_users: dict[int, dict[tuple[int, int], dict[tuple[Hook, int], None]]] = {}
        self.known_bases: dict[int, list[tuple[int, int]]] = {}
        # per class: (attr, start) -> the lookup result those hooks last saw
        self.lookup_cache: dict[int, dict[tuple[int, int], tuple[int, int] | None]] = {}
        self.class_defined: set[tuple[int, int]] = set()
        self.func_params: dict[int, dict[int, int]] = {}
        self.bound_cache: dict[int, set[str]] = {}

    def _add_namespace_packages(self) -> None:
        self.namespace: dict[str, int] = {}
        for name in sorted(self.module_index):
            parts = name.split(".")
            for end in range(1, len(parts)):
                prefix = ".".join(parts[:end])
                if prefix not in self.module_index and prefix not in self.namespace:
                    self.namespace[prefix] = -1 - len(self.namespace)

    def _grow(self, count: int) -> None:
        extra = count - len(self.pts)
        if extra > 0:
            self.pts.extend([None] * extra)
            self.succ.extend([None] * extra)
            self.hooks.extend([None] * extra)
            self.delta.extend([None] * extra)

    def new_var(self) -> int:
        self.pts.append(None)
        self.succ.append(None)
        self.hooks.append(None)
        self.delta.append(None)
        return len(self.pts) - 1

    def sid(self, text: str) -> int:
        found = self.string_ids.get(text)
        if found is None:
            found = self.string_ids[text] = len(self.strings)
            self.strings.append(text)
        return found

    def value(self, *key: int) -> int:
        found = self.value_ids.get(key)
        if found is None:
            found = self.value_ids[key] = len(self.values)
            self.values.append(key)
        return found

    def field(self, value: int, key: int) -> int:
        found = self.fields.get((value, key))
        if found is None:
            found = self.fields[(value, key)] = self.new_var()
            if key < SLOT_STAR:
                self.heap_slots.setdefault(value, []).append(key)
        return found

    # ------------------------------------------------------------------ propagation
    def add(self, var: int, values: Iterable[int]) -> None:
        current = self.pts[var]
        if current is None:
            new = list(values)[:MAX_POINTS_TO]
            if not new:
                return
            self.pts[var] = new
            self.delta[var] = new[:]  # a copy: the two lists grow apart
            self.work.append(var)
            return
        room = MAX_POINTS_TO - len(current)
        if room <= 0:
            return
        new = [v for v in values if v not in current]
        if not new:
            return
        if len(new) > room:
            new = new[:room]
        current.extend(new)
        pending = self.delta[var]
        if pending is None:
            self.delta[var] = new
            self.work.append(var)
        else:
            pending.extend(new)

    def add1(self, var: int, value: int) -> None:
        current = self.pts[var]
        if current is None:
            self.pts[var] = [value]
            self.delta[var] = [value]
            self.work.append(var)
            return
        if value in current or len(current) >= MAX_POINTS_TO:
            return
        current.append(value)
        pending = self.delta[var]
        if pending is None:
            self.delta[var] = [value]
            self.work.append(var)
        else:
            pending.append(value)

    def copy(self, src: int, dst: int) -> None:
        if src == dst:
            return
        targets = self.succ[src]
        if targets is None:
            self.succ[src] = [dst]
        elif dst in targets:
            return
        elif isinstance(targets, list):
            if len(targets) < SMALL_SET:
                targets.append(dst)
            else:  # membership tests in a long list would cost O(n) each
                self.succ[src] = {*targets, dst}
        else:
            targets.add(dst)
        current = self.pts[src]
        if current:
            self.add(dst, current)

    def hook(self, var: int, hook: Hook) -> None:
        hooks = self.hooks[var]
        if hooks is None:
            hooks = self.hooks[var] = []
        hooks.append(hook)
        current = self.pts[var]
        if current:
            self.dispatch(hook, var, list(current))

    def propagate(self) -> None:
        work, delta, succ, hooks = self.work, self.delta, self.succ, self.hooks
        while work:
            var = work.pop()
            new = delta[var]
            delta[var] = None
            if not new:
                continue
            # values arrive in an order fixed by the facts (and int sets iterate in an order
            # fixed by their values), never by string hashing: no sort is needed for determinism
            ordered = new
            targets = succ[var]
            if targets:
                for target in targets:
                    self.add(target, ordered)
            attached = hooks[var]
            if attached:
                for index in range(len(attached)):
                    self.dispatch(attached[index], var, ordered)

    def dispatch(self, hook: Hook, var: int, values: list[int]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ linking
    def link(self) -> None:
        """Translate every module's ops to global variables and register them."""
        for index, facts in enumerate(self.facts):
            module_value = self.value(MODULE, index)
            for name, var, _bound in facts.globals:
                self.fields[(module_value, self.sid(name))] = self.var_base[index] + var
        for index, facts in enumerate(self.facts):
            for offset, cls in enumerate(facts.classes):
                gcid = self.class_base[index] + offset
                self.class_defined.update((gcid, self.sid(name)) for name in cls.names)
        for index, facts in enumerate(self.facts):
            self._link_globals(index, facts)
        for index in self.link_order():
            facts = self.facts[index]
            base = self.var_base[index]
            strings = [self.sid(s) for s in facts.strings]
            for offset, cls in enumerate(facts.classes):  # before any lookup through the class
                gcid = self.class_base[index] + offset
                for base_var in cls.bases:
                    self.hook(base + base_var, (H_BASES, gcid))
            # plain data flow first: base classes and imports are then known (propagated)
            # before the first attribute lookup of the module runs, so fewer are re-run
            for op in facts.ops:
                if op[0] in _FLOW_OPS:
                    self.link_op(index, base, strings, op)
            self.propagate()
            for op in facts.ops:
                if op[0] not in _FLOW_OPS:
                    self.link_op(index, base, strings, op)
            self.facts[index] = replace(facts, ops=())  # linked: hooks and edges hold what is needed
            self.propagate()
        self.link_fixtures()

    def link_fixtures(self) -> None:
        """Give each parameter pytest fills the values of the fixture of its name.

        The fixture is the nearest one: in the module itself (a fixture asking for its own
        name gets the one it overrides), else in `conftest` of its package or of the closest
        parent package. A generator fixture gives what it yields, other fixtures what they return.
        """
        defined: dict[tuple[int, str], int] = {}
        for index, facts in enumerate(self.facts):
            for name, function in facts.fixtures:
                defined[(index, name)] = self.func_base[index] + function  # the last definition wins
        if not defined:
            return
        for index, facts in enumerate(self.facts):
            if not facts.fixture_params:
                continue
            chain = self.conftest_chain(index)
            base = self.var_base[index]
            for function, name, var in facts.fixture_params:
                own = self.func_base[index] + function
                found = next((g for g in (defined.get((m, name)) for m in chain) if g is not None and g != own), None)
                if found is not None:
                    self.copy(self.fixture_value(found), base + var)

    def conftest_chain(self, index: int) -> list[int]:
        """Module `index`, then the `conftest` modules of its package and parent packages."""
        facts = self.facts[index]
        parts = facts.module.split(".")
        if not facts.is_package:
            parts = parts[:-1]
        names = [".".join([*parts[:end], "conftest"]) for end in range(len(parts), -1, -1)]
        chain = [index]
        for name in names:
            found = self.find_module(name, index)
            if found is not None and found not in chain:
                chain.append(found)
        return chain

    def fixture_value(self, gfid: int) -> int:
        """The variable holding what fixture function `gfid` returns (or yields)."""
        index = self.func_module[gfid]
        facts = self.facts[index].functions[gfid - self.func_base[index]]
        ret = self.var_base[index] + facts.ret
        return self.elements(ret) if facts.generator else ret

    def link_order(self) -> list[int]:
        """Module numbers, imported modules before their importers where cycles allow.

        Linking a module after the modules it imports means its base classes are mostly known
        when its first attribute lookups run, so few lookups are invalidated and re-run. This is
        a depth-first post-order (import cycles are broken at the back edge), not a sort.
        """
        imports = [self.imported_modules(index, facts) for index, facts in enumerate(self.facts)]
        order: list[int] = []
        state = [0] * len(self.facts)  # 0 new, 1 on the stack, 2 done
        for root in range(len(self.facts)):
            if state[root]:
                continue
            state[root] = 1
            stack = [(root, iter(imports[root]))]
            while stack:
                node, pending = stack[-1]
                child = next(pending, None)
                if child is None:
                    stack.pop()
                    state[node] = 2
                    order.append(node)
                elif not state[child]:
                    state[child] = 1
                    stack.append((child, iter(imports[child])))
        return order

    def imported_modules(self, importer: int, facts: ModuleFacts) -> list[int]:
        """Numbers of the analysed modules `facts` imports from, in order of first import."""
        found: dict[int, None] = {}
        names = [*facts.star_imports]
        for op in facts.ops:
            if op[0] == Op.IMPORT:
                names.append(facts.strings[op[2]])
            elif op[0] == Op.IMPORT_FROM:
                module = facts.strings[op[2]]
                names.extend((module, f"{module}.{facts.strings[op[3]]}"))
        for name in names:
            index = self.find_module(name, importer)
            if index is not None:
                found[index] = None
        return list(found)

    def _link_globals(self, index: int, facts: ModuleFacts) -> None:
        base = self.var_base[index]
        for name, var, bound in facts.globals:
            if not bound:
                self.resolve_unbound(index, name, base + var, set())

    def module_global(self, index: int, name: str) -> int:
        """The variable of global `name` of module number `index` (created when absent)."""
        key = (self.value(MODULE, index), self.sid(name))
        found = self.fields.get(key)
        if found is None:
            found = self.fields[key] = self.new_var()
            if index >= 0 and name not in self._bound_names(index):
                self.resolve_unbound(index, name, found, set())
        return found

    def _bound_names(self, index: int) -> set[str]:
        cache = self.bound_cache
        found = cache.get(index)
        if found is None:
            found = cache[index] = {n for n, _, b in self.facts[index].globals if b}
        return found

    def resolve_unbound(self, index: int, name: str, var: int, seen: set[tuple[int, str]]) -> None:
        """Bind a global read but never assigned: star imports first, then builtins."""
        if (index, name) in seen:
            return
        seen.add((index, name))
        externals = []
        for star in self.facts[index].star_imports:
            target = self.find_module(star, index)
            if target is None:
                externals.append(star)
            elif self.exports(target, name, set()):
                self.copy(self.module_global(target, name), var)
                return
        if name in _BUILTIN_NAMES:
            self.add1(var, self.value(BUILTIN, self.sid(name)))
        elif len(externals) == 1:
            self.add1(var, self.value(EXT, self.sid(f"{externals[0]}.{name}")))

    def exports(self, index: int, name: str, seen: set[int]) -> bool:
        if index in seen:
            return False
        seen.add(index)
        facts = self.facts[index]
        if facts.all_names is not None:
            return name in facts.all_names
        if name.startswith("_"):
            return False
        if name in self._bound_names(index):
            return True
        return any(
            self.exports(found, name, seen)
            for s in facts.star_imports
            if (found := self.find_module(s, index)) is not None
        )

    def find_module(self, name: str, near: int = -1) -> int | None:
        """The number of analysed module `name` as module `near` (-1: none) imports it: where
        several files have that name, the one in `near`'s source root, else the first."""
        if self.twins and near >= 0:
            found = self.twins.get(name, {}).get(self.root_of[near])
            if found is not None:
                return found
        return self.module_index.get(name)

    def module_value(self, name: str, near: int = -1) -> int | None:
        index = self.find_module(name, near)
        if index is None:
            index = self.namespace.get(name)
        return None if index is None else self.value(MODULE, index)

    def module_name(self, index: int) -> str:
        if index >= 0:
            return self.facts[index].module
        return next(n for n, i in self.namespace.items() if i == index)

    def link_op(self, index: int, base: int, strings: list[int], op: tuple[int, ...]) -> None:
        code = op[0]
        if code == Op.COPY:
            self.copy(base + op[2], base + op[1])
        elif code == Op.REBIND:
            self.copy(base + op[2], base + op[1])
            site = op[4] if op[4] < 0 else self.site_base[index] + op[4]
            self.rebinds.append((base + op[1], base + op[3], site))
        elif code == Op.ALLOC:
            self.add1(base + op[1], self.alloc_value(index, strings, op[2], op[3]))
        elif code == Op.LOAD_ATTR:
            self.hook(base + op[2], (H_LOAD_ATTR, base + op[1], strings[op[3]]))
        elif code == Op.STORE_ATTR:
            self.hook(base + op[1], (H_STORE_ATTR, strings[op[2]], base + op[3]))
        elif code == Op.LOAD_SUB:
            self.load_sub(base + op[1], base + op[2], -1 if op[3] < 0 else base + op[3])
        elif code == Op.STORE_SUB:
            self.store_sub(base + op[1], -1 if op[2] < 0 else base + op[2], base + op[3])
        elif code == Op.CALL:
            self.link_call(index, base, strings, op)
        else:
            self.link_other(index, base, strings, op)

    def link_other(self, index: int, base: int, strings: list[int], op: tuple[int, ...]) -> None:
        code = op[0]
        site_base = self.site_base[index]
        if code == Op.SLICE:
            heap = self.value(HEAP, Alloc.LIST, index, op[5])
            self.add1(base + op[1], heap)
            self.hook(base + op[2], (H_SLICE, heap, op[3], op[4], base + op[1]))
        elif code == Op.ITER:
            self.hook(base + op[2], (H_ITER, base + op[1], site_base + op[3]))
        elif code == Op.IMPORT:
            self.link_import(base + op[1], self.strings[strings[op[2]]], index)
        elif code == Op.IMPORT_FROM:
            module = self.strings[strings[op[2]]]
            self.link_import_from(base + op[1], module, self.strings[strings[op[3]]], index)
        elif code == Op.SUPER:
            self.hook(base + op[2], (H_SUPER, base + op[1], base + op[3]))
            self.hook(base + op[3], (H_SUPER_SELF, base + op[1], base + op[2]))
        elif code == Op.DECORATE:
            self.hook(base + op[3], (H_DECORATE, base + op[1], site_base + op[2], base + op[4]))
        elif code == Op.RAISE:
            self.hook(base + op[2], (H_RAISE, site_base + op[1]))
        elif code == Op.INSTANCE_OF:
            self.hook(base + op[2], (H_INSTOF, base + op[1]))
        elif code == Op.WITH:
            self.hook(base + op[2], (H_WITH, base + op[1], site_base + op[3]))

    def link_call(self, index: int, base: int, strings: list[int], op: tuple[int, ...]) -> None:
        site = self.site_base[index] + op[1]
        n_pos = op[4]
        pos = tuple(a if a == -1 else (base + a if a >= 0 else a - base) for a in op[5 : 5 + n_pos])
        at = 5 + n_pos
        n_kw = op[at]
        kws = tuple(
            x
            for i in range(n_kw)
            for x in (strings[op[at + 1 + 2 * i]], -1 if op[at + 2 + 2 * i] < 0 else base + op[at + 2 + 2 * i])
        )
        at += 1 + 2 * n_kw
        dstar = tuple(base + v for v in op[at + 1 : at + 1 + op[at]] if v >= 0)
        self.edges.setdefault(site, {})
        if op[2] >= 0:
            self.hook(base + op[2], (H_CALL, site, base + op[3], E_PLAIN, pos, kws, dstar))

    def link_import(self, dst: int, module: str, importer: int) -> None:
        found = self.module_value(module, importer)
        self.add1(dst, found if found is not None else self.value(EXT, self.sid(module)))

    def link_import_from(self, dst: int, module: str, name: str, importer: int) -> None:
        sub = self.module_value(f"{module}.{name}", importer)
        if sub is not None:
            self.add1(dst, sub)
        index = self.find_module(module, importer)
        if index is not None:
            self.copy(self.module_global(index, name), dst)
        elif sub is None and module not in self.namespace:
            self.add1(dst, self.value(EXT, self.sid(f"{module}.{name}")))

    def alloc_value(self, index: int, strings: list[int], kind: int, arg: int) -> int:
        if kind == Alloc.FUNCTION:
            return self.value(FUNC, self.func_base[index] + arg)
        if kind == Alloc.CLASS:
            return self.value(CLASS, self.class_base[index] + arg)
        if kind == Alloc.INSTANCE:
            return self.value(INST, self.class_base[index] + arg)
        if kind == Alloc.CONST:
            return self.value(CONST, strings[arg])
        if kind == Alloc.TYPE_INSTANCE:
            return self.value(TYPEINST, strings[arg])
        if kind == Alloc.BUILTIN:
            return self.value(BUILTIN, strings[arg])
        return self.value(HEAP, kind, index, arg)

    # ------------------------------------------------------------------ subscripts
    def load_sub(self, dst: int, obj: int, key: int) -> None:
        self.hook(obj, (H_LOAD_SUB, dst, key))
        if key >= 0:
            self.hook(key, (H_LOAD_SUB_KEY, dst, obj))

    def store_sub(self, obj: int, key: int, src: int) -> None:
        self.hook(obj, (H_STORE_SUB, key, src))
        if key >= 0:
            self.hook(key, (H_STORE_SUB_KEY, obj, src))

    def slot_keys(self, key: int) -> list[int] | None:
        """Slot numbers for the values of key variable `key`; None when unknown, [] to wait."""
        if key < 0:
            return None
        keys = self.pts[key]
        if not keys:
            return []
        out = []
        for value in sorted(keys):
            if self.values[value][0] != CONST:
                return None
            out.append(-3 - value)
        return out

    def heap_load(self, heap: int, slots: list[int] | None, dst: int) -> None:
        if slots is None:
            self.copy(self.field(heap, SLOT_ALL), dst)
            return
        self.copy(self.field(heap, SLOT_STAR), dst)
        for slot in slots:
            self.copy(self.field(heap, slot), dst)

    def heap_store(self, heap: int, slots: list[int] | None, src: int) -> None:
        self.copy(src, self.field(heap, SLOT_ALL))
        if slots is None:
            self.copy(src, self.field(heap, SLOT_STAR))
            return
        for slot in slots:
            self.copy(src, self.field(heap, slot))

    def elements(self, var: int) -> int:
        """A variable holding the elements of the containers `var` points to."""
        key = (-7, var)
        found = self.fields.get(key)
        if found is None:
            found = self.fields[key] = self.new_var()
            self.load_sub(found, var, -1)
        return found

    def slice_heap(self, new: int, heap: int, lower: int, upper: int) -> None:
        self.copy(self.field(heap, SLOT_STAR), self.field(new, SLOT_STAR))
        self.copy(self.field(heap, SLOT_STAR), self.field(new, SLOT_ALL))
        slots = self.heap_slots.get(heap, [])
        indices = {}
        for slot in slots:
            text = self.strings[self.values[-3 - slot][1]]
            if text.startswith("i:"):
                indices[int(text[2:])] = slot
        length = max((i + 1 for i in indices if i >= 0), default=0)
        if lower < 0:
            lower += length
        if upper == NO_BOUND:
            upper = length
        elif upper < 0:
            upper += length
        if not indices:
            self.copy(self.field(heap, SLOT_ALL), self.field(new, SLOT_STAR))
            self.copy(self.field(heap, SLOT_ALL), self.field(new, SLOT_ALL))
            return
        for index in range(max(lower, 0), upper):
            found = indices.get(index)
            if found is None:
                continue
            target = self.value(CONST, self.sid(f"i:{index - lower}"))
            self.copy(self.field(heap, found), self.field(new, -3 - target))
            self.copy(self.field(heap, found), self.field(new, SLOT_ALL))

    # ------------------------------------------------------------------ classes
    def mro(self, gcid: int) -> list[tuple[int, int]]:
        """C3 linearisation of class `gcid` as (kind, id): (CLASS, gcid) or (EXT, name sid)."""
        found = self.class_mro.get(gcid)
        if found is not None:
            return found
        self.class_mro[gcid] = [(CLASS, gcid)]  # guards against inheritance cycles
        bases = self.class_bases(gcid)
        sequences = [list(self.mro(base[1])) if base[0] == CLASS else [base] for base in bases]
        if len(sequences) == 1 and (CLASS, gcid) not in sequences[0]:
            result = [(CLASS, gcid), *sequences[0]]  # single inheritance: C3 gives the base's MRO
        else:
            result = [(CLASS, gcid), *_c3_merge([*sequences, list(bases)])]
        self.class_mro[gcid] = result
        for kind, other in result[1:]:
            if kind == CLASS:
                self.mro_users.setdefault(other, {})[gcid] = None
        return result

    def class_bases(self, gcid: int) -> list[tuple[int, int]]:
        index = self.class_module[gcid]
        facts = self.facts[index].classes[gcid - self.class_base[index]]
        base = self.var_base[index]
        out: list[tuple[int, int]] = []
        for var in facts.bases:
            for value in sorted(self.pts[base + var] or ()):
                key = self.values[value]
                if key[0] in (CLASS, EXT) and (key[0], key[1]) not in out and key[1] != gcid:
                    out.append((key[0], key[1]))
        return out

    def bases_changed(self, gcid: int) -> None:
        """Re-run lookups through class `gcid` (and its subclasses) if its bases changed."""
        bases = self.class_bases(gcid)
        if self.known_bases.get(gcid, []) == bases:
            return
        self.known_bases[gcid] = bases
        if gcid in self.class_mro or gcid in self.class_users:  # else nothing was looked up yet
            self.invalidate(gcid, None)

    def define_attr(self, gcid: int, attr: int) -> None:
        """Record a store to a class attribute; re-run lookups of that attribute if it is new."""
        if (gcid, attr) in self.class_defined:
            return
        self.class_defined.add((gcid, attr))
        self.invalidate(gcid, attr)

    def invalidate(self, gcid: int, attr: int | None) -> None:
        """Recompute the lookups through `gcid` and its subclasses (of `attr`, or all if None).

        Only the hooks whose lookup result changed are re-run: handlers are monotone, so a hook
        that would find the same class again would add nothing.
        """
        stale = [gcid, *self.mro_users.get(gcid, {})]
        caches = self.lookup_cache
        previous: list[dict[tuple[int, int], tuple[int, int] | None]] = []
        for cls in stale:
            if attr is None:
                self.class_mro.pop(cls, None)
                previous.append(caches.pop(cls, {}))
            else:
                cache = caches.get(cls) or {}
                previous.append({key: cache.pop(key) for key in [k for k in cache if k[0] == attr]})
        for cls, before in zip(stale, previous, strict=True):
            users = self.class_users.get(cls)
            if not users:
                continue
            for key, entries in list(users.items()):
                if attr is not None and key[0] != attr:
                    continue
                if self.find(cls, key[0], key[1]) == before.get(key, _MISSING):
                    continue
                for hook, value in list(entries):
                    self.dispatch(hook, -1, [value])

    def lookup(self, gcid: int, attr: int, hook: Hook, value: int, start: int = -1) -> tuple[int, int] | None:
        """First class in the MRO of `gcid` (after class `start`) that defines `attr`.

        `hook` (run on `value`) is re-run when the result changes.
        """
        users = self.class_users.get(gcid)
        if users is None:
            users = self.class_users[gcid] = {}
        entries = users.get((attr, start))
        if entries is None:
            entries = users[(attr, start)] = {}
        entries[(hook, value)] = None
        return self.find(gcid, attr, start)

    def find(self, gcid: int, attr: int, start: int) -> tuple[int, int] | None:
        """The (cached) result of a lookup, registering no user."""
        cache = self.lookup_cache.get(gcid)
        if cache is None:
            cache = self.lookup_cache[gcid] = {}
        key = (attr, start)
        if key in cache:
            return cache[key]
        entries = self.mro(gcid)
        if start >= 0:
            position = next((i for i, e in enumerate(entries) if e == (CLASS, start)), len(entries))
            entries = entries[position + 1 :]
        found: tuple[int, int] | None = None
        defined = self.class_defined
        for kind, ident in entries:
            if kind == EXT:
                found = (EXT, ident)
                break
            if (ident, attr) in defined:
                found = (CLASS, ident)
                break
        cache[key] = found
        return found


_MISSING = (-1, -1)


def _c3_merge(sequences: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    result: list[tuple[int, int]] = []
    pending = [list(reversed(s)) for s in sequences if s]  # heads at the end: O(1) pops
    tails: dict[tuple[int, int], int] = {}  # occurrences of each item behind some head
    for sequence in pending:
        for item in sequence[:-1]:
            tails[item] = tails.get(item, 0) + 1
    while pending:
        head = next((s[-1] for s in pending if not tails.get(s[-1])), pending[0][-1])
        result.append(head)
        for sequence in pending:
            if sequence[-1] == head:
                sequence.pop()
                if sequence:
                    tails[sequence[-1]] -= 1
            elif head in sequence:  # inconsistent hierarchy: drop it everywhere
                sequence.remove(head)
                tails[head] -= 1
        pending = [s for s in pending if s]
    return result


def _source_root(facts: ModuleFacts) -> str:
    """The directory a module's name is relative to (`services/b` for `app.main` at
    `services/b/app/main.py`)."""
    dirs = facts.path.split("/")[:-1]
    depth = facts.module.count(".") + (1 if facts.is_package else 0) if facts.module else 0
    return "/".join(dirs[: max(len(dirs) - depth, 0)])


__all__ = [
    "BMETHOD",
    "BOUND",
    "BUILTIN",
    "CLASS",
    "CONST",
    "EXT",
    "FUNC",
    "HEAP",
    "INST",
    "MODULE",
    "SUPER",
    "TYPEINST",
    "Flavor",
    "Hook",
    "SolverState",
]  # fmt: skip
