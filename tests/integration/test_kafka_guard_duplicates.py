"""A lost answer from the object store must not become a false acknowledgement.

Tansu 0.6 on s3 storage advances an idempotent producer's sequence (in its ``meta.json``) before it
writes the batch. When the answer to that write is lost, its object store client retries, is
refused (the etag moved: the write had landed), re-reads the sequence, and answers the Produce
DUPLICATE_SEQUENCE_NUMBER, which clients count as delivered, though the batch was never stored.
A kill -9 of the local S3 mid-stream produced this now and then; here a proxy between Tansu and a
real local S3 loses exactly one answer, on demand. Everything else is real: Tansu, the local S3,
the broker guard, librdkafka.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from infra.stack.paths import REPO_ROOT
from tests.integration.guard_process import RunningGuard, running_guard
from tests.stack_harness import free_port

pytestmark = pytest.mark.integration

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class AnswerLosingProxy:
    """An HTTP proxy that forwards everything, except that it can let one PUT land and then cut
    the connection instead of passing the server's answer back."""

    target: str
    #: Path suffix of the next PUT whose answer is lost; None when disarmed.
    lose_next_put_to: str | None = None
    lost: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        url = self.target + request.rel_url.raw_path_qs
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(request.method, url, headers=headers, data=body) as answer,
        ):
            payload = await answer.read()
            answer_headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            status = answer.status
        suffix = self.lose_next_put_to
        if request.method == "PUT" and suffix is not None and request.path.endswith(suffix):
            self.lose_next_put_to = None
            self.lost.append(f"{request.path} -> {status}")
            assert request.transport is not None
            request.transport.abort()  # the write landed; its answer never arrives
        return web.Response(status=status, headers=answer_headers, body=payload)


@pytest.fixture
def proxied_s3(tmp_path: Path) -> Iterator[tuple[str, AnswerLosingProxy]]:
    """A local S3 with the broker's bucket, and a proxy in front of it: (proxy url, proxy)."""
    s3_port, proxy_port = free_port(), free_port()
    log = (tmp_path / "s3.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "infra.local_s3", "--directory", str(tmp_path / "s3"),
         "--port", str(s3_port), "--bucket", "tansu"],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    proxy = AnswerLosingProxy(f"http://127.0.0.1:{s3_port}")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(web.Application(), handle_signals=False)

    async def start() -> None:
        runner.app.router.add_route("*", "/{tail:.*}", proxy.handle)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", proxy_port).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        _wait_for_port(s3_port)
        yield f"http://127.0.0.1:{proxy_port}", proxy
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listening on {port}"
            time.sleep(0.1)


@pytest.fixture
def s3_broker(
    request: pytest.FixtureRequest, tmp_path: Path, proxied_s3: tuple[str, AnswerLosingProxy]
) -> Iterator[RunningGuard]:
    """Tansu on s3 storage (through the proxy) behind the guard; the guard's option from the test's
    parameter."""
    endpoint, _ = proxied_s3
    options = ["--fail-unconfirmed-duplicates"] if request.param else []
    environment = {
        "CLUSTER_ID": "duplicates", "AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
    }  # fmt: skip
    with running_guard(tmp_path, options, storage="s3://tansu/", env=environment) as running:
        yield running


class OneByOneProducer:
    """An idempotent producer that waits for each record's delivery report: (partition, offset)
    when acknowledged, else the error's name."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 0, "log_level": 0})  # fmt: skip

    def send(self, keys: list[str]) -> dict[str, Any]:
        reports: dict[str, Any] = {}

        def delivered(err: Any, message: Any) -> None:
            key = message.key().decode()
            reports[key] = err.name() if err is not None else (message.partition(), message.offset())

        for key in keys:
            self.producer.produce(self.topic, key=key.encode(), value=b"v", on_delivery=delivered)
            self.producer.flush(60)
        assert set(reports) == set(keys), f"no delivery report for {set(keys) - set(reports)}"
        return reports


def read_back(bootstrap: str, topic: str) -> dict[str, int]:
    reader = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False,
        "enable.partition.eof": True, "log_level": 0,
    })  # fmt: skip
    reader.assign([TopicPartition(topic, 0, 0)])
    stored: dict[str, int] = {}
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == -191:  # _PARTITION_EOF: read to the end
                    return stored
                continue
            stored[message.key().decode()] = message.offset()
    finally:
        reader.close()
    raise AssertionError(f"{topic} not read to its end within 60 s; read {len(stored)}")


@pytest.mark.parametrize("s3_broker", [True, False], ids=["guard-fails-them", "tansu-alone"], indirect=True)
def test_a_batch_whose_sequence_write_lost_its_answer_is_not_acknowledged(
    s3_broker: RunningGuard, proxied_s3: tuple[str, AnswerLosingProxy], request: pytest.FixtureRequest
) -> None:
    _, proxy = proxied_s3
    guard_fails_them = request.node.callspec.params["s3_broker"]
    topic = f"dup-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": s3_broker.bootstrap, "log_level": 0})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)

    producer = OneByOneProducer(s3_broker.bootstrap, topic)
    before = producer.send([f"before-{i}" for i in range(5)])
    # The next write of meta.json is this producer's sequence for the next batch.
    proxy.lose_next_put_to = "/meta.json"
    (lost,) = producer.send(["answer-lost"]).values()
    assert len(proxy.lost) == 1, "the proxy lost no answer"
    # The producer may be unusable after a failed batch; a new one carries on.
    after = OneByOneProducer(s3_broker.bootstrap, topic).send([f"after-{i}" for i in range(5)])
    stored = read_back(s3_broker.bootstrap, topic)

    assert all(isinstance(report, tuple) for report in (before | after).values()), before | after
    acknowledged = {key: report[1] for key, report in (before | after).items()}
    assert acknowledged == {key: stored[key] for key in acknowledged}
    assert "answer-lost" not in stored  # Tansu never wrote the batch
    stats = s3_broker.stats()
    if guard_fails_them:
        assert lost == "UNKNOWN", lost  # librdkafka's name for UNKNOWN_SERVER_ERROR
        assert stats.get("unconfirmed_duplicates_failed") == 1, stats
        assert "unparsed" not in stats, stats
    else:
        # What the guard corrects: Tansu answers DUPLICATE_SEQUENCE_NUMBER, which librdkafka
        # reports as delivered, with no offset. Should a Tansu release fix this, this fails.
        assert isinstance(lost, tuple) and (lost[1] is None or lost[1] < 0), lost
        assert "unconfirmed_duplicates_failed" not in stats, stats
