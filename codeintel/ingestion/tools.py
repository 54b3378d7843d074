"""Running external tools (git, ...): argument lists, never a shell; timeouts; clear errors."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from codeintel.config import ToolsConfig
from codeintel.errors import CodeIntelError, ToolNotFoundError

logger = logging.getLogger(__name__)


class ToolFailedError(CodeIntelError):
    """An external tool ran but exited non-zero or timed out."""


@dataclass(frozen=True, slots=True)
class ToolService:
    """Runs the external tools named in `ToolsConfig`."""

    config: ToolsConfig

    def available(self, tool: str) -> bool:
        return shutil.which(tool) is not None

    def run(self, tool: str, args: list[str], *, cwd: Path, timeout_s: float | None = None) -> bytes:
        """Run `tool args...` in `cwd` and return its stdout.

        Raises:
            ToolNotFoundError: The tool is not installed.
            ToolFailedError: It exited non-zero or ran past its timeout.
        """
        exe = shutil.which(tool)
        if exe is None:
            raise ToolNotFoundError(
                f"{tool!r} is not installed or not on PATH; install it or set its path in [tool.codeintel]"
            )
        timeout = timeout_s if timeout_s is not None else self.config.git_timeout_s
        try:
            done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ToolFailedError(f"{tool} {' '.join(args[:3])} timed out after {timeout:g} s in {cwd}") from exc
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()[:500]
            raise ToolFailedError(f"{tool} {' '.join(args[:3])} failed in {cwd} (exit {done.returncode}): {err}")
        return done.stdout

    def git(self, args: list[str], *, cwd: Path) -> bytes:
        return self.run(self.config.git, args, cwd=cwd)

    def git_head(self, repo_root: Path) -> str | None:
        """The commit checked out at `repo_root`, or None outside git / before the first commit."""
        if not self.available(self.config.git):
            return None
        try:
            return self.git(["rev-parse", "--verify", "-q", "HEAD"], cwd=repo_root).decode().strip() or None
        except ToolFailedError:
            return None
