"""Git history keyed by GOID, on real repositories with scripted histories.

Each test builds a history with real git in tmp_path, runs the `git_history` step (and the
steps it feeds) in-process and checks what `history.*` holds: each function's lineage
survives file renames, function renames, moves and class splits; reformats on the blame
ignore list keep identity; merge resolutions are the merge's changes; a force-push drops
what is gone and equals a cold walk; a shallow clone is a truncated history; Python 2 and
undecodable old versions still have their definitions.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from codeintel.ingestion.history import store as history_store

GIT = ("-c", "user.name=CodeIntel Tests", "-c", "user.email=tests@codeintel.invalid", "-c", "commit.gpgsign=false")

MakeRepo = MakeIndexer = Indexer = Any


def git(repo: Path, *args: str) -> str:
    """git in `repo` with the test identity, no user or system config."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *GIT, *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {done.stderr}")
    return done.stdout

HISTORY_STEPS = ["git_history"]


def run_history(indexer: Indexer, **config: Any) -> None:
    run = indexer.run(HISTORY_STEPS, **config)
    assert run.ok, run.failed


def changes_of(indexer: Indexer, qualname: str, path: str | None = None) -> list[dict[str, Any]]:
    """The history of today's function `qualname`, oldest first."""
    where = "h.qualname = ?" + (" AND h.path = ?" if path else "")
    return indexer.work_query(
        f"""SELECT fc.*, c.generation, c.subject FROM history.function_changes fc
            JOIN history.head_defs h USING (lineage_id) JOIN history.commits c USING (sha)
            WHERE {where} ORDER BY c.generation""",
        [qualname, path] if path else [qualname],
    )


def subjects(rows: list[dict[str, Any]], *, with_lines: bool = True) -> list[str]:
    return [r["subject"] for r in rows if not with_lines or r["lines_added"] + r["lines_deleted"] > 0 or r["event"] == "created"]


def table_digest(indexer: Indexer, table: str, order: str) -> str:
    rows = indexer.work_query(f"SELECT * FROM {table} ORDER BY {order}")
    return hashlib.blake2b(repr(rows).encode(), digest_size=16).hexdigest()


USER_TABLES = {
    "history.commits": "sha",
    "history.file_changes": "sha, path",
    "history.function_changes": "sha, lineage_id",
    "history.head_files": "path",
    "history.head_defs": "goid",
    "history.lineages": "lineage_id",
    "history.versions": "path, blob",
    "history.merge_lineages": "sha, lineage_id",
    "history.discarded_changes": "sha, lineage_id",
}


def digests(indexer: Indexer) -> dict[str, str]:
    return {table: table_digest(indexer, table, order) for table, order in USER_TABLES.items()}


BASE = {
    "pkg/__init__.py": "",
    "pkg/core.py": '''
        import os


        def helper(x):
            """Help."""
            y = x + 1
            return y


        class Engine:
            def start(self):
                return helper(1)

            def stop(self):
                return None
    ''',
}


# ------------------------------------------------------------------------------------ identity


def test_a_function_keeps_its_history_through_a_file_rename(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 2")}, "edit helper")
    git(repo.root, "mv", "pkg/core.py", "pkg/engine.py")
    repo.commit("rename the file")
    repo.apply({"pkg/engine.py": (repo.root / "pkg/engine.py").read_text().replace("return y", "return y * 2")}, "edit again")
    indexer = make_indexer(repo)
    run_history(indexer)
    rows = changes_of(indexer, "helper", "pkg/engine.py")
    assert subjects(rows) == ["initial", "edit helper", "edit again"]
    moved = [r for r in rows if r["subject"] == "rename the file"]
    assert [(r["event"], r["old_path"], r["path"]) for r in moved] == [("moved", "pkg/core.py", "pkg/engine.py")]
    assert rows[0]["event"] == "created" and rows[0]["path"] == "pkg/core.py"


def test_a_renamed_function_keeps_its_lineage(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 3")}, "edit")
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 3").replace("def helper", "def assist").replace("return helper(1)", "return assist(1)")}, "rename it")
    indexer = make_indexer(repo)
    run_history(indexer)
    rows = changes_of(indexer, "assist")
    assert subjects(rows) == ["initial", "edit", "rename it"]
    assert [(r["event"], r["old_qualname"]) for r in rows if r["subject"] == "rename it"] == [("renamed", "helper")]
    lineage = indexer.work_query("SELECT * FROM history.lineages WHERE qualname = 'assist'")
    assert lineage[0]["first_qualname"] == "helper" and lineage[0]["renames"] == 1
    assert not indexer.work_query("SELECT * FROM history.lineages WHERE deleted_sha IS NOT NULL AND first_qualname = 'helper'")


def test_a_function_moved_to_another_file_in_one_commit_keeps_its_lineage(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 5")}, "edit helper")
    moved_out = textwrap.dedent(BASE["pkg/core.py"].replace("y = x + 1", "y = x + 5"))
    start, end = moved_out.index("def helper"), moved_out.index("class Engine")
    helper_text = moved_out[start:end]
    repo.apply(
        {
            "pkg/core.py": moved_out[:start].replace("import os", "import os\nfrom pkg.util import helper") + moved_out[end:],
            "pkg/util.py": "\n\n" + helper_text,
        },
        "move helper to util",
    )
    indexer = make_indexer(repo)
    run_history(indexer)
    rows = changes_of(indexer, "helper", "pkg/util.py")
    assert subjects(rows, with_lines=False) == ["initial", "edit helper", "move helper to util"]
    move = rows[-1]
    assert (move["event"], move["old_path"], move["lines_added"], move["lines_deleted"]) == ("moved", "pkg/core.py", 0, 0)


def test_definitions_deleted_and_added_again_in_the_next_commit_keep_their_lineage(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """A package split in two commits (out with the old, in with the new): each definition the
    parent deleted and its child adds again with the same body continues its lineage."""
    repo = make_repo(tmp_path, BASE)
    edited = BASE["pkg/core.py"].replace("y = x + 1", "y = x + 5")
    repo.apply({"pkg/core.py": edited}, "edit helper")
    repo.apply({"pkg/core.py": None}, "out with the old")
    repo.apply({"pkg/engine/__init__.py": "", "pkg/engine/core.py": edited.replace("return None", "return False")}, "in with the new")
    indexer = make_indexer(repo)
    run_history(indexer)
    rows = changes_of(indexer, "helper", "pkg/engine/core.py")
    assert subjects(rows) == ["initial", "edit helper", "out with the old"]
    readded = rows[-1]
    assert (readded["subject"], readded["event"], readded["old_path"]) == ("in with the new", "moved", "pkg/core.py")
    stop = changes_of(indexer, "Engine.stop", "pkg/engine/core.py")
    assert [(r["subject"], r["event"]) for r in stop] == [
        ("initial", "created"), ("out with the old", "deleted"), ("in with the new", "moved"),
    ]  # fmt: skip
    assert (stop[-1]["lines_added"], stop[-1]["lines_deleted"]) == (1, 1)


def test_a_definition_added_again_by_a_new_commit_continues_a_stored_lineage(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """The deletion was walked by an earlier run: the incremental walk reads it back and gives
    the tables of a cold walk."""
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/core.py": None}, "out with the old")
    indexer = make_indexer(repo)
    run_history(indexer)
    repo.apply({"pkg/new_core.py": BASE["pkg/core.py"]}, "in with the new")
    run_history(indexer)
    assert subjects(changes_of(indexer, "helper", "pkg/new_core.py"), with_lines=False) == [
        "initial", "out with the old", "in with the new",
    ]  # fmt: skip
    cold = make_indexer(repo, tmp_path / "cold" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)


def test_a_class_split_across_files_keeps_each_methods_history(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    big = '''
        class App:
            """The application."""

            def route(self, rule):
                """Register a rule."""
                self.rules.append(rule)
                return rule

            def run(self, host):
                """Serve."""
                serve(self, host)
                return host

            def wsgi(self, environ):
                """Answer."""
                return self.dispatch(environ)
    '''
    repo = make_repo(tmp_path, {"app.py": big})
    repo.apply({"app.py": big.replace("self.rules.append(rule)", "self.rules.insert(0, rule)")}, "edit route")
    repo.apply(
        {
            "app.py": '''
                from sansio import Scaffold


                class App(Scaffold):
                    """The application."""

                    def wsgi(self, environ):
                        """Answer."""
                        return self.dispatch(environ)
            ''',
            "sansio.py": '''
                class Scaffold:
                    """What does no I/O."""

                    def route(self, rule):
                        """Register a rule."""
                        self.rules.insert(0, rule)
                        return rule

                    def run(self, host):
                        """Serve."""
                        serve(self, host)
                        return host
            ''',
        },
        "split the class",
    )
    indexer = make_indexer(repo)
    run_history(indexer)
    route = changes_of(indexer, "Scaffold.route", "sansio.py")
    assert subjects(route, with_lines=False) == ["initial", "edit route", "split the class"]
    assert (route[-1]["event"], route[-1]["old_path"], route[-1]["old_qualname"]) == ("moved", "app.py", "App.route")
    assert subjects(changes_of(indexer, "Scaffold.run"), with_lines=False) == ["initial", "split the class"]
    assert subjects(changes_of(indexer, "App.wsgi"))[0] == "initial"


def test_a_method_left_as_a_stub_where_its_body_moved_to_a_subclass_goes_with_its_body(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """A base class keeps an abstract stub of a method whose body moved to a subclass in
    another file (a sans-I/O split): the method's history is the subclass's method's, and the
    stub is new.  Where no other place has the body, a method rewritten whole under its name
    stays the same method; so does one whose body is a line (a line rewritten is an edit, and
    says too little to follow)."""
    base = '''
        class Flask:
            def environment(self, options):
                """Make the environment."""
                options = dict(options)
                if "autoescape" not in options:
                    options["autoescape"] = self.select
                return Environment(self, **options)

            def other(self):
                return 1

            def name(self):
                return "flask"
    '''
    repo = make_repo(tmp_path, {"sansio.py": base})
    repo.apply({"sansio.py": base.replace("self.select", "self.select_autoescape")}, "edit environment")
    repo.apply(
        {
            "sansio.py": '''
                class App:
                    def environment(self, options):
                        raise NotImplementedError()

                    def other(self):
                        return 1

                    def name(self):
                        return "app"
            ''',
            "app.py": '''
                from sansio import App


                class Flask(App):
                    def environment(self, options):
                        """Make the environment."""
                        options = dict(options)
                        if "autoescape" not in options:
                            options["autoescape"] = self.select_autoescape
                        return Environment(self, **options)

                    def name(self):
                        return "flask"
            ''',
        },
        "split sansio",
    )
    repo.apply(
        {
            "sansio.py": '''
                class App:
                    def environment(self, options):
                        raise NotImplementedError()

                    def other(self):
                        total = 0
                        for i in range(3):
                            total += i
                        return total

                    def name(self):
                        return "app"
            '''
        },
        "rewrite other",
    )
    indexer = make_indexer(repo)
    run_history(indexer)
    moved = changes_of(indexer, "Flask.environment", "app.py")
    assert subjects(moved, with_lines=False) == ["initial", "edit environment", "split sansio"]
    assert (moved[-1]["event"], moved[-1]["old_path"]) == ("moved", "sansio.py")  # (the same name: no old name)
    stub = changes_of(indexer, "App.environment", "sansio.py")
    assert [(r["subject"], r["event"]) for r in stub] == [("split sansio", "created")]
    assert subjects(changes_of(indexer, "App.other")) == ["initial", "rewrite other"]
    assert subjects(changes_of(indexer, "App.name")) == ["initial", "split sansio"]
    assert [(r["subject"], r["event"]) for r in changes_of(indexer, "Flask.name", "app.py")] == [("split sansio", "created")]


# ------------------------------------------------------------------------------------ commit flags


def test_a_reformat_on_the_ignore_list_keeps_identity_and_is_left_out_of_churn(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, BASE)
    reformatted = BASE["pkg/core.py"].replace("def helper(x):", "def helper(x, ):").replace("return y", "return (y)")
    sha = repo.apply({"pkg/core.py": reformatted}, "reformat")
    repo.apply({".git-blame-ignore-revs": f"# formatting\n{sha}  # black\n"}, "ignore the reformat")
    indexer = make_indexer(repo)
    run = indexer.run(["function_history", "ownership"])
    assert run.ok, run.failed
    flags = indexer.work_query("SELECT subject, is_ignored FROM history.commits ORDER BY generation")
    assert [f["is_ignored"] for f in flags] == [False, True, False]
    rows = changes_of(indexer, "helper")
    assert subjects(rows) == ["initial", "reformat"]  # identity kept: the reformat is a change of it
    history = indexer.work_query("SELECT * FROM analytics.function_history WHERE qualname = 'helper'")[0]
    assert history["commits"] == 1 and history["lines_deleted"] == 0  # but it is not churn


def test_huge_commits_and_bots_are_flagged(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.py": "x = 1\n"})
    repo.apply({f"gen/m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(5)}, "many files")
    git(repo.root, "-c", "user.name=dependabot[bot]", "commit", "-q", "--allow-empty", "-m", "bump")
    indexer = make_indexer(repo)
    run_history(indexer, history_huge_commit_files=3)
    flags = indexer.work_query("SELECT subject, is_huge, is_bot, py_files FROM history.commits ORDER BY generation")
    assert [(f["subject"], f["is_huge"], f["is_bot"]) for f in flags] == [
        ("initial", False, False), ("many files", True, False), ("bump", False, True)
    ]


# ------------------------------------------------------------------------------------ merges


def test_a_merge_with_a_conflict_resolution_is_a_change_of_the_function_it_wrote(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, BASE)
    git(repo.root, "checkout", "-q", "-b", "side")
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 10")}, "side edit")
    git(repo.root, "checkout", "-q", "main")
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 20").replace("return None", "return 0")}, "main edit")
    merged = subprocess.run(["git", "merge", "-q", "side"], cwd=repo.root, capture_output=True, check=False)
    assert merged.returncode != 0  # a conflict
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 30").replace("return None", "return 0")}, "merge side")
    indexer = make_indexer(repo)
    run_history(indexer)
    rows = changes_of(indexer, "helper")
    assert sorted(subjects(rows)) == sorted(["initial", "side edit", "main edit", "merge side"])
    resolution = next(r for r in rows if r["subject"] == "merge side")
    assert resolution["lines_added"] == 1
    assert subjects(changes_of(indexer, "Engine.stop")) == ["initial", "main edit"]  # merged cleanly: no change of the merge


SPACED = """
import os


def helper(x):
    \"\"\"Help.\"\"\"
    y = x + 1
    z = y * 2
    w = z - 3
    return y


class Engine:
    def start(self):
        a = 1
        b = 2
        return a + b

    def stop(self):
        c = 3
        d = 4
        return c - d
"""


def test_changes_that_reach_head_through_a_merges_second_parent_are_the_functions_history(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """A side branch renames a function, edits it, and adds another; the main line edits the
    same file elsewhere; the merge (no conflict) keeps both: the side's commits are the history
    of today's functions, and the merge itself changed none of them."""
    repo = make_repo(tmp_path, {"pkg/__init__.py": "", "pkg/core.py": SPACED})
    git(repo.root, "checkout", "-q", "-b", "side")
    renamed = SPACED.replace("def helper(x):", "def assist(x):")
    repo.apply({"pkg/core.py": renamed}, "side rename")
    edited = renamed.replace("return y", "return w")
    repo.apply({"pkg/core.py": edited}, "side edit")
    extra = edited + "\n\ndef added_on_side(a):\n    b = a * 2\n    return b\n"
    repo.apply({"pkg/core.py": extra}, "side add")
    repo.apply({"pkg/core.py": extra.replace("b = a * 2", "b = a * 3")}, "side edit added")
    git(repo.root, "checkout", "-q", "main")
    repo.apply({"pkg/core.py": SPACED.replace("b = 2", "b = 5")}, "main edit start")
    git(repo.root, "merge", "-q", "--no-edit", "side")
    indexer = make_indexer(repo)
    run_history(indexer)
    assist = changes_of(indexer, "assist")
    assert subjects(assist) == ["initial", "side rename", "side edit"]
    assert [r["subject"] for r in assist if r["event"] == "renamed"] == ["side rename"]
    assert subjects(changes_of(indexer, "added_on_side")) == ["side add", "side edit added"]
    assert subjects(changes_of(indexer, "Engine.start")) == ["initial", "main edit start"]
    merges = indexer.work_query("SELECT sha FROM history.commits WHERE is_merge")
    assert len(merges) == 1
    assert indexer.work_query("SELECT count(*) AS n FROM history.file_changes WHERE sha = ?", [merges[0]["sha"]])[0]["n"] == 0
    assert not indexer.work_query("SELECT * FROM history.function_changes WHERE sha = ?", [merges[0]["sha"]])


def git_log_l(repo: Path, path: str, qualname: str) -> set[str]:
    """The subjects of the commits `git log -L` lists for the span today's `qualname` has (an oracle)."""
    tree = ast.parse((repo / path).read_text())
    node: ast.AST = tree
    for name in qualname.split("."):
        node = next(n for n in ast.iter_child_nodes(node) if getattr(n, "name", None) == name)
    assert isinstance(node, ast.FunctionDef | ast.ClassDef)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    out = git(repo, "log", "-L", f"{start},{node.end_lineno}:{path}", "--format=%x00%s")
    return {line[1:] for line in out.split("\n") if line.startswith("\0")}


def reached_subjects(indexer: Indexer, qualname: str) -> set[str]:
    """The subjects of the commits that changed today's `qualname` (lines, or its creation) as
    the per-function views give them: `docs.v_function_changes`, and the commit count of
    `analytics.function_history` agrees."""
    rows = indexer.work_query(
        """SELECT DISTINCT c.subject FROM history.function_changes fc
           ANTI JOIN history.discarded_changes USING (sha, lineage_id)
           JOIN history.head_defs h USING (lineage_id) JOIN history.commits c USING (sha)
           WHERE h.qualname = ? AND (fc.lines_added + fc.lines_deleted > 0 OR fc.event = 'created')""",
        [qualname],
    )
    return {r["subject"] for r in rows}


def test_changes_a_merge_left_out_are_not_the_functions_history_as_git_log_l_has_it(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """A side branch edits `helper` (the main line too: the merge keeps the main line's), edits
    `Engine.stop` (the main line too: the merge keeps the side's), and edits `Engine.start` then
    takes the edit back: of those, only the side's edit of `stop` reaches HEAD; `git log -L`
    lists the same.  The changes left
    out stay facts.  Later a second branch from the first one's tip edits `start`, and merges:
    the old edit and its reversal are now on the way to HEAD's `start`, in an incremental run
    as in a cold one."""
    repo = make_repo(tmp_path, {"pkg/__init__.py": "", "pkg/core.py": SPACED})
    git(repo.root, "checkout", "-q", "-b", "side")
    side = SPACED.replace("z = y * 2", "z = y * 5")
    repo.apply({"pkg/core.py": side}, "side edit helper")
    side = side.replace("c = 3", "c = 30")
    repo.apply({"pkg/core.py": side}, "side edit stop")
    repo.apply({"pkg/core.py": side.replace("a = 1", "a = 100")}, "side try start")
    repo.apply({"pkg/core.py": side}, "side take back start")
    git(repo.root, "checkout", "-q", "main")
    main = SPACED.replace("z = y * 2", "z = y * 7")
    repo.apply({"pkg/core.py": main}, "main edit helper")
    repo.apply({"pkg/core.py": main.replace("d = 4", "d = 40")}, "main edit stop")
    merged = subprocess.run(["git", "merge", "-q", "side"], cwd=repo.root, capture_output=True, check=False)
    assert merged.returncode != 0  # conflicts: the main line's helper is kept, the side's stop
    main = main.replace("c = 3", "c = 30")
    repo.apply({"pkg/core.py": main}, "merge side")
    indexer = make_indexer(repo)
    run_history(indexer)

    expected = {
        "helper": {"initial", "main edit helper"},
        "Engine.stop": {"initial", "side edit stop"},
        "Engine.start": {"initial"},
    }
    for qualname, subjects_ in expected.items():
        assert git_log_l(repo.root, "pkg/core.py", qualname) == subjects_, qualname
        assert reached_subjects(indexer, qualname) == subjects_, qualname
    # facts all the same; the per-function analytics count what reached HEAD
    assert {"side edit helper"} <= set(subjects(changes_of(indexer, "helper")))
    assert {"side try start", "side take back start"} <= set(subjects(changes_of(indexer, "Engine.start")))
    assert indexer.run(["function_history", "docs_views"]).ok
    counted = {r["qualname"]: r["commits"] for r in indexer.work_query("SELECT qualname, commits FROM analytics.function_history")}
    assert counted["helper"] == 2 and counted["Engine.start"] == 1 and counted["Engine.stop"] == 2
    viewed = indexer.work_query("SELECT count(*) AS n FROM docs.v_function_changes WHERE full_name LIKE '%Engine.start'")
    assert viewed[0]["n"] == 1

    git(repo.root, "checkout", "-q", "-b", "again", "side")
    repo.apply({"pkg/core.py": side.replace("a = 1", "a = 2")}, "again edit start")
    git(repo.root, "checkout", "-q", "main")
    git(repo.root, "merge", "-q", "--no-edit", "again")  # (no conflict: the side was merged)
    assert (repo.root / "pkg/core.py").read_text() == main.replace("a = 1", "a = 2")
    run_history(indexer)
    start = {"initial", "side try start", "side take back start", "again edit start"}
    assert git_log_l(repo.root, "pkg/core.py", "Engine.start") == start
    assert reached_subjects(indexer, "Engine.start") == start
    assert reached_subjects(indexer, "helper") == expected["helper"]
    cold = make_indexer(repo, tmp_path / "cold" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)


def test_a_head_that_takes_the_walked_head_in_as_a_second_parent_gives_the_tables_of_a_cold_walk(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """main is walked (its edit of `helper` reaches HEAD); then the side branch, which edits
    `helper` too, merges main keeping its own `helper` and becomes HEAD: main's edit is now left
    out, though no new merge lists `helper` as another parent's.  HEAD's first-parent line does
    not go down to the HEAD walked last: the changes left out are computed over the whole history."""
    repo = make_repo(tmp_path, {"pkg/__init__.py": "", "pkg/core.py": SPACED})
    git(repo.root, "checkout", "-q", "-b", "side")
    side = SPACED.replace("z = y * 2", "z = y * 5")
    repo.apply({"pkg/core.py": side}, "side edit helper")
    git(repo.root, "checkout", "-q", "main")
    repo.apply({"pkg/core.py": SPACED.replace("z = y * 2", "z = y * 7")}, "main edit helper")
    indexer = make_indexer(repo)
    run_history(indexer)
    assert reached_subjects(indexer, "helper") == {"initial", "main edit helper"}
    git(repo.root, "checkout", "-q", "side")
    merged = subprocess.run(["git", "merge", "-q", "main"], cwd=repo.root, capture_output=True, check=False)
    assert merged.returncode != 0  # a conflict: the side keeps its helper
    repo.apply({"pkg/core.py": side}, "merge main")
    run_history(indexer)
    assert git_log_l(repo.root, "pkg/core.py", "helper") == {"initial", "side edit helper"}
    assert reached_subjects(indexer, "helper") == {"initial", "side edit helper"}
    cold = make_indexer(repo, tmp_path / "cold" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)


def test_a_merge_renames_nothing_a_definition_of_another_parent_keeps_its_lineage(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """The side branch adds `replacement` (a near copy of `original`, just below it), then
    deletes `original`; the main line edits another function.  Against the first parent the
    merge looks like `original` renamed to `replacement`; it is the side's `replacement`."""
    original = "def original(x):\n    a = x + 1\n    b = a * 2\n    c = b - 3\n    return c\n"
    tail = "\n\nclass Far:\n    def away(self):\n        m = 1\n        n = 2\n        return m + n\n"
    head = "import os\n\n\n"
    repo = make_repo(tmp_path, {"pkg/__init__.py": "", "pkg/core.py": head + original + tail})
    git(repo.root, "checkout", "-q", "-b", "side")
    replacement = original.replace("def original(x):", "def replacement(x):").replace("return c", "return c + 1")
    repo.apply({"pkg/core.py": head + original + "\n\n" + replacement + tail}, "side add replacement")
    repo.apply({"pkg/core.py": head + replacement + tail}, "side drop original")
    git(repo.root, "checkout", "-q", "main")
    repo.apply({"pkg/core.py": head + original + tail.replace("n = 2", "n = 5")}, "main edit away")
    git(repo.root, "merge", "-q", "--no-edit", "side")
    indexer = make_indexer(repo)
    run_history(indexer)
    assert subjects(changes_of(indexer, "replacement"), with_lines=False) == ["side add replacement"]
    assert subjects(changes_of(indexer, "Far.away")) == ["initial", "main edit away"]
    merge = indexer.work_query("SELECT sha FROM history.commits WHERE is_merge")[0]["sha"]
    assert not indexer.work_query("SELECT * FROM history.function_changes WHERE sha = ?", [merge])


# ------------------------------------------------------------------------------------ incremental


def test_new_commits_are_walked_alone_and_give_the_tables_of_a_cold_walk(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The new commits only are walked; the version of HEAD they change is not parsed again:
    its outline is the one stored (`history.head_files`)."""
    repo = make_repo(tmp_path, BASE)
    indexer = make_indexer(repo)
    run_history(indexer)
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 7")}, "edit")
    repo.apply({"pkg/extra.py": "def more():\n    return 1\n"}, "add")
    with caplog.at_level(logging.INFO, logger="codeintel.ingestion.history.collect"):
        run_history(indexer)
    runs = indexer.work_query("SELECT note FROM meta.step_runs WHERE step = 'git_history' ORDER BY started_at")
    assert runs[-1]["note"].startswith("incremental: 2 commits")
    (walked,) = [r.getMessage() for r in caplog.records if "walk of 2 commits" in r.getMessage()]
    assert "outlines_stored 1" in walked and "parsed_tree-sitter 1," in walked, walked  # (the new file's)
    run_history(indexer)
    assert indexer.work_query("SELECT note FROM meta.step_runs WHERE step = 'git_history' ORDER BY started_at")[-1]["note"] == "no new commit"
    cold = make_indexer(repo, tmp_path / "cold" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)


def test_a_force_push_drops_what_is_gone_and_equals_a_cold_walk(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 2")}, "keep")
    repo.apply({"pkg/gone.py": "def doomed():\n    return 1\n"}, "to be rewritten")
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 3")}, "also rewritten")
    indexer = make_indexer(repo)
    run_history(indexer)
    git(repo.root, "reset", "-q", "--hard", "HEAD~2")
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 4")}, "the new tip")
    run_history(indexer)
    kept = {r["subject"] for r in indexer.work_query("SELECT subject FROM history.commits")}
    assert kept == {"initial", "keep", "the new tip"}
    assert not indexer.work_query("SELECT * FROM history.lineages WHERE first_qualname = 'doomed'")
    assert subjects(changes_of(indexer, "helper")) == ["initial", "keep", "the new tip"]
    cold = make_indexer(repo, tmp_path / "cold" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)


def test_head_moved_back_to_a_walked_commit_drops_what_is_gone_and_walks_nothing_again(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """A reset (or a force-push that only drops commits) leaves no new commit: the walk starts
    and ends at HEAD.  It walked the whole history again, and every commit was stored twice."""
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 2")}, "keep")
    repo.apply({"pkg/gone.py": "def doomed():\n    return 1\n"}, "to be dropped")
    indexer = make_indexer(repo)
    run_history(indexer)
    git(repo.root, "reset", "-q", "--hard", "HEAD~1")
    run_history(indexer)
    assert indexer.work_query("SELECT subject, count(*) AS n FROM history.commits GROUP BY subject ORDER BY subject") == [
        {"subject": "initial", "n": 1}, {"subject": "keep", "n": 1},
    ]  # fmt: skip
    assert not indexer.work_query("SELECT * FROM history.head_files WHERE path = 'pkg/gone.py'")
    cold = make_indexer(repo, tmp_path / "cold" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)
    # a database an earlier release left so (every commit twice) is walked again, whole
    with indexer.gateway.writer("test") as w:
        w.execute("INSERT INTO history.commits SELECT * FROM history.commits")
    run_history(indexer)
    assert digests(indexer) == digests(cold)


def test_a_rewritten_commit_that_makes_a_dropped_commits_version_again_equals_a_cold_walk(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """An amend keeps a file the dropped commit added: the new commit makes that version again.
    The walk took the dropped commit's stored version (its file id and lineages), which the
    store then deleted with the commit, and HEAD's rows of the file stayed the dropped ones."""
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/kept.py": "def stays():\n    return 1\n", "pkg/core.py": BASE["pkg/core.py"] + "\nX = 1\n"}, "add")
    indexer = make_indexer(repo)
    run_history(indexer)
    repo.write({"pkg/core.py": BASE["pkg/core.py"] + "\nX = 2\n"})
    git(repo.root, "commit", "-q", "--amend", "-a", "-m", "add, amended")
    run_history(indexer)
    assert indexer.work_query(
        "SELECT h.path FROM history.head_files h ANTI JOIN history.versions v USING (path, blob)"
    ) == []
    cold = make_indexer(repo, tmp_path / "cold" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)
    repo.apply({"pkg/kept.py": "def stays():\n    return 2\n"}, "edit the kept file")
    run_history(indexer)
    assert subjects(changes_of(indexer, "stays")) == ["add, amended", "edit the kept file"]
    cold = make_indexer(repo, tmp_path / "cold2" / "c.duckdb")
    run_history(cold)
    assert digests(indexer) == digests(cold)


def test_lineages_computed_in_parts_are_those_computed_at_once(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`history.lineages` a few lineages a query (every lineage in one part, cold and
    incremental) is the table one query gives."""
    repo = make_repo(tmp_path, BASE)
    repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("def helper", "def assist").replace("helper(1)", "assist(1)")}, "rename")
    repo.apply({"pkg/more.py": "def a():\n    return 1\n\n\nclass B:\n    def c(self):\n        return 2\n"}, "add")
    whole = make_indexer(repo, tmp_path / "whole" / "c.duckdb")
    run_history(whole)
    monkeypatch.setattr(history_store, "LINEAGES_AT_ONCE", 1)
    parts = make_indexer(repo, tmp_path / "parts" / "c.duckdb")
    run_history(parts)
    assert len(parts.work_query("SELECT * FROM history.lineages")) == 7  # (module-level defs and methods)
    assert digests(parts) == digests(whole)
    repo.apply({"pkg/more.py": None, "pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", "y = x + 5")}, "edit")
    run_history(parts)  # the touched lineages, one a query
    monkeypatch.undo()
    run_history(whole)
    assert digests(parts) == digests(whole)


def test_a_history_of_more_lineages_than_the_store_aggregates_at_once_is_stored(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lineages' aggregate holds its texts in memory DuckDB cannot spill: at the store's
    memory limit, too many lineages in one query failed the step ("Out of Memory"; CPython's
    standard library: 88,000 at 128 MB).  Here at a quarter of the limit (32 MB), where 20,000
    lineages at once fail and the parts hold a quarter of LINEAGES_AT_ONCE."""
    files = {
        f"pkg/m{i}.py": "".join(f"def function_number_{j}_of_module_{i}(argument):\n    return argument + {j}\n\n" for j in range(1000))
        for i in range(20)
    }
    repo = make_repo(tmp_path, files)
    monkeypatch.setattr(history_store, "STORE_MEMORY_LIMIT", "32MB")
    monkeypatch.setattr(history_store, "LINEAGES_AT_ONCE", history_store.LINEAGES_AT_ONCE // 4)
    store = history_store.store_history

    def on_two_threads(writer: Any, plan: Any, facts: Any) -> int:
        writer.set("threads", 2)  # (DuckDB's default is a thread a core: each takes memory of its own)
        return store(writer, plan, facts)

    monkeypatch.setattr(history_store, "store_history", on_two_threads)
    indexer = make_indexer(repo)
    run_history(indexer)
    (row,) = indexer.work_query(
        "SELECT count(*) AS n, count(DISTINCT lineage_id) AS ids, count(*) FILTER (WHERE created_sha IS NOT NULL AND goid IS NOT NULL) AS whole FROM history.lineages"
    )
    assert row == {"n": 20_000, "ids": 20_000, "whole": 20_000}


def test_a_shallow_clone_is_a_truncated_history(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, BASE)
    for i in range(4):
        repo.apply({"pkg/core.py": BASE["pkg/core.py"].replace("y = x + 1", f"y = x + {i + 10}")}, f"edit {i}")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "2", f"file://{repo.root}", str(clone)], check=True)
    indexer = make_indexer(clone)
    run_history(indexer)
    commits = indexer.work_query("SELECT subject, is_shallow_boundary FROM history.commits ORDER BY generation")
    assert [(c["subject"], c["is_shallow_boundary"]) for c in commits] == [("edit 2", True), ("edit 3", False)]
    helper = indexer.work_query("SELECT * FROM history.lineages WHERE qualname = 'helper'")[0]
    assert helper["is_truncated"] and helper["created_sha"] is None
    assert subjects(changes_of(indexer, "helper")) == ["edit 3"]
    # a linked worktree of the shallow clone: its shallow boundary is the repository's
    git(clone, "worktree", "add", "-q", str(tmp_path / "linked"), "HEAD")
    linked = make_indexer(tmp_path / "linked", tmp_path / "linked.duckdb")
    run_history(linked)
    assert linked.work_query("SELECT subject, is_shallow_boundary FROM history.commits ORDER BY generation") == commits


# ------------------------------------------------------------------------------------ old versions


def test_a_version_larger_than_the_file_size_limit_has_no_definitions(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """A generated table that grows past `max_file_size` (the scan indexes no file larger) loses
    its definitions, and has them again, new, once it shrinks back; nothing that large is ever
    parsed (an `ast` of a 19 MB table took 1.5 GB).  HEAD's definitions are the code's."""
    def table(rows: int, version: int) -> str:
        data = "".join(f"    ({i}, {version}),\n" for i in range(rows))
        return f"def first():\n    return {version}\n\n\nDATA = [\n{data}]\n\n\ndef last():\n    return DATA[-1]\n"

    repo = make_repo(tmp_path, {"pkg/__init__.py": "", "pkg/gen.py": table(5, 0), "pkg/small.py": "def s():\n    return 1\n"})
    repo.apply({"pkg/gen.py": table(400, 1)}, "grows past the limit")
    repo.apply({"pkg/gen.py": table(401, 2)}, "changes past it")
    repo.apply({"pkg/gen.py": table(6, 3)}, "shrinks back")
    repo.apply({"pkg/gen.py": table(7, 4)}, "changes under it")
    repo.apply({"pkg/gen.py": table(500, 5), "pkg/small.py": "def s():\n    return 2\n"}, "past it at HEAD")
    indexer = make_indexer(repo)
    run = indexer.run(["git_history", "goids"], max_file_size=4000)
    assert run.ok, run.failed
    rows = indexer.work_query(
        "SELECT c.subject, fc.qualname, fc.event FROM history.function_changes fc JOIN history.commits c USING (sha) "
        "WHERE fc.path = 'pkg/gen.py' ORDER BY c.generation, fc.qualname"
    )
    assert [(r["subject"], r["qualname"], r["event"]) for r in rows] == [
        ("initial", "first", "created"), ("initial", "last", "created"),
        ("grows past the limit", "first", "deleted"), ("grows past the limit", "last", "deleted"),
        ("shrinks back", "first", "created"), ("shrinks back", "last", "created"),
        ("changes under it", "first", "modified"),  # (`last` unchanged: the table is not in it)
        ("past it at HEAD", "first", "deleted"), ("past it at HEAD", "last", "deleted"),
    ]  # fmt: skip
    head = {(r["path"], r["qualname"]) for r in indexer.work_query("SELECT path, qualname FROM history.head_defs")}
    code = indexer.work_query("SELECT path, qualname FROM core.goids WHERE kind <> 'module'")
    assert head == {(r["path"], r["qualname"]) for r in code} == {("pkg/small.py", "s")}
    stats = indexer.work_query("SELECT note FROM meta.step_runs WHERE step = 'git_history'")
    assert stats and stats[0]["note"].startswith("cold")


def test_python_2_code_in_the_past_keeps_its_definitions(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    py2 = '''
        def report(items):
            for item in items:
                print "item", item
            return len(items)


        def fail():
            try:
                pass
            except ValueError, e:
                raise TypeError, "bad"
    '''
    repo = make_repo(tmp_path, {"legacy.py": py2})
    repo.apply({"legacy.py": py2.replace("return len(items)", "return len(list(items))")}, "py2 edit")
    py3 = py2.replace('print "item", item', 'print("item", item)').replace("except ValueError, e:", "except ValueError as e:")
    repo.apply({"legacy.py": py3.replace('raise TypeError, "bad"', 'raise TypeError("bad")')}, "port to python 3")
    indexer = make_indexer(repo)
    run_history(indexer)
    assert subjects(changes_of(indexer, "report")) == ["initial", "py2 edit", "port to python 3"]
    assert subjects(changes_of(indexer, "fail")) == ["initial", "port to python 3"]


def test_non_utf8_content_in_an_old_version_is_walked(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    latin = b"def name():\n    return '\xe9t\xe9'\n\n\ndef other():\n    return 1\n"
    repo = make_repo(tmp_path, {"enc.py": latin})
    repo.apply({"enc.py": latin.replace(b"return 1", b"return 2")}, "edit other")
    repo.apply({"enc.py": latin.replace(b"'\xe9t\xe9'", "'été'".encode()).replace(b"return 1", b"return 2")}, "to utf-8")
    indexer = make_indexer(repo)
    run_history(indexer)
    assert subjects(changes_of(indexer, "name")) == ["initial", "to utf-8"]
    assert subjects(changes_of(indexer, "other")) == ["initial", "edit other"]


def test_a_symlink_that_becomes_a_file_and_back_is_the_files_addition_and_deletion(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """git prints a type change as two patches (the old side's deletion, the new side's
    addition): the regular file's side is the change, its lines and definitions included."""
    repo = make_repo(tmp_path, {"pkg/a.py": "def f():\n    return 1\n"})
    (repo.root / "pkg/link.py").symlink_to("a.py")
    repo.commit("a symlink named .py")
    (repo.root / "pkg/link.py").unlink()
    repo.apply({"pkg/link.py": "def g():\n    x = 1\n    return x\n"}, "the symlink becomes a file")
    (repo.root / "pkg/link.py").unlink()
    (repo.root / "pkg/link.py").symlink_to("../elsewhere.py")
    repo.commit("the file becomes a symlink")
    indexer = make_indexer(repo)
    run_history(indexer)
    files = indexer.work_query(
        """SELECT c.subject, f.status, f.lines_added, f.lines_deleted FROM history.file_changes f
           JOIN history.commits c USING (sha) WHERE f.path = 'pkg/link.py' ORDER BY c.generation"""
    )
    assert [tuple(r.values()) for r in files] == [
        ("the symlink becomes a file", "A", 3, 0),
        ("the file becomes a symlink", "D", 0, 3),
    ]
    funcs = indexer.work_query(
        """SELECT c.subject, f.qualname, f.event, f.lines_added, f.lines_deleted FROM history.function_changes f
           JOIN history.commits c USING (sha) WHERE f.path = 'pkg/link.py' ORDER BY c.generation"""
    )
    assert [tuple(r.values()) for r in funcs] == [
        ("the symlink becomes a file", "g", "created", 3, 0),
        ("the file becomes a symlink", "g", "deleted", 0, 3),
    ]


def test_a_repository_without_commits_has_no_history(make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    (root / "a.py").write_text("x = 1\n")
    git(root, "init", "-q")
    indexer = make_indexer(root)
    run = indexer.run(["git_history"])
    assert run.ok
    assert indexer.work_query("SELECT count(*) AS n FROM history.commits")[0]["n"] == 0


def test_git_missing_is_a_skip_that_says_so_and_nothing_else_fails(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, BASE)
    indexer = make_indexer(repo)
    run = indexer.run(git=str(tmp_path / "no" / "git"))
    assert run.ok, run.failed
    status = indexer.step_runs(run.run_id)["git_history"]
    assert status["status"] == "skipped"
    assert status["note"].startswith(f"git not found ({tmp_path / 'no' / 'git'})"), status["note"]
    assert indexer.work_query("SELECT count(*) AS n FROM core.goids")[0]["n"] > 0


# ------------------------------------------------------------------------------------ on a corpus


@pytest.mark.slow
def test_incremental_walks_after_k_new_commits_equal_cold_walks_on_flask(
    shared_dir: Path, make_indexer: MakeIndexer, tmp_path: Path
) -> None:
    """Walk flask's history at first-parent ancestors of HEAD, then each later one in turn (k
    new commits each time, merges and their side branches included): the tables equal those
    of a cold walk at the same commit."""
    clone = tmp_path / "flask"
    subprocess.run(["git", "clone", "-q", str(shared_dir / "corpora" / "flask.bundle"), str(clone)], check=True)
    first_parent = git(clone, "rev-list", "--first-parent", "HEAD").split()
    steps = [first_parent[40], first_parent[7], first_parent[1], first_parent[0]]
    incremental = make_indexer(clone, tmp_path / "inc" / "c.duckdb")
    for i, sha in enumerate(steps):
        git(clone, "checkout", "-q", "--detach", sha)
        run_history(incremental)
        if i in (1, 3):
            cold = make_indexer(clone, tmp_path / f"cold{i}" / "c.duckdb")
            run_history(cold)
            assert digests(incremental) == digests(cold), f"after walking up to {sha}"
    notes = incremental.work_query("SELECT note FROM meta.step_runs WHERE step = 'git_history' ORDER BY started_at")
    assert [n["note"].split(":")[0] for n in notes] == ["cold", "incremental", "incremental", "incremental"]
