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
