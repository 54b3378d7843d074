"""The `sql` tool cannot write, read or write files, attach, install or change settings.

A corpus of escape attempts goes through the MCP server; every one is refused, the database is
byte-for-byte unchanged and no file appears.  The read-only connection refuses them by itself,
too (the statement check is a second wall, not the only one).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from serving_support import Served

from codeintel.serving.snapshot import connect_read_only

ESCAPES = [
    # writes
    "DELETE FROM core.goids",
    "UPDATE core.goids SET name = 'x'",
    "INSERT INTO core.goids SELECT * FROM core.goids",
    "DROP TABLE core.goids",
    "CREATE TABLE stolen AS SELECT * FROM core.goids",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO m(x) AS x",
    "ALTER TABLE core.goids ADD COLUMN x INTEGER",
    "INSERT INTO memory.main.t VALUES (1)",
    "WITH x AS (SELECT 1) DELETE FROM core.goids",
    "/* looks harmless */ DROP TABLE core.goids",
    "BEGIN TRANSACTION",
    "CHECKPOINT",
    "VACUUM",
    # files out
    "COPY core.goids TO '{tmp}/goids.csv'",
    "COPY (SELECT 1) TO '{tmp}/one.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{tmp}/exported'",
    # files in
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM read_json_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('{tmp}/*.parquet')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM parquet_metadata('{db}')",
    "SELECT * FROM 'https://example.com/data.csv'",
    # attach, extensions
    "ATTACH '{tmp}/other.duckdb' AS other",
    "ATTACH ':memory:' AS scratch",
    "DETACH codeintel",
    "USE memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "FORCE INSTALL httpfs FROM community",
    "SELECT * FROM iceberg_scan('{tmp}/t')",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    # settings
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "SET memory_limit = '100GB'",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "EXPLAIN SELECT 1",
    # several statements, and statements smuggled into a SELECT
    "SELECT 1; DELETE FROM core.goids",
    "SELECT 1; SELECT 2",
    "SELECT * FROM query('ATTACH ''{tmp}/x.duckdb'' AS y')",
    "SELECT * FROM query('COPY (SELECT 1) TO ''{tmp}/q.csv''')",
]


def test_the_corpus_is_large_enough() -> None:
    assert len(ESCAPES) >= 30
    kinds = " ".join(ESCAPES)
    for word in ("DELETE", "COPY", "ATTACH", "INSTALL", "SET", "read_", "; "):
        assert word in kinds


def test_every_escape_attempt_is_refused_and_changes_nothing(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "escape"
    out.mkdir()
    before = hashlib.sha256(served.db.read_bytes()).hexdigest()
    answered = []
    for template in ESCAPES:
        result = served.mcp.result("sql", query=template.format(tmp=out, db=served.db))
        text = result.content[0].text
        assert text.splitlines()[0].startswith("snapshot "), text
        if not result.is_error:
            answered.append((template, text))
    assert answered == [], "answered instead of refused"
    assert list(out.iterdir()) == []
    assert hashlib.sha256(served.db.read_bytes()).hexdigest() == before
    settings = served.mcp.json("sql", query="SELECT current_setting('enable_external_access'), current_setting('lock_configuration')")
    assert settings["sections"][0]["rows"] == [[False, True]]
    refusals = [
        next(line for line in served.mcp.text("sql", query=t.format(tmp=out, db=served.db)).splitlines() if line.startswith("error:"))
        for t in ESCAPES[:3]
    ]
    assert all("only SELECT" in r for r in refusals), refusals


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO '{tmp}/x.csv'",
        "ATTACH '{tmp}/y.duckdb' AS y",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SELECT * FROM read_csv('/etc/passwd')",
        "CREATE TABLE t AS SELECT 1",
    ],
)
def test_the_connection_refuses_them_without_the_statement_check(served: Served, tmp_path: Path, sql: str) -> None:
    out = tmp_path / "escape"
    out.mkdir()
    con = connect_read_only(served.db)
    try:
        with pytest.raises(duckdb.Error):
            con.execute(sql.format(tmp=out)).fetchall()
    finally:
        con.close()
    assert list(out.iterdir()) == []


def test_reading_selects_are_still_answered(served: Served) -> None:
    for sql in (
        "SELECT count(*) FROM core.goids",
        "WITH t AS (SELECT kind, count(*) AS n FROM core.goids GROUP BY kind) SELECT * FROM t ORDER BY kind",
        "FROM docs.v_function_summary SELECT full_name ORDER BY goid LIMIT 3",
        "VALUES (1), (2)",
        "SELECT * FROM duckdb_settings() WHERE name = 'enable_external_access'",
    ):
        assert not served.mcp.result("sql", query=sql).is_error, sql
