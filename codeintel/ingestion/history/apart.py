"""A cold walk in a process of its own.

A whole history's walk builds millions of small objects (the outlines of thousands of file
versions) that Python keeps the memory of once freed; run apart, that memory is the system's
again when the walk ends, and the step's process only holds the rows, which come back as Arrow
IPC stream files (memory-mapped), written batch by batch as the walk goes (not held by it).
`python -m codeintel.ingestion.history.apart` reads its request as JSON on stdin and writes the
files into the directory it names.  A long history is walked in two halves at once, each in a
child process of this one (`split`), and the tables it writes are the halves' stitched
(`stitch`).  This module is light to import (Arrow and the walk's modules are imported where a
walk or the stitch needs them), so that the process waiting on the halves holds little.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeintel.config import ToolsConfig
from codeintel.errors import CodeIntelError
from codeintel.ingestion.history import split
from codeintel.ingestion.history.plan import (
    HistoryFacts,
    HistoryPlan,
    HistorySettings,
    PlanMode,
    RepoHistory,
    WalkPart,
)
from codeintel.ingestion.tools import ToolService

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

_OUTPUTS = ("commits", "file_changes", "function_changes", "versions", "head_files", "head_defs")  # = stitch.OUTPUTS


class Rows:
    """Rows of one table in an Arrow IPC stream file (as `lineage.Columns` offers them), read
    (memory-mapped) each time they are asked for: the step's process holds no table it is done
    with (a mapped file's pages count in its memory)."""

    def __init__(self, table_name: str, path: Path, n_rows: int) -> None:
        self.table_name = table_name
        self._path = path
        self._rows = n_rows

    def table(self) -> pa.Table:
        import pyarrow as pa  # lazy: `apart` is light to import (its process waits on two halves)

        with pa.memory_map(str(self._path)) as source:
            return pa.ipc.open_stream(source).read_all()

    def values(self, name: str) -> list[Any]:
        import pyarrow as pa  # lazy (as in `table`)

        column = self.table().column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return column.to_pylist()

    def __len__(self) -> int:
        return self._rows


class ColdWalk:
    """A cold walk running in its child process (`start_cold_walk`); `facts` waits for it."""

    def __init__(
        self, plan: HistoryPlan, request: dict[str, Any], tmp: tempfile.TemporaryDirectory[str], *, own_group: bool
    ) -> None:
        self.plan = plan
        self._tmp = tmp
        # a process group of its own: stopping it stops the walks it started too (`split`)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "codeintel.ingestion.history.apart"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=own_group,
        )  # fmt: skip
        self._own_group = own_group
        self._stderr = b""
        self._done = threading.Thread(target=self._talk, args=(json.dumps(request).encode(),), daemon=True)
        self._done.start()

    def _talk(self, request: bytes) -> None:
        _, self._stderr = self._process.communicate(request)

    def same_walk(self, plan: HistoryPlan) -> bool:
        """Whether this walk is the one `plan` asks for (nothing moved since it started)."""
        return plan.mode == PlanMode.COLD and plan.repo == self.plan.repo

    @contextmanager
    def facts(self, repo: Path) -> Iterator[HistoryFacts]:
        """The walk's facts, backed by files that exist until the block ends (then cleaned up)."""
        try:
            yield self.read(repo)
        finally:
            self.cancel()

    def read(self, repo: Path) -> HistoryFacts:
        """Wait for the walk; its facts, backed by files that exist until `cancel`."""
        self._done.join()
        tmp = Path(self._tmp.name)
        result_file = tmp / "result.json"
        if self._process.returncode != 0 or not result_file.is_file():
            error = self._stderr.decode("utf-8", "replace")[-3000:]
            raise CodeIntelError(f"the history walk of {repo} failed (exit {self._process.returncode}): {error}")
        result = json.loads(result_file.read_text())
        tables = {
            name: Rows(result["tables"][name], tmp / f"{name}.arrow", result["rows"][name])
            for name in (*_OUTPUTS, "orphans", "made_again")
            if name in result["tables"]
        }
        return HistoryFacts(
            tables["commits"], tables["file_changes"], tables["function_changes"], tables["versions"],
            tables["head_files"], tables["head_defs"], result["head_paths"], True, result["stats"], result["timings"],
            tables.get("orphans"), tables.get("made_again"),
        )  # fmt: skip

    def cancel(self) -> None:
        """Stop the walk if it still runs and remove its files (idempotent)."""
        if self._process.poll() is None:
            if self._own_group:
                with suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
            else:
                self._process.kill()
        self._done.join()
        self._tmp.cleanup()


def start_cold_walk(
    tools: ToolService, repo: Path, repo_name: str, plan: HistoryPlan, settings: HistorySettings
) -> ColdWalk:
    """Start walking the whole history in a child process (it reads nothing stored, so it can
    run beside anything else: the local runner starts it right after the scan).  The child
    walks a long history in two halves at once (`split`)."""
    assert plan.mode == PlanMode.COLD
    return _started(tools, repo, repo_name, plan, settings, None)


def _started(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    part: dict[str, Any] | None,
) -> ColdWalk:
    tmp = tempfile.TemporaryDirectory(prefix="codeintel-history-")
    request = {
        "repo": str(repo),
        "repo_name": repo_name,
        "tools": asdict(tools.config),
        "settings": asdict(settings),
        "repo_history": {"head": plan.repo.head, "shallow": sorted(plan.repo.shallow), "digest": plan.repo.digest},
        "out": tmp.name,
        "part": part,
    }
    return ColdWalk(plan, request, tmp, own_group=part is None)


def _walk_in_halves(
    tools: ToolService, repo: Path, repo_name: str, plan: HistoryPlan, settings: HistorySettings, cut: split.Cut
) -> tuple[dict[str, pa.Table], dict[str, Any]] | None:
    """The tables of a cold walk whose halves (`split`) walk in two child processes at once,
    stitched, and the walk's figures; None where they do not join (`stitch.stitch_ids`)."""
    boundary = list(cut.boundary)
    older_walk = _started(tools, repo, repo_name, plan, settings, {"older": True, "boundary": boundary})
    newer_walk = _started(tools, repo, repo_name, plan, settings, {"older": False, "boundary": boundary})
    try:
        older, newer = older_walk.read(repo), newer_walk.read(repo)
        # lazy: Arrow and the walk's modules are imported once the halves are done, so that this
        # process holds about 20 MB, not 65, while they walk
        from codeintel.ingestion.history import stitch

        tables = stitch.stitched(older, newer)
        if tables is None:
            return None
        stats = dict(older.stats)
        for key, value in newer.stats.items():
            stats[key] = stats.get(key, 0) + value
        stats["split_at"] = cut.position
        timings = {f"older_{k}": v for k, v in older.timings.items()} | {f"newer_{k}": v for k, v in newer.timings.items()}
        return tables, {"stats": stats, "timings": timings, "head_paths": newer.head_paths}
    finally:
        older_walk.cancel()
        newer_walk.cancel()


def _refuse(*_: object) -> Any:
    raise CodeIntelError("a cold walk reads nothing stored")


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    out = Path(request["out"])
    try:
        repo_history = request["repo_history"]
        plan = HistoryPlan(
            PlanMode.COLD,
            RepoHistory(repo_history["head"], frozenset(repo_history["shallow"]), repo_history["digest"]),
        )
        tools = ToolService(ToolsConfig(**request["tools"]))
        repo, settings = Path(request["repo"]), HistorySettings(**request["settings"])
        if not request.get("part") and _walked_in_halves(tools, repo, request["repo_name"], plan, settings, out):
            return 0
        _walk(tools, repo, request["repo_name"], plan, settings, out, request.get("part"))
    except Exception:
        sys.stderr.write(traceback.format_exc())
        return 1
    return 0


def _walk(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    out: Path,
    part: dict[str, Any] | None,
) -> None:
    """Walk the history (or the half `part` names) in this process, its tables spooled into `out`."""
    from codeintel.ingestion.history.collect import collect_history  # lazy: see `_walk_in_halves`
    from codeintel.ingestion.history.lineage import Columns

    facts = collect_history(
        tools, repo, repo_name, plan, settings, generations=_refuse, stored_versions=_refuse,
        stored_head=dict, spool=out, part=_part(part, tools, repo, plan, settings),
    )  # fmt: skip
    columns = {name: getattr(facts, name) for name in _OUTPUTS}
    if facts.orphans is not None and facts.made_again is not None:
        columns["orphans"], columns["made_again"] = facts.orphans, facts.made_again
    for name, rows in columns.items():
        assert isinstance(rows, Columns)
        if name in ("head_files", "head_defs", "orphans", "made_again"):  # made after the walk: not spooled yet
            rows.spool(out / f"{name}.arrow")
        rows.close()
    tables = {name: str(rows.table_name) for name, rows in columns.items()}
    _write_result(out, tables, {name: len(rows) for name, rows in columns.items()}, facts.stats, facts.timings, facts.head_paths)


def _walked_in_halves(
    tools: ToolService, repo: Path, repo_name: str, plan: HistoryPlan, settings: HistorySettings, out: Path
) -> bool:
    """Walk a long history in two halves (`split`) and write the stitched tables into `out`;
    False where it is not cut, or its halves do not join (then it is walked whole)."""
    head = plan.repo.head
    cut = split.choose_cut(tools, repo, head, settings.split_min_commits) if settings.split_min_commits and head else None
    halves = _walk_in_halves(tools, repo, repo_name, plan, settings, cut) if cut else None
    if halves is None:
        if cut is not None:
            logger.warning("history: the two halves of the walk of %s do not join; walking it whole", repo)
        return False
    from codeintel.ingestion.history import stitch  # imported by `_walk_in_halves` already

    tables, figures = halves
    stitch.write_tables(out, tables)
    rows = {name: table.num_rows for name, table in tables.items()}
    _write_result(out, {name: str(stitch.TABLE_NAMES[name]) for name in tables}, rows, **figures)
    return True


def _part(
    part: dict[str, Any] | None, tools: ToolService, repo: Path, plan: HistoryPlan, settings: HistorySettings
) -> WalkPart | None:
    """The half of a split walk a request asks for (the newer one learns what it needs of the older)."""
    if not part:
        return None
    boundary = tuple(part["boundary"])
    if part["older"]:
        return WalkPart(True, boundary)
    assert plan.repo.head is not None
    return WalkPart(
        False, boundary, split.generations(tools, repo, plan.repo.head),
        split.versions_made(tools, repo, boundary, settings.timeout_s),
    )  # fmt: skip


def _write_result(
    out: Path,
    tables: dict[str, str],
    rows: dict[str, int],
    stats: dict[str, int],
    timings: dict[str, float],
    head_paths: list[str],
) -> None:
    result = {"tables": tables, "rows": rows, "stats": stats, "head_paths": head_paths, "timings": timings}
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
