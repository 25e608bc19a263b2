"""The broker guard's long poll (`infra/stack/kafka_guard.py`) with a real Tansu (memory storage)
and real clients: librdkafka through confluent-kafka, and Java kafka-clients.

Tansu answers a Fetch when its wait runs out, however soon data arrives; the guard holds a Fetch
that cannot find anything new and releases it when a Produce is answered. Its counters (the
stats file) show which happened, so these tests check counts, never timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.stack.kafka_guard import LOOP_LAG_PREFIX, PRODUCE_LATENCY_PREFIX
from tests.integration.guard_process import TIMEOUT_S, RunningGuard, create_topic, running_guard
from tests.integration.java_clients import count_records

pytestmark = pytest.mark.integration


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[RunningGuard]:
    with running_guard(tmp_path, ["--long-poll-wait-ms", "20"]) as running:
        yield running


def consumer(bootstrap: str, topic: str, partitions: int, wait_ms: int) -> Consumer:
    reader = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False,
        "fetch.wait.max.ms": wait_ms, "log_level": 0,
    })  # fmt: skip
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return reader


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "log_level": 0})
    for value in values:
        producer.produce(topic, value, key=value)
    assert producer.flush(30) == 0


def test_a_fetch_with_nothing_to_read_is_held_until_a_produce_is_answered(guard: RunningGuard) -> None:
    create_topic(guard.bootstrap, "held", 1)
    # A 5 s wait: a release by the Produce is what delivers the record, not the client's timer.
    reader = consumer(guard.bootstrap, "held", 1, wait_ms=5000)
    try:
        before = guard.wait_for(
            "a Fetch held on the empty partition",
            lambda s: s.get("fetches_held", 0) >= 1,
            lambda: reader.poll(0.1),
        )
        produce(guard.bootstrap, "held", [b"released"])
        deadline = time.monotonic() + TIMEOUT_S
        while (message := reader.poll(0.5)) is None or message.error():
            assert time.monotonic() < deadline, "the record never reached the waiting consumer"
        assert message.value() == b"released"
        after = guard.wait_for(
            "the held Fetch released by the Produce",
            lambda s: s.get("released_by_produce", 0) > before.get("released_by_produce", 0),
            lambda: reader.poll(0.1),
        )
    finally:
        reader.close()
    assert after.get("produces", 0) >= 1
    assert "unparsed" not in after, after
    # Each answered Produce falls in one bucket of the latency histogram; the loop-lag probe ticks.
    timed = sum(n for name, n in after.items() if name.startswith(PRODUCE_LATENCY_PREFIX))
    assert timed == after["produces"], after
    assert sum(n for name, n in after.items() if name.startswith(LOOP_LAG_PREFIX)) > 0, after


def test_fetch_responses_of_librdkafka_and_java_clients_are_read(guard: RunningGuard) -> None:
    """Both clients' Fetch versions parse: records seen, empty answers seen, nothing unparsed."""
    create_topic(guard.bootstrap, "backlog", 3)
    values = [f"record-{i}".encode() for i in range(3000)]
    produce(guard.bootstrap, "backlog", values)

    reader = consumer(guard.bootstrap, "backlog", 3, wait_ms=500)
    seen: set[bytes] = set()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(seen) < len(values):
            assert time.monotonic() < deadline, f"{len(seen)} of {len(values)} records read"
            if (message := reader.poll(0.5)) is not None and not message.error():
                seen.add(message.value())
        librdkafka = guard.wait_for(
            "an empty Fetch answer after the backlog, then a held Fetch",
            lambda s: s.get("released_by_timeout", 0) >= 1,
            lambda: reader.poll(0.2),
        )
    finally:
        reader.close()
    assert seen == set(values)
    assert librdkafka.get("fetch_responses_with_records", 0) >= 1, librdkafka
    assert librdkafka.get("empty_fetch_responses", 0) >= 1, librdkafka
    assert "unparsed" not in librdkafka, librdkafka

    assert count_records(guard.bootstrap, "backlog", len(values)) == len(values)
    both = guard.wait_for(
        "the Java consumer's Fetches counted",
        lambda s: (
            s.get("fetch_responses_with_records", 0) > librdkafka["fetch_responses_with_records"]
            and s.get("empty_fetch_responses", 0) > librdkafka["empty_fetch_responses"]
        ),
        lambda: time.sleep(0.2),
    )
    assert "unparsed" not in both, both
    # The two clients spoke different Fetch versions, the Java one a flexible (compact) one.
    versions = {int(key.removeprefix("fetches_v")) for key in both if key.startswith("fetches_v")}
    assert len(versions) >= 2 and max(versions) >= 12, both
