"""A guard in front of the Tansu broker that makes its restarts safe.

Measured with Tansu 0.6 on s3 storage: after a restart, the first Produce to a partition that has
not been fetched since the restart is written at offset 0, overwriting acknowledged records and
moving the high watermark back. A Fetch first makes the partition continue at its stored offset.

So the broker never faces clients cold. The guard runs Tansu on an internal loopback port
(advertising the guard's address), accepts client connections on the public port but holds them,
fetches every partition once through itself as a warm-up client (recognised by the client id in
the Kafka request header), and only then forwards the held and new connections byte for byte.
When Tansu exits, the guard exits too (and Tansu dies with the guard), so the supervisor restarts
both and every restart is warmed up again.

    python -m infra.stack.kafka_guard --listen 127.0.0.1:9092 -- tansu broker --storage-engine ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

WARMUP_CLIENT_ID = "riverbank-kafka-guard-warmup"
_PR_SET_PDEATHSIG = 1
_READ_SIZE = 256 * 1024
_WARMUP_TIMEOUT_S = 120.0
_DRAIN_S = 2.0


def log(message: str) -> None:
    print(f"[kafka-guard] {message}", file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    # Runs in the child before exec: if the guard is killed (even with SIGKILL), Tansu goes too,
    # so two brokers can never share the same storage.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def client_id_of(request: bytes) -> str | None:
    """The client id in a Kafka request header (size, api key, version, correlation id, client id)."""
    if len(request) < 14:
        return None
    (length,) = struct.unpack_from(">h", request, 12)
    if length < 0 or len(request) < 14 + length:
        return None
    return request[14 : 14 + length].decode("utf-8", "replace")


class Guard:
    def __init__(self, backend: tuple[str, int]) -> None:
        self.backend = backend
        self.warm = asyncio.Event()
        self._request_pumps: set[asyncio.Future[None]] = set()

    def stop_requests(self) -> None:
        """Forward no more requests; responses to those already forwarded still flow back."""
        for pump in list(self._request_pumps):
            pump.cancel()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            await self._forward(client_r, client_w)
        except asyncio.CancelledError:  # the guard is stopping while this client was held
            client_w.close()

    async def _forward(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            size = await client_r.readexactly(4)
            (length,) = struct.unpack(">i", size)
            first = size + await client_r.readexactly(length)
            if client_id_of(first) != WARMUP_CLIENT_ID:
                await self.warm.wait()
            backend_r, backend_w = await asyncio.open_connection(*self.backend)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            client_w.close()
            return
        backend_w.write(first)
        requests = asyncio.ensure_future(_pump(client_r, backend_w))
        self._request_pumps.add(requests)
        requests.add_done_callback(self._request_pumps.discard)
        await asyncio.gather(requests, _pump(backend_r, client_w))


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_READ_SIZE):
            writer.write(data)
            await writer.drain()
    except asyncio.CancelledError:
        return  # stopping: keep the connection open so in-flight responses still arrive
    except (ConnectionError, OSError):
        pass
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()


def warm_up(public: str, internal: str, timeout_s: float) -> int:
    """Fetch every partition once through the guard; returns how many partitions were warmed."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # Metadata names the guard's address, so this client must be let through as well.
            admin = AdminClient(
                {"bootstrap.servers": internal, "client.id": WARMUP_CLIENT_ID, "log_level": 0}
            )
            metadata = admin.list_topics(timeout=5)
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker did not answer metadata on {internal}: {exc}") from exc
            time.sleep(0.2)
    partitions = [
        TopicPartition(topic, p, 0)
        for topic, meta in metadata.topics.items()
        if not topic.startswith("__")
        for p in meta.partitions
    ]
    if not partitions:
        return 0
    consumer = Consumer({
        "bootstrap.servers": public, "client.id": WARMUP_CLIENT_ID, "group.id": WARMUP_CLIENT_ID,
        "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
        # Measured: with fetch.wait.max.ms=10 Tansu (s3 storage) answers empty before its object read
        # finishes, for ever; at 100 ms a partition with data answers within a second.
        "fetch.wait.max.ms": 100, "log_level": 0,
    })  # fmt: skip
    try:
        consumer.assign(partitions)
        pending = {(tp.topic, tp.partition) for tp in partitions}
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} partitions not fetched, e.g. {sorted(pending)[:3]}")
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            # A record, the end of the partition, or a definite answer that there is nothing: fetched.
            answered = (
                KafkaError._PARTITION_EOF,
                KafkaError.OFFSET_OUT_OF_RANGE,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            )
            if error is None or error.code() in answered:
                pending.discard((message.topic(), message.partition()))
    finally:
        consumer.close()
    return len(partitions)


async def serve(listen: tuple[str, int], tansu: list[str]) -> int:
    internal_port = free_port(listen[0])
    command = [_replace_listener(arg, internal_port) for arg in tansu]
    # Its own session: the supervisor's stop signal reaches the guard only, which stops Tansu once
    # in-flight requests are answered. PDEATHSIG still takes Tansu down if the guard is killed.
    child = subprocess.Popen(command, preexec_fn=_die_with_parent, start_new_session=True)
    guard = Guard((listen[0], internal_port))
    server = await asyncio.start_server(guard.handle, listen[0], listen[1], reuse_address=True)
    log(f"tansu pid {child.pid} on internal port {internal_port}; holding clients on {listen[0]}:{listen[1]}")

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def warm() -> None:
        started = time.monotonic()
        try:
            count = warm_up(f"{listen[0]}:{listen[1]}", f"{listen[0]}:{internal_port}", _WARMUP_TIMEOUT_S)
        except Exception as exc:
            log(f"warm-up failed: {exc}; stopping so that the supervisor restarts the broker")
            loop.call_soon_threadsafe(stopping.set)
            return
        log(f"warmed {count} partitions in {time.monotonic() - started:.2f}s; forwarding clients")
        loop.call_soon_threadsafe(guard.warm.set)

    threading.Thread(target=warm, name="warm-up", daemon=True).start()
    child_exit: asyncio.Future[Any] = loop.run_in_executor(None, child.wait)
    stop_wait: asyncio.Future[Any] = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([child_exit, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    server.close()
    if child.poll() is None:
        guard.stop_requests()
        await asyncio.sleep(_DRAIN_S)  # requests already forwarded are persisted and answered
        child.terminate()
        try:
            await asyncio.wait_for(child_exit, 20)
        except TimeoutError:
            child.kill()
        log("stopped")
        return 0
    log(f"tansu exited with {child.returncode}")
    return child.returncode or 1


def _replace_listener(arg: str, port: int) -> str:
    # Tansu listens on the internal port; it keeps advertising the guard's public address.
    return arg.replace("{internal_port}", str(port))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="public host:port clients connect to")
    parser.add_argument(
        "tansu", nargs=argparse.REMAINDER, help="-- the tansu command; {internal_port} is filled in"
    )
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    command = args.tansu[1:] if args.tansu[:1] == ["--"] else args.tansu
    sys.exit(asyncio.run(serve((host, int(port)), command)))


if __name__ == "__main__":
    main()
