"""The rows a per-file step gathers from its workers, as the step's one write receives them."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

from codeintel.config import StorageConfig
from codeintel.ingestion.change_tracker import FileRef, StaleFiles
from codeintel.ingestion.filework import FileOutput
from codeintel.orchestration.stepio import FileDelta
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import StorageGateway, to_arrow


def _comment(path: str, line: int) -> tuple[object, ...]:
    return (path, line, 0, 5, "# hey", "own_line", "g", None, None, None, None)


def test_a_deltas_tables_come_in_one_chunk_per_column_with_every_files_rows() -> None:
    """Workers send a table per file; DuckDB inserts one chunk far faster than many small ones."""
    paths = [f"m{i}.py" for i in range(5)]
    refs = tuple(FileRef(p, p[:-3], False, "h", 10) for p in paths)
    delta = FileDelta("cst_ingest", (Table.COMMENTS,), StaleFiles(refs, ()))
    for i, path in enumerate(paths):
        out = FileOutput(path, "h")
        out.tables[Table.COMMENTS] = to_arrow(Table.COMMENTS, [_comment(path, n) for n in range(1, i + 2)])
        delta.outputs.append(out)
    delta.outputs[0].rows[Table.COMMENTS] = [_comment("m0.py", 99)]  # rows given as tuples join them
    table = delta.arrow(Table.COMMENTS)
    assert {column.num_chunks for column in table.columns} == {1}
    assert table.num_rows == 1 + sum(range(1, 6))
    assert sorted(zip(table["path"].to_pylist(), table["line"].to_pylist(), strict=True))[:3] == [
        ("m0.py", 1),
        ("m0.py", 99),
        ("m1.py", 1),
    ]


def test_text_dictionary_encoded_by_some_workers_joins_the_plain_rows_of_others() -> None:
    """A worker may send repeated text dictionary-encoded (name sites: path, role, enclosing
    GOID); joined with rows of the plain schema, every row is there, with its text."""
    refs = (FileRef("a.py", "a", False, "h", 10), FileRef("b.py", "b", False, "h", 10))
    delta = FileDelta("cst_ingest", (Table.COMMENTS,), StaleFiles(refs, ()))
    encoded = to_arrow(Table.COMMENTS, [_comment("a.py", n) for n in (1, 2, 3)])
    encoded = encoded.set_column(0, "path", encoded.column("path").dictionary_encode())
    plain = FileOutput("b.py", "h")
    plain.rows[Table.COMMENTS] = [_comment("b.py", 7)]
    with_table = FileOutput("a.py", "h")
    with_table.tables[Table.COMMENTS] = encoded
    delta.outputs.extend([plain, with_table])
    table = delta.arrow(Table.COMMENTS)
    assert table.column("path").type == pa.string()
    assert sorted(zip(table["path"].to_pylist(), table["line"].to_pylist(), strict=True)) == [
        ("a.py", 1), ("a.py", 2), ("a.py", 3), ("b.py", 7),
    ]  # fmt: skip


def test_the_largest_table_is_joined_beside_the_writing_of_the_others_and_every_row_is_written(tmp_path: Path) -> None:
    """Joining sqlalchemy's 0.9 M name sites takes 0.1 s: a thread does it while the comments
    are written; the write then holds every table's rows all the same."""
    paths = [f"m{i}.py" for i in range(3)]
    refs = tuple(FileRef(p, p[:-3], False, "h", 10) for p in paths)
    joined_in: dict[str, str] = {}

    class Watched(FileDelta):
        def arrow(self, table: str) -> pa.Table:
            joined_in[table] = threading.current_thread().name
            return super().arrow(table)

    delta = Watched("cst_ingest", (Table.NAME_SITES, Table.COMMENTS), StaleFiles(refs, ()))
    for path in paths:
        out = FileOutput(path, "h")
        out.tables[Table.COMMENTS] = to_arrow(Table.COMMENTS, [_comment(path, 1)])
        names = [(path, n, 0, n, 1, "x", "read", "g", None, None, None) for n in range(1, 6)]
        out.tables[Table.NAME_SITES] = to_arrow(Table.NAME_SITES, names)
        delta.outputs.append(out)
    gateway = StorageGateway(StorageConfig(db_path=tmp_path / "c.duckdb"))
    gateway.ensure_schema()
    with gateway.writer("test") as w:
        delta.apply(w, "run")
    assert joined_in[Table.NAME_SITES] != threading.current_thread().name  # the largest: in a thread
    assert joined_in[Table.COMMENTS] == threading.current_thread().name
    counts = gateway.query(
        "SELECT (SELECT count(*) FROM core.name_sites) AS names, (SELECT count(*) FROM core.comments) AS comments"
    )
    assert counts.to_pylist() == [{"names": 15, "comments": 3}]


def test_without_a_temporary_directory_the_workers_rows_travel_through_the_pipe(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from codeintel.orchestration.executors import ProcessExecutor, SerialExecutor
    from codeintel.orchestration.stepio import _spool_for

    with _spool_for(ProcessExecutor(2)) as spool:
        assert spool is not None and Path(spool).is_dir()
    assert not Path(spool).exists()
    with _spool_for(SerialExecutor()) as none:
        assert none is None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # a TMPDIR that is not there
    with _spool_for(ProcessExecutor(2)) as fallback:
        assert fallback is None
