"""Records of the call-graph analysis: per-file facts, call-site rows and their categories.

`ModuleFacts` is what the per-file phase extracts from one syntax tree: a small constraint
program over module-local variable numbers (ints) plus tables of functions, classes, call
sites and strings. It depends on nothing outside its file and round-trips through JSON text
(`facts_to_json` / `facts_from_json`) so the pipeline can store it per file hash. `CallSite` is
one row of the solved call graph (one row per call site and resolved target).
"""

from __future__ import annotations

import base64
import json
import sys
import zlib
from array import array
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

FACTS_VERSION = 5  # 5: `if TYPE_CHECKING:` bodies (and `if not TYPE_CHECKING:` else branches) never run


class CallKind(StrEnum):
    """What a call site calls."""

    FUNCTION = "function"
    METHOD = "method"
    CONSTRUCTOR = "constructor"
    BUILTIN = "builtin"
    EXTERNAL = "external"
    UNRESOLVED = "unresolved"


class Resolution(StrEnum):
    """How the target of a call site was found."""

    DIRECT = "direct"
    IMPORT = "import"
    POINTS_TO = "points_to"
    ATTRIBUTE = "attribute"
    MRO = "mro"
    SUPER = "super"
    DECORATOR = "decorator"
    PROTOCOL = "protocol"
    DYNAMIC = "dynamic"
    UNKNOWN = "unknown"


class Op(IntEnum):
    """Opcodes of the constraint program stored in `ModuleFacts.ops` (first int of each op)."""

    COPY = 0  # dst, src
    ALLOC = 1  # dst, value kind (Alloc), argument
    LOAD_ATTR = 2  # dst, obj, attr string
    STORE_ATTR = 3  # obj, attr string, src
    LOAD_SUB = 4  # dst, obj, key var (-1: unknown key)
    STORE_SUB = 5  # obj, key var (-1: unknown key), src
    SLICE = 6  # dst, obj, lower, upper (NO_BOUND when absent), heap number
    ITER = 7  # dst, src, site
    CALL = 8  # site, func, result, n_pos, pos..., n_kw, (name, var)..., n_dstar, var...
    IMPORT = 9  # dst, module string
    IMPORT_FROM = 10  # dst, module string, name string
    SUPER = 11  # dst, class var, self var
    DECORATE = 12  # dst, site, decorator var, decorated var
    RAISE = 13  # site, src
    INSTANCE_OF = 14  # dst, class var (exception handlers)
    WITH = 15  # dst, src, site
    # dst, src, previous, site (-1: src is no call's result): dst gets src; if dst is still empty
    # once solved and the call at site (if any) is not known to return nothing, dst gets previous
    # (a rebinding to a value the analysis cannot determine keeps the name's earlier values)
    REBIND = 16


class Alloc(IntEnum):
    """Kinds of abstract values an ALLOC op creates."""

    FUNCTION = 0  # argument: index in ModuleFacts.functions
    CLASS = 1  # argument: index in ModuleFacts.classes
    INSTANCE = 2  # argument: class index (default receiver of methods)
    CONST = 3  # argument: string id of a key like "s:name" or "i:3"
    TYPE_INSTANCE = 4  # argument: string id of a builtin type name ("str", "int", ...)
    LIST = 5  # argument: heap number (module-local allocation site)
    TUPLE = 6
    DICT = 7
    SET = 8
    GENERATOR = 9
    BUILTIN = 10  # argument: string id of a builtin name


class SiteShape(IntEnum):
    """Syntactic shape of a call site's called expression."""

    NAME = 0
    ATTRIBUTE = 1
    OTHER = 2
    PROTOCOL = 3  # implicit call: for loop, with statement, raise
    DECORATOR = 4
    DYNAMIC = 5  # getattr with a computed name, eval/exec, globals()[...]


class Flavor(IntEnum):
    """How a function behaves when read from a class or an instance."""

    FUNCTION = 0
    METHOD = 1
    STATIC = 2
    CLASSMETHOD = 3
    PROPERTY = 4


NO_BOUND = -(2**31)


@dataclass(frozen=True, slots=True)
class FunctionFacts:
    """One function, method or lambda of a module."""

    scope: int
    line: int
    params: tuple[int, ...]
    param_names: tuple[str, ...]
    vararg: int
    kwonly: tuple[int, ...]
    kwonly_names: tuple[str, ...]
    kwarg: int
    ret: int
    flavor: int
    owner: int
    generator: bool
    returns_value: bool  # some `return` gives a value the analysis tracks (False: None, numbers, ...)


@dataclass(frozen=True, slots=True)
class ClassFacts:
    """One class of a module: its scope, the variable holding it, its bases and body names."""

    scope: int
    line: int
    var: int
    bases: tuple[int, ...]
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """One call site (explicit call, decorator application or implicit protocol call)."""

    scope: int
    line: int
    col: int
    text: str
    shape: int


@dataclass(frozen=True, slots=True)
class ModuleFacts:
    """Everything the whole-program solver needs from one file; depends on no other file."""

    module: str
    path: str
    is_package: bool
    n_vars: int
    scopes: tuple[str, ...]
    strings: tuple[str, ...]
    globals: tuple[tuple[str, int, bool], ...]
    all_names: tuple[str, ...] | None
    star_imports: tuple[str, ...]
    functions: tuple[FunctionFacts, ...]
    classes: tuple[ClassFacts, ...]
    sites: tuple[SiteFacts, ...]
    ops: tuple[tuple[int, ...], ...]
    errors: tuple[str, ...]
    # pytest: (fixture name, function index) of module-level `@pytest.fixture` functions, and
    # (function index, parameter name, parameter variable) of the parameters pytest fills with
    # fixtures (those without a default, of test functions, `Test*` methods and fixtures)
    fixtures: tuple[tuple[str, int], ...]
    fixture_params: tuple[tuple[int, str, int], ...]

    def qualified(self, scope: int) -> str:
        """Return the fully qualified name of scope number `scope` of this module."""
        qual = self.scopes[scope]
        return f"{self.module}.{qual}" if qual else self.module


@dataclass(frozen=True, slots=True)
class CallSite:
    """One (call site, target) pair of the solved call graph."""

    caller: str
    caller_module: str
    path: str
    line: int
    col: int
    callee: str | None
    callee_text: str
    kind: CallKind
    resolution: Resolution
    confidence: float


def facts_to_json(facts: ModuleFacts) -> str:
    """Serialise module facts to compact JSON text.

    Args:
        facts: The facts of one module.

    Returns:
        JSON text that `facts_from_json` turns back into equal facts.
    """
    doc = [
        FACTS_VERSION,
        facts.module,
        facts.path,
        facts.is_package,
        facts.n_vars,
        facts.scopes,
        facts.strings,
        facts.globals,
        facts.all_names,
        facts.star_imports,
        [_function_row(f) for f in facts.functions],
        [[c.scope, c.line, c.var, c.bases, c.names] for c in facts.classes],
        [[s.scope, s.line, s.col, s.text, s.shape] for s in facts.sites],
        _pack_ops(facts.ops),
        facts.errors,
        facts.fixtures,
        facts.fixture_params,
    ]
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def facts_without_positions(text: str) -> tuple[Any, list[tuple[int, int]]]:
    """The JSON facts with every line and column zeroed, and the (line, column) of each site.

    Two files whose facts are equal without positions give the solver the same program: an
    edit that only moved code (lines added or removed elsewhere) gives the same call edges, at
    the sites' new positions (the i-th site of one is the i-th site of the other).
    """
    doc = json.loads(text)
    functions, classes, sites = doc[_DOC_FUNCTIONS], doc[_DOC_CLASSES], doc[_DOC_SITES]
    positions = [(site[1], site[2]) for site in sites]
    for row in (*functions, *classes):
        row[1] = 0
    for site in sites:
        site[1] = site[2] = 0
    return doc, positions


# where facts_to_json puts functions, classes and sites; their rows have the line second,
# and a site row has its column third
_DOC_FUNCTIONS, _DOC_CLASSES, _DOC_SITES = 10, 11, 12


def _function_row(f: FunctionFacts) -> list[object]:
    return [
        f.scope,
        f.line,
        f.params,
        f.param_names,
        f.vararg,
        f.kwonly,
        f.kwonly_names,
        f.kwarg,
        f.ret,
        f.flavor,
        f.owner,
        f.generator,
        f.returns_value,
    ]


def facts_from_json(text: str) -> ModuleFacts:
    """Rebuild module facts from the text `facts_to_json` produced.

    Args:
        text: JSON text of one module's facts.

    Returns:
        The facts.

    Raises:
        ValueError: The text was written by another version of the facts format.
    """
    doc = json.loads(text)
    if doc[0] != FACTS_VERSION:
        raise ValueError(f"call-graph facts version {doc[0]} != {FACTS_VERSION}; re-extract the file")
    functions = tuple(
        FunctionFacts(
            r[0],
            r[1],
            tuple(r[2]),
            tuple(r[3]),
            r[4],
            tuple(r[5]),
            tuple(r[6]),
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
            r[12],
        )
        for r in doc[10]
    )
    return ModuleFacts(
        module=doc[1],
        path=doc[2],
        is_package=doc[3],
        n_vars=doc[4],
        scopes=tuple(doc[5]),
        strings=tuple(doc[6]),
        globals=tuple((g[0], g[1], g[2]) for g in doc[7]),
        all_names=None if doc[8] is None else tuple(doc[8]),
        star_imports=tuple(doc[9]),
        functions=functions,
        classes=tuple(ClassFacts(r[0], r[1], r[2], tuple(r[3]), tuple(r[4])) for r in doc[11]),
        sites=tuple(SiteFacts(*r) for r in doc[12]),  # rows are exactly the five fields
        ops=_unpack_ops(doc[13]),
        errors=tuple(doc[14]),
        fixtures=tuple((f[0], f[1]) for f in doc[15]),
        fixture_params=tuple((p[0], p[1], p[2]) for p in doc[16]),
    )


def _pack_ops(ops: tuple[tuple[int, ...], ...]) -> str:
    """Ops as one string: each op prefixed by its length, as int32, deflated, base64.

    Half the size of nested JSON lists and about twice as fast to read back.
    """
    flat = array("i")
    for op in ops:
        flat.append(len(op))
        flat.extend(op)
    if sys.byteorder == "big":  # stored little-endian whatever the machine
        flat.byteswap()
    return base64.b64encode(zlib.compress(flat.tobytes(), 1)).decode("ascii")


def _unpack_ops(text: str) -> tuple[tuple[int, ...], ...]:
    packed = array("i")
    packed.frombytes(zlib.decompress(base64.b64decode(text)))
    if sys.byteorder == "big":
        packed.byteswap()
    flat = packed.tolist()
    ops = []
    at, end = 0, len(flat)
    while at < end:
        stop = at + 1 + flat[at]
        ops.append(tuple(flat[at + 1 : stop]))
        at = stop
    return tuple(ops)
