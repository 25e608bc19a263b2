"""bronze -> silver -> gold in one pass (``refresh``), a loop of passes, and the ledger check.

The sink can call :func:`refresh` after each bronze commit, or ``riverbank lake refresh --loop``
runs passes on its own interval. Each table commits on its own with its bookmark, so a pass cut
short anywhere is completed by the next one without applying any bronze row twice.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from iceberg.gold.refresh import GoldLake, refresh_gold
from iceberg.silver.pii import protector
from iceberg.silver.refresh import SilverLake, TableResult, refresh_silver
from riverbank.errors import ServiceUnavailableError
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog


@dataclass(frozen=True)
class RefreshResult:
    silver: list[TableResult]
    gold: list[TableResult]
    seconds: float

    @property
    def changed(self) -> bool:
        return any(t.read for t in self.silver)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh(settings: Settings, catalog: Catalog) -> RefreshResult:
    """One pass: every silver table catches up with bronze, then gold with silver."""
    started = time.perf_counter()
    silver = refresh_silver(SilverLake(settings, catalog, protector(settings)))
    gold = refresh_gold(GoldLake(settings, catalog))
    return RefreshResult(silver, gold, time.perf_counter() - started)


def refresh_loop(
    settings: Settings,
    catalog: Catalog,
    stop: threading.Event,
    on_pass: Callable[[RefreshResult], None] = lambda _: None,
) -> None:
    """Passes every ``medallion.refresh_interval_s`` until ``stop`` is set. A commit conflict
    (maintenance compacting the same table) fails only that pass; the next one retries it."""
    from pyiceberg.exceptions import CommitFailedException

    while not stop.is_set():
        with contextlib.suppress(CommitFailedException):
            on_pass(refresh(settings, catalog))
        stop.wait(settings.medallion.refresh_interval_s)


@dataclass(frozen=True)
class BalanceMismatch:
    account_id: int
    source_balance: Decimal | None
    silver_balance: Decimal | None


@dataclass(frozen=True)
class BalanceReport:
    accounts_source: int
    accounts_silver: int
    mismatches: list[BalanceMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def source_balances(settings: Settings) -> dict[int, Decimal]:
    import psycopg

    db = settings.source_db
    try:
        with psycopg.connect(
            host=db.host,
            port=db.port,
            dbname=db.database,
            user=db.user,
            password=db.password_value(),
            sslmode=db.sslmode,
            connect_timeout=10,
        ) as conn:
            rows = conn.execute("SELECT account_id, balance FROM accounts").fetchall()
    except psycopg.OperationalError as exc:
        where = f"{db.host}:{db.port}/{db.database}"
        raise ServiceUnavailableError(
            f"source database {where}: {str(exc).strip().splitlines()[0]}"
        ) from None
    return {int(a): Decimal(b) for a, b in rows}


def silver_balances(settings: Settings, catalog: Catalog) -> dict[int, Decimal]:
    from iceberg.silver.store import load_optional

    table = load_optional(catalog, f"{settings.lake.silver_namespace}.accounts")
    if table is None:
        return {}
    rows = table.scan(selected_fields=("account_id", "balance")).to_arrow()
    return dict(zip(rows["account_id"].to_pylist(), rows["balance"].to_pylist(), strict=True))


def compare_balances(source: dict[int, Decimal], silver: dict[int, Decimal]) -> BalanceReport:
    mismatches = [
        BalanceMismatch(account, source.get(account), silver.get(account))
        for account in sorted(source.keys() | silver.keys())
        if source.get(account) != silver.get(account)
    ]
    return BalanceReport(len(source), len(silver), mismatches)


def check_balances(settings: Settings, catalog: Catalog) -> BalanceReport:
    """The ledger invariant: silver accounts' balances equal PostgreSQL's ``accounts.balance``.
    Meaningful once CDC and the sink have caught up with the database (quiesce producers)."""
    return compare_balances(source_balances(settings), silver_balances(settings, catalog))
