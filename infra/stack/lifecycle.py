"""up, down and status of the embedded stack."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import psutil

from infra.stack.components import build_components
from infra.stack.model import ComponentSpec, ComponentStatus, StackStatus
from infra.stack.paths import StatePaths
from infra.stack.supervisor import FAILED_STATES, Supervisor, render_config
from riverbank.errors import ComponentStartError, StackError
from riverbank.settings import Settings

#: Called with (component, event) as ``up`` progresses: "starting", "ready", "already running".
Progress = Callable[[str, str], None]
_LOG_TAIL_LINES = 25


def _require_local(settings: Settings) -> None:
    if settings.profile != "local":
        raise StackError(
            f"the embedded stack belongs to profile 'local'; profile {settings.profile!r} uses the "
            "services its settings point at (unset RIVERBANK_PROFILE or set it to local)"
        )


def up(settings: Settings, progress: Progress | None = None) -> StackStatus:
    """Start every selected component in dependency order; harmless when already up."""
    _require_local(settings)
    notify = progress or (lambda _name, _event: None)
    paths = StatePaths(settings.stack.state_dir)
    paths.ensure()
    specs = build_components(settings, paths)
    supervisor = Supervisor(paths)
    supervisor.start_daemon(render_config(paths, specs))

    by_name = {spec.name: spec for spec in specs}
    ready: set[str] = set()
    starting: dict[str, float] = {}
    deadline_s = settings.stack.startup_timeout_s
    while len(ready) < len(specs):
        for spec in specs:
            if spec.name in ready or spec.name in starting:
                continue
            if any(dep in by_name and dep not in ready for dep in spec.requires):
                continue
            if _running(supervisor, spec.name) and spec.probe() is None:
                notify(spec.name, "already running")
                ready.add(spec.name)
                continue
            notify(spec.name, "starting")
            _require_free_port(spec)
            if spec.prepare:
                spec.prepare()
            supervisor.start(spec.name)
            starting[spec.name] = time.monotonic()
        for name, started in list(starting.items()):
            spec = by_name[name]
            reason = spec.probe()
            if reason is None:
                if spec.on_ready:
                    spec.on_ready()
                del starting[name]
                ready.add(name)
                notify(name, "ready")
                continue
            state = supervisor.info(name)["statename"]
            # BACKOFF while starting means the process already exited once: a start failure, not
            # something to wait out through ten restarts.
            failed = state in FAILED_STATES or state == "BACKOFF"
            if failed or time.monotonic() - started > deadline_s:
                supervisor.stop(name)
                why = f"process is {state}" if failed else f"not ready after {deadline_s:.0f}s"
                raise _start_error(paths, spec, f"{why}; last probe: {reason}")
        time.sleep(0.25)
    return status(settings)


def _require_free_port(spec: ComponentSpec) -> None:
    if spec.listen is None:
        return
    host, port = spec.listen
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return
        except OSError:
            pass
    raise StackError(
        f"{spec.name} cannot listen on {host}:{port}: the port is in use by {_listener(port)}; "
        f"stop that, or move {spec.name} with {spec.port_setting}"
    )


def _listener(port: int) -> str:
    try:
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                process = psutil.Process(conn.pid)
                return f"{process.name()} (pid {conn.pid})"
    except psutil.Error:
        pass
    return "another process"


def _running(supervisor: Supervisor, name: str) -> bool:
    return bool(supervisor.info(name)["statename"] == "RUNNING")


def _start_error(paths: StatePaths, spec: ComponentSpec, reason: str) -> ComponentStartError:
    log = paths.log_of(spec.name)
    try:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
    except FileNotFoundError:
        tail = ""
    return ComponentStartError(spec.name, reason, str(log), tail)


def down(settings: Settings) -> list[str]:
    """Stop everything ``up`` started (and only that); returns the components that were running."""
    paths = StatePaths(settings.stack.state_dir)
    supervisor = Supervisor(paths)
    if not supervisor.is_running():
        return []
    stopped = [info["name"] for info in supervisor.all_info() if info["statename"] == "RUNNING"]
    supervisor.shutdown()
    return stopped


def status(settings: Settings) -> StackStatus:
    """Each selected component's state, health (probed now), uptime, restarts and RSS."""
    _require_local(settings)
    paths = StatePaths(settings.stack.state_dir)
    specs = build_components(settings, paths)
    supervisor = Supervisor(paths)
    if not supervisor.is_running():
        rows = [
            ComponentStatus(
                s.name, s.address, "STOPPED", False, None, None, 0, 0, log=str(paths.log_of(s.name))
            )
            for s in specs
        ]
        return StackStatus(str(paths.root), False, rows, 0)
    infos = {info["name"]: info for info in supervisor.all_info()}
    restarts = supervisor.restarts()
    rows = []
    for spec in specs:
        info = infos.get(spec.name)
        if info is None:
            raise StackError(f"{spec.name} is not configured in the running supervisor; run `riverbank up`")
        running = info["statename"] == "RUNNING"
        problem = spec.probe() if running else info.get("description", "")
        pid = int(info["pid"]) or None
        rows.append(
            ComponentStatus(
                name=spec.name,
                address=spec.address,
                state=info["statename"],
                healthy=running and problem is None,
                pid=pid,
                uptime_s=int(info["now"] - info["start"]) if running else None,
                restarts=restarts.get(spec.name, 0),
                rss_bytes=_tree_rss(pid),
                detail=problem or "",
                log=str(paths.log_of(spec.name)),
            )
        )
    return StackStatus(str(paths.root), True, rows, _tree_rss(supervisor.pid(), children=False))


def _tree_rss(pid: int | None, *, children: bool = True) -> int:
    """Resident memory of a process and (by default) all its descendants."""
    if not pid:
        return 0
    try:
        process = psutil.Process(pid)
        procs = [process, *(process.children(recursive=True) if children else [])]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total
