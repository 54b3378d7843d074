"""What the `sql` tool runs: one read-only SELECT, nothing else.

The connection already makes writing, file access, ATTACH, INSTALL/LOAD and SET impossible
(`snapshot.connect_read_only`); this check refuses everything but a single SELECT statement
before it reaches the database, with a message that says why: DuckDB's own parser must see
exactly one statement of type SELECT, and its text must begin with SELECT, WITH, FROM, VALUES or
TABLE (after comments and parentheses).
"""

from __future__ import annotations

import re

import duckdb

from codeintel.errors import CodeIntelError

MAX_SQL_CHARS = 20_000
_LEADING = re.compile(r"(\s+|--[^\n]*(\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_STARTS = ("select", "with", "from", "values", "table")


class SqlRefused(CodeIntelError):
    """The text is not a single read-only SELECT statement."""


def check_select(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """`sql` stripped of a trailing `;` if it is a single SELECT, else `SqlRefused`."""
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(f"the query is {len(sql)} characters long; at most {MAX_SQL_CHARS}")
    if "\x00" in sql:
        raise SqlRefused("the query contains a NUL character")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(f"the query does not parse: {exc}") from exc
    if len(statements) != 1:
        raise SqlRefused(f"one statement at a time, please: this text holds {len(statements)}")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = str(statement.type).rsplit(".", 1)[-1]
        raise SqlRefused(f"only SELECT (or WITH ... SELECT) is allowed; this is a {kind} statement")
    head = sql[_LEADING.match(sql).end() :].lstrip()  # type: ignore[union-attr]
    first = re.match(r"[A-Za-z]+", head)
    if first is None or first[0].lower() not in _STARTS:
        raise SqlRefused("only SELECT (or WITH ... SELECT) is allowed; the query must begin with SELECT or WITH")
    return sql.strip().rstrip(";").strip()
