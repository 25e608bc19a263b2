"""Read a whole topic from the beginning without trusting end offsets.

Tansu reports high watermarks too low, so "read up to the end offset" stops early. Instead the
reader fetches until no record arrived for ``idle_s`` (a 100 ms fetch wait makes 2 s ample) or an
optional ``until`` predicate holds, bounded by ``timeout_s``. For small topics (rules, alerts of a
demo) and tests; not a way to consume a live stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from riverbank.errors import ConfigError, ServiceUnavailableError
from riverbank.settings import Settings


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    #: When this reader received it (epoch ms).
    received_ms: int
    headers: tuple[tuple[str, bytes | None], ...] = ()


def _headers(raw: Any) -> tuple[tuple[str, bytes | None], ...]:
    """confluent-kafka gives headers as a list of (name, bytes or None) pairs, or None."""
    return tuple((str(name), None if value is None else bytes(value)) for name, value in raw or ())


def read_topic(
    settings: Settings,
    topic: str,
    *,
    idle_s: float = 2.0,
    timeout_s: float = 30.0,
    isolation: Literal["read_committed", "read_uncommitted"] = "read_committed",
    until: Callable[[list[Record]], bool] | None = None,
) -> list[Record]:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"riverbank-reader-{time.time_ns()}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "fetch.wait.max.ms": 100,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 2000,
        }
    )
    records: list[Record] = []
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        except KafkaException as exc:
            raise ServiceUnavailableError(f"Kafka at {settings.kafka.bootstrap_servers}: {exc}") from None
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ConfigError("topic", f"{topic!r} does not exist", "settings")
        consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
        started = last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last >= idle_s or now - started >= timeout_s:
                break
            if until is not None and until(records):
                break
            msg = consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            last = time.monotonic()
            records.append(
                Record(msg.partition() or 0, msg.offset() or 0, msg.timestamp()[1], msg.key(), msg.value(),
                       time.time_ns() // 1_000_000, _headers(msg.headers()))
            )  # fmt: skip
    finally:
        consumer.close()
    return records
