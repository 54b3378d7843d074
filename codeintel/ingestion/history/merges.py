"""Which side of each merge a definition comes from, and so which changes reach HEAD.

`git log -L` (and any line history) follows a function through a merge into the parents it
differs from: where the merge has the function as its first parent had it, the changes made to
it on the other side (a branch whose edit the merge left out, or made and taken back on the
branch) are not its history.  The walk records, per merge, the definitions it has otherwise
than its first parent (`history.merge_lineages`: from the first-parent diff of the merge,
`gitlog.merge_args`, read here in a thread beside the walk); `reached` then follows every
definition from HEAD down the parents it may go to, and the changes it never reaches are
`history.discarded_changes`.  They stay facts (`history.function_changes`); the per-function
analytics and views leave them out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from codeintel.ingestion.history.gitlog import FileDiff, merge_args, parse_merges, unrooted
from codeintel.ingestion.tools import ToolService


class MergeFiles:
    """The merges' stream, read in a thread into per merge its files against its first parent;
    `files(sha)` waits until the thread has read that merge (the two streams list merges in the
    same order: the walk seldom waits)."""

    def __init__(self, stream: IO[bytes], prefix: str = "") -> None:
        self._found: dict[str, list[FileDiff]] = {}
        self._cond = threading.Condition()
        self._done = False
        self._error: BaseException | None = None
        self._prefix = prefix
        self._thread = threading.Thread(target=self._run, args=(stream,), name="codeintel-merges", daemon=True)
        self._thread.start()

    def _run(self, stream: IO[bytes]) -> None:
        try:
            for sha, files in parse_merges(stream):
                if self._prefix:
                    for f in files:
                        f.old_path = f.old_path and unrooted(f.old_path, self._prefix)
                        f.new_path = f.new_path and unrooted(f.new_path, self._prefix)
                with self._cond:
                    self._found[sha] = files
                    self._cond.notify_all()
        except BaseException as exc:  # raised to the walk at its next question
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def files(self, sha: str) -> list[FileDiff] | None:
        """The `.py` files merge `sha` has otherwise than its first parent (None: not in the stream)."""
        with self._cond:
            while sha not in self._found and not self._done:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return self._found.pop(sha, None)



@contextmanager
def merge_files(tools: ToolService, repo: Path, revs: str, prefix: str, timeout_s: float) -> Iterator[MergeFiles]:
    """The merges' stream of the commits `revs` (the history stream's revisions) until the block ends."""
    with tools.stream(tools.config.git, merge_args(), cwd=repo, timeout_s=timeout_s, stdin=revs.encode()) as stream:
        yield MergeFiles(stream, prefix)  # (its thread ends with the stream: git's end, or its stop)


@dataclass(frozen=True, slots=True)
class Lineages:
    """A set of lineages: `names`, or (`but`) every lineage but `names` (what reaches a commit of
    the first-parent line from HEAD: every definition, but those a merge above it took from
    another parent, until that parent's line joins it again)."""

    names: frozenset[str]
    but: bool = False

    def __contains__(self, lineage: object) -> bool:
        return (lineage in self.names) != self.but

    def union(self, other: Lineages) -> Lineages:
        if self is other or (self.but and not self.names):  # (every lineage)
            return self
        if other.but and not other.names:
            return other
        if not self.but and not other.but:
            return self if other.names <= self.names else Lineages(self.names | other.names)
        if self.but and other.but:
            return Lineages(self.names & other.names, but=True)
        but, names = (self, other.names) if self.but else (other, self.names)
        return Lineages(but.names - names, but=True) if but.names & names else but

    def meet(self, names: frozenset[str]) -> Lineages:
        """Those of `names` in this set."""
        return Lineages(names - self.names) if self.but else Lineages(self.names & names)

    def minus(self, names: frozenset[str]) -> Lineages:
        if not names:
            return self
        return Lineages(self.names | names, but=True) if self.but else Lineages(self.names - names)


EVERY = Lineages(frozenset(), but=True)
NONE = Lineages(frozenset())

# per merge: the definitions it has otherwise than its first parent, by the parent it has each
# as (its position in `parents`; None: as none of them)
Sides = dict[str, dict[int | None, frozenset[str]]]


def reached(
    head: str, order: Sequence[str], parents: dict[str, Sequence[str]], sides: Sides, start: Lineages = EVERY
) -> dict[str, Lineages]:
    """Per commit, the definitions (lineages) that reach it from HEAD, as `git log -L` follows one
    through merges: from a merge, one it has as its first parent had it goes down the first
    parent only; one it has as another parent had it, down that parent only; one it has as no
    parent had it (its own lines), down every parent.  `order`: the commits, children first.

    `start`: the definitions followed (every one).  Each step keeps or drops a definition
    whatever the others do, so the answer for some is the answer for all met with them."""
    reach: dict[str, Lineages] = {head: start}
    empty: frozenset[str] = frozenset()
    for sha in order:
        mine = reach.get(sha)
        if mine is None or not (mine.but or mine.names):  # (nothing reaches it: it passes nothing on)
            continue
        mine_parents = parents.get(sha, ())
        if len(mine_parents) == 1:  # (most commits: what reaches them reaches their parent)
            parent = mine_parents[0]
            before = reach.get(parent)
            reach[parent] = mine if before is None else before.union(mine)
            continue
        side = sides.get(sha)
        for k, parent in enumerate(mine_parents):
            if side is None:
                given = mine if k == 0 else NONE
            elif k == 0:
                given = mine.minus(frozenset().union(*(v for key, v in side.items() if key is not None)))
            else:
                given = mine.meet(side.get(None, empty) | side.get(k, empty))
            before = reach.get(parent)
            reach[parent] = given if before is None else before.union(given)
    return reach
