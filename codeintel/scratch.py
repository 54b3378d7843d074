"""Scratch directories that a killed run does not leave behind for good.

A run killed with SIGKILL cannot remove its temporary directories (pyrefly's index of a large
repository is 100 MB, the history walk spills its rows), and a nightly job killed now and then
would fill the disk.  So each directory is named after the host and the process that made it
(`<prefix><host>-<pid>-<random>`), and making one first removes those of the same prefix whose
process on this host is gone.  A directory of a live process, or of another host sharing the
temporary directory, is never touched.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"


def _stem(prefix: str) -> str:
    return f"{prefix}{_HOST}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep(prefix: str, parent: str | Path | None = None) -> list[Path]:
    """Remove this host's `prefix` directories whose process is gone; returns those removed."""
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    stem = _stem(prefix)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(where))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(stem):
            continue
        pid_text = entry.name[len(stem) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    if removed:
        logger.info("removed %d scratch directories left by killed runs (%s*)", len(removed), stem)
    return removed


def make_dir(prefix: str, parent: str | Path | None = None) -> Path:
    """A new private directory (the caller removes it), after sweeping those of dead processes."""
    sweep(prefix, parent)
    return Path(tempfile.mkdtemp(prefix=f"{_stem(prefix)}{os.getpid()}-", dir=parent))


def temporary_directory(prefix: str, parent: str | Path | None = None) -> tempfile.TemporaryDirectory[str]:
    """`tempfile.TemporaryDirectory`, named and swept as `make_dir`'s directories are."""
    sweep(prefix, parent)
    return tempfile.TemporaryDirectory(prefix=f"{_stem(prefix)}{os.getpid()}-", dir=parent)
