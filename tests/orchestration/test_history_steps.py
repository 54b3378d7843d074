"""The history steps in the pipeline: where they sit in the DAG, what a run fills (tables,
views, summary columns), what a re-run does (nothing without new commits; only the analytics
when their settings change; a cold walk when the walk's settings change), and a repository
without git."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeintel.analysis.goids import make_goid
from codeintel.orchestration.context import PipelineContext
from codeintel.orchestration.selection import ancestors
from codeintel.orchestration.steps import PIPELINE_DEPS, run_pipeline
from codeintel.serving.worktree import blobs_at, worktree_state
from tests.ingestion.test_git_history import digests

HISTORY_ANALYTICS = ("function_history", "hotspots", "change_coupling", "ownership", "history_timeseries")

FILES = {
    "pkg/__init__.py": "",
    "pkg/calc.py": """
        def add(a, b):
            return a + b


        def mul(a, b):
            if a == 0:
                return 0
            return a * b
    """,
}


def _edits(repo: Any, n: int) -> None:
    for i in range(n):
        repo.apply(
            {
                "pkg/calc.py": FILES["pkg/calc.py"].replace("return a + b", f"return a + b + {i}").replace(
                    "return a * b", f"return a * b * {i + 1}"
                )
            },
            f"edit {i}",
        )


def _notes(indexer: Any, run_id: str) -> dict[str, str]:
    return {s: r["note"] for s, r in indexer.step_runs(run_id).items()}


def test_the_history_walk_needs_no_code_analysis_and_the_analytics_need_only_what_they_read() -> None:
    assert PIPELINE_DEPS["git_history"] == ()
    assert ancestors("function_history", PIPELINE_DEPS) == {"git_history"}
    assert ancestors("hotspots", PIPELINE_DEPS) >= {"git_history", "function_metrics"}
    assert "call_graph" not in ancestors("hotspots", PIPELINE_DEPS)
    assert ancestors("history_timeseries", PIPELINE_DEPS) == {"git_history", "goids", "ast_ingest", "repo_scan"}


def test_an_export_fills_the_history_tables_views_and_summary_columns(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    repo = make_repo(tmp_path, FILES)
    _edits(repo, 6)
    indexer = make_indexer(repo)
    run = indexer.run()
    assert run.ok, run.failed
    changes = indexer.query("SELECT full_name, count(*) FROM docs.v_function_changes GROUP BY 1 ORDER BY 1")
    assert changes == [("pkg.calc.add", 7), ("pkg.calc.mul", 7)]
    summary = indexer.query(
        "SELECT qualname, history_commits, churn, author_count, last_changed_at IS NOT NULL, age_days > 0 "
        "FROM docs.v_function_summary ORDER BY qualname"
    )
    assert summary == [("add", 7, 14, 1, True, True), ("mul", 7, 16, 1, True, True)]
    module = indexer.query("SELECT history_commits, author_count FROM docs.v_module_summary WHERE path = 'pkg/calc.py'")
    assert module == [(7, 1)]
    spots = indexer.query("SELECT scope, name, rank FROM docs.v_hotspots ORDER BY scope, rank")
    assert spots[0] == ("file", "pkg.calc", 1) and ("function", "pkg.calc.mul", 1) in spots
    coupled = indexer.query("SELECT name_a, name_b, degree FROM docs.v_change_coupling WHERE scope = 'function'")
    assert [(sorted(c[:2]), c[2]) for c in coupled] == [(["pkg.calc.add", "pkg.calc.mul"], 1.0)]
    owners = indexer.query("SELECT main_author, author_count FROM analytics.ownership WHERE scope = 'file'")
    assert owners == [("CodeIntel Tests", 1)]


def test_a_directory_below_the_repositorys_top_is_indexed_with_its_own_history(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    """`codeintel export repo/pkg` (a package of a monorepo): git names files from the top, the
    index from pkg; the history and the checkout's changes are named as the code is, so the
    history joins the code's GOIDs, and files outside are left out (the samples over time:
    tests/analysis/test_history_timeseries.py)."""
    repo = make_repo(tmp_path, {**FILES, "tools/build.py": "def build():\n    return 1\n"})
    _edits(repo, 3)
    repo.apply({"tools/build.py": "def build():\n    return 2\n", "setup.py": "x = 1\n"}, "outside only")
    root = repo.root / "pkg"
    indexer = make_indexer(root)
    run = indexer.run()
    assert run.ok, run.failed
    goids = set(indexer.query("SELECT goid FROM core.goids WHERE kind <> 'module'"))
    assert set(indexer.query("SELECT goid FROM history.head_defs")) == goids == {
        (make_goid("pkg", "calc.py", "function", name),) for name in ("add", "mul")
    }
    assert {p for (p,) in indexer.query("SELECT DISTINCT path FROM history.file_changes")} == {"calc.py", "__init__.py"}
    assert indexer.query("SELECT qualname, commits FROM analytics.function_history ORDER BY 1") == [("add", 4), ("mul", 4)]
    (commit,) = indexer.query("SELECT sha FROM history.commits ORDER BY generation DESC LIMIT 1")[0]
    (root / "calc.py").write_text((root / "calc.py").read_text() + "\n# edited\n")
    assert worktree_state(root, commit).changed == ["calc.py"]
    assert blobs_at(root, commit, ["calc.py"]).keys() == {"calc.py"}
    # new commits, walked alone: the tables of a cold walk
    repo.apply({"pkg/calc.py": FILES["pkg/calc.py"].replace("a + b", "b + a"), "tools/build.py": "x = 3\n"}, "both")
    run = indexer.run(["git_history"])
    assert run.ok and indexer.step_runs(run.run_id)["git_history"]["note"].startswith("incremental"), run.failed
    cold = make_indexer(root, tmp_path / "cold" / "c.duckdb")
    assert cold.run(["git_history"]).ok
    assert digests(indexer) == digests(cold)


def test_the_analytics_are_of_the_files_the_scan_takes_the_facts_of_every_file(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    """`exclude = ["tests/*"]`: the code analysis leaves the tests out, and so do HEAD's files
    and definitions of the history (what every analytics table is keyed by); the facts keep
    them (a commit's changes are git's)."""
    test = "def test_add():\n    assert add(1, 2) == 3\n"
    repo = make_repo(tmp_path, {**FILES, "tests/test_calc.py": test})
    for i in range(6):
        edit = FILES["pkg/calc.py"].replace("a + b", f"a + b + {i}")
        repo.apply({"pkg/calc.py": edit, "tests/test_calc.py": test + f"# {i}\n"}, f"edit {i}")
    indexer = make_indexer(repo)

    def analytics_paths() -> set[str]:
        found = {p for t in ("function_history", "file_history", "ownership", "hotspots")
                 for (p,) in indexer.query(f"SELECT DISTINCT path FROM analytics.{t}")}  # fmt: skip
        found |= {e for (e,) in indexer.query("SELECT entity_a FROM analytics.change_coupling UNION SELECT entity_b FROM analytics.change_coupling")}
        return {p.partition("::")[0] for p in found}

    assert indexer.run().ok
    assert "tests/test_calc.py" in analytics_paths()
    with PipelineContext(indexer.config(exclude=["tests/*"])) as ctx:
        assert run_pipeline(ctx).ok
    assert analytics_paths() == {"pkg/__init__.py", "pkg/calc.py"}
    goids = set(indexer.query("SELECT goid FROM core.goids"))
    assert set(indexer.query("SELECT goid FROM analytics.function_history")) <= goids
    assert indexer.query("SELECT count(*) FROM history.file_changes WHERE path = 'tests/test_calc.py'") == [(7,)]


def test_a_function_of_a_file_no_python_parses_at_head_is_named_by_its_module_in_its_changes(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    """Python 2 code at HEAD: core has no definitions for the file, the history walk (tree-sitter)
    has; its changes carry the full name all other names have, not the bare qualified name."""
    legacy = "def old(x):\n    print 'x', x\n"
    repo = make_repo(
        tmp_path, {**FILES, "pkg/legacy.py": legacy}, commits=({"pkg/legacy.py": legacy.replace("'x'", "'y'")},)
    )
    indexer = make_indexer(repo)
    assert indexer.run().ok
    assert indexer.query("SELECT count(*) FROM core.goids WHERE path = 'pkg/legacy.py' AND kind <> 'module'") == [(0,)]
    changes = indexer.query(
        "SELECT full_name, kind, event FROM docs.v_function_changes WHERE path_then = 'pkg/legacy.py' ORDER BY time, event"
    )
    assert changes == [("pkg.legacy.old", "function", "created"), ("pkg.legacy.old", "function", "modified")]


def test_a_release_that_changes_the_views_remakes_them_in_a_database_it_did_not_make(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    indexer = make_indexer(make_repo(tmp_path, FILES))
    assert indexer.run().ok
    with indexer.gateway.writer("test") as w:  # as an older release left it: other SQL, its version
        w.execute("CREATE OR REPLACE VIEW docs.v_function_changes AS SELECT 1 AS made_by_an_older_release")
        w.execute("UPDATE meta.step_state SET code_version = '1' WHERE step = 'docs_views'")
    run = indexer.run()
    assert run.ok
    assert not _notes(indexer, run.run_id)["docs_views"].startswith("up to date")
    columns = [r[0] for r in indexer.query("DESCRIBE docs.v_function_changes")]
    assert columns[:2] == ["goid", "full_name"]


def test_no_new_commit_is_nothing_to_do(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    repo = make_repo(tmp_path, FILES)
    _edits(repo, 2)
    indexer = make_indexer(repo)
    assert indexer.run().ok
    notes = _notes(indexer, indexer.run().run_id)
    assert notes["git_history"] == "no new commit"
    assert all(notes[s] == "up to date" for s in HISTORY_ANALYTICS)
    _edits(repo, 1)
    notes = _notes(indexer, indexer.run().run_id)
    assert notes["git_history"].startswith("incremental: 1 commits walked")
    assert all(notes[s] != "up to date" for s in HISTORY_ANALYTICS)


def test_other_analytics_settings_recompute_the_analytics_not_the_walk(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    repo = make_repo(tmp_path, FILES)
    _edits(repo, 5)
    indexer = make_indexer(repo)
    assert indexer.run().ok
    run = indexer.run(history_coupling_min_revisions=50, history_hotspot_window_days=30)
    notes = _notes(indexer, run.run_id)
    assert notes["git_history"] == "no new commit"
    assert notes["change_coupling"].startswith("settings") and notes["hotspots"].startswith("settings")
    assert indexer.query("SELECT count(*) FROM analytics.change_coupling") == [(0,)]
    assert indexer.query("SELECT DISTINCT window_days FROM analytics.hotspots") == [(30,)]


def test_other_walk_settings_walk_the_history_again(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    repo = make_repo(tmp_path, FILES)
    _edits(repo, 2)
    indexer = make_indexer(repo)
    assert indexer.run(["git_history"]).ok
    run = indexer.run(["git_history"], history_huge_commit_files=1)
    assert _notes(indexer, run.run_id)["git_history"].startswith("cold")
    assert indexer.query("SELECT count(*) FROM history.commits WHERE is_huge") == [(1,)]  # the initial commit: 2 files


def test_outside_git_the_walk_is_skipped_and_the_rest_runs(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    indexer = make_indexer(make_repo(tmp_path, FILES, use_git=False))
    run = indexer.run()
    assert run.ok, run.failed
    steps = indexer.step_runs(run.run_id)
    assert steps["git_history"]["status"] == "skipped"
    assert indexer.query("SELECT count(*) FROM docs.v_function_summary WHERE history_commits IS NULL") == [(2,)]


def test_the_local_runner_starts_a_cold_walk_after_the_scan_and_collects_it_in_its_turn(
    tmp_path: Path, make_repo: Any, make_indexer: Any, monkeypatch: Any
) -> None:
    """Steps run one by one locally: the walk (a process of its own) works beside the code
    analysis; its tables equal those of a walk done in the step's own turn."""
    from codeintel.ingestion.history import walk

    events: list[str] = []
    real_start = walk.start_cold_walk

    def recording_start(*args: Any) -> Any:
        events.append("walk started")
        return real_start(*args)

    monkeypatch.setattr(walk, "start_cold_walk", recording_start)
    repo = make_repo(tmp_path, FILES)
    _edits(repo, 3)
    ahead = make_indexer(repo, tmp_path / "ahead" / "a.duckdb")
    run = ahead.run(on_event=lambda name, what, _: events.append(f"{name} {what}"))
    assert run.ok, run.failed
    assert events.index("walk started") == events.index("repo_scan done") + 1
    assert events.index("walk started") < events.index("ast_ingest start") < events.index("git_history start")

    # the same walk in the step's own turn (nothing started ahead: git_history alone, then the rest)
    monkeypatch.setattr(walk, "start_cold_walk", real_start)
    alone = make_indexer(repo, tmp_path / "alone" / "a.duckdb")
    assert alone.run(["git_history"]).ok
    assert alone.run().ok
    for table in ("history.commits", "history.function_changes", "history.lineages", "analytics.function_history"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert ahead.query(sql) == alone.query(sql), table
