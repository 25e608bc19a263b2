"""Records the sink cannot land: the dead-letter topic and the quarantine table.

A record that cannot be decoded, or that breaks a rule of its bronze table, goes to
``riverbank.dlq`` (reason in the same headers as ``producers/publisher.py``, the original bytes as
the payload) and to the Iceberg table ``<bronze namespace>.<lake.quarantine_table>`` with its
topic, partition, offset, reason and raw key/value bytes. Its offset still counts as consumed.
The table is the exactly-once record (its commits carry offsets like the bronze tables, see
``iceberg.sink``); the topic is at least once.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Literal

from pyiceberg.schema import Schema
from pyiceberg.types import BinaryType, IntegerType, LongType, NestedField, StringType, TimestamptzType

from iceberg.tables import TableDef, day_partition
from riverbank.settings import Settings

DLQ_TOPIC = "riverbank.dlq"
Stage = Literal["bronze-decode", "bronze-table"]

# Not derived from schemas/: this table holds what no schema could explain.
QUARANTINE_SCHEMA = Schema(
    NestedField(1, "_topic", StringType(), required=True, doc="Source topic."),
    NestedField(2, "_partition", IntegerType(), required=True, doc="Source partition."),
    NestedField(3, "_offset", LongType(), required=True, doc="Source offset."),
    NestedField(4, "_timestamp", TimestamptzType(), required=True, doc="Kafka record time (UTC)."),
    NestedField(5, "stage", StringType(), required=True, doc="bronze-decode or bronze-table."),
    NestedField(6, "reason", StringType(), required=True, doc="Why the record was not landed."),
    NestedField(7, "error_class", StringType(), doc="Error type behind the reason."),
    NestedField(8, "schema_id", IntegerType(), doc="Writer schema id, when the header was readable."),
    NestedField(9, "key", BinaryType(), doc="Raw key bytes."),
    NestedField(10, "value", BinaryType(), doc="Raw value bytes."),
    NestedField(11, "_ingested_at", TimestamptzType(), required=True, doc="When the sink read it (UTC)."),
)


def quarantine_table(settings: Settings) -> TableDef:
    return TableDef(
        topic="",
        namespace=settings.lake.bronze_namespace,
        name=settings.lake.quarantine_table,
        kind="events",
        schema=QUARANTINE_SCHEMA,
        partition_spec=day_partition(QUARANTINE_SCHEMA, "_timestamp"),
        avro={},
    )


@dataclass(frozen=True)
class Rejected:
    """One record the sink could not land, with why."""

    topic: str
    partition: int
    offset: int
    timestamp: dt.datetime
    stage: Stage
    reason: str
    error_class: str
    schema_id: int | None
    key: bytes | None
    value: bytes | None
    ingested_at: dt.datetime

    def row(self) -> dict[str, Any]:
        return {
            "_topic": self.topic,
            "_partition": self.partition,
            "_offset": self.offset,
            "_timestamp": self.timestamp,
            "stage": self.stage,
            "reason": self.reason,
            "error_class": self.error_class,
            "schema_id": self.schema_id,
            "key": self.key,
            "value": self.value,
            "_ingested_at": self.ingested_at,
        }

    def dlq_headers(self) -> list[tuple[str, bytes]]:
        # Header names as producers/publisher.py writes them, plus where the record came from.
        return [
            ("dlq.reason", self.reason.encode()[:2000] or b"unknown"),
            ("dlq.error.class", self.error_class.encode()),
            ("dlq.source.topic", self.topic.encode()),
            ("dlq.stage", self.stage.encode()),
            ("dlq.event.id", b""),
            ("dlq.payload.format", b"raw"),
            ("dlq.time", str(int(time.time() * 1000)).encode()),
            ("dlq.source.partition", str(self.partition).encode()),
            ("dlq.source.offset", str(self.offset).encode()),
        ]
