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
from graphlib import CycleError, TopologicalSorter
from typing import ClassVar, Protocol

import pyarrow as pa

from codeintel.analysis.call_edges import CALL_EDGE_ORDER, GoidIndex, GoidKey, solve_call_edges
from codeintel.analysis.callgraph.model import FACTS_VERSION, CallKind, facts_without_positions
from codeintel.analysis.goids import DefinitionRef, build_goids
from codeintel.analysis.graph_metrics import NodeGraphMetrics, compute_graph_metrics
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
from codeintel.analysis.imports import ImportSite, import_cycles_and_layers, resolve_imports
from codeintel.analysis.signatures import DEFINITION_SIGNATURES_SQL, definition_types
from codeintel.analysis.subsystems import detect_subsystems
from codeintel.analysis.symbol_index import build_symbol_index, build_unresolved_names
from codeintel.analysis.symbol_uses import symbol_use_edges_sql, symbol_uses_sql
from codeintel.analysis.typed_calls import (
    CLASS_BASES_SQL,
    CONSTRUCTORS_TABLE,
    COPY_CALL_EDGES_SQL,
    INITS_SQL,
    MERGE_COUNTS_SQL,
    ClassBase,
    constructor_targets,
    constructors_table,
    merged_call_edges_sql,
)
from codeintel.errors import PipelineCycleError, StepFailedError, ToolNotFoundError, UnknownStepError, did_you_mean
from codeintel.ingestion.change_tracker import ChangeTracker
from codeintel.ingestion.history import store as history_store
from codeintel.ingestion.history.apart import ColdWalk, start_cold_walk, walk_history
from codeintel.ingestion.history.blobs import open_blobs
from codeintel.ingestion.history.collect import (
    HistoryPlan,
    HistorySettings,
    PlanMode,
    plan_history,
    read_repo_history,
)
from codeintel.ingestion.history_timeseries import (
    TimeseriesFacts,
    collect_timeseries,
    plan_timeseries,
    store_timeseries,
)
from codeintel.ingestion.scan import PreviousState, diff_states, scan_repository
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
    step_writer,
    write_file_delta,
)
from codeintel.storage.catalog import Table, spec_of
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
        files = scan_repository(ctx.repo_root, ctx.config.execution.scan, ctx.tool_service, previous)
        changes = diff_states(previous, files)
        changed = any(kind != "unchanged" for _, kind, _, _ in changes)
        usable = [f for f in files if f.hash is not None]
        with step_writer(ctx, self.name, self.deps, changed=changed or ctx.config.full) as w:
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
    file_work: ClassVar[FileWork] = FileWork(name, "cst", (Table.COMMENTS, Table.DEF_HEADERS, Table.NAME_SITES))

    def run(self, ctx: PipelineContext) -> StepResult:
        delta = collect_file_delta(ctx, self.file_work)
        return write_file_delta(ctx, self.deps, delta)


@dataclass(frozen=True)
class GoidsStep:
    """Stable ids for every module, class, function and method of the files ast_ingest parsed."""

    name: ClassVar[str] = "goids"
    deps: ClassVar[tuple[str, ...]] = ("ast_ingest",)

    def run(self, ctx: PipelineContext) -> StepResult:
        stale = ctx.change_tracker.stale_files(self.name, source_step="ast_ingest")
        if not stale:
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

    def run(self, ctx: PipelineContext) -> StepResult:
        ahead = ctx.run_ahead.take(self.name)
        try:
            stale = ctx.change_tracker.stale_files(self.name)
            if not stale and inputs_unchanged(ctx, self.name, self.deps):
                return StepResult.noop("up to date")
            delta = scip.collect_scip(
                ctx.gateway, ctx.tool_service, ctx.repo_root, ctx.config.snapshot.repo_name, stale,
                full=ctx.config.full, ahead=ahead if isinstance(ahead, scip.Ahead) else None,
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
    return scip.start_ahead(ctx.gateway, ctx.tool_service, ctx.repo_root, project, stale, full=ctx.config.full)


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
        stored = current_rows(ctx, Table.IMPORT_SITES, delta).sort_by(
            [("src_path", "ascending"), ("line", "ascending")]
        )
        sites = [ImportSite(**row) for row in stored.to_pylist()]
        exports = {
            r["module"]: _tuple(r["all_names"]) for r in current_rows(ctx, Table.MODULE_EXPORTS, delta).to_pylist()
        }
        found = ctx.gateway.query(f"SELECT module, bool_or(is_package) AS pkg FROM {Table.MODULES} GROUP BY module")
        modules = dict(zip(found["module"].to_pylist(), found["pkg"].to_pylist(), strict=True))
        resolved = resolve_imports(sites, modules, exports)
        edges = to_arrow(Table.IMPORT_EDGES, resolved)
        layers = to_arrow(Table.IMPORT_LAYERS, import_cycles_and_layers(sorted(modules), resolved))
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
    code_version: ClassVar[str] = f"facts-{FACTS_VERSION}"
    file_work: ClassVar[FileWork] = FileWork(name, "call_facts", (Table.CALL_FACTS,))

    def run(self, ctx: PipelineContext) -> StepResult:
        started = time.perf_counter()
        # its solve is the longest serial stretch of the pipeline: where steps overlap (Prefect
        # on Dask), its facts go first so that the solve starts as early as it can
        delta = collect_file_delta(ctx, self.file_work, priority=1)
        ctx.release_workers()  # the solve below is one process: it needs the memory and the core
        if not delta.stale and inputs_unchanged(ctx, self.name, self.deps):
            return StepResult.noop("up to date")
        keys = [GoidKey(**k) for k in ctx.gateway.query(f"SELECT {_GOID_KEY_COLUMNS} FROM {Table.GOIDS}").to_pylist()]
        moves = _same_program(ctx, delta)
        if moves is not None:
            return self._relink(ctx, delta, keys, moves)
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

    def _relink(self, ctx: PipelineContext, delta: FileDelta, keys: list[GoidKey], moves: Moves) -> StepResult:
        """The changed files gave the facts stored for them, up to positions: the solve would give
        the stored edges, at the sites' new positions.

        Moved sites get their new line and column; GOIDs are looked up again (definitions may
        have moved), per distinct caller and callee.  When nothing changed, the step keeps its
        output version, so the graph steps downstream have nothing to redo.
        """
        index = GoidIndex(keys)
        callers = ctx.gateway.query(f"SELECT DISTINCT path, caller, caller_module, caller_goid FROM {Table.CALL_EDGES}")
        caller_fix = [
            {**r, "caller_goid": found}
            for r in callers.to_pylist()
            if (found := index.caller(r["path"], r["caller"], r["caller_module"])) != r["caller_goid"]
        ]
        callees = ctx.gateway.query(f"SELECT DISTINCT callee, callee_goid FROM {Table.CALL_EDGES} WHERE callee IS NOT NULL")
        callee_fix = [
            {**r, "callee_goid": found} for r in callees.to_pylist() if (found := index.callee(r["callee"])) != r["callee_goid"]
        ]
        changed = bool(caller_fix or callee_fix or moves)
        with step_writer(ctx, self.name, self.deps, changed=changed) as w:
            rows = delta.apply(w, ctx.run_id)
            if moves:
                moved = pa.table(list(zip(*moves, strict=True)), names=["path", "old_line", "old_col", "line", "col"])
                match = {"path": "path", "line": "old_line", "col": "old_col"}
                rows += w.update_from(Table.CALL_EDGES, moved, match, ("line", "col"))
            if caller_fix:
                match = {"path": "path", "caller": "caller", "caller_module": "caller_module"}
                rows += w.update_from(Table.CALL_EDGES, pa.Table.from_pylist(caller_fix, callers.schema), match, ("caller_goid",))
            if callee_fix:
                match = {"callee": "callee"}
                rows += w.update_from(Table.CALL_EDGES, pa.Table.from_pylist(callee_fix, callees.schema), match, ("callee_goid",))
        done = [f"{len(moves)} sites moved"] if moves else []
        done += ["GOIDs relinked"] if caller_fix or callee_fix else []
        note = ", ".join(done) or "edges unchanged"
        logger.info("call_graph: the facts of %d changed files are the same: no solve, %s", len(delta.outputs), note)
        return StepResult(rows, len(delta.outputs), 0, f"facts unchanged, {note}")


_GOID_KEY_COLUMNS = ", ".join(GoidKey.__dataclass_fields__)


Moves = list[tuple[str, int, int, int, int]]  # path, old line, old column, new line, new column


def _same_program(ctx: PipelineContext, delta: FileDelta) -> Moves | None:
    """Whether every changed file gave the call facts stored for it, up to positions; if so, the
    sites that moved (else None: the solver has a new program, or a file is gone).

    Edits of comments, docstrings, blank lines, or of code without calls, names or constants
    do: the program the solver sees is then the one it solved last time.  Positions must map one
    to one (two sites merging into one position would merge their edges): else None.
    """
    if ctx.config.full or not delta.stale or delta.stale.gone:
        return None
    spec = spec_of(Table.CALL_FACTS)
    found = ctx.gateway.query(
        f"SELECT {spec.path_column}, module, facts FROM {Table.CALL_FACTS} WHERE list_contains(?, {spec.path_column})",
        [sorted(o.path for o in delta.outputs)],
    )
    stored = {r[spec.path_column]: (r["module"], r["facts"]) for r in found.to_pylist()}
    moves: Moves = []
    for out in delta.outputs:
        rows = out.rows.get(Table.CALL_FACTS, [])
        before = stored.get(out.path)
        if not rows or before is None:
            if rows or before is not None:
                return None  # facts appeared or disappeared (a file that now parses, or no longer does)
            continue
        (_, module, text), = rows
        if module != before[0]:
            return None
        new_doc, new_at = facts_without_positions(text)
        old_doc, old_at = facts_without_positions(before[1])
        if new_doc != old_doc:
            return None
        mapping: dict[tuple[int, int], tuple[int, int]] = {}
        for old, new in zip(old_at, new_at, strict=True):
            if mapping.setdefault(old, new) != new:
                return None  # one old position is now two
        if len(set(mapping.values())) != len(mapping):
            return None  # two old positions are now one
        moves.extend((out.path, *old, *new) for old, new in sorted(mapping.items()) if old != new)
    return moves



SCIP_INDEXED_SQL = f"SELECT count(*) > 0 FROM {Table.SCIP_DOCUMENTS}"
NO_SCIP_NOTE = "no SCIP index (scip_ingest skipped or indexed nothing)"


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
        bases = [ClassBase(**r) for r in ctx.gateway.query(CLASS_BASES_SQL).to_pylist()] if indexed else []
        inits = {r["class_goid"]: r["init_goid"] for r in ctx.gateway.query(INITS_SQL).to_pylist()} if indexed else {}
        constructors = constructors_table(constructor_targets(bases, inits))
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
    code_version: ClassVar[str] = settings_note(symbol_uses_sql(), symbol_use_edges_sql(), DEFINITION_SIGNATURES_SQL)

    def run(self, ctx: PipelineContext) -> StepResult:
        if inputs_unchanged(ctx, self.name, self.deps):
            return StepResult.noop("up to date")
        indexed = _scip_indexed(ctx)
        signatures = ctx.gateway.query(DEFINITION_SIGNATURES_SQL)
        types = definition_types(zip(*(signatures.column(i).to_pylist() for i in range(3)), strict=True))
        with step_writer(ctx, self.name, self.deps) as w:
            for table, sql in ((Table.SYMBOL_USES, symbol_uses_sql()), (Table.SYMBOL_USE_EDGES, symbol_use_edges_sql())):
                w.execute(f"DELETE FROM {table}")
                history_store.insert_query(w, table, sql)
            w.replace_all(Table.DEFINITION_TYPES, types)
        if not indexed:
            return StepResult(w.rows_written, note=NO_SCIP_NOTE + ": no symbol uses", skipped=True)
        return StepResult(w.rows_written, note=f"{w.rows_written} rows")


# what the graph steps read: node lists and (source, target, weight) pairs; calls: the merged
# edges (the points-to analysis's and the type checker's, graph.call_edges_merged)
MODULES_SQL = f"SELECT DISTINCT module FROM {Table.MODULES} ORDER BY module"
CALL_PAIRS_SQL = f"""SELECT caller_goid, callee_goid, count(*)::DOUBLE FROM {Table.CALL_EDGES_MERGED}
    WHERE caller_goid IS NOT NULL AND callee_goid IS NOT NULL GROUP BY ALL ORDER BY ALL"""
IMPORT_PAIRS_SQL = f"""SELECT src_module, dst_module, count(*)::DOUBLE FROM {Table.IMPORT_EDGES}
    WHERE target_kind = 'internal' AND NOT is_type_checking AND src_module <> dst_module GROUP BY ALL ORDER BY ALL"""
MODULE_CALL_PAIRS_SQL = f"""SELECT e.caller_module, g.module, count(*)::DOUBLE FROM {Table.CALL_EDGES_MERGED} e
    JOIN {Table.GOIDS} g ON g.goid = e.callee_goid WHERE e.caller_module <> g.module GROUP BY ALL ORDER BY ALL"""


@dataclass(frozen=True)
class GraphMetricsStep:
    """Fan-in/out, PageRank, betweenness, closeness, cycles and layers of call and import graphs."""

    name: ClassVar[str] = "graph_metrics"
    deps: ClassVar[tuple[str, ...]] = ("call_graph", "call_graph_types", "import_graph")

    # what it reads: a new call graph or import graph with the same pairs (code moved, calls
    # to externals changed) leaves it up to date, and the steps after it too
    reads: ClassVar[tuple[str, ...]] = (
        f"SELECT goid, kind FROM {Table.GOIDS}", MODULES_SQL, CALL_PAIRS_SQL, IMPORT_PAIRS_SQL
    )

    def run(self, ctx: PipelineContext) -> StepResult:
        if inputs_unchanged(ctx, self.name, self.deps, content=self.reads):
            return StepResult.noop("up to date")
        functions = _column(ctx, f"SELECT goid FROM {Table.GOIDS} ORDER BY goid")
        modules = _column(ctx, MODULES_SQL)
        by_function = compute_graph_metrics(functions, _weighted_edges(ctx, CALL_PAIRS_SQL))
        by_module = compute_graph_metrics(modules, _weighted_edges(ctx, IMPORT_PAIRS_SQL))
        kinds = _kinds(ctx)
        with step_writer(ctx, self.name, self.deps, content=self.reads) as w:
            w.replace_all(
                Table.GRAPH_METRICS_FUNCTIONS,
                [_as_row("goid", m) for m in by_function if kinds[m.node_id] in ("function", "method")],
            )
            w.replace_all(Table.GRAPH_METRICS_MODULES, [_as_row("module", m) for m in by_module])
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
        modules = _column(ctx, MODULES_SQL)
        systems, members = detect_subsystems(
            modules, _weighted_edges(ctx, IMPORT_PAIRS_SQL), _weighted_edges(ctx, MODULE_CALL_PAIRS_SQL)
        )
        with step_writer(ctx, self.name, self.deps, content=self.reads) as w:
            w.replace_all(Table.SUBSYSTEMS, systems)
            w.replace_all(Table.SUBSYSTEM_MODULES, members)
        return StepResult(w.rows_written, note=f"{len(systems)} subsystems")


def _column(ctx: PipelineContext, sql: str) -> list[str]:
    return [str(v) for v in ctx.gateway.query(sql).column(0).to_pylist()]


def _weighted_edges(ctx: PipelineContext, sql: str) -> list[tuple[str, str, float]]:
    table = ctx.gateway.query(sql)
    return list(zip(*(table.column(i).to_pylist() for i in range(3)), strict=True))


def _kinds(ctx: PipelineContext) -> dict[str, str]:
    table = ctx.gateway.query(f"SELECT goid, kind FROM {Table.GOIDS}")
    return dict(zip(table["goid"].to_pylist(), table["kind"].to_pylist(), strict=True))


def _as_row(id_column: str, metrics: NodeGraphMetrics) -> dict[str, object]:
    row = {f: getattr(metrics, f) for f in NodeGraphMetrics.__dataclass_fields__ if f != "node_id"}
    row[id_column] = metrics.node_id
    return row


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


# what the symbol index is built from: every GOID with its call counts and metrics
SYMBOL_INDEX_SQL = f"""
    SELECT g.goid, g.urn, g.kind, g.module, g.qualname, g.name, g.path, g.start_line, g.end_line, g.parent_goid,
           i.callers, o.callees, u.unresolved_calls, m.cyclomatic, m.loc
    FROM {Table.GOIDS} g
    LEFT JOIN (SELECT callee_goid AS goid, count(DISTINCT caller_goid) AS callers FROM {Table.CALL_EDGES_MERGED}
               WHERE callee_goid IS NOT NULL GROUP BY 1) i USING (goid)
    LEFT JOIN (SELECT caller_goid AS goid, count(DISTINCT callee_goid) AS callees FROM {Table.CALL_EDGES_MERGED}
               WHERE callee_goid IS NOT NULL GROUP BY 1) o USING (goid)
    LEFT JOIN (SELECT caller_goid AS goid, count(*) AS unresolved_calls FROM {Table.CALL_EDGES_MERGED}
               WHERE kind = '{CallKind.UNRESOLVED}' GROUP BY 1) u USING (goid)
    LEFT JOIN {Table.FUNCTION_METRICS} m USING (goid)
"""
UNRESOLVED_SITES_SQL = f"SELECT callee_text, caller_goid FROM {Table.CALL_EDGES_MERGED} WHERE kind = '{CallKind.UNRESOLVED}'"


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

    def run(self, ctx: PipelineContext) -> StepResult:
        statements = view_statements()
        views_exist = (
            f"SELECT count(*) >= {len(statements)} AND (SELECT count(*) FROM {Table.SYMBOLS}) = "
            f"(SELECT count(*) FROM {Table.GOIDS}) AND ((SELECT count(*) FROM {Table.UNRESOLVED_NAMES}) > 0 OR NOT EXISTS "
            f"(SELECT 1 FROM {Table.CALL_EDGES_MERGED} WHERE kind = '{CallKind.UNRESOLVED}')) AND ((SELECT count(*) FROM {Table.MODULE_EDGES}) > 0 "
            f"OR NOT EXISTS (SELECT 1 FROM {Table.IMPORT_EDGES} WHERE target_kind = 'internal')) FROM duckdb_views() WHERE schema_name = 'docs'"
        )
        if inputs_unchanged(ctx, self.name, self.deps, check=views_exist):
            return StepResult.noop("up to date")
        symbols = build_symbol_index(ctx.gateway.query(SYMBOL_INDEX_SQL).to_pylist())
        unresolved = ctx.gateway.query(UNRESOLVED_SITES_SQL)
        names = build_unresolved_names(zip(unresolved["callee_text"].to_pylist(), unresolved["caller_goid"].to_pylist(), strict=True))
        module_edges = [(kind, src, dst, int(n)) for kind, sql in (("import", IMPORT_PAIRS_SQL), ("call", MODULE_CALL_PAIRS_SQL))
                        for src, dst, n in _weighted_edges(ctx, sql)]  # fmt: skip
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
    start_ahead: ClassVar[StartAhead] = StartAhead("repo_scan", lambda ctx: _start_cold_walk(ctx))

    def run(self, ctx: PipelineContext) -> StepResult:
        ahead = ctx.run_ahead.take(self.name)
        try:
            return self._run(ctx, ahead if isinstance(ahead, ColdWalk) else None)
        finally:
            if ahead is not None:
                ahead.cancel()  # done with it (idempotent), or unused

    def _run(self, ctx: PipelineContext, started: ColdWalk | None) -> StepResult:
        settings = _history_settings(ctx)
        repo, gateway = ctx.repo_root, ctx.gateway
        plan, stored_head = _history_plan(ctx, settings)
        if plan.mode == PlanMode.NOOP:
            return StepResult.noop(plan.reason)
        if plan.mode == PlanMode.NONE:
            with step_writer(ctx, self.name, self.deps, changed=stored_head is not None) as w:
                history_store.clear_history(w)
            return StepResult(note=plan.reason, skipped=True)
        with walk_history(
            ctx.tool_service, repo, ctx.config.snapshot.repo_name, plan, settings, started,
            generations=lambda shas: history_store.read_generations(gateway, shas),
            stored_versions=lambda keys: history_store.read_versions(gateway, keys),
            stored_head=lambda: history_store.read_head(gateway),
            stored_deletions=lambda shas: history_store.read_deletions(gateway, shas),
        ) as facts, step_writer(ctx, self.name, self.deps) as w:  # fmt: skip
            rows = history_store.store_history(w, plan, facts)
        return StepResult(rows, note=f"{plan.mode}: {len(facts.commits)} commits walked, {len(plan.gone)} gone")


def _history_plan(ctx: PipelineContext, settings: HistorySettings) -> tuple[HistoryPlan, str | None]:
    """What the history walk has to do now, and the HEAD it last walked to."""
    now = read_repo_history(ctx.tool_service, ctx.repo_root, settings)
    stored = history_store.read_stored_history(ctx.gateway)
    return plan_history(ctx.tool_service, ctx.repo_root, now, stored, full=ctx.config.full), stored.head


def _start_cold_walk(ctx: PipelineContext) -> ColdWalk | None:
    settings = _history_settings(ctx)
    plan, _ = _history_plan(ctx, settings)
    if plan.mode != PlanMode.COLD:
        return None  # new commits only: quick, done in the step's turn
    return start_cold_walk(ctx.tool_service, ctx.repo_root, ctx.config.snapshot.repo_name, plan, settings)


def _history_settings(ctx: PipelineContext) -> HistorySettings:
    h = ctx.config.execution.history
    return HistorySettings(h.huge_commit_files, h.bot_pattern, h.timeout_s)


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
        plan = plan_timeseries(ctx.gateway, TimeseriesSettings.from_config(history), scan, full=ctx.config.full)
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
    if align_code_version(ctx, name, str(getattr(step, "code_version", "1"))):
        logger.info("step %s: analysis code changed since its last run; reprocessing everything", name)
    elif getattr(step, "file_work", None) is not None and (retried := retry_files_our_code_failed(ctx, name)):
        logger.info("step %s: extraction code changed; retrying %d files it failed on", name, retried)
    started = time.perf_counter()
    try:
        result = step.run(ctx)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.error("step %s failed (attempt %d): %s", name, attempt, error)
        logger.debug("%s", traceback.format_exc())
        ledger.finish_step(ctx.gateway, ctx.run_id, name, attempt, RunStatus.FAILED, error=error[:4000])
        raise
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
    ctx.gateway.ensure_schema()
    names = plan_steps(ctx, selected_steps, exclude)
    ctx.work_ahead.plan(file_work_ahead(names))
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
    """Record the run's start (and apply --full by forgetting the steps' state)."""
    snap = ctx.config.snapshot
    if ctx.config.full:
        with ctx.gateway.writer(f"run {ctx.run_id} full") as w:
            for name in names:
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
