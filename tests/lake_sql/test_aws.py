"""s3:// warehouses and the Glue catalog against moto's server: queries, Athena DDL, Spectrum DDL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlglot
from sqlglot import exp

from iceberg.catalog import load_lake_catalog
from iceberg.sql.query import LakeQueryEngine, row_counts
from infra.aws.cli import generate
from riverbank.errors import ConfigError
from riverbank.settings import Settings, load_settings
from tests.lake_sql.lake_data import TRANSACTIONS, LakeData, make_data

BUCKET = "riverbank-lake"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        # moto accepts any key; these make boto3, pyarrow and DuckDB sign requests.
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            import boto3

            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            s3.close()
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(autouse=True)
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # isolated_config clears RIVERBANK_* only; the AWS variables must hold in every test here.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _settings(tmp_path_text: str, endpoint: str, **lake: str) -> Settings:
    return load_settings(
        stack={"state_dir": tmp_path_text},
        lake={"s3_endpoint": endpoint, **lake},
        aws={"region": "us-east-1"},
        query={"redshift_iam_role": "arn:aws:iam::123456789012:role/spectrum"},
    )


def test_queries_over_an_s3_warehouse(moto_endpoint: str, tmp_path: pytest.TempPathFactory) -> None:
    settings = _settings(str(tmp_path), moto_endpoint, warehouse=f"s3://{BUCKET}/sql-catalog")
    lake_data = make_data(rows=200)  # every object goes through the S3 API: keep it small
    catalog = load_lake_catalog(settings)
    catalog.create_namespace("bronze")
    catalog.create_table("bronze.bank_card_transactions", schema=TRANSACTIONS).append(lake_data.transactions)
    with LakeQueryEngine(settings) as engine:
        result = engine.query(
            "SELECT channel, count(*), sum(amount) FROM awsdatacatalog.bronze.bank_card_transactions "
            "GROUP BY channel ORDER BY channel",
            "athena",
        )
        location = engine.catalog.load_table("bronze.bank_card_transactions").metadata_location
        assert location.startswith(f"s3://{BUCKET}/")
        expected: dict[str, list[object]] = {}
        for row in lake_data.transactions.to_pylist():
            entry = expected.setdefault(row["channel"], [0, 0])
            entry[0] += 1
            entry[1] += row["amount"] or 0
        assert result.rows == [(c, n, total) for c, (n, total) in sorted(expected.items())]
        counts = row_counts(settings, engine)
    assert counts == {"bronze.bank_card_transactions": lake_data.transactions.num_rows}


def _glue_lake(settings: Settings) -> None:
    from pyiceberg.transforms import BucketTransform, DayTransform

    catalog = load_lake_catalog(settings)
    catalog.create_namespace_if_not_exists("bronze")
    catalog.create_namespace_if_not_exists("gold")
    table = catalog.create_table("bronze.bank_card_transactions", schema=TRANSACTIONS)
    with table.update_spec() as spec:
        spec.add_field("event_time", DayTransform(), "event_day")
        spec.add_field("card_id", BucketTransform(16), "card_bucket")


def test_glue_catalog_ddl_for_athena_and_spectrum(
    moto_endpoint: str, tmp_path: pytest.TempPathFactory, lake_data: LakeData
) -> None:
    settings = _settings(
        str(tmp_path),
        moto_endpoint,
        catalog="glue",
        glue_endpoint=moto_endpoint,
        warehouse=f"s3://{BUCKET}/glue",
    )
    _glue_lake(settings)
    catalog = load_lake_catalog(settings)
    table = catalog.load_table("bronze.bank_card_transactions")
    table.append(lake_data.first_commit.slice(0, 100))

    files = generate(settings)
    text = files["athena/bronze.bank_card_transactions.sql"]
    statement = sqlglot.parse_one(text, read="athena")
    assert isinstance(statement, exp.Create)
    schema = statement.this
    types = {col.name: col.args["kind"].sql("hive") for col in schema.expressions}
    assert types["event_id"] == "STRING"
    assert types["amount"] == "DECIMAL(18, 2)"
    assert types["fee"] == "DOUBLE"
    assert types["card_present"] == "BOOLEAN"
    assert types["_partition"] == "INT"
    assert types["_offset"] == "BIGINT"
    assert types["event_time"] == "TIMESTAMP"
    assert types["merchant"] == "STRUCT<merchant_id: STRING, name: STRING, country: STRING, city: STRING>"
    properties = {p.name: p.text("value") for p in statement.find_all(exp.Property)}
    assert properties.get("table_type") == "ICEBERG"
    assert statement.find(exp.LocationProperty).this.name == table.location()
    assert table.location().startswith(f"s3://{BUCKET}/glue")
    partitioned = statement.find(exp.PartitionedByProperty)
    assert partitioned is not None
    day, bucket = partitioned.this.expressions
    assert isinstance(day, exp.Day) and day.find(exp.Column).name == "event_time"
    assert isinstance(bucket, exp.PartitionedByBucket)
    assert (bucket.this.name, bucket.expression.to_py()) == ("card_id", 16)
    assert "-- note: bronze.bank_card_transactions.event_time: timestamptz" in text

    databases = files["athena/00_databases.sql"]
    for ns in ("bronze", "silver", "gold"):
        assert f"CREATE DATABASE IF NOT EXISTS `{ns}`" in databases
    spectrum = files["redshift/spectrum_schemas.sql"]
    assert (
        "CREATE EXTERNAL SCHEMA IF NOT EXISTS \"spectrum\" FROM DATA CATALOG DATABASE 'gold' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/spectrum' REGION 'us-east-1'" in spectrum
    )
    assert "\"bronze\" FROM DATA CATALOG DATABASE 'bronze'" in spectrum

    # The same Glue tables answer `riverbank sql` (the current snapshot, read from S3).
    with LakeQueryEngine(settings) as engine:
        rows = engine.query(
            "SELECT count(*) FROM awsdatacatalog.bronze.bank_card_transactions", "athena"
        ).rows
    assert rows == [(100,)]


def test_spectrum_ddl_needs_the_iam_role(moto_endpoint: str, tmp_path: pytest.TempPathFactory) -> None:
    from infra.aws.ddl import spectrum_schemas

    settings = load_settings(aws={"region": "us-east-1"})
    with pytest.raises(ConfigError, match=r"query\.redshift_iam_role"):
        spectrum_schemas(settings, ["bronze"])
