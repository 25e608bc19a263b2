"""The one view of a transaction that rules score, mapped from the card and payment records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple


class Source(StrEnum):
    CARD = "CARD"
    PAYMENT = "PAYMENT"


class ScoredEvent(NamedTuple):
    """Immutable, and a tuple rather than a frozen dataclass: one is built per scored event, and a
    frozen dataclass's ``__init__`` sets each of these 16 fields through ``object.__setattr__``."""

    source: Source
    event_id: str
    #: The state key: the card for card transactions, the debtor account for payments.
    key: str
    customer_id: str
    account_id: str
    card_id: str | None
    amount: Decimal
    currency: str
    event_time_ms: int
    merchant_id: str | None = None
    mcc: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    device_id: str | None = None
    card_present: bool | None = None


def millis(value: Any) -> int:
    """Avro timestamp-millis arrives as int (raw) or datetime (decoded by fastavro)."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def from_card_transaction(record: Mapping[str, Any]) -> ScoredEvent:
    merchant = record["merchant"]
    return ScoredEvent(
        source=Source.CARD,
        event_id=str(record["event_id"]),
        key=record["card_id"],
        customer_id=record["customer_id"],
        account_id=record["account_id"],
        card_id=record["card_id"],
        amount=Decimal(record["billing_amount"]),
        currency=record["billing_currency"],
        event_time_ms=millis(record["event_time"]),
        merchant_id=merchant["merchant_id"],
        mcc=merchant["mcc"],
        country=merchant["country"],
        latitude=merchant.get("latitude"),
        longitude=merchant.get("longitude"),
        device_id=record.get("device_id"),
        card_present=record["card_present"],
    )


def from_payment(record: Mapping[str, Any]) -> ScoredEvent:
    return ScoredEvent(
        source=Source.PAYMENT,
        event_id=str(record["event_id"]),
        key=record["debtor_account_id"],
        customer_id=record["debtor_customer_id"],
        account_id=record["debtor_account_id"],
        card_id=None,
        amount=Decimal(record["amount"]),
        currency=record["currency"],
        event_time_ms=millis(record["event_time"]),
        country=record.get("ip_country"),
        device_id=record.get("device_id"),
    )
