"""The ledger invariant against a real PostgreSQL: silver balances equal the source's.

A private PostgreSQL (only that component): the test owns the ``accounts`` table's content, which
the session stack shares with the producers' tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from iceberg.catalog import load_lake_catalog
from iceberg.medallion import check_balances, compare_balances
from iceberg.silver.pii import protector
from iceberg.silver.refresh import CDC_TARGETS, SilverLake, refresh_cdc
from producers.bankdb import DDL
from riverbank.settings import Settings, load_settings
from tests.medallion.bronze import Bronze, account, change
from tests.stack_harness import environ, running_stack

ACCOUNTS = next(t for t in CDC_TARGETS if t.table == "accounts")


def test_compare_balances_names_each_difference() -> None:
    report = compare_balances({1: Decimal("1.00"), 2: Decimal("2.00")}, {2: Decimal("2.50"), 3: Decimal("0")})
    assert not report.ok
    assert [(m.account_id, m.source_balance, m.silver_balance) for m in report.mismatches] == [
        (1, Decimal("1.00"), None),
        (2, Decimal("2.00"), Decimal("2.50")),
        (3, None, Decimal("0")),
    ]


@pytest.fixture(scope="module")
def postgres_settings() -> Iterator[Settings]:
    with running_stack("silver-balances", ["postgres"]) as handle, environ(handle.env):
        yield load_settings()


def _connect(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    db = settings.source_db
    return psycopg.connect(
        host=db.host,
        port=db.port,
        dbname=db.database,
        user=db.user,
        password=db.password_value(),
        autocommit=True,
    )


@pytest.mark.integration
def test_silver_balances_follow_the_source_database(postgres_settings: Settings) -> None:
    # The lake in this test's own directory; the database of the private stack.
    settings = load_settings(
        source_db=postgres_settings.source_db.model_dump(),
        stack={"state_dir": postgres_settings.stack.state_dir / "balances-test"},
    )
    catalog = load_lake_catalog(settings)
    silver = SilverLake(settings, catalog, protector(settings))
    bronze = Bronze(settings, catalog)
    now = dt.datetime(2026, 3, 2)
    with _connect(settings) as conn:
        conn.execute(DDL)
        conn.execute(
            "INSERT INTO customers VALUES"
            " (1, 'C1', 'Ada', 'L', NULL, NULL, NULL, 'GB', 'VERIFIED', NULL, %s, %s)",
            (now, now),
        )
        for account_id, balance in ((10, "100.00"), (11, "250.50")):
            conn.execute(
                "INSERT INTO accounts VALUES"
                " (%s, 1, 'GB00', 'EUR', 'CURRENT', 'OPEN', %s, NULL, %s, NULL, %s)",
                (account_id, Decimal(balance), now, now),
            )
        # The change data capture of those inserts, as Debezium delivers them.
        bronze.write(
            "bankdb.public.accounts",
            [change("c", None, account(10, "100.00"), 1), change("c", None, account(11, "250.50"), 2)],
        )
        refresh_cdc(silver, ACCOUNTS)
        assert check_balances(settings, catalog).ok

        conn.execute("UPDATE accounts SET balance = balance - 20.25 WHERE account_id = 11")
        report = check_balances(settings, catalog)
        assert [(m.account_id, m.source_balance, m.silver_balance) for m in report.mismatches] == [
            (11, Decimal("230.25"), Decimal("250.50"))
        ]
        bronze.write("bankdb.public.accounts", [change("u", account(11, "250.50"), account(11, "230.25"), 3)])
        refresh_cdc(silver, ACCOUNTS)
        report = check_balances(settings, catalog)
        assert report.ok and (report.accounts_source, report.accounts_silver) == (2, 2)
