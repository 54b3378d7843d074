"""The `sql` answer: one read-only SELECT (see `sqlguard`), row-capped, paged, time-limited."""

from __future__ import annotations

import re
from typing import Any

import duckdb

from codeintel.serving.calls import Call
from codeintel.serving.render import Answer, Section, clamp_limit
from codeintel.serving.sqlguard import check_select

DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 10.0
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


MAX_OFFSET = 100_000


def clamp_timeout(seconds: float | None) -> float:
    return max(0.1, min(MAX_TIMEOUT_S, DEFAULT_TIMEOUT_S if seconds is None else float(seconds)))


def sql(c: Call, query: str, limit: int | None, seconds: float) -> Answer:
    """One SELECT's rows from `Call.offset` on, the total counted while time allows."""
    limit = clamp_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)
    text = check_select(c.q.cursor, query)
    if c.offset > MAX_OFFSET:
        return Answer(f"sql: paging stops at row {MAX_OFFSET}; narrow the query (WHERE, LIMIT/OFFSET in it)", is_error=True)
    names, rows = c.q.columns_and_rows(text, None, c.offset + limit + 1)
    page = rows[c.offset : c.offset + limit]
    more = len(rows) > c.offset + limit
    total, exact = len(rows), True
    if more:
        total, exact = _count_rest(c, len(rows))
    facts: list[tuple[str, Any]] = [("rows", f"{total}" if exact else f"more than {total} (counting stopped at the time limit)")]
    notes = []
    if not re.search(r"\border\s+by\b", text, re.IGNORECASE):
        notes.append("no ORDER BY: add one (ending with a unique column such as goid) for a stable order and paging")
    section = Section("rows", tuple(names), page, total=total, offset=c.offset, pageable=True, exact=exact)
    return Answer(f"sql: {len(page)} rows (timeout {seconds:g} s)", facts, [section], notes)


def _count_rest(c: Call, fetched: int) -> tuple[int, bool]:
    """Count the rest of the result by fetching it in batches, while the deadline allows."""
    total = fetched
    try:
        while not c.q.deadline.expired():
            batch = c.q.fetch_more(10_000)
            if not batch:
                return total, True
            total += len(batch)
    except duckdb.Error:  # interrupted at the deadline: the count is a lower bound
        return total, False
    return total, False
