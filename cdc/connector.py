"""A Kafka Connect connector file (connect/*.json) made runnable in the Debezium embedded engine.

The file is what a real Connect cluster loads unchanged: hosts are the cluster's service names and
secrets are config-provider placeholders (``${env:NAME}``, ``${file:/path:key}``). Locally there is
no Connect worker to resolve them, so this module does: endpoints come from the settings (broker,
registry, and the source database for the bank's PostgreSQL connector), placeholders from the
environment or the named file. A placeholder that cannot be resolved is a ConfigError naming the
key and the file, never a literal ``${...}`` sent to a database.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from infra.stack.paths import REPO_ROOT
from riverbank.errors import ConfigError
from riverbank.settings import Settings

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
MYSQL_CONNECTOR = "io.debezium.connector.mysql.MySqlConnector"
OFFSET_STORE = "org.apache.kafka.connect.storage.KafkaOffsetBackingStore"
_PLACEHOLDER = re.compile(r"\$\{(\w+):([^}]*)\}")
# Keys of a Connect worker or of the Connect framework that the embedded engine ignores or treats
# differently: the converters run in Riverbank's own handler, errors.* is the worker's DLQ policy.
_WORKER_ONLY_PREFIXES = ("key.converter", "value.converter", "header.converter", "errors.")


@dataclass(frozen=True)
class Connector:
    """A connector file: its name, the raw Connect config and where it came from."""

    name: str
    config: dict[str, str]
    path: Path

    @property
    def connector_class(self) -> str:
        return self.config.get("connector.class", "")

    @property
    def topic_prefix(self) -> str:
        return self.config["topic.prefix"]

    def converter_config(self, which: str) -> dict[str, str]:
        """``key.converter.*`` or ``value.converter.*`` without the prefix."""
        prefix = f"{which}.converter."
        return {k.removeprefix(prefix): v for k, v in self.config.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class EngineConfig:
    """What the embedded engine runs: engine properties plus the converters' settings."""

    connector: Connector
    properties: dict[str, str]
    key_converter: dict[str, str] = field(default_factory=dict)
    value_converter: dict[str, str] = field(default_factory=dict)


def resolve_path(path: Path) -> Path:
    """A relative connector path is looked up in the working directory, then in the repository."""
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


def load_connector(path: Path) -> Connector:
    path = resolve_path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("cdc.connector", f"connector file {path} does not exist", str(path)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError("cdc.connector", f"not valid JSON: {exc}", str(path)) from None
    # Both shapes Connect's REST API takes: {"name", "config"} (POST /connectors) or a flat config.
    config = data.get("config", data) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise ConfigError("config", "expected a JSON object of connector properties", str(path))
    name = str(data.get("name") or config.get("name") or path.stem)
    for key in ("connector.class", "topic.prefix"):
        if not config.get(key):
            raise ConfigError(key, "is required in a connector file", str(path))
    return Connector(name=name, config={str(k): str(v) for k, v in config.items()}, path=path)


def engine_config(connector: Connector, settings: Settings) -> EngineConfig:
    """The engine properties for ``connector`` on the endpoints of ``settings``."""
    local = _local_endpoints(connector, settings)
    resolved = {k: resolve_placeholders(connector, k, local.get(k, v)) for k, v in connector.config.items()}
    resolved |= {k: v for k, v in local.items() if k not in resolved}
    properties = {k: v for k, v in resolved.items() if not k.startswith(_WORKER_ONLY_PREFIXES)}
    bootstrap = settings.kafka.bootstrap_servers or ""
    properties |= {
        "name": connector.name,
        "offset.storage": OFFSET_STORE,
        "offset.storage.topic": settings.cdc.offsets_topic,
        "offset.storage.partitions": "1",
        "offset.storage.replication.factor": str(settings.kafka.topic_replication_factor),
        "offset.flush.interval.ms": str(settings.cdc.offset_flush_interval_ms),
        "bootstrap.servers": bootstrap,
        # The embedded engine's internal Kafka clients: Tansu answers a fetch empty when the wait
        # expires before its object read finishes (platform notes), so never below 100 ms.
        "consumer.fetch.max.wait.ms": "100",
    }
    registry = settings.schema_registry.client_config()
    converters = []
    for which in ("key", "value"):
        conv = {
            k: resolve_placeholders(connector, f"{which}.converter.{k}", v)
            for k, v in connector.converter_config(which).items()
        }
        conv["schema.registry.url"] = registry["url"]
        if "basic.auth.user.info" in registry:
            conv["basic.auth.credentials.source"] = "USER_INFO"
            conv["basic.auth.user.info"] = registry["basic.auth.user.info"]
        converters.append(conv)
    return EngineConfig(connector, properties, converters[0], converters[1])


def _local_endpoints(connector: Connector, settings: Settings) -> dict[str, str]:
    local: dict[str, str] = {}
    if "schema.history.internal.kafka.bootstrap.servers" in connector.config:
        local["schema.history.internal.kafka.bootstrap.servers"] = settings.kafka.bootstrap_servers or ""
    if connector.connector_class == POSTGRES_CONNECTOR:
        db = settings.source_db
        password = db.password_value()
        if password is None:
            raise ConfigError(
                "source_db.password", "is not set and no password file exists", str(db.password_file)
            )
        local |= {
            "database.hostname": db.host or "",
            "database.port": str(db.port),
            "database.user": db.user,
            "database.password": password,
            "database.dbname": db.database,
            "database.sslmode": db.sslmode,
        }
    return local


def resolve_placeholders(connector: Connector, key: str, value: str) -> str:
    """Replace ``${env:NAME}`` and ``${file:/path:key}`` as Kafka's config providers would."""

    def replace(match: re.Match[str]) -> str:
        provider, reference = match.group(1), match.group(2)
        if provider == "env":
            if reference not in os.environ:
                raise ConfigError(key, f"environment variable {reference} is not set", str(connector.path))
            return os.environ[reference]
        if provider == "file":
            file_name, sep, entry = reference.rpartition(":")
            if not sep:
                raise ConfigError(
                    key, f"expected ${{file:PATH:KEY}}, got {match.group(0)}", str(connector.path)
                )
            return _properties_entry(Path(file_name), entry, key, connector)
        raise ConfigError(
            key, f"config provider {provider!r} is not supported locally (env, file are)", str(connector.path)
        )

    return _PLACEHOLDER.sub(replace, value)


def _properties_entry(path: Path, entry: str, key: str, connector: Connector) -> str:
    """One entry of a Java properties file (``key=value`` or ``key: value`` lines)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}", str(connector.path)) from None
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:]\s*(.*)$", stripped)
        if match and match.group(1) == entry:
            return match.group(2)
    raise ConfigError(key, f"{path} has no entry {entry!r}", str(connector.path))
