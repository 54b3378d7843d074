"""Configuration: frozen dataclasses and the one loader that builds them.

Settings come from, in order of precedence: CLI flags, `CODEINTEL_*` environment variables,
`[tool.codeintel]` in the analysed repository's `pyproject.toml`, then the defaults below.
Nothing else in the package reads the environment or settings files.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeintel.errors import ConfigError, did_you_mean

DEFAULT_DB = Path("build/codeintel.duckdb")
DEFAULT_IGNORED_DIRS = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "build",
    "dist",
    ".eggs",
)
EXECUTORS = ("serial", "process", "dask")


@dataclass(frozen=True, slots=True)
class ScanProfile:
    """Which files a scan considers. Symbolic links are never followed (recorded as skips)."""

    include: tuple[str, ...] = ("*.py",)
    exclude: tuple[str, ...] = ()
    ignored_dirs: tuple[str, ...] = DEFAULT_IGNORED_DIRS
    max_file_size: int = 2_000_000


@dataclass(frozen=True, slots=True)
class ToolsConfig:
    """External tools and how long each may run."""

    git: str = "git"
    git_timeout_s: float = 120.0
    pyrefly: str = ""  # the pinned pyrefly beside the running Python (or on PATH) when empty
    pyrefly_timeout_s: float = 900.0
    pyrefly_python: str = ""  # the interpreter whose packages pyrefly resolves imports in (default: this one)


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """The git history's settings: which commits are flagged, and the analytics' windows.

    A commit changing more `.py` files than `huge_commit_files` is huge; commits listed by
    `blame.ignoreRevsFile` / `.git-blame-ignore-revs` are ignored (reformats); an author
    matching `bot_pattern` (a regular expression; empty: the built-in list of bots) is a bot.
    Huge and ignored commits count for identity, not for churn, ownership or coupling.
    """

    huge_commit_files: int = 30
    bot_pattern: str = ""
    timeout_s: float = 3600.0
    hotspot_window_days: int = 365
    coupling_min_revisions: int = 5
    coupling_min_shared: int = 5
    coupling_min_degree: float = 0.30
    coupling_window_days: int = 0  # 0: the whole history
    timeseries_weeks: int = 52
    timeseries_interval_days: int = 7
    split_min_commits: int = 4000  # a longer history's cold walk runs in two halves at once; 0: never
    inline_max_commits: int = 8000  # a cold walk of a history this long or shorter, not cut, runs in the step's process


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """How per-file work runs: serially, in a process pool, or on a Dask cluster."""

    scan: ScanProfile = field(default_factory=ScanProfile)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    executor: str = "process"
    workers: int = 0  # 0 = one per core
    dask_address: str | None = None

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class SnapshotConfig:
    """The repository being indexed and the commit it is at (None outside git)."""

    repo_root: Path
    repo_name: str
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where the databases live.

    `db_path` is the published, read-only copy that readers use; the pipeline writes to
    `work_db_path` and publishes it atomically after every successful run.
    """

    db_path: Path = DEFAULT_DB
    lock_timeout_s: float = 300.0
    out_dir: Path | None = None  # where each publish is also dumped as Parquet/JSONL (codeintel/serving/dump.py)

    @property
    def work_db_path(self) -> Path:
        return self.db_path.with_name(self.db_path.stem + ".work" + self.db_path.suffix)

    @property
    def lock_path(self) -> Path:
        return self.work_db_path.with_name(self.work_db_path.name + ".lock")


@dataclass(frozen=True, slots=True)
class PathsConfig:
    """Scratch space for a run (temporary files, tool output)."""

    build_dir: Path = Path("build")


# setting name -> (section, field, parser)
_SETTINGS: dict[str, tuple[str, str, Any]] = {
    "db": ("storage", "db_path", Path),
    "lock_timeout": ("storage", "lock_timeout_s", float),
    "out_dir": ("storage", "out_dir", Path),
    "executor": ("execution", "executor", str),
    "workers": ("execution", "workers", int),
    "dask_address": ("execution", "dask_address", str),
    "include": ("scan", "include", "list"),
    "exclude": ("scan", "exclude", "list"),
    "ignored_dirs": ("scan", "ignored_dirs", "list"),
    "max_file_size": ("scan", "max_file_size", int),
    "git": ("tools", "git", str),
    "git_timeout": ("tools", "git_timeout_s", float),
    "pyrefly": ("tools", "pyrefly", str),
    "pyrefly_timeout": ("tools", "pyrefly_timeout_s", float),
    "pyrefly_python": ("tools", "pyrefly_python", str),
    "repo_name": ("snapshot", "repo_name", str),
    "build_dir": ("paths", "build_dir", Path),
    "history_huge_commit_files": ("history", "huge_commit_files", int),
    "history_bot_pattern": ("history", "bot_pattern", "regex"),
    "history_timeout": ("history", "timeout_s", float),
    "history_hotspot_window_days": ("history", "hotspot_window_days", int),
    "history_coupling_min_revisions": ("history", "coupling_min_revisions", int),
    "history_coupling_min_shared": ("history", "coupling_min_shared", int),
    "history_coupling_min_degree": ("history", "coupling_min_degree", float),
    "history_coupling_window_days": ("history", "coupling_window_days", int),
    "history_timeseries_weeks": ("history", "timeseries_weeks", int),
    "history_timeseries_interval_days": ("history", "timeseries_interval_days", int),
    "history_split_min_commits": ("history", "split_min_commits", int),
    "history_inline_max_commits": ("history", "inline_max_commits", int),
}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """The result of `load_config`: every section, ready to build a pipeline context."""

    snapshot: SnapshotConfig
    execution: ExecutionConfig
    storage: StorageConfig
    paths: PathsConfig


def load_config(
    repo_root: Path,
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    commit: str | None = None,
) -> LoadedConfig:
    """Build the configuration for indexing `repo_root`.

    Args:
        repo_root: The repository to index.
        cli: Settings given as CLI flags (names as in `_SETTINGS`); None values are ignored.
        env: The environment to read `CODEINTEL_*` from (default: `os.environ`).
        commit: The commit the snapshot is at, when known.

    Raises:
        ConfigError: On an unknown setting in pyproject or a value of the wrong type.
    """
    repo_root = repo_root.resolve()
    if not repo_root.is_dir():
        raise ConfigError(f"repository {repo_root} is not a directory; pass an existing path")
    values: dict[str, Any] = {}
    values.update(_from_pyproject(repo_root / "pyproject.toml"))
    env = os.environ if env is None else env
    for name in _SETTINGS:
        raw = env.get("CODEINTEL_" + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    values.update({k: v for k, v in (cli or {}).items() if v is not None})
    sections: dict[str, dict[str, Any]] = {
        s: {} for s in ("storage", "execution", "scan", "tools", "snapshot", "paths", "history")
    }
    for name, raw in values.items():
        section, attr, parser = _SETTINGS[name]
        sections[section][attr] = _parse(name, raw, parser)
    execution = ExecutionConfig(
        scan=ScanProfile(**sections["scan"]),
        tools=ToolsConfig(**sections["tools"]),
        history=HistoryConfig(**sections["history"]),
        **sections["execution"],
    )
    if execution.executor not in EXECUTORS:
        raise ConfigError(f"executor {execution.executor!r} is not one of {', '.join(EXECUTORS)}")
    snapshot = SnapshotConfig(
        repo_root=repo_root, repo_name=sections["snapshot"].get("repo_name", repo_root.name), commit=commit
    )
    storage = StorageConfig(**sections["storage"])
    paths = PathsConfig(**sections["paths"])
    return LoadedConfig(snapshot=snapshot, execution=execution, storage=storage, paths=paths)


def _from_pyproject(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read [tool.codeintel]: {exc}") from exc
    table = data.get("tool", {}).get("codeintel", {})
    settings = {key.replace("-", "_"): value for key, value in table.items()}
    for key in settings:
        if key not in _SETTINGS:
            raise ConfigError(f"{path}: unknown setting [tool.codeintel] {key}" + did_you_mean(key, _SETTINGS))
    return settings


# timeouts of a tool or a walk (0 would stop every run of it at once; the lock's 0: do not wait),
# and the largest file indexed (0 would index no file; the history walk took it for no limit)
_POSITIVE = {
    "git_timeout": "a number of seconds more than 0",
    "pyrefly_timeout": "a number of seconds more than 0",
    "history_timeout": "a number of seconds more than 0",
    "max_file_size": "a size in bytes more than 0",
}


def _parse(name: str, raw: Any, parser: Any) -> Any:
    try:
        if parser == "list":
            if isinstance(raw, str):
                return tuple(part.strip() for part in raw.split(",") if part.strip())
            return tuple(str(part) for part in raw)
        if parser == "regex":
            re.compile(str(raw))
            return str(raw)
        value = parser(raw)
    except (TypeError, ValueError, re.error) as exc:
        what = "a regular expression" if parser == "regex" else "valid"
        raise ConfigError(f"setting {name}={raw!r} is not {what}: {exc}") from exc
    if parser in (int, float):  # sizes, counts, timeouts, days, shares
        if isinstance(raw, bool) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"setting {name}={raw!r} is not valid: a finite number of 0 or more is expected")
        if name in _POSITIVE and value == 0:
            raise ConfigError(f"setting {name}={raw!r} is not valid: {_POSITIVE[name]} is expected")
    return value
