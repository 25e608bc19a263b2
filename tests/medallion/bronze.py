"""Bronze rows for medallion tests, written with pyiceberg into the lake's bronze tables.

Uses the bronze definitions of ``iceberg.tables`` (what the sink writes), so silver is tested
against the real bronze layout; the Kafka round trip is the sink's tests' business.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa

from iceberg.catalog import ensure_namespaces
from iceberg.tables import bronze_tables, create_or_load
from riverbank.settings import Settings

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_offsets: dict[tuple[str, int], int] = {}


class Bronze:
    def __init__(self, settings: Settings, catalog: Any) -> None:
        self.settings = settings
        self.catalog = catalog
        self.next_offset: dict[tuple[str, int], int] = {}
        ensure_namespaces(catalog, settings)

    def write(self, topic: str, values: list[dict[str, Any]], partition: int = 0) -> list[int]:
        """Append ``values`` (value columns) with consecutive offsets; returns the offsets."""
        definition = bronze_tables(self.settings, [topic])[topic]
        table = create_or_load(self.catalog, definition)
        rows = []
        offsets = []
        for value in values:
            offset = self.next_offset.get((topic, partition), 0)
            self.next_offset[(topic, partition)] = offset + 1
            offsets.append(offset)
            rows.append(
                {
                    **value,
                    "_topic": topic,
                    "_partition": partition,
                    "_offset": offset,
                    "_timestamp": T0,
                    "_key": None,
                    "_schema_id": 1,
                    "_ingested_at": T0,
                }
            )
        table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))
        return offsets


def customer(cid: int, **changes: Any) -> dict[str, Any]:
    row = {
        "customer_id": cid,
        "external_ref": f"C{cid:06d}",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada{cid}@example.org",
        "phone": "+44 20 7946 0000",
        "date_of_birth": dt.date(1990, 1, 2),
        "country": "GB",
        "kyc_status": "VERIFIED",
        "risk_rating": "LOW",
        "created_at": T0,
        "updated_at": T0,
    }
    row.update(changes)
    return row


def account(aid: int, balance: str, **changes: Any) -> dict[str, Any]:
    row = {
        "account_id": aid,
        "customer_id": aid // 10,
        "iban": f"GB00RVBK{aid:014d}",
        "currency": "EUR",
        "account_type": "CURRENT",
        "status": "OPEN",
        "balance": Decimal(balance),
        "credit_limit": None,
        "opened_at": T0,
        "closed_at": None,
        "updated_at": T0,
    }
    row.update(changes)
    return row


def card(card_id: int, token: str, **changes: Any) -> dict[str, Any]:
    row = {
        "card_id": card_id,
        "account_id": 10,
        "customer_id": 1,
        "card_token": token,
        "pan_last4": token[-4:],
        "scheme": "VISA",
        "card_type": "DEBIT",
        "status": "ACTIVE",
        "expiry_month": 12,
        "expiry_year": 2030,
        "daily_limit": Decimal("500.00"),
        "issued_at": T0,
        "updated_at": T0,
    }
    row.update(changes)
    return row


def change(
    op: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    lsn: int | None,
    ts: dt.datetime = T0,
) -> dict[str, Any]:
    """A Debezium envelope as bronze stores it; op None with no images is a tombstone."""
    return {
        "op": op,
        "ts_ms": int(ts.timestamp() * 1000),
        "before": before,
        "after": after,
        "source_lsn": lsn,
        "source_txid": None if lsn is None else 1000 + lsn,
    }


def card_transaction(
    event_id: str,
    *,
    customer: str = "1",
    amount: str = "10.00",
    status: str = "APPROVED",
    channel: str = "POS",
    merchant: str = "M1",
    when: dt.datetime = T0,
    card_id: str = "tok_card1",
    currency: str = "EUR",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "authorization_id": f"auth-{event_id}",
        "card_id": card_id,
        "account_id": "10",
        "customer_id": customer,
        "merchant": {
            "merchant_id": merchant,
            "name": f"Shop {merchant}",
            "mcc": "5411",
            "country": "FR",
            "city": "Paris",
            "latitude": 48.85,
            "longitude": 2.35,
        },
        "amount": Decimal(amount),
        "currency": currency,
        "billing_amount": Decimal(amount),
        "billing_currency": currency,
        "channel": channel,
        "entry_mode": "CHIP",
        "status": status,
        "decline_reason": None if status != "DECLINED" else "51",
        "card_present": True,
        "device_id": None,
        "ip_address": None,
        "event_time": when,
        "attributes": {},
    }


def alert(alert_id: str, event_id: str, rules: list[str], when: dt.datetime = T0) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "source": "CARD",
        "source_event_id": event_id,
        "customer_id": "1",
        "account_id": "10",
        "card_id": "tok_card1",
        "amount": Decimal("1.00"),
        "currency": "EUR",
        "score": 0.9,
        "severity": "HIGH",
        "rule_ids": rules,
        "reasons": [],
        "model_version": "test",
        "event_time": when,
        "alert_time": when,
    }


def label(
    label_id: str,
    pattern: str,
    event_ids: list[str],
    first: dt.datetime = T0,
    last: dt.datetime | None = None,
) -> dict[str, Any]:
    return {
        "label_id": label_id,
        "pattern": pattern,
        "topic": "bank.card.transactions",
        "event_ids": event_ids,
        "context_event_ids": [],
        "customer_id": "1",
        "account_id": "10",
        "card_id": "tok_card1",
        "first_event_time": first,
        "last_event_time": last or first,
        "description": "test",
    }
