"""The `codeintel` command: export, steps, status, query, callgraph, mcp, dump.

This is the one module of `codeintel/` that may import `flows/` (lazily, for `--runner
prefect|dask`).  Everything else it does goes through the pipeline engine and the gateway.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codeintel import scratch
from codeintel.config import DEFAULT_DB, LoadedConfig, load_config
from codeintel.errors import CodeIntelError, ConfigError, StepFailedError

logger = logging.getLogger(__name__)

SUMMARY_TABLES = (
    "core.files",
    "core.modules",
    "core.ast_nodes",
    "core.parse_errors",
    "core.goids",
    "analytics.function_metrics",
)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `codeintel export` (shared with `python -m flows.local`)."""
    parser.add_argument("repo", nargs="?", default=".", help="repository to index (default: .)")
    parser.add_argument("--db", type=Path, default=None, help=f"published database (default: {DEFAULT_DB})")
    parser.add_argument(
        "--select", nargs="+", default=None, metavar="SELECTOR", help="steps: NAME, NAME+, @NAME, state:modified"
    )
    parser.add_argument(
        "--exclude", nargs="+", default=[], metavar="SELECTOR", help="steps to leave out (same selectors)"
    )
    parser.add_argument("--full", action="store_true", help="reprocess everything, ignoring change state")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes for per-file work (default: one per core)"
    )
    parser.add_argument(
        "--executor", choices=("serial", "process", "dask"), default=None, help="how per-file work runs"
    )
    parser.add_argument("--lock-timeout", type=float, default=None, help="seconds to wait for the database lock")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="after publishing, also dump every table and docs view here (Parquet, JSONL)"
    )


def build_config(args: argparse.Namespace, mode: str) -> Any:
    """The run's PipelineContextConfig from parsed export flags."""
    from codeintel.ingestion.tools import ToolService
    from codeintel.orchestration.context import PipelineContextConfig

    repo = Path(args.repo)
    cli = {
        "db": args.db, "workers": args.workers, "executor": args.executor, "lock_timeout": args.lock_timeout,
        "out_dir": getattr(args, "out_dir", None),
    }  # fmt: skip
    loaded: LoadedConfig = load_config(repo, cli=cli)
    commit = ToolService(loaded.execution.tools).git_head(loaded.snapshot.repo_root)
    loaded = LoadedConfig(
        snapshot=type(loaded.snapshot)(loaded.snapshot.repo_root, loaded.snapshot.repo_name, commit),
        execution=loaded.execution,
        storage=loaded.storage,
        paths=loaded.paths,
    )
    return PipelineContextConfig.from_loaded(loaded, mode=mode, full=args.full)


def export_local(args: argparse.Namespace, mode: str = "local") -> int:
    """Run the pipeline in this process with a progress display and a summary; exit code."""
    from codeintel.orchestration.context import PipelineContext
    from codeintel.orchestration.steps import run_pipeline

    cfg = build_config(args, mode)
    started = time.perf_counter()
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    failed, published = False, False
    with PipelineContext(cfg) as ctx, progress:
        try:
            published = run_pipeline(ctx, args.select, args.exclude, on_event=progress.event).published
        except StepFailedError as exc:
            print(str(exc), file=sys.stderr)
            failed, published = True, exc.published
    print_summary(cfg, time.perf_counter() - started, quiet=args.quiet, published=published)
    if published and cfg.storage.out_dir is not None and not dump_after_publish(cfg.storage.db_path, cfg.storage.out_dir):
        return 1
    return 1 if failed else 0


def dump_after_publish(db: Path, out_dir: Path) -> bool:
    """Dump the database just published to `out_dir`; False (and a message) when that failed."""
    from codeintel.serving.dump import dump_published

    try:
        done = dump_published(db, out_dir)
    except CodeIntelError as exc:
        print(f"error: published {db}, but the dump to {out_dir} failed: {exc}", file=sys.stderr)
        return False
    print(f"dumped: {done.files} files ({done.rows} rows) to {out_dir}" + ("" if done.changed else " (unchanged)"))
    return True


def print_summary(cfg: Any, seconds: float, *, quiet: bool = False, published: bool = False) -> None:
    """One screen: each step of the run, the size of the main tables, the files that could not
    be used, the steps whose published output is stale, and whether the run published."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    from codeintel.orchestration.ledger import step_runs
    from codeintel.orchestration.status import read_step_status
    from codeintel.storage.gateway import StorageGateway

    gateway = StorageGateway(cfg.storage)
    console = Console(stderr=False)
    runs = step_runs(gateway, cfg.run_id)
    # notes, errors and names are text, not markup: `[tool.codeintel]` in a note is no style tag
    table = RichTable(title=escape(f"codeintel export of {cfg.snapshot.repo_name} ({seconds:.2f} s)"))
    for col in ("step", "status", "files", "rows", "seconds", "note / error"):
        table.add_column(col)
    for r in runs:
        secs = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] and r["started_at"] else 0.0
        table.add_row(
            r["step"],
            r["status"],
            str(r["files_processed"]),
            str(r["rows_written"]),
            f"{secs:.2f}",
            escape((r["error"] or r["note"] or "")[:80]),
        )
    counts = gateway.query(" UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in SUMMARY_TABLES))
    problems = gateway.query(
        "SELECT kind, step, count(*) AS n, max(needs_python) AS needs FROM core.parse_errors GROUP BY ALL ORDER BY ALL"
    ).to_pylist()
    with gateway.reader() as con:
        stale = [s for s in read_step_status(con) if s["stale"]]
    if quiet:
        return
    console.print(table)
    console.print("  ".join(f"{t}: {n}" for t, n in zip(counts["t"].to_pylist(), counts["n"].to_pylist(), strict=True)))
    for line in problem_lines(problems):
        console.print(line, markup=False)
    for s in stale:
        kept = s["last_success_run_id"]
        console.print(
            f"stale: {s['step']} ({s['stale_reason']}); "
            + (f"it keeps the output of run {kept}" if kept else "it has no output yet"),
            markup=False,
        )
    if published:
        console.print(
            f'published: {cfg.storage.db_path}   query it: codeintel query --db {cfg.storage.db_path} "SELECT ..."',
            markup=False,
        )
    else:
        console.print(f"not published: {cfg.storage.db_path} is as before", markup=False)


def problem_lines(problems: Sequence[dict[str, Any]]) -> list[str]:
    """What the export summary says of core.parse_errors: counts by kind, and how to fix the
    files that only need a newer Python."""
    if not problems:
        return []
    by_kind: dict[str, int] = {}
    for p in problems:
        by_kind[p["kind"]] = by_kind.get(p["kind"], 0) + p["n"]
    lines = ["files not (fully) indexed: " + ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))]
    newer = [p for p in problems if p["kind"] == "unsupported_syntax"]
    if newer:
        needs = max(p["needs"] for p in newer)
        lines.append(
            f"  {sum(p['n'] for p in newer)} files use syntax of a newer Python (up to {needs}) than this one "
            f"({sys.version_info.major}.{sys.version_info.minor}): export with Python {needs} or newer to index them"
        )
    failing = sorted({p["step"] for p in problems if p["kind"] == "extractor_error"})
    if failing:
        lines.append(
            f"  {by_kind['extractor_error']} extractor errors ({', '.join(failing)}): a bug of ours, please report; "
            "SELECT * FROM core.parse_errors WHERE kind = 'extractor_error'"
        )
    return lines


class _Progress:
    """A rich progress line per step (only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def event(self, step: str, what: str, result: Any) -> None:
        if self._progress is None:
            return
        if what == "start":
            self._tasks[step] = self._progress.add_task(f"{step} ...", total=None)
        else:
            self._progress.update(self._tasks[step], description=f"{step}: {what}", total=1, completed=1)


def cmd_export(args: argparse.Namespace) -> int:
    if args.runner == "local":
        return export_local(args)
    from flows.prefect_flow import export_flow  # lazy: only this runner needs Prefect

    try:
        export_flow(
            repo=str(args.repo),
            db=str(args.db) if args.db else None,
            select=args.select,
            exclude=args.exclude,
            full=args.full,
            runner="dask" if args.runner == "dask" else "threads",
            dask_address=args.dask_address,
            granularity=args.granularity,
            workers=args.workers or 0,
            lock_timeout=args.lock_timeout,
            out_dir=str(args.out_dir) if args.out_dir else None,
        )
    except StepFailedError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    from codeintel.orchestration.steps import (
        PIPELINE_DEPS,
        PIPELINE_STEPS_BY_NAME,
        topological_order,
    )

    for name in topological_order(PIPELINE_DEPS):
        doc = (type(PIPELINE_STEPS_BY_NAME[name]).__doc__ or "").strip().splitlines()[0]
        deps = ", ".join(PIPELINE_DEPS[name]) or "-"
        print(f"{name:<18} <- {deps:<32} {doc}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from codeintel.config import StorageConfig
    from codeintel.orchestration.status import read_step_status
    from codeintel.storage.gateway import StorageGateway

    gateway = StorageGateway(StorageConfig(db_path=args.db or DEFAULT_DB, lock_timeout_s=10))
    runs = gateway.query(
        "SELECT r.run_id, r.mode, r.repo, r.status, r.started_at, r.finished_at, "
        "list(s.step || '=' || s.status ORDER BY s.started_at) AS steps "
        "FROM meta.pipeline_runs r LEFT JOIN meta.step_runs s USING (run_id) "
        "GROUP BY ALL ORDER BY r.started_at DESC LIMIT ?",
        [args.limit],
    ).to_pylist()
    for r in runs:
        took = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None
        print(
            f"{r['run_id']}  {r['started_at']:%Y-%m-%d %H:%M:%S}  {r['mode']:<12} {r['status']:<10} "
            f"{'' if took is None else f'{took:.1f}s':>7}  {r['repo']}"
        )
        print("    " + "  ".join(s for s in r["steps"] if s))
    with gateway.reader() as con:
        status = read_step_status(con)
    if status:
        print("\nsteps (what the published database holds):")
        columns = ["step", "last attempt", "stale", "last good run", "commit", "why stale / last error"]
        rows = [
            [
                s["step"], s["last_status"], "yes" if s["stale"] else "no", s["last_success_run_id"],
                (s["last_success_commit"] or "")[:10], s["stale_reason"] or (s["last_error"] if s["stale"] else ""),
            ]
            for s in status
        ]  # fmt: skip
        print(format_rows(columns, rows, "table"))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from codeintel.errors import StorageError
    from codeintel.storage.gateway import open_published

    db = args.db or DEFAULT_DB
    con = open_published(db)
    try:
        result = con.sql(args.sql)
        if result is None:
            return 0
        rows = result.fetchall()
        columns = result.columns
    except duckdb.Error as exc:
        raise StorageError(f"query failed on {db} (a read-only copy): {exc}") from exc
    finally:
        con.close()
    print(format_rows(columns, rows, args.format))
    return 0


TABLE_CELL_WIDTH = 60  # longer values wrap onto more lines of their row, never cut


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Render query results as an aligned table, CSV or JSON lines.

    The table shows every value whole: one longer than `TABLE_CELL_WIDTH` (or holding line
    breaks) wraps onto further lines of its row, rows are then separated by blank lines, and a
    last line says so (`--format csv|json` gives one line per row).
    """
    if fmt == "json":
        return "\n".join(json.dumps(dict(zip(columns, row, strict=True)), default=str) for row in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[str(c) for c in columns]] + [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [
        min(TABLE_CELL_WIDTH, max(len(part) for r in cells for part in r[i].split("\n"))) for i in range(len(columns))
    ]
    rendered = [_wrapped_row(r, widths) for r in cells]
    wrapped = any(len(lines) > 1 for lines in rendered)
    out_lines = list(rendered[0])
    out_lines.append("  ".join("-" * w for w in widths))
    for lines in rendered[1:]:
        out_lines.extend(lines)
        if wrapped:
            out_lines.append("")
    if wrapped:
        out_lines.append(
            f"(values longer than {TABLE_CELL_WIDTH} characters are wrapped; --format csv or json: one line a row)"
        )
    return "\n".join(out_lines)


def _wrapped_row(row: Sequence[str], widths: Sequence[int]) -> list[str]:
    """The lines of one table row: each value cut into pieces of its column's width."""
    pieces = [_pieces(value, width) for value, width in zip(row, widths, strict=True)]
    height = max(len(p) for p in pieces)
    return [
        "  ".join((p[k] if k < len(p) else "").ljust(w) for p, w in zip(pieces, widths, strict=True)).rstrip()
        for k in range(height)
    ]


def _pieces(value: str, width: int) -> list[str]:
    out: list[str] = []
    for line in value.split("\n"):
        out.extend(line[i : i + width] for i in range(0, max(len(line), 1), width))
    return out


def cmd_callgraph(args: argparse.Namespace) -> int:
    from codeintel.orchestration.callgraph_export import callgraph_of_directory

    with scratch.temporary_directory("codeintel-cg-") as tmp:
        print(callgraph_of_directory(Path(args.dir), Path(tmp) / "cg.duckdb", args.format))
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from codeintel.serving.server import serve

    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--token-file {args.token_file}: cannot read it ({exc.strerror})") from exc
        if not token:
            raise ConfigError(f"--token-file {args.token_file} is empty")
    serve(args.db or DEFAULT_DB, args.repo, args.http, token)
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    from codeintel.serving.dump import FORMATS, dump_published

    done = dump_published(args.db or DEFAULT_DB, args.dir, args.format or FORMATS)
    print(f"dumped: {done.files} files ({done.rows} rows) to {args.dir}" + ("" if done.changed else " (unchanged)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codeintel", description="Index a Python repository into DuckDB.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="run the pipeline and publish the database")
    add_export_arguments(export)
    export.add_argument("--runner", choices=("local", "prefect", "dask"), default="local")
    export.add_argument("--dask-address", default=None, help="an existing Dask scheduler (with --runner dask)")
    export.add_argument(
        "--granularity", choices=("step", "pipeline"), default="step", help="Prefect tasks: one per step, or one"
    )
    export.set_defaults(func=cmd_export)
    sub.add_parser("steps", help="list the pipeline's steps and dependencies").set_defaults(func=cmd_steps)
    status = sub.add_parser("status", help="the last runs from the ledger")
    status.add_argument("--db", type=Path, default=None)
    status.add_argument("--limit", type=int, default=5)
    status.set_defaults(func=cmd_status)
    query = sub.add_parser("query", help="run SQL against the published database")
    query.add_argument("sql")
    query.add_argument("--db", type=Path, default=None)
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(func=cmd_query)
    cg = sub.add_parser("callgraph", help="print the call graph of any directory")
    cg.add_argument("dir")
    cg.add_argument("--format", choices=("pycg", "json", "dot"), default="json")
    cg.set_defaults(func=cmd_callgraph)
    mcp = sub.add_parser("mcp", help="serve the published database to AI agents (MCP: stdio, or HTTP)")
    mcp.add_argument("--db", type=Path, default=None, help=f"published database (default: {DEFAULT_DB})")
    mcp.add_argument("--repo", type=Path, default=None, help="the repository's checkout, if not where it was indexed")
    mcp.add_argument("--http", metavar="HOST:PORT", default=None, help="streamable HTTP instead of stdio (loopback by default)")
    mcp.add_argument("--token-file", type=Path, default=None, help="bearer token clients must send (required off loopback)")
    mcp.set_defaults(func=cmd_mcp)
    dump = sub.add_parser("dump", help="write every table and docs view as Parquet and JSONL, with a manifest")
    dump.add_argument("dir", type=Path, help="output directory (a link swapped atomically to each new set)")
    dump.add_argument("--db", type=Path, default=None, help=f"published database (default: {DEFAULT_DB})")
    dump.add_argument(
        "--format", action="append", choices=("parquet", "jsonl"), default=None, help="one format (default: both)"
    )
    dump.set_defaults(func=cmd_dump)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except CodeIntelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
