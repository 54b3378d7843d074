"""The symbol index: dotted names, lower-case names, test functions."""

from __future__ import annotations

import pytest

from codeintel.analysis.symbol_index import (
    UnresolvedName,
    build_symbol_index,
    build_unresolved_names,
    called_name,
    full_name,
    is_test_function,
)


@pytest.mark.parametrize(
    ("kind", "name", "path", "expected"),
    [
        ("function", "test_a", "tests/test_x.py", True),
        ("method", "test_b", "test/orm/test_session.py", True),
        ("function", "test_c", "pkg/test_util.py", True),
        ("function", "test_d", "pkg/util_test.py", True),
        ("function", "test_e", "lib/pkg/testing/suite/cases.py", True),
        ("function", "test_f", "pkg/util.py", False),
        ("function", "helper", "tests/test_x.py", False),
        ("class", "TestThing", "tests/test_x.py", False),
        ("module", "test_x", "tests/test_x.py", False),
        ("function", "test_g", "pkg/contest.py", False),
    ],
    ids=lambda v: str(v),
)
def test_a_test_function_is_named_test_in_a_test_file(kind: str, name: str, path: str, expected: bool) -> None:
    assert is_test_function(kind, name, path) is expected


def test_index_rows_have_dotted_and_lower_case_names_sorted_by_goid() -> None:
    base = {"urn": "u", "parent_goid": None, "start_line": 1, "end_line": 2, "callers": None, "callees": 2,
            "unresolved_calls": 0, "cyclomatic": None, "loc": None}  # fmt: skip
    rows = build_symbol_index([
        {**base, "goid": "b", "kind": "module", "module": "pkg.Mod", "qualname": "pkg.Mod", "name": "Mod", "path": "pkg/Mod.py"},
        {**base, "goid": "a", "kind": "method", "module": "pkg.Mod", "qualname": "Cls.Run", "name": "Run", "path": "pkg/Mod.py"},
    ])  # fmt: skip
    assert [r.goid for r in rows] == ["a", "b"]
    assert (rows[0].full_name, rows[0].full_name_lower, rows[0].name_lower) == ("pkg.Mod.Cls.Run", "pkg.mod.cls.run", "run")
    assert rows[1].full_name == "pkg.Mod" == full_name("module", "pkg.Mod", "pkg.Mod")
    assert rows[0].callers == 0 and rows[0].callees == 2


@pytest.mark.parametrize(
    ("text", "name"),
    [("c.dump", "dump"), ("session.scalars(...).one", "one"), ("obj.run ", "run"), ("f", "f"), ("make()(...)", None), ("x[0]", None), (None, None)],
    ids=lambda v: repr(v),
)
def test_an_unresolved_site_calls_the_last_name_of_its_text(text: str | None, name: str | None) -> None:
    assert called_name(text) == name


def test_unresolved_names_count_sites_and_distinct_callers() -> None:
    rows = build_unresolved_names([("a.run", "g1"), ("b.run", "g1"), ("c.run", "g2"), ("f(...)", "g3"), ("x.stop", "g3")])
    assert rows == [UnresolvedName("run", 3, 2), UnresolvedName("stop", 1, 1)]
