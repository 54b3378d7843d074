"""The snapshot's in-memory index: the same rows as the SQL it replaces, and a new one per publish.

`Adjacency.hop` is checked against DuckDB itself on random edge sets (pairs with several edges of
different confidences and lines, missing lines, self-loops left out), the symbol lookups against
`docs.symbols` on the indexed project, and the server against a real re-export that changes the
call graph.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pytest
from serving_support import Served

from codeintel.serving import symbols
from codeintel.serving.index import NO_LINE, Adjacency
from codeintel.serving.service import Service
from codeintel.serving.snapshot import Deadline, Query

# what a walk's hop was before the index: one row per (frontier node, neighbour) pair
_HOP_SQL = """SELECT near, far, max(conf) AS conf, min(line) AS line FROM edges
               WHERE near IN (SELECT unnest($nodes::INTEGER[])) AND conf >= $min AND near <> far
               GROUP BY ALL ORDER BY far, conf DESC, near"""


@pytest.mark.parametrize("seed", range(6), ids=lambda s: f"seed{s}")
def test_a_hop_from_the_arrays_equals_the_sql_aggregate_over_the_edges(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nodes, edges = 40, 600
    near = rng.integers(0, nodes, edges).astype(np.int32)
    far = rng.integers(0, nodes, edges).astype(np.int32)
    conf = rng.choice([0.25, 0.5, 0.75, 1.0], edges)
    line = rng.integers(1, 30, edges).astype(np.int64)
    line[rng.random(edges) < 0.1] = NO_LINE  # edges without a line
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE edges (near INTEGER, far INTEGER, conf DOUBLE, line BIGINT)")
    con.executemany(
        "INSERT INTO edges VALUES (?, ?, ?, ?)",
        [(int(a), int(b), float(c), None if n == NO_LINE else int(n)) for a, b, c, n in zip(near, far, conf, line, strict=True)],
    )
    loops = near != far  # the index leaves self-calls out when it loads, as the SQL did
    adjacency = Adjacency(near[loops], far[loops], conf[loops], line[loops], nodes)
    for frontier in ([0], [3, 7], sorted(rng.choice(nodes, 12, replace=False).tolist()), list(range(nodes))):
        for minimum in (0.0, 0.5, 1.0):
            got = adjacency.hop(np.array(frontier, dtype=np.int64), minimum)
            rows = [(a, b, c, None if n == NO_LINE else n) for a, b, c, n in zip(*got, strict=True)]
            assert rows == con.execute(_HOP_SQL, {"nodes": frontier, "min": minimum}).fetchall()


def test_symbol_lookups_from_the_index_equal_the_queries_on_docs_symbols(served: Served) -> None:
    with served.store.lease() as snap, Query(snap, Deadline(10)) as q:
        index = q.index
        rows = served.query(f"SELECT {symbols.SYMBOL_COLUMNS} FROM docs.symbols s")
        assert {r[0]: r for r in rows} == {g: tuple(getattr(s, f) for f in s.__slots__) for g, s in index.symbols.items()}
        for text in {t for r in rows for t in (r[2], r[8], r[6], r[2].split(".", 1)[-1])}:
            for found, sql in (
                (index.by_full_name.get(text, []), "s.full_name = ?"),
                (index.by_qualname.get(text, []), "s.qualname = ?"),
                (index.ending_with(text), "ends_with(s.full_name, '.' || ?)"),
                (index.by_name.get(text, []), "s.name = ?"),
            ):
                expected = served.query(f"SELECT s.goid FROM docs.symbols s WHERE {sql}", [text])
                assert sorted(s.goid for s in found) == sorted(g for (g,) in expected), (text, sql)
        goid = rows[0][0]
        assert [s.goid for s in index.with_prefix(goid[:8], 20)] == [
            g for (g,) in served.query("SELECT goid FROM docs.symbols WHERE starts_with(goid, ?) ORDER BY goid LIMIT 20", [goid[:8]])
        ]
        overloads = served.query(
            "SELECT g.goid FROM core.goids g JOIN core.ast_nodes a USING (path, qualname, ordinal) "
            "WHERE list_has_any(a.decorators, ['overload', 'typing.overload', 't.overload'])"
        )
        assert index.overloads == {g for (g,) in overloads} and len(index.overloads) == 2


def test_a_publish_gives_the_next_call_the_new_call_graph(served: Served) -> None:
    before = served.mcp.json("call_graph", symbol="pkg.helpers.classify")
    assert before["sections"][0]["total"] == 0
    served.project.apply({
        "pkg/report.py": '''
            from pkg import helpers


            def describe(value):
                return helpers.classify(value)
        ''',
    })  # fmt: skip
    served.project.run()
    after = served.mcp.json("call_graph", symbol="pkg.helpers.classify")
    assert after["snapshot"] != before["snapshot"]
    assert after["sections"][0]["rows"][0][2] == "pkg.report.describe"
    callees = served.mcp.json("call_graph", symbol="pkg.report.describe", direction="callees")
    assert [r[2] for r in callees["sections"][0]["rows"]] == ["pkg.helpers.classify"]
    assert served.store.opened == 2


def test_find_symbol_hotspots_and_module_info_answer_the_same_from_the_index_and_from_sql(served: Served) -> None:
    service = Service(served.store)
    with served.store.lease() as snap:
        assert snap.loader is not None
        snap.loader.join()  # the extras are there
        index = snap.index(Deadline(10))
    assert index.prefixes is not None and index.hot_ranked is not None
    names = {n for (full,) in served.query("SELECT full_name FROM docs.symbols") for n in (full, full.rsplit(".", 1)[-1])}
    calls: list[tuple[str, dict[str, Any]]] = [("find_symbol", {"name": "Pkg"}), ("find_symbol", {"name": ""})]
    for name in sorted(names):
        for match in ("auto", "exact", "prefix"):
            calls.append(("find_symbol", {"name": name[:3], "match": match}))
            calls.append(("find_symbol", {"name": name, "match": match, "kind": "method", "limit": 2}))
    scopes = [None, "pkg", "pkg.core", "tests", *(s for (s,) in served.query("SELECT name FROM analytics.subsystems"))]
    for metric in ("complexity", "size", "fan_in", "pagerank", "betweenness"):
        calls += [("hotspots", {"metric": metric, "scope": scope, "limit": 3}) for scope in scopes]
    calls += [("module_info", {"module": m}) for (m,) in served.query("SELECT module FROM core.modules")]
    from_index = [getattr(service, tool)(**args) for tool, args in calls]
    index.prefixes, index.hot_ranked, index.function_graph = None, None, None  # as before the extras are loaded: SQL answers
    assert [getattr(service, tool)(**args) for tool, args in calls] == from_index
    assert sum("prefix matches" in text for text, _ in from_index) > 10
    assert sum("hotspots by" in text and ": 0" not in text.splitlines()[1] for text, _ in from_index) > 10
