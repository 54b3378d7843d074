"""End-to-end runs of the pure-Python pipeline on small real git repositories.

Covers the key tables and views, the incremental rules (a per-file step reprocesses exactly the
files whose hash it has not processed; deleted files vanish from every table with a `path`), a
failed or excluded step catching up on the next run, GOID stability across commits, and a
process-pool run giving the same tables as a serial one.
"""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from codeintel.errors import StepFailedError
from codeintel.ingestion import filework
from codeintel.ingestion.change_tracker import ChangeTracker
from codeintel.orchestration import stepio
from codeintel.orchestration.context import PipelineContext
from codeintel.orchestration.executors import ProcessExecutor
from codeintel.orchestration.selection import descendants
from codeintel.orchestration.steps import PIPELINE_DEPS, run_pipeline
from codeintel.storage.catalog import CATALOG, Table
from codeintel.storage.lock import file_lock

# steps that own a per-file table (rows replaced file by file): they must reprocess only stale files
PER_FILE_STEPS = tuple(sorted({spec.owner for spec in CATALOG.values() if spec.per_file}))

SHOP = {
    "src/shop/__init__.py": "",
    "src/shop/cart.py": '''
        """A cart."""
        import os


        class Cart:
            def __init__(self):
                self.items = []

            @property
            def total(self):
                return sum(self.items)

            @total.setter
            def total(self, value):
                self.items = [value]

            async def checkout(self):
                def audit(x):
                    return x

                return audit(self.total)


        def make_cart():
            def inner():
                def deepest():
                    return Cart()

                return deepest()

            return inner()
        ''',
    "src/shop/util.py": """
        def helper(a, b: int = 1) -> int:
            if a:
                return a + b
            return b
        """,
    "tests/test_cart.py": """
        def test_cart():
            assert True
        """,
}

SHOP_FUNCTIONS = Counter(
    {
        ("shop.cart.Cart.__init__", "method"): 1,
        ("shop.cart.Cart.total", "method"): 2,  # the property and its setter
        ("shop.cart.Cart.checkout", "method"): 1,
        ("shop.cart.Cart.checkout.audit", "function"): 1,
        ("shop.cart.make_cart", "function"): 1,
        ("shop.cart.make_cart.inner", "function"): 1,
        ("shop.cart.make_cart.inner.deepest", "function"): 1,
        ("shop.util.helper", "function"): 1,
        ("tests.test_cart.test_cart", "function"): 1,
    }
)


def _files_processed(indexer: Any, run_id: str) -> dict[str, int]:
    runs = indexer.step_runs(run_id)
    return {step: runs[step]["files_processed"] for step in PER_FILE_STEPS if step in runs}


def _count(indexer: Any, table: str, where: str = "", params: list[Any] | None = None) -> int:
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
    return int(indexer.query(sql, params)[0][0])


@pytest.fixture
def shop(indexed_copy: Any) -> Any:
    """A private copy of the SHOP repo, indexed once."""
    return indexed_copy("shop", SHOP)


# ------------------------------------------------------------------------------ key tables


def test_full_run_fills_the_key_tables(shop: Any) -> None:
    assert _count(shop, Table.FILES) == 4
    assert {m for (m,) in shop.query("SELECT module FROM core.modules")} == {
        "shop",
        "shop.cart",
        "shop.util",
        "tests.test_cart",
    }
    assert _count(shop, Table.AST_NODES) == 4 + 1 + sum(SHOP_FUNCTIONS.values())
    assert _count(shop, Table.GOIDS) == _count(shop, Table.AST_NODES)
    assert _count(shop, Table.FUNCTION_METRICS) == sum(SHOP_FUNCTIONS.values())
    assert _count(shop, Table.PARSE_ERRORS) == 0
    assert shop.query("SELECT status FROM meta.pipeline_runs") == [("succeeded",)]
    (run_id,) = shop.query("SELECT run_id FROM meta.pipeline_runs")[0]
    statuses = {step: row["status"] for step, row in shop.step_runs(run_id).items()}
    assert set(statuses) == set(PIPELINE_DEPS)
    assert {"succeeded", "skipped"} >= set(statuses.values())
    assert all(
        statuses[s] == "succeeded" for s in ("repo_scan", "ast_ingest", "goids", "function_metrics", "docs_views")
    )


def test_function_summary_has_one_row_per_function_and_method_including_nested(shop: Any) -> None:
    rows = shop.query("SELECT full_name, kind, goid, loc, cyclomatic FROM docs.v_function_summary")
    assert Counter((name, kind) for name, kind, *_ in rows) == SHOP_FUNCTIONS
    assert len({goid for _, _, goid, _, _ in rows}) == len(rows)
    assert all(loc is not None and cc is not None for *_, loc, cc in rows), "metrics must join every function"


def test_module_summary_counts_definitions_per_module(shop: Any) -> None:
    rows = dict(shop.query("SELECT module, functions + methods FROM docs.v_module_summary"))
    assert rows == {"shop": 0, "shop.cart": 8, "shop.util": 1, "tests.test_cart": 1}


# ------------------------------------------------------------------------- incremental rules


def test_editing_one_file_reprocesses_only_that_file_in_every_per_file_step(shop: Any) -> None:
    unchanged = shop.run()
    assert _files_processed(shop, unchanged.run_id) == dict.fromkeys(PER_FILE_STEPS, 0)
    shop.git.apply({"src/shop/util.py": "def helper(a):\n    return a\n\n\ndef extra():\n    return 2\n"})
    edited = shop.run()
    assert _files_processed(shop, edited.run_id) == dict.fromkeys(PER_FILE_STEPS, 1)
    assert shop.query("SELECT count(*) FROM docs.v_function_summary WHERE full_name = 'shop.util.extra'") == [(1,)]
    mismatched = shop.query(
        "SELECT s.step, s.path FROM meta.step_file_state s JOIN core.file_state f USING (path) WHERE s.hash <> f.hash"
    )
    assert mismatched == [], "each step records the hash it processed"
    assert _count(shop, "meta.step_file_state", "path = 'src/shop/util.py'") == len(PER_FILE_STEPS)


def test_deleting_a_file_removes_its_rows_from_every_table_with_a_path(shop: Any) -> None:
    gone = "src/shop/util.py"
    path_tables = {
        name: spec.path_column
        for name, spec in CATALOG.items()
        if spec.path_column in spec.column_names and name != Table.CHANGE_STATE
    }
    before = {t: _count(shop, t, f"{col} = ?", [gone]) for t, col in path_tables.items()}
    assert all(
        before[t] > 0 for t in (Table.FILES, Table.MODULES, Table.AST_NODES, Table.GOIDS, Table.FUNCTION_METRICS)
    )
    shop.git.apply({gone: None})
    run = shop.run()
    after = {t: _count(shop, t, f"{col} = ?", [gone]) for t, col in path_tables.items()}
    assert after == dict.fromkeys(path_tables, 0)
    assert shop.query("SELECT change_kind FROM core.change_state WHERE path = ?", [gone]) == [("deleted",)]
    assert shop.query("SELECT count(*) FROM docs.v_function_summary WHERE path = ?", [gone]) == [(0,)]
    assert {
        s: r["files_deleted"] for s, r in shop.step_runs(run.run_id).items() if s in PER_FILE_STEPS
    } == dict.fromkeys(PER_FILE_STEPS, 1)


def test_a_file_whose_import_name_alone_changes_is_processed_again_by_every_step(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    """Deleting `lib/__init__.py` renames `lib.pkg.a` to `pkg.a` without touching `a.py`: every
    step must redo the renamed files (their module rows, module GOIDs, imports and calls name the
    old module), and the tables equal those of a first run on the new layout."""
    files = {
        "lib/__init__.py": "",
        "lib/pkg/__init__.py": "",
        "lib/pkg/a.py": "from pkg.b import g\n\n\ndef f():\n    return g()\n",
        "lib/pkg/b.py": "def g():\n    return 1\n",
        "lib/pkg/tools/c.py": "def h():\n    return 2\n",  # a namespace package inside `pkg`
    }
    repo = make_repo(tmp_path, files)
    again = make_indexer(repo, tmp_path / "again" / "c.duckdb")
    again.run()
    assert again.query("SELECT module FROM core.modules WHERE path = 'lib/pkg/a.py'") == [("lib.pkg.a",)]
    repo.apply({"lib/__init__.py": None})
    run = again.run()
    renamed = ("lib/pkg/__init__.py", "lib/pkg/a.py", "lib/pkg/b.py", "lib/pkg/tools/c.py")
    assert again.query("SELECT path FROM core.change_state WHERE change_kind = 'modified' ORDER BY 1") == [
        (p,) for p in renamed
    ]
    assert _files_processed(again, run.run_id) == dict.fromkeys(PER_FILE_STEPS, len(renamed))
    first = make_indexer(repo, tmp_path / "first" / "c.duckdb")
    first.run()
    data_tables = sorted(name for name in CATALOG if not name.startswith("meta.") and name != Table.CHANGE_STATE)
    for table in data_tables:
        assert again.table_rows(table, without=("run_id",)) == first.table_rows(table, without=("run_id",)), table
    modules = dict(again.query("SELECT path, module FROM core.modules"))
    assert modules["lib/pkg/a.py"] == "pkg.a" and modules["lib/pkg/tools/c.py"] == "pkg.tools.c"
    resolved = again.query("SELECT c.callee_goid = g.goid FROM graph.call_edges c, core.goids g WHERE g.qualname = 'g'")
    assert resolved == [(True,)], "the call to the renamed module's function resolves"


# --------------------------------------------------------------------------- catching up


def _edit_util(shop: Any) -> None:
    shop.git.apply({"src/shop/util.py": "def helper(a):\n    return a\n\n\ndef added_later(x):\n    return x\n"})


def _has_added_later(shop: Any, table: str) -> bool:
    return _count(shop, table, "qualname = 'added_later'") == 1


def test_a_cold_run_parses_each_file_once_for_all_per_file_steps(
    tmp_path: Path, make_repo: Any, make_indexer: Any, parse_counts: Counter[str]
) -> None:
    parsed = parse_counts
    indexer = make_indexer(make_repo(tmp_path, SHOP))
    run = indexer.run()
    assert set(parsed.values()) == {1} and len(parsed) == len(SHOP)
    assert _files_processed(indexer, run.run_id) == dict.fromkeys(PER_FILE_STEPS, len(SHOP))


def test_an_edit_is_parsed_once_and_a_step_run_alone_parses_for_itself(shop: Any, parse_counts: Counter[str]) -> None:
    parsed = parse_counts
    _edit_util(shop)
    first = shop.run(["ast_ingest", "function_metrics"])
    assert parsed == {"src/shop/util.py": 1}  # ast_ingest extracted the metrics too
    assert _files_processed(shop, first.run_id) == {"ast_ingest": 1, "goids": 1, "function_metrics": 1}
    assert _has_added_later(shop, Table.FUNCTION_METRICS)
    shop.run(["call_graph"])  # its facts were not extracted ahead (not planned): it parses the file
    assert parsed == {"src/shop/util.py": 2}


def test_an_excluded_step_catches_up_on_the_next_run(shop: Any) -> None:
    _edit_util(shop)
    second = shop.run(exclude=["function_metrics"])
    assert "function_metrics" not in shop.step_runs(second.run_id)
    assert not _has_added_later(shop, Table.FUNCTION_METRICS)
    assert _has_added_later(shop, Table.GOIDS)
    third = shop.run()
    assert _files_processed(shop, third.run_id) == {**dict.fromkeys(PER_FILE_STEPS, 0), "function_metrics": 1}
    assert _has_added_later(shop, Table.FUNCTION_METRICS)


def test_a_step_that_failed_on_a_busy_lock_catches_up_on_the_next_run(shop: Any) -> None:
    """A real failure: the DB lock is held by someone else while function_metrics starts."""
    _edit_util(shop)
    blocker = contextlib.ExitStack()
    lock_path = shop.config().storage.lock_path

    def hold_lock_during_metrics(step: str, what: str, result: Any) -> None:
        if step == "function_metrics" and what == "start":
            blocker.enter_context(file_lock(lock_path, exclusive=True, timeout_s=5, holder="test blocker"))
        elif step == "function_metrics":
            blocker.close()

    published_before = Path(shop.db).read_bytes()
    with pytest.raises(StepFailedError) as failure:
        shop.run(on_event=hold_lock_during_metrics, lock_timeout=0.3)
    blocker.close()
    assert failure.value.failed == ("function_metrics",)
    assert set(failure.value.not_run) == descendants("function_metrics", PIPELINE_DEPS)
    assert "test blocker" in str(failure.value) and "state:modified" in str(failure.value)
    assert failure.value.published and Path(shop.db).read_bytes() != published_before
    # published anyway: this run's data where steps succeeded, the last good output elsewhere
    assert _has_added_later(shop, Table.GOIDS) and not _has_added_later(shop, Table.FUNCTION_METRICS)
    stale = dict(shop.query("SELECT step, stale FROM meta.step_status"))
    assert {s for s, flag in stale.items() if flag} == {"function_metrics", *descendants("function_metrics", PIPELINE_DEPS)}
    third = shop.run()
    assert _files_processed(shop, third.run_id) == {**dict.fromkeys(PER_FILE_STEPS, 0), "function_metrics": 1}
    assert _has_added_later(shop, Table.FUNCTION_METRICS)
    assert not any(flag for _, flag in shop.query("SELECT step, stale FROM meta.step_status"))


def test_an_extractor_that_raised_on_a_file_costs_that_file_one_row(shop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Injected failure in the per-file work: the step succeeds, the file is a row and counts as done."""

    def boom(*args: Any) -> None:
        raise RuntimeError("injected metrics failure")

    _edit_util(shop)
    monkeypatch.setitem(filework.EXTRACTORS, "metrics", boom)
    second = shop.run(["function_metrics"])
    monkeypatch.undo()
    assert second.ok and shop.step_runs(second.run_id)["function_metrics"]["status"] == "succeeded"
    rows = shop.query("SELECT path, step, kind, error_type, message FROM core.parse_errors WHERE step <> 'ast_ingest'")
    assert rows == [("src/shop/util.py", "function_metrics", "extractor_error", "RuntimeError", "injected metrics failure")]
    assert _count(shop, Table.FUNCTION_METRICS, "path = 'src/shop/util.py'") == 0
    assert _count(shop, Table.FUNCTION_METRICS, "path = 'src/shop/cart.py'") > 0  # the other files keep theirs
    third = shop.run(["function_metrics"])  # not retried until the file (or the step's code) changes
    assert _files_processed(shop, third.run_id) == {"ast_ingest": 0, "goids": 0, "function_metrics": 0}
    monkeypatch.setattr(stepio, "extractor_code_digest", lambda: "a fixed extractor")
    fixed = shop.run(["function_metrics"])  # new extraction code: the file it failed on is tried again
    assert _files_processed(shop, fixed.run_id) == {"ast_ingest": 0, "goids": 0, "function_metrics": 1}
    assert _has_added_later(shop, Table.FUNCTION_METRICS)
    assert shop.query("SELECT count(*) FROM core.parse_errors WHERE step <> 'ast_ingest'") == [(0,)]
    monkeypatch.undo()
    shop.git.apply({"src/shop/util.py": "def helper(a):\n    return a\n\n\ndef added_later(x):\n    return x + 1\n"})
    fourth = shop.run(["function_metrics"])
    assert _files_processed(shop, fourth.run_id)["function_metrics"] == 1
    assert _has_added_later(shop, Table.FUNCTION_METRICS)
    assert shop.query("SELECT count(*) FROM core.parse_errors WHERE step <> 'ast_ingest'") == [(0,)]


def test_a_step_failing_inside_its_transaction_keeps_its_previous_rows(
    shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected failure after the step deleted and inserted rows, before it committed."""
    record = ChangeTracker.record

    def record_or_fail(writer: Any, step: str, *args: Any) -> None:
        if step == "function_metrics":
            raise RuntimeError("injected failure before commit")
        record(writer, step, *args)

    old_rows = shop.work_query("SELECT qualname, loc FROM analytics.function_metrics WHERE path = 'src/shop/util.py'")
    _edit_util(shop)
    monkeypatch.setattr(ChangeTracker, "record", staticmethod(record_or_fail))
    with pytest.raises(StepFailedError):
        shop.run(["function_metrics"])
    monkeypatch.undo()
    assert (
        shop.work_query("SELECT qualname, loc FROM analytics.function_metrics WHERE path = 'src/shop/util.py'")
        == old_rows
    )
    third = shop.run(["function_metrics"])
    assert _files_processed(shop, third.run_id) == {"ast_ingest": 0, "goids": 0, "function_metrics": 1}
    assert _has_added_later(shop, Table.FUNCTION_METRICS)


# ------------------------------------------------------------------------------ GOID stability

STABLE_A = """
    def keep():
        return 1


    class K:
        def m(self):
            return 2


    def edited():
        return 3
    """


def _goids(indexer: Any, path: str) -> dict[tuple[str, str], tuple[str, int]]:
    rows = indexer.query("SELECT kind, qualname, goid, start_line FROM core.goids WHERE path = ?", [path])
    return {(kind, qualname): (goid, line) for kind, qualname, goid, line in rows}


def test_goids_of_untouched_functions_survive_a_commit_that_edits_elsewhere_in_the_file(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    repo = make_repo(tmp_path, {"a.py": STABLE_A})
    indexer = make_indexer(repo)
    indexer.run()
    before = _goids(indexer, "a.py")
    edited = "def brand_new():\n    return 0\n\n\n" + textwrap.dedent(STABLE_A).replace(
        "return 3", "x = 3\n    return x * 2"
    )
    repo.apply({"a.py": edited})
    indexer.run()
    after = _goids(indexer, "a.py")
    for key in [("module", "a"), ("function", "keep"), ("class", "K"), ("method", "K.m"), ("function", "edited")]:
        assert after[key][0] == before[key][0], f"{key} changed id after an edit elsewhere"
    assert after[("function", "keep")][1] != before[("function", "keep")][1], "lines moved, so the file was reprocessed"
    assert ("function", "brand_new") in after
    commits = [c for (c,) in indexer.query("SELECT commit FROM meta.pipeline_runs ORDER BY started_at")]
    assert commits == [repo.head() if i else commits[0] for i in range(2)] and len(set(commits)) == 2


def test_renaming_a_function_gives_a_new_goid_and_drops_the_old_rows(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    repo = make_repo(tmp_path, {"a.py": STABLE_A})
    indexer = make_indexer(repo)
    indexer.run(["function_metrics"])
    old = _goids(indexer, "a.py")[("function", "keep")][0]
    repo.apply({"a.py": textwrap.dedent(STABLE_A).replace("def keep", "def kept")})
    indexer.run(["function_metrics"])
    after = _goids(indexer, "a.py")
    assert ("function", "keep") not in after
    assert after[("function", "kept")][0] != old
    assert indexer.query("SELECT count(*) FROM analytics.function_metrics WHERE goid = ?", [old]) == [(0,)]


# ------------------------------------------------------------------------------ process pool


def _big_file(i: int) -> str:
    """About 25 KB, mostly docstring: big enough for the pool, cheap to analyse."""
    doc = "".join(f"    Line {k} of the long description of generated module {i}.\n" for k in range(400))
    body = "".join(
        f"def f{i}_{j}(a, b: int = {j}) -> int:\n    if a > b:\n        return f{i}_{j - 1}(a - b, b) if {j} else a\n    return a\n\n\n"
        for j in range(10)
    )
    return f'"""Generated module {i}.\n\n{doc}"""\n\n\nclass C{i}:\n    def m(self):\n        return {i}\n\n\n' + body


def test_a_process_pool_run_gives_the_same_tables_as_a_serial_run(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    files = {f"gen/m{i:02d}.py": _big_file(i) for i in range(17)}
    files["gen/bad.py"] = "def broken(:\n"
    repo = make_repo(tmp_path, files)
    assert sum(len(s) for s in files.values()) > 400_000, "must be big enough for the pool to be used"
    serial = make_indexer(repo, tmp_path / "serial" / "c.duckdb")
    serial.run()
    pooled = make_indexer(repo, tmp_path / "pooled" / "c.duckdb")
    with PipelineContext(pooled.config(executor="process", workers=2)) as ctx:
        run_pipeline(ctx, ["function_metrics"])  # (call_graph stops its workers before solving)
        assert isinstance(ctx.executor, ProcessExecutor)
        assert ctx.executor._pool is not None, "the pool was never used"
    pooled.run(executor="process", workers=2)  # the rest of the pipeline
    data_tables = sorted(name for name in CATALOG if not name.startswith("meta.") and name != Table.CHANGE_STATE)
    for table in data_tables:
        assert pooled.table_rows(table, without=("run_id",)) == serial.table_rows(table, without=("run_id",)), table
    assert _count(serial, Table.PARSE_ERRORS) == 1
    assert _count(serial, Table.FUNCTION_METRICS) == 17 * 11


# ------------------------------------------------------------------------------ real corpus


@pytest.mark.slow
def test_the_pipeline_indexes_a_clone_of_flask(tmp_path: Path, shared_dir: Path, make_indexer: Any) -> None:
    bundle = shared_dir / "corpora" / "flask.bundle"
    if not bundle.is_file():
        pytest.skip(f"{bundle} not found")
    subprocess.run(["git", "clone", "-q", str(bundle), str(tmp_path / "flask")], check=True, capture_output=True)
    indexer = make_indexer(tmp_path / "flask")
    run = indexer.run()
    assert run.ok and run.published
    for table in (Table.FILES, Table.MODULES, Table.AST_NODES, Table.GOIDS, Table.FUNCTION_METRICS):
        assert _count(indexer, table) > 0, table
    modules = {m for (m,) in indexer.query("SELECT module FROM core.modules")}
    assert {"flask", "flask.app", "flask.json"} <= modules
    assert not [m for m in modules if m.startswith("src.")]
    assert indexer.query("SELECT kind FROM docs.v_function_summary WHERE full_name = 'flask.app.Flask.run'") == [
        ("method",)
    ]
    assert _count(indexer, "docs.v_function_summary") == _count(indexer, Table.GOIDS, "kind IN ('function', 'method')")
