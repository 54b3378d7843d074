"""Import statements: extraction from a syntax tree, resolution, cycles and layers.

This module owns everything about `import` statements. `extract_import_sites` turns one parsed
module into one `ImportSite` per imported name (with its position, kind, relative level, alias,
and whether it only runs under `if TYPE_CHECKING:` or inside a function). `resolve_imports`
maps every site of the repository to an internal module, a top-level external package
(standard library or third party) or "unresolved", following package re-exports and honouring
`__all__` for star imports. `import_cycles_and_layers` condenses the internal module graph into
import cycles and architectural layers. Nothing here reads files or imports the analysed code.
"""

from __future__ import annotations

import ast
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from codeintel.analysis.definitions import type_checking_branches
from codeintel.analysis.graph_metrics import compute_cycles_and_layers

logger = logging.getLogger(__name__)

STAR = "*"


class ImportKind(StrEnum):
    """Syntactic form of an import statement."""

    IMPORT = "import"
    FROM = "from"
    FROM_STAR = "from_star"


class ImportTargetKind(StrEnum):
    """What an imported name resolves to."""

    INTERNAL = "internal"
    STDLIB = "stdlib"
    THIRD_PARTY = "third_party"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True, slots=True)
class ImportSite:
    """One imported name of one import statement, as written.

    `module` is the dotted module text after `from` (or after `import`), without the leading dots
    of a relative import (those are `level`); `name` is the imported name of a `from` import
    (`"*"` for a star import, None for `import a.b`); `bound_name` is the local name the statement
    binds (`a` for `import a.b.c`, the alias if any, None for a star import). `line` (1-based)
    and `col` (0-based) locate the imported name itself, not the statement.
    """

    src_module: str
    src_path: str
    src_is_package: bool
    import_kind: ImportKind
    level: int
    module: str
    name: str | None
    alias: str | None
    bound_name: str | None
    line: int
    col: int
    is_type_checking: bool
    in_function: bool


@dataclass(frozen=True, slots=True)
class ImportEdge:
    """One imported name resolved to a module.

    `dst_module` is an internal module name, the top-level name of an external package, or the
    best absolute text for an unresolved import ("" when a relative import climbs past the top).
    `name_is_module` is True when `imported_name` is itself the submodule `dst_module`
    (`from pkg import sub`). `via_module` is the package whose `__init__` re-exported `imported_name` when the edge was
    followed to the defining submodule, else None.
    """

    src_module: str
    src_path: str
    dst_module: str
    imported_module: str
    imported_name: str | None
    alias: str | None
    target_kind: ImportTargetKind
    import_kind: ImportKind
    level: int
    line: int
    col: int
    name_is_module: bool
    is_type_checking: bool
    in_function: bool
    via_module: str | None


@dataclass(frozen=True, slots=True)
class ModuleLayer:
    """Position of one internal module in the import graph.

    `layer` is the longest-path depth in the condensation DAG (0 = imports no internal module;
    every member of a cycle shares its cycle's layer). `cycle_id` is the smallest member name of
    the module's import cycle, None when the module is in none; `cycle_size` is 0 then.
    """

    module: str
    layer: int
    in_cycle: bool
    cycle_id: str | None
    cycle_size: int


# --------------------------------------------------------------------------------------------
# Extraction


@dataclass(frozen=True, slots=True)
class _Scope:
    is_type_checking: bool
    in_function: bool


def _branch_scopes(node: ast.If, scope: _Scope) -> tuple[_Scope, _Scope]:
    """Scopes of the body and the else-branch of an `if` statement."""
    body, orelse = type_checking_branches(node)
    checking = _Scope(is_type_checking=True, in_function=scope.in_function)
    return (checking if body else scope, checking if orelse else scope)


def _iter_import_nodes(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, _Scope]]:
    """Yield every import statement with its scope, iteratively (deep nesting is safe)."""
    stack: list[tuple[ast.AST, _Scope]] = [(tree, _Scope(False, False))]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, scope
            continue
        if isinstance(node, ast.If):
            body_scope, else_scope = _branch_scopes(node, scope)
            stack.extend((child, body_scope) for child in node.body)
            stack.extend((child, else_scope) for child in node.orelse)
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            scope = _Scope(scope.is_type_checking, in_function=True)
        for child in ast.iter_child_nodes(node):
            # Expressions never hold statements (lambda bodies are expressions too).
            if not isinstance(child, ast.expr):
                stack.append((child, scope))


def _names_of(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[ast.alias, ImportKind, str]]:
    """Each imported alias with its kind and the module text it names."""
    for alias in node.names:
        if isinstance(node, ast.Import):
            yield alias, ImportKind.IMPORT, alias.name
        elif alias.name == STAR:
            yield alias, ImportKind.FROM_STAR, node.module or ""
        else:
            yield alias, ImportKind.FROM, node.module or ""


def _bound_name(alias: ast.alias, kind: ImportKind) -> str | None:
    if kind is ImportKind.FROM_STAR:
        return None
    if kind is ImportKind.IMPORT:
        return alias.asname or alias.name.partition(".")[0]
    return alias.asname or alias.name


def extract_import_sites(tree: ast.Module, module: str, path: str, is_package: bool) -> list[ImportSite]:
    """Extract one `ImportSite` per imported name of every import statement in a module.

    Args:
        tree: The parsed module.
        module: The module's import name (`pkg.a`; `pkg` for `pkg/__init__.py`).
        path: The file's repository-relative path, copied into each site.
        is_package: Whether the file is a package `__init__` (relative imports start there).

    Returns:
        Sites sorted by position. Imports in the body of `if TYPE_CHECKING:` (or in the else
        branch of `if not TYPE_CHECKING:`) are flagged `is_type_checking`; imports anywhere inside
        a function, method or lambda are flagged `in_function`.
    """
    sites: list[ImportSite] = []
    for node, scope in _iter_import_nodes(tree):
        level = (node.level or 0) if isinstance(node, ast.ImportFrom) else 0
        for alias, kind, text in _names_of(node):
            site = ImportSite(
                src_module=module,
                src_path=path,
                src_is_package=is_package,
                import_kind=kind,
                level=level,
                module=text,
                name=None if kind is ImportKind.IMPORT else alias.name,
                alias=alias.asname,
                bound_name=_bound_name(alias, kind),
                line=alias.lineno,
                col=alias.col_offset,
                is_type_checking=scope.is_type_checking,
                in_function=scope.in_function,
            )
            sites.append(site)
    sites.sort(key=lambda s: (s.line, s.col, s.name or "", s.module))
    return sites


def _literal_names(value: ast.expr) -> list[str] | None:
    if not isinstance(value, ast.List | ast.Tuple):
        return None
    names = [elt.value for elt in value.elts if isinstance(elt, ast.Constant)]
    if len(names) != len(value.elts) or not all(isinstance(n, str) for n in names):
        return None
    return [str(n) for n in names]


def _all_update(stmt: ast.stmt) -> tuple[bool, list[str] | None] | None:
    """Classify a module-level statement touching `__all__`.

    Returns None if it does not touch `__all__`, else (replaces, names) where names is None
    when the value is not a literal list/tuple of strings.
    """
    if isinstance(stmt, ast.Assign | ast.AnnAssign):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True, _literal_names(stmt.value) if stmt.value is not None else None
    elif isinstance(stmt, ast.AugAssign):
        if isinstance(stmt.target, ast.Name) and stmt.target.id == "__all__":
            return False, _literal_names(stmt.value)
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "__all__"
            and func.attr == "extend"
            and len(stmt.value.args) == 1
        ):
            return False, _literal_names(stmt.value.args[0])
    return None


def extract_all_names(tree: ast.Module) -> tuple[str, ...] | None:
    """Return a module's `__all__` when it is built from literal lists/tuples of strings.

    Top-level `__all__ = [...]`, `__all__ += [...]` and `__all__.extend([...])` are followed in
    order. Any other assignment (a computed value) makes `__all__` unknown.

    Args:
        tree: The parsed module.

    Returns:
        The names in order without duplicates, or None if `__all__` is absent or not literal.
    """
    names: list[str] | None = None
    for stmt in tree.body:
        update = _all_update(stmt)
        if update is None:
            continue
        replaces, values = update
        if values is None or (not replaces and names is None):
            return None
        names = values if replaces else [*(names or []), *values]
    return None if names is None else tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# Resolution


@dataclass(frozen=True, slots=True)
class _Target:
    dst_module: str
    kind: ImportTargetKind
    imported_name: str | None
    name_is_module: bool = False


class _Resolver:
    """Resolve sites against the set of internal modules (one instance per repository)."""

    def __init__(self, modules: Mapping[str, bool], all_names: Mapping[str, tuple[str, ...] | None]) -> None:
        self.modules = modules
        self.all_names = all_names
        self.top_levels = {name.partition(".")[0] for name in modules}

    def classify_missing(self, absolute: str) -> _Target:
        """Target for an absolute module text that is not an internal module."""
        top = absolute.partition(".")[0]
        if top in self.top_levels:
            return _Target(absolute, ImportTargetKind.UNRESOLVED, None)
        kind = ImportTargetKind.STDLIB if top in sys.stdlib_module_names else None
        return _Target(top, kind or ImportTargetKind.THIRD_PARTY, None)

    def base_module(self, site: ImportSite) -> str | None:
        """Absolute module text a site names, or None if a relative import climbs too far."""
        if site.level == 0:
            return site.module
        parts = site.src_module.split(".")
        package = parts if site.src_is_package else parts[:-1]
        keep = len(package) - (site.level - 1)
        if keep < 1:
            return None
        return ".".join([*package[:keep], *([site.module] if site.module else [])])

    def resolve(self, site: ImportSite) -> list[_Target]:
        base = self.base_module(site)
        if base is None:
            return [_Target("", ImportTargetKind.UNRESOLVED, site.name)]
        if site.import_kind is ImportKind.IMPORT:
            if base in self.modules:
                return [_Target(base, ImportTargetKind.INTERNAL, None)]
            return [self.classify_missing(base)]
        if site.import_kind is ImportKind.FROM_STAR:
            return self.resolve_star(base)
        return [self.resolve_name(base, site.name or "")]

    def resolve_name(self, base: str, name: str) -> _Target:
        submodule = f"{base}.{name}" if base else name
        if submodule in self.modules:
            return _Target(submodule, ImportTargetKind.INTERNAL, name, name_is_module=True)
        if base in self.modules:
            return _Target(base, ImportTargetKind.INTERNAL, name)
        missing = self.classify_missing(base)
        return _Target(missing.dst_module, missing.kind, name)

    def resolve_star(self, base: str) -> list[_Target]:
        if base not in self.modules:
            missing = self.classify_missing(base)
            return [_Target(missing.dst_module, missing.kind, STAR)]
        names = self.all_names.get(base)
        if not names:
            return [_Target(base, ImportTargetKind.INTERNAL, STAR)]
        return [self.resolve_name(base, name) for name in names]


def _edge(site: ImportSite, target: _Target) -> ImportEdge:
    return ImportEdge(
        src_module=site.src_module,
        src_path=site.src_path,
        dst_module=target.dst_module,
        imported_module=site.module,
        imported_name=target.imported_name,
        alias=site.alias,
        target_kind=target.kind,
        import_kind=site.import_kind,
        level=site.level,
        line=site.line,
        col=site.col,
        name_is_module=target.name_is_module,
        is_type_checking=site.is_type_checking,
        in_function=site.in_function,
        via_module=None,
    )


def _package_bindings(edges: Sequence[ImportEdge], modules: Mapping[str, bool]) -> dict[str, dict[str, ImportEdge]]:
    """For each package, the runtime module-level names its `__init__` imports, by bound name."""
    bindings: dict[str, dict[str, ImportEdge]] = {}
    for edge in edges:
        if (
            modules.get(edge.src_module)
            and edge.target_kind is ImportTargetKind.INTERNAL
            and edge.import_kind is not ImportKind.IMPORT
            and edge.imported_name not in (None, STAR)
            and not edge.is_type_checking
            and not edge.in_function
        ):
            bound = edge.alias or edge.imported_name or ""
            bindings.setdefault(edge.src_module, {}).setdefault(bound, edge)
    return bindings


def _follow_reexport(
    edge: ImportEdge,
    bindings: Mapping[str, Mapping[str, ImportEdge]],
) -> ImportEdge:
    """Follow `from pkg import name` to the submodule pkg's `__init__` imported `name` from."""
    if edge.target_kind is not ImportTargetKind.INTERNAL or edge.name_is_module:
        return edge
    dst, name, seen = edge.dst_module, edge.imported_name or "", {edge.dst_module}
    while (hop := bindings.get(dst, {}).get(name)) is not None and hop.dst_module not in seen:
        dst, name = hop.dst_module, hop.imported_name or ""
        seen.add(dst)
        if hop.name_is_module:
            break
    if dst == edge.dst_module:
        return edge
    return replace(edge, dst_module=dst, via_module=edge.dst_module)


def resolve_imports(
    sites: Sequence[ImportSite],
    modules: Mapping[str, bool],
    all_names: Mapping[str, tuple[str, ...] | None] | None = None,
) -> list[ImportEdge]:
    """Resolve import sites to internal modules or external packages.

    Rules: `import a.b.c` targets `a.b.c` (its parent packages are not separate edges);
    `from pkg import sub` targets the submodule `pkg.sub` when it exists, otherwise `pkg`;
    relative imports climb from the importing module's package (a package's `__init__` is its
    own package); `from pkg import name` where the package's `__init__` imports `name` at module
    level (outside TYPE_CHECKING and functions) from a submodule is followed to that submodule,
    transitively, with `via_module` set to the package; `from m import *` yields one edge per
    name of m's literal `__all__` (submodule names resolved as submodules) or a single `"*"` edge
    when `__all__` is unknown. A name whose top-level package is internal but whose module is
    missing, or a relative import past the top, is unresolved; other names are classified as
    standard library (`sys.stdlib_module_names`) or third party by their top-level name.

    Args:
        sites: Import sites of all modules of the repository.
        modules: Every internal module name mapped to whether it is a package.
        all_names: Literal `__all__` of internal modules (None or missing: unknown).

    Returns:
        One edge per imported name (per `__all__` name for a resolved star import), sorted by
        source path, line, column and imported name.
    """
    resolver = _Resolver(modules, all_names or {})
    direct = [_edge(site, target) for site in sites for target in resolver.resolve(site)]
    bindings = _package_bindings(direct, modules)
    edges = [_follow_reexport(edge, bindings) for edge in direct]
    edges.sort(key=lambda e: (e.src_path, e.src_module, e.line, e.col, e.imported_name or ""))
    return edges


def import_graph(
    site_rows: Iterable[Mapping[str, Any]], export_rows: Iterable[Mapping[str, Any]], modules: Mapping[str, bool]
) -> tuple[list[ImportEdge], list[ModuleLayer]]:
    """The import graph from stored rows: `resolve_imports` over the import sites (rows of
    core.import_sites, in source order) with the modules' literal `__all__` (rows of
    core.module_exports), then `import_cycles_and_layers`."""
    sites = [ImportSite(**row) for row in site_rows]
    exports = {r["module"]: None if r["all_names"] is None else tuple(r["all_names"]) for r in export_rows}
    edges = resolve_imports(sites, modules, exports)
    return edges, import_cycles_and_layers(sorted(modules), edges)


# --------------------------------------------------------------------------------------------
# Cycles and layers


def import_cycles_and_layers(
    modules: Sequence[str],
    edges: Sequence[ImportEdge],
    *,
    include_type_checking: bool = False,
    include_in_function: bool = True,
) -> list[ModuleLayer]:
    """Find import cycles (strongly connected components) and the layer of every module.

    Only internal module -> other module edges count. By default imports that only run under
    TYPE_CHECKING are left out (they never execute, and are the usual way to break a cycle for
    annotations), while imports inside functions count: they are real dependencies even though
    they are deferred. A module importing itself is not a cycle.

    Args:
        modules: All internal module names (modules without edges get layer 0).
        edges: Resolved import edges.
        include_type_checking: Count imports made only under `if TYPE_CHECKING:`.
        include_in_function: Count imports made inside functions.

    Returns:
        One record per module, sorted by module name.
    """
    known = set(modules)
    pairs = sorted(
        {
            (edge.src_module, edge.dst_module)
            for edge in edges
            if edge.target_kind is ImportTargetKind.INTERNAL
            and edge.src_module != edge.dst_module
            and edge.src_module in known
            and edge.dst_module in known
            and (include_type_checking or not edge.is_type_checking)
            and (include_in_function or not edge.in_function)
        }
    )
    cycles = compute_cycles_and_layers(sorted(known), pairs)
    return [
        ModuleLayer(
            module=module,
            layer=info.layer,
            in_cycle=info.in_cycle,
            cycle_id=info.cycle_id,
            cycle_size=info.cycle_size,
        )
        for module, info in sorted(cycles.items())
    ]
