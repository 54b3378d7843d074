"""The `impact` answer: what a change touches, from a diff, a git ref or a list of symbols.

A diff's lines are matched against the snapshot on the side of the diff the snapshot holds
(decided per file: blob ids, a file only on one side, whether the snapshot contains the ref's
commit, else the old side: a diff against the snapshot).  Each changed line belongs to the
innermost definition around it; a pure insertion or deletion to the innermost definition around
both its neighbours.  From the changed functions, methods and classes (with every definition of
their names: overloads) the callers are walked; the answer lists the changed symbols, their
callers by hop, the modules and subsystems touched, and, per changed symbol, the test functions
that reach it, each with one witness path.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codeintel.errors import CodeIntelError
from codeintel.serving import graph, symbols, worktree
from codeintel.serving.calls import Call, bound_facts, clamp_confidence, clamp_depth, path_text, per_hop_text
from codeintel.serving.diffs import FileDiff, parse_unified_diff
from codeintel.serving.render import Answer, Section, clamp_limit
from codeintel.serving.symbols import Symbol

logger = logging.getLogger(__name__)

TEST_DEPTH = 5  # how far the walk looks for tests, whatever the callers' depth
SECTION_ROWS = 10  # rows of the answer's secondary lists


@dataclass
class Changed:
    """A changed symbol, the changed lines inside it (innermost), and every GOID of its name."""

    symbol: Symbol
    lines: int
    goids: list[str]


def impact(
    c: Call, diff: str | None, ref: str | None, names: Sequence[str] | None, depth: int, min_confidence: float,
    limit: int | None,
) -> Answer:  # fmt: skip
    """See the module docstring."""
    given = [k for k, v in (("diff", diff), ("ref", ref), ("symbols", names)) if v]
    if len(given) != 1:
        raise CodeIntelError("pass exactly one of diff (unified diff text), ref (a git ref or A..B) or symbols")
    d, conf, n = clamp_depth(depth), clamp_confidence(min_confidence), clamp_limit(limit)
    notes: list[str] = []
    if names:
        changed, input_fact = _changed_by_name(c, names, notes)
    else:
        text = diff or worktree.diff_of_ref(_repo_root(c), ref or "", timeout=_git_time(c))
        changed, input_fact = _changed_by_diff(c, parse_unified_diff(text), ref, notes)
    facts: list[tuple[str, Any]] = [("input", input_fact)]
    if not changed:
        return Answer("impact: the change touches no definition of the snapshot", facts, [], notes)
    order = sorted(changed, key=lambda ch: (ch.symbol.path, ch.symbol.start_line, ch.symbol.goid))
    walked = [ch for ch in order if ch.symbol.kind != "module"]
    changed_tests = {ch.symbol.goid: ch.symbol for ch in walked if ch.symbol.is_test}
    modules_only = [ch.symbol.full_name for ch in order if ch.symbol.kind == "module"]
    if modules_only:
        notes.append(f"module-level code changed in {', '.join(modules_only[:5])}: it runs on import (module_info lists importers)")
    owner = {g: ch for ch in walked for g in ch.goids}  # every GOID of a changed name -> the changed symbol
    w = graph.walk(c.q, list(owner), "callers", max(d, TEST_DEPTH), conf, tests_are_leaves=True)
    all_hops = w.hops()
    hops = {g: h for g, h in all_hops.items() if h <= d}
    syms = graph.symbols_of(c.q, owner)
    test_names = _names(c, w.tests) | {g: s.full_name for g, s in changed_tests.items()}
    reaches = {g: owner[o] for g, o in w.origins_of(hops).items()}

    caller_rows = [
        (hops[s.goid], s.kind, s.full_name, s.at, reaches[s.goid].symbol.qualname)
        for s in graph.page_by_hop(c.q, hops, c.offset, n)
    ]
    direct: dict[str, int] = defaultdict(int)
    for g, h in hops.items():
        if h == 1:
            direct[reaches[g].symbol.goid] += 1
    changed_rows = [(ch.symbol.kind, ch.symbol.full_name, ch.symbol.at, ch.lines or None, direct.get(ch.symbol.goid, 0)) for ch in order]
    module_rows, subsystem_rows = _touched(c, order, hops)
    test_rows, pairs, distinct = _tests(c, w, walked, test_names, syms)
    facts += [
        ("changed", f"{len(order)} symbols ({len(walked)} with callers walked)"),
        ("callers per hop", per_hop_text(w.per_hop(all_hops)[:d])),
        ("touched", f"{len(module_rows)} modules in {len(subsystem_rows)} subsystems"),
        ("tests", f"{distinct} test functions reach the change within {max(d, TEST_DEPTH)} hops or are changed by it "
                  f"({pairs} test/changed pairs)"),
        ("walk", f"callers, depth {d} (tests: {max(d, TEST_DEPTH)}; not through test functions), min confidence {conf:g}"),
        *bound_facts(c.q, _first_hops(w, d)),
    ]
    sections = [
        Section("changed", ("kind", "name", "at", "lines", "direct callers"), changed_rows[:SECTION_ROWS], total=len(changed_rows),
                brief=("kind", "name"), more="impact with symbols=[...] for a part of the change"),
        Section("callers", ("hop", "kind", "name", "at", "reaches"), caller_rows, total=len(hops), offset=c.offset,
                brief=("hop", "name", "reaches"), pageable=True),
        Section("modules", ("module", "changed", "callers", "subsystem"), module_rows[:SECTION_ROWS], total=len(module_rows),
                brief=("module", "changed", "callers"), more="module_info MODULE for one of them"),
        Section("subsystems", ("subsystem", "modules", "changed", "callers"), subsystem_rows[:SECTION_ROWS], total=len(subsystem_rows)),
        Section("tests", ("changed", "test", "hops", "witness path (test → ... → changed; 0 hops: the test changed)"),
                test_rows[:SECTION_ROWS], total=pairs,
                brief=("changed", "test", "hops"), more="tests_for CHANGED lists every test of one changed symbol"),
    ]  # fmt: skip
    title = f"impact: {len(order)} changed symbols, {len(hops)} callers within {d} hops, {distinct} tests"
    return Answer(title, facts, sections, notes)


def _first_hops(w: graph.Walk, depth: int) -> graph.Walk:
    """The walk as far as `depth` (the lower bound of the callers listed)."""
    return dataclasses.replace(w, depth=depth, expanded=w.expanded[:depth])


def _touched(c: Call, order: Sequence[Changed], callers: Mapping[str, int]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Modules and subsystems with changed symbols or callers in them, most touched first."""
    touched: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ch in order:
        touched[ch.symbol.module][0] += 1
    for s in c.q.index.symbols_of(callers).values():
        touched[s.module][1] += 1
    known = c.q.index.subsystem_of
    subsystem_of = {m: known[m][0] for m in touched if m in known}
    by_subsystem: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for module, (n_changed, n_callers) in touched.items():
        row = by_subsystem[subsystem_of.get(module) or "(none)"]
        row[0] += 1
        row[1] += n_changed
        row[2] += n_callers
    modules = sorted(((m, a, b, subsystem_of.get(m)) for m, (a, b) in touched.items()), key=lambda r: (-(r[1] + r[2]), r[0]))
    subsystems = sorted(((name, m, a, b) for name, (m, a, b) in by_subsystem.items()), key=lambda r: (-(r[2] + r[3]), r[0]))
    return modules, subsystems


def _names(c: Call, goids: Iterable[str]) -> dict[str, str]:
    """The dotted names of `goids`."""
    return {g: s.full_name for g, s in c.q.index.symbols_of(goids).items()}


def _tests(
    c: Call, w: graph.Walk, walked: Sequence[Changed], tests: Mapping[str, str], syms: Mapping[str, Symbol]
) -> tuple[list[tuple[Any, ...]], int, int]:
    """Per changed symbol, the tests that reach it (nearest first) with a witness path; rows
    interleaved over the changed symbols so that each gets its nearest tests first."""
    per_changed: list[list[tuple[Changed, str, int, str]]] = []
    distinct: set[str] = set()
    for ch in walked:
        best: dict[str, tuple[int, str]] = {}  # test -> (hop, origin), over every GOID of the name
        if ch.symbol.is_test:  # a changed test is a test of the change
            best[ch.symbol.goid] = (0, ch.symbol.goid)
        for origin in ch.goids:
            seen = w.reached.get(origin, {})
            for g in tests:  # fewer than the symbols reached
                how = seen.get(g)
                if how is not None and how.hop > 0 and (g not in best or how.hop < best[g][0]):
                    best[g] = (how.hop, origin)
        ordered = sorted(best, key=lambda g: (best[g][0], tests[g], g))
        distinct.update(ordered)
        per_changed.append([(ch, g, *best[g]) for g in ordered])
    chosen: list[tuple[Changed, str, int, str]] = []
    for rank in range(max((len(t) for t in per_changed), default=0)):
        chosen.extend(t[rank] for t in per_changed if rank < len(t))
        if len(chosen) >= SECTION_ROWS:
            break
    paths = {(ch.symbol.goid, g): w.path(origin, g)[::-1] for ch, g, _, origin in chosen}
    names = {**syms, **graph.symbols_of(c.q, {n for p in paths.values() for n in p if n not in syms})}
    rows = [(ch.symbol.qualname, tests[g], hop, path_text(paths[ch.symbol.goid, g], names)) for ch, g, hop, _ in chosen]
    return rows, sum(len(t) for t in per_changed), len(distinct)


def _git_time(c: Call) -> float:
    """What git may take of the call's deadline (the walk needs the rest)."""
    return max(0.1, c.q.deadline.remaining() / 2)


def _repo_root(c: Call) -> Any:
    root = c.info.repo_root
    if root is None or not root.is_dir():
        raise CodeIntelError(f"the repository is not available here ({root}): pass diff text instead, or start the server with --repo")
    return root


def _groups(c: Call, syms: Sequence[Symbol]) -> dict[str, list[str]]:
    """Every GOID of each symbol's dotted name (overloads, redefinitions)."""
    by_name = c.q.index.by_full_name
    return {s.goid: sorted(d.goid for d in by_name.get(s.full_name, [s])) for s in syms}


def _changed_by_name(c: Call, names: Sequence[str], notes: list[str]) -> tuple[list[Changed], str]:
    found: dict[str, Symbol] = {}
    for name in names:
        lookup = symbols.resolve(c.q, name)
        if lookup.symbol is None:
            notes.append(lookup.problem())
        else:
            found.setdefault(lookup.symbol.goid, lookup.symbol)
    groups = _groups(c, list(found.values()))
    return [Changed(s, 0, groups[s.goid]) for s in found.values()], f"{len(names)} symbols ({len(found)} found)"


def _changed_by_diff(c: Call, files: list[FileDiff], ref: str | None, notes: list[str]) -> tuple[list[Changed], str]:
    paths = sorted({p for f in files for p in (f.old_path, f.new_path) if p})
    known = {p for (p,) in c.q.rows("SELECT path FROM core.files WHERE path IN (SELECT unnest(?::VARCHAR[]))", [paths])}
    sides = _sides(c, files, ref, known)
    changed: dict[str, int] = defaultdict(int)  # goid -> changed lines inside it
    matched: dict[str, int] = defaultdict(int)
    for f in files:
        side, why = sides[id(f)]
        path = f.old_path if side == "old" else f.new_path
        if not path or not path.endswith((".py", ".pyi")):
            continue
        if path not in known:
            notes.append(f"{f.path}: not in the snapshot (new, or not indexed): nothing there has callers yet")
            continue
        matched[f"{side} side ({why})"] += 1
        in_file = c.q.index.by_path.get(path, [])  # ordered by start line, GOID
        defs = [(d.goid, d.start_line, d.end_line) for d in in_file if d.kind != "module"]
        module = next((d.goid for d in in_file if d.kind == "module"), None)
        if f.new_path is None:  # the file is deleted: every definition in it
            for goid, start, end in defs:
                changed[goid] += end - start + 1
            continue
        lines, gaps = f.changed_lines(side)
        for first, last in [(line, line) for line in lines] + gaps:
            owner = innermost(defs, first, last) or module
            if owner is not None:
                changed[owner] += 1
    syms = graph.symbols_of(c.q, changed)
    groups = _groups(c, list(syms.values()))
    result = [Changed(syms[g], n, groups[g]) for g, n in changed.items() if g in syms]
    python = sum(1 for f in files if f.path.endswith((".py", ".pyi")))
    how = "; ".join(f"{n} files on the {k}" for k, n in sorted(matched.items()))
    source = f"git {ref}" if ref else "diff"
    return result, f"{source}: {len(files)} files ({python} Python)" + (f"; matched {how}" if how else "")


def innermost(defs: Sequence[tuple[str, int, int]], first: int, last: int) -> str | None:
    """The GOID of the smallest definition spanning lines `first` to `last` (None: module level)."""
    best: tuple[int, int, str] | None = None
    for goid, start, end in defs:
        if start <= first and last <= end:
            key = (end - start, -start, goid)
            if best is None or key < best:
                best = key
    return best[2] if best else None


def _sides(c: Call, files: list[FileDiff], ref: str | None, known: set[str]) -> dict[int, tuple[str, str]]:
    """Per file, the side of the diff the snapshot holds, and why (see the module docstring)."""
    root, commit = c.info.repo_root, c.info.commit
    blobs: dict[str, str] = {}
    if root is not None and root.is_dir() and commit and any(f.old_blob or f.new_blob for f in files):
        try:
            blobs = worktree.blobs_of_commit(root, commit, sorted(known), timeout=_git_time(c))
        except CodeIntelError as exc:
            logger.info("no blob ids for the diff's files: %s", exc)

    @functools.cache
    def fallback() -> tuple[str, str]:  # git runs only when blob ids do not decide
        if ref and root is not None and commit:
            if worktree.right_is_ancestor(root, ref, commit, timeout=_git_time(c)):
                return "new", "the snapshot contains the ref"
            return "old", "the snapshot does not contain the ref"
        return "old", "a diff against the snapshot"

    out: dict[int, tuple[str, str]] = {}
    for f in files:
        if f.new_path is None:
            out[id(f)] = ("old", "deleted file")
        elif f.old_path is None:
            out[id(f)] = ("new", "new file")
        elif f.new_blob and blobs.get(f.new_path, "-").startswith(f.new_blob):
            out[id(f)] = ("new", "blob ids")
        elif f.old_blob and blobs.get(f.old_path, "-").startswith(f.old_blob):
            out[id(f)] = ("old", "blob ids")
        else:
            out[id(f)] = fallback()
    return out
