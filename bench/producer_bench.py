"""Maximum sustained producer rate per stream from one process, with Avro serialization, and its RSS.

Starts a private broker + registry (free ports; or uses RIVERBANK_KAFKA__BOOTSTRAP_SERVERS and
RIVERBANK_SCHEMA_REGISTRY__URL when both are set), registers the schemas, then per stream runs the
producer flat out (no pacing, no PostgreSQL) for RUN_S seconds and waits for every acknowledgement.
For each stream it prints three rates, so the cost of each stage is visible:

  generate      the pure generator alone (events/s)
  +avro         generator + wire mapping + the compiled Avro encoder the producer uses (no broker)
  +ref avro     the same with confluent-kafka's AvroSerializer, the encoder's reference
  queued        generator + Avro + produce() into the producer's local queue, while it runs
  end-to-end    generator + Avro + idempotent acks=all lz4 producer, counted on acknowledgements
                from the first event to the last acknowledgement (building the bank is set-up)

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
#: Storage of the private broker: "s3" (as the embedded stack runs it) or "memory".
BROKER_STORAGE = os.environ.get("RIVERBANK_BENCH_PRODUCER_BROKER_STORAGE", "s3")
#: Comma-separated stream names to measure (default: all).
STREAMS = os.environ.get("RIVERBANK_BENCH_PRODUCER_STREAMS", "")
TARGET_CARD_TPS = 50_000


@contextlib.contextmanager
def _stack() -> Iterator[Settings]:
    if os.environ.get("RIVERBANK_KAFKA__BOOTSTRAP_SERVERS") and os.environ.get(
        "RIVERBANK_SCHEMA_REGISTRY__URL"
    ):
        yield load_settings()
        return
    from tests.stack_harness import running_stack

    components = ["s3", "kafka", "registry"]
    with running_stack("bench-producer", components, broker_storage=BROKER_STORAGE) as handle:
        yield handle.settings


Rate = tuple[float, float]  # events per wall-clock second, CPU microseconds per event


def _generate_rate(stream: Stream, seconds: float) -> Rate:
    options = RunOptions(streams=(stream,), rate=1_000_000, duration_s=None, seed=1)
    sim = Simulation(simulation_config(options, 1, int(time.time() * 1000)))
    n, started, cpu = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            sim.step()
        sim.side.clear()
        n += 1000
    return n / (time.perf_counter() - started), (time.thread_time() - cpu) * 1e6 / n


def _avro_rate(settings: Settings, stream: Stream, seconds: float, *, reference: bool) -> Rate:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from producers.avro_encoder import compile_encoder, wire_prefix
    from producers.card_encoder import compile_card_encoder
    from producers.publisher import schema_texts

    topic = TOPICS[stream]
    text = schema_texts()[topic][1]
    client = SchemaRegistryClient(settings.schema_registry.client_config())
    try:
        if reference:
            serializer = AvroSerializer(client, text, conf={"auto.register.schemas": False})
            ctx = SerializationContext(topic, MessageField.VALUE)

            def encode(record: dict[str, object]) -> bytes | None:
                return serializer(record, ctx)

        else:
            schema_id = client.lookup_schema(f"{topic}-value", Schema(text, "AVRO")).schema_id or 0
            encode = compile_encoder(text, wire_prefix(schema_id))
        record_of = WIRE[_event_type(stream)][2]
        options = RunOptions(streams=(stream,), rate=1_000_000, duration_s=None, seed=2)
        sim = Simulation(simulation_config(options, 2, int(time.time() * 1000)))
        # The producer encodes card transactions without the record dict: measure that path.
        encode_event = (
            None if reference or stream is not Stream.TRANSACTIONS
            else compile_card_encoder(text, wire_prefix(schema_id), encode)
        )  # fmt: skip
        n, started, cpu = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - started < seconds:
            for _ in range(500):
                event = sim.step()
                assert event is not None
                if encode_event is not None:
                    encode_event(event)
                else:
                    encode(record_of(event))
            sim.side.clear()
            n += 500
        return n / (time.perf_counter() - started), (time.thread_time() - cpu) * 1e6 / n
    finally:
        client.close()


def _event_type(stream: Stream) -> type:
    return next(kind for kind, (s, _, _) in WIRE.items() if s is stream)


def _end_to_end(settings: Settings, stream: Stream, seconds: float) -> tuple[RunReport, float, int, float]:
    """Run flat out for ``seconds`` from the first event; the rate counts acknowledgements over the
    time from the first event to the last acknowledgement (building the bank is set-up)."""
    process = psutil.Process()
    peak = [process.memory_info().rss]
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    first: list[tuple[float, float, int]] = []  # wall clock, thread CPU, events at the first report

    def sample(report: RunReport) -> None:
        if not first:
            first.append((time.perf_counter() - report.elapsed_s, time.thread_time(), report.generated))
            timer.start()
        peak[0] = max(peak[0], process.memory_info().rss)

    options = RunOptions(
        streams=(stream,), rate=1_000_000, duration_s=None, seed=3, write_db=False, labels_to_kafka=False,
        pace=False, flush_timeout_s=120, progress_interval_s=0.5,
    )  # fmt: skip
    try:
        report = produce(settings, options, on_progress=sample, stop=stop)
    finally:
        timer.cancel()
    ended = time.perf_counter()
    assert first, "the run reported no progress"
    started, cpu, events_before = first[0]
    # The Python thread is what one process cannot spread over cores (librdkafka's threads can).
    main_cpu_us = (time.thread_time() - cpu) * 1e6 / max(1, report.generated - events_before)
    peak[0] = max(peak[0], process.memory_info().rss)
    return report, report.acked / (ended - started), peak[0], main_cpu_us


def main() -> None:
    from infra.topics import ensure_topics
    from producers import native
    from producers.publisher import SCHEMAS_DIR
    from riverbank.registry.workflows import register_all

    form = "compiled (mypyc, build/native)" if native.active else "interpreted (no fresh native build)"
    print(
        f"one process, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{RUN_S:.0f}s per stream; broker storage {BROKER_STORAGE}; producers {form}"
    )
    with _stack() as settings:
        register_all(settings.schema_registry, SCHEMAS_DIR)
        ensure_topics(settings)
        print(
            f"  {'stream':<14}{'generate':>12}{'+avro':>12}{'+ref avro':>12}{'queued':>12}{'end-to-end':>13}"
            f"{'acked':>10}{'peak RSS':>11}"
        )
        cpu_lines = []
        streams = [Stream(s) for s in STREAMS.split(",") if s] or list(Stream)
        for stream in streams:
            gen = _generate_rate(stream, min(RUN_S, 5))
            avro = _avro_rate(settings, stream, min(RUN_S, 5), reference=False)
            ref = _avro_rate(settings, stream, min(RUN_S, 3), reference=True)
            report, e2e, rss, main_cpu = _end_to_end(settings, stream, RUN_S)
            ok = report.acked == report.sent and not report.failed and not report.unflushed
            lost = f"sent {report.sent}, failed {report.failed}, unsent {report.unflushed}"
            flag = "" if ok else f"  (NOT ALL ACKED: {lost})"
            print(
                f"  {stream.value:<14}{gen[0]:>10,.0f}/s{avro[0]:>10,.0f}/s{ref[0]:>10,.0f}/s"
                f"{report.actual_rate:>10,.0f}/s{e2e:>11,.0f}/s"
                f"{report.acked:>10,}"
                f"{rss / 2**20:>8,.0f} MiB{flag}"
            )
            cpu_lines.append(
                f"  {stream.value:<14}{gen[1]:>10.1f}us{avro[1]:>10.1f}us{ref[1]:>10.1f}us{main_cpu:>10.1f}us"
                f"   -> the Python thread alone allows {1e6 / main_cpu:,.0f}/s"
            )
            if stream is Stream.TRANSACTIONS:
                verdict = "meets" if e2e >= TARGET_CARD_TPS else "BELOW"
                print(f"  -> card transactions: {e2e:,.0f}/s {verdict} the {TARGET_CARD_TPS:,}/s target")
        # On a shared machine wall-clock rates follow the load; CPU time per event does much less.
        print("  CPU time of the Python thread per event (generate, +avro, +ref avro, whole producer loop):")
        print("\n".join(cpu_lines))
        print(f"  load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
