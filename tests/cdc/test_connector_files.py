"""The connector files a real Kafka Connect cluster loads, and how the embedded engine reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdc.connector import OFFSET_STORE, engine_config, load_connector, resolve_placeholders
from riverbank.errors import ConfigError
from riverbank.settings import load_settings

CONNECT = Path(__file__).resolve().parents[2] / "connect"
COMPOSE = CONNECT.parent / "docker-compose.yml"
FILES = sorted(CONNECT.glob("*.json"))


def compose_connect() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]["connect"]
    return service


def test_there_are_postgres_and_mysql_connectors() -> None:
    classes = {load_connector(p).connector_class for p in FILES}
    assert classes == {
        "io.debezium.connector.postgresql.PostgresConnector",
        "io.debezium.connector.mysql.MySqlConnector",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_connector_file_is_valid_for_connect(path: Path) -> None:
    data = json.loads(path.read_text())
    assert set(data) == {"name", "config"}  # the body of POST /connectors
    config = data["config"]
    assert all(isinstance(v, str) for v in config.values()), "Connect configs are strings"
    for side in ("key", "value"):
        assert config[f"{side}.converter"] == "io.confluent.connect.avro.AvroConverter"
        assert config[f"{side}.converter.schema.registry.url"] == "http://schema-registry:8081"
    assert config["tombstones.on.delete"] == "true"
    assert config["decimal.handling.mode"] == "precise"  # balances stay exact decimals
    assert int(config["heartbeat.interval.ms"]) > 0
    assert config["signal.data.collection"] in config["table.include.list"].split(",")
    # No secret in the file: every password is a config-provider placeholder.
    for key, value in config.items():
        if "password" in key:
            assert value.startswith("${env:") or value.startswith("${file:"), key


def test_compose_loads_the_postgres_connector_and_can_resolve_its_placeholders() -> None:
    service = compose_connect()
    env = service["environment"]
    loaded = env["CONNECTORS_TO_LOAD"].split()
    assert loaded == ["bankdb-postgres.json"]
    assert all((CONNECT / name).is_file() for name in loaded)
    entrypoint = " ".join(service["entrypoint"])
    assert "/opt/riverbank/connect/$$file" in entrypoint and "http://localhost:8083/connectors" in entrypoint
    config = load_connector(CONNECT / "bankdb-postgres.json").config
    assert config["database.password"] == "${env:RIVERBANK_SOURCE_DB__PASSWORD}"
    assert env["CONNECT_CONFIG_PROVIDERS"] == "env"
    assert env["CONNECT_CONFIG_PROVIDERS_ENV_PARAM_ALLOWLIST_PATTERN"] == "^RIVERBANK_SOURCE_DB__PASSWORD$$"
    # Compose's service names and the values the postgres service is started with.
    assert config["database.hostname"] == "postgres" and config["database.dbname"] == "bank"
    assert config["database.user"] == "riverbank" and config["plugin.name"] == "pgoutput"


def test_engine_config_substitutes_local_endpoints_and_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RIVERBANK_SOURCE_DB__PASSWORD", "s3cret")
    monkeypatch.setenv("RIVERBANK_SOURCE_DB__PORT", "15432")
    monkeypatch.setenv("RIVERBANK_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("RIVERBANK_SCHEMA_REGISTRY__URL", "http://127.0.0.1:18081")
    config = engine_config(load_connector(CONNECT / "bankdb-postgres.json"), load_settings())
    props = config.properties
    assert props["database.hostname"] == "127.0.0.1" and props["database.port"] == "15432"
    assert props["database.password"] == "s3cret"
    assert props["offset.storage"] == OFFSET_STORE and props["bootstrap.servers"] == "127.0.0.1:19092"
    assert props["topic.prefix"] == "bankdb" and props["slot.name"] == "riverbank_bankdb"
    assert not any(k.startswith(("key.converter", "value.converter")) for k in props)
    assert config.value_converter["schema.registry.url"] == "http://127.0.0.1:18081"
    assert config.key_converter["schema.registry.url"] == "http://127.0.0.1:18081"
    assert not any("${" in v for v in props.values())


def test_mysql_schema_history_goes_to_the_local_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RIVERBANK_MYSQL_PASSWORD", "m")
    monkeypatch.setenv("RIVERBANK_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    props = engine_config(load_connector(CONNECT / "inventory-mysql.json"), load_settings()).properties
    assert props["schema.history.internal"] == "io.debezium.storage.kafka.history.KafkaSchemaHistory"
    assert props["schema.history.internal.kafka.bootstrap.servers"] == "127.0.0.1:19092"
    assert props["database.password"] == "m"


def test_placeholders_resolve_from_env_and_files_or_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "db.properties"
    secrets.write_text("# comment\nuser = reader\npassword=p@ss:word\n")
    connector = load_connector(CONNECT / "bankdb-postgres.json")
    assert resolve_placeholders(connector, "k", f"${{file:{secrets}:password}}") == "p@ss:word"
    monkeypatch.setenv("SOME_SECRET", "x")
    assert resolve_placeholders(connector, "k", "a-${env:SOME_SECRET}-b") == "a-x-b"
    with pytest.raises(ConfigError, match=r"database\.password: environment variable NOPE is not set"):
        resolve_placeholders(connector, "database.password", "${env:NOPE}")
    with pytest.raises(ConfigError, match="has no entry 'missing'"):
        resolve_placeholders(connector, "k", f"${{file:{secrets}:missing}}")
    with pytest.raises(ConfigError, match="not supported locally"):
        resolve_placeholders(connector, "k", "${vault:secret/db:password}")


def test_a_broken_connector_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "config": {"connector.class": "a"}}')
    with pytest.raises(ConfigError, match=r"topic\.prefix: is required"):
        load_connector(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_connector(bad)
