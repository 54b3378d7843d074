"""Tests of the static call graph: one case per resolution rule, PyCG's known misses,
JSON round-trip of facts, determinism across hash seeds, dynamic code and deep nesting."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codeintel.analysis.call_edges import GoidKey, link_call_sites
from codeintel.analysis.callgraph import (
    CallKind,
    Resolution,
    build_call_graph,
    extract_call_facts,
    facts_from_json,
    facts_to_json,
    solve_call_graph,
    to_pycg,
)
from codeintel.analysis.callgraph.pycg import site_targets
from codeintel.analysis.callgraph.solver import solve

Files = dict[str, str]


def graph(files: Files | str) -> dict[str, list[str]]:
    """PyCG-format graph of the given files ({"pkg/mod.py": source}; a str is main.py)."""
    if isinstance(files, str):
        files = {"main.py": files}
    facts, sites = build_call_graph(_entries(files))
    return to_pycg(sites, facts)


def _entries(files: Files) -> list[tuple[str, str, bool, str]]:
    out = []
    for path, source in files.items():
        parts = path[:-3].split("/")
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        out.append((path, module, is_package, textwrap.dedent(source)))
    return out


RULES = [
    ("assignment", "def f(): pass\na = f\nb = a\nb()", "main", ["main.f"]),
    ("tuple_unpacking", "def f(): pass\ndef g(): pass\na, (b, c) = f, (g, f)\nb()", "main", ["main.g"]),
    ("starred_unpacking", "def f(): pass\ndef g(): pass\ndef h(): pass\na, *b = f, g, h\nb[1]()", "main", ["main.h"]),
    ("return_value", "def f(): pass\ndef g():\n    return f\ng()()", "main", ["main.f", "main.g"]),
    ("positional_argument", "def f(): pass\ndef g(x):\n    x()\ng(f)", "main.g", ["main.f"]),
    ("keyword_argument", "def f(): pass\ndef g(x=None):\n    x()\ng(x=f)", "main.g", ["main.f"]),
    ("default_argument", "def f(): pass\ndef g(x=f):\n    x()\ng()", "main.g", ["main.f"]),
    ("star_args", "def f(): pass\ndef g(*a):\n    a[0]()\ng(f)", "main.g", ["main.f"]),
    ("star_star_kwargs", "def f(): pass\ndef g(**k):\n    k['x']()\ng(x=f)", "main.g", ["main.f"]),
    ("forwarded_kwargs", "def f(): pass\ndef g(x): x()\ndef h(**k):\n    g(**k)\nh(x=f)", "main.g", ["main.f"]),
    (
        "instance_attribute",
        "def f(): pass\nclass A:\n    def __init__(self):\n        self.x = f\n    def m(self):\n        self.x()\nA().m()",
        "main.A.m",
        ["main.f"],
    ),
    ("list_index", "def f(): pass\ndef g(): pass\nl = [f, g]\nl[1]()", "main", ["main.g"]),
    ("list_slice", "def f(): pass\ndef g(): pass\nl = [f, g]\nl[1:][0]()", "main", ["main.g"]),
    ("list_append", "def f(): pass\nl = []\nl.append(f)\nl[0]()", "main", ["<**PyList**>.append", "main.f"]),
    ("dict_constant_key", "def f(): pass\ndef g(): pass\nd = {'a': f, 'b': g}\nd['b']()", "main", ["main.g"]),
    ("dict_get", "def f(): pass\nd = {'a': f}\nd.get('a')()", "main", ["<**PyDict**>.get", "main.f"]),
    ("comprehension", "def f(): pass\n[x() for x in [f]]", "main", ["main.f"]),
    ("for_loop", "def f(): pass\nfor x in (f,):\n    x()", "main", ["main.f"]),
    ("generator", "def f(): pass\ndef g():\n    yield f\nfor x in g():\n    x()", "main", ["main.f", "main.g"]),
    ("lambda", "g = lambda: 1\ng()", "main", ["main.<lambda1>"]),
    ("decorator", "def d(f):\n    return f\n@d\ndef f(): pass\nf()", "main", ["main.d", "main.f"]),
    (
        "decorator_factory",
        "def d():\n    def w(f):\n        return f\n    return w\n@d()\ndef f(): pass\nf()",
        "main",
        ["main.d", "main.d.w", "main.f"],
    ),
    (
        "external_decorator_keeps_function",
        "import functools\n@functools.lru_cache\ndef f(): pass\nf()",
        "main",
        ["functools.lru_cache", "main.f"],
    ),
    ("constructor", "class A:\n    def __init__(self): pass\nA()", "main", ["main.A.__init__"]),
    ("no_init_no_edge", "class A:\n    pass\nA()", "main", []),
    ("inherited_method", "class A:\n    def m(self): pass\nclass B(A): pass\nB().m()", "main", ["main.A.m"]),
    (
        "c3_mro",
        "class A:\n    def m(self): pass\nclass B(A): pass\nclass C(A):\n    def m(self): pass\nclass D(B, C): pass\nD().m()",
        "main",
        ["main.C.m"],
    ),
    (
        "super_call",
        "class A:\n    def m(self): pass\nclass B(A):\n    def m(self):\n        super().m()",
        "main.B.m",
        ["<builtin>.super", "main.A.m"],
    ),
    ("staticmethod", "class A:\n    @staticmethod\n    def s(): pass\nA.s()", "main", ["main.A.s"]),
    (
        "classmethod",
        "class A:\n    @classmethod\n    def c(cls):\n        cls.d()\n    @classmethod\n    def d(cls): pass\nA.c()",
        "main.A.c",
        ["main.A.d"],
    ),
    (
        "property",
        "def f(): pass\nclass A:\n    @property\n    def p(self):\n        return f\nA().p()",
        "main",
        ["main.f"],
    ),
    ("builtin", "len([])", "main", ["<builtin>.len"]),
    ("builtin_map", "def f(x): pass\nmap(f, [1])", "main", ["<builtin>.map", "main.f"]),
    ("str_method", "' '.join([])", "main", ["<**PyStr**>.join"]),
    ("external_call_and_attribute", "from ext import C\na = C()\na.f()", "main", ["ext.C", "ext.C.f"]),
    (
        "external_names_stop_one_attribute_past_a_call",
        "import ext\next.m.f().g().h()\next.m.f().a.b()",
        "main",
        ["ext.m.f", "ext.m.f.g"],
    ),
    (
        "calling_an_external_result_is_no_edge_to_the_external_function",
        "from ext import wrap\ndef deco(f):\n    return wrap(int, f)\n@deco\ndef g():\n    pass\ndef user():\n    g()\nuser()",
        "main.user",
        [],
    ),
    (
        "decorating_with_an_external_result_is_no_edge_to_the_external_function",
        "import ext\ndef deco(f):\n    return ext.wrap(int, f)\nclass A:\n    @deco\n    def on(self, f):\n        return f\n"
        "a = A()\n@a.on\ndef handler():\n    pass",
        "main",
        [],
    ),
    (
        "external_name_chain_without_call_is_kept",
        "import ext\next.a.b.c()",
        "main",
        ["ext.a.b.c"],
    ),
    (
        "external_member_of_instance_is_not_extended",
        "from ext import B\nclass A(B):\n    def m(self):\n        self.s.q()\n        self.g().h()\nA().m()",
        "main.A.m",
        ["ext.B.g"],
    ),
    (
        "external_base",
        "from ext import B\nclass A(B):\n    def m(self):\n        self.g()\nA().m()",
        "main.A.m",
        ["ext.B.g"],
    ),
    ("raise_class", "class E(Exception):\n    def __init__(self): pass\nraise E", "main", ["main.E.__init__"]),
    (
        "iterator_protocol",
        "class I:\n    def __iter__(self):\n        return self\n    def __next__(self):\n        return 1\nfor x in I(): pass",
        "main",
        ["main.I.__iter__", "main.I.__next__"],
    ),
    ("call_dunder", "class A:\n    def __call__(self): pass\nA()()", "main", ["main.A.__call__"]),
    (
        "closure",
        "def o():\n    def i(): pass\n    def c():\n        i()\n    return c\no()()",
        "main.o.c",
        ["main.o.i"],
    ),
    (
        "getattr_constant",
        "class A:\n    def m(self): pass\ngetattr(A(), 'm')()",
        "main",
        ["<builtin>.getattr", "main.A.m"],
    ),
    (
        "self_call_reaches_subclass_override",
        "class A:\n    def run(self):\n        self.step()\n    def step(self): pass\n"
        "class B(A):\n    def step(self): pass\nB().run()",
        "main.A.run",
        ["main.A.step", "main.B.step"],
    ),
    (
        "classmethod_binds_cls_to_the_calling_subclass",
        "class A:\n    @classmethod\n    def make(cls):\n        cls.build()\n    @classmethod\n"
        "    def build(cls): pass\nclass B(A):\n    @classmethod\n    def build(cls): pass\nB.make()",
        "main.A.make",
        ["main.A.build", "main.B.build"],
    ),
]


@pytest.mark.parametrize(("source", "caller", "callees"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_resolution_rule_gives_its_callees(source: str, caller: str, callees: list[str]) -> None:
    assert graph(source).get(caller) == callees


IMPORT_CASES = [
    ("absolute_import", {"main.py": "import a\na.f()", "a.py": "def f(): pass"}, ["a.f"]),
    ("import_as", {"main.py": "import p.a as x\nx.f()", "p/__init__.py": "", "p/a.py": "def f(): pass"}, ["p.a.f"]),
    (
        "from_import_submodule",
        {"main.py": "from p import a\na.f()", "p/__init__.py": "", "p/a.py": "def f(): pass"},
        ["p.a.f"],
    ),
    (
        "relative_import",
        {
            "main.py": "from p.b import g\ng()",
            "p/__init__.py": "",
            "p/a.py": "def f(): pass",
            "p/b.py": "from .a import f as g",
        },
        ["p.a.f"],
    ),
    (
        "reexport_via_init",
        {"main.py": "from p import f\nf()", "p/__init__.py": "from .a import f", "p/a.py": "def f(): pass"},
        ["p.a.f"],
    ),
    (
        "star_import_all",
        {"main.py": "from a import *\nf()\ng()", "a.py": "__all__ = ['f']\ndef f(): pass\ndef g(): pass"},
        ["<builtin>.g", "a.f"][1:],
    ),
    ("external_module", {"main.py": "import json\njson.dumps(1)"}, ["json.dumps"]),
]


@pytest.mark.parametrize(("files", "callees"), [c[1:] for c in IMPORT_CASES], ids=[c[0] for c in IMPORT_CASES])
def test_imports_resolve_across_modules(files: Files, callees: list[str]) -> None:
    assert graph(files)["main"] == callees


def test_base_class_known_only_after_first_lookup_is_rechecked() -> None:
    # b is linked before a (import cycle), so B's base arrives after B().m() was first looked up
    files = {
        "a.py": "import b\nclass A:\n    def m(self): pass",
        "b.py": "import a\nclass B(a.A): pass\ndef helper():\n    B().m()",
    }
    assert graph(files)["b.helper"] == ["a.A.m"]


_CLIENT = "class Client:\n    def get(self): pass\n"
FIXTURE_CASES = [
    (
        "fixture_in_same_module",
        {
            "tests/test_a.py": f"import pytest\n{_CLIENT}@pytest.fixture\ndef client():\n    return Client()\n"
            "def test_get(client):\n    client.get()"
        },
        "tests.test_a.test_get",
        ["tests.test_a.Client.get"],
    ),
    (
        "fixture_in_parent_conftest_for_test_method",
        {
            "tests/conftest.py": f"import pytest\n{_CLIENT}@pytest.fixture(scope='session')\ndef client():\n"
            "    return Client()",
            "tests/sub/test_b.py": "class TestGet:\n    def test_get(self, client):\n        client.get()",
        },
        "tests.sub.test_b.TestGet.test_get",
        ["tests.conftest.Client.get"],
    ),
    (
        "yield_fixture_gives_yielded_value_through_fixture_parameter",
        {
            "tests/conftest.py": f"from pytest import fixture\n{_CLIENT}@fixture\ndef app():\n    return Client()\n"
            "@fixture()\ndef client(app):\n    yield app\n    print()",
            "tests/test_c.py": "def test_get(client):\n    client.get()",
        },
        "tests.test_c.test_get",
        ["tests.conftest.Client.get"],
    ),
]


@pytest.mark.parametrize(
    ("files", "caller", "callees"), [c[1:] for c in FIXTURE_CASES], ids=[c[0] for c in FIXTURE_CASES]
)
def test_pytest_fixture_parameters_receive_the_fixture_value(files: Files, caller: str, callees: list[str]) -> None:
    assert graph(files)[caller] == callees


PYCG_MISSES = [
    (
        "star_unpacking_keeps_elements",
        "def a(): pass\ndef b(): pass\ndef c(): pass\nx, *y = a, b, c\ny[0]()",
        ["main.b"],
    ),
    ("methods_of_builtin_types", "'a b'.split(' ')\nd = {}\nd.items()", ["<**PyDict**>.items", "<**PyStr**>.split"]),
    (
        "nested_decorators_wrap",
        "def d1(f):\n    def i1():\n        return f()\n    return i1\ndef d2(f):\n    def i2():\n        return f()\n    return i2\n@d1\n@d2\ndef f(): pass\ndef g():\n    f()",
        None,
    ),
    (
        "decorator_returns_other_function",
        "def d(f):\n    def inner():\n        f()\n    return inner\n@d\ndef f(): pass\ndef g():\n    f()",
        None,
    ),
    ("dict_key_overwritten", "def a(): pass\ndef b(): pass\nd = {'k': a}\nd['k'] = b\nd['k']()", ["main.b"]),
    (
        "nested_dict_key_overwritten",
        "def a(): pass\ndef b(): pass\nd = {'k': {'j': a}}\nd['k']['j'] = b\nd['k']['j']()",
        ["main.b"],
    ),
    ("slice_keeps_positions", "def a(): pass\ndef b(): pass\ndef c(): pass\nl = [a, b, c]\nl[1:3][1]()", ["main.c"]),
    (
        "super_init_chain",
        "class A:\n    def __init__(self): pass\nclass B(A):\n    def __init__(self):\n        super().__init__()\nclass C(B):\n    def __init__(self):\n        super().__init__()\nC()",
        ["main.C.__init__"],
    ),
]


@pytest.mark.parametrize(("source", "main_callees"), [c[1:] for c in PYCG_MISSES], ids=[c[0] for c in PYCG_MISSES])
def test_cases_pycg_gets_wrong(source: str, main_callees: list[str] | None) -> None:
    result = graph(source)
    if main_callees is not None:
        assert result["main"] == main_callees
    if "super_init_chain" in source or "C.__init__" in str(main_callees):
        assert result["main.C.__init__"] == ["<builtin>.super", "main.B.__init__"]
        assert result["main.B.__init__"] == ["<builtin>.super", "main.A.__init__"]
    if "@d1" in source:
        assert result["main.g"] == ["main.d1.i1"]
        assert result["main.d1.i1"] == ["main.d2.i2"]
        assert result["main.d2.i2"] == ["main.f"]
    if "def inner" in source:
        assert result["main.g"] == ["main.d.inner"]
        assert result["main.d.inner"] == ["main.f"]


def test_what_only_a_type_checker_runs_is_no_target() -> None:
    """`TYPE_CHECKING` is false when the code runs: a stub in `if TYPE_CHECKING:` (or in the else
    branch of `if not TYPE_CHECKING:`) is no target, and its body calls nothing; what the other
    branch binds (an alias, the runtime definition) is."""
    result = graph(
        """
        import typing
        from typing import TYPE_CHECKING

        def is_false(x):
            return not x

        def runtime(x):
            return x

        if TYPE_CHECKING:
            def isfalse(x): ...
            def load(x):
                is_false(x)
        else:
            isfalse = is_false
            load = runtime

        if not typing.TYPE_CHECKING:
            def checked(x):
                return runtime(x)
        else:
            def checked(x):
                return is_false(x)

        def use(x):
            isfalse(x)
            load(x)
            checked(x)
        """
    )
    assert result["main.use"] == ["main.checked", "main.is_false", "main.runtime"]
    assert result["main.checked"] == ["main.runtime"]
    assert "main.isfalse" not in result and "main.load" not in result


def test_call_site_rows_carry_kind_resolution_and_confidence() -> None:
    source = "import json\nclass A:\n    def m(self): pass\ndef f(x): pass\ndef g(): pass\nh = f if len([]) else g\nh(1)\nA().m()\njson.dumps(1)\nunknown_thing()\n"
    _, sites = build_call_graph(_entries({"main.py": source}))
    by_callee = {s.callee: s for s in sites}
    assert by_callee["main.A.m"].kind == CallKind.METHOD
    assert by_callee["main.A.m"].resolution == Resolution.ATTRIBUTE
    assert by_callee["json.dumps"].kind == CallKind.EXTERNAL
    assert by_callee["<builtin>.len"].kind == CallKind.BUILTIN
    assert by_callee["main.f"].confidence == by_callee["main.g"].confidence == 0.5
    assert by_callee[None].kind == CallKind.UNRESOLVED and by_callee[None].confidence == 0.0
    assert {s.caller for s in sites} == {"main"}
    assert by_callee["main.A.m"].callee_text == "A(...).m"


def test_dynamic_code_gives_edges_not_errors() -> None:
    source = "def f(): pass\neval('f()')\nname = input()\ngetattr(f, name)()\nglobals()[name]()\n"
    _, sites = build_call_graph(_entries({"main.py": source}))
    kinds = {(s.callee, s.kind, s.resolution) for s in sites}
    assert ("<builtin>.eval", CallKind.BUILTIN, Resolution.DYNAMIC) in kinds
    dynamic = [s for s in sites if s.kind == CallKind.UNRESOLVED and s.resolution == Resolution.DYNAMIC]
    assert len(dynamic) == 3  # eval's own code, getattr with a computed name, globals()[...]


def test_deep_nesting_is_recorded_not_raised() -> None:
    deep = "x = " + "(" * 400 + "1" + ")" * 400 + "\n"
    nested = "".join("    " * i + f"def f{i}():\n" for i in range(60)) + "    " * 60 + "pass\n"
    facts, _sites = build_call_graph([("deep.py", "deep", False, deep), ("nested.py", "nested", False, nested)])
    assert all(isinstance(f.errors, tuple) for f in facts)
    tree = ast.parse("x = 1")
    node: ast.expr = ast.Constant(1)
    for _ in range(20000):
        node = ast.BinOp(node, ast.Add(), ast.Constant(1))
    tree.body[0].value = node  # type: ignore[attr-defined]
    facts_deep = extract_call_facts(tree, "m", "m.py", False)
    assert facts_deep.errors and "RecursionError" in facts_deep.errors[0]
    assert solve_call_graph([facts_deep]) == []


def test_unparsable_file_is_reported_in_facts() -> None:
    facts, _ = build_call_graph([("bad.py", "bad", False, "def (:\n")])
    assert facts[0].errors and "SyntaxError" in facts[0].errors[0]


def test_facts_round_trip_through_json() -> None:
    source = (
        "from .x import y\nclass A(y):\n    def m(self, a=1, *b, c, **d):\n        return [a, *b]\nA().m(c=2)\n"
        "z = {'k': lambda: 0}\nw = [z][-1:][0]\nv = w[::2]\n"
    )
    facts = extract_call_facts(ast.parse(source), "p.m", "p/m.py", False)
    text = facts_to_json(facts)
    assert facts_from_json(text) == facts
    json.loads(text)


def test_facts_of_another_format_version_are_rejected() -> None:
    doc = json.loads(facts_to_json(extract_call_facts(ast.parse("f()"), "m", "m.py", False)))
    doc[0] -= 1
    with pytest.raises(ValueError, match="re-extract"):
        facts_from_json(json.dumps(doc))


def test_lookup_reruns_when_a_class_attribute_is_defined_later() -> None:
    files = {
        "a.py": "class A: pass\na = A()\na.m()\n",
        "b.py": "import a\ndef g(self): pass\ndef h(): pass\na.A.m = g\na.A.n = h\n",
    }
    assert graph(files)["a"] == ["b.g"]


def test_recursion_and_cycles_terminate() -> None:
    source = (
        "def f(x):\n    return f(f)\nclass A(B): pass\nclass B(A): pass\nA().m()\nl = []\nl.append(l)\nl[0][0][0]()\n"
    )
    assert graph(source)["main.f"] == ["main.f"]


_DETERMINISM_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from codeintel.analysis.callgraph import build_call_graph
files = json.loads(sys.stdin.read())
facts, sites = build_call_graph([tuple(f) for f in files])
print(json.dumps([[s.caller, s.line, s.col, s.callee, s.kind, s.resolution, s.confidence] for s in sites]))
"""


def test_solve_is_identical_under_different_hash_seeds() -> None:
    source = "\n".join(
        [f"def f{i}(x):\n    return x\nclass C{i}:\n    def m(self): f{i}(self.m)\n" for i in range(30)]
        + ["d = {" + ", ".join(f"'k{i}': f{i}" for i in range(30)) + "}", "for k in d: d[k](C1().m)"]
    )
    files = json.dumps(_entries({"main.py": source, "other.py": "from main import *\nd['k3'](1)"}))
    script = _DETERMINISM_SCRIPT.format(root=str(Path(__file__).resolve().parents[2]))
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script],
            input=files,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "12345")
    ]
    assert outputs[0] == outputs[1] and len(json.loads(outputs[0])) > 30


def test_one_row_per_site_and_target_with_the_first_kind_and_summed_shares() -> None:
    """`C.__init__` reached at one site as a constructor (calling the class) and as a plain
    method (calling the function): one call_edges row, kind "constructor", shares 0.5 + 0.5."""
    source = textwrap.dedent(
        """
        class C:
            def __init__(self):
                pass


        def go(flag):
            make = C if flag else C.__init__
            return make()
        """
    )
    facts, _ = build_call_graph(_entries({"main.py": source}))
    goids = [
        GoidKey("g-go", "main.py", "main", "go", "function", 2),
        GoidKey("g-init", "main.py", "main", "C.__init__", "method", 1),
    ]
    columns = link_call_sites(site_targets(solve(facts)), goids)
    rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    (row,) = [r for r in rows if r["caller"] == "main.go"]
    assert (row["callee"], row["kind"], row["confidence"]) == ("main.C.__init__", "constructor", 1.0)
    assert (row["caller_goid"], row["callee_goid"], row["line"]) == ("g-go", "g-init", 9)


def test_instance_whose_call_is_an_instance_terminates() -> None:
    source = "class A:\n    pass\nclass B:\n    __call__ = A()\nA.__call__ = B()\nA()()\nB()()\n"
    assert graph(source)["main"] == []
