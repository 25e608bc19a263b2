"""A small, seeded lake for the SQL tests: bronze card transactions, silver merchants, gold KPIs.

The rows are made here with pyarrow and written through pyiceberg into whatever catalog the
settings name, so the same data serves the file:// and the s3:// warehouse tests. The raw Arrow
tables are kept so expected answers are computed without our translation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
from pyiceberg.catalog import Catalog

START = datetime(2024, 1, 28, tzinfo=UTC)
CHANNELS = ["POS", "ECOM", "ATM", "CONTACTLESS"]
STATUSES = ["APPROVED", "DECLINED"]

MERCHANT = pa.struct(
    [("merchant_id", pa.string()), ("name", pa.string()), ("country", pa.string()), ("city", pa.string())]
)
TRANSACTIONS = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("card_id", pa.string(), nullable=False),
        pa.field("merchant", MERCHANT),
        pa.field("amount", pa.decimal128(18, 2)),
        pa.field("fee", pa.float64()),
        pa.field("channel", pa.string()),
        pa.field("status", pa.string()),
        pa.field("card_present", pa.bool_()),
        pa.field("event_time", pa.timestamp("us", tz="UTC")),
        pa.field("_topic", pa.string()),
        pa.field("_partition", pa.int32()),
        pa.field("_offset", pa.int64()),
    ]
)
MERCHANTS = pa.schema(
    [
        pa.field("merchant_id", pa.string(), nullable=False),
        pa.field("risk_tier", pa.int32()),
        pa.field("onboarded", pa.date32()),
    ]
)
KPIS = pa.schema(
    [pa.field("day", pa.date32()), pa.field("alerts", pa.int64()), pa.field("pattern", pa.string())]
)


@dataclass(frozen=True)
class LakeData:
    transactions: pa.Table  # all rows (both commits)
    first_commit: pa.Table
    merchants: pa.Table
    kpis: pa.Table


def make_data(rows: int = 1200, seed: int = 7) -> LakeData:
    rng = random.Random(seed)
    merchant_ids = [f"m{i:03d}" for i in range(25)]
    cities = [None, "Berlin", "Paris", "Lisbon", "Austin"]
    records = []
    for i in range(rows):
        mid = rng.choice(merchant_ids)
        records.append(
            {
                "event_id": f"e{i:06d}",
                "card_id": f"c{rng.randrange(60):03d}",
                "merchant": {
                    "merchant_id": mid,
                    "name": f"Shop {mid.upper()} ",
                    "country": rng.choice(["DE", "FR", "PT", "US"]),
                    "city": rng.choice(cities),
                },
                "amount": None if i % 97 == 0 else Decimal(rng.randrange(-500, 250_000)) / 100,
                "fee": None if i % 89 == 0 else round(rng.uniform(0, 3), 3),
                "channel": rng.choice(CHANNELS),
                "status": rng.choice(STATUSES),
                "card_present": rng.random() < 0.6,
                # Ten days around a month end, with times that straddle midnight.
                "event_time": START + timedelta(seconds=rng.randrange(0, 10 * 86400)),
                "_topic": "bank.card.transactions",
                "_partition": i % 4,
                "_offset": i // 4,
            }
        )
    transactions = pa.Table.from_pylist(records, schema=TRANSACTIONS)
    merchants = pa.Table.from_pylist(
        [
            {
                "merchant_id": m,
                "risk_tier": None if n % 7 == 0 else n % 3,
                "onboarded": date(2023, 1 + n % 12, 1 + n),
            }
            for n, m in enumerate(merchant_ids[:-3])
        ],
        schema=MERCHANTS,
    )
    kpis = pa.Table.from_pylist(
        [
            {"day": (START + timedelta(days=d)).date(), "alerts": 3 * d + 1, "pattern": p}
            for d in range(10)
            for p in ("card_testing", "account_takeover")
        ],
        schema=KPIS,
    )
    return LakeData(transactions, transactions.slice(0, rows // 2), merchants, kpis)


def write_lake(catalog: Catalog, data: LakeData) -> None:
    """bronze.bank_card_transactions in two commits (for time travel), silver and gold in one."""
    for namespace in ("bronze", "silver", "gold"):
        catalog.create_namespace_if_not_exists(namespace)
    tx = catalog.create_table("bronze.bank_card_transactions", schema=TRANSACTIONS)
    half = data.first_commit.num_rows
    tx.append(data.first_commit)
    tx.append(data.transactions.slice(half))
    catalog.create_table("silver.merchants", schema=MERCHANTS).append(data.merchants)
    catalog.create_table("gold.fraud_kpis_daily", schema=KPIS).append(data.kpis)
