"""Shared fixtures: real git repositories in tmp_path and in-process pipeline runs on them.

`make_repo` writes files and commits them with real `git` (identity passed with `-c`, global and
system git config ignored).  `make_indexer` runs the pipeline in this process on such a repo with
a DuckDB file under tmp_path, the serial executor by default (fast; the pool test asks for
processes), and reads the published copy or the work database back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from codeintel.config import load_config
from codeintel.ingestion import filework
from codeintel.ingestion.tools import ToolService
from codeintel.orchestration.context import PipelineContext, PipelineContextConfig
from codeintel.orchestration.steps import PipelineRun, StepEvent, run_pipeline
from codeintel.storage.catalog import CATALOG
from codeintel.storage.gateway import StorageGateway

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT / ".." / "shared"

FileMap = Mapping[str, "str | bytes | None"]

_GIT_IDENTITY = (
    "-c", "user.name=CodeIntel Tests", "-c", "user.email=tests@codeintel.invalid",
    "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", "-c", "core.autocrlf=false",
)  # fmt: skip


def git(repo: Path, *args: str, date_index: int = 0, date: str | None = None) -> str:
    """Run git in `repo` with a fixed identity and no user/system config; return stdout.  The
    author and committer date: `date` (ISO 8601), else the `date_index`th day of January 2024."""
    date = date or f"2024-01-{1 + date_index % 28:02d}T12:00:00+00:00"
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
    }
    done = subprocess.run(
        ["git", *_GIT_IDENTITY, *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {done.stderr}")
    return done.stdout


def write_files(root: Path, files: FileMap) -> None:
    """Write `files` under `root` (str is dedented, bytes written as is, None deletes)."""
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")


@dataclass
class GitRepo:
    """A real git repository in tmp_path."""

    root: Path
    commits: int = 0

    def write(self, files: FileMap) -> None:
        write_files(self.root, files)

    def commit(self, message: str = "change") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message, date_index=self.commits)
        self.commits += 1
        return self.head()

    def apply(self, files: FileMap, message: str = "change") -> str:
        """Write (or delete) `files` and commit; returns the new commit."""
        self.write(files)
        return self.commit(message)

    def head(self) -> str:
        return git(self.root, "rev-parse", "HEAD").strip()


MakeRepo = Callable[..., GitRepo]


def create_repo(
    base: Path, files: FileMap, commits: Sequence[FileMap] = (), *, name: str = "repo", use_git: bool = True
) -> GitRepo:
    """Create `base/name`, write `files` and commit them, then one commit per mapping of `commits`."""
    root = base / name
    root.mkdir(parents=True)
    repo = GitRepo(root)
    write_files(root, files)
    if not use_git:
        return repo
    git(root, "init", "-q")
    repo.commit("initial")
    for i, change in enumerate(commits, start=1):
        repo.apply(change, f"change {i}")
    return repo


@pytest.fixture
def make_repo() -> MakeRepo:
    """`make_repo(tmp_path, files, commits=(...), name="repo", use_git=True)` -> GitRepo.

    Creates `tmp_path/name`, writes `files` and commits them; each mapping of `commits` is then
    applied as one more commit (None deletes a file).  With `use_git=False` the directory is a
    plain tree (no .git).
    """
    return create_repo


@dataclass
class Indexer:
    """Runs the pipeline in-process on one repo into one DB, and reads the result back."""

    repo: Path
    db: Path
    git: GitRepo | None = None

    def config(
        self, *, executor: str = "serial", workers: int = 1, full: bool = False, **settings: Any
    ) -> PipelineContextConfig:
        cli = {"db": self.db, "executor": executor, "workers": workers, **settings}
        loaded = load_config(self.repo, cli=cli, env={})
        commit = ToolService(loaded.execution.tools).git_head(loaded.snapshot.repo_root)
        snapshot = type(loaded.snapshot)(loaded.snapshot.repo_root, loaded.snapshot.repo_name, commit)
        loaded = type(loaded)(snapshot=snapshot, execution=loaded.execution, storage=loaded.storage, paths=loaded.paths)
        return PipelineContextConfig.from_loaded(loaded, full=full)

    def run(
        self,
        select: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        *,
        on_event: StepEvent | None = None,
        **config: Any,
    ) -> PipelineRun:
        with PipelineContext(self.config(**config)) as ctx:
            return run_pipeline(ctx, select, exclude, on_event=on_event)

    @property
    def gateway(self) -> StorageGateway:
        return StorageGateway(self.config().storage)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of `sql` on the published copy (what readers see)."""
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql, list(params) if params else []).fetchall()
        finally:
            con.close()

    def table_rows(self, table: str, *, without: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        """Every row of a catalog table on the published copy, in catalog column order (but the
        columns `without`), sorted: for comparing two databases' tables."""
        columns = ", ".join(f'"{c}"' for c in CATALOG[table].column_names if c not in without)
        return sorted(self.query(f"SELECT {columns} FROM {table}"), key=repr)

    def work_query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of `sql` on the work database (through the gateway's shared lock)."""
        return self.gateway.query(sql, params).to_pylist()

    def step_runs(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The ledger rows of one run, by step (last attempt wins)."""
        rows = self.work_query("SELECT * FROM meta.step_runs WHERE run_id = ? ORDER BY attempt", [run_id])
        return {r["step"]: r for r in rows}


MakeIndexer = Callable[..., Indexer]


@pytest.fixture
def make_indexer(tmp_path: Path) -> MakeIndexer:
    """`make_indexer(repo_root, db=None)` -> Indexer with its DB under tmp_path/db/."""

    def _make(repo: Path | GitRepo, db: Path | None = None) -> Indexer:
        root = repo.root if isinstance(repo, GitRepo) else repo
        return Indexer(root, db or tmp_path / "db" / "codeintel.duckdb", repo if isinstance(repo, GitRepo) else None)

    return _make


_TEMPLATES: dict[str, Path] = {}


@pytest.fixture
def indexed_copy(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, FileMap], Indexer]:
    """`indexed_copy(key, files)` -> an Indexer on a private copy of a repo already indexed once.

    The first request for `key` creates the repo and runs the pipeline (about a second); later
    requests copy that repo and its databases (mtimes kept, so the copy is "unchanged").
    """

    def _get(key: str, files: FileMap) -> Indexer:
        if key not in _TEMPLATES:
            base = tmp_path_factory.mktemp(f"template-{key}")
            repo = create_repo(base, files)
            Indexer(repo.root, base / "db" / "codeintel.duckdb").run()
            _TEMPLATES[key] = base
        copy = tmp_path / "indexed"
        shutil.copytree(_TEMPLATES[key], copy, symlinks=True)
        return Indexer(copy / "repo", copy / "db" / "codeintel.duckdb", GitRepo(copy / "repo", commits=1))

    return _get


@pytest.fixture
def parse_counts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Per path, how often the per-file work of this process reads and parses it (batches run in
    the test's process when the work is small or there is one worker)."""
    parsed: Counter[str] = Counter()
    read_and_parse = filework.read_and_parse

    def counting(root: Path, path: str, max_size: int) -> Any:
        parsed[path] += 1
        return read_and_parse(root, path, max_size)

    monkeypatch.setattr(filework, "read_and_parse", counting)
    return parsed


@pytest.fixture(autouse=True)
def _no_codeintel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the developer's CODEINTEL_* settings out of every test."""
    for name in list(os.environ):
        if name.startswith("CODEINTEL_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def shared_dir() -> Path:
    """../shared next to the repository (corpora, benchmarks); skips when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data directory {SHARED_DIR.resolve()} not found (expected next to the repository)")
    return SHARED_DIR.resolve()
