"""A PyFlink job for the connector tests: Kafka source -> Python map -> Kafka sink, N pipelines.

Runs in the Flink environment (``.venv-flink/bin/python``), in local mode (a mini-cluster inside
this process), so a test can kill -9 the whole job and restore it from a retained checkpoint.
Each output record's value is JSON describing the source row it came from (topic, partition,
offset, timestamp, key, value, headers; bytes as hex), its key and headers are copied.

    python kafka_pipeline.py --checkpoint-dir DIR [--restore-from CHK] --pipeline JSON ...

Pipeline JSON keys: topics, output_topic, starting_offsets ("earliest" | "latest" | "committed" |
{"timestamp_ms": N}), group_id, commit_interval_ms, guarantee, prefix, defer (bool), flush (bool,
at-least-once: wait for acknowledgements at each checkpoint, or keep the unacknowledged records in
it), discovery_ms, isolation_level, delay_ms (per record, in the Python map: a slow job), batches
(bool: the source's batch mode, keyed by partition, a keyed Python function packing its outputs,
then the connector's Unbatch; each value then also names the batch's key).
Settings (the broker) come from RIVERBANK_* variables, as for every Riverbank program.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pyflink.common import Configuration, Row
from pyflink.datastream import KeyedProcessFunction, StreamExecutionEnvironment

from flink_jobs.batches import OutputBatch, records
from flink_jobs.kafka import (
    KafkaSinkOptions,
    KafkaSourceOptions,
    configure_environment,
    kafka_sink,
    kafka_source,
    keyed_by_partition,
    packed_output_type,
    sink_row_type,
    source_batch_type,
    source_row_type,
    unbatched,
    watermark_strategy,
)
from riverbank.settings import load_settings


def describe(row: Row) -> Row:
    """Source row -> sink row whose value records where it came from."""
    headers = row["headers"] or {}
    value = {
        "topic": row["topic"],
        "partition": row["partition"],
        "offset": row["offset"],
        "timestamp": row["timestamp"],
        "key": None if row["key"] is None else bytes(row["key"]).hex(),
        "value": None if row["value"] is None else bytes(row["value"]).hex(),
        "headers": {k: None if v is None else bytes(v).hex() for k, v in headers.items()},
    }
    return Row(None, row["key"], json.dumps(value, sort_keys=True).encode(), headers, None, None)


class DescribeBatch(KeyedProcessFunction):  # type: ignore[misc]
    """A source batch -> the packed output records describing each of its records."""

    def process_element(self, batch: Row, ctx: KeyedProcessFunction.Context) -> Any:
        topic, partition, first_offset, count = batch[0], batch[1], batch[2], batch[3]
        out = OutputBatch()
        for record in records(batch[5]):
            headers = {name: value for name, value in record.headers if value is not None}
            value = {
                "topic": topic,
                "partition": partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "key": None if record.key is None else record.key.hex(),
                "value": None if record.value is None else record.value.hex(),
                "headers": {k: v.hex() for k, v in headers.items()},
                "batch_key": ctx.get_current_key(),
                "batch": [first_offset, count],
            }
            out.add(None, record.key, json.dumps(value, sort_keys=True).encode(), headers=headers,
                    timestamp=record.timestamp)  # fmt: skip
        yield out.to_bytes()


def slowly(delay_ms: float) -> Callable[[Row], Row]:
    def describe_slowly(row: Row) -> Row:
        time.sleep(delay_ms / 1000)
        return describe(row)

    return describe_slowly


def starting(spec: Any) -> Any:
    if isinstance(spec, dict):
        return datetime.fromtimestamp(spec["timestamp_ms"] / 1000, tz=UTC)
    return spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", action="append", required=True, type=json.loads)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--checkpoint-interval-ms", type=int, default=2000)
    parser.add_argument("--restore-from")
    parser.add_argument("--parallelism", type=int, default=1)
    args = parser.parse_args()

    settings = load_settings()
    config = Configuration()
    config.set_string("execution.checkpointing.interval", f"{args.checkpoint_interval_ms}ms")
    config.set_string("execution.checkpointing.dir", args.checkpoint_dir)
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    # Keep every checkpoint, so tests can see when the first one completed.
    config.set_string("execution.checkpointing.num-retained", "1000")
    config.set_string("restart-strategy.type", "none")
    # Rows reach the sink as they come, as in the fraud job: with PyFlink's default bundle (100,000
    # elements or 1 s) they came in bursts at the checkpoint barriers.
    config.set_string("python.fn-execution.bundle.time", "50")
    if args.restore_from:
        config.set_string("execution.state-recovery.path", args.restore_from)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(args.parallelism)
    configure_environment(env, settings)

    for index, spec in enumerate(args.pipeline):
        properties = {}
        if spec.get("isolation_level"):
            properties["isolation.level"] = spec["isolation_level"]
        source = kafka_source(
            settings,
            KafkaSourceOptions(
                topics=tuple(spec["topics"]),
                group_id=spec.get("group_id"),
                starting_offsets=starting(spec.get("starting_offsets", "earliest")),
                partition_discovery_interval=timedelta(milliseconds=spec.get("discovery_ms", 1000)),
                commit_offsets_interval=timedelta(milliseconds=spec.get("commit_interval_ms", 0)),
                emit_batches=spec.get("batches", False),
                properties=properties,
            ),
        )
        sink = kafka_sink(
            settings,
            KafkaSinkOptions(
                default_topic=spec["output_topic"],
                delivery_guarantee=spec.get("guarantee", "at-least-once"),
                transactional_id_prefix=spec.get("prefix"),
                defer_sends=spec.get("defer", True),
                flush_on_checkpoint=spec.get("flush", True),
            ),
        )
        watermarks = watermark_strategy(timedelta(seconds=1), idleness=timedelta(seconds=5))
        if spec.get("batches"):
            batches = env.from_source(source, watermarks, f"kafka-{index}", source_batch_type())
            packed = keyed_by_partition(batches).process(DescribeBatch(), packed_output_type())
            described = unbatched(packed.name(f"describe-{index}"))
        else:
            rows = env.from_source(source, watermarks, f"kafka-{index}", source_row_type())
            mapper = slowly(spec["delay_ms"]) if spec.get("delay_ms") else describe
            described = rows.map(mapper, output_type=sink_row_type()).name(f"describe-{index}")
        described.sink_to(sink).name(f"sink-{index}")
    env.execute("riverbank-connector-test")


if __name__ == "__main__":
    main()
