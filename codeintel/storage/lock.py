"""An inter-process read/write lock on the database file.

DuckDB lets one process write a file and no other process read it meanwhile, so every open of the
work database goes through this lock: exclusive to write, shared to read.  It is an `flock` on a
side file, released by the kernel when its holder dies, so a killed run never leaves it stuck.
The exclusive holder writes who it is into the file, so a waiter that times out can say.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codeintel.errors import StorageLockTimeout

_POLL_S = 0.05


@contextmanager
def file_lock(path: Path, *, exclusive: bool, timeout_s: float, holder: str = "") -> Iterator[None]:
    """Hold an flock on `path` (created if missing) for the duration of the block.

    Args:
        path: The lock file.
        exclusive: True to write (excludes everyone), False to read (excludes writers).
        timeout_s: How long to wait for the lock before giving up.
        holder: What the holder is doing, written into the lock file for whoever waits.

    Raises:
        StorageLockTimeout: When the lock is not free within `timeout_s`; the message names the
            lock file and what its holder said it was doing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, exclusive=exclusive, timeout_s=timeout_s)
        if exclusive:
            info = f"pid={os.getpid()} host={socket.gethostname()} holder={holder} since={time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, *, exclusive: bool, timeout_s: float) -> None:
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout_s
    delay = _POLL_S / 5
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StorageLockTimeout(
                    f"database lock {path} still held after {timeout_s:g} s by "
                    f"[{describe_holder(path)}]; wait for that run to finish, stop it, or raise "
                    "the lock timeout (--lock-timeout / CODEINTEL_LOCK_TIMEOUT)"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, _POLL_S)


def describe_holder(path: Path) -> str:
    """What the last exclusive holder of `path` wrote about itself ('' when unknown)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or "unknown holder"
    except OSError:
        return "unknown holder"
