"""Answers that look things up: `status`, `find_symbol`, `get_symbol`, `hotspots`,
`module_info`, `subsystems` and `describe`.

Every list is sorted by an explicit key ending in a unique column (GOID, module, path), floats
are rounded when rendered, and what a list leaves out is counted and named.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from codeintel.errors import CodeIntelError
from codeintel.serving import graph, symbols, worktree
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
    calls = q.first(
        "SELECT callers, callees, unresolved_calls, parent_goid FROM docs.symbols WHERE goid = ?", [s.goid]
    ) if not found.others else q.first(
        """SELECT (SELECT count(DISTINCT caller_goid) FROM graph.call_edges WHERE callee_goid IN (SELECT unnest($g::VARCHAR[]))),
                  (SELECT count(DISTINCT callee_goid) FROM graph.call_edges WHERE caller_goid IN (SELECT unnest($g::VARCHAR[]))),
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
    sub = q.first(
        "SELECT ss.name, ss.subsystem_id FROM analytics.subsystem_modules sm JOIN analytics.subsystems ss USING (subsystem_id) WHERE sm.module = ?",
        [s.module],
    )
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
    return _Source(data.decode("utf-8", "replace").splitlines(), problem)


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
    "complexity": "cyclomatic", "size": "loc", "fan_in": "call_fan_in", "pagerank": "pagerank", "betweenness": "betweenness",
}  # fmt: skip
_MODULE_METRICS = {
    "complexity": "ms.max_cyclomatic", "size": "ms.function_loc", "fan_in": "ms.import_fan_in",
    "pagerank": "ms.import_pagerank", "betweenness": "gm.betweenness",
}  # fmt: skip


def _scope(c: Call, scope: str | None) -> tuple[str, str, str]:
    """(SQL condition on `module`/`subsystem` columns, its parameter, a description)."""
    if not scope:
        return "TRUE", "", "the whole repository"
    sub = c.q.first("SELECT name, subsystem_id FROM analytics.subsystems WHERE name = ? OR subsystem_id = ?", [scope, scope])
    if sub:
        return "subsystem_id = $scope", sub[1], f"subsystem {sub[0]}"
    if c.q.scalar("SELECT count(*) FROM core.modules WHERE module = ? OR starts_with(module, ? || '.')", [scope, scope]):
        return "(module = $scope OR starts_with(module, $scope || '.'))", scope, f"module {scope} (and below)"
    near = [r[0] for r in c.q.rows(
        "SELECT name FROM (SELECT module AS name FROM core.modules UNION SELECT name FROM analytics.subsystems) "
        "ORDER BY jaro_winkler_similarity(lower(name), lower(?)) DESC, name LIMIT 5", [scope],
    )]  # fmt: skip
    raise CodeIntelError(f"scope {scope!r} is neither a module, a package nor a subsystem; nearest: {', '.join(near)}")


def hotspots(c: Call, metric: str, scope: str | None, level: str, limit: int | None) -> Answer:
    """The top functions (or modules) by a metric, in the repository, a package or a subsystem."""
    n = clamp_limit(limit)
    if metric == "churn":
        return Answer(
            "hotspots by churn: not available",
            [("why", "churn needs the git history steps, which this snapshot does not have")],
            notes=[f"metric: one of {', '.join(m for m in HOTSPOT_METRICS if m != 'churn')}"],
        )
    if metric not in _FUNCTION_METRICS:
        raise CodeIntelError(f"metric must be one of {', '.join(HOTSPOT_METRICS)}")
    if level not in ("function", "module"):
        raise CodeIntelError("level must be function or module")
    where, param, described = _scope(c, scope)
    params: dict[str, Any] = {"lim": n, "off": c.offset}
    if param:
        params["scope"] = param
    if level == "function":
        col = _FUNCTION_METRICS[metric]
        rows = c.q.rows(
            f"""SELECT full_name, path || ':' || start_line, {col}, cyclomatic, loc, call_fan_in, count(*) OVER ()
                FROM docs.v_function_summary WHERE {where} AND {col} IS NOT NULL
                ORDER BY {col} DESC, full_name, goid LIMIT $lim OFFSET $off""",
            params,
        )
        columns: tuple[str, ...] = ("#", "name", "at", metric, "cc", "loc", "fan-in")
        brief: tuple[str, ...] = ("#", "name", metric)
    else:
        col = _MODULE_METRICS[metric]
        rows = c.q.rows(
            f"""SELECT ms.module, ms.path, {col}, ms.max_cyclomatic, ms.function_loc, ms.import_fan_in, count(*) OVER ()
                FROM docs.v_module_summary ms LEFT JOIN analytics.graph_metrics_modules gm USING (module)
                WHERE {where.replace('module', 'ms.module').replace('subsystem_id', 'ms.subsystem_id')} AND {col} IS NOT NULL
                ORDER BY {col} DESC, ms.module, ms.path LIMIT $lim OFFSET $off""",
            params,
        )
        columns = ("#", "module", "path", metric, "max cc", "function loc", "importers")
        brief = ("#", "module", metric)
    total = int(rows[0][-1]) if rows else 0
    table = [(c.offset + i, *r[:-1]) for i, r in enumerate(rows, start=1)]
    section = Section("hotspots", columns, table, total=total, offset=c.offset, brief=brief, pageable=True)
    return Answer(f"hotspots by {metric} ({level}s) in {described}: {total}", [], [section])


# ------------------------------------------------------------------------------------- module_info


def _resolve_module(c: Call, text: str) -> tuple[str | None, list[str]]:
    text = text.strip()
    found = c.q.first("SELECT module FROM core.modules WHERE module = ? OR path = ? ORDER BY module = ? DESC LIMIT 1", [text, text, text])
    if found:
        return found[0], []
    like = c.q.rows("SELECT module FROM core.modules WHERE ends_with(module, '.' || ?) ORDER BY module LIMIT 20", [text])
    if len(like) == 1:
        return like[0][0], []
    if like:
        return None, [r[0] for r in like]
    near = c.q.rows("SELECT module FROM core.modules ORDER BY jaro_winkler_similarity(lower(module), lower(?)) DESC, module LIMIT 5", [text])
    return None, [r[0] for r in near]


def module_info(c: Call, module: str, limit: int | None) -> Answer:
    """A module's imports and importers, cycle, layer, subsystem and main functions."""
    text, n = module, clamp_limit(limit, 10, 100)
    resolved, others = _resolve_module(c, text)
    if resolved is None:
        what = "is ambiguous; candidates" if others and all(o.endswith("." + text.strip()) for o in others) else "is not a module here; nearest"
        return Answer(f"module_info: {text!r} {what}: {', '.join(others) or 'none'}", [])
    module = resolved
    q = c.q
    # the module's own rows, filtered first (docs.v_module_summary would aggregate every module)
    m = q.first(
        """SELECT mo.path, mo.is_package, f.size,
                  (SELECT kind FROM core.parse_errors WHERE path = mo.path AND step = 'ast_ingest' LIMIT 1),
                  gm.fan_in, gm.fan_out, gm.pagerank, il.in_cycle, il.cycle_id, il.layer,
                  (SELECT ss.name FROM analytics.subsystem_modules sm JOIN analytics.subsystems ss USING (subsystem_id)
                   WHERE sm.module = mo.module)
           FROM core.modules mo LEFT JOIN core.files f ON f.path = mo.path
           LEFT JOIN analytics.graph_metrics_modules gm ON gm.module = mo.module
           LEFT JOIN graph.import_layers il ON il.module = mo.module
           WHERE mo.module = ? ORDER BY mo.path LIMIT 1""",
        [module],
    )
    assert m is not None
    path, is_pkg, size, perr, fan_in, fan_out, pr, in_cycle, cycle_id, layer, subsystem = m
    counts = q.first(
        """SELECT count(*) FILTER (WHERE kind = 'class'), count(*) FILTER (WHERE kind = 'function'),
                  count(*) FILTER (WHERE kind = 'method') FROM docs.symbols WHERE path = ?""",
        [path],
    ) or (0, 0, 0)
    classes, functions, methods = counts
    floc, avg_cc, max_cc, typed, docs = q.first(
        """SELECT sum(loc), avg(cyclomatic), max(cyclomatic),
                  avg(CASE typedness WHEN 'full' THEN 1.0 WHEN 'partial' THEN 0.5 ELSE 0.0 END),
                  avg(CASE WHEN has_docstring THEN 1.0 ELSE 0.0 END)
           FROM analytics.function_metrics WHERE path = ?""",
        [path],
    ) or (None, None, None, None, None)
    facts: list[tuple[str, Any]] = [
        ("path", f"{path}{' (package)' if is_pkg else ''}, {size} bytes" + (f", parse error: {perr}" if perr else "")),
        ("defines", f"{classes} classes, {functions} functions, {methods} methods; {floc or 0} lines in functions"),
        ("quality", f"cyclomatic avg {avg_cc or 0:.3g} max {max_cc or 0}; typedness {typed or 0:.2f}; docstrings {docs or 0:.2f}"),
        ("imports", f"fan-in {fan_in}, fan-out {fan_out}, pagerank {pr if pr is None else round(pr, 6)}; layer {layer}"),
        ("subsystem", subsystem or "none"),
    ]
    external = q.rows(
        """SELECT split_part(imported_module, '.', 1) AS pkg, count(*) FROM graph.import_edges
           WHERE src_module = ? AND target_kind <> 'internal' GROUP BY 1 ORDER BY 2 DESC, 1""",
        [module],
    )
    if external:
        facts.append(("external imports", ", ".join(f"{p} ({n})" for p, n in external[:12]) + (f" (+{len(external) - 12})" if len(external) > 12 else "")))
    sections = []
    imports = q.rows(
        """SELECT dst_module, count(*) AS names, min(line), bool_and(is_type_checking) FROM graph.import_edges
           WHERE src_module = ? AND target_kind = 'internal' AND dst_module <> src_module GROUP BY 1 ORDER BY 1""",
        [module],
    )
    sections.append(Section("imports (internal)", ("module", "names", "first line", "type-checking only"), imports[:n], total=len(imports),
                            brief=("module",), more=f"sql: SELECT * FROM graph.import_edges WHERE src_module = '{module}'"))
    importers = q.rows(
        """SELECT src_module, count(*), bool_and(is_type_checking) FROM graph.import_edges
           WHERE dst_module = ? AND target_kind = 'internal' AND src_module <> dst_module GROUP BY 1 ORDER BY 1""",
        [module],
    )
    sections.append(Section("imported by", ("module", "names", "type-checking only"), importers[:n], total=len(importers),
                            brief=("module",), more=f"sql: SELECT * FROM graph.import_edges WHERE dst_module = '{module}'"))
    if in_cycle and cycle_id:
        members = q.rows("SELECT module FROM graph.import_layers WHERE cycle_id = ? ORDER BY module", [cycle_id])
        facts.append(("import cycle", f"{len(members)} modules"))
        sections.append(Section("import cycle", ("module",), members[:n], total=len(members),
                                more=f"sql: SELECT module FROM graph.import_layers WHERE cycle_id = '{cycle_id}'"))
    main = q.rows(
        """SELECT s.full_name, s.kind, s.start_line, s.cyclomatic, gm.fan_in, gm.pagerank, count(*) OVER ()
           FROM docs.symbols s LEFT JOIN analytics.graph_metrics_functions gm USING (goid)
           WHERE s.module = ? AND s.kind IN ('function', 'method')
           ORDER BY gm.pagerank DESC NULLS LAST, gm.fan_in DESC NULLS LAST, s.full_name, s.goid LIMIT ?""",
        [module, n],
    )
    total_funcs = int(main[0][-1]) if main else 0
    main = [r[:-1] for r in main]
    sections.append(Section("main functions (by pagerank)", ("name", "kind", "line", "cc", "fan-in", "pagerank"), main, total=total_funcs,
                            brief=("name", "fan-in"), more=f"hotspots scope={module}"))  # fmt: skip
    return Answer(f"module {module}", facts, sections)


# -------------------------------------------------------------------------------------- subsystems


def subsystems(c: Call, name: str | None, limit: int | None) -> Answer:
    """The subsystem map, or one subsystem's modules and boundary edges."""
    q, n = c.q, clamp_limit(limit)
    if not name:
        rows = q.rows(
            """WITH funcs AS (
                   SELECT sm.subsystem_id, count(*) AS functions FROM analytics.subsystem_modules sm
                   JOIN docs.symbols s ON s.module = sm.module AND s.kind IN ('function', 'method') GROUP BY 1
               )
               SELECT ss.name, ss.subsystem_id, ss.module_count, coalesce(f.functions, 0), ss.edges_in, ss.edges_out,
                      ss.dominant_package, count(*) OVER ()
               FROM analytics.subsystems ss LEFT JOIN funcs f USING (subsystem_id)
               ORDER BY ss.module_count DESC, ss.name, ss.subsystem_id LIMIT ? OFFSET ?""",
            [n, c.offset],
        )
        total = int(rows[0][-1]) if rows else 0
        section = Section(
            "subsystems", ("name", "id", "modules", "functions", "edges in", "edges out", "main package"),
            [r[:-1] for r in rows], total=total, offset=c.offset, brief=("name", "modules"), pageable=True,
        )  # fmt: skip
        return Answer(f"subsystems: {total}", [], [section], ["subsystems NAME: one subsystem's modules and boundary edges"])
    s = q.first(
        """SELECT ss.subsystem_id, ss.name, ss.dominant_package, ss.module_count, ss.internal_edge_count, ss.edges_in,
                  ss.edges_out,
                  (SELECT count(*) FROM analytics.subsystem_modules sm JOIN docs.symbols y ON y.module = sm.module
                   WHERE sm.subsystem_id = ss.subsystem_id AND y.kind IN ('function', 'method')),
                  (SELECT avg(y.cyclomatic) FROM analytics.subsystem_modules sm JOIN docs.symbols y ON y.module = sm.module
                   WHERE sm.subsystem_id = ss.subsystem_id AND y.kind IN ('function', 'method'))
           FROM analytics.subsystems ss WHERE ss.name = ? OR ss.subsystem_id = ? ORDER BY ss.subsystem_id LIMIT 1""",
        [name, name],
    )
    if s is None:
        near = [r[0] for r in q.rows("SELECT name FROM analytics.subsystems ORDER BY jaro_winkler_similarity(lower(name), lower(?)) DESC, name LIMIT 5", [name])]
        return Answer(f"subsystems: no subsystem {name!r}", [("nearest names", ", ".join(near) or "none")])
    sid, sname, pkg, n_mod, internal, e_in, e_out, funcs, avg_cc = s
    facts = [
        ("id", sid), ("main package", pkg or "none"), ("size", f"{n_mod} modules, {funcs} functions, avg cyclomatic {avg_cc or 0:.3g}"),
        ("edges", f"{internal} inside, {e_in} in, {e_out} out"),
    ]  # fmt: skip
    members = q.rows(
        """WITH inside AS (SELECT module, is_isolated FROM analytics.subsystem_modules WHERE subsystem_id = $sid),
           funcs AS (SELECT s.module, count(*) AS n FROM docs.symbols s JOIN inside USING (module)
                     WHERE s.kind IN ('function', 'method') GROUP BY 1)
           SELECT i.module, coalesce(f.n, 0), il.layer, i.is_isolated, count(*) OVER ()
           FROM inside i LEFT JOIN funcs f USING (module) LEFT JOIN graph.import_layers il USING (module)
           ORDER BY i.module LIMIT $n OFFSET $off""",
        {"sid": sid, "n": n, "off": c.offset},
    )
    boundary = q.rows(
        """WITH inside AS (SELECT module FROM analytics.subsystem_modules WHERE subsystem_id = $sid)
           SELECT CASE WHEN src_module IN (SELECT module FROM inside) THEN 'out' ELSE 'in' END AS way, kind,
                  src_module, dst_module, edges
           FROM docs.module_edges
           WHERE (src_module IN (SELECT module FROM inside)) <> (dst_module IN (SELECT module FROM inside))
           ORDER BY edges DESC, way, kind, src_module, dst_module""",
        {"sid": sid},
    )
    total = int(members[0][-1]) if members else 0
    sections = [
        Section("modules", ("module", "functions", "layer", "isolated"), [r[:-1] for r in members], total=total, offset=c.offset,
                brief=("module",), pageable=True),
        Section("boundary edges (module pairs, most first)", ("way", "kind", "from", "to", "edges"), boundary[:n], total=len(boundary),
                brief=("way", "from", "to", "edges"), more="sql over graph.import_edges / docs.v_call_graph_enriched for all"),
    ]  # fmt: skip
    return Answer(f"subsystem {sname}", facts, sections)


# ---------------------------------------------------------------------------------------- describe

DESCRIPTIONS = {
    "docs.v_function_summary": "one row per function and method: names, path, lines, metrics (loc, cyclomatic, typedness, ...), call fan-in/out, pagerank, betweenness, subsystem",
    "docs.v_module_summary": "one row per module: size, counts of classes/functions/methods, complexity, typedness, parse error, import fan-in/out, cycle, layer, subsystem",
    "docs.v_call_graph_enriched": "one row per call edge: caller and callee names, kinds and paths, call site, resolution, confidence, callee metrics",
    "docs.v_subsystem_summary": "one row per subsystem: name, modules, edges in/out, functions and their complexity",
    "docs.v_unresolved_calls": "one row per call site the call graph could not resolve, with the name it calls",
    "docs.unresolved_names": "per called name: unresolved call sites calling it, and their distinct callers",
    "docs.module_edges": "module to module: internal imports (outside TYPE_CHECKING) and resolved calls, with counts",
    "docs.symbols": "one row per module, class, function and method: full_name, path, lines, is_test, callers, callees, cyclomatic, loc",
    "core.goids": "one row per entity: GOID (stable id), URN, path, module, kind, qualname, lines",
    "core.files": "one row per .py file: size, hash, tracked, skip reason",
    "core.modules": "one row per module: import name, path, package",
    "core.ast_nodes": "one row per definition: qualname, kind, spans, decorators, docstring",
    "core.parse_errors": "files a step could not use, and why",
    "analytics.function_metrics": "per function: loc, sloc, cyclomatic, nesting, parameters, typedness, returns/raises",
    "graph.call_edges": "per call site and target: caller/callee GOIDs and names, kind, resolution, confidence, path/line",
    "graph.import_edges": "per imported name: source module, destination module, target kind (internal/stdlib/third_party), line",
    "graph.import_layers": "per module: import cycle id and size, layer",
    "analytics.graph_metrics_functions": "per function: fan-in/out, pagerank, betweenness, closeness, cycle, layer",
    "analytics.graph_metrics_modules": "per module (import graph): fan-in/out, pagerank, betweenness, cycle, layer",
    "analytics.subsystems": "per subsystem: name, main package, module count, edges",
    "analytics.subsystem_modules": "per module: its subsystem",
    "meta.pipeline_runs": "per pipeline run: mode, repo, commit, times, status",
    "meta.step_status": "per step: last attempt, last good run and commit, stale or not and why",
}
EXAMPLES = {
    "docs.v_function_summary": "SELECT full_name, path, start_line, cyclomatic FROM docs.v_function_summary ORDER BY cyclomatic DESC, goid LIMIT 10",
    "docs.v_call_graph_enriched": "SELECT caller, callsite_path, callsite_line, confidence FROM docs.v_call_graph_enriched WHERE callee = 'pkg.mod.func' ORDER BY ALL",
    "docs.v_module_summary": "SELECT module, import_fan_in, import_layer FROM docs.v_module_summary ORDER BY import_fan_in DESC, module LIMIT 10",
    "docs.symbols": "SELECT full_name, kind, callers FROM docs.symbols WHERE is_test = false ORDER BY callers DESC, goid LIMIT 10",
}


def describe(c: Call, name: str | None) -> Answer:
    """The docs views and main tables with their columns, or one of them in detail."""
    q = c.q
    objects = q.rows(
        """SELECT schema_name || '.' || view_name, 'view' FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'docs'
           UNION ALL SELECT schema_name || '.' || table_name, 'table' FROM duckdb_tables() WHERE database_name = current_database()
           ORDER BY 1"""
    )
    kinds = dict(objects)
    if not name:
        rows = []
        for obj in [o for o in kinds if o.startswith("docs.")] + [o for o in DESCRIPTIONS if not o.startswith("docs.") and o in kinds]:
            cols = [r[0] for r in q.rows(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND schema_name || '.' || table_name = ? ORDER BY column_index",
                [obj],
            )]  # fmt: skip
            rows.append((obj, kinds[obj], DESCRIPTIONS.get(obj, ""), ", ".join(cols)))
        section = Section("views and tables", ("name", "kind", "what", "columns"), rows, brief=("name", "what"))
        return Answer("what the sql tool can read (read-only; one SELECT)", [], [section], ["describe NAME: one view's columns and types, with an example"])
    if name not in kinds:
        near = [o for o in kinds if name.lower() in o.lower()] or sorted(kinds, key=lambda o: (o.split(".")[-1] != name, o))[:5]
        return Answer(f"describe: no view or table {name!r}", [("known", ", ".join(near[:8]))])
    cols = q.rows(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND schema_name || '.' || table_name = ? ORDER BY column_index",
        [name],
    )
    facts: list[tuple[str, Any]] = [("kind", kinds[name]), ("what", DESCRIPTIONS.get(name, "-"))]
    if name in EXAMPLES:
        facts.append(("example", EXAMPLES[name]))
    return Answer(f"{name}", facts, [Section("columns", ("column", "type"), cols)])
