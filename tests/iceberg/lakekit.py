"""Helpers of the lake tests and bench: private topics with real schemas, a producer, table reads.

Each test writes to its own topic (a fresh name, the schema of a real topic from schemas/) and its
own catalog and warehouse, so tests sharing the session stack never see each other's records.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

from iceberg.tables import SCHEMAS_DIR, TableDef, bronze_table
from riverbank.settings import Settings, load_settings

PAYMENT_SCHEMA = "payments/payment.avsc"


def lake_settings(env: dict[str, str], lake_dir: Path, warehouse: str | None = None, **lake: Any) -> Settings:
    """Settings of the stack in ``env`` with a private catalog and warehouse under ``lake_dir``."""
    from tests.stack_harness import environ

    with environ(env):
        return load_settings(
            lake={
                "catalog_uri": f"sqlite:///{lake_dir / 'catalog.db'}",
                "warehouse": warehouse or (lake_dir / "warehouse").as_uri(),
                **lake,
            }
        )


def new_topic(settings: Settings, prefix: str, partitions: int = 2) -> str:
    topic = f"{prefix}.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({**settings.kafka.client_config(), "log_level": 0})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        future.result()
    return topic


def payment_table(settings: Settings, topic: str) -> TableDef:
    entry = {"value": PAYMENT_SCHEMA, "key": "string"}
    return bronze_table(topic, entry, settings.lake.bronze_namespace)


def payment(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=n)),
        "payment_id": f"P{n}",
        "payment_type": "SEPA_CREDIT",
        "debtor_account_id": str(n % 97),
        "debtor_customer_id": str(n % 89),
        "creditor_account_id": None,
        "creditor_iban": "DE89370400440532013000",
        "creditor_name": "Creditor",
        "creditor_bic": None,
        "creditor_country": "DE",
        "amount": Decimal(n % 100_000).scaleb(-2),
        "currency": "EUR",
        "status": "SETTLED",
        "remittance_info": None,
        "channel": "WEB",
        "requested_execution_date": dt.date(2026, 1, 2),
        "event_time": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "device_id": None,
        "ip_address": None,
        "ip_country": None,
        **extra,
    }


class TestProducer:
    """Avro producer for one topic; registers the given schema text under ``<topic>-value``."""

    __test__ = False

    def __init__(self, settings: Settings, topic: str, schema_text: str | None = None) -> None:
        self.topic = topic
        self.registry = SchemaRegistryClient(settings.schema_registry.client_config())
        text = schema_text or (SCHEMAS_DIR / PAYMENT_SCHEMA).read_text()
        self.serializer = AvroSerializer(self.registry, text, conf={"auto.register.schemas": True})
        self.keys = StringSerializer()
        self.ctx = SerializationContext(topic, MessageField.VALUE)
        self.producer = Producer({**settings.kafka.client_config(), "linger.ms": 5, "log_level": 0})
        self.acked: set[tuple[int, int]] = set()

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.acked.add((msg.partition(), msg.offset()))

    def send(self, key: str, value: dict[str, Any] | None) -> None:
        data = None if value is None else self.serializer(value, self.ctx)
        self.send_raw(self.keys(key, None), data)

    def send_raw(self, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value, key, on_delivery=self._delivered)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer.flush(60) == 0

    def close(self) -> None:
        self.flush()
        self.registry.close()


def evolved_payment_schema(new_field: str) -> str:
    schema = json.loads((SCHEMAS_DIR / PAYMENT_SCHEMA).read_text())
    top = max(f["field-id"] for f in schema["fields"])
    schema["fields"].append(
        {"name": new_field, "type": ["null", "string"], "default": None, "doc": "Added.", "field-id": top + 1}
    )
    return json.dumps(schema)
