"""Demo step: change a customer in the bank database and watch the change arrive on Kafka."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from rich.console import Console
from rich.table import Table

from cdc.connector import load_connector, resolve_path
from cdc.status import read_status, status_path
from producers.bankdb import connect
from riverbank.settings import Settings

_COLUMNS = ("customer_id", "email", "phone", "country", "updated_at")


def demo_step(settings: Settings, console: Console, timeout_s: float = 60) -> bool:
    """Update one customer's contact details; show the change event (before/after) from Kafka."""
    connector = load_connector(resolve_path(settings.cdc.connector))
    path = status_path(settings, connector.name)
    deadline = time.monotonic() + timeout_s
    status = read_status(path)
    # `up` reports the engine once it is starting; its JVM and task may need a little longer.
    while status is not None and status.state == "starting" and time.monotonic() < deadline:
        time.sleep(0.5)
        status = read_status(path)
    if status is None or status.state not in ("running", "snapshot", "streaming"):
        console.print(
            f"  CDC engine {connector.name} is not running (state: {status.state if status else 'none'});"
            " `riverbank up` starts it as component cdc"
        )
        return False
    topic = f"{connector.topic_prefix}.public.customers"
    new_email = f"moved-{int(time.time())}@example.com"
    with connect(settings.source_db, autocommit=True) as conn:
        row = conn.execute("SELECT customer_id, email FROM customers ORDER BY customer_id LIMIT 1").fetchone()
        if row is None:
            console.print("  the bank database has no customers yet (run `riverbank produce` first)")
            return False
        customer_id = row[0]
        conn.execute(
            "UPDATE customers SET email = %s, phone = '+44 20 7946 0000',"
            " updated_at = now() AT TIME ZONE 'UTC' WHERE customer_id = %s",
            (new_email, customer_id),
        )
        committed = time.time()
    console.print(f"  customer {customer_id}: email {row[1]!r} -> {new_email!r} (one UPDATE, committed)")
    event = _find(settings, topic, customer_id, new_email, timeout_s)
    if event is None:
        console.print(f"  [red]the change did not arrive on {topic} within {timeout_s:.0f} s[/]")
        return False
    value, partition, offset, received = event
    table = Table(
        title=f"{topic} partition {partition} offset {offset}: op={value['op']!r}", title_justify="left"
    )
    table.add_column("column")
    table.add_column("before")
    table.add_column("after")
    for column in _COLUMNS:
        before, after = (value.get(side) or {} for side in ("before", "after"))
        table.add_row(column, str(before.get(column, "")), str(after.get(column, "")))
    console.print(table)
    console.print(
        f"  decoded with the registry's schema; commit -> received {1000 * (received - committed):.0f} ms"
    )
    return True


def _find(
    settings: Settings, topic: str, customer_id: int, email: str, timeout_s: float
) -> tuple[dict[str, Any], int, int, float] | None:
    registry = SchemaRegistryClient(settings.schema_registry.client_config())
    decode = AvroDeserializer(registry)
    consumer = Consumer(
        settings.kafka.client_config() | {"group.id": "riverbank-demo-cdc", "fetch.wait.max.ms": 100}
    )
    try:
        deadline = time.monotonic() + timeout_s
        assigned = False
        while time.monotonic() < deadline:
            if not assigned:
                metadata = consumer.list_topics(topic, timeout=5).topics.get(topic)
                if metadata is None or metadata.error or not metadata.partitions:
                    time.sleep(0.2)
                    continue
                consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
                assigned = True
            for message in consumer.consume(1000, 0.2):
                if message.error() or message.value() is None:
                    continue
                value = decode(message.value(), SerializationContext(topic, MessageField.VALUE))
                after = value.get("after") or {}
                if after.get("customer_id") == customer_id and after.get("email") == email:
                    return value, message.partition() or 0, message.offset() or 0, time.time()
        return None
    finally:
        consumer.close()
        registry.close()
