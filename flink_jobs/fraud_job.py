"""The fraud scoring job: card transactions and payments in, scored transactions and alerts out.

Wiring only; the logic is :func:`fraud.job.score`. The graph::

    card + payment topics -> decode (Avro) -> event-time watermarks (bounded out-of-orderness)
      -> key by card / debtor account -+
    fraud.rules (compacted) -> decode -+-> broadcast -> score (keyed ValueState = fraud.state.KeyState,
                                                       broadcast state = the rules)
      -> transactions.scored (every event) + fraud.alerts (FraudAlert)   [one Kafka sink]
    undecodable records -> riverbank.dlq (reason in headers)

Runs in the Flink environment (``.venv-flink``); submit it with ``riverbank jobs submit fraud``.
Everything a Python worker needs (registry endpoint, topics, threshold) is captured from the
settings on the driver and shipped with the functions: workers do not read RIVERBANK_* variables.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pyflink.common import Configuration, Duration, Row, Types, WatermarkStrategy  # type: ignore[import-not-found,unused-ignore]
from pyflink.common.watermark_strategy import TimestampAssigner  # type: ignore[import-not-found,unused-ignore]
from pyflink.datastream import (  # type: ignore[import-not-found,unused-ignore]
    KeyedBroadcastProcessFunction,
    OutputTag,
    ProcessFunction,
    StreamExecutionEnvironment,
)
from pyflink.datastream.state import (  # type: ignore[import-not-found,unused-ignore]
    MapStateDescriptor,
    ValueStateDescriptor,
)

from flink_jobs.avro import Encoder, RegistryConfig, decode
from flink_jobs.kafka import (
    KafkaSinkOptions,
    KafkaSourceOptions,
    configure_environment,
    kafka_sink,
    kafka_source,
    sink_row_type,
    source_row_type,
    watermark_strategy,
)
from flink_jobs.runner import JOB_NAMES
from flink_jobs.schemas import ensure_fraud_subjects
from fraud.events import Source
from fraud.job import apply_rule_update, initial_rules, score, state_key, to_event
from fraud.rules import Rule, RuleError, RuleSet
from fraud.state import KeyState
from riverbank.settings import Settings, load_settings

log = logging.getLogger(__name__)

JOB_NAME = JOB_NAMES["fraud"]
DLQ_TOPIC = "riverbank.dlq"
#: Broadcast-state key recording that the rules topic delivered something (then the default
#: rule book no longer applies, even if every rule was deleted).
_RULES_SEEN = "\x00rules-topic-seen"
_NO_WATERMARK = -(2**63) + 1

RULES_STATE = MapStateDescriptor("fraud-rules", Types.STRING(), Types.PICKLED_BYTE_ARRAY())
DLQ = OutputTag("dlq", sink_row_type())


@dataclass(frozen=True)
class JobConfig:
    """The part of the settings the workers need (picklable)."""

    registry: RegistryConfig
    sources: tuple[tuple[str, Source], ...]
    scored_topic: str
    alerts_topic: str
    threshold: float

    @classmethod
    def from_settings(cls, settings: Settings) -> JobConfig:
        fraud = settings.fraud
        return cls(
            registry=RegistryConfig.from_settings(settings.schema_registry),
            sources=((fraud.card_topic, Source.CARD), (fraud.payment_topic, Source.PAYMENT)),
            scored_topic=fraud.scored_topic,
            alerts_topic=fraud.alerts_topic,
            threshold=fraud.alert_threshold,
        )


def dlq_row(row: Row, stage: str, exc: BaseException) -> Row:
    """The source record, unchanged, for the dead-letter topic; the reason goes in headers."""
    headers = {
        "dlq.reason": (str(exc)[:2000] or type(exc).__name__).encode(),
        "dlq.error.class": f"{type(exc).__module__}.{type(exc).__qualname__}".encode(),
        "dlq.source.topic": str(row["topic"]).encode(),
        "dlq.source.partition": str(row["partition"]).encode(),
        "dlq.source.offset": str(row["offset"]).encode(),
        "dlq.stage": stage.encode(),
        "dlq.payload.format": b"avro-confluent",
        "dlq.time": str(int(time.time() * 1000)).encode(),
    }
    return Row(DLQ_TOPIC, row["key"], row["value"] or b"", headers, None, None)


class DecodeEvents(ProcessFunction):  # type: ignore[misc,unused-ignore]
    """Source row -> (state key, event time, ScoredEvent); malformed records to the DLQ."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.sources = dict(config.sources)

    def process_element(self, row: Row, ctx: ProcessFunction.Context) -> Any:
        try:
            source = self.sources[row["topic"]]
            event = to_event(source, decode(self.config.registry, bytes(row["value"])))
        except Exception as exc:  # any bad record goes to the DLQ; the job keeps running
            log.warning("fraud job: %s-%s@%s to DLQ: %s", row["topic"], row["partition"], row["offset"], exc)
            yield DLQ, dlq_row(row, "decode", exc)
            return
        yield state_key(event), event.event_time_ms, event


class EventTime(TimestampAssigner):  # type: ignore[misc,unused-ignore]
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[1])


class DecodeRules(ProcessFunction):  # type: ignore[misc,unused-ignore]
    """fraud.rules row -> (rule id, rule record or None for a tombstone)."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config

    def process_element(self, row: Row, ctx: ProcessFunction.Context) -> Any:
        try:
            rule_id = decode(self.config.registry, bytes(row["key"]))
            value = row["value"]
            record = None if value is None else decode(self.config.registry, bytes(value))
            if record is not None:
                Rule.from_record(record)  # validated here so a bad rule never reaches the scorer
        except Exception as exc:
            log.warning("fraud job: rule record at offset %s to DLQ: %s", row["offset"], exc)
            yield DLQ, dlq_row(row, "rule", exc)
            return
        yield str(rule_id), record


class ScoreEvents(KeyedBroadcastProcessFunction):  # type: ignore[misc,unused-ignore]
    """Per key: read its KeyState, score with the broadcast rules, write the state back."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self._rules: RuleSet | None = None

    def open(self, runtime_context: Any) -> None:
        self.key_state = runtime_context.get_state(
            ValueStateDescriptor("fraud-key-state", Types.PICKLED_BYTE_ARRAY())
        )
        registry = self.config.registry
        self.scored_value = Encoder(registry, f"{self.config.scored_topic}-value")
        self.scored_key = Encoder(registry, f"{self.config.scored_topic}-key")
        self.alert_value = Encoder(registry, f"{self.config.alerts_topic}-value")
        self.alert_key = Encoder(registry, f"{self.config.alerts_topic}-key")
        self._rules = None  # rebuilt from broadcast state (restored on recovery) on first use

    def _current_rules(self, broadcast: Any) -> RuleSet:
        if self._rules is None:
            records = dict(broadcast.items())
            if _RULES_SEEN not in records:
                self._rules = initial_rules()
            else:
                self._rules = RuleSet.of(Rule.from_record(r) for k, r in records.items() if k != _RULES_SEEN)
        return self._rules

    def process_element(self, value: Any, ctx: Any) -> Any:
        _, _, event = value
        rules = self._current_rules(ctx.get_broadcast_state(RULES_STATE))
        stored = self.key_state.value()
        state = KeyState() if stored is None else KeyState.from_dict(stored)
        watermark = ctx.timer_service().current_watermark()
        outputs = score(
            event,
            state,
            rules,
            watermark_ms=None if watermark <= _NO_WATERMARK else watermark,
            threshold=self.config.threshold,
            now_ms=int(time.time() * 1000),
        )
        self.key_state.update(state.to_dict())
        yield Row(
            self.config.scored_topic,
            self.scored_key(event.key),
            self.scored_value(outputs.scored),
            None,
            None,
            None,
        )
        if outputs.alert is not None:
            yield Row(
                self.config.alerts_topic,
                self.alert_key(event.key),
                self.alert_value(outputs.alert),
                None,
                None,
                None,
            )

    def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
        rule_id, record = value
        broadcast = ctx.get_broadcast_state(RULES_STATE)
        current = self._current_rules(broadcast)
        try:
            self._rules = apply_rule_update(current, rule_id, record)
        except RuleError:
            log.warning("fraud job: ignoring invalid rule %s: %s", rule_id, traceback.format_exc(limit=1))
            return
        if record is None:
            broadcast.remove(rule_id)
        elif self._rules.rules.get(rule_id) is not None and self._rules.rules[rule_id].version == int(
            record["version"]
        ):
            broadcast.put(rule_id, record)
        broadcast.put(_RULES_SEEN, True)  # Flink map state refuses null values
        log.info("fraud job: rules now %s (%d rules)", self._rules.version, len(self._rules.rules))
        return
        yield  # a generator, as PyFlink expects


def job_configuration(settings: Settings) -> Configuration:
    """Checkpointing from settings.flink, Python execution and latency tuning from settings.fraud."""
    fraud, flink = settings.fraud, settings.flink
    config = Configuration()
    config.set_string("execution.checkpointing.interval", f"{flink.checkpoint_interval_ms}ms")
    config.set_string("execution.checkpointing.mode", "EXACTLY_ONCE")
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    config.set_string("python.execution-mode", fraud.python_execution_mode)
    config.set_string("python.fn-execution.bundle.size", str(fraud.bundle_size))
    config.set_string("python.fn-execution.bundle.time", str(fraud.bundle_time_ms))
    config.set_string("execution.buffer-timeout", f"{fraud.buffer_timeout_ms}ms")
    config.set_string("pipeline.auto-watermark-interval", f"{fraud.auto_watermark_interval_ms}ms")
    return config


def build(env: StreamExecutionEnvironment, settings: Settings) -> None:
    """Add the fraud job's graph to ``env``."""
    fraud = settings.fraud
    config = JobConfig.from_settings(settings)
    configure_environment(env, settings)
    consumer = {"fetch.max.wait.ms": str(fraud.fetch_max_wait_ms)}

    events_source = kafka_source(
        settings,
        KafkaSourceOptions(
            topics=(fraud.card_topic, fraud.payment_topic),
            group_id=fraud.group_id,
            starting_offsets="committed",
            committed_fallback="earliest",
            properties=consumer,
        ),
    )
    rules_source = kafka_source(
        settings,
        KafkaSourceOptions(
            topics=(fraud.rules_topic,),
            starting_offsets="earliest",
            commit_offsets_on_checkpoint=False,
            properties=consumer,
        ),
    )
    sink = kafka_sink(
        settings,
        KafkaSinkOptions(
            delivery_guarantee=fraud.sink_guarantee,
            transactional_id_prefix=fraud.transactional_id_prefix,
            # Send as records come: latency. Exactly-once on Tansu needs deferred sends instead.
            defer_sends=fraud.sink_guarantee == "exactly-once",
            properties={"linger.ms": "0"},
        ),
    )
    dlq_sink = kafka_sink(settings, KafkaSinkOptions(default_topic=DLQ_TOPIC))

    rows = env.from_source(
        events_source, WatermarkStrategy.no_watermarks(), "transactions", source_row_type()
    )
    events = rows.process(DecodeEvents(config), Types.PICKLED_BYTE_ARRAY()).name("decode-events")
    # Tuple typed only after decoding; the timestamp assigner reads field 1 (event time).
    timed = events.assign_timestamps_and_watermarks(
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(fraud.out_of_orderness_ms))
        .with_idleness(Duration.of_millis(fraud.idleness_ms))
        .with_timestamp_assigner(EventTime())
    )
    rule_rows = env.from_source(
        rules_source,
        # No event time on this side: idle at once so it never holds the scorer's watermark back.
        watermark_strategy(timedelta(0), idleness=timedelta(seconds=1)),
        "fraud-rules",
        source_row_type(),
    )
    rules = rule_rows.process(DecodeRules(config), Types.PICKLED_BYTE_ARRAY()).name("decode-rules")
    scored = (
        timed.key_by(lambda value: value[0], key_type=Types.STRING())
        .connect(rules.broadcast(RULES_STATE))
        .process(ScoreEvents(config), sink_row_type())
        .name("score")
    )
    scored.sink_to(sink).name("kafka-sink")
    events.get_side_output(DLQ).union(rules.get_side_output(DLQ)).sink_to(dlq_sink).name("dlq-sink")


def main() -> None:
    settings = load_settings()
    ensure_fraud_subjects(settings)
    env = StreamExecutionEnvironment.get_execution_environment(job_configuration(settings))
    build(env, settings)
    env.execute(JOB_NAME)


if __name__ == "__main__":
    main()
