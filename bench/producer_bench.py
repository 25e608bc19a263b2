"""Maximum sustained producer rate per stream from one process, with Avro serialization, and its RSS.

Starts a private broker + registry (free ports; or uses RIVERBANK_KAFKA__BOOTSTRAP_SERVERS and
RIVERBANK_SCHEMA_REGISTRY__URL when both are set), registers the schemas, then per stream runs the
producer flat out (no pacing, no PostgreSQL) for RUN_S seconds and waits for every acknowledgement.
For each stream it prints three rates, so the cost of each stage is visible:

  generate      the pure generator alone (events/s)
  +avro         generator + wire mapping + confluent-kafka AvroSerializer (no broker)
  end-to-end    generator + Avro + idempotent acks=all producer, counted on acknowledgements

and the producer process's peak RSS. Target: 50,000 card transactions/s. Figures only, no asserts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import psutil

from producers.model import Stream
from producers.runner import RunOptions, RunReport, produce, simulation_config
from producers.simulation import Simulation
from producers.wire import TOPICS, WIRE
from riverbank.settings import Settings, load_settings

RUN_S = float(os.environ.get("RIVERBANK_BENCH_PRODUCER_SECONDS", "15"))
TARGET_CARD_TPS = 50_000


@contextlib.contextmanager
def _stack() -> Iterator[Settings]:
    if os.environ.get("RIVERBANK_KAFKA__BOOTSTRAP_SERVERS") and os.environ.get(
        "RIVERBANK_SCHEMA_REGISTRY__URL"
    ):
        yield load_settings()
        return
    from tests.stack_harness import running_stack

    with running_stack("bench-producer", ["s3", "kafka", "registry"]) as handle:
        yield handle.settings


def _generate_rate(stream: Stream, seconds: float) -> float:
    options = RunOptions(streams=(stream,), rate=1_000_000, duration_s=None, seed=1)
    sim = Simulation(simulation_config(options, 1, int(time.time() * 1000)))
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            sim.step()
        sim.side.clear()
        n += 1000
    return n / (time.perf_counter() - started)


def _avro_rate(settings: Settings, stream: Stream, seconds: float) -> float:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from producers.publisher import schema_texts

    topic = TOPICS[stream]
    client = SchemaRegistryClient(settings.schema_registry.client_config())
    try:
        serializer = AvroSerializer(client, schema_texts()[topic][1], conf={"auto.register.schemas": False})
        ctx = SerializationContext(topic, MessageField.VALUE)
        options = RunOptions(streams=(stream,), rate=1_000_000, duration_s=None, seed=2)
        sim = Simulation(simulation_config(options, 2, int(time.time() * 1000)))
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(500):
                event = sim.step()
                assert event is not None
                serializer(WIRE[type(event)][2](event), ctx)
            sim.side.clear()
            n += 500
        return n / (time.perf_counter() - started)
    finally:
        client.close()


def _end_to_end(settings: Settings, stream: Stream, seconds: float) -> tuple[RunReport, float, int]:
    process = psutil.Process()
    peak = [process.memory_info().rss]
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)

    def sample(_: RunReport) -> None:
        peak[0] = max(peak[0], process.memory_info().rss)

    options = RunOptions(
        streams=(stream,), rate=1_000_000, duration_s=None, seed=3, write_db=False, labels_to_kafka=False,
        pace=False, flush_timeout_s=120, progress_interval_s=0.5,
    )  # fmt: skip
    started = time.perf_counter()
    timer.start()
    try:
        report = produce(settings, options, on_progress=sample, stop=stop)
    finally:
        timer.cancel()
    total = time.perf_counter() - started
    peak[0] = max(peak[0], process.memory_info().rss)
    return report, report.acked / total, peak[0]


def main() -> None:
    from infra.topics import ensure_topics
    from producers.publisher import SCHEMAS_DIR
    from riverbank.registry.workflows import register_all

    print(
        f"one process, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {RUN_S:.0f}s per stream"
    )
    with _stack() as settings:
        register_all(settings.schema_registry, SCHEMAS_DIR)
        ensure_topics(settings)
        print(f"  {'stream':<14}{'generate':>12}{'+avro':>12}{'end-to-end':>13}{'acked':>10}{'peak RSS':>11}")
        for stream in Stream:
            gen = _generate_rate(stream, min(RUN_S, 5))
            avro = _avro_rate(settings, stream, min(RUN_S, 5))
            report, e2e, rss = _end_to_end(settings, stream, RUN_S)
            ok = report.acked == report.sent and not report.failed and not report.unflushed
            lost = f"sent {report.sent}, failed {report.failed}, unsent {report.unflushed}"
            flag = "" if ok else f"  (NOT ALL ACKED: {lost})"
            print(
                f"  {stream.value:<14}{gen:>10,.0f}/s{avro:>10,.0f}/s{e2e:>11,.0f}/s{report.acked:>10,}"
                f"{rss / 2**20:>8,.0f} MiB{flag}"
            )
            if stream is Stream.TRANSACTIONS:
                verdict = "meets" if e2e >= TARGET_CARD_TPS else "BELOW"
                print(f"  -> card transactions: {e2e:,.0f}/s {verdict} the {TARGET_CARD_TPS:,}/s target")


if __name__ == "__main__":
    main()
