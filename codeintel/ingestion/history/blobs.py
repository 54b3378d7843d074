"""Blob contents from one `git cat-file --batch` process, request by request."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codeintel.errors import CodeIntelError
from codeintel.ingestion.history.gitlog import PACK_WINDOWS
from codeintel.ingestion.tools import ToolService


class BlobReader:
    """Reads objects by id (or `rev:path`) through a running `git cat-file --batch`."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._in = proc.stdin
        self._out = proc.stdout
        self.reads = 0
        self.bytes_read = 0

    def read(self, name: str) -> bytes | None:
        """The content of object `name`, or None when git has no such object."""
        self._in.write(name.encode("utf-8", "surrogateescape") + b"\n")
        self._in.flush()
        header = self._out.readline()
        if not header:
            raise CodeIntelError(f"git cat-file stopped answering (asked for {name})")
        parts = header.split()
        if len(parts) < 3 or parts[1] == b"missing":
            return None
        size = int(parts[2])
        data = self._out.read(size)
        self._out.read(1)  # the newline after the content
        self.reads += 1
        self.bytes_read += size
        return data


@contextmanager
def open_blobs(tools: ToolService, repo: Path, *, timeout_s: float | None = None) -> Iterator[BlobReader]:
    """A `BlobReader` on `repo`, its process stopped on leaving the block."""
    git = tools.config.git
    # delta bases cached: 8 MB (git's default, 96 MB, is private memory; the walk reads blobs far
    # apart in the history, so a cache hardly helps: on sqlalchemy the cold walk is as fast at 8m
    # as at 32m, and cat-file holds 40 MB, not 68)
    args = ["-c", "core.deltaBaseCacheLimit=8m", *PACK_WINDOWS, "cat-file", "--batch"]
    with tools.process(git, args, cwd=repo, timeout_s=timeout_s) as proc:
        yield BlobReader(proc)
