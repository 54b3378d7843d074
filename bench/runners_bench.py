"""Benchmark the runners: local, Prefect threads (ephemeral and with a running server), Prefect-Dask.

    python bench/runners_bench.py REPO_OR_BUNDLE [--workers 2] [--repeat 3] [--skip prefect-ephemeral ...] [--json OUT]

The repository (a path or a git bundle) is cloned into a temporary directory.  Each export runs
in a fresh process, cold (new database) and then again with no change; we report the wall time
of the process and the pipeline run's own time from the ledger (`meta.pipeline_runs`), and list
the steps whose ledger intervals (`meta.step_runs` started_at/finished_at) overlap in time.
"Server" runs use a `prefect server` this script starts on a free port and always stops.
With `--repeat N` each runner does N cold + no-change pairs (a new database each) and the
figures are medians (all samples are kept in the JSON). The closing lines compare against the
targets: step granularity against a running server vs local (cold wall), Prefect-Dask vs local
with `--workers` workers and vs local with one worker (`local-1w`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

RUNNERS: dict[str, tuple[str, list[str], bool]] = {
    # name -> (python module, extra args, needs the running server)
    "local": ("flows.local", ["--quiet"], False),
    "local-1w": ("flows.local", ["--quiet", "--workers", "1"], False),
    "prefect-ephemeral": ("flows.prefect_flow", [], False),
    "prefect-server": ("flows.prefect_flow", [], True),
    "prefect-server-pipeline": ("flows.prefect_flow", ["--granularity", "pipeline"], True),
    "prefect-dask": ("flows.prefect_flow", ["--runner", "dask", "--dask-workers", "2"], True),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A `prefect server` on a free port for the duration of the block; yields its API URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    cmd = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("prefect server did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def run_export(module: str, repo: Path, db: Path, args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", module, str(repo), "--db", str(db), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return took


def ledger_runs(db: Path) -> list[dict[str, Any]]:
    """Each pipeline run (oldest first): its own seconds and the step pairs that overlapped."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute(
            "SELECT run_id, epoch(finished_at) - epoch(started_at) FROM meta.pipeline_runs ORDER BY started_at"
        ).fetchall()
        out = []
        for run_id, seconds in runs:
            steps = con.execute(
                "SELECT step, epoch(started_at), epoch(finished_at) FROM meta.step_runs WHERE run_id = ? AND started_at IS NOT NULL",
                [run_id],
            ).fetchall()
            overlaps = sorted(f"{a}|{b}" for a, s1, f1 in steps for b, s2, f2 in steps if a < b and s1 < f2 and s2 < f1)
            out.append({"pipeline_s": round(seconds, 2), "overlapping_steps": overlaps})
        return out
    finally:
        con.close()


def measure(
    name: str, repo: Path, tmp: Path, workers: int, repeat: int, base_env: dict[str, str], url: str
) -> dict[str, Any]:
    """`repeat` cold + no-change pairs of one runner (a new database each); medians and samples."""
    module, extra, needs_server = RUNNERS[name]
    env = {**base_env, "PREFECT_API_URL": url} if needs_server else base_env
    if "--workers" not in extra:
        extra = [*extra, "--workers", str(workers)]
    samples = []
    for index in range(repeat):
        db = tmp / name / str(index) / "codeintel.duckdb"
        walls = [run_export(module, repo, db, extra, env) for _ in ("cold", "no-change")]
        ledger = ledger_runs(db)
        samples.append(
            {
                "cold_wall_s": round(walls[0], 2),
                "nochange_wall_s": round(walls[1], 2),
                "cold_pipeline_s": ledger[0]["pipeline_s"],
                "nochange_pipeline_s": ledger[1]["pipeline_s"],
                "overlapping_steps_cold": ledger[0]["overlapping_steps"],
            }
        )
    keys = ("cold_wall_s", "nochange_wall_s", "cold_pipeline_s", "nochange_pipeline_s")
    summary: dict[str, Any] = {key: round(statistics.median(s[key] for s in samples), 2) for key in keys}
    summary["overlapping_steps_cold"] = samples[-1]["overlapping_steps_cold"]
    summary["samples"] = samples
    return summary


def verdict(results: dict[str, Any], workers: int) -> list[str]:
    """The targets of the runners, as far as the runners measured allow."""
    lines = []
    cold = {name: r["cold_wall_s"] for name, r in results.items()}
    if "local" in cold and "prefect-server" in cold:
        lines.append(f"step granularity vs local, cold wall: +{cold['prefect-server'] - cold['local']:.2f} s (target <= 3 s)")
    if "local" in cold and "prefect-dask" in cold:
        ratio = cold["prefect-dask"] / cold["local"]
        lines.append(f"prefect-dask / local ({workers} workers), cold wall: {ratio:.2f}x (target <= 1.2x)")
    if "local-1w" in cold and "prefect-dask" in cold:
        ratio = cold["local-1w"] / cold["prefect-dask"]
        lines.append(f"local-1w / prefect-dask, cold wall: {ratio:.2f}x faster (target >= 1.5x)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(RUNNERS))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeat", type=int, default=1, help="cold + no-change pairs per runner (medians)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="runners_bench_") as tmp_name:
        tmp = Path(tmp_name)
        repo = tmp / "repo"
        subprocess.run(["git", "clone", "-q", str(args.repo.resolve()), str(repo)], check=True)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CODEINTEL_"))}
        base_env.update(PREFECT_HOME=str(tmp / "prefect-ephemeral"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        wanted = [name for name in RUNNERS if name not in args.skip]
        with prefect_server(tmp / "prefect-server") as url:
            for name in wanted:
                results[name] = measure(name, repo, tmp, args.workers, args.repeat, base_env, url)
                print(f"{name:<24} {json.dumps({k: v for k, v in results[name].items() if k != 'samples'})}", flush=True)
    for line in verdict(results, args.workers):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
