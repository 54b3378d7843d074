"""Fixtures of the serving tests: a real git repository indexed once (copied per test), and
MCP clients on its published database (see `serving_support`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from mcp import Client
from serving_support import PROJECT, Mcp, Project, Served, ServedFactory

from codeintel.serving.server import build_server
from codeintel.serving.service import Service
from codeintel.serving.snapshot import SnapshotStore


@pytest.fixture(scope="session")
def indexed_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project, committed and exported once per session (tests work on copies)."""
    project = Project.create(tmp_path_factory.mktemp("serving-template"), PROJECT)
    project.run()
    return project


@pytest.fixture
def make_served(indexed_project: Project, tmp_path: Path) -> Iterator[ServedFactory]:
    """`make_served(deadline_s=...)` -> a Served on a private copy of the indexed project."""
    with start_blocking_portal() as portal:
        opened: list[tuple[Project, SnapshotStore]] = []

        def make(**service: Any) -> Served:
            idx = indexed_project.copy(tmp_path / "served") if not opened else opened[0][0]
            store = SnapshotStore(idx.db, idx.repo)
            cm = portal.wrap_async_context_manager(Client(build_server(Service(store, **service))))
            client = cm.__enter__()
            exits.append(cm)
            opened.append((idx, store))
            return Served(idx, store, Mcp(portal, client))

        exits: list[Any] = []
        try:
            yield make
        finally:
            for cm in reversed(exits):
                cm.__exit__(None, None, None)
            for _, store in opened:
                store.close()


@pytest.fixture
def served(make_served: ServedFactory) -> Served:
    return make_served()
