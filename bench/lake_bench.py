"""Kafka to bronze: decode cost, sustained rows/s, freshness, and small files before/after maintain.

    python -m bench lake                       # private stack (s3, kafka, registry) on free ports
    .venv/bin/python bench/lake_bench.py --records 100000 --freshness-s 40 --commits 300

Prints one line per figure. Freshness = from the producer's send to the moment the record's offset
is in the table's current snapshot (what any reader of the table, `riverbank sql` included, sees
after a metadata refresh), at a 2 s commit interval. The small-files figure simulates
``--commits`` sink commits of a table (default 1,800: an hour of 2 s commits), prints how long the
first and the last commits took, and runs `lake maintain`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import threading
import time
from pathlib import Path

from iceberg import offsets
from iceberg.catalog import ensure_namespaces, load_lake_catalog
from iceberg.maintain import count_data_files, maintain
from iceberg.rows import ArrowBuilder, KafkaMeta, event_row
from iceberg.sink import BronzeSink
from iceberg.tables import create_or_load
from riverbank.settings import Settings
from tests.iceberg.lakekit import TestProducer, lake_settings, new_topic, payment, payment_table
from tests.stack_harness import running_stack


def decode_cost(settings: Settings, topic: str, n: int = 20_000) -> None:
    """Per-record decode: fastavro on a cached parsed schema vs confluent-kafka's AvroDeserializer."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from iceberg.wire import SchemaCache, decode

    producer = TestProducer(settings, topic)
    data = producer.serializer(payment(1), producer.ctx)
    producer.close()
    registry = SchemaRegistryClient(settings.schema_registry.client_config())
    try:
        cache = SchemaCache(registry)
        started = time.perf_counter()
        for _ in range(n):
            decode(data, cache)
        fast = n / (time.perf_counter() - started)
        deserializer = AvroDeserializer(registry)
        ctx = SerializationContext(topic, MessageField.VALUE)
        started = time.perf_counter()
        for _ in range(n):
            deserializer(data, ctx)
        confluent = n / (time.perf_counter() - started)
    finally:
        registry.close()
    print(
        f"decode fastavro+cached schema: {fast:,.0f} records/s; "
        f"confluent AvroDeserializer: {confluent:,.0f}/s"
    )


def sustained(settings: Settings, records: int) -> None:
    topic = new_topic(settings, "bench.lake", partitions=4)
    producer = TestProducer(settings, topic)
    for n in range(records):
        producer.send(f"k{n % 1000}", payment(n))
    producer.close()
    records = len(producer.acked)  # what Kafka acknowledged is what must land
    sink = BronzeSink(settings, {topic: payment_table(settings, topic)})
    opened = time.monotonic()
    sink.open()
    print(f"sink start-up (catalog, table, offsets, consumer): {sink.stats.startup_s:.2f} s")
    started = time.monotonic()
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 600
        while sink.stats.landed < records and time.monotonic() < deadline:
            sink.poll(0.2)
            if time.monotonic() - sink._last_commit >= settings.lake.commit_interval_s:
                sink.commit()
        sink.commit()
    finally:
        stop.set()
        sink.close()
    elapsed = time.monotonic() - started
    print(
        f"sustained Kafka->bronze: {records:,} records in {elapsed:.1f} s = {records / elapsed:,.0f} rows/s "
        f"({sink.stats.commits} commits; {time.monotonic() - opened:.1f} s with start-up)"
    )


def freshness(settings: Settings, seconds: float, rate: float) -> None:
    topic = new_topic(settings, "bench.fresh", partitions=1)
    producer = TestProducer(settings, topic)
    sink = BronzeSink(settings, {topic: payment_table(settings, topic)})
    sink.open()
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    runner.start()
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    table = load_lake_catalog(settings).load_table(payment_table(settings, topic).identifier)

    def watch() -> None:
        while not stop.is_set():
            table.refresh()
            upto = offsets.committed_offsets(table).get((topic, 0), 0)
            now = time.monotonic()
            for offset in range(upto):
                seen.setdefault(offset, now)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        producer.send("k", payment(n))
        producer.producer.flush(5)
        sent[n] = time.monotonic()
        n += 1
        time.sleep(1 / rate)
    time.sleep(settings.lake.commit_interval_s * 2 + 1)
    stop.set()
    runner.join(30)
    watcher.join(10)
    sink.close()
    producer.close()
    # Offsets follow send order on the single partition.
    lags = sorted(seen[i] - sent[i] for i in sent if i in seen)
    p95 = lags[int(len(lags) * 0.95) - 1]
    print(
        f"freshness at {settings.lake.commit_interval_s:.0f} s commits: p50 {statistics.median(lags):.2f} s, "
        f"p95 {p95:.2f} s, max {lags[-1]:.2f} s over {len(lags)} records ({len(sent) - len(lags)} not seen)"
    )


def small_files(tmp: Path, commits: int) -> None:
    settings = lake_settings({}, tmp / "files")
    catalog = load_lake_catalog(settings)
    ensure_namespaces(catalog, settings)
    topic = "bench.files"
    table = create_or_load(catalog, payment_table(settings, topic))
    builder = ArrowBuilder.of(table.schema())
    now = dt.datetime.now(dt.UTC)
    n = 0
    took: list[float] = []
    for _ in range(commits):
        rows = [event_row(payment(n + i), KafkaMeta(topic, 0, n + i, now, "k", 1, now)) for i in range(100)]
        n += 100
        started = time.monotonic()
        table.append(
            builder.table(rows),
            snapshot_properties={offsets.OFFSETS_PROPERTY: offsets.encode({(topic, 0): n})},
        )
        took.append(time.monotonic() - started)
    tail = took[-100:]
    before = count_data_files(table)
    started = time.monotonic()
    [report] = maintain(settings, [f"bronze.{payment_table(settings, topic).name}"], expire=False)
    print(
        f"data files after {commits} commits of 100 rows: {before} before `lake maintain`, "
        f"{report.data_files_after} after ({time.monotonic() - started:.1f} s); a commit took"
        f" {statistics.mean(took[:100]) * 1000:.0f} ms over the first 100,"
        f" {statistics.mean(tail) * 1000:.0f} ms over the last {len(tail)}"
        " (each commit adds to the snapshot history: bronze keeps 7 years of it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="lake_bench")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--freshness-s", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="freshness probe records per second")
    parser.add_argument("--commits", type=int, default=1800, help="an hour of 2 s commits")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack("lake-bench", ["s3", "kafka", "registry"]) as stack,
    ):
        settings = lake_settings(stack.env, Path(tmp), commit_interval_s=2.0)
        decode_cost(settings, new_topic(settings, "bench.decode", partitions=1))
        sustained(settings, args.records)
        freshness(settings, args.freshness_s, args.rate)
        small_files(Path(tmp), args.commits)


if __name__ == "__main__":
    main()
