"""Decode a SCIP index into Arrow tables, one document at a time.

The index is read as a stream: the top-level `Index` fields are walked by tag and length in the
raw bytes and each `Document` is parsed on its own (as `wire.DocumentLite`: its occurrences
decoded from their bytes in bulk, its symbols with the generated class), so neither the whole
`Index` message nor one occurrence is ever a Python object.  Ranges are converted to CodeIntel's
positions (line 1-based, column 0-based in UTF-8 bytes, end exclusive) with numpy, using the
file's text only on its non-ASCII lines; hover docs lose machine paths (the repository root, the
indexer's scratch directory, `file://` URIs).  Each document's symbols and occurrences go to disk
(`spill.Spill`) until the write.  Rows come out sorted, so the tables never depend on the
indexer's document order.

A large index is decoded in parts, side by side, in the step's worker processes: the step's
process walks the top-level fields only (each document's offset, length and path), and each
worker reads its documents from the file and spills them to files of its own, which are joined
without copying.  sqlalchemy's 92 MB index: 4.4 s in one process, 2.2 s in two workers.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codeintel.analysis.enclosing import EnclosingIndex
from codeintel.ingestion.mapping import Mapper
from codeintel.ingestion.parsing import read_source
from codeintel.ingestion.scip import scip_pb2
from codeintel.ingestion.scip.spill import Spill
from codeintel.ingestion.scip.symbols import ParsedSymbol, SymbolKind, parse_symbol
from codeintel.ingestion.scip.wire import DocumentLite, RawOccurrences, read_occurrences
from codeintel.storage.catalog import Table, spec_of

logger = logging.getLogger(__name__)

_DEFINITION = 1
_LENGTH_DELIMITED = 2
_DOCUMENTS, _EXTERNALS = 2, 3  # of an Index
_OCCURRENCES, _SYMBOLS = 2, 3  # of a Document
_ENCODINGS = {0: "unspecified", 1: "utf-8", 2: "utf-16", 3: "utf-32"}
# a definition nested in a function is no part of its module's interface
_INTERFACE_KINDS = {
    SymbolKind.MODULE, SymbolKind.CLASS, SymbolKind.FUNCTION, SymbolKind.METHOD, SymbolKind.ATTRIBUTE,
    SymbolKind.VARIABLE, SymbolKind.TYPE_PARAMETER,
}  # fmt: skip


class IndexDecodeError(ValueError):
    """The index file is not a SCIP index (truncated, or not protobuf)."""


@dataclass(slots=True)
class PathStripper:
    """Removes machine paths from text: `file://` URIs and absolute prefixes become relative."""

    prefixes: tuple[str, ...]
    _pattern: re.Pattern[str] | None = field(default=None, init=False)
    _roots: tuple[str, ...] = field(default=(), init=False)
    _common: str = field(default="", init=False)  # what every root starts with

    def __post_init__(self) -> None:
        roots = sorted({p.rstrip("/") for p in self.prefixes if p and p != "/"}, key=len, reverse=True)
        if roots:
            alternatives = "|".join(re.escape(r) for r in roots)
            self._pattern = re.compile(rf"(?:file://)?(?:{alternatives})/?")
            self._roots = tuple(roots)
            low, high = min(roots), max(roots)  # their common prefix is every root's
            self._common = low[: next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b), len(low))]

    def __call__(self, text: str) -> str:
        # every match holds a root: a substring test skips the regex for most texts
        if self._pattern is None or not text or self._common not in text or not any(r in text for r in self._roots):
            return text
        return self._pattern.sub("", text)


_BATCH_ROWS = 65_536


class _Batches:
    """Rows of one table gathered column by column and turned into Arrow every `_BATCH_ROWS`
    rows, so that the decoded index is held as Arrow, not as Python objects."""

    def __init__(self, table: str, columns: tuple[str, ...] | None = None) -> None:
        schema = spec_of(table).arrow_schema
        self.schema = pa.schema([schema.field(c) for c in columns]) if columns else schema
        self.columns: list[list[object]] = [[] for _ in self.schema]
        self.batches: list[pa.RecordBatch] = []

    def add(self, row: tuple[object, ...]) -> None:
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)
        if len(self.columns[0]) >= _BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.columns[0]:
            arrays = [pa.array(c, f.type) for c, f in zip(self.columns, self.schema, strict=True)]
            self.batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
            self.columns = [[] for _ in self.schema]

    def extend(self, other: _Batches) -> None:
        """Add `other`'s rows after these."""
        self.flush()
        other.flush()
        self.batches.extend(other.batches)

    def table(self) -> pa.Table:
        self.flush()
        return pa.Table.from_batches(self.batches, schema=self.schema)


_OCCURRENCE_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.dictionary(pa.int32(), pa.string()))
        if f.name in ("path", "symbol", "enclosing_goid")
        else f
        for f in spec_of(Table.SCIP_OCCURRENCES).arrow_schema
    ]
)  # paths, symbols and GOIDs repeat: dictionary-encoded, the decoded index stays small

Enclosing = Callable[[str, list[int]], list[str | None]]  # (path, lines) -> enclosing GOIDs


def _occurrence_batch(path: str, occ: _Occurrences, enclosing: Enclosing | None) -> pa.RecordBatch:
    """One document's occurrences (sorted by line, col, symbol, end, roles) as a batch; the
    enclosing GOIDs are looked up once per distinct line."""
    n = len(occ.line)
    if enclosing is not None and n:
        lines, at = np.unique(occ.line, return_inverse=True)
        per_line = pa.array(enclosing(path, lines.tolist()), pa.string()).dictionary_encode()
        goids: pa.Array = per_line.take(pa.array(at.astype(np.int32)))
    else:
        goids = pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))
    arrays = [
        pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([path], pa.string())),
        occ.symbol, pa.array(occ.line, pa.int32()), pa.array(occ.col, pa.int32()),
        pa.array(occ.end_line, pa.int32()), pa.array(occ.end_col, pa.int32()),
        pa.array(occ.roles & _DEFINITION == _DEFINITION), pa.array(occ.roles, pa.int32()), goids,
    ]  # fmt: skip
    return pa.RecordBatch.from_arrays(arrays, schema=_OCCURRENCE_SCHEMA)


@dataclass(slots=True)
class DecodedIndex:
    """What one indexer run gave: documents and externals as Arrow, each document's symbols
    (sorted by symbol) and occurrences (sorted) spilled to disk under its path."""

    symbols: Spill
    occurrences: Spill
    documents: _Batches = field(default_factory=lambda: _Batches(Table.SCIP_DOCUMENTS))
    externals: dict[str, tuple[object, ...]] = field(default_factory=dict)

    @classmethod
    def spilled_to(cls, spill_dir: Path) -> DecodedIndex:
        return cls(
            Spill(spill_dir / "symbols.arrows", _SYMBOL_SCHEMA),
            Spill(spill_dir / "occurrences.arrows", _OCCURRENCE_SCHEMA),
        )


@dataclass(frozen=True, slots=True)
class DecodedTables:
    """A decoded index as the tables store it: documents and externals sorted; symbols and
    occurrences read back from disk in path order."""

    documents: pa.Table
    symbols: Spill
    externals: pa.Table
    occurrences: Spill


def _field_heads(stream: BinaryIO) -> Iterator[tuple[int, int, int]]:
    """(field number, payload offset, payload length) of each top-level field of an `Index`;
    the caller reads or skips each payload before asking for the next field."""
    while True:
        start = stream.tell()
        key = _varint(stream)
        if key is None:
            return
        number, wire = key >> 3, key & 7
        if wire != _LENGTH_DELIMITED:
            raise IndexDecodeError(f"unexpected wire type {wire} for Index field {number} near byte {start}")
        length = _varint(stream)
        if length is None:
            raise IndexDecodeError(f"Index field {number} has no length near byte {start}")
        yield number, stream.tell(), length


def _varint(stream: BinaryIO) -> int | None:
    """The next varint, or None at the end of the stream."""
    result = shift = 0
    while True:
        b = stream.read(1)
        if not b:
            if shift:
                raise IndexDecodeError("truncated varint in the index")
            return None
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise IndexDecodeError("varint too long in the index")


# below this, an index is decoded in the step's process: starting the workers costs about what
# the parts save (flask's 3 MB index: 0.22 s here; 0.13 s in two warm workers, 0.6 s in cold ones)
PARALLEL_MIN_BYTES = 16 << 20
_PARTS_PER_WORKER = 2  # parts are balanced by bytes, not by time: two a worker even them out


@dataclass(frozen=True, slots=True)
class _DocumentAt:
    """Where one document's bytes are in the index, and its path."""

    path: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class _Part:
    """Documents of an index for one process to decode, with what it needs for them."""

    index_path: Path
    documents: tuple[_DocumentAt, ...]
    repo_root: Path
    strip_prefixes: tuple[str, ...]
    spill_dir: Path
    enclosing: EnclosingIndex | None  # of these documents' paths only


def decode_index(
    index_path: Path,
    repo_root: Path,
    strip: PathStripper,
    spill_dir: Path,
    wanted: set[str] | None = None,
    enclosing: EnclosingIndex | None = None,
    mapper: Mapper | None = None,
) -> DecodedIndex:
    """Decode the index at `index_path` (documents outside `wanted`, when given, are skipped; a
    path given twice: its last document); `enclosing` gives the occurrences' enclosing GOIDs;
    symbols and occurrences go to files in `spill_dir`.  A large index is decoded in parts by
    `mapper`'s worker processes (on this machine: they spill to `spill_dir` too), each part's
    documents read from the file there; the tables are the same either way.

    Raises:
        IndexDecodeError: The file is not a readable SCIP index.
    """
    if not index_path.is_file():
        raise IndexDecodeError(f"the indexer wrote no index ({index_path.name} is missing)")
    externals: dict[str, tuple[object, ...]] = {}
    with index_path.open("rb", buffering=1 << 20) as stream, _as_decode_error(index_path):
        documents, external_payloads = _layout(stream, index_path.stat().st_size)
        for payload in external_payloads:
            info = scip_pb2.SymbolInformation.FromString(payload)
            externals.setdefault(info.symbol, _external_row(info, strip))
    chosen = {d.path: d for d in documents if wanted is None or d.path in wanted}
    spread = (
        mapper is not None and not mapper.remote and mapper.workers > 1
        and sum(d.length for d in chosen.values()) >= PARALLEL_MIN_BYTES
    )  # fmt: skip
    groups = _balanced(list(chosen.values()), _PARTS_PER_WORKER * mapper.workers if spread and mapper else 1)
    parts = [
        _Part(
            index_path, tuple(group), repo_root, strip.prefixes, spill_dir / f"part-{i}",
            enclosing.restricted(d.path for d in group) if enclosing is not None else None,
        )
        for i, group in enumerate(groups)
    ]  # fmt: skip
    out, *rest = _decode_parts(parts, mapper if spread else None)  # (one part at least)
    for decoded in rest:
        out.documents.extend(decoded.documents)
        out.symbols.extend(decoded.symbols)
        out.occurrences.extend(decoded.occurrences)
    out.externals = externals
    return out


@contextmanager
def _as_decode_error(index_path: Path) -> Iterator[None]:
    """protobuf's DecodeError and friends (a malformed document) as `IndexDecodeError`."""
    try:
        yield
    except IndexDecodeError:
        raise
    except Exception as exc:
        raise IndexDecodeError(f"{index_path.name}: {type(exc).__name__}: {exc}") from exc


def _layout(stream: BinaryIO, size: int) -> tuple[list[_DocumentAt], list[bytes]]:
    """Where each document is (in index order), and the external symbols' payloads."""
    documents: list[_DocumentAt] = []
    externals: list[bytes] = []
    for number, at, length in _field_heads(stream):
        if at + length > size:
            raise IndexDecodeError(f"Index field {number} runs past the end of the file near byte {at}")
        if number == _DOCUMENTS:
            documents.append(_DocumentAt(_peek_path(stream, at, length), at, length))
        elif number == _EXTERNALS:
            externals.append(stream.read(length))
        stream.seek(at + length)
    return documents, externals


def _peek_path(stream: BinaryIO, at: int, length: int) -> str:
    """A document's `relative_path`, read from its first bytes (pyrefly writes `language`, then
    the path, then the rest), or from the whole document parsed when it is not there."""
    head = stream.read(min(length, 1024))
    i = 0
    while i < len(head):
        key, used = _varint_at(head, i)
        if key is None or key >> 3 in (_OCCURRENCES, _SYMBOLS):  # the bulk: the path is not ahead
            break
        value, value_used = _varint_at(head, i + used)
        if value is None or key & 7 not in (0, _LENGTH_DELIMITED):
            break
        start = i + used + value_used
        if key & 7 == 0:
            i = start
            continue
        if start + value > len(head):
            break
        if key == 0x0A:  # field 1, length-delimited
            return head[start : start + value].decode("utf-8")
        i = start + value
    stream.seek(at)
    return str(DocumentLite.FromString(stream.read(length)).relative_path)


def _varint_at(data: bytes, at: int) -> tuple[int | None, int]:
    """The varint at `data[at:]` and its length in bytes (None: it runs past `data`)."""
    result = shift = used = 0
    for byte in data[at : at + 10]:
        result |= (byte & 0x7F) << shift
        used += 1
        if not byte & 0x80:
            return result, used
        shift += 7
    return None, used


def _balanced(documents: list[_DocumentAt], count: int) -> list[list[_DocumentAt]]:
    """`documents` in `count` groups of about equal bytes (largest first to the lightest group);
    a group is never empty."""
    if count <= 1 or len(documents) <= 1:
        return [documents]
    groups: list[list[_DocumentAt]] = [[] for _ in range(min(count, len(documents)))]
    heap = [(0, i) for i in range(len(groups))]
    for doc in sorted(documents, key=lambda d: -d.length):
        load, i = heapq.heappop(heap)
        groups[i].append(doc)
        heapq.heappush(heap, (load + doc.length, i))
    return groups


def _decode_parts(parts: list[_Part], mapper: Mapper | None) -> list[DecodedIndex]:
    """Each part decoded: by `mapper`, or here.  A worker process that dies on the way (the
    OOM killer, a crash in native code) costs its pool, not the decode: it is done here then."""
    if mapper is not None:
        try:
            return mapper.map(decode_part, parts)
        except BrokenProcessPool as exc:
            logger.warning("scip: a worker died decoding the index (%s): decoding it in this process", exc)
    return [decode_part(part) for part in parts]


def decode_part(part: _Part) -> DecodedIndex:
    """Decode one part's documents (in a worker process, or the step's) into its own spill files."""
    strip = PathStripper(part.strip_prefixes)
    part.spill_dir.mkdir(parents=True, exist_ok=True)
    out = DecodedIndex.spilled_to(part.spill_dir)
    lookup = part.enclosing.lookup_many if part.enclosing is not None else None
    try:
        with part.index_path.open("rb") as stream, _as_decode_error(part.index_path):
            for at in part.documents:
                stream.seek(at.offset)
                payload = stream.read(at.length)
                if len(payload) != at.length:
                    raise IndexDecodeError(f"{part.index_path.name} changed while it was decoded")
                doc = DocumentLite.FromString(payload)
                if doc.relative_path != at.path:
                    raise IndexDecodeError(f"the document at byte {at.offset} names two paths ({at.path!r} first)")
                _decode_document(doc, payload, part.repo_root, strip, out, lookup)
    finally:
        out.symbols.close()
        out.occurrences.close()
    return out


class _Columns:
    """Converts a document's ranges (in its position encoding) to UTF-8 byte columns."""

    def __init__(self, data: bytes | None, encoding: int) -> None:
        self.ascii = self._ascii = data is None or data.isascii() or encoding == 1
        self._lines = data.split(b"\n") if not self._ascii and data is not None else []
        self._encoding = encoding
        self._cache: dict[int, list[int] | None] = {}

    def non_ascii_lines(self) -> np.ndarray:
        """The (0-based) lines where a code unit position is not a byte offset."""
        if self._ascii:
            return np.zeros(0, np.int64)
        return np.array([i for i, raw in enumerate(self._lines) if not raw.isascii()], np.int64)

    def byte_cols(self, lines: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """`byte_col` of each (line, col), converting only those on non-ASCII lines."""
        if self._ascii or not len(lines):
            return cols
        out = cols.copy()
        for i in np.flatnonzero(np.isin(lines, self.non_ascii_lines())).tolist():
            out[i] = self.byte_col(int(lines[i]), int(cols[i]))
        return out

    def byte_col(self, line: int, col: int) -> int:
        if self._ascii:
            return col
        if line not in self._cache:
            self._cache[line] = self._offsets(line)
        offsets = self._cache[line]
        if offsets is None:
            return col
        return offsets[col] if col < len(offsets) else offsets[-1] + (col - len(offsets) + 1)

    def _offsets(self, line: int) -> list[int] | None:
        """Byte offset of each code unit position of `line` (None: the line is ASCII)."""
        if line >= len(self._lines):
            return None
        raw = self._lines[line]
        if raw.isascii():
            return None
        text = raw.decode("utf-8", "surrogateescape")
        offsets: list[int] = []
        at = 0
        for ch in text:
            width = len(ch.encode("utf-8", "surrogateescape"))
            units = 2 if self._encoding == 2 and ord(ch) > 0xFFFF else 1
            offsets.extend([at] * units)
            at += width
        offsets.append(at)
        return offsets


def _read(repo_root: Path, path: str) -> bytes | None:
    """The file's bytes (None: gone, or no longer a regular file: never blocks on a FIFO)."""
    found = read_source(repo_root, path)
    return found if isinstance(found, bytes) else None


@dataclass(frozen=True, slots=True)
class _Occurrences:
    """One document's occurrences as columns, sorted by (line, col, symbol, end_line, end_col,
    roles); positions already CodeIntel's."""

    line: np.ndarray
    col: np.ndarray
    end_line: np.ndarray
    end_col: np.ndarray
    roles: np.ndarray
    symbol: pa.DictionaryArray
    count: int  # every occurrence of the document, those without a valid range too


def _raw_occurrences(doc: Any, payload: bytes) -> RawOccurrences:
    """The occurrences' fields, from their bytes (`wire`), or through the generated class where
    the fast path declines."""
    raw = read_occurrences(list(doc.occurrences))
    if raw is not None:
        return raw
    occurrences = scip_pb2.Document.FromString(payload).occurrences
    n = len(occurrences)
    ranges = [o.range for o in occurrences]
    lengths = np.fromiter(map(len, ranges), np.int64, n)
    flat = np.fromiter(itertools.chain.from_iterable(ranges), np.int64, int(lengths.sum()))
    del ranges
    starts = np.cumsum(lengths) - lengths
    first = np.full((n, 4), -1, np.int64)
    for k in range(4):
        rows = np.flatnonzero(lengths > k)
        first[rows, k] = flat[starts[rows] + k]
    roles = np.fromiter((o.symbol_roles for o in occurrences), np.int64, n)
    return RawOccurrences(lengths, first, pa.array([o.symbol for o in occurrences], pa.string()), roles)


def _read_occurrences(doc: Any, payload: bytes, cols: _Columns) -> _Occurrences:
    """The occurrences' ranges read in bulk (no Python step per occurrence), converted and sorted
    with numpy/Arrow; a range of another length than 3 or 4 is skipped."""
    raw = _raw_occurrences(doc, payload)
    n = len(raw.roles)
    keep = (raw.range_values == 3) | (raw.range_values == 4)
    first = raw.ranges[keep]
    four = raw.range_values[keep] == 4
    start_line, start_col = first[:, 0], first[:, 1]
    end_line = np.where(four, first[:, 2], start_line)
    end_col = np.where(four, first[:, 3], first[:, 2])
    roles = raw.roles[keep]
    symbols = raw.symbols if keep.all() else raw.symbols.filter(pa.array(keep))
    encoded = symbols.dictionary_encode()
    codes = np.asarray(encoded.indices)
    rank = np.asarray(pc.rank(encoded.dictionary, sort_keys="ascending"))[codes]  # Python's str order
    start_col = cols.byte_cols(start_line, start_col)
    end_col = cols.byte_cols(end_line, end_col)
    order = np.lexsort((roles, end_col, end_line, rank, start_col, start_line))
    return _Occurrences(
        start_line[order] + 1, start_col[order], end_line[order] + 1, end_col[order], roles[order],
        pa.DictionaryArray.from_arrays(pa.array(codes[order]), encoded.dictionary), n,
    )  # fmt: skip


def _first_definitions(occ: _Occurrences) -> tuple[dict[str, tuple[int, int]], str]:
    """Each defined symbol's first definition (line, col), and the module a `__init__:` symbol
    defined here names (first in order whose module is not empty)."""
    definitions = np.flatnonzero(occ.roles & _DEFINITION)
    codes = np.asarray(occ.symbol.indices)[definitions]
    found, first = np.unique(codes, return_index=True)
    names = occ.symbol.dictionary.take(pa.array(found)).to_pylist()
    at = definitions[first]
    first_def = dict(zip(names, zip(occ.line[at].tolist(), occ.col[at].tolist(), strict=True), strict=True))
    module = ""
    is_init = np.asarray(pc.ends_with(occ.symbol.dictionary, "__init__:").fill_null(False))
    for code in codes[is_init[codes]].tolist():
        module = parse_symbol(occ.symbol.dictionary[code].as_py()).module
        if module:
            break
    return first_def, module


def _decode_document(
    doc: Any, payload: bytes, repo_root: Path, strip: PathStripper, out: DecodedIndex, enclosing: Enclosing | None
) -> None:
    """One document (`doc`: a `DocumentLite` of `payload`) into `out`."""
    path = doc.relative_path
    occ = _read_occurrences(doc, payload, _Columns(_read(repo_root, path), doc.position_encoding))
    first_def, module = _first_definitions(occ)
    definitions = int(np.count_nonzero(occ.roles & _DEFINITION))
    out.occurrences.add(path, _occurrence_batch(path, occ, enclosing))
    interface: list[str] = []
    symbols: list[tuple[object, ...]] = []
    unlisted = dict(first_def)  # defined here, no SymbolInformation yet
    checked: set[str] = set()  # the qualified names of the symbols listed
    for info in doc.symbols:
        symbol = info.symbol
        if symbol.startswith("local "):  # parse_symbol's SymbolKind.LOCAL
            continue
        unlisted.pop(symbol, None)
        parsed = parse_symbol(symbol)
        checked.add(parsed.qualified_name)
        signature, documentation = _hover(info.documentation, strip)
        relationships = _relationships(info)
        site = first_def.get(symbol)
        symbols.append(_symbol_row(symbol, parsed, path, site, signature, documentation, relationships))
        if parsed.kind in _INTERFACE_KINDS and "()." not in symbol.rpartition("/")[2][:-3]:
            interface.append(f"{symbol}\x00{signature}\x00{' '.join(relationships)}")
    # definitions the index lists no SymbolInformation for (pyrefly: code it does not check, such
    # as a body under `if not TYPE_CHECKING:` or a `sys.version_info` branch not taken) are
    # symbols all the same, with no signature: their GOIDs join the crosswalk, their uses resolve.
    # Not where a symbol the checker lists has that qualified name (`get_args = typing.get_args`
    # beside the fallback `def get_args`): the crosswalk names the definition by that one, whose
    # signature and uses are the checker's (what the definition holds is named by its own)
    for symbol, site in unlisted.items():
        if symbol.startswith("local "):
            continue
        parsed = parse_symbol(symbol)
        if parsed.qualified_name not in checked:
            symbols.append(_symbol_row(symbol, parsed, path, site, None, None, []))
    symbols.sort(key=lambda row: str(row[0]))
    out.symbols.add(path, _symbol_batch(symbols))
    count = len(symbols)
    digest = hashlib.blake2b("\n".join(sorted(interface)).encode(), digest_size=12).hexdigest()
    out.documents.add(
        (path, module or None, doc.language or "python", _ENCODINGS.get(doc.position_encoding, "unspecified"),
         occ.count, definitions, count, 0, None, digest)
    )  # fmt: skip


def _symbol_row(
    symbol: str, parsed: ParsedSymbol, path: str, site: tuple[int, int] | None, signature: str | None,
    documentation: str | None, relationships: list[str],
) -> tuple[object, ...]:  # fmt: skip
    """A repository symbol's row of core.scip_symbols (`site`: its first definition, line and column)."""
    def_line, def_col = site or (None, None)
    return (
        symbol, str(parsed.kind), parsed.display_name, parsed.qualified_name, parsed.module, parsed.package,
        parsed.version, False, path, def_line, def_col, signature, documentation, relationships, None,
    )  # fmt: skip


_SYMBOL_SCHEMA = spec_of(Table.SCIP_SYMBOLS).arrow_schema


def _symbol_batch(rows: list[tuple[object, ...]]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in _SYMBOL_SCHEMA]
    arrays = [pa.array(list(c), f.type) for c, f in zip(columns, _SYMBOL_SCHEMA, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=_SYMBOL_SCHEMA)


_KIND_PREFIX = re.compile(r"^\([a-z ]+\) ")


def _hover(parts: Iterable[str], strip: PathStripper) -> tuple[str | None, str | None]:
    """(signature, documentation) from a hover: the first code block is the signature (its
    `(kind) ` prefix dropped), the rest the docstring."""
    texts = [strip(p) for p in parts]
    if not texts:
        return None, None
    head, _, rest = texts[0].partition("\n---\n")
    signature = None
    if head.startswith("```"):
        body = head.split("\n", 1)[1] if "\n" in head else ""
        body = body.rsplit("```", 1)[0].strip()
        signature = _KIND_PREFIX.sub("", body, count=1) or None
    else:
        rest = texts[0]
    docs = "\n\n".join(t for t in (rest.strip(), *texts[1:]) if t.strip())
    return signature, docs or None


def _relationships(info: scip_pb2.SymbolInformation) -> list[str]:
    """`<kinds> <symbol>` per relationship, kinds among implementation, type_definition,
    reference, definition (joined by '+')."""
    found = []
    for rel in info.relationships:
        kinds = [
            name
            for name, flag in (
                ("implementation", rel.is_implementation),
                ("type_definition", rel.is_type_definition),
                ("reference", rel.is_reference),
                ("definition", rel.is_definition),
            )
            if flag
        ]
        found.append(f"{'+'.join(kinds) or 'related'} {rel.symbol}")
    return sorted(found)


def _external_row(info: scip_pb2.SymbolInformation, strip: PathStripper) -> tuple[object, ...]:
    parsed = parse_symbol(info.symbol)
    signature, documentation = _hover(info.documentation, strip)
    return (info.symbol, str(parsed.kind), parsed.display_name, parsed.qualified_name, parsed.module, parsed.package,
            parsed.version, True, None, None, None, signature, documentation, _relationships(info), None)  # fmt: skip


# ----------------------------------------------------------------------------- to Arrow


def to_tables(decoded: DecodedIndex, project_package: str) -> DecodedTables:
    """The decoded rows as sorted Arrow tables (documents, repository symbols, externals, occurrences).

    Externals naming the project's own package (repository files outside this run's documents)
    are dropped: their rows come from the documents that define them.
    """
    externals = [row for row in decoded.externals.values() if row[5] != project_package]
    return DecodedTables(
        _sorted(decoded.documents.table(), ["path"]),
        decoded.symbols,
        _sorted(_table(Table.SCIP_SYMBOLS, externals), ["symbol"]),
        decoded.occurrences,  # sorted per document, documents in path order
    )


def _table(table: str, rows: list[tuple[object, ...]]) -> pa.Table:
    schema = spec_of(table).arrow_schema
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table([pa.array(list(c), f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys]) if table.num_rows else table


# -------------------------------------------------------------------------- diagnostics


def decode_diagnostics(path: Path, repo_root: Path, strip: PathStripper, wanted: set[str] | None = None) -> pa.Table:
    """pyrefly's `--output-format json` errors as `analytics.type_diagnostics` rows (sorted;
    enclosing GOIDs still NULL).  Columns there are 1-based characters: converted to 0-based bytes.

    Raises:
        IndexDecodeError: The file is not pyrefly's JSON.
    """
    if not path.is_file():
        raise IndexDecodeError(f"the indexer wrote no error report ({path.name} is missing)")
    try:
        errors = json.loads(path.read_bytes() or b"{}").get("errors", [])
    except (OSError, ValueError, AttributeError) as exc:
        raise IndexDecodeError(f"{path.name}: not pyrefly's JSON error report: {exc}") from exc
    rows: list[tuple[object, ...]] = []
    texts: dict[str, _Columns] = {}
    seen: set[tuple[object, ...]] = set()
    for e in errors:
        file = str(e.get("path", ""))
        if wanted is not None and file not in wanted:
            continue
        cols = texts.get(file)
        if cols is None:
            cols = texts[file] = _Columns(_read(repo_root, file), 3)
        line, end_line = int(e.get("line", 1)), int(e.get("stop_line", e.get("line", 1)))
        col = cols.byte_col(line - 1, max(int(e.get("column", 1)) - 1, 0))
        end_col = cols.byte_col(end_line - 1, max(int(e.get("stop_column", 1)) - 1, 0))
        message = strip(str(e.get("concise_description") or e.get("description") or ""))
        row = (file, line, col, end_line, end_col, str(e.get("name", "")), str(e.get("severity", "")), message, None)
        key = (file, line, col, row[5], message)
        if key in seen:  # the key: an error reported twice at one place is one row
            continue
        seen.add(key)
        rows.append(row)
    return _sorted(_table(Table.TYPE_DIAGNOSTICS, rows), ["path", "line", "col", "code", "message"])
