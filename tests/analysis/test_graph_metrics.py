"""Tests for codeintel.analysis.graph_metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import networkx as nx
import pytest

from codeintel.analysis.graph_metrics import NodeGraphMetrics, compute_graph_metrics

Edges = list[tuple[str, str, float]]


def metrics(nodes: list[str], edges: Edges, **kwargs: int) -> dict[str, NodeGraphMetrics]:
    return {m.node_id: m for m in compute_graph_metrics(nodes, edges, **kwargs)}


def random_graph(n: int, m: int, seed: int) -> tuple[list[str], Edges]:
    graph = nx.gnm_random_graph(n, m, seed=seed, directed=True)
    nodes = [f"n{i:04d}" for i in graph.nodes]
    return nodes, [(f"n{a:04d}", f"n{b:04d}", 1.0 + (a + b) % 3) for a, b in graph.edges]


GRAPHS = {
    "path": (list("abcd"), [("a", "b", 1.0), ("b", "c", 1.0), ("c", "d", 1.0)]),
    "star-in": (list("hxyz"), [("x", "h", 2.0), ("y", "h", 1.0), ("z", "h", 5.0)]),
    "cycle-with-dangling": (list("pqrs"), [("p", "q", 1.0), ("q", "p", 3.0), ("q", "s", 1.0)]),
    "random": random_graph(40, 120, seed=1),
}


@pytest.mark.parametrize("name", sorted(GRAPHS), ids=sorted(GRAPHS))
def test_pagerank_sums_to_one(name: str) -> None:
    nodes, edges = GRAPHS[name]
    assert sum(m.pagerank for m in metrics(nodes, edges).values()) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("name", sorted(GRAPHS), ids=sorted(GRAPHS))
def test_pagerank_matches_networkx_weighted(name: str) -> None:
    nodes, edges = GRAPHS[name]
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_weighted_edges_from(edges)
    expected = nx.pagerank(graph, weight="weight", tol=1e-12)
    got = metrics(nodes, edges)
    assert all(got[n].pagerank == pytest.approx(expected[n], abs=1e-8) for n in nodes)


def test_betweenness_of_a_path_graph_counts_inner_nodes() -> None:
    nodes, edges = GRAPHS["path"]
    got = {n: m.betweenness for n, m in metrics(nodes, edges).items()}
    # b lies on a->c and a->d, c on a->d and b->d; normalised by (n-1)(n-2) = 6.
    assert got == pytest.approx({"a": 0.0, "b": 1 / 3, "c": 1 / 3, "d": 0.0})


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["g0", "g1", "g2"])
def test_exact_path_centralities_equal_networkx(seed: int) -> None:
    nodes, edges = random_graph(50, 130, seed)
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_weighted_edges_from(edges)
    expected = {
        "betweenness": nx.betweenness_centrality(graph),
        "closeness": nx.closeness_centrality(graph),
        "harmonic": nx.harmonic_centrality(graph),
    }
    got = metrics(nodes, edges)
    for field, values in expected.items():
        assert all(getattr(got[n], field) == pytest.approx(values[n], abs=1e-9) for n in nodes)
    assert not any(m.centrality_sampled for m in got.values())


def test_sampling_every_node_as_pivot_gives_the_exact_values() -> None:
    nodes, edges = random_graph(30, 80, seed=3)
    exact = metrics(nodes, edges)
    sampled = metrics(nodes, edges, exact_betweenness_limit=0, pivots=len(nodes))
    assert all(m.centrality_sampled for m in sampled.values())
    for node in nodes:
        assert sampled[node].betweenness == pytest.approx(exact[node].betweenness)
        assert sampled[node].harmonic == pytest.approx(exact[node].harmonic)
        assert sampled[node].closeness == pytest.approx(exact[node].closeness)


def test_sampled_centralities_estimate_the_exact_ranking() -> None:
    nodes, edges = random_graph(300, 900, seed=4)
    exact = metrics(nodes, edges)
    sampled = metrics(nodes, edges, exact_betweenness_limit=10, pivots=150)
    top = sorted(nodes, key=lambda n: -exact[n].harmonic)[:10]
    bottom = sorted(nodes, key=lambda n: exact[n].harmonic)[:10]
    assert min(sampled[n].harmonic for n in top) > max(sampled[n].harmonic for n in bottom)


def test_degrees_count_distinct_neighbours_and_sum_parallel_weights() -> None:
    edges = [("a", "b", 1.0), ("a", "b", 2.5), ("a", "c", 1.0), ("c", "b", 4.0), ("a", "a", 9.0)]
    got = metrics(["a", "b", "c"], edges)
    assert (got["a"].fan_out, got["a"].weighted_out_degree, got["a"].fan_in) == (2, 4.5, 0)
    assert (got["b"].fan_in, got["b"].weighted_in_degree) == (2, 7.5)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ([("a", "b"), ("b", "c")], {"a": (None, 0, 2), "b": (None, 0, 1), "c": (None, 0, 0)}),
        ([("a", "a")], {"a": ("a", 1, 0), "b": (None, 0, 0), "c": (None, 0, 0)}),
        (
            [("c", "b"), ("b", "c"), ("a", "b")],
            {"a": (None, 0, 1), "b": ("b", 2, 0), "c": ("b", 2, 0)},
        ),
    ],
    ids=["chain-layers", "self-loop-is-a-cycle", "two-cycle-shares-a-layer"],
)
def test_cycle_membership_and_layers(
    edges: list[tuple[str, str]], expected: dict[str, tuple[str | None, int, int]]
) -> None:
    got = metrics(["a", "b", "c"], [(s, d, 1.0) for s, d in edges])
    assert {n: (m.cycle_id, m.cycle_size, m.layer) for n, m in got.items()} == expected
    assert {n for n, m in got.items() if m.in_cycle} == {n for n, e in expected.items() if e[0]}


def test_edges_to_unknown_nodes_are_ignored_and_nodes_deduplicated() -> None:
    got = compute_graph_metrics(["b", "a", "a"], [("a", "zz", 1.0), ("a", "b", 1.0)])
    assert [m.node_id for m in got] == ["a", "b"]
    assert got[0].fan_out == 1


def test_empty_graph_gives_no_rows() -> None:
    assert compute_graph_metrics([], []) == []


SCRIPT = textwrap.dedent(
    """
    import random
    from codeintel.analysis.graph_metrics import compute_graph_metrics
    rng = random.Random(7)
    nodes = [f"mod{i}.f{i % 7}" for i in range(400)]
    edges = [(rng.choice(nodes), rng.choice(nodes), rng.random()) for _ in range(1200)]
    for limit in (10_000, 50):
        for row in compute_graph_metrics(nodes, list(reversed(edges)), exact_betweenness_limit=limit):
            print(row)
    """
)


def test_output_is_identical_under_different_hash_seeds() -> None:
    outputs = set()
    for hash_seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
        outputs.add(run.stdout)
    assert len(outputs) == 1
