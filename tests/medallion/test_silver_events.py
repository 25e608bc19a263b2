"""Event tables in silver: dedup on business ids, PII protection end to end (no services)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from iceberg.silver.refresh import CDC_TARGETS, EVENT_TARGETS, SilverLake, refresh_cdc, refresh_events
from tests.medallion.bronze import T0, Bronze, card_transaction, change, customer

TXNS = next(t for t in EVENT_TARGETS if t.table == "card_transactions")
PAYMENTS = next(t for t in EVENT_TARGETS if t.table == "payments")
CUSTOMERS = next(t for t in CDC_TARGETS if t.table == "customers")
PAN = "4000 0566 5566 5556"


def test_events_are_deduplicated_within_and_across_batches(bronze: Bronze, silver: SilverLake) -> None:
    later = T0 + dt.timedelta(days=1)
    bronze.write(
        "bank.card.transactions", [card_transaction("e1"), card_transaction("e2"), card_transaction("e1")]
    )
    first = refresh_events(silver, TXNS)
    bronze.write("bank.card.transactions", [card_transaction("e2"), card_transaction("e3", when=later)])
    second = refresh_events(silver, TXNS)
    ids = sorted(
        r["event_id"]
        for r in silver.catalog.load_table("silver.card_transactions").scan().to_arrow().to_pylist()
    )
    assert ids == ["e1", "e2", "e3"]
    assert (first.applied, first.duplicates, second.applied, second.duplicates) == (2, 1, 1, 1)


def test_no_raw_pan_email_or_phone_reaches_silver(bronze: Bronze, silver: SilverLake) -> None:
    email, phone = "grace.hopper@example.org", "+1 202 555 0147"
    bronze.write("bankdb.public.customers", [change("c", None, customer(7, email=email, phone=phone), 1)])
    txn = card_transaction("e9", card_id=PAN.replace(" ", ""))
    txn["attributes"] = {"note": f"pan {PAN}"}
    bronze.write("bank.card.transactions", [txn])
    bronze.write(
        "bank.payments",
        [
            {
                "event_id": "p1",
                "payment_id": "pay-1",
                "payment_type": "SEPA_CREDIT",
                "debtor_account_id": "10",
                "debtor_customer_id": "7",
                "creditor_account_id": None,
                "creditor_iban": "FR7630006000011234567890189",
                "creditor_name": "Acme",
                "creditor_bic": None,
                "creditor_country": "FR",
                "amount": Decimal("12.00"),
                "currency": "EUR",
                "status": "SETTLED",
                "remittance_info": f"card {PAN} refund",
                "channel": "WEB",
                "requested_execution_date": dt.date(2026, 3, 2),
                "event_time": T0,
                "device_id": None,
                "ip_address": None,
                "ip_country": None,
            }
        ],
    )
    refresh_cdc(silver, CUSTOMERS)
    refresh_events(silver, TXNS)
    refresh_events(silver, PAYMENTS)
    dump = ""
    for name in ("customers", "card_transactions", "payments"):
        dump += json.dumps(
            silver.catalog.load_table(f"silver.{name}").scan().to_arrow().to_pylist(), default=str
        )
    for raw in (email, phone, "2025550147", PAN, PAN.replace(" ", "")):
        assert raw not in dump
    token = silver.pii.tokenize_pan(PAN)
    (row,) = silver.catalog.load_table("silver.card_transactions").scan().to_arrow().to_pylist()
    assert row["card_id"] == token and row["attributes"] == [("note", f"pan {token}")]
    (cust,) = silver.catalog.load_table("silver.customers").scan().to_arrow().to_pylist()
    assert cust["email_hash"] == silver.pii.hash_email(email) and cust["phone_hash"] == silver.pii.hash_phone(
        phone
    )
