"""The engine's own account of itself: a small JSON file per connector under the state directory.

The engine rewrites it (atomically) after each batch and on every state change; ``riverbank cdc
status`` and the stack's readiness probe read it. A file whose pid is no longer alive reports
state "stopped", whatever it says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.stack.supervisor import pid_alive
from riverbank.settings import Settings


@dataclass
class EngineStatus:
    connector: str
    #: starting, snapshot, streaming, failed, stopped
    state: str
    pid: int
    started_ms: int
    events: int = 0
    tombstones: int = 0
    heartbeats: int = 0
    dlq: int = 0
    last_event_ms: int | None = None
    #: The source commit time of the last change event (Debezium's source.ts_ms).
    last_source_ms: int | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status_dir(settings: Settings) -> Path:
    return settings.stack.state_dir / "cdc"


def status_path(settings: Settings, connector: str) -> Path:
    return status_dir(settings) / f"{connector}.status.json"


def write_status(path: Path, status: EngineStatus) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status.as_dict()))
    tmp.replace(path)


def read_status(path: Path) -> EngineStatus | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    status = EngineStatus(**data)
    if status.state not in ("stopped", "failed") and not pid_alive(status.pid):
        status.state = "stopped"
    return status


def all_statuses(settings: Settings) -> list[EngineStatus]:
    found = (read_status(p) for p in sorted(status_dir(settings).glob("*.status.json")))
    return [s for s in found if s is not None]


def engine_ready(path: Path) -> Callable[[], str | None]:
    """The stack's readiness probe: None once the engine process is up with a valid connector and a
    prepared database ("starting"), else why not. The JVM and the connector task take from seconds
    to over a minute on a busy machine; `riverbank cdc status` shows when it streams."""

    def probe() -> str | None:
        status = read_status(path)
        if status is None:
            return f"no engine status in {path} yet"
        if status.state in ("starting", "running", "snapshot", "streaming"):
            return None
        return f"engine {status.state}" + (f": {status.error}" if status.error else "")

    return probe


def now_ms() -> int:
    return int(time.time() * 1000)
