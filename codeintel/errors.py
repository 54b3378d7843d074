"""Every error CodeIntel raises on purpose.

`CodeIntelError` is the root; each subclass names one kind of failure a user can act on, and each
message names the object (path, step, table) and the fix.  Unknown names suggest close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CodeIntelError(Exception):
    """Base class of the errors CodeIntel raises on purpose."""


class ConfigError(CodeIntelError):
    """A setting is missing, malformed or contradictory."""


class StorageError(CodeIntelError):
    """The DuckDB file cannot be opened, is of another schema version, or a write failed."""


class StorageLockTimeout(StorageError):
    """Another process held the database lock for longer than the lock timeout."""


class UnknownStepError(CodeIntelError):
    """A step name (in a selector, an exclude or a dependency) names no step."""


class PipelineCycleError(CodeIntelError):
    """The step dependencies form a cycle."""


class StepFailedError(CodeIntelError):
    """One or more pipeline steps failed; carries which failed and which never ran."""

    def __init__(self, message: str, failed: Iterable[str], not_run: Iterable[str], *, published: bool = False) -> None:
        super().__init__(message)
        self.failed = tuple(failed)
        self.not_run = tuple(not_run)
        self.published = published  # whether the run published what it had nevertheless


class ToolNotFoundError(CodeIntelError):
    """An external tool (git, scip-python) is not installed or not on PATH."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return a ' (did you mean ...?)' suffix naming close matches of `name`, or ''."""
    matches = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
