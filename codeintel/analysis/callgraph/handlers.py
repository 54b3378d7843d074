"""Hook handlers of the points-to solver: attribute access, binding, calls and protocols.

Each handler receives a hook tuple and a batch of new values of the variable it is attached
to, and adds values or edges (never removes), so re-running one is harmless. Calls record
edges per global site id in `edges` with a flag saying how the call happened.
"""

from __future__ import annotations

from collections.abc import Callable

from codeintel.analysis.callgraph.model import Flavor, FunctionFacts
from codeintel.analysis.callgraph.state import (
    BMETHOD,
    BOUND,
    BUILTIN,
    CLASS,
    CONST,
    E_CTOR,
    E_DECORATOR,
    E_PROTOCOL,
    EXT,
    FUNC,
    H_BIND,
    H_CALL,
    H_LOAD_ATTR,
    H_LOAD_SUB,
    H_NEXT,
    HEAP,
    INST,
    MODULE,
    SLOT_ALL,
    SUPER,
    TYPEINST,
    Hook,
    SolverState,
)

Args = tuple[int, ...]
MAX_EXTERNAL_DEPTH = 5
MAX_REBIND_ROUNDS = 4
# external functions that return one of their arguments as it is: name -> its position
_PASS_THROUGH = {
    "typing.cast": 1, "typing_extensions.cast": 1, "typing.assert_type": 0, "typing_extensions.assert_type": 0,
}  # fmt: skip
# Third element of an external value key: absent for an external name (`(EXT, name)`: an
# import, or an attribute of one); EXT_RESULT for the object a call of that name returns;
# EXT_MEMBER for an attribute of such an object (or one an instance inherits from an external
# base). Attributes of results are named once more, then values become opaque (none), and
# calling a result or a member returns none: chains like `f().a().b` stay short and finite.
EXT_RESULT = 1
EXT_MEMBER = 2


class Handlers(SolverState):
    """Dispatch of hooks to their handlers (see `state.H_*`)."""

    def dispatch(self, hook: Hook, var: int, values: list[int]) -> None:
        _TABLE[hook[0]](self, hook, var, values)

    def run(self) -> None:
        """Link all facts and propagate to the fixpoint (bounded by the set-size cap)."""
        self.link()
        self.settle()
        for _ in range(MAX_REBIND_ROUNDS):
            if not self.keep_earlier_values():
                break
            self.settle()

    def settle(self) -> None:
        """Propagate; subscripts whose key never got a value then read every slot."""
        for _ in range(8):
            self.propagate()
            pending, self.pending_keys = self.pending_keys, []
            waiting = [(v, h) for v, h in pending if not self.pts[h[2]]]
            if not waiting:
                break
            for var, hook in waiting:
                self.hook(var, (hook[0], hook[1], -1))
        self.propagate()

    def keep_earlier_values(self) -> bool:
        """Give the name's previous values to each rebinding (`Op.REBIND`) whose new value the
        analysis could not determine: it found no value and the call (if it is one) is not known
        to return nothing, or the call has a target whose result is opaque. True if any did."""
        pts = self.pts
        waiting: list[tuple[int, int, int]] = []
        fired = False
        for rebound, previous, site in self.rebinds:
            if not pts[previous]:
                unknown = False  # nothing to keep (yet: an earlier rebinding may fill it)
            elif not pts[rebound]:
                unknown = site < 0 or not self.returns_nothing(site)
            else:
                unknown = site >= 0 and self.opaque_result(site)
            if unknown:
                self.copy(previous, rebound)
                fired = True
            else:
                waiting.append((rebound, previous, site))
        self.rebinds = waiting
        return fired

    def opaque_result(self, site: int) -> bool:
        """Whether some target of call site `site` gives a result the analysis cannot see: what an
        external call returned, or a function that returns values none of which was found."""
        if site in self.opaque_sites:
            return True
        for value in self.edges.get(site, ()):
            key = self.values[value]
            if key[0] in (FUNC, BOUND):
                facts, base = self.function(key[1])
                if facts.returns_value and not self.pts[base + facts.ret]:
                    return True
        return False

    def returns_nothing(self, site: int) -> bool:
        """Whether every target of call site `site` is known to return no value we track."""
        edges = self.edges.get(site)
        if not edges:
            return False
        for value in edges:
            key = self.values[value]
            if key[0] in (FUNC, BOUND):
                facts, _ = self.function(key[1])
                if facts.returns_value or facts.generator:
                    return False
            elif key[0] not in (BUILTIN, TYPEINST):
                return False
        return True

    def function(self, gfid: int) -> tuple[FunctionFacts, int]:
        index = self.func_module[gfid]
        return self.facts[index].functions[gfid - self.func_base[index]], self.var_base[index]

    # ------------------------------------------------------------------ attributes
    def h_load_attr(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, attr = hook[1], hook[2]
        for value in values:
            key = self.values[value]
            kind = key[0]
            if kind == INST:
                self.copy(self.field(value, attr), dst)
                self.class_attr(key[1], attr, dst, value, hook, -1)
            elif kind == CLASS:
                self.class_attr(key[1], attr, dst, value, hook, -1)
            elif kind == MODULE:
                self.module_attr(key[1], attr, dst)
            elif kind == EXT:
                self.external_attr(key, attr, dst)
            elif kind in (CONST, TYPEINST, HEAP, BUILTIN):
                self.builtin_attr(value, attr, dst)
            elif kind == SUPER:
                receiver = self.values[key[2]]
                self.class_attr(receiver[1], attr, dst, key[2], (H_LOAD_ATTR, dst, attr), key[1], value)
            elif kind in (FUNC, BOUND):
                self.copy(self.field(value, attr), dst)

    def external_attr(self, key: tuple[int, ...], attr: int, dst: int) -> None:
        """Attribute `attr` of external value `key`: a longer name, one level past a call."""
        if len(key) == 2:
            name = f"{self.strings[key[1]]}.{self.strings[attr]}"
            if name.count(".") <= MAX_EXTERNAL_DEPTH:
                self.add1(dst, self.value(EXT, self.sid(name)))
        elif key[2] == EXT_RESULT:
            self.add1(dst, self.value(EXT, self.sid(f"{self.strings[key[1]]}.{self.strings[attr]}"), EXT_MEMBER))
        # an attribute of a member of an external result is opaque: no value

    def module_attr(self, index: int, attr: int, dst: int) -> None:
        name = self.strings[attr]
        sub = self.module_value(f"{self.module_name(index)}.{name}", index)
        if sub is not None:
            self.add1(dst, sub)
        if index >= 0:
            self.copy(self.module_global(index, name), dst)

    def class_attr(
        self, gcid: int, attr: int, dst: int, receiver: int, hook: Hook, start: int,
        trigger: int = -1,
    ) -> None:  # fmt: skip
        found = self.lookup(gcid, attr, hook, receiver if trigger < 0 else trigger, start)
        if found is None:
            return
        if found[0] == EXT:
            name = self.sid(f"{self.strings[found[1]]}.{self.strings[attr]}")
            on_instance = self.values[receiver][0] == INST
            self.add1(dst, self.value(EXT, name, EXT_MEMBER) if on_instance else self.value(EXT, name))
            return
        source = self.field(self.value(CLASS, found[1]), attr)
        self.bind(source, dst, receiver)

    def bind(self, source: int, dst: int, receiver: int) -> None:
        key = (H_BIND, source, dst, receiver)
        if key in self.done:
            return
        self.done.add(key)
        self.hook(source, (H_BIND, dst, receiver))

    def h_bind(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, receiver = hook[1], hook[2]
        on_instance = self.values[receiver][0] == INST
        for value in values:
            key = self.values[value]
            if key[0] != FUNC:
                self.add1(dst, value)
                continue
            facts, base = self.function(key[1])
            flavor = facts.flavor
            if flavor == Flavor.STATIC:
                self.add1(dst, value)
            elif flavor == Flavor.CLASSMETHOD:
                cls = self.value(CLASS, self.values[receiver][1])
                self.add1(dst, self.value(BOUND, key[1], cls))
            elif not on_instance:
                self.add1(dst, value)
            elif flavor == Flavor.PROPERTY:
                self.copy(base + facts.ret, dst)
            else:
                self.add1(dst, self.value(BOUND, key[1], receiver))

    def h_store_attr(self, hook: Hook, var: int, values: list[int]) -> None:
        attr, src = hook[1], hook[2]
        for value in values:
            key = self.values[value]
            kind = key[0]
            if kind == MODULE:
                if key[1] >= 0:
                    self.copy(src, self.module_global(key[1], self.strings[attr]))
            elif kind == CLASS:
                self.copy(src, self.field(value, attr))
                self.define_attr(key[1], attr)
            elif kind in (INST, FUNC, HEAP):
                self.copy(src, self.field(value, attr))

    # ------------------------------------------------------------------ subscripts
    def h_load_sub(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, key = hook[1], hook[2]
        slots = self.slot_keys(key)
        if slots == []:
            self.pending_keys.append((var, hook))
            return
        for value in values:
            kind = self.values[value][0]
            if kind == HEAP:
                self.heap_load(value, slots, dst)
            elif kind in (CONST, TYPEINST) and self.is_str(value):
                self.add1(dst, self.value(TYPEINST, self.sid("str")))

    def h_load_sub_key(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, obj = hook[1], hook[2]
        slots = self.slots_of(values)
        for value in sorted(self.pts[obj] or ()):
            if self.values[value][0] == HEAP:
                self.heap_load(value, slots, dst)

    def h_store_sub(self, hook: Hook, var: int, values: list[int]) -> None:
        key, src = hook[1], hook[2]
        slots = self.slot_keys(key)
        if slots == []:
            return
        for value in values:
            if self.values[value][0] == HEAP:
                self.heap_store(value, slots, src)

    def h_store_sub_key(self, hook: Hook, var: int, values: list[int]) -> None:
        obj, src = hook[1], hook[2]
        slots = self.slots_of(values)
        for value in sorted(self.pts[obj] or ()):
            if self.values[value][0] == HEAP:
                self.heap_store(value, slots, src)

    def slots_of(self, values: list[int]) -> list[int] | None:
        if any(self.values[v][0] != CONST for v in values):
            return None
        return [-3 - v for v in values]

    def is_str(self, value: int) -> bool:
        key = self.values[value]
        text = self.strings[key[1]]
        return text.startswith("s:") if key[0] == CONST else text == "str"

    def h_slice(self, hook: Hook, var: int, values: list[int]) -> None:
        for value in values:
            kind = self.values[value][0]
            if kind == HEAP:
                self.slice_heap(hook[1], value, hook[2], hook[3])
            elif kind in (CONST, TYPEINST) and self.is_str(value):  # a slice of a str is a str
                self.add1(hook[4], self.value(TYPEINST, self.sid("str")))

    # ------------------------------------------------------------------ protocols
    def h_iter(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, site = hook[1], hook[2]
        for value in values:
            kind = self.values[value][0]
            if kind == HEAP:
                self.copy(self.field(value, SLOT_ALL), dst)
            elif kind == INST:
                result = self.implicit_call(site, value, "__iter__", -1)
                self.hook(result, (H_NEXT, dst, site))
            elif kind in (CONST, TYPEINST) and self.is_str(value):
                self.add1(dst, self.value(TYPEINST, self.sid("str")))

    def h_next(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, site = hook[1], hook[2]
        for value in values:
            kind = self.values[value][0]
            if kind == HEAP:
                self.copy(self.field(value, SLOT_ALL), dst)
            elif kind == INST:
                self.implicit_call(site, value, "__next__", dst)

    def implicit_call(self, site: int, receiver: int, attr: str, result: int) -> int:
        """Call method `attr` of `receiver` at `site` (a protocol call); return the result var."""
        key = (-1, site, receiver, self.sid(attr))
        found = self.fields.get(key)  # type: ignore[arg-type]
        if found is not None:
            if result >= 0:
                self.copy(found, result)
            return found
        out = self.fields[key] = self.new_var()  # type: ignore[index]
        holder, method = self.new_var(), self.new_var()
        self.add1(holder, receiver)
        self.hook(holder, (H_LOAD_ATTR, method, self.sid(attr)))
        self.hook(method, (H_CALL, site, out, E_PROTOCOL, (), (), ()))
        if result >= 0:
            self.copy(out, result)
        return out

    def h_with(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, site = hook[1], hook[2]
        for value in values:
            key = self.values[value]
            if key[0] == INST and self.lookup(key[1], self.sid("__enter__"), hook, value):
                self.implicit_call(site, value, "__enter__", dst)
                self.implicit_call(site, value, "__exit__", -1)
            else:
                self.add1(dst, value)

    def h_raise(self, hook: Hook, var: int, values: list[int]) -> None:
        for value in values:
            if self.values[value][0] == CLASS:
                self.call_value(hook[1], value, self.junk(hook[1]), E_PROTOCOL, (), (), ())

    def junk(self, site: int) -> int:
        key = (-2, site)
        found = self.fields.get(key)
        if found is None:
            found = self.fields[key] = self.new_var()
        return found

    def h_instof(self, hook: Hook, var: int, values: list[int]) -> None:
        for value in values:
            key = self.values[value]
            if key[0] == CLASS:
                self.add1(hook[1], self.value(INST, key[1]))
            elif key[0] == EXT:
                self.add1(hook[1], self.value(EXT, key[1], EXT_RESULT))

    def h_classof(self, hook: Hook, var: int, values: list[int]) -> None:
        for value in values:
            key = self.values[value]
            if key[0] == INST:
                self.add1(hook[1], self.value(CLASS, key[1]))

    def h_super(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, self_var = hook[1], hook[2]
        receivers = sorted(self.pts[self_var] or ())
        for value in values:
            self.super_values(dst, [value], receivers)

    def h_super_self(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, class_var = hook[1], hook[2]
        self.super_values(dst, sorted(self.pts[class_var] or ()), values)

    def super_values(self, dst: int, classes: list[int], receivers: list[int]) -> None:
        for cls in classes:
            key = self.values[cls]
            if key[0] != CLASS:
                continue
            for receiver in receivers:
                if self.values[receiver][0] in (INST, CLASS):
                    self.add1(dst, self.value(SUPER, key[1], receiver))

    def h_bases(self, hook: Hook, var: int, values: list[int]) -> None:
        self.bases_changed(hook[1])

    def h_decorate(self, hook: Hook, var: int, values: list[int]) -> None:
        dst, site, decorated = hook[1], hook[2], hook[3]
        for value in values:
            kind = self.values[value][0]
            if kind in (FUNC, BOUND, CLASS, INST):
                self.call_value(site, value, dst, E_DECORATOR, (decorated,), (), ())
            else:
                key = self.values[value]
                # as for calls: what an external call returned is no nameable target
                if kind == BUILTIN or (kind == EXT and (len(key) == 2 or key[2] == EXT_MEMBER)):
                    self.edges.setdefault(site, {}).setdefault(value, E_DECORATOR)
                self.copy(decorated, dst)

    # ------------------------------------------------------------------ calls
    def h_call(self, hook: Hook, var: int, values: list[int]) -> None:
        _, site, result, flag, pos, kws, dstar = hook
        for value in values:
            self.call_value(site, value, result, flag, pos, kws, dstar)  # type: ignore[arg-type]

    def call_value(self, site: int, value: int, result: int, flag: int, pos: Args, kws: Args, dstar: Args) -> None:
        key = self.values[value]
        kind = key[0]
        if kind in (FUNC, BOUND):
            self.edges.setdefault(site, {}).setdefault(value, flag)
            receiver = key[2] if kind == BOUND else -1
            self.enter(site, key[1], receiver, result, pos, kws, dstar)
        elif kind == CLASS:
            self.construct(site, value, result, flag, pos, kws, dstar)
        elif kind == INST:
            # one variable per (site, instance, result) for the __call__ it calls: an instance whose
            # __call__ is an instance (maybe itself) would otherwise recurse without end
            slot = (-5, site, value, result, flag)
            method = self.fields.get(slot)  # type: ignore[arg-type]
            fresh = method is None
            if method is None:
                method = self.fields[slot] = self.new_var()  # type: ignore[index]
            self.class_attr(
                key[1], self.sid("__call__"), method, value, (H_CALL, site, result, flag, pos, kws, dstar), -1, -2
            )
            if fresh:
                self.hook(method, (H_CALL, site, result, flag, pos, kws, dstar))
        elif kind == EXT:
            if len(key) == 2:  # a name: its result is an object of it, whose attributes are named
                self.edges.setdefault(site, {}).setdefault(value, flag)
                passed = _PASS_THROUGH.get(self.strings[key[1]], -1)
                if passed < 0:
                    self.add1(result, self.value(EXT, key[1], EXT_RESULT))
                elif passed < len(pos) and pos[passed] >= 0:
                    self.copy(pos[passed], result)
            else:  # its result is opaque
                if key[2] == EXT_MEMBER:  # a method of an external object: an edge
                    self.edges.setdefault(site, {}).setdefault(value, flag)
                # calling what an external call returned targets nothing we can name: no edge
                self.opaque_sites.add(site)
        elif kind == BUILTIN:
            self.edges.setdefault(site, {}).setdefault(value, flag)
            self.call_builtin(site, self.strings[key[1]], result, pos, kws)
        elif kind == BMETHOD:
            self.call_method_of_builtin(site, key[1], key[2], result, pos, kws)

    def call_builtin(self, site: int, name: str, result: int, pos: Args, kws: Args) -> None:
        raise NotImplementedError

    def builtin_attr(self, value: int, attr: int, dst: int) -> None:
        raise NotImplementedError

    def call_method_of_builtin(self, site: int, attr: int, receiver: int, result: int, pos: Args, kws: Args) -> None:
        raise NotImplementedError

    def construct(self, site: int, cls: int, result: int, flag: int, pos: Args, kws: Args, dstar: Args) -> None:
        gcid = self.values[cls][1]
        instance = self.value(INST, gcid)
        self.add1(result, instance)
        init = self.sid("__init__")
        found = self.lookup(gcid, init, (H_CALL, site, result, flag, pos, kws, dstar), cls)
        edges = self.edges.setdefault(site, {})
        if found is None:
            edges.setdefault(cls, E_CTOR)
        elif found[0] == EXT:
            name = f"{self.strings[found[1]]}.__init__"
            edges.setdefault(self.value(EXT, self.sid(name)), E_CTOR)
        else:
            key = (-3, site, gcid)
            if key in self.done:
                return
            self.done.add(key)
            method = self.new_var()
            self.bind(self.field(self.value(CLASS, found[1]), init), method, instance)
            self.hook(method, (H_CALL, site, self.junk(site), E_CTOR, pos, kws, dstar))

    def enter(self, site: int, gfid: int, receiver: int, result: int, pos: Args, kws: Args, dstar: Args) -> None:
        facts, base = self.function(gfid)
        self.copy(base + facts.ret, result)
        params = [base + p for p in facts.params]
        offset = 0
        if receiver >= 0 and params:
            self.add1(params[0], receiver)
            offset = 1
        # arguments bind once per (site, function, arguments), whatever the receiver
        key = (site, gfid, offset, *pos, -9, *kws, -9, *dstar)
        if key in self.done:
            return
        self.done.add(key)
        self.bind_positional(gfid, facts, base, params, offset, pos)
        self.bind_keywords(gfid, facts, base, kws, dstar)

    def bind_positional(
        self, gfid: int, facts: FunctionFacts, base: int, params: list[int], offset: int, pos: Args
    ) -> None:
        for index, arg in enumerate(pos):
            if arg == -1:
                continue
            at = offset + index
            if arg <= -2:
                elements = self.elements(-arg - 2)
                for param in params[at:]:
                    self.copy(elements, param)
                if facts.vararg >= 0:
                    self.heap_store(self.varargs(gfid, base + facts.vararg), None, elements)
                continue
            if at < len(params):
                self.copy(arg, params[at])
            elif facts.vararg >= 0:
                slot = -3 - self.value(CONST, self.sid(f"i:{at - len(params)}"))
                self.heap_store(self.varargs(gfid, base + facts.vararg), [slot], arg)

    def bind_keywords(self, gfid: int, facts: FunctionFacts, base: int, kws: Args, dstar: Args) -> None:
        names = self.func_params.get(gfid)
        if names is None:
            names = {self.sid(n): base + v for n, v in zip(facts.param_names, facts.params, strict=True)}
            names.update({self.sid(n): base + v for n, v in zip(facts.kwonly_names, facts.kwonly, strict=True)})
            self.func_params[gfid] = names
        for index in range(0, len(kws), 2):
            name, arg = kws[index], kws[index + 1]
            if arg < 0:
                continue
            param = names.get(name)
            if param is not None:
                self.copy(arg, param)
            elif facts.kwarg >= 0:
                slot = -3 - self.value(CONST, self.sid("s:" + self.strings[name]))
                self.heap_store(self.kwargs(gfid, base + facts.kwarg), [slot], arg)
        for source in dstar:
            for name, param in names.items():
                key = self.value(CONST, self.sid("s:" + self.strings[name]))
                tmp = self.fields.get((-4, source, key))  # type: ignore[arg-type]
                if tmp is None:
                    tmp = self.fields[(-4, source, key)] = self.new_var()  # type: ignore[index]
                    holder = self.new_var()
                    self.add1(holder, key)
                    self.load_sub(tmp, source, holder)
                self.copy(tmp, param)
            if facts.kwarg >= 0:
                self.copy(source, base + facts.kwarg)

    def varargs(self, gfid: int, var: int) -> int:
        heap = self.value(HEAP, 6, -1, gfid)
        self.add1(var, heap)
        return heap

    def kwargs(self, gfid: int, var: int) -> int:
        heap = self.value(HEAP, 7, -2, gfid)
        self.add1(var, heap)
        return heap


_TABLE: list[Callable[[Handlers, tuple[int, ...], int, list[int]], None]] = [
    Handlers.h_load_attr,
    Handlers.h_store_attr,
    Handlers.h_load_sub,
    Handlers.h_load_sub_key,
    Handlers.h_store_sub,
    Handlers.h_store_sub_key,
    Handlers.h_slice,
    Handlers.h_iter,
    Handlers.h_next,
    Handlers.h_call,
    Handlers.h_call,  # H_CTOR shares the call handler
    Handlers.h_bind,
    Handlers.h_super,
    Handlers.h_super_self,
    Handlers.h_raise,
    Handlers.h_instof,
    Handlers.h_with,
    Handlers.h_decorate,
    Handlers.h_bases,
    Handlers.h_classof,
]
assert len(_TABLE) == 20 and H_LOAD_SUB == 2 and H_BIND == 11
