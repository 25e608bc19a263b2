"""The Kafka to bronze sink against the real broker and registry of the session stack."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from iceberg import offsets
from iceberg.catalog import load_lake_catalog
from iceberg.medallion import BalanceReport, check_balances
from iceberg.quarantine import DLQ_TOPIC
from iceberg.sink import BronzeSink
from iceberg.tables import bronze_tables
from infra.topics import ensure_topics
from producers.bank import BankSize
from producers.model import Stream
from producers.publisher import SCHEMAS_DIR
from producers.runner import RunOptions
from producers.runner import produce as produce_bank
from riverbank.registry.workflows import register_all
from riverbank.settings import Settings, load_settings
from tests.iceberg.lakekit import (
    TestProducer,
    evolved_payment_schema,
    lake_settings,
    new_topic,
    payment,
    payment_table,
)
from tests.iceberg.sink_proc import BANK_TOPICS
from tests.stack_harness import RunningStack, environ, running_stack

pytestmark = pytest.mark.integration


def wait_for(check: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


class SinkThread:
    """A BronzeSink running in a thread of the test process."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self.sink = BronzeSink(settings, {t: payment_table(settings, t) for t in topics})
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.sink.open()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.sink.run(self.stop)
        except BaseException as exc:
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.sink.close()
        assert self.error is None, self.error


def bronze_rows(settings: Settings, topic: str) -> list[dict[str, Any]]:
    table = load_lake_catalog(settings).load_table(payment_table(settings, topic).identifier)
    return list(table.scan().to_arrow().to_pylist())


def landed(settings: Settings, topic: str, catalog: Any = None) -> int:
    """How many offsets the table's snapshots say are landed (0 before the table exists)."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog = catalog or load_lake_catalog(settings)
    try:
        table = catalog.load_table(payment_table(settings, topic).identifier)
    except NoSuchTableError:
        return 0
    return sum(offsets.committed_offsets(table).values())


@pytest.fixture
def stack(embedded_stack: RunningStack) -> RunningStack:
    ensure_topics(embedded_stack.settings)
    return embedded_stack


@pytest.fixture
def crash_stack() -> Iterator[RunningStack]:
    """A broker of its own, on memory storage: the test leaves partitions of thousands of small
    batches, and Tansu on s3 storage lists every object of a partition on each fetch, so reading
    them back crawled (the catch-up below stalled at 4,301 of 51,500 records in a CI run). The bank
    database and its CDC engine are the ledger's source."""
    with running_stack("crash", ["kafka", "registry", "postgres", "cdc"], broker_storage="memory") as handle:
        with environ(handle.env):
            settings = load_settings()  # the database password file exists only once it is up
        register_all(settings.schema_registry, SCHEMAS_DIR)  # what the bank producer writes
        ensure_topics(settings)
        yield RunningStack(settings, handle.env)


@pytest.fixture(params=["file", "s3"])
def warehouse(request: pytest.FixtureRequest, stack: RunningStack, tmp_path: Path) -> Iterator[Settings]:
    """Settings with a private catalog; the warehouse on local disk or on the stack's local S3."""
    if request.param == "file":
        yield lake_settings(stack.env, tmp_path)
    else:
        location = f"s3://lake/test-{uuid.uuid4().hex[:8]}"
        yield lake_settings(stack.env, tmp_path, location, s3_endpoint=stack.settings.stack.s3_endpoint)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def dlq_records(settings: Settings, source_topic: str, expected: int) -> list[dict[str, bytes]]:
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            "log_level": 0,
        }
    )
    found: list[dict[str, bytes]] = []
    try:
        parts = consumer.list_topics(DLQ_TOPIC, timeout=10).topics[DLQ_TOPIC].partitions
        consumer.assign([TopicPartition(DLQ_TOPIC, p, OFFSET_BEGINNING) for p in parts])
        deadline = time.monotonic() + 60
        while len(found) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                headers = {k: v for k, v in msg.headers() or []}
                if headers.get("dlq.source.topic") == source_topic.encode():
                    found.append(headers | {"payload": msg.value()})
    finally:
        consumer.close()
    return found


def test_records_land_decoded_with_metadata_and_bad_ones_are_quarantined(
    stack: RunningStack, warehouse: Settings
) -> None:
    settings = warehouse
    topic = new_topic(settings, "test.sink")
    producer = TestProducer(settings, topic)
    for n in range(300):
        producer.send(f"k{n % 7}", payment(n))
    producer.send("gone", None)  # a tombstone lands too
    producer.send_raw(b"bad-magic", b"not avro at all")
    producer.send_raw(b"bad-id", b"\x00\x00\x0f\x42\x40trailing")
    producer.flush()
    expected = {(p, o) for p, o in producer.acked}

    sink = SinkThread(settings, [topic])
    try:
        wait_for(lambda: landed(settings, topic) == len(expected), what="every offset committed")
    finally:
        sink.close()

    rows = bronze_rows(settings, topic)
    assert len(rows) == 301
    by_id = {r["payment_id"]: r for r in rows if r["payment_id"]}
    assert by_id["P7"]["amount"] == payment(7)["amount"]
    assert by_id["P7"]["event_time"] == payment(7)["event_time"]
    assert by_id["P7"]["requested_execution_date"] == payment(7)["requested_execution_date"]
    assert by_id["P7"]["_key"] == "k0" and by_id["P7"]["_topic"] == topic
    assert by_id["P7"]["_schema_id"] is not None and by_id["P7"]["_ingested_at"] is not None
    tombstone = [r for r in rows if r["_key"] == "gone"]
    assert len(tombstone) == 1 and tombstone[0]["payment_id"] is None and tombstone[0]["_schema_id"] is None

    catalog = load_lake_catalog(settings)
    quarantine = catalog.load_table((settings.lake.bronze_namespace, settings.lake.quarantine_table))
    bad = [r for r in quarantine.scan().to_arrow().to_pylist() if r["_topic"] == topic]
    assert sorted(r["key"] for r in bad) == [b"bad-id", b"bad-magic"]
    reasons = {r["key"]: r["reason"] for r in bad}
    assert "magic byte" in reasons[b"bad-magic"] and "not in the registry" in reasons[b"bad-id"]
    landed_offsets = {(r["_partition"], r["_offset"]) for r in rows} | {
        (r["_partition"], r["_offset"]) for r in bad
    }
    assert landed_offsets == expected

    dlq = dlq_records(settings, topic, 2)
    assert sorted(h["payload"] for h in dlq) == [b"\x00\x00\x0f\x42\x40trailing", b"not avro at all"]
    assert all(h["dlq.stage"] == b"bronze-decode" and h["dlq.reason"] for h in dlq)

    # A restart resumes from the table's offsets: only the new records land.
    producer.send("late", payment(1000))
    producer.close()
    sink = SinkThread(settings, [topic])
    try:
        wait_for(lambda: landed(settings, topic) == len(expected) + 1, what="the late record")
    finally:
        sink.close()
    counts = Counter((r["_partition"], r["_offset"]) for r in bronze_rows(settings, topic))
    assert len(counts) == 302 and max(counts.values()) == 1


def test_a_new_optional_field_becomes_a_column_without_restart(stack: RunningStack, tmp_path: Path) -> None:
    settings = lake_settings(stack.env, tmp_path, commit_interval_s=0.5)
    topic = new_topic(settings, "test.evolve", partitions=1)
    v1 = TestProducer(settings, topic)
    for n in range(20):
        v1.send("a", payment(n))
    v1.close()
    sink = SinkThread(settings, [topic])
    try:
        wait_for(lambda: landed(settings, topic) == 20, what="v1 records")
        v2 = TestProducer(settings, topic, evolved_payment_schema("purpose_code"))
        for n in range(20, 30):
            v2.send("a", payment(n, purpose_code=f"PC{n}"))
        v2.close()
        wait_for(lambda: landed(settings, topic) == 30, what="v2 records")
    finally:
        sink.close()
    table = load_lake_catalog(settings).load_table(payment_table(settings, topic).identifier)
    field = table.schema().find_field("purpose_code")
    assert not field.required
    rows = {r["payment_id"]: r for r in table.scan().to_arrow().to_pylist()}
    assert rows["P3"]["purpose_code"] is None
    assert rows["P25"]["purpose_code"] == "PC25"
    assert len({r["_schema_id"] for r in rows.values()}) == 2


@pytest.mark.timeout(900)
def test_crash_at_random_moments_leaves_every_offset_once_and_the_ledger_balanced(
    crash_stack: RunningStack, tmp_path: Path
) -> None:
    """SIGKILL the sink ROUNDS times while producers write; then each offset is in bronze once and
    silver's account balances equal the bank database's.

    Two producers run throughout: one writes a test topic (its acked offsets are the expectation),
    the bank's payments producer moves balances in PostgreSQL, which the CDC engine delivers. Each
    killed sink also ran the silver/gold refresh, so kills land in bronze and in silver commits."""
    rounds = 20  # the acceptance: at least 20
    settings = lake_settings(crash_stack.env, tmp_path, commit_interval_s=0.3, commit_max_records=2000)
    topic = new_topic(settings, "test.crash", partitions=3)
    env = {
        **os.environ,
        **crash_stack.env,
        "RIVERBANK_LAKE__CATALOG_URI": str(settings.lake.catalog_uri),
        "RIVERBANK_LAKE__WAREHOUSE": str(settings.lake.warehouse),
        "RIVERBANK_LAKE__COMMIT_INTERVAL_S": "0.3",
        "RIVERBANK_LAKE__COMMIT_MAX_RECORDS": "2000",
        "RIVERBANK_MEDALLION__REFRESH_INTERVAL_S": "0.5",
    }
    producer = TestProducer(settings, topic)
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        n = 0
        while producing.is_set():
            producer.send(f"k{n % 13}", payment(n))
            n += 1
            if n % 100 == 0:
                time.sleep(0.1)  # <1,000/s: the sink keeps up, so kills land mid-commit too

    bank_stop = threading.Event()
    bank_options = RunOptions(
        streams=(Stream.PAYMENTS,),
        rate=100,
        duration_s=None,
        seed=6,
        bank_size=BankSize(customers=150),
        labels_to_kafka=False,
    )
    writer = threading.Thread(target=produce, daemon=True)
    with ThreadPoolExecutor(1) as bank_pool:
        bank = bank_pool.submit(produce_bank, settings, bank_options, stop=bank_stop)
        writer.start()
        rng = random.Random(6)
        log = tmp_path / "sink.log"
        killed_after_open = 0
        progress: list[int] = []
        with log.open("ab") as out:
            zygote = subprocess.Popen(
                [sys.executable, "-m", "tests.iceberg.sink_proc", "--bank", topic],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
            )
        assert zygote.stdin is not None and zygote.stdout is not None
        try:
            assert zygote.stdout.readline().strip() == "ready"
            for _ in range(rounds):
                pid = fork_sink(zygote.stdin, zygote.stdout)
                if rng.random() < 0.8:  # most rounds: kill while it consumes and commits
                    next_line(zygote.stdout, "open", str(pid))
                    killed_after_open += 1
                    # After 0, 1 or 2 commits, so kills fall before, inside and between commits
                    # however slow the machine is.
                    base = landed(settings, topic)
                    for _ in range(rng.randrange(3)):
                        deadline = time.monotonic() + 20  # a starved producer may leave nothing to commit
                        while landed(settings, topic) <= base and time.monotonic() < deadline:
                            time.sleep(0.2)
                        base = landed(settings, topic)
                    time.sleep(rng.uniform(0.0, 0.6))
                else:  # the others: somewhere in start-up (catalog, tables, offsets, consumer)
                    time.sleep(rng.uniform(0.0, 0.5))
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda p=pid: not _alive(p), timeout_s=10, what=f"sink {pid} to die")
                progress.append(landed(settings, topic))
        finally:
            producing.clear()
            bank_stop.set()
            writer.join(30)
            producer.close()
        report = bank.result(timeout=120)
        expected = set(producer.acked)
        assert len(expected) > 1000 and killed_after_open >= rounds // 2
        assert len(set(progress)) > rounds // 4, progress  # many rounds committed before their kill
        assert report.db_movements > 100, report  # the ledger moved while the sinks were killed

        # What the kills left behind: each landed offset once, and per partition a gap-free prefix.
        _assert_exactly_once_prefix(settings, topic, expected)
        try:
            # One more sink, left running: it lands the backlog and silver catches up.
            pid = fork_sink(zygote.stdin, zygote.stdout)
            catalog = load_lake_catalog(settings)
            caught_up = lambda: landed(settings, topic, catalog) >= len(expected)  # noqa: E731
            wait_for(caught_up, timeout_s=120, what="the backlog")
            ledger = wait_for_ledger(settings, catalog, timeout_s=180)
            assert ledger.ok, f"{len(ledger.mismatches)} balances differ, e.g. {ledger.mismatches[:3]}"
            assert ledger.accounts_silver == ledger.accounts_source > 0
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not _alive(pid), timeout_s=60, what="the last sink to stop")
        finally:
            zygote.stdin.close()
            zygote.wait(10)
            zygote.stdout.close()
    _assert_exactly_once_prefix(settings, topic, expected)
    assert landed(settings, topic) == len(expected)
    for cdc_topic, table_def in bronze_tables(settings, BANK_TOPICS).items():  # each offset once too
        rows = catalog.load_table(table_def.identifier).scan().to_arrow()
        keys = Counter(zip(rows["_partition"].to_pylist(), rows["_offset"].to_pylist(), strict=True))
        assert rows.num_rows and max(keys.values()) == 1, f"{cdc_topic}: an offset landed twice"


def fork_sink(stdin: IO[str], stdout: IO[str]) -> int:
    stdin.write("go\n")
    stdin.flush()
    return int(next_line(stdout, "pid"))


def wait_for_ledger(settings: Settings, catalog: Any, timeout_s: float) -> BalanceReport:
    """The balance check once it holds (CDC and the sinks catch up after the producers stop), or
    the last report at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not (report := check_balances(settings, catalog)).ok and time.monotonic() < deadline:
        time.sleep(1)
    return report


def next_line(stream: IO[str], kind: str, value: str | None = None) -> str:
    """The value of the zygote's next ``<kind> <value>`` line, skipping the ``open`` lines of sinks
    killed earlier (one killed during start-up may have printed it just before its kill)."""
    while line := stream.readline():
        found_kind, _, found = line.strip().partition(" ")
        if found_kind == kind and value in (None, found):
            return found
        assert found_kind != "failed", f"a sink failed: {found}"
        assert found_kind == "open", f"unexpected line from the sink zygote: {line!r}"
    raise AssertionError(f"the sink zygote ended while a {kind!r} line was awaited")


def _assert_exactly_once_prefix(settings: Settings, topic: str, expected: set[tuple[int, int]]) -> None:
    counts = Counter((r["_partition"], r["_offset"]) for r in bronze_rows(settings, topic))
    duplicates = {k: c for k, c in counts.items() if c > 1}
    assert not duplicates, f"{len(duplicates)} offsets landed more than once"
    assert set(counts) <= expected, f"{len(set(counts) - expected)} landed offsets were never acked"
    for partition in {p for p, _ in expected}:
        offsets = sorted(o for p, o in counts if p == partition)
        acked = sorted(o for p, o in expected if p == partition)
        assert offsets == acked[: len(offsets)], f"partition {partition}: a gap in the landed offsets"
