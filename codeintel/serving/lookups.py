"""Answers that look things up: `status`, `find_symbol`, `get_symbol` and `hotspots`.

Every list is sorted by an explicit key ending in a unique column (GOID, module, path), floats
are rounded when rendered, and what a list leaves out is counted and named.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import duckdb

from codeintel.errors import CodeIntelError
from codeintel.ingestion.source_text import python_lines
from codeintel.serving import graph, index, symbols, worktree
from codeintel.serving.calls import Call, miss_answer, one_line, others_note
from codeintel.serving.render import Answer, Section, clamp_limit
from codeintel.serving.snapshot import SnapshotInfo
from codeintel.serving.symbols import Lookup, Symbol

SOURCE_DEFAULT_LINES = 60
SOURCE_MAX_LINES = 400
DOC_CHARS = 600
HOTSPOT_METRICS = ("complexity", "size", "fan_in", "pagerank", "betweenness", "churn")


# ------------------------------------------------------------------------------------------ status

def status(c: Call) -> Answer:
    """Repository, commit, build, row counts, per-step freshness and how far the checkout is ahead."""
    info, q = c.info, c.q
    run = q.first(
        "SELECT mode, status, started_at, finished_at, error FROM meta.pipeline_runs WHERE run_id = ?", [info.run_id]
    )
    counts = dict(q.rows(_COUNTS_SQL))
    kinds = dict(q.rows("SELECT kind, count(*) FROM core.goids GROUP BY 1"))
    tests = q.scalar("SELECT count(*) FROM docs.symbols WHERE is_test") if "docs.symbols" not in info.missing else None
    took = (run[3] - run[2]).total_seconds() if run and run[3] and run[2] else None
    facts: list[tuple[str, Any]] = [
        ("repo", f"{info.repo} ({info.repo_root})"),
        ("commit", info.commit or "none (not a git checkout)"),
        ("built", f"{info.built_at}, run {info.run_id} ({run[0]}, {run[1]}{f', {took:.1f} s' if took else ''})" if run else info.built_at),
        ("symbols", f"{sum(kinds.values())}: " + ", ".join(f"{k} {kinds[k]}" for k in sorted(kinds)) + (f"; {tests} test functions" if tests is not None else "")),
        ("rows", ", ".join(f"{name} {counts.get(name, 0)}" for name in _COUNTED)),
    ]  # fmt: skip
    if run and run[4]:
        facts.append(("run error", one_line(run[4])[:300]))
    state = worktree.worktree_state(info.repo_root, info.commit)
    facts.append(("working tree", worktree_line(state, info)))
    steps = q.rows(
        "SELECT step, last_status, stale, last_success_run_id, last_success_commit, "
        "coalesce(stale_reason, CASE WHEN stale THEN last_error END) FROM meta.step_status ORDER BY position"
    )
    sections = [
        Section(
            "steps", ("step", "last", "stale", "last good run", "commit", "why stale"),
            [(s, st, stale, r, (cm or "")[:12] or None, why) for s, st, stale, r, cm, why in steps],
            brief=("step", "last", "stale"),
        )
    ]  # fmt: skip
    changed = [(p, "changed") for p in state.changed] + [(p, "untracked") for p in state.untracked]
    if changed:
        sections.append(Section("files changed since the snapshot", ("path", "how"), changed[:50], total=len(changed)))
    if info.missing:
        facts.append(("missing", f"{', '.join(info.missing)}: re-export with this CodeIntel to serve every tool"))
    return Answer(f"status of {info.repo}", facts, sections)


def worktree_line(state: worktree.WorktreeState, info: SnapshotInfo) -> str:
    if state.error:
        return f"unknown: {state.error}"
    head = (state.head or "?")[:12]
    if state.commits_ahead is None:
        ahead = f"HEAD {head} does not contain the snapshot's commit {info.short_commit}"
    elif state.commits_ahead == 0:
        ahead = f"HEAD {head} is the snapshot's commit"
    else:
        ahead = f"HEAD {head} is {state.commits_ahead} commits ahead of the snapshot"
    files = f"{len(state.changed)} .py files changed since the snapshot, {len(state.untracked)} untracked"
    fresh = "" if state.changed or state.untracked or state.commits_ahead else " (the snapshot is current)"
    return f"{ahead}; {files}{fresh}"


_COUNTED = (
    "core.files", "core.modules", "core.parse_errors", "graph.call_edges", "graph.import_edges",
    "analytics.function_metrics", "analytics.subsystems",
)  # fmt: skip
_COUNTS_SQL = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in _COUNTED)


# ------------------------------------------------------------------------------------- find_symbol


def find_symbol(c: Call, name: str, match: str, kind: str, limit: int | None) -> Answer:
    """Symbols matching a name exactly, by prefix or fuzzily; best match first, then most called."""
    if match not in symbols.MATCHES:
        raise CodeIntelError(f"match must be one of {', '.join(symbols.MATCHES)}")
    wanted = None if kind in ("any", "") else kind
    if wanted is not None and wanted not in symbols.KINDS:
        raise CodeIntelError(f"kind must be any or one of {', '.join(symbols.KINDS)}")
    found = symbols.search(c.q, name.strip(), match, wanted, clamp_limit(limit), c.offset)
    if not found.total:
        near = symbols.nearest_names(c.q, name)
        what = f"{wanted or 'symbol'} matches" if match == "auto" else f"{wanted or 'symbol'} matches {match}"
        return Answer(f"find_symbol {name!r}: no {what}", [("nearest names", ", ".join(near) or "none")])
    rows = [(k, full, at, cc, callers, goid[:12]) for k, full, at, cc, callers, goid in found.rows]
    section = Section(
        "symbols", ("kind", "name", "at", "cc", "callers", "goid"), rows, total=found.total, offset=c.offset,
        brief=("kind", "name", "at"), pageable=True,
    )  # fmt: skip
    how = f" (no exact match; {found.match} matches)" if match == "auto" and found.match != "exact" else ""
    return Answer(f"find_symbol {name!r}: {found.total} {found.match} matches{how}", [], [section])


# -------------------------------------------------------------------------------------- get_symbol


def get_symbol(c: Call, symbol: str, source_lines: int | None) -> Answer:
    """One symbol's card: signature, docstring, span, metrics, graph metrics, subsystem, calls, source."""
    found = symbols.resolve(c.q, symbol)
    if found.symbol is None:
        return miss_answer("get_symbol", found)
    return _symbol_card(c, found, clamp_limit(source_lines, SOURCE_DEFAULT_LINES, SOURCE_MAX_LINES))


def _symbol_card(c: Call, found: Lookup, max_lines: int) -> Answer:
    s = found.symbol
    assert s is not None
    q = c.q
    facts: list[tuple[str, Any]] = [("kind", s.kind), ("goid", s.goid), ("at", f"{s.at} ({s.end_line - s.start_line + 1} lines)")]
    node = q.first(  # (path, qualname, start line) is the definition's: no join with core.goids needed
        "SELECT def_line, decorators, docstring FROM core.ast_nodes WHERE path = ? AND qualname = ? AND start_line = ? "
        "ORDER BY ordinal LIMIT 1",
        [s.path, s.qualname, s.start_line],
    )
    source = _read_source(c, s)
    if node and node[1]:
        facts.append(("decorators", ", ".join("@" + d for d in node[1])))
    if source.lines and node and s.kind != "module":
        facts.append(("signature", _signature(source.lines, s.start_line, node[0])))
    if node and node[2]:
        doc = one_line(node[2])
        facts.append(("docstring", doc if len(doc) <= DOC_CHARS else f"{doc[:DOC_CHARS]}… (+{len(doc) - DOC_CHARS} chars)"))
    # calls may have been resolved to any definition of the name (overloads): count over all
    facts_of = q.index.facts[s.goid]
    calls = (s.callers, facts_of.callees, facts_of.unresolved_calls, facts_of.parent_goid) if not found.others else q.first(
        """SELECT (SELECT count(DISTINCT caller_goid) FROM graph.call_edges_merged WHERE callee_goid IN (SELECT unnest($g::VARCHAR[]))),
                  (SELECT count(DISTINCT callee_goid) FROM graph.call_edges_merged WHERE caller_goid IN (SELECT unnest($g::VARCHAR[]))),
                  (SELECT sum(unresolved_calls) FROM docs.symbols WHERE goid IN (SELECT unnest($g::VARCHAR[]))),
                  (SELECT parent_goid FROM docs.symbols WHERE goid = $s)""",
        {"g": found.goids, "s": s.goid},
    )
    if calls:
        every = " (all definitions of the name)" if found.others else ""
        facts.append(("calls", f"{calls[0]} callers, {calls[1]} callees, {calls[2] or 0} unresolved call sites inside{every}"))
        parent = graph.symbols_of(q, [calls[3]]).get(calls[3]) if calls[3] else None
        if parent is not None:
            facts.append(("parent", f"{parent.kind} {parent.full_name}"))
    metrics = q.first(
        "SELECT loc, sloc, cyclomatic, max_nesting_depth, param_count, typedness, has_docstring, return_count, "
        "raise_count, yield_count, await_count, is_async FROM analytics.function_metrics WHERE goid = ?",
        [s.goid],
    )
    if metrics:
        loc, sloc, cc, nest, params, typed, _doc, ret, rai, yie, awa, is_async = metrics
        facts.append((
            "metrics",
            f"loc {loc}, sloc {sloc}, cyclomatic {cc}, nesting {nest}, params {params}, typed {typed}, "
            f"returns {ret}, raises {rai}, yields {yie}, awaits {awa}{', async' if is_async else ''}",
        ))  # fmt: skip
    gm = q.first(  # of the definition the call graph links to most
        "SELECT fan_in, fan_out, pagerank, betweenness, in_cycle, cycle_size, layer FROM analytics.graph_metrics_functions "
        "WHERE goid IN (SELECT unnest(?::VARCHAR[])) ORDER BY fan_in + fan_out DESC, goid = ? DESC, goid LIMIT 1",
        [found.goids, s.goid],
    )
    if gm:
        cycle = f", in a call cycle of {gm[5]}" if gm[4] else ""
        facts.append(("graph", f"fan-in {gm[0]}, fan-out {gm[1]}, pagerank {gm[2]:.4g}, betweenness {gm[3]:.4g}, layer {gm[6]}{cycle}"))
    sub = q.index.subsystem_of.get(s.module)
    facts.append(("module", s.module + (f" (subsystem {sub[0]})" if sub else "")))
    if s.is_test:
        facts.append(("test", "yes: a test function"))
    sections = []
    if s.kind == "class":
        members = q.rows(
            "SELECT s.name, s.kind, s.start_line || '-' || s.end_line, s.cyclomatic, s.callers FROM docs.symbols s "
            "WHERE s.parent_goid = ? ORDER BY s.start_line, s.goid",
            [s.goid],
        )
        sections.append(Section("members", ("name", "kind", "lines", "cc", "callers"), members, brief=("name", "kind")))
    notes = others_note(found)
    if source.problem:
        notes.append(source.problem)
    if source.lines:
        first, last = s.start_line, min(s.end_line, s.start_line + max_lines - 1)
        shown = [(n, source.lines[n - 1]) for n in range(first, min(last, len(source.lines)) + 1)]
        rest = s.end_line - first + 1 - len(shown)
        more = f"get_symbol with source_lines up to {SOURCE_MAX_LINES}, or read {s.path}" if rest > 0 else None
        sections.append(Section(f"source {s.path}", ("line", "text"), shown, total=s.end_line - first + 1, style="lines", more=more))
    return Answer(f"{s.kind} {s.full_name}", facts, sections, notes)


@dataclass
class _Source:
    lines: list[str]
    problem: str | None


def _read_source(c: Call, s: Symbol) -> _Source:
    """The file's lines now, and whether they may not be the snapshot's."""
    root = c.info.repo_root
    if root is None:
        return _Source([], "source unavailable: the snapshot does not say where the repository is (start the server with --repo)")
    path = root / _fs_path(s.path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _Source([], f"source unavailable: {path} cannot be read ({exc.strerror}); start the server with --repo")
    stored = c.q.scalar("SELECT hash FROM core.files WHERE path = ?", [s.path])
    problem = None
    if stored is not None and hashlib.blake2b(data, digest_size=16).hexdigest() != stored:
        problem = f"{s.path} changed since the snapshot: the source shown is the file now, its lines may not match the span"
    # its lines as the spans count them: not `str.splitlines`, which also splits at a form feed
    # or a U+2028 in a comment or string, shifting every line after it
    return _Source(python_lines(data), problem)


def _fs_path(stored: str) -> str:
    if "\\u" not in stored:
        return stored
    from codeintel.storage.text import fs_path  # pyarrow: only for the rare escaped path

    return fs_path(stored)


def _signature(lines: list[str], start: int, def_line: int | None) -> str:
    """The `def`/`class` header from the source, up to the `:` that ends it (outside brackets,
    strings and comments), on one line."""
    first = (def_line or start) - 1
    text = "\n".join(lines[first : first + 40])
    depth, quote, i = 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif ch in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else ch
            i += len(quote)
            continue
        elif ch == "#":
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
            continue
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == ":" and depth == 0:
            return " ".join(text[:i].split()).replace("( ", "(").replace(" )", ")")[:400]
        i += 1
    return " ".join(lines[first].split())[:400] if first < len(lines) else ""


# ---------------------------------------------------------------------------------------- hotspots

_FUNCTION_METRICS = {
    "complexity": "f.cyclomatic", "size": "f.loc", "fan_in": "f.call_fan_in", "pagerank": "f.pagerank",
    "betweenness": "f.betweenness", "churn": "h.churn_365d",
}  # fmt: skip
_MODULE_METRICS = {
    "complexity": "ms.max_cyclomatic", "size": "ms.function_loc", "fan_in": "ms.import_fan_in",
    "pagerank": "ms.import_pagerank", "betweenness": "gm.betweenness", "churn": "h.churn_365d",
}  # fmt: skip
# churn: lines added and deleted in the year before the snapshot's HEAD (analytics.function_history
# and analytics.file_history, made by the function_history step)
_CHURN_JOIN = {
    "function": "JOIN analytics.function_history h ON h.goid = f.goid",
    "module": "JOIN analytics.file_history h ON h.path = ms.path",
}


def _has_history(c: Call) -> bool:
    try:
        return bool(c.q.scalar("SELECT count(*) > 0 FROM analytics.function_history"))
    except duckdb.Error:  # a snapshot made before the history steps existed
        return False


@dataclass(frozen=True)
class _Scope:
    where: str  # SQL condition on `module`/`subsystem_id` columns
    param: str  # its parameter
    described: str

    def contains(self, module: str | None, subsystem_id: str | None) -> bool:
        """The condition in Python, on one row's module and subsystem."""
        if self.where == "TRUE":
            return True
        if self.where.startswith("subsystem_id"):
            return subsystem_id == self.param
        return module is not None and (module == self.param or module.startswith(self.param + "."))


def _scope(c: Call, scope: str | None) -> _Scope:
    """The rows `scope` selects: the whole repository, a subsystem, or a module and those below it."""
    if not scope:
        return _Scope("TRUE", "", "the whole repository")
    sub = c.q.first("SELECT name, subsystem_id FROM analytics.subsystems WHERE name = ? OR subsystem_id = ?", [scope, scope])
    if sub:
        return _Scope("subsystem_id = $scope", sub[1], f"subsystem {sub[0]}")
    if c.q.scalar("SELECT count(*) FROM core.modules WHERE module = ? OR starts_with(module, ? || '.')", [scope, scope]):
        return _Scope("(module = $scope OR starts_with(module, $scope || '.'))", scope, f"module {scope} (and below)")
    near = [r[0] for r in c.q.rows(
        "SELECT name FROM (SELECT module AS name FROM core.modules UNION SELECT name FROM analytics.subsystems) "
        "ORDER BY jaro_winkler_similarity(lower(name), lower(?)) DESC, name LIMIT 5", [scope],
    )]  # fmt: skip
    raise CodeIntelError(f"scope {scope!r} is neither a module, a package nor a subsystem; nearest: {', '.join(near)}")


def hotspots(c: Call, metric: str, scope: str | None, level: str, limit: int | None) -> Answer:
    """The top functions (or modules) by a metric, in the repository, a package or a subsystem."""
    n = clamp_limit(limit)
    if metric == "churn" and not _has_history(c):
        return Answer(
            "hotspots by churn: not available",
            [("why", "churn comes from the git history steps (function_history), which have not run for this snapshot")],
            notes=[
                "export without --select (or with --select function_history) to add them; "
                f"other metrics: {', '.join(m for m in HOTSPOT_METRICS if m != 'churn')}"
            ],
        )
    if metric not in HOTSPOT_METRICS:
        raise CodeIntelError(f"metric must be one of {', '.join(HOTSPOT_METRICS)}")
    if level not in ("function", "module"):
        raise CodeIntelError("level must be function or module")
    chosen = _scope(c, scope)
    where, param, described = chosen.where, chosen.param, chosen.described
    params: dict[str, Any] = {"lim": n, "off": c.offset}
    if param:
        params["scope"] = param
    ranking = c.q.index.hot_ranked if level == "function" and metric != "churn" else None
    if ranking is not None:  # from the snapshot's index, in the same order
        at = 1 + index.HOTSPOT_METRICS[metric]
        ranked = ranking[metric]
        if where != "TRUE":
            ranked = [r for r in ranked if chosen.contains(r[8], r[9])]
        rows = [(r[1], r[2], r[at], r[3], r[4], r[5], len(ranked)) for r in ranked[c.offset : c.offset + n]]
        columns: tuple[str, ...] = ("#", "name", "at", metric, "cc", "loc", "fan-in")
        brief: tuple[str, ...] = ("#", "name", metric)
    elif level == "function":
        col = _FUNCTION_METRICS[metric]
        rows = c.q.rows(
            f"""SELECT f.full_name, f.path || ':' || f.start_line, {col}, f.cyclomatic, f.loc, f.call_fan_in, count(*) OVER ()
                FROM docs.v_function_summary f {_CHURN_JOIN["function"] if metric == "churn" else ""}
                WHERE {where.replace("module", "f.module").replace("subsystem_id", "f.subsystem_id")} AND {col} IS NOT NULL
                ORDER BY {col} DESC, f.full_name, f.goid LIMIT $lim OFFSET $off""",
            params,
        )
        columns = ("#", "name", "at", "churn 365d" if metric == "churn" else metric, "cc", "loc", "fan-in")
        brief = ("#", "name", columns[3])
    else:
        col = _MODULE_METRICS[metric]
        rows = c.q.rows(
            f"""SELECT ms.module, ms.path, {col}, ms.max_cyclomatic, ms.function_loc, ms.import_fan_in, count(*) OVER ()
                FROM docs.v_module_summary ms LEFT JOIN analytics.graph_metrics_modules gm USING (module)
                {_CHURN_JOIN["module"] if metric == "churn" else ""}
                WHERE {where.replace('module', 'ms.module').replace('subsystem_id', 'ms.subsystem_id')} AND {col} IS NOT NULL
                ORDER BY {col} DESC, ms.module, ms.path LIMIT $lim OFFSET $off""",
            params,
        )
        columns = ("#", "module", "path", "churn 365d" if metric == "churn" else metric, "max cc", "function loc", "importers")
        brief = ("#", "module", columns[3])
    total = int(rows[0][-1]) if rows else 0
    table = [(c.offset + i, *r[:-1]) for i, r in enumerate(rows, start=1)]
    section = Section("hotspots", columns, table, total=total, offset=c.offset, brief=brief, pageable=True)
    return Answer(f"hotspots by {metric} ({level}s) in {described}: {total}", [], [section])
