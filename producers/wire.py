"""Domain objects to the Avro records of ``schemas/`` (plain dicts), Kafka keys and topics.

The edge between the pure generator and the Kafka adapter: no Kafka import here. Field names and
shapes follow ``schemas/cards/card_transaction.avsc``, ``payments/payment.avsc``,
``trading/trade.avsc``, ``market/price_tick.avsc`` and ``fraud/fraud_label.avsc``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from producers.model import (
    CardTransaction,
    Event,
    FraudLabel,
    Merchant,
    Payment,
    PriceTick,
    Stream,
    Trade,
)

TOPICS: dict[Stream, str] = {
    Stream.TRANSACTIONS: "bank.card.transactions",
    Stream.PAYMENTS: "bank.payments",
    Stream.TRADES: "bank.trades",
    Stream.TICKS: "market.ticks",
}
LABELS_TOPIC = "fraud.labels"
DLQ_TOPIC = "riverbank.dlq"

_EPOCH_DAY = dt.date(1970, 1, 1)
_merchant_cache: dict[str, tuple[Merchant, dict[str, Any]]] = {}


def cents(minor: int) -> Decimal:
    return Decimal(minor).scaleb(-2)


def _scaled(value: int, scale: int) -> Decimal:
    return Decimal(value).scaleb(-scale)


def _days(day: dt.date) -> int:
    return (day - _EPOCH_DAY).days


def merchant_record(m: Merchant) -> dict[str, Any]:
    # Cached by id with the merchant it was built from: another bank in the same process reuses
    # the ids with other values, so a hit counts only for that merchant or an equal one.
    hit = _merchant_cache.get(m.merchant_id)
    if hit is not None and (hit[0] is m or hit[0] == m):
        return hit[1]
    record = {
        "merchant_id": m.merchant_id,
        "name": m.name,
        "mcc": m.mcc,
        "country": m.country,
        "city": m.city.name if m.city else None,
        "latitude": m.city.lat if m.city else None,
        "longitude": m.city.lon if m.city else None,
    }
    _merchant_cache[m.merchant_id] = (m, record)
    return record


def card_transaction_record(e: CardTransaction) -> dict[str, Any]:
    card = e.card
    return {
        "event_id": e.event_id,
        "authorization_id": e.authorization_id,
        "card_id": card.token,
        "account_id": str(card.account_id),
        "customer_id": str(card.customer_id),
        "merchant": merchant_record(e.merchant),
        "amount": Decimal(e.amount_minor).scaleb(-2),
        "currency": e.currency,
        "billing_amount": Decimal(e.billing_minor).scaleb(-2),
        "billing_currency": e.billing_currency,
        "channel": e.channel,
        "entry_mode": e.entry_mode,
        "status": e.status,
        "decline_reason": e.decline_reason,
        "card_present": e.card_present,
        "device_id": e.device_id,
        "ip_address": e.ip_address,
        "event_time": e.event_time_ms,
        "attributes": {},
    }


def payment_record(e: Payment) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "payment_id": e.payment_id,
        "payment_type": e.payment_type,
        "debtor_account_id": str(e.debtor_account_id),
        "debtor_customer_id": str(e.debtor_customer_id),
        "creditor_account_id": None if e.creditor_account_id is None else str(e.creditor_account_id),
        "creditor_iban": e.creditor_iban,
        "creditor_name": e.creditor_name,
        "creditor_bic": e.creditor_bic,
        "creditor_country": e.creditor_country,
        "amount": cents(e.amount_minor),
        "currency": e.currency,
        "status": e.status,
        "remittance_info": e.remittance_info,
        "channel": e.channel,
        "requested_execution_date": _days(e.requested_execution_date),
        "event_time": e.event_time_ms,
        "device_id": e.device_id,
        "ip_address": e.ip_address,
        "ip_country": e.ip_country,
    }


def trade_record(e: Trade) -> dict[str, Any]:
    inst = e.instrument
    return {
        "event_id": e.event_id,
        "trade_id": e.trade_id,
        "order_id": e.order_id,
        "portfolio_id": e.portfolio.portfolio_id,
        "account_id": str(e.portfolio.account_id),
        "instrument": {
            "instrument_id": inst.instrument_id,
            "isin": inst.isin,
            "symbol": inst.symbol,
            "asset_class": inst.asset_class,
        },
        "side": e.side,
        "quantity": _scaled(e.quantity_e6, 6),
        "price": _scaled(e.price_e8, 8),
        "notional": _scaled(e.notional_e4, 4),
        "currency": inst.currency,
        "venue": e.venue,
        "trader_id": e.trader_id,
        "execution_time": e.execution_time_us,
        "settlement_date": _days(e.settlement_date),
    }


def _opt(value: int | None, scale: int) -> Decimal | None:
    return None if value is None else Decimal(value).scaleb(-scale)


def price_tick_record(e: PriceTick) -> dict[str, Any]:
    return {
        "instrument_id": e.instrument.instrument_id,
        "symbol": e.instrument.symbol,
        "venue": e.venue,
        "bid": _opt(e.bid_e8, 8),
        "ask": _opt(e.ask_e8, 8),
        "last": _opt(e.last_e8, 8),
        "bid_size": e.bid_size,
        "ask_size": e.ask_size,
        "volume": e.volume,
        "currency": e.instrument.currency,
        "sequence": e.sequence,
        "tick_time": e.tick_time_us,
    }


def fraud_label_record(label: FraudLabel) -> dict[str, Any]:
    return {
        "label_id": label.label_id,
        "pattern": label.pattern.value,
        "topic": TOPICS[label.stream],
        "event_ids": list(label.event_ids),
        "context_event_ids": list(label.context_event_ids),
        "customer_id": str(label.customer_id),
        "account_id": str(label.account_id),
        "card_id": label.card_id,
        "first_event_time": label.first_event_time_ms,
        "last_event_time": label.last_event_time_ms,
        "description": label.description,
    }


# Per event type: (stream, key function, record function).
WIRE: dict[type, tuple[Stream, Callable[[Any], str], Callable[[Any], dict[str, Any]]]] = {
    CardTransaction: (Stream.TRANSACTIONS, lambda e: e.card.token, card_transaction_record),
    Payment: (Stream.PAYMENTS, lambda e: str(e.debtor_account_id), payment_record),
    Trade: (Stream.TRADES, lambda e: e.portfolio.portfolio_id, trade_record),
    PriceTick: (Stream.TICKS, lambda e: e.instrument.instrument_id, price_tick_record),
}


def key_of(event: Event) -> str:
    """The Kafka key: the business key whose events must stay in order (card, debtor account,
    portfolio, instrument), as each schema's doc names it."""
    return WIRE[type(event)][1](event)


def record_of(event: Event) -> dict[str, Any]:
    return WIRE[type(event)][2](event)
