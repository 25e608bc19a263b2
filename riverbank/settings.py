"""All of Riverbank's configuration: one typed, frozen settings object.

Sources, highest priority first: keyword arguments, environment variables (prefix ``RIVERBANK_``,
``__`` between nesting levels, e.g. ``RIVERBANK_KAFKA__BOOTSTRAP_SERVERS``), a ``.env`` file, the
TOML file named by ``RIVERBANK_CONFIG`` (default ``riverbank.toml``), then defaults.

Two profiles share the same keys. ``local`` (the default) fills every endpoint with the embedded
stack's loopback addresses. ``aws`` leaves the endpoints empty so they must be configured, and
takes credentials from the standard AWS chain (environment, shared config, instance role), never
from these settings. Load through :func:`load_settings`, which turns validation failures into a
one-line :class:`~riverbank.errors.ConfigError` naming the key and the source it came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from riverbank.errors import ConfigError

ENV_PREFIX = "RIVERBANK_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "RIVERBANK_CONFIG"
DEFAULT_CONFIG_FILE = "riverbank.toml"
DOTENV_FILE = ".env"

Profile = Literal["local", "aws"]
Component = Literal[
    "s3", "kafka", "registry", "postgres", "cdc", "flink-jobmanager", "flink-taskmanager", "sink", "refresh"
]
ALL_COMPONENTS: tuple[Component, ...] = (
    "s3",
    "kafka",
    "registry",
    "postgres",
    "cdc",
    "flink-jobmanager",
    "flink-taskmanager",
    "sink",
    "refresh",
)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def parse_host_port(value: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 as ``[::1]:9092``); raises ValueError with the reason."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, got {value!r}")
    host = host.strip("[]")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535 in {value!r}")
    return host, int(port_text)


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected a {' or '.join(schemes)} URL with a host, got {value!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"port must be a number from 1 to 65535 in {value!r}") from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535 in {value!r}")
    return value.rstrip("/")


class KafkaSettings(_Section):
    bootstrap_servers: str | None = Field(
        default=None, description="Comma-separated host:port list; MSK or Confluent Cloud in aws."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    client_id: str = "riverbank"
    #: Used when Riverbank creates its topics (Tansu gives auto-created topics 4 partitions). The
    #: local profile makes it 1 unless set: there the jobs run at parallelism 1, and the embedded
    #: broker's cost per fetch grows with partitions x batches (ARCHITECTURE.md, "Tansu's fetches").
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    #: librdkafka's max.in.flight.requests.per.connection for producers; unset keeps the client
    #: default (5, which keeps order under idempotence).
    max_in_flight: int | None = Field(default=None, ge=1, le=5)

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str | None) -> str | None:
        if value is None:
            return None
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("expected at least one host:port")
        for server in servers:
            parse_host_port(server)
        return ",".join(servers)

    def client_config(self) -> dict[str, str]:
        """The librdkafka (confluent-kafka) configuration for these settings."""
        if self.bootstrap_servers is None:
            raise ConfigError("kafka.bootstrap_servers", "is not set", "defaults")
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = str(self.ssl_ca_location)
        return config

    def producer_config(self) -> dict[str, str]:
        """``client_config()`` plus what only producers take (consumers keep the default: with one
        request in flight their long-polling fetches held back the sink's offset lookups)."""
        config = self.client_config()
        if self.max_in_flight is not None:
            config["max.in.flight.requests.per.connection"] = str(self.max_in_flight)
        return config


class SchemaRegistrySettings(_Section):
    url: str | None = Field(default=None, description="Confluent-compatible schema registry base URL.")
    basic_auth_user_info: SecretStr | None = Field(
        default=None, description="'user:password', as Confluent clients take it."
    )
    ssl_ca_location: Path | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, ("http", "https"))

    def client_config(self) -> dict[str, str]:
        """The configuration dict for confluent-kafka's SchemaRegistryClient."""
        if self.url is None:
            raise ConfigError("schema_registry.url", "is not set", "defaults")
        config = {"url": self.url}
        if self.basic_auth_user_info:
            config["basic.auth.user.info"] = self.basic_auth_user_info.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = str(self.ssl_ca_location)
        return config


class RegistryServerSettings(_Section):
    """Riverbank's own Confluent-compatible registry service (the embedded stack runs it).

    It listens where ``schema_registry.url`` points. Owned by the schema registry work (issue 3).
    """

    #: Durable storage; defaults to <stack.state_dir>/registry/registry.db in the local profile.
    storage_path: Path | None = None
    #: HTTPS: PEM certificate (chain) and private key; when unset the registry speaks plain HTTP.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None
    #: HTTP basic auth, as Confluent clients send it (``basic.auth.user.info``). Users come from this
    #: mapping and/or from ``basic_auth_file`` (one ``user:password`` per line, ``#`` comments).
    #: Auth is on when either yields a user. ``GET /`` (the health probe) stays open.
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)
    basic_auth_file: Path | None = None
    #: Request bodies larger than this are refused with HTTP 413.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: Global compatibility level until ``PUT /config`` sets one (Confluent's default is BACKWARD).
    default_compatibility: Literal[
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ] = "BACKWARD"
    #: Log one line per request (uvicorn access log).
    access_log: bool = False


class SourceDbSettings(_Section):
    """The bank's operational PostgreSQL database that CDC reads."""

    host: str | None = None
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = "bank"
    user: str = "riverbank"
    password: SecretStr | None = None
    #: Used when ``password`` is unset. The local profile points it at the password the embedded
    #: stack generates; it is read when connecting, so settings loaded before `up` still work.
    password_file: Path | None = None
    sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"

    def password_value(self) -> str | None:
        """The password to connect with: the explicit one, else the password file's, if any."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None and self.password_file.is_file():
            return self.password_file.read_text().strip()
        return None


class CdcSettings(_Section):
    """Change data capture (Debezium embedded engine) and scheduled extraction."""

    #: The connector the embedded stack's "cdc" component runs (a Kafka Connect JSON file).
    connector: Path = Path("connect/bankdb-postgres.json")
    #: Compacted topic holding the embedded engine's source offsets (Kafka Connect's offset store).
    offsets_topic: str = "riverbank.cdc.offsets"
    #: How often the engine stores its source offsets (Kafka Connect's default, 60 s). A flush
    #: holds the change stream for a round trip to the broker and the database (measured: up to
    #: 250 ms), so frequent flushes put that stall on the changes behind them; a crash repeats up
    #: to one interval of changes (at least once), a clean stop repeats none.
    offset_flush_interval_ms: int = Field(default=60_000, ge=10)
    #: Extractor configuration (tables, interval, batch size, cursors).
    extract_config: Path = Path("connect/extract.toml")
    #: Where the extractor keeps its cursors; defaults to <stack.state_dir>/extract/cursors.db.
    extract_state_path: Path | None = None
    jvm_max_heap: str = "512m"


class FlinkSettings(_Section):
    rest_url: str | None = Field(default=None, description="JobManager REST endpoint.")
    parallelism: int = Field(default=1, ge=1)
    checkpoint_interval_ms: int = Field(default=2000, ge=100)
    #: State backend of the embedded cluster: "hashmap" keeps state on the TaskManager's heap;
    #: "rocksdb" on local disk, for state larger than the heap. The fraud job writes a card's state
    #: back per event, and RocksDB's flushes and compactions then took a third of a core: its
    #: backlog drained at 7,756 events/s against 11,163 on the heap (ARCHITECTURE.md). A cluster
    #: Riverbank does not start keeps its own configuration.
    state_backend: Literal["rocksdb", "hashmap"] = "hashmap"
    #: RocksDB only: checkpoints upload the files that changed since the last one, not all state.
    incremental_checkpoints: bool = False
    taskmanager_slots: int = Field(default=4, ge=1)
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "1536m"
    #: Interpreter of the Flink Python workers; PyFlink pins pyarrow<17, so it has its own venv.
    python_executable: Path | None = None

    @field_validator("rest_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, ("http", "https"))


class FraudSettings(_Section):
    """The fraud scoring job (flink_jobs/fraud_job.py) and `riverbank fraud rules`."""

    #: at-least-once (the default) sends alerts as they are raised, for the latency budget; after a
    #: failure replayed alerts may repeat, with the same deterministic ids. exactly-once writes in
    #: Kafka transactions committed with each checkpoint: read_committed readers get each alert
    #: once, up to flink.checkpoint_interval_ms later (verified with kill -9 on the embedded broker,
    #: whose guard answers read_committed as Kafka does).
    sink_guarantee: Literal["at-least-once", "exactly-once"] = "at-least-once"
    transactional_id_prefix: str = "riverbank-fraud"
    #: Alerts are raised when the combined (noisy-OR) score reaches this.
    alert_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Card and account states kept decoded in each scoring worker (least recently used dropped
    #: first; a dropped state is read back from Flink state). About 2 KiB for a card with a dozen
    #: remembered events (measured), more for busy ones (at most 512 events are remembered).
    state_cache_entries: int = Field(default=100_000, ge=1)
    #: Bounded out-of-orderness of the event-time watermark (per input partition, on the records'
    #: Kafka timestamps, which producers set to the event time); events behind it are flagged late.
    out_of_orderness_ms: int = Field(default=5000, ge=0)
    #: A source partition without records for this long stops holding the watermark back.
    idleness_ms: int = Field(default=10000, ge=0)
    #: Consumer group the job commits its checkpointed offsets to, and starts from when it has
    #: no state (partitions without a committed offset start at the earliest).
    group_id: str = "riverbank-fraud"
    card_topic: str = "bank.card.transactions"
    payment_topic: str = "bank.payments"
    rules_topic: str = "fraud.rules"
    scored_topic: str = "transactions.scored"
    alerts_topic: str = "fraud.alerts"
    #: Latency tuning (measured in bench/fraud_bench.py): Python bundle size and time, network
    #: buffer timeout, and the source's fetch wait. Tansu answers a Fetch when the wait runs out:
    #: on s3 storage it needs 100 ms (at 50 ms, 2,000 events/s gave p99 14.6 s, against 2.6 s);
    #: on memory storage the local profile makes it 50 ms unless set (p99 145 ms against 183 ms).
    python_execution_mode: Literal["thread", "process"] = "thread"
    bundle_size: int = Field(default=100, ge=1)
    bundle_time_ms: int = Field(default=10, ge=1)
    buffer_timeout_ms: int = Field(default=5, ge=0)
    fetch_max_wait_ms: int = Field(default=100, ge=0)
    #: The sink's producer linger. Fewer, larger batches cost the embedded broker less (Tansu lists
    #: every batch of a partition on each fetch): at 2,000 events/s on memory storage, Tansu's CPU
    #: fell from 36-41% of a core to 23-27% with 10 ms, and from 87-89% to 71-73% with 5 ms when
    #: the guard's long poll was on (ARCHITECTURE.md, "Tansu's fetches"). On s3 storage the local
    #: profile makes it 15 ms unless set: each Produce there takes about 5 ms, one after another on
    #: the sink's connection, and at 5 ms the queue held back scoring (2,000/s produce->alert p99
    #: 149 ms in a short run, against 77 ms at 15 ms; full benches with 256 KiB batches gave 73 and
    #: 107 ms; ARCHITECTURE.md, "The s3 broker's latency tail").
    sink_linger_ms: int = Field(default=5, ge=0)
    #: The sink's producer batch.size (Kafka's default is 16 KiB). Each Produce costs the embedded
    #: broker several object writes on s3 storage, and a backlog filled 16 KiB batches: a 60,000-event
    #: backlog drained at 7,149-7,431/s with 16 KiB against 10,430-12,180/s with 256 KiB (local S3
    #: and Tansu from 45-50% to 18% of a core). Below the linger's worth of records it changes nothing.
    sink_batch_bytes: int = Field(default=262_144, ge=1)
    #: At-least-once sink: wait at each checkpoint until the broker has acknowledged every record
    #: sent, the scoring task stopped meanwhile (8-136 ms a checkpoint on the s3-backed broker at
    #: 2,000 events/s, every 2 s), or (False) keep the unacknowledged records in the checkpoint and
    #: send them again on restore: the same guarantee without the stop (ARCHITECTURE.md, "The
    #: sink's checkpoint wait").
    sink_flush_on_checkpoint: bool = False
    auto_watermark_interval_ms: int = Field(default=200, ge=1)
    #: The least time between two commits of the job's checkpointed offsets to its consumer group
    #: (lag monitoring, and where a job submitted without state starts). 0 commits on every
    #: checkpoint, as Flink's Kafka source does. On s3 storage the local profile makes it 60 s
    #: unless set: each commit stalled the broker's Produces, and at 2,000 events/s with a commit
    #: per 2 s checkpoint the produce->alert p99 was 138 ms, against 83 ms without commits
    #: (ARCHITECTURE.md, "The offset commits"). A job stopped with a savepoint resumes from it;
    #: the group's offset may lag by up to this interval.
    offset_commit_interval_ms: int = Field(default=0, ge=0)
    #: Freeze the scoring worker's long-lived objects out of Python's cyclic garbage collector
    #: after each full collection, so that a pause does not grow with the state cache
    #: (flink_jobs/worker_gc.py).
    freeze_gc: bool = True


class LakeSettings(_Section):
    catalog: Literal["sql", "glue"] = "sql"
    catalog_name: str = "riverbank"
    #: SQLAlchemy URI of the SQL catalog (sqlite by default in the local profile).
    catalog_uri: str | None = None
    #: Warehouse root: file:///... or s3://bucket/prefix.
    warehouse: str | None = None
    s3_endpoint: str | None = Field(default=None, description="S3-compatible endpoint; unset for AWS.")
    #: Glue API endpoint override (moto in tests, VPC endpoints); unset means the region's default.
    glue_endpoint: str | None = None
    bronze_namespace: str = "bronze"
    silver_namespace: str = "silver"
    gold_namespace: str = "gold"
    #: Topics the sink lands in bronze; unset means every topic of schemas/subjects.toml.
    bronze_topics: tuple[str, ...] | None = None
    #: Seconds between the sink's Iceberg commits (one snapshot per table per interval at most).
    commit_interval_s: float = Field(default=2.0, gt=0)
    #: A commit happens early once this many records are buffered.
    commit_max_records: int = Field(default=200_000, ge=1)
    #: Consumer group of the sink; offsets are committed there for lag monitoring only.
    sink_group_id: str = "riverbank-lake-sink"
    #: Table (in the bronze namespace) holding records that could not be decoded or stored.
    quarantine_table: str = "_quarantine"
    #: Snapshot retention in days by table ("bronze.bank_payments") or namespace ("bronze").
    retention_days: dict[str, float] = Field(default_factory=lambda: {"bronze": 7 * 365.25})
    #: Retention of tables that ``retention_days`` does not name.
    default_retention_days: float = Field(default=30.0, gt=0)
    #: Compaction rewrites a partition holding more than one data file smaller than this.
    compaction_small_file_mb: float = Field(default=32.0, gt=0)
    #: Orphan cleanup only deletes unreferenced files older than this (writers in flight).
    orphan_min_age_hours: float = Field(default=24.0, ge=0)

    @field_validator("warehouse")
    @classmethod
    def _warehouse(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("file", "s3", "s3a"):
            raise ValueError(f"expected a file:// or s3:// URL, got {value!r}")
        return value


class MedallionSettings(_Section):
    """Silver and gold tables refreshed from bronze (``riverbank lake refresh``)."""

    #: Key of the keyed hashes and card tokens in silver. Unset in the local profile: a key is
    #: generated once into ``pii_key_file``. Changing it changes every token and hash.
    pii_key: SecretStr | None = None
    #: Read when ``pii_key`` is unset; the local profile points it under the state directory.
    pii_key_file: Path | None = None
    #: Buckets of the current-state tables (customers, accounts, cards): a CDC batch rewrites only
    #: the buckets it touches, so more buckets mean less rewritten per small batch, but more files.
    buckets: int = Field(default=16, ge=1, le=1024)
    #: Seconds between passes of ``riverbank lake refresh --loop``.
    refresh_interval_s: float = Field(default=5.0, gt=0)


class QuerySettings(_Section):
    engine: Literal["duckdb", "athena", "redshift"] = "duckdb"
    dialect: Literal["athena", "redshift"] = "athena"
    athena_workgroup: str = "primary"
    athena_output_location: str | None = None
    #: Athena API endpoint override (VPC endpoints); unset means the region's default.
    athena_endpoint: str | None = None
    redshift_spectrum_schema: str = "spectrum"
    #: The Glue database (lake namespace) that Spectrum's external schema maps to; unset means
    #: ``lake.gold_namespace``. Other namespaces answer to their own name in Redshift SQL too.
    redshift_spectrum_database: str | None = None
    #: IAM role Redshift assumes to read the Glue catalog and S3 (CREATE EXTERNAL SCHEMA ... IAM_ROLE).
    redshift_iam_role: str | None = None


class AwsSettings(_Section):
    """Where to find AWS; credentials always come from the standard AWS chain."""

    region: str | None = None
    #: A named profile of the shared AWS config; unset means the default chain.
    profile: str | None = None


class StackSettings(_Section):
    """The embedded stack run by ``riverbank up``. Client endpoints above decide where it listens."""

    state_dir: Path = Path(".riverbank")
    components: tuple[Component, ...] = ALL_COMPONENTS
    broker_storage: Literal["s3", "memory"] = "s3"
    #: With memory storage, the broker guard can answer Fetch long polls as Kafka does (Tansu waits
    #: out each Fetch's timer): a Fetch is held until a Produce is answered, then forwarded with at
    #: most this wait. 0 (the default) turns it off: measured over 2-minute phases it made Tansu
    #: slower, since every prompt Fetch costs a listing of all the partition's batches
    #: (ARCHITECTURE.md). Not used on s3 storage, where Tansu answers a short wait empty.
    broker_long_poll_wait_ms: int = Field(default=0, ge=0)
    #: On s3 storage the broker guard enforces retention.ms, which Tansu 0.6 ignores (its cost per
    #: Fetch grows with the batches a partition holds): topics without retention.ms keep this long
    #: (Kafka's default, 7 days; -1 keeps everything), checked this often. Memory storage keeps all.
    broker_retention_ms: int = Field(default=604_800_000, ge=-1)
    broker_retention_check_s: float = Field(default=30.0, gt=0)
    #: The broker guard answers Fetches at the head of a partition itself, from the newest batches it
    #: saw acknowledged, as soon as they land (Tansu 0.6 answers a Fetch only when its wait runs out,
    #: listing every batch of the partition): this many bytes kept a partition; 0: off.
    broker_fetch_tail_bytes: int = Field(default=4 * 1024 * 1024, ge=0)
    #: The broker guard follows transactions and answers read_committed Fetches as Kafka does: up
    #: to the last stable offset, with the aborted transactions listed (Tansu 0.6 gets both wrong,
    #: which breaks exactly-once output). Off: Tansu answers read_committed itself.
    broker_read_committed: bool = True
    s3_port: int = Field(default=9000, ge=1, le=65535)
    flink_rpc_port: int = Field(default=6123, ge=1, le=65535)
    flink_blob_port: int = Field(default=6124, ge=1, le=65535)
    #: 0: a free port on each start. A TaskManager restarted on its old port is taken by the
    #: JobManager for the dead one (Pekko keeps the old association), and cannot register.
    flink_taskmanager_port: int = Field(default=0, ge=0, le=65535)
    startup_timeout_s: float = Field(default=90.0, gt=0)

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def source_db_password_file(self) -> Path:
        """Where the embedded PostgreSQL's generated password for source_db.user is kept."""
        return self.state_dir / "secrets" / "source_db_password"


# Embedded-stack endpoints filled in by the local profile for keys left unset.
_LOCAL_DEFAULTS: dict[str, dict[str, Any]] = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9092"},
    "schema_registry": {"url": "http://127.0.0.1:8081"},
    "source_db": {"host": "127.0.0.1"},
    "flink": {"rest_url": "http://127.0.0.1:8082"},
}
#: The fraud job's broker tuning on the embedded stack, by broker storage (measured with
#: `python -m bench fraud`; see FraudSettings' fields). Settings the user gave are kept.
_LOCAL_FRAUD_DEFAULTS: dict[str, dict[str, Any]] = {
    "s3": {"sink_linger_ms": 15, "offset_commit_interval_ms": 60_000},
    "memory": {"fetch_max_wait_ms": 50},
}

# Keys a profile cannot run without, checked after defaults are applied.
_REQUIRED: dict[Profile, tuple[str, ...]] = {
    "local": (),
    "aws": (
        "kafka.bootstrap_servers",
        "schema_registry.url",
        "lake.warehouse",
        "aws.region",
    ),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_file=DOTENV_FILE,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    profile: Profile = "local"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    registry_server: RegistryServerSettings = Field(default_factory=RegistryServerSettings)
    source_db: SourceDbSettings = Field(default_factory=SourceDbSettings)
    cdc: CdcSettings = Field(default_factory=CdcSettings)
    flink: FlinkSettings = Field(default_factory=FlinkSettings)
    fraud: FraudSettings = Field(default_factory=FraudSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    medallion: MedallionSettings = Field(default_factory=MedallionSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    stack: StackSettings = Field(default_factory=StackSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, dotenv_settings, toml)

    def model_post_init(self, context: Any, /) -> None:
        if self.profile != "local":
            return
        # Fill the embedded stack's endpoints for whatever the user left unset. object.__setattr__
        # because the model is frozen; this runs once, inside construction.
        for section, defaults in _LOCAL_DEFAULTS.items():
            current: BaseModel = getattr(self, section)
            unset = {k: v for k, v in defaults.items() if getattr(current, k) is None}
            if unset:
                object.__setattr__(self, section, current.model_copy(update=unset))
        if "topic_partitions" not in self.kafka.model_fields_set:
            object.__setattr__(self, "kafka", self.kafka.model_copy(update={"topic_partitions": 1}))
        storage_defaults = _LOCAL_FRAUD_DEFAULTS[self.stack.broker_storage]
        told = self.fraud.model_fields_set
        if fraud_defaults := {k: v for k, v in storage_defaults.items() if k not in told}:
            object.__setattr__(self, "fraud", self.fraud.model_copy(update=fraud_defaults))
        if self.source_db.password_file is None:
            password_file = self.stack.source_db_password_file
            object.__setattr__(
                self, "source_db", self.source_db.model_copy(update={"password_file": password_file})
            )
        if self.registry_server.storage_path is None:
            storage = self.stack.state_dir / "registry" / "registry.db"
            object.__setattr__(
                self, "registry_server", self.registry_server.model_copy(update={"storage_path": storage})
            )
        if self.cdc.extract_state_path is None:
            cursors = self.stack.state_dir / "extract" / "cursors.db"
            object.__setattr__(self, "cdc", self.cdc.model_copy(update={"extract_state_path": cursors}))
        if self.medallion.pii_key_file is None:
            key_file = self.stack.state_dir / "secrets" / "pii_key"
            object.__setattr__(
                self, "medallion", self.medallion.model_copy(update={"pii_key_file": key_file})
            )
        lake_dir = self.stack.state_dir / "lake"
        lake_updates: dict[str, Any] = {}
        if self.lake.catalog_uri is None:
            lake_updates["catalog_uri"] = f"sqlite:///{lake_dir / 'catalog.db'}"
        if self.lake.warehouse is None:
            lake_updates["warehouse"] = (lake_dir / "warehouse").as_uri()
        if lake_updates:
            object.__setattr__(self, "lake", self.lake.model_copy(update=lake_updates))


def config_file_path() -> Path:
    return Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; any problem becomes one ConfigError naming the key and its source."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc, overrides) from None
    for key in _REQUIRED[settings.profile]:
        section, field = key.split(".")
        if getattr(getattr(settings, section), field) is None:
            raise ConfigError(
                key,
                f"is required with profile {settings.profile!r}",
                f"not set; looked in {_env_name((section, field))}, {DOTENV_FILE}, {config_file_path()}",
            )
    return settings


def _env_name(loc: tuple[str | int, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(p) for p in loc).upper()


def _config_error(exc: ValidationError, overrides: dict[str, Any]) -> ConfigError:
    first = exc.errors()[0]
    loc = tuple(p for p in first["loc"] if isinstance(p, str))
    key = ".".join(loc) or "settings"
    problem = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        problem = "is not a known setting"
    elif "input" in first and not isinstance(first["input"], dict) and str(first["input"]) not in problem:
        shown = "***" if "password" in key or "auth" in key else first["input"]
        problem = f"{problem} (got {shown!r})"
    if len(exc.errors()) > 1:
        problem += f" (+{len(exc.errors()) - 1} more problems)"
    return ConfigError(key, problem, describe_source(loc, overrides))


def describe_source(loc: tuple[str, ...], overrides: dict[str, Any] | None = None) -> str:
    """Which configuration source supplied the value at ``loc``, in the words a user searches for."""
    if overrides and _lookup(overrides, loc) is not None:
        return "arguments"
    env_name = _env_name(loc)
    environ = {k.upper(): k for k in os.environ}
    if env_name in environ:
        return f"environment variable {environ[env_name]}"
    if loc and _env_name(loc[:1]) in environ:
        return f"environment variable {environ[_env_name(loc[:1])]}"
    dotenv = Path(DOTENV_FILE)
    if dotenv.is_file():
        from dotenv import dotenv_values

        names = {k.upper() for k in dotenv_values(dotenv)}
        if env_name in names:
            return f"{dotenv.absolute()} ({env_name})"
    toml_path = config_file_path()
    if toml_path.is_file():
        import tomllib

        try:
            data = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            return f"{toml_path.absolute()} (not valid TOML: {exc})"
        if _lookup(data, loc) is not None:
            table = f"[{'.'.join(loc[:-1])}] " if len(loc) > 1 else ""
            return f"{toml_path.absolute()} {table}{loc[-1]}"
    return "defaults"


def _lookup(data: dict[str, Any], loc: tuple[str, ...]) -> Any:
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
