"""Silver table definitions: the output shape of the transforms in ``transform.py``.

Silver columns are not a second copy of ``schemas/``: they are what the transforms make of the
bronze columns (which are derived from the Avro schemas), with PII replaced by tokens or keyed
hashes and lineage columns added. Current-state tables are partitioned by ``_bucket`` (a hash of
the primary key) so a CDC batch rewrites only the buckets it touches; event tables by day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from pyiceberg.transforms import DayTransform

from iceberg.silver.store import OFFSET_COLUMN, PARTITION_COLUMN, load_optional

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table
    from pyiceberg.table.update.spec import UpdateSpec

NO_RETRY = "commit.retry.num-retries"
TS = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 2)
STR = pa.string()
I64 = pa.int64()

_LINEAGE = [
    ("_lsn", I64),
    ("_op_ts", TS),
    (PARTITION_COLUMN, pa.int32()),
    (OFFSET_COLUMN, I64),
    ("_bucket", pa.int32()),
]
_EVENT_LINEAGE = [(PARTITION_COLUMN, pa.int32()), (OFFSET_COLUMN, I64), ("_ingested_at", TS)]

CUSTOMER_FIELDS = [
    ("customer_id", I64),
    ("external_ref", STR),
    ("first_name", STR),
    ("last_name", STR),
    ("email_hash", STR),
    ("phone_hash", STR),
    ("date_of_birth", pa.date32()),
    ("country", STR),
    ("kyc_status", STR),
    ("risk_rating", STR),
    ("created_at", TS),
    ("updated_at", TS),
]
ACCOUNT_FIELDS = [
    ("account_id", I64),
    ("customer_id", I64),
    ("iban", STR),
    ("currency", STR),
    ("account_type", STR),
    ("status", STR),
    ("balance", MONEY),
    ("credit_limit", MONEY),
    ("opened_at", TS),
    ("closed_at", TS),
    ("updated_at", TS),
]
CARD_FIELDS = [
    ("card_id", I64),
    ("account_id", I64),
    ("customer_id", I64),
    ("card_token", STR),
    ("pan_last4", STR),
    ("scheme", STR),
    ("card_type", STR),
    ("status", STR),
    ("expiry_month", pa.int32()),
    ("expiry_year", pa.int32()),
    ("daily_limit", MONEY),
    ("issued_at", TS),
    ("updated_at", TS),
]

CUSTOMERS = pa.schema(CUSTOMER_FIELDS + _LINEAGE)
CUSTOMERS_HISTORY = pa.schema(
    [*CUSTOMER_FIELDS, ("valid_from", TS), ("valid_to", TS), ("is_current", pa.bool_()), *_LINEAGE]
)
ACCOUNTS = pa.schema(ACCOUNT_FIELDS + _LINEAGE)
CARDS = pa.schema(CARD_FIELDS + _LINEAGE)

CARD_TRANSACTIONS = pa.schema(
    [
        ("event_id", STR),
        ("authorization_id", STR),
        ("card_id", STR),
        ("account_id", STR),
        ("customer_id", STR),
        ("merchant_id", STR),
        ("merchant_name", STR),
        ("mcc", STR),
        ("merchant_country", STR),
        ("merchant_city", STR),
        ("amount", MONEY),
        ("currency", STR),
        ("billing_amount", MONEY),
        ("billing_currency", STR),
        ("channel", STR),
        ("entry_mode", STR),
        ("status", STR),
        ("decline_reason", STR),
        ("card_present", pa.bool_()),
        ("device_id", STR),
        ("ip_address", STR),
        ("event_time", TS),
        ("attributes", pa.map_(STR, STR)),
        *_EVENT_LINEAGE,
    ]
)
PAYMENTS = pa.schema(
    [
        ("event_id", STR),
        ("payment_id", STR),
        ("payment_type", STR),
        ("debtor_account_id", STR),
        ("debtor_customer_id", STR),
        ("creditor_account_id", STR),
        ("creditor_iban", STR),
        ("creditor_name", STR),
        ("creditor_country", STR),
        ("amount", MONEY),
        ("currency", STR),
        ("status", STR),
        ("remittance_info", STR),
        ("channel", STR),
        ("event_time", TS),
        *_EVENT_LINEAGE,
    ]
)
FRAUD_ALERTS = pa.schema(
    [
        ("alert_id", STR),
        ("source", STR),
        ("source_event_id", STR),
        ("customer_id", STR),
        ("account_id", STR),
        ("card_id", STR),
        ("amount", MONEY),
        ("currency", STR),
        ("score", pa.float64()),
        ("severity", STR),
        ("rule_ids", pa.list_(STR)),
        ("model_version", STR),
        ("event_time", TS),
        ("alert_time", TS),
        *_EVENT_LINEAGE,
    ]
)
#: fraud.labels exploded: one row per fraudulent event of a label.
FRAUD_LABEL_EVENTS = pa.schema(
    [
        ("label_id", STR),
        ("event_id", STR),
        ("pattern", STR),
        ("topic", STR),
        ("customer_id", STR),
        ("account_id", STR),
        ("card_id", STR),
        ("first_event_time", TS),
        ("last_event_time", TS),
        ("description", STR),
        *_EVENT_LINEAGE,
    ]
)


def _by_bucket(spec: UpdateSpec) -> None:
    spec.add_identity("_bucket")


def _by_event_day(spec: UpdateSpec) -> None:
    spec.add_field("event_time", DayTransform(), "event_day")


def _by_label_day(spec: UpdateSpec) -> None:
    spec.add_field("first_event_time", DayTransform(), "label_day")


@dataclass(frozen=True)
class SilverTable:
    name: str
    schema: pa.Schema
    partitioning: Callable[[UpdateSpec], None]

    @property
    def bucketed(self) -> bool:
        return self.partitioning is _by_bucket


SILVER_TABLES: dict[str, SilverTable] = {
    t.name: t
    for t in (
        SilverTable("customers", CUSTOMERS, _by_bucket),
        SilverTable("customers_history", CUSTOMERS_HISTORY, _by_bucket),
        SilverTable("accounts", ACCOUNTS, _by_bucket),
        SilverTable("cards", CARDS, _by_bucket),
        SilverTable("card_transactions", CARD_TRANSACTIONS, _by_event_day),
        SilverTable("payments", PAYMENTS, _by_event_day),
        SilverTable("fraud_alerts", FRAUD_ALERTS, _by_event_day),
        SilverTable("fraud_label_events", FRAUD_LABEL_EVENTS, _by_label_day),
    )
}


def ensure_table(
    catalog: Catalog,
    identifier: str,
    schema: pa.Schema,
    partitioning: Callable[[UpdateSpec], None],
    properties: dict[str, str] | None = None,
) -> Table:
    """Load ``identifier``, creating it (schema and partition spec in one commit) if missing.

    pyiceberg retries a conflicting commit by re-running its writes on the new state; for a
    table whose bookmark and rows were computed from the old state that could apply a batch
    twice, so these tables fail the commit instead and the next pass starts over from the
    bookmark."""
    table = load_optional(catalog, identifier)
    if table is not None:
        return table
    properties = {NO_RETRY: "0", **(properties or {})}
    from pyiceberg.exceptions import TableAlreadyExistsError

    try:
        with (
            catalog.create_table_transaction(identifier, schema, properties=properties) as tx,
            tx.update_spec() as spec,
        ):
            partitioning(spec)
    except TableAlreadyExistsError:  # another process created it meanwhile
        pass
    return catalog.load_table(identifier)
