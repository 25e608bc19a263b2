"""The Kafka side of the producers: Avro over confluent-kafka with nothing dropped silently.

* Values and keys are serialized with confluent-kafka's ``AvroSerializer`` against the schema
  registry (TopicNameStrategy subjects, schemas from ``schemas/``, never auto-registered).
* Idempotent producer, ``acks=all``; librdkafka retries each record until ``delivery_timeout_ms``
  (bounded retries), and every outcome reaches a delivery callback that counts it.
* ``BufferError`` (local queue full) is backpressure: serve delivery reports and retry, for at
  most ``backpressure_timeout_s``; the queue is bounded in records and bytes.
* A record that cannot be serialized goes to ``riverbank.dlq`` as JSON with the reason, the
  source topic and the error class in headers.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from producers.errors import BackpressureTimeoutError, ProducerFatalError, SchemaNotRegisteredError
from producers.wire import DLQ_TOPIC
from riverbank.errors import ServiceUnavailableError
from riverbank.settings import Settings

Headers = list[tuple[str, str | bytes | None]]
SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
log = logging.getLogger("riverbank.producers")
# librdkafka's own log lines (connection refused while a broker restarts...) go here, not to stderr.
_rdkafka_log = logging.getLogger("riverbank.producers.librdkafka")
_rdkafka_log.addHandler(logging.NullHandler())


@dataclass
class DeliveryStats:
    """Counters of one producer. ``sent`` = accepted into the local queue."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    dlq: int = 0
    backpressure_waits: int = 0
    acked_by_topic: Counter[str] = field(default_factory=Counter)
    failed_by_topic: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    #: Broker-level errors reported by librdkafka (connection refused, all brokers down...).
    broker_errors: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None


@dataclass(frozen=True)
class ProducerOptions:
    linger_ms: int = 20
    batch_size: int = 1_000_000
    compression: str = "lz4"
    #: Upper bound on one record's retries: librdkafka gives up (delivery report with an error)
    #: after this long. Covers broker restarts of a few minutes.
    delivery_timeout_ms: int = 300_000
    #: Bounds on memory held in the local queue.
    queue_max_messages: int = 200_000
    queue_max_kbytes: int = 131_072
    #: How long produce() may keep waiting on a full queue before giving up.
    backpressure_timeout_s: float = 330.0
    extra: tuple[tuple[str, str], ...] = ()


def schema_texts(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, tuple[str, str]]:
    """topic -> (key schema text, value schema text), from ``schemas/subjects.toml``."""
    import tomllib

    catalog = tomllib.loads((schemas_dir / "subjects.toml").read_text())
    out: dict[str, tuple[str, str]] = {}
    for topic, entry in catalog["topics"].items():
        if entry.get("owner", "riverbank") != "riverbank":
            continue
        key = entry.get("key", "string")
        key_text = (schemas_dir / key).read_text() if key.endswith(".avsc") else json.dumps(key)
        out[topic] = (key_text, (schemas_dir / entry["value"]).read_text())
    return out


class _CachedKeySerializer:
    """Avro key serializer with a bounded cache: keys repeat (cards, accounts, instruments)."""

    def __init__(self, serializer: AvroSerializer, topic: str, limit: int = 200_000) -> None:
        self._serializer = serializer
        self._ctx = SerializationContext(topic, MessageField.KEY)
        self._cache: dict[str, bytes] = {}
        self._limit = limit

    def __call__(self, key: str) -> bytes:
        data = self._cache.get(key)
        if data is None:
            data = self._serializer(key, self._ctx)
            assert data is not None
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[key] = data
        return data


class AvroPublisher:
    """Serialize and send records to Kafka; counts every outcome in ``stats``."""

    def __init__(
        self,
        settings: Settings,
        topics: list[str],
        options: ProducerOptions | None = None,
        *,
        schemas_dir: Path = SCHEMAS_DIR,
        registry_client: SchemaRegistryClient | None = None,
    ) -> None:
        self.options = options or ProducerOptions()
        self.stats = DeliveryStats()
        self._bootstrap = str(settings.kafka.bootstrap_servers)
        self._fatal: str | None = None
        self._own_registry = registry_client is None
        self._registry = registry_client or SchemaRegistryClient(settings.schema_registry.client_config())
        texts = schema_texts(schemas_dir)
        self._values: dict[str, tuple[AvroSerializer, SerializationContext]] = {}
        self._keys: dict[str, _CachedKeySerializer] = {}
        try:
            for topic in topics:
                key_text, value_text = texts[topic]
                self._check_registered(f"{topic}-key", key_text)
                self._check_registered(f"{topic}-value", value_text)
                conf = {"auto.register.schemas": False}
                value_ser = AvroSerializer(self._registry, value_text, conf=conf)
                self._values[topic] = (value_ser, SerializationContext(topic, MessageField.VALUE))
                self._keys[topic] = _CachedKeySerializer(
                    AvroSerializer(self._registry, key_text, conf=conf), topic
                )
        except BaseException:
            self._close_registry()
            raise
        o = self.options
        config: dict[str, Any] = {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": o.linger_ms,
            "batch.size": o.batch_size,
            "compression.type": o.compression,
            "message.timeout.ms": o.delivery_timeout_ms,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 1000,
            "queue.buffering.max.messages": o.queue_max_messages,
            "queue.buffering.max.kbytes": o.queue_max_kbytes,
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            "logger": _rdkafka_log,
            **dict(o.extra),
        }
        self._producer = Producer(config)

    # -- set-up -------------------------------------------------------------------------------

    def _check_registered(self, subject: str, text: str) -> None:
        try:
            self._registry.lookup_schema(subject, Schema(text, "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise SchemaNotRegisteredError(subject, exc.error_message) from None
            raise ServiceUnavailableError(
                f"schema registry refused lookup of {subject}: "
                f"HTTP {exc.http_status_code} {exc.error_message}"
            ) from None
        except Exception as exc:
            if not type(exc).__module__.startswith("httpx"):
                raise
            raise ServiceUnavailableError(
                f"schema registry did not answer: {exc or type(exc).__name__}"
            ) from None

    # -- callbacks (run inside poll/flush, on the caller's thread) ------------------------------

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        stats = self.stats
        topic = msg.topic() or "?"
        if err is None:
            stats.acked += 1
            stats.acked_by_topic[topic] += 1
            return
        stats.failed += 1
        stats.failed_by_topic[topic] += 1
        stats.errors[err.name()] += 1
        stats.last_error = f"{msg.topic()}: {err.str()}"
        if err.fatal():
            self._fatal = err.str()

    def _on_error(self, err: KafkaError) -> None:
        self.stats.broker_errors[err.name()] += 1
        if err.fatal():
            self._fatal = err.str()
        log.debug("librdkafka error: %s", err)

    # -- sending ------------------------------------------------------------------------------

    def send(self, topic: str, key: str, record: dict[str, Any], event_id: str | None = None) -> bool:
        """Serialize and queue one record. False when it went to the dead-letter topic instead."""
        value_ser, ctx = self._values[topic]
        try:
            key_bytes = self._keys[topic](key)
            value = value_ser(record, ctx)
            if value is None:
                raise ValueError("the serializer produced no value")
        except SchemaRegistryError as exc:
            raise SchemaNotRegisteredError(f"{topic}-value", exc.error_message) from None
        except Exception as exc:
            if type(exc).__module__.startswith("httpx"):
                raise ServiceUnavailableError(
                    f"schema registry did not answer: {exc or type(exc).__name__}"
                ) from None
            self.dead_letter(topic, key, record, exc, event_id)
            return False
        self._produce(topic, key_bytes, value)
        return True

    def dead_letter(
        self, topic: str, key: str, record: dict[str, Any], exc: BaseException, event_id: str | None = None
    ) -> None:
        """Send a record that could not be serialized to the DLQ, with the reason in headers."""
        payload = json.dumps(record, default=str, sort_keys=True).encode()
        headers: Headers = [
            ("dlq.reason", str(exc)[:2000].encode() or type(exc).__name__.encode()),
            ("dlq.error.class", f"{type(exc).__module__}.{type(exc).__qualname__}".encode()),
            ("dlq.source.topic", topic.encode()),
            ("dlq.stage", b"serialize"),
            ("dlq.event.id", (event_id or "").encode()),
            ("dlq.payload.format", b"json"),
            ("dlq.time", str(int(time.time() * 1000)).encode()),
        ]
        self.stats.dlq += 1
        log.warning("record for %s sent to %s: %s", topic, DLQ_TOPIC, exc)
        self._produce(DLQ_TOPIC, key.encode(), payload, headers)

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None) -> None:
        producer = self._producer
        try:
            if headers is None:
                producer.produce(topic, value, key)
            else:
                producer.produce(topic, value, key, headers=headers)
        except BufferError:
            self._wait_for_room(topic, key, value, headers)
        self.stats.sent += 1

    def _wait_for_room(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None) -> None:
        started = time.monotonic()
        while True:
            self.stats.backpressure_waits += 1
            self._producer.poll(0.05)
            self.raise_if_fatal()
            try:
                self._producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:
                waited = time.monotonic() - started
                if waited > self.options.backpressure_timeout_s:
                    raise BackpressureTimeoutError(waited, len(self._producer), self._bootstrap) from None

    # -- service --------------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)
        self.raise_if_fatal()

    def raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise ProducerFatalError(self._fatal)

    @property
    def queued(self) -> int:
        """Records handed to the producer and not yet reported on."""
        return len(self._producer)

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for every queued record's delivery report; returns how many remain."""
        deadline = time.monotonic() + timeout_s
        remaining = len(self._producer)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        return int(remaining)

    def close(self, flush_timeout_s: float = 30.0) -> int:
        """Flush, then release the producer and the registry client; returns records left unsent."""
        try:
            return self.flush(flush_timeout_s)
        finally:
            self._close_registry()

    def _close_registry(self) -> None:
        if self._own_registry:
            self._registry.close()
