"""scip/wire.py: occurrences decoded from their bytes read what the generated protobuf class reads,
and anything else falls back to the class."""

from __future__ import annotations

import pytest

from codeintel.ingestion.scip import scip_pb2
from codeintel.ingestion.scip.decode import _raw_occurrences
from codeintel.ingestion.scip.wire import DocumentLite, read_occurrences

Occ = scip_pb2.Occurrence


def _as_read(raw: object, i: int) -> tuple[int, list[int], str, int]:
    return (int(raw.range_values[i]), raw.ranges[i].tolist(), raw.symbols[i].as_py(), int(raw.roles[i]))  # type: ignore[attr-defined]


def _as_class_reads(blob: bytes) -> tuple[int, list[int], str, int]:
    o = Occ.FromString(blob)
    values = list(o.range)
    return (len(values), (values + [-1] * 4)[:4], o.symbol, o.symbol_roles)


CASES = [
    Occ(range=[3, 4, 9], symbol="scip-python python p 0 `m`/f().", symbol_roles=1),
    Occ(range=[0, 0, 2, 5], symbol="local 0"),
    Occ(range=[300_000, 70_000, 300_001, 2**31 - 1], symbol="big", symbol_roles=2**20),
    Occ(range=[1, 2, 3], symbol="n\u00e9gatif \U0001f40d", symbol_roles=-1),
    Occ(range=[1, 2, 3, 4, 5], symbol="five values"),
    Occ(symbol="no range"),
    Occ(range=[1, 2, 3]),
    Occ(
        range=[7, 1, 7, 9], symbol="with the rest", symbol_roles=8, override_documentation=["doc"], syntax_kind=6,
        diagnostics=[scip_pb2.Diagnostic(severity=1, code="c", message="m")], enclosing_range=[7, 0, 9, 0],
    ),
]  # fmt: skip


def test_the_fast_path_reads_every_field_as_the_generated_class() -> None:
    blobs = [o.SerializeToString() for o in CASES]
    raw = read_occurrences(blobs)
    assert raw is not None
    assert [_as_read(raw, i) for i in range(len(blobs))] == [_as_class_reads(b) for b in blobs]


@pytest.mark.parametrize(
    "blob",
    [
        Occ(range=[1, 2, 3], symbol="a").SerializeToString() * 2,  # the class merges: range twice as long
        b"\x08\x01\x08\x02\x08\x03\x12\x01a",  # an unpacked range
        Occ(range=[1, 2, 3], symbol="truncated").SerializeToString()[:-3],
        b"\x0b\x0c",  # a group
        b"\x12\x02\xff\xfe",  # a symbol that is not UTF-8
    ],
    ids=["field-twice", "unpacked-range", "truncated", "group", "not-utf8"],
)
def test_what_the_fast_path_does_not_expect_is_left_to_the_class(blob: bytes) -> None:
    assert read_occurrences([Occ(range=[1, 2, 3], symbol="ok").SerializeToString(), blob]) is None


def test_a_document_the_fast_path_declines_reads_as_the_class_reads_it() -> None:
    merged = Occ(range=[1, 2, 3], symbol="a").SerializeToString() * 2
    doc = scip_pb2.Document(relative_path="m.py", occurrences=[Occ(range=[5, 6, 7], symbol="b")])
    payload = doc.SerializeToString() + b"\x12" + bytes([len(merged)]) + merged
    raw = _raw_occurrences(DocumentLite.FromString(payload), payload)
    assert [_as_read(raw, i) for i in range(2)] == [
        (3, [5, 6, 7, -1], "b", 0),
        (6, [1, 2, 3, 1], "a", 0),
    ]
