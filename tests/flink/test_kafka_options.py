"""The Python side of the connector without Flink: options, Java client settings, jar lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flink_jobs.kafka import KafkaSinkOptions, KafkaSourceOptions, connector_jars, java_client_properties
from riverbank.errors import ConfigError, MissingDependencyError
from riverbank.settings import load_settings


def test_starting_offsets_spell_the_connector_spec() -> None:
    assert KafkaSourceOptions(topics=("t",)).starting_offsets_spec() == "earliest"
    assert KafkaSourceOptions(topics=("t",), starting_offsets="latest").starting_offsets_spec() == "latest"
    committed = KafkaSourceOptions(
        topics=("t",), group_id="g", starting_offsets="committed", committed_fallback="latest"
    )
    assert committed.starting_offsets_spec() == "committed:latest"
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert KafkaSourceOptions(topics=("t",), starting_offsets=at).starting_offsets_spec() == (
        f"timestamp:{int(at.timestamp() * 1000)}"
    )


def test_source_and_sink_options_refuse_incomplete_settings() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        KafkaSourceOptions()
    with pytest.raises(ConfigError, match="exactly one"):
        KafkaSourceOptions(topics=("t",), topic_pattern="t.*")
    with pytest.raises(ConfigError, match="group_id"):
        KafkaSourceOptions(topics=("t",), starting_offsets="committed")
    with pytest.raises(ConfigError, match="commit_offsets_interval"):
        KafkaSourceOptions(topics=("t",), commit_offsets_interval=timedelta(seconds=-1))
    with pytest.raises(ConfigError, match="timezone"):
        KafkaSourceOptions(topics=("t",), starting_offsets=datetime(2026, 1, 1)).starting_offsets_spec()
    with pytest.raises(ConfigError, match="transactional_id_prefix"):
        KafkaSinkOptions(default_topic="out", delivery_guarantee="exactly-once")


def test_java_client_properties_translate_librdkafka_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    settings = load_settings(
        kafka={
            "bootstrap_servers": "b1:9092,b2:9092",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "svc",
            "sasl_password": 'p"w',
            "ssl_ca_location": str(ca),
        }
    )
    props = java_client_properties(settings.kafka)
    assert props["bootstrap.servers"] == "b1:9092,b2:9092"
    assert props["security.protocol"] == "SASL_SSL"
    assert props["sasl.mechanism"] == "SCRAM-SHA-512"
    assert props["sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="svc" password="p\\"w";'
    )
    assert props["ssl.truststore.type"] == "PEM"
    assert props["ssl.truststore.location"] == str(ca)
    plain = java_client_properties(load_settings().kafka)
    assert set(plain) == {"bootstrap.servers", "security.protocol", "client.id"}


def test_missing_jars_say_how_to_build_them(tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyError, match=r"build_jars\.sh"):
        connector_jars(tmp_path)
