"""Where cst_ingest's time goes, phase by phase, in one process (CPU seconds).

Usage: ``python bench/cst_phases.py REPO [--profile OUT]`` (REPO: a directory; its ``*.py``
files that git tracks are read in place).  Phases, each over every file: prepare (bytes as
tree-sitter gets them) and parse; the query's captures; ``extract_cst`` whole (all of the above,
and the rows built from the captures: its excess over parse and query is "rows"); the rows to
Arrow as the worker does it (`codeintel.ingestion.filework._cst`: name sites as rows through
``to_arrow``, or as columns through ``columns_to_arrow``); pickling and unpickling the Arrow
tables (what a worker sends back and the step's process reads); and the write: one insert per
table into a fresh DuckDB database.  The step itself spreads the first four phases and pickling
over its workers.  ``--profile OUT`` saves a cProfile of ``extract_cst`` over all files.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pickle
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from tree_sitter import QueryCursor

from codeintel.ingestion.cst.extract import cst_query, extract_cst
from codeintel.ingestion.cst.parser import prepare_source, python_parser
from codeintel.storage.catalog import Table, spec_of
from codeintel.storage.gateway import columns_to_arrow, to_arrow

TABLES = (Table.COMMENTS, Table.DEF_HEADERS, Table.NAME_SITES)


def timed(what: Callable[[], Any]) -> tuple[Any, float]:
    started = time.process_time()
    found = what()
    return found, round(time.process_time() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    repo = args.repo.resolve()
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "*.py"], capture_output=True, text=True, check=True)
    files = [(p, (repo / p).read_bytes()) for p in listed.stdout.split()]
    gc.disable()  # as in the workers (codeintel.gcpause)
    report: dict[str, Any] = {"files": len(files), "mb": round(sum(len(d) for _, d in files) / 2**20, 1)}
    ts_parser, query = python_parser(), cst_query()
    trees, report["prepare_parse_s"] = timed(lambda: [ts_parser.parse(prepare_source(d).data) for _, d in files])
    _, report["query_s"] = timed(lambda: [QueryCursor(query).captures(t.root_node) for t in trees])
    found, report["extract_cst_s"] = timed(lambda: [extract_cst(d, repo="bench", path=p, module=p) for p, d in files])
    report["rows_s"] = round(report["extract_cst_s"] - report["prepare_parse_s"] - report["query_s"], 3)
    other = [(to_arrow(Table.COMMENTS, f.comments), to_arrow(Table.DEF_HEADERS, f.headers)) for f in found]
    _, report["names_as_rows_to_arrow_s"] = timed(lambda: [to_arrow(Table.NAME_SITES, f.names) for f in found])
    names, report["names_as_columns_to_arrow_s"] = timed(
        lambda: [columns_to_arrow(Table.NAME_SITES, f.name_columns) for f in found]
    )
    tables = [(*pair, name) for pair, name in zip(other, names, strict=True)]
    blob, report["pickle_s"] = timed(lambda: pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL))
    report["pickled_mb"] = round(len(blob) / 2**20, 1)
    tables, report["unpickle_s"] = timed(lambda: pickle.loads(blob))
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "w.duckdb"))
        con.execute("CREATE SCHEMA IF NOT EXISTS core")
        for table in TABLES:
            con.execute(spec_of(table).ddl())
        started = time.perf_counter()
        _, report["write_cpu_s"] = timed(lambda: _write(con, tables))
        report["write_wall_s"] = round(time.perf_counter() - started, 3)
        con.close()
    report["rows"] = {t: sum(parts[i].num_rows for parts in tables) for i, t in enumerate(TABLES)}
    if args.profile:
        cProfile.runctx(
            "for p, d in files: extract_cst(d, repo='bench', path=p, module=p)",
            globals(),
            {"files": files},
            args.profile,
        )
    print(json.dumps(report, indent=2))


def _write(con: duckdb.DuckDBPyConnection, tables: list[tuple[pa.Table, ...]]) -> None:
    con.execute("BEGIN")
    for i, table in enumerate(TABLES):
        con.register("_rows", pa.concat_tables([parts[i] for parts in tables]))
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
        con.unregister("_rows")
    con.execute("COMMIT")


if __name__ == "__main__":
    main()
