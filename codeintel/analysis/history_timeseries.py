"""Metrics over time: which commits are sampled, and the SQL that lays out `analytics.history_timeseries`.

Samples sit on a fixed grid of the calendar: every `interval_days` from Monday 1970-01-05
00:00 UTC (weekly samples fall on Mondays at midnight), the last `samples` grid points at or
before HEAD's committer time.  A grid point's commit is the newest commit of HEAD's
first-parent chain committed at or before it (the state of the main line at that moment); a
grid point older than the chain's first commit (or a shallow clone's boundary) has no sample.
The grid does not move with HEAD: a new commit in the same week leaves every sample as it is,
a new week adds one sample and drops the oldest, and a rewritten history changes only the
samples whose commit is gone.  Two grid points with no commit between them are two samples of
the same commit.

The table is laid out from facts stored per sample (the `.py` files it holds: path and blob)
and per blob (the metrics of its functions, computed once per blob whatever the sample or
path), and from the lineage of each definition of each (path, blob) that the history walk
stored: a function of an old sample carries the GOID of the function of HEAD its lineage
became (through renames and moves), or none when its lineage has no definition at HEAD any
more (such rows are kept, with their lineage id: a module's totals at a sample count every
function it had then).  A module carries the GOID of the module of HEAD its file became
(through file renames: the file id), or none when the file is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from codeintel.config import HistoryConfig

GRID_ANCHOR = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC


@dataclass(frozen=True, slots=True)
class TimeseriesSettings:
    """How often and how far back the metrics are sampled (`codeintel.config.HistoryConfig`)."""

    interval_days: int = 7
    samples: int = 52

    @classmethod
    def from_config(cls, config: HistoryConfig) -> TimeseriesSettings:
        return cls(max(1, config.timeseries_interval_days), max(0, config.timeseries_weeks))


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample: the grid point, and the first-parent commit that stood then."""

    time: datetime
    sha: str
    committed_at: datetime


def sample_times(now: datetime, settings: TimeseriesSettings) -> list[datetime]:
    """The last `settings.samples` grid points at or before `now`, oldest first."""
    step = timedelta(days=settings.interval_days)
    last = (now - GRID_ANCHOR) // step
    return [GRID_ANCHOR + (last - k) * step for k in range(settings.samples - 1, -1, -1)]


def first_parent_chain(head: str, commits: Mapping[str, tuple[str | None, datetime]]) -> list[tuple[str, datetime]]:
    """(sha, committer time) from `head` back along first parents, while `commits` knows them
    (`commits`: sha -> (first parent or None, committer time))."""
    chain: list[tuple[str, datetime]] = []
    seen: set[str] = set()
    sha: str | None = head
    while sha is not None and sha in commits and sha not in seen:
        seen.add(sha)
        parent, time = commits[sha]
        chain.append((sha, time))
        sha = parent
    return chain


def choose_samples(chain: Sequence[tuple[str, datetime]], times: Sequence[datetime]) -> list[Sample]:
    """Per grid point (oldest first), the first commit of `chain` (HEAD first) committed at or
    before it; grid points before the chain's start have none.  Committer times along a chain
    need not be ordered (rebases): the first such commit from HEAD is the one that stood."""
    samples: list[Sample] = []
    at = 0
    for t in sorted(times, reverse=True):  # later points find their commit no further back
        while at < len(chain) and chain[at][1] > t:
            at += 1
        if at == len(chain):
            break
        samples.append(Sample(t, chain[at][0], chain[at][1]))
    return samples[::-1]


def timeseries_sql() -> str:
    """`analytics.history_timeseries` from the stored samples, their files and the blobs'
    metrics, with `_ci_ts_lineages` (path, blob, name_key, ordinal -> lineage id) and
    `_ci_ts_files` (path, blob -> file id) registered by the caller.  A file is `changed` at a
    sample when the sample before had another blob (or no file) at its path."""
    return """
        WITH samples AS (
            SELECT *, row_number() OVER (ORDER BY sample_time) AS n FROM history.timeseries_samples
        ), files AS (
            SELECT s.sample_time, s.sha, s.committed_at, s.n, f.path, f.blob, f.module
            FROM samples s JOIN history.timeseries_files f USING (sample_time)
        ), marked AS (
            SELECT f.*, p.blob IS DISTINCT FROM f.blob AS changed, i.file_id
            FROM files f
            LEFT JOIN files p ON p.n = f.n - 1 AND p.path = f.path
            LEFT JOIN _ci_ts_files i ON i.path = f.path AND i.blob = f.blob
        ), per_blob AS (
            SELECT blob, count(*) AS functions, sum(cyclomatic) AS cyclomatic_total,
                   avg(cyclomatic) AS cyclomatic_mean, max(cyclomatic) AS cyclomatic_max
            FROM history.timeseries_blobs WHERE kind <> 'module' GROUP BY blob
        ), head_modules AS (
            SELECT hf.file_id, any_value(g.goid) AS goid
            FROM history.head_files hf JOIN core.goids g ON g.path = hf.path AND g.kind = 'module'
            GROUP BY hf.file_id
        )
        SELECT m.sample_time, m.sha, m.committed_at, 'function' AS scope, l.goid, a.lineage_id, m.file_id,
               m.path, m.module, b.qualname, b.kind, b.ordinal, b.parser, m.changed, b.start_line, b.loc, b.sloc,
               b.cyclomatic, b.max_nesting_depth, b.param_count
        FROM marked m
        JOIN history.timeseries_blobs b ON b.blob = m.blob AND b.kind <> 'module'
        LEFT JOIN _ci_ts_lineages a
               ON a.path = m.path AND a.blob = m.blob AND a.name_key = b.name_key AND a.ordinal = b.ordinal
        LEFT JOIN history.lineages l ON l.lineage_id = a.lineage_id
        UNION ALL BY NAME
        SELECT m.sample_time, m.sha, m.committed_at, 'module' AS scope, h.goid, m.file_id, m.path, m.module,
               'module' AS kind, b.parser, b.problem, m.changed, b.loc, coalesce(p.functions, 0) AS functions,
               CASE WHEN b.parser = 'ast' THEN coalesce(p.cyclomatic_total, 0) END AS cyclomatic_total,
               p.cyclomatic_mean, p.cyclomatic_max
        FROM marked m
        JOIN history.timeseries_blobs b ON b.blob = m.blob AND b.kind = 'module'
        LEFT JOIN per_blob p ON p.blob = m.blob
        LEFT JOIN head_modules h ON h.file_id = m.file_id
    """
