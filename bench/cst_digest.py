"""Digest cst_ingest's tables on a repository, to check that a change leaves them exactly equal.

Usage: ``python bench/cst_digest.py REPO [--db DB]``: runs
``python -m codeintel export REPO --db DB --select cst_ingest --quiet`` cold (into a temporary
directory unless ``--db`` is given) and prints, per table, its row count and the md5 of its rows
rendered as text and sorted (so row order does not matter, duplicates do).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

TABLES = ("core.comments", "core.def_headers", "core.name_sites")


def table_digests(db: Path) -> dict[str, dict[str, object]]:
    """Row count and md5 of the sorted rows of each table."""
    found: dict[str, dict[str, object]] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for table in TABLES:
            query = f"SELECT count(*), md5(string_agg(r, chr(10) ORDER BY r)) FROM (SELECT CAST(t AS VARCHAR) AS r FROM {table} t)"
            count, digest = con.execute(query).fetchone()  # type: ignore[misc]
            found[table] = {"rows": int(count), "md5": digest}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "c.duckdb"
        command = [sys.executable, "-m", "codeintel", "export", str(args.repo.resolve()), "--db", str(db)]
        subprocess.run([*command, "--select", "cst_ingest", "--quiet"], check=True)
        print(json.dumps(table_digests(db), indent=2))


if __name__ == "__main__":
    main()
