"""Arrow batches kept on disk between decoding an index and writing it.

A whole SCIP index decoded (sqlalchemy's: 840 k occurrences, 117 k symbols with their hover
docs) is about 80 MB of Arrow, held from the decode until scip_ingest's write transaction, while
DuckDB takes its own memory for the write.  Each document's batch is written instead to a file
per table, as an Arrow IPC stream of its own (its own dictionaries), and read back one batch at a
time, in path order, into DuckDB.  The index's parts decoded in worker processes each leave
their own files; the spills of the parts are then joined (`extend`) without copying.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa


class Spill:
    """One table's batches in files, each under a key (a document's path; a key added again
    replaces its batch), read back in key order.  Picklable once closed."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._files = [path]
        self._at: dict[str, tuple[int, int, int, int]] = {}  # key -> (file, offset, length, rows)
        self._end = 0
        self._file: BinaryIO | None = path.open("wb")

    def add(self, key: str, batch: pa.RecordBatch) -> None:
        if self._file is None:
            raise ValueError(f"{self.path.name} is closed: nothing can be added")
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.schema) as writer:
            writer.write_batch(batch)
        data = sink.getvalue()
        self._file.write(data)
        self._at[key] = (0, self._end, data.size, batch.num_rows)
        self._end += data.size

    def close(self) -> None:
        """Done adding (the file is complete)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def extend(self, other: Spill) -> None:
        """Take `other`'s batches (its files stay where they are); a key of both is `other`'s."""
        other.close()
        base = len(self._files)
        self._files.extend(other._files)
        for key, (file, offset, length, rows) in other._at.items():
            self._at[key] = (base + file, offset, length, rows)

    @property
    def num_rows(self) -> int:
        return sum(rows for *_, rows in self._at.values())

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.close()
        handles: dict[int, BinaryIO] = {}
        try:
            for key in sorted(self._at):
                file, offset, length, _ = self._at[key]
                f = handles.get(file)
                if f is None:
                    f = handles[file] = self._files[file].open("rb")
                f.seek(offset)
                yield from pa.ipc.open_stream(f.read(length))
        finally:
            for f in handles.values():
                f.close()

    def reader(self) -> pa.RecordBatchReader:
        """The batches, one at a time (for DuckDB to scan)."""
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self.batches()), self.schema)
