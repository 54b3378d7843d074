"""The catalog declares each table once, and record types line up with their tables."""

from __future__ import annotations

import dataclasses

import pytest

from codeintel.analysis.metrics import FunctionMetrics
from codeintel.storage.catalog import CATALOG, SCHEMAS, Table


def test_every_table_enum_member_is_declared_in_the_catalog() -> None:
    assert {str(t) for t in Table} == set(CATALOG)


@pytest.mark.parametrize("spec", list(CATALOG.values()), ids=lambda s: s.name)
def test_table_is_in_a_known_schema_with_unique_columns_and_a_key(spec) -> None:
    assert spec.name.split(".")[0] in SCHEMAS
    assert len(set(spec.column_names)) == len(spec.column_names)
    assert spec.key and set(spec.key) <= set(spec.column_names)
    assert not spec.per_file or spec.path_column in spec.column_names


def test_function_metrics_table_has_a_column_for_every_metric() -> None:
    columns = set(CATALOG[Table.FUNCTION_METRICS].column_names)
    assert {f.name for f in dataclasses.fields(FunctionMetrics)} <= columns
