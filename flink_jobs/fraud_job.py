"""The fraud scoring job: card transactions and payments in, scored transactions and alerts out.

Wiring only; the work on each batch is :class:`flink_jobs.fraud_scorer.BatchScorer`, whose logic
is :func:`fraud.job.score`. The graph::

    card + payment topics (batch mode: one element per partition and poll; per-partition
      watermarks from the records' Kafka timestamps, which producers set to the event time)
      -> key by topic partition ---+
    fraud.rules (compacted) -------+-> broadcast -> score (Python: decode, score each event with
                                         its card's / account's fraud.state.KeyState kept in keyed
                                         MapState; rules decoded into broadcast state)
      -> packed outputs -> unbatch -> transactions.scored (every event) + fraud.alerts (FraudAlert)
         + riverbank.dlq (undecodable records and rules, reason in headers)   [one Kafka sink]

Only ``score`` runs Python: keying, unbatching and the rules side are Java operators, so no other
Python call competes with it for the worker's interpreter (PyFlink's own ``key_by`` would add one).

Why batches: each element crossing between Java and Python costs tens of microseconds in PyFlink
(measured: 10,000 elements/s through an identity Python operator on the 2-core dev machine), so
per-record elements cannot reach the 10,000 events/s target however fast the scoring is. Keying
by partition keeps each card's events in order (producers key card events by card and payments by
paying account) and lets one element carry many events; per-card state lives in MapState under
the partition, behind a cache of live objects (:mod:`flink_jobs.state_cache`).

Runs in the Flink environment (``.venv-flink``); submit it with ``riverbank jobs submit fraud``.
Everything a Python worker needs (registry endpoint, topics, threshold) is captured from the
settings on the driver and shipped with the functions: workers do not read RIVERBANK_* variables.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from pyflink.common import Configuration, Row, Types  # type: ignore[import-not-found,unused-ignore]
from pyflink.datastream import (  # type: ignore[import-not-found,unused-ignore]
    KeyedBroadcastProcessFunction,
    StreamExecutionEnvironment,
)
from pyflink.datastream.state import (  # type: ignore[import-not-found,unused-ignore]
    MapStateDescriptor,
)

from flink_jobs.avro import decode
from flink_jobs.batches import OutputBatch
from flink_jobs.fraud_scorer import DLQ_TOPIC, BatchScorer, JobConfig, dlq_headers
from flink_jobs.kafka import (
    KafkaSinkOptions,
    KafkaSourceOptions,
    configure_environment,
    kafka_sink,
    kafka_source,
    keyed_by_partition,
    packed_output_type,
    source_batch_type,
    source_row_type,
    unbatched,
    watermark_strategy,
)
from flink_jobs.runner import JOB_NAMES
from flink_jobs.schemas import ensure_fraud_subjects
from flink_jobs.state_cache import StateCache
from flink_jobs.worker_gc import freeze_survivors_of_full_collections
from fraud.job import apply_rule_update, initial_rules
from fraud.rules import Rule, RuleSet
from fraud.state import KeyState
from riverbank.settings import Settings, load_settings

log = logging.getLogger(__name__)

JOB_NAME = JOB_NAMES["fraud"]
#: Broadcast-state key recording that the rules topic delivered something (then the default
#: rule book no longer applies, even if every rule was deleted).
_RULES_SEEN = "\x00rules-topic-seen"
_NO_WATERMARK = -(2**63) + 1

RULES_STATE = MapStateDescriptor("fraud-rules", Types.STRING(), Types.PICKLED_BYTE_ARRAY())


def subtask_index(runtime_context: Any) -> int:
    try:
        return int(runtime_context.get_index_of_this_subtask())
    except AttributeError:
        # PyFlink 2.3's embedded (thread mode) context still calls the pre-2.0 Java method.
        return int(runtime_context._runtime_context.getTaskInfo().getIndexOfThisSubtask())


class ScoreBatches(KeyedBroadcastProcessFunction):  # type: ignore[misc,unused-ignore]
    """Per batch of one input partition: decode, score each event against its card's or account's
    KeyState with the broadcast rules, write the changed states back, emit the packed outputs."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self._rules: RuleSet | None = None

    def open(self, runtime_context: Any) -> None:
        # Every subtask sees every rule record; one of them reports the bad ones.
        self.reports_bad_rules = subtask_index(runtime_context) == 0
        self.key_states = runtime_context.get_map_state(
            MapStateDescriptor("fraud-key-states", Types.STRING(), Types.PICKLED_BYTE_ARRAY())
        )
        self.cache: StateCache[tuple[str, str], KeyState] = StateCache(self.config.state_cache_entries)
        self.scorer = BatchScorer(self.config)
        self._rules = None  # rebuilt from broadcast state (restored on recovery) on first use
        if self.config.freeze_gc:
            freeze_survivors_of_full_collections()

    def _put_all(self, states: dict[str, Any]) -> None:
        if self.config.process_mode:
            # PyFlink 2.3's process-mode MapState.put_all iterates its argument as (key, value)
            # pairs, unlike thread mode's (one JNI call with the whole dict).
            self.key_states.put_all(states.items())
        else:
            self.key_states.put_all(states)

    def _current_rules(self, ctx: Any) -> RuleSet:
        if self._rules is None:
            records = dict(ctx.get_broadcast_state(RULES_STATE).items())
            if _RULES_SEEN not in records:
                self._rules = initial_rules()
            else:
                self._rules = RuleSet.of(Rule.from_record(r) for k, r in records.items() if k != _RULES_SEEN)
        return self._rules

    def _state(self, partition: str, key: str) -> KeyState:
        state = self.cache.get((partition, key))
        if state is None:
            stored = self.key_states.get(key)
            state = KeyState() if stored is None else KeyState.from_dict(stored)
            self.cache.put((partition, key), state)
        return state

    def process_element(self, batch: Row, ctx: Any) -> Any:
        watermark = ctx.timer_service().current_watermark()
        partition_id = ctx.get_current_key()  # "topic:partition", set by kafka.keyed_by_partition
        out, changed = self.scorer.score(
            batch[0],
            batch[1],
            batch[5],
            self._current_rules(ctx),
            watermark_ms=None if watermark <= _NO_WATERMARK else watermark,
            state_of=lambda key: self._state(partition_id, key),
            now_ms=int(time.time() * 1000),
        )
        # Written before the outputs leave: a checkpoint after this element holds these states.
        self._put_all({key: state.to_dict() for key, state in changed.items()})
        if out.count:
            yield out.to_bytes()

    def process_broadcast_element(self, row: Row, ctx: Any) -> Any:
        """One fraud.rules record: a rule version (validated here, so a bad rule never reaches the
        scorer and goes to the DLQ instead) or a tombstone deleting the rule."""
        try:
            rule_id = str(decode(self.config.registry, bytes(row[4])))
            value = row[5]
            record = None if value is None else decode(self.config.registry, bytes(value))
            current = self._current_rules(ctx)
            rules = apply_rule_update(current, rule_id, record)
        except Exception as exc:
            log.warning("fraud job: rule record at offset %s to DLQ: %s", row[2], exc)
            if self.reports_bad_rules:
                out = OutputBatch()
                out.add(
                    DLQ_TOPIC, row[4], row[5] or b"", headers=dlq_headers(row[0], row[1], row[2], "rule", exc)
                )
                yield out.to_bytes()
            return
        self._rules = rules
        broadcast = ctx.get_broadcast_state(RULES_STATE)
        if record is None:
            broadcast.remove(rule_id)
        elif rules.rules.get(rule_id) is not None and rules.rules[rule_id].version == int(record["version"]):
            broadcast.put(rule_id, record)
        broadcast.put(_RULES_SEEN, True)  # Flink map state refuses null values
        log.info("fraud job: rules now %s (%d rules)", rules.version, len(rules.rules))


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
    consumer = {
        "fetch.max.wait.ms": str(fraud.fetch_max_wait_ms),
        # More per partition and fetch than the 1 MiB default: a backlog on few partitions needs
        # fewer fetches, and each costs the embedded broker a listing of the partition's batches
        # (measured on its s3 storage with one partition: drain 1,684 -> 2,814 events/s).
        "max.partition.fetch.bytes": str(8 * 1024 * 1024),
    }

    events_source = kafka_source(
        settings,
        KafkaSourceOptions(
            topics=(fraud.card_topic, fraud.payment_topic),
            group_id=fraud.group_id,
            starting_offsets="committed",
            committed_fallback="earliest",
            commit_offsets_interval=timedelta(milliseconds=fraud.offset_commit_interval_ms),
            emit_batches=True,
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
            # Send as records come (after the linger): latency. Exactly-once defers them to the
            # checkpoint barrier (visible at the commit either way; see KafkaSinkOptions).
            defer_sends=fraud.sink_guarantee == "exactly-once",
            flush_on_checkpoint=fraud.sink_flush_on_checkpoint,
            properties={"linger.ms": str(fraud.sink_linger_ms), "batch.size": str(fraud.sink_batch_bytes)},
        ),
    )

    batches = env.from_source(
        events_source,
        # Per partition, on the Kafka timestamps (the event time: producers set it).
        watermark_strategy(
            timedelta(milliseconds=fraud.out_of_orderness_ms),
            idleness=timedelta(milliseconds=fraud.idleness_ms),
        ),
        "transactions",
        source_batch_type(),
    )
    rules = env.from_source(
        rules_source,
        # No event time on this side: idle at once so it never holds the scorer's watermark back.
        watermark_strategy(timedelta(0), idleness=timedelta(seconds=1)),
        "fraud-rules",
        source_row_type(),
    )
    # The only Python operator: keying, unbatching and the rules side stay in Java.
    scored = (
        keyed_by_partition(batches)
        .connect(rules.broadcast(RULES_STATE))
        .process(ScoreBatches(config), packed_output_type())
        .name("score")
    )
    unbatched(scored).sink_to(sink).name("kafka-sink")


def main() -> None:
    settings = load_settings()
    ensure_fraud_subjects(settings)
    env = StreamExecutionEnvironment.get_execution_environment(job_configuration(settings))
    build(env, settings)
    env.execute(JOB_NAME)


if __name__ == "__main__":
    main()
