"""Decoded records to bronze rows and Arrow tables (no services)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from iceberg.rows import ArrowBuilder, KafkaMeta, cdc_row, event_row
from iceberg.tables import bronze_tables
from riverbank.settings import load_settings
from tests.iceberg.lakekit import payment

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def meta(offset: int, schema_id: int | None = 3) -> KafkaMeta:
    return KafkaMeta("bankdb.public.accounts", 0, offset, NOW, '{"account_id": 7}', schema_id, NOW)


def account(balance: str) -> dict[str, object]:
    # As Debezium's AvroConverter sends it: MicroTimestamp longs, decimals as Decimal.
    return {
        "account_id": 7,
        "customer_id": 3,
        "iban": "DE00",
        "currency": "EUR",
        "account_type": "CURRENT",
        "status": "OPEN",
        "balance": Decimal(balance),
        "credit_limit": None,
        "opened_at": 1_767_225_600_000_000,
        "closed_at": None,
        "updated_at": 1_767_225_600_123_456,
    }


def test_debezium_envelopes_and_tombstones_become_cdc_rows() -> None:
    table_def = bronze_tables(load_settings(), ["bankdb.public.accounts"])["bankdb.public.accounts"]
    builder = ArrowBuilder.of(table_def.schema)
    update = {
        "before": account("10.00"),
        "after": account("12.50"),
        "source": {"lsn": 123456, "txId": 789, "table": "accounts"},
        "op": "u",
        "ts_ms": 1_767_225_601_000,
    }
    rows = [cdc_row(update, meta(0)), cdc_row(None, meta(1, None))]
    arrow, bad = builder.split(rows)
    assert bad == []
    first, tombstone = arrow.to_pylist()
    assert first["op"] == "u" and first["source_lsn"] == 123456 and first["source_txid"] == 789
    assert first["after"]["balance"] == Decimal("12.50") and first["before"]["balance"] == Decimal("10.00")
    assert first["after"]["updated_at"] == dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
    assert tombstone["op"] is None and tombstone["after"] is None and tombstone["_offset"] == 1


def test_a_value_that_breaks_the_table_types_is_split_out_with_its_reason() -> None:
    table_def = bronze_tables(load_settings(), ["bank.payments"])["bank.payments"]
    builder = ArrowBuilder.of(table_def.schema)
    good = event_row(payment(1, event_id=uuid.UUID(int=1)), meta(0))  # uuid objects become strings
    too_wide = event_row(payment(2, amount=Decimal("12345678901234567890.5")), meta(1))
    arrow, bad = builder.split([good, too_wide])
    assert arrow.num_rows == 1 and arrow.to_pylist()[0]["event_id"] == str(uuid.UUID(int=1))
    assert [index for index, _ in bad] == [1]
    assert bad[0][1]  # the reason is kept for the quarantine table
