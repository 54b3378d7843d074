"""A run killed with SIGKILL mid-step loses nothing, and readers never see a half-written run.

The killed run is the real CLI in a subprocess on a repo of ~300 files; the test waits until the
ledger shows a per-file step running, kills the process, and checks the published file is
byte-identical, the next run succeeds, the dead run is marked abandoned and its scratch directories
are removed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from codeintel.storage.gateway import open_published

REPO_ROOT = Path(__file__).resolve().parents[2]
N_FILES = 300
KILL_IN = ("ast_ingest", "goids", "function_metrics")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def module_source(i: int, n_functions: int) -> str:
    return "".join(
        f"def f{i}_{j}(a, b=1):\n    if a:\n        return b + {j}\n    for x in range(a):\n        b += x\n    return b\n\n\n"
        for j in range(n_functions)
    )


def published_function_count(db: Path) -> int:
    con = open_published(db)
    try:
        row = con.execute("SELECT count(*) FROM docs.v_function_summary").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def start_export(repo: Path, db: Path, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env = {k: v for k, v in env.items() if not k.startswith("CODEINTEL_")} | {"TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "codeintel", "export", str(repo), "--db", str(db), "--executor", "serial", "--quiet"]
    return subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_running_step(
    indexer: Any, proc: subprocess.Popen[bytes], baseline: int, timeout_s: float = 60
) -> tuple[str, list[int]]:
    """Poll the ledger until the subprocess's run has a per-file step running; meanwhile read
    the published copy as a reader would.  Returns the step and the counts the reader saw."""
    deadline = time.monotonic() + timeout_s
    seen: list[int] = []
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the export finished before it could be killed; make the repo bigger"
        seen.append(published_function_count(indexer.db))
        running = indexer.work_query(
            "SELECT s.step FROM meta.step_runs s JOIN meta.pipeline_runs r USING (run_id) "
            "WHERE r.pid = ? AND s.status = 'running'",
            [proc.pid],
        )
        steps = [r["step"] for r in running if r["step"] in KILL_IN]
        if steps:
            return steps[0], seen
        time.sleep(0.05)
    raise AssertionError("no per-file step was seen running")


def test_a_run_killed_mid_step_leaves_the_published_db_intact_and_the_next_run_succeeds(
    tmp_path: Path, make_repo: Any, make_indexer: Any, monkeypatch: Any
) -> None:
    repo = make_repo(tmp_path, {f"pkg/m{i:03d}.py": module_source(i, 1) for i in range(N_FILES)})
    indexer = make_indexer(repo)
    indexer.run()
    baseline = published_function_count(indexer.db)
    assert baseline == N_FILES
    digest = sha256(indexer.db)

    repo.apply({f"pkg/m{i:03d}.py": module_source(i, 8) for i in range(N_FILES)})
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start_export(repo.root, indexer.db, tmp)
    try:
        step, seen = wait_for_running_step(indexer, proc, baseline)
        time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert seen and set(seen) == {baseline}, "a reader during the run sees the last published data"
    assert sha256(indexer.db) == digest, f"killed in {step}: the published DB must be byte-identical"
    assert published_function_count(indexer.db) == baseline
    left = sorted(p.name for p in tmp.iterdir() if f"-{proc.pid}-" in p.name)
    assert left, "the killed run had a scratch directory (pyrefly's, started after repo_scan)"

    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    rerun = indexer.run()
    assert rerun.ok and rerun.published
    assert published_function_count(indexer.db) == N_FILES * 8
    statuses = dict(indexer.query("SELECT pid, status FROM meta.pipeline_runs"))
    assert statuses[proc.pid] == "abandoned"
    killed_steps = indexer.query(
        "SELECT s.step, s.status FROM meta.step_runs s JOIN meta.pipeline_runs r USING (run_id) WHERE r.pid = ?",
        [proc.pid],
    )
    assert (step, "abandoned") in killed_steps
    assert all(status != "running" for _, status in killed_steps)
    assert not [p for p in left if (tmp / p).exists()], "the next run removes what the killed one left"
