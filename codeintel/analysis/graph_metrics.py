"""Structural metrics of a directed weighted graph (call graph or module import graph).

This module owns the per-node graph metrics stored for functions and modules: fan-in/out,
weighted degrees, PageRank, betweenness, closeness and harmonic centrality, cycle membership
(strongly connected components) and the layer of each node in the condensation DAG. Nodes are
plain string ids (GOIDs, module names). Output is deterministic: nodes and edges are sorted before
any graph is built, random sampling uses a fixed seed, and floats are rounded to 12 significant
digits so that hash-seed-dependent summation order cannot leak into stored values.

Centralities use hop distances (edge weights are affinities such as call counts, not lengths).
Closeness and harmonic centrality are incoming, as in networkx: they measure how close the
other nodes are *to* a node. Above `exact_betweenness_limit` nodes all three path-based
centralities are estimated from `k` random pivot sources (Brandes-Pich for betweenness,
Eppstein-Wang style scaling for closeness and harmonic); `centrality_sampled` says so.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scipy is imported where used: it costs every process 0.1 s to import
    from scipy.sparse import csr_array

logger = logging.getLogger(__name__)

SIGNIFICANT_DIGITS = 12
DEFAULT_PIVOTS = 64
_DISTANCE_BATCH = 64


@dataclass(frozen=True, slots=True)
class CycleInfo:
    """Cycle membership and condensation layer of one node."""

    in_cycle: bool
    cycle_id: str | None
    cycle_size: int
    layer: int


@dataclass(frozen=True, slots=True)
class NodeGraphMetrics:
    """Graph metrics of one node.

    `fan_in`/`fan_out` count distinct other nodes; weighted degrees sum edge weights (both ignore
    self-loops). `cycle_id` is the smallest member id of the node's strongly connected component
    when that component is a cycle (size > 1, or a self-loop), else None; `cycle_size` is 0 then.
    `layer` is the longest-path depth in the condensation DAG, 0 for nodes with no successor.
    """

    node_id: str
    fan_in: int
    fan_out: int
    weighted_in_degree: float
    weighted_out_degree: float
    pagerank: float
    betweenness: float
    closeness: float
    harmonic: float
    in_cycle: bool
    cycle_id: str | None
    cycle_size: int
    layer: int
    centrality_sampled: bool


def round_sig(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Round a float to `digits` significant digits (0.0 and non-finite values unchanged)."""
    if value == 0.0 or not np.isfinite(value):
        return float(value)
    return float(f"{value:.{digits}g}")


@dataclass(frozen=True, slots=True)
class _IndexedGraph:
    """Nodes sorted by id and edges as index arrays; parallel edges summed, sorted by pair."""

    order: list[str]
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray

    def matrix(self, weighted: bool) -> csr_array:
        """Adjacency matrix without self-loops (row = source), hop or weight valued."""
        keep = self.src != self.dst
        data = self.weight[keep] if weighted else np.ones(int(keep.sum()))
        n = len(self.order)
        from scipy.sparse import csr_array

        return csr_array((data, (self.src[keep], self.dst[keep])), shape=(n, n))


def _index_graph(nodes: Sequence[str], edges: Sequence[tuple[str, str, float]]) -> _IndexedGraph:
    """Index a graph; edges with an end outside `nodes` are dropped (and logged)."""
    order = sorted(set(nodes))
    index = {node: i for i, node in enumerate(order)}
    weights: dict[tuple[int, int], float] = {}
    dropped = 0
    for src, dst, weight in edges:
        si, di = index.get(src), index.get(dst)
        if si is None or di is None:
            dropped += 1
            continue
        weights[(si, di)] = weights.get((si, di), 0.0) + float(weight)
    if dropped:
        logger.debug("dropped %s edges with an endpoint outside the node list", dropped)
    pairs = sorted(weights)
    return _IndexedGraph(
        order=order,
        src=np.array([s for s, _ in pairs], dtype=np.int64),
        dst=np.array([d for _, d in pairs], dtype=np.int64),
        weight=np.array([weights[p] for p in pairs], dtype=np.float64),
    )


def _condensation_layers(labels: np.ndarray, count: int, graph: _IndexedGraph) -> list[int]:
    """Longest-path depth of each component in the condensation DAG (0 = no successor)."""
    cross = labels[graph.src] != labels[graph.dst]
    pairs = np.unique(np.stack([labels[graph.src][cross], labels[graph.dst][cross]]), axis=1)
    preds: list[list[int]] = [[] for _ in range(count)]
    remaining = [0] * count
    for src, dst in pairs.T.tolist():
        preds[dst].append(src)
        remaining[src] += 1
    layer = [0] * count
    ready = [c for c in range(count) if remaining[c] == 0]
    while ready:
        comp = ready.pop()
        for pred in preds[comp]:
            layer[pred] = max(layer[pred], layer[comp] + 1)
            remaining[pred] -= 1
            if remaining[pred] == 0:
                ready.append(pred)
    return layer


def _cycles_and_layers_of(graph: _IndexedGraph) -> list[CycleInfo]:
    n = len(graph.order)
    if n == 0:
        return []
    from scipy.sparse.csgraph import connected_components

    count, labels = connected_components(graph.matrix(weighted=False), directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=count)
    smallest = np.full(count, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n))  # order is sorted: smallest index = id
    looped = np.zeros(n, dtype=bool)
    looped[graph.src[graph.src == graph.dst]] = True
    layer = _condensation_layers(labels, count, graph)
    info: list[CycleInfo] = []
    for i in range(n):
        comp = int(labels[i])
        cyclic = bool(sizes[comp] > 1 or looped[i])
        info.append(
            CycleInfo(
                in_cycle=cyclic,
                cycle_id=graph.order[int(smallest[comp])] if cyclic else None,
                cycle_size=int(sizes[comp]) if cyclic else 0,
                layer=layer[comp],
            )
        )
    return info


def compute_cycles_and_layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, CycleInfo]:
    """Cycle membership and condensation-DAG layer of every node of a directed graph.

    Args:
        nodes: Node ids.
        edges: Directed (src, dst) pairs; a self-loop makes a one-node cycle.

    Returns:
        CycleInfo by node id (see `NodeGraphMetrics` for the definitions).
    """
    graph = _index_graph(nodes, [(s, d, 1.0) for s, d in edges])
    return dict(zip(graph.order, _cycles_and_layers_of(graph), strict=True))


@dataclass(frozen=True, slots=True)
class _Bfs:
    """BFS from a batch of sources (one column each): hop depth (-1 unreachable), path counts."""

    depth: np.ndarray
    sigma: np.ndarray


def _batch_bfs(forward_t: csr_array, batch: np.ndarray, n: int) -> _Bfs:
    """Level-synchronous BFS from every source of `batch` at once."""
    cols = np.arange(len(batch))
    depth = np.full((n, len(batch)), -1, dtype=np.int32)
    sigma = np.zeros((n, len(batch)))
    depth[batch, cols] = 0
    sigma[batch, cols] = 1.0
    frontier = sigma.copy()
    level = 0
    while frontier.any():
        level += 1
        reached = forward_t @ frontier  # path counts into each node from the frontier
        reached[depth >= 0] = 0.0
        new = reached > 0
        depth[new] = level
        sigma[new] = reached[new]
        frontier = np.where(new, reached, 0.0)
    return _Bfs(depth=depth, sigma=sigma)


def _dependencies(forward: csr_array, bfs: _Bfs) -> np.ndarray:
    """Brandes' backward accumulation of pair dependencies for a batch of sources."""
    delta = np.zeros_like(bfs.sigma)
    inverse_sigma = np.divide(1.0, bfs.sigma, out=np.zeros_like(bfs.sigma), where=bfs.sigma > 0)
    for level in range(int(bfs.depth.max()), 0, -1):
        coeff = np.where(bfs.depth == level, (1.0 + delta) * inverse_sigma, 0.0)
        pulled = forward @ coeff  # sum over successors w of coeff[w]
        parents = bfs.depth == level - 1
        delta[parents] += bfs.sigma[parents] * pulled[parents]
    delta[bfs.depth == 0] = 0.0  # a source gets no credit for its own paths
    return delta


@dataclass(frozen=True, slots=True)
class _PathCentrality:
    betweenness: np.ndarray
    closeness: np.ndarray
    harmonic: np.ndarray


def _path_centralities(forward: csr_array, sources: Sequence[int], n: int) -> _PathCentrality:
    """Betweenness, closeness (Wasserman-Faust) and harmonic centrality from BFS of `sources`.

    With every node as a source the values are exact (and equal networkx's normalised ones);
    with a sample, sums are scaled by n / k for betweenness and by (n - 1) / (sources other
    than the node) for closeness and harmonic centrality.
    """
    forward_t = forward.T.tocsr()
    between, reach, total, harmonic = (np.zeros(n) for _ in range(4))
    for start in range(0, len(sources), _DISTANCE_BATCH):
        batch = np.asarray(sources[start : start + _DISTANCE_BATCH], dtype=np.int64)
        bfs = _batch_bfs(forward_t, batch, n)
        between += _dependencies(forward, bfs).sum(axis=1)
        hops = np.where(bfs.depth > 0, bfs.depth, 0).astype(np.float64)
        reach += (bfs.depth > 0).sum(axis=1)
        total += hops.sum(axis=1)
        harmonic += np.divide(1.0, hops, out=np.zeros_like(hops), where=hops > 0).sum(axis=1)
    others = np.full(n, float(len(sources)))
    others[np.asarray(sources, dtype=np.int64)] -= 1.0
    scale = np.divide(n - 1, others, out=np.zeros(n), where=others > 0)
    reach_est, total_est = reach * scale, total * scale
    closeness = np.divide(reach_est * reach_est, total_est * max(n - 1, 1), out=np.zeros(n), where=total_est > 0)
    between_scale = (1.0 / ((n - 1) * (n - 2)) if n > 2 else 1.0) * n / max(len(sources), 1)
    return _PathCentrality(between * between_scale, closeness, harmonic * scale)


def _pagerank(weights: csr_array, alpha: float = 0.85, tol: float = 1e-12) -> np.ndarray:
    """Weighted PageRank by power iteration, as networkx: dangling nodes jump uniformly."""
    n = weights.shape[0]
    if n == 0:
        return np.zeros(0)
    out = np.asarray(weights.sum(axis=1)).ravel()
    inverse = np.divide(1.0, out, out=np.zeros(n), where=out > 0)
    transition_t = (weights.multiply(inverse[:, None])).T.tocsr()
    dangling = out == 0
    rank = np.full(n, 1.0 / n)
    for _ in range(1000):
        previous = rank
        rank = alpha * (transition_t @ rank + previous[dangling].sum() / n) + (1 - alpha) / n
        if np.abs(rank - previous).sum() < n * tol:
            break
    return rank / rank.sum()


def compute_graph_metrics(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str, float]],
    *,
    exact_betweenness_limit: int = 2000,
    seed: int = 0,
    pivots: int = DEFAULT_PIVOTS,
) -> list[NodeGraphMetrics]:
    """Compute structural metrics for every node of a directed weighted graph.

    Args:
        nodes: Node ids; edges whose ends are not listed are ignored.
        edges: (src, dst, weight) triples; parallel edges add up. Self-loops only mark cycles.
        exact_betweenness_limit: Up to this many nodes betweenness, closeness and harmonic
            centrality are exact; above it they are estimated from `pivots` sampled sources.
        seed: Seed of the pivot sample.
        pivots: Number of sampled sources above the limit.

    Returns:
        One record per distinct node, sorted by node id.
    """
    graph = _index_graph(nodes, edges)
    n = len(graph.order)
    hops, weights = graph.matrix(weighted=False), graph.matrix(weighted=True)
    sampled = n > exact_betweenness_limit
    k = min(pivots, n)
    sources = sorted(random.Random(seed).sample(range(n), k)) if sampled else list(range(n))
    paths = _path_centralities(hops, sources, n)
    pagerank = _pagerank(weights)
    cycles = _cycles_and_layers_of(graph)
    fan_out, fan_in = np.diff(hops.indptr), np.bincount(hops.indices, minlength=n)
    w_out = np.asarray(weights.sum(axis=1)).ravel()
    w_in = np.asarray(weights.sum(axis=0)).ravel()
    return [
        NodeGraphMetrics(
            node_id=node,
            fan_in=int(fan_in[i]),
            fan_out=int(fan_out[i]),
            weighted_in_degree=round_sig(float(w_in[i])),
            weighted_out_degree=round_sig(float(w_out[i])),
            pagerank=round_sig(float(pagerank[i])),
            betweenness=round_sig(float(paths.betweenness[i])),
            closeness=round_sig(float(paths.closeness[i])),
            harmonic=round_sig(float(paths.harmonic[i])),
            in_cycle=cycles[i].in_cycle,
            cycle_id=cycles[i].cycle_id,
            cycle_size=cycles[i].cycle_size,
            layer=cycles[i].layer,
            centrality_sampled=sampled,
        )
        for i, node in enumerate(graph.order)
    ]
