"""The CLI boundary: errors are one line on stderr with an exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys


def riverbank(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riverbank", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_bootstrap_servers_is_one_clear_line_and_exit_1() -> None:
    result = riverbank("status", RIVERBANK_KAFKA__BOOTSTRAP_SERVERS="notahost:0")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "kafka.bootstrap_servers" in lines[0]
    assert "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS" in lines[0]
    assert "Traceback" not in result.stderr


def test_config_errors_stop_every_stack_command() -> None:
    for command in ("up", "down", "demo"):
        result = riverbank(command, RIVERBANK_STACK__BROKER_STORAGE="postgres")
        assert result.returncode == 1, command
        assert "stack.broker_storage" in result.stderr and "Traceback" not in result.stderr


def test_status_of_a_stack_that_is_not_running_exits_3(tmp_path: object) -> None:
    result = riverbank("status", "--json", RIVERBANK_STACK__STATE_DIR="/tmp/riverbank-never-started")
    assert result.returncode == 3
    assert '"running": false' in result.stdout


def test_help_lists_the_stack_commands() -> None:
    result = riverbank("--help")
    assert result.returncode == 0
    for command in ("up", "down", "status", "demo"):
        assert command in result.stdout


def test_the_embedded_stack_refuses_the_aws_profile_with_a_reason() -> None:
    aws = {
        "RIVERBANK_PROFILE": "aws",
        "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS": "b-1.example.com:9098",
        "RIVERBANK_SCHEMA_REGISTRY__URL": "https://registry.example.com",
        "RIVERBANK_LAKE__WAREHOUSE": "s3://lake/warehouse",
        "RIVERBANK_AWS__REGION": "eu-west-1",
    }
    for command in ("up", "status"):
        result = riverbank(command, **aws)
        assert result.returncode == 1, result.stderr
        assert "profile 'local'" in result.stderr and "Traceback" not in result.stderr
