"""Models of builtin functions and of methods of builtin types for the points-to solver.

Calls to builtins are edges to `<builtin>.name`; methods of builtin types are edges to
`<builtin>.type.method` (`<builtin>.str.join`, `<builtin>.dict.items`, `<builtin>.int.bit_length`)
whether reached through a value (`" ".join(x)`) or through the type (`str.join(" ", x)`); the
PyCG format renames them to PyCG's vocabulary (`pycg.pycg_name`). Where a builtin moves values
the model says how (`map` calls its function on the elements, `list(x)` copies elements,
`dict.get` reads a slot, `list.append` writes one), so calls through containers and higher-order
builtins still resolve. Only real attributes of the builtin type (checked against the running
interpreter's type objects, never the analysed code) become edges.
"""

from __future__ import annotations

import builtins

from codeintel.analysis.callgraph.handlers import Args, Handlers
from codeintel.analysis.callgraph.model import Alloc
from codeintel.analysis.callgraph.state import (
    BMETHOD,
    BUILTIN,
    CONST,
    E_PLAIN,
    H_CALL,
    H_CLASSOF,
    H_NEXT,
    HEAP,
    SLOT_ALL,
    SLOT_STAR,
    TYPEINST,
)

# builtin types by name (`object`, `str`, `ValueError`, ...): their attributes are what
# `<builtin>.type.attr` names
BUILTIN_TYPES: dict[str, type] = {
    name: value for name, value in vars(builtins).items() if isinstance(value, type) and not name.startswith("_")
}
_HEAP_TYPE: dict[int, str] = {Alloc.LIST: "list", Alloc.TUPLE: "tuple", Alloc.DICT: "dict", Alloc.SET: "set"}
_STR_RESULTS = frozenset({"str", "repr", "format", "chr", "ascii", "hex", "oct", "bin", "input"})
_SCALARS = frozenset({"int", "float", "complex", "bytes"})  # calling the type gives an instance of it
# calling the type (or sorted, reversed) copies the elements into a new container of this kind
_COPIES = {
    "list": Alloc.LIST, "sorted": Alloc.LIST, "reversed": Alloc.LIST, "tuple": Alloc.TUPLE, "set": Alloc.SET,
    "frozenset": Alloc.SET,
}  # fmt: skip
_IDENTITY = frozenset({"staticmethod", "classmethod", "property", "iter"})
# str methods that give no str: a list or tuple of str, or bytes
_STR_PARTS = {"split": Alloc.LIST, "rsplit": Alloc.LIST, "splitlines": Alloc.LIST, "partition": Alloc.TUPLE,
              "rpartition": Alloc.TUPLE}  # fmt: skip


class BuiltinsMixin(Handlers):
    """Builtin functions and builtin-type methods."""

    def type_of(self, value: int) -> str | None:
        """The builtin type of a value (of the type itself for a builtin type), else None."""
        key = self.values[value]
        kind = key[0]
        if kind == CONST:
            return "str" if self.strings[key[1]].startswith("s:") else "int"
        if kind in (TYPEINST, BUILTIN):
            name = self.strings[key[1]]
            return name if name in BUILTIN_TYPES else None
        if kind == HEAP:
            return _HEAP_TYPE.get(key[1])
        return None

    def builtin_method_name(self, attr: int, receiver: int) -> str | None:
        """`<builtin>.type.attr` for attribute `attr` of builtin-typed `receiver`, None if it has none."""
        type_name = self.type_of(receiver)
        method = self.strings[attr]
        if type_name is None or not hasattr(BUILTIN_TYPES[type_name], method):
            return None
        return f"<builtin>.{type_name}.{method}"

    def builtin_attr(self, value: int, attr: int, dst: int) -> None:
        """Attribute `attr` of a builtin-typed value or of a builtin type: its class, or a method."""
        type_name = self.type_of(value)
        name = self.strings[attr]
        if type_name is None or not hasattr(BUILTIN_TYPES[type_name], name):
            return  # no such attribute: no value (a value here would only crowd real ones out)
        if name == "__class__" and self.values[value][0] != BUILTIN:
            self.add1(dst, self.value(BUILTIN, self.sid(type_name)))
        else:
            self.add1(dst, self.value(BMETHOD, attr, value))

    def site_heap(self, site: int, kind: int, tag: int = -3) -> int:
        return self.value(HEAP, kind, tag, site)

    def str_value(self) -> int:
        return self.value(TYPEINST, self.sid("str"))

    def call_builtin(self, site: int, name: str, result: int, pos: Args, kws: Args) -> None:
        args = [a if a >= 0 else -1 for a in pos]
        first = args[0] if args else -1
        keyword = {self.strings[kws[i]]: kws[i + 1] for i in range(0, len(kws), 2)}
        if name in ("map", "filter") and first >= 0:
            inputs = tuple(self.elements(a) for a in args[1:] if a >= 0)
            out = self.new_var()
            self.hook(first, (H_CALL, site, out, E_PLAIN, inputs[:1] if name == "filter" else inputs, (), ()))
            heap = self.site_heap(site, Alloc.LIST)
            self.add1(result, heap)
            source = inputs[0] if name == "filter" and inputs else out
            self.copy(source, self.field(heap, SLOT_ALL))
            self.copy(source, self.field(heap, SLOT_STAR))
            return
        key_func = keyword.get("key", -1)
        if key_func >= 0 and first >= 0:
            self.hook(key_func, (H_CALL, site, self.junk(site), E_PLAIN, (self.elements(first),), (), ()))
        if name in _COPIES:
            heap = self.site_heap(site, _COPIES[name])
            self.add1(result, heap)
            if first >= 0:
                self.copy(self.elements(first), self.field(heap, SLOT_ALL))
                self.copy(self.elements(first), self.field(heap, SLOT_STAR))
        elif name in _SCALARS:
            self.add1(result, self.value(TYPEINST, self.sid(name)))
        elif name in ("min", "max") and first >= 0:
            self.copy(self.elements(first) if len(args) == 1 else first, result)
        elif name in _IDENTITY and first >= 0:
            self.copy(first, result)
        elif name == "next" and first >= 0:
            self.hook(first, (H_NEXT, result, site))
            if len(args) > 1 and args[1] >= 0:
                self.copy(args[1], result)
        elif name == "type" and len(args) == 1 and first >= 0:
            self.hook(first, (H_CLASSOF, result))
        elif name in _STR_RESULTS:
            self.add1(result, self.str_value())
        elif name in ("enumerate", "zip"):
            self.pairs(site, name, args, result)
        elif name == "dict":
            self.dict_call(site, args, keyword, result)

    def pairs(self, site: int, name: str, args: list[int], result: int) -> None:
        heap = self.site_heap(site, Alloc.LIST)
        pair = self.site_heap(site, Alloc.TUPLE, -4)
        self.add1(result, heap)
        for slot in (SLOT_ALL, SLOT_STAR):
            self.add1(self.field(heap, slot), pair)
        sources = args[:1] if name == "enumerate" else args
        for index, source in enumerate(sources):
            if source < 0:
                continue
            at = 1 if name == "enumerate" else index
            slot = -3 - self.value(CONST, self.sid(f"i:{at}"))
            self.heap_store(pair, [slot], self.elements(source))

    def dict_call(self, site: int, args: list[int], keyword: dict[str, int], result: int) -> None:
        heap = self.site_heap(site, Alloc.DICT)
        self.add1(result, heap)
        for name, arg in keyword.items():
            if arg >= 0:
                slot = -3 - self.value(CONST, self.sid("s:" + name))
                self.heap_store(heap, [slot], arg)
        if args and args[0] >= 0:
            self.heap_store(heap, None, self.elements(args[0]))

    def call_method_of_builtin(self, site: int, attr: int, receiver: int, result: int, pos: Args, kws: Args) -> None:
        name = self.builtin_method_name(attr, receiver)
        if name is None:
            return
        target = self.value(TYPEINST, self.sid(name))
        self.edges.setdefault(site, {}).setdefault(target, E_PLAIN)
        type_name = self.type_of(receiver)
        method = self.strings[attr]
        args = [a if a >= 0 else -1 for a in pos]
        if type_name == "str":
            self.str_method(site, method, result)
            return
        if self.values[receiver][0] == HEAP:  # a method called on a container (not through its type)
            self.container_method(site, method, receiver, result, args)

    def str_method(self, site: int, method: str, result: int) -> None:
        """The result of a str method: parts of the string in a list or tuple, bytes, or a str."""
        parts = _STR_PARTS.get(method)
        if parts is not None:
            heap = self.site_heap(site, parts)
            self.add1(result, heap)
            for slot in (SLOT_ALL, SLOT_STAR):
                self.add1(self.field(heap, slot), self.str_value())
        elif method == "encode":
            self.add1(result, self.value(TYPEINST, self.sid("bytes")))
        else:
            self.add1(result, self.str_value())

    def container_method(self, site: int, method: str, heap: int, result: int, args: list[int]) -> None:
        first = args[0] if args else -1
        if method in ("append", "add") and first >= 0:
            self.heap_store(heap, None, first)
        elif method == "insert" and len(args) > 1 and args[1] >= 0:
            self.heap_store(heap, None, args[1])
        elif method in ("extend", "update") and first >= 0:
            self.heap_store(heap, None, self.elements(first))
        elif method in ("get", "pop", "setdefault") and first >= 0:
            holder = self.new_var()
            self.add1(holder, heap)
            self.load_sub(result, holder, first)
            if len(args) > 1 and args[1] >= 0:
                self.copy(args[1], result)
                if method == "setdefault":
                    self.store_sub(holder, first, args[1])
        elif method == "pop":
            self.copy(self.field(heap, SLOT_ALL), result)
        elif method == "copy":
            self.add1(result, heap)
        elif method == "values":
            out = self.site_heap(site, Alloc.LIST)
            self.add1(result, out)
            self.copy(self.field(heap, SLOT_ALL), self.field(out, SLOT_ALL))
            self.copy(self.field(heap, SLOT_ALL), self.field(out, SLOT_STAR))
        elif method == "items":
            out = self.site_heap(site, Alloc.LIST)
            pair = self.site_heap(site, Alloc.TUPLE, -4)
            self.add1(result, out)
            self.add1(self.field(out, SLOT_ALL), pair)
            self.add1(self.field(out, SLOT_STAR), pair)
            slot = -3 - self.value(CONST, self.sid("i:1"))
            self.heap_store(pair, [slot], self.field(heap, SLOT_ALL))
