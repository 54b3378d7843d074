"""`impact` on real diffs of the indexed repository: a commit, working-tree edits, symbols."""

from __future__ import annotations

from serving_support import Served, callers_bfs, git_diff, goids_of, names


def _sections(answer: dict) -> dict[str, dict]:
    return {s["name"]: s for s in answer["sections"]}


NEW_HELPERS = '''"""Small helpers."""


def normalize(text: str) -> str:
    """Strip, lower and collapse spaces."""
    return " ".join(text.strip().lower().split())


def classify(value: int) -> str:
'''


def _edit_normalize(served: Served) -> None:
    path = served.repo / "pkg" / "helpers.py"
    text = path.read_text(encoding="utf-8")
    _, _, rest = text.partition("def classify(value: int) -> str:\n")
    path.write_text(NEW_HELPERS + rest + "\n\ndef brand_new():\n    return normalize('x')\n", encoding="utf-8")


def test_impact_of_a_commit_lists_changed_functions_callers_by_hop_modules_and_tests(served: Served) -> None:
    _edit_normalize(served)
    served.project.commit("normalize collapses spaces")
    answer = served.mcp.json("impact", ref="HEAD", limit=200)
    sections = _sections(answer)
    assert "matched 1 files on the old side (blob ids)" in answer["facts"]["input"]
    changed = {r[1] for r in sections["changed"]["rows"]}
    assert "pkg.helpers.normalize" in changed
    assert "pkg.helpers.classify" not in changed
    expected = callers_bfs(served, goids_of(served, "pkg.helpers.normalize"), 3)
    labels = names(served, expected)
    assert sorted((r[0], r[2]) for r in sections["callers"]["rows"]) == sorted((h, labels[g]) for g, h in expected.items())
    assert all(r[4] == "normalize" for r in sections["callers"]["rows"])
    tests = {r[1]: r for r in sections["tests"]["rows"]}
    assert set(tests) == {
        "tests.test_core.test_execute", "tests.test_core.TestEngine.test_run", "tests.test_api.test_handle", "tests.test_api.test_lookup",
    }  # fmt: skip
    assert tests["tests.test_api.test_handle"][2] == 4
    assert tests["tests.test_api.test_handle"][3] == "test_handle → handle → execute → Engine.run → normalize"
    modules = {r[0] for r in sections["modules"]["rows"]}
    assert {"pkg.helpers", "pkg.core", "pkg.api"} <= modules
    assert sections["subsystems"]["total"] >= 1
    assert answer["title"].startswith("impact: ")


def test_impact_matches_the_new_side_once_the_snapshot_contains_the_commit(served: Served) -> None:
    _edit_normalize(served)
    served.project.commit("normalize collapses spaces")
    served.project.run()
    answer = served.mcp.json("impact", ref="HEAD")
    assert "on the new side (blob ids)" in answer["facts"]["input"]
    changed = {r[1] for r in _sections(answer)["changed"]["rows"]}
    assert {"pkg.helpers.normalize", "pkg.helpers.brand_new"} <= changed
    assert "pkg.helpers.classify" not in changed


def test_impact_of_working_tree_edits_from_git_diff_text(served: Served) -> None:
    path = served.repo / "pkg" / "core.py"
    path.write_text(path.read_text(encoding="utf-8").replace('return query + "!"', 'return query + "?"'), encoding="utf-8")
    diff = git_diff(served.repo)
    assert "@@" in diff
    answer = served.mcp.json("impact", diff=diff)
    sections = _sections(answer)
    assert [r[1] for r in sections["changed"]["rows"]] == ["pkg.core.Engine._plan"]
    hop1 = {r[2] for r in sections["callers"]["rows"] if r[0] == 1}
    assert hop1 == {"pkg.core.Engine.run"}
    assert {r[1] for r in sections["tests"]["rows"]} >= {"tests.test_core.TestEngine.test_run", "tests.test_core.test_execute"}


def test_impact_of_deleting_a_file_changes_everything_in_it(served: Served) -> None:
    (served.repo / "pkg" / "cycle_b.py").unlink()
    answer = served.mcp.json("impact", diff=git_diff(served.repo))
    changed = {r[1] for r in _sections(answer)["changed"]["rows"]}
    assert changed == {"pkg.cycle_b.pong"}
    assert {r[2] for r in _sections(answer)["callers"]["rows"]} >= {"pkg.cycle_a.ping"}


def test_impact_of_symbols_and_of_nothing_useful(served: Served) -> None:
    answer = served.mcp.json("impact", symbols=["pkg.core.fetch", "no_such_function"])
    sections = _sections(answer)
    assert [r[1] for r in sections["changed"]["rows"]] == ["pkg.core.fetch"]
    assert [r[2] for r in sections["callers"]["rows"] if r[0] == 1] == ["pkg.api.lookup"]  # through the overloads
    assert any("no_such_function" in n for n in answer["notes"])
    both = served.mcp.result("impact", diff="x", ref="HEAD")
    assert both.is_error and "exactly one" in both.content[0].text
    docs_only = served.mcp.json("impact", diff="--- a/README\n+++ b/README\n@@ -1 +1 @@\n-a\n+b\n")
    assert "touches no definition" in docs_only["title"]
    bad_ref = served.mcp.result("impact", ref="--output=/tmp/x")
    assert bad_ref.is_error and "not a git revision" in bad_ref.content[0].text


def test_a_changed_test_is_a_test_of_the_change(served: Served) -> None:
    path = served.repo / "tests" / "test_core.py"
    path.write_text(path.read_text(encoding="utf-8").replace('execute(" X ")', 'execute("  X  ")'), encoding="utf-8")
    answer = served.mcp.json("impact", diff=git_diff(served.repo))
    tests = _sections(answer)["tests"]["rows"]
    assert ["test_execute", "tests.test_core.test_execute", 0, "test_execute"] in tests
