"""scip/decode.py: a large index is decoded in parts by worker processes, and the tables are the
ones a decode in one process gives; a worker dying on the way costs the pool, not the decode;
the index's layout (where each document is, and its path) is read without parsing documents,
a path given twice keeps its last document, and a truncated index is a decode error."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pytest

from codeintel.config import ToolsConfig
from codeintel.ingestion.scip import decode, scip_pb2
from codeintel.ingestion.scip.decode import DecodedIndex, IndexDecodeError, PathStripper, decode_index, to_tables
from codeintel.ingestion.scip.pyrefly import IndexRequest, start_indexing
from codeintel.ingestion.tools import ToolService
from codeintel.orchestration.executors import ProcessExecutor
from tests.conftest import create_repo
from tests.ingestion.test_scip import SCIP_TABLES, SHOP, STEPS, _status

T = TypeVar("T")
R = TypeVar("R")


def _tables(decoded: DecodedIndex) -> dict[str, list[dict[str, Any]]]:
    tables = to_tables(decoded, "shop")
    return {
        "documents": tables.documents.to_pylist(),
        "externals": tables.externals.to_pylist(),
        "symbols": tables.symbols.read_all().to_pylist(),
        "occurrences": tables.occurrences.read_all().to_pylist(),
    }


@pytest.fixture(scope="module")
def shop_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(repository, its pyrefly index, the scratch directory pyrefly ran in), from the real pyrefly."""
    base = tmp_path_factory.mktemp("shop-index")
    repo = create_repo(base, SHOP).root
    files = tuple(sorted(str(p.relative_to(repo)) for p in repo.rglob("*.py")))
    run = start_indexing(ToolService(ToolsConfig()), IndexRequest(repo, files, (".",), "shop"))
    out = run.wait()
    index = base / "index.scip"
    index.write_bytes(out.index.read_bytes())
    return repo, index, out.scratch


@pytest.fixture
def pool() -> Any:
    executor = ProcessExecutor(2)
    yield executor
    executor.close()


def test_an_index_decoded_in_parts_by_worker_processes_equals_one_decoded_here(
    shop_index: tuple[Path, Path, Path], pool: ProcessExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, index, scratch = shop_index
    strip = PathStripper((str(repo), str(scratch)))
    here = decode_index(index, repo, strip, tmp_path / "here")
    monkeypatch.setattr(decode, "PARALLEL_MIN_BYTES", 0)
    apart = decode_index(index, repo, strip, tmp_path / "apart", mapper=pool)
    # four parts (two a worker), each spilled by its worker to files of its own
    assert sorted(p.name for p in (tmp_path / "apart").glob("part-*")) == ["part-0", "part-1", "part-2", "part-3"]
    assert sorted(p.name for p in (tmp_path / "here").glob("part-*")) == ["part-0"]
    expected = _tables(here)
    assert len(expected["documents"]) == len(SHOP) and expected["occurrences"]
    assert _tables(apart) == expected


class _DyingPool:
    """A real process pool whose workers die (SIGKILL) on the first job they get."""

    remote = False
    workers = 2

    def __init__(self, inner: ProcessExecutor) -> None:
        self.inner = inner
        self.calls = 0

    def map(self, fn: Callable[[T], R], items: Sequence[T], priority: int = 0) -> list[R]:
        self.calls += 1
        return self.inner.map(_die, list(items), priority)  # type: ignore[arg-type]

    def warm_up(self) -> None:
        return None


def _die(_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_dying_during_the_decode_leaves_it_to_the_step_process(
    shop_index: tuple[Path, Path, Path], pool: ProcessExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, index, scratch = shop_index
    strip = PathStripper((str(repo), str(scratch)))
    expected = _tables(decode_index(index, repo, strip, tmp_path / "here"))
    monkeypatch.setattr(decode, "PARALLEL_MIN_BYTES", 0)
    dying = _DyingPool(pool)
    assert _tables(decode_index(index, repo, strip, tmp_path / "apart", mapper=dying)) == expected
    assert dying.calls == 1


def test_the_step_decodes_in_its_worker_processes_to_the_same_tables(
    make_repo: Any, make_indexer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path, SHOP)
    serial = make_indexer(repo, tmp_path / "serial" / "codeintel.duckdb")
    assert _status(serial, serial.run(STEPS).run_id)["status"] == "succeeded"
    parts: list[int] = []
    real = decode._decode_parts

    def counting(found: list[Any], mapper: Any) -> list[DecodedIndex]:
        parts.append(len(found) if mapper is not None else 0)
        return real(found, mapper)

    monkeypatch.setattr(decode, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(decode, "_decode_parts", counting)
    spread = make_indexer(repo, tmp_path / "spread" / "codeintel.duckdb")
    assert _status(spread, spread.run(STEPS, executor="process", workers=2).run_id)["status"] == "succeeded"
    assert parts == [4]
    for table in SCIP_TABLES:
        assert spread.table_rows(table) == serial.table_rows(table), table


# ------------------------------------------------------------------- hand-made indexes


def _document(path: str, symbols: Sequence[str], **fields: Any) -> scip_pb2.Document:
    occurrences = [scip_pb2.Occurrence(range=[i, 0, 3], symbol=s, symbol_roles=1) for i, s in enumerate(symbols)]
    infos = [scip_pb2.SymbolInformation(symbol=s) for s in symbols]
    return scip_pb2.Document(relative_path=path, occurrences=occurrences, symbols=infos, **fields)


def _symbol(name: str) -> str:
    return f"scip-python python shop 0 `m`/{name}()."


def _decoded(tmp_path: Path, data: bytes) -> dict[str, list[dict[str, Any]]]:
    index = tmp_path / "index.scip"
    index.write_bytes(data)
    return _tables(decode_index(index, tmp_path, PathStripper(()), tmp_path / "spill"))


def test_a_path_given_twice_keeps_its_last_document(tmp_path: Path) -> None:
    first = scip_pb2.Index(documents=[_document("a.py", [_symbol("old")]), _document("b.py", [_symbol("b")])])
    second = scip_pb2.Index(documents=[_document("a.py", [_symbol("new"), _symbol("newer")])])
    tables = _decoded(tmp_path, first.SerializeToString() + second.SerializeToString())  # one Index, merged
    assert [(d["path"], d["occurrences"]) for d in tables["documents"]] == [("a.py", 2), ("b.py", 1)]
    assert sorted(s["qualified_name"] for s in tables["symbols"] if s["def_path"] == "a.py") == ["new", "newer"]


def test_a_document_whose_path_is_not_its_first_field_is_found(tmp_path: Path) -> None:
    body = _document("", [_symbol("f")]).SerializeToString()
    late_path = body + scip_pb2.Document(relative_path="late.py").SerializeToString()  # merged: path last
    data = scip_pb2.Index(documents=[_document("early.py", [_symbol("g")])]).SerializeToString()
    data += b"\x12" + _varint(len(late_path)) + late_path
    tables = _decoded(tmp_path, data)
    assert [d["path"] for d in tables["documents"]] == ["early.py", "late.py"]
    assert [o["symbol"] for o in tables["occurrences"] if o["path"] == "late.py"] == [_symbol("f")]


def test_a_document_naming_two_paths_is_a_decode_error(tmp_path: Path) -> None:
    two = (
        _document("one.py", [_symbol("f")]).SerializeToString()
        + scip_pb2.Document(relative_path="two.py").SerializeToString()
    )
    with pytest.raises(IndexDecodeError, match="names two paths"):
        _decoded(tmp_path, b"\x12" + _varint(len(two)) + two)


@pytest.mark.parametrize("cut", [1, 7, 40])
def test_a_truncated_index_file_is_a_decode_error(tmp_path: Path, cut: int) -> None:
    data = scip_pb2.Index(documents=[_document("a.py", [_symbol("f"), _symbol("g")])]).SerializeToString()
    with pytest.raises(IndexDecodeError):
        _decoded(tmp_path, data[:-cut])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_spilled_batches_of_several_files_read_back_in_key_order(tmp_path: Path) -> None:
    from codeintel.ingestion.scip.spill import Spill

    schema = pa.schema([pa.field("k", pa.string())])
    first, second = Spill(tmp_path / "1.arrows", schema), Spill(tmp_path / "2.arrows", schema)
    for spill, keys in ((first, ["b", "d"]), (second, ["a", "d", "c"])):
        for key in keys:
            spill.add(key, pa.record_batch([pa.array([f"{key}@{spill.path.name}"])], schema=schema))
    first.extend(second)
    assert first.read_all()["k"].to_pylist() == ["a@2.arrows", "b@1.arrows", "c@2.arrows", "d@2.arrows"]
    assert first.num_rows == 4
