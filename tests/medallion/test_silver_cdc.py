"""CDC into silver current-state and SCD2 tables, on real Iceberg files (no services)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from iceberg.silver import merge
from iceberg.silver.refresh import CDC_TARGETS, SilverLake, refresh_cdc
from iceberg.silver.store import read_bookmark
from tests.medallion.bronze import T0, Bronze, account, card, change, customer

ACCOUNTS = next(t for t in CDC_TARGETS if t.table == "accounts")
CUSTOMERS = next(t for t in CDC_TARGETS if t.table == "customers")
HISTORY = next(t for t in CDC_TARGETS if t.table == "customers_history")
CARDS = next(t for t in CDC_TARGETS if t.table == "cards")
TOPIC = "bankdb.public.accounts"


def rows(silver: SilverLake, name: str) -> list[dict[str, Any]]:
    table = silver.catalog.load_table(f"silver.{name}")
    return table.scan().to_arrow().to_pylist()


def balances(silver: SilverLake) -> dict[int, Decimal]:
    return {r["account_id"]: r["balance"] for r in rows(silver, "accounts")}


def test_inserts_updates_deletes_and_tombstones_give_the_current_state(
    bronze: Bronze, silver: SilverLake
) -> None:
    bronze.write(
        TOPIC,
        [
            change("r", None, account(10, "100.00"), 100),
            change("c", None, account(11, "5.00"), 110),
            change("c", None, account(12, "7.00"), 120),
            change("u", account(10, "100.00"), account(10, "80.00"), 130),
            change("d", account(11, "5.00"), None, 140),
            change(None, None, None, None),  # the tombstone after the delete
        ],
    )
    result = refresh_cdc(silver, ACCOUNTS)
    assert balances(silver) == {10: Decimal("80.00"), 12: Decimal("7.00")}
    assert (result.read, result.applied, result.rejected) == (6, 5, 0)

    # A later batch: update 12 twice (the last LSN wins) and delete 10.
    bronze.write(
        TOPIC,
        [
            change("u", account(12, "7.00"), account(12, "9.00"), 150),
            change("u", account(12, "9.00"), account(12, "11.50"), 160),
            change("d", account(10, "80.00"), None, 170),
        ],
    )
    refresh_cdc(silver, ACCOUNTS)
    assert balances(silver) == {12: Decimal("11.50")}
    (row,) = rows(silver, "accounts")
    assert (row["_lsn"], row["_bronze_offset"]) == (160, 7)


def test_out_of_order_and_duplicate_deliveries_do_not_regress_a_row(
    bronze: Bronze, silver: SilverLake
) -> None:
    # Within one batch, bronze order is not LSN order (two partitions, a redelivery).
    bronze.write(TOPIC, [change("u", None, account(20, "30.00"), 300)], partition=1)
    bronze.write(
        TOPIC,
        [
            change("c", None, account(20, "10.00"), 200),
            change("u", None, account(20, "20.00"), 250),
            change("c", None, account(20, "10.00"), 200),  # duplicate delivery
        ],
        partition=0,
    )
    refresh_cdc(silver, ACCOUNTS)
    assert balances(silver) == {20: Decimal("30.00")}
    # Across batches: a late, older change and a redelivered one are ignored.
    bronze.write(
        TOPIC,
        [change("u", None, account(20, "25.00"), 280), change("u", None, account(20, "30.00"), 300)],
    )
    result = refresh_cdc(silver, ACCOUNTS)
    assert balances(silver) == {20: Decimal("30.00")}
    assert (result.applied, result.duplicates) == (0, 2)


def test_malformed_changes_are_quarantined_with_the_reason(bronze: Bronze, silver: SilverLake) -> None:
    bronze.write(
        TOPIC,
        [
            change("x", None, account(30, "1.00"), 1),
            change("u", None, None, 2),
            change("c", None, account(31, "2.00"), 3),
        ],
    )
    result = refresh_cdc(silver, ACCOUNTS)
    assert result.rejected == 2
    assert balances(silver) == {31: Decimal("2.00")}
    quarantined = silver.catalog.load_table("silver.quarantine").scan().to_arrow().to_pylist()
    assert sorted((q["kafka_offset"], q["reason"]) for q in quarantined) == [
        (0, "unknown Debezium op 'x'"),
        (1, "op 'u' without after.account_id"),
    ]


def test_customers_keep_scd2_history(bronze: Bronze, silver: SilverLake) -> None:
    t1, t2, t3 = (T0 + dt.timedelta(hours=h) for h in (1, 2, 3))
    bronze.write(
        "bankdb.public.customers",
        [
            change("c", None, customer(1), 10, T0),
            change("c", None, customer(2), 11, T0),
            change("u", customer(1), customer(1, country="FR"), 20, t1),
        ],
    )
    refresh_cdc(silver, HISTORY)
    bronze.write(
        "bankdb.public.customers",
        [
            change("u", customer(1, country="FR"), customer(1, country="DE"), 30, t2),
            change("u", customer(1), customer(1, country="FR"), 20, t1),  # redelivered: no new version
            change("d", customer(2), None, 40, t3),
            change("r", None, customer(1, country="DE"), 50, t3),  # a re-snapshot: same row
        ],
    )
    refresh_cdc(silver, HISTORY)
    history = sorted(rows(silver, "customers_history"), key=lambda r: (r["customer_id"], r["valid_from"]))
    assert [
        (r["customer_id"], r["country"], r["valid_from"], r["valid_to"], r["is_current"]) for r in history
    ] == [
        (1, "GB", T0, t1, False),
        (1, "FR", t1, t2, False),
        (1, "DE", t2, None, True),
        (2, "GB", T0, t3, False),  # deleted: closed, nothing current
    ]


def test_a_crash_between_silver_commits_applies_each_change_once(
    bronze: Bronze, silver: SilverLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = "bankdb.public.customers"
    bronze.write(topic, [change("c", None, customer(5), 1, T0)])
    refresh_cdc(silver, CUSTOMERS)
    refresh_cdc(silver, HISTORY)
    t1 = T0 + dt.timedelta(minutes=5)
    bronze.write(topic, [change("u", customer(5), customer(5, kyc_status="EXPIRED"), 2, t1)])

    # The process dies inside the history table's commit, after customers committed.
    real_commit = merge.commit

    def dying_commit(table: Any, *args: Any, **kwargs: Any) -> None:
        if table.name()[-1] == "customers_history":
            raise SystemExit("killed")
        real_commit(table, *args, **kwargs)

    monkeypatch.setattr(merge, "commit", dying_commit)
    refresh_cdc(silver, CUSTOMERS)
    with pytest.raises(SystemExit):
        refresh_cdc(silver, HISTORY)
    monkeypatch.setattr(merge, "commit", real_commit)

    # Restart: both passes run again from their own bookmarks.
    assert refresh_cdc(silver, CUSTOMERS).read == 0
    assert refresh_cdc(silver, HISTORY).applied == 1
    history = rows(silver, "customers_history")
    assert sorted((r["kyc_status"], r["is_current"]) for r in history) == [
        ("EXPIRED", True),
        ("VERIFIED", False),
    ]
    assert [r["kyc_status"] for r in rows(silver, "customers")] == ["EXPIRED"]
    table = silver.catalog.load_table("silver.customers_history")
    assert read_bookmark(table) == {"bronze.bankdb_public_customers": {0: 1}}
    assert (
        table.current_snapshot().summary["riverbank.bookmark"] == '{"bronze.bankdb_public_customers":{"0":1}}'
    )


def test_a_batch_rewrites_only_the_buckets_it_touches(bronze: Bronze, silver: SilverLake) -> None:
    bronze.write(TOPIC, [change("c", None, account(a, "1.00"), a) for a in range(40, 48)])
    refresh_cdc(silver, ACCOUNTS)
    table = silver.catalog.load_table("silver.accounts")
    before = {f.file.file_path: f.file.partition[0] for f in table.scan().plan_files()}
    assert len(set(before.values())) == 4  # 4 buckets configured in the fixture
    bronze.write(TOPIC, [change("u", None, account(41, "2.00"), 100)])  # 41 % 4 == 1
    result = refresh_cdc(silver, ACCOUNTS)
    after = {
        f.file.file_path: f.file.partition[0]
        for f in silver.catalog.load_table("silver.accounts").scan().plan_files()
    }
    assert {p: b for p, b in after.items() if b != 1} == {p: b for p, b in before.items() if b != 1}
    assert [b for p, b in after.items() if p not in before] == [1]
    assert (result.applied, balances(silver)[41]) == (1, Decimal("2.00"))


def test_cards_with_a_pan_as_token_are_tokenized(bronze: Bronze, silver: SilverLake) -> None:
    pan = "4111 1111 1111 1111"
    bronze.write(
        "bankdb.public.cards", [change("c", None, card(1, pan), 1), change("c", None, card(2, "tok_ab12"), 2)]
    )
    refresh_cdc(silver, CARDS)
    tokens = {r["card_id"]: r["card_token"] for r in rows(silver, "cards")}
    assert tokens[2] == "tok_ab12"
    assert (
        tokens[1].startswith("pan_") and tokens[1].endswith("_1111") and "4111111111111111" not in tokens[1]
    )


def test_a_commit_on_a_stale_state_fails_instead_of_applying_twice(
    bronze: Bronze, silver: SilverLake
) -> None:
    from pyiceberg.exceptions import CommitFailedException

    from iceberg.silver.store import commit

    bronze.write(TOPIC, [change("c", None, account(1, "1.00"), 1)])
    refresh_cdc(silver, ACCOUNTS)
    stale = silver.catalog.load_table("silver.accounts")
    bronze.write(TOPIC, [change("u", None, account(1, "2.00"), 2)])
    refresh_cdc(silver, ACCOUNTS)  # another refresher got there first
    with pytest.raises(CommitFailedException):
        commit(stale, {"x": {0: 9}}, append=stale.scan().to_arrow())
    assert balances(silver) == {1: Decimal("2.00")}
