"""The indexed repository's working tree as it is now, against the snapshot: read-only git.

`head_commit` reads `.git` directly (no process, cheap enough for every answer); the rest runs
git through the tool service with a timeout: how far HEAD is ahead of the snapshot's commit,
which Python files changed since, the diff of a ref, and blob ids to tell which side of a diff
a snapshot holds.  Nothing here changes the repository.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from codeintel.config import ToolsConfig
from codeintel.errors import CodeIntelError
from codeintel.ingestion.tools import ToolService

GIT_TIMEOUT_S = 3.0
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./~^@{}+-]*")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _git_dir(root: Path) -> Path | None:
    dot = root / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = dot.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            found = Path(text[len("gitdir:") :].strip())
            return found if found.is_absolute() else (root / found).resolve()
    return None


def head_commit(root: Path | None) -> str | None:
    """The commit checked out at `root`, read from `.git` without running git (None if unknown)."""
    if root is None:
        return None
    try:
        gitdir = _git_dir(root)
        if gitdir is None:
            return None
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if _SHA.fullmatch(head):
            return head
        if not head.startswith("ref: "):
            return None
        ref = head[len("ref: ") :]
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
        for base in (gitdir, common):
            loose = base / ref
            if loose.is_file():
                value = loose.read_text(encoding="utf-8").strip()
                return value if _SHA.fullmatch(value) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                parts = line.split(" ", 1)
                if len(parts) == 2 and parts[1] == ref and _SHA.fullmatch(parts[0]):
                    return parts[0]
    except OSError:
        return None
    return None


# a diff's paths named from `root`, as the index names them, where `root` is a directory below
# the repository's top (`codeintel export repo/pkg`; nothing changes at the top), with git's
# `a/` and `b/` before them whatever the user's config says (`diff.noprefix`, mnemonic prefixes)
_DIFF_ARGS = ("--relative", "--src-prefix=a/", "--dst-prefix=b/")


def _git(root: Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> str:
    service = ToolService(ToolsConfig(git_timeout_s=max(0.1, min(GIT_TIMEOUT_S, timeout))))
    return service.git(list(args), cwd=root).decode("utf-8", "surrogateescape")


def check_ref(ref: str) -> str:
    """`ref` if it looks like a git revision (never an option), else a CodeIntelError."""
    ref = ref.strip()
    parts = re.split(r"\.\.\.?", ref)
    if not ref or len(parts) > 2 or not all(_REF.fullmatch(p) for p in parts if p):
        raise CodeIntelError(f"{ref!r} is not a git revision (a commit, branch or tag, or A..B / A...B)")
    return ref


def diff_of_ref(root: Path, ref: str, timeout: float = GIT_TIMEOUT_S) -> str:
    """The diff a ref names: `A..B` / `A...B` as git diffs them, a single ref against its first parent."""
    ref = check_ref(ref)
    if ".." in ref:
        return _git(root, "diff", *_DIFF_ARGS, "--full-index", "--no-color", "--no-ext-diff", ref, "--", timeout=timeout)
    return _git(
        root, "show", *_DIFF_ARGS, "--full-index", "--no-color", "--no-ext-diff", "--format=", "--first-parent", ref, "--",
        timeout=timeout,
    )  # fmt: skip


def is_ancestor(root: Path, older: str, newer: str, timeout: float = GIT_TIMEOUT_S) -> bool:
    """Whether `older` is `newer` or one of its ancestors."""
    try:
        _git(root, "merge-base", "--is-ancestor", older, newer, timeout=timeout)
    except CodeIntelError:
        return False
    return True


def right_is_ancestor(root: Path, ref: str, commit: str, timeout: float = GIT_TIMEOUT_S) -> bool:
    """Whether the commit a ref names (the right side of a range) is `commit` or one of its
    ancestors: one git process (`commit_of` and `is_ancestor` are two)."""
    right = re.split(r"\.\.\.?", check_ref(ref))[-1] or "HEAD"
    return is_ancestor(root, right + "^{commit}", commit, timeout=timeout)


_TREES: dict[tuple[str, str], dict[str, str]] = {}  # (root, commit) -> path -> blob id: a commit never changes
_TREES_LOCK = threading.Lock()
_TREES_KEPT = 4


def blobs_of_commit(root: Path, commit: str, paths: list[str], timeout: float = GIT_TIMEOUT_S) -> dict[str, str]:
    """`blobs_at`, from the commit's whole tree, listed once per (repository, commit) and kept."""
    key = (str(root), commit)
    with _TREES_LOCK:
        tree = _TREES.get(key)
    if tree is None:
        tree = blobs_at(root, commit, [], timeout=timeout, whole=True)
        with _TREES_LOCK:
            while len(_TREES) >= _TREES_KEPT:
                _TREES.pop(next(iter(_TREES)))
            _TREES[key] = tree
    return {p: tree[p] for p in paths if p in tree}


def blobs_at(root: Path, commit: str, paths: list[str], timeout: float = GIT_TIMEOUT_S, whole: bool = False) -> dict[str, str]:
    """The git blob id of each of `paths` (`whole`: of every file) at `commit` (paths absent there are left out)."""
    if not paths and not whole:
        return {}
    # named from `root`, as the index names them; NUL-ended: git quotes a name it prints on a line
    # when it holds a tab, a quote or (core.quotePath, on by default) any non-ASCII byte
    out = _git(root, "ls-tree", "-r", "-z", commit, "--", *paths, timeout=timeout)
    blobs = {}
    for entry in out.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            blobs[path] = parts[2]
    return blobs


@dataclass
class WorktreeState:
    """How far the checkout at `root` is from the snapshot's commit."""

    head: str | None = None
    commits_ahead: int | None = None  # commits on HEAD that the snapshot does not have
    changed: list[str] = field(default_factory=list)  # .py files changed since the snapshot (committed or not)
    untracked: list[str] = field(default_factory=list)  # new .py files git does not track yet
    error: str | None = None


def worktree_state(root: Path | None, commit: str | None, budget_s: float = 2.5) -> WorktreeState:
    """HEAD, commits ahead and changed Python files of the checkout, against `commit`; git gets
    `budget_s` seconds in all (the state says so when it ran out)."""
    state = WorktreeState(head=head_commit(root))
    if root is None or not root.is_dir():
        state.error = f"the repository is not available here ({root}); start the server with --repo PATH"
        return state
    if commit is None:
        state.error = "the snapshot was not made from a git commit"
        return state
    end = time.monotonic() + budget_s

    def left() -> float:
        return end - time.monotonic()

    try:
        state.head = _git(root, "rev-parse", "HEAD", timeout=left()).strip()
        if is_ancestor(root, commit, state.head, timeout=left()):
            state.commits_ahead = int(_git(root, "rev-list", "--count", f"{commit}..HEAD", timeout=left()).strip() or 0)
        # (NUL-ended names, as `blobs_at` lists them)
        changed = _git(
            root, "diff", *_DIFF_ARGS, "--name-only", "-z", "--no-renames", commit, "--", "*.py", timeout=left()
        )
        state.changed = sorted(p for p in changed.split("\0") if p)
        untracked = _git(root, "ls-files", "-z", "--others", "--exclude-standard", "--", "*.py", timeout=left())
        state.untracked = sorted(p for p in untracked.split("\0") if p)
    except CodeIntelError as exc:
        state.error = str(exc)
    return state
