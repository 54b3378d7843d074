"""Dumps for other tools: round trip, byte-identical for the same commit, swapped atomically, and
written after each publish when an out dir is configured (CLI flag, environment, pyproject)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from serving_support import SERVED_STEPS, Project, Served, republish

from codeintel.cli import main as cli
from codeintel.config import load_config
from codeintel.serving.dump import MANIFEST, DumpError, dump_published, read_manifest


def _db_rows(db: Path, name: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{db}' AS d (READ_ONLY)")
        con.execute("USE d")
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(f"SELECT * FROM {name}").fetchall()
    finally:
        con.close()


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dump_reads_back_as_the_tables_and_views_it_came_from(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = dump_published(served.db, out)
    where, manifest = read_manifest(out)
    run_id, commit = served.query("SELECT run_id, commit FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1")[0]
    assert (manifest["run_id"], manifest["commit"]) == (run_id, commit)
    tables = {f"{s}.{t}" for s, t in served.query("SELECT schema_name, table_name FROM duckdb_tables()")}
    views = {f"docs.{v}" for (v,) in served.query("SELECT view_name FROM duckdb_views() WHERE schema_name = 'docs'")}
    names = {e["name"] for e in manifest["files"]}
    assert names == tables | views and {"docs.v_function_summary", "docs.symbols", "graph.call_edges"} <= names
    assert done.files == len(manifest["files"]) == 2 * len(names)
    for entry in manifest["files"]:
        path = where / entry["file"]
        assert entry["sha256"] == _sha(path) and entry["bytes"] == path.stat().st_size
        assert (entry["commit"], entry["run_id"]) == (commit, run_id)
        expected = _db_rows(served.db, entry["name"])
        if entry["format"] == "parquet":
            table = pq.read_table(path)
            assert table.column_names == [c["name"] for c in entry["columns"]]
            got = sorted((tuple(_json_value(v) for v in r.values()) for r in table.to_pylist()), key=repr)
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            got = sorted((tuple(json.loads(line).values()) for line in lines), key=repr)
        assert entry["rows"] == len(expected), entry["name"]
        assert got == sorted((tuple(_json_value(v) for v in r) for r in expected), key=repr), entry["file"]
    assert pq.ParquetFile(where / "core.goids.parquet").metadata.row_group(0).column(0).compression == "ZSTD"


def test_the_same_commit_dumps_to_the_same_bytes(served: Served, tmp_path: Path) -> None:
    first = dump_published(served.db, tmp_path / "a")
    second = dump_published(served.db, tmp_path / "b")
    files = sorted(p.name for p in first.version_dir.iterdir())
    assert files == sorted(p.name for p in second.version_dir.iterdir())
    assert all(_sha(first.version_dir / f) == _sha(second.version_dir / f) for f in files)  # the manifest too
    again = dump_published(served.db, tmp_path / "a")
    assert not again.changed and again.version_dir == first.version_dir
    # a second, separate pipeline run of the same commit into another database
    other = Project(served.repo, tmp_path / "other" / "codeintel.duckdb")
    other.run()
    third = dump_published(other.db, tmp_path / "c")
    _, manifest = read_manifest(tmp_path / "c")
    per_run = {e["file"] for e in manifest["files"] if e["per_run"]}
    assert per_run and all(f.startswith(("meta.", "core.change_state.")) for f in per_run)
    same = [e["file"] for e in manifest["files"] if not e["per_run"]]
    differing = [f for f in same if _sha(first.version_dir / f) != _sha(third.version_dir / f)]
    assert differing == []


def test_a_reader_sees_the_old_set_or_the_new_one_never_a_mix(served: Served, tmp_path: Path) -> None:
    old_db = tmp_path / "old.duckdb"
    old_db.write_bytes(served.db.read_bytes())
    republish(served)
    out = tmp_path / "out"
    stop = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                where, manifest = read_manifest(out)
                for entry in manifest["files"]:
                    if _sha(where / entry["file"]) != entry["sha256"] or entry["run_id"] != manifest["run_id"]:
                        problems.append(f"{where.name}: {entry['file']} does not match its manifest")
                seen.add(manifest["run_id"])
            except FileNotFoundError as exc:
                if out.exists():
                    problems.append(str(exc))

    dump_published(old_db, out, ["parquet"])
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for db in (served.db, old_db, served.db):
            dump_published(db, out, ["parquet"])
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len(seen) == 2
    versions = [p for p in (tmp_path / ".out.versions").iterdir() if not p.name.startswith(".")]
    assert len(versions) <= 2


def test_a_dump_never_replaces_what_is_not_its_own(served: Served, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(DumpError, match="did not make"):
        dump_published(served.db, busy)
    a_file = tmp_path / "file"
    a_file.write_text("keep", encoding="utf-8")
    with pytest.raises(DumpError):
        dump_published(served.db, a_file)
    elsewhere = tmp_path / "link"
    elsewhere.symlink_to(busy)
    with pytest.raises(DumpError, match="not to a CodeIntel dump"):
        dump_published(served.db, elsewhere)
    assert (busy / "precious.txt").read_text(encoding="utf-8") == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert dump_published(served.db, empty, ["jsonl"]).files > 0


def test_codeintel_dump_writes_the_formats_asked_for(served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "parquet-only"
    assert cli(["dump", str(out), "--db", str(served.db), "--format", "parquet"]) == 0
    assert "dumped:" in capsys.readouterr().out
    where, manifest = read_manifest(out)
    assert {e["format"] for e in manifest["files"]} == {"parquet"}
    assert sorted(p.name for p in where.iterdir()) == sorted([MANIFEST, *(e["file"] for e in manifest["files"])])
    assert cli(["dump", str(tmp_path / "busy-file"), "--db", str(tmp_path / "missing.duckdb")]) == 2


def test_export_dumps_after_publishing_when_an_out_dir_is_configured(served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exported"
    served.project.apply({"pkg/later.py": "def later():\n    return 2\n"})
    code = cli([
        "export", str(served.repo), "--db", str(served.db), "--executor", "serial", "--quiet", "--out-dir", str(out),
        "--select", *SERVED_STEPS,
    ])  # fmt: skip
    assert code == 0, capsys.readouterr()
    _, manifest = read_manifest(out)
    (run_id,) = served.query("SELECT run_id FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1")[0]
    assert manifest["run_id"] == run_id
    assert any(e["name"] == "docs.symbols" and e["rows"] > 0 for e in manifest["files"])


def test_the_out_dir_comes_from_flag_environment_or_pyproject(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert load_config(repo, env={}).storage.out_dir is None
    (repo / "pyproject.toml").write_text('[tool.codeintel]\nout_dir = "from-pyproject"\n', encoding="utf-8")
    assert load_config(repo, env={}).storage.out_dir == Path("from-pyproject")
    assert load_config(repo, env={"CODEINTEL_OUT_DIR": "from-env"}).storage.out_dir == Path("from-env")
    cli_dir = tmp_path / "flag"
    assert load_config(repo, cli={"out_dir": cli_dir}, env={"CODEINTEL_OUT_DIR": "x"}).storage.out_dir == cli_dir


@pytest.mark.slow
def test_the_prefect_flow_dumps_after_publishing(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "flow-out"
    # a new PREFECT_HOME: the temporary server first builds its database, which on a slow machine
    # takes longer than Prefect's 20 s to answer (90 s, as the flows' test harness allows)
    env = {
        **os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "flows.prefect_flow", str(served.repo), "--db", str(served.db), "--out-dir", str(out), "--workers", "1",
         "--select", *SERVED_STEPS],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    _, manifest = read_manifest(out)
    (run_id, mode) = served.query("SELECT run_id, mode FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1")[0]
    assert manifest["run_id"] == run_id and mode == "prefect"
