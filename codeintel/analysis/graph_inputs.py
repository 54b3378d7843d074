"""What the graph steps (graph metrics, subsystems, the docs tables) read: node lists and
(source, target, weight) pairs.  Calls are the merged edges: the points-to analysis's and the
type checker's (graph.call_edges_merged)."""

from __future__ import annotations

from codeintel.analysis.graph_metrics import NodeGraphMetrics
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import StorageGateway

FUNCTIONS_SQL = f"SELECT goid FROM {Table.GOIDS} ORDER BY goid"
KINDS_SQL = f"SELECT goid, kind FROM {Table.GOIDS}"
MODULES_SQL = f"SELECT DISTINCT module FROM {Table.MODULES} ORDER BY module"
CALL_PAIRS_SQL = f"""SELECT caller_goid, callee_goid, count(*)::DOUBLE FROM {Table.CALL_EDGES_MERGED}
    WHERE caller_goid IS NOT NULL AND callee_goid IS NOT NULL GROUP BY ALL ORDER BY ALL"""
IMPORT_PAIRS_SQL = f"""SELECT src_module, dst_module, count(*)::DOUBLE FROM {Table.IMPORT_EDGES}
    WHERE target_kind = 'internal' AND NOT is_type_checking AND src_module <> dst_module GROUP BY ALL ORDER BY ALL"""
MODULE_CALL_PAIRS_SQL = f"""SELECT e.caller_module, g.module, count(*)::DOUBLE FROM {Table.CALL_EDGES_MERGED} e
    JOIN {Table.GOIDS} g ON g.goid = e.callee_goid WHERE e.caller_module <> g.module GROUP BY ALL ORDER BY ALL"""

WeightedEdges = list[tuple[str, str, float]]


def read_nodes(gateway: StorageGateway, sql: str) -> list[str]:
    return [str(v) for v in gateway.query(sql).column(0).to_pylist()]


def read_weighted_edges(gateway: StorageGateway, sql: str) -> WeightedEdges:
    table = gateway.query(sql)
    return list(zip(*(table.column(i).to_pylist() for i in range(3)), strict=True))


def function_metric_rows(gateway: StorageGateway, metrics: list[NodeGraphMetrics]) -> list[dict[str, object]]:
    """Rows of analytics.graph_metrics_functions: the functions and methods among the nodes."""
    table = gateway.query(KINDS_SQL)
    kinds = dict(zip(table["goid"].to_pylist(), table["kind"].to_pylist(), strict=True))
    return [metric_row("goid", m) for m in metrics if kinds[m.node_id] in ("function", "method")]


def metric_row(id_column: str, metrics: NodeGraphMetrics) -> dict[str, object]:
    row = {f: getattr(metrics, f) for f in NodeGraphMetrics.__dataclass_fields__ if f != "node_id"}
    row[id_column] = metrics.node_id
    return row
