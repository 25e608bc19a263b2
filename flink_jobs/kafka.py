"""Riverbank's Kafka source and sink for PyFlink jobs.

The connector is Java (``flink_jobs/connector/``, built into ``build/jars/`` by
``infra/scripts/build_jars.sh``); this module configures it from :class:`riverbank.settings.Settings`
and per-job options, and wraps the Java objects as PyFlink ``Source``/``Sink``::

    env = StreamExecutionEnvironment.get_execution_environment()
    configure_environment(env, settings)
    rows = env.from_source(
        kafka_source(settings, KafkaSourceOptions(topics=("payments",), group_id="fraud")),
        watermark_strategy(out_of_orderness=timedelta(seconds=5), idleness=timedelta(seconds=30)),
        "payments",
        source_row_type(),
    )
    rows.map(score, output_type=sink_row_type()).sink_to(
        kafka_sink(settings, KafkaSinkOptions(default_topic="fraud.alerts",
                                              delivery_guarantee="exactly-once",
                                              transactional_id_prefix="fraud-alerts"))
    )

Source rows: ``Row(topic, partition, offset, timestamp, key, value, headers)``; sink rows:
``Row(topic, key, value, headers, partition, timestamp)`` where everything but ``value`` may be
None (a None topic means ``default_topic``). For Python operators that must handle thousands of
records per second, ``emit_batches=True`` gives one element per partition and poll
(:func:`source_batch_type`), and :func:`unbatched` expands packed outputs into sink rows
(:mod:`flink_jobs.batches`). Only the functions that touch PyFlink import it, so the option types
and :func:`java_client_properties` work in any environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from riverbank.errors import ConfigError, MissingDependencyError
from riverbank.settings import KafkaSettings, Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
JARS_DIR = REPO_ROOT / "build" / "jars"
CONNECTOR_JAR = JARS_DIR / "riverbank-flink-kafka.jar"
#: Runtime dependencies shipped next to the connector jar (kafka-clients and its codecs).
DEPENDENCY_JAR_PATTERNS = ("kafka-clients-*.jar", "lz4-java-*.jar", "snappy-java-*.jar", "zstd-jni-*.jar")

SOURCE_FIELDS = ("topic", "partition", "offset", "timestamp", "key", "value", "headers")
SINK_FIELDS = ("topic", "key", "value", "headers", "partition", "timestamp")

DeliveryGuarantee = Literal["exactly-once", "at-least-once", "none"]
StartingPoint = Literal["earliest", "latest", "committed"]

_JAVA_SOURCE = "com.riverbank.flink.kafka.source.RiverbankKafkaSource"
_JAVA_SINK = "com.riverbank.flink.kafka.sink.RiverbankKafkaSink"
_JAVA_UNBATCH = "com.riverbank.flink.kafka.Unbatch"
_JAVA_PARTITION_KEY = "com.riverbank.flink.kafka.PartitionKey"


@dataclass(frozen=True)
class KafkaSourceOptions:
    """What one job reads. Exactly one of ``topics`` and ``topic_pattern`` (a full-match regex)."""

    topics: tuple[str, ...] = ()
    topic_pattern: str | None = None
    #: Consumer group the source commits its checkpointed offsets to (lag monitoring) and that
    #: ``starting_offsets="committed"`` reads. The source never joins the group.
    group_id: str | None = None
    #: Where partitions start without state: earliest, latest, committed (the group's offsets),
    #: or a datetime (the first record at or after it). Resolved to offsets before the first
    #: checkpoint; partitions discovered later always start at their earliest offset.
    starting_offsets: StartingPoint | datetime = "earliest"
    #: With "committed": where partitions without a committed offset start.
    committed_fallback: Literal["earliest", "latest"] = "earliest"
    #: How often to look for new partitions and matching topics; None turns discovery off.
    partition_discovery_interval: timedelta | None = timedelta(seconds=30)
    commit_offsets_on_checkpoint: bool = True
    #: The least time between two of those commits (0: every completed checkpoint, as Flink's own
    #: Kafka source). Each commit costs the s3-backed embedded broker a stall of its Produces,
    #: so the fraud job commits less often there (ARCHITECTURE.md, "The offset commits").
    commit_offsets_interval: timedelta = timedelta(0)
    #: One element per partition and poll (:func:`source_batch_type`, read with
    #: :func:`flink_jobs.batches.records`) instead of one per record: for Python operators.
    emit_batches: bool = False
    #: Extra Java consumer settings, e.g. {"isolation.level": "read_committed"}.
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.topics) == (self.topic_pattern is not None):
            raise ConfigError("kafka source", "set either topics or topic_pattern (exactly one)", "arguments")
        if self.starting_offsets == "committed" and not self.group_id:
            raise ConfigError(
                "kafka source.group_id", "is required with starting_offsets='committed'", "arguments"
            )
        if self.commit_offsets_interval < timedelta(0):
            raise ConfigError("kafka source.commit_offsets_interval", "must not be negative", "arguments")

    def starting_offsets_spec(self) -> str:
        """The connector's spelling: earliest | latest | committed:<fallback> | timestamp:<ms>."""
        start = self.starting_offsets
        if isinstance(start, datetime):
            if start.tzinfo is None:
                raise ConfigError(
                    "kafka source.starting_offsets", "datetime must be timezone-aware", "arguments"
                )
            return f"timestamp:{int(start.timestamp() * 1000)}"
        if start == "committed":
            return f"committed:{self.committed_fallback}"
        return start


@dataclass(frozen=True)
class KafkaSinkOptions:
    """Where and how one job writes."""

    #: Topic for rows whose topic field is None.
    default_topic: str | None = None
    delivery_guarantee: DeliveryGuarantee = "at-least-once"
    #: Required for exactly-once: unique per job on the cluster, stable across its restarts.
    transactional_id_prefix: str | None = None
    #: Exactly-once: send rows at the checkpoint barrier instead of as they come. Needed on
    #: brokers that show aborted records to read_committed readers (Tansu 0.6 without the broker
    #: guard); costs memory, and read_uncommitted readers see rows only at the barrier
    #: (read_committed ones see them at the commit either way), but keeps each transaction open
    #: only from the barrier to the commit.
    defer_sends: bool = True
    max_buffered_records: int = 100_000
    #: At-least-once: wait at each checkpoint barrier until every record sent is acknowledged (the
    #: task processes nothing meanwhile). False keeps the unacknowledged records in the checkpoint
    #: instead, sent again on restore: no wait, the same guarantee.
    flush_on_checkpoint: bool = True
    #: Extra Java producer settings, e.g. {"transaction.timeout.ms": "900000"}.
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.delivery_guarantee == "exactly-once" and not self.transactional_id_prefix:
            raise ConfigError(
                "kafka sink.transactional_id_prefix",
                "is required with delivery_guarantee='exactly-once'",
                "arguments",
            )


def java_client_properties(kafka: KafkaSettings) -> dict[str, str]:
    """The Java client settings equivalent to ``kafka.client_config()`` (librdkafka's keys)."""
    rdkafka = kafka.client_config()
    props = {
        "bootstrap.servers": rdkafka["bootstrap.servers"],
        "security.protocol": rdkafka["security.protocol"],
        "client.id": rdkafka["client.id"],
    }
    mechanism = rdkafka.get("sasl.mechanism")
    if mechanism:
        props["sasl.mechanism"] = mechanism
        username, password = rdkafka.get("sasl.username"), rdkafka.get("sasl.password")
        if mechanism == "PLAIN":
            module = "org.apache.kafka.common.security.plain.PlainLoginModule"
        elif mechanism.startswith("SCRAM-"):
            module = "org.apache.kafka.common.security.scram.ScramLoginModule"
        else:
            raise ConfigError(
                "kafka.sasl_mechanism", f"{mechanism} is not supported by the Flink connector", "settings"
            )
        if username is None or password is None:
            raise ConfigError(
                "kafka.sasl_username", f"SASL {mechanism} needs a username and a password", "settings"
            )
        props["sasl.jaas.config"] = (
            f'{module} required username="{_jaas_escape(username)}" password="{_jaas_escape(password)}";'
        )
    ca = rdkafka.get("ssl.ca.location")
    if ca:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = ca
    return props


def _jaas_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def connector_jars(jars_dir: Path = JARS_DIR) -> list[Path]:
    """The connector jar and its dependency jars; raises if the build has not run."""
    jar = jars_dir / CONNECTOR_JAR.name
    if not jar.is_file():
        raise MissingDependencyError(
            f"the Riverbank Flink Kafka connector ({jar})",
            "run infra/scripts/build_jars.sh (part of make setup)",
        )
    jars = [jar]
    for pattern in DEPENDENCY_JAR_PATTERNS:
        found = sorted(jars_dir.glob(pattern))
        if not found:
            raise MissingDependencyError(
                f"{pattern} next to {jar}", "run infra/scripts/build_jars.sh --force"
            )
        jars.append(found[-1])
    return jars


def flink_python_executable(settings: Settings) -> Path:
    """The interpreter of the Flink Python workers (the .venv-flink one unless configured)."""
    return settings.flink.python_executable or REPO_ROOT / ".venv-flink" / "bin" / "python"


# --- PyFlink-dependent part: imports pyflink, so only usable in the Flink environment. -------------


def configure_environment(env: Any, settings: Settings) -> None:
    """Ship the connector jars with the job and point Python workers at the Flink interpreter."""
    env.add_jars(*(jar.as_uri() for jar in connector_jars()))
    env.set_python_executable(str(flink_python_executable(settings)))


def source_row_type() -> Any:
    """PyFlink type of the source rows (matches the Java RowTypeInfo)."""
    from pyflink.common import Types  # type: ignore[import-not-found,unused-ignore]

    raw = Types.PRIMITIVE_ARRAY(Types.BYTE())
    return Types.ROW_NAMED(
        list(SOURCE_FIELDS),
        [Types.STRING(), Types.INT(), Types.LONG(), Types.LONG(), raw, raw, Types.MAP(Types.STRING(), raw)],
    )


def source_batch_type() -> Any:
    """PyFlink type of a batch-mode source's elements (matches ``RecordBatches.BATCH_TYPE``)."""
    from pyflink.common import Types  # type: ignore[import-not-found,unused-ignore]

    from flink_jobs.batches import BATCH_FIELDS

    return Types.ROW_NAMED(
        list(BATCH_FIELDS),
        [
            Types.STRING(),
            Types.INT(),
            Types.LONG(),
            Types.INT(),
            Types.LONG(),
            Types.PRIMITIVE_ARRAY(Types.BYTE()),
        ],
    )


def packed_output_type() -> Any:
    """PyFlink type of packed output records (:class:`flink_jobs.batches.OutputBatch` bytes)."""
    from pyflink.common import Types  # type: ignore[import-not-found,unused-ignore]

    return Types.PRIMITIVE_ARRAY(Types.BYTE())


def unbatched(packed: Any) -> Any:
    """Sink rows from a stream of packed output records (the connector's ``Unbatch``, chained)."""
    from pyflink.datastream import DataStream  # type: ignore[import-not-found,unused-ignore]
    from pyflink.java_gateway import get_gateway  # type: ignore[import-not-found,unused-ignore]

    unbatch = _java_class(get_gateway().jvm, _JAVA_UNBATCH)()
    return DataStream(packed._j_data_stream.flatMap(unbatch)).name("unbatch")


def keyed_by_partition(batches: Any) -> Any:
    """A batch stream keyed by "topic:partition", for keyed Python functions (state per partition).

    The same as ``batches.key_by(lambda b: f"{b[0]}:{b[1]}", Types.STRING())`` but keyed in Java
    (the connector's ``PartitionKey``): PyFlink's ``key_by`` adds a Python operator to the source's
    chain, which costs a Python call per element and contends for the GIL with the real work.
    """
    from pyflink.common import Types  # type: ignore[import-not-found,unused-ignore]
    from pyflink.datastream import DataStream, KeyedStream  # type: ignore[import-not-found,unused-ignore]
    from pyflink.java_gateway import get_gateway  # type: ignore[import-not-found,unused-ignore]

    jvm = get_gateway().jvm
    with_key = batches._j_data_stream.map(_java_class(jvm, _JAVA_PARTITION_KEY)()).name("partition-key")
    # PyFlink's own key_by ends the same way: keyBy on field 0 with its KeyByKeySelector.
    j_keyed = with_key.keyBy(jvm.KeyByKeySelector(), Types.ROW([Types.STRING()]).get_java_type_info())
    return KeyedStream(j_keyed, source_batch_type(), DataStream(batches._j_data_stream))


def sink_row_type() -> Any:
    """PyFlink type of the rows the sink takes; use it as ``output_type`` of the last map."""
    from pyflink.common import Types  # type: ignore[import-not-found,unused-ignore]

    raw = Types.PRIMITIVE_ARRAY(Types.BYTE())
    return Types.ROW_NAMED(
        list(SINK_FIELDS),
        [Types.STRING(), raw, raw, Types.MAP(Types.STRING(), raw), Types.INT(), Types.LONG()],
    )


def _millis(duration: timedelta) -> int:
    """Whole milliseconds, the unit of the connector's and Flink's Java setters."""
    return int(duration.total_seconds() * 1000)


def watermark_strategy(out_of_orderness: timedelta, idleness: timedelta | None = None) -> Any:
    """Bounded out-of-orderness on the Kafka record timestamps, per partition, optionally marking a
    partition idle (no longer holding the watermark back) after ``idleness`` without records."""
    from pyflink.common import Duration, WatermarkStrategy  # type: ignore[import-not-found,unused-ignore]

    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(_millis(out_of_orderness)))
    if idleness is not None:
        strategy = strategy.with_idleness(Duration.of_millis(_millis(idleness)))
    return strategy


def kafka_source(settings: Settings, options: KafkaSourceOptions) -> Any:
    """A PyFlink ``Source`` of source rows; use with ``env.from_source(..., source_row_type())``."""
    from pyflink.datastream.connectors.base import Source  # type: ignore[import-not-found,unused-ignore]
    from pyflink.java_gateway import get_gateway  # type: ignore[import-not-found,unused-ignore]

    jvm = get_gateway().jvm
    builder = _java_class(jvm, _JAVA_SOURCE).builder()
    for key, value in {**java_client_properties(settings.kafka), **options.properties}.items():
        builder.setProperty(key, value)
    for topic in options.topics:
        builder.addTopic(topic)
    if options.topic_pattern is not None:
        builder.setTopicPattern(options.topic_pattern)
    if options.group_id:
        builder.setGroupId(options.group_id)
    builder.setStartingOffsets(options.starting_offsets_spec())
    interval = options.partition_discovery_interval
    builder.setPartitionDiscoveryIntervalMs(0 if interval is None else _millis(interval))
    builder.setCommitOffsetsOnCheckpoint(options.commit_offsets_on_checkpoint)
    builder.setCommitOffsetsIntervalMs(_millis(options.commit_offsets_interval))
    builder.setEmitBatches(options.emit_batches)
    return Source(builder.build())


def kafka_sink(settings: Settings, options: KafkaSinkOptions) -> Any:
    """A PyFlink ``Sink`` of sink rows; use with ``stream.sink_to(...)``."""
    from pyflink.datastream.connectors.base import Sink  # type: ignore[import-not-found,unused-ignore]
    from pyflink.java_gateway import get_gateway  # type: ignore[import-not-found,unused-ignore]

    jvm = get_gateway().jvm
    builder = _java_class(jvm, _JAVA_SINK).builder()
    for key, value in {**java_client_properties(settings.kafka), **options.properties}.items():
        builder.setProperty(key, value)
    if options.default_topic:
        builder.setDefaultTopic(options.default_topic)
    builder.setDeliveryGuarantee(options.delivery_guarantee)
    if options.transactional_id_prefix:
        builder.setTransactionalIdPrefix(options.transactional_id_prefix)
    builder.setDeferSends(options.defer_sends)
    builder.setMaxBufferedRecords(options.max_buffered_records)
    builder.setFlushOnCheckpoint(options.flush_on_checkpoint)
    return Sink(builder.build())


def _java_class(jvm: Any, name: str) -> Any:
    """The Java class, or a MissingDependencyError if the jar was not added to the environment."""
    from py4j.java_gateway import JavaClass  # type: ignore[import-not-found,unused-ignore]

    target = jvm
    for part in name.split("."):
        target = getattr(target, part)
    if not isinstance(target, JavaClass):
        raise MissingDependencyError(
            f"Java class {name}",
            "call configure_environment(env, settings) before building sources and sinks",
        )
    return target
