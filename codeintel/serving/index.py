"""What the server holds in memory per snapshot: the symbol index and the call graph as arrays.

Most calls name a few symbols and walk a few hops, and each such step was a DuckDB statement of
several milliseconds (a scan of `docs.symbols` or `graph.call_edges`, a plan per statement).
`SnapshotIndex` reads `docs.symbols`, `docs.unresolved_names`, the `@overload` definitions and
`graph.call_edges` once when a snapshot is opened (a few hundred ms for sqlalchemy, in a thread
of its own while the server starts) and answers those steps from memory: symbols by GOID, name,
dotted name and path; callers and callees as compressed sparse rows (per symbol, its edges sorted
by neighbour).  It only copies what the pipeline built; it is dropped with its snapshot, so a
publish gives the next call a new one.  `hop` aggregates a frontier's edges exactly as the SQL
it replaces (`max(confidence)`, `min(line)` over the edges at or above a minimum confidence, per
symbol pair, ordered by neighbour GOID, confidence descending, then frontier GOID).
"""

from __future__ import annotations

import bisect
import gc
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from codeintel.serving.symbols import Symbol

if TYPE_CHECKING:
    import duckdb

NO_LINE = np.iinfo(np.int64).max  # an edge without a line (NULL), larger than any line as in min()


@dataclass(frozen=True, slots=True)
class SymbolFacts:
    """What a symbol's card and the lower-bound check read besides `Symbol`."""

    callees: int
    unresolved_calls: int
    parent_goid: str | None


class Adjacency:
    """One direction of the call graph: per node id, its edges (neighbour id, confidence, line),
    sorted by neighbour, as compressed sparse rows."""

    def __init__(self, near: np.ndarray, far: np.ndarray, conf: np.ndarray, line: np.ndarray, nodes: int) -> None:
        order = np.lexsort((far, near))
        self.far = np.ascontiguousarray(far[order])
        self.conf = np.ascontiguousarray(conf[order])
        self.line = np.ascontiguousarray(line[order])
        self.ptr = np.zeros(nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(near, minlength=nodes), out=self.ptr[1:])

    @property
    def nbytes(self) -> int:
        return int(self.far.nbytes + self.conf.nbytes + self.line.nbytes + self.ptr.nbytes)

    def hop(self, nodes: np.ndarray, min_confidence: float) -> tuple[list[int], list[int], list[float], list[int]]:
        """The edges of sorted `nodes` at or above `min_confidence`, one row per (node, neighbour)
        with the best confidence and the first line, ordered by neighbour, confidence descending,
        node: (nodes, neighbours, confidences, lines)."""
        starts, ends = self.ptr[nodes], self.ptr[nodes + 1]
        counts = ends - starts
        total = int(counts.sum())
        if total == 0:
            return [], [], [], []
        near = np.repeat(nodes, counts)
        idx = np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        far, conf, line = self.far[idx], self.conf[idx], self.line[idx]
        if min_confidence > 0:
            keep = conf >= min_confidence
            near, far, conf, line = near[keep], far[keep], conf[keep], line[keep]
            if not len(near):
                return [], [], [], []
        change = np.empty(len(near), dtype=bool)  # rows are sorted by (node, neighbour): groups are runs
        change[0] = True
        np.not_equal(near[1:], near[:-1], out=change[1:])
        change[1:] |= far[1:] != far[:-1]
        first = np.flatnonzero(change)
        near, far = near[first], far[first]
        conf, line = np.maximum.reduceat(conf, first), np.minimum.reduceat(line, first)
        order = np.lexsort((near, -conf, far))
        return near[order].tolist(), far[order].tolist(), conf[order].tolist(), line[order].tolist()


class SnapshotIndex:
    """Symbols and call edges of one snapshot, in memory; see the module docstring."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        started = time.perf_counter()
        self.symbols: dict[str, Symbol] = {}
        self.facts: dict[str, SymbolFacts] = {}
        self.by_full_name: dict[str, list[Symbol]] = defaultdict(list)
        self.by_qualname: dict[str, list[Symbol]] = defaultdict(list)
        self.by_name: dict[str, list[Symbol]] = defaultdict(list)
        self.by_last: dict[str, list[Symbol]] = defaultdict(list)  # last part of the dotted name
        self.by_path: dict[str, list[Symbol]] = defaultdict(list)  # ordered by start line, GOID
        rows = cur.execute(
            "SELECT goid, kind, full_name, path, start_line, end_line, name, module, qualname, is_test, "
            "callers, callees, unresolved_calls, parent_goid FROM docs.symbols ORDER BY path, start_line, goid"
        ).fetchall()
        for r in rows:
            s = Symbol(*r[:11])
            self.symbols[s.goid] = s
            self.facts[s.goid] = SymbolFacts(r[11], r[12], r[13])
            self.by_full_name[s.full_name].append(s)
            self.by_qualname[s.qualname].append(s)
            self.by_name[s.name].append(s)
            self.by_last[s.full_name.rsplit(".", 1)[-1]].append(s)
            self.by_path[s.path].append(s)
        self.goids = sorted(self.symbols)
        self.unresolved_names: dict[str, int] = {
            name: int(n) for name, n in cur.execute("SELECT called_name, sites FROM docs.unresolved_names").fetchall()
        }
        self.overloads = frozenset(
            g for (g,) in cur.execute(
                "SELECT g.goid FROM core.goids g JOIN core.ast_nodes a USING (path, qualname, ordinal) "
                "WHERE list_has_any(a.decorators, ['overload', 'typing.overload', 't.overload'])"
            ).fetchall()
        )  # fmt: skip
        self._load_edges(cur)
        self.load_s = time.perf_counter() - started

    def _load_edges(self, cur: duckdb.DuckDBPyConnection) -> None:
        # every GOID the edges name gets an id too (an edge to a symbol the index lacks still counts)
        extra = [
            g for (g,) in cur.execute(
                "SELECT DISTINCT g FROM (SELECT caller_goid AS g FROM graph.call_edges UNION ALL SELECT callee_goid FROM graph.call_edges) "
                "WHERE g IS NOT NULL AND g NOT IN (SELECT goid FROM docs.symbols)"
            ).fetchall()
        ]  # fmt: skip
        self.ids = sorted(self.symbols.keys() | set(extra))  # id order is GOID order
        self.id_of = {g: i for i, g in enumerate(self.ids)}
        self.is_test = np.array([bool(s.is_test) if (s := self.symbols.get(g)) else False for g in self.ids], dtype=bool)
        found = cur.execute(
            """WITH ids AS (SELECT unnest($ids::VARCHAR[]) AS goid, unnest(range(len($ids::VARCHAR[]))) AS id)
               SELECT a.id::INTEGER AS caller, b.id::INTEGER AS callee, e.confidence AS conf,
                      coalesce(e.line::BIGINT, $none) AS line
               FROM graph.call_edges e JOIN ids a ON a.goid = e.caller_goid JOIN ids b ON b.goid = e.callee_goid
               WHERE e.caller_goid <> e.callee_goid AND e.confidence IS NOT NULL""",
            {"ids": self.ids, "none": int(NO_LINE)},
        ).fetchnumpy()
        caller, callee = np.asarray(found["caller"], dtype=np.int32), np.asarray(found["callee"], dtype=np.int32)
        conf, line = np.asarray(found["conf"], dtype=np.float64), np.asarray(found["line"], dtype=np.int64)
        self.callers = Adjacency(callee, caller, conf, line, len(self.ids))  # from a callee to its callers
        self.callees = Adjacency(caller, callee, conf, line, len(self.ids))

    @property
    def edges_nbytes(self) -> int:
        return self.callers.nbytes + self.callees.nbytes

    # ---------------------------------------------------------------------------------- symbols

    def with_prefix(self, prefix: str, limit: int) -> list[Symbol]:
        """Up to `limit` symbols whose GOID starts with `prefix`, in GOID order."""
        out: list[Symbol] = []
        for g in self.goids[bisect.bisect_left(self.goids, prefix) :]:
            if not g.startswith(prefix) or len(out) >= limit:
                break
            out.append(self.symbols[g])
        return out

    def ending_with(self, dotted: str) -> list[Symbol]:
        """Symbols whose dotted name ends with `.` + `dotted`."""
        tail = "." + dotted
        return [s for s in self.by_last.get(dotted.rsplit(".", 1)[-1], ()) if s.full_name.endswith(tail)]

    def symbols_of(self, goids: Iterable[str]) -> dict[str, Symbol]:
        return {g: s for g in goids if (s := self.symbols.get(g)) is not None}

    # ------------------------------------------------------------------------------------ edges

    def hop(
        self, direction: str, nodes: Sequence[str], min_confidence: float, tests: bool = False
    ) -> list[tuple[str, str, float, int | None, bool]]:
        """One hop of a walk from `nodes` (GOIDs): rows (node, neighbour, confidence, line, whether
        the neighbour is a test function: only with `tests`) as `graph.walk` reads them."""
        ids = np.array(sorted(i for g in nodes if (i := self.id_of.get(g)) is not None), dtype=np.int64)
        if not len(ids):
            return []
        adjacency = self.callers if direction == "callers" else self.callees
        near, far, conf, line = adjacency.hop(ids, min_confidence)
        names = self.ids
        flags = self.is_test[far].tolist() if tests else [False] * len(far)
        return [
            (names[a], names[b], c, None if n == NO_LINE else n, t)
            for a, b, c, n, t in zip(near, far, conf, line, flags, strict=True)
        ]


class IndexLoader:
    """Builds a snapshot's index in a thread of its own; `get` waits for it."""

    def __init__(self, cursor: Any) -> None:
        self._done = threading.Event()
        self._index: SnapshotIndex | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, args=(cursor,), name="codeintel-index", daemon=True)
        self._thread.start()

    def _load(self, cursor: Any) -> None:
        try:
            cur = cursor()
            try:
                self._index = SnapshotIndex(cur)
            finally:
                cur.close()
            # what the index holds lives as long as the snapshot: no collection needs to walk it
            gc.freeze()
        except BaseException as exc:  # kept, and raised to every call that needs the index
            self._error = exc
        finally:
            self._done.set()

    def get(self, timeout: float) -> SnapshotIndex | None:
        """The index, or None when it is not ready within `timeout` seconds.

        Raises:
            BaseException: whatever loading it raised.
        """
        if not self._done.wait(max(0.0, timeout)):
            return None
        if self._error is not None:
            raise self._error
        return self._index

    def join(self) -> None:
        self._thread.join()
