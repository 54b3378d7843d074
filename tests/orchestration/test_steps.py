"""The pipeline's DAG and step selection.

The real DAG is checked as properties (unique names, known deps, acyclic, each dependency before
its dependant), `validate_dag` on fake step lists, and the dbt-style selector language both on a
fake DAG (where `c+` and `@c` differ) and on the real one, `state:modified` against a real run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from graphlib import TopologicalSorter
from typing import Any

import pytest

from codeintel.errors import CodeIntelError, PipelineCycleError, UnknownStepError
from codeintel.orchestration.context import PipelineContext
from codeintel.orchestration.executors import SerialExecutor
from codeintel.orchestration.selection import descendants, expand_selector, modified_steps, plan_steps, select_steps
from codeintel.orchestration.stepio import StepResult
from codeintel.orchestration.steps import (
    PIPELINE_DEPS,
    PIPELINE_STEPS,
    PIPELINE_STEPS_BY_NAME,
    run_pipeline,
    run_step,
    topological_order,
    validate_dag,
)


def fake_step(name: str, *deps: str) -> Any:
    """A step-shaped object (class attributes, like the real steps) that does nothing."""

    class Fake:
        def run(self, ctx: PipelineContext) -> StepResult:
            return StepResult()

    Fake.name = name  # type: ignore[attr-defined]
    Fake.deps = tuple(deps)  # type: ignore[attr-defined]
    return Fake()


# a -> b -> c -> d <- x ; plus an unrelated island
FAKE_DEPS: Mapping[str, tuple[str, ...]] = {
    "a": (),
    "b": ("a",),
    "c": ("b",),
    "x": (),
    "d": ("c", "x"),
    "island": (),
}


def assert_dependency_order(order: list[str], deps: Mapping[str, tuple[str, ...]]) -> None:
    position = {name: i for i, name in enumerate(order)}
    for name in order:
        for dep in deps[name]:
            if dep in position:
                assert position[dep] < position[name], f"{dep} must come before {name} in {order}"


# ---------------------------------------------------------------------------- the real DAG


def test_step_names_are_unique() -> None:
    names = [step.name for step in PIPELINE_STEPS]
    assert len(names) == len(set(names))


def test_every_dependency_names_a_step() -> None:
    names = {step.name for step in PIPELINE_STEPS}
    assert {dep for step in PIPELINE_STEPS for dep in step.deps} <= names


def test_the_dag_is_acyclic() -> None:
    assert len(tuple(TopologicalSorter(dict(PIPELINE_DEPS)).static_order())) == len(PIPELINE_STEPS)


def test_registration_order_puts_each_dependency_before_its_dependant() -> None:
    assert_dependency_order([step.name for step in PIPELINE_STEPS], PIPELINE_DEPS)


def test_topological_order_puts_each_dependency_before_its_dependant_and_is_deterministic() -> None:
    order = topological_order(PIPELINE_DEPS)
    assert sorted(order) == sorted(PIPELINE_DEPS)
    assert_dependency_order(order, PIPELINE_DEPS)
    assert topological_order(reversed(list(PIPELINE_DEPS))) == order


def test_ready_steps_run_in_registration_order() -> None:
    deps = {"scan": (), "zeta": ("scan",), "alpha": ("scan",), "views": ("alpha", "zeta")}
    assert topological_order(deps, deps) == ["scan", "zeta", "alpha", "views"]
    assert topological_order(PIPELINE_DEPS) == [step.name for step in PIPELINE_STEPS]


def test_derived_mappings_agree_with_the_step_list() -> None:
    assert list(PIPELINE_STEPS_BY_NAME) == [s.name for s in PIPELINE_STEPS]
    assert dict(PIPELINE_DEPS) == {s.name: tuple(s.deps) for s in PIPELINE_STEPS}
    assert all(PIPELINE_STEPS_BY_NAME[s.name] is s for s in PIPELINE_STEPS)


def test_every_step_has_a_one_line_description() -> None:
    assert all((type(s).__doc__ or "").strip() for s in PIPELINE_STEPS)


# ------------------------------------------------------------------------------ validate_dag


def test_validate_dag_returns_the_dependency_map() -> None:
    assert validate_dag([fake_step("a"), fake_step("b", "a")]) == {"a": (), "b": ("a",)}


def test_a_duplicate_step_name_is_an_error_naming_it() -> None:
    with pytest.raises(CodeIntelError, match=r"'scan'.*declared twice"):
        validate_dag([fake_step("scan"), fake_step("parse", "scan"), fake_step("scan")])


def test_an_unknown_dependency_is_an_error_suggesting_the_close_name() -> None:
    steps = [fake_step("goids"), fake_step("metrics", "goid")]
    with pytest.raises(UnknownStepError, match=r"'metrics' depends on unknown step 'goid' \(did you mean 'goids'\?\)"):
        validate_dag(steps)


def test_a_cycle_is_an_error_naming_its_members() -> None:
    steps = [
        fake_step("root"),
        fake_step("alpha", "root", "gamma"),
        fake_step("beta", "alpha"),
        fake_step("gamma", "beta"),
        fake_step("leaf", "alpha"),
    ]
    with pytest.raises(PipelineCycleError) as error:
        validate_dag(steps)
    message = str(error.value)
    assert all(member in message for member in ("alpha", "beta", "gamma"))
    assert "root" not in message and "leaf" not in message


def test_a_self_dependency_is_a_cycle() -> None:
    with pytest.raises(PipelineCycleError, match="loop"):
        validate_dag([fake_step("loop", "loop")])


# --------------------------------------------------------------------------------- selection


SELECTOR_CASES = [
    ("name_is_it_and_its_ancestors", "c", {"a", "b", "c"}),
    ("plus_prefix_is_the_same", "+c", {"a", "b", "c"}),
    ("plus_suffix_adds_descendants", "c+", {"a", "b", "c", "d"}),
    ("at_adds_descendants_and_their_ancestors", "@c", {"a", "b", "c", "d", "x"}),
    ("a_root_alone", "x", {"x"}),
    ("a_root_plus", "x+", {"x", "d"}),
    ("a_leaf_plus_is_the_leaf_and_ancestors", "d+", {"a", "b", "c", "d", "x"}),
]


@pytest.mark.parametrize(("selector", "expected"), [c[1:] for c in SELECTOR_CASES], ids=[c[0] for c in SELECTOR_CASES])
def test_expand_selector(selector: str, expected: set[str]) -> None:
    assert expand_selector(selector, FAKE_DEPS) == expected


SELECT_CASES = [
    ("nothing_selected_is_everything", None, [], set(FAKE_DEPS)),
    ("dependencies_of_selected_descendants_are_included", ["c+"], [], {"a", "b", "c", "d", "x"}),
    ("several_selectors_union", ["b", "x"], [], {"a", "b", "x"}),
    ("exclude_plain_removes_only_that_step", None, ["c"], set(FAKE_DEPS) - {"c"}),
    ("exclude_plus_removes_descendants", None, ["c+"], {"a", "b", "x", "island"}),
    ("exclude_at_removes_descendants", None, ["@b"], {"a", "x", "island"}),
    ("select_and_exclude", ["d"], ["b+"], {"a", "x"}),
]


@pytest.mark.parametrize(
    ("selected", "exclude", "expected"), [c[1:] for c in SELECT_CASES], ids=[c[0] for c in SELECT_CASES]
)
def test_select_steps(selected: list[str] | None, exclude: list[str], expected: set[str]) -> None:
    order = select_steps(selected, exclude, FAKE_DEPS)
    assert set(order) == expected
    assert len(order) == len(expected)
    assert_dependency_order(order, FAKE_DEPS)


def test_goids_on_the_real_dag_is_goids_and_its_ancestors() -> None:
    assert select_steps(["goids"], [], PIPELINE_DEPS) == ["repo_scan", "ast_ingest", "goids"]


def test_goids_plus_on_the_real_dag_includes_everything_downstream() -> None:
    chosen = select_steps(["goids+"], [], PIPELINE_DEPS)
    assert {"goids", "function_metrics", "docs_views"} <= set(chosen)
    assert_dependency_order(chosen, PIPELINE_DEPS)


def test_excluding_a_step_plus_on_the_real_dag_drops_it_and_everything_downstream() -> None:
    chosen = select_steps(None, ["goids+"], PIPELINE_DEPS)
    assert {"repo_scan", "ast_ingest"} <= set(chosen)
    assert set(chosen) == set(PIPELINE_DEPS) - {"goids"} - descendants("goids", PIPELINE_DEPS)


UNKNOWN_CASES = [
    ("select", ["goid"], [], r"unknown step 'goid'.*did you mean 'goids'"),
    ("select_plus", ["goid+"], [], r"unknown step 'goid'.*did you mean 'goids'"),
    ("select_at", ["@ast_ingset"], [], r"unknown step 'ast_ingset'.*did you mean 'ast_ingest'"),
    ("exclude", None, ["function_metric+"], r"unknown step 'function_metric'.*did you mean 'function_metrics'"),
    ("no_close_match", ["zzz"], [], r"unknown step 'zzz'"),
]


@pytest.mark.parametrize(
    ("selected", "exclude", "pattern"), [c[1:] for c in UNKNOWN_CASES], ids=[c[0] for c in UNKNOWN_CASES]
)
def test_unknown_step_names_suggest_close_matches(selected: list[str] | None, exclude: list[str], pattern: str) -> None:
    with pytest.raises(UnknownStepError, match=pattern):
        select_steps(selected, exclude, PIPELINE_DEPS)


def test_run_step_with_an_unknown_name_suggests_a_close_match(tmp_path: Any, make_indexer: Any) -> None:
    (tmp_path / "repo").mkdir()
    with (
        PipelineContext(make_indexer(tmp_path / "repo").config()) as ctx,
        pytest.raises(UnknownStepError, match="did you mean 'repo_scan'"),
    ):
        run_step(ctx, "repo_scn")


def test_the_ledger_times_the_steps_own_work_not_the_runners_bookkeeping(
    tmp_path: Any, make_repo: Any, make_indexer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """meta.step_runs' started_at/finished_at bound the step's `run` (a slow code-version check
    before it is the runner's, not the step's time)."""
    from codeintel.orchestration import steps

    real_align, real_run = steps.align_code_version, steps.RepoScanStep.run

    def slow_align(*args: Any) -> bool:
        time.sleep(1.0)
        return real_align(*args)

    def slow_run(self: Any, ctx: PipelineContext) -> StepResult:
        time.sleep(0.3)
        return real_run(self, ctx)

    monkeypatch.setattr(steps, "align_code_version", slow_align)
    monkeypatch.setattr(steps.RepoScanStep, "run", slow_run)
    indexer = make_indexer(make_repo(tmp_path, {"pkg/__init__.py": ""}))
    run = indexer.run(["repo_scan"])
    assert run.ok
    ((seconds,),) = indexer.query(
        "SELECT epoch(finished_at) - epoch(started_at) FROM meta.step_runs WHERE run_id = ? AND step = 'repo_scan'",
        [run.run_id],
    )
    assert 0.3 <= seconds < 1.0, seconds


# ---------------------------------------------------------------------------- state:modified


def _plan(indexer: Any, selected: list[str]) -> list[str]:
    with PipelineContext(indexer.config()) as ctx:
        return plan_steps(ctx, selected, [])


def test_state_modified_selects_nothing_after_a_clean_run_and_everything_after_an_edit(indexed_copy: Any) -> None:
    indexer = indexed_copy("steps", {"pkg/__init__.py": "", "pkg/a.py": "def f():\n    return 1\n"})
    assert _plan(indexer, ["state:modified"]) == []
    indexer.git.write({"pkg/a.py": "def f():\n    return 2\n"})
    assert _plan(indexer, ["state:modified"]) == topological_order(PIPELINE_DEPS)


def test_state_modified_selects_a_step_that_did_not_run_and_its_descendants(indexed_copy: Any) -> None:
    indexer = indexed_copy("steps", {"pkg/__init__.py": "", "pkg/a.py": "def f():\n    return 1\n"})
    indexer.git.apply({"pkg/a.py": "def f():\n    return 3\n"})
    indexer.run(exclude=["function_metrics"])
    expected = {"function_metrics"} | descendants("function_metrics", PIPELINE_DEPS)
    with PipelineContext(indexer.config()) as ctx:
        assert modified_steps(ctx) == expected
    run = indexer.run(["state:modified"])  # their dependencies come along, as with any selector
    assert run.steps == select_steps(sorted(expected), [], PIPELINE_DEPS)
    assert {"repo_scan", "goids", "docs_views"} <= set(run.steps)
    assert indexer.step_runs(run.run_id)["function_metrics"]["files_processed"] == 1
    assert _plan(indexer, ["state:modified"]) == []


class _RecordingExecutor(SerialExecutor):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def warm_up(self) -> None:
        self.calls.append("warm_up")

    def map(self, fn: Any, items: Any, priority: int = 0) -> list[Any]:
        self.calls.append("map")
        return super().map(fn, items, priority)


@pytest.mark.parametrize(
    ("select", "full", "warmed"),
    [
        (["cst_ingest"], False, [True, False]),
        (["cst_ingest"], True, [True, True]),
        (["repo_scan"], True, [False, False]),
    ],
    ids=["per-file", "per-file-full", "none"],
)
def test_a_run_with_per_file_work_likely_warms_the_executor_up_before_any_step(
    tmp_path: Any, make_repo: Any, make_indexer: Any, select: list[str], full: bool, warmed: list[bool]
) -> None:
    """Per-file work is likely on a first run (a new work database) or a full one: the workers' start-up (a forkserver's
    imports) then overlaps the steps before the first map.  Another run may well have none."""
    repo = make_repo(tmp_path, {f"m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(3)})
    indexer = make_indexer(repo)
    for expected in warmed:
        executor = _RecordingExecutor()
        with PipelineContext(indexer.config(full=full), executor) as ctx:
            run_pipeline(ctx, select, publish=False)
        assert executor.calls[:1] == (["warm_up"] if expected else [])
        assert executor.calls.count("warm_up") == int(expected)


def test_the_local_executor_is_this_machines_and_asking_for_it_reaches_no_cluster(
    tmp_path: Any, make_repo: Any, make_indexer: Any
) -> None:
    from codeintel.orchestration.executors import ProcessExecutor

    indexer = make_indexer(make_repo(tmp_path, {"m.py": "X = 1\n"}))
    # nothing listens there: connecting would fail (or hang) rather than give None
    with PipelineContext(indexer.config(executor="dask", dask_address="tcp://127.0.0.1:9")) as ctx:
        assert ctx.local_executor() is None
        assert ctx._executor is None
    with PipelineContext(indexer.config(executor="process", workers=2)) as ctx:
        assert isinstance(ctx.local_executor(), ProcessExecutor)
    with PipelineContext(indexer.config(executor="dask", workers=2)) as ctx:  # no address: a local pool
        assert isinstance(ctx.local_executor(), ProcessExecutor)
