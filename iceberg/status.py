"""Status files through which the lake's long-running services (the bronze sink, the silver/gold
refresh loop) report to the stack's probes and to `riverbank status`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from riverbank.settings import Settings


def sink_status_file(settings: Settings) -> Path:
    return settings.stack.state_dir / "lake" / "sink-status.json"


def refresh_status_file(settings: Settings) -> Path:
    return settings.stack.state_dir / "lake" / "refresh-status.json"


def write_status(path: Path, state: str, **fields: Any) -> None:
    """Replace ``path`` atomically with this process's pid, ``state``, the time and ``fields``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "state": state, "time": time.time(), **fields}))
    tmp.replace(path)


def is_running(path: Path, max_age_s: float) -> bool:
    """The service wrote ``running`` within ``max_age_s`` and its process is alive."""
    import psutil

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return bool(
        data.get("state") == "running"
        and time.time() - float(data.get("time", 0)) < max_age_s
        and psutil.pid_exists(int(data.get("pid", -1)))
    )
