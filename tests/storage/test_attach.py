"""The work database attached to a DuckDB instance the process keeps (`storage.attach`), on real
files: each use lets the file go as closing a connection did, a writer's settings end with it, a
forked child builds its own instance, many databases work, and the instance is built once, not per use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from codeintel.config import StorageConfig
from codeintel.storage import attach
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import StorageGateway

OTHER_PROCESS_WRITES = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # DuckDB's own lock: refused while another process has the file
con.execute("INSERT INTO core.files (path) VALUES ('from the other process')")
con.close()
"""


def make_gateway(path: Path) -> StorageGateway:
    gateway = StorageGateway(StorageConfig(db_path=path, lock_timeout_s=5))
    gateway.ensure_schema()
    return gateway


def paths_of(gateway: StorageGateway) -> list[str]:
    return sorted(gateway.query(f"SELECT path FROM {Table.FILES}")["path"].to_pylist())


def test_after_each_read_and_write_another_process_can_open_the_file_itself(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path / "c.duckdb")
    with gateway.writer("test") as w:
        w.execute("INSERT INTO core.files (path) VALUES ('written here')")
    assert paths_of(gateway) == ["written here"]
    # no lock of ours is taken by the other process: only DuckDB's, which a file still attached keeps
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS_WRITES, str(gateway.path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert paths_of(gateway) == ["from the other process", "written here"]
    assert not Path(f"{gateway.path}.wal").exists(), "detaching checkpoints, as closing did"


def test_a_writers_settings_end_with_it(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path / "c.duckdb")
    with gateway.reader() as con:
        defaults = con.execute("SELECT current_setting('threads'), current_setting('memory_limit')").fetchall()
    with gateway.writer("test") as w:
        w.set("threads", 1)
        w.set("memory_limit", "64MB")
        assert w.con.execute("SELECT current_setting('threads')").fetchall() == [(1,)]
    with gateway.reader() as con:
        assert con.execute("SELECT current_setting('threads'), current_setting('memory_limit')").fetchall() == defaults
    with pytest.raises(RuntimeError), gateway.writer("test") as w:  # reset when the writer fails too
        w.set("threads", 1)
        raise RuntimeError("fails")
    with gateway.reader() as con:
        assert con.execute("SELECT current_setting('threads'), current_setting('memory_limit')").fetchall() == defaults


def test_a_failed_statement_leaves_no_database_attached(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path / "c.duckdb")
    with pytest.raises(duckdb.Error), gateway.writer("test") as w:
        w.execute("INSERT INTO core.files (path) VALUES ('kept?')")
        w.execute("INSERT INTO core.files (no_such_column) VALUES (1)")
    with pytest.raises(duckdb.Error), gateway.reader() as con:
        con.execute("SELECT no_such_column FROM core.files")
    instance = attach._instances.by_path[os.fspath(gateway.path)]
    attached = instance.con.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal").fetchall()
    assert attached == [("memory",)]
    assert instance.users == 0
    assert paths_of(gateway) == []


def test_after_a_fork_the_parents_instance_is_left_alone_and_a_new_one_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance inherited through fork() has lost its threads: the child must not use it, nor
    close it.  (Forking this multi-threaded process for real may deadlock the child in malloc, which
    is the very hazard: the child is stood in for by another pid.)"""
    gateway = make_gateway(tmp_path / "c.duckdb")
    assert paths_of(gateway) == []
    parents = attach._instances
    parent_instance = parents.by_path[os.fspath(gateway.path)].con
    monkeypatch.setattr(parents, "pid", os.getpid() + 1)  # as a child sees its parent's
    with gateway.writer("child") as w:
        w.execute("INSERT INTO core.files (path) VALUES ('from the child')")
    assert paths_of(gateway) == ["from the child"]
    assert attach._instances is not parents and attach._instances.pid == os.getpid()
    assert attach._instances.by_path[os.fspath(gateway.path)].con is not parent_instance
    assert parents in attach._inherited
    assert parent_instance.execute("SELECT 1").fetchall() == [(1,)], "the inherited one is not closed"


def test_many_databases_in_turn_each_keep_their_rows_and_few_instances_are_kept(tmp_path: Path) -> None:
    gateways = [make_gateway(tmp_path / f"db{i}" / "c.duckdb") for i in range(attach._KEEP + 3)]
    for round_ in range(2):
        for i, gateway in enumerate(gateways):
            with gateway.writer("test") as w:
                w.execute(f"INSERT INTO core.files (path) VALUES ('{i}-{round_}')")
    assert [paths_of(g) for g in gateways] == [[f"{i}-0", f"{i}-1"] for i in range(len(gateways))]
    assert len(attach._instances.by_path) <= attach._KEEP


def test_reads_and_writes_of_a_database_share_one_instance(tmp_path: Path) -> None:
    """The point of attaching: a use builds no database instance (25-50 ms each), the first one
    builds it for the rest."""
    gateway = make_gateway(tmp_path / "c.duckdb")
    paths_of(gateway)
    instance = attach._instances.by_path[os.fspath(gateway.path)].con
    with gateway.writer("test") as w:
        w.execute("INSERT INTO core.files (path) VALUES ('a')")
    with gateway.reader() as first, gateway.reader() as second:  # readers at once: each its own alias
        assert first.execute("SELECT count(*) FROM core.files").fetchall() == [(1,)]
        assert second.execute("SELECT count(*) FROM core.files").fetchall() == [(1,)]
    assert attach._instances.by_path[os.fspath(gateway.path)].con is instance
