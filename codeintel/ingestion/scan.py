"""Repository scan: which Python files there are, their real import names and content hashes.

With git, the files are the tracked ones plus untracked ones that are not ignored; without git,
a walk that skips the profile's ignored directories.  Symbolic links are never followed: they are
recorded with a skip reason.  Hashes are reused from the previous scan when size and mtime agree,
so a no-change scan reads no file contents.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from codeintel.config import ScanProfile
from codeintel.errors import CodeIntelError
from codeintel.ingestion.tools import ToolService
from codeintel.storage.text import safe_text

logger = logging.getLogger(__name__)

SOURCE_ROOTS = ("src",)
# `module_name`'s rules (2: a directory with no `__init__.py` inside a package is a namespace
# package within it; 3: a `src/` below the top is a source root): the timeseries' samples named
# by other rules are listed again (`history_timeseries.plan_timeseries`); the scan finds the
# files they rename itself (`diff_states`)
NAMING_RULES = "3"


class SkipReason(StrEnum):
    SYMLINK = "symlink"
    NOT_A_FILE = "not_a_file"
    UNREADABLE = "unreadable"


class ChangeKind(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """One file found by the scan (skipped ones carry a reason and no hash)."""

    path: str
    module: str
    is_package: bool
    language: str
    size: int
    mtime_ns: int
    hash: str | None
    is_tracked: bool
    skip_reason: str | None
    source_root: str


@dataclass(frozen=True, slots=True)
class PreviousState:
    hash: str
    size: int
    mtime_ns: int


def hash_bytes(data: bytes) -> str:
    """The content hash used everywhere (blake2b, 128 bits, hex)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def list_candidates(root: Path, profile: ScanProfile, tools: ToolService) -> dict[str, bool]:
    """Relative posix paths of candidate files -> whether git tracks them."""
    if (root / ".git").exists() and tools.available(tools.config.git):
        try:
            return _git_candidates(root, profile, tools)
        except CodeIntelError as exc:
            logger.warning("git listing failed (%s); walking the tree instead", exc)
    return dict.fromkeys(_walk_candidates(root, profile), False)


def _git_candidates(root: Path, profile: ScanProfile, tools: ToolService) -> dict[str, bool]:
    specs = list(profile.include)
    if not specs:  # (no pathspec would list every file)
        return {}
    tracked = tools.git(["ls-files", "-z", "--cached", "--", *specs], cwd=root)
    others = tools.git(["ls-files", "-z", "--others", "--exclude-standard", "--", *specs], cwd=root)
    found: dict[str, bool] = {}
    for blob, is_tracked in ((tracked, True), (others, False)):
        for raw in blob.split(b"\0"):
            if raw:
                path = os.fsdecode(raw)
                if scanned(path, profile):  # (git's pathspecs match as `scanned` does; a check)
                    found[path] = is_tracked
    return found


def _walk_candidates(root: Path, profile: ScanProfile) -> Iterable[str]:
    ignored = set(profile.ignored_dirs)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in ignored and not d.endswith(".egg-info"))
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames:  # never followed (os.walk), but recorded as skipped
            if os.path.islink(os.path.join(dirpath, name)):
                yield name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            if scanned(rel, profile):  # the path from the top, as git matches its pathspecs
                yield rel


def _wanted(path: str, profile: ScanProfile) -> bool:
    parts = PurePosixPath(path).parts
    if any(part in profile.ignored_dirs for part in parts[:-1]):
        return False
    return not any(fnmatch.fnmatch(path, pat) for pat in profile.exclude)


def scanned(path: str, profile: ScanProfile) -> bool:
    """Whether the scan takes a file at `path` (relative, posix) by the profile's patterns alone:
    included, not excluded, in no ignored directory (its size and content aside)."""
    return any(fnmatch.fnmatch(path, pat) for pat in profile.include) and _wanted(path, profile)


def module_name(path: str, package_dirs: set[str]) -> tuple[str, bool, str]:
    """The import name of `path`, whether it is a package, and its source root.

    Rules: under a source root (`src/`, or a deeper `src/` outside packages: a monorepo's
    `packages/foo/src/`) names are relative to it (namespace packages included);
    inside a chain of regular packages the name starts at the topmost package (`lib/pkg/a.py`
    -> `pkg.a`), a directory with no `__init__.py` inside such a chain being a namespace
    package within it (`lib/pkg/sub/a.py` -> `pkg.sub.a`, as Python imports it with `lib` on
    its path); a loose file is named from the repository root (`tests/test_a.py` ->
    `tests.test_a`).  `pkg/__init__.py` is `pkg`; an `__init__.py` at the root itself is the
    unnamed root package "" (so `from . import x` in `a.py` still finds `x`).
    """
    parts = list(PurePosixPath(path).parts)
    stem = parts[-1][:-3] if parts[-1].endswith(".py") else parts[-1]
    is_package = stem == "__init__"
    dirs = parts[:-1]
    base = 0
    source_root = _source_root_at(dirs, package_dirs)
    if source_root is not None:
        base = source_root + 1
    else:
        inner = len(dirs)  # the innermost regular package holding the file
        while inner > 0 and "/".join(dirs[:inner]) not in package_dirs:
            inner -= 1
        top = inner
        while top > 0 and "/".join(dirs[:top]) in package_dirs:
            top -= 1
        if inner > 0:  # the file sits in a regular package: start at the topmost one
            base = top
    names = dirs[base:] + ([] if is_package else [stem])
    root = "/".join(dirs[:base])
    # names == [] for the root's own __init__.py: the root package has no name relative to itself
    return ".".join(names), is_package, root


def _source_root_at(dirs: list[str], package_dirs: set[str]) -> int | None:
    """Where in `dirs` the source root holding the file is: the top directory when it is named
    `src/`, or a deeper `src/` that is no package and in none (a monorepo's `packages/foo/src/`);
    None: no source root."""
    for i, name in enumerate(dirs):
        is_package = "/".join(dirs[: i + 1]) in package_dirs
        if name in SOURCE_ROOTS and (i == 0 or not is_package):
            return i
        if is_package:
            return None
    return None


def scan_repository(
    root: Path,
    profile: ScanProfile,
    tools: ToolService,
    previous: Mapping[str, PreviousState],
) -> list[ScannedFile]:
    """Scan `root` and hash every candidate whose size or mtime differs from `previous`."""
    candidates = list_candidates(root, profile, tools)
    package_dirs = {safe_text(str(PurePosixPath(p).parent)) for p in candidates if p.endswith("/__init__.py")}
    files = []
    for name in sorted(candidates):
        path = safe_text(name)  # a name that is not UTF-8 is stored escaped (codeintel.storage.text)
        module, is_package, source_root = module_name(path, package_dirs)
        files.append(_scan_one(root, name, module, is_package, source_root, candidates[name], previous.get(path)))
    return [f for f in files if f is not None]


def _scan_one(
    root: Path, name: str, module: str, is_package: bool, source_root: str, tracked: bool, prev: PreviousState | None
) -> ScannedFile | None:
    full, path = root / name, safe_text(name)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None  # tracked by git but deleted in the work tree
    except OSError:
        return ScannedFile(path, module, is_package, "python", 0, 0, None, tracked, SkipReason.UNREADABLE, source_root)
    reason = None
    if stat.S_ISLNK(st.st_mode):
        reason = SkipReason.SYMLINK
    elif not stat.S_ISREG(st.st_mode):
        reason = SkipReason.NOT_A_FILE
    if reason is not None:
        return ScannedFile(path, module, is_package, "python", 0, 0, None, tracked, reason, source_root)
    digest = prev.hash if prev and prev.size == st.st_size and prev.mtime_ns == st.st_mtime_ns else None
    if digest is None:
        try:
            digest = hash_bytes(full.read_bytes())
        except OSError:
            return ScannedFile(
                path, module, is_package, "python", st.st_size, 0, None, tracked, SkipReason.UNREADABLE, source_root
            )
    return ScannedFile(
        path, module, is_package, "python", st.st_size, st.st_mtime_ns, digest, tracked, None, source_root
    )


def diff_states(
    previous: Mapping[str, PreviousState],
    current: Iterable[ScannedFile],
    named: Mapping[str, tuple[str, bool, str]] | None = None,
) -> list[tuple[str, ChangeKind, str | None, str | None]]:
    """(path, change kind, old hash, new hash) for every file in either snapshot.  A file with
    the same content whose import name changed (`named`: path -> the module, is-package flag
    and source root it had; an `__init__.py` added or removed above it, or new naming rules)
    is modified, its hash the same: `renamed` lists those."""
    changes: list[tuple[str, ChangeKind, str | None, str | None]] = []
    seen = set()
    for f in current:
        if f.hash is None:
            continue
        seen.add(f.path)
        old = previous.get(f.path)
        was = named.get(f.path) if named is not None else None
        if old is None:
            changes.append((f.path, ChangeKind.ADDED, None, f.hash))
        elif old.hash != f.hash or (was is not None and was != (f.module, f.is_package, f.source_root)):
            changes.append((f.path, ChangeKind.MODIFIED, old.hash, f.hash))
        else:
            changes.append((f.path, ChangeKind.UNCHANGED, old.hash, f.hash))
    for path in sorted(set(previous) - seen):
        changes.append((path, ChangeKind.DELETED, previous[path].hash, None))
    return changes


def renamed(changes: Iterable[tuple[str, ChangeKind, str | None, str | None]]) -> list[str]:
    """The files of `diff_states`' changes whose import name alone changed: what the steps made
    of them names the old module, so each step processes them again."""
    return [path for path, kind, old, new in changes if kind == ChangeKind.MODIFIED and old == new]
