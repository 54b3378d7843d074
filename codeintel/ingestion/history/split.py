"""A cold walk of a long history in two processes: the older half and the newer half at once.

The history (`git rev-list --topo-order`, parents first) is cut after a commit that every later
commit descends from and that changes no `.py` file (nor is a merge), where the commits before
it made a little more than half of the `.py` versions (what a walk's time follows: `survey`).
The older walk takes that commit and its ancestors; the newer one the commits after it
(`HEAD ^cut`), starting from the versions the
cut has without knowing their history: they are parsed from their blobs and their definitions
given placeholder lineages, by path, name and same-name rank (one file id per path).  When both
are done (`apart._walked_in_halves`), `stitch.stitch_ids` gives each placeholder the lineage (and file
id) the older walk gave that definition in that version, and the newer walk's rows, versions
and HEAD definitions are what one walk of the whole history stores.

What the newer walk cannot know of the older half must not matter to it: its commits' parents
in the older half are the cut alone, so the generations (from `git rev-list`) and the versions
are all it needs, and the cut deleted no definition (nothing its children could add again).
The versions the older half made that the newer half makes again (a revert, a cherry-pick) are
listed from a `git log --raw` of the older half: the newer walk takes them as made before, as
one walk would.  Where the placeholders do not map one to one, the history is walked whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from codeintel.ingestion.history.gitlog import LOG_PINS, PACK_WINDOWS, PY_PATHSPEC, unquote_path, unrooted
from codeintel.ingestion.history.versions import VersionKey
from codeintel.ingestion.tools import ToolService


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a history is cut: after the first `position` commits (parents first), whose
    `boundary` (those with a child after the cut) the newer half starts from."""

    boundary: tuple[str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Survey:
    """How many commits a history has, and where it is cut (None: walked whole)."""

    commits: int
    cut: Cut | None


def survey(tools: ToolService, repo: Path, head: str, min_commits: int, *, share: float = 0.57) -> Survey:
    """How many commits the history of `head` has (one `git rev-list`), and where to cut it:
    after the commits in `git rev-list --topo-order` (parents first) up to which the commits
    made a `share` of the `.py` file versions the history makes, or the nearest place to it
    (the target rounded down to a multiple of `_GRID` versions), where every commit before the
    cut that has a child after it (the boundary) is a merge or changes no `.py` file; or no
    cut: a history of fewer than `min_commits` commits (one walk is as quick: the second
    process and the stitch cost about a second; 0: never cut), or no such place between a
    quarter and three quarters of its commits.

    A half's walk takes about as long as its versions (a diff applied and an outline updated
    each): a share of the commits balances the halves of one history and not another's (the
    older half of sqlalchemy walked in 37 s and the newer in 41 s, cut at 59 % of the commits;
    requests' in 2.7 s and 1.2 s, at 68 %).  The older half takes a little more than half of
    the versions: the newer ones are of larger files, and the newer half starts later (it
    lists what the older made)."""
    out = tools.git(["rev-list", "--topo-order", "--reverse", "--parents", head], cwd=repo).decode("ascii")
    order: list[str] = []
    parents: list[list[str]] = []
    for line in out.split("\n"):
        if line:
            sha, *ps = line.split()
            order.append(sha)
            parents.append(ps)
    n = len(order)
    if not min_commits or n < min_commits:
        return Survey(n, None)
    index = {sha: i for i, sha in enumerate(order)}
    last_child = list(range(n))  # per commit, the position of its last child (itself when none)
    for i, ps in enumerate(parents):
        for p in ps:
            j = index.get(p)
            if j is not None and last_child[j] < i:
                last_child[j] = i
    if not _any_narrow(last_child, int(0.25 * n), int(0.75 * n)):
        return Survey(n, None)  # no place with a boundary that small: which commits change .py files is moot
    touching = _py_versions(tools, repo, head)
    ends: dict[int, list[int]] = {}  # position -> the commits whose last child is there
    open_: set[int] = set()  # commits up to i with a child after i
    bad = 0  # of those, how many are no merge and change a .py file
    cuts: list[tuple[int, Cut]] = []  # (the versions the commits before it make, the cut)
    versions = 0
    for i in range(n):
        versions += touching.get(order[i], 0)
        for j in ends.pop(i, ()):
            open_.discard(j)
            bad -= order[j] in touching and len(parents[j]) < 2
        if last_child[i] > i:
            open_.add(i)
            ends.setdefault(last_child[i], []).append(i)
            bad += order[i] in touching and len(parents[i]) < 2
        if bad == 0 and 0 < len(open_) <= _MAX_BOUNDARY and 0.25 * n <= i <= 0.75 * n:
            cuts.append((versions, Cut(tuple(sorted(order[j] for j in open_)), i + 1)))
    # the target moves by a grid step at most: a cold walk a few commits later cuts at the same place
    target = max(_GRID, int(share * versions) // _GRID * _GRID)
    cuts.sort(key=lambda vc: (abs(vc[0] - target), vc[1].position))
    return Survey(n, cuts[0][1] if cuts else None)


def _py_versions(tools: ToolService, repo: Path, head: str) -> dict[str, int]:
    """The commits of `head`'s history that change `.py` files (no merge), and how many each
    changes (one `git log --raw`: the diff of trees git makes to tell them anyway, listed)."""
    out = tools.git(
        [*LOG_PINS, *PACK_WINDOWS, "log", "--format=@%H", "--no-merges", "--raw", "--no-renames", head, "--", PY_PATHSPEC],
        cwd=repo,
    )
    found: dict[str, int] = {}
    sha = ""
    for line in out.split(b"\n"):
        if line.startswith(b"@"):
            sha = line[1:].decode("ascii")
            found[sha] = 0
        elif line.startswith(b":"):
            found[sha] += 1
    return found


def _any_narrow(last_child: list[int], lo: int, hi: int) -> bool:
    """Whether some position from `lo` to `hi` has from 1 to `_MAX_BOUNDARY` commits up to it
    with a child after it (`last_child`: per commit, the position of its last child)."""
    change = [0] * (len(last_child) + 1)
    for j, last in enumerate(last_child):
        if last > j:
            change[j] += 1
            change[last] -= 1
    spanning = 0
    for i, delta in enumerate(change[: hi + 1]):
        spanning += delta
        if i >= lo and 0 < spanning <= _MAX_BOUNDARY:
            return True
    return False


_MAX_BOUNDARY = 1  # a cut with more (branches span it) seldom joins: see `stitch_ids`
_GRID = 256  # versions (`survey`)


def generations(tools: ToolService, repo: Path, head: str) -> dict[str, int]:
    """Each commit's generation as a walk numbers it: 1 + the greatest of its parents' (0 for
    a parent outside the history, as beyond a shallow boundary)."""
    out = tools.git(["rev-list", "--topo-order", "--reverse", "--parents", head], cwd=repo).decode("ascii")
    found: dict[str, int] = {}
    for line in out.split("\n"):
        if line:
            sha, *ps = line.split()
            found[sha] = 1 + max((found.get(p, 0) for p in ps), default=0)
    return found


def versions_made(
    tools: ToolService, repo: Path, tips: Iterable[str], timeout_s: float, prefix: str = ""
) -> frozenset[VersionKey]:
    """The (path, blob) versions of `.py` files the commits up to `tips` made (`git log --raw`,
    merges' own versions included, as the walk's `-c` diffs give them), paths named from the
    directory `prefix` is (`RepoHistory.prefix`)."""
    found: set[VersionKey] = set()
    args = [
        "-c", "core.quotepath=off", *LOG_PINS, *PACK_WINDOWS, "log", "--full-history", "--sparse", "--no-color", "--no-abbrev", "--raw", "-M",
        "-c", "--format=", *tips, "--", PY_PATHSPEC,
    ]  # fmt: skip
    with tools.stream(tools.config.git, args, cwd=repo, timeout_s=timeout_s) as stream:
        for raw in stream:
            if not raw.startswith(b":"):
                continue
            meta, _, paths = raw.rstrip(b"\n").partition(b"\t")
            fields = meta.split()
            blob = fields[-2].decode("ascii")
            if blob.strip("0"):
                found.add((unrooted(unquote_path(paths.split(b"\t")[-1]), prefix), blob))
    return frozenset(found)
