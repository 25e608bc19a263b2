"""`python -m bench fraud [--quick]`: the fraud job on a real Flink cluster, measured.

Starts a private stack (s3, Tansu, registry, Flink JobManager + TaskManager) on free ports, submits
the fraud job with the settings' tuning (override with --bundle-size etc.), then prints:

- quality: precision and recall per injected fraud pattern, from the job's alerts against the
  generator's labels (the records `riverbank produce` writes to fraud.labels, taken here from the
  same seeded simulation);
- latency produce -> alert (p50/p99/max; the issue's measure) and produce -> scored record at each
  rate, paced for the run length (120 s each by default; --quick: 20 s), split at the scorer (the
  scored record's ``scored_at``): into the job, and out of it to the alert consumer;
- the alerts slower than the 100 ms target, grouped into episodes and set against the job's
  checkpoints (bench/stalls.py);
- maximum sustained throughput: the rate at which the job drains a backlog;
- CPU per process of the stack over each phase (the broker's included: Tansu's fetch cost grows
  with the batches it holds, see ARCHITECTURE.md);
- RSS of the JobManager, the TaskManager (thread mode runs the Python workers inside it) and any
  separate Python worker processes.

The load generator batches as Riverbank's producers do (``--producer-linger-ms``); its linger
counts in the latency. The checker reads alerts with the job's fetch wait (unless
``--alerts-fetch-wait-ms``), and scored records as the lake sink does (``--scored-fetch-wait-ms``,
500), and takes each record as soon as a poll returns it. Generator, checker, broker and Flink share
the machine's cores, so figures are pessimistic. On s3 storage the bench's topics keep
``--topic-retention-s`` (180 s), which the broker guard enforces. The guard answers Fetches at
the head of a partition from its fetch tail unless ``--fetch-tail-bytes 0`` (then Tansu answers
each Fetch when its wait runs out, so the consumers' waits count in the latency). Never asserts.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, TopicPartition

from bench.fraud_traffic import Batch, Writer, generate, quality
from bench.stalls import LOOKBACK_MS, CheckpointWatcher, SlowAlert, stall_report
from flink_jobs import runner
from flink_jobs.avro import RegistryConfig, decode
from flink_jobs.rules_topic import DEFAULT_RULES_FILE, load_rule_file, publish_rules
from flink_jobs.schemas import ensure_fraud_subjects
from fraud.events import millis
from fraud.rules import RuleSet
from infra.stack.kafka_guard import LATENCY_BOUNDS_MS, LOOP_LAG_PREFIX, PRODUCE_LATENCY_PREFIX
from infra.stack.paths import StatePaths
from infra.topics import TopicSpec, ensure_topics
from producers.publisher import ProducerOptions
from riverbank.settings import Settings, load_settings
from tests.stack_harness import environ, running_stack


@dataclass
class Arrivals:
    """Receive time of every scored record and alert, by event id (a consumer thread per topic)."""

    settings: Settings
    scored: dict[str, int] = field(default_factory=dict)
    #: When the job scored each event (the scored record's ``scored_at``, the job's clock).
    scored_at: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    #: transactions.scored is read as the lake sink (iceberg/sink.py) reads it; alerts as an
    #: alerting consumer would, with the job's own fetch wait. One consumer for both made the
    #: broker list the scored partitions (the topic with the most batches) ten times a second,
    #: which no Riverbank component does.
    scored_fetch_wait_ms: int = 500
    #: None: the job's own fetch wait (``fraud.fetch_max_wait_ms``).
    alerts_fetch_wait_ms: int | None = None

    def alerts_wait_ms(self) -> int:
        wait = self.alerts_fetch_wait_ms
        return self.settings.fraud.fetch_max_wait_ms if wait is None else wait

    def run(self) -> None:
        fraud = self.settings.fraud
        alerts = threading.Thread(
            target=self._read,
            args=(fraud.alerts_topic, self.alerts_wait_ms()),
            daemon=True,
        )
        alerts.start()
        self._read(fraud.scored_topic, self.scored_fetch_wait_ms)
        alerts.join(timeout=10)

    def _read(self, topic: str, fetch_wait_ms: int) -> None:
        registry = RegistryConfig.from_settings(self.settings.schema_registry)
        consumer = Consumer(
            {
                **self.settings.kafka.client_config(),
                "group.id": f"bench-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": fetch_wait_ms,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 2000,
            }
        )
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        scored = topic == self.settings.fraud.scored_topic
        try:
            while not self.stop.is_set():
                # consume(n, timeout) waits for n messages or the timeout, which would add up to
                # the timeout to every latency: wait for the first, then take what is already here.
                first = consumer.poll(0.1)
                if first is None:
                    continue
                # Everything consume() returns was already here: it arrived when poll() returned, not
                # after the Python decoding of the records before it.
                now = time.time_ns() // 1_000_000
                for msg in [first, *consumer.consume(1000, 0)]:
                    if msg.error():
                        continue
                    record = decode(registry, msg.value())
                    if scored:
                        event_id = str(record["event_id"])
                        self.scored.setdefault(event_id, now)
                        self.scored_at.setdefault(event_id, millis(record["scored_at"]))
                    else:
                        self.alerts.setdefault(
                            str(record["source_event_id"]), (now, tuple(record["rule_ids"]))
                        )
        finally:
            consumer.close()


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


@dataclass
class Bench:
    settings: Settings
    arrivals: Arrivals
    writer: Writer
    next_start_ms: int
    checkpoints: CheckpointWatcher
    seed: int = 1000
    #: The issue's p99 target: alerts slower than this are grouped into episodes.
    slow_alert_ms: int = 100

    def batch(self, count: int, fraud_rate: float = 0.02) -> Batch:
        self.seed += 1
        batch = generate(self.seed, count, self.next_start_ms, fraud_rate=fraud_rate)
        self.next_start_ms = batch.end_ms + 1000
        return batch

    def quality(self, count: int) -> None:
        batch = self.batch(count, fraud_rate=0.01)
        ids = [str(r["event_id"]) for _, r in batch.events]
        self.writer.send(batch.events)
        self.writer.flush()
        wait_until(lambda: all(i in self.arrivals.scored for i in ids), 300)
        time.sleep(2)  # alerts are written with their scored record; let the last ones land
        alerts = {e: self.arrivals.alerts[e][1] for e in ids if e in self.arrivals.alerts}
        rules = RuleSet.of(load_rule_file(DEFAULT_RULES_FILE))
        print(
            f"quality: {len(batch.events):,} events, {len(batch.labels)} injected frauds, "
            f"{len(alerts):,} alerts"
        )
        print(
            f"  {'pattern':<18} {'frauds':>6} {'recall':>7} {'events':>7} {'ev.recall':>9} "
            f"{'rule alerts':>11} {'precision':>9}"
        )
        for q in quality(batch.labels, alerts, rules):
            print(
                f"  {q.pattern:<18} {q.labels:>6} {q.recall:>7.2f} {q.fraud_events:>7} "
                f"{q.event_recall:>9.2f} {q.rule_alerts:>11} {q.precision:>9.2f}"
            )
        fraud_events = {e for label in batch.labels for e in label.event_ids}
        true = sum(e in fraud_events for e in alerts)
        print(
            f"  overall: precision {true / max(len(alerts), 1):.2f} "
            f"(alerted events that are labelled fraud), event recall {true / max(len(fraud_events), 1):.2f}"
        )

    def latency(self, rate: int, seconds: float) -> None:
        batch = self.batch(int(rate * seconds))
        events = batch.events
        started = time.monotonic()

        def pace(n: int) -> None:
            due = started + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        meter = CpuMeter(stack_processes(str(self.settings.stack.state_dir)))
        guard_before = guard_counters(str(self.settings.stack.state_dir))
        sent = self.writer.send(events, pace=pace)
        self.writer.flush()
        elapsed = time.monotonic() - started
        cpu = meter.report()  # while paced: the drain below would add the catch-up's load
        guard_after = guard_counters(str(self.settings.stack.state_dir))
        produce_label = "broker Produce latency (guard -> Tansu -> guard)"
        produces = latency_report(produce_label, PRODUCE_LATENCY_PREFIX, guard_before, guard_after)
        lag = latency_report("broker guard's event-loop lag", LOOP_LAG_PREFIX, guard_before, guard_after)
        ids = [str(r["event_id"]) for _, r in events]
        wait_until(lambda: all(i in self.arrivals.scored for i in ids), 120)
        sent_ms = self.writer.sent_ms
        # Skip the first 5 s: the job's Python bundles and the producer warm up.
        warm = [i for i in ids if sent_ms[i] >= sent_ms[ids[0]] + 5000] or ids
        scored = [self.arrivals.scored[i] - sent_ms[i] for i in warm if i in self.arrivals.scored]
        alerted = [self.arrivals.alerts[i][0] - sent_ms[i] for i in warm if i in self.arrivals.alerts]
        # The split at the scorer (one machine, one clock): into the job, and out to the alert consumer.
        arrived = [i for i in warm if i in self.arrivals.scored]
        inbound = [self.arrivals.scored_at[i] - sent_ms[i] for i in arrived]
        outbound = [
            self.arrivals.alerts[i][0] - self.arrivals.scored_at[i]
            for i in arrived
            if i in self.arrivals.alerts
        ]
        missing = sum(i not in self.arrivals.scored for i in ids)
        print(
            f"latency at {rate:,}/s for {seconds:.0f}s: sent {sent:,} at {sent / elapsed:,.0f}/s; "
            f"produce->alert p50 {percentile(alerted, 0.5):.0f} ms p99 {percentile(alerted, 0.99):.0f} ms "
            f"max {max(alerted, default=0):.0f} ms (n={len(alerted):,}); produce->scored "
            f"(read with a {self.arrivals.scored_fetch_wait_ms} ms fetch wait) p50 "
            f"{percentile(scored, 0.5):.0f} ms p99 {percentile(scored, 0.99):.0f} ms (n={len(scored):,}); "
            f"not scored within 120 s: {missing}"
        )
        print(
            f"  split at the scorer: produce->scorer p50 {percentile(inbound, 0.5):.0f} ms "
            f"p99 {percentile(inbound, 0.99):.0f} ms; "
            f"scorer->alert consumer p50 {percentile(outbound, 0.5):.0f} ms "
            f"p99 {percentile(outbound, 0.99):.0f} ms"
        )
        print(f"  produce->alert p99 by quarter of the phase: {self._quarters(warm)}")
        print(self._stalls(warm))
        print(produces)
        print(lag)
        print(cpu)

    def _quarters(self, ids: list[str]) -> str:
        """p99 over each quarter of the phase, in send order: a rise through the phase is a cost that
        grows with the data the broker holds, not with the rate."""
        sent_ms, alerts = self.writer.sent_ms, self.arrivals.alerts
        size = max(len(ids) // 4, 1)
        parts = []
        for start in range(0, size * 4, size):
            part = [alerts[i][0] - sent_ms[i] for i in ids[start : start + size] if i in alerts]
            parts.append(f"{percentile(part, 0.99):.0f}")
        return " / ".join(parts) + " ms"

    def _stalls(self, ids: list[str]) -> str:
        sent_ms, scored_at, alerts = self.writer.sent_ms, self.arrivals.scored_at, self.arrivals.alerts
        slow = [
            SlowAlert(sent_ms[i], scored_at[i], alerts[i][0])
            for i in ids
            if i in alerts and i in scored_at and alerts[i][0] - sent_ms[i] > self.slow_alert_ms
        ]
        start = sent_ms[ids[0]]
        end = max((alerts[i][0] for i in ids if i in alerts), default=start)
        seen = [c for c in self.checkpoints.checkpoints() if start - LOOKBACK_MS <= c.trigger_ms <= end]
        return stall_report(slow, seen, start, self.slow_alert_ms)

    def throughput(self, count: int) -> None:
        batch = self.batch(count)
        ids = [str(r["event_id"]) for _, r in batch.events]
        started = time.monotonic()
        self.writer.send(batch.events)
        self.writer.flush()
        produce_s = time.monotonic() - started
        meter = CpuMeter(stack_processes(str(self.settings.stack.state_dir)))
        wait_until(lambda: all(i in self.arrivals.scored for i in ids), 600)
        cpu = meter.report()
        times = sorted(self.arrivals.scored[i] for i in ids if i in self.arrivals.scored)
        backlog = f"throughput: backlog of {len(ids):,} events (produced in {produce_s:.1f}s)"
        if len(times) < 100:  # the job is still behind on earlier phases: no steady drain to time
            print(f"{backlog}: {len(times):,} scored within 600 s, too few to time a steady drain")
        else:
            # The middle 80% of arrivals: the steady drain, without start-up and tail.
            lo, hi = times[len(times) // 10], times[len(times) * 9 // 10]
            rate = (len(times) * 0.8) / max((hi - lo) / 1000, 1e-3)
            print(f"{backlog} drained at {rate:,.0f} events/s; scored {len(times):,}")
        print(cpu)


def stack_processes(state_dir: str) -> dict[str, list[psutil.Process]]:
    """The bench stack's processes by role: the children of its supervisord (found by the state
    directory in its command line), their own children, and this process (generator + checker)."""
    roles: dict[str, list[psutil.Process]] = {"bench (generator, checker)": [psutil.Process()]}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "supervisord" not in cmdline or state_dir not in cmdline:
            continue
        for child in proc.children(recursive=True):
            try:
                text = " ".join(child.cmdline())
            except psutil.Error:
                continue
            role = next((name for marker, name in _ROLES if marker in text), None)
            if role is not None:
                roles.setdefault(role, []).append(child)
    return roles


#: Command-line markers of the stack's processes (first match wins: the guard's command line names
#: the Tansu binary, and the local S3 server's names Tansu's bucket).
_ROLES = (
    ("StandaloneSessionClusterEntrypoint", "JobManager"),
    ("TaskManagerRunner", "TaskManager"),
    ("kafka_guard", "broker guard"),
    ("infra.local_s3", "local S3"),
    ("tansu", "broker (Tansu)"),
    ("registry serve", "registry"),
    ("pyflink.fn_execution", "Python workers"),  # process mode (not their bash launcher)
)


@dataclass
class CpuMeter:
    """CPU used by each role of the stack over a phase, in % of one core (2 cores: 200% at most)."""

    roles: dict[str, list[psutil.Process]]
    started: float = field(init=False, default_factory=time.monotonic)
    used: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.used = self._cpu()

    def _cpu(self) -> dict[str, float]:
        used = {}
        for role, procs in self.roles.items():
            total = 0.0
            for proc in procs:
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system
            used[role] = total
        return used

    def report(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-3)
        now = self._cpu()
        shares = {role: 100 * (now[role] - self.used.get(role, 0.0)) / elapsed for role in now}
        ordered = sorted(shares.items(), key=lambda item: -item[1])
        return "  cpu (% of one core): " + ", ".join(f"{role} {share:.0f}" for role, share in ordered)


def rss_report(state_dir: str) -> None:
    roles = stack_processes(state_dir)
    for role in ("JobManager", "TaskManager", "Python workers"):
        procs = roles.get(role, [])
        rss = 0
        for proc in procs:
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        label = f"{role} ({len(procs)} processes)" if role == "Python workers" else role
        print(f"rss: {label:<28} {rss / 2**20:,.0f} MiB")
    print("rss: (thread mode: the Python workers run inside the TaskManager process)")


def guard_counters(state_dir: str) -> dict[str, int]:
    """The broker guard's counters as it last wrote them (every second)."""
    stats = StatePaths(Path(state_dir)).kafka_guard_stats
    return json.loads(stats.read_text()) if stats.is_file() else {}


def latency_report(label: str, prefix: str, before: dict[str, int], after: dict[str, int]) -> str:
    """Percentiles over a phase of one of the guard's latency histograms (the buckets' upper bounds)."""
    buckets = [(float(b), f"{prefix}{b}") for b in LATENCY_BOUNDS_MS] + [(float("inf"), f"{prefix}inf")]
    counts = [(bound, after.get(name, 0) - before.get(name, 0)) for bound, name in buckets]
    total = sum(count for _, count in counts)
    if not total:
        return f"  {label}: nothing measured"

    def upper_bound(q: float) -> str:
        seen = 0
        for bound, count in counts:
            seen += count
            if seen >= q * total:
                return f"<= {bound:g} ms" if bound != float("inf") else f"> {LATENCY_BOUNDS_MS[-1]} ms"
        raise AssertionError("the buckets hold every measurement")

    slow = sum(count for bound, count in counts if bound > 50)
    return (
        f"  {label} (n={total:,}): p50 {upper_bound(0.5)}, p99 {upper_bound(0.99)}, "
        f"p99.9 {upper_bound(0.999)}; over 50 ms: {slow:,}"
    )


def guard_report(state_dir: str) -> None:
    """The broker guard's counters: how many Fetches its long poll held and what released them, and
    what its retention deleted."""
    counters = guard_counters(state_dir)
    wanted = (
        *("fetches", "fetches_held", "released_by_produce", "released_by_timeout", "produces", "unparsed"),
        *("retention_passes", "retention_deleted", "retention_errors"),
        *("tail_fetches_answered", "tail_fetches_empty", "tail_forwarded_not_cached"),
    )
    print("broker guard: " + ", ".join(f"{name} {counters.get(name, 0):,}" for name in wanted))


#: fraud settings the bench takes as options (--bundle-size ...), passed to the job as RIVERBANK_FRAUD__*.
FRAUD_OVERRIDES = (
    "bundle_size",
    "bundle_time_ms",
    "buffer_timeout_ms",
    "fetch_max_wait_ms",
    "sink_linger_ms",
    "sink_batch_bytes",
    "sink_flush_on_checkpoint",
    "offset_commit_interval_ms",
    "python_execution_mode",
    "sink_guarantee",
)


@contextmanager
def fraud_stack(
    overrides: dict[str, str], broker_storage: str, retention_ms: int, fetch_tail_bytes: int | None
) -> Iterator[tuple[Settings, str]]:
    extra_env = {"RIVERBANK_STACK__BROKER_RETENTION_CHECK_S": "5"}
    if fetch_tail_bytes is not None:
        extra_env["RIVERBANK_STACK__BROKER_FETCH_TAIL_BYTES"] = str(fetch_tail_bytes)
    with running_stack(
        "fraud-bench",
        ["s3", "kafka", "registry", "flink-jobmanager", "flink-taskmanager"],
        broker_storage=broker_storage,
        extra_env=extra_env,
    ) as stack:
        suffix = uuid.uuid4().hex[:6]
        stack.env.update(
            {
                "RIVERBANK_FRAUD__CARD_TOPIC": f"cards-{suffix}",
                "RIVERBANK_FRAUD__PAYMENT_TOPIC": f"payments-{suffix}",
                "RIVERBANK_FRAUD__RULES_TOPIC": f"rules-{suffix}",
                "RIVERBANK_FRAUD__SCORED_TOPIC": f"scored-{suffix}",
                "RIVERBANK_FRAUD__ALERTS_TOPIC": f"alerts-{suffix}",
                "RIVERBANK_FRAUD__GROUP_ID": f"fraud-{suffix}",
                **overrides,
            }
        )
        with environ(stack.env):
            settings = load_settings()
            fraud = settings.fraud
            kept = {"retention.ms": str(retention_ms)}
            ensure_topics(
                settings,
                (
                    TopicSpec(fraud.card_topic, "bench", kept),
                    TopicSpec(fraud.payment_topic, "bench", kept),
                    TopicSpec(fraud.rules_topic, "bench", {"cleanup.policy": "compact"}, partitions=1),
                    TopicSpec(fraud.scored_topic, "bench", kept),
                    TopicSpec(fraud.alerts_topic, "bench", kept),
                    TopicSpec("riverbank.dlq", "bench", kept, partitions=1),
                ),
            )
            ensure_fraud_subjects(settings)
            publish_rules(settings, load_rule_file(DEFAULT_RULES_FILE))
            started = time.monotonic()
            job = runner.submit(settings, "fraud")
            checkpoint_wait = (
                "checkpoints unacknowledged records"
                if fraud.sink_guarantee == "at-least-once" and not fraud.sink_flush_on_checkpoint
                else "waits for acknowledgements"
            )
            print(
                f"job {job.job_id} running {time.monotonic() - started:.0f}s after submission; tuning: "
                f"{fraud.python_execution_mode} mode, bundle {fraud.bundle_size} records / "
                f"{fraud.bundle_time_ms} ms, "
                f"buffer timeout {fraud.buffer_timeout_ms} ms, fetch wait {fraud.fetch_max_wait_ms} ms, "
                f"sink {fraud.sink_guarantee}, linger {fraud.sink_linger_ms} ms, "
                f"batch {fraud.sink_batch_bytes:,} B, {checkpoint_wait} at each checkpoint "
                f"({settings.flink.checkpoint_interval_ms} ms); offsets committed to the group at most "
                f"every {fraud.offset_commit_interval_ms} ms; gc freeze {fraud.freeze_gc}",
                flush=True,
            )
            yield settings, job.job_id


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench fraud")
    parser.add_argument("--quick", action="store_true", help="20 s per rate instead of 120 s")
    parser.add_argument("--rates", default="500,2000,5000")
    parser.add_argument("--seconds", type=float, help="seconds per rate (overrides --quick)")
    parser.add_argument("--quality-events", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=60_000)
    parser.add_argument(
        "--broker-storage",
        choices=("s3", "memory"),
        default="s3",
        help="Tansu storage: s3 (the embedded default) or memory (the job without the local S3 server)",
    )
    for name in FRAUD_OVERRIDES:
        parser.add_argument(f"--{name.replace('_', '-')}")
    parser.add_argument(
        "--producer-linger-ms",
        type=int,
        default=ProducerOptions().linger_ms,
        help="the load generator's linger (default: Riverbank's producers'); it counts in the latency, "
        "and fewer, larger batches cost Tansu less",
    )
    parser.add_argument(
        "--scored-fetch-wait-ms",
        type=int,
        default=Arrivals.scored_fetch_wait_ms,
        help="the fetch wait of the checker's transactions.scored consumer (the lake sink's: 500)",
    )
    parser.add_argument(
        "--alerts-fetch-wait-ms",
        type=int,
        help="the fetch wait of the checker's alert consumer (default: the job's); Tansu answers a "
        "fetch when its wait runs out, so an alert consumer's wait counts in the latency",
    )
    parser.add_argument(
        "--parallelism", type=int, help="of the job (process mode runs a Python worker per subtask)"
    )
    parser.add_argument(
        "--fetch-tail-bytes",
        type=int,
        help="the broker guard's fetch tail per partition (default: the settings'; 0: off, Tansu "
        "answers every Fetch)",
    )
    parser.add_argument(
        "--topic-retention-s",
        type=float,
        default=180.0,
        help="retention.ms of the bench's topics; the broker guard enforces it on s3 storage (Tansu "
        "lists every batch a partition holds on each fetch), memory storage keeps everything; -1: keep all",
    )
    args = parser.parse_args()
    seconds = args.seconds or (20.0 if args.quick else 120.0)
    overrides = {
        f"RIVERBANK_FRAUD__{name.upper()}": str(getattr(args, name))
        for name in FRAUD_OVERRIDES
        if getattr(args, name) is not None
    }
    if args.parallelism is not None:
        overrides["RIVERBANK_FLINK__PARALLELISM"] = str(args.parallelism)
    defaults = load_settings().stack
    long_poll = defaults.broker_long_poll_wait_ms if args.broker_storage == "memory" else 0
    retention_ms = int(args.topic_retention_s * 1000) if args.topic_retention_s >= 0 else -1
    enforced = args.broker_storage == "s3" and retention_ms >= 0
    kept = f"{args.topic_retention_s:g} s (retention.ms, enforced by the broker guard)" if enforced else "all"
    tail = defaults.broker_fetch_tail_bytes if args.fetch_tail_bytes is None else args.fetch_tail_bytes
    print(
        f"broker storage: {args.broker_storage} (guard long poll: {long_poll or 'off'}"
        f"{' ms' if long_poll else ''}; fetch tail: {f'{tail:,} bytes a partition' if tail else 'off'}); "
        f"parallelism {args.parallelism or 'from settings'}; "
        f"load generator linger {args.producer_linger_ms} ms; topics keep {kept}"
    )
    stack = fraud_stack(overrides, args.broker_storage, retention_ms, args.fetch_tail_bytes)
    with stack as (settings, job_id):
        arrivals = Arrivals(
            settings,
            scored_fetch_wait_ms=args.scored_fetch_wait_ms,
            alerts_fetch_wait_ms=args.alerts_fetch_wait_ms,
        )
        alerts_wait, scored_wait = arrivals.alerts_wait_ms(), args.scored_fetch_wait_ms
        print(f"checker: alerts read with a {alerts_wait} ms fetch wait, scored records {scored_wait} ms")
        thread = threading.Thread(target=arrivals.run, daemon=True)
        thread.start()
        checkpoints = CheckpointWatcher(settings, job_id)
        watcher = threading.Thread(target=checkpoints.run, daemon=True)
        watcher.start()
        writer = Writer(settings, linger_ms=args.producer_linger_ms)
        start_ms = int(time.time() * 1000) - 3_600_000
        bench = Bench(settings, arrivals, writer, next_start_ms=start_ms, checkpoints=checkpoints)
        try:
            bench.quality(args.quality_events)
            for rate in (int(r) for r in args.rates.split(",")):
                bench.latency(rate, seconds)
            bench.throughput(args.backlog)
            rss_report(str(settings.stack.state_dir))
            guard_report(str(settings.stack.state_dir))
        finally:
            arrivals.stop.set()
            checkpoints.stop.set()
            thread.join(timeout=10)
            bench.writer.close()


if __name__ == "__main__":
    main()
