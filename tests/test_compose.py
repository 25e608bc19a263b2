"""docker-compose.yml, checked without Docker: images, secrets, ports and the Riverbank settings.

The compose file cannot run on machines without a Docker engine, so these tests read it as data
and check what would otherwise only fail on a user's machine: a wrong image, a password in the
file, a published port that disagrees with the endpoint Riverbank is told to use, or a
RIVERBANK_* variable that the settings model rejects.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel

from riverbank.errors import ConfigError
from riverbank.settings import (
    CONFIG_FILE_ENV,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    Settings,
    load_settings,
    parse_host_port,
)

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker-compose.yml"

#: Service name -> image repository (registry host and tag left out).
EXPECTED_IMAGES = {
    "kafka": "apache/kafka",
    "schema-registry": "confluentinc/cp-schema-registry",
    "postgres": "postgres",
    "connect": "debezium/connect",
    "flink-jobmanager": "flink",
    "flink-taskmanager": "flink",
    "minio": "minio/minio",
}

REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$")
# `${NAME...}` interpolations; `$${...}` is an escaped dollar left for the container's shell.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET", re.IGNORECASE)
RIVERBANK_NAME = re.compile(rf"\b{ENV_PREFIX}[A-Z0-9_]+")
TEST_DB_PASSWORD = "test-only-not-a-secret"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), f"{COMPOSE_FILE} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "docker-compose.yml has no services"
    return services


@pytest.fixture(scope="module")
def riverbank_env(compose: dict[str, Any]) -> dict[str, str]:
    block = compose.get("x-riverbank-env")
    assert isinstance(block, dict) and block, "docker-compose.yml has no x-riverbank-env mapping"
    return {str(name): str(value) for name, value in block.items()}


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No riverbank.toml, .env or RIVERBANK_* variable of the machine can reach load_settings()."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv(CONFIG_FILE_ENV, str(tmp_path / "absent.toml"))
    yield monkeypatch


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whether the file uses the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def image_repository(image: str) -> tuple[str, str]:
    """Split ``[registry/]repository[:tag][@digest]`` into (repository, tag)."""
    name = image.split("@", 1)[0]
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts), tag


def published_ports(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host ip, host port) for every port the service publishes."""
    result: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            host_ip = str(entry.get("host_ip", ""))
            host_port, target = int(entry["published"]), int(entry["target"])
        else:
            spec = str(entry).split("/", 1)[0]
            fields = spec.rsplit(":", 2)
            assert len(fields) >= 2, f"port {entry!r} is not published on the host"
            host_ip = fields[0] if len(fields) == 3 else ""
            host_port, target = int(fields[-2]), int(fields[-1])
        result[target] = (host_ip, host_port)
    return result


def host_port(services: dict[str, dict[str, Any]], name: str, container_port: int) -> int:
    ports = published_ports(services[name])
    assert container_port in ports, f"{name} does not publish container port {container_port}"
    host_ip, port = ports[container_port]
    assert host_ip == "127.0.0.1", f"{name}:{container_port} is published on {host_ip or 'all interfaces'}"
    return port


def settings_field(env_name: str) -> tuple[str, ...] | None:
    """The settings path a RIVERBANK_* variable sets, or None when no such setting exists."""
    if not env_name.startswith(ENV_PREFIX):
        return None
    parts = env_name.removeprefix(ENV_PREFIX).lower().split(ENV_NESTED_DELIMITER)
    model: type[BaseModel] | None = Settings
    for part in parts:
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return tuple(parts) if model is None else None  # a whole section is not one setting


def setting_value(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


# --- images ------------------------------------------------------------------------------


def test_expected_services_use_the_real_images(services: dict[str, dict[str, Any]]) -> None:
    missing = set(EXPECTED_IMAGES) - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"
    for name, repository in EXPECTED_IMAGES.items():
        assert "build" not in services[name], f"{name} must use a published image, not a build"
        image = str(services[name].get("image", ""))
        found, tag = image_repository(image)
        assert found == repository, f"{name} uses {image!r}, expected the {repository} image"
        assert tag and tag != "latest", f"{name} must pin a tag, got {image!r}"


def test_image_repository_parsing() -> None:
    assert image_repository("quay.io/debezium/connect:3.6.3.Final") == ("debezium/connect", "3.6.3.Final")
    assert image_repository("docker.io/library/postgres:16") == ("postgres", "16")
    assert image_repository("localhost:5000/minio/minio") == ("minio/minio", "")
    assert image_repository("apache/kafka:4.3.1@sha256:abc") == ("apache/kafka", "4.3.1")


def test_flink_version_is_2x(services: dict[str, dict[str, Any]]) -> None:
    for name in ("flink-jobmanager", "flink-taskmanager"):
        _, tag = image_repository(services[name]["image"])
        assert tag.startswith("2."), f"{name} must run Flink 2.x like the project's PyFlink, got {tag!r}"


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    assert (
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:{listeners[controller].rsplit(':', 1)[1]}"
    )
    for name, value in env.items():
        if name.endswith(("_REPLICATION_FACTOR", "_MIN_ISR")):
            assert value == "1", f"{name}={value} cannot work with one broker"


# --- secrets -----------------------------------------------------------------------------


def test_no_literal_passwords_or_secrets(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    blocks = {name: environment(service) for name, service in services.items()}
    blocks["x-riverbank-env"] = {str(k): str(v) for k, v in compose["x-riverbank-env"].items()}
    checked = 0
    for block, env in blocks.items():
        for name, value in env.items():
            if SECRET_NAME.search(name):
                checked += 1
                assert REQUIRED_VARIABLE.match(value), (
                    f"{block}: {name} must be a required ${{VAR:?message}} interpolation, got {value!r}"
                )
    assert checked >= 3, "expected the postgres, connect and minio passwords to be checked"


def test_secret_interpolations_have_no_default() -> None:
    text = COMPOSE_FILE.read_text()
    secrets = [m for m in INTERPOLATION.finditer(text) if SECRET_NAME.search(m["name"])]
    assert secrets, "no password interpolation found"
    for match in secrets:
        assert match["rest"].startswith(":?"), f"{match[0]} gives a secret a default or lets it be empty"


def test_x_riverbank_env_holds_no_password(riverbank_env: dict[str, str]) -> None:
    assert not [name for name in riverbank_env if SECRET_NAME.search(name)]


def test_postgres_password_is_the_one_riverbank_uses(services: dict[str, dict[str, Any]]) -> None:
    match = REQUIRED_VARIABLE.match(environment(services["postgres"])["POSTGRES_PASSWORD"])
    assert match and match["name"] == "RIVERBANK_SOURCE_DB__PASSWORD"


# --- postgres, connect, flink ------------------------------------------------------------


def test_postgres_enables_logical_decoding(services: dict[str, dict[str, Any]]) -> None:
    args = command_args(services["postgres"])
    assert args[:1] == ["postgres"]
    settings = {
        args[i + 1].split("=", 1)[0]: args[i + 1].split("=", 1)[1] for i, a in enumerate(args) if a == "-c"
    }
    assert settings.get("wal_level") == "logical"
    assert int(settings["max_replication_slots"]) >= 1
    assert int(settings["max_wal_senders"]) >= 1


def test_connect_uses_the_avro_converter_and_the_registry(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["connect"])
    for name in (
        "BOOTSTRAP_SERVERS",
        "GROUP_ID",
        "CONFIG_STORAGE_TOPIC",
        "OFFSET_STORAGE_TOPIC",
        "STATUS_STORAGE_TOPIC",
    ):
        assert env.get(name), f"connect needs {name}"
    assert env["BOOTSTRAP_SERVERS"] in environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    registry_port = urlsplit(environment(services["schema-registry"])["SCHEMA_REGISTRY_LISTENERS"]).port
    for side in ("KEY", "VALUE"):
        assert env[f"{side}_CONVERTER"] == "io.confluent.connect.avro.AvroConverter"
        assert (
            env[f"CONNECT_{side}_CONVERTER_SCHEMA_REGISTRY_URL"] == f"http://schema-registry:{registry_port}"
        )
    # The converter is not in the Debezium image: the entrypoint fetches it before starting.
    assert "kafka-connect-avro-converter" in " ".join(map(str, services["connect"]["entrypoint"]))


def test_connect_mounts_the_connector_folder_read_only(services: dict[str, dict[str, Any]]) -> None:
    mounts = [str(v) for v in services["connect"].get("volumes") or []]
    assert any(m.startswith("./connect:") and m.endswith(":ro") for m in mounts), mounts


def test_flink_taskmanager_finds_the_jobmanager(services: dict[str, dict[str, Any]]) -> None:
    for name in ("flink-jobmanager", "flink-taskmanager"):
        lines = environment(services[name])["FLINK_PROPERTIES"].splitlines()
        properties = {key.strip(): value.strip() for key, _, value in (ln.partition(":") for ln in lines)}
        assert properties["jobmanager.rpc.address"] == "flink-jobmanager"
        assert int(properties["taskmanager.numberOfTaskSlots"]) >= 1
    assert command_args(services["flink-jobmanager"]) == ["jobmanager"]
    assert command_args(services["flink-taskmanager"]) == ["taskmanager"]


# --- health and start order --------------------------------------------------------------


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
        assert check["test"] not in (["NONE"], "NONE"), f"{name} disables its healthcheck"


def test_dependencies_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "schema-registry": {"kafka"},
        "connect": {"kafka", "schema-registry", "postgres"},
        "flink-taskmanager": {"flink-jobmanager"},
        "minio-init": {"minio"},
    }
    for name, needs in expected.items():
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must use conditions"
        for dependency in needs:
            assert depends.get(dependency, {}).get("condition") == "service_healthy", (
                f"{name} must wait for {dependency} to be healthy"
            )
            assert services[dependency].get("healthcheck"), f"{dependency} has no healthcheck to wait for"


def test_up_wait_accepts_every_one_shot_job(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up --wait` fails on a container that exits, unless a service waits for it."""
    adopted = {
        dependency
        for service in services.values()
        if isinstance(service.get("depends_on"), dict)
        for dependency, rule in service["depends_on"].items()
        if rule.get("condition") == "service_completed_successfully"
    }
    for name, service in services.items():
        if str(service.get("restart", "")) == "no":
            assert name in adopted, f"{name} exits, so `up --wait` fails unless a service waits for it"


def test_minio_init_creates_the_warehouse_bucket(
    riverbank_env: dict[str, str], services: dict[str, Any]
) -> None:
    bucket = urlsplit(riverbank_env["RIVERBANK_LAKE__WAREHOUSE"]).netloc
    script = " ".join(command_args(services["minio-init"]))
    assert re.search(rf"mc mb\b.*\b\w+/{re.escape(bucket)}\b", script), script


# --- published ports <-> x-riverbank-env -------------------------------------------------


def test_kafka_bootstrap_matches_the_host_listener(
    services: dict[str, dict[str, Any]], riverbank_env: dict[str, str]
) -> None:
    host, port = parse_host_port(riverbank_env["RIVERBANK_KAFKA__BOOTSTRAP_SERVERS"])
    env = environment(services["kafka"])
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    names = [name for name, address in advertised.items() if address == f"{host}:{port}"]
    assert names, f"no listener is advertised as {host}:{port}: {advertised}"
    container_port = int(listeners[names[0]].rsplit(":", 1)[1])
    assert host == "127.0.0.1"
    assert host_port(services, "kafka", container_port) == port == 9092


def test_registry_url_matches_the_published_port(
    services: dict[str, dict[str, Any]], riverbank_env: dict[str, str]
) -> None:
    url = urlsplit(riverbank_env["RIVERBANK_SCHEMA_REGISTRY__URL"])
    assert url.hostname == "127.0.0.1"
    assert host_port(services, "schema-registry", 8081) == url.port == 8081


def test_source_db_matches_postgres(
    services: dict[str, dict[str, Any]], riverbank_env: dict[str, str]
) -> None:
    env = environment(services["postgres"])
    assert riverbank_env["RIVERBANK_SOURCE_DB__HOST"] == "127.0.0.1"
    assert host_port(services, "postgres", 5432) == int(riverbank_env["RIVERBANK_SOURCE_DB__PORT"]) == 5432
    assert riverbank_env["RIVERBANK_SOURCE_DB__DATABASE"] == env["POSTGRES_DB"] == "bank"
    assert riverbank_env["RIVERBANK_SOURCE_DB__USER"] == env["POSTGRES_USER"] == "riverbank"


def test_flink_rest_url_matches_the_published_port(
    services: dict[str, dict[str, Any]], riverbank_env: dict[str, str]
) -> None:
    url = urlsplit(riverbank_env["RIVERBANK_FLINK__REST_URL"])
    assert url.hostname == "127.0.0.1"
    assert host_port(services, "flink-jobmanager", 8081) == url.port == 8082


def test_s3_endpoint_matches_minio(
    services: dict[str, dict[str, Any]], riverbank_env: dict[str, str]
) -> None:
    url = urlsplit(riverbank_env["RIVERBANK_LAKE__S3_ENDPOINT"])
    assert url.hostname == "127.0.0.1"
    assert host_port(services, "minio", 9000) == url.port == 9000
    assert command_args(services["minio"])[:2] == ["server", "/data"]


def test_every_port_is_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for container_port, (host_ip, _) in published_ports(service).items():
            assert host_ip == "127.0.0.1", f"{name}:{container_port} is reachable from other machines"


# --- RIVERBANK_* names and values against the settings model -----------------------------


def test_every_riverbank_variable_in_the_file_is_a_setting() -> None:
    names = set(RIVERBANK_NAME.findall(COMPOSE_FILE.read_text()))
    assert "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS" in names
    unknown = sorted(name for name in names if settings_field(name) is None)
    assert not unknown, f"not Riverbank settings: {unknown}"


def test_x_riverbank_env_loads_into_settings(
    isolated_env: pytest.MonkeyPatch, riverbank_env: dict[str, str]
) -> None:
    for name, value in riverbank_env.items():
        isolated_env.setenv(name, value)
    isolated_env.setenv("RIVERBANK_SOURCE_DB__PASSWORD", TEST_DB_PASSWORD)

    settings = load_settings()

    assert settings.profile == "local"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.schema_registry.url == "http://127.0.0.1:8081"
    assert settings.source_db.host == "127.0.0.1"
    assert settings.source_db.port == 5432
    assert settings.source_db.database == "bank"
    assert settings.source_db.user == "riverbank"
    assert settings.source_db.password is not None
    assert settings.source_db.password.get_secret_value() == TEST_DB_PASSWORD
    assert settings.flink.rest_url == "http://127.0.0.1:8082"
    assert settings.lake.catalog == "sql"
    assert settings.lake.warehouse == "s3://lake/warehouse"
    assert settings.lake.s3_endpoint == "http://127.0.0.1:9000"
    # And every other entry of the block, whatever it holds, reached its setting unchanged.
    for name, value in riverbank_env.items():
        path = settings_field(name)
        assert path is not None, f"{name} is not a setting"
        assert str(setting_value(settings, path)) == value, (
            f"{name}={value!r} became {setting_value(settings, path)!r}"
        )


def test_a_misspelled_variable_is_rejected(isolated_env: pytest.MonkeyPatch) -> None:
    isolated_env.setenv("RIVERBANK_KAFKA__BOOTSTRAP_SERVER", "127.0.0.1:9092")

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert raised.value.key == "kafka.bootstrap_server"
    assert "RIVERBANK_KAFKA__BOOTSTRAP_SERVER" in raised.value.source
    assert settings_field("RIVERBANK_KAFKA__BOOTSTRAP_SERVER") is None
    assert settings_field("RIVERBANK_KAFKA") is None  # a section, not a setting
    assert settings_field("RIVERBANK_KAFKA__BOOTSTRAP_SERVERS") == ("kafka", "bootstrap_servers")
