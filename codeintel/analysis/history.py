"""History analytics over the per-commit facts: the SQL each history step runs.

Pure text: each function returns the query for its settings; the steps run them in their
write transaction (DuckDB aggregates the facts in a fraction of a second where Python would
take seconds).  Common rules:

- "now" is HEAD's committer time, not the wall clock: the same history gives the same
  figures whenever it is indexed.  Windows (30/90/365 days, the hotspot window) count commits
  whose committer time is within that many days before it.
- A change is a row of `history.function_changes` (or `file_changes`) with lines added or
  deleted.  A function's changes are those that reach HEAD's version of it: not those of
  `history.discarded_changes` (made on a side of a merge that kept the function as its first
  parent had it, as `git log -L` leaves them out: `ingestion/history/merges.py`).  Huge commits (more `.py` files than the threshold) and commits on the blame-ignore
  list (reformats) keep the identity of what they touched but are left out of churn, commit
  counts, ownership and coupling; bots are left out of author counts and ownership; merges
  (their own lines only: conflict resolutions) count as changes, never as coupling.
- Commits are ordered by generation (1 + the greatest generation of their parents), then
  committer time: topological, the same in every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from codeintel.config import HistoryConfig

# a commit's place in history, as one sortable number
ORDER_KEY = "(c.generation::BIGINT * 4294967296 + epoch(c.committer_time)::BIGINT)"

_NOW = "(SELECT c.committer_time FROM history.commits c JOIN meta.history_state s ON c.sha = s.head)"

# the changes of functions that reach HEAD (`history.discarded_changes` left out)
REACHED_CHANGES = (
    "(SELECT * FROM history.function_changes ANTI JOIN history.discarded_changes USING (sha, lineage_id))"
)

# changes that count: not in huge or blame-ignored commits, with lines
_COUNTED = "NOT c.is_huge AND NOT c.is_ignored AND f.lines_added + f.lines_deleted > 0"


@dataclass(frozen=True, slots=True)
class HistoryAnalyticsSettings:
    """The windows and thresholds of the history analytics (see `codeintel.config.HistoryConfig`)."""

    hotspot_window_days: int = 365
    coupling_min_revisions: int = 5
    coupling_min_shared: int = 5
    coupling_min_degree: float = 0.30
    coupling_window_days: int = 0  # 0: the whole history

    @classmethod
    def from_config(cls, config: HistoryConfig) -> HistoryAnalyticsSettings:
        return cls(
            config.hotspot_window_days, config.coupling_min_revisions, config.coupling_min_shared,
            config.coupling_min_degree, config.coupling_window_days,
        )  # fmt: skip


def settings_note(*queries: str) -> str:
    """The note an analytics step records when it writes: a digest of its queries, so of its
    settings (a step whose last note differs computes again)."""
    return "settings " + hashlib.blake2b("\0".join(queries).encode(), digest_size=6).hexdigest()


def last_note_is(step: str, note: str) -> str:
    """A query: is `note` the note of the step's last successful run that wrote?"""
    return (
        f"SELECT coalesce(arg_max(note, finished_at) = '{note}', false) FROM meta.step_runs "
        f"WHERE step = '{step}' AND status = 'succeeded' AND note LIKE 'settings %'"
    )


def lineages_sql(only_touched: bool, part: int = 0, parts: int = 1) -> str:
    """`history.lineages` rows: per lineage its first and last events, the GOID it is today
    (none when gone), its changes, renames and moves; truncated when no walk saw it created
    (a shallow clone's boundary).  With `only_touched`, for the lineages of `_ci_touched`;
    with `parts` > 1, for those whose id hashes to `part` of them (each lineage is in one)."""
    where = _lineage_filter("f", only_touched, part, parts)
    head_where = _lineage_filter("h", only_touched, part, parts)
    return f"""
        WITH ev AS (
            SELECT f.*, c.committer_time, {ORDER_KEY} AS ord
            FROM history.function_changes f JOIN history.commits c USING (sha) {where}
        ), agg AS (
            SELECT lineage_id,
                   arg_min(sha, ord) FILTER (WHERE event = 'created') AS created_sha,
                   arg_min(committer_time, ord) FILTER (WHERE event = 'created') AS created_at,
                   arg_min(path, ord) AS first_path, arg_min(qualname, ord) AS first_qualname,
                   arg_max(path, ord) AS last_path, arg_max(qualname, ord) AS last_qualname,
                   arg_max(kind, ord) AS last_kind,
                   arg_max(sha, ord) FILTER (WHERE lines_added + lines_deleted > 0) AS last_sha,
                   arg_max(committer_time, ord) FILTER (WHERE lines_added + lines_deleted > 0) AS last_at,
                   arg_max(event, ord) AS last_event, arg_max(sha, ord) AS last_event_sha,
                   count(*) FILTER (WHERE lines_added + lines_deleted > 0) AS changes,
                   count(*) FILTER (WHERE event = 'renamed') AS renames,
                   count(*) FILTER (WHERE event = 'moved') AS moves
            FROM ev GROUP BY lineage_id
        ), head AS (
            SELECT lineage_id, min(goid) AS goid, min(path) AS path, min(qualname) AS qualname, min(kind) AS kind
            FROM history.head_defs h {head_where} GROUP BY lineage_id
        )
        SELECT coalesce(a.lineage_id, h.lineage_id) AS lineage_id, h.goid,
               coalesce(h.path, a.last_path) AS path, coalesce(h.qualname, a.last_qualname) AS qualname,
               coalesce(h.kind, a.last_kind) AS kind, a.created_sha, a.created_at,
               coalesce(a.first_path, h.path) AS first_path, coalesce(a.first_qualname, h.qualname) AS first_qualname,
               a.last_sha, a.last_at,
               CASE WHEN h.goid IS NULL AND a.last_event = 'deleted' THEN a.last_event_sha END AS deleted_sha,
               coalesce(a.changes, 0)::INTEGER AS changes, coalesce(a.renames, 0)::INTEGER AS renames,
               coalesce(a.moves, 0)::INTEGER AS moves, a.created_sha IS NULL AS is_truncated
        FROM agg a FULL OUTER JOIN head h USING (lineage_id)
    """


def _lineage_filter(alias: str, only_touched: bool, part: int, parts: int) -> str:
    found = [f"{alias}.lineage_id IN (SELECT lineage_id FROM _ci_touched)"] if only_touched else []
    if parts > 1:
        found.append(f"hash({alias}.lineage_id) % {int(parts)} = {int(part)}")
    return f"WHERE {' AND '.join(found)}" if found else ""


def function_history_sql() -> str:
    """`analytics.function_history`: per function, class and method at HEAD (GOID) its
    commits, lines, authors, creation, last change, churn over 30/90/365 days and age."""
    return f"""
        WITH now AS (SELECT {_NOW} AS now),
        ch AS (
            SELECT f.lineage_id, f.sha, f.lines_added, f.lines_deleted, c.committer_time AS ts, {ORDER_KEY} AS ord,
                   lower(c.author_email) AS author, c.is_bot
            FROM {REACHED_CHANGES} f JOIN history.commits c USING (sha)
            WHERE {_COUNTED}
        )
        SELECT h.goid, h.lineage_id, h.path, h.qualname, h.kind,
               count(ch.sha)::INTEGER AS commits,
               coalesce(sum(ch.lines_added), 0)::INTEGER AS lines_added,
               coalesce(sum(ch.lines_deleted), 0)::INTEGER AS lines_deleted,
               (count(DISTINCT ch.author) FILTER (WHERE NOT ch.is_bot))::INTEGER AS authors,
               any_value(l.created_sha) AS created_sha, any_value(l.created_at) AS created_at,
               arg_max(ch.sha, ch.ord) AS last_sha, max(ch.ts) AS last_at,
               {_window_sum("ch", 30)} AS churn_30d, {_window_sum("ch", 90)} AS churn_90d,
               {_window_sum("ch", 365)} AS churn_365d,
               (count(ch.sha) FILTER (WHERE ch.ts > now.now - INTERVAL 365 DAY))::INTEGER AS commits_365d,
               date_diff('second', any_value(l.created_at), now.now) / 86400.0 AS age_days,
               coalesce(any_value(l.is_truncated), true) AS is_truncated
        FROM history.head_defs h CROSS JOIN now
        LEFT JOIN ch USING (lineage_id)
        LEFT JOIN history.lineages l USING (lineage_id)
        GROUP BY h.goid, h.lineage_id, h.path, h.qualname, h.kind, now.now
    """


def file_history_sql() -> str:
    """`analytics.file_history`: the same per `.py` file at HEAD, its history followed
    through renames (file ids)."""
    return f"""
        WITH now AS (SELECT {_NOW} AS now),
        ch AS (
            SELECT f.file_id, f.sha, f.lines_added, f.lines_deleted, c.committer_time AS ts, {ORDER_KEY} AS ord,
                   lower(c.author_email) AS author, c.is_bot, f.status
            FROM history.file_changes f JOIN history.commits c USING (sha)
        ), counted AS (
            SELECT * FROM ch WHERE sha IN (SELECT sha FROM history.commits c WHERE NOT c.is_huge AND NOT c.is_ignored)
              AND lines_added + lines_deleted > 0
        ), born AS (
            SELECT file_id, arg_min(sha, ord) AS created_sha, min(ts) AS created_at FROM ch WHERE status = 'A' GROUP BY 1
        )
        SELECT hf.path, hf.file_id, count(ch.sha)::INTEGER AS commits,
               coalesce(sum(ch.lines_added), 0)::INTEGER AS lines_added,
               coalesce(sum(ch.lines_deleted), 0)::INTEGER AS lines_deleted,
               (count(DISTINCT ch.author) FILTER (WHERE NOT ch.is_bot))::INTEGER AS authors,
               any_value(b.created_sha) AS created_sha, any_value(b.created_at) AS created_at,
               arg_max(ch.sha, ch.ord) AS last_sha, max(ch.ts) AS last_at,
               {_window_sum("ch", 30)} AS churn_30d, {_window_sum("ch", 90)} AS churn_90d,
               {_window_sum("ch", 365)} AS churn_365d,
               (count(ch.sha) FILTER (WHERE ch.ts > now.now - INTERVAL 365 DAY))::INTEGER AS commits_365d,
               date_diff('second', any_value(b.created_at), now.now) / 86400.0 AS age_days,
               any_value(b.created_sha) IS NULL AS is_truncated
        FROM history.head_files hf CROSS JOIN now
        LEFT JOIN counted ch USING (file_id)
        LEFT JOIN born b USING (file_id)
        GROUP BY hf.path, hf.file_id, now.now
    """


def _window_sum(alias: str, days: int) -> str:
    return (
        f"coalesce(sum({alias}.lines_added + {alias}.lines_deleted) "
        f"FILTER (WHERE {alias}.ts > now.now - INTERVAL {int(days)} DAY), 0)::INTEGER"
    )


def hotspots_sql(settings: HistoryAnalyticsSettings) -> str:
    """`analytics.hotspots`, Code Maat / CodeScene style: entities that change often and are
    complex.  Per function and method (GOID) and per file, over the window: revisions (commits
    that changed it), churn (lines added + deleted), complexity (cyclomatic; a file's: the sum of
    its functions'), LOC; `score` = (revisions / the most revisions of its scope) x (complexity /
    the greatest complexity of its scope), in [0, 1]; `rank` 1 = hottest per scope."""
    days = int(settings.hotspot_window_days)
    return f"""
        WITH now AS (SELECT {_NOW} AS now),
        fn AS (
            SELECT h.goid AS entity, count(DISTINCT f.sha) AS revisions,
                   sum(f.lines_added + f.lines_deleted) AS churn
            FROM {REACHED_CHANGES} f JOIN history.commits c USING (sha)
            JOIN history.head_defs h USING (lineage_id) CROSS JOIN now
            WHERE {_COUNTED} AND c.committer_time > now.now - INTERVAL {days} DAY AND h.kind IN ('function', 'method')
            GROUP BY 1
        ), fl AS (
            SELECT hf.path AS entity, count(DISTINCT f.sha) AS revisions, sum(f.lines_added + f.lines_deleted) AS churn
            FROM history.file_changes f JOIN history.commits c USING (sha)
            JOIN history.head_files hf USING (file_id) CROSS JOIN now
            WHERE {_COUNTED} AND c.committer_time > now.now - INTERVAL {days} DAY
            GROUP BY 1
        ), file_size AS (
            SELECT path, sum(cyclomatic) AS complexity FROM analytics.function_metrics GROUP BY 1
        ), file_loc AS (
            SELECT path, max(end_line) AS loc FROM core.ast_nodes WHERE kind = 'module' GROUP BY 1
        ), scored AS (
            SELECT 'function' AS scope, fn.entity, m.path, m.qualname, fn.revisions, fn.churn,
                   m.cyclomatic AS complexity, m.loc
            FROM fn JOIN analytics.function_metrics m ON m.goid = fn.entity
            UNION ALL
            SELECT 'file', fl.entity, fl.entity, NULL, fl.revisions, fl.churn, coalesce(s.complexity, 0),
                   coalesce(l.loc, 0)
            FROM fl LEFT JOIN file_size s ON s.path = fl.entity LEFT JOIN file_loc l ON l.path = fl.entity
            WHERE fl.entity IN (SELECT path FROM core.files)
        ), with_score AS (
            SELECT *, (revisions / nullif(max(revisions) OVER (PARTITION BY scope), 0))
                        * (complexity / nullif(max(complexity) OVER (PARTITION BY scope), 0)) AS score
            FROM scored
        )
        SELECT scope, entity, path, qualname, revisions::INTEGER AS revisions, churn::INTEGER AS churn,
               complexity::INTEGER AS complexity, loc::INTEGER AS loc,
               score,
               row_number() OVER (PARTITION BY scope ORDER BY score DESC NULLS LAST, revisions DESC, churn DESC, entity)::INTEGER
                 AS rank,
               {days} AS window_days
        FROM with_score
    """


def change_coupling_sql(settings: HistoryAnalyticsSettings) -> str:
    """`analytics.change_coupling`: Code Maat's logical coupling, per pair of files and per
    pair of functions/methods at HEAD: revisions of each, shared revisions (commits changing
    both), degree = shared / mean revisions.  Pairs below the minimum revisions (of each),
    shared revisions or degree are left out; huge, blame-ignored and merge commits are ignored;
    a function and a function nested in it are no pair."""
    s = settings
    window = (
        f"AND c.committer_time > {_NOW} - INTERVAL {int(s.coupling_window_days)} DAY"
        if s.coupling_window_days > 0
        else ""
    )
    commits = f"NOT c.is_huge AND NOT c.is_ignored AND NOT c.is_merge {window}"
    return f"""
        WITH ch AS (
            SELECT DISTINCT 'function' AS scope, f.sha, h.goid AS entity
            FROM {REACHED_CHANGES} f JOIN history.commits c USING (sha) JOIN history.head_defs h USING (lineage_id)
            WHERE {commits} AND f.lines_added + f.lines_deleted > 0 AND h.kind IN ('function', 'method')
            UNION ALL
            SELECT DISTINCT 'file', f.sha, hf.path
            FROM history.file_changes f JOIN history.commits c USING (sha) JOIN history.head_files hf USING (file_id)
            WHERE {commits} AND f.lines_added + f.lines_deleted > 0
        ), revs AS (
            SELECT scope, entity, count(*) AS n FROM ch GROUP BY 1, 2 HAVING count(*) >= {int(s.coupling_min_revisions)}
        ), kept AS (
            SELECT ch.* FROM ch JOIN revs USING (scope, entity)
        ), pairs AS (
            SELECT a.scope, a.entity AS entity_a, b.entity AS entity_b, count(*) AS shared
            FROM kept a JOIN kept b ON a.scope = b.scope AND a.sha = b.sha AND a.entity < b.entity
            GROUP BY 1, 2, 3 HAVING count(*) >= {int(s.coupling_min_shared)}
        ), names AS (
            SELECT goid AS entity, path, qualname, path || '::' || qualname AS name FROM history.head_defs
        )
        SELECT p.scope, p.entity_a, p.entity_b,
               coalesce(na.name, p.entity_a) AS name_a, coalesce(nb.name, p.entity_b) AS name_b,
               ra.n::INTEGER AS revisions_a, rb.n::INTEGER AS revisions_b, p.shared::INTEGER AS shared_revisions,
               p.shared / ((ra.n + rb.n) / 2.0) AS degree
        FROM pairs p
        JOIN revs ra ON ra.scope = p.scope AND ra.entity = p.entity_a
        JOIN revs rb ON rb.scope = p.scope AND rb.entity = p.entity_b
        LEFT JOIN names na ON p.scope = 'function' AND na.entity = p.entity_a
        LEFT JOIN names nb ON p.scope = 'function' AND nb.entity = p.entity_b
        WHERE p.shared / ((ra.n + rb.n) / 2.0) >= {float(s.coupling_min_degree)}
          AND NOT (p.scope = 'function' AND na.path = nb.path
                   AND (starts_with(nb.qualname, na.qualname || '.') OR starts_with(na.qualname, nb.qualname || '.')))
    """


def ownership_sql() -> str:
    """`analytics.ownership`: per function, class and method at HEAD (GOID) and per file, its
    authors by lines added (bots, huge and blame-ignored commits left out): how many, the main
    author (most lines; ties by email), their share, and every author, most lines first."""
    return f"""
        WITH ch AS (
            SELECT 'function' AS scope, h.goid AS entity, h.path, h.qualname, c.author_name AS name,
                   lower(c.author_email) AS email, f.lines_added AS lines
            FROM {REACHED_CHANGES} f JOIN history.commits c USING (sha) JOIN history.head_defs h USING (lineage_id)
            WHERE NOT c.is_bot AND NOT c.is_huge AND NOT c.is_ignored AND f.lines_added > 0
            UNION ALL
            SELECT 'file', hf.path, hf.path, NULL, c.author_name, lower(c.author_email), f.lines_added
            FROM history.file_changes f JOIN history.commits c USING (sha) JOIN history.head_files hf USING (file_id)
            WHERE NOT c.is_bot AND NOT c.is_huge AND NOT c.is_ignored AND f.lines_added > 0
        ), by_author AS (
            SELECT scope, entity, any_value(path) AS path, any_value(qualname) AS qualname, email,
                   min(name) AS name, sum(lines) AS lines
            FROM ch GROUP BY scope, entity, email
        )
        SELECT scope, entity, any_value(path) AS path, any_value(qualname) AS qualname,
               count(*)::INTEGER AS author_count,
               list(name ORDER BY lines DESC, email)[1] AS main_author,
               list(email ORDER BY lines DESC, email)[1] AS main_author_email,
               max(lines)::INTEGER AS main_author_lines,
               max(lines) / sum(lines) AS main_author_share,
               sum(lines)::INTEGER AS total_lines,
               list(name ORDER BY lines DESC, email) AS authors
        FROM by_author GROUP BY scope, entity
    """
