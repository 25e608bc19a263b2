"""Where the embedded stack keeps its files: one state directory per stack."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from riverbank.errors import StackError

REPO_ROOT = Path(__file__).resolve().parents[2]
# AF_UNIX socket paths are limited to 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def supervisor_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.root / "supervisor.sock"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisord.log"

    @property
    def s3_data(self) -> Path:
        return self.root / "objects"

    @property
    def s3rver_data(self) -> Path:
        """Where the stack's earlier local S3 (s3rver) kept objects: imported once, then renamed."""
        return self.root / "s3"

    @property
    def kafka_guard_stats(self) -> Path:
        """The broker guard's counters (its long poll), rewritten every second."""
        return self.root / "kafka-guard.json"

    @property
    def flink(self) -> Path:
        return self.root / "flink"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def log_of(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def postgres(self) -> Path:
        """PostgreSQL's own directory (data, socket), reachable by the user the server runs as.

        As root the server runs as ``postgres``, which cannot enter a private home directory
        (e.g. /root): then the data lives under /var/lib/postgresql, keyed by this state dir.
        """
        inside = self.root / "postgres"
        if os.geteuid() != 0 or _world_traversable(self.root):
            return inside
        key = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/var/lib/postgresql/riverbank") / key

    def ensure(self) -> None:
        for directory in (self.root, self.logs, self.s3_data, self.flink, self.secrets):
            directory.mkdir(parents=True, exist_ok=True)
        self.secrets.chmod(0o700)
        if len(str(self.supervisor_socket)) > _MAX_SOCKET_PATH:
            raise StackError(
                f"state directory path is too long for a unix socket ({self.supervisor_socket}); "
                "set RIVERBANK_STACK__STATE_DIR to a shorter path"
            )


def _world_traversable(path: Path) -> bool:
    """True when every directory from / down to ``path`` lets other users pass through."""
    for directory in (path, *path.parents):
        if directory.exists() and not directory.stat().st_mode & 0o001:
            return False
    return True
