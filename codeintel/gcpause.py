"""`gc_paused()`: no cyclic garbage collection inside the block (restored after).

For phases that allocate many objects that stay alive (parsed files and their rows, the call
graph's solver state): each collection would walk them again and saves nothing, since they are
either alive or freed by reference counting (syntax trees hold no cycles).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
