"""One gold pass: each gold table recomputes only the days (or merchants) silver changed.

A gold table keeps its own bookmark of the silver rows it has seen (their bronze lineage), so
the silver rows added since its last commit tell it which days to recompute; a recomputed day
replaces that day's partition. Replaying a pass is harmless: a day recomputed twice is the same.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from iceberg.catalog import ensure_namespace
from iceberg.gold import aggregates, tables
from iceberg.silver.expr import (
    AlwaysFalse,
    BooleanExpression,
    and_,
    gte,
    isin,
    lt,
    or_,
)
from iceberg.silver.refresh import TableResult
from iceberg.silver.store import (
    OFFSET_COLUMN,
    PARTITION_COLUMN,
    Bookmark,
    Delta,
    bucket_of,
    commit,
    load_optional,
    read_bookmark,
    read_delta,
    rows_to_table,
)
from iceberg.silver.tables import ensure_table
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table
    from pyiceberg.table.update.spec import UpdateSpec

MERCHANT_BUCKETS = 16
SOURCES = ("card_transactions", "fraud_alerts", "fraud_label_events")


def rule_patterns() -> dict[str, str]:
    """rule id -> the injected-fraud pattern it targets, from the fraud domain's rule book."""
    from fraud.rules import DEFAULT_RULES

    return {r.rule_id: r.pattern for r in DEFAULT_RULES if r.pattern}


def _by_day(spec: UpdateSpec) -> None:
    spec.add_identity("day")


def _by_bucket(spec: UpdateSpec) -> None:
    spec.add_identity("_bucket")


def days_filter(column: str, days: Iterable[dt.date]) -> BooleanExpression:
    expr: BooleanExpression = AlwaysFalse()
    for day in sorted(set(days)):
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        expr = or_(
            expr,
            and_(
                gte(column, start.isoformat()),
                lt(column, (start + dt.timedelta(days=1)).isoformat()),
            ),
        )
    return expr


def day_range(first: dt.datetime, last: dt.datetime) -> list[dt.date]:
    start, end = aggregates.day_of(first), aggregates.day_of(last)
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


class GoldLake:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.catalog = catalog
        self.silver_ns = settings.lake.silver_namespace
        self.gold_ns = settings.lake.gold_namespace
        self._label_events: list[dict[str, Any]] | None = None
        # Gold tables usually share their bookmarks: one read of each silver delta per pass.
        self._deltas: dict[tuple[str, tuple[tuple[int, int], ...]], Delta] = {}

    def silver(self, name: str) -> Table | None:
        return load_optional(self.catalog, f"{self.silver_ns}.{name}")

    def gold(self, name: str, schema: pa.Schema, partitioning: Callable[[UpdateSpec], None]) -> Table:
        return ensure_table(self.catalog, f"{self.gold_ns}.{name}", schema, partitioning)

    def deltas(self, table: Table) -> tuple[dict[str, pa.Table], Bookmark]:
        """The silver rows added since ``table``'s bookmark, and the bookmark after them."""
        bookmark = read_bookmark(table)
        rows: dict[str, pa.Table] = {}
        after: Bookmark = dict(bookmark)
        for name in SOURCES:
            source = f"{self.silver_ns}.{name}"
            offsets = bookmark.get(source, {})
            cache_key = (source, tuple(sorted(offsets.items())))
            delta = self._deltas.get(cache_key)
            if delta is None:
                delta = read_delta(
                    self.silver(name), offsets, partition_col=PARTITION_COLUMN, offset_col=OFFSET_COLUMN
                )
                self._deltas[cache_key] = delta
            rows[name] = delta.rows
            after[source] = delta.offsets
        return rows, after

    def scan(self, name: str, row_filter: BooleanExpression) -> list[dict[str, Any]]:
        table = self.silver(name)
        if table is None:
            return []
        rows: list[dict[str, Any]] = table.scan(row_filter=row_filter).to_arrow().to_pylist()
        return rows

    def new_pass(self) -> None:
        self._label_events = None
        self._deltas.clear()

    def label_events(self) -> list[dict[str, Any]]:
        # Labels are one row per fraudulent event: small next to the event tables; read once a pass.
        if self._label_events is None:
            table = self.silver("fraud_label_events")
            self._label_events = [] if table is None else table.scan().to_arrow().to_pylist()
        return self._label_events


def _column_days(rows: pa.Table, column: str) -> set[dt.date]:
    if rows.num_rows == 0:
        return set()
    return {aggregates.day_of(t) for t in pc.unique(rows[column]).to_pylist() if t is not None}


def _iso(days: Iterable[dt.date]) -> list[str]:
    return sorted(d.isoformat() for d in days)


def _replace_days(
    table: Table, schema: pa.Schema, rows: Sequence[Mapping[str, Any]], days: set[dt.date], bookmark: Bookmark
) -> None:
    if days:
        commit(table, bookmark, replace=rows_to_table(rows, schema), replace_filter=isin("day", _iso(days)))
    else:
        commit(table, bookmark)


def refresh_customer_daily(lake: GoldLake) -> TableResult:
    started = time.perf_counter()
    table = lake.gold("customer_daily", tables.CUSTOMER_DAILY, _by_day)
    deltas, bookmark = lake.deltas(table)
    days = _column_days(deltas["card_transactions"], "event_time")
    rows = (
        aggregates.customer_daily(lake.scan("card_transactions", days_filter("event_time", days)))
        if days
        else []
    )
    _replace_days(table, tables.CUSTOMER_DAILY, rows, days, bookmark)
    return _result(lake, "customer_daily", deltas, rows, days, started)


def _label_days_of(events: set[str], label_events: Iterable[Mapping[str, Any]]) -> set[dt.date]:
    return {aggregates.day_of(le["first_event_time"]) for le in label_events if le["event_id"] in events}


def refresh_fraud_kpis(lake: GoldLake) -> TableResult:
    started = time.perf_counter()
    table = lake.gold("fraud_kpis_daily", tables.FRAUD_KPIS_DAILY, _by_day)
    deltas, bookmark = lake.deltas(table)
    labels = lake.label_events()
    new_alerts, new_labels = deltas["fraud_alerts"], deltas["fraud_label_events"]
    days = _column_days(new_alerts, "event_time") | _column_days(new_labels, "first_event_time")
    if new_alerts.num_rows:
        days |= _label_days_of(set(new_alerts["source_event_id"].to_pylist()), labels)
    if new_labels.num_rows:
        ids = sorted(set(new_labels["event_id"].to_pylist()))
        days |= {
            aggregates.day_of(a["event_time"])
            for a in lake.scan("fraud_alerts", isin("source_event_id", ids))
        }
    rows: list[dict[str, Any]] = []
    if days:
        labelled_ids = sorted(
            {le["event_id"] for le in labels if aggregates.day_of(le["first_event_time"]) in days}
        )
        wanted = days_filter("event_time", days)
        if labelled_ids:
            wanted = or_(wanted, isin("source_event_id", labelled_ids))
        rows = aggregates.fraud_kpis_daily(days, labels, lake.scan("fraud_alerts", wanted), rule_patterns())
    _replace_days(table, tables.FRAUD_KPIS_DAILY, rows, days, bookmark)
    return _result(lake, "fraud_kpis_daily", deltas, rows, days, started)


def _merchant_days(deltas: Mapping[str, pa.Table]) -> set[dt.date]:
    days = _column_days(deltas["card_transactions"], "event_time") | _column_days(
        deltas["fraud_alerts"], "event_time"
    )
    labels = deltas["fraud_label_events"]
    if labels.num_rows:
        for first, last in zip(
            labels["first_event_time"].to_pylist(), labels["last_event_time"].to_pylist(), strict=True
        ):
            days.update(day_range(first, last or first))
    return days


def refresh_merchant_daily(lake: GoldLake) -> TableResult:
    started = time.perf_counter()
    table = lake.gold("merchant_daily", tables.MERCHANT_DAILY, _by_day)
    deltas, bookmark = lake.deltas(table)
    days = _merchant_days(deltas)
    rows: list[dict[str, Any]] = []
    if days:
        fraud_ids = {le["event_id"] for le in lake.label_events()}
        alerted = {a["source_event_id"] for a in lake.scan("fraud_alerts", days_filter("event_time", days))}
        rows = aggregates.merchant_daily(
            lake.scan("card_transactions", days_filter("event_time", days)), fraud_ids, alerted
        )
    _replace_days(table, tables.MERCHANT_DAILY, rows, days, bookmark)
    return _result(lake, "merchant_daily", deltas, rows, days, started)


def refresh_merchant_risk(lake: GoldLake) -> TableResult:
    """After merchant_daily: the merchants active on the changed days get their totals again."""
    started = time.perf_counter()
    table = lake.gold("merchant_risk", tables.MERCHANT_RISK, _by_bucket)
    deltas, bookmark = lake.deltas(table)
    days = _merchant_days(deltas)
    daily_table = lake.gold("merchant_daily", tables.MERCHANT_DAILY, _by_day)
    rows: list[dict[str, Any]] = []
    if not days:
        commit(table, bookmark)
        return _result(lake, "merchant_risk", deltas, rows, days, started)
    on_days = daily_table.scan(
        row_filter=isin("day", _iso(days)), selected_fields=("merchant_id",)
    ).to_arrow()
    merchants = sorted(set(on_days["merchant_id"].to_pylist()))
    daily = (
        daily_table.scan(row_filter=isin("merchant_id", merchants)).to_arrow().to_pylist()
        if merchants
        else []
    )
    rows = aggregates.merchant_risk(daily)
    for row in rows:
        row["_bucket"] = bucket_of(row["merchant_id"], MERCHANT_BUCKETS)
    touched = sorted({r["_bucket"] for r in rows})
    existing = (
        table.scan(row_filter=isin("_bucket", touched))
        .to_arrow()
        .select(tables.MERCHANT_RISK.names)
        .cast(tables.MERCHANT_RISK)
        if touched
        else tables.MERCHANT_RISK.empty_table()
    )
    kept = existing.filter(
        pc.invert(pc.is_in(existing["merchant_id"], value_set=pa.array(merchants, pa.string())))
    )
    result = pa.concat_tables([kept, rows_to_table(rows, tables.MERCHANT_RISK)])
    if touched:
        commit(table, bookmark, replace=result, replace_filter=isin("_bucket", touched))
    else:
        commit(table, bookmark)
    return _result(lake, "merchant_risk", deltas, rows, days, started)


def _result(
    lake: GoldLake,
    name: str,
    deltas: Mapping[str, pa.Table],
    rows: Sequence[Any],
    days: set[dt.date],
    started: float,
) -> TableResult:
    read = sum(t.num_rows for t in deltas.values())
    return TableResult(f"{lake.gold_ns}.{name}", read, len(rows), 0, 0, time.perf_counter() - started)


def refresh_gold(lake: GoldLake) -> list[TableResult]:
    ensure_namespace(lake.catalog, lake.gold_ns)
    lake.new_pass()
    return [
        refresh_customer_daily(lake),
        refresh_fraud_kpis(lake),
        refresh_merchant_daily(lake),
        refresh_merchant_risk(lake),
    ]
