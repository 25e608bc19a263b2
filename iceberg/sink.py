"""The Kafka to bronze sink: every record of the configured topics lands exactly once.

Exactly once, by construction:

1. The sink assigns itself every partition (no group join) at the offsets found in the bronze
   tables' snapshot summaries (``iceberg.offsets``), never at the consumer group's.
2. Records are decoded as they arrive and buffered per topic. Every ``lake.commit_interval_s``
   (or ``lake.commit_max_records``) one commit per touched table appends the rows *and* the next
   offset of each partition in the same snapshot. A crash before the catalog commit loses the
   buffer and the offsets together; a crash after it keeps both. Either way the restart resumes
   exactly after the last landed record.
3. Rejected records (undecodable, or breaking a table rule) are written to the quarantine table
   first, with their own offsets in its summary, then the bronze commit advances past them. A
   restart between the two sees them again and skips those the quarantine table already holds,
   so every offset is in bronze or in quarantine exactly once. The DLQ topic copy is at least once.
4. The consumer group gets the offsets only for lag monitoring.

One sink per lake: two sinks on the same tables would each land every record.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from iceberg import offsets as offset_store
from iceberg.catalog import ensure_namespaces, load_lake_catalog
from iceberg.quarantine import DLQ_TOPIC, Rejected, Stage, quarantine_table
from iceberg.rows import ROW_BUILDERS, ArrowBuilder, KafkaMeta, RowError
from iceberg.tables import (
    SchemaDerivationError,
    TableDef,
    _Ids,
    add_columns,
    bronze_tables,
    create_or_load,
    missing_fields,
    record_fields,
)
from iceberg.wire import DecodeError, SchemaCache, decode, key_text, schema_id_of
from riverbank.errors import ServiceUnavailableError
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = logging.getLogger("riverbank.lake.sink")
_rdkafka_log = logging.getLogger("riverbank.lake.sink.librdkafka")
_rdkafka_log.addHandler(logging.NullHandler())
_TOPIC_REFRESH_S = 10.0
_KEY_CACHE_LIMIT = 100_000


@dataclass
class SinkStats:
    consumed: int = 0
    landed: int = 0
    quarantined: int = 0
    commits: int = 0
    flushes: int = 0
    started_s: float = field(default_factory=time.monotonic)
    #: Seconds from process start to the first poll (catalog, tables, offsets, consumer).
    startup_s: float = 0.0
    landed_by_table: dict[str, int] = field(default_factory=dict)


@dataclass
class _TopicState:
    table_def: TableDef
    table: Table
    builder: ArrowBuilder
    #: Next offset per partition: committed ones, advanced as records are read.
    next_offsets: dict[int, int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: Raw (key, value, schema id) of each buffered row, for quarantining at commit time.
    raw: list[tuple[bytes | None, bytes | None, int | None]] = field(default_factory=list)
    seen_schema_ids: set[int] = field(default_factory=set)
    dirty: bool = False


class BronzeSink:
    """Consume the topics of ``tables`` and land them in bronze; see the module doc."""

    def __init__(self, settings: Settings, tables: Mapping[str, TableDef] | None = None) -> None:
        self.settings = settings
        self.stats = SinkStats()
        self._defs = (
            dict(tables) if tables is not None else bronze_tables(settings, settings.lake.bronze_topics)
        )
        self._topics: dict[str, _TopicState] = {}
        self._assigned: set[str] = set()
        self._rejected: list[Rejected] = []
        self._quarantined_upto: dict[tuple[str, int], int] = {}
        self._key_cache: dict[bytes, str | None] = {}
        self._last_commit = time.monotonic()
        self._last_topic_refresh = 0.0
        self._buffered = 0
        self._consumer: Any = None
        self._producer: Any = None
        self._registry: Any = None

    # -- life cycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        from confluent_kafka import Consumer, Producer
        from confluent_kafka.schema_registry import SchemaRegistryClient

        catalog = load_lake_catalog(self.settings)
        ensure_namespaces(catalog, self.settings)
        for topic, table_def in self._defs.items():
            table = create_or_load(catalog, table_def)
            committed = offset_store.committed_offsets(table)
            self._topics[topic] = _TopicState(
                table_def=table_def,
                table=table,
                builder=ArrowBuilder.of(table.schema()),
                next_offsets={p: o for (t, p), o in committed.items() if t == topic},
            )
        self._quarantine = create_or_load(catalog, quarantine_table(self.settings))
        self._quarantine_builder = ArrowBuilder.of(self._quarantine.schema())
        self._quarantined_upto = offset_store.committed_offsets(self._quarantine)
        self._registry = SchemaRegistryClient(self.settings.schema_registry.client_config())
        self._schemas = SchemaCache(self._registry)
        kafka = self.settings.kafka.client_config()
        self._consumer = Consumer(
            {
                **kafka,
                "group.id": self.settings.lake.sink_group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                # Tansu on s3 storage answers a fetch empty when this expires before its object
                # read ends (platform notes: >= 100 ms). 500 ms leaves room on a loaded machine;
                # data already present is returned at once, so latency does not grow.
                "fetch.wait.max.ms": 500,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 2000,
                "queued.max.messages.kbytes": 262_144,
                "logger": _rdkafka_log,
            }
        )
        self._producer = Producer(
            {
                **self.settings.kafka.producer_config(),
                "acks": "all",
                "enable.idempotence": True,
                "logger": _rdkafka_log,
            }
        )
        self._assign_new_topics()
        self.stats.startup_s = time.monotonic() - self.stats.started_s

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def run(self, stop: threading.Event, duration_s: float | None = None) -> SinkStats:
        """Poll and commit until ``stop`` is set or ``duration_s`` passes; commits what it holds."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        interval = self.settings.lake.commit_interval_s
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            self.poll(timeout=min(0.2, interval / 4))
            if time.monotonic() - self._last_commit >= interval:
                self.commit()
        self.commit()
        return self.stats

    # -- consuming ----------------------------------------------------------------------------------

    def _assign_new_topics(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        self._last_topic_refresh = time.monotonic()
        wanted = [t for t in self._topics if t not in self._assigned]
        if not wanted:
            return
        try:
            metadata = self._consumer.list_topics(timeout=10)
        except KafkaException as exc:
            raise ServiceUnavailableError(
                f"Kafka did not answer the sink's metadata request: {exc}"
            ) from None
        assignment = []
        for topic in wanted:
            info = metadata.topics.get(topic)
            if info is None or info.error is not None or not info.partitions:
                continue
            state = self._topics[topic]
            for partition in sorted(info.partitions):
                start = state.next_offsets.get(partition, OFFSET_BEGINNING)
                assignment.append(TopicPartition(topic, partition, start))
            self._assigned.add(topic)
        if assignment:
            self._consumer.incremental_assign(assignment)
            log.info("assigned %d partitions of %d topics", len(assignment), len(self._assigned))

    def poll(self, timeout: float) -> int:
        if time.monotonic() - self._last_topic_refresh > _TOPIC_REFRESH_S:
            self._assign_new_topics()
        batch = min(10_000, self.settings.lake.commit_max_records)
        messages = self._consumer.consume(num_messages=batch, timeout=timeout)
        now = dt.datetime.now(dt.UTC)
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise ServiceUnavailableError(f"Kafka consumer failed: {error.str()}")
                log.warning("consumer error: %s", error.str())
                continue
            self._accept(msg, now)
        if len(messages) and self._buffered >= self.settings.lake.commit_max_records:
            self.commit()
        return len(messages)

    def _accept(self, msg: Any, now: dt.datetime) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        state = self._topics[topic]
        if offset < state.next_offsets.get(partition, 0):
            return  # re-delivered below what is already landed (cannot happen with assign, cheap guard)
        state.next_offsets[partition] = offset + 1
        state.dirty = True
        self.stats.consumed += 1
        ts_type, ts_ms = msg.timestamp()
        timestamp = now if ts_type == 0 else dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
        key_bytes, value_bytes = msg.key(), msg.value()
        schema_id = None
        try:
            key = self._key(key_bytes)
            if value_bytes is None:
                value = None
            else:
                schema_id = schema_id_of(value_bytes)
                if schema_id not in state.seen_schema_ids:
                    self._evolve(state, schema_id)
                _, value = decode(value_bytes, self._schemas)
            meta = KafkaMeta(topic, partition, offset, timestamp, key, schema_id, now)
            row = ROW_BUILDERS[state.table_def.kind](value, meta)
        except (DecodeError, RowError, SchemaDerivationError) as exc:
            stage: Stage = "bronze-decode" if isinstance(exc, DecodeError) else "bronze-table"
            self._reject(
                topic, partition, offset, timestamp, stage, exc, schema_id, key_bytes, value_bytes, now
            )
            return
        state.rows.append(row)
        state.raw.append((key_bytes, value_bytes, schema_id))
        self._buffered += 1

    def _key(self, data: bytes | None) -> str | None:
        if data is None:
            return None
        cached = self._key_cache.get(data, _MISSING)
        if cached is _MISSING:
            if len(self._key_cache) >= _KEY_CACHE_LIMIT:
                self._key_cache.clear()
            cached = self._key_cache[data] = key_text(data, self._schemas)
        return cached  # type: ignore[no-any-return]

    def _evolve(self, state: _TopicState, schema_id: int) -> None:
        """A writer schema seen for the first time: add the columns it brings (events tables)."""
        writer = self._schemas.get(schema_id)
        if state.table_def.kind == "events":
            where = f"schema id {schema_id} of {state.table_def.topic}"
            wanted = record_fields(writer.raw, where, _Ids(), all_optional=True)
            missing = missing_fields(state.table.schema(), wanted)
            if missing:
                state.table.refresh()
                missing = missing_fields(state.table.schema(), wanted)
            if missing:
                add_columns(state.table, missing)
                state.builder = ArrowBuilder.of(state.table.schema())
                log.info(
                    "%s: added column(s) %s from schema id %d",
                    state.table_def.full_name,
                    ", ".join(f.name for f in missing),
                    schema_id,
                )
        state.seen_schema_ids.add(schema_id)

    def _reject(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp: dt.datetime,
        stage: Stage,
        exc: Exception,
        schema_id: int | None,
        key: bytes | None,
        value: bytes | None,
        now: dt.datetime,
    ) -> None:
        reason = str(exc)[:2000] or type(exc).__name__
        log.warning("%s[%d]@%d rejected (%s): %s", topic, partition, offset, stage, reason)
        self._rejected.append(
            Rejected(
                topic=topic,
                partition=partition,
                offset=offset,
                timestamp=timestamp,
                stage=stage,
                reason=reason,
                error_class=f"{type(exc).__module__}.{type(exc).__qualname__}",
                schema_id=schema_id,
                key=key,
                value=value,
                ingested_at=now,
            )
        )

    # -- committing ---------------------------------------------------------------------------------

    def commit(self) -> None:
        """Quarantine, then one append per touched table with its offsets (module doc, step 2-3)."""
        self._last_commit = time.monotonic()
        dirty = [s for s in self._topics.values() if s.dirty]
        if not dirty:
            return
        self.stats.flushes += 1
        tables = {}
        for state in dirty:
            arrow, bad = state.builder.split(state.rows)
            for index, reason in bad:
                row = state.rows[index]
                key, value, schema_id = state.raw[index]
                self._reject(
                    row["_topic"],
                    row["_partition"],
                    row["_offset"],
                    row["_timestamp"],
                    "bronze-table",
                    RowError(reason),
                    schema_id,
                    key,
                    value,
                    row["_ingested_at"],
                )
            tables[state.table_def.topic] = arrow
        self._commit_rejected()
        for state in dirty:
            arrow = tables[state.table_def.topic]
            offsets = {(state.table_def.topic, p): o for p, o in state.next_offsets.items()}
            state.table.append(
                arrow, snapshot_properties={offset_store.OFFSETS_PROPERTY: offset_store.encode(offsets)}
            )
            self.stats.commits += 1
            self.stats.landed += arrow.num_rows
            name = state.table_def.full_name
            self.stats.landed_by_table[name] = self.stats.landed_by_table.get(name, 0) + arrow.num_rows
            state.rows, state.raw, state.dirty = [], [], False
        self._buffered = 0
        self._commit_group_offsets(dirty)

    def _commit_rejected(self) -> None:
        rejected, self._rejected = self._rejected, []
        fresh = [r for r in rejected if r.offset >= self._quarantined_upto.get((r.topic, r.partition), 0)]
        if not fresh:
            return
        for r in fresh:
            self._producer.produce(DLQ_TOPIC, r.value, r.key, headers=r.dlq_headers())
        left = self._producer.flush(30)
        if left:
            raise ServiceUnavailableError(f"{left} dead letters not acknowledged by Kafka within 30 s")
        offset_store.merge(self._quarantined_upto, (((r.topic, r.partition), r.offset + 1) for r in fresh))
        arrow = self._quarantine_builder.table([r.row() for r in fresh])
        props = {offset_store.OFFSETS_PROPERTY: offset_store.encode(self._quarantined_upto)}
        self._quarantine.append(arrow, snapshot_properties=props)
        self.stats.quarantined += len(fresh)
        self.stats.commits += 1

    def _commit_group_offsets(self, states: list[_TopicState]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        parts = [
            TopicPartition(s.table_def.topic, p, o) for s in states for p, o in sorted(s.next_offsets.items())
        ]
        try:
            self._consumer.commit(offsets=parts, asynchronous=True)
        except KafkaException as exc:  # lag monitoring only; the tables hold the truth
            log.debug("group offset commit failed: %s", exc)


_MISSING: Any = object()


def run_sink(
    settings: Settings,
    *,
    tables: Mapping[str, TableDef] | None = None,
    stop: threading.Event | None = None,
    duration_s: float | None = None,
    on_open: Callable[[BronzeSink], None] | None = None,
) -> SinkStats:
    """Open a sink, run it until ``stop``/``duration_s``, commit, close; returns its counters."""
    sink = BronzeSink(settings, tables)
    try:
        sink.open()
        if on_open is not None:
            on_open(sink)
        return sink.run(stop or threading.Event(), duration_s)
    finally:
        sink.close()
