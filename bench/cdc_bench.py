"""CDC and extraction figures on a private stack (s3, kafka, registry, postgres).

- snapshot rows/s: customers present before the engine starts, from the first to the last
  snapshot record received by a consumer (the JVM start is reported apart);
- commit -> Kafka latency: one UPDATE per transaction at a steady rate; the time from the commit
  returning to the consumer receiving the change (same host clock), p50/p99 (target p99 <= 100 ms),
  split at the record's CreateTime (stamped by the engine's producer) into engine and broker parts;
- extractor rows/s: one `--once` pass over a table, rows written to Kafka per second.

Sizes: RIVERBANK_BENCH_CDC_ROWS (snapshot, default 20000), RIVERBANK_BENCH_CDC_UPDATES (default 300),
RIVERBANK_BENCH_EXTRACT_ROWS (default 20000); RIVERBANK_BENCH_CDC_BROKER_STORAGE=memory|s3 (default s3).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from cdc.extract.runner import run_extractor
from cdc.status import read_status, status_path
from producers.bankdb import DDL, connect
from riverbank.settings import Settings, load_settings

SNAPSHOT_ROWS = int(os.environ.get("RIVERBANK_BENCH_CDC_ROWS", "20000"))
UPDATES = int(os.environ.get("RIVERBANK_BENCH_CDC_UPDATES", "300"))
EXTRACT_ROWS = int(os.environ.get("RIVERBANK_BENCH_EXTRACT_ROWS", "20000"))
#: "s3" (what `riverbank up` runs) or "memory": tells broker storage latency apart from the engine's.
BROKER_STORAGE = os.environ.get("RIVERBANK_BENCH_CDC_BROKER_STORAGE", "s3")
TOPIC = "bankdb.public.customers"
END_TO_END = "commit -> Kafka consumer"
CONNECTOR = Path(__file__).resolve().parents[1] / "connect" / "bankdb-postgres.json"


class Receiver(threading.Thread):
    """Consumes the customers topic from the start; notes when each (id, email) arrived."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.received: dict[tuple[int, str], float] = {}
        #: The record's CreateTime: the engine's producer stamps it when it sends (ms precision).
        self.sent: dict[tuple[int, str], float] = {}
        self.snapshot_times: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        registry = SchemaRegistryClient(self.settings.schema_registry.client_config())
        decode = AvroDeserializer(registry)
        # Tansu answers a long poll when its timer ends, not when data arrives, so the wait bounds
        # what a change waits at the broker: 50 ms (100 ms gave p99 141 ms, 50 ms 72-102 ms). Not
        # lower: on s3 storage a fetch whose wait expires before its object read finishes comes
        # back empty (at 10 ms a partition holding data never answered; platform notes).
        consumer = Consumer(
            self.settings.kafka.client_config() | {"group.id": "bench-cdc", "fetch.wait.max.ms": 50}
        )
        try:
            while not self.stop.is_set():
                metadata = consumer.list_topics(TOPIC, timeout=5).topics.get(TOPIC)
                if metadata is not None and metadata.partitions and not metadata.error:
                    consumer.assign([TopicPartition(TOPIC, p, 0) for p in metadata.partitions])
                    break
                time.sleep(0.1)
            while not self.stop.is_set():
                # consume(n, timeout) waits for n messages or the timeout: at 20 changes/s always the
                # timeout, which added up to 50 ms to each change. Wait for one, then take the rest.
                first = consumer.poll(0.05)
                messages = [] if first is None else [first, *consumer.consume(1000, 0)]
                for message in messages:
                    now = time.time()
                    if message.error() or message.value() is None:
                        continue
                    value = decode(message.value(), SerializationContext(TOPIC, MessageField.VALUE))
                    if value["op"] == "r":
                        self.snapshot_times.append(now)
                    after = value["after"]
                    key = (after["customer_id"], after["email"])
                    self.received.setdefault(key, now)
                    self.sent.setdefault(key, message.timestamp()[1] / 1000)
        finally:
            consumer.close()
            registry.close()


def _seed(settings: Settings) -> None:
    with connect(settings.source_db, autocommit=True) as conn:
        conn.execute(DDL)
        conn.execute(
            "INSERT INTO customers (customer_id, external_ref, first_name, last_name, email, country,"
            " kyc_status, created_at, updated_at)"
            " SELECT i, 'ref-' || i, 'First', 'Last', 'seed', 'GB', 'VERIFIED',"
            " now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' FROM generate_series(1, %s) AS i",
            (SNAPSHOT_ROWS,),
        )


def _start_engine(settings: Settings, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "riverbank", "cdc", "start", str(CONNECTOR)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    path = status_path(settings, "bankdb-postgres")
    while True:
        status = read_status(path)
        if (
            status is not None
            and status.pid == proc.pid
            and status.state in ("running", "snapshot", "streaming")
        ):
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"engine exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _latency(settings: Settings, receiver: Receiver) -> dict[str, list[float]]:
    """Per change, in ms: commit -> consumer, and its two parts: commit -> the engine's send
    (WAL decoding, Debezium, Avro conversion) and send -> consumer (broker ack path and fetch)."""
    committed: dict[tuple[int, str], float] = {}
    with connect(settings.source_db, autocommit=True) as conn:
        for n in range(UPDATES):
            customer_id, email = 1 + n % SNAPSHOT_ROWS, f"bench-{n}"
            conn.execute("UPDATE customers SET email = %s WHERE customer_id = %s", (email, customer_id))
            committed[(customer_id, email)] = time.time()
            time.sleep(0.05)  # 20 changes/s: latency, not throughput
    _wait(lambda: all(k in receiver.received for k in committed), 60)
    arrived = {k: t for k, t in committed.items() if k in receiver.received}
    return {
        END_TO_END: [(receiver.received[k] - t) * 1000 for k, t in arrived.items()],
        "  of which commit -> engine send": [(receiver.sent[k] - t) * 1000 for k, t in arrived.items()],
        "  of which send -> consumer": [(receiver.received[k] - receiver.sent[k]) * 1000 for k in arrived],
    }


def _extract(settings: Settings, workdir: Path) -> tuple[int, float]:
    with connect(settings.source_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_extract (id bigint PRIMARY KEY, amount numeric(18, 2) NOT NULL, note text,"
            " updated_at timestamp NOT NULL)"
        )
        conn.execute(
            "INSERT INTO bench_extract SELECT i, i * 1.01, 'row ' || i,"
            " (now() AT TIME ZONE 'UTC') - interval '1 minute' FROM generate_series(1, %s) AS i",
            (EXTRACT_ROWS,),
        )
    config = workdir / "extract.toml"
    config.write_text(
        'topic_prefix = "bench"\nbatch_size = 5000\nsafety_lag_s = 1\n[[tables]]\nname = "bench_extract"\n'
    )
    started = time.perf_counter()
    rows = run_extractor(settings, config, once=True)[0]["rows"]
    return rows, time.perf_counter() - started


def main() -> None:
    from tests.stack_harness import running_stack

    print(f"broker storage: {BROKER_STORAGE}", flush=True)
    with running_stack(
        "bench-cdc", ["s3", "kafka", "registry", "postgres"], broker_storage=BROKER_STORAGE
    ) as handle:
        settings = _settings(handle.env)
        _seed(settings)
        receiver = Receiver(settings)
        receiver.start()
        workdir = Path(tempfile.mkdtemp(prefix="bench-cdc-"))
        complete = False  # every snapshot row and change arrived: then the workdir goes
        started = time.perf_counter()
        engine = _start_engine(settings, handle.env, workdir / "engine.log")
        print(f"engine start (JVM, connector task): {time.perf_counter() - started:.1f} s", flush=True)
        try:
            snapshot_done = _wait(lambda: len(receiver.snapshot_times) >= SNAPSHOT_ROWS, 600)
            if snapshot_done:
                times = receiver.snapshot_times
                span = max(times[-1] - times[0], 1e-3)
                print(
                    f"snapshot: {SNAPSHOT_ROWS:,} rows in {span:.2f} s = {SNAPSHOT_ROWS / span:,.0f} rows/s"
                )
            else:
                print(f"snapshot: only {len(receiver.snapshot_times):,} of {SNAPSHOT_ROWS:,} rows arrived")
            measured = _latency(settings, receiver)
            for label, values in measured.items():
                latencies = sorted(values)
                if not latencies:
                    continue
                p50 = statistics.median(latencies)
                p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                verdict = f" ({'meets' if p99 <= 100 else 'misses'} the 100 ms p99 target)"
                print(
                    f"{label}: n={len(latencies)} p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
                    f"max {latencies[-1]:.1f} ms{verdict if label == END_TO_END else ''}"
                )
            arrived = len(measured[END_TO_END])
            print(f"latency: {UPDATES - arrived} of {UPDATES} changes never arrived")
            complete = snapshot_done and arrived == UPDATES
        finally:
            engine.terminate()
            engine.wait(60)
            receiver.stop.set()
            receiver.join(10)
        rows, seconds = _extract(settings, workdir)
        print(f"extractor: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")
        if complete:
            shutil.rmtree(workdir)
        else:
            print(f"engine log and extractor state kept in {workdir}")


def _settings(env: dict[str, str]) -> Settings:
    from tests.stack_harness import environ

    with environ(env):
        return load_settings()


if __name__ == "__main__":
    main()
