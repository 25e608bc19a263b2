"""Constructs whose answer would differ from Athena's or Redshift's are refused with the reason."""

from __future__ import annotations

import pytest

from iceberg.sql.errors import SqlError, SqlSyntaxError, UnknownTableError, UnsupportedSqlError
from iceberg.sql.query import LakeQueryEngine

TX = "bronze.bank_card_transactions"

REFUSED = [
    ("athena", f"SELECT approx_percentile(fee, 0.5) FROM {TX}", "approximate"),
    ("athena", f"SELECT approx_most_frequent(3, channel, 100) FROM {TX}", "approximate"),
    ("athena", f"SELECT avg(amount) FROM {TX}", "DECIMAL average"),
    ("athena", f"SELECT sum(amount) / count(*) FROM {TX}", "DECIMAL division"),
    ("athena", f"SELECT CAST(fee AS VARCHAR) FROM {TX}", "scientific notation"),
    ("athena", f"SELECT parse_datetime('2024-01-01', 'yyyy-MM-dd') FROM {TX}", "Joda"),
    ("athena", f"SELECT format_datetime(event_time, 'yyyy') FROM {TX}", "no verified translation"),
    ("athena", f"SELECT word_stem(channel) FROM {TX}", "no verified translation"),
    ("redshift", f"SELECT AVG(_partition) FROM {TX}", "truncated integer"),
    ("redshift", f"SELECT AVG(amount) FROM {TX}", "DECIMAL average"),
    ("redshift", f"SELECT COUNT(*) FROM {TX} FOR VERSION AS OF 1", "Athena syntax"),
    ("athena", f"INSERT INTO {TX} (event_id) VALUES ('x')", "read-only"),
    ("athena", f"CREATE TABLE t AS SELECT * FROM {TX}", "read-only"),
    ("athena", f"DELETE FROM {TX}", "read-only"),
    (
        "athena",
        "SELECT merchants.merchant_id FROM bronze.bank_card_transactions, silver.merchants, gold.merchants",
        "no such table",
    ),
]


@pytest.mark.parametrize(("dialect", "query", "reason"), REFUSED, ids=[q for _, q, _ in REFUSED])
def test_refused_with_reason(engine: LakeQueryEngine, dialect: str, query: str, reason: str) -> None:
    with pytest.raises(SqlError) as raised:
        engine.query(query, dialect)  # type: ignore[arg-type]
    assert reason in str(raised.value)


def test_redshift_trunc_of_unknown_type_is_refused(engine: LakeQueryEngine) -> None:
    with pytest.raises(UnsupportedSqlError, match="TRUNC"):
        engine.query("SELECT TRUNC(NULL)", "redshift")


def test_division_of_unknown_types_is_refused(engine: LakeQueryEngine) -> None:
    with pytest.raises(UnsupportedSqlError, match="integers"):
        engine.query("SELECT NULL / 2", "athena")


def test_unknown_table_names_what_exists(engine: LakeQueryEngine) -> None:
    with pytest.raises(UnknownTableError) as raised:
        engine.query("SELECT * FROM bronze.bank_card_transaction", "athena")
    message = str(raised.value)
    assert "bronze.bank_card_transaction:" in message
    for table in ("bronze.bank_card_transactions", "silver.merchants", "gold.fraud_kpis_daily"):
        assert table in message


def test_other_catalogs_and_three_part_redshift_names_are_refused(engine: LakeQueryEngine) -> None:
    with pytest.raises(UnknownTableError, match="awsdatacatalog"):
        engine.query("SELECT * FROM hive.bronze.bank_card_transactions", "athena")
    with pytest.raises(UnknownTableError, match="external schemas"):
        engine.query("SELECT * FROM dev.bronze.bank_card_transactions", "redshift")


def test_syntax_errors_and_several_statements(engine: LakeQueryEngine) -> None:
    with pytest.raises(SqlSyntaxError, match="not valid athena SQL"):
        engine.query("SELEC 1", "athena")
    with pytest.raises(SqlSyntaxError, match="one statement"):
        engine.query("SELECT 1; SELECT 2", "athena")


def test_same_name_in_two_namespaces_needs_aliases(engine: LakeQueryEngine) -> None:
    engine.catalog.create_table_if_not_exists(
        "gold.merchants", schema=engine.catalog.load_table("silver.merchants").schema()
    )
    try:
        with pytest.raises(UnsupportedSqlError, match="give them aliases"):
            engine.query(
                "SELECT silver.merchants.merchant_id FROM silver.merchants, gold.merchants", "athena"
            )
        with pytest.raises(UnknownTableError, match="ambiguous"):
            engine.query("SELECT * FROM merchants", "athena")
        rows = engine.query(
            "SELECT count(*) FROM silver.merchants s "
            "LEFT JOIN gold.merchants g ON s.merchant_id = g.merchant_id",
            "athena",
        ).rows
        assert rows[0][0] == engine.query("SELECT count(*) FROM silver.merchants", "athena").rows[0][0] > 0
    finally:
        engine.catalog.drop_table("gold.merchants")


def test_integer_division_is_exact_and_fails_on_zero(engine: LakeQueryEngine) -> None:
    big = 9007199254740993  # 2^53 + 1: a DOUBLE division would answer ...992
    assert engine.query(f"SELECT {big} / 1, -7 / 2, 7 / -2", "athena").rows == [(big, -3, -3)]
    with pytest.raises(SqlError, match="Division by zero"):
        engine.query(f"SELECT count(*) / (count(*) - count(*)) FROM {TX}", "athena")
    with pytest.raises(SqlError, match="Division by zero"):
        engine.query(f"SELECT _offset / 0 FROM {TX}", "redshift")
