"""The embedded Flink cluster's config.yaml as the settings shape it, without starting Flink."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.stack.flink import config_yaml
from infra.stack.paths import StatePaths
from riverbank.errors import ConfigError
from riverbank.settings import load_settings


def cluster_config(tmp_path: Path) -> dict[str, str]:
    text = config_yaml(load_settings(), StatePaths(tmp_path))
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_state_backend_defaults_to_the_heap_with_full_checkpoints(tmp_path: Path) -> None:
    config = cluster_config(tmp_path)
    assert config["state.backend.type"] == "hashmap"
    assert config["execution.checkpointing.incremental"] == "false"
    assert config["execution.checkpointing.dir"] == (tmp_path / "flink" / "checkpoints").as_uri()


def test_state_backend_and_incremental_checkpoints_come_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIVERBANK_FLINK__STATE_BACKEND", "rocksdb")
    monkeypatch.setenv("RIVERBANK_FLINK__INCREMENTAL_CHECKPOINTS", "true")
    config = cluster_config(tmp_path)
    assert config["state.backend.type"] == "rocksdb"
    assert config["execution.checkpointing.incremental"] == "true"


def test_an_unknown_state_backend_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_FLINK__STATE_BACKEND", "memory")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.key == "flink.state_backend"
    assert caught.value.source == "environment variable RIVERBANK_FLINK__STATE_BACKEND"
