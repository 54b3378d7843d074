"""A Python source file's text and lines as the parse sees them (no import beyond the standard
library: the server reads files through it too)."""

from __future__ import annotations

import io
import tokenize


def decode_source(data: bytes, *, strict: bool = False) -> str:
    """The source text of `data` (by its coding cookie or BOM); undecodable bytes are replaced
    unless `strict`, which raises UnicodeDecodeError for them."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except (SyntaxError, LookupError):  # a line it reads for a cookie is not UTF-8, or no such codec
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        if strict:
            raise
        return data.decode(encoding, "replace")


def source_lines(text: str) -> list[str]:
    """`text` split where Python splits lines (`\\n`, `\\r\\n`, `\\r`), so that line N is the
    tree's line N.  Not `str.splitlines`: it also splits at `\\x0c`, `\\x85`, `\\u2028` and
    others, which string literals and comments may hold, shifting every line after them."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def python_lines(data: bytes) -> list[str]:
    """The lines of source file `data` as the parse numbers them (`decode_source`, undecodable
    bytes replaced; `source_lines`)."""
    return source_lines(decode_source(data))
