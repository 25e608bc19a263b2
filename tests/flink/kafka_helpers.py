"""Helpers for the connector tests: topics, producing, reading back, and running the test job.

The job runs with the Flink environment's interpreter (``.venv-flink/bin/python``) in local mode,
in its own process group so a test can kill -9 all of it (Python, JVM, Python workers) at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from infra.stack.paths import REPO_ROOT
from tests.stack_harness import RunningStack

FLINK_PYTHON = REPO_ROOT / ".venv-flink" / "bin" / "python"
JOB = Path(__file__).resolve().parent / "jobs" / "kafka_pipeline.py"
# Tansu: group joins wait ~session.timeout.ms/2; these keep it short.
GROUP_TIMEOUTS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 2000}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def create_topics(bootstrap: str, *topics: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    for future in futures.values():
        future.result(timeout=30)


@dataclass(frozen=True)
class Sent:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]
    timestamp: int


def produce(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    partitions: int = 3,
    start: int = 0,
    timestamp: Callable[[int], int] | None = None,
    tag: str = "v",
) -> list[Sent]:
    """``count`` records round-robin over the partitions, with keys, headers and timestamps;
    returns what the broker acknowledged (partition, offset) for each."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent: list[Sent] = []

    def on_delivery(headers: dict[str, bytes]) -> Callable[[Any, Any], None]:
        # Delivery reports carry no headers: keep the ones sent.
        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                raise KafkaException(err)
            sent.append(
                Sent(msg.partition(), msg.offset(), msg.key(), msg.value(), headers, msg.timestamp()[1])
            )

        return delivered

    for i in range(start, start + count):
        ts = timestamp(i) if timestamp else int(time.time() * 1000)
        headers = {"seq": str(i).encode(), "origin": b"\x00\xfftest"}
        producer.produce(
            topic,
            key=f"key-{i}".encode(),
            value=f"{tag}-{i}".encode(),
            partition=i % partitions,
            headers=list(headers.items()),
            timestamp=ts,
            on_delivery=on_delivery(headers),
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert len(sent) == count
    return sent


def read_all(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Any]], bool],
    timeout: float,
    isolation: str = "read_committed",
    partitions: int = 3,
) -> list[dict[str, Any]]:
    """Every record of ``topic`` from the beginning, read until ``until(records)`` holds or the
    timeout passes (then returns what it has). Values are the job's JSON descriptions, with the
    output record's own key and headers added. Never relies on the broker's end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("reader"),
            "isolation.level": isolation,
            "enable.auto.commit": False,
            **GROUP_TIMEOUTS,
        }
    )
    records: list[dict[str, Any]] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            record = json.loads(msg.value())
            record["out_key"] = msg.key()
            record["out_headers"] = {k: v for k, v in (msg.headers() or [])}
            record["out_timestamp"] = msg.timestamp()[1]
            records.append(record)
    finally:
        consumer.close()
    return records


def end_offsets(sent: list[Sent], partitions: int = 3) -> dict[int, int]:
    """Per partition, the offset after the last record sent: what a group that read them all commits."""
    return {p: max(s.offset for s in sent if s.partition == p) + 1 for p in range(partitions)}


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int = 3) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **GROUP_TIMEOUTS})
    try:
        result = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in result}


def commit_offsets(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, **GROUP_TIMEOUTS}
    )
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def completed_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Completed checkpoints (those with _metadata), oldest first."""
    found = [m.parent for m in checkpoint_dir.glob("*/chk-*/_metadata")]
    return sorted(found, key=lambda p: int(p.name.removeprefix("chk-")))


class JobProcess:
    """A running test job; ``log_tail()`` shows Flink's log (local-mode failures land there)."""

    def __init__(self, proc: subprocess.Popen[str], log_dir: Path, output: Path) -> None:
        self.proc = proc
        self.log_dir = log_dir
        self.output = output

    def assert_running(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"job exited with {self.proc.returncode}\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: the Python driver, its JVM and the Python workers."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 60) -> str:
        parts = [f"--- {self.output.name}\n" + "\n".join(self.output.read_text().splitlines()[-lines:])]
        for log in sorted(self.log_dir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()
            errors = [line for line in text if "ERROR" in line or "Exception" in line][-20:]
            parts.append(f"--- {log.name} (errors)\n" + "\n".join(errors))
            parts.append(f"--- {log.name} (tail)\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


@contextmanager
def running_job(
    stack: RunningStack,
    work_dir: Path,
    pipelines: Iterable[dict[str, Any]],
    *,
    checkpoint_interval_ms: int = 1000,
    restore_from: Path | None = None,
    name: str = "job",
) -> Iterator[JobProcess]:
    """Start the test job; on exit kill it (it is unbounded) and attach its log on failure."""
    log_dir = work_dir / f"{name}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    output = work_dir / f"{name}.out"
    args = [
        str(FLINK_PYTHON),
        str(JOB),
        "--checkpoint-dir",
        (work_dir / "checkpoints").as_uri(),
        "--checkpoint-interval-ms",
        str(checkpoint_interval_ms),
    ]
    for pipeline in pipelines:
        args += ["--pipeline", json.dumps(pipeline)]
    if restore_from is not None:
        args += ["--restore-from", restore_from.as_uri()]
    env = {**os.environ, **stack.env, "FLINK_LOG_DIR": str(log_dir), "PYTHONPATH": str(REPO_ROOT)}
    with output.open("w") as out:
        proc = subprocess.Popen(
            args,
            cwd=work_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    job = JobProcess(proc, log_dir, output)
    try:
        yield job
    except BaseException as exc:
        job.kill()
        raise AssertionError(f"{exc}\n{job.log_tail()}") from exc
    job.kill()
