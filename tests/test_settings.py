"""Settings: sources and their priority, profiles, and one-line errors naming key and source."""

from __future__ import annotations

from pathlib import Path

import pytest

from riverbank.errors import ConfigError
from riverbank.settings import load_settings


def test_local_profile_points_every_endpoint_at_the_embedded_stack(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.profile == "local"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.schema_registry.url == "http://127.0.0.1:8081"
    assert settings.source_db.host == "127.0.0.1"
    assert settings.flink.rest_url == "http://127.0.0.1:8082"
    state = tmp_path / ".riverbank"
    assert settings.stack.state_dir == state
    assert settings.lake.catalog_uri == f"sqlite:///{state}/lake/catalog.db"
    assert settings.lake.warehouse == (state / "lake" / "warehouse").as_uri()
    assert settings.registry_server.storage_path == state / "registry" / "registry.db"


def test_environment_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_KAFKA__BOOTSTRAP_SERVERS", "broker-a:9093, broker-b:9093")
    monkeypatch.setenv("RIVERBANK_FLINK__PARALLELISM", "4")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "broker-a:9093,broker-b:9093"
    assert settings.flink.parallelism == 4


def test_environment_beats_toml_which_beats_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "riverbank.toml").write_text('[kafka]\nclient_id = "from-toml"\n[flink]\nparallelism = 2\n')
    monkeypatch.setenv("RIVERBANK_FLINK__PARALLELISM", "3")
    settings = load_settings()
    assert settings.kafka.client_id == "from-toml"
    assert settings.flink.parallelism == 3


def test_config_file_location_comes_from_riverbank_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "conf" / "prod.toml"
    path.parent.mkdir()
    path.write_text('[query]\ndialect = "redshift"\n')
    monkeypatch.setenv("RIVERBANK_CONFIG", str(path))
    assert load_settings().query.dialect == "redshift"


def test_bad_port_names_key_and_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_KAFKA__BOOTSTRAP_SERVERS", "notahost:0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    error = caught.value
    assert error.key == "kafka.bootstrap_servers"
    assert error.source == "environment variable RIVERBANK_KAFKA__BOOTSTRAP_SERVERS"
    assert "notahost:0" in str(error) and "\n" not in str(error)


def test_bad_value_in_toml_names_file_and_table(tmp_path: Path) -> None:
    (tmp_path / "riverbank.toml").write_text("[source_db]\nport = 99999\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.key == "source_db.port"
    assert caught.value.source == f"{tmp_path / 'riverbank.toml'} [source_db] port"


def test_bad_value_in_dotenv_names_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RIVERBANK_FLINK__REST_URL=ftp://nowhere\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.key == "flink.rest_url"
    assert caught.value.source == f"{tmp_path / '.env'} (RIVERBANK_FLINK__REST_URL)"


def test_unknown_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_KAFKA__BOOTSTRAP_SERVER", "x:1")
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap_server: is not a known setting"):
        load_settings()


def test_secrets_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_SOURCE_DB__PASSWORD", "hunter2-secret")
    monkeypatch.setenv("RIVERBANK_SOURCE_DB__PORT", "not-a-port")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    settings_repr = repr(load_settings(source_db={"port": 5432}))
    assert "hunter2" not in settings_repr


def test_aws_profile_requires_its_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_PROFILE", "aws")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.key == "kafka.bootstrap_servers"
    assert "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS" in caught.value.source
    assert "required with profile 'aws'" in str(caught.value)


def test_aws_profile_when_configured_uses_no_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "RIVERBANK_PROFILE": "aws",
        "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS": "b-1.msk.eu-west-1.amazonaws.com:9098",
        "RIVERBANK_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "RIVERBANK_KAFKA__SASL_MECHANISM": "OAUTHBEARER",
        "RIVERBANK_SCHEMA_REGISTRY__URL": "https://registry.example.com",
        "RIVERBANK_LAKE__CATALOG": "glue",
        "RIVERBANK_LAKE__WAREHOUSE": "s3://bank-lake/warehouse",
        "RIVERBANK_QUERY__ENGINE": "athena",
        "RIVERBANK_AWS__REGION": "eu-west-1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.lake.catalog == "glue"
    assert settings.lake.catalog_uri is None  # the local sqlite catalog is not filled in
    assert settings.flink.rest_url is None
    assert settings.kafka.topic_partitions == 4
    assert settings.kafka.client_config() == {
        "bootstrap.servers": "b-1.msk.eu-west-1.amazonaws.com:9098",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
        "client.id": "riverbank",
    }


def test_the_local_profile_creates_one_partition_per_topic_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().kafka.topic_partitions == 1
    monkeypatch.setenv("RIVERBANK_KAFKA__TOPIC_PARTITIONS", "4")
    assert load_settings().kafka.topic_partitions == 4


@pytest.mark.parametrize(
    ("name", "on_s3", "in_memory", "told"),
    [
        ("fetch_max_wait_ms", 100, 50, 200),
        ("sink_linger_ms", 15, 5, 7),
        ("offset_commit_interval_ms", 60_000, 0, 2_000),
    ],
)
def test_the_fraud_jobs_broker_tuning_follows_the_embedded_brokers_storage_unless_told(
    monkeypatch: pytest.MonkeyPatch, name: str, on_s3: int, in_memory: int, told: int
) -> None:
    assert getattr(load_settings().fraud, name) == on_s3  # s3 storage, the embedded default
    monkeypatch.setenv("RIVERBANK_STACK__BROKER_STORAGE", "memory")
    assert getattr(load_settings().fraud, name) == in_memory
    monkeypatch.setenv(f"RIVERBANK_FRAUD__{name.upper()}", str(told))
    assert getattr(load_settings().fraud, name) == told
    monkeypatch.setenv("RIVERBANK_STACK__BROKER_STORAGE", "s3")
    assert getattr(load_settings().fraud, name) == told


def test_client_configs_carry_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("RIVERBANK_KAFKA__SASL_PASSWORD", "pw")
    monkeypatch.setenv("RIVERBANK_SCHEMA_REGISTRY__BASIC_AUTH_USER_INFO", "u:p")
    settings = load_settings()
    assert settings.kafka.client_config()["sasl.password"] == "pw"
    assert settings.schema_registry.client_config()["basic.auth.user.info"] == "u:p"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.kafka.client_id = "x"  # type: ignore[misc]


def test_generated_database_password_is_read_when_connecting_not_when_loading(tmp_path: Path) -> None:
    settings = load_settings()  # before `riverbank up` has generated the password
    assert settings.source_db.password_value() is None
    password_file = settings.stack.source_db_password_file
    password_file.parent.mkdir(parents=True)
    password_file.write_text("generated-by-up\n")
    assert settings.source_db.password_value() == "generated-by-up"


def test_an_explicit_database_password_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_SOURCE_DB__PASSWORD", "from-env")
    settings = load_settings()
    settings.stack.source_db_password_file.parent.mkdir(parents=True)
    settings.stack.source_db_password_file.write_text("generated")
    assert settings.source_db.password_value() == "from-env"


def test_produce_requests_in_flight_are_a_producer_only_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "max.in.flight.requests.per.connection" not in load_settings().kafka.producer_config()
    monkeypatch.setenv("RIVERBANK_KAFKA__MAX_IN_FLIGHT", "1")
    assert load_settings().kafka.producer_config()["max.in.flight.requests.per.connection"] == "1"
    assert "max.in.flight.requests.per.connection" not in load_settings().kafka.client_config()
