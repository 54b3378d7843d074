"""symbol_uses: uses of repository symbols through the real pipeline (real git repositories,
real pyrefly and tree-sitter), and the docs views over them.

Covers uses of a class, a function and a global across files with their kinds (import,
subclass, annotation, call, read, write; a relative import's module, whose name starts inside
its occurrence), the pairs of definitions, the names on both sides in
docs.v_symbol_uses, the function summary's signature, inferred return type, uses, type errors
and TODOs, the indexer missing (a recorded skip, empty uses, views with NULLs, the pipeline
succeeds) and an incremental run equal to a full one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from codeintel.storage.catalog import Table

FILES = {
    "pkg/__init__.py": "",
    "pkg/models.py": """
        DEFAULT_LIMIT = 10


        class Session:
            limit: int = 0

            def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
                self.limit = limit


        def make_session():
            # TODO: pool the sessions
            return Session()
        """,
    "pkg/service.py": """
        from pkg import models
        from pkg.models import Session, make_session


        class AuditedSession(Session):
            pass


        def save(s: Session) -> int:
            return s.limit


        def configure() -> None:
            models.DEFAULT_LIMIT = 20


        def run() -> int:
            session = make_session()
            return session.limit + models.DEFAULT_LIMIT


        def broken() -> int:
            return "not an int"
        """,
    "pkg/api.py": """
        from . import models
        from .models import Session


        def open_session() -> Session:
            return models.Session()
        """,
}

USE_TABLES = (Table.SYMBOL_USES, Table.SYMBOL_USE_EDGES, Table.DEFINITION_TYPES)


def _goid(idx: Any, qualname: str) -> str:
    (goid,) = idx.query("SELECT goid FROM core.goids WHERE qualname = ?", [qualname])[0]
    return str(goid)


def _uses(idx: Any, def_qualname: str) -> set[tuple[str, str, str, int]]:
    """(use kind, using definition's qualname, path, line) of every use of one definition."""
    rows = idx.query(
        """SELECT u.use_kind, g.qualname, u.path, u.line FROM graph.symbol_uses u
           JOIN core.goids g ON g.goid = u.user_goid WHERE u.def_goid = ?""",
        [_goid(idx, def_qualname)],
    )
    return set(rows)


@pytest.fixture
def shop(indexed_copy: Any) -> Any:
    return indexed_copy("symbol_uses", FILES)


def test_uses_of_a_class_across_files_have_their_kinds(shop: Any) -> None:
    uses = {(kind, user) for kind, user, _, _ in _uses(shop, "Session")}
    assert uses >= {
        ("import", "pkg.service"),  # from pkg.models import Session
        ("subclass", "AuditedSession"),
        ("annotation", "save"),
        ("call", "make_session"),
    }
    assert all(kind != "definition" for kind, _ in uses)


def test_a_global_read_and_written_from_another_module_belongs_to_its_module(shop: Any) -> None:
    rows = shop.query(
        """SELECT use_kind, def_kind, u.name, g.qualname FROM graph.symbol_uses u JOIN core.goids g ON g.goid = u.user_goid
           WHERE u.symbol LIKE '%DEFAULT_LIMIT.' ORDER BY u.path, u.line"""
    )
    assert rows == [
        ("read", "variable", "DEFAULT_LIMIT", "Session.__init__"),  # its default, in models.py
        ("write", "variable", "DEFAULT_LIMIT", "configure"),
        ("read", "variable", "DEFAULT_LIMIT", "run"),
    ]
    assert shop.query("SELECT DISTINCT def_goid FROM graph.symbol_uses WHERE symbol LIKE '%DEFAULT_LIMIT.'") == [
        (_goid(shop, "pkg.models"),)
    ]


def test_calls_and_attribute_reads_through_types(shop: Any) -> None:
    assert ("call", "run", "pkg/service.py", 19) in _uses(shop, "make_session")
    assert ("import", "pkg.service", "pkg/service.py", 3) in _uses(shop, "make_session")
    attribute = shop.query(
        """SELECT use_kind, def_kind, qualifier FROM graph.symbol_uses
           WHERE symbol LIKE '%Session#limit.' AND path = 'pkg/service.py' ORDER BY line"""
    )
    assert attribute == [("read", "attribute", "s"), ("read", "attribute", "session")]


def test_edges_count_the_uses_of_each_pair_by_kind(shop: Any) -> None:
    edges = shop.query(
        """SELECT uses, kinds, calls, reads, writes, member_uses FROM graph.symbol_use_edges
           WHERE user_goid = ? AND def_goid = ?""",
        [_goid(shop, "configure"), _goid(shop, "pkg.models")],
    )
    assert edges == [(2, ["read", "write"], 0, 1, 1, 1)]  # `models` read, `DEFAULT_LIMIT` written
    (run,) = shop.query(
        "SELECT calls, uses FROM graph.symbol_use_edges WHERE user_goid = ? AND def_goid = ?",
        [_goid(shop, "run"), _goid(shop, "make_session")],
    )
    assert run == (1, 1)


def test_the_symbol_uses_view_names_both_sides(shop: Any) -> None:
    rows = shop.query(
        """SELECT use_kind, def_name, def_path, user_name, user_kind, path, crosses_file FROM docs.v_symbol_uses
           WHERE def_name = 'pkg.models.DEFAULT_LIMIT' AND use_kind = 'write'"""
    )
    assert rows == [("write", "pkg.models.DEFAULT_LIMIT", "pkg/models.py", "pkg.service.configure", "function",
                     "pkg/service.py", True)]  # fmt: skip


def test_the_function_summary_has_signature_types_uses_errors_and_todos(shop: Any) -> None:
    rows = shop.query(
        """SELECT name, signature, inferred_return_type, use_count, type_errors, todo_count
           FROM docs.v_function_summary WHERE module IN ('pkg.models', 'pkg.service') ORDER BY name"""
    )
    found = {r[0]: r[1:] for r in rows}
    assert found["make_session"] == ("def make_session():", "Session", 2, 0, 1)  # inferred: no annotation
    assert found["broken"][2:4] == (0, 1)
    assert found["save"][:2] == ("def save(s: Session) -> int:", "int")


def test_without_the_indexer_uses_are_a_skip_and_the_views_have_nulls(
    make_repo: Any, make_indexer: Any, tmp_path: Path
) -> None:
    idx = make_indexer(make_repo(tmp_path, FILES))
    run = idx.run(pyrefly=str(tmp_path / "missing" / "pyrefly"))
    assert run.ok
    status = idx.step_runs(run.run_id)["symbol_uses"]
    assert status["status"] == "skipped"
    assert "no SCIP index" in status["note"]
    assert [idx.query(f"SELECT count(*) FROM {t}") for t in USE_TABLES] == [[(0,)]] * 3
    assert idx.query("SELECT count(*) FROM docs.v_symbol_uses") == [(0,)]
    row = idx.query(
        """SELECT signature, inferred_return_type, use_count, type_errors, todo_count FROM docs.v_function_summary
           WHERE name = 'make_session'"""
    )
    assert row == [("def make_session():", None, None, None, 1)]


def test_an_incremental_run_equals_a_full_run(shop: Any) -> None:
    shop.git.apply(
        {
            "pkg/service.py": FILES["pkg/service.py"].replace(
                "return s.limit", "return s.limit + models.DEFAULT_LIMIT"
            ),
            "pkg/models.py": FILES["pkg/models.py"].replace(
                "DEFAULT_LIMIT = 10", "DEFAULT_LIMIT = 10\n        OTHER = 1"
            ),
        }
    )
    assert shop.run().ok
    incremental = [shop.table_rows(t) for t in USE_TABLES]
    assert ("read", "save") in {(k, u) for k, u, _, _ in _uses(shop, "pkg.models")}
    assert shop.run(full=True).ok
    assert [shop.table_rows(t) for t in USE_TABLES] == incremental


def test_a_use_whose_name_starts_inside_it_gets_that_names_kind(shop: Any) -> None:
    """`.models` of `from .models import x` is one occurrence from the dot; its name site starts
    after it (found by the ASOF join, not the join on the occurrence's start)."""
    rows = shop.query(
        """SELECT line, col, end_col, name, use_kind FROM graph.symbol_uses
           WHERE path = 'pkg/api.py' AND def_goid = ? ORDER BY line, col""",
        [_goid(shop, "pkg.models")],
    )
    assert rows == [
        (2, 14, 20, "models", "import"),  # from . import models
        (3, 5, 12, "models", "import"),  # from .models import Session: the name site at col 6
        (7, 11, 17, "models", "read"),
    ]  # (without a name site the name would be the symbol's display name, `pkg.models`)


# two services of a monorepo, each a source root with its own `app` package: one module name,
# two files, and symbols pyrefly names alike; `app/extra` is a namespace package (no __init__.py)
# inside `app`
TWIN_SERVICES = {
    f"services/{service}/app/{name}": text
    for service in ("one", "two")
    for name, text in {
        "__init__.py": "",
        "main.py": """
            from app.extra.tool import tool

            LIMIT = 3


            def helper(x: int) -> int:
                return x + tool()


            def handler(x: int) -> int:
                return helper(x)
            """,
        "cli.py": """
            from app.main import LIMIT, handler


            def run() -> int:
                return handler(LIMIT)
            """,
        "extra/tool.py": """
            def tool() -> int:
                return 1
            """,
    }.items()
}


def test_files_sharing_a_module_name_keep_their_own_calls_and_uses(indexed_copy: Any) -> None:
    """The points-to call graph, the merged call edges and the symbol uses of each service name
    the definitions of its own files, not those of the first file with that module name; also
    after an edit that leaves the program as it was (the stored edges are relinked, not solved)."""
    idx = indexed_copy("twin_services", TWIN_SERVICES)

    def service_of(goid: str) -> str:
        (path,) = idx.query("SELECT path FROM core.goids WHERE goid = ?", [goid])[0]
        return str(path).split("/")[1]

    def check() -> None:
        # run -> handler -> helper -> tool in each service, both analyses agreeing (`app.extra`,
        # a namespace package inside `app`, is a module name of both services too)
        expected = {
            "graph.call_edges": ["direct", "import", "import"] * 2,
            "graph.call_edges_merged": ["direct+scip", "import+scip", "import+scip"] * 2,
        }
        for table, resolutions in expected.items():
            edges = idx.query(
                f"SELECT path, caller_goid, callee_goid, resolution FROM {table} WHERE callee_goid IS NOT NULL"
            )
            assert sorted(r for *_, r in edges) == sorted(resolutions), table
            for path, caller, callee, resolution in edges:
                assert service_of(caller) == service_of(callee) == path.split("/")[1], (table, path, resolution)
        uses = idx.query("SELECT path, user_goid, def_goid FROM graph.symbol_uses WHERE user_goid IS NOT NULL")
        # per service: the imports and calls of handler and tool, the call of helper, the import
        # and the read of LIMIT (a global: its module's GOID)
        assert len(uses) >= 14
        for path, user, definition in uses:
            assert service_of(user) == service_of(definition) == path.split("/")[1], path

    check()
    main = "services/two/app/main.py"
    idx.git.apply({main: "# the definitions move down a line\n" + textwrap.dedent(TWIN_SERVICES[main])})
    assert idx.run().ok
    check()
    incremental = idx.table_rows("graph.call_edges")
    assert idx.run(full=True).ok
    assert idx.table_rows("graph.call_edges") == incremental
