"""Retention on the embedded broker's s3 storage (`infra/stack/broker_retention.py`, run by the broker
guard): a real Tansu on Riverbank's local S3, written and read with confluent-kafka.

Tansu 0.6 ignores retention.ms; the guard deletes the batches it has expired. The test waits for the
guard's counters, then checks what is stored and what consumers read, never timings.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import boto3  # type: ignore[import-untyped]
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from infra.stack.components import BROKER_BUCKET, LOCAL_S3_KEY
from infra.topics import TopicSpec, ensure_topics
from riverbank.settings import load_settings
from tests.integration.java_clients import count_records
from tests.stack_harness import RunningStack, environ, running_stack

pytestmark = pytest.mark.integration

TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack(
        "retention", ["s3", "kafka"], extra_env={"RIVERBANK_STACK__BROKER_RETENTION_CHECK_S": "0.5"}
    ) as running:
        yield running


def stored_offsets(stack: RunningStack, topic: str) -> list[int]:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.settings.stack.s3_endpoint,
        aws_access_key_id=LOCAL_S3_KEY,
        aws_secret_access_key=LOCAL_S3_KEY,
        region_name="us-east-1",
    )
    prefix = f"clusters/riverbank/topics/{topic}/partitions/"
    listing = s3.list_objects_v2(Bucket=BROKER_BUCKET, Prefix=prefix).get("Contents", [])
    return [int(o["Key"].rsplit("/", 1)[1].split(".")[0]) for o in listing if o["Key"].endswith(".batch")]


def read_all(
    bootstrap: dict[str, str], topic: str, start: int, isolation: str = "read_uncommitted"
) -> list[tuple[int, bytes]]:
    consumer = Consumer(
        {
            **bootstrap,
            "group.id": f"retention-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    consumer.assign([TopicPartition(topic, 0, start)])
    records: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # read to the end
                    return records
                continue
            records.append((message.offset() or 0, message.value() or b""))
    finally:
        consumer.close()
    raise AssertionError(f"{topic}: no end of partition within {TIMEOUT_S}s; read {records}")


def oldest_stored(stack: RunningStack, topic: str) -> int:
    offsets = stored_offsets(stack, topic)
    return offsets[0] if offsets else 0


def wait_for_stored(stack: RunningStack, topic: str, count: int) -> list[int]:
    """The offsets of ``topic``'s stored batches once retention has left ``count`` of them."""
    deadline = time.monotonic() + TIMEOUT_S
    while len(offsets := stored_offsets(stack, topic)) != count:
        assert time.monotonic() < deadline, f"{topic}: {offsets} stored after {TIMEOUT_S}s"
        time.sleep(0.5)
    return offsets


def wait_for_deleted(stack: RunningStack, count: int) -> dict[str, int]:
    """The guard's counters once its retention passes have deleted ``count`` batches."""
    stats_file = stack.paths.kafka_guard_stats
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        stats: dict[str, int] = json.loads(stats_file.read_text()) if stats_file.is_file() else {}
        if stats.get("retention_deleted", 0) >= count:
            return stats
        assert time.monotonic() < deadline, f"{count} not deleted within {TIMEOUT_S}s: guard counters {stats}"
        time.sleep(0.5)


def test_expired_batches_are_deleted_and_consumers_read_on(stack: RunningStack) -> None:
    with environ(stack.env):
        settings = load_settings()
    suffix = uuid.uuid4().hex[:6]
    topics = {
        "short": {"retention.ms": "2000"},
        "compacted": {"cleanup.policy": "compact", "retention.ms": "1"},
        "forever": {"retention.ms": "-1"},
        "default": {},  # the broker's default: 7 days
    }
    names = {role: f"{role}-{suffix}" for role in topics}
    ensure_topics(settings, tuple(TopicSpec(names[r], "test", c, partitions=1) for r, c in topics.items()))
    bootstrap = settings.kafka.client_config()
    producer = Producer({**bootstrap, "linger.ms": 0})
    for name in names.values():
        for i in range(5):  # one batch each
            producer.produce(name, f"v{i}".encode())
            assert producer.flush(30) == 0

    stats = wait_for_deleted(stack, 4)

    # The newest batch stays, as Kafka keeps the active segment; the other topics are whole.
    assert stored_offsets(stack, names["short"]) == [4]
    for role in ("compacted", "forever", "default"):
        assert stored_offsets(stack, names[role]) == [0, 1, 2, 3, 4], role
    assert stats.get("retention_errors", 0) == 0

    # From the earliest offset, or from a deleted one, a consumer reads what is kept.
    assert read_all(bootstrap, names["short"], 0) == [(4, b"v4")]
    assert read_all(bootstrap, names["short"], 2) == [(4, b"v4")]
    # The log goes on at its high watermark.
    delivered: list[int | None] = []
    producer.produce(names["short"], b"v5", on_delivery=lambda err, msg: delivered.append(msg.offset()))
    assert producer.flush(30) == 0
    assert delivered == [5]
    # v4 has expired and is no longer the newest, so the next pass deletes it (reading it now would
    # race that pass); v5 is now the newest and stays.
    wait_for_deleted(stack, 5)
    assert stored_offsets(stack, names["short"]) == [5]
    assert read_all(bootstrap, names["short"], 1) == [(5, b"v5")]
    # Java kafka-clients (the Flink connector's) from the beginning too: the one record kept, no reset.
    assert count_records(settings.kafka.bootstrap_servers or "", names["short"], 1) == 1


def test_retention_under_transactions_keeps_read_committed_and_new_transactions_working(
    stack: RunningStack,
) -> None:
    # The exactly-once sink writes in transactions. Tansu stores each commit marker as a batch of
    # its own, after the transaction's records: retention expires both like any batch, keeps the
    # newest (a marker), and readers and the transactional id carry on.
    with environ(stack.env):
        settings = load_settings()
    topic = f"short-txn-{uuid.uuid4().hex[:6]}"
    # 5 s: room for the reads below before their records expire.
    ensure_topics(settings, (TopicSpec(topic, "test", {"retention.ms": "5000"}, partitions=1),))
    bootstrap = settings.kafka.client_config()
    producer = Producer({**bootstrap, "transactional.id": f"{topic}-writer", "linger.ms": 5})
    producer.init_transactions(30)

    def commit(tag: str) -> None:
        producer.begin_transaction()
        for i in range(3):
            producer.produce(topic, f"{tag}-{i}".encode(), partition=0)
        producer.commit_transaction(30)

    commit("t1")
    commit("t2")
    # Records at 0-2 and 4-6, markers at 3 and 7.
    assert stored_offsets(stack, topic) == [0, 3, 4, 7]
    assert [v for _, v in read_all(bootstrap, topic, 0, "read_committed")] == [
        *(b"t1-0", b"t1-1", b"t1-2"),
        *(b"t2-0", b"t2-1", b"t2-2"),
    ]

    assert wait_for_stored(stack, topic, 1) == [7]  # t2's marker
    for isolation in ("read_committed", "read_uncommitted"):
        assert read_all(bootstrap, topic, 0, isolation) == [], isolation

    commit("t3")
    # 7 is no longer the newest, so the next pass may already have taken it.
    assert set(stored_offsets(stack, topic)) - {7} == {8, 11}
    # From a deleted offset, read_committed gets t3 whole.
    assert read_all(bootstrap, topic, 5, "read_committed") == [(8, b"t3-0"), (9, b"t3-1"), (10, b"t3-2")]

    assert wait_for_stored(stack, topic, 1) == [11]
    assert json.loads(stack.paths.kafka_guard_stats.read_text()).get("retention_errors", 0) == 0


def test_a_consumer_at_the_retention_edge_reads_on_while_batches_are_deleted(stack: RunningStack) -> None:
    # A consumer lagging by the retention reads the very batches the passes delete. When a Fetch lists
    # a batch that is gone before Tansu reads it, Tansu 0.6 drops the connection (measured: 25 times
    # in the 40 jumps back below); the client reconnects and fetches again, getting what is kept.
    with environ(stack.env):
        settings = load_settings()
    topic = f"edge-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings, (TopicSpec(topic, "test", {"retention.ms": "1000"}, partitions=1),))
    bootstrap = settings.kafka.client_config()
    writing = threading.Event()
    writing.set()

    def write() -> None:
        producer = Producer({**bootstrap, "linger.ms": 0})
        while writing.is_set():
            producer.produce(topic, b"x" * 100)
            producer.poll(0.005)  # a batch every few milliseconds
        producer.flush(30)

    writer = threading.Thread(target=write)
    writer.start()
    consumer = Consumer({**bootstrap, "group.id": f"edge-{uuid.uuid4().hex}", "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(topic, 0, 0)])
    errors: list[str] = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while oldest_stored(stack, topic) == 0:  # until the passes have begun on this topic
            assert time.monotonic() < deadline, f"{topic}: nothing deleted within {TIMEOUT_S}s"
            time.sleep(0.2)
        for _ in range(40):
            oldest = oldest_stored(stack, topic)  # the batch the next pass is about to delete
            consumer.seek(TopicPartition(topic, 0, oldest))
            deadline = time.monotonic() + TIMEOUT_S
            while True:  # until a record at or after the oldest arrives: the consumer is not stuck
                assert time.monotonic() < deadline, f"nothing read from {oldest} within {TIMEOUT_S}s"
                message = consumer.poll(0.2)
                if message is None:
                    continue
                if message.error():
                    errors.append(str(message.error()))
                elif (message.offset() or 0) >= oldest:
                    break
    finally:
        writing.clear()
        writer.join()
        consumer.close()
    assert errors == []
