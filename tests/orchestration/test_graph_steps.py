"""import_graph, call_graph, graph_metrics and subsystems as pipeline steps on real repositories."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from codeintel.storage.catalog import CATALOG

FILES = {
    "src/shop/__init__.py": "from .pricing import total\n",
    "src/shop/pricing.py": """
        import json
        from shop import util


        def total(items):
            return sum(util.price(i) for i in items)


        def dump(items):
            return json.dumps(items)
    """,
    "src/shop/util.py": """
        def price(item):
            return item["price"]


        def unused():
            return 0
    """,
    "src/shop/cart.py": """
        from shop.pricing import total
        from shop import util


        class Base:
            def __init__(self):
                self.items = []

            def add(self, item):
                self.items.append(item)


        class Cart(Base):
            LIMIT = util.price({"price": 3})

            def __init__(self):
                super().__init__()

            def checkout(self):
                return total(self.items)


        cart = Cart()
        cart.add({"price": 1})
        cart.checkout()
    """,
}


def _edges(indexer: Any) -> set[tuple[str, str | None, str]]:
    return set(indexer.query("SELECT caller, callee, kind FROM graph.call_edges"))


def test_calls_resolve_across_modules_with_callers_attributed_to_their_scope(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    indexer = make_indexer(make_repo(tmp_path, FILES))
    indexer.run()
    edges = _edges(indexer)
    assert ("shop.cart.Cart.checkout", "shop.pricing.total", "function") in edges
    assert ("shop.pricing.total", "shop.util.price", "function") in edges
    assert ("shop.cart", "shop.cart.Cart.__init__", "constructor") in edges  # module-level code
    assert ("shop.cart.Cart", "shop.util.price", "function") in edges  # class body belongs to the class
    assert ("shop.cart.Cart.__init__", "shop.cart.Base.__init__", "method") in edges  # super()
    assert ("shop.cart", "shop.cart.Base.add", "method") in edges  # inherited through the MRO
    assert ("shop.pricing.dump", "json.dumps", "external") in edges
    # caller and callee GOIDs are the ids of those definitions
    rows = indexer.query(
        """SELECT count(*) FROM graph.call_edges e
           JOIN core.goids a ON a.goid = e.caller_goid JOIN core.goids b ON b.goid = e.callee_goid
           WHERE a.qualname = 'Cart.checkout' AND b.qualname = 'total' AND b.module = 'shop.pricing'"""
    )
    assert rows == [(1,)]


def test_imports_resolve_to_internal_and_external_modules_with_layers(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    indexer = make_indexer(make_repo(tmp_path, FILES))
    indexer.run()
    edges = set(indexer.query("SELECT src_module, dst_module, target_kind FROM graph.import_edges"))
    assert ("shop", "shop.pricing", "internal") in edges  # relative import in __init__
    assert ("shop.pricing", "json", "stdlib") in edges
    assert ("shop.cart", "shop.util", "internal") in edges  # from pkg import submodule
    layers = dict(indexer.query("SELECT module, layer FROM graph.import_layers"))
    assert layers["shop.util"] < layers["shop.pricing"] < layers["shop.cart"]


def test_editing_one_file_re_extracts_only_it_and_keeps_edges_into_it(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    repo = make_repo(tmp_path, FILES)
    indexer = make_indexer(repo)
    indexer.run()
    before = _edges(indexer)
    goid_of_price = indexer.query("SELECT goid FROM core.goids WHERE module = 'shop.util' AND qualname = 'price'")
    repo.apply(
        {
            "src/shop/util.py": textwrap.dedent(FILES["src/shop/util.py"])
            + "\n\ndef discount(item):\n    return price(item) / 2\n"
        }
    )
    run = indexer.run()
    steps = indexer.step_runs(run.run_id)
    assert steps["call_graph"]["files_processed"] == 1
    assert steps["import_graph"]["files_processed"] == 1
    after = _edges(indexer)
    assert ("shop.pricing.total", "shop.util.price", "function") in after  # untouched file -> edited file
    assert after - before == {("shop.util.discount", "shop.util.price", "function")}
    assert (
        indexer.query("SELECT DISTINCT callee_goid FROM graph.call_edges WHERE callee = 'shop.util.price'")
        == goid_of_price
    )
    # a new caller of price: the graph steps read new pairs and recompute
    assert indexer.query(
        "SELECT m.fan_out, p.fan_in FROM analytics.graph_metrics_functions m, analytics.graph_metrics_functions p, "
        "core.goids g WHERE g.goid = m.goid AND g.qualname = 'discount' AND p.goid = ?",
        [goid_of_price[0][0]],
    ) == [(1, 3)]


# a comment on an existing line: no line moves, no call, name or constant changes
_SAME_FACTS_EDIT = {
    "src/shop/util.py": textwrap.dedent(FILES["src/shop/util.py"]).replace(
        'return item["price"]', 'return item["price"]  # the listed price'
    )
}


def _edit_run(
    tmp_path: Path, make_repo: Any, make_indexer: Any, edit: dict[str, str], tamper: tuple[str, ...] = ()
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Index FILES, run `tamper` SQL on the work DB, apply `edit`: the indexer and the re-run's
    steps; the re-run's tables are checked against a fresh full run of the edited repo."""
    repo = make_repo(tmp_path, FILES)
    indexer = make_indexer(repo)
    indexer.run()
    with indexer.gateway.writer("test") as w:
        for sql in tamper:
            w.execute(sql)
    repo.apply(edit)
    steps = indexer.step_runs(indexer.run().run_id)
    _assert_equals_a_first_run(indexer, repo, make_indexer, tmp_path / "fresh")
    return indexer, steps


def _assert_equals_a_first_run(indexer: Any, repo: Any, make_indexer: Any, where: Path) -> None:
    """`indexer`'s tables are those a first run on `repo` (its database under `where`) gives."""
    fresh = make_indexer(repo, where / "c.duckdb")
    fresh.run()
    assert _digest(indexer.db) == _digest(fresh.db)


def test_an_edit_that_keeps_the_call_facts_skips_the_solve_and_the_graph_steps(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    _, steps = _edit_run(tmp_path, make_repo, make_indexer, _SAME_FACTS_EDIT)
    assert steps["call_graph"]["files_processed"] == 1
    assert steps["call_graph"]["note"] == "facts unchanged, edges unchanged"
    assert steps["import_graph"]["note"].endswith(", unchanged")
    assert steps["graph_metrics"]["note"] == steps["subsystems"]["note"] == "up to date"


def test_an_edit_that_keeps_the_call_facts_still_looks_the_goids_up_again(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    stale_links = (  # as if definitions had moved
        "UPDATE graph.call_edges SET caller_goid = NULL WHERE caller LIKE 'shop.cart%'",
        "UPDATE graph.call_edges SET callee_goid = 'gone' WHERE callee = 'shop.util.price'",
    )
    _, steps = _edit_run(tmp_path, make_repo, make_indexer, _SAME_FACTS_EDIT, stale_links)
    assert steps["call_graph"]["note"] == "facts unchanged, GOIDs relinked"
    # the graph steps read the pairs as they were before the tampering: nothing to redo
    assert steps["graph_metrics"]["note"] == steps["subsystems"]["note"] == "up to date"


def test_an_edit_that_only_moves_code_moves_the_edges_without_a_solve(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    moved = textwrap.dedent(FILES["src/shop/cart.py"]).replace("class Base:", "# two lines more\n\n\nclass Base:")
    indexer, steps = _edit_run(tmp_path, make_repo, make_indexer, {"src/shop/cart.py": moved})
    assert steps["call_graph"]["note"].startswith("facts unchanged, ")
    assert "sites moved" in steps["call_graph"]["note"]
    line = 1 + moved.splitlines().index("cart.checkout()")
    assert indexer.query("SELECT line FROM graph.call_edges WHERE callee = 'shop.cart.Cart.checkout'") == [(line,)]
    # who calls whom is the same: the graph steps read the same pairs and keep their outputs
    assert steps["graph_metrics"]["note"] == steps["subsystems"]["note"] == "up to date"


def test_an_edit_that_changes_who_calls_whom_recomputes_the_graph_steps(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    rewired = textwrap.dedent(FILES["src/shop/util.py"]).replace("return 0", "return price({})")
    indexer, steps = _edit_run(tmp_path, make_repo, make_indexer, {"src/shop/util.py": rewired})
    assert steps["graph_metrics"]["note"] != "up to date"
    assert indexer.query(
        "SELECT m.fan_out FROM analytics.graph_metrics_functions m JOIN core.goids g USING (goid) "
        "WHERE g.qualname = 'unused'"
    ) == [(1,)]


def test_graph_metrics_and_subsystems_cover_every_function_and_module(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    indexer = make_indexer(make_repo(tmp_path, FILES))
    indexer.run()
    fan_in = dict(indexer.query(
        """SELECT g.qualname, m.fan_in FROM analytics.graph_metrics_functions m JOIN core.goids g USING (goid)
           WHERE g.module = 'shop.util'"""
    ))  # fmt: skip
    assert fan_in == {"price": 2, "unused": 0}  # called from pricing.total and the Cart class body
    functions = indexer.query("SELECT count(*) FROM core.goids WHERE kind IN ('function', 'method')")
    assert indexer.query("SELECT count(*) FROM analytics.graph_metrics_functions") == functions
    modules = {m for (m,) in indexer.query("SELECT module FROM core.modules")}
    assert {m for (m,) in indexer.query("SELECT module FROM analytics.subsystem_modules")} == modules
    assert indexer.query("SELECT count(*) FROM docs.v_call_graph_enriched") == indexer.query(
        "SELECT count(*) FROM graph.call_edges"
    )
    assert indexer.query("SELECT count(*) FROM docs.v_subsystem_summary") == indexer.query(
        "SELECT count(*) FROM analytics.subsystems"
    )


def test_dynamic_code_ends_as_unresolved_edges_not_a_failure(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    files = {
        "dyn.py": """
            import importlib

            def target():
                pass

            name = "tar" + "get"
            getattr(__import__("dyn"), name)()
            eval("target()")
            importlib.import_module(name).run()
            globals()[name]()
        """
    }
    indexer = make_indexer(make_repo(tmp_path, files))
    run = indexer.run()
    assert run.ok
    kinds = {kind for (kind,) in indexer.query("SELECT kind FROM graph.call_edges")}
    assert "unresolved" in kinds and "builtin" in kinds


def _digest(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for name, spec in CATALOG.items():
            if name.startswith("meta.") or name == "core.change_state":
                continue
            cols = ", ".join(spec.column_names)
            rows = con.execute(f"SELECT {cols} FROM {name} ORDER BY ALL").fetchall()
            out[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()


@pytest.mark.parametrize("seeds", [("1", "12345")], ids=["two_hash_seeds"])
def test_two_runs_with_different_hash_seeds_give_identical_tables(
    tmp_path: Path, make_repo: Any, seeds: tuple[str, str]
) -> None:
    repo = make_repo(tmp_path, FILES)
    digests = []
    for seed in seeds:
        db = tmp_path / f"out-{seed}" / "c.duckdb"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-m", "codeintel", "export", str(repo.root), "--db", str(db), "--quiet", "--executor", "serial"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        digests.append(_digest(db))
    assert digests[0] == digests[1]


def test_a_step_whose_code_version_changed_reprocesses_every_file(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    indexer = make_indexer(make_repo(tmp_path, FILES))
    indexer.run()
    with indexer.gateway.writer("test") as w:  # as if the stored facts came from an older analyser
        w.execute("UPDATE meta.step_state SET code_version = 'facts-0' WHERE step = 'call_graph'")
    run = indexer.run()
    steps = indexer.step_runs(run.run_id)
    assert steps["call_graph"]["files_processed"] == len(FILES)
    assert steps["import_graph"]["files_processed"] == 0
    assert ("shop.pricing.total", "shop.util.price", "function") in _edges(indexer)


def test_call_edges_are_unique_per_site_caller_and_callee(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    files = {
        "poly.py": """
            class A:
                def run(self):
                    return self.step()

                def step(self):
                    return 1


            class B(A):
                pass


            class C(A):
                pass


            def go(flag):
                obj = B() if flag else C()
                return obj.run()
        """
    }
    indexer = make_indexer(make_repo(tmp_path, files))
    indexer.run()
    duplicates = indexer.query(
        "SELECT path, line, col, caller, callee, count(*) FROM graph.call_edges GROUP BY ALL HAVING count(*) > 1"
    )
    assert duplicates == []
    assert indexer.query(
        "SELECT confidence FROM graph.call_edges WHERE caller = 'poly.go' AND callee = 'poly.A.run'"
    ) == [(1.0,)]


TWINS = {
    "z/__init__.py": "",
    "z/m.py": """
        import sys
        from typing import overload


        class Cfg:
            @property
            def value(self):
                return compute()

            @value.setter
            def value(self, v):
                store(v)
                keep = [store(x) for x in v]


        def compute():
            return 1


        def store(v):
            return v


        if sys.version_info >= (3, 0):
            def pick():
                return compute()
        else:
            def pick():
                return store(0)


        @overload
        def fetch(key: int) -> int: ...


        @overload
        def fetch(key: str) -> str: ...


        def fetch(key):
            return store(key)


        def use():
            return fetch(1)


        class K:
            @overload
            def __init__(self, v: int) -> None: ...

            @overload
            def __init__(self, v: str) -> None: ...

            def __init__(self, v):
                self.v = v


        def make():
            return K(1)
    """,
}


def _callers_outside_their_span(indexer: Any) -> list[tuple[Any, ...]]:
    return indexer.query(
        "SELECT e.line, e.caller, g.start_line, g.end_line FROM graph.call_edges e JOIN core.goids g "
        "ON g.goid = e.caller_goid WHERE e.line NOT BETWEEN g.start_line AND g.end_line AND g.kind <> 'module'"
    )


def _caller_ordinals(indexer: Any) -> set[tuple[str, str, int]]:
    return set(
        indexer.query(
            "SELECT g.qualname, e.callee, g.ordinal FROM graph.call_edges e JOIN core.goids g ON g.goid = e.caller_goid "
            "WHERE e.callee IN ('z.m.compute', 'z.m.store')"
        )
    )


def test_a_name_defined_twice_in_a_file_gives_each_call_the_definition_it_is_in(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    # a property's setter and a function defined in both branches of an `if` share their
    # getter's (first twin's) name: each call is the caller's whose lines hold it
    indexer = make_indexer(make_repo(tmp_path, TWINS))
    indexer.run()
    assert _caller_ordinals(indexer) == {
        ("Cfg.value", "z.m.compute", 0),
        ("Cfg.value", "z.m.store", 1),  # in the setter, and in its comprehension
        ("pick", "z.m.compute", 0),
        ("pick", "z.m.store", 1),
        ("fetch", "z.m.store", 2),  # the implementation after two overloads
    }
    assert _callers_outside_their_span(indexer) == []
    assert indexer.query(
        "SELECT g.ordinal, s.callees FROM docs.symbols s JOIN core.goids g USING (goid) "
        "WHERE g.qualname = 'Cfg.value' ORDER BY g.ordinal"
    ) == [(0, 1), (1, 1)]
    # a call of an overloaded name reaches the implementation (the definition Python keeps),
    # whose own calls are its: a path use -> fetch -> store
    assert indexer.query(
        "SELECT c.ordinal, d.ordinal FROM graph.call_edges u JOIN core.goids c ON c.goid = u.callee_goid, "
        "graph.call_edges s JOIN core.goids d ON d.goid = s.caller_goid "
        "WHERE u.caller = 'z.m.use' AND u.callee = 'z.m.fetch' AND s.caller = 'z.m.fetch' AND s.callee = 'z.m.store'"
    ) == [(2, 2)]
    # the type checker's symbol names that definition too: the two agree on one edge
    assert indexer.query(
        "SELECT e.resolution, g.ordinal FROM graph.call_edges_merged e JOIN core.goids g ON g.goid = e.callee_goid "
        "WHERE e.caller = 'z.m.use'"
    ) == [("direct+scip", 2)]
    # and a constructor reaches the `__init__` after the overloads, from both
    assert indexer.query(
        "SELECT e.callee, e.resolution, g.ordinal FROM graph.call_edges_merged e JOIN core.goids g "
        "ON g.goid = e.callee_goid WHERE e.caller = 'z.m.make'"
    ) == [("z.m.K.__init__", "direct+scip", 2)]


def test_moving_twins_keeps_each_call_with_the_definition_its_new_line_is_in(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    repo = make_repo(tmp_path, TWINS)
    indexer = make_indexer(repo)
    indexer.run()
    moved = textwrap.dedent(TWINS["z/m.py"]).replace("class Cfg:", "# moved down\n\n\nclass Cfg:")
    repo.apply({"z/m.py": moved})
    steps = indexer.step_runs(indexer.run().run_id)
    assert "sites moved" in steps["call_graph"]["note"]  # relinked, not solved
    assert _callers_outside_their_span(indexer) == []
    assert ("Cfg.value", "z.m.store", 1) in _caller_ordinals(indexer)
    # the getter's call moved into the setter
    swapped = moved.replace("        return compute()\n", "        return 1\n").replace(
        "        store(v)\n", "        compute()\n        store(v)\n"
    )
    repo.apply({"z/m.py": swapped})
    indexer.run()
    assert _callers_outside_their_span(indexer) == []
    assert ("Cfg.value", "z.m.compute", 1) in _caller_ordinals(indexer)
    _assert_equals_a_first_run(indexer, repo, make_indexer, tmp_path / "fresh")
    # a stored caller GOID that no definition has any more is looked up by its site's line
    with indexer.gateway.writer("test") as w:
        w.execute("UPDATE graph.call_edges SET caller_goid = 'gone' WHERE caller = 'z.m.Cfg.value'")
    repo.apply({"z/m.py": swapped.replace("# moved down", "# moved down, again")})
    steps = indexer.step_runs(indexer.run().run_id)
    assert steps["call_graph"]["note"].startswith("facts unchanged")
    _assert_equals_a_first_run(indexer, repo, make_indexer, tmp_path / "fresh2")


def test_a_new_file_size_limit_gives_the_tables_a_first_run_with_it_gives(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    # the files' contents stay: only the limit decides which are read (every step that reads
    # files, and goids after ast_ingest; the file state alone would call them done)
    repo = make_repo(tmp_path, FILES)
    indexer = make_indexer(repo)
    indexer.run()
    for n, settings in enumerate(("[tool.codeintel]\nmax_file_size = 200\n", "")):
        repo.apply({"pyproject.toml": settings}, "lower the limit" if settings else "back to the default")
        indexer.run()
        too_large = indexer.query("SELECT DISTINCT path FROM core.parse_errors WHERE kind = 'too_large' ORDER BY path")
        assert too_large == ([("src/shop/cart.py",)] if settings else [])
        _assert_equals_a_first_run(indexer, repo, make_indexer, tmp_path / f"fresh{n}")


def test_a_repository_of_no_python_file_is_not_stale_after_its_run(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    indexer = make_indexer(make_repo(tmp_path, {"README.md": "# nothing to index yet\n"}))
    for _ in range(2):
        indexer.run()
        assert indexer.query("SELECT step, stale_reason FROM meta.step_status WHERE stale") == []
