"""A long history's cold walk in two halves at once (`codeintel.ingestion.history.split`).

Real git histories in tmp_path, walked cold twice: in one process, and cut in two (the
threshold lowered to these short histories).  The two halves' tables, stitched, must be the
tables of one walk: renames, moves, a revert to a version the older half made, merges and a
file renamed after the cut included.  Where the halves cannot be joined one to one, the history
is walked again whole, and the tables are again one walk's.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from codeintel.analysis.goids import make_goid
from codeintel.config import ToolsConfig
from codeintel.ingestion.history import split
from codeintel.ingestion.history.apart import Mapper, Rows, spread_cold_walk, start_cold_walk, survey_history
from codeintel.ingestion.history.collect import read_repo_history
from codeintel.ingestion.history.plan import HistoryPlan, HistorySettings, PlanMode
from codeintel.ingestion.tools import ToolService
from tests.ingestion.test_git_history import git

MakeRepo = Any
TABLES = ("commits", "file_changes", "function_changes", "versions", "head_files", "head_defs")


def cold_walk(
    root: Path, min_commits: int, spread: Mapper | None = None, max_file_size: int = 2_000_000
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """(each table's rows as sorted text, the walk's figures and timings); with `spread`, the
    halves are its work."""
    tools = ToolService(ToolsConfig())
    settings = HistorySettings(split_min_commits=min_commits, max_file_size=max_file_size)
    plan = HistoryPlan(PlanMode.COLD, read_repo_history(tools, root, settings))
    if spread is None:
        walk = start_cold_walk(tools, root, "repo", plan, settings)
    else:
        cut = split.survey(tools, root, str(plan.repo.head), min_commits).cut
        assert cut is not None
        walk = spread_cold_walk(spread, tools, root, "repo", plan, settings, cut)
    with walk.facts(root) as facts:
        tables = {name: sorted(map(repr, _plain(getattr(facts, name).table()).to_pylist())) for name in TABLES}
        figures = {**facts.stats, **facts.timings}
    return tables, figures


def _plain(table: pa.Table) -> pa.Table:
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names)


def function(name: str, salt: int) -> str:
    """A function whose body tells it from the others (its name's letters) and changes with `salt`."""
    uid = sum(map(ord, name.split("_")[0]))
    return f"def {name}(x):\n    y = x + {salt}\n    z = y * {uid}\n    w = z - {uid % 7}\n    return w // {uid % 5 + 1}\n"


def module(functions: dict[str, int], cls: dict[str, int] | None = None) -> str:
    parts = [function(name, salt) for name, salt in functions.items()]
    if cls:
        methods = "".join(f"\n    def {m}(self):\n        return {s}\n" for m, s in cls.items())
        parts.append(f"class Engine:{methods}")
    return "\n\n".join(parts)


def scripted_history(make_repo: MakeRepo, tmp_path: Path, *, rename_before_revert: bool = False) -> Any:
    """40-odd commits: bodies edited, functions added, renamed and moved between files, a file
    renamed, a docs-only commit every fifth; after the middle a file set back to a version of
    before it (a revert), and a side branch merged.  With `rename_before_revert`, the reverted
    file's function was renamed in between (its name then is another placeholder's)."""
    a = {f"a{i}": i for i in range(5)}
    b = {f"b{i}": i for i in range(4)}
    d = {f"d{i}": i for i in range(3)}
    methods = {"start": 1, "stop": 2}
    repo = make_repo(tmp_path, {"pkg/a.py": module(a, methods), "pkg/b.py": module(b), "pkg/d.py": module(d), "README": "0"})
    rng = random.Random(5)
    kept_d: str | None = None
    b_path = "pkg/b.py"
    for i in range(1, 44):
        kind = i % 5
        if kind == 0:
            repo.apply({"README": str(i)}, f"docs {i}")
        elif kind == 1:
            name = rng.choice(sorted(a))
            a[name] += 10
            methods["stop"] += 1
            repo.apply({"pkg/a.py": module(a, methods)}, f"edit {name}")
        elif kind == 2:
            b[f"new{i}"] = i
            repo.apply({b_path: module(b)}, f"add new{i}")
        elif kind == 3:
            old = sorted(b)[0]
            b[f"{old}_renamed"] = b.pop(old)
            repo.apply({b_path: module(b)}, f"rename {old}")
        elif len(a) > 2:
            name = sorted(a)[-1]
            b[name] = a.pop(name)
            repo.apply({"pkg/a.py": module(a, methods), b_path: module(b)}, f"move {name}")
        if i == 16:
            kept_d = module(d)
            repo.apply({"pkg/d.py": kept_d + "\n# kept\n"}, "d as it will be again")
            kept_d += "\n# kept\n"
        if i in (18, 27):
            if rename_before_revert and i == 18:
                d = {("d1_new" if k == "d1" else k): v for k, v in d.items()}
            else:
                d["d1" if "d1" in d else "d1_new"] += 5
            repo.apply({"pkg/d.py": module(d)}, f"edit d {i}")
        if i == 30:
            assert kept_d is not None
            repo.apply({"pkg/d.py": kept_d}, "revert d")
        if i == 33:
            repo.apply({b_path: None, "pkg/c.py": module(b)}, "rename b to c")
            b_path = "pkg/c.py"
        if i == 36:
            git(repo.root, "checkout", "-q", "-b", "side")
            repo.apply({"pkg/d.py": module({**d, "side": 1})}, "on the side")
            git(repo.root, "checkout", "-q", "-")
            a["a0"] += 100
            repo.apply({"pkg/a.py": module(a, methods)}, "on the main line")
            git(repo.root, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    return repo


def test_a_history_cut_in_two_halves_gives_the_tables_of_one_walk(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = scripted_history(make_repo, tmp_path)
    tools = ToolService(ToolsConfig())
    cut = split.survey(tools, repo.root, repo.head(), 10).cut
    assert cut is not None and len(cut.boundary) == 1
    assert git(repo.root, "log", "-1", "--format=%s", cut.boundary[0]).startswith("docs")
    halves, figures = cold_walk(repo.root, 10)
    assert figures["split_at"] == cut.position and "older_walk" in figures and "newer_walk" in figures
    whole, figures = cold_walk(repo.root, 0)
    assert "split_at" not in figures
    assert halves == whole
    assert any("revert d" in row for row in whole["commits"])


def test_versions_past_the_size_limit_give_the_halves_the_tables_of_one_walk(make_repo: MakeRepo, tmp_path: Path) -> None:
    """Files that grow past `max_file_size` and shrink back under it, on both sides of the cut:
    a version's size is the same whether a walk reads it whole (the newer half's first) or
    follows it through the diffs (one walk)."""
    repo = scripted_history(make_repo, tmp_path)
    whole, figures = cold_walk(repo.root, 0, max_file_size=600)
    assert figures.get("parsed_too_large") or figures.get("reparsed_too_large"), figures
    halves, figures = cold_walk(repo.root, 10, max_file_size=600)
    assert "split_at" in figures and halves == whole
    assert whole != cold_walk(repo.root, 0)[0], "the limit took definitions away"


def test_a_cluster_walks_the_two_halves_and_they_give_the_tables_of_one_walk(make_repo: MakeRepo, tmp_path: Path) -> None:
    """Under Dask the halves are the cluster's tasks (`spread_cold_walk`: each in a child process
    of the worker that runs it), stitched here: one walk's tables all the same."""
    from distributed import Client, LocalCluster, get_task_stream

    from codeintel.orchestration.executors import DaskExecutor

    repo = scripted_history(make_repo, tmp_path)
    cut = split.survey(ToolService(ToolsConfig()), repo.root, repo.head(), 10).cut
    assert cut is not None
    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
        get_task_stream(client) as stream,
    ):
        halves, figures = cold_walk(repo.root, 10, DaskExecutor(client))
    assert len([t for t in stream.data if "walk_part" in str(t["key"])]) == 2  # (a task's key names its function)
    assert figures["split_at"] == cut.position and "older_walk" in figures and "newer_walk" in figures
    whole, _ = cold_walk(repo.root, 0)
    assert halves == whole


def test_halves_that_do_not_join_are_walked_again_whole(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = scripted_history(make_repo, tmp_path, rename_before_revert=True)
    assert split.survey(ToolService(ToolsConfig()), repo.root, repo.head(), 10).cut is not None
    halves, figures = cold_walk(repo.root, 10)
    assert "split_at" not in figures and "older_walk" not in figures  # cut, walked in halves, then whole
    whole, _ = cold_walk(repo.root, 0)
    assert halves == whole


def test_the_cut_shares_the_py_versions_not_the_commits(make_repo: MakeRepo, tmp_path: Path, monkeypatch: Any) -> None:
    """A history whose older commits change four files each and newer ones one: the halves'
    walks take as long as their versions, so the cut leaves the older half its share of the
    versions (`survey`'s `share`), far earlier than that share of the commits."""
    monkeypatch.setattr(split, "_GRID", 1)  # (no rounding of the target: a short history)
    files = [f"p{k}.py" for k in range(4)]
    commits: list[dict[str, str | None]] = []
    for i in range(1, 21):  # each followed by a commit that changes no .py file: a place to cut
        commits += [{f: function(f[:-3], i) for f in files}, {"README": f"old {i}"}]
    for i in range(1, 41):
        commits += [{"p0.py": function("p0", 100 + i)}, {"README": f"new {i}"}]
    repo = make_repo(tmp_path, {**{f: function(f[:-3], 0) for f in files}, "README": "0"}, commits)
    n = len(commits) + 1
    versions = 4 + 20 * 4 + 40
    cut = split.survey(ToolService(ToolsConfig()), repo.root, repo.head(), 10).cut
    assert cut is not None and cut.position < 0.5 * n
    made = 4 + 4 * ((cut.position - 1) // 2)  # the versions of the commits before the cut
    assert abs(made - 0.57 * versions) <= 4  # (one commit of the older part: four versions)


def test_a_short_history_or_one_no_commit_cuts_is_walked_whole(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = scripted_history(make_repo, tmp_path)
    tools = ToolService(ToolsConfig())
    assert split.survey(tools, repo.root, repo.head(), 1000).cut is None  # too short
    only_code = make_repo(tmp_path, {"m.py": function("f", 0)}, [{"m.py": function("f", i)} for i in range(1, 30)], name="code")
    assert split.survey(tools, only_code.root, only_code.head(), 10).cut is None  # every commit changes a .py file


def test_a_short_history_not_cut_is_walked_in_the_steps_process_with_a_childs_tables(
    make_repo: MakeRepo, tmp_path: Path, monkeypatch: Any
) -> None:
    """Up to `inline_max_commits` commits and no cut, the walk is the step's own (no process is
    started: its start, imports and files would cost more than it spares); its tables are those
    a child's walk stores."""
    from codeintel.ingestion.history import lineage, walk

    repo = scripted_history(make_repo, tmp_path)
    tools = ToolService(ToolsConfig())
    plan = HistoryPlan(PlanMode.COLD, read_repo_history(tools, repo.root, HistorySettings()))

    def tables_of(settings: HistorySettings) -> tuple[dict[str, list[str]], set[type]]:
        with walk.walk_history(tools, repo.root, "repo", plan, settings) as facts:
            kinds = {type(getattr(facts, name)) for name in TABLES}
            return {name: sorted(map(repr, _plain(getattr(facts, name).table()).to_pylist())) for name in TABLES}, kinds

    in_a_child, kinds = tables_of(HistorySettings(split_min_commits=0, inline_max_commits=0))
    assert kinds == {Rows}  # read back from the child's files

    def no_child(*_: object) -> None:
        raise AssertionError("a short history's walk started a process")

    monkeypatch.setattr(walk, "start_cold_walk", no_child)
    here, kinds = tables_of(HistorySettings(split_min_commits=0))
    assert kinds == {lineage.Columns}
    assert here == in_a_child
    with pytest.raises(AssertionError, match="started a process"):  # cut, or longer: a child's
        tables_of(HistorySettings(split_min_commits=10))
    with pytest.raises(AssertionError, match="started a process"):
        tables_of(HistorySettings(split_min_commits=0, inline_max_commits=len(in_a_child["commits"]) - 1))


def test_git_starts_on_the_log_before_the_survey_and_a_log_not_wanted_is_stopped(make_repo: MakeRepo, tmp_path: Path) -> None:
    """git walks the commits for the log (a cold walk's first wait) while the history is
    surveyed; where the walk then runs in a child, that log is stopped: no git is left running,
    and the child's tables are the step's own walk's."""
    from contextlib import suppress

    import psutil

    from codeintel.ingestion.history import walk

    repo = scripted_history(make_repo, tmp_path)
    order: list[str] = []

    class Noting(ToolService):
        def run(self, tool: str, args: list[str], *, cwd: Path, timeout_s: float | None = None) -> bytes:
            order.append(" ".join(args[:1] + [a for a in args if a == "--topo-order"]))
            return ToolService.run(self, tool, args, cwd=cwd, timeout_s=timeout_s)

        def process(self, tool: str, args: list[str], *, cwd: Path, timeout_s: float | None = None) -> Any:
            order.append("log" if "log" in args else " ".join(args[-2:]))
            return ToolService.process(self, tool, args, cwd=cwd, timeout_s=timeout_s)

    tools = Noting(ToolsConfig())
    plan = HistoryPlan(PlanMode.COLD, read_repo_history(tools, repo.root, HistorySettings()))

    def gits() -> list[psutil.Process]:  # this process's git children, running or not yet reaped
        found = []
        for p in psutil.Process().children():
            with suppress(psutil.Error):
                if p.name() == "git":
                    found.append(p)
        return found

    def tables_of(settings: HistorySettings) -> dict[str, list[str]]:
        order.clear()
        with walk.walk_history(tools, repo.root, "repo", plan, settings) as facts:
            assert not gits()  # the walk's (and an early log not wanted) ended and reaped
            return {name: sorted(map(repr, _plain(getattr(facts, name).table()).to_pylist())) for name in TABLES}

    here = tables_of(HistorySettings(split_min_commits=0))
    assert order.index("log") < order.index("rev-list --topo-order")  # the survey
    in_a_child = tables_of(HistorySettings(split_min_commits=0, inline_max_commits=0))
    assert order.count("log") == 1  # the early one, stopped (the child's own log is the child's)
    assert in_a_child == here


def test_the_child_cuts_the_history_where_the_step_found_the_cut(make_repo: MakeRepo, tmp_path: Path) -> None:
    """The step surveys the history (one `git rev-list`); the child walks it as surveyed and
    does not survey it again: told it is not cut, it walks it whole."""
    repo = scripted_history(make_repo, tmp_path)
    tools = ToolService(ToolsConfig())
    settings = HistorySettings(split_min_commits=10, inline_max_commits=0)
    plan = HistoryPlan(PlanMode.COLD, read_repo_history(tools, repo.root, settings))
    surveyed = survey_history(tools, repo.root, plan, settings)
    assert surveyed.cut is not None and surveyed.commits == int(git(repo.root, "rev-list", "--count", "HEAD"))
    with start_cold_walk(tools, repo.root, "repo", plan, settings, surveyed).facts(repo.root) as facts:
        assert facts.stats["split_at"] == surveyed.cut.position
    with start_cold_walk(tools, repo.root, "repo", plan, settings, split.Survey(surveyed.commits, None)).facts(repo.root) as facts:
        assert "split_at" not in facts.stats and "older_walk" not in facts.timings


def _logging(commands: list[list[str]]) -> ToolService:
    """A tool service noting in `commands` each git command it runs (they run for real)."""

    class Logged(ToolService):
        def git(self, args: list[str], *, cwd: Path) -> bytes:
            commands.append(args)
            return ToolService.git(self, args, cwd=cwd)

    return Logged(ToolsConfig())


def test_a_history_no_single_commit_spans_is_not_cut_without_listing_its_py_commits(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    """A branch open through the whole middle (two lines of work, merged at the end): no place
    has a boundary of one commit, so which commits change .py files is never asked of git."""
    repo = make_repo(tmp_path, {"m.py": function("f", 0), "README": "0"})
    git(repo.root, "checkout", "-q", "-b", "side")
    for i in range(1, 16):
        repo.apply({"s.py" if i % 3 else "NOTES": function("g", i) if i % 3 else str(i)}, f"side {i}")
    git(repo.root, "checkout", "-q", "-")
    for i in range(1, 16):
        repo.apply({"m.py" if i % 3 else "README": function("f", i) if i % 3 else str(i)}, f"main {i}")
    git(repo.root, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    commands: list[list[str]] = []
    assert split.survey(_logging(commands), repo.root, repo.head(), 10).cut is None
    assert [args[0] for args in commands] == ["rev-list"]
    commands.clear()
    scripted = scripted_history(make_repo, tmp_path / "scripted")
    assert split.survey(_logging(commands), scripted.root, scripted.head(), 10).cut is not None
    assert "log" in [arg for args in commands for arg in args]  # (where a cut may be, they are listed)


def test_requests_history_in_two_halves_gives_the_tables_of_one_walk(shared_dir: Path, tmp_path: Path) -> None:
    """A real history (requests: 6,489 commits, merges of long branches) cut at the default
    threshold: the stitched tables are one walk's, row for row."""
    clone = tmp_path / "requests"
    git(tmp_path, "clone", "-q", str(shared_dir / "corpora" / "requests.bundle"), str(clone))
    halves, figures = cold_walk(clone, HistorySettings().split_min_commits)
    assert figures.get("split_at")
    whole, _ = cold_walk(clone, 0)
    assert halves == whole


def test_stopping_a_walk_in_halves_stops_both_halves(make_repo: MakeRepo, tmp_path: Path, monkeypatch: Any) -> None:
    """The walk's child starts the halves in its process group: cancelling the walk kills them
    (and their git processes) too, not only the child, and leaves no directory of theirs.  While
    they walk, the child holds no Arrow (nor the walk's modules): it waits light."""
    import tempfile
    import time

    import psutil

    temp = tmp_path / "temp"  # the temporary directory of this process and of its children
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    repo = scripted_history(make_repo, tmp_path)
    for i in range(300):  # long enough for the halves to be seen running, and to run on for a second
        repo.apply({"pkg/e.py": module({f"e{j}": i for j in range(40)})} if i % 2 else {"README": f"more {i}"}, f"more {i}")
    tools = ToolService(ToolsConfig())
    settings = HistorySettings(split_min_commits=10)
    plan = HistoryPlan(PlanMode.COLD, read_repo_history(tools, repo.root, settings))
    walk = start_cold_walk(tools, repo.root, "repo", plan, settings)
    child = psutil.Process(walk._process.pid)

    def is_half(p: psutil.Process) -> bool:
        try:
            return "codeintel.ingestion.history.apart" in " ".join(p.cmdline())
        except psutil.Error:  # gone, or a git process not reaped yet
            return False

    halves: list[psutil.Process] = []
    deadline = time.monotonic() + 30
    while len(halves) < 2 and time.monotonic() < deadline:
        halves = [p for p in child.children() if is_half(p)]
        time.sleep(0.01)
    assert len(halves) == 2
    assert not [m.path for m in child.memory_maps() if "arrow" in m.path.lower() or "numpy" in m.path.lower()]
    family = halves + [p for h in halves for p in h.children(recursive=True)]
    walk.cancel()
    _, alive = psutil.wait_procs(family, timeout=0.3)  # killed at once, not left to finish

    def running(p: psutil.Process) -> bool:
        try:
            return p.status() != psutil.STATUS_ZOMBIE  # (killed, its parent gone: not reaped yet)
        except psutil.NoSuchProcess:
            return False

    assert not [p for p in alive if running(p)]
    assert not list(temp.iterdir())  # the halves' directories were in the walk's, removed with it


def test_a_half_that_fails_on_a_worker_is_a_clear_error(make_repo: MakeRepo, tmp_path: Path) -> None:
    """A half's child process that fails (here: its repository gone) raises with git's words,
    instead of handing back no tables."""
    from codeintel.errors import CodeIntelError
    from codeintel.ingestion.history.apart import _request, walk_part

    repo = make_repo(tmp_path, {"m.py": function("f", 0)}, [{"m.py": function("f", i)} for i in range(1, 4)])
    tools = ToolService(ToolsConfig())
    settings = HistorySettings(split_min_commits=2)
    plan = HistoryPlan(PlanMode.COLD, read_repo_history(tools, repo.root, settings))
    request = _request(tools, repo.root / "gone", "repo", plan, settings, "", {"older": True, "boundary": [repo.head()]})
    with pytest.raises(CodeIntelError, match=r"a half of the history walk of .*gone failed"):
        walk_part(request)


@pytest.mark.parametrize("min_commits", [10_000, 10], ids=["whole", "in halves"])
def test_a_directory_below_the_top_is_walked_alone_its_files_named_from_it(
    make_repo: MakeRepo, tmp_path: Path, min_commits: int
) -> None:
    """`codeintel export repo/pkg`: git names files from the repository's top; the history of
    the directory is its files' own, named from it as the scan names them (else no GOID of the
    history joins the code's), whether walked whole or in halves, files outside left out."""
    repo = scripted_history(make_repo, tmp_path)
    for i in range(3):  # a file outside, changed on its own and beside the directory's
        repo.apply({"tools/gen.py": module({"g0": i}), **({"pkg/d.py": module({"d0": 50 + i})} if i else {})}, f"t{i}")
    repo.apply({"pkg/d.py": module({f"d{i}": i for i in range(3)})}, "d as it was first")  # made again after the cut
    top, below = _rows(repo.root, 10_000), _rows(repo.root / "pkg", min_commits)
    outside = {r["sha"] for r in top["file_changes"] if _outside(r["path"])}
    assert {r["sha"] for r in below["commits"]} == {r["sha"] for r in top["commits"]}, "every commit, for identity"
    for name in TABLES:  # (a commit's counts are of the directory's files: those outside left out)
        inside = [_unrooted(r) for r in top[name] if not any(map(_outside, r.values())) and r.get("sha") not in outside]
        assert sorted(map(repr, inside)) == sorted(repr(_ids_out(r)) for r in below[name] if r.get("sha") not in outside)
    head_defs = {(r["path"], r["qualname"]): r["goid"] for r in below["head_defs"]}
    assert head_defs[("a.py", "Engine.stop")] == make_goid("repo", "a.py", "method", "Engine.stop")


def _rows(root: Path, min_commits: int) -> dict[str, list[dict[str, Any]]]:
    tools = ToolService(ToolsConfig())
    settings = HistorySettings(split_min_commits=min_commits)
    plan = HistoryPlan(PlanMode.COLD, read_repo_history(tools, root, settings))
    walk = start_cold_walk(tools, root, "repo", plan, settings, split.survey(tools, root, str(plan.repo.head), min_commits))
    with walk.facts(root) as facts:
        assert ("split_at" in {**facts.stats, **facts.timings}) == (min_commits == 10)
        return {name: _plain(getattr(facts, name).table()).to_pylist() for name in TABLES}


def _outside(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("tools/")


def _unrooted(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v[len("pkg/") :] if isinstance(v, str) and v.startswith("pkg/") else v for k, v in _ids_out(row).items()}


def _ids_out(row: dict[str, Any]) -> dict[str, Any]:
    """A row without the ids hashed from a path (a file's, a lineage's, a GOID)."""
    return {k: v for k, v in row.items() if k not in ("file_id", "lineage_id", "lineages", "goid")}


def test_the_users_git_config_does_not_change_the_walk(make_repo: MakeRepo, tmp_path: Path) -> None:
    """Settings a user may have that change what `git log -p` writes: hunks fused with the
    context between them (no longer -U0's removed-then-added lines), renames past a lower limit,
    hunks placed otherwise (a function inserted between two of the same body), `*.py` followed
    as one file through renames, no diff for the root commit.  The walk's tables (whole or in
    halves) are those of a repository without them (all but the hunks' placement fail it
    unpinned)."""
    repo = scripted_history(make_repo, tmp_path)
    moved = {f"pkg/{n}.py": (repo.root / f"pkg/{n}.py").read_text() for n in ("a", "d")}
    repo.apply({**dict.fromkeys(moved), **{p.replace(".py", "2.py"): t + "\nX = 1\n" for p, t in moved.items()}}, "two renames")
    twins = "".join(f"\n\ndef {n}(x):\n    if x:\n        x += 1\n\n    return x\n" for n in ("t1", "t3"))
    repo.apply({"pkg/t.py": twins}, "twins")
    repo.apply({"pkg/t.py": twins.replace("\n\ndef t3", "\n\ndef t2(x):\n    if x:\n        x += 1\n\n    return x\n\n\ndef t3")}, "a third between")
    plain, _ = cold_walk(repo.root, 0)
    assert sum("'R'" in row for row in plain["file_changes"]) >= 3, "renames detected, edited ones too"
    settings = {
        "diff.interHunkContext": "20", "diff.indentHeuristic": "false", "diff.renameLimit": "1",
        "log.follow": "true", "log.showRoot": "false",
    }  # fmt: skip
    for key, value in settings.items():
        git(repo.root, "config", key, value)
    configured, _ = cold_walk(repo.root, 0)
    assert configured == plain
    halves, figures = cold_walk(repo.root, 10)  # the survey's and the halves' logs too
    assert "split_at" in figures and halves == plain


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen to sign a commit with")
def test_a_signed_history_shown_with_its_signatures_walks_as_any_other(make_repo: MakeRepo, tmp_path: Path) -> None:
    """`log.showSignature` in the user's config makes `git log` write each signature's check
    among the commits (a signer's name in any script): the survey's and the walk's logs ask for
    none, and the walk in halves gives the tables of a repository without it."""
    repo = scripted_history(make_repo, tmp_path)
    plain, _ = cold_walk(repo.root, 10)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, capture_output=True)
    (tmp_path / "allowed").write_text(f"s\u00efgner@example.org {(tmp_path / 'key.pub').read_text()}", encoding="utf-8")
    for k, v in (("gpg.format", "ssh"), ("user.signingkey", str(key)), ("gpg.ssh.allowedSignersFile", str(tmp_path / "allowed"))):
        git(repo.root, "config", k, v)
    (repo.root / "pkg" / "signed.py").write_text("def signed():\n    return 1\n")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-S", "-m", "signed")
    plain_signed, _ = cold_walk(repo.root, 10)
    git(repo.root, "config", "log.showSignature", "true")
    assert "signature for s\u00efgner" in git(repo.root, "log", "-1", "--format=%H")
    shown, figures = cold_walk(repo.root, 10)
    assert "split_at" in figures and shown == plain_signed
    assert len(plain_signed["commits"]) == len(plain["commits"]) + 1
