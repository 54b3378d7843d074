"""Tests for codeintel.analysis.imports: extraction, resolution, cycles and layers."""

from __future__ import annotations

import ast
import textwrap

import pytest

from codeintel.analysis.imports import (
    ImportEdge,
    ImportKind,
    ImportSite,
    ImportTargetKind,
    extract_all_names,
    extract_import_sites,
    import_cycles_and_layers,
    resolve_imports,
)

MODULES: dict[str, bool] = {
    "pkg": True,
    "pkg.a": False,
    "pkg.b": False,
    "pkg.sub": True,
    "pkg.sub.m": False,
    "pkg.sub.deep": True,
    "pkg.sub.deep.x": False,
    "pkg.impl": False,
    "top": False,
}


def sites_of(source: str, module: str = "pkg.sub.m", is_package: bool = False) -> list[ImportSite]:
    tree = ast.parse(textwrap.dedent(source))
    return extract_import_sites(tree, module, module.replace(".", "/") + ".py", is_package)


def resolve_one(source: str, module: str = "pkg.sub.m", is_package: bool = False, **kwargs: object) -> list[ImportEdge]:
    return resolve_imports(sites_of(source, module, is_package), MODULES, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- extraction


def test_one_site_per_imported_name_with_kind_and_position() -> None:
    sites = sites_of("import os, sys as system\nfrom x import (a,\n    b as bee)\nfrom y import *\n")
    got = [(s.import_kind, s.module, s.name, s.alias, s.line, s.col) for s in sites]
    assert got == [
        (ImportKind.IMPORT, "os", None, None, 1, 7),
        (ImportKind.IMPORT, "sys", None, "system", 1, 11),
        (ImportKind.FROM, "x", "a", None, 2, 15),
        (ImportKind.FROM, "x", "b", "bee", 3, 4),
        (ImportKind.FROM_STAR, "y", "*", None, 4, 14),
    ]


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("import a.b.c", "a"),
        ("import a.b.c as abc", "abc"),
        ("from a.b import c", "c"),
        ("from a.b import c as d", "d"),
        ("from a import *", None),
    ],
    ids=["dotted-binds-top", "dotted-alias", "from-name", "from-alias", "star-binds-nothing"],
)
def test_bound_name_is_the_local_name_the_statement_binds(source: str, bound: str | None) -> None:
    (site,) = sites_of(source)
    assert site.bound_name == bound


@pytest.mark.parametrize(
    ("source", "level", "module"),
    [
        ("from . import x", 1, ""),
        ("from .mod import x", 1, "mod"),
        ("from ..mod import x", 2, "mod"),
        ("from ... import x", 3, ""),
    ],
    ids=["dot", "dot-mod", "dotdot-mod", "three-dots"],
)
def test_relative_level_and_module_text_are_recorded(source: str, level: int, module: str) -> None:
    (site,) = sites_of(source)
    assert (site.level, site.module) == (level, module)


@pytest.mark.parametrize(
    ("source", "type_checking"),
    [
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\n", True),
        ("import typing\nif typing.TYPE_CHECKING:\n    import x\n", True),
        ("if TYPE_CHECKING:\n    pass\nelse:\n    import x\n", False),
        ("if not TYPE_CHECKING:\n    import x\n", False),
        ("if not TYPE_CHECKING:\n    pass\nelse:\n    import x\n", True),
        ("if TYPE_CHECKING:\n    try:\n        import x\n    except ImportError:\n        pass\n", True),
        ("if DEBUG:\n    import x\n", False),
    ],
    ids=["name", "typing-attr", "else-branch", "negated", "negated-else", "nested-try", "other"],
)
def test_imports_under_type_checking_are_flagged(source: str, type_checking: bool) -> None:
    site = next(s for s in sites_of(source) if s.module == "x")
    assert site.is_type_checking is type_checking


@pytest.mark.parametrize(
    ("source", "in_function"),
    [
        ("import x", False),
        ("class C:\n    import x\n", False),
        ("def f():\n    import x\n", True),
        ("class C:\n    async def m(self):\n        import x\n", True),
        ("def f():\n    class Inner:\n        import x\n", True),
        ("try:\n    import x\nexcept ImportError:\n    pass\n", False),
    ],
    ids=["module", "class-body", "function", "async-method", "class-in-function", "module-try"],
)
def test_imports_inside_functions_are_flagged(source: str, in_function: bool) -> None:
    (site,) = sites_of(source)
    assert site.in_function is in_function


def test_deeply_nested_code_does_not_crash_extraction() -> None:
    # Built directly: the parser refuses >100 indentation levels, other tools build deep trees.
    inner: ast.stmt = ast.Import(names=[ast.alias("deep", lineno=1, col_offset=0)])
    for _ in range(5000):
        inner = ast.If(test=ast.Name("x"), body=[inner], orelse=[])
    (site,) = extract_import_sites(ast.Module(body=[inner], type_ignores=[]), "m", "m.py", False)
    assert site.module == "deep"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("__all__ = ['a', 'b']", ("a", "b")),
        ("__all__ = ('a',)\n__all__ += ['b']\n__all__.extend(['c', 'a'])", ("a", "b", "c")),
        ("__all__: list[str] = ['a']", ("a",)),
        ("x = 1", None),
        ("__all__ = [name for name in dir()]", None),
        ("__all__ = ['a']\n__all__ += other.__all__", None),
    ],
    ids=["list", "augmented-and-extend", "annotated", "absent", "computed", "computed-extension"],
)
def test_all_names_are_read_only_from_literals(source: str, expected: tuple[str, ...] | None) -> None:
    assert extract_all_names(ast.parse(source)) == expected


# ------------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("source", "module", "is_package", "dst"),
    [
        ("from . import a", "pkg.b", False, "pkg.a"),
        ("from .a import f", "pkg.b", False, "pkg.a"),
        ("from . import m", "pkg.sub", True, "pkg.sub.m"),
        ("from .. import a", "pkg.sub.m", False, "pkg.a"),
        ("from ..sub.deep import x", "pkg.sub.m", False, "pkg.sub.deep.x"),
        ("from ... import a", "pkg.sub.deep.x", False, "pkg.a"),
        ("from .. import a", "pkg.sub", True, "pkg.a"),
    ],
    ids=["l1-module", "l1-name", "l1-in-init", "l2", "l2-dotted", "l3", "l2-in-init"],
)
def test_relative_imports_resolve_from_the_importers_package(
    source: str, module: str, is_package: bool, dst: str
) -> None:
    (edge,) = resolve_one(source, module, is_package)
    assert (edge.dst_module, edge.target_kind) == (dst, ImportTargetKind.INTERNAL)


@pytest.mark.parametrize(
    ("source", "module", "is_package"),
    [
        ("from ... import a", "pkg.sub.m", False),
        ("from . import a", "top", False),
        ("from .. import a", "pkg", True),
        ("import pkg.missing", "top", False),
        ("from pkg.missing import f", "top", False),
    ],
    ids=["beyond-top", "no-parent-package", "beyond-top-from-init", "missing-dotted", "missing-from"],
)
def test_imports_that_cannot_be_resolved_are_unresolved(source: str, module: str, is_package: bool) -> None:
    (edge,) = resolve_one(source, module, is_package)
    assert edge.target_kind is ImportTargetKind.UNRESOLVED


@pytest.mark.parametrize(
    ("source", "dst", "name_is_module"),
    [
        ("from pkg import a", "pkg.a", True),
        ("from pkg.sub import deep", "pkg.sub.deep", True),
        ("from pkg.a import helper", "pkg.a", False),
        ("from pkg import unknown_name", "pkg", False),
        ("import pkg.sub.deep.x", "pkg.sub.deep.x", False),
        ("import pkg", "pkg", False),
    ],
    ids=["pkg-submodule", "subpkg", "name-in-module", "name-in-init", "import-dotted", "import-pkg"],
)
def test_from_package_import_submodule_targets_the_submodule(source: str, dst: str, name_is_module: bool) -> None:
    (edge,) = resolve_one(source, "top")
    assert (edge.dst_module, edge.name_is_module) == (dst, name_is_module)


@pytest.mark.parametrize(
    ("source", "dst", "kind"),
    [
        ("import os.path", "os", ImportTargetKind.STDLIB),
        ("from collections.abc import Mapping", "collections", ImportTargetKind.STDLIB),
        ("from __future__ import annotations", "__future__", ImportTargetKind.STDLIB),
        ("import numpy.linalg", "numpy", ImportTargetKind.THIRD_PARTY),
        ("from requests import get", "requests", ImportTargetKind.THIRD_PARTY),
    ],
    ids=["stdlib-dotted", "stdlib-from", "future", "third-party-dotted", "third-party-from"],
)
def test_external_imports_are_classified_by_top_level_name(source: str, dst: str, kind: ImportTargetKind) -> None:
    (edge,) = resolve_one(source)
    assert (edge.dst_module, edge.target_kind) == (dst, kind)


def test_internal_top_level_shadows_a_stdlib_name() -> None:
    modules = {"test": True, "test.helpers": False}
    sites = sites_of("import test.helpers\nimport test.nothing")
    kinds = [e.target_kind for e in resolve_imports(sites, modules)]
    assert kinds == [ImportTargetKind.INTERNAL, ImportTargetKind.UNRESOLVED]


def reexport_sites() -> list[ImportSite]:
    return [
        *sites_of("from .impl import Thing as Alias, Other", "pkg", is_package=True),
        *sites_of("from .deep import Deep", "pkg.sub", is_package=True),
        *sites_of("from .x import Deep", "pkg.sub.deep", is_package=True),
        *sites_of("if TYPE_CHECKING:\n    from .b import Hidden\n", "pkg", is_package=True),
    ]


@pytest.mark.parametrize(
    ("source", "dst", "via"),
    [
        ("from pkg import Alias", "pkg.impl", "pkg"),
        ("from pkg import Other", "pkg.impl", "pkg"),
        ("from pkg.sub import Deep", "pkg.sub.deep.x", "pkg.sub"),
        ("from pkg import Hidden", "pkg", None),
        ("from pkg import Thing", "pkg", None),
        ("from pkg.a import Alias", "pkg.a", None),
    ],
    ids=["alias", "plain", "two-hops", "type-checking-not-followed", "unbound-name", "module-not-pkg"],
)
def test_names_reexported_by_a_package_init_are_followed(source: str, dst: str, via: str | None) -> None:
    sites = [*reexport_sites(), *sites_of(source, "top")]
    edge = next(e for e in resolve_imports(sites, MODULES) if e.src_module == "top")
    assert (edge.dst_module, edge.via_module) == (dst, via)


def test_reexport_cycle_between_packages_terminates() -> None:
    modules = {"p": True, "q": True}
    sites = [
        *sites_of("from q import X", "p", is_package=True),
        *sites_of("from p import X", "q", is_package=True),
    ]
    assert {e.dst_module for e in resolve_imports(sites, modules)} <= {"p", "q"}


@pytest.mark.parametrize(
    ("all_names", "expected"),
    [
        (None, [("pkg", "*")]),
        ({"pkg": None}, [("pkg", "*")]),
        ({"pkg": ("a", "helper")}, [("pkg", "helper"), ("pkg.a", "a")]),
    ],
    ids=["no-all-map", "all-not-literal", "all-with-submodule"],
)
def test_star_import_honours_all(
    all_names: dict[str, tuple[str, ...] | None] | None, expected: list[tuple[str, str]]
) -> None:
    edges = resolve_one("from pkg import *", "top", all_names=all_names)
    assert sorted((e.dst_module, e.imported_name) for e in edges) == expected
    assert {e.import_kind for e in edges} == {ImportKind.FROM_STAR}


def test_external_star_import_is_one_edge() -> None:
    (edge,) = resolve_one("from os.path import *")
    assert (edge.dst_module, edge.imported_name, edge.target_kind) == (
        "os",
        "*",
        ImportTargetKind.STDLIB,
    )


def test_edges_carry_the_site_flags() -> None:
    source = "if TYPE_CHECKING:\n    import pkg.a\ndef f():\n    from . import b\n"
    edges = resolve_one(source, "pkg.sub.m")
    flags = {(e.dst_module, e.is_type_checking, e.in_function) for e in edges}
    assert flags == {("pkg.a", True, False), ("pkg.sub", False, True)}


# ------------------------------------------------------------------------------- cycles, layers


def edges_for(graph: dict[str, str], *, type_checking: frozenset[str] = frozenset()) -> list[ImportEdge]:
    """Edges from a {module: 'dst dst ...'} table; sources in `type_checking` only import lazily."""
    sites: list[ImportSite] = []
    for module, targets in graph.items():
        body = "".join(f"import {t}\n" for t in targets.split())
        if module in type_checking:
            body = "if TYPE_CHECKING:\n" + textwrap.indent(body or "pass\n", "    ")
        sites += sites_of(body, module)
    return resolve_imports(sites, dict.fromkeys(graph, False))


@pytest.mark.parametrize(
    ("graph", "layers", "cycles"),
    [
        ({"a": "b", "b": "c", "c": ""}, {"a": 2, "b": 1, "c": 0}, {}),
        ({"a": "b c", "b": "c", "c": "", "d": ""}, {"a": 2, "b": 1, "c": 0, "d": 0}, {}),
        (
            {"a": "b", "b": "c", "c": "b d", "d": ""},
            {"a": 2, "b": 1, "c": 1, "d": 0},
            {"b": ("b", 2), "c": ("b", 2)},
        ),
        ({"x": "x"}, {"x": 0}, {}),
        (
            {"p": "q", "q": "r", "r": "p", "s": "p"},
            {"p": 0, "q": 0, "r": 0, "s": 1},
            {"p": ("p", 3), "q": ("p", 3), "r": ("p", 3)},
        ),
    ],
    ids=["chain", "diamond-and-isolated", "cycle-in-the-middle", "self-import-no-cycle", "triangle"],
)
def test_cycles_and_layers_on_small_graphs(
    graph: dict[str, str], layers: dict[str, int], cycles: dict[str, tuple[str, int]]
) -> None:
    result = import_cycles_and_layers(sorted(graph), edges_for(graph))
    assert {r.module: r.layer for r in result} == layers
    got = {r.module: (r.cycle_id, r.cycle_size) for r in result if r.in_cycle}
    assert got == cycles


def test_type_checking_imports_do_not_make_cycles_by_default() -> None:
    graph = {"a": "b", "b": "a"}
    edges = edges_for(graph, type_checking=frozenset({"b"}))
    assert not any(r.in_cycle for r in import_cycles_and_layers(sorted(graph), edges))
    counted = import_cycles_and_layers(sorted(graph), edges, include_type_checking=True)
    assert all(r.in_cycle for r in counted)
