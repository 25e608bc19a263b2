"""Each typical analyst query answers exactly what the same question asked by hand answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pytest

from iceberg.sql.query import LakeQueryEngine
from tests.lake_sql.corpus import ATHENA, REDSHIFT, Case
from tests.lake_sql.lake_data import LakeData


def normalise(rows: list[tuple[Any, ...]], ordered: bool) -> list[tuple[Any, ...]]:
    def value(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 6)
        if isinstance(v, datetime) and v.tzinfo is not None:
            return ("tz", v.timestamp())
        return v

    out = [tuple(value(v) for v in row) for row in rows]
    return out if ordered else sorted(out, key=repr)


def expected_rows(case: Case, data: LakeData, reference: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    if isinstance(case.expected, str):
        return reference.execute(case.expected).fetchall()
    return case.expected(data)


def check(engine: LakeQueryEngine, case: Case, dialect: str, data: LakeData, reference: Any) -> None:
    result = engine.query(case.query, dialect)  # type: ignore[arg-type]
    expected = expected_rows(case, data, reference)
    assert expected, f"{case.name}: the expected answer is empty, so it proves nothing"
    assert normalise(result.rows, case.ordered) == normalise(expected, case.ordered), result.duckdb_sql


@pytest.mark.parametrize("case", ATHENA, ids=[c.name for c in ATHENA])
def test_athena_query_answers_as_by_hand(
    engine: LakeQueryEngine, case: Case, lake_data: LakeData, reference: duckdb.DuckDBPyConnection
) -> None:
    check(engine, case, "athena", lake_data, reference)


@pytest.mark.parametrize("case", REDSHIFT, ids=[c.name for c in REDSHIFT])
def test_redshift_query_answers_as_by_hand(
    engine: LakeQueryEngine, case: Case, lake_data: LakeData, reference: duckdb.DuckDBPyConnection
) -> None:
    check(engine, case, "redshift", lake_data, reference)


def test_corpus_is_large_enough() -> None:
    assert len(ATHENA) >= 20
    assert len(REDSHIFT) >= 20
