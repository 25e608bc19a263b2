"""Retention on the embedded broker's s3 storage (`infra/stack/broker_retention.py`, run by the broker
guard): a real Tansu on Riverbank's local S3, written and read with confluent-kafka.

Tansu 0.6 ignores retention.ms; the guard deletes the batches it has expired. The test waits for the
guard's counters, then checks what is stored and what consumers read, never timings.
"""

from __future__ import annotations

import json
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


def read_all(bootstrap: dict[str, str], topic: str, start: int) -> list[tuple[int, bytes]]:
    consumer = Consumer(
        {**bootstrap, "group.id": f"retention-{uuid.uuid4().hex}", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, 0, start)])
    records: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:  # read to the end
                    return records
                continue
            records.append((message.offset(), message.value()))
    finally:
        consumer.close()
    raise AssertionError(f"{topic}: no end of partition within {TIMEOUT_S}s; read {records}")


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
    delivered: list[int] = []
    producer.produce(names["short"], b"v5", on_delivery=lambda err, msg: delivered.append(msg.offset()))
    assert producer.flush(30) == 0
    assert delivered == [5]
    assert read_all(bootstrap, names["short"], 1) == [(4, b"v4"), (5, b"v5")]
    # The next passes see the new batch: v4 goes once it has expired, v5 is now the newest.
    wait_for_deleted(stack, 5)
    assert stored_offsets(stack, names["short"]) == [5]
    # Java kafka-clients (the Flink connector's) from the beginning too: the one record kept, no reset.
    assert count_records(settings.kafka.bootstrap_servers or "", names["short"], 1) == 1
