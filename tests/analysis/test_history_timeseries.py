"""Metrics over time (`analytics.history_timeseries`), on real git repositories whose commits
are dated a week apart: the sample grid, a function growing more complex, a rename and a file
move between samples (today's GOID throughout), a function gone since, Python 2 and other
unparsable old versions, a sample where nothing changed (nothing parsed), and incremental runs
(new weeks, a commit within the week, a rewritten last commit) equal to a cold run."""

from __future__ import annotations

import ast
import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from codeintel.analysis.definitions import iter_definitions
from codeintel.analysis.history_timeseries import (
    TimeseriesSettings,
    choose_samples,
    first_parent_chain,
    sample_times,
)
from codeintel.ingestion import history_timeseries as ingest_timeseries
from tests.conftest import git, write_files

Indexer = MakeIndexer = Any

WEEK = timedelta(days=7)
DAY0 = datetime(2024, 1, 3, 12, tzinfo=UTC)  # a Wednesday; the grid's Mondays follow each commit week
TABLES = {
    "analytics.history_timeseries": "sample_time, scope, path, qualname, ordinal",
    "history.timeseries_samples": "sample_time",
    "history.timeseries_files": "sample_time, path",
    "history.timeseries_blobs": "blob, kind, qualname, ordinal",
}


def monday(week: int) -> datetime:
    """The grid point after the commits of `week` (Monday 00:00 UTC)."""
    return datetime(2024, 1, 8, tzinfo=UTC) + week * WEEK


class DatedRepo:
    """A real git repository whose commits carry the dates we give them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, when: datetime | None = None) -> str:
        return git(self.root, *args, date=(when or DAY0).isoformat())

    def commit(self, week: float, files: dict[str, str | bytes | None], message: str = "change") -> str:
        """Write `files` (str dedented; None deletes) and commit them `week` weeks after DAY0."""
        write_files(self.root, files)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, when=DAY0 + week * WEEK)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> DatedRepo:
    return DatedRepo(tmp_path / "repo")


def export(indexer: Indexer, *, views: bool = False, **settings: Any) -> dict[str, str]:
    """Run the timeseries (and the views, with what they need); the notes of the run, by step."""
    run = indexer.run(["history_timeseries", *(["docs_views"] if views else [])], **settings)
    assert run.ok, run.failed
    return {s: r["note"] for s, r in indexer.step_runs(run.run_id).items()}


def rows(indexer: Indexer, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in indexer.work_query(sql, params)]


def digests(indexer: Indexer) -> dict[str, str]:
    return {
        table: hashlib.blake2b(repr(indexer.work_query(f"SELECT * FROM {table} ORDER BY {order}")).encode()).hexdigest()
        for table, order in TABLES.items()
    }


def mul(conditions: int) -> str:
    checks = "".join(f"    if b == {i}:\n        return {i}\n" for i in range(conditions))
    return f"def mul(a, b):\n{checks}    return a * b\n"


# ------------------------------------------------------------------------------------ the grid


def test_samples_sit_on_mondays_and_do_not_move_with_head() -> None:
    settings = TimeseriesSettings(interval_days=7, samples=3)
    wednesday = datetime(2024, 1, 24, 15, tzinfo=UTC)
    times = sample_times(wednesday, settings)
    assert times == [monday(0), monday(1), monday(2)]
    assert all(t.weekday() == 0 and t.hour == 0 for t in times)
    assert sample_times(wednesday + timedelta(days=3), settings) == times  # a commit later in the week
    assert sample_times(wednesday + WEEK, settings) == [monday(1), monday(2), monday(3)]  # a new week: one more
    assert sample_times(monday(2), settings)[-1] == monday(2)  # a commit at the grid point itself


def test_each_grid_point_takes_the_first_parent_commit_that_stood_then() -> None:
    at = [DAY0 + k * WEEK for k in range(4)]
    # HEAD first; c2 was committed after c3 (a rebase): c3 never stood alone on Monday 2
    chain = [("c4", at[3] + timedelta(days=1)), ("c3", at[2] - timedelta(days=1)), ("c2", at[2]), ("c1", at[0])]
    samples = choose_samples(chain, [monday(-1), monday(0), monday(1), monday(2)])
    assert [(s.time, s.sha) for s in samples] == [(monday(0), "c1"), (monday(1), "c1"), (monday(2), "c3")]
    commits = {"c2": ("c1", at[1]), "c1": ("c0", at[0])}  # c0 not known: a shallow clone's boundary
    assert first_parent_chain("c2", commits) == [("c2", at[1]), ("c1", at[0])]


TRICKY = """
import x
if x:
    def f(): pass
elif x > 1:
    def f(): pass
else:
    @decorate
    @decorate.more(1)
    def f(): pass
try:
    def g(): pass
except ValueError:
    def h(): pass
else:
    def g(): pass
finally:
    def k(): pass
try:
    pass
except* TypeError:
    def h(): pass
match x:
    case 1:
        def m(): pass
    case _:
        class M:
            def m(self): pass
class C:
    @property
    def p(self): return 1
    @p.setter
    def p(self, v): pass
    def outer(self):
        def inner(): pass
        class Local:
            async def meth(self): pass
        for i in x:
            def inner(): pass
        return inner
async def a():
    with y:
        def w(): pass
    while x:
        def w(): pass
"""


def test_functions_are_named_as_the_stored_definitions_name_them() -> None:
    tree = ast.parse(TRICKY)
    expected = [
        (d.qualname, d.ordinal, str(d.kind), d.start_line, d.end_line)
        for d in iter_definitions(tree, "m", "m.py", len(TRICKY.splitlines()))
        if d.kind in ("function", "method")
    ]
    assert [f[:5] for f in ingest_timeseries.iter_functions(tree)] == expected
    assert len(expected) == 19


# ------------------------------------------------------------------------------------ metrics over time


def test_a_function_growing_more_complex_shows_it_sample_by_sample(
    repo: DatedRepo, make_indexer: MakeIndexer
) -> None:
    repo.commit(0, {"pkg/__init__.py": "", "pkg/calc.py": mul(0)})
    for week in (1, 2, 3):
        repo.commit(week, {"pkg/calc.py": mul(week)})
    repo.commit(4, {"pkg/other.py": "def f(x):\n    return x\n"})
    repo.commit(5, {"pkg/other.py": "def f(x):\n    return -x\n"})  # HEAD: the sample before it is week 4's
    indexer = make_indexer(repo.root)
    export(indexer, views=True)
    trend = rows(
        indexer,
        "SELECT sample_time, cyclomatic, cyclomatic_change, loc, param_count, changed FROM docs.v_function_trend "
        "WHERE full_name = 'pkg.calc.mul' ORDER BY sample_time",
    )
    assert trend == [
        (monday(0), 1, None, 2, 2, True),
        (monday(1), 2, 1, 4, 2, True),
        (monday(2), 3, 1, 6, 2, True),
        (monday(3), 4, 1, 8, 2, True),
        (monday(4), 4, 0, 8, 2, False),
    ]
    module = rows(
        indexer,
        "SELECT sample_time, functions, cyclomatic_total, cyclomatic_max, loc FROM docs.v_module_trend "
        "WHERE module = 'pkg.calc' ORDER BY sample_time",
    )
    assert [m[1:4] for m in module] == [(1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 4, 4), (1, 4, 4)]
    shas = rows(indexer, "SELECT sample_time, sha, committed_at FROM history.timeseries_samples ORDER BY 1")
    log = repo.git("log", "--first-parent", "--format=%H", "main").split()[::-1]
    assert [s[1] for s in shas] == log[:-1]  # HEAD came after the last Monday
    # the same numbers as analytics.function_metrics gives HEAD's version
    assert rows(indexer, "SELECT cyclomatic, loc, sloc, max_nesting_depth, param_count FROM analytics.function_metrics "
                "WHERE qualname = 'mul'") == rows(
        indexer, f"SELECT cyclomatic, loc, sloc, max_nesting_depth, param_count FROM analytics.history_timeseries "
        f"WHERE qualname = 'mul' AND sample_time = '{monday(4).isoformat()}'",
    )  # fmt: skip


def test_the_layouts_memory_limit_ends_with_its_step(repo: DatedRepo, make_indexer: MakeIndexer) -> None:
    """The layout's DuckDB memory limit is the instance's, which every later step of the process
    shares: it is reset when the step's writer ends (it was left at 256 MB for the rest of the run)."""
    repo.commit(0, {"pkg/__init__.py": "", "pkg/calc.py": mul(1)})
    repo.commit(1, {"pkg/calc.py": mul(2)})
    indexer = make_indexer(repo.root)
    indexer.run(["repo_scan"])
    (before,) = indexer.work_query("SELECT current_setting('memory_limit') AS m")
    notes = export(indexer)
    assert notes["history_timeseries"].startswith("1 samples listed"), notes
    assert indexer.work_query("SELECT current_setting('memory_limit') AS m") == [before]
    assert before["m"] != "244.1 MiB"


def test_a_directory_below_the_repositorys_top_is_sampled_alone_named_from_it(
    repo: DatedRepo, make_indexer: MakeIndexer
) -> None:
    """`codeintel export repo/pkg`: each sample lists the directory's files (from its subtree
    of the commit's tree), named as the index names them, so every function joins its GOID."""
    repo.commit(0, {"pkg/__init__.py": "", "pkg/calc.py": mul(0), "tools/build.py": mul(5)})
    repo.commit(1, {"pkg/calc.py": mul(1), "tools/build.py": mul(6)})
    repo.commit(2, {"tools/build.py": mul(7)})
    indexer = make_indexer(repo.root / "pkg")
    export(indexer)
    series = rows(
        indexer,
        "SELECT sample_time, path, cyclomatic, goid = (SELECT goid FROM core.goids WHERE qualname = 'mul') "
        "FROM analytics.history_timeseries WHERE scope = 'function' ORDER BY 1",
    )
    assert series == [(monday(0), "calc.py", 1, True), (monday(1), "calc.py", 2, True)]
    files = rows(indexer, "SELECT DISTINCT path FROM history.timeseries_files ORDER BY 1")
    assert files == [("__init__.py",), ("calc.py",)]


def test_a_rename_and_a_file_move_between_samples_keep_todays_goid(repo: DatedRepo, make_indexer: MakeIndexer) -> None:
    body = "    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    repo.commit(0, {"pkg/__init__.py": "", "pkg/a.py": f"def summed(xs):\n{body}", "pkg/keep.py": "X = 1\n"})
    repo.commit(1, {"pkg/a.py": f"def total_of(xs):\n{body}"})
    repo.git("mv", "pkg/a.py", "pkg/b.py")
    repo.commit(2, {})
    repo.commit(3, {"pkg/keep.py": "X = 2\n"})
    repo.commit(4, {"pkg/keep.py": "X = 3\n"})
    indexer = make_indexer(repo.root)
    export(indexer, views=True)
    trend = rows(
        indexer,
        "SELECT sample_time, path_then, qualname_then, cyclomatic FROM docs.v_function_trend "
        "WHERE full_name = 'pkg.b.total_of' ORDER BY sample_time",
    )
    assert trend == [
        (monday(0), "pkg/a.py", "summed", 2),
        (monday(1), "pkg/a.py", "total_of", 2),
        (monday(2), "pkg/b.py", "total_of", 2),
        (monday(3), "pkg/b.py", "total_of", 2),
    ]
    module = rows(indexer, "SELECT path_then, module_then FROM docs.v_module_trend WHERE module = 'pkg.b' ORDER BY sample_time")
    assert module == [("pkg/a.py", "pkg.a"), ("pkg/a.py", "pkg.a"), ("pkg/b.py", "pkg.b"), ("pkg/b.py", "pkg.b")]
    goids = rows(indexer, "SELECT DISTINCT goid FROM analytics.history_timeseries WHERE scope = 'function'")
    assert goids == rows(indexer, "SELECT goid FROM core.goids WHERE qualname = 'total_of'")


def test_a_function_gone_since_keeps_its_lineage_and_no_goid(repo: DatedRepo, make_indexer: MakeIndexer) -> None:
    repo.commit(0, {"pkg/__init__.py": "", "pkg/m.py": "def kept():\n    return 1\n\n\ndef dropped(x):\n    return x\n"})
    repo.commit(1, {"pkg/m.py": "def kept():\n    return 1\n"})
    repo.commit(2, {"pkg/m.py": "def kept():\n    return 2\n"})
    indexer = make_indexer(repo.root)
    export(indexer, views=True)
    gone = rows(
        indexer,
        "SELECT sample_time, goid, lineage_id IS NOT NULL, param_count FROM analytics.history_timeseries "
        "WHERE qualname = 'dropped'",
    )
    assert gone == [(monday(0), None, True, 1)]
    assert rows(indexer, "SELECT functions FROM docs.v_module_trend WHERE module = 'pkg.m' ORDER BY sample_time") == [
        (2,), (1,),
    ]  # fmt: skip
    assert rows(indexer, "SELECT count(*) FROM docs.v_function_trend WHERE qualname_then = 'dropped'") == [(0,)]


PY2 = """
def greet(name):
    if name:
        print "hello", name
    else:
        print "nobody"

class Old:
    def method(self, a, b):
        return a
"""


def test_python2_code_in_an_old_sample_has_tree_sitter_spans_and_no_complexity(
    repo: DatedRepo, make_indexer: MakeIndexer
) -> None:
    repo.commit(0, {"pkg/__init__.py": "", "pkg/legacy.py": PY2})
    repo.commit(1, {"pkg/legacy.py": PY2.replace('print "hello", name', 'print("hello", name)').replace(
        'print "nobody"', 'print("nobody")')})  # fmt: skip
    repo.commit(2, {"pkg/__init__.py": "VERSION = 2\n"})
    indexer = make_indexer(repo.root)
    export(indexer, views=True)
    found = rows(
        indexer,
        "SELECT sample_time, qualname, kind, parser, loc, cyclomatic, param_count FROM analytics.history_timeseries "
        "WHERE scope = 'function' ORDER BY sample_time, qualname",
    )
    assert found == [
        (monday(0), "Old.method", "method", "tree-sitter", 2, None, None),
        (monday(0), "greet", "function", "tree-sitter", 5, None, None),
        (monday(1), "Old.method", "method", "ast", 2, 1, 2),
        (monday(1), "greet", "function", "ast", 5, 2, 1),
    ]
    module = rows(
        indexer,
        "SELECT parser, problem LIKE 'syntax:%', functions, cyclomatic_total FROM analytics.history_timeseries "
        "WHERE scope = 'module' AND path = 'pkg/legacy.py' ORDER BY sample_time",
    )
    assert module == [("tree-sitter", True, 2, None), ("ast", None, 2, 3)]
    # today's GOID through the lineage, even for the version only tree-sitter could read
    assert rows(indexer, "SELECT count(DISTINCT goid) FROM docs.v_function_trend WHERE full_name = 'pkg.legacy.greet'") == [(1,)]


def test_undecodable_binary_and_too_large_versions_are_rows_not_failures(
    repo: DatedRepo, make_indexer: MakeIndexer
) -> None:
    repo.commit(0, {
        "pkg/__init__.py": "",
        "pkg/latin.py": b"def caf\xe9():\n    return '\xe9'\n",
        "pkg/blob.py": b"\x00\x01\x02def f():\n    pass\n",
        "pkg/big.py": "def big():\n    return 1\n" + "# padding\n" * 200,
    })  # fmt: skip
    repo.commit(1, {"pkg/latin.py": "def cafe():\n    return 'e'\n"})
    repo.commit(2, {"pkg/__init__.py": "VERSION = 2\n"})
    indexer = make_indexer(repo.root)
    notes = export(indexer, max_file_size=1000)
    assert notes["history_timeseries"].endswith("blobs parsed")
    modules = dict(
        rows(
            indexer,
            "SELECT path, parser || ' / ' || split_part(coalesce(problem, ''), ':', 1) FROM analytics.history_timeseries "
            f"WHERE scope = 'module' AND sample_time = '{monday(0).isoformat()}'",
        )
    )
    assert modules == {
        "pkg/__init__.py": "ast / ",
        "pkg/latin.py": "tree-sitter / encoding",
        "pkg/blob.py": None,  # binary: no parser, no functions
        "pkg/big.py": None,  # over max_file_size
    }
    problems = rows(indexer, "SELECT path, problem FROM analytics.history_timeseries WHERE parser IS NULL ORDER BY path")
    assert [(p, m.split(":")[0]) for p, m in problems] == [("pkg/big.py", "too_large"), ("pkg/big.py", "too_large"),
                                                          ("pkg/blob.py", "binary"), ("pkg/blob.py", "binary")]
    functions = rows(indexer, "SELECT sample_time, qualname, parser FROM analytics.history_timeseries "
                              "WHERE path = 'pkg/latin.py' AND scope = 'function' ORDER BY 1")  # fmt: skip
    assert [f[1:] for f in functions] == [("caf", "tree-sitter"), ("cafe", "ast")]  # the name up to the bad byte


# ------------------------------------------------------------------------------------ parse only what changed


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Paths the timeseries parsed (a spy on its parser; the serial executor runs it here)."""
    counts: Counter[str] = Counter()
    real = ingest_timeseries.parse_bytes

    def counting(path: str, data: bytes, max_size: int, digest: str | None = None) -> Any:
        counts[path] += 1
        return real(path, data, max_size, digest)

    monkeypatch.setattr(ingest_timeseries, "parse_bytes", counting)
    return counts


def test_a_sample_parses_only_the_files_changed_since_the_sample_before(
    repo: DatedRepo, make_indexer: MakeIndexer, parsed: Counter[str]
) -> None:
    repo.commit(0, {"pkg/__init__.py": "", "pkg/a.py": mul(1), "pkg/b.py": "def g():\n    return 2\n"})
    repo.commit(2, {"pkg/a.py": mul(2)})  # nothing in week 1: its sample is week 0's commit
    repo.commit(3, {})
    indexer = make_indexer(repo.root)
    notes = export(indexer)
    assert parsed == {"pkg/__init__.py": 1, "pkg/a.py": 2, "pkg/b.py": 1}
    assert notes["history_timeseries"] == "3 samples listed, 4 blobs parsed"
    same = rows(
        indexer,
        "SELECT sample_time, qualname, loc, cyclomatic, changed FROM analytics.history_timeseries "
        "WHERE scope = 'function' ORDER BY qualname, sample_time",
    )
    assert same == [
        (monday(0), "g", 2, 1, True), (monday(1), "g", 2, 1, False), (monday(2), "g", 2, 1, False),
        (monday(0), "mul", 4, 2, True), (monday(1), "mul", 4, 2, False), (monday(2), "mul", 6, 3, True),
    ]  # fmt: skip
    parsed.clear()
    repo.commit(4, {"pkg/b.py": "def g():\n    return 3\n"})
    assert export(indexer)["history_timeseries"] == "1 samples listed, 0 blobs parsed"  # week 3: the same files
    assert not parsed
    repo.commit(5, {})
    assert export(indexer)["history_timeseries"] == "1 samples listed, 1 blobs parsed"  # week 4: b.py changed
    assert parsed == {"pkg/b.py": 1}
    parsed.clear()
    assert export(indexer)["history_timeseries"] == "up to date"
    assert not parsed


def test_incremental_runs_equal_a_cold_run(repo: DatedRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    repo.commit(0, {"pkg/__init__.py": "", "pkg/calc.py": mul(0), "pkg/util.py": "def u():\n    return 0\n"})
    repo.commit(1, {"pkg/calc.py": mul(1)})
    indexer = make_indexer(repo.root)
    export(indexer)
    steps: list[tuple[float, dict[str, str | None]]] = [
        (1.5, {"pkg/util.py": "def u():\n    return 1\n"}),  # within the week: no new sample
        (3, {"pkg/calc.py": mul(3).replace("def mul", "def product")}),  # two new weeks, a rename
        (4, {"pkg/util.py": None, "pkg/new.py": "def n(a, b, c):\n    return a\n"}),
    ]
    for week, files in steps:
        repo.commit(week, files)
        export(indexer)
    # rewrite the last two commits (a force-push): the sample of the one sampled is computed again
    repo.git("reset", "-q", "--hard", "HEAD~2")
    repo.commit(3.1, {"pkg/calc.py": mul(4).replace("def mul", "def product")})
    repo.commit(4.2, {"pkg/other.py": "def o():\n    if True:\n        return 1\n"})
    notes = export(indexer)
    assert notes["history_timeseries"].startswith("1 samples listed")
    cold = make_indexer(repo.root, db=tmp_path / "cold" / "codeintel.duckdb")
    export(cold)
    assert digests(indexer) == digests(cold)
    assert export(indexer, full=True)["history_timeseries"] == "4 samples listed, 6 blobs parsed"  # --full: none reused
    assert digests(indexer) == digests(cold)
    assert rows(indexer, "SELECT count(*) FROM history.timeseries_samples") == [(4,)]
    names = "SELECT DISTINCT t.qualname FROM analytics.history_timeseries t JOIN core.goids g USING (goid) "
    assert rows(indexer, names + "WHERE g.qualname = 'product' ORDER BY 1") == [("mul",), ("product",)]


def test_other_sample_settings_lay_the_samples_out_again(repo: DatedRepo, make_indexer: MakeIndexer) -> None:
    repo.commit(0, {"pkg/__init__.py": "", "pkg/calc.py": mul(0)})
    repo.commit(1, {"pkg/calc.py": mul(1)})
    repo.commit(2, {"pkg/calc.py": mul(2)})
    indexer = make_indexer(repo.root)
    export(indexer)
    assert rows(indexer, "SELECT count(*) FROM history.timeseries_samples") == [(2,)]
    export(indexer, history_timeseries_weeks=1)
    assert rows(indexer, "SELECT sample_time FROM history.timeseries_samples") == [(monday(1),)]
    notes = export(indexer, history_timeseries_interval_days=1, history_timeseries_weeks=10)
    times = [r[0] for r in rows(indexer, "SELECT sample_time FROM history.timeseries_samples ORDER BY 1")]
    assert times == [DAY0 + 2 * WEEK - timedelta(days=9, hours=12) + timedelta(days=k) for k in range(10)]
    # week 0's version of calc.py went with its sample (weeks=1): it is the one measured again
    assert notes["history_timeseries"].endswith(" 1 blobs parsed")


def test_other_naming_rules_list_the_samples_again(
    repo: DatedRepo, make_indexer: MakeIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The samples' module names are the scan's (`scan.module_name`): when its rules change, the
    stored samples are listed again (their blobs, measured already, are not parsed again)."""
    repo.commit(0, {"pkg/__init__.py": "", "pkg/calc.py": mul(0)})
    repo.commit(1, {"pkg/calc.py": mul(1)})
    repo.commit(2, {"pkg/calc.py": mul(2)})
    indexer = make_indexer(repo.root)
    first = export(indexer)["history_timeseries"]
    assert first.startswith("2 samples listed") and not first.endswith(" 0 blobs parsed")
    assert export(indexer)["history_timeseries"] == "up to date"
    monkeypatch.setattr(ingest_timeseries, "NAMING_RULES", "other rules")
    assert export(indexer)["history_timeseries"] == "2 samples listed, 0 blobs parsed"
