"""What a comment tells tools: pragmas with their codes, and task tags.

A comment is read as segments, one after each `#` (`# type: ignore[x]  # noqa: E501` holds two);
a pragma starts a segment (after blanks), as the tools find them, with their case rules:

| pragma | written | codes | case |
|---|---|---|---|
| type_ignore | `type: ignore`, `type:ignore[attr-defined, misc]` | in brackets | exact (as CPython's tokenizer, mypy, pyright) |
| pyright_ignore | `pyright: ignore[reportX]` | in brackets | exact |
| noqa | `noqa`, `noqa: E501,W291`, `NoQA:E501 W291` | after a colon right after `noqa` (flake8: `# noqa E501` is a bare noqa) | any |
| noqa_file | `flake8: noqa`, `ruff: noqa: F401` | ruff's, after a colon | any |
| no_cover / no_branch | `pragma: no cover`, `PRAGMA nocover`, `pragma: no branch` | none | coverage.py's default regexes |
| fmt_off / fmt_on / fmt_skip | `fmt: off`, `fmt:skip` (alone in its segment) | none | exact |
| nosec | `nosec`, `nosec B602, B607`, `nosec: subprocess_without_shell_equals_true` | bandit test ids (`B` and digits) or names (with `_`) | exact |
| pylint_disable / pylint_disable_next / pylint_enable / pylint_skip_file | `pylint: disable=W0611,unused-import` (anywhere in its segment, as pylint) | after `=` | exact |

Codes are kept as written; an empty list means every code (a bare pragma).  The same pragma twice
in one comment merges its codes.  A task tag (TODO, FIXME, XXX, HACK, any case, stored upper
case) counts only as the first word of the comment, or right after a pragma (in its segment or
as the next segment's first word); its text runs to the next pragma or the comment's end.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum


class Pragma(StrEnum):
    TYPE_IGNORE = "type_ignore"
    PYRIGHT_IGNORE = "pyright_ignore"
    NOQA = "noqa"
    NOQA_FILE = "noqa_file"
    NO_COVER = "no_cover"
    NO_BRANCH = "no_branch"
    FMT_OFF = "fmt_off"
    FMT_ON = "fmt_on"
    FMT_SKIP = "fmt_skip"
    NOSEC = "nosec"
    PYLINT_DISABLE = "pylint_disable"
    PYLINT_DISABLE_NEXT = "pylint_disable_next"
    PYLINT_ENABLE = "pylint_enable"
    PYLINT_SKIP_FILE = "pylint_skip_file"


class TaskTag(StrEnum):
    TODO = "TODO"
    FIXME = "FIXME"
    XXX = "XXX"
    HACK = "HACK"


@dataclass(frozen=True, slots=True)
class CommentFacts:
    """The pragmas of one comment (pragma, codes), in order, and its task tag with its text."""

    pragmas: tuple[tuple[Pragma, tuple[str, ...]], ...]
    tag: TaskTag | None = None
    tag_text: str | None = None


_NO_FACTS = CommentFacts(())

_BRACKETED = r"(?:\[(?P<codes>[^\]#]*)\])?"
# CPython: `type: ignore` then the end or an ASCII character that is not alphanumeric; mypy and
# pyright: optional codes in brackets
_TYPE_IGNORE = re.compile(r"type:[ \t]*ignore" + _BRACKETED + r"(?=$|[^\w\[])", re.ASCII)
_PYRIGHT_IGNORE = re.compile(r"pyright:[ \t]*ignore" + _BRACKETED + r"(?=$|\s)")
# flake8: the word (any case), then codes only after a colon right after it; ruff allows more blanks
_CODE = r"[A-Za-z]+[0-9]+"
_CODE_LIST = rf"(?P<codes>{_CODE}(?:[,\s]+{_CODE})*)"
_NOQA = re.compile(rf"noqa(?![\w-])(?::\s*{_CODE_LIST})?", re.IGNORECASE)
_NOQA_FILE = re.compile(rf"(?:flake8|ruff)[:=]\s*noqa(?![\w-])(?::\s*{_CODE_LIST})?", re.IGNORECASE)
# coverage.py: `#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(cover|COVER)`, and `... (branch|BRANCH)`
_COVERAGE = re.compile(r"(?:pragma|PRAGMA)[:\s]?\s*(?:no|NO)\s*(?P<what>cover|COVER|branch|BRANCH)")
_FMT = re.compile(r"fmt:[ \t]*(?P<what>off|on|skip)[ \t]*$")
_NOSEC = re.compile(r"nosec(?![\w-]):?(?P<codes>[^#]*)")
_NOSEC_CODE = re.compile(r"^(?:[Bb]\d+|[a-z\d]+(?:_[a-z\d]+)+)$")
_PYLINT = re.compile(r"\bpylint:[ \t]*(?P<body>[^;#]*)")
_PYLINT_OPTION = re.compile(
    r"(?P<key>disable-next|disable-msg|disable|enable-msg|enable|skip-file)\b[ \t]*(?:=|$|(?=,))"
)
_PYLINT_KIND = {
    "disable": Pragma.PYLINT_DISABLE,
    "disable-msg": Pragma.PYLINT_DISABLE,
    "disable-next": Pragma.PYLINT_DISABLE_NEXT,
    "enable": Pragma.PYLINT_ENABLE,
    "enable-msg": Pragma.PYLINT_ENABLE,
    "skip-file": Pragma.PYLINT_SKIP_FILE,
}
_TAG = re.compile(r"(?P<tag>todo|fixme|xxx|hack)(?![\w-])", re.IGNORECASE)
_TAG_TEXT_LEAD = " \t:-"


def _split_codes(text: str | None, separators: str = r"[,\s]+") -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(code for code in re.split(separators, text.strip()) if code)


def _segment_pragmas(segment: str) -> tuple[list[tuple[Pragma, tuple[str, ...]]], int]:
    """The pragmas starting `segment` (the text after one `#`) and where what follows them starts
    (0: no pragma)."""
    body = segment.lstrip(" \t\f")
    lead = len(segment) - len(body)
    if m := _TYPE_IGNORE.match(body):
        return [(Pragma.TYPE_IGNORE, _split_codes(m["codes"], r"\s*,\s*"))], lead + m.end()
    if m := _PYRIGHT_IGNORE.match(body):
        return [(Pragma.PYRIGHT_IGNORE, _split_codes(m["codes"], r"\s*,\s*"))], lead + m.end()
    if m := _NOQA.match(body):
        return [(Pragma.NOQA, _split_codes(m["codes"]))], lead + m.end()
    if m := _NOQA_FILE.match(body):
        return [(Pragma.NOQA_FILE, _split_codes(m["codes"]))], lead + m.end()
    if m := _COVERAGE.match(body):
        kind = Pragma.NO_COVER if m["what"].lower() == "cover" else Pragma.NO_BRANCH
        return [(kind, ())], lead + m.end()
    if m := _FMT.match(body):
        return [(Pragma(f"fmt_{m['what']}"), ())], lead + m.end()
    if m := _NOSEC.match(body):
        codes = tuple(c for c in _split_codes(m["codes"]) if _NOSEC_CODE.match(c))
        return [(Pragma.NOSEC, codes)], lead + m.end()
    if m := _PYLINT.search(body):
        found = _pylint_options(m["body"])
        if found:
            return found, lead + m.end()
    return [], 0


def _pylint_options(body: str) -> list[tuple[Pragma, tuple[str, ...]]]:
    """`disable=a, b` / `disable-next=c` / `enable=d` / `skip-file`, several in one pragma."""
    keys = list(_PYLINT_OPTION.finditer(body))
    found = []
    for i, m in enumerate(keys):
        if i == 0 and body[: m.start()].strip():
            return []  # not an option where pylint expects one
        value = body[m.end() : keys[i + 1].start() if i + 1 < len(keys) else len(body)]
        codes = tuple(c for c in _split_codes(value, r"\s*,\s*") if c)
        found.append((_PYLINT_KIND[m["key"]], codes))
    return found


@functools.lru_cache(maxsize=8192)
def parse_comment(text: str) -> CommentFacts:
    """The pragmas and task tag of one comment's text (with its leading `#`)."""
    segments = text.split("#")[1:]
    if not segments:
        return _NO_FACTS
    pragmas: dict[Pragma, tuple[str, ...] | None] = {}
    order: list[Pragma] = []
    tag: TaskTag | None = None
    tag_text: str | None = None
    tag_from: tuple[int, int] | None = None  # (segment, offset) where the tag's text starts
    after_pragma = True  # the comment's start counts as "after a pragma" for a tag
    pragma_segments: list[int] = []
    for index, segment in enumerate(segments):
        found, rest = _segment_pragmas(segment)
        for kind, codes in found:
            if kind not in pragmas:
                order.append(kind)
                pragmas[kind] = codes
            else:
                old = pragmas[kind]
                pragmas[kind] = () if not old or not codes else (*old, *(c for c in codes if c not in old))
        if found:
            pragma_segments.append(index)
        if tag is None:
            start = rest if found else (0 if after_pragma else None)
            if start is not None:
                candidate = segment[start:].lstrip(" \t\f")
                if m := _TAG.match(candidate):
                    tag = TaskTag(m["tag"].upper())
                    tag_from = (index, len(segment) - len(candidate) + m.end())
        after_pragma = bool(found)
    if tag is not None and tag_from is not None:
        index, offset = tag_from
        end = next((i for i in pragma_segments if i > index), len(segments))
        tag_text = "#".join([segments[index][offset:], *segments[index + 1 : end]]).strip().lstrip(_TAG_TEXT_LEAD)
        tag_text = tag_text.rstrip() or None
    return CommentFacts(tuple((kind, pragmas[kind] or ()) for kind in order), tag, tag_text)
