"""The tree-sitter Python parser, and the bytes it is given.

One parser per process (`python_parser`), shared by everything that parses with tree-sitter:
cst_ingest, and the git-history outlines where `ast` cannot parse a version.

`prepare_source` turns a file's bytes into what tree-sitter parses so that its positions are the
ones Python's `ast` gives (line 1-based, column in UTF-8 bytes of the decoded line): a file in
another encoding (PEP 263 cookie) is re-encoded as UTF-8, a UTF-8 byte-order mark dropped, and a
lone `\\r` (a line break to Python, not to tree-sitter) made a `\\n` of the same length.  Bytes that
are not valid in the file's encoding are kept as they are: tree-sitter parses them all the same,
the texts taken from them get U+FFFD, and `encoding_error` says where the first one is.
"""

from __future__ import annotations

import codecs
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Any

_PARSER: Any = None
_LANGUAGE: Any = None
_LONE_CR = re.compile(rb"\r(?!\n)")
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=]", re.MULTILINE)


def python_language() -> Any:
    """tree-sitter-python's `Language` (loaded once per process)."""
    global _LANGUAGE
    if _LANGUAGE is None:
        import tree_sitter_python
        from tree_sitter import Language

        _LANGUAGE = Language(tree_sitter_python.language())
    return _LANGUAGE


def python_parser() -> Any:
    """The process's tree-sitter parser for Python (tree-sitter parses any version's syntax and
    recovers from errors: it never raises on bad source)."""
    global _PARSER
    if _PARSER is None:
        from tree_sitter import Parser

        _PARSER = Parser(python_language())
    return _PARSER


@dataclass(frozen=True, slots=True)
class Source:
    """What tree-sitter parses, and where (line, col) the first undecodable byte is, if any."""

    data: bytes
    encoding_error: tuple[int, int, str] | None = None


def prepare_source(data: bytes) -> Source:
    """The bytes to parse for `data` (see the module docstring)."""
    if b"\r" in data:
        data = _LONE_CR.sub(b"\n", data)
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    head = data[: second if second >= 0 else len(data)]  # a coding cookie is on line 1 or 2
    if data.startswith(codecs.BOM_UTF8) or _COOKIE.search(head):
        return _transcode(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Source(data, _where(data, exc.start, "utf-8"))
    return Source(data)


def _transcode(data: bytes) -> Source:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except (SyntaxError, LookupError):  # an unknown codec, or a cookie line that is not UTF-8
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        return Source(data, _where(data, exc.start, encoding))
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(text.encode("utf-8", "surrogateescape"))


def _where(data: bytes, at: int, encoding: str) -> tuple[int, int, str]:
    line = data.count(b"\n", 0, at) + 1
    col = at - data.rfind(b"\n", 0, at)  # 1-based, as core.parse_errors' other rows
    return line, col, f"not valid {encoding} at byte {at}: texts from these bytes hold U+FFFD"
