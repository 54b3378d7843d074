"""Files for other tools: every table and every docs.* view of the published database as
Parquet (zstd) and JSONL, with a manifest, swapped in atomically, byte-identical for the same data.

`dump_published(db, out_dir)` reads the published copy read-only and writes a complete new set
into a version directory beside `out_dir` (`.<name>.versions/<run id>-<digest>`), then points
`out_dir` (a symbolic link) at it with one `os.replace`: whoever resolves `out_dir` gets the
previous set or the new one, never a mix (resolve it once, e.g. `os.path.realpath`, and read
from there; the previous set is kept until the next swap for readers still on it).

Same data, same bytes: rows are sorted by the table's key and then every column, the Arrow
data is written as one chunk with fixed Parquet options (zstd level 3, dictionary, statistics,
format 2.6, data page v1, one row group per 1,048,576 rows), JSONL has one object per row with
keys in column order (DuckDB's JSON writer), timestamps in UTC ISO 8601, and the manifest holds no time but what the
database holds.  The ledger tables (`meta.*`, `core.change_state`) record the run itself, so they
differ between two runs of the same commit; the manifest marks them (`per_run`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from codeintel.errors import CodeIntelError, StorageError
from codeintel.serving.snapshot import CATALOG, connect_read_only, read_info
from codeintel.storage.catalog import CATALOG as TABLES

logger = logging.getLogger(__name__)

FORMATS = ("parquet", "jsonl")
MANIFEST = "manifest.json"
DUMP_FORMAT = "codeintel-dump/1"
KEEP_VERSIONS = 2  # the current set and the one before it (readers may still be on it)
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 1 << 20,
}


class DumpError(CodeIntelError):
    """The output directory cannot be written or is not CodeIntel's to replace."""


@dataclass(frozen=True, slots=True)
class DumpResult:
    out_dir: Path
    version_dir: Path
    files: int
    rows: int
    changed: bool  # False when the same set was already in place


def dump_published(db: Path, out_dir: Path, formats: Sequence[str] = FORMATS) -> DumpResult:
    """Dump the published database at `db` into `out_dir` (see the module docstring).

    Raises:
        DumpError: `out_dir` is a file, a directory or a link that is not a CodeIntel dump.
        StorageError: `db` cannot be read.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise DumpError(f"format {', '.join(unknown) or '(none)'}: expected parquet and/or jsonl")
    if not Path(db).is_file():
        raise StorageError(f"no published database at {db}; run `codeintel export --db {db}` first")
    out_dir = Path(os.path.abspath(out_dir))
    versions = _versions_dir(out_dir)
    _check_target(out_dir, versions)
    versions.mkdir(parents=True, exist_ok=True)
    con, writer = connect_read_only(db), _json_writer()
    try:
        info = read_info(con, db)
        tmp = versions / f".tmp-{info.run_id}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            entries = [e for name, kind in _objects(con) for e in _write_object(con, writer, tmp, name, kind, formats)]
            for entry in entries:
                entry.update(commit=info.commit, run_id=info.run_id)
            manifest = {
                "format": DUMP_FORMAT, "repo": info.repo, "commit": info.commit, "run_id": info.run_id,
                "built_at": info.built_at, "files": entries,
            }  # fmt: skip
            text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
            (tmp / MANIFEST).write_text(text, encoding="utf-8")
            digest = hashlib.sha256(text.encode()).hexdigest()[:12]
            final = versions / f"{info.run_id}-{digest}"
            changed = _install(tmp, final, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        con.close()
        writer.close()
    _prune(versions, keep=final)
    rows = sum(int(e["rows"]) for e in entries if e["format"] == formats[0])
    logger.info("dumped %d files (%d rows) of %s to %s", len(entries), rows, info.line(), out_dir)
    return DumpResult(out_dir, final, len(entries), rows, changed)


def _versions_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.versions"


def _check_target(out_dir: Path, versions: Path) -> None:
    """Refuse to replace anything that is not a link into our versions directory (or empty)."""
    if out_dir.is_symlink():
        target = Path(os.path.realpath(out_dir))
        if target.parent != Path(os.path.realpath(versions)):
            raise DumpError(f"{out_dir} is a link to {target}, not to a CodeIntel dump; choose another out dir")
        return
    if not out_dir.exists():
        return
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()  # an empty directory made for us: becomes the link
        return
    what = "a directory with files" if out_dir.is_dir() else "a file"
    raise DumpError(
        f"{out_dir} is {what} that CodeIntel did not make (its dumps are a link into {versions}); "
        "choose another out dir or remove it"
    )


def _install(tmp: Path, final: Path, out_dir: Path) -> bool:
    """Move the new set into place and point `out_dir` at it (one atomic replace)."""
    changed = True
    if final.is_dir() and (final / MANIFEST).is_file():
        changed = Path(os.path.realpath(out_dir)) != Path(os.path.realpath(final))  # same data: nothing new
        os.utime(final)  # it is the newest set again (pruning goes by this time)
    else:
        os.replace(tmp, final)
    link = out_dir.with_name(f".{out_dir.name}.link-{os.getpid()}")
    link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(final, out_dir.parent), link)
    os.replace(link, out_dir)
    return changed


def _prune(versions: Path, keep: Path) -> None:
    """Remove old sets beyond the last `KEEP_VERSIONS` (by time installed), never `keep`."""
    sets = sorted((p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.stat().st_mtime_ns)
    for old in sets[: max(0, len(sets) - KEEP_VERSIONS)]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _objects(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(qualified name, "table" | "view") of every table and every docs.* view, by name."""
    rows = con.execute(
        f"""SELECT schema_name || '.' || table_name, 'table' FROM duckdb_tables() WHERE database_name = '{CATALOG}'
            UNION ALL
            SELECT schema_name || '.' || view_name, 'view' FROM duckdb_views()
            WHERE database_name = '{CATALOG}' AND schema_name = 'docs'
            ORDER BY 1"""
    ).fetchall()
    return [(str(n), str(k)) for n, k in rows]


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    schema, _, table = name.partition(".")
    rows = con.execute(
        f"""SELECT column_name, data_type FROM duckdb_columns()
            WHERE database_name = '{CATALOG}' AND schema_name = ? AND table_name = ? ORDER BY column_index""",
        [schema, table],
    ).fetchall()
    return [(str(c), str(t)) for c, t in rows]


def _order_by(name: str, columns: Sequence[tuple[str, str]]) -> str:
    """The table's key first (when the catalog declares one), then every column: a total order."""
    names = [c for c, _ in columns]
    spec = TABLES.get(name)
    key = [k for k in spec.key if k in names] if spec else []
    return ", ".join(f'"{c}" ASC NULLS FIRST' for c in [*key, *[c for c in names if c not in key]])


def _write_object(
    con: duckdb.DuckDBPyConnection, writer: duckdb.DuckDBPyConnection, tmp: Path, name: str, kind: str, formats: Sequence[str]
) -> list[dict[str, Any]]:
    columns = _columns(con, name)
    table = con.sql(f"SELECT * FROM {name} ORDER BY {_order_by(name, columns)}").to_arrow_table()
    table = table.combine_chunks()
    per_run = name.startswith("meta.") or name == "core.change_state"
    entries = []
    for fmt in formats:
        path = tmp / f"{name}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, path, **PARQUET_OPTIONS)
        else:
            _write_jsonl(writer, table, columns, path)
        entries.append({
            "name": name, "kind": kind, "format": fmt, "file": path.name, "rows": table.num_rows,
            "columns": [{"name": c, "type": t} for c, t in columns], "sha256": _sha256(path),
            "bytes": path.stat().st_size, "per_run": per_run,
        })  # fmt: skip
    return entries


def _write_jsonl(writer: duckdb.DuckDBPyConnection, table: pa.Table, columns: Sequence[tuple[str, str]], path: Path) -> None:
    """One JSON object per row, in row order, by DuckDB's JSON writer (`writer`: a scratch instance
    of its own; the snapshot's connection cannot write files); timestamps as UTC ISO 8601."""
    select = ", ".join(
        f"strftime(timezone('UTC', \"{c}\"), '%Y-%m-%dT%H:%M:%S.%fZ') AS \"{c}\"" if t.startswith("TIMESTAMP WITH") else f'"{c}"'
        for c, t in columns
    )
    writer.register("rows_in_order", table)
    try:
        writer.execute(f"COPY (SELECT {select} FROM rows_in_order) TO '{_sql_text(str(path))}' (FORMAT json)")
    finally:
        writer.unregister("rows_in_order")


def _json_writer() -> duckdb.DuckDBPyConnection:
    writer = duckdb.connect(":memory:")
    writer.execute("SET enable_progress_bar = false")
    writer.execute("SET TimeZone = 'UTC'")
    return writer


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(out_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The set `out_dir` points at now (resolved once) and its manifest: read files from there."""
    where = Path(os.path.realpath(out_dir))
    return where, json.loads((where / MANIFEST).read_text(encoding="utf-8"))
