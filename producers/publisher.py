"""The Kafka side of the producers: Avro over confluent-kafka with nothing dropped silently.

* Values and keys are Avro in the Confluent wire format, encoded by a per-schema compiled encoder
  (``producers.avro_encoder``) that gives the same bytes as confluent-kafka's ``AvroSerializer``.
  As ``AvroSerializer`` with ``auto.register.schemas=False`` does, each schema is looked up once
  under its TopicNameStrategy subject (``<topic>-key``, ``<topic>-value``) for its id; schemas
  come from ``schemas/`` and are never registered here.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from producers.avro_encoder import Encoder, compile_encoder, wire_prefix
from producers.card_encoder import compile_card_encoder
from producers.errors import BackpressureTimeoutError, ProducerFatalError, SchemaNotRegisteredError
from producers.wire import DLQ_TOPIC
from riverbank.errors import ServiceUnavailableError
from riverbank.registry.catalog import DEFAULT_SCHEMAS_DIR as SCHEMAS_DIR
from riverbank.settings import Settings

Headers = list[tuple[str, str | bytes | None]]
log = logging.getLogger("riverbank.producers")
# librdkafka's own log lines (connection refused while a broker restarts...) go here, not to stderr.
_rdkafka_log = logging.getLogger("riverbank.producers.librdkafka")
_rdkafka_log.addHandler(logging.NullHandler())


@dataclass
class DeliveryStats:
    """Counters of one producer. ``sent`` = accepted into the local queue.

    librdkafka reports failed deliveries only (a Python callback for every acknowledged record
    cost a microsecond each), so ``acked`` is what was sent and is neither failed nor still queued,
    brought up to date by the publisher's ``poll``, ``flush`` and ``close``; per topic it is
    filled in once nothing is queued (after a flush, and always at ``close``).
    """

    sent: int = 0
    acked: int = 0
    failed: int = 0
    dlq: int = 0
    backpressure_waits: int = 0
    sent_by_topic: Counter[str] = field(default_factory=Counter)
    acked_by_topic: Counter[str] = field(default_factory=Counter)
    failed_by_topic: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    #: Broker-level errors reported by librdkafka (connection refused, all brokers down...).
    broker_errors: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None


@dataclass(frozen=True)
class ProducerOptions:
    #: Larger batches cost less per record (one request and one lz4 frame per batch); 20 ms
    #: keeps the added latency small at demo rates.
    linger_ms: int = 20
    batch_size: int = 1_000_000
    batch_messages: int = 50_000
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


class _CachedKeyEncoder:
    """Key encoder with a bounded cache: keys repeat (cards, accounts, instruments)."""

    def __init__(self, encode: Encoder, limit: int = 200_000) -> None:
        self._encode = encode
        self._cache: dict[str, bytes] = {}
        self._limit = limit

    def __call__(self, key: str) -> bytes:
        data = self._cache.get(key)
        if data is None:
            data = self._encode(key)
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[key] = data
        return data


#: ``emit(event)`` sends one domain event (see ``AvroPublisher.emitter``).
Emit = Callable[[Any], None]
#: Topics whose events have an encoder that skips the record dict: (schema text, wire prefix,
#: record encoder) -> event encoder with the same bytes.
EVENT_ENCODERS: dict[str, Callable[[str, bytes, Encoder], Callable[[Any], bytes]]] = {
    "bank.card.transactions": compile_card_encoder,
}


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
        self._values: dict[str, Encoder] = {}
        self._keys: dict[str, _CachedKeyEncoder] = {}
        self._event_encoders: dict[str, Callable[[Any], bytes]] = {}
        try:
            for topic in topics:
                key_text, value_text = texts[topic]
                key_id = self._schema_id(f"{topic}-key", key_text)
                value_id = self._schema_id(f"{topic}-value", value_text)
                self._values[topic] = compile_encoder(value_text, wire_prefix(value_id))
                if topic in EVENT_ENCODERS:
                    self._event_encoders[topic] = EVENT_ENCODERS[topic](
                        value_text, wire_prefix(value_id), self._values[topic]
                    )
                self._keys[topic] = _CachedKeyEncoder(compile_encoder(key_text, wire_prefix(key_id)))
        except BaseException:
            self._close_registry()
            raise
        o = self.options
        config: dict[str, Any] = {
            **settings.kafka.producer_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": o.linger_ms,
            "batch.size": o.batch_size,
            "batch.num.messages": o.batch_messages,
            "compression.type": o.compression,
            "message.timeout.ms": o.delivery_timeout_ms,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 1000,
            "queue.buffering.max.messages": o.queue_max_messages,
            "queue.buffering.max.kbytes": o.queue_max_kbytes,
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            "logger": _rdkafka_log,
            **dict(o.extra),
        }
        self._producer = Producer(config)

    # -- set-up -------------------------------------------------------------------------------

    def _schema_id(self, subject: str, text: str) -> int:
        """The id of ``text`` under ``subject`` (what AvroSerializer looks up on its first record)."""
        try:
            found = self._registry.lookup_schema(subject, Schema(text, "AVRO"), normalize_schemas=False)
            if found.schema_id is None:
                raise ServiceUnavailableError(f"schema registry returned no id for {subject}")
            return found.schema_id
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
        if err is None:  # only with delivery.report.only.error off (options.extra)
            return
        stats = self.stats
        topic = msg.topic() or "?"
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

    # -- encoding -----------------------------------------------------------------------------

    def encode_value(self, topic: str, record: dict[str, Any]) -> bytes:
        """The record's value bytes as sent (Confluent framing + Avro)."""
        return self._values[topic](record)

    def encode_key(self, topic: str, key: str) -> bytes:
        return self._keys[topic](key)

    def encode_event(self, topic: str, event: Any) -> bytes | None:
        """The event's value bytes from its dict-free encoder; None when the topic has none."""
        encode = self._event_encoders.get(topic)
        return None if encode is None else encode(event)

    # -- sending ------------------------------------------------------------------------------

    def send(self, topic: str, key: str, record: dict[str, Any], event_id: str | None = None) -> bool:
        """Serialize and queue one record. False when it went to the dead-letter topic instead."""
        try:
            value = self._values[topic](record)
            key_bytes = self._keys[topic](key)
        except Exception as exc:
            self.dead_letter(topic, key, record, exc, event_id)
            return False
        self._produce(topic, key_bytes, value)
        return True

    def emitter(
        self,
        topic: str,
        key_of: Callable[[Any], str],
        record_of: Callable[[Any], dict[str, Any]],
        event_id_of: Callable[[Any], str | None],
        time_of: Callable[[Any], int],
    ) -> Emit:
        """A function sending one domain event to ``topic``: ``send`` with its lookups done once,
        for the runner's hot loop (one call per event, no per-record dictionary of topics). The
        record's Kafka timestamp is the event time (``time_of``), which the fraud job's watermarks
        are built on."""
        encode_event = self._event_encoders.get(topic)
        encode = self._values[topic]
        encode_key = self._keys[topic]
        produce = self._producer.produce
        stats = self.stats
        sent_by_topic = stats.sent_by_topic
        dead_letter = self.dead_letter
        wait_for_room = self._wait_for_room

        def emit(event: Any) -> None:
            record = record_of(event)
            key = key_of(event)
            try:
                value = encode(record)
                key_bytes = encode_key(key)
            except Exception as exc:
                dead_letter(topic, key, record, exc, event_id_of(event))
                return
            timestamp = time_of(event)
            try:
                produce(topic, value, key_bytes, timestamp=timestamp)
            except BufferError:
                wait_for_room(topic, key_bytes, value, None, timestamp)
            stats.sent += 1
            sent_by_topic[topic] += 1

        def emit_event(event: Any) -> None:
            key = key_of(event)
            try:
                value = encode_event(event)  # type: ignore[misc]  # bound when not None
                key_bytes = encode_key(key)
            except Exception as exc:
                dead_letter(topic, key, record_of(event), exc, event_id_of(event))
                return
            timestamp = time_of(event)
            try:
                produce(topic, value, key_bytes, timestamp=timestamp)
            except BufferError:
                wait_for_room(topic, key_bytes, value, None, timestamp)
            stats.sent += 1
            sent_by_topic[topic] += 1

        return emit if encode_event is None else emit_event

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
        self.stats.sent_by_topic[topic] += 1

    def _wait_for_room(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None, timestamp: int = 0
    ) -> None:
        started = time.monotonic()
        while True:
            self.stats.backpressure_waits += 1
            self._producer.poll(0.05)
            self.raise_if_fatal()
            try:
                self._producer.produce(topic, value, key, headers=headers, timestamp=timestamp)
                return
            except BufferError:
                waited = time.monotonic() - started
                if waited > self.options.backpressure_timeout_s:
                    raise BackpressureTimeoutError(waited, len(self._producer), self._bootstrap) from None

    # -- service --------------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)
        self._count_acks()
        self.raise_if_fatal()

    def _count_acks(self) -> int:
        """Bring ``stats.acked`` up to date; returns the records still queued."""
        stats = self.stats
        queued = self.queued
        stats.acked = max(0, stats.sent - stats.failed - queued)
        if queued == 0:
            failed = stats.failed_by_topic
            stats.acked_by_topic = Counter(
                {t: n - failed[t] for t, n in stats.sent_by_topic.items() if n > failed[t]}
            )
        return queued

    def raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise ProducerFatalError(self._fatal)

    @property
    def queued(self) -> int:
        """Records handed to the producer and not yet reported on."""
        # librdkafka's queue length also counts callbacks waiting to be served (error_cb: with no
        # broker, one arrives with each failed connect), so it can exceed the records in flight;
        # those can never be more than the records sent and not reported failed.
        return min(len(self._producer), self.stats.sent - self.stats.failed)

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for every queued record's delivery report; returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self.queued and time.monotonic() < deadline:
            self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        return self._count_acks()

    def close(self, flush_timeout_s: float = 30.0) -> int:
        """Flush, then release the producer and the registry client; returns records left unsent.

        Records still queued after the timeout are purged: each is then reported as failed
        (``_PURGE_QUEUE`` or ``_PURGE_INFLIGHT``), so every record sent ends up acked or failed.
        """
        try:
            remaining = self.flush(flush_timeout_s)
            if remaining:
                self._producer.purge()
                self._producer.flush(5.0)
                self._count_acks()
            return remaining
        finally:
            self._close_registry()

    def _close_registry(self) -> None:
        if self._own_registry:
            self._registry.close()
