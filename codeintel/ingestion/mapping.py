"""What a step hands its ingestion work to, to spread it over processes (`orchestration.executors`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Mapper(Protocol):
    """Runs a picklable function over items where there is room; `workers`: how many run at
    once; `remote`: on a cluster's workers (maybe other machines), not in processes of this one."""

    workers: int
    remote: bool

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]: ...

    def warm_up(self) -> None:
        """Work for it is coming: get ready in the background."""
