"""Gold figures on a small dataset whose numbers were worked out by hand (no services).

Day 1 (2026-03-02), customer 1: POS e1 10.00, e2 30.00 approved, e3 7.00 declined at M1; ECOM
e4 1.00, e5 1.50 approved at M2 (card testing: label L1 = [e4, e5]). Day 2: customer 2, POS e6
200.00 at M1, ECOM e7 999.99 at M3 (impossible travel: label L2 = [e7], arriving late).
Alerts: e4 twice (two alert ids: one event), e2 by card-testing (a false positive), e6 by
new-country (a false positive of no pattern).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from iceberg.gold.refresh import GoldLake, refresh_gold
from iceberg.silver.refresh import SilverLake, refresh_silver
from tests.medallion.bronze import T0, Bronze, alert, card_transaction, label

D1, D2 = T0.date(), T0.date() + dt.timedelta(days=1)
T2 = T0 + dt.timedelta(days=1)


def gold_rows(lake: GoldLake, name: str, *key: str) -> list[tuple[Any, ...]]:
    table = lake.catalog.load_table(f"gold.{name}").scan().to_arrow().to_pylist()
    return sorted(tuple(r[k] for k in key) for r in table)


def day_files(lake: GoldLake, name: str, day: dt.date) -> set[str]:
    table = lake.catalog.load_table(f"gold.{name}")
    return {t.file.file_path for t in table.scan(row_filter=f"day = '{day.isoformat()}'").plan_files()}


def refresh(silver: SilverLake, gold: GoldLake) -> None:
    refresh_silver(silver)
    refresh_gold(gold)


def test_gold_figures_and_incremental_refresh(
    bronze: Bronze, silver: SilverLake, settings: Any, catalog: Any
) -> None:
    gold = GoldLake(settings, catalog)
    bronze.write(
        "bank.card.transactions",
        [
            card_transaction("e1", amount="10.00"),
            card_transaction("e2", amount="30.00"),
            card_transaction("e3", amount="7.00", status="DECLINED"),
            card_transaction("e4", amount="1.00", channel="ECOM", merchant="M2"),
            card_transaction("e5", amount="1.50", channel="ECOM", merchant="M2"),
        ],
    )
    bronze.write(
        "fraud.alerts",
        [
            alert("a1", "e4", ["card-testing"]),
            alert("a4", "e4", ["card-velocity"]),
            alert("a2", "e2", ["card-testing"]),
        ],
    )
    bronze.write("fraud.labels", [label("L1", "CARD_TESTING", ["e4", "e5"])])
    refresh(silver, gold)
    day1_files = {n: day_files(gold, n, D1) for n in ("customer_daily", "fraud_kpis_daily", "merchant_daily")}

    # Day 2 arrives; the label of e7 comes in a later batch than e7 itself.
    bronze.write(
        "bank.card.transactions",
        [
            card_transaction("e6", customer="2", amount="200.00", when=T2),
            card_transaction("e7", customer="2", amount="999.99", channel="ECOM", merchant="M3", when=T2),
        ],
    )
    bronze.write("fraud.alerts", [alert("a3", "e6", ["new-country"], when=T2)])
    refresh(silver, gold)
    bronze.write("fraud.labels", [label("L2", "IMPOSSIBLE_TRAVEL", ["e7"], first=T2)])
    refresh(silver, gold)

    # Day 1 was not recomputed by the day-2 batches: its partitions' files are the same ones.
    assert {n: day_files(gold, n, D1) for n in day1_files} == day1_files

    cols = ("day", "customer_id", "channel", "transactions", "approved", "declined",
            "approved_amount", "avg_approved_amount", "max_approved_amount")  # fmt: skip
    assert gold_rows(gold, "customer_daily", *cols) == [
        (D1, "1", "ECOM", 2, 2, 0, Decimal("2.50"), Decimal("1.25"), Decimal("1.50")),
        (D1, "1", "POS", 3, 2, 1, Decimal("40.00"), Decimal("20.00"), Decimal("30.00")),
        (D2, "2", "ECOM", 1, 1, 0, Decimal("999.99"), Decimal("999.99"), Decimal("999.99")),
        (D2, "2", "POS", 1, 1, 0, Decimal("200.00"), Decimal("200.00"), Decimal("200.00")),
    ]
    cols = ("day", "pattern", "labelled_events", "detected_events", "missed_events",
            "false_positive_events", "alerted_events", "precision", "recall")  # fmt: skip
    assert gold_rows(gold, "fraud_kpis_daily", *cols) == [
        (D1, "ALL", 2, 1, 1, 1, 2, 0.5, 0.5),
        (D1, "CARD_TESTING", 2, 1, 1, 1, 2, 0.5, 0.5),
        (D2, "ALL", 1, 0, 1, 1, 1, 0.0, 0.0),
        (D2, "IMPOSSIBLE_TRAVEL", 1, 0, 1, 0, 0, None, 0.0),
        (D2, "UNATTRIBUTED", 0, 0, 0, 1, 1, 0.0, None),
    ]
    cols = ("day", "merchant_id", "transactions", "approved", "approved_amount", "fraud_events",
            "fraud_amount", "alerted_events")  # fmt: skip
    assert gold_rows(gold, "merchant_daily", *cols) == [
        (D1, "M1", 3, 2, Decimal("40.00"), 0, Decimal("0.00"), 1),
        (D1, "M2", 2, 2, Decimal("2.50"), 2, Decimal("2.50"), 1),
        (D2, "M1", 1, 1, Decimal("200.00"), 0, Decimal("0.00"), 1),
        (D2, "M3", 1, 1, Decimal("999.99"), 1, Decimal("999.99"), 0),
    ]
    cols = ("merchant_id", "transactions", "fraud_events", "alerted_events", "fraud_rate",
            "alert_rate", "risk_level", "first_day", "last_day")  # fmt: skip
    assert gold_rows(gold, "merchant_risk", *cols) == [
        ("M1", 4, 0, 2, 0.0, 0.5, "LOW", D1, D2),
        ("M2", 2, 2, 1, 1.0, 0.5, "HIGH", D1, D1),
        ("M3", 1, 1, 0, 1.0, 0.0, "HIGH", D2, D2),
    ]

    # A late alert on e5 (day 1) recomputes day 1 only: card testing is now fully detected.
    bronze.write("fraud.alerts", [alert("a5", "e5", ["card-testing"])])
    refresh(silver, gold)
    kpis = {
        (r[0], r[1]): r[2:]
        for r in gold_rows(
            gold, "fraud_kpis_daily", "day", "pattern", "detected_events", "recall", "precision"
        )
    }
    assert kpis[(D1, "CARD_TESTING")] == (2, 1.0, 2 / 3)
    assert kpis[(D2, "IMPOSSIBLE_TRAVEL")] == (0, 0.0, None)
    assert day_files(gold, "customer_daily", D1) == day1_files["customer_daily"]
