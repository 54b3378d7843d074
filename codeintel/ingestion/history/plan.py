"""What a history walk is asked to do (a plan, its settings, the half of a split walk) and what it
gives back (`HistoryFacts`): plain records, light to import (the walk's child process waits on
its two halves holding no more than these: `apart`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from codeintel.config import DEFAULT_IGNORED_DIRS, ScanProfile

if TYPE_CHECKING:
    import pyarrow as pa

    from codeintel.ingestion.history.versions import VersionKey


# the tables a walk gives (`HistoryFacts`' fields), as its child process writes them
FACT_TABLES = ("commits", "file_changes", "function_changes", "versions", "merge_lineages", "head_files", "head_defs")


class PlanMode(StrEnum):
    NONE = "none"  # not a git repository, or no commit yet
    NOOP = "noop"
    COLD = "cold"
    INCREMENTAL = "incremental"


@dataclass(frozen=True, slots=True)
class RepoHistory:
    """Where the repository's history stands: HEAD, shallow boundary, what the settings and
    the files that flag commits hash to."""

    head: str | None
    shallow: frozenset[str]
    digest: str
    # where the indexed directory is in the repository ("pkg/" for `codeintel export repo/pkg`,
    # "" at the top): git names files from the top, the history stores them from the directory
    prefix: str = ""
    why_no_head: str = ""  # when `head` is None: why (git missing, no commit, not a repository)


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """What the database holds of the history walked last."""

    head: str | None = None
    shallow: frozenset[str] = frozenset()
    digest: str | None = None
    damaged: bool = False  # a commit stored twice


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    mode: PlanMode
    repo: RepoHistory
    new_commits: int = 0
    boundary: tuple[str, ...] = ()  # walked commits the new ones descend from
    gone: tuple[str, ...] = ()  # walked commits no longer reachable from HEAD
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """The history's settings (from `codeintel.config.HistoryConfig`) and where ignore lists are."""

    huge_commit_files: int = 30
    bot_pattern: str = ""
    timeout_s: float = 3600.0
    defs_budget: int = 300_000
    lines_budget: int = 800_000
    split_min_commits: int = 4000  # a cold walk of a longer history runs in two processes at once (`split`); 0: never
    # a cold walk, not cut, of a history this long or shorter runs in the step's process (`walk.walk_history`)
    inline_max_commits: int = 8000
    # a version larger (bytes) has no definitions, as the scan indexes no file larger (`ScanProfile`)
    max_file_size: int = 2_000_000
    # HEAD's files (`history.head_files`, `head_defs`: what the analytics are of) are those the scan
    # takes (`ScanProfile`'s patterns; the history's facts keep every `.py` file)
    include: tuple[str, ...] = ("*.py",)
    exclude: tuple[str, ...] = ()
    ignored_dirs: tuple[str, ...] = DEFAULT_IGNORED_DIRS

    @property
    def profile(self) -> ScanProfile:
        return ScanProfile(tuple(self.include), tuple(self.exclude), tuple(self.ignored_dirs), self.max_file_size)


class TableRows(Protocol):
    """Rows of one history table: gathered (`lineage.Columns`) or read back (`apart.Rows`)."""

    table_name: str

    def table(self) -> pa.Table: ...

    def batches(self) -> pa.RecordBatchReader: ...

    def values(self, name: str) -> list[Any]: ...

    def __len__(self) -> int: ...


@dataclass
class HistoryFacts:
    """What a walk adds: rows per history table, the HEAD files and definitions of the files
    whose blob changed (`head_paths`: the paths whose HEAD rows they replace; all when cold),
    and figures."""

    commits: TableRows
    file_changes: TableRows
    function_changes: TableRows
    versions: TableRows
    merge_lineages: TableRows
    head_files: TableRows
    head_defs: TableRows
    head_paths: list[str]
    cold: bool
    stats: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # the newer half of a split walk (`split`): the versions made before it met as old ones, made again
    orphans: TableRows | None = None
    made_again: TableRows | None = None


@dataclass(frozen=True, slots=True)
class WalkPart:
    """One half of a cold walk cut in two (`split`): the older one walks the commits of the
    cut's boundary and their ancestors (no HEAD rows); the newer one the commits after them,
    knowing the generations of every commit and which versions the older half made."""

    older: bool
    boundary: tuple[str, ...]
    generations: dict[str, int] | None = None
    made_before: frozenset[VersionKey] | None = None
