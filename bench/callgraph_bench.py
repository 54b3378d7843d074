"""Time the call-graph pipeline on a real repository: a cold run, then a one-file-edit re-run.

Usage: ``python bench/callgraph_bench.py REPO [--workers 2] [--json OUT]``; REPO is a directory
or a git bundle, cloned into a temporary directory either way. Each run is the product command
``python -m codeintel export CLONE --db TMP/c.duckdb --select call_graph --quiet --workers N``.
Reports per run: wall time, the ``call_graph`` step time from the work DB ledger
(``meta.step_runs``), CPU seconds (user + system) of the export process and of the children it
reaped (the per-file worker pool's processes are not among them, so this is mostly the solve;
steadier than wall time on a shared machine), peak RSS of the whole process tree (psutil,
sampled every 20 ms), the
share of ``graph.call_edges`` rows per ``kind``, and the edges into the edited file that come
from untouched files. The edit appends to a mid-size file a function calling one of its own
top-level functions (new call facts: the whole program is solved again); a second edit then
puts a comment block on top of that file (the same facts up to positions: the stored edges move
to the new positions, no solve).
"""

from __future__ import annotations

import argparse
import ast
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil
from measure import sample_tree


def clone(repo: str, into: Path) -> Path:
    """Clone `repo` (a directory or a bundle) into `into`/repo and return the clone."""
    target = into / "repo"
    subprocess.run(["git", "clone", "-q", repo, str(target)], check=True)
    return target


def run_export(clone_dir: Path, db: Path, workers: int) -> dict[str, float]:
    """Run the export command; return wall seconds, CPU seconds and peak RSS (MB) of its process tree."""
    command = [sys.executable, "-m", "codeintel", "export", str(clone_dir), "--db", str(db)]
    command += ["--select", "call_graph", "--quiet", "--workers", str(workers)]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(command)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        peak = max(peak, sample_tree(root))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"export failed with exit code {process.returncode}: {' '.join(command)}")
    cpu = _children_cpu() - cpu_before  # the export and the children it reaped (not the pool's workers)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak / 2**20, 1)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def step_seconds(work_db: Path) -> dict[str, float]:
    """Seconds of every step of the latest run, from the ledger of the work DB."""
    with duckdb.connect(str(work_db), read_only=True) as con:
        rows = con.execute(
            "SELECT step, epoch(finished_at - started_at) FROM meta.step_runs "
            "WHERE run_id = (SELECT run_id FROM meta.step_runs ORDER BY started_at DESC LIMIT 1)"
        ).fetchall()
    return {step: round(float(seconds), 2) for step, seconds in rows}


def edge_stats(db: Path, edited: str) -> dict[str, object]:
    """Share of call edges per kind and the count of edges into `edited` from other files."""
    with duckdb.connect(str(db), read_only=True) as con:
        kinds = con.execute("SELECT kind, count(*) FROM graph.call_edges GROUP BY kind ORDER BY kind").fetchall()
        into = con.execute(
            "SELECT count(*) FROM graph.call_edges e JOIN core.goids g ON e.callee_goid = g.goid "
            "WHERE g.path = ? AND e.path <> ?",
            [edited, edited],
        ).fetchone()
        sites = con.execute(
            "SELECT how, count(*) FROM (SELECT CASE WHEN bool_or(callee_goid IS NOT NULL) THEN 'internal' "
            "WHEN bool_and(kind = 'unresolved') THEN 'unresolved' ELSE 'external' END AS how "
            "FROM graph.call_edges GROUP BY path, line, col, callee_text) GROUP BY how ORDER BY how"
        ).fetchall()
    by_site: dict[str, int] = {}
    for how, count in sites:
        by_site[how] = by_site.get(how, 0) + count
    n_sites = sum(by_site.values()) or 1
    total = sum(n for _, n in kinds) or 1
    return {
        "edges": total,
        "kind_share": {kind: round(n / total, 3) for kind, n in kinds},
        "sites": n_sites,
        "site_share": {how: round(n / n_sites, 3) for how, n in sorted(by_site.items())},
        "edges_into_edited_from_other_files": into[0] if into else 0,
    }


def pick_file(clone_dir: Path, db: Path) -> tuple[str, str]:
    """A mid-size analysed file (median size) and one of its top-level function names."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT f.path FROM core.files f WHERE f.path LIKE '%.py' AND f.skip_reason IS NULL "
            "AND EXISTS (SELECT 1 FROM core.goids g WHERE g.path = f.path AND g.kind = 'function' "
            "AND position('.' IN g.qualname) = 0) ORDER BY f.size, f.path"
        ).fetchall()
    for (path,) in rows[len(rows) // 2 :] + rows[: len(rows) // 2]:
        tree = ast.parse((clone_dir / path).read_text(encoding="utf-8"))
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.args.args]
        if names:
            return path, names[0]
    raise SystemExit("no file with a top-level function taking no arguments to call")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cgbench") as tmp:
        clone_dir = clone(args.repo, Path(tmp))
        db, work_db = Path(tmp) / "c.duckdb", Path(tmp) / "c.work.duckdb"
        cold = run_export(clone_dir, db, args.workers)
        cold["steps"] = step_seconds(work_db)  # type: ignore[assignment]
        edited, callee = pick_file(clone_dir, db)
        cold.update(edge_stats(db, edited))  # type: ignore[arg-type]
        with (clone_dir / edited).open("a", encoding="utf-8") as handle:
            handle.write(f"\n\ndef _bench_added_caller():\n    return {callee}()\n")
        warm = run_export(clone_dir, db, args.workers)
        warm["steps"] = step_seconds(work_db)  # type: ignore[assignment]
        warm.update(edge_stats(db, edited))  # type: ignore[arg-type]
        # an edit that only moves code: a comment block on top of the same file
        source = (clone_dir / edited).read_text(encoding="utf-8")
        (clone_dir / edited).write_text("# moved by the benchmark\n#\n\n" + source, encoding="utf-8")
        moved = run_export(clone_dir, db, args.workers)
        moved["steps"] = step_seconds(work_db)  # type: ignore[assignment]
        moved.update(edge_stats(db, edited))  # type: ignore[arg-type]
    report = {"repo": args.repo, "edited_file": edited, "called": callee, "cold": cold, "edit": warm, "move_only_edit": moved}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
