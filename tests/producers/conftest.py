"""Fixtures for the producers' integration tests: the session stack with schemas and topics ready,
and a reader that drains topics by assignment (no group join; Tansu's high watermark is not trusted)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from infra.topics import ensure_topics
from producers.publisher import SCHEMAS_DIR
from riverbank.registry.workflows import register_all
from riverbank.settings import load_settings
from tests.stack_harness import RunningStack, environ


@pytest.fixture(scope="session")
def bank_stack(embedded_stack: RunningStack) -> RunningStack:
    """The session stack with every schema registered and every topic created.

    Settings are loaded again: the PostgreSQL password file exists only once the stack is up.
    """
    with environ(embedded_stack.env):
        stack = RunningStack(load_settings(), embedded_stack.env)
    register_all(stack.settings.schema_registry, SCHEMAS_DIR)
    ensure_topics(stack.settings)
    return stack


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    headers: dict[str, bytes]
    #: The Kafka record's timestamp (ms).
    timestamp: int = 0


def read_topics(
    stack: RunningStack,
    topics: list[str],
    *,
    done: Callable[[list[Record]], bool],
    decode: bool = True,
    timeout_s: float = 90.0,
    idle_s: float = 3.0,
) -> list[Record]:
    """Every record of ``topics`` from the beginning, until ``done(records)`` holds and nothing new
    arrived for ``idle_s`` (so duplicates written after the last expected record are seen too)."""
    settings = stack.settings
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 2000,
            "fetch.wait.max.ms": 100,
        }
    )
    registry = SchemaRegistryClient(settings.schema_registry.client_config())
    deserializer = AvroDeserializer(registry)
    records: list[Record] = []
    try:
        metadata = consumer.list_topics(timeout=10)
        consumer.assign(
            [
                TopicPartition(t, p, OFFSET_BEGINNING)
                for t in topics
                for p in sorted(metadata.topics[t].partitions)
            ]
        )
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.consume(2000, timeout=0.5)
            now = time.monotonic()
            for msg in batch:
                if msg.error():
                    continue
                topic = msg.topic()
                key, value = msg.key(), msg.value()
                if decode and value is not None:
                    key = deserializer(key, SerializationContext(topic, MessageField.KEY))
                    value = deserializer(value, SerializationContext(topic, MessageField.VALUE))
                records.append(
                    Record(
                        topic,
                        msg.partition(),
                        msg.offset(),
                        key,
                        value,
                        dict(msg.headers() or []),
                        msg.timestamp()[1],
                    )
                )
                last_new = now
            if not batch and now - last_new >= idle_s and done(records):
                break
    finally:
        consumer.close()
        registry.close()
    return records


@pytest.fixture
def reader(bank_stack: RunningStack) -> Iterator[Callable[..., list[Record]]]:
    yield lambda topics, **kw: read_topics(bank_stack, topics, **kw)
