"""The tools over one published database, independent of MCP: arguments in, rendered text out.

`Service.call` is the one path every tool takes: it leases the current snapshot (a publish during
the call does not affect it; the next call sees it), opens a cursor with the call's deadline,
decodes the paging cursor (refusing one of another snapshot or call), runs the tool's answer
builder, and renders the answer with the snapshot line first.  A deadline, a refused cursor, a
miss or a refused query is an answer too, saying what to do; the server stays ready.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import duckdb

from codeintel.errors import CodeIntelError
from codeintel.serving import impact, lookups, sqltool, structure, walks, worktree
from codeintel.serving.calls import Call, one_line
from codeintel.serving.render import (
    Answer,
    CursorError,
    args_signature,
    decode_cursor,
    encode_cursor,
    error_answer,
    render,
)
from codeintel.serving.snapshot import Deadline, DeadlineExceeded, Query, SnapshotInfo, SnapshotStore

logger = logging.getLogger(__name__)

CALL_DEADLINE_S = 4.5  # every call ends within 5 s: queries stop here, rendering takes the rest
NEEDS_NOTHING_NEW = ("status", "sql", "describe")  # tools that work on a snapshot of an older CodeIntel

Result = tuple[str, bool]  # (rendered text, whether it is an error)


class Service:
    """Every tool as a method; see the module docstring."""

    def __init__(self, store: SnapshotStore, deadline_s: float = CALL_DEADLINE_S) -> None:
        self.store = store
        self.deadline_s = deadline_s

    def call(
        self, tool: str, args: Mapping[str, Any], build: Callable[[Call], Answer], *, deadline_s: float | None = None
    ) -> Result:
        """Run one tool's answer builder on the current snapshot and render its answer."""
        with self.store.lease() as snap:
            info = snap.info
            head = self.head_lines(info)
            signature = args_signature(tool, args)
            try:
                offset = decode_cursor(args["cursor"], info.run_id, tool, signature) if args.get("cursor") else 0
                if info.missing and tool not in NEEDS_NOTHING_NEW:
                    raise CodeIntelError(
                        f"this snapshot lacks {', '.join(info.missing)} (made by an older CodeIntel): "
                        f"run `codeintel export --db {info.db_path}` to add them"
                    )
                with Query(snap, Deadline(deadline_s or self.deadline_s)) as q:
                    answer = build(Call(q, offset, info))
            except DeadlineExceeded as exc:
                answer = error_answer(
                    f"{exc}. Narrow the call (a smaller depth, a min_confidence, a scope, a LIMIT); "
                    "the server is ready for the next call"
                )
            except (CursorError, CodeIntelError) as exc:
                answer = error_answer(str(exc))
            except duckdb.Error as exc:
                answer = error_answer(f"the query failed: {one_line(str(exc))}")

            def cursor_at(at: int) -> str:
                return encode_cursor(info.run_id, tool, signature, at)

            text = render(answer, head, str(args.get("format") or "text"), args.get("max_tokens"), cursor_at)
        return text, answer.is_error

    def head_lines(self, info: SnapshotInfo) -> list[str]:
        """The snapshot line, then whatever makes the snapshot's answers less than current."""
        lines = [info.line()]
        if info.stale:
            named = [f"{s} ({one_line(why)[:60]})" for s, why in info.stale[:3]] + [s for s, _ in info.stale[3:6]]
            more = f" +{len(info.stale) - 6} more" if len(info.stale) > 6 else ""
            lines.append(f"warning: stale steps (each serves its last good output; status says why): {', '.join(named)}{more}")
        if self.store.reopen_error:
            lines.append(f"warning: {self.store.reopen_error}")
        head = worktree.head_commit(info.repo_root)
        if head and info.commit and head != info.commit:
            lines.append(
                f"note: the checkout is at {head[:12]}, the snapshot at {info.short_commit}: "
                "answers describe the snapshot (status: what changed since)"
            )
        return lines

    # --------------------------------------------------------------------------------- tools

    def status(self, format: str = "text", max_tokens: int | None = None) -> Result:
        return self.call("status", _args(locals()), lookups.status)

    def find_symbol(
        self, name: str, match: str = "auto", kind: str = "any", limit: int | None = None, cursor: str | None = None,
        format: str = "text", max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        build = functools.partial(lookups.find_symbol, name=name, match=match, kind=kind, limit=limit)
        return self.call("find_symbol", _args(locals()), build)

    def get_symbol(
        self, symbol: str, source_lines: int | None = None, format: str = "text", max_tokens: int | None = None
    ) -> Result:
        build = functools.partial(lookups.get_symbol, symbol=symbol, source_lines=source_lines)
        return self.call("get_symbol", _args(locals()), build)

    def call_graph(
        self, symbol: str, direction: str = "callers", depth: int = 1, min_confidence: float = 0.0,
        limit: int | None = None, cursor: str | None = None, format: str = "text", max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        build = functools.partial(
            walks.call_graph, symbol=symbol, direction=direction, depth=depth, min_confidence=min_confidence, limit=limit
        )
        return self.call("call_graph", _args(locals()), build)

    def trace_path(
        self, source: str, target: str | None = None, max_depth: int = 5, min_confidence: float = 0.0,
        direction: str = "callees", limit: int | None = None, format: str = "text", max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        build = functools.partial(
            walks.trace_path, source=source, target=target, max_depth=max_depth, min_confidence=min_confidence,
            direction=direction, limit=limit,
        )  # fmt: skip
        return self.call("trace_path", _args(locals()), build)

    def impact(
        self, diff: str | None = None, ref: str | None = None, symbols: Sequence[str] | None = None, depth: int = 3,
        min_confidence: float = 0.0, limit: int | None = None, cursor: str | None = None, format: str = "text",
        max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        build = functools.partial(
            impact.impact, diff=diff, ref=ref, names=list(symbols) if symbols else None, depth=depth,
            min_confidence=min_confidence, limit=limit,
        )  # fmt: skip
        return self.call("impact", _args(locals()), build)

    def tests_for(
        self, symbol: str, depth: int = 5, min_confidence: float = 0.0, limit: int | None = None,
        cursor: str | None = None, format: str = "text", max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        build = functools.partial(walks.tests_for, symbol=symbol, depth=depth, min_confidence=min_confidence, limit=limit)
        return self.call("tests_for", _args(locals()), build)

    def hotspots(
        self, metric: str = "complexity", scope: str | None = None, level: str = "function", limit: int | None = None,
        cursor: str | None = None, format: str = "text", max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        build = functools.partial(lookups.hotspots, metric=metric, scope=scope, level=level, limit=limit)
        return self.call("hotspots", _args(locals()), build)

    def module_info(
        self, module: str, limit: int | None = None, format: str = "text", max_tokens: int | None = None
    ) -> Result:
        build = functools.partial(structure.module_info, module=module, limit=limit)
        return self.call("module_info", _args(locals()), build)

    def subsystems(
        self, name: str | None = None, limit: int | None = None, cursor: str | None = None, format: str = "text",
        max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        build = functools.partial(structure.subsystems, name=name, limit=limit)
        return self.call("subsystems", _args(locals()), build)

    def describe(self, name: str | None = None, format: str = "text", max_tokens: int | None = None) -> Result:
        build = functools.partial(structure.describe, name=name)
        return self.call("describe", _args(locals()), build)

    def sql(
        self, query: str, limit: int | None = None, timeout_s: float | None = None, cursor: str | None = None,
        format: str = "text", max_tokens: int | None = None,
    ) -> Result:  # fmt: skip
        seconds = sqltool.clamp_timeout(timeout_s)
        build = functools.partial(sqltool.sql, query=query, limit=limit, seconds=seconds)
        return self.call("sql", _args(locals()), build, deadline_s=seconds)


def _args(scope: Mapping[str, Any]) -> dict[str, Any]:
    """A method's arguments (its `locals()` before anything else is bound), without `self`."""
    return {k: v for k, v in scope.items() if k not in ("self", "build", "seconds")}
