"""Fixtures that run the registry as a real subprocess: ``python -m riverbank registry serve``.

Each server gets a free port, its own sqlite file in a tmp dir, and is awaited by probing
``GET /`` over HTTP. Its log stays in the tmp dir; a start failure prints its tail.
Point ``RIVERBANK_TEST_REGISTRY_URL`` at a running registry to use it for the shared fixture instead.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from tests.stack_harness import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RegistryProcess:
    workdir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    scheme: str = "http"
    ca: Path | None = None
    auth: tuple[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    external_url: str | None = None

    @property
    def url(self) -> str:
        return self.external_url or f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.workdir / "registry.db"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RIVERBANK_")}
        env.update(
            {
                "RIVERBANK_REGISTRY_SERVER__STORAGE_PATH": str(self.storage),
                "RIVERBANK_SCHEMA_REGISTRY__URL": self.url,
                "RIVERBANK_CONFIG": str(self.workdir / "absent.toml"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> RegistryProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "riverbank",
                "registry",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.workdir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if httpx.get(self.url + "/", timeout=1.0, verify=self.verify()).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        tail = self.log_path.read_text()[-3000:]
        self.stop()
        pytest.fail(f"registry did not become ready on {self.url}; log {self.log_path}:\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self, **conf: Any) -> SchemaRegistryClient:
        config: dict[str, Any] = {"url": self.url, **conf}
        if self.ca:
            config.setdefault("ssl.ca.location", str(self.ca))
        if self.auth:
            config.setdefault("basic.auth.user.info", f"{self.auth[0]}:{self.auth[1]}")
        return SchemaRegistryClient(config)

    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.verify(), auth=self.auth, timeout=10.0)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """One registry subprocess shared by the session (tests use unique subject names)."""
    external = os.environ.get("RIVERBANK_TEST_REGISTRY_URL")
    if external:
        yield RegistryProcess(tmp_path_factory.mktemp("registry-external"), external_url=external.rstrip("/"))
        return
    handle = RegistryProcess(tmp_path_factory.mktemp("registry")).start()
    yield handle
    handle.stop()


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[..., RegistryProcess]]:
    """Start private registries (for global config/mode, restarts, TLS/auth); all stopped at teardown."""
    started: list[RegistryProcess] = []

    def start(name: str = "private", **kwargs: Any) -> RegistryProcess:
        handle = RegistryProcess(tmp_path / name, **kwargs).start()
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def subject() -> str:
    """A subject name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}-value"


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[SchemaRegistryClient]:
    c = registry.client()
    yield c
    c.close()


@pytest.fixture
def http(registry: RegistryProcess) -> Iterator[httpx.Client]:
    with registry.http() as h:
        yield h
