"""The history tables: what a walk needs to read back, and writing what it found.

A cold walk replaces every history table; an incremental one removes the facts of commits no
longer reachable (a force-push), appends those of the new commits, replaces the HEAD rows of
the files whose blob changed, and computes again the lineages it touched.  All inside the
step's one transaction.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

import pyarrow as pa

from codeintel.analysis.history import lineages_sql
from codeintel.ingestion.history import merges
from codeintel.ingestion.history.lineage import Deletion, WalkedCommit
from codeintel.ingestion.history.outline import Module, unpack_outline
from codeintel.ingestion.history.plan import HistoryFacts, HistoryPlan, StoredHistory, TableRows
from codeintel.ingestion.history.versions import StoredVersion, VersionKey, id_value
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import HeldReader, StorageGateway, Writer

Reads = StorageGateway | HeldReader  # what the stored reads query through

# the store's connection spills beyond it: with the facts inserted batch by batch, the largest
# process of sqlalchemy's cold walk stays near 330 MB (192 MB and whole tables: 433 MB)
STORE_MEMORY_LIMIT = "128MB"
# history.lineages is computed this many lineages a query at most: its aggregate keeps each
# lineage's texts (shas, paths, names) in memory DuckDB cannot spill, so that at the store's
# memory limit, 88,000 lineages at once failed (CPython's standard library: "Out of Memory")
# where sqlalchemy's 54,000 passed; each part scans the changes again (sqlalchemy's 3 parts take
# 0.07-0.1 s more than one query)
LINEAGES_AT_ONCE = 25_000

HISTORY_TABLES = (
    Table.COMMITS, Table.FILE_CHANGES, Table.FUNCTION_CHANGES, Table.VERSIONS, Table.MERGE_LINEAGES,
    Table.DISCARDED_CHANGES, Table.HEAD_FILES, Table.HEAD_DEFS, Table.LINEAGES, Table.HISTORY_STATE,
)  # fmt: skip


def read_stored_history(gateway: Reads) -> StoredHistory:
    # (`twice`: commits stored twice, as an earlier release's walk after HEAD moved back left them)
    found = gateway.query(
        f"""SELECT head, shallow, digest, (SELECT count(*) > count(DISTINCT sha) FROM {Table.COMMITS}) AS twice
            FROM {Table.HISTORY_STATE} LIMIT 1"""
    ).to_pylist()
    if not found:
        return StoredHistory()
    row = found[0]
    return StoredHistory(row["head"], frozenset(row["shallow"] or ()), row["digest"], bool(row["twice"]))


def read_generations(gateway: Reads, shas: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    rows = gateway.query(f"SELECT sha, generation FROM {Table.COMMITS} WHERE list_contains(?, sha)", [wanted])
    return dict(zip(rows["sha"].to_pylist(), rows["generation"].to_pylist(), strict=True))


def read_versions(
    gateway: Reads, keys: Iterable[VersionKey], gone: Sequence[str] = ()
) -> dict[VersionKey, StoredVersion]:
    """The stored versions at `keys`, but those a `gone` commit made (a rewritten history: the
    commit that makes one again now is its first, as in a cold walk; the store deletes them)."""
    wanted = set(keys)
    if not wanted:
        return {}
    blobs = sorted({blob for _, blob in wanted})
    rows = gateway.query(
        f"SELECT path, blob, file_id, n_lines, lineages, name_keys FROM {Table.VERSIONS} "
        "WHERE list_contains(?, blob) AND NOT list_contains(?, created_by)",
        [blobs, sorted(gone)],
    ).to_pylist()
    found = {}
    for r in rows:
        key = (r["path"], r["blob"])
        if key in wanted:
            lineages, keys_ = array("q"), array("I")
            lineages.frombytes(r["lineages"])
            keys_.frombytes(r["name_keys"])
            found[key] = StoredVersion(id_value(r["file_id"]), r["n_lines"], lineages, keys_)
    return found


def read_deletions(gateway: Reads, shas: Iterable[str]) -> dict[str, list[Deletion]]:
    """Per commit, the definitions it deleted (what `HistoryWalker.deletions` held for it)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    rows = gateway.query(
        f"""SELECT f.sha, f.path, c.old_blob, f.qualname, f.ordinal
            FROM {Table.FUNCTION_CHANGES} f JOIN {Table.FILE_CHANGES} c
              ON c.sha = f.sha AND coalesce(c.old_path, c.path) = f.path
            WHERE f.event = 'deleted' AND c.old_blob IS NOT NULL AND list_contains(?, f.sha)
            ORDER BY f.sha, f.path, f.qualname, f.ordinal""",
        [wanted],
    ).to_pylist()
    found: dict[str, list[Deletion]] = {}
    for r in rows:
        found.setdefault(r["sha"], []).append(Deletion(r["path"], r["old_blob"], r["qualname"], r["ordinal"]))
    return found


def read_walked(gateway: Reads, shas: Iterable[str]) -> dict[str, WalkedCommit]:
    """Commits walked before: their parents, generation and the lineages their rows are of."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    rows = gateway.query(
        f"""SELECT c.sha, any_value(c.parents) AS parents, any_value(c.generation) AS generation,
                   list(f.lineage_id) FILTER (WHERE f.lineage_id IS NOT NULL) AS changed
            FROM {Table.COMMITS} c LEFT JOIN {Table.FUNCTION_CHANGES} f USING (sha)
            WHERE list_contains(?, c.sha) GROUP BY c.sha""",
        [wanted],
    ).to_pylist()
    return {
        r["sha"]: WalkedCommit(
            tuple(r["parents"]), r["generation"], array("q", sorted({id_value(x) for x in r["changed"] or ()}))
        )
        for r in rows
    }


def read_outlines(gateway: Reads, keys: Iterable[VersionKey]) -> dict[VersionKey, Module]:
    """The outlines stored of HEAD's versions among `keys` (`history.head_files`)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = gateway.query(
        f"""SELECT path, blob, n_lines, size, outline, outline_names FROM {Table.HEAD_FILES}
            WHERE list_contains(?, path)""",
        [sorted({path for path, _ in wanted})],
    ).to_pylist()
    return {
        (r["path"], r["blob"]): unpack_outline(r["n_lines"], r["size"], r["outline"], r["outline_names"])
        for r in rows
        if (r["path"], r["blob"]) in wanted
    }


def read_head(gateway: Reads) -> dict[str, str]:
    rows = gateway.query(f"SELECT path, blob FROM {Table.HEAD_FILES}")
    return dict(zip(rows["path"].to_pylist(), rows["blob"].to_pylist(), strict=True))


def clear_history(writer: Writer) -> None:
    for table in HISTORY_TABLES:
        writer.execute(f"DELETE FROM {table}")


def store_history(writer: Writer, plan: HistoryPlan, facts: HistoryFacts) -> int:
    """Write what a walk found (see the module docstring); returns the rows written."""
    writer.set("memory_limit", STORE_MEMORY_LIMIT)  # the transaction spills beyond
    touched: set[str] = set()  # the lineages to compute again (a cold walk computes all)
    if facts.cold:
        clear_history(writer)
    else:
        touched.update(facts.function_changes.values("lineage_id"))
        if plan.gone:
            gone = _register(writer, "_ci_gone", sha=plan.gone)
            touched.update(
                _column(
                    writer,
                    f"SELECT DISTINCT lineage_id FROM {Table.FUNCTION_CHANGES} WHERE sha IN (SELECT sha FROM {gone})",
                )
            )
            for table in (Table.COMMITS, Table.FILE_CHANGES, Table.FUNCTION_CHANGES, Table.MERGE_LINEAGES):
                writer.execute(f"DELETE FROM {table} WHERE sha IN (SELECT sha FROM {gone})")
            writer.execute(f"DELETE FROM {Table.VERSIONS} WHERE created_by IN (SELECT sha FROM {gone})")
        paths = _register(writer, "_ci_paths", path=facts.head_paths)
        touched.update(
            _column(writer, f"SELECT lineage_id FROM {Table.HEAD_DEFS} WHERE path IN (SELECT path FROM {paths})")
        )
        for table in (Table.HEAD_DEFS, Table.HEAD_FILES):
            writer.execute(f"DELETE FROM {table} WHERE path IN (SELECT path FROM {paths})")
        touched.update(facts.head_defs.values("lineage_id"))
    written = 0
    # the versions after the lineages: the query then runs beside the fewest uncommitted rows
    for columns in (
        facts.commits, facts.file_changes, facts.function_changes, facts.merge_lineages, facts.head_files,
        facts.head_defs,
    ):  # fmt: skip
        written += _insert(writer, columns)
    written += store_discarded(writer, plan, facts)
    if facts.cold:
        writer.execute(f"DELETE FROM {Table.LINEAGES}")
        written += insert_lineages(writer, only_touched=False)
    elif touched:
        _register(writer, "_ci_touched", lineage_id=sorted(touched))
        writer.execute(f"DELETE FROM {Table.LINEAGES} WHERE lineage_id IN (SELECT lineage_id FROM _ci_touched)")
        written += insert_lineages(writer, only_touched=True)
    written += _insert(writer, facts.versions)
    writer.execute(f"DELETE FROM {Table.HISTORY_STATE}")
    total = writer.con.execute(f"SELECT count(*) FROM {Table.COMMITS}").fetchone()
    writer.execute(
        f"INSERT INTO {Table.HISTORY_STATE} VALUES (?, ?, ?, ?, ?, now())",
        [plan.repo.head, sorted(plan.repo.shallow), plan.repo.digest, str(plan.mode), total[0] if total else 0],
    )
    return written


def store_discarded(writer: Writer, plan: HistoryPlan, facts: HistoryFacts) -> int:
    """`history.discarded_changes` brought up to date with the commits just stored (`facts`; the
    history state is still the last walk's).  A merge may take older changes into HEAD, or leave
    some out, a rewritten history too: computed again over the whole history (`merges.reached`)
    after a cold walk or a force-push, or when HEAD's first-parent line does not go down the new
    commits to the HEAD walked last; else `_discarded_since` (only what new merges can change)."""
    head = plan.repo.head
    assert head is not None
    found = None if facts.cold or plan.gone else _discarded_since(writer, head, facts)
    if found is None:
        found = _discarded(writer, head, merges.EVERY)
    shas, left_out = found
    return writer.insert(Table.DISCARDED_CHANGES, pa.table({"sha": shas, "lineage_id": left_out})) if shas else 0


def _discarded(writer: Writer, head: str, of: merges.Lineages) -> tuple[list[str], list[str]]:
    """The changes (sha, lineage) of the definitions `of` (every one, `merges.EVERY`, or some)
    that do not reach `head`, over every commit stored (some: none older than their oldest
    change); the rows stored of them are removed (the caller inserts these)."""
    if of.but:  # (every definition: every commit may hold a change left out)
        writer.execute(f"DELETE FROM {Table.DISCARDED_CHANGES}")
        changed_where, oldest = "sha IN (SELECT sha FROM _ci_partial)", 0
    else:
        _register(writer, "_ci_of", lineage_id=sorted(of.names))
        changed_where = "lineage_id IN (SELECT lineage_id FROM _ci_of)"
        writer.execute(f"DELETE FROM {Table.DISCARDED_CHANGES} WHERE {changed_where}")
        ((oldest,),) = writer.con.execute(
            f"""SELECT min(c.generation) FROM {Table.FUNCTION_CHANGES} f JOIN {Table.COMMITS} c USING (sha)
                WHERE f.{changed_where}"""
        ).fetchall()
        if oldest is None:
            return [], []
    commits = _arrow(
        writer, f"SELECT sha, parents FROM {Table.COMMITS} WHERE generation >= {int(oldest)} ORDER BY generation DESC, sha"
    )
    order = commits.column("sha").to_pylist()
    parents = dict(zip(order, commits.column("parents").to_pylist(), strict=True))
    of_merges = "" if of.but else "WHERE lineage_id IN (SELECT lineage_id FROM _ci_of)"
    merged = _arrow(
        writer, f"SELECT sha, parent, list(lineage_id) AS lineages FROM {Table.MERGE_LINEAGES} {of_merges} GROUP BY ALL"
    )
    sides = _sides(*(merged.column(c).to_pylist() for c in ("sha", "parent", "lineages")))
    reach = merges.reached(head, order, parents, sides, of)
    if of.but:
        # the commits some definitions do not reach (one of a side line: only a few reach it; one of
        # the first-parent line: every definition but a few): their changes, by commit, from DuckDB;
        # those of definitions that do not reach them are left out
        partial = [sha for sha in order if (found_ := reach.get(sha, merges.NONE)).names or not found_.but]
        if not partial:
            return [], []
        _register(writer, "_ci_partial", sha=partial)
    changed = _arrow(
        writer, f"SELECT sha, list(lineage_id) AS lineages FROM {Table.FUNCTION_CHANGES} WHERE {changed_where} GROUP BY sha"
    )
    return _left_out(
        zip(changed.column("sha").to_pylist(), changed.column("lineages").to_pylist(), strict=True), reach
    )


def _discarded_since(writer: Writer, head: str, facts: HistoryFacts) -> tuple[list[str], list[str]] | None:
    """The changes left out, with the stored ones brought up to date for the new commits `facts`
    holds, when HEAD's first-parent line goes down them to the HEAD walked last (None: not so).

    A definition no new merge lists (`history.merge_lineages`) goes from HEAD down first parents
    only, so it reaches the HEAD walked last and no other commit walked before: its changes reach
    HEAD as they did.  So: the new commits' changes are followed through the new commits; those
    new merges list are followed again through the whole history, their stored rows replaced."""
    state = writer.con.execute(f"SELECT head FROM {Table.HISTORY_STATE}").fetchall()
    if len(state) != 1:
        return None
    new_parents = dict(zip(facts.commits.values("sha"), facts.commits.values("parents"), strict=True))
    sha: str | None = head
    while sha in new_parents:
        first = new_parents[sha]
        sha = first[0] if first else None
    if sha != state[0][0]:
        return None
    generations = facts.commits.values("generation")
    order = [s for _, s in sorted(zip(generations, new_parents, strict=True), key=lambda gs: (-gs[0], gs[1]))]
    rows = facts.merge_lineages
    sides = _sides(rows.values("sha"), rows.values("parent"), [[x] for x in rows.values("lineage_id")])
    listed = frozenset().union(*(ids for side in sides.values() for ids in side.values()))
    changed: dict[str, list[str]] = {}
    for sha_, lineage in zip(facts.function_changes.values("sha"), facts.function_changes.values("lineage_id"), strict=True):
        if lineage not in listed:  # (those are followed below, with the older changes of theirs)
            changed.setdefault(sha_, []).append(lineage)
    shas, left_out = _left_out(changed.items(), merges.reached(head, order, new_parents, sides))
    if listed:
        more_shas, more = _discarded(writer, head, merges.Lineages(listed))
        shas += more_shas
        left_out += more
    return shas, left_out


def _sides(shas: Iterable[str], parents: Iterable[int | None], lineages: Iterable[list[str]]) -> merges.Sides:
    """Per merge, per parent it has definitions as (`merges.Sides`), from rows of `history.merge_lineages`."""
    sides: merges.Sides = {}
    for sha, parent, ids in zip(shas, parents, lineages, strict=True):
        side = sides.setdefault(sha, {})
        side[parent] = side.get(parent, frozenset()).union(ids)
    return sides


def _left_out(
    changed: Iterable[tuple[str, list[str]]], reach: dict[str, merges.Lineages]
) -> tuple[list[str], list[str]]:
    """(sha, lineage) of the changes (`changed`: per commit, the lineages it changed) of
    definitions that do not reach their commit (`reach`)."""
    shas: list[str] = []
    left_out: list[str] = []
    for sha, ids in changed:
        reaching = reach.get(sha, merges.NONE)
        gone = reaching.names.intersection(ids) if reaching.but else set(ids).difference(reaching.names)
        shas += [sha] * len(gone)
        left_out += sorted(gone)
    return shas, left_out


def _arrow(writer: Writer, sql: str) -> pa.Table:
    rel = writer.con.sql(sql)
    return rel.to_arrow_table() if rel is not None else pa.table({})


def _insert(writer: Writer, rows: TableRows) -> int:
    return writer.insert_batches(rows.table_name, rows.batches()) if len(rows) else 0


def insert_lineages(writer: Writer, *, only_touched: bool) -> int:
    """Compute `history.lineages` (every lineage, or those of `_ci_touched`), at most about
    `LINEAGES_AT_ONCE` lineages a query (`lineages_sql`'s parts); returns the rows written."""
    if only_touched:
        source = "SELECT lineage_id FROM _ci_touched"
    else:
        source = f"SELECT lineage_id FROM {Table.FUNCTION_CHANGES} UNION ALL SELECT lineage_id FROM {Table.HEAD_DEFS}"
    ((lineages,),) = writer.con.execute(f"SELECT approx_count_distinct(lineage_id) FROM ({source})").fetchall()
    parts = max(1, -(-int(lineages or 0) // LINEAGES_AT_ONCE))
    return sum(
        insert_query(writer, Table.LINEAGES, lineages_sql(only_touched, part, parts)) for part in range(parts)
    )


def insert_query(writer: Writer, table: str, sql: str) -> int:
    """Insert the rows of a query (columns matched by name); returns how many."""
    found = writer.con.execute(f"INSERT INTO {table} BY NAME {sql}").fetchone()
    count = int(found[0]) if found else 0
    writer.rows_written += count
    return count


def _register(writer: Writer, name: str, **column: Sequence[str]) -> str:
    ((col, values),) = column.items()
    writer.con.register(name, pa.table({col: pa.array(list(values), pa.string())}))
    return name


def _column(writer: Writer, sql: str) -> list[str]:
    return [r[0] for r in writer.con.execute(sql).fetchall()]
