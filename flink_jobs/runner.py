"""Submit, list, stop and cancel Flink jobs on the cluster at ``settings.flink.rest_url``.

Submission runs ``flink run -pym flink_jobs.launch <job>`` from the PyFlink install in
``.venv-flink`` (the driver needs PyFlink, which the main environment cannot hold), detached, with
the Flink interpreter for the workers and thread mode (``python.pythonpath`` = its site-packages).
Everything else is the JobManager's REST API over httpx, so it works against any Flink cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from flink_jobs.kafka import REPO_ROOT, flink_python_executable
from riverbank.errors import ConfigError, MissingDependencyError, ServiceUnavailableError, TerminalError
from riverbank.settings import Settings

#: Job name -> module with a main() that builds and executes it.
JOBS: dict[str, str] = {"fraud": "flink_jobs.fraud_job"}
#: Job name -> the name the job runs under on the cluster.
JOB_NAMES: dict[str, str] = {"fraud": "riverbank-fraud"}
_JOB_ID = re.compile(r"JobID ([0-9a-f]{32})")
TERMINAL_STATES = {"FINISHED", "CANCELED", "FAILED", "SUSPENDED"}


class JobNotFoundError(TerminalError):
    def __init__(self, job_id: str, rest_url: str) -> None:
        super().__init__(f"no Flink job {job_id} on {rest_url} (see `riverbank jobs list`)")


class JobSubmitError(TerminalError):
    """``flink run`` failed or the job did not reach RUNNING; carries the client's output."""


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    name: str
    state: str
    start_time_ms: int
    duration_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "name": self.name,
            "state": self.state,
            "start_time_ms": self.start_time_ms,
            "duration_ms": self.duration_ms,
        }


def rest_url(settings: Settings) -> str:
    if settings.flink.rest_url is None:
        raise ConfigError("flink.rest_url", "is not set", "defaults")
    return settings.flink.rest_url


class FlinkRest:
    """A small client of the JobManager REST API with Riverbank errors."""

    def __init__(self, settings: Settings, timeout_s: float = 15.0) -> None:
        self.url = rest_url(settings)
        self._client = httpx.Client(base_url=self.url, timeout=timeout_s)

    def __enter__(self) -> FlinkRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, job_id: str | None = None, **kw: Any) -> Any:
        try:
            reply = self._client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"Flink REST at {self.url} did not answer ({exc}); is the cluster up (`riverbank status`)?"
            ) from None
        if reply.status_code == 404 and job_id is not None:
            raise JobNotFoundError(job_id, self.url)
        if reply.status_code >= 400:
            detail = reply.text[:500]
            if job_id is not None and ("NotFound" in detail or "could not be found" in detail):
                raise JobNotFoundError(job_id, self.url)
            raise TerminalError(f"Flink REST {method} {path} -> HTTP {reply.status_code}: {detail}")
        return reply.json() if reply.content else None

    def jobs(self) -> list[JobInfo]:
        data = self.request("GET", "/jobs/overview")
        return [
            JobInfo(j["jid"], j["name"], j["state"], int(j["start-time"]), int(j["duration"]))
            for j in data["jobs"]
        ]

    def job(self, job_id: str) -> dict[str, Any]:
        _check_id(job_id)
        result: dict[str, Any] = self.request("GET", f"/jobs/{job_id}", job_id=job_id)
        return result

    def running_tasks(self, job_id: str) -> bool:
        """Every vertex of the job RUNNING (sources consuming, not just scheduled)."""
        detail = self.job(job_id)
        return detail["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in detail["vertices"])


def _check_id(job_id: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise TerminalError(f"{job_id!r} is not a Flink job id (32 hex digits; see `riverbank jobs list`)")


def list_jobs(settings: Settings) -> list[JobInfo]:
    with FlinkRest(settings) as rest:
        return sorted(rest.jobs(), key=lambda j: j.start_time_ms, reverse=True)


def flink_cli(settings: Settings) -> Path:
    from infra.stack.flink import flink_home

    found = flink_home() / "bin" / "flink"
    if not found.is_file():
        raise MissingDependencyError(f"the flink command ({found})", "run `make setup`")
    return found


def site_packages(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise MissingDependencyError(f"the Flink Python interpreter ({python})", "run `make setup`")
    return out.stdout.strip()


def submit_command(
    settings: Settings, job: str, *, parallelism: int | None = None, from_savepoint: str | None = None
) -> list[str]:
    if job not in JOBS:
        raise TerminalError(f"unknown job {job!r}; known jobs: {', '.join(sorted(JOBS))}")
    parts = urlsplit(rest_url(settings))
    python = flink_python_executable(settings)
    if not python.exists():
        raise MissingDependencyError(f"the Flink Python interpreter ({python})", "run `make setup`")
    # python.pythonpath is what thread mode imports from (site-packages plus this checkout).
    pythonpath = os.pathsep.join([site_packages(python), str(REPO_ROOT)])
    command = [
        str(flink_cli(settings)),
        "run",
        "--detached",
        "-m",
        f"{parts.hostname}:{parts.port or 8081}",
        "-pyexec",
        str(python),
        "-pyclientexec",
        str(python),
        "-pypath",
        pythonpath,
        "-D",
        f"python.execution-mode={settings.fraud.python_execution_mode}",
        "-p",
        str(parallelism or settings.flink.parallelism),
    ]
    if from_savepoint:
        command += ["-s", from_savepoint]
    return [*command, "-pym", "flink_jobs.launch", job]


def submit(
    settings: Settings,
    job: str,
    *,
    parallelism: int | None = None,
    from_savepoint: str | None = None,
    wait_running_s: float = 120.0,
) -> JobInfo:
    """Submit ``job`` detached and wait until all its tasks run; returns the job."""
    command = submit_command(settings, job, parallelism=parallelism, from_savepoint=from_savepoint)
    with FlinkRest(settings) as rest:
        rest.jobs()  # cluster reachable, else a clear error before a slow client start
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        from infra.stack.flink import flink_home

        env.setdefault("FLINK_HOME", str(flink_home()))
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)
        found = _JOB_ID.search(out.stdout + out.stderr)
        if out.returncode != 0 or found is None:
            tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-25:])
            raise JobSubmitError(f"flink run failed for job {job!r} (exit {out.returncode}):\n{tail}")
        job_id = found.group(1)
        deadline = time.monotonic() + wait_running_s
        while True:
            detail = rest.job(job_id)
            if detail["state"] in TERMINAL_STATES:
                raise JobSubmitError(f"job {job_id} ended as {detail['state']} right after submission")
            if rest.running_tasks(job_id):
                break
            if time.monotonic() > deadline:
                raise JobSubmitError(
                    f"job {job_id} not running after {wait_running_s:.0f}s ({detail['state']})"
                )
            time.sleep(0.5)
        return next(j for j in rest.jobs() if j.job_id == job_id)


def stop_with_savepoint(
    settings: Settings, job_id: str, directory: str | None = None, *, timeout_s: float = 180.0
) -> str:
    """Stop the job with a savepoint (into ``directory`` or the cluster's default); its path.

    A savepoint needs every task running. A job that is restarting is waited for, and a trigger
    that failed because a TaskManager was lost is tried again once the job runs, both within
    ``timeout_s``; any other failure is reported at once, with Flink's root cause.
    """
    body: dict[str, Any] = {"drain": False}
    if directory:
        body["targetDirectory"] = directory if "://" in directory else Path(directory).absolute().as_uri()
    deadline = time.monotonic() + timeout_s
    with FlinkRest(settings) as rest:
        while True:
            _wait_until_running(rest, job_id, deadline, purpose="a savepoint")
            trigger = rest.request("POST", f"/jobs/{job_id}/stop", job_id=job_id, json=body)
            failure = _await_savepoint(rest, job_id, trigger["request-id"], deadline)
            if isinstance(failure, _SavepointDone):
                return failure.location
            if not _RESTARTING.search(failure) or time.monotonic() > deadline:
                raise TerminalError(f"savepoint of job {job_id} failed: {_root_cause(failure)}")
            time.sleep(1.0)  # the job is failing over; it is RUNNING again soon


#: Savepoint failures a lost TaskManager causes until the job has restarted: worth another try.
_RESTARTING = re.compile(
    "|".join(
        re.escape(reason)
        for reason in (
            "RecipientUnreachableException",  # the trigger went to a TaskManager that is gone
            "Not all required tasks are currently running",
            "Checkpoint was declined (tasks not ready)",
            "Checkpoint Coordinator is suspending",
            "FailoverRegion is restarting",
            "Task has failed",
        )
    )
)


@dataclass(frozen=True)
class _SavepointDone:
    location: str


def _wait_until_running(rest: FlinkRest, job_id: str, deadline: float, *, purpose: str) -> None:
    while not rest.running_tasks(job_id):
        state = str(rest.job(job_id)["state"])
        if state in TERMINAL_STATES:
            raise TerminalError(f"job {job_id} is {state}; {purpose} needs a running job")
        if time.monotonic() > deadline:
            raise ServiceUnavailableError(
                f"job {job_id} is {state} with tasks not running; {purpose} needs every task running "
                "(a lost TaskManager restarts them; check `riverbank jobs list` and try again)"
            )
        time.sleep(0.5)


def _await_savepoint(rest: FlinkRest, job_id: str, request_id: str, deadline: float) -> _SavepointDone | str:
    """The savepoint's location, or the failure's stack trace."""
    while time.monotonic() < deadline:
        status = rest.request("GET", f"/jobs/{job_id}/savepoints/{request_id}", job_id=job_id)
        if status["status"]["id"] == "COMPLETED":
            operation = status.get("operation") or {}
            if "location" in operation:
                return _SavepointDone(str(operation["location"]))
            return str(operation.get("failure-cause", {}).get("stack-trace", "unknown"))
        time.sleep(0.5)
    raise ServiceUnavailableError(f"savepoint of job {job_id} did not complete in time")


def _root_cause(stack_trace: str) -> str:
    """The innermost ``Caused by:`` of a Java stack trace (its first line if none)."""
    lines = stack_trace.strip().splitlines() or ["unknown"]
    causes = [
        line.strip().removeprefix("Caused by:").strip()
        for line in lines
        if line.strip().startswith("Caused by:")
    ]
    return causes[-1] if causes else lines[0]


def cancel(settings: Settings, job_id: str) -> None:
    with FlinkRest(settings) as rest:
        _check_id(job_id)
        rest.request("PATCH", f"/jobs/{job_id}", job_id=job_id, params={"mode": "cancel"})


def wait_for_state(settings: Settings, job_id: str, states: set[str], timeout_s: float = 60.0) -> str:
    with FlinkRest(settings) as rest:
        deadline = time.monotonic() + timeout_s
        while True:
            state = str(rest.job(job_id)["state"])
            if state in states or time.monotonic() > deadline:
                return state
            time.sleep(0.3)
