"""History analytics on hand-made facts: the rules of each query, checked on a database built
in the test (commits, function and file changes, HEAD's definitions, metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from codeintel.analysis.history import (
    HistoryAnalyticsSettings,
    change_coupling_sql,
    file_history_sql,
    function_history_sql,
    hotspots_sql,
    lineages_sql,
    ownership_sql,
)
from codeintel.config import StorageConfig
from codeintel.storage.catalog import Table
from codeintel.storage.gateway import StorageGateway

HEAD_TIME = datetime(2024, 6, 30, 12, tzinfo=UTC)


class Facts:
    """A history built commit by commit (the last one added is HEAD)."""

    def __init__(self) -> None:
        self.commits: list[dict[str, Any]] = []
        self.functions: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []

    def commit(
        self, sha: str, days_ago: float, author: str = "ann", *, huge: bool = False, ignored: bool = False,
        bot: bool = False, merge: bool = False,
    ) -> str:  # fmt: skip
        at = HEAD_TIME - timedelta(days=days_ago)
        self.commits.append(
            {
                "sha": sha, "parents": [self.commits[-1]["sha"]] if self.commits else [], "author_name": author.title(),
                "author_email": f"{author}@example.com", "author_time": at, "committer_name": author,
                "committer_email": f"{author}@example.com", "committer_time": at, "subject": sha,
                "generation": len(self.commits) + 1, "is_merge": merge, "py_files": 1, "lines_added": 0,
                "lines_deleted": 0, "is_huge": huge, "is_ignored": ignored, "is_bot": bot, "is_shallow_boundary": False,
            }
        )  # fmt: skip
        return sha

    def change(self, sha: str, lineage: str, added: int, deleted: int = 0, event: str = "modified", path: str = "a.py") -> None:
        self.functions.append(
            {
                "sha": sha, "lineage_id": lineage, "path": path, "qualname": lineage, "kind": "function", "ordinal": 0,
                "event": event, "lines_added": added, "lines_deleted": deleted, "file_id": "f-" + path,
            }
        )  # fmt: skip

    def file_change(self, sha: str, path: str, added: int, deleted: int = 0, status: str = "M") -> None:
        self.files.append(
            {
                "sha": sha, "path": path, "status": status, "lines_added": added, "lines_deleted": deleted,
                "file_id": "f-" + path,
            }
        )  # fmt: skip


@pytest.fixture
def facts() -> Facts:
    return Facts()


def build(tmp_path: Path, facts: Facts, heads: dict[str, str], metrics: dict[str, int] | None = None) -> StorageGateway:
    """A database with `facts`, HEAD's definitions (lineage -> path) and cyclomatic complexity
    per lineage."""
    gateway = StorageGateway(StorageConfig(tmp_path / "db" / "c.duckdb"))
    gateway.ensure_schema()
    with gateway.writer("test") as w:
        w.insert(Table.COMMITS, facts.commits)
        w.insert(Table.FUNCTION_CHANGES, facts.functions)
        w.insert(Table.FILE_CHANGES, facts.files)
        w.insert(Table.HEAD_DEFS, [
            {"path": p, "blob": "b", "lineage_id": lin, "goid": "g-" + lin, "qualname": lin, "kind": "function",
             "ordinal": 0, "file_id": "f-" + p}
            for lin, p in heads.items()
        ])  # fmt: skip
        paths = sorted(set(heads.values()) | {f["path"] for f in facts.files})
        w.insert(Table.HEAD_FILES, [{"path": p, "blob": "b", "file_id": "f-" + p} for p in paths])
        w.insert(Table.FILES, [{"path": p, "module": p[:-3], "size": 1, "hash": "h"} for p in paths])
        w.insert(Table.FUNCTION_METRICS, [
            {"goid": "g-" + lin, "path": heads[lin], "qualname": lin, "kind": "function", "cyclomatic": cc, "loc": 10}
            for lin, cc in (metrics or {}).items()
        ])  # fmt: skip
        w.insert(Table.HISTORY_STATE, [{"head": facts.commits[-1]["sha"], "shallow": [], "digest": "d", "mode": "cold", "commits": 1}])
        w.execute(f"INSERT INTO {Table.LINEAGES} BY NAME {lineages_sql(only_touched=False)}")
    return gateway


def rows(gateway: StorageGateway, sql: str, key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in gateway.query(sql).to_pylist()}


def test_function_history_counts_real_changes_in_windows_from_head_time(tmp_path: Path, facts: Facts) -> None:
    facts.change(facts.commit("c1", 400), "f", 10, event="created")
    facts.change(facts.commit("c2", 100, "bob"), "f", 3, 1)
    facts.change(facts.commit("c3", 50, ignored=True), "f", 30, 30)  # a reformat: identity only
    facts.change(facts.commit("c4", 20, "dependabot", bot=True), "f", 1, 1)
    facts.change(facts.commit("c5", 10, huge=True), "f", 5, 5)
    facts.commit("c6", 0)
    history = rows(build(tmp_path, facts, {"f": "a.py"}), function_history_sql(), "lineage_id")["f"]
    assert history["commits"] == 3  # c1, c2, c4 (c3 ignored, c5 huge)
    assert (history["lines_added"], history["lines_deleted"]) == (14, 2)
    assert history["authors"] == 2  # ann and bob; the bot is not an author
    assert history["churn_30d"] == 2 and history["churn_90d"] == 2 and history["churn_365d"] == 6
    assert history["created_sha"] == "c1" and history["last_sha"] == "c4"
    assert history["age_days"] == pytest.approx(400)


def test_hotspots_score_is_relative_revisions_times_relative_complexity(tmp_path: Path, facts: Facts) -> None:
    for i in range(4):
        sha = facts.commit(f"c{i}", 10 + i)
        facts.change(sha, "hot", 2)
        facts.file_change(sha, "a.py", 2)
        if i < 2:
            facts.change(sha, "warm", 1)
    facts.change(facts.commit("old", 500), "cold", 5)  # outside the window
    facts.commit("head", 0)
    gateway = build(tmp_path, facts, {"hot": "a.py", "warm": "a.py", "cold": "a.py"}, {"hot": 5, "warm": 10, "cold": 20})
    spots = rows(gateway, hotspots_sql(HistoryAnalyticsSettings(hotspot_window_days=365)), "entity")
    assert spots["g-hot"]["score"] == pytest.approx(1.0 * 5 / 10)
    assert spots["g-warm"]["score"] == pytest.approx(0.5 * 10 / 10)
    assert "g-cold" not in spots
    assert spots["g-hot"]["rank"] == 1 and spots["g-warm"]["rank"] == 2  # ties by revisions
    assert spots["a.py"]["scope"] == "file" and spots["a.py"]["revisions"] == 4


def test_change_coupling_is_shared_revisions_over_mean_revisions_with_thresholds(tmp_path: Path, facts: Facts) -> None:
    for i in range(6):
        sha = facts.commit(f"c{i}", 30 - i)
        facts.change(sha, "a", 1)
        if i < 5:
            facts.change(sha, "b", 1)
        if i < 2:
            facts.change(sha, "c", 1)
    merge = facts.commit("m", 5, merge=True)
    facts.change(merge, "a", 1)
    facts.change(merge, "b", 1)
    facts.commit("head", 0)
    gateway = build(tmp_path, facts, {"a": "a.py", "b": "b.py", "c": "c.py"})
    pairs = gateway.query(change_coupling_sql(HistoryAnalyticsSettings())).to_pylist()
    assert [(p["entity_a"], p["entity_b"], p["shared_revisions"]) for p in pairs] == [("g-a", "g-b", 5)]
    assert pairs[0]["degree"] == pytest.approx(5 / ((6 + 5) / 2))  # the merge is not a shared revision
    strict = gateway.query(change_coupling_sql(HistoryAnalyticsSettings(coupling_min_degree=0.95))).to_pylist()
    assert strict == []


def test_ownership_names_the_author_of_most_added_lines_and_leaves_bots_out(tmp_path: Path, facts: Facts) -> None:
    facts.change(facts.commit("c1", 30, "ann"), "f", 10, event="created")
    facts.change(facts.commit("c2", 20, "bob"), "f", 15)
    facts.change(facts.commit("c3", 10, "ann"), "f", 2)
    facts.change(facts.commit("c4", 5, "renovate", bot=True), "f", 100)
    facts.commit("head", 0)
    owner = rows(build(tmp_path, facts, {"f": "a.py"}), ownership_sql(), "entity")["g-f"]
    assert (owner["main_author"], owner["main_author_lines"], owner["author_count"]) == ("Bob", 15, 2)
    assert owner["main_author_share"] == pytest.approx(15 / 27)
    assert owner["authors"] == ["Bob", "Ann"]


def test_lineages_know_creation_last_change_deletion_and_truncation(tmp_path: Path, facts: Facts) -> None:
    facts.change(facts.commit("c1", 30), "kept", 4, event="created")
    facts.change(facts.commit("c2", 20), "kept", 1, event="renamed")
    facts.change("c2", "gone", 3, event="created")
    facts.change(facts.commit("c3", 10), "gone", 0, 3, event="deleted")
    facts.commit("head", 0)
    gateway = build(tmp_path, facts, {"kept": "a.py", "shallow": "a.py"})
    lineages = rows(gateway, f"SELECT * FROM {Table.LINEAGES}", "lineage_id")
    assert lineages["kept"]["created_sha"] == "c1" and lineages["kept"]["last_sha"] == "c2"
    assert lineages["kept"]["goid"] == "g-kept" and lineages["kept"]["renames"] == 1
    assert lineages["gone"]["deleted_sha"] == "c3" and lineages["gone"]["goid"] is None
    assert lineages["shallow"]["is_truncated"] and lineages["shallow"]["created_sha"] is None


def test_file_history_follows_a_file_through_its_id(tmp_path: Path, facts: Facts) -> None:
    facts.file_change(facts.commit("c1", 30), "a.py", 10, status="A")
    facts.file_change(facts.commit("c2", 20, "bob"), "a.py", 2, 2)
    facts.commit("head", 0)
    history = rows(build(tmp_path, facts, {}), file_history_sql(), "path")["a.py"]
    assert (history["commits"], history["authors"], history["created_sha"]) == (2, 2, "c1")
