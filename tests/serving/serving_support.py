"""The project the serving tests index, and the synchronous MCP client they call it through.

`PROJECT` is a small package with classes, overloads, an import cycle, a dynamic call, and tests
that reach the code through several hops.  `Project` is a real git repository of it (commits with
a fixed identity and dates, no user or system git config) and its database, exported by the real
pipeline: the steps the server reads (`docs_views` and the steps before it), so that other steps
of the pipeline never decide whether the server's tests can run.  `Mcp` calls the SDK's own
`Client` from the test's thread through an anyio blocking portal, so a test reads like a series of
calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from anyio.from_thread import BlockingPortal
from mcp import Client

from codeintel.config import load_config
from codeintel.ingestion.tools import ToolService
from codeintel.orchestration.context import PipelineContext, PipelineContextConfig
from codeintel.orchestration.steps import PipelineRun, run_pipeline
from codeintel.serving.snapshot import SnapshotStore
from tests.conftest import git as conftest_git
from tests.conftest import write_files

SERVED_STEPS = ["docs_views"]  # and its ancestors: everything the server reads
def git(repo: Path, *args: str, date_index: int = 0) -> str:
    """`tests.conftest.git`, dated in February 2024."""
    return conftest_git(repo, *args, date=f"2024-02-{1 + date_index % 28:02d}T12:00:00+00:00")


@dataclass
class Project:
    """A git repository and the database the pipeline exports it to."""

    repo: Path
    db: Path
    commits: int = 0

    @classmethod
    def create(cls, base: Path, files: Mapping[str, str | bytes | None]) -> Project:
        project = cls(base / "repo", base / "db" / "codeintel.duckdb")
        project.repo.mkdir(parents=True)
        git(project.repo, "init", "-q")
        project.apply(files, "initial")
        return project

    def write(self, files: Mapping[str, str | bytes | None]) -> None:
        write_files(self.repo, files)

    def commit(self, message: str = "change") -> str:
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "--allow-empty", "-m", message, date_index=self.commits)
        self.commits += 1
        return git(self.repo, "rev-parse", "HEAD").strip()

    def apply(self, files: Mapping[str, str | bytes | None], message: str = "change") -> str:
        self.write(files)
        return self.commit(message)

    def config(self) -> PipelineContextConfig:
        loaded = load_config(self.repo, cli={"db": self.db, "executor": "serial", "workers": 1}, env={})
        commit = ToolService(loaded.execution.tools).git_head(loaded.snapshot.repo_root)
        snapshot = type(loaded.snapshot)(loaded.snapshot.repo_root, loaded.snapshot.repo_name, commit)
        return PipelineContextConfig.from_loaded(type(loaded)(snapshot, loaded.execution, loaded.storage, loaded.paths))

    def run(self, *also: str) -> PipelineRun:
        """Export (the served steps, and `also`) and publish, as `codeintel export --select docs_views` does."""
        with PipelineContext(self.config()) as ctx:
            return run_pipeline(ctx, [*SERVED_STEPS, *also])

    def copy(self, base: Path) -> Project:
        """A private copy (mtimes kept: the copy is unchanged for the pipeline)."""
        shutil.copytree(self.repo.parent, base, symlinks=True)
        return Project(base / "repo", base / "db" / "codeintel.duckdb", self.commits)

PROJECT: dict[str, str | bytes | None] = {
    "pkg/__init__.py": '''
        """The sample package."""
        from pkg.core import Engine, execute

        __all__ = ["Engine", "execute"]
    ''',
    "pkg/core.py": '''
        """The engine: plans and runs queries."""
        from typing import overload

        from pkg import helpers


        class Engine:
            """Runs queries."""

            def __init__(self, name: str = "default") -> None:
                self.name = name

            def run(self, query: str) -> str:
                """Plan, then normalize the query."""
                plan = self._plan(query)
                return helpers.normalize(plan)

            def _plan(self, query: str) -> str:
                if not query:
                    return "empty"
                return query + "!"


        @overload
        def fetch(key: int) -> int: ...


        @overload
        def fetch(key: str) -> str: ...


        def fetch(key):
            """The implementation behind the overloads."""
            return helpers.normalize(str(key))


        def execute(query: str) -> str:
            """Run `query` on a fresh engine."""
            return Engine().run(query)
    ''',
    "pkg/helpers.py": '''
        """Small helpers."""


        def normalize(text: str) -> str:
            """Strip and lower."""
            return text.strip().lower()


        def classify(value: int) -> str:
            if value < 0:
                return "negative"
            elif value == 0:
                return "zero"
            elif value < 10:
                return "small"
            elif value < 100:
                return "medium"
            for step in range(3):
                if value % (step + 2) == 0:
                    return "even-ish"
            return "large"


        def unused() -> None:
            pass
    ''',
    "pkg/api.py": '''
        """The public entry points."""
        from pkg.core import execute, fetch


        def handle(request):
            """Handle one request."""
            return execute(request.query)


        def lookup(key):
            return fetch(key)


        def dynamic(obj):
            return obj.run("anything")


        class Runner:
            def run(self, job):
                return handle(job)
    ''',
    "pkg/typed.py": '''
        """Calls only the type checker resolves: the engine comes in as an annotated parameter."""
        from pkg.core import Engine


        def drive(engine: Engine) -> str:
            return engine.run("select 1")
    ''',
    "pkg/cycle_a.py": '''
        from pkg import cycle_b


        def ping(n):
            return cycle_b.pong(n - 1) if n else 0
    ''',
    "pkg/cycle_b.py": '''
        from pkg import cycle_a


        def pong(n):
            return cycle_a.ping(n - 1) if n else 1
    ''',
    "tests/test_core.py": '''
        from pkg.core import Engine, execute


        def test_execute():
            assert execute(" X ") == "x!"


        class TestEngine:
            def test_run(self):
                assert Engine().run("q") == "q!"

            def helper(self):
                return Engine("other")
    ''',
    "tests/test_api.py": '''
        from pkg.api import handle, lookup


        class Request:
            query = "abc"


        def test_handle():
            assert handle(Request()) == "abc!"


        def test_lookup():
            assert lookup(3) == "3"
    ''',
}



@dataclass
class Mcp:
    """A connected MCP client, called synchronously through a blocking portal."""

    portal: BlockingPortal
    client: Client
    calls: list[str] = field(default_factory=list)

    def text(self, tool: str, **args: Any) -> str:
        result = self.portal.call(self.client.call_tool, tool, args)
        text = result.content[0].text  # type: ignore[union-attr]
        self.calls.append(tool)
        return str(text)

    def result(self, tool: str, **args: Any) -> Any:
        return self.portal.call(self.client.call_tool, tool, args)

    def json(self, tool: str, **args: Any) -> dict[str, Any]:
        return dict(json.loads(self.text(tool, format="json", **args)))

    def tools(self) -> Any:
        return self.portal.call(self.client.list_tools)


@dataclass
class Served:
    """An indexed copy of the project, its published database and an MCP client on it."""

    project: Project
    store: SnapshotStore
    mcp: Mcp

    @property
    def db(self) -> Path:
        return self.project.db

    @property
    def repo(self) -> Path:
        return self.project.repo

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"ATTACH '{self.db}' AS d (READ_ONLY)")
            con.execute("USE d")
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


ServedFactory = Callable[..., Served]


def git_diff(repo: Path) -> str:
    """`git diff` of the working tree against HEAD (no user or system git config)."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "diff", "--no-color"], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def callers_bfs(served: Served, start: list[str], depth: int, direction: str = "callers") -> dict[str, int]:
    """A reference walk over graph.call_edges_merged, independent of the server's: goid -> first hop."""
    edges = served.query(
        "SELECT DISTINCT caller_goid, callee_goid FROM graph.call_edges_merged "
        "WHERE caller_goid IS NOT NULL AND callee_goid IS NOT NULL AND caller_goid <> callee_goid"
    )
    nxt: dict[str, set[str]] = defaultdict(set)
    for caller, callee in edges:
        if direction == "callers":
            nxt[callee].add(caller)
        else:
            nxt[caller].add(callee)
    seen = {g: 0 for g in start}
    frontier = set(start)
    for hop in range(1, depth + 1):
        frontier = {n for g in frontier for n in nxt[g] if n not in seen}
        for n in frontier:
            seen[n] = hop
    return {g: h for g, h in seen.items() if h > 0}


def names(served: Served, goids: Any) -> dict[str, str]:
    rows = served.query("SELECT goid, full_name FROM docs.symbols WHERE goid IN (SELECT unnest(?::VARCHAR[]))", [list(goids)])
    return dict(rows)


def goids_of(served: Served, full_name: str) -> list[str]:
    return [g for (g,) in served.query("SELECT goid FROM docs.symbols WHERE full_name = ? ORDER BY start_line", [full_name])]


def republish(served: Served) -> str:
    """Publish the same data as a new run, the way the pipeline publishes (a copy moved over the
    published file with `os.replace`), without the seconds a real run takes; the new run id."""
    fresh = served.db.with_name(".next.duckdb")
    shutil.copyfile(served.db, fresh)
    con = duckdb.connect(str(fresh))
    try:
        (run_id,) = con.execute(
            "INSERT INTO meta.pipeline_runs SELECT substr(md5(run_id), 1, 16), mode, repo, repo_root, commit, selected, host, pid, "
            "started_at + INTERVAL 1 SECOND, finished_at + INTERVAL 1 SECOND, status, error FROM meta.pipeline_runs "
            "ORDER BY started_at DESC LIMIT 1 RETURNING run_id"
        ).fetchone()  # type: ignore[misc]
    finally:
        con.close()
    os.replace(fresh, served.db)
    return str(run_id)
