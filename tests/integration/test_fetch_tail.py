"""The broker guard's fetch tail (`infra/stack/fetch_tail.py`) with a real Tansu (memory storage)
and real clients: librdkafka through confluent-kafka, and Java kafka-clients (the Flink
connector's), each reading what the other wrote.

The guard answers a Fetch at the head of its partitions itself, from the batches it saw
acknowledged, as soon as a Produce lands. Its counters show which Fetches it answered and which it
forwarded to Tansu; the tests check those and the records read, never timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.integration.guard_process import TIMEOUT_S, RunningGuard, create_topic, running_guard
from tests.integration.java_clients import count_records, produce_records

pytestmark = pytest.mark.integration


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[RunningGuard]:
    with running_guard(tmp_path, ["--fetch-tail-bytes", str(1 << 20)]) as running:
        yield running


def consumer(bootstrap: str, topic: str, partitions: int, wait_ms: int, **config: str) -> Consumer:
    reader = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False,
        "fetch.wait.max.ms": wait_ms, "enable.partition.eof": True, "log_level": 0, **config,
    })  # fmt: skip
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return reader


def read(reader: Consumer, count: int) -> dict[int, list[tuple[int, bytes]]]:
    """(offset, value) by partition, until ``count`` records have been read."""
    records: dict[int, list[tuple[int, bytes]]] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while sum(map(len, records.values())) < count:
        assert time.monotonic() < deadline, f"read {records} of {count} records"
        message = reader.poll(0.5)
        if message is None or message.error():
            continue
        records.setdefault(message.partition() or 0, []).append(
            (message.offset() or 0, message.value() or b"")
        )
    return records


def produce(bootstrap: str, topic: str, values: list[bytes], **config: str) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "log_level": 0, **config}
    )
    for value in values:
        producer.produce(topic, value, key=value)
    assert producer.flush(30) == 0


def test_a_consumer_at_the_head_gets_each_record_when_it_lands(guard: RunningGuard) -> None:
    create_topic(guard.bootstrap, "head", 1)
    produce(guard.bootstrap, "head", [b"first"])
    # A 20 s wait, which Tansu would sit out: the guard answers each Fetch when a record lands.
    reader = consumer(guard.bootstrap, "head", 1, wait_ms=20_000)
    try:
        assert read(reader, 1) == {0: [(0, b"first")]}
        for i in range(1, 4):
            produce(guard.bootstrap, "head", [f"next-{i}".encode()])
            assert read(reader, 1) == {0: [(i, f"next-{i}".encode())]}
        stats = guard.wait_for(
            "four Fetches answered from the tail",
            lambda s: s.get("tail_fetches_answered", 0) >= 4,
            lambda: time.sleep(0.2),
        )
    finally:
        reader.close()
    # None ran out its wait, and none went to Tansu.
    assert "tail_fetches_empty" not in stats and "tail_forwarded_not_cached" not in stats, stats
    assert "unparsed" not in stats, stats


def test_librdkafka_and_java_read_each_others_records_from_the_tail(guard: RunningGuard) -> None:
    create_topic(guard.bootstrap, "from-java", 3)
    assert produce_records(guard.bootstrap, "from-java", 3000, "java") == 3000
    reader = consumer(guard.bootstrap, "from-java", 3, wait_ms=500)
    try:
        by_partition = read(reader, 3000)
    finally:
        reader.close()
    # Every record once, offsets without a gap, and a producer's order kept within its partition.
    assert sorted(v for records in by_partition.values() for _, v in records) == sorted(
        f"java-{i}".encode() for i in range(3000)
    )
    for records in by_partition.values():
        assert [offset for offset, _ in records] == list(range(len(records)))
        numbers = [int(value.split(b"-")[1]) for _, value in records]
        assert numbers == sorted(numbers)
    librdkafka = guard.wait_for(
        "librdkafka's Fetches answered",
        lambda s: s.get("tail_fetches_answered", 0) >= 1,
        lambda: time.sleep(0.2),
    )

    create_topic(guard.bootstrap, "from-librdkafka", 3)
    produce(guard.bootstrap, "from-librdkafka", [f"c-{i}".encode() for i in range(3000)])
    # Java checks each batch's CRC: the guard rewrote only the base offsets, which it does not cover.
    assert count_records(guard.bootstrap, "from-librdkafka", 3000) == 3000
    both = guard.wait_for(
        "Java's Fetches answered",
        lambda s: s["tail_fetches_answered"] > librdkafka["tail_fetches_answered"],
        lambda: time.sleep(0.2),
    )
    # Both clients saw the capped ApiVersions and fetched with topic names (v12 at most).
    assert not any(name.startswith("tail_forwarded_v") for name in both), both
    assert "unparsed" not in both, both


def test_a_partition_written_in_transactions_is_left_to_tansu(guard: RunningGuard) -> None:
    create_topic(guard.bootstrap, "in-transactions", 1)
    producer = Producer(
        {"bootstrap.servers": guard.bootstrap, "transactional.id": "tail-test", "log_level": 0}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("in-transactions", b"committed")
    producer.commit_transaction(30)
    reader = consumer(
        guard.bootstrap, "in-transactions", 1, wait_ms=100, **{"isolation.level": "read_committed"}
    )
    try:
        assert read(reader, 1) == {0: [(0, b"committed")]}
        # Then the end of the partition, and nothing else: the commit marker is not a record.
        deadline, more = time.monotonic() + TIMEOUT_S, []
        while True:
            assert time.monotonic() < deadline, "no end of partition"
            if (message := reader.poll(0.5)) is None:
                continue
            if (error := message.error()) is None:
                more.append(message.value())
            elif error.code() == KafkaError._PARTITION_EOF:
                break
        assert more == []
    finally:
        reader.close()
    after = guard.wait_for(
        "the read_committed Fetches forwarded",
        lambda s: s.get("tail_forwarded_not_cached", 0) > 0,
        lambda: time.sleep(0.2),
    )
    assert "tail_fetches_answered" not in after, after  # the only consumer here
