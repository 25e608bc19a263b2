"""docker-compose.yml brought up for real: Kafka and the schema registry answer on the host.

Needs a Docker engine with the compose plugin, and the host ports 9092 and 8081 free; the
module is skipped, with the reason, on machines without them. It reaches the services through
the x-riverbank-env values loaded into Riverbank's own settings, so it also proves those values.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import yaml
from confluent_kafka.admin import AdminClient

from riverbank.settings import ENV_PREFIX, Settings, load_settings

if TYPE_CHECKING:
    from testcontainers.compose import DockerCompose

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SERVICES = ["kafka", "schema-registry"]


def _docker_problem() -> str | None:
    """Why this machine cannot run the compose file, or None when it can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no Docker engine: the docker CLI is not installed"
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine: `docker info` failed ({exc})"
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines() or [f"exit code {info.returncode}"]
        return f"no Docker engine: `docker info` failed: {lines[-1]}"
    try:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no docker compose plugin ({exc})"
    if plugin.returncode != 0:
        return "no docker compose plugin: `docker compose version` failed"
    return None


_problem = _docker_problem()
if _problem is not None:
    pytest.skip(_problem, allow_module_level=True)

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(1800)]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def stack_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Riverbank settings from the file's x-riverbank-env block, nothing else."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.upper().startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    block = yaml.safe_load(COMPOSE_FILE.read_text())["x-riverbank-env"]
    for name, value in block.items():
        monkeypatch.setenv(str(name), str(value))
    # Interpolated by compose for the whole file, even for services not started here.
    monkeypatch.setenv("RIVERBANK_SOURCE_DB__PASSWORD", secrets.token_urlsafe(16))
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", secrets.token_urlsafe(16))
    # Its own project, so `down --volumes` never touches a stack the developer runs.
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", f"riverbank-test-{secrets.token_hex(4)}")
    return load_settings()


def _down(stack: DockerCompose) -> None:
    """Remove the whole test project (all its containers, network and volumes), not only SERVICES."""
    command = [*stack.compose_command_property, "down", "--volumes", "--remove-orphans"]
    subprocess.run(command, cwd=REPO_ROOT, capture_output=True, check=False, timeout=300)


@pytest.fixture
def compose_stack(stack_settings: Settings) -> Iterator[DockerCompose]:
    from testcontainers.compose import DockerCompose

    busy = [port for port in (9092, 8081) if _port_in_use(port)]
    if busy:
        pytest.skip(f"host ports {busy} are in use (is a Riverbank stack already running?)")
    stack = DockerCompose(REPO_ROOT, compose_file_name=COMPOSE_FILE.name, services=SERVICES, wait=True)
    try:
        stack.start()
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or b"").decode(errors="replace")[-4000:]
        try:
            logs = "\n".join(stack.get_logs(*SERVICES))[-8000:]
        finally:
            _down(stack)
        pytest.fail(f"docker compose up failed:\n{output}\n--- logs ---\n{logs}")
    try:
        yield stack
    finally:
        _down(stack)


def test_kafka_and_registry_answer(compose_stack: DockerCompose, stack_settings: Settings) -> None:
    config: dict[str, str | int | float | bool] = {**stack_settings.kafka.client_config()}
    metadata = AdminClient(config).list_topics(timeout=30)
    # One broker, advertised to the host at the address Riverbank bootstraps from.
    advertised = sorted(f"{broker.host}:{broker.port}" for broker in metadata.brokers.values())
    assert advertised == ["127.0.0.1:9092"]

    assert stack_settings.schema_registry.url is not None
    response = httpx.get(f"{stack_settings.schema_registry.url}/subjects", timeout=30)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)
