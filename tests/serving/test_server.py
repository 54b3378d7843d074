"""The MCP server end to end, through the SDK's own in-memory client, on a real indexed repository.

Every tool's answer is checked against the database it serves (and `get_symbol`'s source against
the file); the rules every answer keeps are checked on all answers of the session: the snapshot
line first, the token budget, byte-identical repeats.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from serving_support import Served, ServedFactory, callers_bfs, goids_of, names, republish

from codeintel.serving.render import MAX_TOKENS, tokens
from codeintel.serving.server import DESCRIPTIONS

SNAPSHOT_LINE = re.compile(r"snapshot repo@[0-9a-f]{12} built \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ run [0-9a-f]{16}")


# ---------------------------------------------------------------------------------- the tools


def test_the_server_lists_twelve_read_only_tools_with_short_descriptions(served: Served) -> None:
    listed = served.mcp.tools().tools
    assert sorted(t.name for t in listed) == sorted(DESCRIPTIONS)
    assert len(listed) == 12
    for tool in listed:
        assert tool.description and len(tool.description) <= 600, tool.name
        assert tool.annotations.read_only_hint is True, tool.name


def test_status_names_the_snapshot_its_rows_and_each_steps_freshness(served: Served) -> None:
    answer = served.mcp.json("status")
    run_id, commit = served.query("SELECT run_id, commit FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1")[0]
    assert answer["snapshot"] == f"snapshot repo@{commit[:12]} {answer['snapshot'].split(' ', 2)[2]}"
    assert answer["snapshot"].endswith(f"run {run_id}")
    assert answer["facts"]["commit"] == commit
    (files,) = served.query("SELECT count(*) FROM core.files")[0]
    assert f"core.files {files}," in answer["facts"]["rows"]
    steps = {s[0]: s for s in answer["sections"][0]["rows"]}
    for step, status, stale in served.query("SELECT step, last_status, stale FROM meta.step_status"):
        assert steps[step][1] == status and steps[step][2] == stale
    assert "is the snapshot's commit" in answer["facts"]["working tree"]


def test_status_says_how_far_the_working_tree_is_ahead_of_the_snapshot(served: Served) -> None:
    served.project.apply({"pkg/helpers.py": "def normalize(text):\n    return text\n"}, "change helpers")
    (served.repo / "pkg" / "new_module.py").write_text("X = 1\n", encoding="utf-8")
    answer = served.mcp.json("status")
    assert "1 commits ahead of the snapshot" in answer["facts"]["working tree"]
    changed = {tuple(r) for r in answer["sections"][1]["rows"]}
    assert changed == {("pkg/helpers.py", "changed"), ("pkg/new_module.py", "untracked")}
    assert any("the checkout is at" in w for w in answer["warnings"])


def test_find_symbol_matches_exactly_then_by_prefix_then_fuzzily_as_the_index_says(served: Served) -> None:
    exact = served.mcp.json("find_symbol", name="normalize")
    (callers,) = served.query(
        "SELECT count(DISTINCT caller_goid) FROM graph.call_edges_merged e JOIN docs.symbols s ON s.goid = e.callee_goid "
        "WHERE s.full_name = 'pkg.helpers.normalize'"
    )[0]
    assert exact["sections"][0]["rows"] == [["function", "pkg.helpers.normalize", "pkg/helpers.py:5-7", 1, callers, goids_of(served, "pkg.helpers.normalize")[0][:12]]]
    prefix = served.mcp.json("find_symbol", name="eng")
    expected = served.query(
        "SELECT full_name FROM docs.symbols WHERE starts_with(lower(name), 'eng') OR starts_with(lower(qualname), 'eng') "
        "OR starts_with(lower(full_name), 'eng')"
    )
    assert prefix["title"].startswith("find_symbol 'eng': ") and "prefix" in prefix["title"]
    assert sorted(r[1] for r in prefix["sections"][0]["rows"]) == sorted(n for (n,) in expected)
    assert prefix["sections"][0]["total"] == len(expected)
    fuzzy = served.mcp.json("find_symbol", name="normalise")
    assert "fuzzy" in fuzzy["title"] and fuzzy["sections"][0]["rows"][0][1] == "pkg.helpers.normalize"
    classes = served.mcp.json("find_symbol", name="Eng", kind="class")
    assert [r[1] for r in classes["sections"][0]["rows"]] == ["pkg.core.Engine"]


def test_misses_are_actionable_candidates_for_an_ambiguous_name_nearest_names_for_an_unknown(served: Served) -> None:
    ambiguous = served.mcp.json("call_graph", symbol="run")
    assert "ambiguous" in ambiguous["title"]
    assert {r[1] for r in ambiguous["sections"][0]["rows"]} == {"pkg.core.Engine.run", "pkg.api.Runner.run"}
    assert ambiguous["sections"][0]["rows"][0][1] == "pkg.core.Engine.run"  # most called first
    unknown = served.mcp.json("get_symbol", symbol="pkg.helpers.normalise")
    assert "no symbol" in unknown["title"] and "pkg.helpers.normalize" in unknown["facts"]["nearest names"]
    nothing = served.mcp.json("find_symbol", name="zzqqxx")
    assert "no symbol matches" in nothing["title"]


def test_get_symbol_gives_the_card_and_the_source_as_the_file_holds_it(served: Served) -> None:
    card = served.mcp.json("get_symbol", symbol="pkg.core.fetch")
    start, end, doc = served.query(
        "SELECT g.start_line, g.end_line, a.docstring FROM core.goids g JOIN core.ast_nodes a USING (path, qualname, ordinal) "
        "WHERE g.module = 'pkg.core' AND g.qualname = 'fetch' ORDER BY g.start_line DESC LIMIT 1"
    )[0]
    facts = card["facts"]
    assert facts["goid"] == goids_of(served, "pkg.core.fetch")[-1]  # the implementation, not an @overload
    assert facts["at"] == f"pkg/core.py:{start}-{end} ({end - start + 1} lines)"
    assert facts["signature"] == "def fetch(key)"
    assert facts["docstring"] == doc
    assert facts["calls"].startswith("1 callers, 1 callees")
    assert "cyclomatic 1" in facts["metrics"]
    source = next(s for s in card["sections"] if s["name"].startswith("source"))
    lines = (served.repo / "pkg" / "core.py").read_text(encoding="utf-8").splitlines()
    assert source["rows"] == [[n, lines[n - 1]] for n in range(start, end + 1)]
    assert any("2 more definitions share this name" in n for n in card["notes"])
    assert not any("changed since the snapshot" in n for n in card["notes"])
    (served.repo / "pkg" / "core.py").write_text("# edited\n" + "\n".join(lines) + "\n", encoding="utf-8")
    edited = served.mcp.json("get_symbol", symbol="pkg.core.fetch")
    assert any("pkg/core.py changed since the snapshot" in n for n in edited["notes"])
    by_line = served.mcp.json("get_symbol", symbol="pkg/helpers.py:6")
    assert by_line["title"] == "function pkg.helpers.normalize"
    cls = served.mcp.json("get_symbol", symbol="pkg.core.Engine")
    assert [r[0] for r in cls["sections"][0]["rows"]] == ["__init__", "run", "_plan"]


def test_call_graph_walks_the_edges_only_the_type_checker_resolves(served: Served) -> None:
    """`engine.run()` on an annotated parameter: the points-to graph leaves it unresolved, pyrefly
    resolves it (graph.call_edges_merged, resolution 'scip'); the tools walk it."""
    ((resolution, caller),) = served.query(
        "SELECT resolution, caller FROM graph.call_edges_merged WHERE callee = 'pkg.core.Engine.run' AND path = 'pkg/typed.py'"
    )
    assert (resolution, caller) == ("scip", "pkg.typed.drive")
    callers = served.mcp.json("call_graph", symbol="pkg.core.Engine.run", depth=1, limit=50)
    assert "pkg.typed.drive" in {r[2] for r in callers["sections"][0]["rows"]}
    callees = served.mcp.json("call_graph", symbol="pkg.typed.drive", direction="callees", depth=1)
    assert [r[2] for r in callees["sections"][0]["rows"]] == ["pkg.core.Engine.run"]


def test_call_graph_walks_callers_and_callees_hop_by_hop_as_the_edges_say(served: Served) -> None:
    start = goids_of(served, "pkg.helpers.normalize")
    expected = callers_bfs(served, start, 5)
    answer = served.mcp.json("call_graph", symbol="pkg.helpers.normalize", depth=5, limit=200)
    rows = answer["sections"][0]["rows"]
    labels = names(served, expected)
    assert sorted((r[0], r[2]) for r in rows) == sorted((h, labels[g]) for g, h in expected.items())
    per_hop = [sum(1 for h in expected.values() if h == k) for k in range(1, 6)]
    assert answer["facts"]["per hop"] == " · ".join(f"{i}: {n}" for i, n in enumerate(per_hop, start=1))
    assert rows == sorted(rows, key=lambda r: (r[0], r[2]))
    via = {r[2]: r[6] for r in rows}
    assert via["tests.test_api.test_handle"] == "handle"
    # one unresolved call site calls `run` (pkg.api.dynamic): Engine.run's callers are a lower bound
    assert answer["facts"]["lower bound"].startswith("yes") and "'run': 1" in answer["facts"]["lower bound"]
    callees = served.mcp.json("call_graph", symbol="pkg.api.handle", direction="callees", depth=3)
    expected_down = callers_bfs(served, goids_of(served, "pkg.api.handle"), 3, "callees")
    assert {r[2] for r in callees["sections"][0]["rows"]} == set(names(served, expected_down).values())
    by_view = served.query("SELECT called_name, count(*), count(DISTINCT caller_goid) FROM docs.v_unresolved_calls WHERE called_name IS NOT NULL GROUP BY 1 ORDER BY 1")
    assert served.query("SELECT * FROM docs.unresolved_names ORDER BY 1") == by_view == [("run", 1, 1)]
    dynamic = served.mcp.json("call_graph", symbol="pkg.api.dynamic", direction="callees")
    assert dynamic["sections"][0]["total"] == 0 and dynamic["facts"]["lower bound"].startswith("yes")
    confident = served.mcp.json("call_graph", symbol="pkg.helpers.normalize", depth=5, min_confidence=1.0)
    (low,) = served.query("SELECT count(*) FROM graph.call_edges_merged WHERE callee_goid IS NOT NULL AND confidence < 1")[0]
    assert low > 0 or confident["sections"][0]["total"] == answer["sections"][0]["total"]


def test_tests_for_lists_the_tests_that_reach_a_symbol_with_a_witness_path(served: Served) -> None:
    expected = callers_bfs(served, goids_of(served, "pkg.helpers.normalize"), 5)
    tests = {
        n for (n,) in served.query(
            "SELECT full_name FROM docs.symbols WHERE is_test AND goid IN (SELECT unnest(?::VARCHAR[]))", [list(expected)]
        )
    }  # fmt: skip
    assert tests == {
        "tests.test_core.test_execute", "tests.test_core.TestEngine.test_run", "tests.test_api.test_handle", "tests.test_api.test_lookup",
    }  # fmt: skip
    answer = served.mcp.json("tests_for", symbol="normalize")
    rows = answer["sections"][0]["rows"]
    assert {r[1] for r in rows} == tests
    paths = {r[1]: r[3] for r in rows}
    assert paths["tests.test_api.test_handle"] == "test_handle → handle → execute → Engine.run → normalize"
    assert paths["tests.test_api.test_lookup"] == "test_lookup → lookup → fetch → normalize"
    shallow = served.mcp.json("tests_for", symbol="normalize", depth=2)
    assert {r[1] for r in shallow["sections"][0]["rows"]} == {"tests.test_core.TestEngine.test_run"}


def test_trace_path_finds_the_shortest_paths_and_how_far_a_symbol_reaches(served: Served) -> None:
    answer = served.mcp.json("trace_path", source="tests.test_api.test_handle", target="pkg.helpers.normalize")
    assert answer["facts"]["shortest"] == "4 hops; 1 shortest paths"
    assert answer["sections"][0]["rows"] == [[1, "test_handle → handle → execute → Engine.run → normalize"]]
    steps = answer["sections"][1]["rows"]
    for _, callee, at, _conf in steps:
        path, line = at.rsplit(":", 1)
        assert served.query(
            "SELECT count(*) FROM graph.call_edges_merged WHERE path = ? AND line = ? AND callee = ?", [path, int(line), callee]
        ) == [(1,)]
    none = served.mcp.json("trace_path", source="pkg.helpers.normalize", target="pkg.api.handle")
    assert "no call path" in none["title"]
    assert any("the other way round" in n and "handle → execute → Engine.run → normalize" in n for n in none["notes"])
    reach = served.mcp.json("trace_path", source="pkg.api.handle")
    expected = callers_bfs(served, goids_of(served, "pkg.api.handle"), 5, "callees")
    assert reach["facts"]["reaches"].startswith(f"{len(expected)} symbols")
    assert [r[1] for r in reach["sections"][0]["rows"]][: max(expected.values())] == [
        sum(1 for h in expected.values() if h == k) for k in range(1, max(expected.values()) + 1)
    ]


def test_hotspots_rank_by_the_metric_within_a_scope(served: Served) -> None:
    answer = served.mcp.json("hotspots", metric="complexity", limit=5)
    expected = served.query(
        "SELECT full_name, cyclomatic FROM docs.v_function_summary WHERE cyclomatic IS NOT NULL ORDER BY cyclomatic DESC, full_name, goid LIMIT 5"
    )
    assert [(r[1], r[3]) for r in answer["sections"][0]["rows"]] == [tuple(e) for e in expected]
    scoped = served.mcp.json("hotspots", metric="fan_in", scope="pkg.core")
    expected_scoped = served.query(
        "SELECT full_name FROM docs.v_function_summary WHERE module = 'pkg.core' AND call_fan_in IS NOT NULL ORDER BY call_fan_in DESC, full_name, goid"
    )
    assert [r[1] for r in scoped["sections"][0]["rows"]] == [n for (n,) in expected_scoped]
    assert served.mcp.json("hotspots", metric="churn")["title"].endswith("not available")  # no history steps yet
    wrong = served.mcp.json("hotspots", scope="pkg.cor")
    assert wrong["error"] and "pkg.core" in wrong["title"]
    modules_level = served.mcp.json("hotspots", metric="fan_in", level="module", limit=3)
    expected_modules = served.query("SELECT module FROM docs.v_module_summary WHERE import_fan_in IS NOT NULL ORDER BY import_fan_in DESC, module, path LIMIT 3")
    assert [r[1] for r in modules_level["sections"][0]["rows"]] == [m for (m,) in expected_modules]


def test_module_info_gives_imports_importers_cycle_layer_subsystem_and_main_functions(served: Served) -> None:
    answer = served.mcp.json("module_info", module="pkg.cycle_a")
    sections = {s["name"]: s for s in answer["sections"]}
    assert [r[0] for r in sections["imports (internal)"]["rows"]] == ["pkg.cycle_b"]
    assert [r[0] for r in sections["imported by"]["rows"]] == ["pkg.cycle_b"]
    cycle = served.query(
        "SELECT module FROM graph.import_layers WHERE cycle_id = (SELECT cycle_id FROM graph.import_layers WHERE module = 'pkg.cycle_a') ORDER BY 1"
    )
    assert [r[0] for r in sections["import cycle"]["rows"]] == [m for (m,) in cycle] == ["pkg.cycle_a", "pkg.cycle_b"]
    (subsystem,) = served.query(
        "SELECT s.name FROM analytics.subsystem_modules m JOIN analytics.subsystems s USING (subsystem_id) WHERE m.module = 'pkg.cycle_a'"
    )[0]
    assert answer["facts"]["subsystem"] == subsystem
    assert [r[0] for r in sections["main functions (by pagerank)"]["rows"]] == ["pkg.cycle_a.ping"]
    core = served.mcp.json("module_info", module="pkg/core.py")
    importers = served.query(
        "SELECT DISTINCT src_module FROM graph.import_edges WHERE dst_module = 'pkg.core' AND target_kind = 'internal' AND src_module <> 'pkg.core' ORDER BY 1"
    )
    assert [r[0] for r in next(s for s in core["sections"] if s["name"] == "imported by")["rows"]] == [m for (m,) in importers]


def test_subsystems_map_and_one_subsystem_with_its_boundary(served: Served) -> None:
    answer = served.mcp.json("subsystems")
    expected = served.query("SELECT name, module_count FROM analytics.subsystems ORDER BY module_count DESC, name, subsystem_id")
    assert [(r[0], r[2]) for r in answer["sections"][0]["rows"]] == [tuple(e) for e in expected]
    name = expected[0][0]
    one = served.mcp.json("subsystems", name=name)
    members = served.query(
        "SELECT module FROM analytics.subsystem_modules JOIN analytics.subsystems USING (subsystem_id) WHERE name = ? ORDER BY module", [name]
    )
    assert [r[0] for r in one["sections"][0]["rows"]] == [m for (m,) in members]
    imports = served.query(
        "SELECT 'import', src_module, dst_module, count(*) FROM graph.import_edges WHERE target_kind = 'internal' "
        "AND NOT is_type_checking AND src_module <> dst_module GROUP BY ALL ORDER BY ALL"
    )
    assert served.query("SELECT * FROM docs.module_edges WHERE kind = 'import' ORDER BY ALL") == imports
    inside = {m for (m,) in members}
    for way, _kind, src, dst, count in one["sections"][1]["rows"]:
        assert (src in inside) != (dst in inside) and count > 0
        assert way == ("out" if src in inside else "in")


def test_describe_lists_the_docs_views_and_one_views_columns(served: Served) -> None:
    listing = served.mcp.json("describe")
    listed = {r[0] for r in listing["sections"][0]["rows"]}
    views = {f"docs.{v}" for (v,) in served.query("SELECT view_name FROM duckdb_views() WHERE schema_name = 'docs'")}
    assert views and views <= listed
    one = served.mcp.json("describe", name="docs.v_function_summary")
    columns = served.query(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'docs' AND table_name = 'v_function_summary' ORDER BY column_index"
    )
    assert [tuple(r) for r in one["sections"][0]["rows"]] == columns
    assert "example" in one["facts"]


def test_sql_runs_one_select_and_answers_like_the_database(served: Served) -> None:
    query = "SELECT full_name, kind FROM docs.symbols ORDER BY full_name, goid"
    answer = served.mcp.json("sql", query=query, limit=500)
    assert [tuple(r) for r in answer["sections"][0]["rows"]] == served.query(query)
    assert answer["sections"][0]["total"] == len(served.query(query))
    with_cte = served.mcp.json("sql", query="WITH t AS (SELECT 41 + 1 AS x) SELECT x FROM t")
    assert with_cte["sections"][0]["rows"] == [[42]]
    assert any("ORDER BY" in n for n in with_cte["notes"])


def test_a_count_the_time_limit_stopped_is_never_given_as_the_total(served: Served) -> None:
    # far more rows than the count gets through in 0.2 s: the total is a lower bound, and says so
    query = "SELECT i FROM range(10000000000) t(i)"
    text = served.mcp.text("sql", query=query, timeout_s=0.2)
    (counted,) = [line for line in text.splitlines() if line.startswith("rows: ") and "showing" in line]
    assert counted.startswith("rows: more than "), counted
    (cursor,) = [line for line in text.splitlines() if line.startswith("next: ")]
    assert cursor.endswith("(rows 51 on)"), cursor
    section = served.mcp.json("sql", query=query, timeout_s=0.2)["sections"][0]
    assert section["total_exact"] is False and section["total"] < 10_000_000_000
    exact = served.mcp.json("sql", query="SELECT i FROM range(120) t(i) ORDER BY i")["sections"][0]
    assert exact["total"] == 120 and exact["total_exact"] is True


# ------------------------------------------------------------------------ rules of every answer


def test_every_answer_starts_with_the_snapshot_line_and_repeats_byte_for_byte(served: Served) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("status", {}), ("find_symbol", {"name": "e", "match": "prefix"}), ("get_symbol", {"symbol": "Engine.run"}),
        ("call_graph", {"symbol": "normalize", "depth": 5}), ("trace_path", {"source": "test_handle", "target": "normalize"}),
        ("impact", {"symbols": ["normalize"]}), ("tests_for", {"symbol": "normalize"}), ("hotspots", {}),
        ("module_info", {"module": "pkg.core"}), ("subsystems", {}), ("describe", {}), ("sql", {"query": "SELECT goid FROM core.goids ORDER BY goid"}),
    ]  # fmt: skip
    assert sorted({c for c, _ in calls}) == sorted(DESCRIPTIONS)
    for tool, args in calls:
        first = served.mcp.text(tool, **args)
        assert SNAPSHOT_LINE.fullmatch(first.splitlines()[0]), (tool, first[:200])
        assert served.mcp.text(tool, **args) == first, tool
        assert tokens(first) <= 2000, (tool, tokens(first))
        as_json = served.mcp.text(tool, format="json", **args)
        assert as_json.count("\n") == 0 and SNAPSHOT_LINE.search(as_json.split('"', 4)[3]), tool


def test_the_token_budget_cuts_whole_rows_chooses_a_brief_rendering_and_says_so(served: Served) -> None:
    full = served.mcp.text("describe", max_tokens=8000)
    small = served.mcp.text("describe", max_tokens=200)
    assert tokens(small) <= 200 < tokens(full) <= MAX_TOKENS
    assert "left out" in small or "rows were left out" in small
    table = served.mcp.json("hotspots", limit=20, max_tokens=200)
    section = table["sections"][0]
    assert 0 < len(section["rows"]) < 20 and "next_cursor" in section
    assert all(len(r) == len(section["columns"]) for r in section["rows"])  # whole rows, brief columns
    assert section["columns"] == ["#", "name", "complexity"]
    huge = served.mcp.text("sql", query="SELECT repeat('x', 100000) AS big", max_tokens=8000)
    assert tokens(huge) <= MAX_TOKENS and "chars)" in huge


def test_paging_walks_the_whole_list_and_refuses_a_cursor_of_another_call(served: Served) -> None:
    whole = served.mcp.json("hotspots", limit=200)["sections"][0]["rows"]
    pages: list[list[Any]] = []
    cursor = None
    while True:
        page = served.mcp.json("hotspots", limit=7, **({"cursor": cursor} if cursor else {}))["sections"][0]
        pages.extend(page["rows"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert pages == whole and len(whole) > 14
    first = served.mcp.json("hotspots", limit=7)["sections"][0]["next_cursor"]
    other = served.mcp.result("hotspots", metric="size", limit=7, cursor=first)
    assert other.is_error and "another call" in other.content[0].text
    bogus = served.mcp.result("hotspots", cursor="not-a-cursor")
    assert bogus.is_error and "not one this server gave out" in bogus.content[0].text


def test_a_cursor_from_an_older_snapshot_is_refused_after_a_publish(served: Served) -> None:
    page = served.mcp.json("hotspots", limit=5)
    old_run = page["snapshot"].rsplit(" ", 1)[1]
    new_run = republish(served)
    refused = served.mcp.result("hotspots", limit=5, cursor=page["sections"][0]["next_cursor"])
    text = refused.content[0].text
    assert refused.is_error and "stale cursor" in text and old_run in text and new_run in text
    assert text.splitlines()[0].endswith(f"run {new_run}")  # answered from the new snapshot
    again = served.mcp.json("hotspots", limit=5)
    assert again["sections"][0]["rows"] == page["sections"][0]["rows"] and again["snapshot"].endswith(new_run)


def test_a_publish_during_a_series_of_calls_is_picked_up_without_failing_a_call(served: Served) -> None:
    before = served.mcp.json("status")["snapshot"]
    slow_query = "SELECT count(*) FROM range(40000000) t(x) WHERE hash(x) % 7 = 1"
    in_flight: dict[str, Any] = {}

    def slow_call() -> None:
        in_flight["result"] = served.mcp.result("sql", query=slow_query, timeout_s=10)

    served.project.apply({"pkg/helpers.py": (served.repo / "pkg/helpers.py").read_text() + "\n\ndef added():\n    return 1\n"})
    caller = threading.Thread(target=slow_call)
    caller.start()
    publisher = threading.Thread(target=served.project.run)
    publisher.start()
    seen = []
    while publisher.is_alive():
        answer = served.mcp.result("find_symbol", name="normalize")
        assert not answer.is_error, answer.content[0].text
        seen.append(answer.content[0].text.splitlines()[0])
    publisher.join()
    caller.join()
    assert not in_flight["result"].is_error, in_flight["result"].content[0].text
    assert set(seen) <= {before, *seen}
    after = served.mcp.json("status")["snapshot"]
    assert after != before
    assert served.mcp.json("find_symbol", name="added")["sections"][0]["rows"][0][1] == "pkg.helpers.added"
    assert served.store.opened >= 2


def test_the_deadline_interrupts_a_slow_query_and_the_server_answers_the_next_call(served: Served) -> None:
    # a cross join of 3.6e9 pairs: seconds of work on any machine (about 25 s here), stopped at 1 s
    cross_join = "SELECT count(*) FROM range(60000) a, range(60000) b WHERE (a.range * b.range) % 7 = 1"
    started = time.monotonic()
    slow = served.mcp.result("sql", query=cross_join, timeout_s=1)
    elapsed = time.monotonic() - started
    assert slow.is_error and "deadline" in slow.content[0].text
    assert elapsed < 4, elapsed
    after = served.mcp.json("sql", query="SELECT count(*) AS n FROM core.goids")
    assert after["sections"][0]["rows"] == [[served.query("SELECT count(*) FROM core.goids")[0][0]]]
    assert not served.mcp.result("call_graph", symbol="normalize").is_error


def test_a_tool_that_runs_out_of_time_says_so_and_stops(make_served: ServedFactory) -> None:
    served = make_served(deadline_s=0.0005)
    answer = served.mcp.text("call_graph", symbol="normalize", depth=5)
    assert "deadline" in answer
    assert SNAPSHOT_LINE.fullmatch(answer.splitlines()[0])


def test_the_server_never_writes_the_database(served: Served) -> None:
    digest = hashlib.sha256(served.db.read_bytes()).hexdigest()
    mtime = served.db.stat().st_mtime_ns
    for tool, args in [("status", {}), ("impact", {"symbols": ["normalize"]}), ("sql", {"query": "SELECT 1"})]:
        served.mcp.text(tool, **args)
    refused = served.mcp.result("sql", query="DELETE FROM core.goids")
    assert refused.is_error
    assert hashlib.sha256(served.db.read_bytes()).hexdigest() == digest and served.db.stat().st_mtime_ns == mtime


def test_the_server_modules_never_import_prefect(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import codeintel.cli
        from codeintel.serving import dump, server, service, snapshot
        server.build_server(service.Service(snapshot.SnapshotStore(Path("x"))))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("prefect", "flows")))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.strip() == "[]"


def test_hotspots_by_churn_once_the_history_steps_have_run(served: Served) -> None:
    helpers = served.repo / "pkg" / "helpers.py"
    for i in range(3):
        served.project.apply({"pkg/helpers.py": helpers.read_text(encoding="utf-8").replace("lower()", f"lower()  # {i}")})
    served.project.run("function_history")
    answer = served.mcp.json("hotspots", metric="churn")
    expected = served.query(
        "SELECT f.full_name, h.churn_365d FROM docs.v_function_summary f JOIN analytics.function_history h ON h.goid = f.goid "
        "WHERE h.churn_365d IS NOT NULL ORDER BY h.churn_365d DESC, f.full_name, f.goid"
    )
    rows = answer["sections"][0]["rows"]
    assert [(r[1], r[3]) for r in rows] == [tuple(e) for e in expected][: len(rows)]
    assert rows and answer["sections"][0]["columns"][3] == "churn 365d"
    churn = {r[1]: r[3] for r in rows}
    assert churn["pkg.helpers.normalize"] > churn["pkg.helpers.unused"]  # three edits of normalize
    modules = served.mcp.json("hotspots", metric="churn", level="module")
    expected_modules = served.query(
        "SELECT ms.module FROM docs.v_module_summary ms JOIN analytics.file_history h ON h.path = ms.path "
        "ORDER BY h.churn_365d DESC, ms.module, ms.path"
    )
    assert [r[1] for r in modules["sections"][0]["rows"]] == [m for (m,) in expected_modules][:20]
