"""What the `git_history` step calls: what to walk (a plan), the walk, and the rows to store.

A plan compares the repository with what the database holds: the same HEAD, shallow
boundary and settings mean nothing to do; a database with no history, other settings (the
huge-commit threshold, the bot pattern, the blame-ignore list, `.mailmap`) or another shallow
boundary means a cold walk of every commit reachable from HEAD; otherwise only the commits
not walked yet are, and the commits that are no longer reachable (history rewritten by a
force-push) are listed for removal.  A shallow clone's boundary commits are starting points:
its history is recorded as truncated there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any

from codeintel.analysis.goids import make_goid
from codeintel.errors import CodeIntelError
from codeintel.gcpause import gc_paused
from codeintel.ingestion.history.blobs import open_blobs
from codeintel.ingestion.history.gitlog import CommitRecord, log_args, parse_log, read_ahead, rerooted
from codeintel.ingestion.history.lineage import (
    DEFAULT_BOTS,
    Columns,
    Deletion,
    HistoryWalker,
    WalkedCommit,
    WalkSettings,
)
from codeintel.ingestion.history.merges import merge_files
from codeintel.ingestion.history.outline import Module, pack_outline
from codeintel.ingestion.history.plan import (
    HistoryFacts,
    HistoryPlan,
    HistorySettings,
    PlanMode,
    RepoHistory,
    StoredHistory,
    WalkPart,
)
from codeintel.ingestion.history.versions import StoredVersion, Version, VersionKey, id_text
from codeintel.ingestion.scan import scanned
from codeintel.ingestion.tools import ToolFailedError, ToolService
from codeintel.storage.catalog import Table

logger = logging.getLogger(__name__)

# change it when what the walk stores changes: every database then walks its history again
HISTORY_VERSION = "4"


def read_repo_history(tools: ToolService, repo: Path, settings: HistorySettings, repo_name: str = "") -> RepoHistory:
    """HEAD, the shallow boundary and the settings digest of `repo` (no HEAD outside git), and
    where `repo` is in its repository (`RepoHistory.prefix`: a directory below the top is walked
    alone, its files named from it, as the scan names them).

    The digest holds `repo_name` and the prefix too: the GOIDs and paths the walk stores are
    keyed by them, so a database renamed with --full walks its history again even where this
    step was not selected in that run."""
    if not tools.available(tools.config.git):
        missing = f"git not found ({tools.config.git}): install git, or set `git` in [tool.codeintel] or CODEINTEL_GIT"
        return RepoHistory(None, frozenset(), "", why_no_head=missing)
    try:
        # (the shallow file is the repository's, not a linked worktree's: `--git-path` knows where)
        out = tools.git(
            ["rev-parse", "--git-path", "shallow", "--show-toplevel", "--show-prefix", "--verify", "-q", "HEAD"], cwd=repo
        )
    except ToolFailedError:  # no commit yet
        return RepoHistory(None, frozenset(), "")
    shallow_path, toplevel, prefix, head = (os.fsdecode(line) for line in out.rstrip(b"\n").split(b"\n"))
    shallow_file = repo / shallow_path  # (relative to `repo`, or absolute)
    shallow = (
        frozenset(_read(shallow_file).decode("ascii", "replace").split()) if shallow_file.is_file() else frozenset()
    )
    ignore_file = _ignore_revs_file(tools, repo, Path(toplevel))
    parts = [
        HISTORY_VERSION,
        repo_name,
        prefix,
        str(settings.huge_commit_files),
        settings.bot_pattern,
        str(settings.max_file_size),
        repr(settings.profile),
        hashlib.blake2b(_read(Path(toplevel) / ".mailmap")).hexdigest(),
        hashlib.blake2b(_read(ignore_file) if ignore_file else b"").hexdigest(),
    ]
    digest = hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
    return RepoHistory(head or None, shallow, digest, prefix)


def ignore_revs(tools: ToolService, repo: Path) -> frozenset[str]:
    """Commits blame ignores: `blame.ignoreRevsFile`, else `.git-blame-ignore-revs`."""
    path = _ignore_revs_file(tools, repo, _toplevel(tools, repo))
    if path is None:
        return frozenset()
    revs = set()
    for line in _read(path).decode("utf-8", "replace").splitlines():
        token = line.split("#", 1)[0].strip().lower()
        if 7 <= len(token) <= 40 and all(c in "0123456789abcdef" for c in token):
            revs.add(token)
    return frozenset(revs)


def _ignore_revs_file(tools: ToolService, repo: Path, toplevel: Path) -> Path | None:
    """The blame-ignore list (a relative name is git's: from the repository's top)."""
    try:
        configured = tools.git(["config", "--get", "blame.ignoreRevsFile"], cwd=repo).decode().strip()
    except ToolFailedError:  # not set
        configured = ""
    path = toplevel / (configured or ".git-blame-ignore-revs")
    return path if path.is_file() else None


def _toplevel(tools: ToolService, repo: Path) -> Path:
    return Path(os.fsdecode(tools.git(["rev-parse", "--show-toplevel"], cwd=repo).rstrip(b"\n")))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def plan_history(tools: ToolService, repo: Path, now: RepoHistory, stored: StoredHistory, *, full: bool) -> HistoryPlan:
    """What to walk: nothing, everything, or the commits not walked yet (and what is gone)."""
    if now.head is None:
        return HistoryPlan(PlanMode.NONE, now, reason=now.why_no_head or "no commit (or not a git repository)")
    if stored.head is None or full:
        return HistoryPlan(PlanMode.COLD, now, reason="--full" if full else "no history stored")
    if stored.damaged:
        return HistoryPlan(PlanMode.COLD, now, reason="commits were stored twice (by an earlier release, after a reset)")
    if stored.digest != now.digest:
        return HistoryPlan(PlanMode.COLD, now, reason="settings, .mailmap or the blame-ignore list changed")
    if stored.shallow != now.shallow:
        return HistoryPlan(PlanMode.COLD, now, reason="the shallow boundary moved")
    if stored.head == now.head:
        return HistoryPlan(PlanMode.NOOP, now, reason="no new commit")
    try:
        new = tools.git(["rev-list", "--parents", now.head, "--not", stored.head], cwd=repo).decode().split("\n")
        gone = tools.git(["rev-list", stored.head, "--not", now.head], cwd=repo).decode().split()
    except ToolFailedError:  # the old HEAD is no longer in the repository: start again
        return HistoryPlan(PlanMode.COLD, now, reason="the last HEAD walked is gone")
    commits: dict[str, list[str]] = {}
    for line in new:
        if line.strip():
            sha, *parents = line.split()
            commits[sha] = parents
    # HEAD moved back to a commit walked before (a reset, a force-push that drops commits): no
    # commit is new, and HEAD is where the walk starts and ends
    boundary = sorted({p for parents in commits.values() for p in parents if p not in commits}) if commits else [now.head]
    return HistoryPlan(
        PlanMode.INCREMENTAL, now, len(commits), tuple(boundary), tuple(gone), f"{len(commits)} new commits"
    )


HEAD_FILE_COLUMNS = ("path", "blob", "file_id", "n_lines", "size", "outline", "outline_names")
HEAD_DEF_COLUMNS = ("path", "blob", "lineage_id", "goid", "qualname", "kind", "ordinal", "file_id")


def collect_history(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    *,
    generations: Callable[[Iterable[str]], dict[str, int]],
    stored_versions: Callable[[Iterable[VersionKey]], dict[VersionKey, StoredVersion]],
    stored_head: Callable[[], dict[str, str]],
    stored_deletions: Callable[[Iterable[str]], dict[str, list[Deletion]]] = lambda _: {},
    stored_commits: Callable[[list[str]], dict[str, WalkedCommit]] = lambda _: {},
    stored_outlines: Callable[[Iterable[VersionKey]], dict[VersionKey, Module]] = lambda _: {},
    spool: Path | None = None,
    part: WalkPart | None = None,
    log: IO[bytes] | None = None,
) -> HistoryFacts:
    """Walk the commits `plan` asks for and return the rows to store.

    The callables read what an earlier run stored (used by incremental walks): generations of
    commits, versions by (path, blob), HEAD's (path -> blob) as walked last, and the
    definitions commits deleted (of the walked commits the new ones descend from), commits
    walked before (parents, generation, lineages changed: `lineage.WalkedCommit`), and the
    outlines of HEAD's versions as walked last.  With
    `spool`, a cold walk writes the rows of the walked commits to Arrow IPC stream files there
    as it goes (`<table field>.arrow`, ended by `Columns.close`) instead of holding them.
    `part`: the half of a cold walk to do (`split`).  `log`: its history stream, already
    started (`EarlyLog`; else started here).
    """
    started = time.perf_counter()
    head = plan.repo.head
    assert head is not None
    cold = plan.mode == PlanMode.COLD
    walk_settings = WalkSettings(
        settings.huge_commit_files, ignore_revs(tools, repo), settings.bot_pattern or DEFAULT_BOTS,
        settings.defs_budget, settings.lines_budget, settings.max_file_size,
    )  # fmt: skip
    timings: dict[str, float] = {}
    # the walk allocates millions of objects that live on, none in a cycle: no collection walks them
    prefix = plan.repo.prefix
    with gc_paused(), open_blobs(tools, repo, timeout_s=settings.timeout_s) as blobs:
        with (
            nullcontext(log) if log is not None else log_stream(tools, repo, plan, settings, part) as stream,
            read_ahead(stream) as ahead,
            merge_files(tools, repo, _revs(plan, part), prefix, settings.timeout_s) as merges,
        ):
            commits: Iterable[CommitRecord] = rerooted(parse_log(ahead), prefix)
            if cold:
                newer = part is not None and not part.older
                walker = HistoryWalker(
                    blobs, walk_settings, shallow=plan.repo.shallow,
                    generations=dict(part.generations or {}) if newer and part else None,
                    made_before=part.made_before if newer and part else None, merge_files=merges.files,
                )  # fmt: skip
                if spool is not None:
                    for name, columns in walker.out.tables().items():
                        columns.spool(spool / f"{name}.arrow")
                walker.walk(commits)
            else:
                # (what the boundary needs is read while git writes the new commits' log)
                deletions, known = stored_deletions(plan.boundary), generations(plan.boundary)
                records = list(commits)
                timings["read"] = time.perf_counter() - started
                keys = _keys_used(records) + [(d.path, d.blob) for gone in deletions.values() for d in gone]
                walker = HistoryWalker(
                    blobs, walk_settings, shallow=plan.repo.shallow,
                    generations=known, stored=stored_versions(keys), deletions=deletions,
                    merge_files=merges.files, load_stored=stored_versions, load_commits=stored_commits,
                    stored_outlines=stored_outlines(keys),
                )  # fmt: skip
                walker.walk(records)
        timings["walk"] = time.perf_counter() - started
        if part is not None and part.older:  # HEAD is the newer half's
            walker.release()
            files, rows = head_rows(repo_name, {})
            out = walker.out
            return HistoryFacts(
                out.commits, out.file_changes, out.function_changes, out.versions, out.merge_lineages, files, rows, [], cold,
                dict(out.stats), timings,
            )  # fmt: skip
        profile = settings.profile
        tree = {p: b for p, b in head_tree(tools, repo, head).items() if scanned(p, profile)}
        before = {} if cold else stored_head()
        changed = [(p, b) for p, b in tree.items() if before.get(p) != b]
        if plan.gone:  # HEAD's versions a gone commit made: made again by the new commits, rows and all
            same = [(p, b) for p, b in tree.items() if before.get(p) == b]
            kept = stored_versions(same)
            changed += [key for key in same if key not in kept]
        head_paths = (
            sorted(set(before) | set(tree)) if cold else sorted({p for p, _ in changed} | (set(before) - set(tree)))
        )
        missing = [k for k in changed if not isinstance(walker.versions.get(k), Version)]
        if missing and not cold:  # (cold: the versions of HEAD an older half made, `split`)
            walker.versions.update({k: v for k, v in stored_versions(missing).items() if k not in walker.versions})
        heads = {key: walker.head(key) for key in changed}  # (outlines kept, or parsed)
        walker.release()
        files, rows = head_rows(repo_name, heads)
    timings["head"] = time.perf_counter() - started
    logger.info(
        "history: %s walk of %d commits in %.2fs (%s)", plan.mode, len(walker.out.commits), timings["walk"],
        ", ".join(f"{k} {v}" for k, v in sorted(walker.out.stats.items())),
    )  # fmt: skip
    out = walker.out
    return HistoryFacts(
        out.commits, out.file_changes, out.function_changes, out.versions, out.merge_lineages, files, rows, head_paths, cold,
        dict(out.stats), timings, *((walker.orphans, walker.made_again) if walker.made_before is not None else ()),
    )  # fmt: skip


@contextmanager
def log_stream(
    tools: ToolService, repo: Path, plan: HistoryPlan, settings: HistorySettings, part: WalkPart | None = None
) -> Iterator[IO[bytes]]:
    """The history stream (`gitlog.log_args`) of the commits `plan` (and `part`) asks for, running."""
    revs = _revs(plan, part)
    with tools.stream(tools.config.git, log_args(), cwd=repo, timeout_s=settings.timeout_s, stdin=revs.encode()) as stream:
        yield stream


def _revs(plan: HistoryPlan, part: WalkPart | None) -> str:
    """The revisions (stdin of `git log --stdin`) of the commits `plan` (and `part`) asks for."""
    head = plan.repo.head
    assert head is not None
    revs = head + "\n" + "".join(f"^{b}\n" for b in plan.boundary)
    if part is not None:
        revs = "".join(f"{b}\n" for b in part.boundary) if part.older else revs + "".join(f"^{b}\n" for b in part.boundary)
    return revs


class EarlyLog:
    """A cold walk's history stream started before it is known where the walk runs
    (`walk.walk_history`): git walks the commits (flask: 0.06 s before its first one) while the
    history is surveyed.  The walk of this process reads `stream` (then `close`); a walk
    elsewhere leaves it (`discard`: git is stopped, not waited for)."""

    def __init__(self, tools: ToolService, repo: Path, plan: HistoryPlan, settings: HistorySettings) -> None:
        self._log = log_stream(tools, repo, plan, settings)
        self.stream = self._log.__enter__()

    def close(self, error: BaseException | None = None) -> None:
        """End the stream: after the walk read it, or (`error`) as the block that raised it."""
        if error is None:
            self._log.__exit__(None, None, None)
        else:
            self._log.__exit__(type(error), error, error.__traceback__)

    def discard(self) -> None:
        self.close(_Unread())


class _Unread(Exception):
    """The early log was not wanted (the walk runs elsewhere)."""


def collect_cold(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    *,
    spool: Path | None = None,
    part: WalkPart | None = None,
    log: IO[bytes] | None = None,
) -> HistoryFacts:
    """`collect_history` of a cold walk: it reads nothing stored."""
    assert plan.mode == PlanMode.COLD
    return collect_history(
        tools, repo, repo_name, plan, settings, generations=_refuse, stored_versions=_refuse, stored_head=dict,
        spool=spool, part=part, log=log,
    )  # fmt: skip


def _refuse(*_: object) -> Any:
    raise CodeIntelError("a cold walk reads nothing stored")


def _keys_used(records: list[CommitRecord]) -> list[VersionKey]:
    keys: set[VersionKey] = set()
    for commit in records:
        for f in commit.files:
            if f.old_path and f.old_blob:
                keys.add((f.old_path, f.old_blob))
            if f.new_path and f.new_blob:
                keys.add((f.new_path, f.new_blob))
        for mf in commit.merge_files:
            keys.update((p, b) for p, b in mf.parents if p and b)
            if mf.blob:
                keys.add((mf.path, mf.blob))
    return sorted(keys)


def head_tree(tools: ToolService, repo: Path, head: str) -> dict[str, str]:
    """path -> blob of the `.py` files (regular files) of commit `head`."""
    out = tools.git(["ls-tree", "-r", "-z", head], cwd=repo)  # from `repo`: a directory below the top lists its own
    tree: dict[str, str] = {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, sha = meta.split(b" ")
        path = os.fsdecode(raw_path)
        if kind == b"blob" and mode.startswith(b"100") and path.endswith(".py"):
            tree[path] = sha.decode("ascii")
    return tree


def head_rows(repo_name: str, heads: dict[VersionKey, tuple[Version, Module]]) -> tuple[Columns, Columns]:
    """HEAD's files with their file id and outline (`outline.pack_outline`), and their definitions
    with their lineage and GOID."""
    files = Columns(Table.HEAD_FILES, HEAD_FILE_COLUMNS)
    rows = Columns(Table.HEAD_DEFS, HEAD_DEF_COLUMNS)
    for (path, blob), (version, root) in sorted(heads.items()):
        fid = id_text(version.file_id)
        files.add(path, blob, fid, version.n_lines, root.size, *pack_outline(root))
        for qualname, kind, ordinal, lineage in version.defs():
            goid = make_goid(repo_name, path, kind, qualname, ordinal)
            rows.add(path, blob, id_text(lineage), goid, qualname, kind, ordinal, fid)
    return files, rows
