"""Riverbank's Flink Kafka connector against the real broker of the embedded stack.

Each test runs the PyFlink job ``jobs/kafka_pipeline.py`` (Kafka source -> Python map -> Kafka sink)
in local mode with the Flink environment's interpreter, and checks what reached Kafka with
confluent-kafka. Output values describe the source row they came from, so checking the output
checks the source (offsets, keys, values, headers, timestamps) and the sink together. The broker's
end offsets are never used (Tansu reports them too low): reads stop when the expected records are in.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import Consumer, TopicPartition

from flink_jobs.kafka import CONNECTOR_JAR
from tests.flink.kafka_helpers import (
    GROUP_TIMEOUTS,
    Sent,
    commit_offsets,
    committed_offsets,
    completed_checkpoints,
    create_topics,
    end_offsets,
    produce,
    read_all,
    running_job,
    unique,
    wait_for,
)
from tests.stack_harness import RunningStack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CONNECTOR_JAR.is_file(),
        reason=f"{CONNECTOR_JAR} is not built: run infra/scripts/build_jars.sh (part of make setup)",
    ),
]

JOB_START_TIMEOUT = 240.0  # local-mode start on 2 shared cores, Python workers included


@pytest.fixture
def bootstrap(embedded_stack: RunningStack) -> str:
    servers = embedded_stack.settings.kafka.bootstrap_servers
    assert servers
    return servers


def position(record: dict[str, Any]) -> tuple[int, int]:
    return record["partition"], record["offset"]


def assert_describes(records: list[dict[str, Any]], sent: list[Sent], topic: str) -> None:
    """Each output record describes exactly one sent record, correctly, and each sent one appears."""
    by_position = {(s.partition, s.offset): s for s in sent}
    assert sorted(position(r) for r in records) == sorted(by_position)
    for record in records:
        s = by_position[position(record)]
        assert record["topic"] == topic
        assert bytes.fromhex(record["key"]) == s.key
        assert bytes.fromhex(record["value"]) == s.value
        assert {k: bytes.fromhex(v) for k, v in record["headers"].items()} == s.headers
        assert record["timestamp"] == s.timestamp
        # The sink wrote the key and headers through unchanged.
        assert record["out_key"] == s.key
        assert record["out_headers"] == s.headers


def test_source_reads_every_partition_with_metadata_sink_at_least_once_and_offsets_committed(
    embedded_stack: RunningStack, bootstrap: str, tmp_path: Path
) -> None:
    source, out, group = unique("conn-in"), unique("conn-out"), unique("conn-group")
    create_topics(bootstrap, source, out)
    sent = produce(bootstrap, source, 60)
    pipeline = {"topics": [source], "output_topic": out, "group_id": group, "guarantee": "at-least-once"}
    with running_job(embedded_stack, tmp_path, [pipeline]) as job:
        records = read_all(bootstrap, out, until=lambda rs: len(rs) >= 60, timeout=JOB_START_TIMEOUT)
        job.assert_running()
        assert_describes(records, sent, source)

        # Offsets reach the consumer group once a checkpoint covering them completes.
        wait_for(lambda: committed_offsets(bootstrap, group, source) == end_offsets(sent), 60, "commits")
        # More records while running: read, and committed again after later checkpoints.
        more = produce(bootstrap, source, 30, start=60)
        records = read_all(bootstrap, out, until=lambda rs: len(rs) >= 90, timeout=90)
        assert_describes(records, sent + more, source)
        everything = sent + more
        wait_for(
            lambda: committed_offsets(bootstrap, group, source) == end_offsets(everything), 60, "commits"
        )
        job.assert_running()


def test_commit_interval_commits_the_first_checkpoint_then_none_within_the_interval(
    embedded_stack: RunningStack, bootstrap: str, tmp_path: Path
) -> None:
    source, out, group = unique("ival-in"), unique("ival-out"), unique("ival-group")
    create_topics(bootstrap, source, out)
    sent = produce(bootstrap, source, 60)
    pipeline = {"topics": [source], "output_topic": out, "group_id": group, "commit_interval_ms": 3_600_000}
    with running_job(embedded_stack, tmp_path, [pipeline]) as job:
        read_all(bootstrap, out, until=lambda rs: len(rs) >= 60, timeout=JOB_START_TIMEOUT)

        # The first completed checkpoint commits (unset offsets read back negative)...
        def committed() -> dict[int, int]:
            return committed_offsets(bootstrap, group, source)

        wait_for(lambda: all(o >= 0 for o in committed().values()), 60, "commit")
        first = committed()
        more = produce(bootstrap, source, 30, start=60)
        read_all(bootstrap, out, until=lambda rs: len(rs) >= 90, timeout=90)
        # ... and the checkpoints after it, one a second, commit nothing within the hour: with a
        # commit per checkpoint the group reaches the end within about two (the test above).
        time.sleep(6)
        job.assert_running()
        assert committed() == first != end_offsets(sent + more)


def test_batch_mode_keyed_by_partition_and_unbatched_to_the_sink(
    embedded_stack: RunningStack, bootstrap: str, tmp_path: Path
) -> None:
    """The path of the fraud job: one element per partition and poll, keyed in Java by
    "topic:partition", packed outputs expanded by Unbatch; records, keys, headers and timestamps
    survive both layouts, and each batch holds consecutive offsets of one partition."""
    source, out = unique("batch-in"), unique("batch-out")
    create_topics(bootstrap, source, out)
    sent = produce(bootstrap, source, 300, timestamp=lambda i: 1_790_000_000_000 + i)
    pipeline = {"topics": [source], "output_topic": out, "batches": True}
    with running_job(embedded_stack, tmp_path, [pipeline]):
        records = read_all(bootstrap, out, until=lambda rs: len(rs) >= 300, timeout=JOB_START_TIMEOUT)
    assert_describes(records, sent, source)
    for record in records:
        assert record["batch_key"] == f"{source}:{record['partition']}"
        assert record["out_timestamp"] == record["timestamp"]  # set per record by the packed output
        first, count = record["batch"]
        assert first <= record["offset"] < first + count
    batches = Counter((r["partition"], tuple(r["batch"])) for r in records)
    for (partition, (first, count)), seen in batches.items():
        assert seen == count, f"batch {first}+{count} of partition {partition} delivered {seen} records"


def test_starting_offsets_latest_timestamp_and_committed(
    embedded_stack: RunningStack, bootstrap: str, tmp_path: Path
) -> None:
    latest_in, latest_out, latest_group = unique("latest-in"), unique("latest-out"), unique("latest-g")
    ts_in, ts_out = unique("ts-in"), unique("ts-out")
    committed_in, committed_out, committed_group = unique("com-in"), unique("com-out"), unique("com-g")
    create_topics(bootstrap, latest_in, latest_out, ts_in, ts_out, committed_in, committed_out)

    old_latest = produce(bootstrap, latest_in, 15, tag="old")
    start_ms = int(time.time() * 1000) - 600_000
    produce(bootstrap, ts_in, 15, timestamp=lambda i: start_ms - 3_600_000 + i, tag="old")
    new_ts = produce(bootstrap, ts_in, 15, start=15, timestamp=lambda i: start_ms + i, tag="new")
    all_committed = produce(bootstrap, committed_in, 30)
    group_offsets = {0: 4, 1: 6, 2: 2}
    commit_offsets(bootstrap, committed_group, committed_in, group_offsets)

    pipelines = [
        {
            "topics": [latest_in],
            "output_topic": latest_out,
            "group_id": latest_group,
            "starting_offsets": "latest",
        },
        {"topics": [ts_in], "output_topic": ts_out, "starting_offsets": {"timestamp_ms": start_ms}},
        {
            "topics": [committed_in],
            "output_topic": committed_out,
            "group_id": committed_group,
            "starting_offsets": "committed",
        },
    ]
    with running_job(embedded_stack, tmp_path, pipelines) as job:
        # 'latest' was resolved to the end offsets before the first checkpoint, whose completion
        # commits them: once they show up, records produced now are after the starting point.
        ends = {p: max(s.offset for s in old_latest if s.partition == p) + 1 for p in range(3)}
        wait_for(
            lambda: committed_offsets(bootstrap, latest_group, latest_in) == ends, JOB_START_TIMEOUT, "latest"
        )
        new_latest = produce(bootstrap, latest_in, 15, start=15, tag="new")

        latest = read_all(bootstrap, latest_out, until=lambda rs: len(rs) >= 15, timeout=90)
        assert_describes(latest, new_latest, latest_in)

        by_time = read_all(bootstrap, ts_out, until=lambda rs: len(rs) >= 15, timeout=90)
        assert_describes(by_time, new_ts, ts_in)

        expected = [s for s in all_committed if s.offset >= group_offsets[s.partition]]
        from_group = read_all(bootstrap, committed_out, until=lambda rs: len(rs) >= len(expected), timeout=90)
        assert_describes(from_group, expected, committed_in)

        # Nothing from before the starting points trickles in later either.
        for topic, count in ((latest_out, 15), (ts_out, 15), (committed_out, len(expected))):
            assert len(read_all(bootstrap, topic, until=lambda rs, n=count: len(rs) > n, timeout=5)) == count
        job.assert_running()


def first_seen(bootstrap: str, topics: list[str], count: int, timeout: float) -> dict[str, float]:
    """Wall-clock time at which each topic's first record became readable (read_committed), read
    with one consumer over all topics so the times are comparable."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("first-seen"),
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            **GROUP_TIMEOUTS,
        }
    )
    seen: dict[str, float] = {}
    counts: Counter[str] = Counter()
    try:
        consumer.assign([TopicPartition(t, p, 0) for t in topics for p in range(3)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(counts[t] < count for t in topics):
            msg = consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            seen.setdefault(msg.topic(), time.time())
            counts[msg.topic()] += 1
    finally:
        consumer.close()
    assert set(seen) == set(topics), f"nothing readable in {set(topics) - set(seen)}"
    return seen


def test_exactly_once_output_is_visible_only_after_a_checkpoint_and_only_once(
    embedded_stack: RunningStack, bootstrap: str, tmp_path: Path
) -> None:
    source = unique("eo-in")
    deferred_out, streaming_out = unique("eo-deferred"), unique("eo-streaming")
    create_topics(bootstrap, source, deferred_out, streaming_out)
    sent = produce(bootstrap, source, 40)
    pipelines = [
        # Rows sent into the transaction at the checkpoint barrier (the default) ...
        {
            "topics": [source],
            "output_topic": deferred_out,
            "guarantee": "exactly-once",
            "prefix": unique("eo-d"),
        },
        # ... and as they come, within the open transaction (hidden by the LSO until the commit).
        {
            "topics": [source],
            "output_topic": streaming_out,
            "guarantee": "exactly-once",
            "prefix": unique("eo-s"),
            "defer": False,
        },
    ]
    with running_job(embedded_stack, tmp_path, pipelines, checkpoint_interval_ms=6000) as job:
        seen = first_seen(bootstrap, [deferred_out, streaming_out], 40, JOB_START_TIMEOUT)
        checkpoints = completed_checkpoints(tmp_path / "checkpoints")
        assert checkpoints, "output became visible before any checkpoint completed"
        first_checkpoint = (checkpoints[0] / "_metadata").stat().st_mtime
        for out in (deferred_out, streaming_out):
            # Nothing was readable before the first checkpoint completed (50 ms for mtime rounding).
            assert first_checkpoint <= seen[out] + 0.05, (out, first_checkpoint, seen[out])
            # Read again after more checkpoints: still each record exactly once.
            again = read_all(bootstrap, out, until=lambda rs: len(rs) > 40, timeout=8)
            assert len(again) == 40
            assert_describes(again, sent, source)
        job.assert_running()


class SteadyProducer:
    """Produces batches at a steady pace in a thread until stopped, across a job kill and restore."""

    def __init__(self, bootstrap: str, topic: str, per_batch: int = 10, pause: float = 0.1) -> None:
        self.sent: list[Sent] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bootstrap, topic, per_batch, pause))

    def _run(self, bootstrap: str, topic: str, per_batch: int, pause: float) -> None:
        try:
            while not self._stop.is_set():
                self.sent += produce(bootstrap, topic, per_batch, start=len(self.sent))
                time.sleep(pause)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> SteadyProducer:
        self._thread.start()
        return self

    def stop(self) -> list[Sent]:
        self._stop.set()
        self._thread.join(timeout=60)
        assert self.error is None, self.error
        return self.sent

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_kill_and_restore_from_retained_checkpoint_loses_nothing_and_exactly_once_has_no_duplicates(
    embedded_stack: RunningStack, bootstrap: str, tmp_path: Path
) -> None:
    source, eo_out, alo_out = unique("kill-in"), unique("kill-eo"), unique("kill-alo")
    streaming_out = unique("kill-eo-streaming")
    create_topics(bootstrap, source, eo_out, alo_out, streaming_out)
    pipelines = [
        {
            "topics": [source],
            "output_topic": eo_out,
            "guarantee": "exactly-once",
            "prefix": unique("kill-tx"),
        },
        # Sends as rows come: the killed job leaves a transaction open with records in it, which
        # the restore aborts, and read_committed readers must skip.
        {
            "topics": [source],
            "output_topic": streaming_out,
            "guarantee": "exactly-once",
            "prefix": unique("kill-tx-s"),
            "defer": False,
        },
        {"topics": [source], "output_topic": alo_out, "guarantee": "at-least-once"},
    ]
    guard_stats = embedded_stack.paths.kafka_guard_stats
    guard_before = json.loads(guard_stats.read_text())
    with SteadyProducer(bootstrap, source) as producer:
        with running_job(
            embedded_stack, tmp_path, pipelines, name="first", checkpoint_interval_ms=3000
        ) as job:
            # Mid-stream: output committed while input keeps flowing. The kill comes halfway between
            # two commits, when the streaming pipeline's open transaction holds 1.5 s of records.
            before = read_all(bootstrap, eo_out, until=lambda rs: len(rs) >= 100, timeout=JOB_START_TIMEOUT)
            time.sleep(1.5)
            job.assert_running()
            job.kill()
        checkpoints = completed_checkpoints(tmp_path / "checkpoints")
        assert checkpoints, "no retained checkpoint to restore from"
        with running_job(
            embedded_stack,
            tmp_path,
            pipelines,
            restore_from=checkpoints[-1],
            name="restored",
            checkpoint_interval_ms=3000,
        ) as job:
            # The restored job makes progress past the kill, with the input still flowing ...
            read_all(
                bootstrap, eo_out, until=lambda rs: len(rs) >= len(before) + 100, timeout=JOB_START_TIMEOUT
            )
            sent = producer.stop()
            # ... then everything produced reaches both outputs.
            total = len(sent)
            read_all(bootstrap, eo_out, until=lambda rs: len(rs) >= total, timeout=120)
            at_least_once = read_all(
                bootstrap,
                alo_out,
                until=lambda rs: {position(r) for r in rs} >= {(s.partition, s.offset) for s in sent},
                timeout=120,
            )
            read_all(bootstrap, streaming_out, until=lambda rs: len(rs) >= total, timeout=120)
            # Duplicates would show up as records beyond the expected ones.
            exactly_once = read_all(bootstrap, eo_out, until=lambda rs: len(rs) > total, timeout=10)
            streamed = read_all(bootstrap, streaming_out, until=lambda rs: len(rs) > total, timeout=10)
            job.assert_running()
    for out, records in ((eo_out, exactly_once), (streaming_out, streamed)):
        counts = Counter(position(r) for r in records)
        duplicated = sorted((p, n) for p, n in counts.items() if n > 1)
        assert not duplicated, f"{out} has {len(duplicated)} duplicated records: {duplicated[:10]}"
        assert_describes(records, sent, source)
    assert {position(r) for r in at_least_once} == {(s.partition, s.offset) for s in sent}
    # The streaming pipeline's open transaction was aborted on restore, and its records were skipped
    # by the readers above (the broker guard listed it in their Fetch answers).
    time.sleep(1.5)  # the guard rewrites its counters every second
    guard = json.loads(guard_stats.read_text())
    for counter in ("transactions_fenced", "aborted_transactions_listed"):
        assert guard.get(counter, 0) > guard_before.get(counter, 0), (counter, guard_before, guard)


def broker_process(stack: RunningStack) -> psutil.Process:
    """Tansu itself, behind the broker guard (the stack's "kafka" component runs both)."""
    status = json.loads(stack.cli("status", "--json").stdout)
    guard = next(c for c in status["components"] if c["name"] == "kafka")
    return next(p for p in psutil.Process(guard["pid"]).children(recursive=True) if "tansu" in p.name())


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_at_least_once_without_the_checkpoint_wait_keeps_unacknowledged_records_in_the_checkpoint(
    embedded_stack: RunningStack, bootstrap: str, tmp_path: Path
) -> None:
    """With ``flush: false`` a checkpoint completes while the broker acknowledges nothing (Tansu
    stopped with SIGSTOP behind the guard, so the sink's sends hang), holding the records sent and
    not acknowledged; the job killed then and restored from that checkpoint sends them again first,
    and every input record reaches the output. (Waiting at the checkpoint, no checkpoint could
    complete while the broker is stopped.)"""
    source, out = unique("inflight-in"), unique("inflight-out")
    create_topics(bootstrap, source, out)
    sent = produce(bootstrap, source, 240)
    expected = {(s.partition, s.offset) for s in sent}
    # A slow job (25 ms a record): records are still being processed and sent when the broker stops.
    pipeline = {
        "topics": [source],
        "output_topic": out,
        "guarantee": "at-least-once",
        "flush": False,
        "delay_ms": 25,
    }
    checkpoints = tmp_path / "checkpoints"
    tansu = broker_process(embedded_stack)
    with running_job(embedded_stack, tmp_path, [pipeline], name="first", checkpoint_interval_ms=500) as job:
        read_all(bootstrap, out, until=lambda rs: len(rs) >= 20, timeout=JOB_START_TIMEOUT)
        tansu.suspend()
        try:
            stopped_at = time.time()

            def completed_while_stopped() -> bool:
                done = completed_checkpoints(checkpoints)
                return any((c / "_metadata").stat().st_mtime > stopped_at + 1.0 for c in done)

            wait_for(completed_while_stopped, 60, "a checkpoint completed while the broker was stopped")
            job.assert_running()
            job.kill()
        finally:
            tansu.resume()
    latest = completed_checkpoints(checkpoints)[-1]
    with running_job(
        embedded_stack, tmp_path, [pipeline], restore_from=latest, name="restored", checkpoint_interval_ms=500
    ) as job:
        records = read_all(
            bootstrap, out, until=lambda rs: {position(r) for r in rs} >= expected, timeout=JOB_START_TIMEOUT
        )
        job.assert_running()
        logs = "\n".join(log.read_text(errors="replace") for log in job.log_dir.glob("*.log"))
    assert {position(r) for r in records} == expected
    resent = re.search(r"Sending (\d+) records again that were unacknowledged", logs)
    assert resent is not None, "the restored writer sent nothing from the checkpoint"
    assert int(resent.group(1)) > 0
