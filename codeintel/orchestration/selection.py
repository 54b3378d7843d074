"""Step selection in dbt's selector language.

- `goids` or `+goids`: the step and its ancestors (dependencies are always included);
- `goids+`: also its descendants; `@goids`: its descendants and all their ancestors;
- `state:modified`: steps whose last attempt did not succeed or never ran, steps with stale
  files, and (when any file changed since the last scan) everything downstream of `repo_scan`.
`--exclude` takes the same selectors and removes what they name (an excluded dependency simply
keeps the data it last stored; it catches up on a later run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from codeintel.errors import UnknownStepError, did_you_mean
from codeintel.ingestion.scan import PreviousState, diff_states, scan_repository
from codeintel.orchestration.context import PipelineContext
from codeintel.storage.catalog import Table


def ancestors(name: str, deps: Mapping[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    stack = list(deps[name])
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(deps[dep])
    return seen


def descendants(name: str, deps: Mapping[str, tuple[str, ...]]) -> set[str]:
    return {other for other in deps if name in ancestors(other, deps)}


def expand_selector(selector: str, deps: Mapping[str, tuple[str, ...]], modified: Iterable[str] = ()) -> set[str]:
    """The steps one selector names (without dependencies, which `plan_steps` adds)."""
    if selector == "state:modified":
        return set(modified)
    core = selector.removeprefix("@").removeprefix("+").removesuffix("+")
    if core not in deps:
        raise UnknownStepError(f"unknown step {core!r} in selector {selector!r}" + did_you_mean(core, deps))
    chosen = {core} | ancestors(core, deps)
    if selector.endswith("+") or selector.startswith("@"):
        down = descendants(core, deps)
        chosen |= down
        if selector.startswith("@"):
            for d in down:
                chosen |= ancestors(d, deps)
    return chosen


def select_steps(
    selected: Sequence[str] | None,
    exclude: Sequence[str],
    deps: Mapping[str, tuple[str, ...]],
    modified: Iterable[str] = (),
) -> list[str]:
    """Ordered step names for a selection (all steps when `selected` is empty)."""
    from codeintel.orchestration.steps import topological_order

    modified = set(modified)
    chosen: set[str] = set(deps) if not selected else set()
    for selector in selected or ():
        for name in expand_selector(selector, deps, modified):
            chosen |= {name} | ancestors(name, deps)
    for selector in exclude:
        if selector == "state:modified":
            chosen -= modified
            continue
        core = selector.removeprefix("@").removeprefix("+").removesuffix("+")
        if core not in deps:
            raise UnknownStepError(f"unknown step {core!r} in --exclude {selector!r}" + did_you_mean(core, deps))
        chosen -= {core} | (descendants(core, deps) if selector.endswith("+") or selector.startswith("@") else set())
    return topological_order(chosen, deps)


def plan_steps(ctx: PipelineContext, selected: Sequence[str] | None, exclude: Sequence[str]) -> list[str]:
    """The run's ordered steps; computes `state:modified` only when a selector uses it."""
    from codeintel.orchestration.steps import PIPELINE_DEPS

    needs_state = any(s == "state:modified" for s in [*(selected or ()), *exclude])
    modified = modified_steps(ctx) if needs_state else set()
    return select_steps(selected, exclude, PIPELINE_DEPS, modified)


def modified_steps(ctx: PipelineContext) -> set[str]:
    """Steps with work to do: failed or never succeeded, stale files, or changed files upstream."""
    from codeintel.orchestration import ledger
    from codeintel.orchestration.steps import PIPELINE_DEPS

    status = ledger.last_step_status(ctx.gateway)
    modified = {name for name in PIPELINE_DEPS if status.get(name) not in ("succeeded", "skipped")}
    old = ctx.gateway.read(Table.FILE_STATE).to_pylist()
    previous = {r["path"]: PreviousState(r["hash"], r["size"], r["mtime_ns"]) for r in old}
    files = scan_repository(ctx.repo_root, ctx.config.execution.scan, ctx.tool_service, previous)
    if any(kind != "unchanged" for _, kind, _, _ in diff_states(previous, files)):
        modified |= set(PIPELINE_DEPS)
    stale = ctx.gateway.query(
        f"""SELECT DISTINCT s.step FROM {Table.STEP_FILE_STATE} s
            FULL OUTER JOIN {Table.FILE_STATE} f ON f.path = s.path
            WHERE s.hash IS DISTINCT FROM f.hash AND s.step IS NOT NULL"""
    )
    modified |= set(stale["step"].to_pylist()) & set(PIPELINE_DEPS)
    for name in list(modified):
        modified |= descendants(name, PIPELINE_DEPS)
    return modified
