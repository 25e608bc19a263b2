"""Seeded card and payment traffic for the fraud job's tests and benchmark.

Generates batches with the producers' pure simulation (same bank across batches, so card and
account histories carry over), writes them to the fraud job's input topics in the Confluent Avro
wire format, and computes what the job must output for them offline with :mod:`fraud.job`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, Producer

from flink_jobs.avro import Encoder, RegistryConfig
from fraud.events import Source, millis
from fraud.job import Outputs, score, state_key, to_event
from fraud.rules import RuleSet
from fraud.state import KeyState
from producers.model import CardTransaction, Payment, Stream
from producers.simulation import Simulation, SimulationConfig, split_rate
from producers.wire import fraud_label_record, record_of
from riverbank.settings import Settings


@dataclass
class Batch:
    #: (source, wire record) in production order.
    events: list[tuple[Source, dict[str, Any]]]
    labels: list[Label]
    end_ms: int


def generate(seed: int, count: int, start_ms: int, *, fraud_rate: float = 0.02, rate: float = 200.0) -> Batch:
    """About ``count`` card transactions and payments (6:1) from ``start_ms`` in event time."""
    streams = [Stream.TRANSACTIONS, Stream.PAYMENTS]
    duration_s = count / rate
    sim = Simulation(
        SimulationConfig(rates=split_rate(streams, rate), start_ms=start_ms, duration_s=duration_s,
                         seed=seed, fraud_rate=fraud_rate, change_rate=0.0)
    )  # fmt: skip
    events: list[tuple[Source, dict[str, Any]]] = []
    for event in sim.events():
        if isinstance(event, CardTransaction):
            events.append((Source.CARD, record_of(event)))
        elif isinstance(event, Payment):
            events.append((Source.PAYMENT, record_of(event)))
    labels = [Label.from_record(fraud_label_record(s)) for s in sim.side if type(s).__name__ == "FraudLabel"]
    return Batch(events, labels, int(sim.config.end_ms))


@dataclass
class Writer:
    """Produces wire records to the fraud job's input topics; remembers when each was sent."""

    settings: Settings
    sent_ms: dict[str, int] = field(default_factory=dict)
    linger_ms: int = 5

    def __post_init__(self) -> None:
        fraud = self.settings.fraud
        registry = RegistryConfig.from_settings(self.settings.schema_registry)
        self.topics = {Source.CARD: fraud.card_topic, Source.PAYMENT: fraud.payment_topic}
        self.values = {s: Encoder(registry, f"{t}-value") for s, t in self.topics.items()}
        self.keys = {s: Encoder(registry, f"{t}-key") for s, t in self.topics.items()}
        # Idempotent: retries keep per-key order, which the offline comparison relies on.
        self.producer = Producer(
            {
                **self.settings.kafka.client_config(),
                "linger.ms": self.linger_ms,
                "acks": "all",
                "enable.idempotence": True,
            }
        )

    def send(
        self, events: Iterable[tuple[Source, dict[str, Any]]], *, pace: Callable[[int], None] | None = None
    ) -> int:
        n = 0
        for source, record in events:
            key = record["card_id"] if source is Source.CARD else record["debtor_account_id"]
            if pace is not None:
                pace(n)
            self.sent_ms[str(record["event_id"])] = time.time_ns() // 1_000_000
            while True:
                try:
                    self.producer.produce(
                        self.topics[source],
                        self.values[source](record),
                        self.keys[source](key),
                        timestamp=millis(record["event_time"]),  # as producers do: the event time
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.producer.poll(0)
            n += 1
        return n

    def flush(self) -> None:
        left = self.producer.flush(180)
        if left:
            raise KafkaException(f"{left} records not acknowledged")

    def close(self) -> None:
        self.producer.flush(10)
        self.producer.close()


class OfflineScorer:
    """The job's logic on the same records: per-key state across batches, rules per batch."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.states: dict[str, KeyState] = {}

    def run(self, events: Iterable[tuple[Source, dict[str, Any]]], rules: RuleSet) -> list[Outputs]:
        out = []
        for source, record in events:
            event = to_event(source, record)
            state = self.states.setdefault(state_key(event), KeyState())
            out.append(score(event, state, rules, watermark_ms=None, threshold=self.threshold, now_ms=0))
        return out


def expected_alerts(outputs: Iterable[Outputs]) -> dict[str, tuple[tuple[str, ...], float, str]]:
    """source_event_id -> (rule ids, score, model version) of every alert."""
    return {
        str(o.alert["source_event_id"]): (
            tuple(o.alert["rule_ids"]),
            o.alert["score"],
            o.alert["model_version"],
        )
        for o in outputs
        if o.alert is not None
    }


@dataclass(frozen=True)
class Label:
    pattern: str
    event_ids: tuple[str, ...]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Label:
        return cls(str(record["pattern"]), tuple(str(e) for e in record["event_ids"]))


@dataclass(frozen=True)
class PatternQuality:
    pattern: str
    labels: int
    fraud_events: int
    detected_labels: int
    detected_events: int
    #: Alerts fired by a rule aimed at this pattern, and how many of those were labelled fraud.
    rule_alerts: int
    rule_true_alerts: int

    @property
    def recall(self) -> float:
        return self.detected_labels / self.labels if self.labels else float("nan")

    @property
    def event_recall(self) -> float:
        return self.detected_events / self.fraud_events if self.fraud_events else float("nan")

    @property
    def precision(self) -> float:
        return self.rule_true_alerts / self.rule_alerts if self.rule_alerts else float("nan")


def quality(labels: list[Label], alerts: dict[str, tuple[str, ...]], rules: RuleSet) -> list[PatternQuality]:
    """Per injected pattern: recall (a fraud counts as found when any of its events alerted), event
    recall, and precision of the rules aimed at it (``parameters.pattern``) against all labels."""
    fraud_events = {e for label in labels for e in label.event_ids}
    rule_pattern = {r.rule_id: r.pattern for r in rules.rules.values()}
    out = []
    for pattern in sorted({label.pattern for label in labels} | {p for p in rule_pattern.values() if p}):
        mine = [label for label in labels if label.pattern == pattern]
        events = [e for label in mine for e in label.event_ids]
        fired = [e for e, ids in alerts.items() if any(rule_pattern.get(i) == pattern for i in ids)]
        out.append(PatternQuality(
            pattern, len(mine), len(events),
            sum(any(e in alerts for e in label.event_ids) for label in mine),
            sum(e in alerts for e in events), len(fired), sum(e in fraud_events for e in fired),
        ))  # fmt: skip
    return out
