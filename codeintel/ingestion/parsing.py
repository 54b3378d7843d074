"""Reading and parsing one source file safely.

Every way a file can be unusable (binary, too large, undecodable, a syntax error, syntax newer
than the running Python, nesting deep enough to exhaust the parser's recursion limit) becomes a
`ParseProblem` record, never an exception: a bad source file is data.  So does an extractor that
fails on one file (`extractor_problem`).  The analysed code is parsed, never imported or run.
"""

from __future__ import annotations

import ast
import errno
import os
import stat
import sys
import traceback
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from codeintel.ingestion.newer_syntax import needed_python
from codeintel.ingestion.scan import hash_bytes
from codeintel.ingestion.source_text import decode_source, source_lines
from codeintel.storage.text import fs_path

RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


class ProblemKind(StrEnum):
    MISSING = "missing"
    BINARY = "binary"
    TOO_LARGE = "too_large"
    ENCODING = "encoding"
    SYNTAX = "syntax"
    UNSUPPORTED_SYNTAX = "unsupported_syntax"  # valid for a newer Python than the running one
    RECURSION = "recursion"
    EXTRACTOR_ERROR = "extractor_error"  # an extractor raised on this file
    WORKER_DIED = "worker_died"  # the worker process extracting this file died (killed, out of memory, a crash)


PARSE_STEP = "ast_ingest"  # the step whose rows say a file could not be parsed


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Why a file could not be parsed, or one step could not use it (a row of core.parse_errors).

    `step` is the step that could not use the file: `ast_ingest` for files that do not parse,
    the step whose extractor failed for `extractor_error`.  `needs_python` names the version an
    `unsupported_syntax` file needs; `error_type` the exception an extractor raised.
    """

    path: str
    kind: str
    line: int | None
    col: int | None
    message: str
    step: str = PARSE_STEP
    error_type: str | None = None
    needs_python: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A parsed file: its tree, its text lines and the hash of the bytes that were parsed."""

    path: str
    hash: str
    tree: ast.Module
    lines: list[str]


def read_and_parse(root: Path, path: str, max_size: int) -> tuple[str | None, ParsedFile | ParseProblem]:
    """Read `root/path` and parse it; returns (hash of the bytes read, parsed file or problem)."""
    data = read_source(root, path)
    if isinstance(data, ParseProblem):
        return None, data
    digest = hash_bytes(data)
    return digest, parse_bytes(path, data, max_size, digest)


def read_source(root: Path, path: str) -> bytes | ParseProblem:
    """The bytes of `root/path`, or a `missing` problem when it cannot be read."""
    try:
        return _read_regular_file(root / fs_path(path))
    except OSError as exc:
        return ParseProblem(path, ProblemKind.MISSING, None, None, f"cannot read: {exc.strerror or exc}")


def _read_regular_file(path: Path) -> bytes:
    """The bytes of `path` if it is still a regular file: the scan saw one, but it may have been
    replaced since (by a FIFO, whose reading would block forever, or a symlink: never followed)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return handle.read()


def parse_bytes(path: str, data: bytes, max_size: int, digest: str | None = None) -> ParsedFile | ParseProblem:
    """Parse Python source bytes (honouring a PEP 263 coding cookie)."""
    unusable = unusable_source(path, data, max_size)
    if unusable is not None:
        return unusable
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in analysed code
            tree = ast.parse(data, filename=path)
    except SyntaxError as exc:
        if _is_decode_error(exc):  # (a cookie's problem comes at line 0, column -1: no position)
            line, col = (exc.lineno, exc.offset) if exc.lineno else (None, None)
            return ParseProblem(path, ProblemKind.ENCODING, line, col, exc.msg or str(exc))
        return _syntax_problem(path, data, exc)
    except (UnicodeDecodeError, LookupError) as exc:
        return ParseProblem(path, ProblemKind.ENCODING, None, None, f"not decodable: {exc}")
    except (RecursionError, MemoryError) as exc:
        return ParseProblem(path, ProblemKind.RECURSION, None, None, f"nesting too deep to parse: {exc}")
    except ValueError as exc:  # e.g. source with NUL past the sniffed prefix
        return ParseProblem(path, ProblemKind.BINARY, None, None, str(exc))
    try:
        text = decode_source(data, strict=True)
    except UnicodeDecodeError as exc:  # in a comment: ast.parse lets it pass, Python refuses the file
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - data.rfind(b"\n", 0, exc.start)
        return ParseProblem(path, ProblemKind.ENCODING, line, col, f"not decodable: {exc}")
    return ParsedFile(path, digest or hash_bytes(data), tree, source_lines(text))


def unusable_source(path: str, data: bytes, max_size: int) -> ParseProblem | None:
    """Why `data` is no source file to parse at all (too large, binary), or None."""
    if len(data) > max_size:
        return ParseProblem(
            path,
            ProblemKind.TOO_LARGE,
            None,
            None,
            f"{len(data)} bytes is over the {max_size}-byte limit (max_file_size)",
        )
    if b"\0" in data:
        return ParseProblem(path, ProblemKind.BINARY, None, None, "binary content (NUL byte)")
    return None


def _syntax_problem(path: str, data: bytes, exc: SyntaxError) -> ParseProblem:
    """A real syntax error, or (`unsupported_syntax`) syntax of a newer Python than this one."""
    needs = needed_python(decode_source(data), exc)
    if needs is None:
        return ParseProblem(path, ProblemKind.SYNTAX, exc.lineno, exc.offset, exc.msg or str(exc))
    message = (
        f"uses Python {needs} syntax ({exc.msg} under Python {RUNNING_PYTHON}): "
        f"run CodeIntel with Python {needs} or newer to index it"
    )
    return ParseProblem(path, ProblemKind.UNSUPPORTED_SYNTAX, exc.lineno, exc.offset, message, needs_python=needs)


def extractor_problem(path: str, step: str, exc: BaseException) -> ParseProblem:
    """The row for an extractor that raised `exc` on `path`: the step keeps going without it.

    The line is the one of the innermost syntax node the failing code was looking at, where a
    frame of the traceback holds one.
    """
    if isinstance(exc, RecursionError):
        return ParseProblem(
            path, ProblemKind.RECURSION, None, None, "nesting too deep to analyse", step, "RecursionError"
        )
    line = col = None
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
        node = next((v for v in frame.f_locals.values() if isinstance(v, ast.stmt | ast.expr)), None)
        if node is not None:
            line, col = node.lineno, node.col_offset + 1
            break
    message = str(exc)[:2000] or type(exc).__name__
    return ParseProblem(path, ProblemKind.EXTRACTOR_ERROR, line, col, message, step, type(exc).__name__)


def _is_decode_error(exc: SyntaxError) -> bool:
    msg = (exc.msg or "").lower()
    return "decode" in msg or "codec" in msg or "encoding" in msg or "utf-8" in msg
