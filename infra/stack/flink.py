"""A Flink standalone cluster from the PyFlink install in the project's Flink virtualenv."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from infra.stack.paths import REPO_ROOT, StatePaths
from riverbank.errors import MissingDependencyError
from riverbank.settings import Settings

# PyFlink 2.3 pins pyarrow<17 while the lake tools need >=18, so Flink has its own virtualenv.
FLINK_VENV = REPO_ROOT / ".venv-flink"
_HINT = "run `make setup` (it creates .venv-flink with apache-flink), or set FLINK_HOME"


def flink_home() -> Path:
    """FLINK_HOME if set, else the pyflink package inside .venv-flink."""
    if os.environ.get("FLINK_HOME"):
        return Path(os.environ["FLINK_HOME"])
    found = sorted(FLINK_VENV.glob("lib/python3*/site-packages/pyflink"))
    if not found or not (found[-1] / "bin" / "jobmanager.sh").exists():
        raise MissingDependencyError("PyFlink (Flink distribution)", _HINT)
    return found[-1]


def python_executable(settings: Settings) -> Path:
    return settings.flink.python_executable or FLINK_VENV / "bin" / "python"


def _write_lib_dir(lib: Path, home: Path) -> None:
    """lib/ plus flink-python: thread-mode Python jobs need it on the cluster's classpath."""
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    for jar in [*home.glob("lib/*.jar"), *home.glob("opt/flink-python-*.jar")]:
        (lib / jar.name).symlink_to(jar)


def config_yaml(settings: Settings, paths: StatePaths) -> str:
    rest = urlsplit(settings.flink.rest_url or "")
    stack, flink = settings.stack, settings.flink
    host = rest.hostname or "127.0.0.1"
    values = {
        "jobmanager.rpc.address": host,
        "jobmanager.rpc.port": stack.flink_rpc_port,
        "jobmanager.bind-host": host,
        "jobmanager.memory.process.size": flink.jobmanager_memory,
        "jobmanager.execution.failover-strategy": "region",
        # Flink's 10 s default failed a job submission (DispatcherGateway.submitJob) on a loaded
        # 2-core machine in CI; Flink's own advice for slow machines is a longer ask timeout.
        "pekko.ask.timeout": "60 s",
        "taskmanager.host": host,
        "taskmanager.bind-host": host,
        "taskmanager.rpc.port": stack.flink_taskmanager_port,
        "taskmanager.numberOfTaskSlots": flink.taskmanager_slots,
        "taskmanager.memory.process.size": flink.taskmanager_memory,
        "blob.server.port": stack.flink_blob_port,
        "rest.address": host,
        "rest.bind-address": host,
        "rest.port": rest.port or 8081,
        "parallelism.default": flink.parallelism,
        "state.backend.type": flink.state_backend,
        "execution.checkpointing.incremental": str(flink.incremental_checkpoints).lower(),
        "execution.checkpointing.dir": (paths.flink / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (paths.flink / "savepoints").as_uri(),
        "execution.checkpointing.interval": f"{flink.checkpoint_interval_ms}ms",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "python.executable": str(python_executable(settings)),
        "python.client.executable": str(python_executable(settings)),
        "io.tmp.dirs": str(paths.flink / "tmp"),
        "web.tmpdir": str(paths.flink / "web"),
    }
    return "".join(f"{key}: {value}\n" for key, value in values.items())


def prepare(settings: Settings, paths: StatePaths) -> None:
    """Write the cluster's conf dir and lib dir (both regenerated on every start)."""
    home = flink_home()
    conf = paths.flink / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "web", "checkpoints", "savepoints"):
        (paths.flink / sub).mkdir(exist_ok=True)
    (conf / "config.yaml").write_text(config_yaml(settings, paths))
    shutil.copy(home / "conf" / "log4j-console.properties", conf / "log4j-console.properties")
    _write_lib_dir(paths.flink / "lib", home)


def environment(paths: StatePaths, home: Path) -> dict[str, str]:
    env = {
        "FLINK_HOME": str(home),
        "FLINK_CONF_DIR": str(paths.flink / "conf"),
        "FLINK_LIB_DIR": str(paths.flink / "lib"),
        "FLINK_LOG_DIR": str(paths.logs),
        "FLINK_PID_DIR": str(paths.flink),
    }
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        env["JAVA_HOME"] = java_home
    return env


def command(home: Path, role: str) -> list[str]:
    return ["bash", str(home / "bin" / f"{role}.sh"), "start-foreground"]
