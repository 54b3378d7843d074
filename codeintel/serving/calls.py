"""What every tool's answer builder shares: the call it runs in, and a few common renderings.

A builder is a function `(Call, **arguments) -> Answer`: it reads the call's snapshot through
`Call.q` (deadline enforced), pages from `Call.offset`, and never renders text itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codeintel.errors import CodeIntelError
from codeintel.serving import graph
from codeintel.serving.render import Answer, Section
from codeintel.serving.snapshot import Query, SnapshotInfo
from codeintel.serving.symbols import Lookup, Symbol


@dataclass
class Call:
    """One tool call: its cursor on the snapshot, the paging offset, the snapshot's identity."""

    q: Query
    offset: int
    info: SnapshotInfo


def one_line(text: str) -> str:
    return " ".join(text.split())


def check_direction(direction: str) -> None:
    if direction not in graph.DIRECTIONS:
        raise CodeIntelError(f"direction must be callers or callees, not {direction!r}")


def clamp_depth(depth: int) -> int:
    return max(1, min(graph.MAX_DEPTH, int(depth)))


def clamp_confidence(value: float) -> float:
    return max(0.0, min(1.0, float(value)))


def per_hop_text(counts: Sequence[int]) -> str:
    return " · ".join(f"{i}: {n}" for i, n in enumerate(counts, start=1)) or "none"


def path_text(path: Sequence[str], syms: Mapping[str, Symbol]) -> str:
    """A witness path as qualified names joined by arrows."""
    return " → ".join(syms[g].qualname if g in syms else g[:12] for g in path)


def miss_answer(tool: str, found: Lookup) -> Answer:
    """An actionable miss: the ranked candidates of an ambiguous name, or the nearest names."""
    if found.candidates:
        rows = [(s.kind, s.full_name, s.at, s.callers, s.goid[:12]) for s in found.candidates]
        section = Section(
            "candidates (most called first)", ("kind", "name", "at", "callers", "goid"), rows, brief=("kind", "name")
        )
        note = "pass the full name or a goid (a unique prefix of 8+ hex digits is enough)"
        return Answer(f"{tool}: {found.text!r} is ambiguous", [], [section], [note])
    near = ", ".join(found.suggestions) or "none"
    return Answer(f"{tool}: no symbol {found.text!r}", [("nearest names", near)], [], ["find_symbol searches by prefix or fuzzily"])


def others_note(found: Lookup) -> list[str]:
    """Say when a name has several definitions (all of which a walk starts from)."""
    if not found.others:
        return []
    where = ", ".join(f"{s.at} (goid {s.goid[:12]})" for s in found.others[:5])
    return [f"{len(found.others)} more definitions share this name (overloads or redefinitions), walked too: {where}"]


def bound_facts(q: Query, w: graph.Walk) -> list[tuple[str, Any]]:
    """Whether a walk's answer is a lower bound, and whether the deadline cut it short."""
    facts: list[tuple[str, Any]] = []
    per_hop, top = graph.unresolved_by_hop(q, w)
    if any(per_hop):
        if w.direction == "callers":
            detail = ", ".join(f"{n!r}: {k}" for n, k in top)
            why = f"unresolved call sites calling one of these names may be more callers ({detail})"
        else:
            detail = ", ".join(f"{n}: {k}" for n, k in top)
            why = f"calls the call graph could not resolve may reach more ({detail})"
        facts.append(("lower bound", f"yes; unresolved sites per hop {per_hop_text(per_hop)}: {why}"))
    else:
        facts.append(("lower bound", "no: no unresolved call site on the walk's frontier"))
    if not w.complete:
        facts.append(("incomplete", f"the deadline stopped the walk after hop {len(w.expanded)}: deeper hops are missing"))
    return facts
