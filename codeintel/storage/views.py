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
               m.await_count, m.is_async, m.is_generator
        FROM core.goids g
        LEFT JOIN analytics.function_metrics m ON m.goid = g.goid
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
               pe.kind AS parse_error_kind, pe.message AS parse_error
        FROM core.modules mo
        LEFT JOIN core.files f ON f.path = mo.path
        LEFT JOIN core.goids g ON g.path = mo.path AND g.kind = 'module'
        LEFT JOIN defs d ON d.path = mo.path
        LEFT JOIN fm ON fm.path = mo.path
        LEFT JOIN core.parse_errors pe ON pe.path = mo.path
    """,
}


def view_statements() -> list[str]:
    """CREATE OR REPLACE statements for every view, in dependency order."""
    return [f"CREATE OR REPLACE VIEW {name} AS {sql.strip()}" for name, sql in VIEWS.items()]
