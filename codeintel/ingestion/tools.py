"""Running external tools (git, ...): argument lists, never a shell; timeouts; clear errors."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from codeintel.config import ToolsConfig
from codeintel.errors import CodeIntelError, ConfigError, ToolNotFoundError

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

    @contextmanager
    def stream(
        self, tool: str, args: list[str], *, cwd: Path, timeout_s: float | None = None, stdin: bytes | None = None
    ) -> Iterator[IO[bytes]]:
        """Run `tool args...` in `cwd` and yield its stdout to read while it runs (output too
        large to hold, such as a whole history's patches).  `stdin` is written to it first.

        Leaving the block early stops the tool.  Raises, on leaving the block:
            ToolNotFoundError: The tool is not installed.
            ToolFailedError: It exited non-zero, or ran past its timeout (it is then killed).
        """
        with self.process(tool, args, cwd=cwd, timeout_s=timeout_s) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            if stdin:
                proc.stdin.write(stdin)
            proc.stdin.close()
            yield proc.stdout
            proc.stdout.read()  # the rest, if the reader stopped early: the tool may still fail

    @contextmanager
    def process(
        self, tool: str, args: list[str], *, cwd: Path, timeout_s: float | None = None
    ) -> Iterator[subprocess.Popen[bytes]]:
        """A running `tool args...` with pipes to its stdin and stdout, for tools that answer
        requests one by one (`git cat-file --batch`).  Killed at its timeout; on leaving the
        block its stdin is closed and it must exit 0.

        Raises:
            ToolNotFoundError: The tool is not installed.
            ToolFailedError: It exited non-zero or was killed at its timeout.
        """
        exe = shutil.which(tool)
        if exe is None:
            raise ToolNotFoundError(
                f"{tool!r} is not installed or not on PATH; install it or set its path in [tool.codeintel]"
            )
        timeout = timeout_s if timeout_s is not None else self.config.git_timeout_s
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty stderr cannot block the tool
            proc = subprocess.Popen([exe, *args], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(timeout, kill)
            timer.daemon = True
            timer.start()
            try:
                yield proc
            except BaseException:
                proc.kill()
                raise
            finally:
                timer.cancel()
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None and not pipe.closed:
                        with suppress(OSError):
                            pipe.close()
                code = proc.wait()
            if timed_out.is_set():
                raise ToolFailedError(f"{tool} {' '.join(args[:3])} timed out after {timeout:g} s in {cwd}")
            if code != 0:
                errors.seek(0)
                err = errors.read(2000).decode("utf-8", "replace").strip()[:500]
                raise ToolFailedError(f"{tool} {' '.join(args[:3])} failed in {cwd} (exit {code}): {err}")

    def start(
        self, tool: str, args: list[str], *, cwd: Path, timeout_s: float, ok_codes: tuple[int, ...] = (0,)
    ) -> RunningTool:
        """Start `tool args...` in `cwd` in the background (stdout and stderr to files) and
        return at once; `RunningTool.wait` collects it.  `tool` is a name on PATH or a path.

        Raises:
            ToolNotFoundError: The tool is not installed.
        """
        exe = shutil.which(tool)
        if exe is None:
            raise ToolNotFoundError(
                f"{tool!r} is not installed or not on PATH; install it or set its path in [tool.codeintel]"
            )
        return RunningTool(tool, [exe, *args], cwd, timeout_s, ok_codes)

    def git_head(self, repo_root: Path) -> str | None:
        """The commit checked out at `repo_root`, or None outside git / before the first commit.

        Raises:
            ConfigError: `repo_root` is a bare repository or a git directory: no checkout, no files.
        """
        if not self.available(self.config.git):
            return None
        try:
            bare, in_git_dir = self.git(
                ["rev-parse", "--is-bare-repository", "--is-inside-git-dir"], cwd=repo_root
            ).split()
        except (ToolFailedError, ValueError):
            return None  # outside git
        if b"true" in (bare, in_git_dir):
            raise ConfigError(
                f"{repo_root} is a {'bare git repository' if bare == b'true' else 'git directory'}: it has no "
                "checked-out files to index; pass a checkout of it (`git clone`, or `git worktree add`)"
            )
        try:
            return self.git(["rev-parse", "--verify", "-q", "HEAD"], cwd=repo_root).decode().strip() or None
        except ToolFailedError:
            return None

    def git_prefix(self, repo_root: Path) -> str:
        """Where `repo_root` is inside its git repository ("pkg/" below the top, "" at the top or
        outside git): git names files from the top, the index from `repo_root`."""
        if not self.available(self.config.git):
            return ""
        try:
            return os.fsdecode(self.git(["rev-parse", "--show-prefix"], cwd=repo_root).rstrip(b"\n"))
        except ToolFailedError:
            return ""


class RunningTool:
    """A tool started in the background (`ToolService.start`): killed at its deadline, counted
    from its start; `wait` gives its stdout or raises with the tail of its stderr."""

    def __init__(self, tool: str, argv: list[str], cwd: Path, timeout_s: float, ok_codes: tuple[int, ...]) -> None:
        self.tool, self.argv, self.cwd, self.timeout_s, self.ok_codes = tool, argv, cwd, timeout_s, ok_codes
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by wait / cancel)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (files, not pipes: nothing blocks unread)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def done(self) -> bool:
        return self.proc.poll() is not None

    def wait(self) -> bytes:
        """Wait for the tool (until its deadline) and return its stdout.

        Raises:
            ToolFailedError: It exited with a code not in `ok_codes`, or ran past its deadline
                (it is then killed).
        """
        what = f"{self.tool} {' '.join(self.argv[1:4])}"
        left = self.timeout_s - (time.monotonic() - self.started)
        try:
            code = self.proc.wait(timeout=max(left, 0.0))
        except subprocess.TimeoutExpired as exc:
            self.cancel()
            raise ToolFailedError(f"{what} timed out after {self.timeout_s:g} s in {self.cwd}") from exc
        try:
            if code not in self.ok_codes:
                self._err.seek(0, 2)
                size = self._err.tell()
                self._err.seek(max(size - 2000, 0))
                tail = self._err.read().decode("utf-8", "replace").strip()[-500:]
                raise ToolFailedError(f"{what} failed in {self.cwd} (exit {code}): {tail}")
            self._out.seek(0)
            return self._out.read()
        finally:
            self.close()

    def cancel(self) -> None:
        """Kill the tool if it still runs, and release its files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        for fh in (self._out, self._err):
            with suppress(OSError):
                fh.close()
