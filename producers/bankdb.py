"""The bank's core tables in PostgreSQL (the CDC source): schema, initial load, live changes.

Tables ``customers``, ``accounts``, ``cards`` have the columns of the row schemas in
``schemas/core/`` (timestamps are ``timestamp`` in UTC, which Debezium carries as
timestamp-micros). ``balance_movements`` is the ledger: one row per booked movement, including an
OPENING row per account, so that at any committed point

    accounts.balance == sum(balance_movements.amount) for the account.

Changes are applied in batches, one transaction per batch: the ledger rows (COPY), the balance
updates, customer and card updates.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from producers.bank import Bank
from producers.errors import SourceDbUnavailableError
from producers.model import BalanceMovement, BankChange, CardUpdate, CustomerUpdate
from riverbank.settings import SourceDbSettings

DDL = """
CREATE TABLE IF NOT EXISTS customers (
    customer_id   bigint PRIMARY KEY,
    external_ref  text NOT NULL UNIQUE,
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    email         text,
    phone         text,
    date_of_birth date,
    country       text NOT NULL,
    kyc_status    text NOT NULL,
    risk_rating   text,
    created_at    timestamp NOT NULL,
    updated_at    timestamp NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    account_id    bigint PRIMARY KEY,
    customer_id   bigint NOT NULL REFERENCES customers (customer_id),
    iban          text NOT NULL,
    currency      text NOT NULL,
    account_type  text NOT NULL,
    status        text NOT NULL,
    balance       numeric(18, 2) NOT NULL,
    credit_limit  numeric(18, 2),
    opened_at     timestamp NOT NULL,
    closed_at     timestamp,
    updated_at    timestamp NOT NULL
);
CREATE TABLE IF NOT EXISTS cards (
    card_id       bigint PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (account_id),
    customer_id   bigint NOT NULL REFERENCES customers (customer_id),
    card_token    text NOT NULL UNIQUE,
    pan_last4     text NOT NULL,
    scheme        text NOT NULL,
    card_type     text NOT NULL,
    status        text NOT NULL,
    expiry_month  integer NOT NULL,
    expiry_year   integer NOT NULL,
    daily_limit   numeric(18, 2) NOT NULL,
    issued_at     timestamp NOT NULL,
    updated_at    timestamp NOT NULL
);
CREATE TABLE IF NOT EXISTS balance_movements (
    movement_id   bigserial PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (account_id),
    amount        numeric(18, 2) NOT NULL,
    kind          text NOT NULL,
    event_id      text,
    run_id        text,
    booked_at     timestamp NOT NULL
);
CREATE INDEX IF NOT EXISTS balance_movements_account ON balance_movements (account_id);
CREATE INDEX IF NOT EXISTS balance_movements_run ON balance_movements (run_id);
"""

#: Customer columns a CustomerUpdate may change.
_CUSTOMER_COLUMNS = frozenset({"email", "phone", "country", "risk_rating", "kyc_status"})


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def _cents(minor: int | None) -> Decimal | None:
    return None if minor is None else Decimal(minor).scaleb(-2)


def connect(settings: SourceDbSettings, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    where = f"{settings.host}:{settings.port}/{settings.database}"
    try:
        return psycopg.connect(
            host=settings.host,
            port=settings.port,
            dbname=settings.database,
            user=settings.user,
            password=settings.password_value(),
            sslmode=settings.sslmode,
            connect_timeout=10,
            autocommit=autocommit,
        )
    except psycopg.OperationalError as exc:
        raise SourceDbUnavailableError(where, str(exc).strip().splitlines()[0]) from None


class BankDatabase:
    """Writes the synthetic bank into PostgreSQL and keeps it changing in step with the events."""

    def __init__(self, settings: SourceDbSettings, run_id: str, flush_interval_s: float = 0.5) -> None:
        self.run_id = run_id
        self.flush_interval_s = flush_interval_s
        self._conn = connect(settings)
        self._movements: list[BalanceMovement] = []
        self._customers: list[CustomerUpdate] = []
        self._cards: list[CardUpdate] = []
        self._last_flush = time.monotonic()
        self.movements_written = 0
        self.updates_written = 0

    def ensure_schema(self) -> None:
        """Create the tables if missing (idempotent)."""
        with self._conn.transaction():
            # One creator at a time: CREATE ... IF NOT EXISTS races between concurrent sessions.
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('riverbank.producers.ddl'))")
            self._conn.execute(DDL)

    def load_bank(self, bank: Bank) -> int:
        """Insert the bank's customers, accounts (with an OPENING ledger row) and cards that are
        not there yet. Returns the number of accounts created."""
        now = _naive(dt.datetime.now(dt.UTC))
        customers = [
            (
                c.customer_id,
                c.external_ref,
                c.first_name,
                c.last_name,
                c.email,
                c.phone,
                c.date_of_birth,
                c.country,
                c.kyc_status,
                c.risk_rating,
                _naive(c.created_at),
                now,
            )
            for c in bank.customers.values()
        ]
        accounts = [
            (
                a.account_id,
                a.customer_id,
                a.iban,
                a.currency,
                a.account_type,
                a.status,
                _cents(a.opening_balance_minor),
                _cents(a.credit_limit_minor),
                _naive(a.opened_at),
                now,
            )
            for a in bank.accounts.values()
        ]
        cards = [
            (
                c.card_id,
                c.account_id,
                c.customer_id,
                c.token,
                c.pan_last4,
                c.scheme,
                c.card_type,
                c.status,
                c.expiry_month,
                c.expiry_year,
                _cents(c.daily_limit_minor),
                _naive(c.issued_at),
                now,
            )
            for c in bank.cards.values()
        ]
        ids = [a.account_id for a in bank.accounts.values()]
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO customers (customer_id, external_ref, first_name, last_name, email, phone,"
                " date_of_birth, country, kyc_status, risk_rating, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                customers,
            )
            cur.executemany(
                "INSERT INTO accounts (account_id, customer_id, iban, currency, account_type, status,"
                " balance, credit_limit, opened_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                accounts,
            )
            cur.execute(
                "INSERT INTO balance_movements (account_id, amount, kind, event_id, run_id, booked_at)"
                " SELECT a.account_id, a.balance, 'OPENING', NULL, %s, a.opened_at FROM accounts a"
                " WHERE a.account_id = ANY(%s) AND NOT EXISTS"
                " (SELECT 1 FROM balance_movements m"
                "  WHERE m.account_id = a.account_id AND m.kind = 'OPENING')",
                (self.run_id, ids),
            )
            created = cur.rowcount
            cur.executemany(
                "INSERT INTO cards (card_id, account_id, customer_id, card_token, pan_last4, scheme,"
                " card_type, status, expiry_month, expiry_year, daily_limit, issued_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                cards,
            )
        return created

    def restore_card_status(self, bank: Bank) -> int:
        """Give the bank's cards the status stored by earlier runs (a card blocked once stays
        blocked: the generator declines it and never blocks it twice). Returns how many changed."""
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT card_id, status FROM cards WHERE card_id = ANY(%s)", (list(bank.cards),))
            stored = cur.fetchall()
        return bank.apply_card_status(dict(stored))

    def add(self, change: BankChange) -> None:
        if isinstance(change, BalanceMovement):
            self._movements.append(change)
        elif isinstance(change, CustomerUpdate):
            self._customers.append(change)
        else:
            self._cards.append(change)

    @property
    def pending(self) -> int:
        return len(self._movements) + len(self._customers) + len(self._cards)

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Apply the buffered changes in one transaction."""
        self._last_flush = time.monotonic()
        if not self.pending:
            return
        movements, customers, cards = self._movements, self._customers, self._cards
        deltas: dict[int, int] = defaultdict(int)
        for m in movements:
            deltas[m.account_id] += m.amount_minor
        now = _naive(dt.datetime.now(dt.UTC))
        with self._conn.transaction(), self._conn.cursor() as cur:
            if movements:
                with cur.copy(
                    "COPY balance_movements (account_id, amount, kind, event_id, run_id, booked_at)"
                    " FROM STDIN"
                ) as copy:
                    for m in movements:
                        copy.write_row(
                            (
                                m.account_id,
                                _cents(m.amount_minor),
                                m.kind,
                                m.event_id,
                                self.run_id,
                                _utc(m.time_ms),
                            )
                        )
                cur.executemany(
                    "UPDATE accounts SET balance = balance + %s, updated_at = %s WHERE account_id = %s",
                    [(_cents(delta), now, account) for account, delta in sorted(deltas.items())],
                )
            for u in customers:
                for column, value in u.changes:
                    if column not in _CUSTOMER_COLUMNS:
                        raise ValueError(f"customers.{column} is not a column the producers change")
                    cur.execute(
                        sql.SQL(
                            "UPDATE customers SET {} = %s, updated_at = %s WHERE customer_id = %s"
                        ).format(sql.Identifier(column)),
                        (value, _utc(u.time_ms), u.customer_id),
                    )
            for c in cards:
                cur.execute(
                    "UPDATE cards SET status = %s, updated_at = %s WHERE card_id = %s",
                    (c.status, _utc(c.time_ms), c.card_id),
                )
        self.movements_written += len(movements)
        self.updates_written += len(customers) + len(cards)
        self._movements, self._customers, self._cards = [], [], []

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._conn.close()
