"""supervisord configuration and log reading, without starting anything."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from infra.stack.model import ComponentSpec
from infra.stack.paths import StatePaths
from infra.stack.supervisor import count_unexpected_exits, render_config


def spec(**kwargs: object) -> ComponentSpec:
    base: dict[str, object] = {
        "name": "kafka",
        "address": "127.0.0.1:9092",
        "command": ["/opt/bin/tansu", "broker", "--storage-engine", "s3://tansu/"],
        "probe": lambda: None,
    }
    return ComponentSpec(**{**base, **kwargs})  # type: ignore[arg-type]


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


def test_programs_are_supervised_with_restart_and_group_stop(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    config = parse(render_config(paths, [spec(), spec(name="postgres", user="postgres", stopsignal="INT")]))
    kafka = config["program:kafka"]
    assert kafka["autostart"] == "false"  # `up` starts programs in dependency order
    assert kafka["autorestart"] == "true"
    assert kafka["stopasgroup"] == "true" and kafka["killasgroup"] == "true"
    assert kafka["stdout_logfile"] == str(tmp_path / "logs" / "kafka.log")
    assert config["program:postgres"]["user"] == "postgres"
    assert config["program:postgres"]["stopsignal"] == "INT"
    # started first, stopped last: supervisord shuts down the highest priority number first
    assert int(kafka["priority"]) < int(config["program:postgres"]["priority"])
    assert config["unix_http_server"]["file"] == str(tmp_path / "supervisor.sock")


def test_percent_signs_and_quotes_survive_supervisor_expansion(tmp_path: Path) -> None:
    text = render_config(
        StatePaths(tmp_path), [spec(command=["run", "50%", "a b"], environment={"GREETING": "100%"})]
    )
    program = parse(text)["program:kafka"]
    assert program["command"] == "run 50%% 'a b'"
    assert program["environment"] == 'GREETING="100%%"'


def test_unexpected_exits_are_counted_since_the_last_supervisor_start() -> None:
    log = "\n".join(
        [
            "2026-11-22 INFO supervisord started with pid 10",
            "2026-11-22 WARN exited: kafka (terminated by SIGKILL; not expected)",
            "2026-11-22 INFO supervisord started with pid 20",
            "2026-11-22 INFO spawned: 'kafka' with pid 21",
            "2026-11-22 WARN exited: kafka (terminated by SIGKILL; not expected)",
            "2026-11-22 WARN exited: kafka (exit status 1; not expected)",
            "2026-11-22 INFO exited: postgres (exit status 0; expected)",
            "2026-11-22 WARN exited: flink-taskmanager (terminated by SIGKILL; not expected)",
        ]
    )
    assert count_unexpected_exits(log) == {"kafka": 2, "flink-taskmanager": 1}


def guard_options(state: Path, **stack: object) -> list[str]:
    """The broker guard's own arguments (before Tansu's command) for these stack settings."""
    from infra.stack.components import build_components
    from riverbank.settings import load_settings

    settings = load_settings(stack={"components": ["kafka"], **stack})
    (kafka,) = build_components(settings, StatePaths(state))
    return kafka.command[kafka.command.index("--listen") + 2 : kafka.command.index("--")]


def test_the_broker_guard_long_polls_on_memory_storage_only_when_asked(tmp_path: Path) -> None:
    memory = guard_options(
        tmp_path,
        broker_storage="memory",
        broker_long_poll_wait_ms=20,
        broker_fetch_tail_bytes=0,
        broker_read_committed=False,
    )
    assert memory == ["--long-poll-wait-ms", "20", "--stats-file", str(tmp_path / "kafka-guard.json")]
    assert "--long-poll-wait-ms" not in guard_options(
        tmp_path, broker_storage="s3", broker_long_poll_wait_ms=20
    )
    # Without the fetch tail and the transactions, bytes are forwarded unread.
    unread = guard_options(
        tmp_path, broker_storage="memory", broker_fetch_tail_bytes=0, broker_read_committed=False
    )
    assert unread == []


@pytest.mark.parametrize("storage", ["memory", "s3"])
def test_the_broker_guard_serves_read_committed_by_default_on_both_storages(
    tmp_path: Path, storage: str
) -> None:
    assert "--read-committed" in guard_options(tmp_path, broker_storage=storage)
    assert "--read-committed" not in guard_options(
        tmp_path, broker_storage=storage, broker_read_committed=False
    )


@pytest.mark.parametrize("storage", ["memory", "s3"])
def test_the_broker_guard_answers_fetches_from_its_tail_by_default_on_both_storages(
    tmp_path: Path, storage: str
) -> None:
    options = guard_options(tmp_path, broker_storage=storage)
    at = options.index("--fetch-tail-bytes")
    assert options[at + 1] == str(4 * 1024 * 1024)
    assert options[-3:] == ["--read-committed", "--stats-file", str(tmp_path / "kafka-guard.json")]
    assert "--fetch-tail-bytes" not in guard_options(
        tmp_path, broker_storage=storage, broker_fetch_tail_bytes=0
    )


def test_the_broker_guard_fails_duplicates_and_enforces_retention_on_s3_storage_only(tmp_path: Path) -> None:
    s3 = guard_options(
        tmp_path,
        broker_storage="s3",
        s3_port=9100,
        broker_retention_ms=3_600_000,
        broker_fetch_tail_bytes=0,
        broker_read_committed=False,
    )
    assert s3 == [
        "--fail-unconfirmed-duplicates",
        *("--retention-endpoint", "http://127.0.0.1:9100", "--retention-bucket", "tansu"),
        *("--retention-cluster", "riverbank", "--retention-default-ms", "3600000"),
        *("--retention-check-s", "30.0", "--stats-file", str(tmp_path / "kafka-guard.json")),
    ]
    memory = guard_options(tmp_path, broker_storage="memory")
    assert "--fail-unconfirmed-duplicates" not in memory
    assert "--retention-endpoint" not in memory
