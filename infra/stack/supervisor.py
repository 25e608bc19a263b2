"""supervisord: its configuration, its daemon, and an XML-RPC client over its unix socket."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable
from typing import Any, cast

from infra.stack.model import ComponentSpec
from infra.stack.paths import StatePaths
from riverbank.errors import StackError

# Program states that mean "will not become ready without intervention".
FAILED_STATES = frozenset({"FATAL", "EXITED", "STOPPED", "UNKNOWN"})


def _quote(value: str) -> str:
    # supervisord expands %(name)s in values: a literal % must be doubled.
    return value.replace("%", "%%")


def render_config(paths: StatePaths, specs: Iterable[ComponentSpec]) -> str:
    """The supervisord.conf for these components (in start order); every program starts only when
    asked. Priorities follow the start order, so a shutdown stops them one at a time in reverse:
    stopped together, the CDC engine outlived the broker and waited 40 s to flush its offsets."""
    lines = [
        "; Written by `riverbank up`; regenerated on every start.",
        "[unix_http_server]",
        f"file={_quote(str(paths.supervisor_socket))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_quote(str(paths.supervisor_log))}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={_quote(str(paths.supervisor_pidfile))}",
        f"childlogdir={_quote(str(paths.logs))}",
        f"directory={_quote(str(paths.root))}",
        "identifier=riverbank",
        "nodaemon=false",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_quote(str(paths.supervisor_socket))}",
    ]
    for position, spec in enumerate(specs):
        lines += [
            "",
            f"[program:{spec.name}]",
            f"command={_quote(shlex.join(spec.command))}",
            f"priority={100 + 10 * position}",
            "autostart=false",
            "autorestart=true",
            "startsecs=1",
            "startretries=10",
            f"stopsignal={spec.stopsignal}",
            f"stopwaitsecs={spec.stopwaitsecs}",
            # Signal the whole process group: shell wrappers (Flink's scripts) must not orphan java.
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_quote(str(paths.log_of(spec.name)))}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
        ]
        if spec.environment:
            env = ",".join(f'{k}="{_quote(v)}"' for k, v in sorted(spec.environment.items()))
            lines.append(f"environment={env}")
        if spec.user:
            lines.append(f"user={spec.user}")
        if spec.directory:
            lines.append(f"directory={_quote(str(spec.directory))}")
    return "\n".join(lines) + "\n"


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, socket_path: str) -> None:
        super().__init__()
        self._socket_path = socket_path

    def make_connection(self, host: Any) -> Any:
        import http.client
        import socket

        socket_path = self._socket_path

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(30)
                self.sock.connect(socket_path)

        connection = Connection("localhost")
        # Registered so that Transport.close() (ServerProxy's __exit__) closes the socket.
        self._connection = (host, connection)
        return connection


class Supervisor:
    """The supervisord of one state directory."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    def _call(self, method: str, *args: Any) -> Any:
        """One XML-RPC call on a fresh connection, closed afterwards (no socket left behind)."""
        transport = _UnixTransport(str(self.paths.supervisor_socket))
        with xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport) as proxy:
            return getattr(proxy.supervisor, method)(*args)

    def is_running(self) -> bool:
        if not self.paths.supervisor_socket.exists():
            return False
        try:
            return bool(self._call("getState")["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Error):
            return False

    def pid(self) -> int | None:
        try:
            return int(self._call("getPID"))
        except (OSError, xmlrpc.client.Error):
            return None

    def start_daemon(self, config: str, timeout_s: float = 20.0) -> None:
        """Write the config and start supervisord, or reload it when the config changed."""
        if self.is_running():
            if self.paths.supervisor_conf.read_text() != config:
                self.paths.supervisor_conf.write_text(config)
                added, changed, removed = self._call("reloadConfig")[0]
                for name in (*changed, *removed):
                    self.stop(name)
                    self._call("removeProcessGroup", name)
                for name in (*added, *changed):
                    self._call("addProcessGroup", name)
            return
        self.paths.supervisor_socket.unlink(missing_ok=True)
        self.paths.supervisor_conf.write_text(config)
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.paths.supervisor_conf)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")
        deadline = time.monotonic() + timeout_s
        while not self.is_running():
            if time.monotonic() > deadline:
                raise StackError(f"supervisord did not answer on {self.paths.supervisor_socket}")
            time.sleep(0.1)

    def start(self, name: str) -> None:
        try:
            self._call("startProcess", name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise StackError(f"supervisord could not start {name}: {fault.faultString}") from None

    def stop(self, name: str) -> None:
        with contextlib.suppress(xmlrpc.client.Fault):
            self._call("stopProcess", name, True)

    def info(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("getProcessInfo", name))

    def all_info(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("getAllProcessInfo"))

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Stop every program (reverse start order is supervisord's) and then supervisord."""
        pid = self.pid()
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            self._call("shutdown")
        deadline = time.monotonic() + timeout_s
        while pid is not None and pid_alive(pid):
            if time.monotonic() > deadline:
                raise StackError(f"supervisord (pid {pid}) did not stop within {timeout_s:.0f}s")
            time.sleep(0.2)
        self.paths.supervisor_socket.unlink(missing_ok=True)

    def restarts(self) -> dict[str, int]:
        """Unexpected exits per program since this supervisord started, read from its log."""
        try:
            text = self.paths.supervisor_log.read_text(errors="replace")
        except FileNotFoundError:
            return {}
        return count_unexpected_exits(text)


_STARTED = re.compile(r"supervisord started with pid \d+")
_EXITED = re.compile(r"exited: (\S+) \(.*not expected\)")


def count_unexpected_exits(log_text: str) -> dict[str, int]:
    """Count 'exited: NAME (... not expected)' lines after the last supervisord start."""
    starts = list(_STARTED.finditer(log_text))
    current = log_text[starts[-1].end() :] if starts else log_text
    counts: dict[str, int] = {}
    for match in _EXITED.finditer(current):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
