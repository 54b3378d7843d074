"""What the git_history step reads and starts: its settings, the plan of the walk (from git and
what is stored), a cold walk started ahead, and the walk itself with readers of what is stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codeintel.config import ExecutionConfig
from codeintel.ingestion.history import store
from codeintel.ingestion.history.apart import ColdWalk, spread_cold_walk, start_cold_walk, survey_history
from codeintel.ingestion.history.collect import EarlyLog, collect_cold, collect_history, plan_history, read_repo_history
from codeintel.ingestion.history.plan import HistoryFacts, HistoryPlan, HistorySettings, PlanMode
from codeintel.ingestion.mapping import Mapper
from codeintel.ingestion.tools import ToolService
from codeintel.storage.gateway import StorageGateway


def history_settings(execution: ExecutionConfig) -> HistorySettings:
    config = execution.history
    return HistorySettings(
        config.huge_commit_files, config.bot_pattern, config.timeout_s, split_min_commits=config.split_min_commits,
        inline_max_commits=config.inline_max_commits, max_file_size=execution.scan.max_file_size,
        include=execution.scan.include, exclude=execution.scan.exclude, ignored_dirs=execution.scan.ignored_dirs,
    )  # fmt: skip


def history_plan(
    tools: ToolService, repo: Path, repo_name: str, gateway: StorageGateway, settings: HistorySettings, *, full: bool
) -> tuple[HistoryPlan, str | None]:
    """What the history walk has to do now, and the HEAD it last walked to."""
    now = read_repo_history(tools, repo, settings, repo_name)
    stored = store.read_stored_history(gateway)
    return plan_history(tools, repo, now, stored, full=full), stored.head


def start_cold_walk_if_cold(
    tools: ToolService, repo: Path, repo_name: str, gateway: StorageGateway, settings: HistorySettings, *, full: bool
) -> ColdWalk | None:
    """A cold walk started in its own process when the plan is a cold walk (new commits only are
    quick: done in the step's turn)."""
    plan, _ = history_plan(tools, repo, repo_name, gateway, settings, full=full)
    if plan.mode != PlanMode.COLD:
        return None
    return start_cold_walk(tools, repo, repo_name, plan, settings)


@contextmanager
def walk_with_stored(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    gateway: StorageGateway,
    plan: HistoryPlan,
    settings: HistorySettings,
    started: ColdWalk | None,
    executor: Callable[[], Mapper] | None = None,
) -> Iterator[HistoryFacts]:
    """`walk_history` with readers of what `gateway` has stored (new commits continue lineages):
    one read connection for all of them, let go before the caller writes the facts."""
    with gateway.held_reader() as reads, walk_history(
        tools, repo, repo_name, plan, settings, started, executor,
        generations=lambda shas: store.read_generations(reads, shas),
        stored_versions=lambda keys: store.read_versions(reads, keys, plan.gone),
        stored_head=lambda: store.read_head(reads),
        stored_deletions=lambda shas: store.read_deletions(reads, shas),
        stored_commits=lambda shas: store.read_walked(reads, shas),
        stored_outlines=lambda keys: store.read_outlines(reads, keys),
    ) as facts:  # fmt: skip
        reads.release()
        yield facts


@contextmanager
def walk_history(
    tools: ToolService,
    repo: Path,
    repo_name: str,
    plan: HistoryPlan,
    settings: HistorySettings,
    started: ColdWalk | None = None,
    executor: Callable[[], Mapper] | None = None,
    **readers: Any,
) -> Iterator[HistoryFacts]:
    """The facts of the walk `plan` asks for: a cold walk in a child process (`apart`; the one
    `started` ahead when it is that walk; its halves the work of the step's `executor` when that
    is a cluster's; the facts are backed by files that exist until the block ends), or in this
    process when the history is short and not cut (`inline_max_commits`: there a child's start,
    imports and files cost more than what it gives back, the walk's memory); new commits in this
    process (`collect_history`, with `readers` of what is stored)."""
    if started is not None and started.same_walk(plan):
        with started.facts(repo) as facts:
            yield facts
    elif plan.mode == PlanMode.COLD:
        log = EarlyLog(tools, repo, plan, settings)  # git walks the commits while the history is surveyed
        try:
            surveyed = survey_history(tools, repo, plan, settings)
            here = surveyed.cut is None and surveyed.commits <= settings.inline_max_commits
            walked = collect_cold(tools, repo, repo_name, plan, settings, log=log.stream) if here else None
        except BaseException as exc:
            log.close(exc)
            raise
        if walked is not None:
            log.close()
            yield walked
            return
        log.discard()
        # (the executor is asked for only here: it may connect)
        cluster = executor() if executor is not None and surveyed.cut is not None else None
        walk = (
            spread_cold_walk(cluster, tools, repo, repo_name, plan, settings, surveyed.cut)
            if cluster is not None and cluster.remote and surveyed.cut is not None
            else start_cold_walk(tools, repo, repo_name, plan, settings, surveyed)
        )
        with walk.facts(repo) as facts:
            yield facts
    else:
        yield collect_history(tools, repo, repo_name, plan, settings, **readers)
