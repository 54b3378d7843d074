"""Connections to a database file by ATTACH to a DuckDB instance this process keeps, not by opening it.

Opening a DuckDB file (`duckdb.connect(path)`) builds a database instance with its function
catalog: 25-50 ms on these machines whatever the file holds (`:memory:` too), paid again by every
short-lived connection, and the pipeline opens several per step (the ledger's, the step's reads,
its write).  Attaching the file to an in-memory instance built once costs a few milliseconds, and
DETACH does what closing did: the changes are checkpointed into the file and DuckDB's file lock
is let go, so other processes share the file exactly as before.

One instance per database file (its settings are the instance's: the temporary directory beside
the file, as DuckDB's own for a file, and what a writer sets for itself), at most `_KEEP` kept,
built again in a forked child (an inherited instance's threads are not there).  The caller holds
the inter-process lock (`lock.file_lock`) while attached: a writer is then alone on the file and
on its instance, so the settings it changes (`Attached.set`) touch nobody else and are reset when
it detaches.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import duckdb

from codeintel.errors import StorageError

_KEEP = 4  # instances kept per process (an idle one beyond is closed)
_MEMORY = "memory"  # the in-memory database of an instance, where a connection stands while detaching

_lock = threading.Lock()
_aliases = itertools.count()


class _Instance:
    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(
            ":memory:",
            config={
                # a commit writes into the file at once: detaching would checkpoint anyway, so the
                # write-ahead log would be written only to be read back (see `gateway.writer`)
                "checkpoint_threshold": "0b",
                "temp_directory": f"{path}.tmp",
            },
        )
        self.users = 0


class _Instances:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.by_path: OrderedDict[str, _Instance] = OrderedDict()


_instances = _Instances()
_inherited: list[_Instances] = []  # a parent's, in a forked child: kept, never used nor closed


def _take(path: Path) -> tuple[_Instance, duckdb.DuckDBPyConnection]:
    """The instance of `path` and a new connection to it (made under the lock: threads share it)."""
    global _instances
    key = os.fspath(path)
    with _lock:
        if _instances.pid != os.getpid():
            _inherited.append(_instances)
            _instances = _Instances()
        found = _instances.by_path.get(key)
        if found is None:
            found = _instances.by_path[key] = _Instance(path)
        _instances.by_path.move_to_end(key)
        found.users += 1
        idle = [k for k, v in _instances.by_path.items() if v.users == 0]
        for gone in idle[: max(0, len(_instances.by_path) - _KEEP)]:
            _instances.by_path.pop(gone).con.close()
        return found, found.con.cursor()


def _give_back(instance: _Instance) -> None:
    with _lock:
        instance.users -= 1


class Attached:
    """Settings a writer changes for itself (`set`), reset when it detaches."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.changed: list[str] = []

    def set(self, name: str, value: str | int) -> None:
        self.con.execute(f"SET {name} = '{value}'" if isinstance(value, str) else f"SET {name} = {int(value)}")
        self.changed.append(name)

    def reset(self) -> None:
        for name in self.changed:
            with suppress(duckdb.Error):
                self.con.execute(f"RESET {name}")


@contextmanager
def attached(path: Path, *, read_only: bool) -> Iterator[Attached]:
    """A connection whose default database is the file at `path`, attached for the block (created
    when missing and not `read_only`).

    Raises:
        StorageError: The file cannot be attached (not a DuckDB file, locked by another process).
    """
    instance, cur = _take(path)
    alias = f"codeintel_{next(_aliases)}"
    quoted = os.fspath(path).replace("'", "''")
    with ExitStack() as after:  # (run last to first: settings reset, detached, instance given back)
        after.callback(_give_back, instance)
        try:
            cur.execute(f"ATTACH '{quoted}' AS {alias}" + (" (READ_ONLY)" if read_only else ""))
        except duckdb.Error as exc:
            cur.close()
            raise StorageError(f"cannot open {path}: {exc}") from exc
        after.callback(_detach, instance, cur, alias)
        cur.execute(f"USE {alias}")
        out = Attached(cur)
        after.callback(out.reset)
        yield out


def _detach(instance: _Instance, cur: duckdb.DuckDBPyConnection, alias: str) -> None:
    """DETACH `alias` (a connection in a failed transaction cannot: another one does it)."""
    try:
        cur.execute(f"USE {_MEMORY}")
        cur.execute(f"DETACH {alias}")
    except duckdb.Error:
        cur.close()
        with _lock:
            other = instance.con.cursor()
        with other:
            other.execute(f"DETACH DATABASE IF EXISTS {alias}")
    else:
        cur.close()
