"""The local S3 under the embedded broker's request pattern: its CPU per request, and latency.

    .venv/bin/python -m bench local_s3 [--produces 5000] [--batch-bytes 8192]

Starts a private local S3 (``python -m infra.local_s3``) on a free port and, over one keep-alive
connection, does what Tansu does per Produce on s3 storage: a conditional PUT of the record batch
(``If-None-Match: *``), a PUT of the partition's watermark replacing its etag (``If-Match``), and a
GET of the cluster's metadata every fourth time; every 500 produces, a DeleteObjects of the
batches older than the newest 2,000 (the broker guard's retention). Prints the server's CPU time
per request (user and system, from /proc through psutil), and each request kind's latency.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from tests.stack_harness import free_port

RETAINED = 2000
RETENTION_EVERY = 500


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench local_s3")
    parser.add_argument("--produces", type=int, default=5000)
    parser.add_argument("--batch-bytes", type=int, default=8192)
    args = parser.parse_args(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        directory = str(Path(tmp) / "s3")
        command = [sys.executable, "-m", "infra.local_s3", "--directory", directory, "--port", str(port)]
        server = subprocess.Popen([*command, "--bucket", "tansu"], stderr=subprocess.PIPE)
        try:
            assert server.stderr is not None
            server.stderr.readline()  # "listening on ..."
            run(psutil.Process(server.pid), port, args.produces, args.batch_bytes)
        finally:
            server.terminate()
            server.wait(timeout=30)


def run(server: psutil.Process, port: int, produces: int, batch_bytes: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)

    def request(method: str, path: str, body: bytes | None = None, **headers: str) -> Any:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            raise SystemExit(f"{method} {path} -> HTTP {response.status}")
        return response

    batch = os.urandom(batch_bytes)
    etag = request("PUT", "/tansu/watermark.json", b'{"high": 0}').getheader("ETag") or ""
    request("PUT", "/tansu/meta.json", b'{"producers": {}}')
    kinds = ("batch PUT", "watermark PUT", "metadata GET", "delete")
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}

    def timed(kind: str, method: str, path: str, body: bytes | None = None, **headers: str) -> str:
        started = time.perf_counter()
        response = request(method, path, body, **headers)
        latencies[kind].append(time.perf_counter() - started)
        return response.getheader("ETag") or ""

    before, started = server.cpu_times(), time.perf_counter()
    for offset in range(produces):
        timed("batch PUT", "PUT", f"/tansu/records/{offset:020d}.batch", batch, **{"If-None-Match": "*"})
        watermark = f'{{"high": {offset + 1}}}'.encode()
        etag = timed("watermark PUT", "PUT", "/tansu/watermark.json", watermark, **{"If-Match": etag})
        if offset % 4 == 0:
            timed("metadata GET", "GET", "/tansu/meta.json")
        if offset % RETENTION_EVERY == RETENTION_EVERY - 1 and offset >= RETAINED:
            old = range(max(0, offset - RETAINED - RETENTION_EVERY), offset - RETAINED)
            keys = "".join(f"<Object><Key>records/{o:020d}.batch</Key></Object>" for o in old)
            xml = f"<Delete><Quiet>true</Quiet>{keys}</Delete>".encode()
            timed("delete", "POST", "/tansu?delete", xml, **{"Content-Type": "application/xml"})
    elapsed = time.perf_counter() - started
    after = server.cpu_times()
    count = sum(len(values) for values in latencies.values())
    user, system = after.user - before.user, after.system - before.system
    print(
        f"local S3: {count:,} requests ({produces:,} produces of {batch_bytes:,} B) in {elapsed:.1f}s; "
        f"server CPU {(user + system) * 1e6 / count:.0f} us a request "
        f"(user {user * 1e6 / count:.0f}, system {system * 1e6 / count:.0f})"
    )
    for kind, values in latencies.items():
        if values:
            ordered = sorted(values)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(
                f"  {kind:14} n={len(values):>6,}  p50 {statistics.median(values) * 1000:.2f} ms  "
                f"p99 {p99 * 1000:.2f} ms  max {ordered[-1] * 1000:.2f} ms"
            )
