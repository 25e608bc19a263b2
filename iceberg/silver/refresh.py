"""One silver pass: every silver table catches up with its bronze source, exactly once."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from iceberg.catalog import ensure_namespace
from iceberg.silver import cdc, tables, transform
from iceberg.silver.merge import (
    BUCKETS_PROPERTY,
    ApplyFn,
    append_new_events,
    merge_by_bucket,
    table_buckets,
)
from iceberg.silver.pii import PiiProtector
from iceberg.silver.store import load_optional, read_bookmark, read_delta, rows_to_table
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table


def bronze_table_name(topic: str) -> str:
    """The lake's bronze naming: the topic with dots as underscores."""
    return topic.replace(".", "_")


@dataclass(frozen=True)
class CdcTarget:
    table: str
    topic: str
    key: str
    to_row: Callable[[Mapping[str, Any], PiiProtector], transform.Row]
    apply: ApplyFn


@dataclass(frozen=True)
class EventTarget:
    table: str
    topic: str
    id_columns: tuple[str, ...]
    time_column: str
    to_rows: Callable[[Mapping[str, Any], PiiProtector], list[transform.Row]]


def _one(
    fn: Callable[[Mapping[str, Any], PiiProtector], transform.Row],
) -> Callable[[Mapping[str, Any], PiiProtector], list[transform.Row]]:
    return lambda row, pii: [fn(row, pii)]


_CUSTOMERS = "bankdb.public.customers"
CDC_TARGETS: tuple[CdcTarget, ...] = (
    CdcTarget("customers", _CUSTOMERS, "customer_id", transform.customer_row, cdc.apply_current),
    CdcTarget("customers_history", _CUSTOMERS, "customer_id", transform.customer_row, cdc.apply_history),
    CdcTarget("accounts", "bankdb.public.accounts", "account_id", transform.account_row, cdc.apply_current),
    CdcTarget("cards", "bankdb.public.cards", "card_id", transform.card_row, cdc.apply_current),
)
EVENT_TARGETS: tuple[EventTarget, ...] = (
    EventTarget(
        "card_transactions",
        "bank.card.transactions",
        ("event_id",),
        "event_time",
        _one(transform.card_transaction_row),
    ),
    EventTarget("payments", "bank.payments", ("event_id",), "event_time", _one(transform.payment_row)),
    EventTarget("fraud_alerts", "fraud.alerts", ("alert_id",), "event_time", _one(transform.fraud_alert_row)),
    EventTarget(
        "fraud_label_events",
        "fraud.labels",
        ("label_id", "event_id"),
        "first_event_time",
        transform.fraud_label_event_rows,
    ),
)

QUARANTINE = pa.schema(
    [
        ("source_table", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("reason", pa.string()),
        ("quarantined_at", tables.TS),
    ]
)


@dataclass(frozen=True)
class TableResult:
    table: str
    read: int
    applied: int
    duplicates: int
    rejected: int
    seconds: float


class SilverLake:
    """The silver namespace of one catalog: table handles and the settings they follow."""

    def __init__(self, settings: Settings, catalog: Catalog, pii: PiiProtector) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pii = pii
        self.bronze_ns = settings.lake.bronze_namespace
        self.silver_ns = settings.lake.silver_namespace

    def bronze(self, topic: str) -> tuple[str, Table | None]:
        identifier = f"{self.bronze_ns}.{bronze_table_name(topic)}"
        return identifier, load_optional(self.catalog, identifier)

    def table(self, name: str) -> Table:
        definition = tables.SILVER_TABLES[name]
        properties = {}
        if definition.bucketed:
            properties[BUCKETS_PROPERTY] = str(self.settings.medallion.buckets)
        return tables.ensure_table(
            self.catalog,
            f"{self.silver_ns}.{name}",
            definition.schema,
            definition.partitioning,
            properties,
        )

    def quarantine(self, source: str, rejected: Sequence[cdc.Rejected]) -> None:
        """Rows that break a table rule, with the reason; idempotent per (source, offset)."""
        if not rejected:
            return
        table = tables.ensure_table(
            self.catalog, f"{self.silver_ns}.quarantine", QUARANTINE, lambda spec: None
        )
        seen = table.scan(selected_fields=("source_table", "kafka_partition", "kafka_offset")).to_arrow()
        known = set(zip(*(seen[c].to_pylist() for c in seen.column_names), strict=True))
        now = dt.datetime.now(dt.UTC)
        fresh = [
            {"source_table": source, "kafka_partition": r.partition, "kafka_offset": r.offset,
             "reason": r.reason, "quarantined_at": now}
            for r in rejected
            if (source, r.partition, r.offset) not in known
        ]  # fmt: skip
        if fresh:
            table.append(rows_to_table(fresh, QUARANTINE))


def refresh_cdc(lake: SilverLake, target: CdcTarget) -> TableResult:
    started = time.perf_counter()
    table = lake.table(target.table)
    source, bronze = lake.bronze(target.topic)
    bookmark = read_bookmark(table)
    delta = read_delta(bronze, bookmark.get(source, {}))
    changes, rejected, _ = cdc.changes_from_bronze(
        delta.rows.to_pylist(), target.key, lambda image: target.to_row(image, lake.pii)
    )
    lake.quarantine(source, rejected)
    stats = merge_by_bucket(
        table,
        tables.SILVER_TABLES[target.table].schema,
        target.key,
        cdc.by_key(changes),
        target.apply,
        {**bookmark, source: delta.offsets},
        table_buckets(table, lake.settings.medallion.buckets),
    )
    return TableResult(
        f"{lake.silver_ns}.{target.table}",
        delta.rows.num_rows,
        stats.applied,
        len(changes) - stats.applied,
        len(rejected),
        time.perf_counter() - started,
    )


def refresh_events(lake: SilverLake, target: EventTarget) -> TableResult:
    started = time.perf_counter()
    table = lake.table(target.table)
    source, bronze = lake.bronze(target.topic)
    bookmark = read_bookmark(table)
    delta = read_delta(bronze, bookmark.get(source, {}))
    rows: list[transform.Row] = []
    rejected: list[cdc.Rejected] = []
    for bronze_row in delta.rows.to_pylist():
        for row in target.to_rows(bronze_row, lake.pii):
            missing = [c for c in (*target.id_columns, target.time_column) if row.get(c) is None]
            if missing:
                reason = f"missing {', '.join(missing)}"
                rejected.append(cdc.Rejected(bronze_row["_partition"], bronze_row["_offset"], reason))
            else:
                rows.append(row)
    lake.quarantine(source, rejected)
    appended, duplicates = append_new_events(
        table,
        tables.SILVER_TABLES[target.table].schema,
        rows,
        target.id_columns,
        target.time_column,
        {**bookmark, source: delta.offsets},
    )
    return TableResult(
        f"{lake.silver_ns}.{target.table}",
        delta.rows.num_rows,
        appended,
        duplicates,
        len(rejected),
        time.perf_counter() - started,
    )


def refresh_silver(lake: SilverLake) -> list[TableResult]:
    ensure_namespace(lake.catalog, lake.silver_ns)
    results = [refresh_cdc(lake, t) for t in CDC_TARGETS]
    results += [refresh_events(lake, t) for t in EVENT_TARGETS]
    return results
