"""Bronze rows to silver rows: typing, cleansing, PII protection (plain functions on dicts).

Bronze rows arrive as pyarrow's Python values of the bronze columns (the Avro fields at top
level plus Kafka metadata; CDC topics carry Debezium's ``op``/``before``/``after``/``source_lsn``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from iceberg.silver.pii import PiiProtector
from iceberg.silver.store import OFFSET_COLUMN, PARTITION_COLUMN

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1)

Row = dict[str, Any]


def ts(value: Any, *, unit: str = "us") -> dt.datetime | None:
    """A UTC datetime from a datetime (naive means UTC) or an epoch number in ``unit``."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    scale = {"us": 1, "ms": 1_000, "s": 1_000_000}[unit]
    return _EPOCH + dt.timedelta(microseconds=int(value) * scale)


def date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return _EPOCH_DAY + dt.timedelta(days=int(value))


def money(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value).quantize(Decimal("0.01")) if not isinstance(value, Decimal) else value


def text(value: Any) -> str | None:
    """Strings trimmed; empty becomes null (a cleansing rule, not a guess)."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def lineage(bronze: Mapping[str, Any]) -> Row:
    return {PARTITION_COLUMN: bronze.get("_partition"), OFFSET_COLUMN: bronze.get("_offset")}


# --- current-state rows (Debezium before/after images) -------------------------------------


def customer_row(image: Mapping[str, Any], pii: PiiProtector) -> Row:
    return {
        "customer_id": image["customer_id"],
        "external_ref": text(image.get("external_ref")),
        "first_name": text(image.get("first_name")),
        "last_name": text(image.get("last_name")),
        "email_hash": pii.hash_email(image.get("email")),
        "phone_hash": pii.hash_phone(image.get("phone")),
        "date_of_birth": date(image.get("date_of_birth")),
        "country": text(image.get("country")),
        "kyc_status": text(image.get("kyc_status")),
        "risk_rating": text(image.get("risk_rating")),
        "created_at": ts(image.get("created_at")),
        "updated_at": ts(image.get("updated_at")),
    }


def account_row(image: Mapping[str, Any], pii: PiiProtector) -> Row:
    return {
        "account_id": image["account_id"],
        "customer_id": image.get("customer_id"),
        "iban": text(image.get("iban")),
        "currency": text(image.get("currency")),
        "account_type": text(image.get("account_type")),
        "status": text(image.get("status")),
        "balance": money(image.get("balance")),
        "credit_limit": money(image.get("credit_limit")),
        "opened_at": ts(image.get("opened_at")),
        "closed_at": ts(image.get("closed_at")),
        "updated_at": ts(image.get("updated_at")),
    }


def card_row(image: Mapping[str, Any], pii: PiiProtector) -> Row:
    return {
        "card_id": image["card_id"],
        "account_id": image.get("account_id"),
        "customer_id": image.get("customer_id"),
        "card_token": pii.protect_card_id(text(image.get("card_token"))),
        "pan_last4": text(image.get("pan_last4")),
        "scheme": text(image.get("scheme")),
        "card_type": text(image.get("card_type")),
        "status": text(image.get("status")),
        "expiry_month": image.get("expiry_month"),
        "expiry_year": image.get("expiry_year"),
        "daily_limit": money(image.get("daily_limit")),
        "issued_at": ts(image.get("issued_at")),
        "updated_at": ts(image.get("updated_at")),
    }


# --- event rows ------------------------------------------------------------------------------


def card_transaction_row(b: Mapping[str, Any], pii: PiiProtector) -> Row:
    merchant = b.get("merchant") or {}
    attributes = b.get("attributes") or {}
    if isinstance(attributes, list):  # pyarrow gives a map as a list of (key, value) pairs
        attributes = dict(attributes)
    return {
        "event_id": text(b.get("event_id")),
        "authorization_id": text(b.get("authorization_id")),
        "card_id": pii.protect_card_id(text(b.get("card_id"))),
        "account_id": text(b.get("account_id")),
        "customer_id": text(b.get("customer_id")),
        "merchant_id": text(merchant.get("merchant_id")),
        "merchant_name": text(merchant.get("name")),
        "mcc": text(merchant.get("mcc")),
        "merchant_country": text(merchant.get("country")),
        "merchant_city": text(merchant.get("city")),
        "amount": money(b.get("amount")),
        "currency": text(b.get("currency")),
        "billing_amount": money(b.get("billing_amount")),
        "billing_currency": text(b.get("billing_currency")),
        "channel": text(b.get("channel")),
        "entry_mode": text(b.get("entry_mode")),
        "status": text(b.get("status")),
        "decline_reason": text(b.get("decline_reason")),
        "card_present": b.get("card_present"),
        "device_id": text(b.get("device_id")),
        "ip_address": text(b.get("ip_address")),
        "event_time": ts(b.get("event_time"), unit="ms"),
        "attributes": list(pii.scrub_map(attributes).items()),
        "_ingested_at": ts(b.get("_ingested_at")),
        **lineage(b),
    }


def payment_row(b: Mapping[str, Any], pii: PiiProtector) -> Row:
    return {
        "event_id": text(b.get("event_id")),
        "payment_id": text(b.get("payment_id")),
        "payment_type": text(b.get("payment_type")),
        "debtor_account_id": text(b.get("debtor_account_id")),
        "debtor_customer_id": text(b.get("debtor_customer_id")),
        "creditor_account_id": text(b.get("creditor_account_id")),
        "creditor_iban": text(b.get("creditor_iban")),
        "creditor_name": text(b.get("creditor_name")),
        "creditor_country": text(b.get("creditor_country")),
        "amount": money(b.get("amount")),
        "currency": text(b.get("currency")),
        "status": text(b.get("status")),
        "remittance_info": pii.scrub_text(text(b.get("remittance_info"))),
        "channel": text(b.get("channel")),
        "event_time": ts(b.get("event_time"), unit="ms"),
        "_ingested_at": ts(b.get("_ingested_at")),
        **lineage(b),
    }


def fraud_alert_row(b: Mapping[str, Any], pii: PiiProtector) -> Row:
    return {
        "alert_id": text(b.get("alert_id")),
        "source": text(b.get("source")),
        "source_event_id": text(b.get("source_event_id")),
        "customer_id": text(b.get("customer_id")),
        "account_id": text(b.get("account_id")),
        "card_id": pii.protect_card_id(text(b.get("card_id"))),
        "amount": money(b.get("amount")),
        "currency": text(b.get("currency")),
        "score": b.get("score"),
        "severity": text(b.get("severity")),
        "rule_ids": list(b.get("rule_ids") or []),
        "model_version": text(b.get("model_version")),
        "event_time": ts(b.get("event_time"), unit="ms"),
        "alert_time": ts(b.get("alert_time"), unit="ms"),
        "_ingested_at": ts(b.get("_ingested_at")),
        **lineage(b),
    }


def fraud_label_event_rows(b: Mapping[str, Any], pii: PiiProtector) -> list[Row]:
    common = {
        "label_id": text(b.get("label_id")),
        "pattern": text(b.get("pattern")),
        "topic": text(b.get("topic")),
        "customer_id": text(b.get("customer_id")),
        "account_id": text(b.get("account_id")),
        "card_id": pii.protect_card_id(text(b.get("card_id"))),
        "first_event_time": ts(b.get("first_event_time"), unit="ms"),
        "last_event_time": ts(b.get("last_event_time"), unit="ms"),
        "description": pii.scrub_text(text(b.get("description"))),
        "_ingested_at": ts(b.get("_ingested_at")),
        **lineage(b),
    }
    return [{**common, "event_id": event_id} for event_id in dict.fromkeys(b.get("event_ids") or [])]
