"""Session-wide Prefect and Dask for the flow tests, and one real git repository they all index.

`prefect_api` is Prefect's test harness (a temporary SQLite-backed API server in a subprocess);
flow run heartbeats stay off (the default), so nothing but the runs themselves talks to it.
`dask_cluster` is a real `LocalCluster` of two worker processes; its workers learn the harness's
API URL from the serialized run context, so none of them starts a server of its own.
`sample_repo` is big enough (20 files, > 400 kB) that per-file steps really use their executor.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from codeintel.storage.catalog import CATALOG

SAMPLE_FILES = 20
FUNCTIONS_PER_FILE = 260


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of a temporary Prefect API for the whole session."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def dask_cluster(prefect_api: str) -> Iterator[Any]:
    """A real Dask LocalCluster: two worker processes, one thread each."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        yield cluster


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    identity = [
        "-c",
        "user.name=CodeIntel Tests",
        "-c",
        "user.email=tests@codeintel.invalid",
        "-c",
        "init.defaultBranch=main",
    ]
    subprocess.run(["git", *identity, *args], cwd=repo, env=env, check=True, capture_output=True)


def _module_source(index: int) -> str:
    parts = [f'"""Generated module {index}."""\n', "from __future__ import annotations\n"]
    for n in range(FUNCTIONS_PER_FILE):
        parts.append(
            f"\n\ndef func_{index}_{n}(value: int, *rest: int, scale: float = 1.0) -> float:\n"
            f'    """Scale value {n}."""\n'
            f"    if value > {n}:\n        return value * scale\n"
            f"    for item in rest:\n        value += item\n    return float(value)\n"
        )
    parts.append(f"\n\nclass Holder{index}:\n    def method(self) -> float:\n        return func_{index}_0(1)\n")
    return "".join(parts)


@pytest.fixture(scope="session")
def sample_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git repository of 20 generated modules in one package."""
    root = tmp_path_factory.mktemp("flows") / "sample"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text('"""Sample package."""\n', encoding="utf-8")
    for index in range(SAMPLE_FILES):
        (root / "pkg" / f"mod_{index:02d}.py").write_text(_module_source(index), encoding="utf-8")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    return root


def _digest_table(con: duckdb.DuckDBPyConnection, table: str) -> str:
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        table.split("."),
    ).fetchall()
    kept = [f'"{name}"' for name, kind in columns if name != "run_id" and not kind.startswith("TIMESTAMP")]
    if not kept:
        return ""
    cols = ", ".join(kept)
    found = con.execute(f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {table}").fetchone()
    assert found is not None
    return f"{found[0]}:{found[1]}"


@pytest.fixture(scope="session")
def table_digests() -> Callable[[Path], dict[str, str]]:
    """`table_digests(db)` -> {table: 'rows:hash'} for every catalog table but meta.*.

    Run-specific columns (run_id, timestamps) are left out; row order does not matter.
    """

    def digests(db: Path) -> dict[str, str]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return {name: _digest_table(con, name) for name in sorted(CATALOG) if not name.startswith("meta.")}
        finally:
            con.close()

    return digests
