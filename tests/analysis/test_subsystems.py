"""Tests for codeintel.analysis.subsystems."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from itertools import combinations

import pytest

from codeintel.analysis.subsystems import detect_subsystems

Edges = list[tuple[str, str, float]]


def clique(modules: list[str], weight: float = 1.0) -> Edges:
    return [(a, b, weight) for a, b in combinations(modules, 2)]


STORAGE = [f"app.storage.s{i}" for i in range(5)]
WEB = [f"app.web.w{i}" for i in range(5)]


def two_clusters() -> tuple[list[str], Edges, Edges]:
    imports = [*clique(STORAGE), *clique(WEB), ("app.web.w0", "app.storage.s0", 1.0)]
    calls = [*clique(STORAGE, 3.0), *clique(WEB, 3.0)]
    return [*STORAGE, *WEB], imports, calls


def groups_by_name(modules: list[str], imports: Edges, calls: Edges) -> dict[str, set[str]]:
    subsystems, members = detect_subsystems(modules, imports, calls)
    names = {s.subsystem_id: s.name for s in subsystems}
    grouped: dict[str, set[str]] = {}
    for m in members:
        grouped.setdefault(names[m.subsystem_id], set()).add(m.module)
    return grouped


def test_two_separated_clusters_become_two_subsystems_named_by_package() -> None:
    assert groups_by_name(*two_clusters()) == {"app.storage": set(STORAGE), "app.web": set(WEB)}


def test_call_edges_alone_can_form_a_subsystem() -> None:
    modules, _, calls = two_clusters()
    assert groups_by_name(modules, [], calls) == {"app.storage": set(STORAGE), "app.web": set(WEB)}


def test_edge_counts_and_weights_per_subsystem() -> None:
    subsystems, _ = detect_subsystems(*two_clusters())
    web = next(s for s in subsystems if s.name == "app.web")
    assert (web.module_count, web.internal_edge_count, web.internal_weight) == (5, 10, 40.0)
    assert (web.edges_out, web.weight_out, web.edges_in) == (1, 1.0, 0)


@pytest.mark.parametrize(
    ("isolated", "expected_group"),
    [
        ("app.web.lonely", "app.web"),
        ("app.storage", "app.storage"),
        ("other.tool", "other.tool"),
    ],
    ids=["joins-closest-package", "package-init-joins-its-children", "unknown-package-alone"],
)
def test_isolated_modules_follow_the_package_rule(isolated: str, expected_group: str) -> None:
    modules, imports, calls = two_clusters()
    subsystems, members = detect_subsystems([*modules, isolated], imports, calls)
    names = {s.subsystem_id: s.name for s in subsystems}
    row = next(m for m in members if m.module == isolated)
    assert row.is_isolated
    assert names[row.subsystem_id] == expected_group


def test_duplicate_names_get_a_suffix_and_ids_differ() -> None:
    first, second = [f"lib.a{i}" for i in range(4)], [f"lib.b{i}" for i in range(4)]
    subsystems, _ = detect_subsystems([*first, *second], [*clique(first), *clique(second)], [])
    assert sorted(s.name for s in subsystems) == ["lib", "lib#2"]
    assert len({s.subsystem_id for s in subsystems}) == 2


def test_mixed_top_level_packages_are_named_after_them() -> None:
    subsystems, _ = detect_subsystems(["a.x", "b.y"], [("a.x", "b.y", 1.0)], [])
    assert [s.name for s in subsystems] == ["a+b"]


def test_subsystem_id_depends_only_on_membership() -> None:
    modules, imports, calls = two_clusters()
    before, _ = detect_subsystems(modules, imports, calls)
    after, _ = detect_subsystems(list(reversed(modules)), imports, [*calls, *calls], seed=0)
    assert {s.subsystem_id for s in before} == {s.subsystem_id for s in after}


SCRIPT = textwrap.dedent(
    """
    import random
    from codeintel.analysis.subsystems import detect_subsystems
    rng = random.Random(3)
    modules = [f"pkg{i % 6}.sub{i % 11}.m{i}" for i in range(300)]
    edges = [(rng.choice(modules), rng.choice(modules), rng.random()) for _ in range(900)]
    for rows in detect_subsystems(modules, edges[:500], edges[500:]):
        for row in rows:
            print(row)
    """
)


def test_output_is_identical_under_different_hash_seeds() -> None:
    outputs = set()
    for hash_seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
        outputs.add(run.stdout)
    assert len(outputs) == 1
