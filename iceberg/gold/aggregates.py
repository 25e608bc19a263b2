"""Gold figures as plain functions over silver rows (dicts): exact, and testable by hand.

Fraud KPIs count *events*: an event is labelled fraud when a ``fraud.labels`` record lists it,
alerted when at least one alert names it. A labelled event counts on its label's day
(first_event_time) under the label's pattern, detected if alerted. An alerted event that no label
lists is a false positive on its event day, under the pattern of each rule that fired (from the
rule book; ``UNATTRIBUTED`` when none targets a pattern). ``ALL`` sums the day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

Row = dict[str, Any]
ALL = "ALL"
UNATTRIBUTED = "UNATTRIBUTED"
_CENT = Decimal("0.01")
#: fraud rate from which a merchant is HIGH / MEDIUM risk (rates over all its transactions).
HIGH_RISK_RATE = 0.05
MEDIUM_RISK_RATE = 0.01


def day_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


def customer_daily(transactions: Iterable[Mapping[str, Any]]) -> list[Row]:
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for t in transactions:
        groups[(day_of(t["event_time"]), t["customer_id"], t["channel"], t["billing_currency"])].append(t)
    out = []
    for (day, customer, channel, currency), items in sorted(groups.items(), key=lambda kv: str(kv[0])):
        approved = [t["billing_amount"] for t in items if t["status"] == "APPROVED"]
        total = sum(approved, Decimal(0))
        out.append(
            {
                "day": day,
                "customer_id": customer,
                "channel": channel,
                "billing_currency": currency,
                "transactions": len(items),
                "approved": len(approved),
                "declined": sum(1 for t in items if t["status"] == "DECLINED"),
                "approved_amount": total,
                "avg_approved_amount": (total / len(approved)).quantize(_CENT) if approved else None,
                "max_approved_amount": max(approved) if approved else None,
            }
        )
    return out


def fraud_kpis_daily(
    days: Iterable[dt.date],
    label_events: Iterable[Mapping[str, Any]],
    alerts: Iterable[Mapping[str, Any]],
    rule_patterns: Mapping[str, str],
) -> list[Row]:
    """KPI rows for ``days``. ``label_events``: every silver label event (the table is small);
    ``alerts``: at least every alert on those days or on an event labelled on those days."""
    wanted = set(days)
    labelled: dict[str, tuple[dt.date, str]] = {}
    for le in label_events:
        labelled.setdefault(le["event_id"], (day_of(le["first_event_time"]), le["pattern"]))
    alerted: dict[str, Mapping[str, Any]] = {}
    for a in alerts:
        alerted.setdefault(a["source_event_id"], a)

    counts: dict[tuple[dt.date, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event_id, (day, pattern) in labelled.items():
        if day in wanted:
            for p in (pattern, ALL):
                counts[(day, p)]["labelled"] += 1
                counts[(day, p)]["detected"] += event_id in alerted
    for event_id, alert in alerted.items():
        day = day_of(alert["event_time"])
        if day not in wanted or event_id in labelled:
            continue
        patterns = {rule_patterns[r] for r in alert["rule_ids"] or [] if r in rule_patterns}
        for p in (patterns or {UNATTRIBUTED}) | {ALL}:
            counts[(day, p)]["false_positive"] += 1
    out = []
    for (day, pattern), c in sorted(counts.items()):
        tp, fp, labelled_n = c["detected"], c["false_positive"], c["labelled"]
        out.append(
            {
                "day": day,
                "pattern": pattern,
                "labelled_events": labelled_n,
                "detected_events": tp,
                "missed_events": labelled_n - tp,
                "false_positive_events": fp,
                "alerted_events": tp + fp,
                "precision": tp / (tp + fp) if tp + fp else None,
                "recall": tp / labelled_n if labelled_n else None,
            }
        )
    return out


def merchant_daily(
    transactions: Iterable[Mapping[str, Any]], fraud_event_ids: set[str], alerted_event_ids: set[str]
) -> list[Row]:
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for t in transactions:
        groups[(day_of(t["event_time"]), t["merchant_id"], t["currency"])].append(t)
    out = []
    for (day, merchant, currency), items in sorted(groups.items(), key=lambda kv: str(kv[0])):
        first = items[0]
        fraud = [t for t in items if t["event_id"] in fraud_event_ids]
        approved = [t for t in items if t["status"] == "APPROVED"]
        out.append(
            {
                "day": day,
                "merchant_id": merchant,
                "merchant_name": first["merchant_name"],
                "mcc": first["mcc"],
                "merchant_country": first["merchant_country"],
                "currency": currency,
                "transactions": len(items),
                "approved": len(approved),
                "approved_amount": sum((t["amount"] for t in approved), Decimal(0)),
                "fraud_events": len(fraud),
                "fraud_amount": sum((t["amount"] for t in fraud), Decimal(0)),
                "alerted_events": sum(1 for t in items if t["event_id"] in alerted_event_ids),
            }
        )
    return out


def risk_level(fraud_rate: float) -> str:
    if fraud_rate >= HIGH_RISK_RATE:
        return "HIGH"
    return "MEDIUM" if fraud_rate >= MEDIUM_RISK_RATE else "LOW"


def merchant_risk(daily: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Per merchant over all its days (all currencies): counts, rates and a risk level."""
    merchants: dict[str, Row] = {}
    for d in daily:
        m = merchants.get(d["merchant_id"])
        if m is None:
            m = merchants[d["merchant_id"]] = {
                "merchant_id": d["merchant_id"],
                "merchant_name": d["merchant_name"],
                "mcc": d["mcc"],
                "merchant_country": d["merchant_country"],
                "transactions": 0,
                "approved": 0,
                "fraud_events": 0,
                "alerted_events": 0,
                "first_day": d["day"],
                "last_day": d["day"],
            }
        for column in ("transactions", "approved", "fraud_events", "alerted_events"):
            m[column] += d[column]
        m["first_day"] = min(m["first_day"], d["day"])
        m["last_day"] = max(m["last_day"], d["day"])
    for m in merchants.values():
        m["fraud_rate"] = m["fraud_events"] / m["transactions"] if m["transactions"] else 0.0
        m["alert_rate"] = m["alerted_events"] / m["transactions"] if m["transactions"] else 0.0
        m["risk_level"] = risk_level(m["fraud_rate"])
    return sorted(merchants.values(), key=lambda m: m["merchant_id"])
