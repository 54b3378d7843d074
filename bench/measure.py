"""What the benches share for measuring a command's process tree (run them as `python bench/X.py`:
this folder is then on the import path)."""

from __future__ import annotations

import psutil


def sample_tree(root: psutil.Process, cpu: dict[int, float] | None = None) -> int:
    """RSS of the process tree now; with `cpu`, records each member's CPU seconds so far in it
    (sampled, say every 20 ms: what a process spends in its last interval is missed)."""
    total = 0
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            with member.oneshot():
                total += member.memory_info().rss
                if cpu is not None:
                    times = member.cpu_times()
                    cpu[member.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def compile_package() -> None:
    """Byte-compile the codeintel package (its `__pycache__`), as an installation does.

    With PYTHONDONTWRITEBYTECODE=1 in the environment (as on these VMs) and an editable install,
    no `.pyc` is ever written, so every process (the export, each worker, each history walk)
    compiles every module it imports from source: 0.2-0.4 s a process.  A `pip install` writes
    them, and so does any first run elsewhere: the benches time the product that way.
    """
    import compileall
    from pathlib import Path

    import codeintel

    compileall.compile_dir(str(Path(codeintel.__file__).parent), quiet=1)
