"""The synthetic bank's domain objects: entities, events, fraud labels and bank-table changes.

Plain dataclasses with no I/O. Money is held as integers in minor units (cents) so balances add up
exactly; prices and quantities of securities as integers scaled by 1e8 and 1e6. The wire mapping
(``producers.wire``) turns them into the Avro records of ``schemas/``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from producers.geo import City


class Stream(StrEnum):
    TRANSACTIONS = "transactions"
    PAYMENTS = "payments"
    TRADES = "trades"
    TICKS = "ticks"


class FraudPattern(StrEnum):
    CARD_TESTING = "CARD_TESTING"
    ACCOUNT_TAKEOVER = "ACCOUNT_TAKEOVER"
    IMPOSSIBLE_TRAVEL = "IMPOSSIBLE_TRAVEL"
    MERCHANT_ANOMALY = "MERCHANT_ANOMALY"
    STRUCTURING = "STRUCTURING"


# ---- entities ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Customer:
    customer_id: int
    external_ref: str
    first_name: str
    last_name: str
    email: str
    phone: str
    date_of_birth: dt.date
    home: City
    kyc_status: str
    risk_rating: str
    created_at: dt.datetime
    #: The customer's own phone/laptop fingerprints and home IP address.
    devices: tuple[str, ...]
    home_ip: str
    #: Merchant category codes the customer buys from.
    habits: tuple[str, ...]
    #: Where the customer is travelling during this run (None: at home).
    trip: City | None = None
    account_ids: list[int] = field(default_factory=list)
    card_ids: list[int] = field(default_factory=list)

    @property
    def country(self) -> str:
        return self.home.country

    @property
    def current_city(self) -> City:
        return self.trip or self.home


@dataclass(slots=True)
class Account:
    account_id: int
    customer_id: int
    iban: str
    currency: str
    account_type: str  # CURRENT, SAVINGS, CREDIT, LOAN
    status: str  # OPEN, FROZEN, CLOSED
    opening_balance_minor: int
    credit_limit_minor: int | None
    opened_at: dt.datetime


@dataclass(slots=True)
class Card:
    card_id: int
    token: str
    account_id: int
    customer_id: int
    pan_last4: str
    scheme: str
    card_type: str  # DEBIT, CREDIT, PREPAID
    status: str  # ACTIVE, BLOCKED, EXPIRED, CLOSED
    expiry_month: int
    expiry_year: int
    daily_limit_minor: int
    issued_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    name: str
    mcc: str
    country: str
    #: None for online-only merchants.
    city: City | None


@dataclass(frozen=True, slots=True)
class Counterparty:
    counterparty_id: str
    name: str
    iban: str
    bic: str
    country: str


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument_id: str
    isin: str | None
    symbol: str
    asset_class: str
    currency: str
    venue: str
    initial_price_e8: int
    #: Typical traded quantity (units).
    lot: int


@dataclass(frozen=True, slots=True)
class Portfolio:
    portfolio_id: str
    account_id: int
    customer_id: int | None
    trader_id: str | None


# ---- events -----------------------------------------------------------------------------------


# The events built once per generated event write their own __init__ (init=False): the one
# dataclasses generates runs interpreted even in the compiled build (producers/native.py) and
# cost 7x a compiled one. tests/producers/test_generator.py checks it sets every field.


@dataclass(slots=True, init=False)
class CardTransaction:
    event_id: str
    authorization_id: str
    card: Card
    merchant: Merchant
    amount_minor: int
    currency: str
    billing_minor: int
    billing_currency: str
    channel: str
    entry_mode: str
    status: str
    decline_reason: str | None
    card_present: bool
    device_id: str | None
    ip_address: str | None
    event_time_ms: int

    def __init__(
        self,
        event_id: str,
        authorization_id: str,
        card: Card,
        merchant: Merchant,
        amount_minor: int,
        currency: str,
        billing_minor: int,
        billing_currency: str,
        channel: str,
        entry_mode: str,
        status: str,
        decline_reason: str | None,
        card_present: bool,
        device_id: str | None,
        ip_address: str | None,
        event_time_ms: int,
    ) -> None:
        self.event_id = event_id
        self.authorization_id = authorization_id
        self.card = card
        self.merchant = merchant
        self.amount_minor = amount_minor
        self.currency = currency
        self.billing_minor = billing_minor
        self.billing_currency = billing_currency
        self.channel = channel
        self.entry_mode = entry_mode
        self.status = status
        self.decline_reason = decline_reason
        self.card_present = card_present
        self.device_id = device_id
        self.ip_address = ip_address
        self.event_time_ms = event_time_ms


@dataclass(slots=True)
class Payment:
    event_id: str
    payment_id: str
    payment_type: str
    debtor_account_id: int
    debtor_customer_id: int
    creditor_account_id: int | None
    creditor_iban: str | None
    creditor_name: str
    creditor_bic: str | None
    creditor_country: str | None
    amount_minor: int
    currency: str
    status: str
    remittance_info: str | None
    channel: str
    requested_execution_date: dt.date
    event_time_ms: int
    device_id: str | None = None
    ip_address: str | None = None
    ip_country: str | None = None


@dataclass(slots=True)
class Trade:
    event_id: str
    trade_id: str
    order_id: str
    portfolio: Portfolio
    instrument: Instrument
    side: str
    quantity_e6: int
    price_e8: int
    notional_e4: int
    venue: str
    trader_id: str | None
    execution_time_us: int
    settlement_date: dt.date


@dataclass(slots=True, init=False)
class PriceTick:
    instrument: Instrument
    venue: str
    bid_e8: int | None
    ask_e8: int | None
    last_e8: int | None
    bid_size: int | None
    ask_size: int | None
    volume: int
    sequence: int
    tick_time_us: int

    def __init__(
        self,
        instrument: Instrument,
        venue: str,
        bid_e8: int | None,
        ask_e8: int | None,
        last_e8: int | None,
        bid_size: int | None,
        ask_size: int | None,
        volume: int,
        sequence: int,
        tick_time_us: int,
    ) -> None:
        self.instrument = instrument
        self.venue = venue
        self.bid_e8 = bid_e8
        self.ask_e8 = ask_e8
        self.last_e8 = last_e8
        self.bid_size = bid_size
        self.ask_size = ask_size
        self.volume = volume
        self.sequence = sequence
        self.tick_time_us = tick_time_us

    @property
    def tick_id(self) -> str:
        """Unique per tick (the schema has no event id). A venue's sequence numbers restart with
        every session (here: every run), so the tick time is part of the identity."""
        return f"{self.instrument.instrument_id}:{self.venue}:{self.tick_time_us}:{self.sequence}"


Event = CardTransaction | Payment | Trade | PriceTick


def event_id_of(event: Event) -> str:
    return event.tick_id if isinstance(event, PriceTick) else event.event_id


def event_time_ms_of(event: Event) -> int:
    if isinstance(event, CardTransaction | Payment):
        return event.event_time_ms
    if isinstance(event, Trade):
        return event.execution_time_us // 1000
    return event.tick_time_us // 1000


# ---- ground truth -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FraudLabel:
    """Ground truth for one injected fraud; never part of the events it describes."""

    label_id: str
    pattern: FraudPattern
    stream: Stream
    #: The fraudulent events.
    event_ids: tuple[str, ...]
    #: Genuine events that make the pattern visible (e.g. the cardholder's own purchase at home
    #: before the impossible one abroad); not fraud themselves.
    context_event_ids: tuple[str, ...]
    customer_id: int
    account_id: int
    card_id: str | None
    first_event_time_ms: int
    last_event_time_ms: int
    description: str


# ---- changes to the bank's own tables (PostgreSQL) -------------------------------------------


# Not frozen, own __init__: one per approved event (see CardTransaction).
@dataclass(slots=True, init=False)
class BalanceMovement:
    """A booked change of an account balance caused by one event, in the account's currency."""

    account_id: int
    amount_minor: int
    event_id: str
    kind: str  # CARD, PAYMENT_OUT, PAYMENT_IN, TRADE
    time_ms: int

    def __init__(self, account_id: int, amount_minor: int, event_id: str, kind: str, time_ms: int) -> None:
        self.account_id = account_id
        self.amount_minor = amount_minor
        self.event_id = event_id
        self.kind = kind
        self.time_ms = time_ms


@dataclass(frozen=True, slots=True)
class CustomerUpdate:
    customer_id: int
    #: Column name -> new value (email, phone, country, risk_rating).
    changes: tuple[tuple[str, str], ...]
    reason: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class CardUpdate:
    card_id: int
    status: str
    reason: str
    time_ms: int


BankChange = BalanceMovement | CustomerUpdate | CardUpdate
