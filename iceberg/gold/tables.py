"""Gold table definitions (the output shape of ``aggregates.py``)."""

from __future__ import annotations

import pyarrow as pa

from iceberg.silver.tables import MONEY, STR

I64 = pa.int64()
F64 = pa.float64()

CUSTOMER_DAILY = pa.schema(
    [
        ("day", pa.date32()),
        ("customer_id", STR),
        ("channel", STR),
        ("billing_currency", STR),
        ("transactions", I64),
        ("approved", I64),
        ("declined", I64),
        ("approved_amount", MONEY),
        ("avg_approved_amount", MONEY),
        ("max_approved_amount", MONEY),
    ]
)
FRAUD_KPIS_DAILY = pa.schema(
    [
        ("day", pa.date32()),
        ("pattern", STR),
        ("labelled_events", I64),
        ("detected_events", I64),
        ("missed_events", I64),
        ("false_positive_events", I64),
        ("alerted_events", I64),
        ("precision", F64),
        ("recall", F64),
    ]
)
MERCHANT_DAILY = pa.schema(
    [
        ("day", pa.date32()),
        ("merchant_id", STR),
        ("merchant_name", STR),
        ("mcc", STR),
        ("merchant_country", STR),
        ("currency", STR),
        ("transactions", I64),
        ("approved", I64),
        ("approved_amount", MONEY),
        ("fraud_events", I64),
        ("fraud_amount", MONEY),
        ("alerted_events", I64),
    ]
)
MERCHANT_RISK = pa.schema(
    [
        ("merchant_id", STR),
        ("merchant_name", STR),
        ("mcc", STR),
        ("merchant_country", STR),
        ("transactions", I64),
        ("approved", I64),
        ("fraud_events", I64),
        ("alerted_events", I64),
        ("fraud_rate", F64),
        ("alert_rate", F64),
        ("risk_level", STR),
        ("first_day", pa.date32()),
        ("last_day", pa.date32()),
        ("_bucket", pa.int32()),
    ]
)
