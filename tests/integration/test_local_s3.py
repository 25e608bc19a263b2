"""The embedded S3 (s3rver behind infra/stack/s3_server.js) replaces objects atomically, as S3 does.

Tansu keeps each partition's watermark in one small object that it rewrites constantly; stock
s3rver truncates the file before writing, so a PUT cut short leaves an empty object (measured: 0
bytes) and Tansu cannot read that partition again.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

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
    versions = (b"C" * 200_000, b"D" * 200_000)
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
