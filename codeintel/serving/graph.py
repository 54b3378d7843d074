"""Walking the stored call graph: callers or callees hop by hop, from one symbol or several.

Each hop reads the whole frontier's edges from the snapshot's index (`SnapshotIndex.hop`: the
resolved edges of `graph.call_edges_merged` (the points-to call graph with the call sites the type
checker resolves: resolution 'scip') at or above a minimum confidence, one row per caller/callee
pair, in memory); the walk keeps, per origin, how every symbol was first reached (hop, the symbol it was reached from,
the edge's confidence and call line), which gives one witness path per reached symbol.  Ties
are broken by confidence, then GOID: the same walk on the same snapshot gives the same paths.

A walk is a lower bound when call sites it could not resolve may lead further: calls in the
expanded symbols that the call graph left unresolved (callees), or unresolved call sites that
call one of the expanded symbols' names (callers).  `unresolved_by_hop` counts them.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from codeintel.serving.snapshot import DeadlineExceeded, Query
from codeintel.serving.symbols import Symbol

DIRECTIONS = ("callers", "callees")
MAX_DEPTH = 5

@dataclass(frozen=True, slots=True)
class Reached:
    """How a symbol was first reached from one origin."""

    hop: int
    parent: str | None  # the symbol it was reached from (None: the origin itself)
    confidence: float | None
    line: int | None  # the call's line, in the caller's file


@dataclass
class Walk:
    """The result of `walk`: per origin, every symbol reached and how."""

    direction: str
    depth: int
    min_confidence: float
    origins: tuple[str, ...]
    reached: dict[str, dict[str, Reached]] = field(default_factory=dict)  # origin -> symbol -> how
    preds: dict[str, list[str]] = field(default_factory=dict)  # symbol -> every symbol it was reached from at its hop
    expanded: list[list[str]] = field(default_factory=list)  # per hop (0-based), the symbols whose edges were read
    tests: set[str] = field(default_factory=set)  # reached test functions (walks with `tests_are_leaves`)
    complete: bool = True  # False: the deadline stopped the walk early

    def hops(self) -> dict[str, int]:
        """Every reached symbol (origins excluded) and the first hop any origin reached it at."""
        if len(self.reached) == 1:  # one origin, or several walked as one
            best = {goid: how.hop for goid, how in next(iter(self.reached.values())).items()}
        else:
            best = {}
            for seen in self.reached.values():
                for goid, how in seen.items():
                    if goid not in best or how.hop < best[goid]:
                        best[goid] = how.hop
        for origin in self.origins:  # an origin reached from another origin still counts only as an origin
            best.pop(origin, None)
        return best

    def per_hop(self, hops: dict[str, int] | None = None) -> list[int]:
        """New symbols per hop walked (the walk stops early when nothing is left to expand);
        `hops` is `self.hops()` when the caller has it already."""
        counts = [0] * len(self.expanded)
        for hop in (self.hops() if hops is None else hops).values():
            counts[hop - 1] += 1
        return counts

    def path(self, origin: str, goid: str) -> list[str]:
        """The witness path from `origin` to `goid` (both included), in walk order."""
        seen = self.reached[origin]
        out = [goid]
        while (parent := seen[out[-1]].parent) is not None:
            out.append(parent)
        out.reverse()
        return out

    def origin_of(self, goid: str) -> str:
        """The origin that reached `goid` first (lowest hop, then first in `origins`)."""
        return min(
            (o for o in self.origins if goid in self.reached.get(o, {})),
            key=lambda o: (self.reached[o][goid].hop, self.origins.index(o)),
        )

    def origins_of(self, goids: Iterable[str]) -> dict[str, str]:
        """`origin_of` for each of `goids` (each reached by some origin), in one pass over the walk."""
        wanted = set(goids)
        best: dict[str, tuple[int, int, str]] = {}
        for rank, origin in enumerate(self.origins):
            for goid, how in self.reached.get(origin, {}).items():
                if goid in wanted and (goid not in best or (how.hop, rank) < best[goid][:2]):
                    best[goid] = (how.hop, rank, origin)
        return {goid: found[2] for goid, found in best.items()}


def walk(
    q: Query,
    origins: Sequence[str],
    direction: str,
    depth: int,
    min_confidence: float = 0.0,
    *,
    as_one: bool = False,
    keep_preds: bool = False,
    stop_at: Iterable[str] = (),
    tests_are_leaves: bool = False,
) -> Walk:
    """Walk callers or callees of `origins` up to `depth` hops.

    `as_one` walks the origins as one symbol (the definitions of one name: overloads), under the
    first origin's key.  `keep_preds` records every predecessor at a symbol's first hop (for
    counting and listing all shortest paths; one origin or `as_one`); `stop_at` ends the walk
    after the hop that reaches one of them.  `tests_are_leaves` does not walk on from a test
    function (only other tests call tests): walks that look for tests stay small.  The deadline
    ends it early (`complete` False) instead of failing the call.
    """
    result = Walk(direction, depth, min_confidence, tuple(dict.fromkeys(origins)))
    if as_one and result.origins:
        key = result.origins[0]
        result.reached[key] = {o: Reached(0, None, None, None) for o in result.origins}
        frontier: dict[str, set[str]] = {o: {key} for o in result.origins}
    else:
        for o in result.origins:
            result.reached[o] = {o: Reached(0, None, None, None)}
        frontier = {o: {o} for o in result.origins}
    targets = set(stop_at)
    for hop in range(1, depth + 1):
        if not frontier:
            break
        nodes = sorted(frontier)
        try:
            q.deadline.check()
            rows = q.index.hop(direction, nodes, float(min_confidence), tests=tests_are_leaves and direction == "callers")
        except DeadlineExceeded:
            result.complete = False
            break
        result.expanded.append(nodes)
        nxt: dict[str, set[str]] = defaultdict(set)
        for near, far, conf, line, is_test in rows:
            if is_test:
                result.tests.add(far)
            for origin in frontier[near]:
                seen = result.reached[origin]
                how = seen.get(far)
                if how is None:
                    seen[far] = Reached(hop, near, conf, line)
                    if not (is_test and tests_are_leaves):
                        nxt[far].add(origin)
                    if keep_preds:
                        result.preds[far] = [near]
                elif keep_preds and how.hop == hop and near not in result.preds[far]:
                    result.preds[far].append(near)
        frontier = dict(nxt)
        if targets & frontier.keys():
            break
    return result


def symbols_of(q: Query, goids: Iterable[str]) -> dict[str, Symbol]:
    """The index rows of `goids` (those the index has)."""
    return q.index.symbols_of(goids)


def page_by_hop(q: Query, hops: dict[str, int], offset: int, limit: int) -> list[Symbol]:
    """One page of `hops`'s symbols (those the index has) ordered by hop, then dotted name, then
    GOID; only the page is named, however many symbols the walk reached."""
    if not hops:
        return []
    symbols = q.index.symbols
    keys = [(h, s.full_name, g) for g, h in hops.items() if (s := symbols.get(g)) is not None]
    wanted = offset + limit
    first = heapq.nsmallest(wanted, keys) if wanted < len(keys) else sorted(keys)
    return [symbols[g] for _, _, g in first[offset:wanted]]


def unresolved_by_hop(q: Query, w: Walk) -> tuple[list[int], list[tuple[str, int]]]:
    """Per hop, the unresolved call sites that may lead further than the walk went, and the
    names (callers) or symbols (callees) with the most of them."""
    expanded = sorted({g for hop in w.expanded for g in hop})
    if not expanded:
        return [], []
    index = q.index
    known = index.symbols_of(expanded)
    if w.direction == "callees":
        counts = {g: n for g in known if (n := index.facts[g].unresolved_calls or 0) > 0}
        per_hop = [sum(counts.get(g, 0) for g in hop) for hop in w.expanded]
        return per_hop, sorted(((known[g].full_name, n) for g, n in counts.items()), key=lambda t: (-t[1], t[0]))[:3]
    # callers: unresolved sites calling the name of an expanded symbol (a module is not called)
    name_of = {g: s.name for g, s in known.items() if s.kind != "module" and s.name in index.unresolved_names}
    sites = {name: index.unresolved_names[name] for name in name_of.values()}
    per_hop = [sum(sites[n] for n in {name_of[g] for g in hop if g in name_of}) for hop in w.expanded]
    return per_hop, sorted(sites.items(), key=lambda t: (-t[1], t[0]))[:3]


def count_shortest_paths(w: Walk, target: str) -> int:
    """How many shortest paths lead from the walk's origin(s) to `target` (needs `keep_preds`)."""
    memo: dict[str, int] = dict.fromkeys(w.origins, 1)

    def count(goid: str) -> int:  # recursion depth is at most the walk's depth
        if goid not in memo:
            memo[goid] = sum(count(p) for p in w.preds.get(goid, []))
        return memo[goid]

    return count(target)


def shortest_paths(w: Walk, target: str, limit: int, order: dict[str, str]) -> list[list[str]]:
    """Up to `limit` shortest paths from the origin to `target`, in the order of `order`'s keys
    (a sort key per symbol) along the path."""
    origins = set(w.origins)
    out: list[list[str]] = []

    def extend(suffix: list[str]) -> None:
        if len(out) >= limit:
            return
        head = suffix[0]
        if head in origins:
            out.append(suffix)
            return
        for p in sorted(w.preds.get(head, []), key=lambda g: (order.get(g, g), g)):
            extend([p, *suffix])

    extend([target])
    return out
