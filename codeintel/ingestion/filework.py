"""Per-file work that runs in worker processes: read, parse once, extract, return rows.

Each `*_batch` function is module-level (picklable), takes a `FileBatch` and returns one
`FileOutput` per file: the hash of the bytes it actually read (recorded as processed) and rows
per table as tuples in catalog column order.  Nothing here touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeintel.analysis.callgraph import extract_call_facts, facts_to_json
from codeintel.analysis.definitions import DefKind, iter_definitions
from codeintel.analysis.goids import make_goid
from codeintel.analysis.imports import extract_all_names, extract_import_sites
from codeintel.analysis.metrics import compute_function_metrics
from codeintel.gcpause import gc_paused
from codeintel.ingestion.change_tracker import FileRef
from codeintel.ingestion.parsing import ParsedFile, ParseProblem, ProblemKind, read_and_parse
from codeintel.storage.catalog import Table, spec_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FileBatch:
    """Files for one worker call, with what the work needs to know."""

    root: str
    repo: str
    max_file_size: int
    files: tuple[FileRef, ...]


@dataclass(slots=True)
class FileOutput:
    """Rows produced for one file, and the hash of the content they came from."""

    path: str
    hash: str | None
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, record: Any) -> None:
        names = spec_of(table).column_names
        self.rows.setdefault(table, []).append(tuple(getattr(record, n) for n in names))


def _each_parsed(batch: FileBatch) -> Iterator[tuple[FileRef, str | None, ParsedFile | ParseProblem]]:
    root = Path(batch.root)
    for ref in batch.files:
        try:
            digest, parsed = read_and_parse(root, ref.path, batch.max_file_size)
        except RecursionError as exc:  # pragma: no cover - parse_bytes catches the parser's own
            digest, parsed = ref.hash, ParseProblem(ref.path, ProblemKind.RECURSION, None, None, str(exc))
        yield ref, digest, parsed


def _map_parsed(batch: FileBatch, extract: Extractor, *, owns_problems: bool = False) -> list[FileOutput]:
    """Read and parse each file of `batch` once and run `extract` on it.

    Only the step that owns core.parse_errors (`owns_problems`) records files that cannot be
    parsed, or whose analysis exhausts the stack; other steps just produce no rows for them.
    """
    with gc_paused():  # a batch's trees and rows: see codeintel.gcpause
        return _map_parsed_batch(batch, extract, owns_problems)


def _map_parsed_batch(batch: FileBatch, extract: Extractor, owns_problems: bool) -> list[FileOutput]:
    outputs = []
    for ref, digest, parsed in _each_parsed(batch):
        out = FileOutput(ref.path, digest)
        if isinstance(parsed, ParseProblem):
            if owns_problems:
                out.add(Table.PARSE_ERRORS, parsed)
        else:
            try:
                extract(batch, ref, parsed, out)
            except RecursionError:
                out.rows.clear()
                if owns_problems:
                    problem = ParseProblem(ref.path, ProblemKind.RECURSION, None, None, "nesting too deep to analyse")
                    out.add(Table.PARSE_ERRORS, problem)
        outputs.append(out)
    return outputs


Extractor = Callable[[FileBatch, FileRef, ParsedFile, FileOutput], None]


def _definitions(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    for d in iter_definitions(parsed.tree, ref.module, ref.path, len(parsed.lines)):
        out.add(Table.AST_NODES, d)


@dataclass(frozen=True, slots=True)
class _MetricsRow:
    goid: str
    path: str
    module: str
    qualname: str
    kind: str
    start_line: int
    end_line: int
    metrics: Any

    def __getattr__(self, name: str) -> Any:  # columns beyond the identity come from metrics
        return getattr(self.metrics, name)


def _metrics(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    for d in iter_definitions(parsed.tree, ref.module, ref.path, len(parsed.lines)):
        if d.kind in (DefKind.FUNCTION, DefKind.METHOD):
            goid = make_goid(batch.repo, ref.path, d.kind, d.qualname, d.ordinal)
            metrics = compute_function_metrics(d.node, parsed.lines)  # type: ignore[arg-type]
            row = _MetricsRow(goid, ref.path, ref.module, d.qualname, d.kind, d.start_line, d.end_line, metrics)
            out.add(Table.FUNCTION_METRICS, row)


@dataclass(frozen=True, slots=True)
class _ModuleExports:
    path: str
    module: str
    all_names: list[str] | None


def _imports(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    for site in extract_import_sites(parsed.tree, ref.module, ref.path, ref.is_package):
        out.add(Table.IMPORT_SITES, site)
    names = extract_all_names(parsed.tree)
    out.add(Table.MODULE_EXPORTS, _ModuleExports(ref.path, ref.module, None if names is None else list(names)))


@dataclass(frozen=True, slots=True)
class _CallFacts:
    path: str
    module: str
    facts: str


def _call_facts(batch: FileBatch, ref: FileRef, parsed: ParsedFile, out: FileOutput) -> None:
    facts = extract_call_facts(parsed.tree, ref.module, ref.path, ref.is_package)
    out.add(Table.CALL_FACTS, _CallFacts(ref.path, ref.module, facts_to_json(facts)))


def ast_ingest_batch(batch: FileBatch) -> list[FileOutput]:
    """core.ast_nodes rows for each file, or a core.parse_errors row when it cannot be parsed."""
    return _map_parsed(batch, _definitions, owns_problems=True)


def function_metrics_batch(batch: FileBatch) -> list[FileOutput]:
    """analytics.function_metrics rows for every function and method of each file."""
    return _map_parsed(batch, _metrics)


def import_sites_batch(batch: FileBatch) -> list[FileOutput]:
    """graph.import_sites (one row per imported name) and graph.module_exports (`__all__`)."""
    return _map_parsed(batch, _imports)


def call_facts_batch(batch: FileBatch) -> list[FileOutput]:
    """graph.call_facts: the per-file facts of the call-graph analysis, as JSON text."""
    return _map_parsed(batch, _call_facts)
