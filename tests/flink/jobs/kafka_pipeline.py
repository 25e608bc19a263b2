"""A PyFlink job for the connector tests: Kafka source -> Python map -> Kafka sink, N pipelines.

Runs in the Flink environment (``.venv-flink/bin/python``), in local mode (a mini-cluster inside
this process), so a test can kill -9 the whole job and restore it from a retained checkpoint.
Each output record's value is JSON describing the source row it came from (topic, partition,
offset, timestamp, key, value, headers; bytes as hex), its key and headers are copied.

    python kafka_pipeline.py --checkpoint-dir DIR [--restore-from CHK] --pipeline JSON ...

Pipeline JSON keys: topics, output_topic, starting_offsets ("earliest" | "latest" | "committed" |
{"timestamp_ms": N}), group_id, guarantee, prefix, defer (bool), discovery_ms, isolation_level.
Settings (the broker) come from RIVERBANK_* variables, as for every Riverbank program.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pyflink.common import Configuration, Row
from pyflink.datastream import StreamExecutionEnvironment

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
            ),
        )
        rows = env.from_source(
            source,
            watermark_strategy(timedelta(seconds=1), idleness=timedelta(seconds=5)),
            f"kafka-{index}",
            source_row_type(),
        )
        rows.map(describe, output_type=sink_row_type()).name(f"describe-{index}").sink_to(sink).name(
            f"sink-{index}"
        )
    env.execute("riverbank-connector-test")


if __name__ == "__main__":
    main()
