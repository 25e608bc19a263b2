"""The embedded S3 (s3rver behind infra/stack/s3_server.js) behaves as S3 where Tansu relies on it.

Tansu keeps each partition's watermark and its producers' sequences in small objects that it
rewrites constantly, by conditional writes. Stock s3rver truncates a file before writing (a PUT
cut short left an empty object, measured: 0 bytes, and Tansu could not read that partition again),
serves a body replaced mid-read cut to the old length, and ignores If-Match / If-None-Match.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.stack_harness import RunningStack, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3() -> Iterator[RunningStack]:
    with running_stack("s3", ["s3"]) as handle:
        yield handle


def test_a_put_cut_short_leaves_the_previous_object(s3: RunningStack) -> None:
    url = f"{s3.settings.stack.s3_endpoint}/lake/cut-short"
    assert httpx.put(url, content=b"A" * 100_000).status_code == 200
    with socket.create_connection(("127.0.0.1", s3.settings.stack.s3_port)) as sock:
        sock.sendall(
            b"PUT /lake/cut-short HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"B" * 1000
        )
    time.sleep(0.5)
    assert httpx.get(url).content == b"A" * 100_000
    listing = httpx.get(f"{s3.settings.stack.s3_endpoint}/lake?list-type=2").text
    assert "partial" not in listing and "<Key>cut-short</Key>" in listing


def test_readers_never_see_a_partly_written_object(s3: RunningStack) -> None:
    url = f"{s3.settings.stack.s3_endpoint}/lake/rewritten"
    # Different lengths: a body replaced between s3rver's stat and its read came back cut short.
    versions = (b"C" * 200_000, b"D" * 230_000)
    assert httpx.put(url, content=versions[0]).status_code == 200
    torn: list[int] = []
    reads = 0
    stop = threading.Event()

    def write() -> None:
        with httpx.Client() as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                client.put(url, content=versions[i % 2])

    def read() -> None:
        nonlocal reads
        with httpx.Client() as client:
            while not stop.is_set():
                body = client.get(url).content
                reads += 1
                if body not in versions:
                    torn.append(len(body))

    threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join()
    assert reads > 50
    assert torn == []


def test_listings_past_a_thousand_keys_page_with_continuation_tokens(s3: RunningStack) -> None:
    """Tansu lists a partition's batches; one holding over 1,000 must still list completely."""
    endpoint = s3.settings.stack.s3_endpoint
    keys = [f"many/{i:05d}" for i in range(1_050)]
    with httpx.Client() as client:
        for key in keys:
            assert client.put(f"{endpoint}/lake/{key}", content=b"x").status_code == 200
        first = client.get(f"{endpoint}/lake", params={"list-type": "2", "prefix": "many/"})
        assert first.status_code == 200, first.text[:500]
        token = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", first.text)
        assert token is not None and first.text.count("<Key>") == 1_000
        rest = client.get(
            f"{endpoint}/lake",
            params={"list-type": "2", "prefix": "many/", "continuation-token": token.group(1)},
        )
    assert rest.status_code == 200, rest.text[:500]
    listed = re.findall(r"<Key>([^<]+)</Key>", first.text) + re.findall(r"<Key>([^<]+)</Key>", rest.text)
    assert listed == keys


def test_conditional_puts_are_refused_when_their_precondition_fails(s3: RunningStack) -> None:
    url = f"{s3.settings.stack.s3_endpoint}/lake/conditional"
    created = httpx.put(url, content=b"one", headers={"If-None-Match": "*"})
    assert created.status_code == 200
    etag = created.headers["ETag"]
    assert httpx.put(url, content=b"again", headers={"If-None-Match": "*"}).status_code == 412

    assert httpx.put(url, content=b"two", headers={"If-Match": etag}).status_code == 200
    stale = httpx.put(url, content=b"lost", headers={"If-Match": etag})
    assert stale.status_code == 412 and "PreconditionFailed" in stale.text
    assert httpx.get(url).content == b"two"

    missing = httpx.put(f"{url}-missing", content=b"x", headers={"If-Match": etag})
    assert missing.status_code == 404
    assert httpx.get(f"{url}-missing").status_code == 404


def test_optimistic_increments_from_many_writers_lose_none(s3: RunningStack) -> None:
    """Read, change, write back If-Match the etag read, retry on 412: as Tansu updates its state."""
    url = f"{s3.settings.stack.s3_endpoint}/lake/counter"
    assert httpx.put(url, content=b"0").status_code == 200

    def increment(times: int) -> int:
        conflicts = 0
        with httpx.Client() as client:
            for _ in range(times):
                while True:
                    current = client.get(url)
                    value = str(int(current.content) + 1).encode()
                    put = client.put(url, content=value, headers={"If-Match": current.headers["ETag"]})
                    if put.status_code == 200:
                        break
                    assert put.status_code == 412, put.text
                    conflicts += 1
        return conflicts

    with ThreadPoolExecutor(4) as pool:
        refused = sum(pool.map(increment, [40] * 4))
    assert int(httpx.get(url).content) == 160
    assert refused > 0, "the writers never raced, so this run proved nothing"
