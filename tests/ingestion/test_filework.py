"""What a worker sends back for a file: its rows survive the trip to the step's process."""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler

import pyarrow as pa

from codeintel.ingestion.filework import FileOutput
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
