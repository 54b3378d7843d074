"""The server over real transports: `codeintel mcp` as a stdio subprocess, and streamable HTTP
with a bearer token, through the SDK's own clients."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from serving_support import Served

from codeintel.errors import ConfigError
from codeintel.serving.server import BearerAuth, build_server, http_app, is_loopback, parse_http
from codeintel.serving.service import Service
from codeintel.serving.snapshot import SnapshotStore

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("find_symbol", {"name": "normalize"}),
    ("call_graph", {"symbol": "pkg.helpers.normalize", "depth": 3}),
    ("tests_for", {"symbol": "normalize"}),
    ("sql", {"query": "SELECT kind, count(*) FROM core.goids GROUP BY kind ORDER BY kind"}),
    ("impact", {"symbols": ["pkg.core.Engine._plan"]}),
]


async def _session(client: Client) -> tuple[list[str], list[str]]:
    async with client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        texts = []
        for name, args in CALLS:
            result = await client.call_tool(name, args)
            assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
            texts.append(result.content[0].text)  # type: ignore[union-attr]
        return tools, texts


def test_codeintel_mcp_over_stdio_answers_as_the_in_memory_server(served: Served) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "codeintel", "mcp", "--db", str(served.db), "--repo", str(served.repo)],
    )  # fmt: skip
    started = time.monotonic()
    tools, texts = anyio.run(_session, Client(params))
    assert time.monotonic() - started < 60
    assert len(tools) == 12
    in_memory = [served.mcp.text(name, **args) for name, args in CALLS]
    assert texts == in_memory  # the same bytes through a real pipe and process


def test_a_missing_database_stops_the_server_at_start_with_the_reason(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codeintel", "mcp", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2 and "no published database" in done.stderr and done.stdout == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_streamable_http_with_a_bearer_token(served: Served, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n", encoding="utf-8")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "codeintel", "mcp", "--db", str(served.db), "--http", f"127.0.0.1:{port}", "--token-file", str(token)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                refused = httpx.post(url, json={}, timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.stderr else ""  # type: ignore[union-attr]
                time.sleep(0.2)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")

        async def with_token() -> tuple[list[str], list[str]]:
            async with httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-token"}, timeout=30) as http:
                return await _session(Client(streamable_http_client(url, http_client=http)))

        tools, texts = anyio.run(with_token)
        assert len(tools) == 12 and texts[0] == served.mcp.text(*CALLS[0][:1], **CALLS[0][1])
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_http_off_loopback_requires_a_token(served: Served) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    assert parse_http(":8765") == ("127.0.0.1", 8765) and parse_http("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ConfigError):
        parse_http("localhost")
    server = build_server(Service(SnapshotStore(served.db)))
    with pytest.raises(ConfigError, match="needs a bearer token"):
        http_app(server, "0.0.0.0", None)
    assert isinstance(http_app(server, "0.0.0.0", "t"), BearerAuth)
