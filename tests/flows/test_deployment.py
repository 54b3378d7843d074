"""The repository's `prefect.yaml` against a real `prefect server`, work pool and process worker.

Starts `prefect server start` on a free port (temporary PREFECT_HOME), creates the pool, deploys
with `prefect deploy --all --no-prompt`, checks the cron created scheduled runs, triggers one run
at a temporary repository and executes it with `prefect worker start --run-once`.  Every wait is
bounded and the server is always killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 90
SCHEDULE_TIMEOUT_S = 60
WORKER_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prefect(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["prefect", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real `prefect server` in its own process group; yields the env pointing at it."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CODEINTEL_"))},
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(env["PREFECT_API_URL"]):
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "prefect server did not start in time"
            time.sleep(0.5)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _flow_runs(env: dict[str, str], deployment: str, state: str | None = None) -> list[object]:
    """Flow runs of `deployment`, read through the API in a subprocess using `env`."""
    code = (
        "import json, sys\n"
        "from prefect.client.orchestration import get_client\n"
        "from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId\n"
        "with get_client(sync_client=True) as c:\n"
        f"    d = c.read_deployment_by_name({deployment!r})\n"
        "    runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id])))\n"
        "    print(json.dumps([[r.state_name, str(r.expected_start_time)] for r in runs]))\n"
    )
    import json

    done = subprocess.run(["python", "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    return [r for r in runs if state is None or r[0] == state]


def test_prefect_yaml_deploys_export_flow_nightly_with_json_parameters_it_accepts() -> None:
    import inspect
    import json

    import yaml

    from flows.prefect_flow import export_flow

    config = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    accepted = set(inspect.signature(export_flow.fn).parameters)
    deployments = {d["name"]: d for d in config["deployments"]}
    for deployment in deployments.values():
        assert deployment["entrypoint"] == "flows/prefect_flow.py:export_flow"
        assert set(deployment["parameters"]) <= accepted
        assert json.loads(json.dumps(deployment["parameters"])) == deployment["parameters"]
        assert deployment["work_pool"]["name"] == "codeintel-pool"
    assert deployments["nightly"]["schedules"] == [{"cron": "0 2 * * *", "timezone": "UTC", "active": True}]


@pytest.mark.slow
def test_the_nightly_deployment_is_scheduled_and_a_worker_runs_it(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    env = prefect_server
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("def hello() -> str:\n    return 'hi'\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "add", "-A"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "init"], cwd=repo, check=True
    )

    _prefect(env, "work-pool", "create", "codeintel-pool", "--type", "process")
    _prefect(env, "deploy", "--all", "--no-prompt")
    deadline = time.monotonic() + SCHEDULE_TIMEOUT_S
    while not (scheduled := _flow_runs(env, "codeintel-export/nightly", "Scheduled")):
        assert time.monotonic() < deadline, "the cron schedule created no runs"
        time.sleep(1)
    assert all(str(run[1]).endswith("02:00:00+00:00") for run in scheduled)  # type: ignore[index]

    db = tmp_path / "out" / "codeintel.duckdb"
    _prefect(env, "deployment", "run", "codeintel-export/nightly", "--param", f"repo={repo}", "--param", f"db={db}")
    _prefect(env, "worker", "start", "--pool", "codeintel-pool", "--run-once", timeout=WORKER_TIMEOUT_S)

    con = duckdb.connect(str(db), read_only=True)
    try:
        goids = con.execute("SELECT qualname FROM core.goids WHERE kind = 'function'").fetchall()
        status = con.execute("SELECT mode, status FROM meta.pipeline_runs").fetchall()
    finally:
        con.close()
    assert goids == [("hello",)]
    assert status == [("prefect", "succeeded")]
