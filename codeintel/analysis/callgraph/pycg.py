"""Call-site rows from a solved graph, PyCG's JSON format, and the one-call convenience API.

`solve_call_graph` turns the solver's per-site edges into `CallSite` rows (one per site and
target, or one unresolved row), with kind, resolution and confidence. `to_pycg` renders rows
as PyCG's `{caller: [callee, ...]}` object, in PyCG's names for methods of builtin types;
`build_call_graph` parses, extracts and solves a list of in-memory files.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Iterator, Sequence

from codeintel.analysis.callgraph.facts import extract_call_facts
from codeintel.analysis.callgraph.model import (
    CallKind,
    CallSite,
    Flavor,
    ModuleFacts,
    Resolution,
    SiteFacts,
    SiteShape,
)
from codeintel.analysis.callgraph.solver import Solution, solve
from codeintel.analysis.callgraph.state import (
    BOUND,
    BUILTIN,
    CLASS,
    E_CTOR,
    E_DECORATOR,
    E_PROTOCOL,
    EXT,
    FUNC,
    INST,
    TYPEINST,
)
from codeintel.gcpause import gc_paused

_SHAPE_RESOLUTION: dict[int, Resolution] = {
    SiteShape.ATTRIBUTE: Resolution.ATTRIBUTE,
    SiteShape.OTHER: Resolution.POINTS_TO,
    SiteShape.DYNAMIC: Resolution.DYNAMIC,
    SiteShape.PROTOCOL: Resolution.PROTOCOL,
    SiteShape.DECORATOR: Resolution.DECORATOR,
}
_FLAG_RESOLUTION = {E_PROTOCOL: Resolution.PROTOCOL, E_DECORATOR: Resolution.DECORATOR}
_EVAL_NAMES = frozenset({"<builtin>.eval", "<builtin>.exec", "<builtin>.compile"})
# How the PyCG format (PyCG's ground truth, and JARVIS's for the types PyCG leaves out) names the
# methods of builtin types that rows name `<builtin>.type.method`
PYCG_TYPE_NAMES = {
    "str": "<**PyStr**>", "list": "<**PyList**>", "dict": "<**PyDict**>", "set": "<**PySet**>",
    "tuple": "<**PyTuple**>", "int": "<**PyNum**>", "float": "<**PyNum**>",
}  # fmt: skip


def solve_call_graph(facts: Iterable[ModuleFacts]) -> list[CallSite]:
    """Solve the whole program and return its call sites.

    Args:
        facts: The facts of every analysed module (from `extract_call_facts`). Pass a generator
            to let the solver own them: it drops each module's constraint ops once linked.

    Returns:
        One row per (call site, target), or one unresolved row for a site with no target,
        sorted by path, line, column and callee.
    """
    with gc_paused():  # millions of small long-lived objects: GC passes would cost ~40%
        rows = [
            _row(module, site, caller, *target[:4])
            for module, site, caller, targets in site_targets(solve(facts))
            for target in targets
        ]
    rows.sort(key=lambda r: (r.path, r.line, r.col, r.callee or "", r.kind))
    return rows


# callee (None: unresolved), kind, how, confidence, and the file of a repository callee (two files
# may have one module name: the callee's name alone does not tell which)
Target = tuple[str | None, CallKind, Resolution, float, str | None]
SiteTargets = tuple[ModuleFacts, SiteFacts, str, list[Target]]  # module, site, caller, targets


def site_targets(solution: Solution) -> Iterator[SiteTargets]:
    """Each call site of a solved program with its caller and its targets (sites with none
    are skipped: implicit protocol calls and decorators that reach nothing), in facts order.

    Targets are sorted by callee, kind and resolution; a site with no target is one
    unresolved target (callee None).
    """
    namer = _Namer(solution)
    edges = solution.edges
    for index, module in enumerate(solution.facts):
        base = solution.site_base[index]
        for offset, site in enumerate(module.sites):
            targets = _site_targets(namer, site, module, edges.get(base + offset))
            if targets:
                yield module, site, module.qualified(site.scope), targets


class _Namer:
    """Names, kinds and resolutions of solver values."""

    def __init__(self, solution: Solution) -> None:
        self.solution = solution
        self.function_names: dict[int, str] = {}

    def function_name(self, gfid: int) -> str:
        found = self.function_names.get(gfid)
        if found is None:
            s = self.solution
            index = s.func_module[gfid]
            facts = s.facts[index]
            found = self.function_names[gfid] = facts.qualified(facts.functions[gfid - s.func_base[index]].scope)
        return found

    def class_name(self, gcid: int) -> str:
        s = self.solution
        index = s.class_module[gcid]
        facts = s.facts[index]
        return facts.qualified(facts.classes[gcid - s.class_base[index]].scope)

    def target(
        self, module: ModuleFacts, site: SiteFacts, value: int, flag: int
    ) -> tuple[str, CallKind, Resolution, str | None]:
        s = self.solution
        key = s.values[value]
        kind = key[0]
        resolution = _FLAG_RESOLUTION.get(flag) or _SHAPE_RESOLUTION.get(site.shape, Resolution.POINTS_TO)
        if kind in (FUNC, BOUND):
            facts, _ = s.function(key[1])
            name = self.function_name(key[1])
            call_kind = CallKind.FUNCTION if facts.flavor == Flavor.FUNCTION else CallKind.METHOD
            if flag == E_CTOR:
                call_kind = CallKind.CONSTRUCTOR
            if kind == BOUND and site.text.startswith("super("):
                resolution = Resolution.SUPER
            elif kind == BOUND and s.values[key[2]][0] == INST and facts.owner >= 0:
                owner = s.class_base[s.func_module[key[1]]] + facts.owner
                if owner != s.values[key[2]][1]:
                    resolution = Resolution.MRO
            home = s.facts[s.func_module[key[1]]]
            if site.shape == SiteShape.NAME and flag not in _FLAG_RESOLUTION:
                resolution = Resolution.DIRECT if home is module else Resolution.IMPORT
            return name, call_kind, resolution, home.path
        if kind == CLASS:
            return self.class_name(key[1]), CallKind.CONSTRUCTOR, resolution, s.facts[s.class_module[key[1]]].path
        name = s.strings[key[1]]
        if kind == EXT:
            call_kind = CallKind.CONSTRUCTOR if flag == E_CTOR else CallKind.EXTERNAL
            if site.shape == SiteShape.NAME:
                resolution = Resolution.IMPORT
            return name, call_kind, resolution, None
        if kind == BUILTIN:
            name = f"<builtin>.{name}"
            if site.shape == SiteShape.NAME:
                resolution = Resolution.DIRECT
            return name, CallKind.BUILTIN, resolution, None
        assert kind == TYPEINST
        return name, CallKind.BUILTIN, resolution, None


def _site_targets(namer: _Namer, site: SiteFacts, module: ModuleFacts, edges: dict[int, int] | None) -> list[Target]:
    targets = {namer.target(module, site, value, flag) for value, flag in edges.items()} if edges else set()
    shape = site.shape
    if not targets:
        if shape in (SiteShape.PROTOCOL, SiteShape.DECORATOR):
            return []
        return [
            (
                None,
                CallKind.UNRESOLVED,
                Resolution.DYNAMIC if shape == SiteShape.DYNAMIC else Resolution.UNKNOWN,
                0.0,
                None,
            )
        ]
    confidence = 1.0 if len(targets) == 1 else max(0.1, round(1.0 / len(targets), 3))
    found: list[Target] = [
        (name, kind, resolution, confidence, path)
        for name, kind, resolution, path in sorted(targets, key=lambda t: (*t[:3], t[3] or ""))
    ]
    if shape == SiteShape.DYNAMIC and any(name in _EVAL_NAMES for name, _, _, _ in targets):
        found.append((None, CallKind.UNRESOLVED, Resolution.DYNAMIC, 0.1, None))
    return found


def _row(
    module: ModuleFacts, site: SiteFacts, caller: str, callee: str | None, kind: CallKind,
    resolution: Resolution, confidence: float,
) -> CallSite:  # fmt: skip
    return CallSite(
        caller=caller,
        caller_module=module.module,
        path=module.path,
        line=site.line,
        col=site.col,
        callee=callee,
        callee_text=site.text,
        kind=kind,
        resolution=resolution,
        confidence=confidence,
    )


def to_pycg(sites: Sequence[CallSite], facts: Sequence[ModuleFacts]) -> dict[str, list[str]]:
    """Render call sites in PyCG's format: `{caller: sorted callees}` over qualified names.

    Every analysed module, function, method and lambda is a key, and so is every caller and
    callee. Constructing a class with no `__init__` in its MRO is no edge (as PyCG writes it).

    Args:
        sites: Rows from `solve_call_graph`.
        facts: The facts the rows were solved from.

    Returns:
        The call graph as PyCG writes it, keys and lists sorted.
    """
    graph: dict[str, set[str]] = {}
    classes: set[str] = set()
    for module in facts:
        if module.module:
            graph.setdefault(module.module, set())
        for function in module.functions:
            graph.setdefault(module.qualified(function.scope), set())
        classes.update(module.qualified(c.scope) for c in module.classes)
    for row in sites:
        callee = row.callee
        if callee is None or (row.kind == CallKind.CONSTRUCTOR and callee in classes):
            continue
        if row.kind == CallKind.BUILTIN:
            callee = pycg_name(callee)
        graph.setdefault(row.caller, set()).add(callee)
        graph.setdefault(callee, set())
    return {key: sorted(graph[key]) for key in sorted(graph)}


def pycg_name(callee: str) -> str:
    """PyCG's name of a builtin callee: `<builtin>.str.join` is `<**PyStr**>.join`; others unchanged."""
    parts = callee.split(".")
    if len(parts) == 3 and parts[0] == "<builtin>" and parts[1] in PYCG_TYPE_NAMES:
        return f"{PYCG_TYPE_NAMES[parts[1]]}.{parts[2]}"
    return callee


def build_call_graph(files: Sequence[tuple[str, str, bool, str]]) -> tuple[list[ModuleFacts], list[CallSite]]:
    """Parse, extract and solve in-memory files.

    Args:
        files: (path, module, is_package, source text) per file.

    Returns:
        The facts of every file (a file that does not parse has facts with no constraints and
        the error in `errors`) and the solved call sites.
    """
    all_facts = [_facts_of(path, module, is_package, text) for path, module, is_package, text in files]
    return all_facts, solve_call_graph(all_facts)


def _facts_of(path: str, module: str, is_package: bool, text: str) -> ModuleFacts:
    try:
        tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        facts = extract_call_facts(ast.Module(body=[], type_ignores=[]), module, path, is_package)
        line = getattr(error, "lineno", 0) or 0
        message = f"{path}:{line}: {type(error).__name__}: {error}"
        return dataclasses.replace(facts, errors=(message,))
    return extract_call_facts(tree, module, path, is_package)


_UNUSED = (BUILTIN,)
