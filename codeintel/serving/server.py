"""`codeintel mcp`: the published database as an MCP server (official `mcp` SDK, `MCPServer`).

Twelve read-only tools, each a thin wrapper over `Service` (which owns snapshots, deadlines,
budgets and paging).  Tool functions are synchronous: the SDK runs each call on a worker thread,
so a slow call never blocks another.  Transport: stdio by default; streamable HTTP on request,
on loopback unless a bearer token is given (any other address requires one).  Nothing here
imports prefect or writes anything.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from codeintel.errors import ConfigError
from codeintel.serving.service import Result, Service
from codeintel.serving.snapshot import SnapshotStore

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Code intelligence over a published CodeIntel snapshot of one Python repository (read-only). "
    "Every answer starts with the snapshot it comes from; lists are paged (pass `cursor` back), "
    "about 2,000 tokens by default (max_tokens up to 8000). Start with find_symbol or status; "
    "name symbols by dotted name, goid or path:line."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

Format = Annotated[Literal["text", "json"], Field(description="compact text (default) or one line of JSON")]
MaxTokens = Annotated[int, Field(description="answer budget in tokens (chars/4), 200-8000", ge=200, le=8000)]
Limit = Annotated[int, Field(description="rows per page (default 20)", ge=1, le=200)]
Cursor = Annotated[str | None, Field(description="`next` cursor of the previous page of the same call")]
SymbolRef = Annotated[str, Field(description="dotted name (pkg.mod.Class.meth), a suffix of one, a goid (prefix), or path.py:line")]
Depth = Annotated[int, Field(description="hops, 1-5", ge=1, le=5)]
Confidence = Annotated[float, Field(description="minimum edge confidence, 0-1", ge=0.0, le=1.0)]

DESCRIPTIONS = {
    "status": "Snapshot status: repository, commit, build time, row counts, each pipeline step's freshness, and how far the working tree is ahead of the snapshot (commits, changed .py files).",
    "find_symbol": "Find functions, methods, classes and modules by exact, prefix or fuzzy name (auto: exact, then prefix, then fuzzy). Each with kind, path:lines, cyclomatic complexity, caller count, goid. Paged.",
    "get_symbol": "One symbol's card: signature, docstring, span, metrics, graph metrics, subsystem, caller/callee counts, and its source (line-capped; flagged when the file changed since the snapshot). Ambiguous names list candidates.",
    "call_graph": "Callers or callees of a symbol to depth 1-5 with a minimum edge confidence: totals per hop, each symbol with hop, call line, confidence and the symbol it was reached through; flags a lower bound when unresolved calls sit on the frontier. Paged.",
    "trace_path": "The shortest call paths from source to target (count and up to `limit` paths, the first call by call), or without target how far source reaches per hop (callees or callers).",
    "impact": "Impact of a change, from a unified diff, a git ref (commit, or A..B) or a list of symbols: changed functions, their transitive callers by hop, modules and subsystems touched, and the tests reaching each changed function with a witness path.",
    "tests_for": "Test functions that reach a symbol through the call graph (callers up to depth), nearest first, each with a witness path test -> ... -> symbol. Paged.",
    "hotspots": "Top functions (or modules, level=module) by complexity, size, fan_in, pagerank, betweenness or churn (lines changed in the year before HEAD; needs the git history steps), in the repository, a module/package or a subsystem (scope). Paged.",
    "module_info": "A module: its internal imports and importers, external packages, import cycle, layer, subsystem, size and quality, and its main functions by pagerank.",
    "subsystems": "The subsystem map (communities of modules), or one subsystem's modules and boundary edges (imports and calls crossing it, by module pair).",
    "describe": "The docs.* views and main tables with their columns; with name, one of them with column types and an example query. Use before writing SQL.",
    "sql": "Run one read-only SELECT (or WITH ... SELECT) on the snapshot: row-capped (limit), paged, time-limited (timeout_s, at most 10 s). No writes, files, ATTACH, INSTALL or SET.",
}


def _result(out: Result) -> CallToolResult:
    text, is_error = out
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=is_error)


def build_server(service: Service) -> MCPServer[Any]:
    """The MCP server with every tool bound to `service`."""
    server: MCPServer[Any] = MCPServer("codeintel", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING")

    def tool(fn: Any) -> Any:
        server.add_tool(fn, description=DESCRIPTIONS[fn.__name__], annotations=READ_ONLY, structured_output=False)
        return fn

    @tool
    def status(format: Format = "text", max_tokens: MaxTokens = 2000) -> CallToolResult:
        return _result(service.status(format, max_tokens))

    @tool
    def find_symbol(
        name: Annotated[str, Field(description="name, qualified name or dotted name (or part of one)")],
        match: Annotated[Literal["auto", "exact", "prefix", "fuzzy"], Field(description="how to match")] = "auto",
        kind: Literal["any", "function", "method", "class", "module"] = "any",
        limit: Limit = 20, cursor: Cursor = None, format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.find_symbol(name, match, kind, limit, cursor, format, max_tokens))

    @tool
    def get_symbol(
        symbol: SymbolRef,
        source_lines: Annotated[int, Field(description="source lines to show (default 60, max 400)", ge=0, le=400)] = 60,
        format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.get_symbol(symbol, source_lines, format, max_tokens))

    @tool
    def call_graph(
        symbol: SymbolRef, direction: Literal["callers", "callees"] = "callers", depth: Depth = 1,
        min_confidence: Confidence = 0.0, limit: Limit = 20, cursor: Cursor = None, format: Format = "text",
        max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.call_graph(symbol, direction, depth, min_confidence, limit, cursor, format, max_tokens))

    @tool
    def trace_path(
        source: SymbolRef,
        target: Annotated[str | None, Field(description="symbol to reach; omit to see how far source reaches")] = None,
        max_depth: Depth = 5, min_confidence: Confidence = 0.0,
        direction: Annotated[Literal["callees", "callers"], Field(description="reach mode only")] = "callees",
        limit: Annotated[int, Field(description="paths to list (default 5)", ge=1, le=50)] = 5,
        format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.trace_path(source, target, max_depth, min_confidence, direction, limit, format, max_tokens))

    @tool
    def impact(
        diff: Annotated[str | None, Field(description="unified diff text (git diff output)")] = None,
        ref: Annotated[str | None, Field(description="git commit (its own change), or A..B / A...B")] = None,
        symbols: Annotated[list[str] | None, Field(description="changed symbols, instead of a diff")] = None,
        depth: Depth = 3, min_confidence: Confidence = 0.0, limit: Limit = 20, cursor: Cursor = None,
        format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.impact(diff, ref, symbols, depth, min_confidence, limit, cursor, format, max_tokens))

    @tool
    def tests_for(
        symbol: SymbolRef, depth: Depth = 5, min_confidence: Confidence = 0.0, limit: Limit = 20,
        cursor: Cursor = None, format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.tests_for(symbol, depth, min_confidence, limit, cursor, format, max_tokens))

    @tool
    def hotspots(
        metric: Literal["complexity", "size", "fan_in", "pagerank", "betweenness", "churn"] = "complexity",
        scope: Annotated[str | None, Field(description="module or package name, or subsystem name/id")] = None,
        level: Literal["function", "module"] = "function",
        limit: Limit = 20, cursor: Cursor = None, format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.hotspots(metric, scope, level, limit, cursor, format, max_tokens))

    @tool
    def module_info(
        module: Annotated[str, Field(description="module name (pkg.mod), a suffix of one, or its path")],
        limit: Annotated[int, Field(description="rows per list (default 10)", ge=1, le=100)] = 10,
        format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.module_info(module, limit, format, max_tokens))

    @tool
    def subsystems(
        name: Annotated[str | None, Field(description="a subsystem's name or id; omit for the map")] = None,
        limit: Limit = 20, cursor: Cursor = None, format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.subsystems(name, limit, cursor, format, max_tokens))

    @tool
    def describe(
        name: Annotated[str | None, Field(description="a view or table, e.g. docs.v_function_summary")] = None,
        format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.describe(name, format, max_tokens))

    @tool
    def sql(
        query: Annotated[str, Field(description="one SELECT or WITH ... SELECT statement")],
        limit: Annotated[int, Field(description="rows per page (default 50)", ge=1, le=500)] = 50,
        timeout_s: Annotated[float, Field(description="seconds (default 5, max 10)", gt=0, le=10)] = 5.0,
        cursor: Cursor = None, format: Format = "text", max_tokens: MaxTokens = 2000,
    ) -> CallToolResult:  # fmt: skip
        return _result(service.sql(query, limit, timeout_s, cursor, format, max_tokens))

    return server


# ---------------------------------------------------------------------------------- running


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_http(address: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT` (loopback) -> (host, port)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--http {address!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    return (host.strip("[]") or "127.0.0.1"), int(port)


class BearerAuth:
    """ASGI middleware: every HTTP request must carry `Authorization: Bearer <token>`."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({
                    "type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b'Bearer realm="codeintel"')],
                })  # fmt: skip
                await send({"type": "http.response.body", "body": b"a bearer token is required (codeintel mcp --token-file)\n"})
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer[Any], host: str, token: str | None) -> Any:
    """The streamable HTTP app (at /mcp), behind the bearer check when a token is given.

    Raises:
        ConfigError: a non-loopback address without a token.
    """
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"serving on {host} (not loopback) needs a bearer token: pass --token-file FILE "
            "(clients send `Authorization: Bearer <token>`), or serve on 127.0.0.1"
        )
    app = server.streamable_http_app(host=host)
    return BearerAuth(app, token) if token else app


def serve(db: Path, repo: Path | None = None, http: str | None = None, token: str | None = None) -> None:
    """Run the server until the client (stdio) or the process (HTTP) ends it."""
    store = SnapshotStore(db, repo)
    server = build_server(Service(store))  # first: opening the snapshot starts its index loading in a thread
    info = store.open()  # fail at start, with the reason, when there is nothing to serve
    logger.info("serving %s", info.line())
    try:
        if http is None:
            server.run("stdio")
            return
        import uvicorn

        host, port = parse_http(http)
        app = http_app(server, host, token)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        store.close()
