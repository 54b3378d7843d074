"""THE pipeline: every step, its dependencies, and how a run executes them.

Each step is a small class whose `run` reads its inputs, calls pure analysis code and writes its
tables in one transaction.  `PIPELINE_STEPS` is the one explicit list; `PIPELINE_STEPS_BY_NAME`
and `PIPELINE_DEPS` derive from it and the DAG is validated at import.  `run_step` runs one step
with ledger bookkeeping (used by every runner, Prefect included); `run_pipeline` runs a selection
in deterministic topological order, in this process, with no Prefect at all.
"""

from __future__ import annotations

import heapq
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from graphlib import CycleError, TopologicalSorter
from typing import ClassVar, Protocol

from codeintel.analysis.call_edges import CALL_EDGE_ORDER, solve_call_edges
from codeintel.analysis.call_relink import GoidFixes, Moves, goid_fixes, moves_table, read_goid_keys, same_program
from codeintel.analysis.callgraph.model import FACTS_VERSION
from codeintel.analysis.goids import DefinitionRef, build_goids
from codeintel.analysis.graph_inputs import (
    CALL_PAIRS_SQL,
    FUNCTIONS_SQL,
    IMPORT_PAIRS_SQL,
    KINDS_SQL,
    MODULE_CALL_PAIRS_SQL,
    MODULES_SQL,
    function_metric_rows,
    metric_row,
    read_nodes,
    read_weighted_edges,
)
from codeintel.analysis.graph_metrics import compute_graph_metrics
from codeintel.analysis.history import (
    HistoryAnalyticsSettings,
    change_coupling_sql,
    file_history_sql,
    function_history_sql,
    hotspots_sql,
    last_note_is,
    ownership_sql,
    settings_note,
)
from codeintel.analysis.history_timeseries import TimeseriesSettings
from codeintel.analysis.imports import import_graph
from codeintel.analysis.signatures import DEFINITION_SIGNATURES_SQL, definition_types
from codeintel.analysis.subsystems import detect_subsystems
from codeintel.analysis.symbol_index import (
    SYMBOL_INDEX_SQL,
    UNRESOLVED_SITES_SQL,
    build_symbol_index,
    build_unresolved_names,
    docs_complete_sql,
)
from codeintel.analysis.symbol_uses import symbol_uses_writes
from codeintel.analysis.typed_calls import (
    CLASS_BASES_SQL,
    CONSTRUCTORS_TABLE,
    COPY_CALL_EDGES_SQL,
    INITS_SQL,
    MERGE_COUNTS_SQL,
    NO_SCIP_NOTE,
    SCIP_INDEXED_SQL,
    constructors_table,
    merged_call_edges_sql,
)
from codeintel.errors import PipelineCycleError, StepFailedError, ToolNotFoundError, UnknownStepError, did_you_mean
from codeintel.ingestion.change_tracker import ChangeTracker
from codeintel.ingestion.history import store as history_store
from codeintel.ingestion.history.apart import ColdWalk
from codeintel.ingestion.history.blobs import open_blobs
from codeintel.ingestion.history.plan import PlanMode
from codeintel.ingestion.history.walk import history_plan, history_settings, start_cold_walk_if_cold, walk_with_stored
from codeintel.ingestion.history_timeseries import (
    TimeseriesFacts,
    collect_timeseries,
    plan_timeseries,
    store_timeseries,
)
from codeintel.ingestion.scan import PreviousState, diff_states, renamed, scan_repository
from codeintel.ingestion.scip import ingest as scip
from codeintel.ingestion.scip.decode import IndexDecodeError
from codeintel.ingestion.tools import ToolFailedError
from codeintel.orchestration import ledger
from codeintel.orchestration.context import FileWork, PipelineContext, StartAhead
from codeintel.orchestration.ledger import RunStatus
from codeintel.orchestration.selection import ancestors, plan_steps
from codeintel.orchestration.status import write_step_status
from codeintel.orchestration.stepio import (
    FileDelta,
    StepResult,
    align_code_version,
    collect_file_delta,
    current_rows,
    inputs_unchanged,
    retry_files_our_code_failed,
    same_rows,
    step_code_version,
    step_writer,
    write_file_delta,
)
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import columns_to_arrow, to_arrow
from codeintel.storage.views import view_statements

logger = logging.getLogger(__name__)

DEFAULT_RETRIES = 0
DEFAULT_RETRY_DELAY_S = 5.0


class PipelineStep(Protocol):
    """A pipeline step: a name, the steps it depends on, and `run`.

    Optional class attributes: `retries` and `retry_delay_seconds` (used by the Prefect runner),
    and `code_version` (change it when stored per-file facts change format: the step then
    reprocesses every file once).
    """

    name: ClassVar[str]
    deps: ClassVar[tuple[str, ...]]

    def run(self, ctx: PipelineContext) -> StepResult: ...


# --------------------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class RepoScanStep:
    """Find the repository's Python files, name their modules, hash them, diff with last scan."""

    name: ClassVar[str] = "repo_scan"
    deps: ClassVar[tuple[str, ...]] = ()

    def run(self, ctx: PipelineContext) -> StepResult:
        old = ctx.gateway.read(Table.FILE_STATE).to_pylist()
        previous = {r["path"]: PreviousState(r["hash"], r["size"], r["mtime_ns"]) for r in old}
        modules = ctx.gateway.read(Table.MODULES).to_pylist()
        named = {r["path"]: (r["module"], r["is_package"], r["source_root"]) for r in modules}
        files = scan_repository(ctx.repo_root, ctx.config.execution.scan, ctx.tool_service, previous)
        changes = diff_states(previous, files, named)
        changed = any(kind != "unchanged" for _, kind, _, _ in changes)
        usable = [f for f in files if f.hash is not None]
        with step_writer(ctx, self.name, self.deps, changed=changed or ctx.config.full) as w:
            ChangeTracker.forget_files(w, renamed(changes))
            w.replace_all(Table.FILES, files)
            w.replace_all(
                Table.MODULES,
                [(f.module, f.path, f.is_package, f.module.rpartition(".")[0] or None, f.source_root) for f in usable],
            )
            w.replace_all(Table.FILE_STATE, usable)
            w.replace_all(Table.CHANGE_STATE, [(ctx.run_id, *change) for change in changes])
        n_changed = sum(kind != "unchanged" for _, kind, _, _ in changes)
        return StepResult(
            w.rows_written, len(usable), sum(kind == "deleted" for _, kind, _, _ in changes), f"{n_changed} changed"
        )


@dataclass(frozen=True)
class AstIngestStep:
    """Parse each stale file once: definitions to core.ast_nodes, failures to core.parse_errors."""

    name: ClassVar[str] = "ast_ingest"
    deps: ClassVar[tuple[str, ...]] = ("repo_scan",)
    file_work: ClassVar[FileWork] = FileWork(name, "definitions", (Table.AST_NODES,))

    def run(self, ctx: PipelineContext) -> StepResult:
        delta = collect_file_delta(ctx, self.file_work)
        return write_file_delta(ctx, self.deps, delta)


@dataclass(frozen=True)
class CstIngestStep:
    """Comments (pragmas, task tags), def headers and name sites of each stale file, from
    tree-sitter: files `ast` cannot parse (newer syntax, syntax errors) too."""

    name: ClassVar[str] = "cst_ingest"
    # GOIDs come from its own tree-sitter definitions, by core.goids' rules: it needs only the scan
    deps: ClassVar[tuple[str, ...]] = ("repo_scan",)
    code_version: ClassVar[str] = "2"  # 2: a decorator's or base's arguments keep their own roles
    file_work: ClassVar[FileWork] = FileWork(name, "cst", (Table.COMMENTS, Table.DEF_HEADERS, Table.NAME_SITES))

    def run(self, ctx: PipelineContext) -> StepResult:
        delta = collect_file_delta(ctx, self.file_work)
        return write_file_delta(ctx, self.deps, delta)


@dataclass(frozen=True)
class GoidsStep:
    """Stable ids for every module, class, function and method of the files ast_ingest parsed."""

    name: ClassVar[str] = "goids"
    deps: ClassVar[tuple[str, ...]] = ("ast_ingest",)
    sized: ClassVar[bool] = True  # of ast_ingest's files: all again when their size limit changes

    def run(self, ctx: PipelineContext) -> StepResult:
        stale = ctx.change_tracker.stale_files(self.name, source_step="ast_ingest")
        if not stale:
            if not inputs_unchanged(ctx, self.name, self.deps):  # (a repository of no file yet)
                with step_writer(ctx, self.name, self.deps, changed=False):
                    pass
            return StepResult.noop("no stale files")
        paths = [f.path for f in stale.to_process]
        fields = ", ".join(DefinitionRef.__dataclass_fields__)
        nodes = ctx.gateway.query(
            f"SELECT {fields} FROM {Table.AST_NODES} WHERE path IN (SELECT unnest(?::VARCHAR[]))", [paths]
        )
        rows = build_goids(ctx.config.snapshot.repo_name, (DefinitionRef(**r) for r in nodes.to_pylist()))
        with step_writer(ctx, self.name, self.deps) as w:
            w.delete_paths(Table.GOIDS, stale.paths_to_clear)
            written = w.insert(Table.GOIDS, rows)
            ChangeTracker.record(w, self.name, ctx.run_id, [(f.path, f.hash) for f in stale.to_process], stale.gone)
        return StepResult(written, len(paths), len(stale.gone))


@dataclass(frozen=True)
class ScipIngestStep:
    """The type checker's index (pyrefly, SCIP): documents, symbols, occurrences, type errors and
    the GOID crosswalk.  Under the local runner pyrefly starts as soon as the scan has run and
    works beside the other steps; this step collects it.  A missing or failing indexer is a skip."""

    name: ClassVar[str] = "scip_ingest"
    deps: ClassVar[tuple[str, ...]] = ("repo_scan", "goids")  # not call_graph: they run side by side
    start_ahead: ClassVar[StartAhead] = StartAhead("repo_scan", lambda ctx: _start_scip(ctx))
    # 2, 3: a definition pyrefly lists no SymbolInformation for is a symbol; 4: a symbol of several
    # definitions names the one Python keeps
    code_version: ClassVar[str] = "4"
    sized: ClassVar[bool] = True  # files over max_file_size are not indexed (`step_code_version`)

    def run(self, ctx: PipelineContext) -> StepResult:
        ahead = ctx.run_ahead.take(self.name)
        try:
            stale = ctx.change_tracker.stale_files(self.name)
            if not stale and inputs_unchanged(ctx, self.name, self.deps):
                return StepResult.noop("up to date")
            delta = scip.collect_scip(
                ctx.gateway, ctx.tool_service, ctx.repo_root, ctx.config.snapshot.repo_name, stale,
                full=ctx.config.full, ahead=ahead if isinstance(ahead, scip.Ahead) else None, mapper=ctx.local_executor(),
                max_file_size=ctx.config.execution.scan.max_file_size,
            )  # fmt: skip
        except (ToolNotFoundError, ToolFailedError, IndexDecodeError) as exc:
            return StepResult(note=f"indexer unavailable, stored index kept: {exc}"[:2000], skipped=True)
        finally:
            if ahead is not None:
                ahead.cancel()  # done with it (idempotent), or unused
        with step_writer(ctx, self.name, self.deps) as w:
            rows = scip.write_scip(w, delta, ctx.run_id)
        return StepResult(rows, len(delta.indexed), len(delta.plan.gone), delta.note)


def _start_scip(ctx: PipelineContext) -> scip.Ahead | None:
    stale = ctx.change_tracker.stale_files(ScipIngestStep.name)
    project = ctx.config.snapshot.repo_name
    return scip.start_ahead(
        ctx.gateway, ctx.tool_service, ctx.repo_root, project, stale,
        full=ctx.config.full, max_file_size=ctx.config.execution.scan.max_file_size,
    )  # fmt: skip


@dataclass(frozen=True)
class FunctionMetricsStep:
    """Size, complexity (radon's rules), signature and typedness of every function and method."""

    name: ClassVar[str] = "function_metrics"
    deps: ClassVar[tuple[str, ...]] = ("goids",)
    file_work: ClassVar[FileWork] = FileWork(name, "metrics", (Table.FUNCTION_METRICS,))

    def run(self, ctx: PipelineContext) -> StepResult:
        delta = collect_file_delta(ctx, self.file_work)
        return write_file_delta(ctx, self.deps, delta)


@dataclass(frozen=True)
class ImportGraphStep:
    """Resolve every import to an internal module or an external package; cycles and layers."""

    name: ClassVar[str] = "import_graph"
    deps: ClassVar[tuple[str, ...]] = ("goids",)
    file_work: ClassVar[FileWork] = FileWork(name, "imports", (Table.IMPORT_SITES, Table.MODULE_EXPORTS))

    def run(self, ctx: PipelineContext) -> StepResult:
        delta = collect_file_delta(ctx, self.file_work)
        if not delta.stale and inputs_unchanged(ctx, self.name, self.deps):
            return StepResult.noop("up to date")
        sites = current_rows(ctx, Table.IMPORT_SITES, delta).sort_by([("src_path", "ascending"), ("line", "ascending")])
        exports = current_rows(ctx, Table.MODULE_EXPORTS, delta)
        found = ctx.gateway.query(f"SELECT module, bool_or(is_package) AS pkg FROM {Table.MODULES} GROUP BY module")
        modules = dict(zip(found["module"].to_pylist(), found["pkg"].to_pylist(), strict=True))
        resolved, module_layers = import_graph(sites.to_pylist(), exports.to_pylist(), modules)
        edges, layers = to_arrow(Table.IMPORT_EDGES, resolved), to_arrow(Table.IMPORT_LAYERS, module_layers)
        # an edit that leaves every import as it was changes nothing downstream
        changed = not (same_rows(ctx, Table.IMPORT_EDGES, edges) and same_rows(ctx, Table.IMPORT_LAYERS, layers))
        with step_writer(ctx, self.name, self.deps, changed=changed) as w:
            rows = delta.apply(w, ctx.run_id)
            if changed:
                rows += w.replace_all(Table.IMPORT_EDGES, edges) + w.replace_all(Table.IMPORT_LAYERS, layers)
        note = f"{edges.num_rows} edges" + ("" if changed else ", unchanged")
        return StepResult(rows, len(delta.outputs), len(delta.stale.gone), note)


@dataclass(frozen=True)
class CallGraphStep:
    """Per-file call facts (incremental), then a whole-program points-to solve to call edges."""

    name: ClassVar[str] = "call_graph"
    # only what it reads: the solve resolves imports from the facts themselves, so under Prefect
    # and Dask the call graph (the longest step) starts as soon as the GOIDs exist
    deps: ClassVar[tuple[str, ...]] = ("goids",)
    # .1: files sharing a module name keep their own calls; .2: a call in the second definition of a
    # name (a setter, an if/else twin) is that definition's, by its lines
    code_version: ClassVar[str] = f"facts-{FACTS_VERSION}.2"
    file_work: ClassVar[FileWork] = FileWork(name, "call_facts", (Table.CALL_FACTS,))

    def run(self, ctx: PipelineContext) -> StepResult:
        started = time.perf_counter()
        # its solve is the longest serial stretch of the pipeline: where steps overlap (Prefect
        # on Dask), its facts go first so that the solve starts as early as it can
        delta = collect_file_delta(ctx, self.file_work, priority=1)
        ctx.release_workers()  # the solve below is one process: it needs the memory and the core
        if not delta.stale and inputs_unchanged(ctx, self.name, self.deps):
            return StepResult.noop("up to date")
        keys = read_goid_keys(ctx.gateway)
        if not (ctx.config.full or not delta.stale or delta.stale.gone):
            moves = same_program(ctx.gateway, delta.outputs)
            if moves is not None:
                return self._relink(ctx, delta, goid_fixes(ctx.gateway, keys, moves), moves)
        extracted = time.perf_counter()
        stored = current_rows(ctx, Table.CALL_FACTS, delta).sort_by("path")  # solve order must not vary
        texts = stored.column("facts").to_pylist()
        del stored
        solved = solve_call_edges(texts, keys)
        del texts
        edges = columns_to_arrow(Table.CALL_EDGES, solved.columns)
        edges = edges.sort_by([(name, "ascending", "at_start") for name in CALL_EDGE_ORDER])  # unresolved first
        logger.info(
            "call_graph: facts of %d files in %.2fs, solve in %.2fs, %d edges linked in %.2fs (%.2fs in all)",
            len(delta.outputs), extracted - started, solved.solve_seconds, len(edges), solved.link_seconds,
            time.perf_counter() - extracted,
        )  # fmt: skip
        with step_writer(ctx, self.name, self.deps) as w:
            rows = delta.apply(w, ctx.run_id) + w.replace_all(Table.CALL_EDGES, edges)
        return StepResult(rows, len(delta.outputs), len(delta.stale.gone), f"{len(edges)} call edges")

    def _relink(self, ctx: PipelineContext, delta: FileDelta, fixes: GoidFixes, moves: Moves) -> StepResult:
        """The changed files gave the facts stored for them, up to positions: the solve would give
        the stored edges, at the sites' new positions (`call_relink`).  When nothing changed, the
        step keeps its output version, so the graph steps downstream have nothing to redo."""
        with step_writer(ctx, self.name, self.deps, changed=bool(fixes or moves)) as w:
            rows = delta.apply(w, ctx.run_id)
            if fixes.sites is not None and fixes.sites.num_rows:  # (at the sites' positions before the moves)
                match = {"path": "path", "line": "line", "col": "col", "caller": "caller", "caller_module": "caller_module"}
                rows += w.update_from(Table.CALL_EDGES, fixes.sites, match, ("caller_goid",))
            if moves:
                match = {"path": "path", "line": "old_line", "col": "old_col"}
                rows += w.update_from(Table.CALL_EDGES, moves_table(moves), match, ("line", "col"))
            if fixes.callers.num_rows:
                match = {"path": "path", "caller": "caller", "caller_module": "caller_module", "caller_goid": "old_goid"}
                rows += w.update_from(Table.CALL_EDGES, fixes.callers, match, ("caller_goid",))
            if fixes.callees.num_rows:
                rows += w.update_from(Table.CALL_EDGES, fixes.callees, {"callee": "callee"}, ("callee_goid",))
        done = [f"{len(moves)} sites moved"] if moves else []
        done += ["GOIDs relinked"] if fixes else []
        note = ", ".join(done) or "edges unchanged"
        logger.info("call_graph: the facts of %d changed files are the same: no solve, %s", len(delta.outputs), note)
        return StepResult(rows, len(delta.outputs), 0, f"facts unchanged, {note}")


def _scip_indexed(ctx: PipelineContext) -> bool:
    return bool(ctx.gateway.query(SCIP_INDEXED_SQL).column(0)[0].as_py())


@dataclass(frozen=True)
class CallGraphTypesStep:
    """The call graph with the type checker's answers (graph.call_edges_merged): call sites SCIP
    resolves to a repository function that the points-to analysis does not, and agreement."""

    name: ClassVar[str] = "call_graph_types"
    # beside call_graph, not in it: the call graph never waits for the indexer
    deps: ClassVar[tuple[str, ...]] = ("goids", "call_graph", "scip_ingest", "cst_ingest")
    code_version: ClassVar[str] = settings_note(merged_call_edges_sql(), CLASS_BASES_SQL, INITS_SQL)

    def run(self, ctx: PipelineContext) -> StepResult:
        if inputs_unchanged(ctx, self.name, self.deps):
            return StepResult.noop("up to date")
        indexed = _scip_indexed(ctx)
        bases, inits = (ctx.gateway.query(sql).to_pylist() if indexed else [] for sql in (CLASS_BASES_SQL, INITS_SQL))
        constructors = constructors_table(bases, inits)
        with step_writer(ctx, self.name, self.deps) as w:
            w.con.register(CONSTRUCTORS_TABLE, constructors)
            w.execute(f"DELETE FROM {Table.CALL_EDGES_MERGED}")
            sql = merged_call_edges_sql() if indexed else COPY_CALL_EDGES_SQL
            rows = history_store.insert_query(w, Table.CALL_EDGES_MERGED, sql)
            w.con.unregister(CONSTRUCTORS_TABLE)
            scip_only, confirmed = w.con.execute(MERGE_COUNTS_SQL).fetchone() or (0, 0)
        note = f"{rows} edges, {scip_only} from SCIP alone, {confirmed} confirmed by it" if indexed else NO_SCIP_NOTE
        return StepResult(rows, note=note)


@dataclass(frozen=True)
class SymbolUsesStep:
    """Every use of a repository symbol (what the type checker says a name refers to, what the
    syntax says it does there), the uses per pair of definitions, and the return type the
    checker gives each function."""

    name: ClassVar[str] = "symbol_uses"
    deps: ClassVar[tuple[str, ...]] = ("goids", "scip_ingest", "cst_ingest")
    code_version: ClassVar[str] = settings_note(
        *(sql for _, query, amends in symbol_uses_writes() for sql in (query, *amends)), DEFINITION_SIGNATURES_SQL
    )

    def run(self, ctx: PipelineContext) -> StepResult:
        if inputs_unchanged(ctx, self.name, self.deps):
            return StepResult.noop("up to date")
        indexed = _scip_indexed(ctx)
        signatures = ctx.gateway.query(DEFINITION_SIGNATURES_SQL)
        types = definition_types(signatures)
        with step_writer(ctx, self.name, self.deps) as w:
            for table, query, amends in symbol_uses_writes():
                w.execute(f"DELETE FROM {table}")
                history_store.insert_query(w, table, query)
                for amend in amends:
                    w.execute(amend)
            w.replace_all(Table.DEFINITION_TYPES, types)
        if not indexed:
            return StepResult(w.rows_written, note=NO_SCIP_NOTE + ": no symbol uses", skipped=True)
        return StepResult(w.rows_written, note=f"{w.rows_written} rows")


@dataclass(frozen=True)
class GraphMetricsStep:
    """Fan-in/out, PageRank, betweenness, closeness, cycles and layers of call and import graphs."""

    name: ClassVar[str] = "graph_metrics"
    deps: ClassVar[tuple[str, ...]] = ("call_graph", "call_graph_types", "import_graph")

    # what it reads: a new call graph or import graph with the same pairs (code moved, calls
    # to externals changed) leaves it up to date, and the steps after it too
    reads: ClassVar[tuple[str, ...]] = (KINDS_SQL, MODULES_SQL, CALL_PAIRS_SQL, IMPORT_PAIRS_SQL)

    def run(self, ctx: PipelineContext) -> StepResult:
        if inputs_unchanged(ctx, self.name, self.deps, content=self.reads):
            return StepResult.noop("up to date")
        functions = read_nodes(ctx.gateway, FUNCTIONS_SQL)
        modules = read_nodes(ctx.gateway, MODULES_SQL)
        by_function = compute_graph_metrics(functions, read_weighted_edges(ctx.gateway, CALL_PAIRS_SQL))
        by_module = compute_graph_metrics(modules, read_weighted_edges(ctx.gateway, IMPORT_PAIRS_SQL))
        function_rows = function_metric_rows(ctx.gateway, by_function)
        with step_writer(ctx, self.name, self.deps, content=self.reads) as w:
            w.replace_all(Table.GRAPH_METRICS_FUNCTIONS, function_rows)
            w.replace_all(Table.GRAPH_METRICS_MODULES, [metric_row("module", m) for m in by_module])
        return StepResult(w.rows_written, note=f"{len(functions)} call-graph nodes, {len(modules)} modules")


@dataclass(frozen=True)
class SubsystemsStep:
    """Communities of modules by import and call affinity (Louvain, fixed seed), named by package."""

    name: ClassVar[str] = "subsystems"
    deps: ClassVar[tuple[str, ...]] = ("import_graph", "call_graph", "call_graph_types")

    reads: ClassVar[tuple[str, ...]] = (MODULES_SQL, IMPORT_PAIRS_SQL, MODULE_CALL_PAIRS_SQL)

    def run(self, ctx: PipelineContext) -> StepResult:
        if inputs_unchanged(ctx, self.name, self.deps, content=self.reads):
            return StepResult.noop("up to date")
        modules = read_nodes(ctx.gateway, MODULES_SQL)
        imports, calls = (read_weighted_edges(ctx.gateway, sql) for sql in (IMPORT_PAIRS_SQL, MODULE_CALL_PAIRS_SQL))
        systems, members = detect_subsystems(modules, imports, calls)
        with step_writer(ctx, self.name, self.deps, content=self.reads) as w:
            w.replace_all(Table.SUBSYSTEMS, systems)
            w.replace_all(Table.SUBSYSTEM_MODULES, members)
        return StepResult(w.rows_written, note=f"{len(systems)} subsystems")


@dataclass(frozen=True)
class DocsViewsStep:
    """(Re)create the docs.* summary views, and the tables readers look things up in: the symbol index
    (docs.symbols), unresolved call sites per called name (docs.unresolved_names), module-to-module
    imports and calls (docs.module_edges)."""

    name: ClassVar[str] = "docs_views"
    deps: ClassVar[tuple[str, ...]] = (
        "function_metrics",
        "goids",
        "import_graph",
        "call_graph",
        "graph_metrics",
        "subsystems",
        "call_graph_types",
        "symbol_uses",
    )
    # the views' and lookup tables' SQL: a release that changes them remakes them in an existing database
    code_version: ClassVar[str] = settings_note(
        *view_statements(), SYMBOL_INDEX_SQL, UNRESOLVED_SITES_SQL, IMPORT_PAIRS_SQL, MODULE_CALL_PAIRS_SQL
    )

    def run(self, ctx: PipelineContext) -> StepResult:
        statements = view_statements()
        if inputs_unchanged(ctx, self.name, self.deps, check=docs_complete_sql(len(statements))):
            return StepResult.noop("up to date")
        symbols = build_symbol_index(ctx.gateway.query(SYMBOL_INDEX_SQL).to_pylist())
        unresolved = ctx.gateway.query(UNRESOLVED_SITES_SQL)
        names = build_unresolved_names(zip(unresolved["callee_text"].to_pylist(), unresolved["caller_goid"].to_pylist(), strict=True))
        module_edges = [(kind, src, dst, int(n)) for kind, sql in (("import", IMPORT_PAIRS_SQL), ("call", MODULE_CALL_PAIRS_SQL))
                        for src, dst, n in read_weighted_edges(ctx.gateway, sql)]  # fmt: skip
        with step_writer(ctx, self.name, self.deps) as w:
            w.replace_all(Table.SYMBOLS, symbols)
            w.replace_all(Table.UNRESOLVED_NAMES, names)
            w.replace_all(Table.MODULE_EDGES, module_edges)
            for sql in statements:
                w.execute(sql)
        return StepResult(w.rows_written, note=f"{len(statements)} views, {len(symbols)} symbols indexed")


@dataclass(frozen=True)
class GitHistoryStep:
    """Per-commit facts from git and the lineage of every definition through them (renames and
    moves followed), for the commits not walked yet; a rewritten history drops what is gone."""

    name: ClassVar[str] = "git_history"
    deps: ClassVar[tuple[str, ...]] = ()  # git, not the code analysis: it runs beside it
    # the local runner runs steps one by one: a cold walk (its own process) starts after the scan
    # and runs beside the code analysis; this step, later in the list, collects it
    start_ahead: ClassVar[StartAhead] = StartAhead(
        "repo_scan",
        lambda ctx: start_cold_walk_if_cold(
            ctx.tool_service,
            ctx.repo_root,
            ctx.config.snapshot.repo_name,
            ctx.gateway,
            history_settings(ctx.config.execution),
            full=ctx.config.full,
        ),
    )

    def run(self, ctx: PipelineContext) -> StepResult:
        ahead = ctx.run_ahead.take(self.name)
        try:
            return self._run(ctx, ahead if isinstance(ahead, ColdWalk) else None)
        finally:
            if ahead is not None:
                ahead.cancel()  # done with it (idempotent), or unused

    def _run(self, ctx: PipelineContext, started: ColdWalk | None) -> StepResult:
        settings = history_settings(ctx.config.execution)
        repo, gateway, project = ctx.repo_root, ctx.gateway, ctx.config.snapshot.repo_name
        plan, stored_head = history_plan(ctx.tool_service, repo, project, gateway, settings, full=ctx.config.full)
        if plan.mode == PlanMode.NOOP:
            return StepResult.noop(plan.reason)
        if plan.mode == PlanMode.NONE:
            with step_writer(ctx, self.name, self.deps, changed=stored_head is not None) as w:
                history_store.clear_history(w)
            return StepResult(note=plan.reason, skipped=True)
        with (
            walk_with_stored(ctx.tool_service, repo, project, gateway, plan, settings, started, lambda: ctx.executor) as facts,
            step_writer(ctx, self.name, self.deps) as w,
        ):
            rows = history_store.store_history(w, plan, facts)
        return StepResult(rows, note=f"{plan.mode}: {len(facts.commits)} commits walked, {len(plan.gone)} gone")


@dataclass(frozen=True)
class FunctionHistoryStep:
    """Per function at HEAD (GOID) and per file: commits, lines, authors, creation, last change,
    churn over 30/90/365 days and age."""

    name: ClassVar[str] = "function_history"
    deps: ClassVar[tuple[str, ...]] = ("git_history",)

    def run(self, ctx: PipelineContext) -> StepResult:
        queries = {Table.FUNCTION_HISTORY: function_history_sql(), Table.FILE_HISTORY: file_history_sql()}
        return _replace_with_queries(ctx, self, queries)


@dataclass(frozen=True)
class HotspotsStep:
    """Functions and files that change often and are complex, over the hotspot window."""

    name: ClassVar[str] = "hotspots"
    deps: ClassVar[tuple[str, ...]] = ("git_history", "function_metrics")

    def run(self, ctx: PipelineContext) -> StepResult:
        settings = HistoryAnalyticsSettings.from_config(ctx.config.execution.history)
        return _replace_with_queries(ctx, self, {Table.HOTSPOTS: hotspots_sql(settings)})


@dataclass(frozen=True)
class ChangeCouplingStep:
    """Files and functions that change together (Code Maat's logical coupling)."""

    name: ClassVar[str] = "change_coupling"
    deps: ClassVar[tuple[str, ...]] = ("git_history",)

    def run(self, ctx: PipelineContext) -> StepResult:
        settings = HistoryAnalyticsSettings.from_config(ctx.config.execution.history)
        return _replace_with_queries(ctx, self, {Table.CHANGE_COUPLING: change_coupling_sql(settings)})


@dataclass(frozen=True)
class OwnershipStep:
    """Who wrote each function and file: authors by lines added, the main author and their share."""

    name: ClassVar[str] = "ownership"
    deps: ClassVar[tuple[str, ...]] = ("git_history",)

    def run(self, ctx: PipelineContext) -> StepResult:
        return _replace_with_queries(ctx, self, {Table.OWNERSHIP: ownership_sql()})


@dataclass(frozen=True)
class HistoryTimeseriesStep:
    """Metrics of each function and module at sampled first-parent commits (a week apart over
    the last year by default), keyed by the GOID of today's function; samples stored are kept,
    and a blob is measured once."""

    name: ClassVar[str] = "history_timeseries"
    deps: ClassVar[tuple[str, ...]] = ("git_history", "goids")

    def run(self, ctx: PipelineContext) -> StepResult:
        history, scan = ctx.config.execution.history, ctx.config.execution.scan
        settings, root = TimeseriesSettings.from_config(history), ctx.tool_service.git_prefix(ctx.repo_root)
        plan = plan_timeseries(ctx.gateway, settings, scan, full=ctx.config.full, root=root)
        if plan.unchanged and inputs_unchanged(ctx, self.name, self.deps):
            return StepResult.noop("up to date")
        facts = TimeseriesFacts()
        if plan.samples:
            with open_blobs(ctx.tool_service, ctx.repo_root, timeout_s=history.timeout_s) as blobs:
                facts = collect_timeseries(ctx.gateway, blobs, plan, scan, ctx.executor)
        with step_writer(ctx, self.name, self.deps) as w:
            rows = store_timeseries(w, plan, facts)
        return StepResult(rows, note=facts.note)


def _replace_with_queries(ctx: PipelineContext, step: PipelineStep, queries: Mapping[Table, str]) -> StepResult:
    """The history analytics' one shape: replace each table by its query's rows, unless the
    inputs and the queries (so the settings) are those of the step's last run."""
    note = settings_note(*queries.values())
    if inputs_unchanged(ctx, step.name, step.deps, check=last_note_is(step.name, note)):
        return StepResult.noop("up to date")
    with step_writer(ctx, step.name, step.deps) as w:
        for table, sql in queries.items():
            w.execute(f"DELETE FROM {table}")
            history_store.insert_query(w, table, sql)
    return StepResult(w.rows_written, note=note)


PIPELINE_STEPS: tuple[PipelineStep, ...] = (
    RepoScanStep(),
    AstIngestStep(),
    CstIngestStep(),
    GoidsStep(),
    FunctionMetricsStep(),
    ImportGraphStep(),
    CallGraphStep(),
    ScipIngestStep(),  # after call_graph locally: pyrefly, started after repo_scan, ran beside it
    CallGraphTypesStep(),  # the call graph with the type checker's answers: after both
    SymbolUsesStep(),
    # needs nothing (Prefect and Dask run it beside the code analysis); locally a cold walk
    # started after repo_scan has run beside the steps above
    GitHistoryStep(),
    FunctionHistoryStep(),
    ChangeCouplingStep(),
    OwnershipStep(),
    HistoryTimeseriesStep(),  # needs the history and the GOIDs only
    HotspotsStep(),
    GraphMetricsStep(),
    SubsystemsStep(),
    DocsViewsStep(),
)


# ------------------------------------------------------------------------------------ the DAG


def validate_dag(steps: Sequence[PipelineStep]) -> dict[str, tuple[str, ...]]:
    """Check names are unique, deps known and the graph acyclic; return name -> deps."""
    deps: dict[str, tuple[str, ...]] = {}
    for step in steps:
        if step.name in deps:
            raise PipelineCycleError(f"step name {step.name!r} is declared twice in PIPELINE_STEPS")
        deps[step.name] = tuple(step.deps)
    for name, names in deps.items():
        for dep in names:
            if dep not in deps:
                raise UnknownStepError(f"step {name!r} depends on unknown step {dep!r}" + did_you_mean(dep, deps))
    try:
        tuple(TopologicalSorter(deps).static_order())
    except CycleError as exc:
        members = " -> ".join(exc.args[1])
        raise PipelineCycleError(f"the pipeline's steps form a cycle: {members}") from None
    return deps


PIPELINE_DEPS: Mapping[str, tuple[str, ...]] = validate_dag(PIPELINE_STEPS)
PIPELINE_STEPS_BY_NAME: Mapping[str, PipelineStep] = {step.name: step for step in PIPELINE_STEPS}


def topological_order(names: Iterable[str], deps: Mapping[str, tuple[str, ...]] = PIPELINE_DEPS) -> list[str]:
    """`names` in dependency order; ties broken by the order of `deps` (the registration order).

    Deterministic, and a local run follows the order the steps are declared in: the per-file
    steps before `call_graph`, whose solve stops the worker pool they share.
    """
    wanted = set(names)
    rank = {name: index for index, name in enumerate(deps)}
    sorter = TopologicalSorter({n: [d for d in deps[n] if d in wanted] for n in wanted})
    sorter.prepare()
    ready: list[tuple[int, str]] = []
    order: list[str] = []
    while True:
        for name in sorter.get_ready():
            heapq.heappush(ready, (rank.get(name, len(rank)), name))
        if not ready:
            return order
        _, name = heapq.heappop(ready)  # the first declared of the steps ready now
        order.append(name)
        sorter.done(name)


def file_work_ahead(names: Sequence[str]) -> dict[str, list[FileWork]]:
    """Per planned per-file step, the planned per-file steps that depend on it: while it parses a
    file, it extracts for them too (`FileWorkAhead`), so a run parses each file once."""
    work = {n: w for n in names if (w := getattr(PIPELINE_STEPS_BY_NAME[n], "file_work", None))}
    return {n: [w for other, w in work.items() if n in ancestors(other, PIPELINE_DEPS)] for n in work}


def step_retries(name: str) -> tuple[int, float]:
    """(retries, retry delay in seconds) the step's class declares, or the project defaults."""
    step = PIPELINE_STEPS_BY_NAME[name]
    return int(getattr(step, "retries", DEFAULT_RETRIES)), float(
        getattr(step, "retry_delay_seconds", DEFAULT_RETRY_DELAY_S)
    )


# ------------------------------------------------------------------------------------ running


def run_step(ctx: PipelineContext, name: str, attempt: int | None = None) -> StepResult:
    """Run one step with its ledger record (running -> succeeded / failed)."""
    step = PIPELINE_STEPS_BY_NAME.get(name)
    if step is None:
        raise UnknownStepError(f"unknown step {name!r}" + did_you_mean(name, PIPELINE_STEPS_BY_NAME))
    attempt = ledger.begin_step(ctx.gateway, ctx.run_id, name, attempt)
    if align_code_version(ctx, name, step_code_version(step, ctx)):
        logger.info("step %s: analysis code or file size limit changed since its last run; reprocessing everything", name)
    elif getattr(step, "file_work", None) is not None and (retried := retry_files_our_code_failed(ctx, name)):
        logger.info("step %s: extraction code changed; retrying %d files it failed on", name, retried)
    started, started_at = time.perf_counter(), datetime.now(UTC)  # the ledger times the step's own work
    try:
        result = step.run(ctx)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.error("step %s failed (attempt %d): %s", name, attempt, error)
        logger.debug("%s", traceback.format_exc())
        ran = (started_at, datetime.now(UTC))
        ledger.finish_step(ctx.gateway, ctx.run_id, name, attempt, RunStatus.FAILED, error=error[:4000], ran=ran)
        raise
    ran = (started_at, datetime.now(UTC))
    status = RunStatus.SKIPPED if result.skipped else RunStatus.SUCCEEDED
    ledger.finish_step(
        ctx.gateway,
        ctx.run_id,
        name,
        attempt,
        status,
        rows=result.rows_written,
        files=result.files_processed,
        deleted=result.files_deleted,
        note=result.note,
        ran=ran,
    )
    logger.info("step %s %s in %.2fs: %s", name, status, time.perf_counter() - started, result)
    return result


@dataclass
class PipelineRun:
    """What `run_pipeline` did."""

    run_id: str
    steps: list[str]
    results: dict[str, StepResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    not_run: list[str] = field(default_factory=list)
    published: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed


StepEvent = Callable[[str, str, "StepResult | None"], None]


def run_pipeline(
    ctx: PipelineContext,
    selected_steps: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    *,
    on_event: StepEvent | None = None,
    publish: bool = True,
) -> PipelineRun:
    """Run the selected steps (and their dependencies) in this process.

    Independent steps still run after a failure; dependants of a failed step are recorded as
    not run.  Every run then publishes what it has for readers: the steps that succeeded with
    this run's output, the others with their last good output, `meta.step_status` saying which.

    Raises:
        StepFailedError: naming the failed steps, the steps that never ran, and the resume command
            (after publishing; `published` says whether it did).
    """
    cold = ctx.config.full or not ctx.gateway.path.exists()  # per-file work is likely
    ctx.gateway.ensure_schema()
    names = plan_steps(ctx, selected_steps, exclude)
    planned_file_work = file_work_ahead(names)
    ctx.work_ahead.plan(planned_file_work)
    if planned_file_work and cold:
        ctx.warm_up_workers()
    begin_pipeline(ctx, names)
    run = PipelineRun(ctx.run_id, names)
    for name in names:
        blocked = [d for d in PIPELINE_DEPS[name] if d in run.failed or d in run.not_run]
        if blocked:
            run.not_run.append(name)
            continue
        if on_event:
            on_event(name, "start", None)
        try:
            run.results[name] = run_step(ctx, name)
        except Exception as exc:
            run.failed[name] = f"{type(exc).__name__}: {exc}"
            if on_event:
                on_event(name, "failed", None)
            continue
        if on_event:
            on_event(name, "done", run.results[name])
        start_ahead(ctx, name, names)
    ctx.run_ahead.cancel_all()  # what no step took (its step not run)
    ledger.record_not_run(ctx.gateway, ctx.run_id, run.not_run, "an upstream step failed")
    end_pipeline(ctx, run.failed, run.not_run)
    if publish:
        ctx.gateway.publish()
        run.published = True
    if not run.ok:
        message = failure_message(ctx, run.failed, run.not_run, published=run.published)
        raise StepFailedError(message, run.failed, run.not_run, published=run.published)
    return run


def start_ahead(ctx: PipelineContext, done: str, names: Sequence[str]) -> None:
    """Start the work that planned steps declare to start once `done` has run (`StartAhead`)."""
    for name in names:
        ahead = getattr(PIPELINE_STEPS_BY_NAME[name], "start_ahead", None)
        if isinstance(ahead, StartAhead) and ahead.after == done:
            ctx.run_ahead.start(name, ahead, ctx)


def begin_pipeline(ctx: PipelineContext, names: Sequence[str]) -> None:
    """Record the run's start (and apply --full by forgetting the steps' state: every step's
    where the repository's name changed, so no row keeps the old name's GOIDs unseen)."""
    snap = ctx.config.snapshot
    renamed = ledger.renamed_since(ctx.gateway, snap.repo_name, ctx.config.storage.db_path, full=ctx.config.full)
    if ctx.config.full:
        with ctx.gateway.writer(f"run {ctx.run_id} full") as w:
            for name in PIPELINE_STEPS_BY_NAME if renamed else names:
                ChangeTracker.forget_step(w, name)
                w.execute(f"DELETE FROM {Table.STEP_STATE} WHERE step = ?", [name])
    ledger.begin_run(ctx.gateway, ctx.run_id, ctx.config.mode, snap.repo_name, str(snap.repo_root), snap.commit, names)


def end_pipeline(ctx: PipelineContext, failed: Mapping[str, str], not_run: Sequence[str]) -> None:
    """Record the run's end, and each step's freshness in `meta.step_status`."""
    status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
    error = "; ".join(f"{k}: {v}" for k, v in failed.items())[:4000] or None
    ledger.finish_run(ctx.gateway, ctx.run_id, status, error)
    with ctx.gateway.writer(f"run {ctx.run_id} step status") as w:
        write_step_status(w, PIPELINE_STEPS, PIPELINE_DEPS)


def failure_message(
    ctx: PipelineContext, failed: Mapping[str, str], not_run: Sequence[str], *, published: bool = False
) -> str:
    """Which steps failed, which never ran, what was published, and the command that resumes."""
    lines = ["pipeline run " + ctx.run_id + " failed:"]
    lines += [f"  failed: {name}: {error}" for name, error in failed.items()]
    if not_run:
        lines.append("  not run (upstream failed): " + ", ".join(not_run))
    repo, db = ctx.config.snapshot.repo_root, ctx.config.storage.db_path
    if published:
        lines.append(f"  published {db} anyway: the steps above keep their last good output (meta.step_status)")
    lines.append(f"  resume with: codeintel export {repo} --db {db} --select state:modified")
    return "\n".join(lines)
