"""The fraud job's work on one batch of input records, without Flink.

Decode each record, score its event against its card's or account's state with the rules, and
encode the outputs (every event to ``transactions.scored``, alerts to ``fraud.alerts``, undecodable
records to the DLQ with the reason). ``fraud_job.ScoreBatches`` runs this in Flink, with the states
in keyed state and the rules in broadcast state; ``python -m bench scorer`` runs it alone, to
measure the Python cost per event. No PyFlink import: the benchmark runs in the main environment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from flink_jobs.avro import Encoder, RegistryConfig, decode
from flink_jobs.batches import OutputBatch, records
from fraud.events import Source
from fraud.job import score, state_key, to_event
from fraud.rules import RuleSet
from fraud.state import KeyState
from riverbank.settings import Settings

log = logging.getLogger(__name__)

DLQ_TOPIC = "riverbank.dlq"


@dataclass(frozen=True)
class JobConfig:
    """The part of the settings the workers need (picklable)."""

    registry: RegistryConfig
    sources: tuple[tuple[str, Source], ...]
    scored_topic: str
    alerts_topic: str
    threshold: float
    state_cache_entries: int
    process_mode: bool
    freeze_gc: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> JobConfig:
        fraud = settings.fraud
        return cls(
            registry=RegistryConfig.from_settings(settings.schema_registry),
            sources=((fraud.card_topic, Source.CARD), (fraud.payment_topic, Source.PAYMENT)),
            scored_topic=fraud.scored_topic,
            alerts_topic=fraud.alerts_topic,
            threshold=fraud.alert_threshold,
            state_cache_entries=fraud.state_cache_entries,
            process_mode=fraud.python_execution_mode == "process",
            freeze_gc=fraud.freeze_gc,
        )


def dlq_headers(topic: str, partition: int, offset: int, stage: str, exc: BaseException) -> dict[str, bytes]:
    """Why and where from: the dead-letter record carries the source record unchanged."""
    return {
        "dlq.reason": (str(exc)[:2000] or type(exc).__name__).encode(),
        "dlq.error.class": f"{type(exc).__module__}.{type(exc).__qualname__}".encode(),
        "dlq.source.topic": topic.encode(),
        "dlq.source.partition": str(partition).encode(),
        "dlq.source.offset": str(offset).encode(),
        "dlq.stage": stage.encode(),
        "dlq.payload.format": b"avro-confluent",
        "dlq.time": str(int(time.time() * 1000)).encode(),
    }


class BatchScorer:
    """Scores the records of one input partition's batch; encoders resolve their schema once."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.sources = dict(config.sources)
        registry = config.registry
        self.scored_value = Encoder(registry, f"{config.scored_topic}-value")
        self.scored_key = Encoder(registry, f"{config.scored_topic}-key")
        self.alert_value = Encoder(registry, f"{config.alerts_topic}-value")
        self.alert_key = Encoder(registry, f"{config.alerts_topic}-key")

    def score(
        self,
        topic: str,
        partition: int,
        packed: bytes,
        rules: RuleSet,
        *,
        watermark_ms: int | None,
        state_of: Callable[[str], KeyState],
        now_ms: int,
    ) -> tuple[OutputBatch, dict[str, KeyState]]:
        """The packed outputs of the batch's records (``batches.records`` layout), and the states
        they changed by key (the caller writes those back before it emits the outputs)."""
        source = self.sources[topic]
        config, registry = self.config, self.config.registry
        out = OutputBatch()
        changed: dict[str, KeyState] = {}
        for record in records(packed):
            try:
                event = to_event(source, decode(registry, record.value or b"", plain=True))
            except Exception as exc:  # any bad record goes to the DLQ; the job keeps running
                log.warning("fraud job: %s-%s@%s to DLQ: %s", topic, partition, record.offset, exc)
                headers = dlq_headers(topic, partition, record.offset, "decode", exc)
                out.add(DLQ_TOPIC, record.key, record.value or b"", headers=headers)
                continue
            key = state_key(event)
            state = changed.get(key)
            if state is None:
                state = state_of(key)
            outputs = score(
                event, state, rules, watermark_ms=watermark_ms, threshold=config.threshold, now_ms=now_ms
            )
            changed[key] = state
            out.add(
                config.scored_topic,
                self.scored_key(event.key),
                self.scored_value(outputs.scored),
                timestamp=record.timestamp,
            )
            if outputs.alert is not None:
                out.add(
                    config.alerts_topic,
                    self.alert_key(event.key),
                    self.alert_value(outputs.alert),
                    timestamp=record.timestamp,
                )
        return out, changed
