"""Answers that walk the call graph: `call_graph`, `trace_path` and `tests_for`.

Each resolves its symbol (all definitions of its name), walks (`graph.walk`), names what it
reached (`docs.symbols`), sorts it by hop, then name, then GOID, and pages through that order.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from codeintel.serving import graph, symbols
from codeintel.serving.calls import (
    Call,
    bound_facts,
    check_direction,
    clamp_confidence,
    clamp_depth,
    miss_answer,
    others_note,
    path_text,
    per_hop_text,
)
from codeintel.serving.render import Answer, Section, clamp_limit
from codeintel.serving.symbols import Lookup, Symbol


def call_graph(c: Call, symbol: str, direction: str, depth: int, min_confidence: float, limit: int | None) -> Answer:
    """Callers or callees of a symbol to `depth` hops, with totals per hop and the lower bound."""
    check_direction(direction)
    d, conf = clamp_depth(depth), clamp_confidence(min_confidence)
    found = symbols.resolve(c.q, symbol)
    if found.symbol is None:
        return miss_answer("call_graph", found)
    target = found.symbol
    w = graph.walk(c.q, found.goids, direction, d, conf, as_one=True)
    hops = w.hops()
    page = graph.page_by_hop(c.q, hops, c.offset, clamp_limit(limit))
    seen = w.reached[found.goids[0]]
    parents = graph.symbols_of(c.q, {p for s in page if (p := seen[s.goid].parent) is not None})
    rows = []
    for s in page:
        how = seen[s.goid]
        via = parents[how.parent].qualname if how.hop > 1 and how.parent in parents else None
        rows.append((how.hop, s.kind, s.full_name, s.at, how.line, how.confidence, via))
    facts: list[tuple[str, Any]] = [
        ("symbol", target.describe()),
        ("walk", f"{direction}, depth {d}, min confidence {conf:g}"),
        ("per hop", per_hop_text(w.per_hop(hops))),
        *bound_facts(c.q, w),
    ]
    line = "line of the call in the caller" if direction == "callers" else "line of the call in `via` (or the symbol)"
    section = Section(
        direction, ("hop", "kind", "name", "defined at", "call line", "conf", "via"), rows, total=len(hops),
        offset=c.offset, brief=("hop", "name", "conf"), pageable=True,
    )  # fmt: skip
    notes = [*others_note(found), f"call line: the {line}"]
    return Answer(f"{direction} of {target.full_name}: {len(hops)} within {d} hops", facts, [section], notes)


def tests_for(c: Call, symbol: str, depth: int, min_confidence: float, limit: int | None) -> Answer:
    """The test functions that reach a symbol through its callers, each with a witness path."""
    d, conf = clamp_depth(depth), clamp_confidence(min_confidence)
    found = symbols.resolve(c.q, symbol)
    if found.symbol is None:
        return miss_answer("tests_for", found)
    target = found.symbol
    w = graph.walk(c.q, found.goids, "callers", d, conf, as_one=True, tests_are_leaves=True)
    hops = w.hops()
    test_hops = {g: h for g, h in hops.items() if g in w.tests}
    page = graph.page_by_hop(c.q, test_hops, c.offset, clamp_limit(limit))
    paths = {s.goid: w.path(found.goids[0], s.goid)[::-1] for s in page}
    syms = graph.symbols_of(c.q, {n for p in paths.values() for n in p})
    rows = [(hops[s.goid], s.full_name, s.at, path_text(paths[s.goid], syms)) for s in page]
    tests = list(test_hops)
    per_hop = [0] * len(w.expanded)
    for g in tests:
        per_hop[hops[g] - 1] += 1
    facts: list[tuple[str, Any]] = [
        ("symbol", target.describe() + (" (itself a test)" if target.is_test else "")),
        ("walk", f"callers, depth {d}, min confidence {conf:g}"),
        ("tests per hop", per_hop_text(per_hop)),
        ("callers walked", f"{len(hops)} symbols (not through test functions)"),
        *bound_facts(c.q, w),
    ]
    section = Section(
        "tests", ("hop", "test", "at", "witness path (test → ... → symbol)"), rows, total=len(tests),
        offset=c.offset, brief=("hop", "test"), pageable=True,
    )  # fmt: skip
    return Answer(f"tests reaching {target.full_name}: {len(tests)} within {d} hops", facts, [section], others_note(found))


def trace_path(
    c: Call, source: str, target: str | None, max_depth: int, min_confidence: float, direction: str, limit: int | None
) -> Answer:
    """The shortest call paths from one symbol to another, or how far one reaches."""
    d, conf = clamp_depth(max_depth), clamp_confidence(min_confidence)
    src = symbols.resolve(c.q, source)
    if src.symbol is None:
        return miss_answer("trace_path (source)", src)
    if not target:
        check_direction(direction)
        return _reach(c, src, direction, d, conf)
    dst = symbols.resolve(c.q, target)
    if dst.symbol is None:
        return miss_answer("trace_path (target)", dst)
    return _paths(c, src, dst, d, conf, clamp_limit(limit, 5, 50))


def _paths(c: Call, source: Lookup, target: Lookup, depth: int, conf: float, limit: int) -> Answer:
    src, dst = source.symbol, target.symbol
    assert src is not None and dst is not None
    facts: list[tuple[str, Any]] = [
        ("from", src.describe()),
        ("to", dst.describe()),
        ("search", f"calls, up to {depth} hops, min confidence {conf:g}"),
    ]
    if src.goid == dst.goid:
        return Answer(f"trace_path: {src.full_name} is the target itself", facts)
    w = graph.walk(c.q, source.goids, "callees", depth, conf, as_one=True, keep_preds=True, stop_at=target.goids)
    seen = w.reached[source.goids[0]]
    end = next((g for g in target.goids if g in seen and seen[g].hop > 0), None)
    if end is None:
        notes = []
        back = graph.walk(c.q, target.goids, "callees", depth, conf, as_one=True, stop_at=source.goids)
        back_seen = back.reached[target.goids[0]]
        start = next((g for g in source.goids if g in back_seen and back_seen[g].hop > 0), None)
        if start is not None:
            way = back.path(target.goids[0], start)
            names = graph.symbols_of(c.q, way)
            notes.append(f"the other way round, {dst.full_name} reaches it: {path_text(way, names)}")
        if not w.complete:
            facts.append(("incomplete", f"the deadline stopped the search after hop {len(w.expanded)}"))
        title = f"trace_path: no call path from {src.full_name} to {dst.full_name} within {depth} hops"
        return Answer(f"{title} ({sum(w.per_hop())} symbols reached)", facts, [], notes)
    hop = seen[end].hop
    total = graph.count_shortest_paths(w, end)
    syms = graph.symbols_of(c.q, [g for g, how in seen.items() if how.hop <= hop])
    paths = graph.shortest_paths(w, end, limit, {g: s.full_name for g, s in syms.items()})
    rows = [(i, path_text(p, syms)) for i, p in enumerate(paths, start=1)]
    steps = []
    for a, b in itertools.pairwise(paths[0]):
        line = c.q.first(
            "SELECT min(line), max(confidence) FROM graph.call_edges_merged WHERE caller_goid = ? AND callee_goid = ? AND confidence >= ?",
            [a, b, conf],
        )
        caller, callee = syms.get(a), syms.get(b)
        steps.append((
            seen[b].hop, callee.full_name if callee else b, f"{caller.path}:{line[0]}" if caller and line else None,
            line[1] if line else None,
        ))  # fmt: skip
    facts.append(("shortest", f"{hop} hops; {total} shortest paths"))
    sections = [
        Section("paths", ("#", "path"), rows, total=total, more="raise limit (up to 50) to list more"),
        Section("path 1, call by call", ("hop", "callee", "call at", "conf"), steps, brief=("hop", "callee")),
    ]
    return Answer(f"trace_path {src.full_name} → {dst.full_name}: {hop} hops", facts, sections)


def _reach(c: Call, source: Lookup, direction: str, depth: int, conf: float) -> Answer:
    src = source.symbol
    assert src is not None
    w = graph.walk(c.q, source.goids, direction, depth, conf, as_one=True)
    hops = w.hops()
    syms = graph.symbols_of(c.q, [*hops, *source.goids])
    by_hop: dict[int, list[Symbol]] = defaultdict(list)
    for g, h in hops.items():
        if g in syms:
            by_hop[h].append(syms[g])
    rows = []
    for h in range(1, len(w.expanded) + 1):
        nodes = by_hop.get(h, [])
        top = sorted(nodes, key=lambda s: (-s.callers, s.full_name, s.goid))[:3]
        rows.append((h, len(nodes), len({s.module for s in nodes}), sum(s.is_test for s in nodes), ", ".join(s.qualname for s in top)))
    modules = {s.module for g, s in syms.items() if g in hops}
    facts: list[tuple[str, Any]] = [
        ("from", src.describe()),
        ("walk", f"{direction}, up to {depth} hops, min confidence {conf:g}"),
        ("reaches", f"{len(hops)} symbols in {len(modules)} modules within {len(w.expanded)} hops"),
        *bound_facts(c.q, w),
    ]
    section = Section(
        "by hop", ("hop", "new symbols", "modules", "tests", "most called"), rows, brief=("hop", "new symbols")
    )
    return Answer(f"how far {src.full_name} reaches ({direction})", facts, [section], ["call_graph lists the symbols hop by hop"])
