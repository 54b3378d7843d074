"""Tests of the call graph's flow-sensitive name bindings: a use sees only the definitions that
reach it (one case per rule), and what may run at another time still sees every value (nested
functions, globals rebound elsewhere, loops, exception paths). Also: builtin types' methods are
named one way, and no internal name reaches the rows or the CLI output.

Each case marks the call it checks with `# <-` on its line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codeintel.analysis.callgraph import build_call_graph, to_pycg

Files = dict[str, str]
MARK = "# <-"


def _entries(files: Files) -> list[tuple[str, str, bool, str]]:
    out = []
    for path, source in files.items():
        parts = path[:-3].split("/")
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        out.append((path, module, is_package, textwrap.dedent(source)))
    return out


def marked_callees(files: Files | str) -> list[str | None]:
    """Sorted callees of the call marked `# <-` (the rightmost call on that line; None: unresolved)."""
    if isinstance(files, str):
        files = {"main.py": files}
    marked = [
        (path, number)
        for path, source in files.items()
        for number, line in enumerate(textwrap.dedent(source).splitlines(), 1)
        if MARK in line
    ]
    assert len(marked) == 1, "mark exactly one line"
    path, line = marked[0]
    _, sites = build_call_graph(_entries(files))
    here = [s for s in sites if s.path == path and s.line == line]
    last = max(s.col for s in here)
    return sorted((s.callee for s in here if s.col == last), key=lambda c: c or "")


DEFS = """
def f(): pass
def g(): pass
def h(): pass
"""

KILLS = [
    ("later_assignment_hides_earlier", DEFS + "a = f\na = g\na()  # <-", ["main.g"]),
    (
        "if_else_both_rebinding_hide_the_value_before",
        """
        class A:
            def fn(self): pass
        class B:
            def fn(self): pass
        class C:
            def fn(self): pass
        def k(x):
            c = A()
            if x:
                c = B()
            else:
                c = C()
            c.fn()  # <-
        """,
        ["main.B.fn", "main.C.fn"],
    ),
    (
        "if_without_else_merges_with_before",
        DEFS + "def k(x):\n    a = f\n    if x:\n        a = g\n    a()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "elif_chain_merges_each_branch",
        DEFS
        + "def k(x):\n    if x == 1:\n        a = f\n    elif x == 2:\n        a = g\n    else:\n        a = h\n    a()  # <-",
        ["main.f", "main.g", "main.h"],
    ),
    ("overwritten_parameter_default", DEFS + "def k(x=f):\n    x = h\n    x()  # <-\nk()", ["main.h"]),
    (
        "branch_that_returns_does_not_reach_after",
        DEFS + "def k(c):\n    x = f\n    if c:\n        x = g\n        return\n    x()  # <-",
        ["main.f"],
    ),
    (
        "branch_that_raises_does_not_reach_after",
        DEFS + "def k(c):\n    x = f\n    if c:\n        x = g\n        raise ValueError\n    x()  # <-",
        ["main.f"],
    ),
    ("del_kills", DEFS + "a = f\ndel a\na()  # <-", [None]),
    (
        "del_on_one_path_keeps_the_other",
        DEFS + "def k(c):\n    a = f\n    if c:\n        del a\n    a()  # <-",
        ["main.f"],
    ),
    (
        "match_cases_merge_and_fall_through",
        DEFS
        + "def k(v):\n    x = f\n    match v:\n        case [a, b]:\n            x = g\n        case {'k': c}:\n            x = h\n    x()  # <-",
        ["main.f", "main.g", "main.h"],
    ),
    (
        "match_with_irrefutable_case_hides_the_value_before",
        DEFS
        + "def k(v):\n    x = f\n    match v:\n        case 1:\n            x = g\n        case _:\n            x = h\n    x()  # <-",
        ["main.g", "main.h"],
    ),
    (
        "match_capture_binds_the_subject",
        DEFS + "def k():\n    match g:\n        case x:\n            x()  # <-",
        ["main.g"],
    ),
    (
        "try_else_sees_the_end_of_the_body",
        DEFS
        + "def k():\n    x = f\n    try:\n        x = g\n    except E:\n        pass\n    else:\n        x()  # <-",
        ["main.g"],
    ),
    (
        "after_try_normal_paths_only",
        DEFS + "def k():\n    x = f\n    try:\n        x = g\n    except E:\n        x = h\n    x()  # <-",
        ["main.g", "main.h"],
    ),
    (
        "after_finally_what_finally_rebinds",
        DEFS + "def k():\n    x = f\n    try:\n        x = g\n    finally:\n        x = h\n    x()  # <-",
        ["main.h"],
    ),
    (
        "except_name_is_unbound_after_the_handler",
        DEFS + "def k():\n    e = f\n    try:\n        pass\n    except E as e:\n        pass\n    e()  # <-",
        ["main.f"],
    ),
    (
        "while_true_leaves_only_by_break",
        DEFS
        + "def k(c):\n    x = f\n    while True:\n        x = g\n        if c:\n            break\n        x = h\n    x()  # <-",
        ["main.g"],
    ),
    (
        "for_else_runs_when_the_loop_ends_at_its_head",
        DEFS
        + "def k(items):\n    x = f\n    for i in items:\n        x = g\n        break\n    else:\n        x()  # <-",
        ["main.f"],
    ),
    ("walrus_in_a_test_binds", DEFS + "def k():\n    x = f\n    if (x := g):\n        x()  # <-", ["main.g"]),
    (
        "loop_variable_of_a_comprehension_is_its_own",
        DEFS + "def k():\n    x = f\n    return [x() for x in (g,)]  # <-",
        ["main.g"],
    ),
    (
        "class_body_reads_the_global_before_binding_the_name",
        DEFS + "x = f\nclass A:\n    y = x()  # <-\n    x = g",
        ["main.f"],
    ),
    ("class_body_reads_its_own_binding_after", DEFS + "x = f\nclass A:\n    x = g\n    x()  # <-", ["main.g"]),
    (
        "call_known_to_return_nothing_hides_the_value_before",
        DEFS + "def k():\n    x = f\n    x = h()\n    x()  # <-",
        [None],
    ),
]

KEEPS = [
    (
        "nested_function_reads_a_rebound_closure_variable",
        DEFS + "def k():\n    v = f\n    def inner():\n        v()  # <-\n    v = g\n    return inner",
        ["main.f", "main.g"],
    ),
    (
        "lambda_reads_a_rebound_closure_variable",
        DEFS + "def k():\n    v = f\n    w = lambda: v()  # <-\n    v = g\n    return w",
        ["main.f", "main.g"],
    ),
    (
        "generator_expression_body_runs_later",
        DEFS + "def k(items):\n    v = f\n    it = (v() for _ in items)  # <-\n    v = g\n    return list(it)",
        ["main.f", "main.g"],
    ),
    (
        "global_rebound_by_another_function_seen_by_a_reader",
        DEFS + "x = f\ndef rebind():\n    global x\n    x = g\ndef use():\n    x()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "global_rebound_by_a_function_seen_by_module_code_after_its_definition",
        DEFS + "x = f\ndef rebind():\n    global x\n    x = g\nrebind()\nx()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "nonlocal_rebound_by_a_nested_function",
        DEFS
        + "def k():\n    cb = f\n    def set_cb():\n        nonlocal cb\n        cb = g\n    set_cb()\n    cb()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "loop_rebinds_on_its_second_iteration",
        DEFS + "def k(items):\n    fn = f\n    for i in items:\n        fn()  # <-\n        fn = g",
        ["main.f", "main.g"],
    ),
    (
        "while_loop_back_edge_and_continue",
        DEFS
        + "def k(c):\n    fn = f\n    while c:\n        fn()  # <-\n        if c:\n            fn = h\n            continue\n        fn = g",
        ["main.f", "main.g", "main.h"],
    ),
    (
        "loop_may_not_run",
        DEFS + "def k(items):\n    fn = f\n    for i in items:\n        fn = g\n    fn()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "except_path_sees_values_before_and_inside_the_body",
        DEFS
        + "def k():\n    w = f\n    try:\n        w = g\n        risky()\n        w = h\n    except E:\n        w()  # <-",
        ["main.f", "main.g", "main.h"],
    ),
    (
        "finally_sees_every_path",
        DEFS
        + "def k():\n    x = f\n    try:\n        x = g\n    except E:\n        x = h\n    finally:\n        x()  # <-",
        ["main.f", "main.g", "main.h"],
    ),
    (
        "with_body_may_be_left_by_a_swallowed_exception",
        DEFS + "def k(cm):\n    x = f\n    with cm:\n        x = g\n    x()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "walrus_in_a_comprehension_may_not_run",
        DEFS + "def k(items):\n    y = f\n    [(y := g) for _ in items]\n    y()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "walrus_in_a_conditional_part_may_not_run",
        DEFS + "def k(c):\n    y = f\n    c and (y := g)\n    y()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "function_sees_every_value_the_module_assigns",
        DEFS + "x = f\ndef use():\n    x()  # <-\nx = g",
        ["main.f", "main.g"],
    ),
    (
        "rebinding_to_a_value_the_analysis_cannot_find_keeps_the_earlier_one",
        DEFS + "import ext\ndef k():\n    x = f\n    x = ext.make()(x)\n    x()  # <-",
        ["main.f"],
    ),
    (
        "rebinding_through_a_call_with_an_opaque_target_keeps_the_earlier_value",
        DEFS + "import ext\ndef ident(v):\n    return v\ndef k(c):\n    x = f\n    fn = ident if c else ext.make()\n"
        "    x = fn(g)\n    x()  # <-",
        ["main.f", "main.g"],
    ),
    (
        "typing_cast_returns_its_argument",
        DEFS + "import typing as t\ndef k(x=f):\n    x = t.cast(int, x)\n    x()  # <-",
        ["main.f"],
    ),
    (
        "augmented_list_assignment_keeps_the_elements",
        DEFS + "def k():\n    x = [f]\n    x += [g]\n    x[0]()  # <-",
        ["main.f", "main.g"],
    ),
]


@pytest.mark.parametrize(("source", "callees"), [c[1:] for c in KILLS], ids=[c[0] for c in KILLS])
def test_a_use_sees_only_the_definitions_that_reach_it(source: str, callees: list[str | None]) -> None:
    assert marked_callees(source) == callees


@pytest.mark.parametrize(("source", "callees"), [c[1:] for c in KEEPS], ids=[c[0] for c in KEEPS])
def test_what_may_run_at_another_time_keeps_every_value(source: str, callees: list[str | None]) -> None:
    assert marked_callees(source) == callees


def test_other_modules_see_every_value_a_module_assigns() -> None:
    files = {
        "a.py": "def f(): pass\ndef g(): pass\nx = f\nx = g\n",
        "main.py": "import a\na.x()  # <-\n",
    }
    assert marked_callees(files) == ["a.f", "a.g"]


def test_module_code_reads_the_reaching_version_of_an_imported_name() -> None:
    files = {
        "a.py": "def f(): pass\n",
        "main.py": "from a import f\ndef g(): pass\nf = g\nf()  # <-\n",
    }
    assert marked_callees(files) == ["main.g"]


BUILTIN_NAMES = [
    ("str_method_on_a_value", "' '.join([])  # <-", ["<builtin>.str.join"]),
    ("str_method_through_the_type", "str.join(' ', [])  # <-", ["<builtin>.str.join"]),
    ("int_method", "(3).bit_length()  # <-", ["<builtin>.int.bit_length"]),
    ("float_method", "x = 1.5\nx.hex()  # <-", ["<builtin>.float.hex"]),
    ("bytes_method", "b'a'.decode()  # <-", ["<builtin>.bytes.decode"]),
    ("list_made_by_calling_list", "l = list()\nl.append(1)  # <-", ["<builtin>.list.append"]),
    ("set_made_by_calling_set", "s = set([1])\ns.union([2])  # <-", ["<builtin>.set.union"]),
    ("dict_literal_method", "d = {}\nd.items()  # <-", ["<builtin>.dict.items"]),
    ("tuple_method", "(1, 2).count(1)  # <-", ["<builtin>.tuple.count"]),
    ("class_of_a_builtin_value_is_the_type", "t = (1,)\nt.__class__([])  # <-", ["<builtin>.tuple"]),
    (
        "method_of_object",
        "class A:\n    def m(self):\n        object.__setattr__(self, 'a', 1)  # <-",
        ["<builtin>.object.__setattr__"],
    ),
    ("not_a_method_of_the_type", "'a'.no_such_method()  # <-", [None]),
    ("parts_of_a_split_str_are_str", "a, b = 'x y'.split()\nb.upper()  # <-", ["<builtin>.str.upper"]),
    ("slice_of_a_str_is_a_str", "'abc'[1:].upper()  # <-", ["<builtin>.str.upper"]),
    ("encoded_str_is_bytes", "b = 'abc'.encode()\nb.decode()  # <-", ["<builtin>.bytes.decode"]),
]


@pytest.mark.parametrize(("source", "callees"), [c[1:] for c in BUILTIN_NAMES], ids=[c[0] for c in BUILTIN_NAMES])
def test_builtin_types_methods_are_named_builtin_type_method(source: str, callees: list[str | None]) -> None:
    assert marked_callees(source) == callees


def test_pycg_format_uses_pycg_names_for_builtin_types_methods() -> None:
    source = "' '.join([])\nd = {}\nd.items()\nl = []\nl.append(1)\n(1).bit_length()\nlen([])\n"
    facts, sites = build_call_graph(_entries({"main.py": source}))
    assert to_pycg(sites, facts)["main"] == [
        "<**PyDict**>.items", "<**PyList**>.append", "<**PyNum**>.bit_length", "<**PyStr**>.join", "<builtin>.len",
    ]  # fmt: skip


_VARIED = """
import json
class A:
    def m(self):
        return [x for x in (1, 2)]
def gen():
    yield 1
values = [1, 2.5, 'a', b'b', (1,), [1], {1}, {'a': 1}, A(), gen(), json]
for v in values:
    v.m()
    v.count(1)
    v.__class__()
    v.send(None)
    v.dumps()
    v.append(1)
    v.hex()
    v.decode()
    v.keys()
    v.__len__()
str.join('', [])
lambda: 0
"""
# a callee is a dotted name whose parts are identifiers or lambdas, or a builtin
_NAME = re.compile(r"^(<builtin>\.)?([A-Za-z_][A-Za-z0-9_]*|<lambda\d+>)(\.([A-Za-z_][A-Za-z0-9_]*|<lambda\d+>))*$")


def test_no_internal_name_reaches_the_rows() -> None:
    _, sites = build_call_graph(_entries({"main.py": _VARIED}))
    callees = {s.callee for s in sites if s.callee is not None}
    assert "<builtin>.list.append" in callees and "<builtin>.int.__class__" not in callees
    assert not [c for c in callees if not _NAME.match(c)]


def test_no_internal_name_reaches_the_callgraph_command(tmp_path: Path) -> None:
    from codeintel.orchestration.callgraph_export import callgraph_of_directory

    (tmp_path / "main.py").write_text(_VARIED, encoding="utf-8")
    rows = json.loads(callgraph_of_directory(tmp_path, tmp_path / "cg.duckdb", "json"))
    callees = {r["callee"] for r in rows if r["callee"] is not None}
    assert "<builtin>.list.append" in callees
    assert not [c for c in callees if not _NAME.match(c)]


_SEED_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from codeintel.analysis.callgraph import build_call_graph
files = json.loads(sys.stdin.read())
facts, sites = build_call_graph([tuple(f) for f in files])
print(json.dumps([[s.caller, s.line, s.col, s.callee, s.kind, s.confidence] for s in sites]))
"""


def test_flow_sensitive_solve_is_identical_under_different_hash_seeds() -> None:
    body = "\n".join(
        f"""
def k{i}(items, c):
    a{i} = f{i % 3}
    x, y = a{i}, g
    for item in items:
        if c:
            a{i} = g
            continue
        try:
            y = h
        except E as e:
            x = e
        finally:
            del item
    with c as w:
        z = (a{i}, x, y) if w else [v := f{i % 3}]
    match c:
        case [p, *q]:
            a{i} = p
        case _:
            pass
    return a{i}(), x(), y(), z, v
"""
        for i in range(30)
    )
    source = "def f0(): pass\ndef f1(): pass\ndef f2(): pass\ndef g(): pass\ndef h(): pass\n" + body
    files = json.dumps(_entries({"main.py": source}))
    script = _SEED_SCRIPT.format(root=str(Path(__file__).resolve().parents[2]))
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script],
            input=files,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "4242")
    ]
    assert outputs[0] == outputs[1] and len(json.loads(outputs[0])) > 100


_ODD_FLOW = """
import sys
def f(): pass
def g(): pass
exec("x = 1")
globals()["y"] = f
def k(items):
    while True:
        pass
    after_forever()
    for a in items:
        try:
            break
        finally:
            continue
    try:
        return f
    finally:
        return g
async def co(items, cm):
    async for a in items:
        async with cm as b:
            del a, b
    try:
        pass
    except* ValueError as group:
        group()
class C:
    for name in ("a", "b"):
        locals()[name] = f
    del name
    z = [w := g for _ in (1,)]
def m(v):
    match v:
        case {"k": [1, *rest]} | [*rest] if rest:
            rest()
        case C(z=q) if (r := q):
            r()
        case str() | bytes():
            pass
lambda a=(t := f): t()
del undefined_name
break_outside = None
"""


def test_odd_control_flow_extracts_and_solves() -> None:
    facts, sites = build_call_graph(_entries({"main.py": _ODD_FLOW}))
    assert facts[0].errors == ()
    callees = {s.callee for s in sites}
    assert {"<builtin>.exec", "main.f"} <= callees
