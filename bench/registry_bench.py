"""Registry throughput and latency with confluent-kafka's SchemaRegistryClient.

    .venv/bin/python bench/registry_bench.py            # starts a private registry on a free port
    .venv/bin/python bench/registry_bench.py --url http://127.0.0.1:8081 -n 2000

"uncached" clears the client's caches before every call, so each call is an HTTP round trip;
"cached" repeats the call on a warm client (what producers and consumers see after the first
message). Prints one line per scenario: operations/s, p50 and p99 latency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from tests.stack_harness import free_port


@contextmanager
def private_registry() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERBANK_")}
        env |= {
            "RIVERBANK_REGISTRY_SERVER__STORAGE_PATH": str(Path(tmp) / "bench.db"),
            "RIVERBANK_SCHEMA_REGISTRY__URL": url,
            "RIVERBANK_CONFIG": str(Path(tmp) / "absent.toml"),
        }
        log = (Path(tmp) / "registry.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "riverbank", "registry", "serve", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"registry did not start; see {log.name}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()


def schema(i: int, prefix: str) -> Schema:
    fields = [{"name": "id", "type": "string"}, {"name": f"f{i}", "type": "long", "default": 0}]
    return Schema(json.dumps({"type": "record", "name": f"R{prefix}{i}", "fields": fields}), "AVRO")


def measure(name: str, n: int, call: Callable[[int], object]) -> None:
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"{name:<42} {n / total:>10.0f} ops/s   p50 {p50:>8.3f} ms   p99 {p99:>8.3f} ms")


def run(url: str, n: int) -> None:
    client = SchemaRegistryClient({"url": url})
    prefix = f"b{int(time.time())}"
    ids: list[int] = []
    print(f"registry {url}, {n} operations per scenario")

    def register_new(i: int) -> None:
        client.clear_caches()
        ids.append(client.register_schema(f"{prefix}-{i}-value", schema(i, prefix)))

    measure("register new schema (uncached)", n, register_new)

    def register_again(i: int) -> None:
        client.clear_caches()
        client.register_schema(f"{prefix}-{i}-value", schema(i, prefix))

    measure("register existing schema (uncached)", n, register_again)
    same = schema(0, prefix)
    client.register_schema(f"{prefix}-0-value", same)
    measure(
        "register existing schema (cached)", n, lambda i: client.register_schema(f"{prefix}-0-value", same)
    )

    def by_id_uncached(i: int) -> None:
        client.clear_caches()
        client.get_schema(ids[i % len(ids)])

    measure("get schema by id (uncached)", n, by_id_uncached)
    client.get_schema(ids[0])
    measure("get schema by id (cached)", n, lambda i: client.get_schema(ids[0]))

    def lookup_uncached(i: int) -> None:
        client.clear_caches()
        client.lookup_schema(f"{prefix}-{i % n}-value", schema(i % n, prefix))

    measure("lookup schema in subject (uncached)", n, lookup_uncached)

    def latest_uncached(i: int) -> None:
        client.clear_caches()
        client.get_latest_version(f"{prefix}-{i % n}-value")

    measure("latest version (uncached)", n, latest_uncached)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an already running registry; default: start a private one")
    parser.add_argument("-n", type=int, default=500, help="operations per scenario")
    args = parser.parse_args()
    if args.url:
        run(args.url, args.n)
    else:
        with private_registry() as url:
            run(url, args.n)


if __name__ == "__main__":
    main()
