"""A document's occurrences read straight from their protobuf bytes with numpy.

Reading 840 k `Occurrence` messages through the generated class costs a Python step per field
of each.  Here a `Document` is parsed with a lighter type (`DocumentLite`: the same wire format,
the occurrences left as raw bytes, the symbols still `scip.SymbolInformation`), and the
occurrences' fields (range, symbol, symbol_roles; the others skipped) are decoded for all of a
document's occurrences at once, field by field: varints with vectorised byte reads, symbols
gathered into one Arrow string array.  Anything the fast path does not expect (a field repeated
where the generated class would merge it, an unpacked range, a group, a truncated message) gives
None, and the caller uses the generated class instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from codeintel.ingestion.scip import scip_pb2

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
_RANGE, _SYMBOL, _ROLES = 1, 2, 3
_PAD = 32  # zero bytes after the data: reads past a field's end stay inside the buffer


def _lite_class() -> Any:
    """`DocumentLite`: `scip.Document` with `occurrences` as `repeated bytes`."""
    pool = descriptor_pool.Default()
    name = "codeintel/scip_lite.proto"
    try:
        pool.FindFileByName(name)
    except KeyError:
        f = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(
            name=name, package="codeintel_scip_lite", syntax="proto3", dependency=[scip_pb2.DESCRIPTOR.name]
        )
        message = proto.message_type.add(name="DocumentLite")
        message.field.add(name="relative_path", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
        message.field.add(name="occurrences", number=2, type=f.TYPE_BYTES, label=f.LABEL_REPEATED)
        message.field.add(
            name="symbols", number=3, type=f.TYPE_MESSAGE, label=f.LABEL_REPEATED, type_name=".scip.SymbolInformation"
        )
        message.field.add(name="language", number=4, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
        message.field.add(name="position_encoding", number=6, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("codeintel_scip_lite.DocumentLite"))


DocumentLite = _lite_class()


@dataclass(frozen=True, slots=True)
class RawOccurrences:
    """A document's occurrences, in index order; `ranges` has -1 where a range is missing."""

    range_values: np.ndarray  # number of values of each range
    ranges: np.ndarray  # (n, 4): the first four values of each range
    symbols: pa.StringArray
    roles: np.ndarray


def _varints(buf: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The varints starting at `at` and where each ends (None: one runs over 10 bytes)."""
    byte = buf[at]
    value = (byte & 0x7F).astype(np.uint64)
    end = at + 1
    more = np.flatnonzero(byte >= 0x80)
    shift = 7
    while more.size:
        if shift > 63:
            return None
        byte = buf[at[more] + shift // 7]
        value[more] |= (byte & 0x7F).astype(np.uint64) << np.uint64(shift)
        end[more] += 1
        more = more[byte >= 0x80]
        shift += 7
    return value, end


def read_occurrences(blobs: list[bytes]) -> RawOccurrences | None:
    """Decode serialized `Occurrence` messages (None: something the fast path does not handle)."""
    n = len(blobs)
    lengths = np.fromiter(map(len, blobs), np.int64, n)
    buf = np.frombuffer(b"".join(blobs) + bytes(_PAD), np.uint8)
    stops = np.cumsum(lengths)
    pos = stops - lengths
    range_at = np.full(n, -1, np.int64)
    range_end = np.zeros(n, np.int64)
    symbol_at = np.zeros(n, np.int64)
    symbol_len = np.zeros(n, np.int64)
    roles = np.zeros(n, np.int64)
    seen = np.zeros((n, 4), np.bool_)  # a singular field twice would need merging: not here
    live = np.flatnonzero(pos < stops)
    while live.size:
        read = _varints(buf, pos[live])
        if read is None:
            return None
        key, after = read
        field, wire = (key >> np.uint64(3)).astype(np.int64), (key & np.uint64(7)).astype(np.int64)
        if (after > stops[live]).any() or not field.all():
            return None  # a key past its message; field number 0
        mine = np.minimum(field, 3) * (field <= 3)
        if seen[live, mine][mine > 0].any():
            return None
        seen[live, mine] = mine > 0
        step = np.zeros(live.size, np.int64)
        varint, delimited = wire == _VARINT, wire == _LENGTH_DELIMITED
        if not (varint | delimited | (wire == _FIXED64) | (wire == _FIXED32)).all():
            return None  # groups
        if ((field == _RANGE) & ~delimited).any() or ((field == _SYMBOL) & ~delimited).any():
            return None  # an unpacked range; a symbol of the wrong type
        if ((field == _ROLES) & ~varint).any():
            return None
        step[wire == _FIXED64], step[wire == _FIXED32] = 8, 4
        values = _varints(buf, after[varint | delimited])
        if values is None:
            return None
        value, value_end = values
        at_varint = np.flatnonzero(varint | delimited)
        step[at_varint] = value_end - after[at_varint]
        lengths_here = np.where(delimited[at_varint], value.astype(np.int64), 0)
        step[at_varint] += lengths_here
        is_roles = varint[at_varint] & (field[at_varint] == _ROLES)
        roles[live[at_varint[is_roles]]] = value[is_roles].astype(np.int64)
        for number, at_out, len_out in ((_RANGE, range_at, range_end), (_SYMBOL, symbol_at, symbol_len)):
            chosen = delimited[at_varint] & (field[at_varint] == number)
            rows = live[at_varint[chosen]]
            at_out[rows] = value_end[chosen]
            len_out[rows] = lengths_here[chosen]
        pos[live] = after + step
        if (pos[live] > stops[live]).any():
            return None  # a field runs past its message
        live = live[pos[live] < stops[live]]
    roles = (roles & 0xFFFFFFFF).astype(np.uint32).view(np.int32).astype(np.int64)  # int32, as protobuf reads it
    counts, ranges = _ranges(buf, range_at, range_end)
    symbols = _strings(buf, symbol_at, symbol_len)
    if counts is None or ranges is None or symbols is None:
        return None
    return RawOccurrences(counts, ranges, symbols, roles)


def _ranges(buf: np.ndarray, at: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Each packed range's number of values and its first four values (as int32)."""
    n = len(at)
    ranges = np.full((n, 4), -1, np.int64)
    counts = np.zeros(n, np.int64)
    ends = at + length
    pos = at.copy()
    rows = np.flatnonzero((at >= 0) & (length > 0))
    k = 0
    while rows.size:
        read = _varints(buf, pos[rows])
        if read is None:
            return None, None
        value, end = read
        if k < 4:
            ranges[rows, k] = (value & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
        counts[rows] += 1
        pos[rows] = end
        if (end > ends[rows]).any():
            return None, None  # a value runs past its range
        rows = rows[end < ends[rows]]
        k += 1
    return counts, ranges


def _strings(buf: np.ndarray, at: np.ndarray, length: np.ndarray) -> pa.StringArray | None:
    """The byte ranges `buf[at : at + length]` as one Arrow string array (None: not UTF-8)."""
    offsets = np.concatenate(([0], np.cumsum(length))).astype(np.int64)
    total = int(offsets[-1])
    if total >= 2**31:
        return None
    index = np.repeat(at - offsets[:-1], length) + np.arange(total, dtype=np.int64)
    data = buf[index].tobytes()
    array = pa.StringArray.from_buffers(len(at), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return array
