"""A private stack (s3, kafka, registry, postgres) for the CDC tests: they kill and restart the
engine and drop its slot, which the session stack's own "cdc" component must not see."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from cdc.status import read_status, status_path
from producers.bankdb import DDL, connect
from riverbank.settings import Settings, load_settings
from tests.stack_harness import RunningStack, environ, running_stack

CONNECTOR = Path(__file__).resolve().parents[2] / "connect" / "bankdb-postgres.json"


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    raw_key: bytes | None
    raw_value: bytes | None
    headers: list[tuple[str, bytes]]


@pytest.fixture(scope="package")
def cdc_stack() -> Iterator[RunningStack]:
    with running_stack("cdc", ["s3", "kafka", "registry", "postgres"]) as handle:
        with environ(handle.env):
            settings = load_settings()  # the password file exists only once the stack is up
        with connect(settings.source_db, autocommit=True) as conn:
            conn.execute(DDL)
        yield RunningStack(settings, handle.env)


@pytest.fixture
def db(cdc_stack: RunningStack) -> Iterator[psycopg.Connection[Any]]:
    with connect(cdc_stack.settings.source_db, autocommit=True) as conn:
        yield conn


class Engine:
    """`riverbank cdc start` as a separate process, so that it can be killed with SIGKILL."""

    def __init__(self, stack: RunningStack, log: Path) -> None:
        self.stack = stack
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Engine:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "riverbank", "cdc", "start", str(CONNECTOR)],
                env={**os.environ, **self.stack.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_state({"running", "snapshot", "streaming"})
        return self

    def status(self) -> Any:
        return read_status(status_path(self.stack.settings, "bankdb-postgres"))

    def wait_state(self, states: set[str], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            status = self.status()
            if status is not None and status.pid == self.proc.pid and status.state in states:
                return
            time.sleep(0.2)
        raise AssertionError(f"engine not {states} after {timeout}s:\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        return self.proc.wait(60)


@pytest.fixture(scope="package")
def engines(cdc_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Engine]]:
    """Every engine the tests started; an engine may outlive its test (the next one uses it)."""
    started: list[Engine] = []
    yield started
    for engine in started:
        if engine.proc is not None and engine.proc.poll() is None:
            engine.proc.kill()
            engine.proc.wait(30)


@pytest.fixture
def engine_factory(
    cdc_stack: RunningStack, engines: list[Engine], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], Engine]:
    def make() -> Engine:
        engine = Engine(cdc_stack, tmp_path_factory.mktemp("engine") / "engine.log")
        engines.append(engine)
        return engine

    return make


class Reader:
    """Reads topics from the beginning, decoding with confluent-kafka's AvroDeserializer."""

    def __init__(self, settings: Settings) -> None:
        self.registry = SchemaRegistryClient(settings.schema_registry.client_config())
        self.deserializer = AvroDeserializer(self.registry)
        self.settings = settings

    def read(
        self, topics: list[str], until: Callable[[list[Record]], bool], timeout: float = 60, raw: bool = False
    ) -> list[Record]:
        """Records of ``topics`` from the start until ``until(records)``; ``raw`` skips decoding."""
        consumer = Consumer(
            self.settings.kafka.client_config()
            | {"group.id": "cdc-tests", "enable.auto.commit": False, "fetch.wait.max.ms": 100}
        )
        records: list[Record] = []
        try:
            deadline = time.monotonic() + timeout
            assigned: set[str] = set()
            while time.monotonic() < deadline:
                missing = [t for t in topics if t not in assigned]
                if missing:
                    metadata = consumer.list_topics(timeout=5)
                    found = [t for t in missing if t in metadata.topics and metadata.topics[t].partitions]
                    if found:
                        assigned.update(found)
                        consumer.incremental_assign(
                            [TopicPartition(t, p, 0) for t in found for p in metadata.topics[t].partitions]
                        )
                if not assigned:
                    time.sleep(0.2)
                    continue
                for message in consumer.consume(500, 0.3):
                    if message.error():
                        continue
                    records.append(self._decode(message, raw))
                if until(records):
                    return records
            return records
        finally:
            consumer.close()

    def _decode(self, message: Any, raw: bool) -> Record:
        topic, key, value = message.topic(), message.key(), message.value()
        headers = list(message.headers() or [])
        if raw:
            return Record(topic, message.partition(), message.offset(), key, value, key, value, headers)
        key_ctx = SerializationContext(topic, MessageField.KEY)
        value_ctx = SerializationContext(topic, MessageField.VALUE)
        return Record(
            topic,
            message.partition(),
            message.offset(),
            None if key is None else self.deserializer(key, key_ctx),
            None if value is None else self.deserializer(value, value_ctx),
            key,
            value,
            headers,
        )

    def close(self) -> None:
        self.registry.close()


@pytest.fixture
def reader(cdc_stack: RunningStack) -> Iterator[Reader]:
    r = Reader(cdc_stack.settings)
    yield r
    r.close()
