"""The embedded stack under its supervisor: health, idempotence, crash recovery, clean shutdown."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from typing import Any

import psutil
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from infra import stack
from infra.stack.paths import StatePaths
from riverbank.errors import ComponentStartError, StackError
from riverbank.settings import load_settings
from tests.stack_harness import (
    RunningStack,
    environ,
    free_port,
    make_state_dir,
    remove,
    running_stack,
    stack_env,
)

pytestmark = pytest.mark.integration


def status_json(handle: RunningStack) -> dict[str, Any]:
    result = handle.cli("status", "--json")
    assert result.returncode in (0, 3), result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def component(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in data["components"] if c["name"] == name)


def test_status_reports_every_component_healthy_at_its_address(embedded_stack: RunningStack) -> None:
    result = embedded_stack.cli("status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    settings = embedded_stack.settings
    expected = {
        "s3": settings.stack.s3_endpoint,
        "kafka": settings.kafka.bootstrap_servers,
        "postgres": f"127.0.0.1:{settings.source_db.port}",
        "flink-jobmanager": settings.flink.rest_url,
    }
    names = {c["name"] for c in data["components"]}
    assert names == set(settings.stack.components)
    for c in data["components"]:
        assert c["state"] == "RUNNING" and c["healthy"], c
        assert c["pid"] and psutil.pid_exists(c["pid"])
        assert c["rss_bytes"] > 0 and c["uptime_s"] >= 0
        if c["name"] in expected:
            assert c["address"] == expected[c["name"]]
    assert data["total_rss_bytes"] == data["supervisor_rss_bytes"] + sum(
        c["rss_bytes"] for c in data["components"]
    )


def test_status_table_names_each_component(embedded_stack: RunningStack) -> None:
    result = embedded_stack.cli("status")
    assert result.returncode == 0, result.stderr
    for name in embedded_stack.settings.stack.components:
        assert name in result.stdout
    assert "total" in result.stdout


def test_up_twice_is_harmless(embedded_stack: RunningStack) -> None:
    before = {c["name"]: c["pid"] for c in status_json(embedded_stack)["components"]}
    result = embedded_stack.cli("up")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    after = {c["name"]: c["pid"] for c in status_json(embedded_stack)["components"]}
    assert after == before


def test_bank_database_is_ready_for_cdc(embedded_stack: RunningStack) -> None:
    settings = embedded_stack.settings
    with environ(embedded_stack.env):
        password = load_settings().source_db.password_value()
    assert password, "the local profile reads the generated password"
    query = (
        "select current_database(), current_setting('wal_level'), rolreplication "
        "from pg_roles where rolname = current_user"
    )
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(settings.source_db.port), "-U", settings.source_db.user,
         "-d", settings.source_db.database, "-Atc", query],
        env={**os.environ, "PGPASSWORD": password},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "bank|logical|t"


def test_broker_killed_is_restarted_and_keeps_records(embedded_stack: RunningStack) -> None:
    """kill -9 of the broker: the supervisor restarts it, and producing first after the restart
    appends after the acknowledged records instead of overwriting them (Tansu alone starts a cold
    partition at offset 0; infra/stack/kafka_guard.py warms every partition up first)."""
    settings = embedded_stack.settings
    assert settings.stack.broker_storage == "s3"
    topic = f"durability-{uuid.uuid4().hex[:8]}"
    before = {f"before-{i}".encode(): f"value-{i}".encode() for i in range(200)}
    after = {f"after-{i}".encode(): f"value-{i}".encode() for i in range(50)}
    admin = AdminClient(settings.kafka.client_config())
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=30)
    _produce(settings.kafka.client_config(), topic, before)

    old = component(status_json(embedded_stack), "kafka")
    os.kill(old["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        new = component(status_json(embedded_stack), "kafka")
        if new["healthy"] and new["pid"] != old["pid"]:
            break
        assert time.monotonic() < deadline, f"broker not back: {new}"
        time.sleep(0.5)
    assert new["restarts"] == old["restarts"] + 1
    assert new["uptime_s"] < old["uptime_s"] + 60

    _produce(settings.kafka.client_config(), topic, after)  # write first, before any read
    assert _consume_all(settings.kafka.client_config(), topic, len(before) + len(after)) == before | after


def test_local_s3_killed_mid_stream_loses_no_acknowledged_record(embedded_stack: RunningStack) -> None:
    """kill -9 of the local S3 while a producer writes. Tansu answers the produce requests it
    cannot store with errors that clients do not retry (UNKNOWN_SERVER_ERROR, PRODUCER_FENCED):
    those records are reported failed to the producer. Every acknowledged record is read back
    once, at its acknowledged offset, and producing works again once the supervisor has
    restarted the server. (Now and then Tansu also answered DUPLICATE_SEQUENCE_NUMBER for a batch
    it had not stored, which clients count as delivered; the broker guard turns that answer into
    an error: tests/integration/test_kafka_guard_duplicates.py.)"""
    config = embedded_stack.settings.kafka.client_config()
    topic = f"s3-crash-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(config)
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    acknowledged: dict[bytes, tuple[int, int]] = {}
    failed: dict[bytes, str] = {}
    producer = Producer({**config, "acks": "all", "enable.idempotence": True, "linger.ms": 5})

    def delivered(err: Any, message: Any) -> None:
        if err is not None:
            failed[message.key()] = err.name()
        else:
            acknowledged[message.key()] = (message.partition(), message.offset())

    old = component(status_json(embedded_stack), "s3")
    kill_at = 1_000
    for i in range(3_000):
        producer.produce(topic, key=f"k-{i}".encode(), value=b"v" * 100, on_delivery=delivered)
        producer.poll(0)
        time.sleep(0.001)
        if i == kill_at:
            os.kill(old["pid"], signal.SIGKILL)
    producer.flush(120)
    deadline = time.monotonic() + 60
    while not (new := component(status_json(embedded_stack), "s3"))["healthy"] or new["pid"] == old["pid"]:
        assert time.monotonic() < deadline, f"local S3 not back: {new}"
        time.sleep(0.5)

    # After the restart the broker takes records again.
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    for i in range(100):
        producer.produce(topic, key=f"after-{i}".encode(), value=b"v", on_delivery=delivered)
    assert producer.flush(60) == 0

    assert len(acknowledged) + len(failed) == 3_100
    # Which error the producer got is Tansu's choice: UNKNOWN_SERVER_ERROR, or PRODUCER_FENCED when
    # its producer state could not be read; what matters is that it was told, and what follows.
    assert all(f"after-{i}".encode() in acknowledged for i in range(100))
    assert len(set(acknowledged.values())) == len(acknowledged), "two records acknowledged at one offset"
    stored = _consume_positions(config, topic, len(acknowledged))
    assert {key: stored.get(key) for key in acknowledged} == acknowledged
    # A record reported failed may still have been stored: the producer was told it was not.
    assert set(stored) - set(acknowledged) <= set(failed)


def test_concurrent_idempotent_producers_on_one_partition_get_distinct_offsets(
    embedded_stack: RunningStack,
) -> None:
    """Several producers on one partition at once: every acknowledged record has its own offset and
    is read back. Tansu hands out offsets and checks producer sequences by conditional writes to
    the local S3; with the stack's earlier local S3 (stock s3rver), which ignored them, 4 producers
    x 500 records were acknowledged 1,246 duplicate offsets and only 750 could be read back."""
    config = embedded_stack.settings.kafka.client_config()
    topic = f"concurrent-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(config)
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    acknowledged: list[tuple[int, int]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def produce(writer: int) -> None:
        producer = Producer({**config, "acks": "all", "enable.idempotence": True, "linger.ms": 1})

        def delivered(err: Any, message: Any) -> None:
            with lock:
                if err is not None:
                    failures.append(str(err))
                else:
                    acknowledged.append((message.partition(), message.offset()))

        for i in range(400):
            producer.produce(topic, key=f"{writer}-{i}".encode(), value=b"v" * 64, on_delivery=delivered)
            producer.poll(0)
        producer.flush(60)

    writers = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    assert failures == []
    assert len(acknowledged) == 1_600
    assert len(set(acknowledged)) == 1_600, "two records were acknowledged at the same offset"
    received = _consume_all(config, topic, 1_600)
    assert set(received) == {f"{w}-{i}".encode() for w in range(4) for i in range(400)}


def _produce(config: dict[str, str], topic: str, records: dict[bytes, bytes]) -> None:
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    for key, value in records.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(60) == 0


def _reader(config: dict[str, str], topic: str) -> Consumer:
    """A consumer in a group of its own, reading ``topic`` from the start."""
    consumer = Consumer({
        **config, "group.id": f"check-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 2000,
    })  # fmt: skip
    consumer.subscribe([topic])
    return consumer


def _consume_positions(config: dict[str, str], topic: str, expected: int) -> dict[bytes, tuple[int, int]]:
    """Each key read from the start of ``topic`` with its (partition, offset); a key read twice fails."""
    consumer = _reader(config, topic)
    positions: dict[bytes, tuple[int, int]] = {}
    deadline = time.monotonic() + 60
    quiet_until = None
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            assert message.key() not in positions, f"{message.key()!r} stored twice"
            positions[message.key()] = (message.partition(), message.offset())
        if len(positions) >= expected:
            # Read on a little: records stored but reported failed follow the acknowledged ones.
            quiet_until = quiet_until or time.monotonic() + 3
            if time.monotonic() > quiet_until:
                break
    consumer.close()
    return positions


def _consume_all(config: dict[str, str], topic: str, expected: int) -> dict[bytes, bytes]:
    consumer = _reader(config, topic)
    received: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 60
    while len(received) < expected and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            received[message.key()] = message.value()
    consumer.close()
    return received


def test_down_stops_everything_it_started_and_nothing_else() -> None:
    bystander = subprocess.Popen(["sleep", "300"])
    components = ["s3", "kafka", "postgres"]
    try:
        with running_stack("down", components) as handle:
            pids = [c["pid"] for c in status_json(handle)["components"]]
            children = [p.pid for pid in pids for p in psutil.Process(pid).children(recursive=True)]
            supervisor_pid = int(handle.paths.supervisor_pidfile.read_text())
            result = handle.cli("down", "--json")
            assert result.returncode == 0, result.stderr
            assert sorted(json.loads(result.stdout)["stopped"]) == sorted(components)
            gone = [*pids, *children, supervisor_pid]
            _, alive = psutil.wait_procs([_proc(p) for p in gone if psutil.pid_exists(p)], timeout=10)
            assert alive == []
            assert not _processes_mentioning(str(handle.paths.root))
            assert handle.cli("status").returncode == 3
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_component_that_fails_to_start_is_named_with_its_log_tail() -> None:
    state_dir = make_state_dir("fail")
    env = stack_env(state_dir, ["postgres"])
    with environ(env):
        settings = load_settings()
    paths = StatePaths(state_dir)
    # A damaged data directory (no postgresql.conf): the server refuses to start.
    data = paths.postgres / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("99\n")
    for path in (paths.postgres, data):
        shutil.chown(path, "postgres", "postgres")
    data.chmod(0o700)
    try:
        with pytest.raises(ComponentStartError) as caught:
            stack.up(settings)
        assert caught.value.component == "postgres"
        assert "could not access the server configuration file" in caught.value.log_tail
        assert "postgres failed to start" in str(caught.value)
        assert caught.value.log_path == str(paths.log_of("postgres"))
    finally:
        stack.down(settings)
        remove(paths)


def test_a_port_held_by_another_process_is_named_not_mistaken_for_ours() -> None:
    state_dir = make_state_dir("busy")
    env = stack_env(state_dir, ["postgres"])
    with environ(env):
        settings = load_settings()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", settings.source_db.port))
    blocker.listen()
    try:
        with pytest.raises(StackError) as caught:
            stack.up(settings)
        message = str(caught.value)
        assert f"postgres cannot listen on 127.0.0.1:{settings.source_db.port}" in message
        assert f"(pid {os.getpid()})" in message and "RIVERBANK_SOURCE_DB__PORT" in message
    finally:
        blocker.close()
        stack.down(settings)
        remove(StatePaths(state_dir))


def test_unreachable_endpoint_is_reported_not_crashed(embedded_stack: RunningStack) -> None:
    port = free_port()  # nothing listens here
    result = embedded_stack.cli("status", "--json")
    assert result.returncode == 0
    env = {**embedded_stack.env, "RIVERBANK_FLINK__REST_URL": f"http://127.0.0.1:{port}"}
    moved = subprocess.run(
        [*result.args[:3], "status", "--json"], env={**os.environ, **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert moved.returncode == 3
    jm = component(json.loads(moved.stdout), "flink-jobmanager")
    assert not jm["healthy"] and str(port) in jm["detail"]


def _proc(pid: int) -> psutil.Process:
    return psutil.Process(pid)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if text in cmdline:
            found.append(cmdline)
    return found


def test_records_survive_down_and_up() -> None:
    with running_stack("restart", ["s3", "kafka"]) as handle:
        config = handle.settings.kafka.client_config()
        first = {f"first-{i}".encode(): b"x" * i for i in range(50)}
        second = {f"second-{i}".encode(): b"y" * i for i in range(50)}
        _produce(config, "restart.check", first)
        assert handle.cli("down").returncode == 0
        result = handle.cli("up")
        assert result.returncode == 0, result.stderr
        _produce(config, "restart.check", second)
        assert _consume_all(config, "restart.check", 100) == first | second
