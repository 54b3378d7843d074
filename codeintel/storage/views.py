"""The `docs.*` views: ready-to-read summaries over the stored tables.

Views are plain SQL over catalog tables (every table exists from the first open, so a view is
valid even before the step that fills its tables has run).  `docs_views` (re)creates them.
"""

from __future__ import annotations

VIEWS: dict[str, str] = {
    "docs.v_function_summary": """
        SELECT g.goid, g.urn, g.repo, g.path, g.module, g.kind, g.qualname, g.name,
               g.module || '.' || g.qualname AS full_name, g.parent_goid,
               g.start_line, g.end_line,
               m.loc, m.lloc, m.sloc, m.cyclomatic, m.max_nesting_depth, m.param_count,
               m.positional_only_params, m.positional_or_keyword_params, m.keyword_only_params,
               m.has_vararg, m.has_kwarg, m.annotated_params, m.has_return_annotation,
               m.typedness, m.has_docstring, m.return_count, m.yield_count, m.raise_count,
               m.await_count, m.is_async, m.is_generator,
               gm.fan_in AS call_fan_in, gm.fan_out AS call_fan_out, gm.pagerank, gm.betweenness,
               gm.closeness, gm.in_cycle AS in_call_cycle, gm.cycle_id AS call_cycle_id,
               gm.layer AS call_layer, sm.subsystem_id, ss.name AS subsystem,
               fh.commits AS history_commits, fh.lines_added + fh.lines_deleted AS churn, fh.churn_365d,
               fh.authors AS author_count, fh.last_at AS last_changed_at, fh.age_days,
               ow.main_author,
               h.signature, dt.return_type AS inferred_return_type,
               CASE WHEN sd.path IS NOT NULL THEN coalesce(su.uses, 0) END AS use_count,
               CASE WHEN sd.path IS NOT NULL THEN coalesce(su.callers, 0) END AS using_definitions,
               CASE WHEN sd.path IS NOT NULL THEN coalesce(td.type_errors, 0) END AS type_errors,
               CASE WHEN h.goid IS NOT NULL THEN coalesce(tc.todo_count, 0) END AS todo_count
        FROM core.goids g
        LEFT JOIN analytics.function_metrics m ON m.goid = g.goid
        LEFT JOIN analytics.graph_metrics_functions gm ON gm.goid = g.goid
        LEFT JOIN analytics.subsystem_modules sm ON sm.module = g.module
        LEFT JOIN analytics.subsystems ss ON ss.subsystem_id = sm.subsystem_id
        LEFT JOIN analytics.function_history fh ON fh.goid = g.goid
        LEFT JOIN analytics.ownership ow ON ow.scope = 'function' AND ow.entity = g.goid
        LEFT JOIN core.def_headers h ON h.goid = g.goid
        LEFT JOIN (SELECT DISTINCT path FROM core.scip_documents) sd ON sd.path = g.path
        LEFT JOIN analytics.definition_types dt ON dt.goid = g.goid
        LEFT JOIN (SELECT def_goid, count(*) AS uses, count(DISTINCT user_goid) AS callers FROM graph.symbol_uses
                   WHERE def_kind NOT IN ('attribute', 'variable') GROUP BY def_goid) su ON su.def_goid = g.goid
        LEFT JOIN (SELECT enclosing_goid, count(*) AS type_errors FROM analytics.type_diagnostics
                   GROUP BY enclosing_goid) td ON td.enclosing_goid = g.goid
        LEFT JOIN (SELECT enclosing_goid, count(DISTINCT (path, line, col)) AS todo_count FROM core.comments
                   WHERE tag IS NOT NULL GROUP BY enclosing_goid) tc ON tc.enclosing_goid = g.goid
        WHERE g.kind IN ('function', 'method')
    """,
    "docs.v_module_summary": """
        WITH defs AS (
            SELECT path,
                   count(*) FILTER (WHERE kind = 'class') AS classes,
                   count(*) FILTER (WHERE kind = 'function') AS functions,
                   count(*) FILTER (WHERE kind = 'method') AS methods
            FROM core.goids GROUP BY path
        ), fm AS (
            SELECT path, sum(loc) AS function_loc, avg(cyclomatic) AS avg_cyclomatic,
                   max(cyclomatic) AS max_cyclomatic,
                   avg(CASE typedness WHEN 'full' THEN 1.0 WHEN 'partial' THEN 0.5 ELSE 0.0 END) AS typedness_score,
                   avg(CASE WHEN has_docstring THEN 1.0 ELSE 0.0 END) AS docstring_share
            FROM analytics.function_metrics GROUP BY path
        )
        SELECT mo.module, mo.path, mo.is_package, mo.package, g.goid, f.size AS size_bytes,
               coalesce(d.classes, 0) AS classes, coalesce(d.functions, 0) AS functions,
               coalesce(d.methods, 0) AS methods, fm.function_loc, fm.avg_cyclomatic,
               fm.max_cyclomatic, fm.typedness_score, fm.docstring_share,
               pe.kind AS parse_error_kind, pe.message AS parse_error,
               gm.fan_in AS import_fan_in, gm.fan_out AS import_fan_out, gm.pagerank AS import_pagerank,
               gm.in_cycle AS in_import_cycle, gm.cycle_id AS import_cycle_id, gm.layer AS import_layer,
               sm.subsystem_id, ss.name AS subsystem,
               fh.commits AS history_commits, fh.lines_added + fh.lines_deleted AS churn, fh.churn_365d,
               fh.authors AS author_count, fh.last_at AS last_changed_at, fh.age_days,
               ow.main_author
        FROM core.modules mo
        LEFT JOIN analytics.file_history fh ON fh.path = mo.path
        LEFT JOIN analytics.ownership ow ON ow.scope = 'file' AND ow.entity = mo.path
        LEFT JOIN core.files f ON f.path = mo.path
        LEFT JOIN core.goids g ON g.path = mo.path AND g.kind = 'module'
        LEFT JOIN defs d ON d.path = mo.path
        LEFT JOIN fm ON fm.path = mo.path
        LEFT JOIN core.parse_errors pe ON pe.path = mo.path AND pe.step = 'ast_ingest'
        LEFT JOIN analytics.graph_metrics_modules gm ON gm.module = mo.module
        LEFT JOIN analytics.subsystem_modules sm ON sm.module = mo.module
        LEFT JOIN analytics.subsystems ss ON ss.subsystem_id = sm.subsystem_id
    """,
    "docs.v_call_graph_enriched": """
        SELECT e.caller_goid, e.caller, cg.kind AS caller_kind, cg.path AS caller_path,
               e.path AS callsite_path, e.line AS callsite_line, e.col AS callsite_col,
               e.callee_goid, e.callee, e.callee_text, ce.kind AS callee_kind, ce.path AS callee_path,
               ce.start_line AS callee_start_line, e.kind, e.resolution, e.confidence,
               cm.cyclomatic AS callee_cyclomatic, cgm.fan_in AS callee_fan_in, cgm.pagerank AS callee_pagerank,
               e.caller_module, ce.module AS callee_module, e.caller_module <> ce.module AS crosses_module
        FROM graph.call_edges_merged e
        LEFT JOIN core.goids cg ON cg.goid = e.caller_goid
        LEFT JOIN core.goids ce ON ce.goid = e.callee_goid
        LEFT JOIN analytics.function_metrics cm ON cm.goid = e.callee_goid
        LEFT JOIN analytics.graph_metrics_functions cgm ON cgm.goid = e.callee_goid
    """,
    "docs.v_subsystem_summary": """
        WITH members AS (
            SELECT sm.subsystem_id, list(sm.module ORDER BY sm.module) AS modules,
                   count(*) FILTER (WHERE sm.is_isolated) AS isolated_modules
            FROM analytics.subsystem_modules sm GROUP BY 1
        ), funcs AS (
            SELECT sm.subsystem_id, count(*) AS functions, avg(m.cyclomatic) AS avg_cyclomatic,
                   max(m.cyclomatic) AS max_cyclomatic, sum(m.loc) AS function_loc
            FROM analytics.subsystem_modules sm
            JOIN core.goids g ON g.module = sm.module AND g.kind IN ('function', 'method')
            LEFT JOIN analytics.function_metrics m ON m.goid = g.goid
            GROUP BY 1
        )
        SELECT s.*, mb.modules, mb.isolated_modules, coalesce(f.functions, 0) AS functions,
               f.avg_cyclomatic, f.max_cyclomatic, f.function_loc
        FROM analytics.subsystems s
        LEFT JOIN members mb USING (subsystem_id)
        LEFT JOIN funcs f USING (subsystem_id)
    """,
    # Every use of a repository symbol with names and places on both sides: what is used (the
    # definition, or for an attribute / global the class / module it belongs to) and by whom.
    "docs.v_symbol_uses": """
        SELECT u.use_kind, u.def_kind,
               CASE WHEN u.def_kind IN ('attribute', 'variable')
                    THEN coalesce(dg.module || CASE WHEN dg.kind = 'module' THEN '' ELSE '.' || dg.qualname END, '?')
                         || '.' || coalesce(sy.display_name, u.name)
                    WHEN dg.kind = 'module' THEN dg.module ELSE dg.module || '.' || dg.qualname END AS def_name,
               dg.path AS def_path, dg.start_line AS def_line,
               CASE WHEN ug.kind = 'module' THEN ug.module ELSE ug.module || '.' || ug.qualname END AS user_name,
               ug.kind AS user_kind, u.path, u.line, u.col, u.name, u.qualifier,
               u.path IS DISTINCT FROM dg.path AS crosses_file, u.def_goid, u.user_goid, u.symbol
        FROM graph.symbol_uses u
        LEFT JOIN core.goids dg ON dg.goid = u.def_goid
        LEFT JOIN core.goids ug ON ug.goid = u.user_goid
        LEFT JOIN (SELECT symbol, min(display_name) AS display_name FROM core.scip_symbols GROUP BY symbol) sy
               ON sy.symbol = u.symbol
    """,
    # Call sites neither the call graph nor the type checker could resolve, with the name they
    # call (`a.b(...).c` calls `c`): a caller list that ignores them is a lower bound when a name matches.
    "docs.v_unresolved_calls": r"""
        SELECT e.caller_goid, e.caller, e.caller_module, e.path, e.line, e.col, e.callee_text,
               nullif(regexp_extract(e.callee_text, '([A-Za-z_][A-Za-z0-9_]*)\s*$', 1), '') AS called_name
        FROM graph.call_edges_merged e
        WHERE e.kind = 'unresolved'
    """,
    # One row per function, class and method of HEAD (GOID) and commit that changed it, through
    # renames and moves (its lineage): when, who, how many lines, and what happened to it.  A
    # change a merge left out (made on a side whose version of it the merge did not take) is not
    # one of them (`history.discarded_changes`).  A definition of a file `ast` cannot parse at HEAD
    # (a syntax error) has no row in core.goids: it is named by its file's module.
    "docs.v_function_changes": """
        SELECT h.goid, coalesce(g.module || '.' || g.qualname, m.module || '.' || h.qualname, h.qualname) AS full_name,
               h.kind,
               fc.sha, c.committer_time AS time, c.author_time, c.author_name AS author, c.author_email,
               fc.lines_added, fc.lines_deleted, fc.event, fc.path AS path_then, fc.qualname AS qualname_then,
               fc.old_path, fc.old_qualname, c.subject, c.is_merge, c.is_huge, c.is_ignored, c.is_bot
        FROM history.function_changes fc
        ANTI JOIN history.discarded_changes USING (sha, lineage_id)
        JOIN history.head_defs h USING (lineage_id)
        JOIN history.commits c USING (sha)
        LEFT JOIN core.goids g ON g.goid = h.goid
        LEFT JOIN core.modules m ON g.goid IS NULL AND m.path = h.path
    """,
    "docs.v_hotspots": """
        SELECT hs.scope, hs.rank, hs.entity, coalesce(g.module || '.' || g.qualname, mo.module, hs.path) AS name,
               hs.path, hs.qualname, hs.revisions, hs.churn, hs.complexity, hs.loc, hs.score, hs.window_days,
               ow.author_count, ow.main_author, ow.main_author_share
        FROM analytics.hotspots hs
        LEFT JOIN core.goids g ON hs.scope = 'function' AND g.goid = hs.entity
        LEFT JOIN core.modules mo ON hs.scope = 'file' AND mo.path = hs.entity
        LEFT JOIN analytics.ownership ow ON ow.scope = hs.scope AND ow.entity = hs.entity
    """,
    "docs.v_change_coupling": """
        SELECT cc.scope, coalesce(ga.module || '.' || ga.qualname, cc.name_a) AS name_a,
               coalesce(gb.module || '.' || gb.qualname, cc.name_b) AS name_b,
               cc.degree, cc.shared_revisions, cc.revisions_a, cc.revisions_b, cc.entity_a, cc.entity_b,
               CASE WHEN cc.scope = 'file' THEN true ELSE ga.path IS DISTINCT FROM gb.path END AS crosses_file
        FROM analytics.change_coupling cc
        LEFT JOIN core.goids ga ON cc.scope = 'function' AND ga.goid = cc.entity_a
        LEFT JOIN core.goids gb ON cc.scope = 'function' AND gb.goid = cc.entity_b
    """,
    # Metrics over time (analytics.history_timeseries): one row per function of HEAD (GOID) and
    # sample it existed at, through its renames and moves; the change since its sample before.
    "docs.v_function_trend": """
        SELECT t.goid, g.module || '.' || g.qualname AS full_name, g.kind, t.sample_time, t.sha, t.committed_at,
               t.path AS path_then, t.qualname AS qualname_then, t.parser, t.changed, t.loc, t.sloc, t.cyclomatic,
               t.max_nesting_depth, t.param_count,
               t.cyclomatic - lag(t.cyclomatic) OVER w AS cyclomatic_change, t.loc - lag(t.loc) OVER w AS loc_change
        FROM analytics.history_timeseries t JOIN core.goids g ON g.goid = t.goid
        WHERE t.scope = 'function'
        WINDOW w AS (PARTITION BY t.goid ORDER BY t.sample_time)
    """,
    # The same per module of HEAD (through file renames): its functions and their complexity then.
    "docs.v_module_trend": """
        SELECT t.goid, g.module, t.sample_time, t.sha, t.committed_at, t.path AS path_then, t.module AS module_then,
               t.parser, t.problem, t.changed, t.loc, t.functions, t.cyclomatic_total, t.cyclomatic_mean,
               t.cyclomatic_max, t.cyclomatic_total - lag(t.cyclomatic_total) OVER w AS cyclomatic_total_change,
               t.functions - lag(t.functions) OVER w AS functions_change, t.loc - lag(t.loc) OVER w AS loc_change
        FROM analytics.history_timeseries t JOIN core.goids g ON g.goid = t.goid
        WHERE t.scope = 'module'
        WINDOW w AS (PARTITION BY t.goid ORDER BY t.sample_time)
    """,
}


def view_statements() -> list[str]:
    """CREATE OR REPLACE statements for every view, in dependency order."""
    return [f"CREATE OR REPLACE VIEW {name} AS {sql.strip()}" for name, sql in VIEWS.items()]
