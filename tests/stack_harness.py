"""Start a real embedded stack for tests, or use the services a developer points the tests at.

A component whose endpoint is given in the environment (RIVERBANK_KAFKA__BOOTSTRAP_SERVERS,
RIVERBANK_SCHEMA_REGISTRY__URL, RIVERBANK_SOURCE_DB__HOST, RIVERBANK_FLINK__REST_URL) is not
started: the tests use the one given. Everything else runs on free loopback ports in a private
state directory, so tests never touch a developer's own `riverbank up`.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra import stack
from infra.stack.paths import REPO_ROOT, StatePaths
from riverbank.settings import Settings, load_settings

# Which environment variable, when set, makes a component external.
EXTERNAL_ENDPOINTS = {
    "kafka": "RIVERBANK_KAFKA__BOOTSTRAP_SERVERS",
    "registry": "RIVERBANK_SCHEMA_REGISTRY__URL",
    "postgres": "RIVERBANK_SOURCE_DB__HOST",
    "flink-jobmanager": "RIVERBANK_FLINK__REST_URL",
    "flink-taskmanager": "RIVERBANK_FLINK__REST_URL",
}
LOGS_KEPT_IN = REPO_ROOT / "build" / "test-logs"


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` comes from the range it also gives outgoing
    connections: between choosing it here and the component binding it, a client's connection
    took it once (PostgreSQL: "Address already in use"). Ports below that range are never taken
    that way.
    """
    low = _ephemeral_range_start()
    while True:
        port = random.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


@dataclass(frozen=True)
class RunningStack:
    settings: Settings
    #: RIVERBANK_* variables that point a subprocess (the CLI) at this stack.
    env: dict[str, str]

    @property
    def paths(self) -> StatePaths:
        return StatePaths(self.settings.stack.state_dir)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `riverbank ARGS` against this stack."""
        return subprocess.run(
            [sys.executable, "-m", "riverbank", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def stack_env(state_dir: Path, components: list[str], broker_storage: str = "s3") -> dict[str, str]:
    """Environment for a stack of ``components`` on free ports in ``state_dir``."""
    env = {
        "RIVERBANK_STACK__STATE_DIR": str(state_dir),
        "RIVERBANK_STACK__COMPONENTS": "[" + ",".join(f'"{c}"' for c in components) + "]",
        "RIVERBANK_STACK__BROKER_STORAGE": broker_storage,
        "RIVERBANK_STACK__S3_PORT": str(free_port()),
        "RIVERBANK_STACK__FLINK_RPC_PORT": str(free_port()),
        "RIVERBANK_STACK__FLINK_BLOB_PORT": str(free_port()),
    }
    if "kafka" in components:
        env["RIVERBANK_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"
    if "registry" in components:
        env["RIVERBANK_SCHEMA_REGISTRY__URL"] = f"http://127.0.0.1:{free_port()}"
    if "postgres" in components:
        env["RIVERBANK_SOURCE_DB__HOST"] = "127.0.0.1"
        env["RIVERBANK_SOURCE_DB__PORT"] = str(free_port())
    if "flink-jobmanager" in components:
        env["RIVERBANK_FLINK__REST_URL"] = f"http://127.0.0.1:{free_port()}"
    return env


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def make_state_dir(name: str) -> Path:
    # Not pytest's tmp_path: that is private to root, and PostgreSQL runs as 'postgres'.
    path = Path(tempfile.mkdtemp(prefix=f"riverbank-{name}-", dir="/tmp"))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def running_stack(
    name: str,
    components: list[str],
    *,
    broker_storage: str = "s3",
    extra_env: dict[str, str] | None = None,
) -> Iterator[RunningStack]:
    """Bring a private stack up; on exit bring it down and remove it (logs are kept on failure).
    ``extra_env`` adds settings of the stack's own (e.g. the partitions of the topics it creates)."""
    state_dir = make_state_dir(name)
    env = stack_env(state_dir, components, broker_storage) | (extra_env or {})
    with environ(env):
        settings = load_settings()
    handle = RunningStack(settings, env)
    ok = False
    try:
        stack.up(settings)
        yield handle
        ok = True
    finally:
        stack.down(settings)
        if not ok:
            keep_logs(handle.paths, name)
        remove(handle.paths)


def keep_logs(paths: StatePaths, name: str) -> Path:
    target = LOGS_KEPT_IN / name
    shutil.rmtree(target, ignore_errors=True)
    if paths.logs.exists():
        shutil.copytree(paths.logs, target)
    sys.stderr.write(f"\n[riverbank tests] logs of stack {name!r} kept in {target}\n")
    return target


def remove(paths: StatePaths) -> None:
    postgres_dir = paths.postgres
    shutil.rmtree(paths.root, ignore_errors=True)
    if not postgres_dir.is_relative_to(paths.root):
        shutil.rmtree(postgres_dir, ignore_errors=True)
