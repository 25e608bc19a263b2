"""Run the synthetic bank against Kafka and PostgreSQL: ``produce(settings, options)``.

The simulation is paced against the wall clock at the target rate (or run flat out with
``pace=False``). Events go to their topics, fraud labels to ``fraud.labels`` and/or a JSONL file,
balance movements and table changes to PostgreSQL. SIGINT/SIGTERM stop generation; what was
generated is then flushed (bounded by ``flush_timeout_s``) and reported.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from producers.bank import BankSize
from producers.model import (
    FraudLabel,
    Stream,
    event_id_of,
    event_time_ms_of,
)
from producers.simulation import Simulation, SimulationConfig, split_rate
from producers.wire import LABELS_TOPIC, TOPICS, WIRE, fraud_label_record
from riverbank.settings import Settings


@dataclass(frozen=True)
class RunOptions:
    streams: tuple[Stream, ...] = (Stream.TRANSACTIONS,)
    #: Target events per second, all selected streams together.
    rate: float = 2000.0
    #: Seconds of events at the target rate; None runs until interrupted.
    duration_s: float | None = 60.0
    #: Seed of the events; None picks one (reported) so repeated runs differ.
    seed: int | None = None
    bank_seed: int = 1
    bank_size: BankSize = field(default_factory=BankSize)
    fraud_rate: float = 0.002
    change_rate: float = 0.0005
    time_scale: float = 1.0
    #: Simulated start (epoch ms); None starts now.
    start_ms: int | None = None
    labels_file: Path | None = None
    labels_to_kafka: bool = True
    write_db: bool = True
    #: False: produce as fast as possible (benchmarks).
    pace: bool = True
    flush_timeout_s: float = 60.0
    progress_interval_s: float = 0.25
    producer_extra: tuple[tuple[str, str], ...] = ()


@dataclass
class RunReport:
    run_id: str
    seed: int
    bank_seed: int
    streams: list[str]
    target_rate: float
    elapsed_s: float = 0.0
    generated: int = 0
    sent: int = 0
    acked: int = 0
    failed: int = 0
    dlq: int = 0
    labels: int = 0
    unflushed: int = 0
    backpressure_waits: int = 0
    acked_by_topic: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    broker_errors: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    db_movements: int = 0
    db_updates: int = 0
    #: Cards whose status (a block) was taken over from the database's earlier runs.
    cards_restored: int = 0
    stopped_by: str | None = None
    finished: bool = False

    @property
    def actual_rate(self) -> float:
        return self.generated / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def complete(self) -> bool:
        """Every generated record acknowledged (or dead-lettered and acknowledged)."""
        return self.finished and self.failed == 0 and self.unflushed == 0 and self.acked == self.sent

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["actual_rate"] = round(self.actual_rate, 1)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["complete"] = self.complete
        return data


OnProgress = Callable[[RunReport], None]


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


def simulation_config(options: RunOptions, seed: int, start_ms: int) -> SimulationConfig:
    return SimulationConfig(
        rates=split_rate(list(options.streams), options.rate),
        start_ms=start_ms,
        duration_s=options.duration_s,
        seed=seed,
        bank_seed=options.bank_seed,
        bank_size=options.bank_size,
        fraud_rate=options.fraud_rate,
        change_rate=options.change_rate,
        time_scale=options.time_scale,
    )


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, report: RunReport) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a second SIGINT interrupts at once). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        report.stopped_by = signal.Signals(signum).name
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def produce(
    settings: Settings,
    options: RunOptions,
    *,
    on_progress: OnProgress | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Generate and publish; returns the final counters. ``stop`` ends the run early."""
    from producers.publisher import AvroPublisher, ProducerOptions

    seed = options.seed if options.seed is not None else new_seed()
    start_ms = options.start_ms if options.start_ms is not None else int(time.time() * 1000)
    sim = Simulation(simulation_config(options, seed, start_ms))
    report = RunReport(
        uuid.uuid4().hex, seed, options.bank_seed, [s.value for s in sim.streams], options.rate
    )
    stop = stop or threading.Event()
    topics = [TOPICS[s] for s in sim.streams]
    if options.labels_to_kafka and {Stream.TRANSACTIONS, Stream.PAYMENTS} & set(sim.streams):
        topics.append(LABELS_TOPIC)
    publisher = AvroPublisher(settings, topics, ProducerOptions(extra=options.producer_extra))
    db = None
    labels_out: IO[str] | None = None
    try:
        if options.write_db:
            from producers.bankdb import BankDatabase

            db = BankDatabase(settings.source_db, report.run_id)
            db.ensure_schema()
            db.load_bank(sim.bank)
            report.cards_restored = db.restore_card_status(sim.bank)
        if options.labels_file is not None:
            options.labels_file.parent.mkdir(parents=True, exist_ok=True)
            labels_out = options.labels_file.open("a", encoding="utf-8")
        with _stop_on_signals(stop, report):
            _loop(sim, publisher, db, labels_out, options, report, stop, start_ms, on_progress)
        report.finished = not stop.is_set()
    finally:
        try:
            report.unflushed = publisher.close(options.flush_timeout_s)
        finally:
            if labels_out is not None:
                labels_out.close()
            if db is not None:
                db.close()
                report.db_movements, report.db_updates = db.movements_written, db.updates_written
            _collect(report, publisher)
    if on_progress is not None:
        on_progress(report)
    return report


def _collect(report: RunReport, publisher: Any) -> None:
    stats = publisher.stats
    report.sent, report.acked, report.failed, report.dlq = stats.sent, stats.acked, stats.failed, stats.dlq
    report.backpressure_waits = stats.backpressure_waits
    report.acked_by_topic = dict(stats.acked_by_topic)
    report.errors = dict(stats.errors)
    report.broker_errors = dict(stats.broker_errors)
    report.last_error = stats.last_error


def _loop(
    sim: Simulation,
    publisher: Any,
    db: Any,
    labels_out: IO[str] | None,
    options: RunOptions,
    report: RunReport,
    stop: threading.Event,
    start_ms: int,
    on_progress: OnProgress | None,
) -> None:
    wall0 = time.monotonic()
    ms_per_wall_s = 1000.0 * options.time_scale
    check_every = max(1, min(256, int(options.rate / 400)))
    next_progress = wall0
    send = publisher.send
    emitters = {
        kind: publisher.emitter(TOPICS[stream], key_of, record_of, event_id_of, event_time_ms_of)
        for kind, (stream, key_of, record_of) in WIRE.items()
        if stream in sim.streams
    }
    side = sim.side
    step = sim.step
    n = 0
    while not stop.is_set():
        event = step()
        if event is None:
            break
        emitters[type(event)](event)
        n += 1
        if side:
            for item in side:
                if type(item) is FraudLabel:
                    report.labels += 1
                    if options.labels_to_kafka:
                        send(LABELS_TOPIC, str(item.customer_id), fraud_label_record(item), item.label_id)
                    if labels_out is not None:
                        labels_out.write(json.dumps(fraud_label_record(item)) + "\n")
                elif db is not None:
                    db.add(item)  # a balance movement, customer or card change
            side.clear()
        if n % check_every:
            continue
        publisher.poll(0)
        now = time.monotonic()
        if options.pace:
            ahead = (event_time_ms_of(event) - start_ms) / ms_per_wall_s - (now - wall0)
            while ahead > 0.002 and not stop.is_set():
                publisher.poll(min(ahead, 0.1))
                now = time.monotonic()
                ahead = (event_time_ms_of(event) - start_ms) / ms_per_wall_s - (now - wall0)
        if now >= next_progress:
            next_progress = now + options.progress_interval_s
            if db is not None:
                db.flush_if_due()
            report.generated = n
            report.elapsed_s = now - wall0
            if on_progress is not None:
                _collect(report, publisher)
                on_progress(report)
    report.generated = n
    report.elapsed_s = time.monotonic() - wall0
    if db is not None:
        db.flush()
