"""Answers: what a tool found, rendered small, whole-rowed and byte-identical for a snapshot.

A tool builds an `Answer` (a title, facts, sections of rows with exact totals, notes); `render`
turns it into compact text or one line of JSON within a token budget (characters / 4): it first
renders everything, then the sections' brief columns, then drops whole rows from the end of the
longest sections, and says what it left out and how to get it (a paging cursor for the answer's
main list, the call to make for the others).  Floats are rounded, cells are never cut in the
middle of a row (an overlong single value is shortened and marked), and nothing depends on the
clock, so the same answer renders to the same bytes.

Cursors name the snapshot (run id), the tool and its arguments: a cursor from an older snapshot
or another call is refused with a message, never answered with rows of something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codeintel.errors import CodeIntelError

CHARS_PER_TOKEN = 4
DEFAULT_TOKENS = 2000
MAX_TOKENS = 8000
MIN_TOKENS = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 200
CELL_CHARS = 300  # a longer single value is shortened (and marked) in tables


class CursorError(CodeIntelError):
    """A paging cursor that is malformed, from another call, or from an older snapshot."""


def tokens(text: str) -> int:
    """What an answer costs a client, by the rule of thumb: characters / 4, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


def clamp_tokens(max_tokens: int | None) -> int:
    return max(MIN_TOKENS, min(MAX_TOKENS, DEFAULT_TOKENS if max_tokens is None else int(max_tokens)))


def clamp_limit(limit: int | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    return max(1, min(maximum, default if limit is None else int(limit)))


@dataclass
class Section:
    """One list of an answer.

    `rows` are the rows this call may show (already limited), `offset` the index of the first
    in the whole list and `total` the exact size of the whole list (with `exact` False, a lower
    bound: counting stopped at the time limit).  `brief` names the columns
    kept when the answer must be shorter; `pageable` marks the answer's main list (rows left
    out are reached with a cursor); `more` says what call gives the rest of another list.
    """

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    total: int | None = None
    offset: int = 0
    brief: tuple[str, ...] | None = None
    pageable: bool = False
    more: str | None = None
    style: str = "table"  # "table", or "lines": a number and a line of text (source code)
    exact: bool = True

    @property
    def size(self) -> int:
        return len(self.rows) + self.offset if self.total is None else self.total


@dataclass
class Answer:
    """What a tool found: a title line, `key: value` facts, sections and notes."""

    title: str
    facts: list[tuple[str, Any]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    is_error: bool = False


def error_answer(message: str) -> Answer:
    return Answer(title=f"error: {message}", is_error=True)


# ------------------------------------------------------------------------------------ values


def round_float(value: float) -> float:
    """Four significant digits: stable text for values computed in floating point."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.4g}")


def json_value(value: Any) -> Any:
    if isinstance(value, float):
        return round_float(value) if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(text_value(v) for v in value)
    return str(value)


def cell(value: Any) -> str:
    text = text_value(value).replace("\r", "").replace("\n", "\\n").replace("|", "¦")
    if len(text) > CELL_CHARS:
        return f"{text[: CELL_CHARS - 20]}…(+{len(text) - CELL_CHARS + 20} chars)"
    return text


# ----------------------------------------------------------------------------------- cursors


def args_signature(tool: str, args: Mapping[str, Any]) -> str:
    """What a cursor is bound to besides the snapshot: the tool and the arguments that choose rows."""
    ignored = {"cursor", "format", "max_tokens", "limit"}
    canon = json.dumps({k: v for k, v in args.items() if k not in ignored}, sort_keys=True, default=str)
    return hashlib.sha256(f"{tool}:{canon}".encode()).hexdigest()[:12]


def encode_cursor(run_id: str, tool: str, signature: str, offset: int) -> str:
    raw = json.dumps([1, run_id, tool, signature, offset], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, run_id: str, tool: str, signature: str) -> int:
    """The offset a cursor points at, if it belongs to this snapshot and this call.

    Raises:
        CursorError: malformed, of another tool or arguments, or of an older snapshot.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, c_run, c_tool, c_sig, offset = json.loads(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise CursorError(f"cursor {cursor[:40]!r} is not one this server gave out; repeat the call without it") from exc
    if version != 1 or not isinstance(offset, int) or offset < 0:
        raise CursorError(f"cursor {cursor[:40]!r} is not one this server gave out; repeat the call without it")
    if c_run != run_id:
        raise CursorError(
            f"stale cursor: it pages an answer from snapshot run {c_run}, and the database has been "
            f"published again since (now run {run_id}); repeat the call without cursor to start over"
        )
    if c_tool != tool or c_sig != signature:
        raise CursorError(
            f"this cursor belongs to another call ({c_tool} with other arguments); "
            "pass it with the same arguments it came with, or drop it"
        )
    return offset


# ----------------------------------------------------------------------------------- rendering


@dataclass
class _Plan:
    shown: list[int]
    brief: bool


def render(
    answer: Answer,
    head: Sequence[str],
    fmt: str = "text",
    max_tokens: int | None = DEFAULT_TOKENS,
    next_cursor: Callable[[int], str] | None = None,
) -> str:
    """The answer as text (or one line of JSON) within `max_tokens`, whole rows only.

    `head` are the first lines (the snapshot, warnings).  `next_cursor(offset)` makes the cursor
    of the pageable section's next page.
    """
    budget = clamp_tokens(max_tokens) * CHARS_PER_TOKEN
    maker = _JsonMaker(answer, head, next_cursor) if fmt == "json" else _TextMaker(answer, head, next_cursor)
    plan = _Plan([len(s.rows) for s in answer.sections], brief=False)
    text = maker.make(plan)
    if len(text) <= budget:
        return text
    if any(s.brief for s in answer.sections):
        plan.brief = True
        text = maker.make(plan)
        if len(text) <= budget:
            return text
    # drop whole rows from the end of the section showing most (the later one on ties), keeping
    # one row of each section as long as possible; estimate how many, then give back what fits
    while len(text) > budget and any(plan.shown):
        _, _, victim = max((n > 1, n, i) for i, n in enumerate(plan.shown))
        estimate = (len(text) - budget) // maker.row_chars(victim, plan.brief)
        plan.shown[victim] -= max(1, min(plan.shown[victim] - 1, estimate))
        text = maker.make(plan)
    for i, section in enumerate(answer.sections):
        while plan.shown[i] < len(section.rows) and len(text) < budget:
            plan.shown[i] += 1
            attempt = maker.make(plan)
            if len(attempt) > budget:
                plan.shown[i] -= 1
                break
            text = attempt
    return text


class _TextMaker:
    def __init__(self, answer: Answer, head: Sequence[str], next_cursor: Callable[[int], str] | None) -> None:
        self.answer = answer
        self.head = list(head)
        self.next_cursor = next_cursor
        self._rows: dict[tuple[int, bool], list[str]] = {}

    def _columns(self, section: Section, brief: bool) -> list[int]:
        wanted = section.brief if brief and section.brief else section.columns
        return [section.columns.index(c) for c in wanted]

    def rows(self, i: int, brief: bool) -> list[str]:
        key = (i, brief)
        if key not in self._rows:
            section = self.answer.sections[i]
            if section.style == "lines":
                width = len(str(max((r[0] for r in section.rows), default=0)))
                self._rows[key] = [f"{str(r[0]).rjust(width)}  {r[1]}" for r in section.rows]
            else:
                idx = self._columns(section, brief)
                self._rows[key] = [" | ".join(cell(r[j]) for j in idx) for r in section.rows]
        return self._rows[key]

    def row_chars(self, i: int, brief: bool) -> int:
        rows = self.rows(i, brief)
        return max(1, sum(len(r) + 1 for r in rows) // max(1, len(rows)))

    def make(self, plan: _Plan) -> str:
        a = self.answer
        lines = [*self.head, a.title]
        lines += [f"{k}: {text_value(v)}" for k, v in a.facts]
        left_out: list[str] = []
        for i, section in enumerate(a.sections):
            shown = plan.shown[i]
            total = section.size
            first, last = section.offset + 1, section.offset + shown
            lines.append("")
            span = f"{first}-{last}" if shown else "none"
            count = f"{total}" if section.exact else f"more than {total}"
            lines.append(f"{section.name}: {count} (showing {span})" if total != shown else f"{section.name}: {count}")
            if shown and section.style == "table":
                idx = self._columns(section, plan.brief)
                lines.append(" | ".join(section.columns[j] for j in idx))
                if plan.brief and section.brief and len(idx) < len(section.columns):
                    dropped = [c for c in section.columns if c not in section.brief]
                    left_out.append(f"{section.name}: brief rendering, left out {', '.join(dropped)}")
            lines.extend(self.rows(i, plan.brief)[:shown])
            lines.extend(self._trailer(section, shown, total))
        notes = [*a.notes, *left_out]
        if any(plan.shown[i] < len(s.rows) for i, s in enumerate(a.sections)):
            notes.append("rows were left out to stay within the token budget (max_tokens, up to 8000)")
        if notes:
            lines.append("")
            lines.extend(f"note: {n}" for n in notes)
        return "\n".join(lines)

    def _trailer(self, section: Section, shown: int, total: int) -> list[str]:
        end = section.offset + shown
        if end >= total:
            return []
        if section.pageable and self.next_cursor is not None:
            rest = f"{end + 1}-{total}" if section.exact else f"{end + 1} on"
            return [f'next: cursor="{self.next_cursor(end)}" (rows {rest})']
        more = f"+{total - end}{'' if section.exact else ' or'} more" + (f": {section.more}" if section.more else "")
        return [more]


class _JsonMaker:
    def __init__(self, answer: Answer, head: Sequence[str], next_cursor: Callable[[int], str] | None) -> None:
        self.answer = answer
        self.head = list(head)
        self.next_cursor = next_cursor
        self._rows: dict[tuple[int, bool], list[str]] = {}

    def _columns(self, section: Section, brief: bool) -> list[int]:
        wanted = section.brief if brief and section.brief else section.columns
        return [section.columns.index(c) for c in wanted]

    def rows(self, i: int, brief: bool) -> list[str]:
        key = (i, brief)
        if key not in self._rows:
            section = self.answer.sections[i]
            idx = self._columns(section, brief)
            self._rows[key] = [_dumps([json_value(r[j]) for j in idx]) for r in section.rows]
        return self._rows[key]

    def row_chars(self, i: int, brief: bool) -> int:
        rows = self.rows(i, brief)
        return max(1, sum(len(r) + 1 for r in rows) // max(1, len(rows)))

    def make(self, plan: _Plan) -> str:
        a = self.answer
        sections = []
        notes = list(a.notes)
        for i, section in enumerate(a.sections):
            shown = plan.shown[i]
            idx = self._columns(section, plan.brief)
            end = section.offset + shown
            item: dict[str, Any] = {
                "name": section.name,
                "total": section.size,
                "total_exact": section.exact,
                "offset": section.offset,
                "columns": [section.columns[j] for j in idx],
                "rows": "@ROWS@",
            }
            if end < section.size:
                if section.pageable and self.next_cursor is not None:
                    item["next_cursor"] = self.next_cursor(end)
                else:
                    item["more"] = f"+{section.size - end} more" + (f": {section.more}" if section.more else "")
            text = _dumps(item).replace('"@ROWS@"', "[" + ",".join(self.rows(i, plan.brief)[:shown]) + "]")
            sections.append(text)
        if any(plan.shown[i] < len(s.rows) for i, s in enumerate(a.sections)):
            notes.append("rows were left out to stay within the token budget (max_tokens, up to 8000)")
        doc = {
            "snapshot": self.head[0] if self.head else None,
            "warnings": self.head[1:],
            "title": a.title,
            "error": a.is_error,
            "facts": {k: json_value(v) for k, v in a.facts},
            "sections": "@SECTIONS@",
            "notes": notes,
        }
        return _dumps(doc).replace('"@SECTIONS@"', "[" + ",".join(sections) + "]")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
