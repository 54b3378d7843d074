"""Running the pinned pyrefly as a SCIP indexer.

pyrefly (`pyrefly check --report-scip`) type-checks the given files and writes a SCIP index of
them plus its type errors (`--output-format json`).  Its config is generated in a scratch
directory outside the analysed repository: the files to index (the scan's files: its include
and exclude rules already applied), the search path (source roots, then the repository root),
no ignore files and no heuristics, and a fixed project name and version, so that symbols do not
change from one commit to the next.  It exits 1 whenever the code has type errors: not a
failure.  It runs through the tool service, in the background (`start_indexing`), and is
collected later (`PyreflyIndexing.wait`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from codeintel.config import ToolsConfig
from codeintel.errors import ToolNotFoundError
from codeintel.ingestion.tools import RunningTool, ToolService
from codeintel.scratch import make_dir as make_scratch_dir
from codeintel.storage.text import fs_path

logger = logging.getLogger(__name__)

PYREFLY_VERSION = "1.5.0"  # pinned in pyproject.toml: the golden figures in the tests depend on it
PROJECT_VERSION = "0"  # fixed: symbols must not change with the analysed project's version
# fixed too, not the running Python's: `sys.version_info` branches and the standard library's
# stubs (symbols name their version) must not depend on which interpreter runs CodeIntel
PYTHON_VERSION = "3.13"
PYTHON_PLATFORM = "linux"
_OK_EXITS = (0, 1)  # 1: the code has type errors


def find_pyrefly(tools: ToolsConfig) -> str:
    """The pyrefly executable: the configured one, else the one installed beside the running
    Python (its scripts directory), else the one on PATH.

    Raises:
        ToolNotFoundError: None is found (naming what was looked for and how to set it).
    """
    if tools.pyrefly:
        found = shutil.which(tools.pyrefly)
        if found is None:
            raise ToolNotFoundError(
                f"pyrefly {tools.pyrefly!r} (set by `pyrefly` in [tool.codeintel] or CODEINTEL_PYREFLY) is not an "
                "executable; point it at pyrefly or unset it"
            )
        return found
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "pyrefly", Path(sys.executable).parent / "pyrefly"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("pyrefly")
    if found is None:
        raise ToolNotFoundError(
            f"pyrefly is not installed (pip install pyrefly=={PYREFLY_VERSION}), or set its path: "
            "`pyrefly` in [tool.codeintel] or CODEINTEL_PYREFLY"
        )
    return found


@dataclass(frozen=True, slots=True)
class IndexRequest:
    """What to index: repository-relative files, source roots and the project's name."""

    repo_root: Path
    files: tuple[str, ...]
    source_roots: tuple[str, ...]
    project: str


@dataclass(frozen=True, slots=True)
class IndexOutput:
    """Where a finished run left its index and its type errors."""

    index: Path
    diagnostics: Path
    scratch: Path
    seconds: float


def config_text(request: IndexRequest) -> str:
    """pyrefly.toml for `request` (absolute paths: the config lives outside the repository)."""
    root = request.repo_root.resolve()
    includes = [str(root / name) for f in request.files if _utf8(name := fs_path(f))]
    search = [str(root / r) for r in request.source_roots if r and _utf8(r)] + [str(root)]
    lines = [
        f"project-includes = {json.dumps(includes)}",
        "project-excludes = []",
        f"search-path = {json.dumps(list(dict.fromkeys(search)))}",
        "disable-search-path-heuristics = true",
        "disable-project-excludes-heuristics = true",
        "use-ignore-files = false",
    ]
    return "\n".join(lines) + "\n"


def _utf8(path: str) -> bool:
    """A TOML string holds only Unicode: a file name that is not UTF-8 cannot be named to pyrefly."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class PyreflyIndexing:
    """A pyrefly run in progress, with its scratch directory (removed by `cleanup`)."""

    def __init__(self, request: IndexRequest, running: RunningTool, scratch: Path) -> None:
        self.request = request
        self.running = running
        self.scratch = scratch
        self.started = time.perf_counter()

    def wait(self) -> IndexOutput:
        """Wait for pyrefly; where it left its outputs.

        Raises:
            ToolFailedError: It exited with another code than 0 or 1, or timed out.
        """
        self.running.wait()
        return IndexOutput(
            self.scratch / "index.scip", self.scratch / "errors.json", self.scratch, time.perf_counter() - self.started
        )

    def cleanup(self) -> None:
        self.running.cancel()
        shutil.rmtree(self.scratch, ignore_errors=True)


def is_regular_file(repo_root: Path, path: str) -> bool:
    """Whether `repo_root/path` is (still) a regular file, not following a symlink."""
    try:
        return stat.S_ISREG(os.lstat(repo_root / fs_path(path)).st_mode)
    except OSError:
        return False


def start_indexing(
    service: ToolService, request: IndexRequest, *, scratch_parent: Path | None = None
) -> PyreflyIndexing:
    """Write the config and start pyrefly in the background.

    Raises:
        ToolNotFoundError: pyrefly is not installed (or the configured path is wrong).
    """
    exe = find_pyrefly(service.config)
    # a file replaced since the scan by something else than a regular file (a FIFO would block
    # pyrefly's read until its timeout) is not given: no document, a `missing` row, redone next run
    regular = tuple(f for f in request.files if is_regular_file(request.repo_root, f))
    if len(regular) != len(request.files):
        request = replace(request, files=regular)
    scratch = make_scratch_dir("codeintel-scip-", scratch_parent)
    (scratch / "pyrefly.toml").write_text(config_text(request), encoding="utf-8")
    args = _arguments(request, scratch, service.config.pyrefly_python or sys.executable)
    try:
        running = service.start(
            exe, args, cwd=request.repo_root, timeout_s=service.config.pyrefly_timeout_s, ok_codes=_OK_EXITS
        )
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    logger.info("scip: pyrefly started on %d files (pid %d)", len(request.files), running.pid)
    return PyreflyIndexing(request, running, scratch)


def _arguments(request: IndexRequest, scratch: Path, python: str) -> list[str]:
    return [
        "check",
        "--config", str(scratch / "pyrefly.toml"),
        "--report-scip", str(scratch / "index.scip"),
        "--report-scip-project-name", request.project,
        "--report-scip-project-version", PROJECT_VERSION,
        "--relative-to", str(request.repo_root.resolve()),
        "--python-interpreter-path", python,  # third-party packages: those installed there
        "--python-version", PYTHON_VERSION,
        "--python-platform", PYTHON_PLATFORM,
        "--output-format", "json",
        "--output", str(scratch / "errors.json"),
        "--summary=none",  # an optional value: `--summary none` would make `none` a file to check
        "--progress-bar", "no",
        "--color", "never",
    ]  # fmt: skip


def source_roots(roots: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """Source roots (with their module counts) in search order: most modules first, then by name."""
    return tuple(r for r, _ in sorted(((r, n) for r, n in roots if r), key=lambda rn: (-rn[1], rn[0])))
