"""Answers about the repository's structure: `module_info`, `subsystems` and `describe`.

Each reads the module's or subsystem's own rows (never a view that aggregates every module per
call), lists in an explicit order ending in a unique column, and names what it leaves out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from codeintel.serving.calls import Call
from codeintel.serving.render import Answer, Section, clamp_limit
from codeintel.serving.symbols import Symbol

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
    index = q.index
    kinds = Counter(s.kind for s in index.by_path.get(path, ()))
    classes, functions, methods = kinds["class"], kinds["function"], kinds["method"]
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
    main, total_funcs = _main_functions(c, module, n)
    sections.append(Section("main functions (by pagerank)", ("name", "kind", "line", "cc", "fan-in", "pagerank"), main, total=total_funcs,
                            brief=("name", "fan-in"), more=f"hotspots scope={module}"))  # fmt: skip
    return Answer(f"module {module}", facts, sections)


def _main_functions(c: Call, module: str, n: int) -> tuple[list[tuple[Any, ...]], int]:
    """The module's `n` functions and methods of most pagerank (then fan-in, name, GOID), and how many it has."""
    index = c.q.index
    graph = index.function_graph
    if graph is None:  # the index's extras are not loaded yet
        rows = c.q.rows(
            """SELECT s.full_name, s.kind, s.start_line, s.cyclomatic, gm.fan_in, gm.pagerank, count(*) OVER ()
               FROM docs.symbols s LEFT JOIN analytics.graph_metrics_functions gm USING (goid)
               WHERE s.module = ? AND s.kind IN ('function', 'method')
               ORDER BY gm.pagerank DESC NULLS LAST, gm.fan_in DESC NULLS LAST, s.full_name, s.goid LIMIT ?""",
            [module, n],
        )
        return [r[:-1] for r in rows], int(rows[0][-1]) if rows else 0
    funcs = [(s, *graph.get(s.goid, (None, None))) for s in index.by_module.get(module, ()) if s.kind in ("function", "method")]
    funcs.sort(key=lambda t: (t[2] is None, -t[2] if t[2] is not None else 0, t[1] is None, -t[1] if t[1] is not None else 0, t[0].full_name, t[0].goid))
    rows = [(s.full_name, s.kind, s.start_line, index.facts[s.goid].cyclomatic, fan_in, pagerank) for s, fan_in, pagerank in funcs[:n]]
    return rows, len(funcs)


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
                  ss.edges_out
           FROM analytics.subsystems ss WHERE ss.name = ? OR ss.subsystem_id = ? ORDER BY ss.subsystem_id LIMIT 1""",
        [name, name],
    )
    if s is None:
        near = [r[0] for r in q.rows("SELECT name FROM analytics.subsystems ORDER BY jaro_winkler_similarity(lower(name), lower(?)) DESC, name LIMIT 5", [name])]
        return Answer(f"subsystems: no subsystem {name!r}", [("nearest names", ", ".join(near) or "none")])
    sid, sname, pkg, n_mod, internal, e_in, e_out = s
    # functions and methods of its modules, from the index (one row per module membership, as a join would)
    functions = _functions_by_module(c, [m for (m,) in q.rows("SELECT module FROM analytics.subsystem_modules WHERE subsystem_id = ?", [sid])])
    every = [f for found in functions.values() for f in found]
    funcs = len(every)
    known = [cc for f in every if (cc := q.index.facts[f.goid].cyclomatic) is not None]
    avg_cc = sum(known) / len(known) if known else None
    facts = [
        ("id", sid), ("main package", pkg or "none"), ("size", f"{n_mod} modules, {funcs} functions, avg cyclomatic {avg_cc or 0:.3g}"),
        ("edges", f"{internal} inside, {e_in} in, {e_out} out"),
    ]  # fmt: skip
    members = [
        (module, len(functions.get(module, ())), layer, isolated, total)
        for module, layer, isolated, total in q.rows(
            """SELECT i.module, il.layer, i.is_isolated, count(*) OVER ()
               FROM analytics.subsystem_modules i LEFT JOIN graph.import_layers il USING (module)
               WHERE i.subsystem_id = $sid ORDER BY i.module LIMIT $n OFFSET $off""",
            {"sid": sid, "n": n, "off": c.offset},
        )
    ]
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


def _functions_by_module(c: Call, modules: list[str]) -> dict[str, list[Symbol]]:
    """The functions and methods of each of `modules` (a module listed twice counts twice)."""
    by_module = c.q.index.by_module
    out: dict[str, list[Symbol]] = {}
    for module in modules:
        found = [s for s in by_module.get(module, ()) if s.kind in ("function", "method")]
        out[module] = out.get(module, []) + found
    return out


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
    "core.ast_nodes": "one row per definition: qualname, kind, spans, decorators, docstring, type-checking only",
    "core.parse_errors": "files a step could not use, and why",
    "analytics.function_metrics": "per function: loc, sloc, cyclomatic, nesting, parameters, typedness, returns/raises",
    "graph.call_edges": "per call site and target: caller/callee GOIDs and names, kind, resolution, confidence, path/line",
    "graph.call_edges_merged": "graph.call_edges plus the sites the type checker (pyrefly) resolves: resolution 'scip' (type checker only) or '<resolution>+scip' (both agree); what the tools walk",
    "graph.symbol_uses": "per use of a repository symbol: defining and using GOID, path/line/col, use kind (call, read, write, import, subclass, annotation, ...)",
    "graph.symbol_use_edges": "per (using, defining) GOID pair: use count and kinds",
    "docs.v_symbol_uses": "one row per use of a repository symbol, with names and paths on both sides",
    "core.comments": "per comment: text, own line or trailing, enclosing GOID, pragma (type: ignore, noqa, ...) with codes, task tag (TODO, FIXME, ...)",
    "core.def_headers": "per def and class: exact header source, one-line signature, parameters, return annotation, decorators",
    "core.name_sites": "per identifier occurrence: name, syntactic role (call, read, write, import, ...), enclosing GOID",
    "core.scip_symbols": "per SCIP symbol (pyrefly): kind, qualified name, definition site, signature, documentation, GOID",
    "core.scip_occurrences": "per SCIP occurrence: path, symbol, exact range, definition or reference, enclosing GOID",
    "analytics.type_diagnostics": "pyrefly's type errors: path, line, code, severity, message, enclosing GOID",
    "analytics.history_timeseries": "per function (today's GOID) and module at weekly samples: loc, cyclomatic, parameters; module totals",
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
        listed = [o for o in kinds if o.startswith("docs.")] + [o for o in DESCRIPTIONS if not o.startswith("docs.") and o in kinds]
        columns = dict(q.rows(
            "SELECT schema_name || '.' || table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name || '.' || table_name IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1",
            [listed],
        ))  # fmt: skip
        rows = [(obj, kinds[obj], DESCRIPTIONS.get(obj, ""), ", ".join(columns.get(obj, []))) for obj in listed]
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
