"""The enclosing GOID of a line: the innermost definition of core.goids holding it."""

from __future__ import annotations

import ast
import textwrap

import pytest

from codeintel.analysis.definitions import iter_definitions
from codeintel.analysis.enclosing import EnclosingIndex, Span, innermost_by_line
from codeintel.analysis.goids import DefinitionRef, build_goids

SOURCE = textwrap.dedent(
    """\
    import os

    @decorator
    class Outer:
        x = 1

        def method(self):
            def inner():
                return 1
            # a comment after inner's body, inside method
            return inner

        # after method's last statement: the class's line
        y = 2

    # after the class's last statement: the module's line
    def f(): return 2
    """
)


def _index() -> tuple[EnclosingIndex, dict[str, str]]:
    defs = list(iter_definitions(ast.parse(SOURCE), "m", "m.py", len(SOURCE.splitlines())))
    refs = [
        DefinitionRef(
            d.path, d.module, d.qualname, d.ordinal, d.kind, d.name, d.parent_qualname, d.start_line, d.end_line
        )
        for d in defs
    ]
    rows = build_goids("repo", refs)
    index = EnclosingIndex.from_goid_rows(
        (r.path, r.goid, r.start_line, r.end_line, r.parent_goid) for r in reversed(rows)
    )
    return index, {r.qualname: r.goid for r in rows}


@pytest.mark.parametrize(
    ("line", "qualname"),
    [
        (1, "m"),
        (2, "m"),
        (3, "Outer"),  # a decorator belongs to what it decorates
        (5, "Outer"),
        (7, "Outer.method"),
        (9, "Outer.method.inner"),
        (10, "Outer.method"),
        (13, "Outer"),
        (14, "Outer"),
        (16, "m"),
        (17, "f"),
        (99, "m"),  # past the end: the module
        (0, "m"),
    ],
    ids=lambda v: str(v),
)
def test_innermost_definition_holds_the_line(line: int, qualname: str) -> None:
    index, goids = _index()
    assert index.lookup("m.py", line) == goids[qualname]


def test_unknown_file_has_no_enclosing_goid() -> None:
    index, _ = _index()
    assert index.lookup("other.py", 1) is None


def test_deeper_span_wins_whatever_the_input_order() -> None:
    spans = [Span("inner", 2, 3, 2), Span("module", 1, 5, 0), Span("outer", 2, 4, 1)]
    assert innermost_by_line(spans)[1:] == ["module", "inner", "inner", "outer", "module"]
    assert innermost_by_line(list(reversed(spans))) == innermost_by_line(spans)
