"""The two halves of a split cold walk (`split`) made one: the newer half's placeholders given the
ids the older half's walk gave (`stitch_ids`), and the tables of both joined (`stitched`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from codeintel.ingestion.history.lineage import placeholder
from codeintel.ingestion.history.plan import FACT_TABLES, HistoryFacts
from codeintel.ingestion.history.versions import id_text, ordinals_of_keys
from codeintel.storage.catalog import Table

TABLE_NAMES = {
    "commits": Table.COMMITS, "file_changes": Table.FILE_CHANGES, "function_changes": Table.FUNCTION_CHANGES,
    "versions": Table.VERSIONS, "merge_lineages": Table.MERGE_LINEAGES, "head_files": Table.HEAD_FILES,
    "head_defs": Table.HEAD_DEFS,
}  # fmt: skip
_MAX_APART = 20


def stitched(older: HistoryFacts, newer: HistoryFacts) -> dict[str, pa.Table] | None:
    """The tables of one walk of the whole history, from its two halves' (`plan.FACT_TABLES`); None where
    they do not join (`stitch_ids`)."""
    assert newer.orphans is not None and newer.made_again is not None
    ids = stitch_ids(older.versions.table(), newer.orphans.table(), newer.made_again.table())
    if ids is None:
        return None
    lineages, files = ids
    tables: dict[str, pa.Table] = {}
    for name in FACT_TABLES:
        new_part = getattr(newer, name).table()
        for column in ("lineage_id", "file_id"):
            if column in new_part.column_names:
                new_part = remap_text(new_part, column, lineages if column == "lineage_id" else files)
        if name == "versions":
            new_part = remap_packed(new_part, "lineages", lineages)
        tables[name] = concat([new_part] if name.startswith("head_") else [getattr(older, name).table(), new_part])
    return tables


def write_tables(out: Path, tables: dict[str, pa.Table]) -> None:
    """Each table into `out` as an Arrow IPC stream file, `<name>.arrow` (as the walk spools)."""
    for name, table in tables.items():
        with pa.OSFile(str(out / f"{name}.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)


def stitch_ids(
    older_versions: pa.Table, orphans: pa.Table, made_again: pa.Table
) -> tuple[dict[str, str], dict[str, str]] | None:
    """(lineage, file id) placeholders of the newer walk -> the ids the older walk gave (as
    stored text), or None where they do not map one to one (a placeholder standing for two
    lineages, as a definition deleted and written again between two versions the newer walk
    took as made before; two placeholders for one lineage, as one renamed; a version no
    commit of the older half made): the newer walk then took apart what one walk would have
    joined, or joined what it would have kept apart.

    A definition of a version at the cut that the older walk's outline names otherwise (its
    outline came through diffs from a version the parsers could only guess at, Python 2
    code, and the newer walk's from parsing the version whole) keeps its placeholder: its
    lineage begins at the cut, as when one walk parses a version again (`versions.align`).

    `orphans`: per version made before that the newer walk met as an old version (path, blob,
    its definitions' placeholders and name keys, preorder), mapped by name as `versions.align`
    maps; `made_again`: those it made again, mapped by position (as `HistoryWalker._store`
    maps); `older_versions`: the older walk's `history.versions` rows.
    """
    made = {
        (p, b): (f, ln, k)
        for p, b, f, ln, k in zip(
            *(_text(older_versions, c) for c in ("path", "blob", "file_id")),
            older_versions.column("lineages").to_pylist(),
            older_versions.column("name_keys").to_pylist(),
            strict=True,
        )
    }
    lineages: dict[int, int] = {}
    files: dict[int, str] = {}
    apart = defs = 0
    for by_name, table in ((True, orphans), (False, made_again)):
        for path, blob, placeholders, keys in zip(
            _text(table, "path"), _text(table, "blob"), table.column("lineages").to_pylist(),
            table.column("name_keys").to_pylist(), strict=True,
        ):  # fmt: skip
            theirs = made.get((path, blob))
            if theirs is None:
                return None
            file_id, their_lineages, their_keys = theirs
            if files.setdefault(placeholder(path), file_id) != file_id:
                return None
            mine = np.frombuffer(placeholders, dtype=np.int64).tolist()
            found: Sequence[int | None]
            if by_name:
                found = _aligned(keys, their_lineages, their_keys)
            elif len(their_lineages) == len(placeholders):
                found = np.frombuffer(their_lineages, dtype=np.int64).tolist()
            else:
                return None
            defs += len(mine)
            for mark, lineage in zip(mine, found, strict=True):
                if lineage is None:  # named apart at the cut: its placeholder is its lineage from there on
                    apart += 1
                    continue
                if lineages.setdefault(mark, lineage) != lineage:
                    return None
    if len(set(lineages.values())) != len(lineages) or len(set(files.values())) != len(files):
        return None
    if apart > max(_MAX_APART, defs // 100):  # one walk would have kept more lineages through the cut
        return None
    return (
        {id_text(k): id_text(v) for k, v in lineages.items()},
        {id_text(k): v for k, v in files.items()},
    )


def _aligned(keys: bytes, their_lineages: bytes, their_keys: bytes) -> list[int | None]:
    """Per definition (name keys `keys`), the lineage the other version gives it: by position
    when the names agree, else by (name, same-name ordinal), as `versions.align` does."""
    mine = np.frombuffer(keys, dtype=np.uint32).tolist()
    theirs = np.frombuffer(their_keys, dtype=np.uint32).tolist()
    values = np.frombuffer(their_lineages, dtype=np.int64).tolist()
    if mine == theirs:
        return list(values)
    by_name = dict(zip(zip(theirs, ordinals_of_keys(theirs), strict=True), values, strict=True))
    return [by_name.get(k) for k in zip(mine, ordinals_of_keys(mine), strict=True)]


def remap_text(table: pa.Table, column: str, mapping: dict[str, str]) -> pa.Table:
    """`table` with the ids of `column` (text, maybe dictionary-encoded) mapped."""
    if not mapping or table.num_rows == 0:
        return table
    values = table.column(column)
    encoded = pa.types.is_dictionary(values.type)
    if encoded:
        values = values.cast(values.type.value_type)
    plain = values.to_pylist()
    mapped = pa.array([mapping.get(v, v) if v is not None else None for v in plain], type=pa.string())
    if encoded:
        mapped = mapped.dictionary_encode()
    return table.set_column(table.schema.get_field_index(column), column, mapped)


def remap_packed(table: pa.Table, column: str, mapping: dict[str, str]) -> pa.Table:
    """`table` with the lineages packed in `column` (int64 bytes per row) mapped."""
    if not mapping or table.num_rows == 0:
        return table
    values = {_value(k): _value(v) for k, v in mapping.items()}
    out = []
    for packed in table.column(column).to_pylist():
        ids = np.frombuffer(packed, dtype=np.int64)
        if any(i in values for i in ids.tolist()):
            ids = np.array([values.get(i, i) for i in ids.tolist()], dtype=np.int64)
        out.append(ids.tobytes())
    return table.set_column(table.schema.get_field_index(column), column, pa.array(out, type=pa.binary()))


def _value(text: str) -> int:
    value = int(text, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(table: pa.Table, column: str) -> list[Any]:
    values = table.column(column)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values.to_pylist()


def concat(tables: Iterable[pa.Table]) -> pa.Table:
    """One table of `tables` (same columns; text columns dictionary-encoded, as the walk's:
    shas, paths and names repeat row after row)."""
    parts = []
    for table in tables:
        columns = [
            c.cast(pa.string()).dictionary_encode() if c.type in (pa.string(), pa.large_string()) else c
            for c in table.columns
        ]
        parts.append(pa.table(columns, names=table.column_names))
    return pa.concat_tables(parts)
