"""The table catalog: every stored table is declared here once.

A `TableSpec` names the table (schema-qualified), its columns and DuckDB types, its key (unique
per row; checked by tests, not by DuckDB constraints, which slow bulk replace-by-file) and the
step that owns (writes) it.  Storage creates missing tables from this catalog and never drops
one on open.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

SCHEMA_VERSION = 5
SCHEMAS = ("core", "graph", "analytics", "docs", "meta", "history")

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "VARCHAR[]": pa.list_(pa.string()),
    "BLOB": pa.binary(),
    # cst_ingest's def headers (codeintel/ingestion/cst/)
    'STRUCT(name VARCHAR, kind VARCHAR, annotation VARCHAR, "default" VARCHAR)[]': pa.list_(
        pa.struct([(n, pa.string()) for n in ("name", "kind", "annotation", "default")])
    ),
    "STRUCT(text VARCHAR, line INTEGER)[]": pa.list_(pa.struct([("text", pa.string()), ("line", pa.int32())])),
}


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One stored table: name, columns (name, DuckDB type), key and owning step."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    owner: str
    per_file: bool = False  # rows are replaced file by file
    path_column: str = "path"  # the column naming the file a row came from

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in self.columns])

    def ddl(self) -> str:
        cols = ", ".join(f'"{name}" {kind}' for name, kind in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse 'name TYPE, name TYPE' into column pairs (keeps declarations one line each)."""
    pairs = []
    for part in spec.split(","):
        name, kind = part.split(None, 1)
        pairs.append((name.strip(), kind.strip()))
    return tuple(pairs)


_GRAPH_METRICS = (
    "fan_in INTEGER, fan_out INTEGER, weighted_in_degree DOUBLE, weighted_out_degree DOUBLE, pagerank DOUBLE, "
    "betweenness DOUBLE, closeness DOUBLE, harmonic DOUBLE, in_cycle BOOLEAN, cycle_id VARCHAR, cycle_size INTEGER, "
    "layer INTEGER, centrality_sampled BOOLEAN"
)


class Table(StrEnum):
    """Every table's qualified name, spelled once."""

    SCHEMA_VERSION = "meta.schema_version"
    PIPELINE_RUNS = "meta.pipeline_runs"
    STEP_RUNS = "meta.step_runs"
    STEP_FILE_STATE = "meta.step_file_state"
    STEP_STATE = "meta.step_state"
    STEP_STATUS = "meta.step_status"
    FILES = "core.files"
    MODULES = "core.modules"
    FILE_STATE = "core.file_state"
    CHANGE_STATE = "core.change_state"
    AST_NODES = "core.ast_nodes"
    PARSE_ERRORS = "core.parse_errors"
    GOIDS = "core.goids"
    FUNCTION_METRICS = "analytics.function_metrics"
    IMPORT_SITES = "graph.import_sites"
    MODULE_EXPORTS = "graph.module_exports"
    IMPORT_EDGES = "graph.import_edges"
    IMPORT_LAYERS = "graph.import_layers"
    CALL_FACTS = "graph.call_facts"
    CALL_EDGES = "graph.call_edges"
    GRAPH_METRICS_FUNCTIONS = "analytics.graph_metrics_functions"
    GRAPH_METRICS_MODULES = "analytics.graph_metrics_modules"
    SUBSYSTEMS = "analytics.subsystems"
    SUBSYSTEM_MODULES = "analytics.subsystem_modules"
    HISTORY_STATE = "meta.history_state"
    COMMITS = "history.commits"
    FILE_CHANGES = "history.file_changes"
    FUNCTION_CHANGES = "history.function_changes"
    VERSIONS = "history.versions"
    HEAD_FILES = "history.head_files"
    HEAD_DEFS = "history.head_defs"
    LINEAGES = "history.lineages"
    MERGE_LINEAGES = "history.merge_lineages"
    DISCARDED_CHANGES = "history.discarded_changes"
    FUNCTION_HISTORY = "analytics.function_history"
    FILE_HISTORY = "analytics.file_history"
    HOTSPOTS = "analytics.hotspots"
    CHANGE_COUPLING = "analytics.change_coupling"
    OWNERSHIP = "analytics.ownership"
    TIMESERIES_SAMPLES = "history.timeseries_samples"
    TIMESERIES_FILES = "history.timeseries_files"
    TIMESERIES_BLOBS = "history.timeseries_blobs"
    HISTORY_TIMESERIES = "analytics.history_timeseries"
    SYMBOLS = "docs.symbols"
    UNRESOLVED_NAMES = "docs.unresolved_names"
    MODULE_EDGES = "docs.module_edges"
    SCIP_DOCUMENTS = "core.scip_documents"
    SCIP_SYMBOLS = "core.scip_symbols"
    SCIP_OCCURRENCES = "core.scip_occurrences"
    GOID_CROSSWALK = "core.goid_crosswalk"
    TYPE_DIAGNOSTICS = "analytics.type_diagnostics"
    COMMENTS = "core.comments"
    DEF_HEADERS = "core.def_headers"
    NAME_SITES = "core.name_sites"
    SYMBOL_USES = "graph.symbol_uses"
    SYMBOL_USE_EDGES = "graph.symbol_use_edges"
    CALL_EDGES_MERGED = "graph.call_edges_merged"
    DEFINITION_TYPES = "analytics.definition_types"


_SPECS = (
    TableSpec(Table.SCHEMA_VERSION, _cols("version INTEGER, created_at TIMESTAMPTZ"), ("version",), "storage"),
    TableSpec(
        Table.PIPELINE_RUNS,
        _cols(
            "run_id VARCHAR, mode VARCHAR, repo VARCHAR, repo_root VARCHAR, commit VARCHAR, "
            "selected VARCHAR[], host VARCHAR, pid INTEGER, started_at TIMESTAMPTZ, "
            "finished_at TIMESTAMPTZ, status VARCHAR, error VARCHAR"
        ),
        ("run_id",),
        "pipeline",
    ),
    TableSpec(
        Table.STEP_RUNS,
        _cols(
            "run_id VARCHAR, step VARCHAR, attempt INTEGER, status VARCHAR, host VARCHAR, "
            "pid INTEGER, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, rows_written BIGINT, "
            "files_processed BIGINT, files_deleted BIGINT, note VARCHAR, error VARCHAR"
        ),
        ("run_id", "step", "attempt"),
        "pipeline",
    ),
    TableSpec(
        Table.STEP_FILE_STATE,
        _cols("step VARCHAR, path VARCHAR, hash VARCHAR, run_id VARCHAR"),
        ("step", "path"),
        "pipeline",
    ),
    TableSpec(
        Table.STEP_STATE,
        _cols(
            "step VARCHAR, output_version VARCHAR, input_fingerprint VARCHAR, run_id VARCHAR, code_version VARCHAR, "
            "code_digest VARCHAR"
        ),
        ("step",),
        "pipeline",
    ),
    TableSpec(
        Table.STEP_STATUS,
        _cols(
            "position INTEGER, step VARCHAR, last_status VARCHAR, last_run_id VARCHAR, last_success_run_id VARCHAR, "
            "last_success_commit VARCHAR, last_success_at TIMESTAMPTZ, stale BOOLEAN, stale_reason VARCHAR, "
            "last_error VARCHAR"
        ),
        ("step",),
        "pipeline",
    ),
    TableSpec(
        Table.FILES,
        _cols(
            "path VARCHAR, module VARCHAR, is_package BOOLEAN, language VARCHAR, size BIGINT, "
            "hash VARCHAR, is_tracked BOOLEAN, skip_reason VARCHAR"
        ),
        ("path",),
        "repo_scan",
    ),
    TableSpec(
        Table.MODULES,
        _cols("module VARCHAR, path VARCHAR, is_package BOOLEAN, package VARCHAR, source_root VARCHAR"),
        ("path",),
        "repo_scan",
    ),
    TableSpec(
        Table.FILE_STATE,
        _cols("path VARCHAR, hash VARCHAR, size BIGINT, mtime_ns BIGINT, language VARCHAR"),
        ("path",),
        "repo_scan",
    ),
    TableSpec(
        Table.CHANGE_STATE,
        _cols("run_id VARCHAR, path VARCHAR, change_kind VARCHAR, old_hash VARCHAR, new_hash VARCHAR"),
        ("run_id", "path"),
        "repo_scan",
    ),
    TableSpec(
        Table.AST_NODES,
        _cols(
            "path VARCHAR, module VARCHAR, qualname VARCHAR, ordinal INTEGER, kind VARCHAR, "
            "name VARCHAR, parent_qualname VARCHAR, start_line INTEGER, end_line INTEGER, "
            "start_col INTEGER, end_col INTEGER, def_line INTEGER, decorators VARCHAR[], "
            "docstring VARCHAR, is_async BOOLEAN, type_checking BOOLEAN"
        ),
        ("path", "qualname", "ordinal"),
        "ast_ingest",
        per_file=True,
    ),
    TableSpec(
        Table.PARSE_ERRORS,
        _cols(
            "path VARCHAR, step VARCHAR, kind VARCHAR, line INTEGER, col INTEGER, message VARCHAR, "
            "error_type VARCHAR, needs_python VARCHAR"
        ),
        ("path", "step"),
        "ast_ingest",
        per_file=True,
    ),
    TableSpec(
        Table.GOIDS,
        _cols(
            "goid VARCHAR, urn VARCHAR, repo VARCHAR, path VARCHAR, module VARCHAR, kind VARCHAR, "
            "qualname VARCHAR, ordinal INTEGER, name VARCHAR, parent_goid VARCHAR, "
            "start_line INTEGER, end_line INTEGER"
        ),
        ("goid",),
        "goids",
        per_file=True,
    ),
    TableSpec(
        Table.FUNCTION_METRICS,
        _cols(
            "goid VARCHAR, path VARCHAR, module VARCHAR, qualname VARCHAR, kind VARCHAR, "
            "start_line INTEGER, end_line INTEGER, loc INTEGER, lloc INTEGER, sloc INTEGER, "
            "comment_lines INTEGER, blank_lines INTEGER, docstring_lines INTEGER, cyclomatic INTEGER, "
            "max_nesting_depth INTEGER, positional_only_params INTEGER, "
            "positional_or_keyword_params INTEGER, has_vararg BOOLEAN, keyword_only_params INTEGER, "
            "has_kwarg BOOLEAN, param_count INTEGER, annotated_params INTEGER, "
            "has_return_annotation BOOLEAN, typedness VARCHAR, has_docstring BOOLEAN, "
            "return_count INTEGER, yield_count INTEGER, raise_count INTEGER, await_count INTEGER, "
            "is_async BOOLEAN, is_generator BOOLEAN"
        ),
        ("goid",),
        "function_metrics",
        per_file=True,
    ),
    TableSpec(
        Table.IMPORT_SITES,
        _cols(
            "src_module VARCHAR, src_path VARCHAR, src_is_package BOOLEAN, import_kind VARCHAR, level INTEGER, "
            "module VARCHAR, name VARCHAR, alias VARCHAR, bound_name VARCHAR, line INTEGER, col INTEGER, "
            "is_type_checking BOOLEAN, in_function BOOLEAN"
        ),
        ("src_path", "line", "col"),
        "import_graph",
        per_file=True,
        path_column="src_path",
    ),
    TableSpec(
        Table.MODULE_EXPORTS,
        _cols("path VARCHAR, module VARCHAR, all_names VARCHAR[]"),
        ("path",),
        "import_graph",
        per_file=True,
    ),
    TableSpec(
        Table.IMPORT_EDGES,
        _cols(
            "src_module VARCHAR, src_path VARCHAR, dst_module VARCHAR, imported_module VARCHAR, "
            "imported_name VARCHAR, alias VARCHAR, target_kind VARCHAR, import_kind VARCHAR, level INTEGER, "
            "line INTEGER, col INTEGER, name_is_module BOOLEAN, is_type_checking BOOLEAN, in_function BOOLEAN, "
            "via_module VARCHAR"
        ),
        ("src_path", "line", "col"),
        "import_graph",
    ),
    TableSpec(
        Table.IMPORT_LAYERS,
        _cols("module VARCHAR, layer INTEGER, in_cycle BOOLEAN, cycle_id VARCHAR, cycle_size INTEGER"),
        ("module",),
        "import_graph",
    ),
    TableSpec(
        Table.CALL_FACTS,
        _cols("path VARCHAR, module VARCHAR, facts VARCHAR"),
        ("path",),
        "call_graph",
        per_file=True,
    ),
    TableSpec(
        Table.CALL_EDGES,
        _cols(
            "caller_goid VARCHAR, callee_goid VARCHAR, caller VARCHAR, caller_module VARCHAR, path VARCHAR, "
            "line INTEGER, col INTEGER, callee VARCHAR, callee_text VARCHAR, kind VARCHAR, resolution VARCHAR, "
            "confidence DOUBLE"
        ),
        ("path", "line", "col", "caller", "callee"),
        "call_graph",
    ),
    TableSpec(
        Table.GRAPH_METRICS_FUNCTIONS,
        _cols("goid VARCHAR, " + _GRAPH_METRICS),
        ("goid",),
        "graph_metrics",
    ),
    TableSpec(
        Table.GRAPH_METRICS_MODULES,
        _cols("module VARCHAR, " + _GRAPH_METRICS),
        ("module",),
        "graph_metrics",
    ),
    TableSpec(
        Table.SUBSYSTEMS,
        _cols(
            "subsystem_id VARCHAR, name VARCHAR, dominant_package VARCHAR, module_count INTEGER, "
            "internal_edge_count INTEGER, internal_weight DOUBLE, edges_in INTEGER, edges_out INTEGER, "
            "weight_in DOUBLE, weight_out DOUBLE"
        ),
        ("subsystem_id",),
        "subsystems",
    ),
    TableSpec(
        Table.SUBSYSTEM_MODULES,
        _cols("subsystem_id VARCHAR, module VARCHAR, is_isolated BOOLEAN"),
        ("module",),
        "subsystems",
    ),
    TableSpec(  # the symbol index the MCP server looks names up in (codeintel/analysis/symbol_index.py)
        Table.SYMBOLS,
        _cols(
            "goid VARCHAR, urn VARCHAR, kind VARCHAR, module VARCHAR, qualname VARCHAR, name VARCHAR, "
            "full_name VARCHAR, path VARCHAR, start_line INTEGER, end_line INTEGER, parent_goid VARCHAR, "
            "is_test BOOLEAN, callers INTEGER, callees INTEGER, unresolved_calls INTEGER, cyclomatic INTEGER, "
            "loc INTEGER, name_lower VARCHAR, qualname_lower VARCHAR, full_name_lower VARCHAR"
        ),
        ("goid",),
        "docs_views",
    ),
    TableSpec(  # per name, the call sites the call graph could not resolve that call it
        Table.UNRESOLVED_NAMES,
        _cols("called_name VARCHAR, sites INTEGER, callers INTEGER"),
        ("called_name",),
        "docs_views",
    ),
    TableSpec(  # module to module: internal imports (outside TYPE_CHECKING) and resolved calls, counted
        Table.MODULE_EDGES,
        _cols("kind VARCHAR, src_module VARCHAR, dst_module VARCHAR, edges INTEGER"),
        ("kind", "src_module", "dst_module"),
        "docs_views",
    ),
)

# git history (codeintel/ingestion/history/, codeintel/analysis/history.py)
_HISTORY_SPECS = (
    TableSpec(  # what the last walk stood on: an incremental walk starts from it
        Table.HISTORY_STATE,
        _cols("head VARCHAR, shallow VARCHAR[], digest VARCHAR, mode VARCHAR, commits BIGINT, walked_at TIMESTAMPTZ"),
        ("head",),
        "git_history",
    ),
    TableSpec(
        Table.COMMITS,
        _cols(
            "sha VARCHAR, parents VARCHAR[], author_name VARCHAR, author_email VARCHAR, author_time TIMESTAMPTZ, "
            "committer_name VARCHAR, committer_email VARCHAR, committer_time TIMESTAMPTZ, subject VARCHAR, "
            "generation INTEGER, is_merge BOOLEAN, py_files INTEGER, lines_added INTEGER, lines_deleted INTEGER, "
            "is_huge BOOLEAN, is_ignored BOOLEAN, is_bot BOOLEAN, is_shallow_boundary BOOLEAN"
        ),
        ("sha",),
        "git_history",
    ),
    TableSpec(
        Table.FILE_CHANGES,
        _cols(
            "sha VARCHAR, path VARCHAR, old_path VARCHAR, status VARCHAR, lines_added INTEGER, lines_deleted INTEGER, "
            "file_id VARCHAR, old_blob VARCHAR, new_blob VARCHAR"
        ),
        ("sha", "path"),
        "git_history",
        path_column="",  # facts of the past: they outlive the files
    ),
    TableSpec(
        Table.FUNCTION_CHANGES,
        _cols(
            "sha VARCHAR, lineage_id VARCHAR, path VARCHAR, qualname VARCHAR, kind VARCHAR, ordinal INTEGER, "
            "event VARCHAR, lines_added INTEGER, lines_deleted INTEGER, old_path VARCHAR, old_qualname VARCHAR, "
            "file_id VARCHAR"
        ),
        ("sha", "lineage_id"),
        "git_history",
        path_column="",  # facts of the past: they outlive the files
    ),
    TableSpec(  # per (path, blob): the lineage of each definition, for the next incremental walk
        Table.VERSIONS,
        _cols(
            "path VARCHAR, blob VARCHAR, file_id VARCHAR, n_lines INTEGER, lineages BLOB, name_keys BLOB, "
            "created_by VARCHAR"
        ),
        ("path", "blob"),
        "git_history",
        path_column="",  # facts of the past: they outlive the files
    ),
    TableSpec(  # per merge, the definitions it has otherwise than its first parent, and the
        # parent it has each as (position in `parents`; NULL: none), `ingestion/history/merges.py`
        Table.MERGE_LINEAGES,
        _cols("sha VARCHAR, lineage_id VARCHAR, parent INTEGER"),
        ("sha", "lineage_id"),
        "git_history",
        path_column="",  # facts of the past: they outlive the files
    ),
    TableSpec(  # changes no merge took towards HEAD: facts, left out of the per-function analytics
        Table.DISCARDED_CHANGES,
        _cols("sha VARCHAR, lineage_id VARCHAR"),
        ("sha", "lineage_id"),
        "git_history",
        path_column="",  # facts of the past: they outlive the files
    ),
    TableSpec(
        Table.HEAD_FILES,  # with the outline of each (`outline.pack_outline`): the next walk parses none again
        _cols(
            "path VARCHAR, blob VARCHAR, file_id VARCHAR, n_lines INTEGER, size BIGINT, outline BLOB, "
            "outline_names BLOB"
        ),
        ("path",),
        "git_history",
    ),
    TableSpec(
        Table.HEAD_DEFS,
        _cols(
            "path VARCHAR, blob VARCHAR, lineage_id VARCHAR, goid VARCHAR, qualname VARCHAR, kind VARCHAR, "
            "ordinal INTEGER, file_id VARCHAR"
        ),
        ("goid",),
        "git_history",
    ),
    TableSpec(
        Table.LINEAGES,
        _cols(
            "lineage_id VARCHAR, goid VARCHAR, path VARCHAR, qualname VARCHAR, kind VARCHAR, created_sha VARCHAR, "
            "created_at TIMESTAMPTZ, first_path VARCHAR, first_qualname VARCHAR, last_sha VARCHAR, "
            "last_at TIMESTAMPTZ, deleted_sha VARCHAR, changes INTEGER, renames INTEGER, moves INTEGER, "
            "is_truncated BOOLEAN"
        ),
        ("lineage_id",),
        "git_history",
        path_column="",  # facts of the past: they outlive the files
    ),
    TableSpec(
        Table.FUNCTION_HISTORY,
        _cols(
            "goid VARCHAR, lineage_id VARCHAR, path VARCHAR, qualname VARCHAR, kind VARCHAR, commits INTEGER, "
            "lines_added INTEGER, lines_deleted INTEGER, authors INTEGER, created_sha VARCHAR, "
            "created_at TIMESTAMPTZ, last_sha VARCHAR, last_at TIMESTAMPTZ, churn_30d INTEGER, churn_90d INTEGER, "
            "churn_365d INTEGER, commits_365d INTEGER, age_days DOUBLE, is_truncated BOOLEAN"
        ),
        ("goid",),
        "function_history",
    ),
    TableSpec(
        Table.FILE_HISTORY,
        _cols(
            "path VARCHAR, file_id VARCHAR, commits INTEGER, lines_added INTEGER, lines_deleted INTEGER, "
            "authors INTEGER, created_sha VARCHAR, created_at TIMESTAMPTZ, last_sha VARCHAR, last_at TIMESTAMPTZ, "
            "churn_30d INTEGER, churn_90d INTEGER, churn_365d INTEGER, commits_365d INTEGER, age_days DOUBLE, "
            "is_truncated BOOLEAN"
        ),
        ("path",),
        "function_history",
    ),
    TableSpec(
        Table.HOTSPOTS,
        _cols(
            "scope VARCHAR, entity VARCHAR, path VARCHAR, qualname VARCHAR, revisions INTEGER, churn INTEGER, "
            "complexity INTEGER, loc INTEGER, score DOUBLE, rank INTEGER, window_days INTEGER"
        ),
        ("scope", "entity"),
        "hotspots",
    ),
    TableSpec(
        Table.CHANGE_COUPLING,
        _cols(
            "scope VARCHAR, entity_a VARCHAR, entity_b VARCHAR, name_a VARCHAR, name_b VARCHAR, revisions_a INTEGER, "
            "revisions_b INTEGER, shared_revisions INTEGER, degree DOUBLE"
        ),
        ("scope", "entity_a", "entity_b"),
        "change_coupling",
    ),
    TableSpec(
        Table.OWNERSHIP,
        _cols(
            "scope VARCHAR, entity VARCHAR, path VARCHAR, qualname VARCHAR, author_count INTEGER, main_author VARCHAR, "
            "main_author_email VARCHAR, main_author_lines INTEGER, main_author_share DOUBLE, total_lines INTEGER, "
            "authors VARCHAR[]"
        ),
        ("scope", "entity"),
        "ownership",
    ),
)

# metrics over time (history_timeseries: codeintel/ingestion/history_timeseries.py,
# codeintel/analysis/history_timeseries.py)
_TIMESERIES_SPECS = (
    TableSpec(  # a sampled commit of the first-parent chain; listing: digest of the scan profile it was listed by
        Table.TIMESERIES_SAMPLES,
        _cols("sample_time TIMESTAMPTZ, sha VARCHAR, committed_at TIMESTAMPTZ, files INTEGER, listing VARCHAR"),
        ("sample_time",),
        "history_timeseries",
    ),
    TableSpec(
        Table.TIMESERIES_FILES,
        _cols("sample_time TIMESTAMPTZ, path VARCHAR, blob VARCHAR, module VARCHAR"),
        ("sample_time", "path"),
        "history_timeseries",
        path_column="",  # files of the past
    ),
    TableSpec(  # per blob: a module row (kind 'module') and its functions' metrics; code: what measured them
        Table.TIMESERIES_BLOBS,
        _cols(
            "blob VARCHAR, kind VARCHAR, qualname VARCHAR, ordinal INTEGER, name_key BIGINT, start_line INTEGER, "
            "end_line INTEGER, loc INTEGER, sloc INTEGER, cyclomatic INTEGER, max_nesting_depth INTEGER, "
            "param_count INTEGER, parser VARCHAR, problem VARCHAR, code VARCHAR"
        ),
        ("blob", "kind", "qualname", "ordinal"),
        "history_timeseries",
    ),
    TableSpec(  # per sample: a row per function and method (scope 'function') and per module (scope 'module')
        Table.HISTORY_TIMESERIES,
        _cols(
            "sample_time TIMESTAMPTZ, sha VARCHAR, committed_at TIMESTAMPTZ, scope VARCHAR, goid VARCHAR, "
            "lineage_id VARCHAR, file_id VARCHAR, path VARCHAR, module VARCHAR, qualname VARCHAR, kind VARCHAR, "
            "ordinal INTEGER, parser VARCHAR, problem VARCHAR, changed BOOLEAN, start_line INTEGER, loc INTEGER, "
            "sloc INTEGER, cyclomatic INTEGER, max_nesting_depth INTEGER, param_count INTEGER, functions INTEGER, "
            "cyclomatic_total INTEGER, cyclomatic_mean DOUBLE, cyclomatic_max INTEGER"
        ),
        ("sample_time", "scope", "path", "qualname", "ordinal"),
        "history_timeseries",
        path_column="",  # paths of the past
    ),
)

# the type checker's index (scip_ingest: codeintel/ingestion/scip/, codeintel/analysis/crosswalk.py).
# Positions: line 1-based, col 0-based in UTF-8 bytes, end exclusive (as Python's ast).
_SCIP_SPECS = (
    TableSpec(  # one row per file pyrefly indexed; interface_hash: its public symbols' signatures
        Table.SCIP_DOCUMENTS,
        _cols(
            "path VARCHAR, module VARCHAR, language VARCHAR, position_encoding VARCHAR, occurrences INTEGER, "
            "definitions INTEGER, symbols INTEGER, diagnostics INTEGER, hash VARCHAR, interface_hash VARCHAR"
        ),
        ("path",),
        "scip_ingest",
        per_file=True,
    ),
    TableSpec(  # repository symbols (def_path set, one row per defining file) and the externals they use
        Table.SCIP_SYMBOLS,
        _cols(
            "symbol VARCHAR, kind VARCHAR, display_name VARCHAR, qualified_name VARCHAR, module VARCHAR, "
            "package VARCHAR, version VARCHAR, is_external BOOLEAN, def_path VARCHAR, def_line INTEGER, "
            "def_col INTEGER, signature VARCHAR, documentation VARCHAR, relationships VARCHAR[], goid VARCHAR"
        ),
        ("symbol", "def_path"),
        "scip_ingest",
        per_file=True,
        path_column="def_path",  # externals have none: kept while an occurrence refers to them
    ),
    TableSpec(  # every occurrence of a symbol; roles: SCIP SymbolRole bits (1 definition, 2 import, 4 write, 8 read)
        Table.SCIP_OCCURRENCES,
        _cols(
            "path VARCHAR, symbol VARCHAR, line INTEGER, col INTEGER, end_line INTEGER, end_col INTEGER, "
            "is_definition BOOLEAN, roles INTEGER, enclosing_goid VARCHAR"
        ),
        ("path", "line", "col", "symbol"),
        "scip_ingest",
        per_file=True,
    ),
    TableSpec(  # GOID -> SCIP symbol, joined on path + kind + qualified name; match says how
        Table.GOID_CROSSWALK,
        _cols("goid VARCHAR, symbol VARCHAR, path VARCHAR, kind VARCHAR, qualname VARCHAR, match VARCHAR"),
        ("goid",),
        "scip_ingest",
    ),
    TableSpec(  # pyrefly's type errors from the indexing run
        Table.TYPE_DIAGNOSTICS,
        _cols(
            "path VARCHAR, line INTEGER, col INTEGER, end_line INTEGER, end_col INTEGER, code VARCHAR, "
            "severity VARCHAR, message VARCHAR, enclosing_goid VARCHAR"
        ),
        ("path", "line", "col", "code", "message"),
        "scip_ingest",
        per_file=True,
    ),
)

# the concrete syntax tree (cst_ingest, tree-sitter: codeintel/ingestion/cst/). Positions as above;
# enclosing_goid: the innermost definition holding the line (codeintel/analysis/enclosing.py)
_CST_SPECS = (
    TableSpec(  # every comment; one row per pragma it holds (pragma NULL: none), its task tag on each row
        Table.COMMENTS,
        _cols(
            "path VARCHAR, line INTEGER, col INTEGER, end_col INTEGER, text VARCHAR, placement VARCHAR, "
            "enclosing_goid VARCHAR, pragma VARCHAR, codes VARCHAR[], tag VARCHAR, tag_text VARCHAR"
        ),
        ("path", "line", "col", "pragma"),
        "cst_ingest",
        per_file=True,
    ),
    TableSpec(  # the header of every def and class, by GOID (the same as core.goids')
        Table.DEF_HEADERS,
        (
            *_cols(
                "goid VARCHAR, path VARCHAR, kind VARCHAR, qualname VARCHAR, ordinal INTEGER, name VARCHAR, "
                "line INTEGER, col INTEGER, end_line INTEGER, end_col INTEGER, header VARCHAR, signature VARCHAR"
            ),
            ("params", 'STRUCT(name VARCHAR, kind VARCHAR, annotation VARCHAR, "default" VARCHAR)[]'),
            ("returns", "VARCHAR"),
            ("decorators", "STRUCT(text VARCHAR, line INTEGER)[]"),
            ("type_params", "VARCHAR"),
            ("is_async", "BOOLEAN"),
        ),
        ("goid",),
        "cst_ingest",
        per_file=True,
    ),
    TableSpec(  # every identifier with its syntactic role; call_line/call_col: the call it names
        Table.NAME_SITES,
        _cols(
            "path VARCHAR, line INTEGER, col INTEGER, end_line INTEGER, end_col INTEGER, name VARCHAR, role VARCHAR, "
            "enclosing_goid VARCHAR, call_line INTEGER, call_col INTEGER, qualifier VARCHAR"
        ),
        ("path", "line", "col"),
        "cst_ingest",
        per_file=True,
    ),
)

# uses of repository symbols, and the call graph with the type checker's answers
# (codeintel/analysis/symbol_uses.py, codeintel/analysis/typed_calls.py)
_USE_SPECS = (
    TableSpec(  # one row per use of a repository symbol (SCIP occurrence + the name site's role there)
        Table.SYMBOL_USES,
        _cols(
            "path VARCHAR, line INTEGER, col INTEGER, end_line INTEGER, end_col INTEGER, name VARCHAR, "
            "use_kind VARCHAR, symbol VARCHAR, def_goid VARCHAR, def_kind VARCHAR, user_goid VARCHAR, qualifier VARCHAR"
        ),
        ("path", "line", "col", "symbol"),
        "symbol_uses",
    ),
    TableSpec(  # graph.symbol_uses per (user, definition) pair: counts by use kind
        Table.SYMBOL_USE_EDGES,
        _cols(
            "user_goid VARCHAR, def_goid VARCHAR, uses INTEGER, kinds VARCHAR[], calls INTEGER, reads INTEGER, "
            "writes INTEGER, imports INTEGER, annotations INTEGER, subclasses INTEGER, decorators INTEGER, "
            "member_uses INTEGER, symbols INTEGER"
        ),
        ("user_goid", "def_goid"),
        "symbol_uses",
    ),
    TableSpec(  # per function and method: the type checker's signature and the return type it gives
        Table.DEFINITION_TYPES,
        _cols("goid VARCHAR, symbol VARCHAR, signature VARCHAR, return_type VARCHAR"),
        ("goid",),
        "symbol_uses",
    ),
    TableSpec(  # graph.call_edges and the call sites SCIP resolves (resolution 'scip', or '<resolution>+scip')
        Table.CALL_EDGES_MERGED,
        _cols(
            "caller_goid VARCHAR, callee_goid VARCHAR, caller VARCHAR, caller_module VARCHAR, path VARCHAR, "
            "line INTEGER, col INTEGER, callee VARCHAR, callee_text VARCHAR, kind VARCHAR, resolution VARCHAR, "
            "confidence DOUBLE"
        ),
        ("path", "line", "col", "caller", "callee"),
        "call_graph_types",
    ),
)

CATALOG: dict[str, TableSpec] = {
    spec.name: spec for spec in (*_SPECS, *_HISTORY_SPECS, *_TIMESERIES_SPECS, *_SCIP_SPECS, *_CST_SPECS, *_USE_SPECS)
}


def spec_of(table: str) -> TableSpec:
    """The spec of `table` (a `Table` member or its qualified name)."""
    return CATALOG[str(table)]
