"""What a worker sends back for a file and a batch: its rows survive the trip to the step's process."""

from __future__ import annotations

import pickle
from dataclasses import replace
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from codeintel.ingestion import filework
from codeintel.ingestion.change_tracker import FileRef
from codeintel.ingestion.cst.extract import extract_cst
from codeintel.ingestion.filework import BatchOutputs, FileBatch, FileOutput, _Rows, extract_batch
from codeintel.ingestion.scan import hash_bytes
from codeintel.orchestration.executors import ProcessExecutor
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import to_arrow


def test_a_file_output_pickles_its_tables_as_arrow_ipc_streams_and_comes_back_equal() -> None:
    comment = ("a.py", 3, 4, 9, "# hé", "trailing", "g", "noqa", ["E501"], None, None)
    out = FileOutput("a.py", "h1", {Table.PARSE_ERRORS: [("a.py", "x")]})
    out.tables[Table.COMMENTS] = to_arrow(Table.COMMENTS, [comment, comment])
    out.tables[Table.NAME_SITES] = to_arrow(Table.NAME_SITES, [])  # no rows: the schema still travels
    _, (_, _, _, streams) = out.__reduce__()
    assert all(isinstance(stream, pa.Buffer) for stream in streams.values())  # one IPC stream a table
    for back in (pickle.loads(pickle.dumps(out)), pickle.loads(bytes(ForkingPickler.dumps(out)))):
        assert (back.path, back.hash, back.rows) == (out.path, out.hash, out.rows)
        assert back.tables.keys() == out.tables.keys()
        for name, table in out.tables.items():
            assert back.tables[name].schema == table.schema
            assert back.tables[name].equals(table)


def _batch(root: Path, spool: Path | None) -> FileBatch:
    files = {
        "a.py": "import os  # noqa: F401\n\n\ndef f(x: int = 1) -> int:\n    return os.sep(x)\n",
        "b.py": "class B:\n    y = 2\n",
    }
    refs = []
    for name, text in files.items():
        (root / name).write_text(text)
        refs.append(FileRef(name, name.removesuffix(".py"), False, hash_bytes(text.encode()), len(text)))
    extractors = ("definitions", "cst")
    steps = ("ast_ingest", "cst_ingest")
    return FileBatch(str(root), "repo", 10**6, tuple(refs), extractors, steps, str(spool) if spool else None)


def _same(back: list[dict[str, FileOutput]], found: list[dict[str, FileOutput]]) -> None:
    assert len(back) == len(found)
    for back_file, file in zip(back, found, strict=True):
        assert back_file.keys() == file.keys()
        for name, out in file.items():
            again = back_file[name]
            assert (again.path, again.hash, again.rows) == (out.path, out.hash, out.rows)
            assert again.tables.keys() == out.tables.keys()
            assert all(again.tables[t].equals(table) for t, table in out.tables.items())


def test_a_batchs_comments_and_headers_are_made_arrow_once_and_each_file_has_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The few comments and headers of each file are one Arrow table a batch (a table a file
    cost 0.2 ms), sliced file by file: each file's rows are those `extract_cst` gives it."""
    made: list[str] = []

    def counted(table: str, rows: Any) -> pa.Table:
        made.append(table)
        return to_arrow(table, rows)

    monkeypatch.setattr(filework, "to_arrow", counted)
    batch = _batch(tmp_path, None)
    found = extract_batch(batch)
    assert sorted(made) == sorted(filework.BATCHED_TABLES)
    for ref, outputs in zip(batch.files, found, strict=True):
        out = outputs["cst"]
        assert not out.rows  # (all of them in tables)
        alone = extract_cst((tmp_path / ref.path).read_bytes(), repo="repo", path=ref.path, module=ref.module)
        assert out.tables[Table.COMMENTS].equals(to_arrow(Table.COMMENTS, alone.comments))
        assert out.tables[Table.DEF_HEADERS].equals(to_arrow(Table.DEF_HEADERS, alone.headers))
    assert [found[i]["cst"].tables[Table.DEF_HEADERS].num_rows for i in range(2)] == [1, 1]
    assert [found[i]["cst"].tables[Table.COMMENTS].num_rows for i in range(2)] == [1, 0]


def test_a_batch_leaves_its_tables_in_the_spool_file_and_its_result_carries_only_where_they_are(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    found = extract_batch(_batch(tmp_path, spool))
    assert any(out.tables for file in found for out in file.values())
    pickled = bytes(ForkingPickler.dumps(found))
    assert b"ARROW" not in pickled and b"\xff\xff\xff\xff" not in pickled  # no IPC stream in the result
    (left,) = spool.iterdir()  # one file for the whole batch
    assert left.stat().st_size > 0
    back = pickle.loads(pickled)
    assert list(spool.iterdir()) == []  # read back, it is gone
    _same(back, found)


def test_a_pool_worker_hands_its_batch_over_through_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (repo := tmp_path / "repo").mkdir()
    batch = _batch(repo, spool)
    pool = ProcessExecutor(1)
    try:
        (back,) = pool.map(extract_batch, [batch])
    finally:
        pool.close()
    assert list(spool.iterdir()) == []
    _same(back, extract_batch(replace(batch, spool=None)))


def test_without_a_spool_a_batch_travels_whole_in_its_result(tmp_path: Path) -> None:
    found = extract_batch(_batch(tmp_path, None))
    _same(pickle.loads(bytes(ForkingPickler.dumps(found))), found)


def test_a_batchs_tables_of_one_name_share_a_stream_and_each_file_gets_its_own_rows_back(tmp_path: Path) -> None:
    """Files' tables of one name travel as one stream, file after file; a file whose table has
    another schema (text plain where the others' is dictionary-encoded) gets a stream of its own."""
    spool = tmp_path / "spool"
    spool.mkdir()

    def comments(path: str, n: int) -> pa.Table:
        return to_arrow(Table.COMMENTS, [(path, i, 0, 5, "# hé", "own_line", "g", None, None, None, None) for i in range(n)])

    def encoded(table: pa.Table) -> pa.Table:
        at = table.schema.get_field_index("path")
        return table.set_column(at, "path", table.column("path").dictionary_encode())

    outputs = [FileOutput(f"m{i}.py", f"h{i}") for i in range(4)]
    outputs[0].tables[Table.COMMENTS] = encoded(comments("m0.py", 2))
    outputs[1].tables[Table.COMMENTS] = encoded(comments("m1.py", 0))
    outputs[2].rows[Table.PARSE_ERRORS] = [("m2.py", "x")]
    outputs[3].tables[Table.COMMENTS] = comments("m3.py", 3)  # plain
    outputs[3].tables[Table.NAME_SITES] = to_arrow(Table.NAME_SITES, [])
    found = BatchOutputs({"cst": out} for out in outputs)
    found.spool = str(spool)
    _, (_, streams, _) = found.__reduce__()
    assert len(streams) == 3  # encoded comments, plain comments, name sites
    back = pickle.loads(bytes(ForkingPickler.dumps(found)))
    _same(back, found)
    for again, out in zip(back, found, strict=True):
        for name, table in out["cst"].tables.items():
            assert again["cst"].tables[name].schema == table.schema
    assert len(list(spool.iterdir())) == 1  # (the first `__reduce__`'s file: nothing read it)


def test_a_streams_rows_are_sliced_file_by_file_as_the_table_slices_them() -> None:
    """Rows read back from a spool file come in a chunk per record batch, some empty, a file's
    rows in one or more of them: each slice (by bisection) is what `pa.Table.slice` gives."""
    chunks = [
        pa.table({"n": pa.array(range(start, start + size), pa.int64())})
        for start, size in ((0, 3), (3, 0), (3, 1), (4, 5), (9, 0))
    ]
    table = pa.concat_tables(chunks)
    rows = _Rows(table)
    for offset in range(table.num_rows + 1):
        for length in range(table.num_rows + 1 - offset):
            assert rows.slice(offset, length).equals(table.slice(offset, length)), (offset, length)
            assert rows.slice(offset, length).schema == table.schema


def test_a_batch_of_rows_alone_leaves_no_file_in_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    batch = replace(_batch(tmp_path, spool), extractors=("definitions",), steps=("ast_ingest",))
    found = extract_batch(batch)
    assert all(out.rows and not out.tables for file in found for out in file.values())
    pickled = bytes(ForkingPickler.dumps(found))
    assert list(spool.iterdir()) == []  # no file made for it
    _same(pickle.loads(pickled), found)


def test_a_batch_whose_spool_is_gone_travels_whole_in_its_result(tmp_path: Path) -> None:
    """The spool removed (or its disk full) while the worker ran: the rows still come back."""
    spool = tmp_path / "spool"
    spool.mkdir()
    found = extract_batch(_batch(tmp_path, spool))
    spool.rmdir()
    _same(pickle.loads(bytes(ForkingPickler.dumps(found))), found)
