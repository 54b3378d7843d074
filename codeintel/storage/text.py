"""Text that UTF-8 cannot hold, made storable: the one escaping used in every table.

Python strings may hold lone surrogates: a string literal such as `"\\udce2"`, or a file path
that is not UTF-8 (the OS gives its bytes back as surrogates, PEP 383).  DuckDB and Arrow store
UTF-8 only.  Every such code point is stored as its Python escape (`backslashreplace`): the
literal `"\\udce2"` is stored as the six characters `\\udce2`, the path byte 0xE9 of `caf\\xe9.py`
as `caf\\udce9.py`.  Valid text, non-ASCII included, is stored as it is.  `fs_path` turns a
stored path back into the name the file system knows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

_SURROGATE_ESCAPE = re.compile(r"\\u(d[89a-f][0-9a-f]{2})")


def safe_text(text: str) -> str:
    """`text` if UTF-8 can hold it, else with every code point it cannot hold escaped."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def safe_value(value: Any) -> Any:
    """`safe_text` applied to a string, or to each string of a list or tuple."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list | tuple):
        return [safe_value(v) for v in value]
    return value


def arrow_array(values: Sequence[Any], type: pa.DataType) -> pa.Array:
    """`pa.array(values, type)`, escaping text UTF-8 cannot hold (see the module docstring).

    The common case costs nothing extra: values are only cleaned when Arrow refuses them.
    """
    try:
        return pa.array(values, type=type)
    except UnicodeEncodeError:
        return pa.array([safe_value(v) for v in values], type=type)


def fs_path(stored: str) -> str:
    """The file-system name of a path as stored: escaped surrogates turned back into the
    surrogates that stand for the name's non-UTF-8 bytes."""
    if "\\u" not in stored:
        return stored
    return _SURROGATE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), stored)
