"""Benchmark `codeintel export`: cold run, no-change re-run and one-file-edit re-run.

    python bench/export_bench.py REPO_OR_BUNDLE [--workers 2] [--select S ...] [--json OUT]

The repository (a path or a git bundle) is cloned into a temporary directory, so the edit never
touches the original; the codeintel package is byte-compiled first, as an installation has it
(`measure.compile_package`).  Each run is a fresh process; we report its wall time, the pipeline's own
time (without interpreter start and imports), files/s, and the peak RSS summed over the process
and all its children (the worker pool), sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from measure import compile_package

RUNNER = """
import json, sys, time
from pathlib import Path
from codeintel.cli import build_config, build_parser
from codeintel.orchestration.context import PipelineContext
from codeintel.orchestration.steps import run_pipeline
args = build_parser().parse_args(sys.argv[1:])
cfg = build_config(args, "bench")
t0 = time.perf_counter()
with PipelineContext(cfg) as ctx:
    run = run_pipeline(ctx, args.select, args.exclude)
took = time.perf_counter() - t0
files = run.results["repo_scan"].files_processed if "repo_scan" in run.results else 0
steps = {k: [v.files_processed, v.rows_written] for k, v in run.results.items()}
print(json.dumps({"pipeline_s": took, "files": files, "steps": steps}))
"""


def run_measured(argv: list[str]) -> dict[str, object]:
    """Run one export in a fresh interpreter; wall time, pipeline time, peak RSS of the tree."""
    started = time.perf_counter()
    proc = psutil.Popen(
        [sys.executable, "-c", RUNNER, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    while proc.poll() is None:
        try:
            procs = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"export failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall_s=round(wall, 3), peak_rss_mb=round(peak / 2**20, 1))
    result["pipeline_s"] = round(float(result["pipeline_s"]), 3)
    return result


def edit_one_file(repo: Path) -> str:
    """Append a small function to a mid-sized tracked .py file; returns its path."""
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    sized = sorted((repo.joinpath(f).stat().st_size, f) for f in files if repo.joinpath(f).is_file())
    path = sized[len(sized) // 2][1]
    with open(repo / path, "a", encoding="utf-8") as handle:
        handle.write("\n\ndef _bench_added(x):\n    if x:\n        return x + 1\n    return 0\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", default="process")
    parser.add_argument("--select", nargs="+", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="codeintel-bench-") as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", args.repo, str(repo)], check=True)
        db = Path(tmp) / "out" / "codeintel.duckdb"
        argv = [
            "export",
            str(repo),
            "--db",
            str(db),
            "--quiet",
            "--workers",
            str(args.workers),
            "--executor",
            args.executor,
        ]
        if args.select:
            argv += ["--select", *args.select]
        results = {"cold": run_measured(argv), "no_change": run_measured(argv)}
        edited = edit_one_file(repo)
        results["one_file_edit"] = run_measured(argv)
        results["one_file_edit"]["edited"] = edited
    print(f"{'run':<15}{'wall s':>9}{'pipeline s':>12}{'files':>8}{'files/s':>10}{'peak RSS MB':>13}")
    for name, r in results.items():
        rate = float(r["files"]) / float(r["pipeline_s"]) if float(r["pipeline_s"]) else 0.0  # type: ignore[arg-type]
        print(f"{name:<15}{r['wall_s']:>9}{r['pipeline_s']:>12}{r['files']:>8}{rate:>10.0f}{r['peak_rss_mb']:>13}")
    for name, r in results.items():
        print(f"  {name}: " + ", ".join(f"{k}={v[0]}f/{v[1]}r" for k, v in r["steps"].items()))  # type: ignore[union-attr]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
