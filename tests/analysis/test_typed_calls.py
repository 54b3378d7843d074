"""call_graph_types: the call graph with the type checker's answers, through the real pipeline
(real git repositories, real pyrefly and tree-sitter), and the constructor rule on plain data.

Covers a call the points-to analysis cannot resolve (a method called on a typed parameter)
gaining a 'scip' edge and losing its unresolved row, agreement raising a target's confidence
(`<resolution>+scip`) while the other targets keep theirs, disagreement keeping both,
constructors named as the call graph names them (the first `__init__` in the MRO), graph metrics
and the docs views counting merged edges, the indexer missing (the merge is the points-to graph,
the pipeline succeeds), and an incremental run equal to a full one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codeintel.analysis.typed_calls import (
    DISAGREE_CONFIDENCE,
    SCIP_CONFIDENCE,
    ClassBase,
    constructor_targets,
)
from codeintel.storage.catalog import CATALOG, Table

FILES = {
    "pkg/__init__.py": "",
    "pkg/models.py": """
        class Session:
            def __init__(self, limit: int = 10) -> None:
                self.limit = limit

            def merge(self, item: object) -> object:
                return item


        class AuditedSession(Session):
            pass


        def make_session() -> Session:
            return Session()


        def make_audited() -> Session:
            return AuditedSession()
        """,
    "pkg/shapes.py": """
        class Shape:
            def area(self) -> float:
                return 0.0


        class Square(Shape):
            def area(self) -> float:
                return 1.0


        def pick(flag: bool) -> Shape:
            return Shape() if flag else Square()


        def total(flag: bool) -> float:
            shape = pick(flag)
            return shape.area()


        def measure(shape: Shape) -> float:
            return shape.area()


        def main() -> float:
            return measure(Square())
        """,
    "pkg/meta.py": """
        class Meta(type):
            def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> None:
                super().__init__(name, bases, ns)


        class Model(metaclass=Meta):
            pass


        def make_model() -> Model:
            return Model()
        """,
    "pkg/generic.py": """
        from typing import Generic, TypeVar

        T = TypeVar("T")


        class Item:
            def __init__(self, name: str = "") -> None:
                self.name = name


        class Box(Generic[T]):
            pass


        class ItemBox(Box[Item]):
            pass


        def make_box() -> ItemBox:
            return ItemBox()
        """,
    "pkg/service.py": """
        from pkg.models import Session


        def save(s: Session, item: object) -> object:
            return s.merge(item)
        """,
    "pkg/compat.py": """
        from typing import TYPE_CHECKING


        class Reader:
            def read(self) -> str:
                return ""


        if TYPE_CHECKING:
            def load(r: Reader) -> str: ...
        else:
            def load(r):
                return r.read()


        def use(r: Reader) -> str:
            return load(r)
        """,
}


def _goid(idx: Any, qualname: str) -> str:
    (goid,) = idx.query("SELECT goid FROM core.goids WHERE qualname = ?", [qualname])[0]
    return str(goid)


def _edges(idx: Any, table: str, path: str, line: int) -> list[tuple[Any, ...]]:
    """(callee, kind, resolution, confidence) of the rows at one line, sorted."""
    return sorted(
        idx.query(f"SELECT callee, kind, resolution, confidence FROM {table} WHERE path = ? AND line = ?", [path, line]),
        key=repr,
    )


@pytest.fixture
def shop(indexed_copy: Any) -> Any:
    return indexed_copy("typed_calls", FILES)


def test_a_call_on_a_typed_parameter_gains_a_scip_edge_and_loses_its_unresolved_row(shop: Any) -> None:
    site = ("pkg/service.py", 6)
    assert _edges(shop, Table.CALL_EDGES, *site) == [(None, "unresolved", "unknown", 0.0)]
    assert _edges(shop, Table.CALL_EDGES_MERGED, *site) == [
        ("pkg.models.Session.merge", "method", "scip", SCIP_CONFIDENCE)
    ]
    merged = shop.query(
        "SELECT caller_goid, callee_goid, caller, caller_module, col, callee_text FROM graph.call_edges_merged "
        "WHERE path = 'pkg/service.py' AND line = 6"
    )
    assert merged == [(_goid(shop, "save"), _goid(shop, "Session.merge"), "pkg.service.save", "pkg.service", 11, "s.merge")]


def test_agreement_raises_the_confidence_of_the_target_both_give(shop: Any) -> None:
    site = ("pkg/shapes.py", 18)  # shape.area() on pick()'s result: Shape or Square to the points-to analysis
    before = _edges(shop, Table.CALL_EDGES, *site)
    assert [(c, conf) for c, _, _, conf in before] == [("pkg.shapes.Shape.area", 0.5), ("pkg.shapes.Square.area", 0.5)]
    after = dict(((c, (r, conf)) for c, _, r, conf in _edges(shop, Table.CALL_EDGES_MERGED, *site)))
    shape_resolution = next(r for c, _, r, _ in before if c == "pkg.shapes.Shape.area")
    assert after["pkg.shapes.Shape.area"] == (shape_resolution + "+scip", round(1 - 0.5 * (1 - SCIP_CONFIDENCE), 6))
    assert after["pkg.shapes.Square.area"] == (shape_resolution, 0.5)  # the runtime target SCIP does not see stays


def test_disagreement_keeps_both_targets(shop: Any) -> None:
    site = ("pkg/shapes.py", 22)  # measure(shape: Shape) is only called with a Square
    assert [c for c, *_ in _edges(shop, Table.CALL_EDGES, *site)] == ["pkg.shapes.Square.area"]
    merged = _edges(shop, Table.CALL_EDGES_MERGED, *site)
    assert [(c, r, conf) for c, _, r, conf in merged if r == "scip"] == [
        ("pkg.shapes.Shape.area", "scip", DISAGREE_CONFIDENCE)
    ]
    assert [c for c, *_ in merged] == ["pkg.shapes.Shape.area", "pkg.shapes.Square.area"]


@pytest.mark.parametrize(
    ("line", "callee"),
    [(15, "pkg.models.Session.__init__"), (19, "pkg.models.Session.__init__")],
    ids=["own-init", "inherited-init"],
)
def test_constructors_agree_with_the_call_graph(shop: Any, line: int, callee: str) -> None:
    merged = _edges(shop, Table.CALL_EDGES_MERGED, "pkg/models.py", line)
    assert [(c, k) for c, k, _, _ in merged] == [(callee, "constructor")]
    assert merged[0][2].endswith("+scip")


def test_a_metaclass_is_no_base_of_its_instances(shop: Any) -> None:
    pointsto = _edges(shop, Table.CALL_EDGES, "pkg/meta.py", 12)
    merged = _edges(shop, Table.CALL_EDGES_MERGED, "pkg/meta.py", 12)
    assert [c for c, *_ in merged] == [c for c, *_ in pointsto] == ["pkg.meta.Model"]
    assert merged[0][2].endswith("+scip")


def test_a_type_argument_is_no_base(shop: Any) -> None:
    """`class ItemBox(Box[Item])`: Item is no base, so `ItemBox()` does not construct an Item."""
    merged = _edges(shop, Table.CALL_EDGES_MERGED, "pkg/generic.py", 21)
    assert merged and all(not c.startswith("pkg.generic.Item.") for c, *_ in merged), merged
    assert shop.query(
        "SELECT name, role FROM core.name_sites WHERE path = 'pkg/generic.py' AND line = 16 ORDER BY col"
    ) == [("ItemBox", "definition"), ("Box", "base_class"), ("Item", "annotation")]


def test_a_definition_only_a_type_checker_runs_yields_to_its_runtime_twin(shop: Any) -> None:
    """`if TYPE_CHECKING: def load(...)` / `else: def load(...)`: one SCIP symbol names both (the
    checker sees the stub); its GOID, its uses and the calls it resolves are the one that runs."""
    load = shop.query(
        "SELECT ordinal, type_checking, g.goid FROM core.ast_nodes a JOIN core.goids g USING (path, qualname, ordinal) "
        "WHERE path = 'pkg/compat.py' AND qualname = 'load' ORDER BY ordinal"
    )
    assert [(o, t) for o, t, _ in load] == [(0, True), (1, False)]
    stub, runtime = load[0][2], load[1][2]
    assert shop.query(
        "SELECT DISTINCT goid FROM core.scip_symbols WHERE def_path = 'pkg/compat.py' AND qualified_name = 'load'"
    ) == [(runtime,)]
    ((line,),) = shop.query("SELECT end_line FROM core.ast_nodes WHERE path = 'pkg/compat.py' AND qualname = 'use'")
    merged = shop.query("SELECT callee_goid, resolution FROM graph.call_edges_merged WHERE path = 'pkg/compat.py' AND line = ?", [line])
    assert merged == [(runtime, "direct+scip")]  # the call graph's target, confirmed
    assert shop.query("SELECT DISTINCT def_goid FROM graph.symbol_uses WHERE path = 'pkg/compat.py' AND line = ?", [line]) == [
        (runtime,)
    ]
    # the calls in the runtime body are its own
    ((body,),) = shop.query("SELECT end_line FROM core.ast_nodes WHERE path = 'pkg/compat.py' AND qualname = 'load' AND ordinal = 1")
    assert {r[0] for r in shop.query("SELECT caller_goid FROM graph.call_edges WHERE path = 'pkg/compat.py' AND line = ?", [body])} == {runtime}
    assert stub != runtime


def test_graph_metrics_and_views_count_the_merged_edges(shop: Any) -> None:
    merge = _goid(shop, "Session.merge")
    assert shop.query("SELECT count(*) FROM graph.call_edges WHERE callee_goid = ?", [merge]) == [(0,)]
    assert shop.query("SELECT fan_in FROM analytics.graph_metrics_functions WHERE goid = ?", [merge]) == [(1,)]
    assert shop.query("SELECT callers FROM docs.symbols WHERE goid = ?", [merge]) == [(1,)]
    assert shop.query(
        "SELECT caller_kind, resolution FROM docs.v_call_graph_enriched WHERE callee_goid = ?", [merge]
    ) == [("function", "scip")]
    assert shop.query("SELECT count(*) FROM docs.v_unresolved_calls WHERE path = 'pkg/service.py'") == [(0,)]


def test_without_the_indexer_the_merged_edges_are_the_call_graph(make_repo: Any, make_indexer: Any, tmp_path: Path) -> None:
    idx = make_indexer(make_repo(tmp_path, FILES))
    run = idx.run(pyrefly=str(tmp_path / "missing" / "pyrefly"))
    assert run.ok
    status = idx.step_runs(run.run_id)
    assert status["scip_ingest"]["status"] == "skipped"
    assert status["call_graph_types"]["status"] == "succeeded"
    assert "no SCIP index" in status["call_graph_types"]["note"]
    assert idx.table_rows(Table.CALL_EDGES_MERGED) == idx.table_rows(Table.CALL_EDGES)
    assert idx.query("SELECT count(*) FROM graph.call_edges_merged WHERE resolution LIKE '%scip'") == [(0,)]
    merge = _goid(idx, "Session.merge")
    assert idx.query("SELECT fan_in FROM analytics.graph_metrics_functions WHERE goid = ?", [merge]) == [(0,)]


def test_a_file_edited_while_the_indexer_is_missing_keeps_its_points_to_edges(shop: Any, tmp_path: Path) -> None:
    # the stored index still says Session.merge where `other` is called now: it must not be used there
    shop.git.apply({"pkg/service.py": FILES["pkg/service.py"].replace("s.merge(item)", "s.other(item)")})
    run = shop.run(pyrefly=str(tmp_path / "missing" / "pyrefly"))
    assert run.ok
    assert shop.step_runs(run.run_id)["scip_ingest"]["status"] == "skipped"
    service = "WHERE path = 'pkg/service.py'"
    assert _rows_where(shop, Table.CALL_EDGES_MERGED, service) == _rows_where(shop, Table.CALL_EDGES, service)
    assert shop.query(f"SELECT count(*) FROM graph.call_edges_merged {service} AND callee IS NULL") == [(1,)]
    assert shop.query("SELECT count(*) > 0 FROM graph.call_edges_merged WHERE path = 'pkg/shapes.py' AND resolution LIKE '%+scip'") == [(True,)]


def _rows_where(idx: Any, table: str, where: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in CATALOG[table].column_names)
    return sorted(idx.query(f"SELECT {cols} FROM {table} {where}"), key=repr)


def test_an_incremental_run_equals_a_full_run(shop: Any) -> None:
    shop.git.apply(
        {
            "pkg/service.py": """
                from pkg.models import Session, make_session


                def save(s: Session, item: object) -> object:
                    return s.merge(item)


                def again(item: object) -> object:
                    return make_session().merge(item)
                """
        }
    )
    assert shop.run().ok
    incremental = shop.table_rows(Table.CALL_EDGES_MERGED)
    assert ("pkg/service.py", 10) in {(r[4], r[5]) for r in incremental if r[10] in ("scip", "attribute+scip")}
    assert shop.run(full=True).ok
    assert shop.table_rows(Table.CALL_EDGES_MERGED) == incremental


# ------------------------------------------------------------------ the constructor rule, plain data


def test_a_constructor_is_the_first_init_in_the_c3_order() -> None:
    # D(B, C), B(A), C(A): C3 gives D B C A; B has no __init__, C and A do: C's wins
    bases = [ClassBase("D", "B", "b#"), ClassBase("D", "C", "c#"), ClassBase("B", "A", "a#"), ClassBase("C", "A", "a#")]
    found = constructor_targets(bases, {"C": "C.__init__", "A": "A.__init__"})
    assert found == {"D": "C.__init__", "B": "A.__init__", "C": "C.__init__", "A": "A.__init__"}


def test_a_cycle_in_the_bases_does_not_hang() -> None:
    bases = [ClassBase("A", "B", "b#"), ClassBase("B", "A", "a#")]
    assert constructor_targets(bases, {"B": "B.__init__"}) == {"A": "B.__init__", "B": "B.__init__"}
