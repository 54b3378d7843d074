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


def _guarded(ref: FileRef, out: FileOutput, work: Callable[[], None]) -> None:
    """Run one file's extraction; analysis that blows the stack becomes a parse error row."""
    try:
        work()
    except RecursionError:
        out.rows.clear()
        out.add(
            Table.PARSE_ERRORS, ParseProblem(ref.path, ProblemKind.RECURSION, None, None, "nesting too deep to analyse")
        )


def ast_ingest_batch(batch: FileBatch) -> list[FileOutput]:
    """core.ast_nodes rows for each file, or a core.parse_errors row when it cannot be parsed."""
    outputs = []
    for ref, digest, parsed in _each_parsed(batch):
        out = FileOutput(ref.path, digest)
        if isinstance(parsed, ParseProblem):
            out.add(Table.PARSE_ERRORS, parsed)
        else:
            tree, lines = parsed.tree, parsed.lines

            def work(tree: Any = tree, lines: list[str] = lines, ref: FileRef = ref, out: FileOutput = out) -> None:
                for d in iter_definitions(tree, ref.module, ref.path, len(lines)):
                    out.add(Table.AST_NODES, d)

            _guarded(ref, out, work)
        outputs.append(out)
    return outputs


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


def function_metrics_batch(batch: FileBatch) -> list[FileOutput]:
    """analytics.function_metrics rows for every function and method of each file."""
    outputs = []
    for ref, digest, parsed in _each_parsed(batch):
        out = FileOutput(ref.path, digest)
        if isinstance(parsed, ParsedFile):
            tree, lines = parsed.tree, parsed.lines

            def work(tree: Any = tree, lines: list[str] = lines, ref: FileRef = ref, out: FileOutput = out) -> None:
                for d in iter_definitions(tree, ref.module, ref.path, len(lines)):
                    if d.kind in (DefKind.FUNCTION, DefKind.METHOD):
                        goid = make_goid(batch.repo, ref.path, d.kind, d.qualname, d.ordinal)
                        metrics = compute_function_metrics(d.node, lines)  # type: ignore[arg-type]
                        out.add(
                            Table.FUNCTION_METRICS,
                            _MetricsRow(
                                goid, ref.path, ref.module, d.qualname, d.kind, d.start_line, d.end_line, metrics
                            ),
                        )

            _guarded(ref, out, work)
            out.rows.pop(Table.PARSE_ERRORS, None)  # ast_ingest owns parse errors
        outputs.append(out)
    return outputs


@dataclass(frozen=True, slots=True)
class _ModuleExports:
    path: str
    module: str
    all_names: list[str] | None


def import_sites_batch(batch: FileBatch) -> list[FileOutput]:
    """graph.import_sites (one row per imported name) and graph.module_exports (`__all__`)."""
    outputs = []
    for ref, digest, parsed in _each_parsed(batch):
        out = FileOutput(ref.path, digest)
        if isinstance(parsed, ParsedFile):
            tree = parsed.tree

            def work(tree: Any = tree, ref: FileRef = ref, out: FileOutput = out) -> None:
                for site in extract_import_sites(tree, ref.module, ref.path, ref.is_package):
                    out.add(Table.IMPORT_SITES, site)
                names = extract_all_names(tree)
                out.add(Table.MODULE_EXPORTS, _ModuleExports(ref.path, ref.module, None if names is None else list(names)))

            _guarded(ref, out, work)
            out.rows.pop(Table.PARSE_ERRORS, None)
        outputs.append(out)
    return outputs


@dataclass(frozen=True, slots=True)
class _CallFacts:
    path: str
    module: str
    facts: str


def call_facts_batch(batch: FileBatch) -> list[FileOutput]:
    """graph.call_facts: the per-file facts of the call-graph analysis, as JSON text."""
    outputs = []
    for ref, digest, parsed in _each_parsed(batch):
        out = FileOutput(ref.path, digest)
        if isinstance(parsed, ParsedFile):
            facts = extract_call_facts(parsed.tree, ref.module, ref.path, ref.is_package)
            out.add(Table.CALL_FACTS, _CallFacts(ref.path, ref.module, facts_to_json(facts)))
        outputs.append(out)
    return outputs
