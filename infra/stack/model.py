"""What the stack reports about itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ComponentSpec:
    """How to run one component under the supervisor and how to tell it is ready."""

    name: str
    #: What clients connect to, e.g. "127.0.0.1:9092" or "http://127.0.0.1:8081".
    address: str
    command: list[str]
    #: Returns None when the component answers its protocol, else why not.
    probe: Callable[[], str | None]
    #: Where it listens, and the setting that moves it: checked free before it starts, so a
    #: foreign server on the port is never mistaken for ours.
    listen: tuple[str, int] | None = None
    port_setting: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    directory: Path | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 20
    #: Components that must be ready before this one starts.
    requires: tuple[str, ...] = ()
    #: One-off work before the first start (create directories, initdb, config files).
    prepare: Callable[[], None] | None = None
    #: Work once the component is ready (create the bank database and its role).
    on_ready: Callable[[], None] | None = None


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    address: str
    state: str
    healthy: bool
    pid: int | None
    uptime_s: int | None
    restarts: int
    rss_bytes: int
    detail: str = ""
    log: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StackStatus:
    state_dir: str
    running: bool
    components: list[ComponentStatus]
    #: The supervisor's own memory, counted in the total.
    supervisor_rss_bytes: int

    @property
    def total_rss_bytes(self) -> int:
        return self.supervisor_rss_bytes + sum(c.rss_bytes for c in self.components)

    @property
    def healthy(self) -> bool:
        return self.running and all(c.healthy for c in self.components)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state_dir": self.state_dir,
            "running": self.running,
            "healthy": self.healthy,
            "supervisor_rss_bytes": self.supervisor_rss_bytes,
            "total_rss_bytes": self.total_rss_bytes,
            "components": [c.as_dict() for c in self.components],
        }
