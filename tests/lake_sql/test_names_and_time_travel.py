"""Table names in both dialects, fully qualified column references, and time travel."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from iceberg.sql.errors import SnapshotNotFoundError, UnknownTableError
from iceberg.sql.query import LakeQueryEngine, row_counts
from tests.lake_sql.lake_data import LakeData

TX = "bank_card_transactions"


@pytest.mark.parametrize(
    ("dialect", "name"),
    [
        ("athena", f"awsdatacatalog.bronze.{TX}"),
        ("athena", f"bronze.{TX}"),
        ("athena", f'"AwsDataCatalog"."Bronze"."{TX.upper()}"'),
        ("athena", TX),
        ("redshift", f"bronze.{TX}"),
        ("redshift", TX),
    ],
)
def test_table_names(engine: LakeQueryEngine, lake_data: LakeData, dialect: str, name: str) -> None:
    rows = engine.query(f"SELECT count(*) FROM {name}", dialect).rows  # type: ignore[arg-type]
    assert rows == [(lake_data.transactions.num_rows,)]


def test_spectrum_schema_maps_to_the_configured_database(
    engine: LakeQueryEngine, lake_data: LakeData
) -> None:
    rows = engine.query("SELECT count(*) FROM spectrum.fraud_kpis_daily", "redshift").rows
    assert rows == [(lake_data.kpis.num_rows,)]
    query = engine.settings.query.model_copy(
        update={"redshift_spectrum_schema": "lake", "redshift_spectrum_database": "silver"}
    )
    settings = engine.settings.model_copy(update={"query": query})
    with LakeQueryEngine(settings, engine.catalog, engine.connection) as silver:
        rows = silver.query("SELECT count(*) FROM lake.merchants", "redshift").rows
    assert rows == [(lake_data.merchants.num_rows,)]
    with pytest.raises(UnknownTableError, match=r"lake\.merchants"):
        engine.query("SELECT count(*) FROM lake.merchants", "redshift")


def test_columns_qualified_with_database_and_catalog(engine: LakeQueryEngine, lake_data: LakeData) -> None:
    query = (
        f"SELECT awsdatacatalog.bronze.{TX}.card_id, count(*) FROM awsdatacatalog.bronze.{TX} "
        f"WHERE bronze.{TX}.channel = 'ATM' GROUP BY awsdatacatalog.bronze.{TX}.card_id ORDER BY 1"
    )
    expected: dict[str, int] = {}
    for row in lake_data.transactions.to_pylist():
        if row["channel"] == "ATM":
            expected[row["card_id"]] = expected.get(row["card_id"], 0) + 1
    assert engine.query(query, "athena").rows == sorted(expected.items())


def test_cte_shadows_a_table_of_the_same_name(engine: LakeQueryEngine) -> None:
    query = f"WITH {TX} AS (SELECT 42 AS answer) SELECT answer FROM {TX}"
    assert engine.query(query, "athena").rows == [(42,)]
    two = "WITH a AS (SELECT 1 AS x), b AS (SELECT 2 AS y) SELECT x, y FROM a, b"
    assert engine.query(two, "athena").rows == [(1, 2)]


def _commits(engine: LakeQueryEngine) -> list[tuple[int, int]]:
    table = engine.catalog.load_table(f"bronze.{TX}")
    return [(s.snapshot_id, s.timestamp_ms) for s in table.snapshots()]


def test_version_as_of_reads_exactly_that_snapshot(engine: LakeQueryEngine, lake_data: LakeData) -> None:
    (first_id, _), (second_id, _) = _commits(engine)[:2]
    table = engine.catalog.load_table(f"bronze.{TX}")
    for snapshot_id in (first_id, second_id):
        by_pyiceberg = table.scan(snapshot_id=snapshot_id).to_arrow().sort_by("event_id")
        result = engine.query(
            f"SELECT event_id, amount, event_time FROM bronze.{TX} "
            f"FOR VERSION AS OF {snapshot_id} ORDER BY event_id",
            "athena",
        )
        assert result.snapshots == {f"bronze.{TX}": snapshot_id}
        assert [r[0] for r in result.rows] == by_pyiceberg.column("event_id").to_pylist()
        assert [r[1] for r in result.rows] == by_pyiceberg.column("amount").to_pylist()
    first = engine.query(f"SELECT count(*) FROM bronze.{TX} FOR VERSION AS OF {first_id}", "athena").rows
    assert first == [(lake_data.first_commit.num_rows,)]
    # Athena engine v2 spelling, with an alias.
    v2 = engine.query(
        f"SELECT count(t.event_id) FROM bronze.{TX} FOR SYSTEM_VERSION AS OF {first_id} AS t", "athena"
    )
    assert v2.rows == first


def test_timestamp_as_of_picks_the_snapshot_current_then(
    engine: LakeQueryEngine, lake_data: LakeData
) -> None:
    (first_id, first_ms), (second_id, second_ms) = _commits(engine)[:2]
    between = datetime.fromtimestamp((first_ms + second_ms) / 2000, tz=UTC)
    if second_ms == first_ms:
        pytest.skip("both commits in the same millisecond")
    literal = between.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    result = engine.query(
        f"SELECT count(*) FROM bronze.{TX} FOR TIMESTAMP AS OF TIMESTAMP '{literal} UTC'", "athena"
    )
    assert result.rows == [(lake_data.first_commit.num_rows,)]
    assert result.snapshots == {f"bronze.{TX}": first_id}
    now = engine.query(f"SELECT count(*) FROM bronze.{TX} FOR SYSTEM_TIME AS OF current_timestamp", "athena")
    assert now.snapshots == {f"bronze.{TX}": second_id}
    assert now.rows == [(lake_data.transactions.num_rows,)]
    # One query reading two snapshots of one table: the rows the second commit added.
    diff = engine.query(
        f"SELECT count(*) FROM (SELECT event_id FROM bronze.{TX} EXCEPT "
        f"SELECT event_id FROM bronze.{TX} FOR VERSION AS OF {first_id})",
        "athena",
    )
    assert diff.rows == [(lake_data.transactions.num_rows - lake_data.first_commit.num_rows,)]


def test_time_travel_outside_the_history_names_the_table(engine: LakeQueryEngine) -> None:
    with pytest.raises(SnapshotNotFoundError, match=f"bronze.{TX} has no snapshot as of 2001"):
        engine.query(
            f"SELECT 1 FROM bronze.{TX} FOR TIMESTAMP AS OF TIMESTAMP '2001-01-01 00:00:00 UTC'", "athena"
        )
    with pytest.raises(SnapshotNotFoundError, match="has no snapshot 12345"):
        engine.query(f"SELECT 1 FROM bronze.{TX} FOR VERSION AS OF 12345", "athena")


def test_old_snapshot_keeps_its_schema(engine: LakeQueryEngine) -> None:
    """A column added later is absent from an older snapshot, exactly as pyiceberg reads it."""
    from pyiceberg.types import StringType

    table = engine.catalog.create_table("silver.evolving", schema=pa.schema([pa.field("id", pa.int64())]))
    try:
        table.append(pa.table({"id": pa.array([1, 2], pa.int64())}))
        old = table.current_snapshot()
        assert old is not None
        with table.update_schema() as update:
            update.add_column("note", StringType())
        table.append(pa.table({"id": pa.array([3], pa.int64()), "note": pa.array(["new"])}))
        now = engine.query("SELECT id, note FROM silver.evolving ORDER BY id", "athena").rows
        assert now == [(1, None), (2, None), (3, "new")]
        before = engine.query(f"SELECT * FROM silver.evolving FOR VERSION AS OF {old.snapshot_id}", "athena")
        expected = table.scan(snapshot_id=old.snapshot_id).to_arrow()
        assert before.columns == expected.column_names == ["id"]
        assert sorted(before.rows) == [(1,), (2,)]
    finally:
        engine.catalog.drop_table("silver.evolving")


def test_row_counts_and_an_empty_table(engine: LakeQueryEngine, lake_data: LakeData) -> None:
    engine.catalog.create_table("gold.never_written", schema=pa.schema([pa.field("k", pa.string())]))
    try:
        counts = row_counts(engine.settings, engine)
        assert counts == {
            f"bronze.{TX}": lake_data.transactions.num_rows,
            "gold.fraud_kpis_daily": lake_data.kpis.num_rows,
            "gold.never_written": 0,
            "silver.merchants": lake_data.merchants.num_rows,
        }
    finally:
        engine.catalog.drop_table("gold.never_written")
