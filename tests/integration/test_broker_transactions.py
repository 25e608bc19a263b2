"""Kafka transactions on the embedded broker, outside Flink: what exactly-once output relies on.

The exactly-once sink (flink_jobs/connector, Kafka transactions with two-phase commit) is only as
good as the broker's read_committed semantics. These tests state those semantics as Kafka defines
them, with confluent-kafka and Java kafka-clients against the session stack (Tansu 0.6 on s3
storage behind infra/stack/kafka_guard.py). Tansu 0.6 alone breaks two of them (the last stable
offset, the aborted-transactions list; measured on s3 and memory storage): the guard follows the
transactions and answers read_committed Fetches itself (infra/stack/transactions.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.java_clients import read_values
from tests.stack_harness import RunningStack

pytestmark = pytest.mark.integration

READ_S = 6.0  # how long a reader waits for records that should be visible at once


@pytest.fixture
def bootstrap(embedded_stack: RunningStack) -> str:
    servers = embedded_stack.settings.kafka.bootstrap_servers
    assert servers
    return servers


@pytest.fixture
def topic(bootstrap: str) -> str:
    name = f"txn-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
        future.result(30)
    return name


@pytest.fixture
def producers(bootstrap: str, topic: str) -> Iterator[list[Producer]]:
    made = [
        Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{topic}-{i}", "linger.ms": 5})
        for i in range(2)
    ]
    for p in made:
        p.init_transactions(30)
    yield made
    for p in made:
        p.flush(10)


def write(producer: Producer, topic: str, tag: str, n: int = 3) -> None:
    producer.begin_transaction()
    for i in range(n):
        producer.produce(topic, json.dumps({"tag": tag, "i": i}).encode(), partition=0)
    producer.flush(10)


def read_committed(bootstrap: str, topic: str, want: int, timeout_s: float = READ_S) -> list[str]:
    """Tags of the records a read_committed reader gets, until ``want`` records or the timeout."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"txn-reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,  # Tansu on s3 storage needs >= 100 ms (ARCHITECTURE.md)
        }
    )
    tags: list[str] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(tags) < want:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                tags.append(json.loads(msg.value())["tag"])
    finally:
        consumer.close()
    return tags


def test_read_committed_hides_an_open_transaction_and_shows_it_once_committed(
    bootstrap: str, topic: str, producers: list[Producer]
) -> None:
    # What works on Tansu: transactions that do not overlap. Committed records appear once, an
    # open transaction stays hidden until its commit, and a new producer instance of the same
    # transactional id fences the old one (the sink's restore path).
    first, _ = producers
    write(first, topic, "committed")
    first.commit_transaction(30)
    write(first, topic, "pending")
    assert read_committed(bootstrap, topic, want=4, timeout_s=3) == ["committed"] * 3
    first.commit_transaction(30)
    assert read_committed(bootstrap, topic, want=6) == ["committed"] * 3 + ["pending"] * 3


def test_a_transaction_committed_while_another_is_open_is_visible_to_read_committed(
    bootstrap: str, topic: str, producers: list[Producer]
) -> None:
    first, second = producers
    write(first, topic, "t1")
    write(second, topic, "t2")  # open; its first offset is after t1's records
    first.commit_transaction(30)
    try:
        assert read_committed(bootstrap, topic, want=3) == ["t1"] * 3
    finally:
        second.commit_transaction(30)


def test_read_committed_never_returns_records_of_an_aborted_transaction(
    bootstrap: str, topic: str, producers: list[Producer]
) -> None:
    first, _ = producers
    write(first, topic, "before")
    first.commit_transaction(30)
    write(first, topic, "aborted")
    first.abort_transaction(30)
    write(first, topic, "after")
    first.commit_transaction(30)
    assert read_committed(bootstrap, topic, want=9) == ["before"] * 3 + ["after"] * 3


def test_java_read_committed_skips_aborted_records_and_stops_at_the_open_transaction(
    bootstrap: str, topic: str, producers: list[Producer]
) -> None:
    # Java kafka-clients (the Flink connector's client) reads the aborted-transactions list its own
    # way.
    first, second = producers
    write(first, topic, "before")
    first.commit_transaction(30)
    write(first, topic, "aborted")
    first.abort_transaction(30)
    write(second, topic, "open")
    write(first, topic, "after")  # after the open transaction's first offset: hidden with it
    first.commit_transaction(30)
    try:
        values = read_values(bootstrap, topic, expected=6, isolation="read_committed", timeout_s=8)
        assert [json.loads(v)["tag"] for v in values] == ["before"] * 3
    finally:
        second.commit_transaction(30)
    values = read_values(bootstrap, topic, expected=9, isolation="read_committed")
    assert [json.loads(v)["tag"] for v in values] == ["before"] * 3 + ["open"] * 3 + ["after"] * 3
    everything = read_values(bootstrap, topic, expected=12, isolation="read_uncommitted")
    assert sorted(json.loads(v)["tag"] for v in everything) == sorted(
        ["before", "aborted", "open", "after"] * 3
    )


def test_a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced(
    bootstrap: str, topic: str, producers: list[Producer]
) -> None:
    # Tansu 0.6 has no transaction timeout: a writer that died with its transaction open would hold
    # the partition's last stable offset for ever. The guard times it out as Kafka's coordinator does.
    zombie = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"{topic}-zombie",
            "transaction.timeout.ms": 2000,
        }
    )
    zombie.init_transactions(30)
    write(zombie, topic, "abandoned")
    first, _ = producers
    write(first, topic, "committed")
    first.commit_transaction(30)
    assert read_committed(bootstrap, topic, want=3, timeout_s=1) == []  # held by the open one
    assert read_committed(bootstrap, topic, want=3, timeout_s=15) == ["committed"] * 3
    with pytest.raises(KafkaException):  # fenced: its transaction was aborted under it
        zombie.commit_transaction(10)
