"""`riverbank extract`: pass over every configured table, then wait ``interval_s``, until stopped.

One pass reads each table in (cursor column, primary key) order, strictly after the stored cursor
and only up to ``now - safety_lag_s``: rows sharing a cursor value are told apart by their key,
and a transaction that commits late with an older timestamp is still ahead of the cursor if it
committed within the safety lag. Each batch is produced, flushed, and only then is the cursor
advanced, so a stopped extractor resumes exactly after the last acknowledged row version. A row
changed twice between two passes is seen in its latest version only (query-based extraction sees
states, not every change); log-based CDC is the tool when every version matters.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from rich.console import Console

from cdc.errors import DeliveryError, ExtractError
from cdc.extract.avro import DELETED_FIELD, table_schemas, to_avro
from cdc.extract.config import ExtractConfig, TableConfig, load_extract_config, redact
from cdc.extract.cursors import Cursor, CursorStore
from riverbank.settings import Settings


@dataclass
class TableState:
    table: TableConfig
    topic: str
    rows: int = 0
    tombstones: int = 0
    passes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table.name,
            "topic": self.topic,
            "rows": self.rows,
            "tombstones": self.tombstones,
            "passes": self.passes,
        }


def source_url(settings: Settings, url: str | None) -> sa.URL | str:
    if url is not None:
        return url
    db = settings.source_db
    return sa.URL.create(
        "postgresql+psycopg",
        username=db.user,
        password=db.password_value(),
        host=db.host,
        port=db.port,
        database=db.database,
        query={"sslmode": db.sslmode},
    )


@dataclass
class _Serializers:
    key: AvroSerializer
    value: AvroSerializer
    conversions: dict[str, str]
    columns: list[str]
    primary_key: tuple[str, ...]
    soft_delete: str | None


@dataclass
class Extractor:
    settings: Settings
    config: ExtractConfig
    engine: sa.Engine
    cursors: CursorStore
    registry: SchemaRegistryClient
    producer: Producer
    states: list[TableState] = field(default_factory=list)
    _failures: list[str] = field(default_factory=list)

    def run_pass(self, stop: threading.Event) -> int:
        """Extract every table up to now - safety lag; returns the rows written."""
        written = 0
        for state in self.states:
            written += self._extract_table(state, stop)
            state.passes += 1
        return written

    def _serializers(self, table: TableConfig) -> _Serializers:
        schema = self.config.source.schema_name
        inspector = sa.inspect(self.engine)
        try:
            columns = inspector.get_columns(table.name, schema=schema)
        except sa.exc.NoSuchTableError:
            raise ExtractError(f"table {schema}.{table.name} does not exist") from None
        names = [c["name"] for c in columns]
        primary_key = table.primary_key or tuple(
            inspector.get_pk_constraint(table.name, schema=schema).get("constrained_columns") or ()
        )
        if not primary_key:
            raise ExtractError(f"{schema}.{table.name} has no primary key; set primary_key in the config")
        for needed in (
            table.cursor_column,
            *primary_key,
            *([table.soft_delete_column] if table.soft_delete_column else []),
        ):
            if needed not in names:
                raise ExtractError(f"{schema}.{table.name} has no column {needed!r}")
        key_schema, value_schema, conversions = table_schemas(
            [dict(c) for c in columns], primary_key, "riverbank.extract", table.name
        )
        import json

        conf = {"auto.register.schemas": True, "normalize.schemas": False}
        return _Serializers(
            key=AvroSerializer(self.registry, json.dumps(key_schema), conf=conf),
            value=AvroSerializer(self.registry, json.dumps(value_schema), conf=conf),
            conversions=conversions,
            columns=names,
            primary_key=primary_key,
            soft_delete=table.soft_delete_column,
        )

    def _extract_table(self, state: TableState, stop: threading.Event) -> int:
        table = state.table
        ser = self._serializers(table)  # reflected every pass: added columns flow on
        sa_table = sa.Table(
            table.name, sa.MetaData(), schema=self.config.source.schema_name, autoload_with=self.engine
        )
        order = [sa_table.c[table.cursor_column], *(sa_table.c[k] for k in ser.primary_key)]
        upper = self._upper_bound(sa_table.c[table.cursor_column])
        written = 0
        while not stop.is_set():
            cursor = self.cursors.get(state.topic)
            query = sa.select(sa_table).where(sa_table.c[table.cursor_column] <= upper)
            if cursor is not None:
                query = query.where(
                    sa.tuple_(*order) > sa.tuple_(*(sa.literal(v) for v in (cursor.value, *cursor.key)))
                )
            query = query.order_by(*order).limit(self.config.batch_size)
            with self.engine.connect() as conn:
                rows = [r._asdict() for r in conn.execute(query)]
            if not rows:
                break
            for row in rows:
                self._produce(state, ser, row)
            self.producer.flush(60)
            if self._failures:
                failures, self._failures = self._failures, []
                raise DeliveryError(f"Kafka did not acknowledge {len(failures)} record(s): {failures[0]}")
            last = rows[-1]
            self.cursors.put(
                state.topic,
                Cursor(last[table.cursor_column], tuple(last[k] for k in ser.primary_key)),
                len(rows),
            )
            written += len(rows)
            if len(rows) < self.config.batch_size:
                break
        return written

    def _upper_bound(self, column: sa.Column[Any]) -> dt.datetime:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.config.safety_lag_s)
        timezone = getattr(column.type, "timezone", False)
        return now if timezone else now.replace(tzinfo=None)

    def _produce(self, state: TableState, ser: _Serializers, row: dict[str, Any]) -> None:
        value = {name: to_avro(row[name], ser.conversions[name]) for name in ser.columns}
        deleted = ser.soft_delete is not None and row[ser.soft_delete] not in (None, False, 0)
        value[DELETED_FIELD] = deleted
        key_ctx = SerializationContext(state.topic, MessageField.KEY)
        key = ser.key({k: value[k] for k in ser.primary_key}, key_ctx)
        payload = ser.value(value, SerializationContext(state.topic, MessageField.VALUE))
        self._send(state.topic, key, payload)
        state.rows += 1
        if deleted:
            # As Debezium does after a delete: lets compaction drop the key.
            self._send(state.topic, key, None)
            state.tombstones += 1

    def _send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=self._delivered)
                return
            except BufferError:
                self.producer.poll(0.05)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}: {err.str()}")


def run_extractor(
    settings: Settings,
    config_path: Path,
    *,
    once: bool,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """Run passes until stopped (or one with ``once``); returns rows written per table."""
    loaded = load_extract_config(config_path)
    config = loaded.config
    stop = stop or threading.Event()
    if not once and threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    assert settings.cdc.extract_state_path is not None
    engine = sa.create_engine(source_url(settings, loaded.url), pool_pre_ping=True)
    cursors = CursorStore(settings.cdc.extract_state_path)
    registry = SchemaRegistryClient(settings.schema_registry.client_config())
    producer = Producer(
        settings.kafka.producer_config()
        | {"partitioner": "murmur2_random", "enable.idempotence": True, "linger.ms": 5}
    )
    extractor = Extractor(
        settings,
        config,
        engine,
        cursors,
        registry,
        producer,
        [TableState(t, config.topic(t)) for t in config.tables],
    )
    if console is not None:
        where = redact(loaded.url) if loaded.url else "source_db settings"
        console.print(f"extracting {len(config.tables)} table(s) from {where} to {config.topic_prefix}.*")
    try:
        while True:
            started = time.monotonic()
            written = extractor.run_pass(stop)
            if console is not None and not once:
                console.print(f"pass: {written:,} rows in {time.monotonic() - started:.1f}s")
            if once or stop.wait(config.interval_s):
                break
    finally:
        producer.flush(30)
        cursors.close()
        registry.close()
        engine.dispose()
    return [s.as_dict() for s in extractor.states]
