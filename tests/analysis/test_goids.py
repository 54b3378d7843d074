"""GOIDs: what they hash (and what they must not), URNs, ordinals and parents."""

from __future__ import annotations

import ast
import re
import textwrap

import pytest

from codeintel.analysis.definitions import iter_definitions
from codeintel.analysis.goids import DefinitionRef, GoidRecord, build_goids, make_goid, make_urn

BASE = ("repo", "src/pkg/a.py", "function", "f", 0)


def goids_of(source: str, repo: str = "repo", path: str = "src/pkg/a.py", module: str = "pkg.a") -> list[GoidRecord]:
    text = textwrap.dedent(source)
    defs = iter_definitions(ast.parse(text), module, path, len(text.splitlines()))
    refs = [
        DefinitionRef(
            d.path, d.module, d.qualname, d.ordinal, d.kind, d.name, d.parent_qualname, d.start_line, d.end_line
        )
        for d in defs
    ]
    return build_goids(repo, refs)


def by_key(rows: list[GoidRecord]) -> dict[tuple[str, str, int], GoidRecord]:
    return {(r.kind, r.qualname, r.ordinal): r for r in rows}


def test_a_goid_is_32_hex_characters_and_deterministic() -> None:
    goid = make_goid(*BASE)
    assert re.fullmatch(r"[0-9a-f]{32}", goid)
    assert make_goid(*BASE) == goid


def test_the_goid_algorithm_is_pinned_so_ids_survive_upgrades() -> None:
    assert make_goid("repo", "a.py", "function", "f", 0) == "280f8c21f5e359688d2a9820b39c6693"


CHANGED_PART = [
    ("repo", 0, "other-repo"),
    ("path", 1, "src/pkg/b.py"),
    ("kind", 2, "method"),
    ("qualname", 3, "g"),
    ("ordinal", 4, 1),
]


@pytest.mark.parametrize(("index", "value"), [c[1:] for c in CHANGED_PART], ids=[c[0] for c in CHANGED_PART])
def test_each_identity_part_changes_the_goid(index: int, value: object) -> None:
    parts = list(BASE)
    parts[index] = value
    assert make_goid(*parts) != make_goid(*BASE)  # type: ignore[arg-type]


def test_parts_cannot_run_into_each_other() -> None:
    assert make_goid("re", "po/a.py", "function", "f") != make_goid("repo", "/a.py", "function", "f")


URN_CASES = [
    ("function", ("repo", "src/pkg/a.py", "function", "f", 0), "goid:repo/src/pkg/a.py#function:f"),
    ("nested_method", ("repo", "a.py", "method", "C.m", 0), "goid:repo/a.py#method:C.m"),
    ("second_same_name", ("repo", "a.py", "method", "C.x", 1), "goid:repo/a.py#method:C.x~1"),
    ("module", ("repo", "pkg/__init__.py", "module", "pkg", 0), "goid:repo/pkg/__init__.py#module:pkg"),
]


@pytest.mark.parametrize(("parts", "urn"), [c[1:] for c in URN_CASES], ids=[c[0] for c in URN_CASES])
def test_urn_form(parts: tuple[str, str, str, str, int], urn: str) -> None:
    assert make_urn(*parts) == urn


def test_line_numbers_do_not_enter_the_goid() -> None:
    before = goids_of("""
        def f():
            return 1

        class C:
            def m(self):
                pass
        """)
    after = goids_of("""
        import os


        def new():
            pass


        def f():
            x = 1
            return x

        class C:
            '''Now documented.'''

            def m(self):
                pass
        """)
    old, new = by_key(before), by_key(after)
    for key in [("module", "pkg.a", 0), ("function", "f", 0), ("class", "C", 0), ("method", "C.m", 0)]:
        assert new[key].goid == old[key].goid
        assert new[key].urn == old[key].urn
    assert new[("function", "f", 0)].start_line != old[("function", "f", 0)].start_line


def test_property_and_setter_get_ordinals_0_and_1_in_source_order() -> None:
    rows = by_key(
        goids_of("""
        class C:
            @property
            def x(self):
                return self._x

            @x.setter
            def x(self, value):
                self._x = value

            @x.deleter
            def x(self):
                del self._x
        """)
    )
    getter, setter, deleter = rows[("method", "C.x", 0)], rows[("method", "C.x", 1)], rows[("method", "C.x", 2)]
    assert getter.start_line < setter.start_line < deleter.start_line
    assert len({getter.goid, setter.goid, deleter.goid}) == 3
    assert setter.urn.endswith("#method:C.x~1") and getter.urn.endswith("#method:C.x")


def test_conditional_definitions_get_ordinals() -> None:
    rows = by_key(
        goids_of("""
        import sys
        if sys.version_info >= (3, 12):
            def compat():
                return 1
        else:
            def compat():
                return 2
        """)
    )
    assert rows[("function", "compat", 0)].start_line < rows[("function", "compat", 1)].start_line


def test_definitions_that_run_only_under_a_type_checker_are_flagged() -> None:
    source = textwrap.dedent("""
        import typing
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            def load(r): ...

            class Stub:
                def method(self): ...
        else:
            def load(r):
                return r

        if not typing.TYPE_CHECKING:
            def runtime_only():
                pass
        else:
            def checker_only():
                pass

        try:
            if TYPE_CHECKING:
                def nested(): ...
        except ImportError:
            pass

        def plain():
            if TYPE_CHECKING:
                def inner(): ...
        """)
    flags = {
        (d.qualname, d.ordinal): d.type_checking
        for d in iter_definitions(ast.parse(source), "m", "m.py", len(source.splitlines()))
    }
    assert flags == {
        ("m", 0): False,
        ("load", 0): True,
        ("Stub", 0): True,
        ("Stub.method", 0): True,
        ("load", 1): False,
        ("runtime_only", 0): False,
        ("checker_only", 0): True,
        ("nested", 0): True,
        ("plain", 0): False,
        ("plain.inner", 0): True,
    }


def test_parents_link_methods_to_classes_and_top_level_to_the_module() -> None:
    rows = by_key(
        goids_of("""
        class C:
            def m(self):
                def helper():
                    pass
                return helper

        def f():
            pass
        """)
    )
    module, cls = rows[("module", "pkg.a", 0)], rows[("class", "C", 0)]
    assert module.parent_goid is None
    assert cls.parent_goid == module.goid
    assert rows[("function", "f", 0)].parent_goid == module.goid
    assert rows[("method", "C.m", 0)].parent_goid == cls.goid
    assert rows[("function", "C.m.helper", 0)].parent_goid == rows[("method", "C.m", 0)].goid


def test_the_same_qualname_in_two_files_has_two_goids() -> None:
    a = by_key(goids_of("def f():\n    pass\n", path="a.py", module="a"))
    b = by_key(goids_of("def f():\n    pass\n", path="b.py", module="b"))
    assert a[("function", "f", 0)].goid != b[("function", "f", 0)].goid
