"""Arrow batches kept on disk between decoding an index and writing it.

A whole SCIP index decoded (sqlalchemy's: 840 k occurrences, 117 k symbols with their hover
docs) is about 80 MB of Arrow, held from the decode until scip_ingest's write transaction, while
DuckDB takes its own memory for the write.  Each document's batch is written instead to one file
per table, as an Arrow IPC stream of its own (its own dictionaries), and read back one batch at a
time, in path order, into DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa


class Spill:
    """One table's batches in a file, each under a key (a document's path; a key added again
    replaces its batch), read back in key order."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._at: dict[str, tuple[int, int, int]] = {}  # key -> (offset, length, rows)
        self._end = 0
        self._file = path.open("wb")

    def add(self, key: str, batch: pa.RecordBatch) -> None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.schema) as writer:
            writer.write_batch(batch)
        data = sink.getvalue()
        self._file.write(data)
        self._at[key] = (self._end, data.size, batch.num_rows)
        self._end += data.size

    def close(self) -> None:
        """Done adding (the file is complete)."""
        self._file.close()

    @property
    def num_rows(self) -> int:
        return sum(rows for _, _, rows in self._at.values())

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.close()
        with self.path.open("rb") as f:
            for key in sorted(self._at):
                offset, length, _ = self._at[key]
                f.seek(offset)
                yield from pa.ipc.open_stream(f.read(length))

    def reader(self) -> pa.RecordBatchReader:
        """The batches, one at a time (for DuckDB to scan)."""
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self.batches()), self.schema)
