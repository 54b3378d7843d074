"""scip_ingest: the pinned pyrefly on real git repositories in tmp_path, decoded into the tables.

Covers the committed protobuf module (regenerated and compared), symbol parsing, positions in
UTF-8 bytes, occurrences of a symbol across files (definition, import, call, subclass,
attribute) with their enclosing GOIDs, the crosswalk, type errors, machine paths stripped,
incremental runs equal to a full run (body edit, interface edit, deleted and added files), no
subprocess when nothing changed, pyrefly started ahead under the local runner, and the indexer
missing, timing out or failing as a recorded skip that keeps what is stored.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from codeintel.ingestion.scip import ingest as scip_ingest
from codeintel.ingestion.scip import regenerate
from codeintel.ingestion.scip.decode import IndexDecodeError, PathStripper, decode_index
from codeintel.ingestion.scip.symbols import SymbolKind, parse_symbol
from codeintel.storage.catalog import Table

SCIP_TABLES = (
    Table.SCIP_DOCUMENTS,
    Table.SCIP_SYMBOLS,
    Table.SCIP_OCCURRENCES,
    Table.GOID_CROSSWALK,
    Table.TYPE_DIAGNOSTICS,
)
STEPS = ["scip_ingest"]

SHOP = {
    "pkg/__init__.py": "",
    "pkg/base.py": '''
        """Base things."""


        class Base:
            count: int = 0

            def total(self, x: int) -> int:
                """Add the count."""
                return x + self.count


        def helper(a: int) -> int:
            return a * 2
        ''',
    "pkg/use.py": """
        from pkg.base import Base, helper


        class Child(Base):
            def run(self) -> int:
                self.count = helper(1)
                return self.total(self.count)


        def main() -> str:
            value: str = helper(2)
            return value
        """,
    "pkg/other.py": """
        CACHE = []
        CACHE.append(1)  # the hover says "inferred from first use at <a file:// link>"


        def alone() -> int:
            return 1
        """,
    # enough files that re-indexing two of them stays below the share for a full run
    **{f"pkg/filler{i}.py": f"VALUE{i} = {i}\n" for i in range(8)},
}


def _status(idx: Any, run_id: str) -> dict[str, Any]:
    return idx.step_runs(run_id)["scip_ingest"]


@pytest.fixture
def shop(make_repo: Any, make_indexer: Any, tmp_path: Path) -> Any:
    repo = make_repo(tmp_path, SHOP)
    idx = make_indexer(repo)
    run = idx.run(STEPS)
    assert _status(idx, run.run_id)["status"] == "succeeded"
    return idx


# --------------------------------------------------------------------------- the protobuf module


def test_the_committed_scip_module_is_what_the_proto_generates(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a dev extra) regenerates the SCIP module")
    generated = regenerate.regenerate(tmp_path)
    for path in generated:
        committed = regenerate.HERE / path.name
        assert path.read_bytes() == committed.read_bytes(), (
            f"{committed.name} differs: run python -m {regenerate.__name__}"
        )


@pytest.mark.parametrize(
    ("symbol", "module", "qualified", "kind"),
    [
        ("scip-python python p 0 `a.b`/C#m().inner().", "a.b", "C.m.inner", SymbolKind.FUNCTION),
        ("scip-python python p 0 `a.b`/C#m().", "a.b", "C.m", SymbolKind.METHOD),
        ("scip-python python p 0 `a.b`/f().", "a.b", "f", SymbolKind.FUNCTION),
        ("scip-python python p 0 `a.b`/C#", "a.b", "C", SymbolKind.CLASS),
        ("scip-python python p 0 `a.b`/C#x.", "a.b", "C.x", SymbolKind.ATTRIBUTE),
        ("scip-python python p 0 `a.b`/X.", "a.b", "X", SymbolKind.VARIABLE),
        ("scip-python python p 0 `a.b`/f().(arg)", "a.b", "f.arg", SymbolKind.PARAMETER),
        ("scip-python python p 0 `a.b`/f().[T]", "a.b", "f.T", SymbolKind.TYPE_PARAMETER),
        ("scip-python python p 0 pkg/__init__:", "pkg", "pkg", SymbolKind.MODULE),
        ("scip-python python p 0 `a.b`/`odd``name`#", "a.b", "odd`name", SymbolKind.CLASS),
        ("scip-python python my  pkg 1.0 m/f().", "m", "f", SymbolKind.FUNCTION),
        ("local 7", "", "local 7", SymbolKind.LOCAL),
        ("garbage", "", "garbage", SymbolKind.UNKNOWN),
    ],
    ids=["nested", "method", "function", "class", "attribute", "variable", "parameter", "type-param", "module",
         "quoted", "escaped-space", "local", "garbage"],
)  # fmt: skip
def test_symbols_parse_into_module_qualified_name_and_kind(
    symbol: str, module: str, qualified: str, kind: SymbolKind
) -> None:
    parsed = parse_symbol(symbol)
    assert (parsed.module, parsed.qualified_name, parsed.kind) == (module, qualified, kind)


def test_a_truncated_index_is_a_decode_error(tmp_path: Path) -> None:
    index = tmp_path / "index.scip"
    index.write_bytes(b"\x12\x80\x01abc")  # field 2 says 128 bytes, has 3
    with pytest.raises(IndexDecodeError):
        decode_index(index, tmp_path, PathStripper(()), tmp_path / "spill")


# --------------------------------------------------------------------------------- the tables


def test_occurrences_of_a_symbol_across_files_with_roles_positions_and_enclosing_goids(shop: Any) -> None:
    goid = dict(shop.query("SELECT qualname, goid FROM core.goids WHERE path = 'pkg/use.py'"))
    helper = shop.query(
        "SELECT symbol FROM core.scip_symbols WHERE def_path = 'pkg/base.py' AND qualified_name = 'helper'"
    )[0][0]
    uses = shop.query(
        "SELECT path, line, col, end_col, roles, enclosing_goid FROM core.scip_occurrences WHERE symbol = ? ORDER BY ALL",
        [helper],
    )
    # pyrefly marks definitions (role 1) and leaves references unmarked (0); core.name_sites says how
    assert uses == [
        ("pkg/base.py", 13, 4, 10, 1, uses[0][5]),  # the definition
        ("pkg/use.py", 2, 27, 33, 0, goid["pkg.use"]),  # the import, at module level
        ("pkg/use.py", 7, 21, 27, 0, goid["Child.run"]),  # a call inside a method
        ("pkg/use.py", 12, 17, 23, 0, goid["main"]),
    ]
    base = "SELECT symbol FROM core.scip_symbols WHERE def_path = 'pkg/base.py' AND qualified_name = ?"
    (cls,) = shop.query(base, ["Base"])[0]
    used = shop.query("SELECT path, line, col FROM core.scip_occurrences WHERE symbol = ? ORDER BY ALL", [cls])
    assert used == [
        ("pkg/base.py", 5, 6),
        ("pkg/use.py", 2, 21),
        ("pkg/use.py", 5, 12),
    ]  # defined, imported, subclassed
    (count,) = shop.query(base, ["Base.count"])[0]
    assert shop.query("SELECT line, col FROM core.scip_occurrences WHERE symbol = ? ORDER BY ALL", [count]) == [
        (6, 4),
        (10, 24),
    ]
    relationships = shop.query(
        "SELECT relationships FROM core.scip_symbols WHERE def_path = 'pkg/use.py' AND qualified_name = 'Child'"
    )
    assert relationships == [([f"implementation {cls}"],)]


def test_every_goid_has_its_scip_symbol_and_symbols_know_their_goids(shop: Any) -> None:
    missing = shop.query(
        "SELECT path, qualname FROM core.goids g WHERE NOT EXISTS (SELECT 1 FROM core.goid_crosswalk c WHERE c.goid = g.goid)"
    )
    assert missing == []
    wrong = shop.query(
        """SELECT c.goid FROM core.goid_crosswalk c JOIN core.goids g USING (goid)
           JOIN core.scip_symbols s ON s.symbol = c.symbol AND s.def_path = g.path
           WHERE s.goid <> c.goid OR s.kind <> g.kind"""
    )
    assert wrong == []
    assert shop.query("SELECT kind, goid IS NULL FROM core.scip_symbols WHERE qualified_name = 'Base.total'") == [
        ("method", False)
    ]


def test_definitions_the_type_checker_skips_are_symbols_and_join_the_crosswalk(
    make_repo: Any, make_indexer: Any, tmp_path: Path
) -> None:
    """pyrefly gives definition occurrences, and no SymbolInformation, for code it does not check
    (the body of `if not TYPE_CHECKING:`): they are symbols with their definition site and no
    signature, so every GOID has its crosswalk row (sqlalchemy: 36 GOIDs had none, prefect 25).
    Where the checker lists a symbol of that name (a fallback `def` beside an assignment it
    checks), the definition keeps being named by that symbol."""
    repo = make_repo(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/box.py": """
                import typing
                from typing import TYPE_CHECKING


                class Box:
                    size: int = 1

                    if not TYPE_CHECKING:

                        def peek(self):
                            return self.size

                        def __getattr__(self, name):
                            return name


                if not TYPE_CHECKING:

                    def hidden(x):
                        return x


                if TYPE_CHECKING:
                    get_args = typing.get_args
                else:

                    def get_args(tp):
                        return ()
                """,
        },
    )
    idx = make_indexer(repo)
    idx.run(STEPS)
    missing = idx.query(
        "SELECT qualname FROM core.goids g WHERE NOT EXISTS (SELECT 1 FROM core.goid_crosswalk c WHERE c.goid = g.goid)"
    )
    assert missing == []
    skipped = idx.query(
        """SELECT s.qualified_name, s.kind, s.def_line, s.signature IS NULL, s.goid = g.goid
           FROM core.scip_symbols s JOIN core.goids g ON g.path = s.def_path AND g.qualname = s.qualified_name
           WHERE s.qualified_name IN ('Box.peek', 'Box.__getattr__', 'hidden') ORDER BY s.def_line"""
    )
    assert skipped == [
        ("Box.peek", "method", 11, True, True), ("Box.__getattr__", "method", 14, True, True), ("hidden", "function", 20, True, True),
    ]  # fmt: skip
    # a fallback beside what the checker sees under that name: named by the checker's symbol
    fallback = idx.query(
        """SELECT s.kind, s.signature IS NOT NULL, c.match FROM core.goid_crosswalk c
           JOIN core.scip_symbols s ON s.symbol = c.symbol WHERE c.qualname = 'get_args'"""
    )
    assert fallback == [("variable", True, "name")]
    named = idx.query("SELECT symbol FROM core.goid_crosswalk WHERE qualname = 'get_args'")
    listed = idx.query(
        "SELECT symbol FROM core.scip_symbols WHERE def_path = 'pkg/box.py' AND qualified_name = 'get_args'"
    )
    assert listed == named  # no symbol of its own
    checked = idx.query("SELECT signature IS NOT NULL FROM core.scip_symbols WHERE qualified_name = 'Box.size'")
    assert checked == [(True,)]
    twice = idx.query("SELECT symbol FROM core.scip_symbols GROUP BY 1 HAVING count(*) > 1")
    assert twice == []


def test_signatures_docs_and_type_errors_carry_no_machine_paths(shop: Any) -> None:
    root = str(shop.repo)
    (signature, documentation), *_ = shop.query(
        "SELECT signature, documentation FROM core.scip_symbols WHERE qualified_name = 'Base.total'"
    )
    assert signature == "total: def total(\n    self: Self@Base,\n    x: int\n) -> int: ..."
    assert documentation == "Add the count."
    texts = shop.query(
        "SELECT coalesce(signature, '') || coalesce(documentation, '') FROM core.scip_symbols "
        "UNION ALL SELECT message FROM analytics.type_diagnostics"
    )
    leaked = [t for (t,) in texts if root in t or "file://" in t or "codeintel-scip-" in t]
    assert leaked == []
    cache = shop.query("SELECT documentation FROM core.scip_symbols WHERE qualified_name = 'CACHE'")
    assert cache == [("**Type source**\n- Inferred from first use at [3:1](pkg/other.py#L3,1): `CACHE.append(1)`",)]
    errors = shop.query("SELECT path, line, col, code, enclosing_goid FROM analytics.type_diagnostics")
    main = shop.query("SELECT goid FROM core.goids WHERE qualname = 'main'")[0][0]
    assert errors == [("pkg/use.py", 12, 17, "bad-assignment", main)]


def test_columns_are_utf8_bytes_as_ast_gives_them(make_repo: Any, make_indexer: Any, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"m.py": 'def f(x):\n    return x\n\n\ns = "ééé"; y = f(s)\n'})
    idx = make_indexer(repo)
    idx.run(STEPS)
    found = idx.query(
        "SELECT line, col, end_col FROM core.scip_occurrences o JOIN core.scip_symbols s USING (symbol) "
        "WHERE s.qualified_name = 'f' AND line = 5"
    )
    assert found == [(5, len('s = "ééé"; y = '.encode()), len('s = "ééé"; y = f'.encode()))]


# ------------------------------------------------------------------------------- incremental


def _full_twin(make_indexer: Any, idx: Any, tmp_path: Path, name: str) -> Any:
    twin = make_indexer(idx.repo, tmp_path / name / "codeintel.duckdb")
    twin.run(STEPS)
    return twin


@pytest.mark.parametrize(
    ("edit", "indexed"),
    [
        ({"pkg/base.py": SHOP["pkg/base.py"].replace("return a * 2", "return a * 3")}, 1),  # body only
        ({"pkg/base.py": SHOP["pkg/base.py"].replace("def helper(a: int)", "def helper(a: int, b: int = 0)")}, 2),
        (
            {"pkg/base.py": SHOP["pkg/base.py"].replace("a: int) -> int", "a: int) -> str").replace("a * 2", "str(a)")},
            2,
        ),
        ({"pkg/other.py": None}, 0),  # deleted, nobody uses it
        ({"pkg/new.py": "from pkg.base import helper\nX = helper(1)\n"}, 1),
    ],
    ids=["body-edit", "interface-edit", "return-type-edit", "deleted-file", "added-file"],
)
def test_an_incremental_run_equals_a_full_run(
    shop: Any, make_indexer: Any, tmp_path: Path, edit: dict[str, Any], indexed: int
) -> None:
    shop.git.apply(edit)
    run = shop.run(STEPS)
    status = _status(shop, run.run_id)
    assert status["status"] == "succeeded"
    assert "partial" in status["note"], status["note"]
    assert status["files_processed"] == indexed, status["note"]
    twin = _full_twin(make_indexer, shop, tmp_path, "twin")
    for table in SCIP_TABLES:
        assert shop.table_rows(table) == twin.table_rows(table), table


def test_users_of_a_changed_interface_are_indexed_again(shop: Any) -> None:
    errors = "SELECT line, code FROM analytics.type_diagnostics WHERE path = 'pkg/use.py'"
    assert shop.query(errors) == [(12, "bad-assignment")]  # value: str = helper(2)
    edit = SHOP["pkg/base.py"].replace("a: int) -> int", "a: int) -> str").replace("a * 2", "str(a)")
    shop.git.apply({"pkg/base.py": edit})
    run = shop.run(STEPS)
    assert _status(shop, run.run_id)["files_processed"] == 2
    assert shop.query(errors) == [(7, "bad-assignment")], "use.py's type errors follow helper's new return type"


def test_a_deleted_file_drops_its_rows_and_its_users_are_indexed_again(shop: Any) -> None:
    shop.git.apply({"pkg/base.py": None})
    run = shop.run(STEPS)
    assert _status(shop, run.run_id)["files_processed"] == 1  # use.py
    for table in (Table.SCIP_DOCUMENTS, Table.SCIP_OCCURRENCES, Table.TYPE_DIAGNOSTICS):
        assert shop.query(f"SELECT count(*) FROM {table} WHERE path = 'pkg/base.py'") == [(0,)], table
    assert shop.query("SELECT count(*) FROM core.scip_symbols WHERE def_path = 'pkg/base.py'") == [(0,)]
    codes = {c for (c,) in shop.query("SELECT code FROM analytics.type_diagnostics WHERE path = 'pkg/use.py'")}
    assert "missing-import" in codes or "missing-module-attribute" in codes


def test_nothing_changed_runs_no_indexer(shop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pyrefly started although nothing changed")

    monkeypatch.setattr(scip_ingest, "start_indexing", refuse)
    run = shop.run(STEPS)
    assert _status(shop, run.run_id)["note"] == "up to date"


def test_the_local_runner_starts_pyrefly_right_after_the_scan(shop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    start = scip_ingest.start_indexing

    def recording(*args: Any, **kwargs: Any) -> Any:
        events.append("pyrefly started")
        return start(*args, **kwargs)

    monkeypatch.setattr(scip_ingest, "start_indexing", recording)
    shop.git.apply({"pkg/other.py": "def alone() -> int:\n    return 2\n"})
    shop.run(on_event=lambda step, what, _: events.append(f"{step} {what}"))
    assert events.index("pyrefly started") == events.index("repo_scan done") + 1
    assert events.count("pyrefly started") == 1, "the step used the run started ahead"
    assert events.index("scip_ingest start") > events.index("call_graph done")


# --------------------------------------------------------------------------------- the indexer


def test_hostile_files_cost_at_most_their_own_rows(make_repo: Any, make_indexer: Any, tmp_path: Path) -> None:
    files = {
        "good.py": "def ok() -> int:\n    return 1\n",
        "broken.py": "def broken(:\n    pass\n",  # a syntax error
        "latin1.py": b"# -*- coding: latin-1 -*-\nNAME = '\xe9t\xe9'\n",  # valid Python, not UTF-8
        "garbage.py": b"\xff\xfe\x00\x01 not python at all \x00",
        "pep695.py": "type Pair[T] = tuple[T, T]\n\n\ndef first[T](p: Pair[T]) -> T:\n    return p[0]\n",
        "huge_line.py": "X = " + "1 + " * 50_000 + "1\n",
    }
    idx = make_indexer(make_repo(tmp_path, files))
    run = idx.run(STEPS)
    assert _status(idx, run.run_id)["status"] == "succeeded"
    documents = {p for (p,) in idx.query("SELECT path FROM core.scip_documents")}
    not_indexed = {p for (p,) in idx.query("SELECT path FROM core.parse_errors WHERE step = 'scip_ingest'")}
    assert documents | not_indexed == set(files) and not documents & not_indexed
    assert "good.py" in documents and "pep695.py" in documents
    assert idx.query("SELECT count(*) FROM analytics.type_diagnostics WHERE path = 'broken.py'")[0][0] >= 1
    assert idx.query(
        "SELECT qualified_name FROM core.scip_symbols WHERE def_path = 'pep695.py' AND kind = 'function'"
    ) == [("first",)]


def test_a_file_over_the_size_limit_is_never_given_to_pyrefly_and_loses_its_rows_when_it_grows(
    make_repo: Any, make_indexer: Any, tmp_path: Path
) -> None:
    """The scan's `max_file_size` holds for the indexer too: a generated module of megabytes
    (thousands of nested blocks overflow pyrefly's stack: the whole run aborts) is left out,
    and a file that grows past the limit loses its rows and is not planned again."""
    small = "def grows() -> int:\n    return 1\n"
    files = {
        "pkg/__init__.py": "",
        "pkg/big.py": "def big() -> int:\n    return 1\n" + "\n".join(f"V{i} = {i}" for i in range(200)) + "\n",
        "pkg/small.py": small,
        "pkg/user.py": "from pkg.small import grows\n\nX: int = grows()\n",
    }
    idx = make_indexer(make_repo(tmp_path, files))
    limit = {"max_file_size": 1000}
    assert len(files["pkg/big.py"]) > 1000
    started: list[tuple[str, ...]] = []
    start = scip_ingest.start_indexing

    def recording(service: Any, request: Any) -> Any:
        started.append(request.files)
        return start(service, request)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scip_ingest, "start_indexing", recording)
        run = idx.run(STEPS, **limit)
    status = _status(idx, run.run_id)
    assert status["status"] == "succeeded" and "1 over the size limit" in status["note"], status["note"]
    assert started and all("pkg/big.py" not in files for files in started)
    documents = {p for (p,) in idx.query("SELECT path FROM core.scip_documents")}
    assert documents == {"pkg/__init__.py", "pkg/small.py", "pkg/user.py"}

    idx.git.apply({"pkg/small.py": small + "\n".join(f"W{i} = {i}" for i in range(200)) + "\n"})
    started.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scip_ingest, "start_indexing", recording)
        run = idx.run(STEPS, **limit)
    status = _status(idx, run.run_id)
    assert status["status"] == "succeeded" and "2 over the size limit" in status["note"], status["note"]
    assert started and "pkg/user.py" in started[0]  # its import is gone: indexed again
    assert all("pkg/small.py" not in files and "pkg/big.py" not in files for files in started)
    for table in (Table.SCIP_DOCUMENTS, Table.SCIP_OCCURRENCES):
        assert idx.query(f"SELECT count(*) FROM {table} WHERE path = 'pkg/small.py'") == [(0,)], table
    assert idx.query("SELECT count(*) FROM core.scip_symbols WHERE def_path = 'pkg/small.py'") == [(0,)]
    run = idx.run(STEPS, **limit)
    assert _status(idx, run.run_id)["note"] == "up to date"


def _edit_and_run(shop: Any, **settings: Any) -> tuple[Any, dict[str, Any]]:
    before = {t: shop.table_rows(t) for t in SCIP_TABLES}
    shop.git.apply({"pkg/other.py": "def alone() -> int:\n    return 3\n"})
    run = shop.run(**settings)
    assert run.ok and run.published
    after = {t: shop.table_rows(t) for t in SCIP_TABLES}
    assert after == before, "a skipped scip_ingest keeps the stored index"
    return run, _status(shop, run.run_id)


def test_a_missing_indexer_is_a_recorded_skip_and_nothing_else_fails(shop: Any, tmp_path: Path) -> None:
    run, status = _edit_and_run(shop, pyrefly=str(tmp_path / "no" / "pyrefly"))
    assert status["status"] == "skipped"
    assert "not an executable" in status["note"]
    others = shop.work_query(
        "SELECT step, status FROM meta.step_runs WHERE run_id = ? AND step <> 'scip_ingest'", [run.run_id]
    )
    assert {r["status"] for r in others} <= {"succeeded", "skipped"}
    # the next run with the indexer back catches up
    again = shop.run(STEPS)
    assert _status(shop, again.run_id)["files_processed"] == 1


def _fake_pyrefly(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake" / "pyrefly"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_an_indexer_past_its_timeout_is_killed_and_a_recorded_skip(shop: Any, tmp_path: Path) -> None:
    fake = _fake_pyrefly(tmp_path, "time.sleep(60)")
    _, status = _edit_and_run(shop, pyrefly=fake, pyrefly_timeout=1)
    assert status["status"] == "skipped"
    assert "timed out after 1 s" in status["note"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("sys.stderr.write('thread panicked\\n'); sys.exit(101)", "exit 101"),
        ("sys.exit(0)", "wrote no index"),
        (
            "out = sys.argv[sys.argv.index('--report-scip') + 1]; open(out, 'wb').write(b'\\x12\\xff\\xff'); "
            "err = sys.argv[sys.argv.index('--output') + 1]; open(err, 'w').write('{}'); sys.exit(1)",
            "truncated",
        ),
    ],
    ids=["crash", "no-output", "garbage-output"],
)
def test_a_failing_indexer_is_a_recorded_skip(shop: Any, tmp_path: Path, body: str, says: str) -> None:
    _, status = _edit_and_run(shop, pyrefly=_fake_pyrefly(tmp_path, body))
    assert status["status"] == "skipped"
    assert says in status["note"], status["note"]


def test_the_binary_is_found_beside_the_running_python() -> None:
    from codeintel.config import ToolsConfig
    from codeintel.ingestion.scip.pyrefly import find_pyrefly

    found = Path(find_pyrefly(ToolsConfig()))
    assert found.name == "pyrefly" and os.access(found, os.X_OK)


# ------------------------------------------------------------------------------- golden figures

FLASK_COMMIT = "2ac89889f4cc330eabd50f295dcef02828522c69"


@pytest.mark.slow
def test_golden_figures_on_a_clone_of_flask(tmp_path: Path, shared_dir: Path, make_indexer: Any) -> None:
    """pyrefly 1.5.0 on flask at a fixed commit: an indexer upgrade that changes these fails here.

    Pinned: documents, occurrences (all; those of repository symbols and locals), definitions, and
    the crosswalk (every GOID), with pyrefly resolving imports in an empty virtual environment.
    (Those of repository symbols were 16,879 while a definition pyrefly gives no SymbolInformation
    was no symbol: `self.debug = ...` in `Flask.run` defines `Flask#debug.`, 16 occurrences.)
    """
    import subprocess

    bundle = shared_dir / "corpora" / "flask.bundle"
    if not bundle.is_file():
        pytest.skip(f"{bundle} not found")
    clone = tmp_path / "flask"
    subprocess.run(["git", "clone", "-q", str(bundle), str(clone)], check=True, capture_output=True)
    subprocess.run(["git", "checkout", "-q", FLASK_COMMIT], cwd=clone, check=True, capture_output=True)
    # an interpreter with no third-party packages: the figures do not depend on what is installed
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    idx = make_indexer(clone)
    run = idx.run(STEPS, pyrefly_python=str(tmp_path / "venv" / "bin" / "python"))
    assert _status(idx, run.run_id)["status"] == "succeeded"
    figures = idx.query(
        """SELECT (SELECT count(*) FROM core.scip_documents),
                  (SELECT count(*) FROM core.scip_occurrences),
                  (SELECT count(*) FROM core.scip_occurrences o WHERE symbol LIKE 'local %' OR EXISTS
                      (SELECT 1 FROM core.scip_symbols s WHERE s.symbol = o.symbol AND NOT s.is_external)),
                  (SELECT count(*) FROM core.scip_occurrences WHERE is_definition),
                  (SELECT count(*) FROM core.goid_crosswalk),
                  (SELECT count(*) FROM core.goids)"""
    )
    assert figures == [(83, 21074, 16895, 5045, 1707, 1707)]
