"""A cold walk in a process of its own.

A whole history's walk builds millions of small objects (the outlines of thousands of file
versions) that Python keeps the memory of once freed; run apart, that memory is the system's
again when the walk ends, and the step's process only holds the rows, which come back as Arrow
IPC stream files (memory-mapped), written batch by batch as the walk goes (not held by it).
`python -m codeintel.ingestion.history.apart` reads its request as JSON on stdin and writes the
files into the directory it names.  A long history is walked in two halves at once, each in a
child process of this one (`split`), and the tables it writes are the halves' stitched
(`stitch`).  (A short history the step walks itself, not started ahead and not cut, is walked
in the step's process: `walk.walk_history`.)  This module is light to import (Arrow and the
walk's modules are imported where a walk or the stitch needs them), so that the process
waiting on the halves holds little.
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

from codeintel import scratch
from codeintel.config import ToolsConfig
from codeintel.errors import CodeIntelError
from codeintel.ingestion.history import split
from codeintel.ingestion.history.plan import (
    FACT_TABLES,
    HistoryFacts,
    HistoryPlan,
    HistorySettings,
    PlanMode,
    RepoHistory,
    WalkPart,
)
from codeintel.ingestion.mapping import Mapper
from codeintel.ingestion.tools import ToolService

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)


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

    def batches(self) -> pa.RecordBatchReader:
        """The rows one batch at a time, read from the file (not mapped: a batch's memory goes
        when the next is read; sqlalchemy's versions are 67 MB)."""
        import pyarrow as pa  # lazy (as in `table`)

        return pa.ipc.open_stream(pa.OSFile(str(self._path)))

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
            _CHILD,
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
        _check_walked(tmp, self._process.returncode, self._stderr, f"the history walk of {repo}")
        return _facts_in(tmp)

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
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    surveyed: split.Survey | None = None,
) -> ColdWalk:
    """Start walking the whole history in a child process (it reads nothing stored, so it can
    run beside anything else: the local runner starts it right after the scan).  The child
    walks a long history in two halves at once (`split`): where the `surveyed` history is cut,
    or (not surveyed) where the child finds it is."""
    assert plan.mode == PlanMode.COLD
    request = _request(tools, repo, repo_name, plan, settings, "", None)
    if surveyed is not None:
        request["cut"] = _cut_named(surveyed.cut)
    return _started(plan, request)


def spread_cold_walk(
    mapper: Mapper,
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    cut: split.Cut,
) -> ColdWalk:
    """A cold walk whose two halves (`split`, cut at `cut`) are `mapper`'s work (a cluster's:
    each half walked by whichever worker has room, in a child process there: `walk_part`), then
    stitched in a child process here.  Returns once the halves are walked (the stitch runs on)."""
    assert plan.mode == PlanMode.COLD
    parts = [{"older": older, "boundary": list(cut.boundary)} for older in (True, False)]
    requests = [_request(tools, repo, repo_name, plan, settings, "", part) for part in parts]
    halves = mapper.map(walk_part, requests, priority=2)  # the longest work of a run: started first
    tmp = scratch.temporary_directory("codeintel-history-")
    dirs = []
    for name, half in zip(("older", "newer"), halves, strict=True):
        walked = Path(tmp.name) / name
        walked.mkdir()
        (walked / "result.json").write_text(json.dumps(half["result"]))
        for table, data in half["files"].items():
            (walked / f"{table}.arrow").write_bytes(data)
        dirs.append(str(walked))
    request = _request(tools, repo, repo_name, plan, settings, tmp.name, None)
    return ColdWalk(plan, request | {"halves": dirs, "cut_position": cut.position}, tmp, own_group=True)


def walk_part(request: dict[str, Any]) -> dict[str, Any]:
    """One half of a split cold walk (the request `_request` makes, its `part` set), walked in a
    child process of the process running this (a cluster's worker: `spread_cold_walk`); the
    half's result and its tables' files, as bytes."""
    with scratch.temporary_directory("codeintel-history-") as tmp:
        done = subprocess.run(
            _CHILD,
            input=json.dumps(request | {"out": tmp}).encode(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            check=False,
        )  # fmt: skip
        out = Path(tmp)
        _check_walked(out, done.returncode, done.stderr, f"a half of the history walk of {request['repo']}")
        result = json.loads((out / "result.json").read_text())
        return {"result": result, "files": {name: (out / f"{name}.arrow").read_bytes() for name in result["tables"]}}


_CHILD = [sys.executable, "-m", "codeintel.ingestion.history.apart"]  # a walk's process: `main`


def _check_walked(out: Path, returncode: int | None, stderr: bytes, what: str) -> None:
    """Raise, with the end of its stderr, when the walk that wrote into `out` failed."""
    if returncode != 0 or not (out / "result.json").is_file():
        error = stderr.decode("utf-8", "replace")[-3000:]
        raise CodeIntelError(f"{what} failed (exit {returncode}): {error}")


def _started(plan: HistoryPlan, request: dict[str, Any], within: Path | None = None) -> ColdWalk:
    """A walk's child process started on `request` (`_request`), writing into a directory of
    its own (in `within`: a half's, in its walk's directory, which goes with it when the walk
    is stopped)."""
    tmp = scratch.temporary_directory("codeintel-history-", within)
    return ColdWalk(plan, request | {"out": tmp.name}, tmp, own_group=request["part"] is None)


def _request(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    out: str,
    part: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a walk's child process reads on stdin (`main`)."""
    return {
        "repo": str(repo),
        "repo_name": repo_name,
        "tools": asdict(tools.config),
        "settings": asdict(settings),
        "repo_history": {
            "head": plan.repo.head,
            "shallow": sorted(plan.repo.shallow),
            "digest": plan.repo.digest,
            "prefix": plan.repo.prefix,
        },
        "out": out,
        "part": part,
    }


def _facts_in(out: Path) -> HistoryFacts:
    """The facts a walk wrote into `out` (its result, and its tables' files that back them)."""
    result = json.loads((out / "result.json").read_text())
    tables = {
        name: Rows(result["tables"][name], out / f"{name}.arrow", result["rows"][name])
        for name in (*FACT_TABLES, "orphans", "made_again")
        if name in result["tables"]
    }
    return HistoryFacts(
        tables["commits"], tables["file_changes"], tables["function_changes"], tables["versions"],
        tables["merge_lineages"], tables["head_files"], tables["head_defs"], result["head_paths"], True, result["stats"], result["timings"],
        tables.get("orphans"), tables.get("made_again"),
    )  # fmt: skip


def survey_history(tools: ToolService, repo: Path, plan: HistoryPlan, settings: HistorySettings) -> split.Survey:
    """How many commits the history a cold `plan` walks has, and where it is cut (`split`)."""
    assert plan.repo.head is not None
    return split.survey(tools, repo, plan.repo.head, settings.split_min_commits)


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    out = Path(request["out"])
    try:
        repo_history = request["repo_history"]
        plan = HistoryPlan(
            PlanMode.COLD,
            RepoHistory(
                repo_history["head"], frozenset(repo_history["shallow"]), repo_history["digest"], repo_history["prefix"]
            ),
        )
        tools = ToolService(ToolsConfig(**request["tools"]))
        repo, settings = Path(request["repo"]), HistorySettings(**request["settings"])
        if request.get("halves"):  # walked elsewhere (`spread_cold_walk`): stitched here
            older, newer = (_facts_in(Path(walked)) for walked in request["halves"])
            stitched = _write_stitched(out, older, newer, request["cut_position"], repo)
        else:
            stitched = False
            if not request.get("part"):  # the whole history: cut where the step found (or this process finds) a cut
                cut = _known_cut(request["cut"]) if "cut" in request else survey_history(tools, repo, plan, settings).cut
                stitched = cut is not None and _walked_in_halves(tools, repo, request["repo_name"], plan, settings, out, cut)
        if not stitched:
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
    from codeintel.ingestion.history.collect import collect_cold  # lazy: see `_write_stitched`
    from codeintel.ingestion.history.lineage import Columns

    facts = collect_cold(tools, repo, repo_name, plan, settings, spool=out, part=_part(part, tools, repo, plan, settings))
    columns = {name: getattr(facts, name) for name in FACT_TABLES}
    if facts.orphans is not None and facts.made_again is not None:
        columns["orphans"], columns["made_again"] = facts.orphans, facts.made_again
    for name, rows in columns.items():
        assert isinstance(rows, Columns)
        if name in ("head_files", "head_defs", "orphans", "made_again"):  # made after the walk: not spooled yet
            rows.spool(out / f"{name}.arrow")
        rows.close()
    tables = {name: str(rows.table_name) for name, rows in columns.items()}
    _write_result(out, tables, {name: len(rows) for name, rows in columns.items()}, facts.stats, facts.timings, facts.head_paths)


def _cut_named(cut: split.Cut | None) -> dict[str, Any] | None:
    """A cut as a request names it (None: the history is walked whole); `_known_cut` reads it."""
    return None if cut is None else {"boundary": list(cut.boundary), "position": cut.position}


def _known_cut(cut: dict[str, Any] | None) -> split.Cut | None:
    """The cut a request names (`_cut_named`)."""
    return None if cut is None else split.Cut(tuple(cut["boundary"]), cut["position"])


def _walked_in_halves(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    out: Path,
    cut: split.Cut,
) -> bool:
    """Walk a long history in two halves (cut at `cut`: `split`) at once, each in a child
    process of this one, and write the stitched tables into `out`; False where its halves do
    not join (then it is walked whole)."""
    boundary = list(cut.boundary)
    older_walk, newer_walk = (
        _started(plan, _request(tools, repo, repo_name, plan, settings, "", {"older": older, "boundary": boundary}), out)
        for older in (True, False)
    )
    try:
        return _write_stitched(out, older_walk.read(repo), newer_walk.read(repo), cut.position, repo)
    finally:
        older_walk.cancel()
        newer_walk.cancel()


def _write_stitched(out: Path, older: HistoryFacts, newer: HistoryFacts, position: int, repo: Path) -> bool:
    """Write the tables of the halves stitched (`stitch.stitched`) into `out`, with the walk's
    figures; False where they do not join."""
    # lazy: Arrow and the walk's modules are imported once the halves are done, so that this
    # process holds about 30 MB, not 65, while they walk
    from codeintel.ingestion.history import stitch

    tables = stitch.stitched(older, newer)
    if tables is None:
        logger.warning("history: the two halves of the walk of %s do not join; walking it whole", repo)
        return False
    stats = dict(older.stats)
    for key, value in newer.stats.items():
        stats[key] = stats.get(key, 0) + value
    stats["split_at"] = position
    timings = {f"older_{k}": v for k, v in older.timings.items()} | {f"newer_{k}": v for k, v in newer.timings.items()}
    stitch.write_tables(out, tables)
    rows = {name: table.num_rows for name, table in tables.items()}
    _write_result(out, {name: str(stitch.TABLE_NAMES[name]) for name in tables}, rows, stats, timings, newer.head_paths)
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
        split.versions_made(tools, repo, boundary, settings.timeout_s, plan.repo.prefix),
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
    code = main()
    sys.stderr.flush()
    # what the walk leaves is millions of objects: tearing them down one by one would keep the
    # step waiting for this process to end (flask: 0.04 s); its files are written and closed
    os._exit(code)
