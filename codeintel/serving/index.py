"""What the server holds in memory per snapshot: the symbol index and the call graph as arrays.

Most calls name a few symbols and walk a few hops, and each such step was a DuckDB statement of
several milliseconds (a scan of `docs.symbols` or the call edges, a plan per statement).
`SnapshotIndex` reads `docs.symbols`, `docs.unresolved_names`, the `@overload` definitions and
`graph.call_edges_merged` (points-to edges and the type checker's) once when a snapshot is opened (a few hundred ms for sqlalchemy, in a thread
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
import logging
import operator
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from codeintel.analysis.goids import overload_sql
from codeintel.serving import symbols
from codeintel.serving.symbols import Symbol

if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)

NO_LINE = np.iinfo(np.int64).max  # an edge without a line (NULL), larger than any line as in min()


@dataclass(frozen=True, slots=True)
class SymbolFacts:
    """What a symbol's card, `find_symbol` and the lower-bound check read besides `Symbol`."""

    callees: int
    unresolved_calls: int
    parent_goid: str | None
    cyclomatic: int | None


# find_symbol by prefix: which lowered names of a symbol an entry of `prefixes` is (bits)
NAME, QUALNAME, FULL_NAME = symbols.NAME, symbols.QUALNAME, 4
# hotspots: the columns of docs.v_function_summary a function's row shows, and each metric's column
HOTSPOT_COLUMNS = ("full_name", "path || ':' || start_line", "cyclomatic", "loc", "call_fan_in", "pagerank", "betweenness", "module", "subsystem_id")
HOTSPOT_METRICS = {"complexity": 2, "size": 3, "fan_in": 4, "pagerank": 5, "betweenness": 6}  # metric -> position above
_IDS_SQL = """WITH ids AS (SELECT goid, (row_number() OVER (ORDER BY goid) - 1)::INTEGER AS id FROM (
                  SELECT goid FROM docs.symbols UNION SELECT caller_goid FROM graph.call_edges_merged
                  UNION SELECT callee_goid FROM graph.call_edges_merged) WHERE goid IS NOT NULL)"""


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
    """Symbols and call edges of one snapshot, in memory; see the module docstring.

    The constructor reads what most calls need (symbols, call edges); `load_extras` then reads what
    only `find_symbol` (`prefixes`) and `hotspots` (`hot_ranked`) use, which answer from SQL as
    before until it is there.
    """

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.started = started = time.perf_counter()
        self.symbols: dict[str, Symbol] = {}
        self.facts: dict[str, SymbolFacts] = {}
        self.by_full_name: dict[str, list[Symbol]] = defaultdict(list)
        self.by_qualname: dict[str, list[Symbol]] = defaultdict(list)
        self.by_name: dict[str, list[Symbol]] = defaultdict(list)
        self.by_last: dict[str, list[Symbol]] = defaultdict(list)  # last part of the dotted name
        self.by_path: dict[str, list[Symbol]] = defaultdict(list)  # ordered by start line, GOID
        self.by_module: dict[str, list[Symbol]] = defaultdict(list)
        rows = cur.execute(
            "SELECT goid, kind, full_name, path, start_line, end_line, name, module, qualname, is_test, "
            "callers, callees, unresolved_calls, parent_goid, cyclomatic FROM docs.symbols ORDER BY path, start_line, goid"
        ).fetchall()
        same: dict[str, str] = {}  # one string object per kind, path and module (the rows repeat them)
        for r in rows:
            kind, path, module = (same.setdefault(v, v) for v in (r[1], r[3], r[7]))
            s = Symbol(r[0], kind, r[2], path, r[4], r[5], r[6], module, r[8], r[9], r[10])
            self.symbols[s.goid] = s
            self.facts[s.goid] = SymbolFacts(*r[11:15])
            self.by_full_name[s.full_name].append(s)
            self.by_qualname[s.qualname].append(s)
            self.by_name[s.name].append(s)
            self.by_last[s.full_name.rsplit(".", 1)[-1]].append(s)
            self.by_path[s.path].append(s)
            self.by_module[s.module].append(s)
        self.unresolved_names: dict[str, int] = {
            name: int(n) for name, n in cur.execute("SELECT called_name, sites FROM docs.unresolved_names").fetchall()
        }
        self.overloads = frozenset(
            g for (g,) in cur.execute(
                "SELECT g.goid FROM core.goids g JOIN core.ast_nodes a USING (path, qualname, ordinal) "
                f"WHERE {overload_sql('a')}"
            ).fetchall()
        )  # fmt: skip
        self.subsystem_of: dict[str, tuple[str, str]] = {  # module -> (subsystem name, id)
            m: (name, sid) for m, name, sid in cur.execute(
                "SELECT sm.module, ss.name, ss.subsystem_id FROM analytics.subsystem_modules sm "
                "JOIN analytics.subsystems ss USING (subsystem_id) ORDER BY sm.module, ss.subsystem_id DESC"
            ).fetchall()
        }  # fmt: skip
        self._load_edges(cur)
        self.prefixes: list[tuple[str, str, int]] | None = None
        self.hot_ranked: dict[str, list[tuple[Any, ...]]] | None = None
        self.function_graph: dict[str, tuple[Any, Any]] | None = None  # function GOID -> (call fan-in, pagerank)
        self.load_s = time.perf_counter() - started

    def _load_edges(self, cur: duckdb.DuckDBPyConnection) -> None:
        # every GOID the edges name gets an id too (an edge to a symbol the index lacks still counts)
        self.ids = [g for (g,) in cur.execute(f"{_IDS_SQL} SELECT goid FROM ids ORDER BY id").fetchall()]  # GOID order
        self.goids = self.ids if len(self.ids) == len(self.symbols) else sorted(self.symbols)
        self.id_of = {g: i for i, g in enumerate(self.ids)}
        self.is_test = np.array([bool(s.is_test) if (s := self.symbols.get(g)) else False for g in self.ids], dtype=bool)
        found = cur.execute(
            f"""{_IDS_SQL}
               SELECT a.id AS caller, b.id AS callee, e.confidence AS conf, coalesce(e.line::BIGINT, $none) AS line
               FROM graph.call_edges_merged e JOIN ids a ON a.goid = e.caller_goid JOIN ids b ON b.goid = e.callee_goid
               WHERE e.caller_goid <> e.callee_goid AND e.confidence IS NOT NULL""",
            {"none": int(NO_LINE)},
        ).fetchnumpy()
        caller, callee = np.asarray(found["caller"], dtype=np.int32), np.asarray(found["callee"], dtype=np.int32)
        conf, line = np.asarray(found["conf"], dtype=np.float64), np.asarray(found["line"], dtype=np.int64)
        self.callers = Adjacency(callee, caller, conf, line, len(self.ids))  # from a callee to its callers
        self.callees = Adjacency(caller, callee, conf, line, len(self.ids))

    def load_extras(self, cur: duckdb.DuckDBPyConnection) -> None:
        """What `find_symbol` by prefix and `hotspots` read (see the class docstring)."""
        found = cur.execute(
            f"""SELECT low, goid, bit_or(field)::INTEGER FROM (
                    SELECT name_lower AS low, goid, {NAME} AS field FROM docs.symbols
                    UNION ALL SELECT qualname_lower, goid, {QUALNAME} FROM docs.symbols
                    UNION ALL SELECT full_name_lower, goid, {FULL_NAME} FROM docs.symbols)
                GROUP BY ALL ORDER BY low, goid"""
        ).fetchall()
        # names already lower case are the symbols' own strings, GOIDs too: one object for each text
        same = {text: text for s in self.symbols.values() for text in (s.goid, s.name, s.qualname, s.full_name)}
        self.prefixes = [(same.get(low, low), same.get(goid, goid), fields) for low, goid, fields in found]
        del found, same
        ranks = ", ".join(
            f"row_number() OVER (ORDER BY {HOTSPOT_COLUMNS[at]} DESC, full_name, goid)" for at in HOTSPOT_METRICS.values()
        )
        rows = cur.execute(f"SELECT goid, {', '.join(HOTSPOT_COLUMNS)}, {ranks} FROM docs.v_function_summary").fetchall()
        width = 1 + len(HOTSPOT_COLUMNS)
        shown = {}  # GOID -> the row without its ranks, shared by the rankings (names shared with the symbols)
        for r in rows:
            s = self.symbols.get(r[0])
            name, module = (s.full_name, s.module) if s is not None and (s.full_name, s.module) == (r[1], r[8]) else (r[1], r[8])
            shown[r[0]] = (r[0], name, *r[2:8], module, r[9])
        ranked = {}
        for i, (metric, at) in enumerate(HOTSPOT_METRICS.items()):
            having = [r for r in rows if r[1 + at] is not None]
            having.sort(key=operator.itemgetter(width + i))
            ranked[metric] = [shown[r[0]] for r in having]
        self.hot_ranked = ranked
        self.function_graph = {r[0]: (r[5], r[6]) for r in rows}

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

    def starting_with(self, prefix: str) -> dict[str, int] | None:
        """GOIDs whose lowered name, qualified name or dotted name starts with `prefix` (lowered),
        each with which of them do (`NAME | QUALNAME | FULL_NAME` bits); None until `load_extras`."""
        if self.prefixes is None:
            return None
        found: dict[str, int] = defaultdict(int)
        for low, goid, fields in self.prefixes[bisect.bisect_left(self.prefixes, (prefix,)) :]:
            if not low.startswith(prefix):
                break
            found[goid] |= fields
        return found

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
    """Builds a snapshot's index in a thread of its own; `get` waits for what most calls need,
    the extras follow (and the calls that read them use SQL until they are there)."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._done = threading.Event()
        self._index: SnapshotIndex | None = None
        self._error: BaseException | None = None
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._load, args=(cursor,), name="codeintel-index", daemon=True)
        self._thread.start()

    def _load(self, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        try:
            self._cur = cur = cursor()
        except BaseException as exc:  # kept, and raised to every call that needs the index
            self._error = exc
            self._done.set()
            return
        try:
            self._index = SnapshotIndex(cur)
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()
        try:
            if self._index is not None:
                self._index.load_extras(cur)
                logger.info("snapshot index: %.3f s, then %.3f s for the extras", self._index.load_s, time.perf_counter() - self._index.started)
        except Exception as exc:  # the calls that would read them keep using SQL
            if not self._stopping:
                logger.warning("snapshot index extras not loaded: %s", exc)
        finally:
            self._cur = None
            cur.close()
        # what the index holds lives as long as the snapshot: no collection needs to walk it again
        gc.freeze()

    def get(self, timeout: float) -> SnapshotIndex | None:
        """The index, or None when it is not ready within `timeout` seconds.

        Raises:
            BaseException: whatever building it raised.
        """
        if not self._done.wait(max(0.0, timeout)):
            return None
        if self._error is not None:
            raise self._error
        return self._index

    def join(self) -> None:
        """Wait until the index and its extras are loaded (or failed)."""
        self._thread.join()

    def stop(self) -> None:
        """Interrupt a load still running (its snapshot is being closed) and wait for the thread:
        a process that ends with DuckDB busy in another thread aborts."""
        self._stopping = True
        cur = self._cur
        if cur is not None and self._thread.is_alive():
            try:
                cur.interrupt()
            except Exception as exc:  # it finished meanwhile
                logger.debug("interrupting the index load: %s", exc)
        self._thread.join()
