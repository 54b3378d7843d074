"""Telling syntax that is newer than the running Python from a real syntax error.

CodeIntel parses with the running interpreter's `ast`.  A file that fails to parse only because
it uses syntax of a newer Python is valid code, not a broken file: `needed_python` says which
version it needs, or None when the error is a real one (or cannot be told apart).

How: the constructs a newer Python added are blanked out, keeping every line where it was
(PEP 695 type parameters and `type` statements: 3.12, or 3.13 with PEP 696 defaults; PEP 750
t-strings: 3.14); if what remains parses, the file needs the newest version among the
constructs blanked.  Errors that only a newer grammar accepts and that cannot be blanked are
told by the interpreter's message (PEP 701 f-strings: 3.12; PEP 758 unparenthesised `except`
lists: 3.14), the file's first error or the first one left once the others are blanked.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
import warnings

Version = tuple[int, int]

# messages of this interpreter for syntax a newer one accepts, and the version that does
_NEWER_BY_MESSAGE: tuple[tuple[Version, tuple[str, ...]], ...] = (
    (
        (3, 12),
        (
            "f-string: expecting '}'",
            "f-string expression part cannot include a backslash",
            "f-string expression part cannot include '#'",
            "f-string: unmatched",
            "f-string: unterminated string",
            "f-string: single '}' is not allowed",
        ),
    ),
    ((3, 14), ("multiple exception types must be parenthesized",)),
)
_T_PREFIXES = {"t", "tr", "rt"}


def needed_python(text: str, error: SyntaxError, running: Version | None = None) -> str | None:
    """The Python version ("3.12") `text` needs, if its syntax error is only newer syntax."""
    now: Version = running or (sys.version_info.major, sys.version_info.minor)
    by_message = _newer_by_message(error, now)
    if by_message is not None:
        return _dotted(by_message)
    try:
        blanked, needed = _blank_newer_constructs(text)
    except (tokenize.TokenError, SyntaxError, ValueError):  # IndentationError is a SyntaxError
        return None
    if needed is None or needed <= now:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(blanked)
    except SyntaxError as exc:
        # what is left may still be newer syntax told by its message (a PEP 701 f-string in a
        # file with type parameters: the first error was the type parameters')
        later = _newer_by_message(exc, now)
        if later is None:
            return None
        needed = max(needed, later)
    except (ValueError, RecursionError, MemoryError):
        return None
    return _dotted(needed)


def _newer_by_message(error: SyntaxError, now: Version) -> Version | None:
    """The version whose grammar accepts what this interpreter reports as `error`, if newer than `now`."""
    message = error.msg or ""
    for version, messages in _NEWER_BY_MESSAGE:
        if version > now and message.startswith(messages):
            return version
    return None


def _dotted(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def _blank_newer_constructs(text: str) -> tuple[str, Version | None]:
    """`text` with newer constructs blanked, and the newest version they need (lines stay where
    they were, but for type parameters over several lines: they end up on the line they start)."""
    # lines as the tokenizer counts them (\n, \r\n, \r): str.splitlines would also split at
    # \x0c, \u2028, ... inside strings and comments, and the tokens' rows would not match
    lines = io.StringIO(text, newline=None).readlines()
    readline = io.StringIO("".join(lines)).readline
    tokens = [t for t in tokenize.generate_tokens(readline) if t.type != tokenize.COMMENT]
    newest: Version | None = None

    def need(version: Version) -> None:
        nonlocal newest
        newest = version if newest is None or version > newest else newest

    line_start = True
    for i, tok in enumerate(tokens):
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
            line_start = tok.type != tokenize.NL or line_start
            continue
        starts_line, line_start = line_start, False
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is None:
            break
        if tok.type == tokenize.NAME and tok.string in ("def", "class") and nxt.type == tokenize.NAME:
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            if after is not None and after.string == "[":
                need((3, 13) if _blank_brackets(lines, tokens, i + 2) else (3, 12))
        elif starts_line and tok.string == "type" and nxt.type == tokenize.NAME:
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            if after is not None and after.string in ("=", "["):
                if after.string == "[":
                    need((3, 13) if _blank_brackets(lines, tokens, i + 2) else (3, 12))
                else:
                    need((3, 12))
                _move_name_over_keyword(lines, tok, nxt)
        elif tok.string.lower() in _T_PREFIXES and nxt.type == tokenize.STRING and nxt.start == tok.end:
            _drop_t_prefix(lines, tok)
            need((3, 14))
    return "".join(lines), newest


def _blank_brackets(lines: list[str], tokens: list[tokenize.TokenInfo], open_at: int) -> bool:
    """Blank the bracketed type parameters starting at token `open_at`; True if one has a default."""
    depth, has_default = 0, False
    for tok in tokens[open_at:]:
        if tok.string in ("[", "(", "{"):
            depth += 1
        elif tok.string in ("]", ")", "}"):
            depth -= 1
        elif tok.string == "=" and depth == 1:
            has_default = True
        if depth == 0:
            # all of it, comments and line breaks too: parameters over several lines join the
            # line they start on (without the brackets a line break there would end the line)
            _blank(lines, tokens[open_at].start, tok.end)
            return has_default
    raise ValueError("unclosed type parameters")


def _blank(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> None:
    """Spaces for everything from `start` to `end`, line breaks included."""
    for row in range(start[0], end[0] + 1):
        line = lines[row - 1]
        a = start[1] if row == start[0] else 0
        b = end[1] if row == end[0] else len(line)
        lines[row - 1] = line[:a] + " " * (b - a) + line[b:]


def _move_name_over_keyword(lines: list[str], keyword: tokenize.TokenInfo, name: tokenize.TokenInfo) -> None:
    """`type X = ...` -> `X      = ...` (an assignment: the same names bound, the same lines)."""
    row, col = keyword.start
    line = lines[row - 1]
    width = name.end[1] - col
    lines[row - 1] = line[:col] + name.string.ljust(width) + line[name.end[1] :]


def _drop_t_prefix(lines: list[str], prefix: tokenize.TokenInfo) -> None:
    """`t"..."` -> ` "..."`, `rt"..."` -> ` r"..."`: a plain string where the template was."""
    row, col = prefix.start
    line = lines[row - 1]
    rest = "".join(c for c in prefix.string if c.lower() != "t")
    lines[row - 1] = line[:col] + rest.rjust(len(prefix.string)) + line[prefix.end[1] :]
