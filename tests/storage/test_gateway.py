"""StorageGateway on real DuckDB files: schema creation, version check, the inter-process lock,
transactions and atomic publishing.

The lock tests hold the writer lock from a real second process (a small Python script).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from codeintel.config import StorageConfig
from codeintel.errors import StorageError, StorageLockTimeout
from codeintel.storage import gateway as gateway_module
from codeintel.storage.attach import Attached
from codeintel.storage.catalog import CATALOG, SCHEMA_VERSION, Table
from codeintel.storage.gateway import StorageGateway, open_published, to_arrow

REPO_ROOT = Path(__file__).resolve().parents[2]

HOLDER_SCRIPT = """
import sys
from pathlib import Path
from codeintel.config import StorageConfig
from codeintel.storage.gateway import StorageGateway

gateway = StorageGateway(StorageConfig(db_path=Path(sys.argv[1]), lock_timeout_s=30))
with gateway.writer("test holder") as w:
    w.execute("INSERT INTO core.files (path) VALUES ('written-by-holder')")
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def make_gateway(tmp_path: Path, lock_timeout_s: float = 5.0) -> StorageGateway:
    gateway = StorageGateway(StorageConfig(db_path=tmp_path / "out" / "c.duckdb", lock_timeout_s=lock_timeout_s))
    gateway.ensure_schema()
    return gateway


def files_paths(gateway: StorageGateway) -> list[str]:
    return sorted(gateway.query("SELECT path FROM core.files")["path"].to_pylist())


@dataclass
class Holder:
    """A second process that holds the writer lock until released."""

    proc: subprocess.Popen[str]

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[Holder]:
    make_gateway(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(tmp_path / "out" / "c.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    holder = Holder(proc)
    try:
        yield holder
    finally:
        if proc.poll() is None:
            holder.release()
        proc.wait(timeout=30)


# ------------------------------------------------------------------------------- schema


def test_every_catalog_table_is_created_on_first_open(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    found = gateway.query("SELECT schema_name || '.' || table_name AS t FROM duckdb_tables()")["t"].to_pylist()
    assert set(CATALOG) <= set(found)
    assert gateway.query("SELECT version FROM meta.schema_version")["version"].to_pylist() == [SCHEMA_VERSION]


def test_reopening_recreates_a_missing_table_and_drops_nothing(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("test") as w:
        w.insert(Table.FILES, [{"path": "a.py", "module": "a"}])
        w.execute(f"DROP TABLE {Table.GOIDS}")
    gateway.ensure_schema()
    gateway.ensure_schema()
    assert files_paths(gateway) == ["a.py"]
    assert gateway.query(f"SELECT count(*) AS n FROM {Table.GOIDS}")["n"].to_pylist() == [0]
    assert gateway.query("SELECT count(*) AS n FROM meta.schema_version")["n"].to_pylist() == [1]


def test_a_database_of_a_newer_schema_version_is_refused_and_kept(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("test") as w:
        w.execute("UPDATE meta.schema_version SET version = 999")
    before = gateway.path.read_bytes()
    with pytest.raises(StorageError, match=rf"schema version 999.*newer CodeIntel.*schema {SCHEMA_VERSION}") as error:
        gateway.ensure_schema()
    assert str(gateway.path) in str(error.value)
    assert gateway.path.read_bytes() == before


def test_a_work_database_of_an_older_schema_version_is_rebuilt(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("test") as w:
        w.execute("UPDATE meta.schema_version SET version = 1")
        w.execute("INSERT INTO core.files (path) VALUES ('old.py')")
    gateway.ensure_schema()
    assert files_paths(gateway) == []
    assert gateway.query("SELECT version FROM meta.schema_version")["version"].to_pylist() == [SCHEMA_VERSION]


def test_a_file_that_is_not_a_database_is_refused_naming_it_and_kept(tmp_path: Path) -> None:
    config = StorageConfig(db_path=tmp_path / "c.duckdb", lock_timeout_s=1)
    config.work_db_path.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(StorageError, match=r"c\.work\.duckdb exists and is not a CodeIntel database.*--db"):
        StorageGateway(config).ensure_schema()
    assert config.work_db_path.read_bytes() == b"this is not a duckdb file" * 100


def test_reading_before_any_export_says_to_run_export(tmp_path: Path) -> None:
    gateway = StorageGateway(StorageConfig(db_path=tmp_path / "none.duckdb", lock_timeout_s=1))
    with pytest.raises(StorageError, match="codeintel export"):
        gateway.query("SELECT 1")
    with pytest.raises(StorageError, match="codeintel export"):
        open_published(tmp_path / "none.duckdb")


# ------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class _Module:
    module: str
    path: str
    is_package: bool
    package: str | None
    source_root: str


def test_a_writers_commit_goes_into_the_database_file_not_into_a_log_read_back_at_close(tmp_path: Path) -> None:
    """Closing the writer's connection checkpoints: a log written at commit would be read back
    at once, so the commit checkpoints instead (no log left behind it, rows all there)."""
    gateway = make_gateway(tmp_path)
    wal = Path(f"{gateway.path}.wal")
    text = "# a comment long enough to weigh"
    rows = [(f"m{i}.py", i, 0, 3, text, "own_line", "g", None, None, None, None) for i in range(20_000)]
    with gateway.writer("test") as w:
        w.insert(Table.COMMENTS, to_arrow(Table.COMMENTS, rows))
        w.con.execute("COMMIT")
        assert not wal.exists() or wal.stat().st_size == 0
        w.con.execute("BEGIN TRANSACTION")
    assert gateway.query(f"SELECT count(*) AS n FROM {Table.COMMENTS}")["n"].to_pylist() == [len(rows)]


def test_to_arrow_accepts_dataclasses_mappings_and_tuples_in_catalog_order(tmp_path: Path) -> None:
    rows = [
        _Module("a", "a.py", False, None, ""),
        {"path": "b/__init__.py", "module": "b", "is_package": True},
        ("b.c", "b/c.py", False, "b", ""),
    ]
    table = to_arrow(Table.MODULES, rows)
    assert table.schema.names == list(CATALOG[Table.MODULES].column_names)
    assert table.column("module").to_pylist() == ["a", "b", "b.c"]
    assert table.column("package").to_pylist() == [None, None, "b"]


# ----------------------------------------------------------------------------------- lock


def test_a_second_writer_waits_for_the_lock_and_proceeds_when_it_is_released(
    tmp_path: Path, lock_holder: Holder
) -> None:
    gateway = StorageGateway(StorageConfig(db_path=tmp_path / "out" / "c.duckdb", lock_timeout_s=30))
    timer = threading.Timer(0.6, lock_holder.release)
    started = time.monotonic()
    timer.start()
    try:
        with gateway.writer("second writer") as w:
            waited = time.monotonic() - started
            w.execute("INSERT INTO core.files (path) VALUES ('written-by-second')")
    finally:
        timer.cancel()
    assert waited >= 0.5, "the second writer must wait for the holder"
    assert files_paths(gateway) == ["written-by-holder", "written-by-second"]


def test_a_writer_times_out_naming_the_lock_file_and_its_holder(tmp_path: Path, lock_holder: Holder) -> None:
    gateway = StorageGateway(StorageConfig(db_path=tmp_path / "out" / "c.duckdb", lock_timeout_s=0.3))
    with pytest.raises(StorageLockTimeout) as error, gateway.writer("second writer"):
        pass
    message = str(error.value)
    assert str(gateway.config.lock_path) in message
    assert f"pid={lock_holder.proc.pid}" in message and "holder=test holder" in message
    assert "lock timeout" in message


def test_a_reader_waits_for_a_writer_too(tmp_path: Path, lock_holder: Holder) -> None:
    gateway = StorageGateway(StorageConfig(db_path=tmp_path / "out" / "c.duckdb", lock_timeout_s=0.3))
    with pytest.raises(StorageLockTimeout):
        gateway.query("SELECT 1")


def test_readers_share_the_lock(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path, lock_timeout_s=0.3)
    with gateway.reader() as first, gateway.reader() as second:
        assert first.execute("SELECT 1").fetchone() == second.execute("SELECT 1").fetchone()


def test_a_held_reader_opens_one_connection_for_its_queries_and_lets_writers_in_once_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = make_gateway(tmp_path, lock_timeout_s=0.3)
    opened: list[bool] = []
    real_connection = StorageGateway._connection

    def counting_connection(self: StorageGateway, *, read_only: bool) -> AbstractContextManager[Attached]:
        opened.append(read_only)
        return real_connection(self, read_only=read_only)

    monkeypatch.setattr(StorageGateway, "_connection", counting_connection)
    with gateway.held_reader() as reads:
        assert opened == []  # nothing opened before the first query
        for _ in range(3):
            assert reads.query("SELECT count(*) FROM core.files").column(0).to_pylist() == [0]
        assert opened == [True]
        with pytest.raises(StorageLockTimeout), gateway.writer("while the reader is held"):
            pass
        reads.release()
        with gateway.writer("after the release") as w:
            w.execute("INSERT INTO core.files (path) VALUES ('written')")
        assert reads.query("SELECT path FROM core.files").column(0).to_pylist() == ["written"]  # opened again
    assert opened == [True, False, True]
    with gateway.writer("after the block"):  # the block's end let go of the connection it reopened
        pass


def test_the_lock_is_released_when_its_holder_dies(tmp_path: Path, lock_holder: Holder) -> None:
    lock_holder.proc.kill()
    lock_holder.proc.wait(timeout=10)
    gateway = StorageGateway(StorageConfig(db_path=tmp_path / "out" / "c.duckdb", lock_timeout_s=2))
    with gateway.writer("after the holder died") as w:
        w.execute("INSERT INTO core.files (path) VALUES ('after')")
    assert files_paths(gateway) == ["after"], "the dead holder's transaction never committed"


# ---------------------------------------------------------------------------- transactions


def test_a_failing_transaction_leaves_the_previous_rows_intact(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("first") as w:
        w.insert(Table.FILES, [{"path": "kept.py"}])
    with pytest.raises(RuntimeError, match="boom"), gateway.writer("failing") as w:
        w.replace_all(Table.FILES, [{"path": "replacement.py"}])
        w.delete_paths(Table.FILES, ["kept.py"])
        raise RuntimeError("boom")
    assert files_paths(gateway) == ["kept.py"]


def test_a_failing_statement_rolls_back_the_whole_transaction(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("first") as w:
        w.insert(Table.FILES, [{"path": "kept.py"}])
    with pytest.raises(duckdb.Error), gateway.writer("failing") as w:
        w.execute(f"DELETE FROM {Table.FILES}")
        w.execute(f"INSERT INTO {Table.FILES} (no_such_column) VALUES (1)")
    assert files_paths(gateway) == ["kept.py"]


# ------------------------------------------------------------------------------- publish


def _published_paths(db: Path) -> list[str]:
    con = open_published(db)
    try:
        return sorted(path for (path,) in con.execute("SELECT path FROM core.files").fetchall())
    finally:
        con.close()


def test_publish_copies_the_work_db_and_later_writes_stay_unpublished(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("w") as w:
        w.insert(Table.FILES, [{"path": "v1.py"}])
    assert gateway.publish() == gateway.config.db_path
    with gateway.writer("w") as w:
        w.insert(Table.FILES, [{"path": "v2.py"}])
    assert _published_paths(gateway.config.db_path) == ["v1.py"]
    gateway.publish()
    assert _published_paths(gateway.config.db_path) == ["v1.py", "v2.py"]
    assert sorted(p.name for p in gateway.config.db_path.parent.iterdir() if p.name.endswith(".tmp")) == []


def test_publish_replaces_the_file_so_an_open_reader_keeps_its_snapshot(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("w") as w:
        w.insert(Table.FILES, [{"path": "old.py"}])
    gateway.publish()
    inode = gateway.config.db_path.stat().st_ino
    reader = open_published(gateway.config.db_path)
    try:
        with gateway.writer("w") as w:
            w.replace_all(Table.FILES, [{"path": "new.py"}])
        gateway.publish()
        assert gateway.config.db_path.stat().st_ino != inode, "publish must swap in a new file, not write in place"
        assert reader.execute("SELECT path FROM core.files").fetchall() == [("old.py",)]
    finally:
        reader.close()
    assert _published_paths(gateway.config.db_path) == ["new.py"]


def test_a_publish_that_fails_midway_leaves_the_published_copy_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected fault: the copy dies half way (a full disk, say)."""
    gateway = make_gateway(tmp_path)
    with gateway.writer("w") as w:
        w.insert(Table.FILES, [{"path": "good.py"}])
    gateway.publish()
    before = gateway.config.db_path.read_bytes()
    with gateway.writer("w") as w:
        w.insert(Table.FILES, [{"path": "unpublished.py"}])

    def half_copy(src: Path, dst: Path) -> None:
        Path(dst).write_bytes(Path(src).read_bytes()[:4096])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gateway_module.shutil, "copyfile", half_copy)
    with pytest.raises(OSError, match="No space"):
        gateway.publish()
    assert gateway.config.db_path.read_bytes() == before
    assert [p.name for p in gateway.config.db_path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_readers_during_repeated_publishes_always_see_a_whole_published_version(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    gateway.publish()
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_repeatedly() -> None:
        while not stop.is_set():
            try:
                con = open_published(gateway.config.db_path)
                try:
                    (n,) = con.execute("SELECT count(*) FROM core.files").fetchone() or (None,)
                    (m,) = con.execute("SELECT count(*) FROM core.modules").fetchone() or (None,)
                finally:
                    con.close()
                assert n == m, f"files {n} and modules {m} come from different versions"
                seen.append(int(n))
            except BaseException as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=read_repeatedly)
    thread.start()
    try:
        for version in range(1, 9):
            with gateway.writer("w") as w:
                w.insert(Table.FILES, [{"path": f"f{version}.py"}])
                w.insert(Table.MODULES, [{"path": f"f{version}.py", "module": f"f{version}"}])
            gateway.publish()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == []
    assert seen and set(seen) <= set(range(9))


def test_text_utf8_cannot_hold_is_stored_escaped_through_rows_and_parameters(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path)
    with gateway.writer("test") as w:
        w.insert(Table.FILES, [{"path": "caf\udce9.py", "module": "caf\udce9", "skip_reason": "ok é"}])
        w.execute("INSERT INTO meta.step_runs (run_id, step, error) VALUES (?, ?, ?)", ["r", "s", "bad \udce2 text"])
    assert gateway.query("SELECT path, module, skip_reason FROM core.files").to_pylist() == [
        {"path": "caf\\udce9.py", "module": "caf\\udce9", "skip_reason": "ok é"}
    ]
    assert gateway.query("SELECT error FROM meta.step_runs WHERE error = ?", ["bad \udce2 text"])["error"].to_pylist() == [
        "bad \\udce2 text"
    ]
