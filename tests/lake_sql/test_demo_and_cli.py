"""The demo step and the `riverbank sql` / `riverbank aws ddl` commands on the test lake."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from iceberg.sql.demo import demo_step
from riverbank import cli
from riverbank.settings import Settings
from tests.lake_sql.lake_data import LakeData


@pytest.fixture
def lake_env(file_lake: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RIVERBANK_LAKE__CATALOG_URI", file_lake.lake.catalog_uri or "")
    monkeypatch.setenv("RIVERBANK_LAKE__WAREHOUSE", file_lake.lake.warehouse or "")
    return file_lake


def test_demo_step_prints_counts_and_answers(file_lake: Settings, lake_data: LakeData) -> None:
    console = Console(record=True, width=200)
    demo_step(file_lake, console)
    text = console.export_text()
    assert re.search(rf"bronze\.bank_card_transactions\s+│\s+{lake_data.transactions.num_rows:,}\s", text)
    assert re.search(rf"silver\.merchants\s+│\s+{lake_data.merchants.num_rows:,}\s", text)
    for title in (
        "per day and status (Athena)",
        "per day and channel (Redshift)",
        "Newest transactions (Redshift)",
    ):
        assert title in text
    assert "riverbank:" not in text and "cannot" not in text, text


def _invoke(*args: str) -> tuple[int, str]:
    cli._register_subcommands()
    result = CliRunner().invoke(cli.app, list(args))
    return result.exit_code, result.output


def test_sql_command_json_csv_and_errors(lake_env: Settings, lake_data: LakeData) -> None:
    query = "SELECT status, count(*) AS n FROM bronze.bank_card_transactions GROUP BY status ORDER BY status"
    expected: dict[str, int] = {}
    for row in lake_data.transactions.to_pylist():
        expected[row["status"]] = expected.get(row["status"], 0) + 1

    code, output = _invoke("sql", query, "--json")
    assert code == 0, output
    payload = json.loads(output)
    assert payload["columns"] == ["status", "n"]
    assert {r["status"]: r["n"] for r in payload["rows"]} == expected
    assert list(payload["snapshots"]) == ["bronze.bank_card_transactions"]

    code, output = _invoke("sql", query.replace("count(*)", "COUNT(*)"), "--dialect", "redshift", "--csv")
    assert code == 0, output
    assert list(csv.reader(io.StringIO(output))) == [
        ["status", "n"],
        *[[s, str(n)] for s, n in sorted(expected.items())],
    ]

    code, output = _invoke("sql", "SELECT avg(amount) FROM bronze.bank_card_transactions")
    assert code == 2
    assert "DECIMAL average" in output


def test_aws_ddl_needs_the_role_and_names_the_key(
    lake_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIVERBANK_AWS__REGION", "eu-west-1")
    code, output = _invoke("aws", "ddl")
    assert code != 0
    assert "query.redshift_iam_role" in output
    monkeypatch.setenv("RIVERBANK_QUERY__REDSHIFT_IAM_ROLE", "arn:aws:iam::1:role/r")
    code, output = _invoke("aws", "ddl", "--json")
    assert code == 0, output
    files = json.loads(output)
    assert "athena/bronze.bank_card_transactions.sql" in files
    assert "FROM DATA CATALOG DATABASE 'gold'" in files["redshift/spectrum_schemas.sql"]
