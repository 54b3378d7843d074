"""Global object ids (GOIDs): stable ids for modules, classes, functions and methods.

A GOID is a 128-bit blake2b hash (32 hex characters, stored as VARCHAR so DuckDB and Arrow keep
it exactly) of the repository name, file path, kind, qualified name and same-name ordinal: never
of the commit or of line numbers, so an edit elsewhere in a file never changes it.  The URN says
the same in readable form: `goid:<repo>/<path>#<kind>:<qualname>[~<ordinal>]`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GoidRecord:
    """One row of core.goids."""

    goid: str
    urn: str
    repo: str
    path: str
    module: str
    kind: str
    qualname: str
    ordinal: int
    name: str
    parent_goid: str | None
    start_line: int
    end_line: int


@dataclass(frozen=True, slots=True)
class DefinitionRef:
    """What a GOID is computed from (a row of core.ast_nodes, without the tree)."""

    path: str
    module: str
    qualname: str
    ordinal: int
    kind: str
    name: str
    parent_qualname: str | None
    start_line: int
    end_line: int


# the decorators that make a definition a `typing.overload` stub: Python keeps the definition after
# them (the implementation), not them
OVERLOAD_DECORATORS = ("overload", "typing.overload", "t.overload")


def overload_sql(nodes: str) -> str:
    """SQL: whether the row `nodes` (an alias of core.ast_nodes) is a `typing.overload` stub."""
    return f"list_has_any({nodes}.decorators, {list(OVERLOAD_DECORATORS)!r})"


def make_goid(repo: str, path: str, kind: str, qualname: str, ordinal: int = 0) -> str:
    """The GOID of one entity."""
    key = "\0".join((repo, path, kind, qualname, str(ordinal)))
    # a name UTF-8 cannot hold hashes as its stored (escaped) form: the same GOID whether the
    # path comes from the database or straight from git (codeintel/storage/text.py)
    return hashlib.blake2b(key.encode("utf-8", "backslashreplace"), digest_size=16).hexdigest()


def make_urn(repo: str, path: str, kind: str, qualname: str, ordinal: int = 0) -> str:
    """The readable URN of one entity."""
    suffix = f"~{ordinal}" if ordinal else ""
    return f"goid:{repo}/{path}#{kind}:{qualname}{suffix}"


def build_goids(repo: str, definitions: Iterable[DefinitionRef]) -> list[GoidRecord]:
    """GOID rows for the definitions of one or more files; parents resolved within each file.

    A definition's parent is the first definition (ordinal 0 preferred) with its parent
    qualified name in the same file; top-level definitions have the module as parent.
    """
    defs = list(definitions)
    by_name: dict[tuple[str, str], DefinitionRef] = {}
    for d in sorted(defs, key=lambda d: (d.path, d.qualname, -d.ordinal)):
        by_name[(d.path, d.qualname)] = d  # ordinal 0 wins (sorted last)
    modules = {d.path: d for d in defs if d.kind == "module"}
    rows = []
    for d in defs:
        parent: DefinitionRef | None = None
        if d.kind != "module":
            parent = by_name.get((d.path, d.parent_qualname)) if d.parent_qualname else modules.get(d.path)
        parent_goid = make_goid(repo, parent.path, parent.kind, parent.qualname, parent.ordinal) if parent else None
        rows.append(
            GoidRecord(
                goid=make_goid(repo, d.path, d.kind, d.qualname, d.ordinal),
                urn=make_urn(repo, d.path, d.kind, d.qualname, d.ordinal),
                repo=repo,
                path=d.path,
                module=d.module,
                kind=d.kind,
                qualname=d.qualname,
                ordinal=d.ordinal,
                name=d.name,
                parent_goid=parent_goid,
                start_line=d.start_line,
                end_line=d.end_line,
            )
        )
    return rows
