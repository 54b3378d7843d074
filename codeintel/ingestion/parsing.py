"""Reading and parsing one source file safely.

Every way a file can be unusable (binary, too large, undecodable, a syntax error, nesting deep
enough to exhaust the parser's recursion limit) becomes a `ParseProblem` record, never an
exception: a bad source file is data.  The analysed code is parsed, never imported or run.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from codeintel.ingestion.scan import hash_bytes


class ProblemKind(StrEnum):
    MISSING = "missing"
    BINARY = "binary"
    TOO_LARGE = "too_large"
    ENCODING = "encoding"
    SYNTAX = "syntax"
    RECURSION = "recursion"


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Why a file could not be parsed (a row of core.parse_errors)."""

    path: str
    kind: str
    line: int | None
    col: int | None
    message: str


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A parsed file: its tree, its text lines and the hash of the bytes that were parsed."""

    path: str
    hash: str
    tree: ast.Module
    lines: list[str]


def read_and_parse(root: Path, path: str, max_size: int) -> tuple[str | None, ParsedFile | ParseProblem]:
    """Read `root/path` and parse it; returns (hash of the bytes read, parsed file or problem)."""
    try:
        data = (root / path).read_bytes()
    except OSError as exc:
        return None, ParseProblem(path, ProblemKind.MISSING, None, None, f"cannot read: {exc.strerror or exc}")
    digest = hash_bytes(data)
    return digest, parse_bytes(path, data, max_size, digest)


def parse_bytes(path: str, data: bytes, max_size: int, digest: str | None = None) -> ParsedFile | ParseProblem:
    """Parse Python source bytes (honouring a PEP 263 coding cookie)."""
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in analysed code
            tree = ast.parse(data, filename=path)
    except SyntaxError as exc:
        kind = ProblemKind.ENCODING if _is_decode_error(exc) else ProblemKind.SYNTAX
        return ParseProblem(path, kind, exc.lineno, exc.offset, exc.msg or str(exc))
    except (UnicodeDecodeError, LookupError) as exc:
        return ParseProblem(path, ProblemKind.ENCODING, None, None, f"not decodable: {exc}")
    except (RecursionError, MemoryError) as exc:
        return ParseProblem(path, ProblemKind.RECURSION, None, None, f"nesting too deep to parse: {exc}")
    except ValueError as exc:  # e.g. source with NUL past the sniffed prefix
        return ParseProblem(path, ProblemKind.BINARY, None, None, str(exc))
    text = _decode(data)
    return ParsedFile(path, digest or hash_bytes(data), tree, text.splitlines())


def _is_decode_error(exc: SyntaxError) -> bool:
    msg = (exc.msg or "").lower()
    return "decode" in msg or "codec" in msg or "encoding" in msg or "utf-8" in msg


def _decode(data: bytes) -> str:
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")
