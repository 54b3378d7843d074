"""`merges.reached` followed for some definitions gives, for each commit, what it gives for all
met with them: what an incremental walk relies on to follow again only the definitions new
merges list (`store._discarded_since`)."""

from __future__ import annotations

import random

import pytest

from codeintel.ingestion.history import merges


def random_history(rng: random.Random, n: int, names: list[str]) -> tuple[list[str], dict[str, list[str]], merges.Sides]:
    """`n` commits (children first in the order returned): branches, merges of two or three
    parents, and per merge the definitions it has as another parent (or as none) had them."""
    shas = [f"c{i:03d}" for i in range(n)]  # parents first
    parents: dict[str, list[str]] = {shas[0]: []}
    for i in range(1, n):
        first = shas[rng.randrange(max(0, i - 4), i)]
        others = rng.sample(shas[:i], k=min(i, rng.choice([0, 0, 0, 1, 1, 2])))
        parents[shas[i]] = [first, *(p for p in others if p != first)]
    sides: merges.Sides = {}
    for sha, ps in parents.items():
        if len(ps) > 1:
            side: dict[int | None, frozenset[str]] = {}
            for key in [None, *range(1, len(ps))]:
                picked = frozenset(rng.sample(names, k=rng.randrange(0, 4)))
                if picked:
                    side[key] = picked
            sides[sha] = side
    return shas[::-1], parents, sides


@pytest.mark.parametrize("seed", range(40))
def test_reach_followed_for_some_definitions_is_the_reach_of_all_met_with_them(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"l{i}" for i in range(8)]
    order, parents, sides = random_history(rng, 60, names)
    head = order[0]
    every = merges.reached(head, order, parents, sides)
    some = frozenset(rng.sample(names, k=rng.randrange(1, len(names))))
    followed = merges.reached(head, order, parents, sides, merges.Lineages(some))
    assert any(0 < len({n for n in names if n in every.get(s, merges.NONE)}) < len(names) for s in order)
    for sha in order:
        whole = {n for n in names if n in every.get(sha, merges.NONE)}
        assert {n for n in names if n in followed.get(sha, merges.NONE)} == whole & some, sha
