"""Subsystems: communities of modules that import and call each other.

This module owns the grouping of a repository's modules into subsystems. Import and call edges
between modules are merged into one undirected weighted graph (an edge's weight is the sum of the
weights of every import and call edge between the two modules, in either direction; edges inside
one module are ignored) and split with networkx's Louvain method under a fixed seed. A module
with no edge to another module is attached to the subsystem holding the most modules of its
closest package (the longest shared dotted prefix, ties to the subsystem whose first member sorts
first); isolated modules that share no package with any connected module are grouped by their
top-level package. Each subsystem is named after its members' longest common package path
(duplicates get a `#2`, `#3` suffix, largest first) and has a stable id: a hash of its sorted
member names, so that it changes only when membership changes.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIXED_NAME_LIMIT = 3


@dataclass(frozen=True, slots=True)
class Subsystem:
    """One community of modules.

    Edge counts are over distinct directed module pairs of the merged import and call edges;
    weights sum their weights. `edges_in`/`edges_out` cross the subsystem's boundary.
    `dominant_package` is the longest package path shared by more than half of the members.
    """

    subsystem_id: str
    name: str
    dominant_package: str
    module_count: int
    internal_edge_count: int
    internal_weight: float
    edges_in: int
    edges_out: int
    weight_in: float
    weight_out: float


@dataclass(frozen=True, slots=True)
class SubsystemModule:
    """Membership of one module; `is_isolated` marks modules placed by the package rule."""

    subsystem_id: str
    module: str
    is_isolated: bool


def _merge_directed(known: set[str], *edge_lists: Sequence[tuple[str, str, float]]) -> dict[tuple[str, str], float]:
    """Sum weights per directed pair of distinct known modules."""
    merged: dict[tuple[str, str], float] = defaultdict(float)
    for edges in edge_lists:
        for src, dst, weight in edges:
            if src != dst and src in known and dst in known:
                merged[(src, dst)] += float(weight)
    return dict(sorted(merged.items()))


def _louvain(directed: dict[tuple[str, str], float], seed: int, resolution: float) -> list[list[str]]:
    undirected: dict[tuple[str, str], float] = defaultdict(float)
    for (src, dst), weight in directed.items():
        undirected[(min(src, dst), max(src, dst))] += weight
    import networkx as nx  # imported where used: it costs every process 0.1 s to import

    graph = nx.Graph()
    graph.add_nodes_from(sorted({m for pair in undirected for m in pair}))
    graph.add_weighted_edges_from((s, d, w) for (s, d), w in sorted(undirected.items()))
    if graph.number_of_nodes() == 0:
        return []
    found = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    return sorted(sorted(c) for c in found)


def _prefixes(module: str) -> list[str]:
    """Dotted prefixes from the longest (the module itself) to the top-level package."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(len(parts), 0, -1)]


def _place_isolated(communities: list[list[str]], isolated: Sequence[str]) -> tuple[list[list[str]], set[str]]:
    """Attach isolated modules to the community of their closest package, or group them."""
    by_prefix: dict[str, Counter[int]] = defaultdict(Counter)
    for index, members in enumerate(communities):
        for module in members:
            for prefix in _prefixes(module):
                by_prefix[prefix][index] += 1
    placed = [list(members) for members in communities]
    orphans: dict[str, list[str]] = defaultdict(list)
    for module in isolated:
        counts = next((by_prefix[p] for p in _prefixes(module) if p in by_prefix), None)
        if counts is None:
            orphans[module.partition(".")[0]].append(module)
            continue
        best = min(counts, key=lambda index: (-counts[index], index))
        placed[best].append(module)
    placed.extend(orphans[top] for top in sorted(orphans))
    return [sorted(members) for members in placed], set(isolated)


def _common_package(members: Sequence[str]) -> str:
    split = [m.split(".") for m in members]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    if common:
        return ".".join(common)
    tops = sorted({parts[0] for parts in split})
    more = "+..." if len(tops) > MIXED_NAME_LIMIT else ""
    return "+".join(tops[:MIXED_NAME_LIMIT]) + more


def _dominant_package(members: Sequence[str]) -> str:
    counts = Counter(p for m in members for p in _prefixes(m))
    majority = [p for p, c in counts.items() if c * 2 > len(members)]
    return max(majority, key=lambda p: (p.count("."), p)) if majority else ""


def _subsystem_id(members: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:16]


def _names(groups: Sequence[list[str]]) -> list[str]:
    """Common-package names, duplicates suffixed `#2`, `#3`... by size then id."""
    base = [_common_package(members) for members in groups]
    ranked = sorted(range(len(groups)), key=lambda i: (base[i], -len(groups[i]), _subsystem_id(groups[i])))
    names = list(base)
    seen: Counter[str] = Counter()
    for i in ranked:
        seen[base[i]] += 1
        if seen[base[i]] > 1:
            names[i] = f"{base[i]}#{seen[base[i]]}"
    return names


def _summarise(groups: Sequence[list[str]], directed: dict[tuple[str, str], float]) -> list[Subsystem]:
    owner = {m: i for i, members in enumerate(groups) for m in members}
    count: Counter[tuple[int, str]] = Counter()
    weight: defaultdict[tuple[int, str], float] = defaultdict(float)
    for (src, dst), w in directed.items():
        a, b = owner[src], owner[dst]
        keys = [(a, "internal")] if a == b else [(a, "out"), (b, "in")]
        for key in keys:
            count[key] += 1
            weight[key] += w
    names = _names(groups)
    return [
        Subsystem(
            subsystem_id=_subsystem_id(members),
            name=names[i],
            dominant_package=_dominant_package(members),
            module_count=len(members),
            internal_edge_count=count[(i, "internal")],
            internal_weight=weight[(i, "internal")],
            edges_in=count[(i, "in")],
            edges_out=count[(i, "out")],
            weight_in=weight[(i, "in")],
            weight_out=weight[(i, "out")],
        )
        for i, members in enumerate(groups)
    ]


def detect_subsystems(
    modules: Sequence[str],
    import_edges: Sequence[tuple[str, str, float]],
    call_edges: Sequence[tuple[str, str, float]],
    *,
    seed: int = 0,
    resolution: float = 1.0,
) -> tuple[list[Subsystem], list[SubsystemModule]]:
    """Group modules into subsystems by import and call affinity (Louvain, fixed seed).

    Args:
        modules: All module names; edges naming other modules are ignored.
        import_edges: (src_module, dst_module, weight) import edges.
        call_edges: (caller_module, callee_module, weight) call edges, aggregated or not.
        seed: Louvain seed.
        resolution: Louvain resolution (above 1 favours smaller subsystems).

    Returns:
        Subsystems sorted by id, and memberships sorted by module.
    """
    known = sorted(set(modules))
    directed = _merge_directed(set(known), import_edges, call_edges)
    communities = _louvain(directed, seed, resolution)
    connected = {m for members in communities for m in members}
    isolated = [m for m in known if m not in connected]
    groups, isolated_set = _place_isolated(communities, isolated)
    subsystems = _summarise(groups, directed)
    memberships = [
        SubsystemModule(subsystem_id=subsystems[i].subsystem_id, module=m, is_isolated=m in isolated_set)
        for i, members in enumerate(groups)
        for m in members
    ]
    subsystems.sort(key=lambda s: s.subsystem_id)
    memberships.sort(key=lambda s: s.module)
    return subsystems, memberships
