"""Tests for codeintel.analysis.metrics: radon-compatible complexity and the other function fields."""

from __future__ import annotations

import ast
import textwrap

import pytest
from radon.complexity import cc_visit

from codeintel.analysis.metrics import FunctionMetrics, Typedness, compute_function_metrics


def metrics_of(source: str) -> FunctionMetrics:
    """Metrics of the first function defined at the top of a dedented source string."""
    text = textwrap.dedent(source)
    tree = ast.parse(text)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    return compute_function_metrics(node, text.splitlines())


CYCLOMATIC_CASES = [
    ("straight_line_is_one", "def f(x):\n    y = x\n    return y\n", 1),
    ("if_adds_one", "def f(x):\n    if x:\n        return 1\n", 2),
    ("else_adds_nothing", "def f(x):\n    if x:\n        a = 1\n    else:\n        a = 2\n", 2),
    (
        "each_elif_adds_one",
        "def f(x):\n    if x == 1:\n        pass\n    elif x == 2:\n        pass\n"
        "    elif x == 3:\n        pass\n    else:\n        pass\n",
        4,
    ),
    ("for_adds_one", "def f(xs):\n    for x in xs:\n        pass\n", 2),
    (
        "for_else_adds_two",
        "def f(xs):\n    for x in xs:\n        pass\n    else:\n        pass\n",
        3,
    ),
    ("async_for_adds_one", "async def f(xs):\n    async for x in xs:\n        pass\n", 2),
    ("while_adds_one", "def f(x):\n    while x:\n        x -= 1\n", 2),
    (
        "while_else_adds_two",
        "def f(x):\n    while x:\n        x -= 1\n    else:\n        pass\n",
        3,
    ),
    ("with_adds_nothing", "def f(x):\n    with x:\n        pass\n", 1),
    ("async_with_adds_nothing", "async def f(x):\n    async with x:\n        pass\n", 1),
    (
        "each_except_handler_adds_one",
        "def f():\n    try:\n        g()\n    except ValueError:\n        pass\n"
        "    except (KeyError, TypeError):\n        pass\n",
        3,
    ),
    (
        "try_else_adds_one_and_finally_nothing",
        "def f():\n    try:\n        g()\n    except ValueError:\n        pass\n"
        "    else:\n        h()\n    finally:\n        k()\n",
        3,
    ),
    (
        "try_finally_alone_adds_nothing",
        "def f():\n    try:\n        g()\n    finally:\n        h()\n",
        1,
    ),
    (
        "except_star_adds_nothing_as_in_radon",
        "def f():\n    try:\n        g()\n    except* ValueError:\n        pass\n",
        1,
    ),
    ("assert_adds_one", "def f(x):\n    assert x\n", 2),
    (
        "assert_expression_is_not_looked_into",
        "def f(x, y):\n    assert x and y or (1 if x else 2)\n",
        2,
    ),
    ("conditional_expression_adds_one", "def f(x):\n    return 1 if x else 2\n", 2),
    ("and_chain_adds_operands_minus_one", "def f(a, b, c):\n    return a and b and c\n", 3),
    (
        "mixed_bool_ops_add_per_operator_node",
        "def f(a, b, c, d):\n    return a and b or c and d\n",
        4,
    ),
    ("bool_op_in_if_test_counts_too", "def f(a, b):\n    if a or b:\n        pass\n", 3),
    ("comprehension_adds_one", "def f(xs):\n    return [x for x in xs]\n", 2),
    (
        "comprehension_each_for_and_if_adds_one",
        "def f(xs):\n    return {x: y for x in xs if x if x > 1 for y in x if y}\n",
        6,
    ),
    ("generator_expression_counts", "def f(xs):\n    return sum(x for x in xs if x)\n", 3),
    (
        "match_cases_count_without_wildcard",
        "def f(x):\n    match x:\n        case 1:\n            pass\n        case 2:\n            pass\n"
        "        case _:\n            pass\n",
        3,
    ),
    (
        "match_without_wildcard_counts_every_case",
        "def f(x):\n    match x:\n        case 1:\n            pass\n        case [a, *_]:\n            pass\n",
        3,
    ),
    (
        "match_capture_name_is_a_catch_all",
        "def f(x):\n    match x:\n        case 1:\n            pass\n        case other:\n            pass\n",
        2,
    ),
    (
        "match_only_wildcard_adds_nothing",
        "def f(x):\n    match x:\n        case _:\n            pass\n",
        1,
    ),
    (
        "nested_def_does_not_count",
        "def f(x):\n    def g(y):\n        if y:\n            return 1\n    return g\n",
        1,
    ),
    (
        "nested_class_does_not_count",
        "def f(x):\n    class C:\n        def m(self):\n            return 1 if x else 2\n    return C\n",
        1,
    ),
    ("lambda_body_counts", "def f(xs):\n    return sorted(xs, key=lambda x: 1 if x else 0)\n", 2),
    (
        "decorators_and_defaults_do_not_count",
        "@deco(1 if a else 2)\ndef f(x=a or b, y=[i for i in z]):\n    pass\n",
        1,
    ),
    (
        "decisions_inside_a_nested_def_inside_an_if_do_not_count",
        "def f(x):\n    if x:\n        def g():\n            return a or b\n",
        2,
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [(src, cc) for _, src, cc in CYCLOMATIC_CASES],
    ids=[case_id for case_id, _, _ in CYCLOMATIC_CASES],
)
def test_cyclomatic_follows_radon_rule(source: str, expected: int) -> None:
    assert metrics_of(source).cyclomatic == expected


@pytest.mark.parametrize(
    "source",
    [src for _, src, _ in CYCLOMATIC_CASES],
    ids=[case_id for case_id, _, _ in CYCLOMATIC_CASES],
)
def test_cyclomatic_table_agrees_with_radon(source: str) -> None:
    radon_value = next(b.complexity for b in cc_visit(source) if b.name == "f")
    assert metrics_of(source).cyclomatic == radon_value


VARIED_MODULE = '''
import asyncio


def parse(tokens, *, strict=False):
    """Parse tokens."""
    out = []
    for tok in tokens:
        if tok.kind == "name" and not tok.value.startswith("_"):
            out.append(tok)
        elif tok.kind == "op" or (strict and tok.kind == "err"):
            try:
                out.append(handle(tok))
            except (ValueError, KeyError):
                continue
            else:
                out.append(None)
        else:
            while tok.next is not None:
                tok = tok.next
            else:
                pass
    return [t for t in out if t] if strict else out


class Walker:
    def visit(self, node):
        def inner(child):
            return child if child else None

        match node:
            case {"kind": "a"}:
                return inner(node)
            case [first, *rest] if first or rest:
                return first
            case _:
                return None

    async def fetch(self, urls):
        async with self.session() as s:
            results = [await s.get(u) for u in urls if u]
        assert results, "no results"
        return {r.url: r for r in results if r.ok and r.status == 200}

    class Inner:
        def key(self, x):
            return sorted(x, key=lambda v: v.a if v.a else v.b)


def gen(n):
    i = 0
    while i < n:
        yield i
        i += 1
    yield from range(3)
'''


def test_cyclomatic_equals_radon_on_varied_functions() -> None:
    text = textwrap.dedent(VARIED_MODULE)
    tree = ast.parse(text)
    lines = text.splitlines()
    ours = {
        node.lineno: compute_function_metrics(node, lines).cyclomatic
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    blocks = list(cc_visit(text))
    radon: dict[int, int] = {}
    while blocks:
        block = blocks.pop()
        if hasattr(block, "methods"):
            blocks += block.methods + block.inner_classes
        else:
            radon[block.lineno] = block.complexity
            blocks += block.closures
    assert len(radon) == 6
    assert ours == radon


PARAM_CASES = [
    ("no_params", "def f(): pass", (0, 0, False, 0, False, 0)),
    ("positional_only_and_regular", "def f(a, b, /, c): pass", (2, 1, False, 0, False, 3)),
    ("bare_star_makes_keyword_only", "def f(a, *, b, c=1): pass", (0, 1, False, 2, False, 3)),
    ("vararg_and_kwarg", "def f(*args, **kwargs): pass", (0, 0, True, 0, True, 2)),
    ("all_kinds", "def f(a, /, b, *c, d, **e): pass", (1, 1, True, 1, True, 5)),
    ("self_is_left_out_of_the_total", "def f(self, a): pass", (0, 2, False, 0, False, 1)),
    ("cls_is_left_out_of_the_total", "def f(cls, /, a): pass", (1, 1, False, 0, False, 1)),
    ("self_only_as_first_param", "def f(a, self): pass", (0, 2, False, 0, False, 2)),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [(src, exp) for _, src, exp in PARAM_CASES],
    ids=[case_id for case_id, _, _ in PARAM_CASES],
)
def test_params_are_counted_by_kind(
    source: str, expected: tuple[int, int, bool, int, bool, int]
) -> None:
    m = metrics_of(source)
    got = (
        m.positional_only_params,
        m.positional_or_keyword_params,
        m.has_vararg,
        m.keyword_only_params,
        m.has_kwarg,
        m.param_count,
    )
    assert got == expected


TYPEDNESS_CASES = [
    ("nothing_annotated_is_untyped", "def f(a, b): pass", Typedness.UNTYPED, 0),
    ("no_params_no_return_is_untyped", "def f(): pass", Typedness.UNTYPED, 0),
    ("no_params_with_return_is_full", "def f() -> int: pass", Typedness.FULL, 0),
    (
        "all_params_and_return_is_full",
        "def f(a: int, *b: int, **c: str) -> None: pass",
        Typedness.FULL,
        3,
    ),
    ("missing_return_is_partial", "def f(a: int): pass", Typedness.PARTIAL, 1),
    ("return_only_is_partial", "def f(a) -> int: pass", Typedness.PARTIAL, 0),
    ("one_param_missing_is_partial", "def f(a: int, *, b) -> int: pass", Typedness.PARTIAL, 1),
    ("unannotated_self_does_not_matter", "def f(self, a: int) -> int: pass", Typedness.FULL, 1),
]


@pytest.mark.parametrize(
    ("source", "typedness", "annotated"),
    [(src, t, n) for _, src, t, n in TYPEDNESS_CASES],
    ids=[case_id for case_id, _, _, _ in TYPEDNESS_CASES],
)
def test_typedness_depends_on_params_and_return(
    source: str, typedness: Typedness, annotated: int
) -> None:
    m = metrics_of(source)
    assert (m.typedness, m.annotated_params) == (typedness, annotated)


def test_return_annotation_is_reported() -> None:
    assert metrics_of("def f() -> int: pass").has_return_annotation
    assert not metrics_of("def f(a: int): pass").has_return_annotation


def test_generator_counts_yield_and_yield_from_of_its_own_body_only() -> None:
    m = metrics_of(
        """
        def f(xs):
            yield 1
            x = yield
            yield from xs
            def inner():
                yield 2
            g = lambda: (yield)
        """
    )
    assert (m.yield_count, m.is_generator) == (3, True)


def test_function_whose_only_yield_is_nested_is_not_a_generator() -> None:
    m = metrics_of(
        """
        def f():
            def inner():
                yield 1
            return inner
        """
    )
    assert (m.yield_count, m.is_generator, m.return_count) == (0, False, 1)


def test_async_function_counts_awaits_including_comprehensions_not_nested_defs() -> None:
    m = metrics_of(
        """
        async def f(xs):
            a = await g()
            b = [await h(x) for x in xs]
            async def inner():
                await k()
            return await inner()
        """
    )
    assert (m.is_async, m.await_count, m.is_generator) == (True, 3, False)


def test_sync_function_is_not_async() -> None:
    assert not metrics_of("def f(): pass").is_async


def test_returns_and_raises_count_own_body_only() -> None:
    m = metrics_of(
        """
        def f(x):
            if x:
                raise ValueError(x)
            elif x is None:
                return
            try:
                return 1
            except KeyError:
                raise
            class C:
                def m(self):
                    raise TypeError
                    return 2
        """
    )
    assert (m.return_count, m.raise_count) == (2, 2)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('def f():\n    """Doc."""\n    return 1\n', True),
        ("def f():\n    '''Doc.'''\n", True),
        ("def f():\n    return 1\n", False),
        ('def f():\n    x = 1\n    """Not a docstring."""\n', False),
        ("def f():\n    b'bytes'\n", False),
        ("def f():\n    1\n", False),
    ],
    ids=["triple_double", "triple_single", "none", "string_later", "bytes", "number"],
)
def test_docstring_is_a_leading_string_statement(source: str, expected: bool) -> None:
    assert metrics_of(source).has_docstring is expected


NESTING_CASES = [
    ("flat_body_is_zero", "def f(x):\n    x = 1\n    return x\n", 0),
    ("single_if_is_one", "def f(x):\n    if x:\n        pass\n", 1),
    (
        "elif_chain_stays_at_one",
        "def f(x):\n    if x:\n        pass\n    elif x:\n        pass\n    elif x:\n        pass\n",
        1,
    ),
    (
        "if_inside_else_is_two",
        "def f(x):\n    if x:\n        pass\n    else:\n        if x:\n            pass\n",
        2,
    ),
    (
        "for_with_try_while_is_four",
        "def f(x):\n    for a in x:\n        with a:\n            try:\n                while a:\n"
        "                    pass\n            except E:\n                pass\n",
        4,
    ),
    (
        "match_case_body_is_one_deeper",
        "def f(x):\n    match x:\n        case 1:\n            if x:\n                pass\n",
        2,
    ),
    (
        "nested_def_body_does_not_count",
        "def f(x):\n    def g():\n        if x:\n            if x:\n                pass\n",
        0,
    ),
    (
        "compound_in_lambda_impossible_comprehension_is_zero",
        "def f(x):\n    return [a for a in x if a]\n",
        0,
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [(src, d) for _, src, d in NESTING_CASES],
    ids=[case_id for case_id, _, _ in NESTING_CASES],
)
def test_max_nesting_depth_counts_compound_statements(source: str, expected: int) -> None:
    assert metrics_of(source).max_nesting_depth == expected


LINES_SOURCE = '''
import os


@decorator(
    arg=1,
)
def f(a):
    """Summary.

    Details.
    """
    # a comment line

    text = """first

    # inside a string, not a comment
    """
    if a:  # trailing comment: a code line
        return text

    def inner():
        """Inner doc."""
        return 1
    return inner


x = 1
'''


def test_line_counts_follow_the_documented_conventions() -> None:
    m = metrics_of(LINES_SOURCE)
    # span: the decorator line (5) to `return inner` (25)
    assert m.loc == 21
    assert m.blank_lines == 2  # after the comment, before `def inner`; not the one in the string
    assert m.comment_lines == 1
    assert m.docstring_lines == 5  # four for f, one for inner
    assert m.sloc == m.loc - m.blank_lines - m.comment_lines - m.docstring_lines == 13
    # def f, docstring, text=, if, return, def inner, docstring, return 1, return inner
    assert m.lloc == 9


def test_one_line_function_has_one_line_of_code() -> None:
    m = metrics_of('def f(): "doc"\n')
    assert (m.loc, m.sloc, m.docstring_lines, m.lloc, m.has_docstring) == (1, 1, 0, 2, True)


def test_deeply_nested_code_does_not_exhaust_the_stack() -> None:
    depth = 90  # the parser itself refuses much deeper nesting
    body = "".join("    " * (i + 1) + "if x:\n" for i in range(depth))
    source = "def f(x):\n" + body + "    " * (depth + 1) + "pass\n"
    m = metrics_of(source)
    assert (m.cyclomatic, m.max_nesting_depth) == (depth + 1, depth)


def test_long_boolean_chain_is_counted_without_recursion() -> None:
    m = metrics_of("def f(x):\n    return " + " or ".join(["x"] * 5000) + "\n")
    assert m.cyclomatic == 5000


def test_metrics_record_is_frozen() -> None:
    m = metrics_of("def f(): pass")
    with pytest.raises(AttributeError):
        m.loc = 3  # type: ignore[misc]
