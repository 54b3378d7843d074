"""Time the MCP server on a published database, through a real stdio client, warm.

Usage: ``python bench/serving_bench.py DB [--repo PATH] [--calls 30] [--starts 5] [--json OUT]``.
DB is a database published by ``codeintel export`` (e.g. of ../shared/corpora/sqlalchemy.bundle).
Each start is the product command ``python -m codeintel mcp --db DB`` under the SDK's stdio
client: the time from spawning it to a completed handshake (the client's ``__aenter__``).  Then,
on one warm session, every tool is called with inputs drawn from the database itself (the most
called functions and methods, a fixed-seed sample of the others, modules, subsystems, and the
repository's last commits that touch Python files, for ``impact``): each input once to warm up,
then timed.  Reports, per tool and per target group, p50/p95/max latency in ms, the server's mean
CPU time per call (user + system of the server process, a figure the machine's load does not
inflate), the server's RSS at the end and its peak, and the tokens (characters / 4) of every answer at default settings: p50, p95, max.

Targets (issue 13, 2-core machine): lookups and depth-1 graph calls p95 <= 50 ms; depth-3
traversals and impact p95 <= 300 ms; start <= 1.5 s; answers p95 <= 2,000 tokens, max <= 8,000.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import duckdb
import psutil
from mcp import Client
from mcp.client.stdio import StdioServerParameters

GROUPS = {
    "lookup": ("status", "find_symbol", "get_symbol", "module_info", "subsystems", "describe", "hotspots", "sql"),
    "graph depth 1": ("call_graph d1",),
    "traversal depth 3": ("call_graph d3", "trace_path", "tests_for d3"),
    "impact": ("impact ref", "impact symbols"),
}
TARGETS_MS = {"lookup": 50, "graph depth 1": 50, "traversal depth 3": 300, "impact": 300}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def inputs(db: Path, repo: Path | None, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, tool, arguments) of every call to time, drawn from the database."""
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{db}' AS d (READ_ONLY)")
    con.execute("USE d")
    top = [r[0] for r in con.execute(
        "SELECT full_name FROM docs.symbols WHERE kind IN ('function', 'method') AND callers > 0 AND NOT is_test "
        "ORDER BY callers DESC, goid LIMIT ?", [n // 2],
    ).fetchall()]  # fmt: skip
    sample = [r[0] for r in con.execute(
        "SELECT full_name FROM docs.symbols WHERE kind IN ('function', 'method') AND callers > 0 "
        "ORDER BY hash(goid), goid LIMIT ?", [n - len(top)],
    ).fetchall()]  # fmt: skip
    symbols = list(dict.fromkeys(top + sample))
    modules = [r[0] for r in con.execute("SELECT module FROM core.modules ORDER BY hash(module), module LIMIT ?", [n]).fetchall()]
    subsystems = [r[0] for r in con.execute("SELECT name FROM analytics.subsystems ORDER BY name").fetchall()]
    prefixes = sorted({s.rsplit(".", 1)[-1][:4] for s in symbols})[:n]
    root = repo or Path(con.execute("SELECT repo_root FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1").fetchone()[0])  # type: ignore[index]
    con.close()
    commits = []
    if (root / ".git").exists():
        log = subprocess.run(
            ["git", "log", "--format=%H", "-n", str(n), "--no-merges", "--", "*.py"], cwd=root, capture_output=True, text=True, check=False
        )
        commits = log.stdout.split()
    calls: list[tuple[str, str, dict[str, Any]]] = [("status", "status", {})]
    calls += [("describe", "describe", {}), ("describe", "describe", {"name": "docs.v_function_summary"})]
    calls += [("find_symbol", "find_symbol", {"name": p}) for p in prefixes]
    calls += [("find_symbol", "find_symbol", {"name": s.rsplit(".", 1)[-1]}) for s in symbols[: n // 2]]
    calls += [("get_symbol", "get_symbol", {"symbol": s}) for s in symbols]
    calls += [("module_info", "module_info", {"module": m}) for m in modules]
    calls += [("subsystems", "subsystems", {})] + [("subsystems", "subsystems", {"name": s}) for s in subsystems]
    for metric in ("complexity", "size", "fan_in", "pagerank", "betweenness"):
        calls.append(("hotspots", "hotspots", {"metric": metric}))
        calls += [("hotspots", "hotspots", {"metric": metric, "scope": m.rsplit(".", 1)[0]}) for m in modules[:3]]
    calls += [("sql", "sql", {"query": f"SELECT full_name, cyclomatic FROM docs.v_function_summary WHERE module = '{m}' ORDER BY cyclomatic DESC, goid LIMIT 20"}) for m in modules[:10]]
    for s in symbols:
        calls.append(("call_graph d1", "call_graph", {"symbol": s, "direction": "callers"}))
        calls.append(("call_graph d1", "call_graph", {"symbol": s, "direction": "callees"}))
        calls.append(("call_graph d3", "call_graph", {"symbol": s, "direction": "callers", "depth": 3}))
        calls.append(("call_graph d3", "call_graph", {"symbol": s, "direction": "callees", "depth": 3}))
        calls.append(("tests_for d3", "tests_for", {"symbol": s, "depth": 3}))
        calls.append(("tests_for d5", "tests_for", {"symbol": s}))
    for a, b in zip(symbols, symbols[1:] + symbols[:1], strict=True):
        calls.append(("trace_path", "trace_path", {"source": a, "target": b, "max_depth": 3}))
    calls += [("impact ref", "impact", {"ref": c}) for c in commits]
    calls += [("impact symbols", "impact", {"symbols": [s]}) for s in symbols[: n // 2]]
    return calls


async def time_start(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params):
        return time.perf_counter() - started


def _server_memory() -> tuple[float, float]:
    """(RSS now, peak RSS) of the server process in MB (peak: VmHWM from /proc, Linux)."""
    for child in psutil.Process().children(recursive=True):
        try:
            if "mcp" in child.cmdline():
                rss = child.memory_info().rss / 2**20
                peak = rss
                status = Path(f"/proc/{child.pid}/status")
                if status.exists():
                    for line in status.read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak = int(line.split()[1]) / 1024
                return round(rss, 1), round(peak, 1)
        except psutil.Error:
            continue
    return float("nan"), float("nan")


def _server_cpu() -> float:
    """CPU seconds (user + system) of the server: this process's child running `codeintel mcp`."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "mcp" in child.cmdline():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


async def session(params: StdioServerParameters, calls: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, list[int]] = defaultdict(list)
    errors: list[str] = []
    async with Client(params, read_timeout_seconds=60) as client:
        for _label, tool, args in calls:  # warm: every input once (the OS page cache, DuckDB's buffers)
            await client.call_tool(tool, args)
        for label, tool, args in calls:
            started, cpu_before = time.perf_counter(), _server_cpu()
            result = await client.call_tool(tool, args)
            latencies[label].append((time.perf_counter() - started) * 1000)
            cpu[label].append((_server_cpu() - cpu_before) * 1000)
            text = result.content[0].text  # type: ignore[union-attr]
            sizes[label].append(-(-len(text) // 4))
            if result.is_error:
                why = next((line for line in text.splitlines() if line.startswith("error:")), text)
                errors.append(f"{tool} {json.dumps(args)[:120]}: {why[:160]}")
        rss, peak = _server_memory()
    return {"latencies": latencies, "cpu": cpu, "tokens": sizes, "errors": errors, "rss_mb": rss, "peak_rss_mb": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--repo", type=Path, default=None, help="the checkout, if not where it was indexed")
    parser.add_argument("--calls", type=int, default=30, help="symbols (and modules, commits) to draw inputs from")
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    command = ["-m", "codeintel", "mcp", "--db", str(args.db)] + (["--repo", str(args.repo)] if args.repo else [])
    params = StdioServerParameters(command=sys.executable, args=command)
    load_before = os.getloadavg()
    starts = [anyio.run(time_start, params) for _ in range(args.starts)]
    calls = inputs(args.db, args.repo, args.calls)
    found = anyio.run(session, params, calls)
    lat, tok = found["latencies"], found["tokens"]
    report: dict[str, Any] = {
        "db": str(args.db), "load_average_before": load_before, "load_average": os.getloadavg(), "calls": len(calls),
        "start_s": {"median": round(statistics.median(starts), 3), "max": round(max(starts), 3), "all": [round(s, 3) for s in starts]},
        "tools": {}, "groups": {}, "errors": found["errors"],
    }  # fmt: skip
    print(f"server start (spawn to handshake, {len(starts)} starts): median {report['start_s']['median']} s, max {report['start_s']['max']} s  [target <= 1.5 s]")
    print(f"{'tool':<16} {'calls':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu ms':>7} {'tok p50':>8} {'tok p95':>8} {'tok max':>8}")
    for label in sorted(lat):
        values, t = lat[label], tok[label]
        row = {"calls": len(values), "p50_ms": round(percentile(values, 50), 1), "p95_ms": round(percentile(values, 95), 1),
               "max_ms": round(max(values), 1), "server_cpu_ms_mean": round(statistics.mean(found["cpu"][label]), 1),
               "tokens_p50": percentile(t, 50), "tokens_p95": percentile(t, 95), "tokens_max": max(t)}  # fmt: skip
        report["tools"][label] = row
        print(f"{label:<16} {row['calls']:>5} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8} {row['server_cpu_ms_mean']:>7} "
              f"{row['tokens_p50']:>8} {row['tokens_p95']:>8} {row['tokens_max']:>8}")
    for group, labels in GROUPS.items():
        values = [v for label in labels for v in lat.get(label, [])]
        if values:
            p95 = round(percentile(values, 95), 1)
            report["groups"][group] = {"p95_ms": p95, "target_ms": TARGETS_MS[group], "met": p95 <= TARGETS_MS[group]}
            print(f"group {group:<18} p95 {p95:>7} ms  [target <= {TARGETS_MS[group]} ms: {'met' if p95 <= TARGETS_MS[group] else 'MISSED'}]")
    all_tokens = [t for values in tok.values() for t in values]
    report["tokens"] = {"p50": percentile(all_tokens, 50), "p95": percentile(all_tokens, 95), "max": max(all_tokens)}
    print(f"tokens per answer at defaults: p50 {report['tokens']['p50']}, p95 {report['tokens']['p95']}, max {report['tokens']['max']}  [targets p95 <= 2000, max <= 8000]")
    report["server_rss_mb"] = {"end": found["rss_mb"], "peak": found["peak_rss_mb"]}
    print(f"server memory: RSS {found['rss_mb']} MB at the end, peak {found['peak_rss_mb']} MB")
    print(f"error answers: {len(found['errors'])} of {len(calls)}")
    for line in found["errors"][:10]:
        print("  ", line)
    print(f"load average (1, 5, 15 min) before the run: {load_before}, after it: {report['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
