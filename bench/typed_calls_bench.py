"""What the type checker adds to the call graph, measured on an exported database.

Usage: ``python bench/typed_calls_bench.py DB [--sample N] [--repo DIR]``.  DB is a database that
`codeintel export` wrote with SCIP (pyrefly installed).  Prints:

1. call sites resolved to a repository function, method or class: by the points-to analysis
   (graph.call_edges) and after the merge (graph.call_edges_merged), and the sites only SCIP
   resolves;
2. agreement: of the sites the points-to analysis resolves to the repository and whose called
   name SCIP resolves to anything (repository or external), how many SCIP confirms;
3. merged edges by resolution, the table's rows, and how long call_graph_types and symbol_uses
   took in the last run (meta.step_runs), with symbol_uses' row counts;
4. with --sample N: N edges that only SCIP gives, drawn by a fixed hash (the same DB gives the
   same sample), with the source lines before each site (from --repo, else the indexed checkout)
   for a hand check.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

SITE = "count(DISTINCT (path, line, col))"
CALLED = r"regexp_extract(callee_text, '([A-Za-z_][A-Za-z0-9_]*)\s*$', 1)"

AGREEMENT_SQL = f"""
WITH pt AS (SELECT DISTINCT path, line, col, {CALLED} AS called FROM graph.call_edges WHERE callee_goid IS NOT NULL),
sc AS (SELECT DISTINCT n.path, n.call_line AS line, n.call_col AS col, n.name AS called
       FROM core.name_sites n
       JOIN core.scip_occurrences o ON o.path = n.path AND o.line = n.line AND o.col = n.col AND NOT o.is_definition
       WHERE n.call_line IS NOT NULL AND NOT starts_with(o.symbol, 'local ')),
by_both AS (SELECT DISTINCT path, line, col FROM pt JOIN sc USING (path, line, col, called)),
agreed AS (SELECT DISTINCT path, line, col FROM graph.call_edges_merged WHERE ends_with(resolution, '+scip'))
SELECT count(*), count(a.path) FROM by_both b LEFT JOIN agreed a USING (path, line, col)
"""

SAMPLE_SQL = """
SELECT m.path, m.line, m.col, m.callee_text, m.callee, m.kind, m.confidence, g.path, g.start_line,
       (SELECT list(e.kind || ' ' || coalesce(e.callee, '-') ORDER BY e.callee) FROM graph.call_edges e
        WHERE e.path = m.path AND e.line = m.line AND e.col = m.col) AS points_to
FROM graph.call_edges_merged m JOIN core.goids g ON g.goid = m.callee_goid
WHERE m.resolution = 'scip'
ORDER BY md5(m.path || ':' || m.line || ':' || m.col || ':' || m.callee)
LIMIT ?
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--repo", type=Path, default=None)
    args = parser.parse_args()
    con = duckdb.connect(str(args.db), read_only=True)

    def one(sql: str, params: list[object] | None = None) -> tuple:  # type: ignore[type-arg]
        found = con.execute(sql, params or []).fetchone()
        assert found is not None
        return found

    before = one(f"SELECT {SITE} FROM graph.call_edges WHERE callee_goid IS NOT NULL")[0]
    after = one(f"SELECT {SITE} FROM graph.call_edges_merged WHERE callee_goid IS NOT NULL")[0]
    print(f"call sites resolved to the repository: points-to {before:,}, merged {after:,} (+{after - before:,})")
    both, agreed = one(AGREEMENT_SQL)
    share = f"{100 * agreed / both:.1f} %" if both else "-"
    print(f"points-to sites SCIP also resolves (repository or external): {both:,}; SCIP confirms {agreed:,} ({share})")
    for resolution, n in con.execute(
        "SELECT resolution, count(*) FROM graph.call_edges_merged GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall():
        print(f"  {resolution:>16}: {n:,}")
    rows = one("SELECT (SELECT count(*) FROM graph.call_edges), (SELECT count(*) FROM graph.call_edges_merged)")
    print(f"rows: graph.call_edges {rows[0]:,}, graph.call_edges_merged {rows[1]:,}")
    for step, seconds, written, note in con.execute(
        """SELECT step, epoch(finished_at - started_at), rows_written, note FROM meta.step_runs
           WHERE run_id = (SELECT run_id FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1)
             AND step IN ('call_graph', 'scip_ingest', 'cst_ingest', 'call_graph_types', 'symbol_uses')
           ORDER BY started_at"""
    ).fetchall():
        print(f"step {step}: {seconds:.2f} s, {written:,} rows ({note})")
    if args.sample:
        root = args.repo or Path(one("SELECT repo_root FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1")[0])
        print(f"\n{args.sample} edges only SCIP gives:")
        for i, (path, line, col, text, callee, kind, conf, def_path, def_line, pt) in enumerate(
            con.execute(SAMPLE_SQL, [args.sample]).fetchall(), start=1
        ):
            print(f"#{i} {path}:{line}:{col} {text!r} -> {callee} ({kind}, {conf}) defined {def_path}:{def_line}")
            print(f"   points-to: {pt or 'no row'}")
            source = (root / path).read_text(encoding="utf-8", errors="replace").splitlines()
            for at in range(max(0, line - 3), line):
                print(f"   {at + 1:>5} {source[at]}")


if __name__ == "__main__":
    main()
