"""The embedded S3 (infra/local_s3) behaves as S3 for the clients that use it.

Tansu keeps each partition's watermark and its producers' sequences in small objects that it
rewrites constantly, by conditional writes; the first tests hold the server to what Tansu relies
on (the stack's earlier s3rver failed each of them: a PUT cut short left an empty object, a body
replaced mid-read came back cut short, conditional writes were ignored). The others drive it with
boto3, pyarrow's S3 filesystem and raw aws-chunked uploads, as the lake's tools do.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from pyarrow import fs as pafs

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


@pytest.fixture
def client(s3: RunningStack) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.settings.stack.s3_endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        region_name="us-east-1",
    )


def test_boto3_objects_round_trip_with_metadata_ranges_and_conditional_reads(client: Any) -> None:
    key = "odd keys/a+b c%d/é.txt"
    put = client.put_object(
        Bucket="lake", Key=key, Body=b"0123456789", ContentType="text/plain", Metadata={"m": "1"}
    )
    head = client.head_object(Bucket="lake", Key=key)
    assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (10, "text/plain", {"m": "1"})
    assert head["ETag"] == put["ETag"]
    assert client.get_object(Bucket="lake", Key=key, Range="bytes=2-4")["Body"].read() == b"234"
    assert client.get_object(Bucket="lake", Key=key, Range="bytes=-3")["Body"].read() == b"789"
    with pytest.raises(ClientError) as unchanged:
        client.get_object(Bucket="lake", Key=key, IfNoneMatch=put["ETag"])
    assert unchanged.value.response["Error"]["Code"] == "304"
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket="lake", Key=f"{key}-absent")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"

    copied = client.copy_object(Bucket="lake", Key="copies/one", CopySource={"Bucket": "lake", "Key": key})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert client.get_object(Bucket="lake", Key="copies/one")["Body"].read() == b"0123456789"


def test_boto3_listings_roll_up_prefixes_and_page_with_url_encoded_keys(client: Any) -> None:
    keys = [*sorted(f"listed/{d} dir/{i:03d}+é" for d in "ab" for i in range(30)), "listed/top"]
    for key in keys:
        client.put_object(Bucket="lake", Key=key, Body=b"x")
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket="lake", Prefix="listed/", PaginationConfig={"PageSize": 7}
    )
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == sorted(keys)
    rolled = client.list_objects_v2(Bucket="lake", Prefix="listed/", Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["listed/a dir/", "listed/b dir/"]
    assert [o["Key"] for o in rolled["Contents"]] == ["listed/top"]
    version_1 = client.get_paginator("list_objects").paginate(
        Bucket="lake", Prefix="listed/a dir/", PaginationConfig={"PageSize": 4}
    )
    assert [o["Key"] for page in version_1 for o in page.get("Contents", [])] == keys[:30]

    deleted = client.delete_objects(Bucket="lake", Delete={"Objects": [{"Key": k} for k in keys[:30]]})
    assert len(deleted["Deleted"]) == 30
    remaining = client.list_objects_v2(Bucket="lake", Prefix="listed/")
    assert [o["Key"] for o in remaining["Contents"]] == keys[30:]


def test_multipart_uploads_assemble_their_parts_in_order(client: Any) -> None:
    upload = client.create_multipart_upload(
        Bucket="lake", Key="multi/object", ContentType="application/x-test"
    )
    parts = [b"a" * (5 << 20), b"b" * 1000]
    etags = [
        client.upload_part(
            Bucket="lake", Key="multi/object", UploadId=upload["UploadId"], PartNumber=n, Body=body
        )["ETag"]
        for n, body in enumerate(parts, start=1)
    ]
    done = client.complete_multipart_upload(
        Bucket="lake",
        Key="multi/object",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]},
    )
    assert done["ETag"].endswith('-2"')
    got = client.get_object(Bucket="lake", Key="multi/object")
    assert got["ContentType"] == "application/x-test"
    assert got["Body"].read() == b"".join(parts)

    aborted = client.create_multipart_upload(Bucket="lake", Key="multi/aborted")
    client.abort_multipart_upload(Bucket="lake", Key="multi/aborted", UploadId=aborted["UploadId"])
    with pytest.raises(ClientError):
        client.head_object(Bucket="lake", Key="multi/aborted")


@pytest.fixture
def arrow_s3(s3: RunningStack) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key="local",
        secret_key="local",
        endpoint_override=s3.settings.stack.s3_endpoint,
        scheme="http",
        region="us-east-1",
    )


def test_pyarrow_writes_and_reads_a_multipart_file(arrow_s3: pafs.S3FileSystem) -> None:
    filesystem = arrow_s3
    body = bytes(range(256)) * (48 << 10)  # 12 MiB: pyarrow uploads it in parts
    with filesystem.open_output_stream("lake/arrow/big.bin") as out:
        out.write(body)
    with filesystem.open_input_file("lake/arrow/big.bin") as source:
        assert source.size() == len(body)
        source.seek(len(body) - 5)
        assert source.read(5) == body[-5:]
    selected = filesystem.get_file_info(pafs.FileSelector("lake/arrow"))
    assert [(info.path, info.size) for info in selected] == [("lake/arrow/big.bin", len(body))]


def test_aws_chunked_uploads_are_stored_without_their_framing(s3: RunningStack) -> None:
    body = b"hello, chunked world"
    framed = (
        f"{8:x};chunk-signature=abc\r\n".encode()
        + body[:8]
        + b"\r\n"
        + f"{len(body) - 8:x}\r\n".encode()
        + body[8:]
        + b"\r\n"
        + b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    )
    url = f"{s3.settings.stack.s3_endpoint}/lake/chunked"
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(body)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    assert httpx.put(url, content=framed, headers=headers).status_code == 200
    stored = httpx.get(url)
    assert stored.content == body
    assert "content-encoding" not in stored.headers


def test_duckdb_httpfs_globs_and_reads_parquet_through_the_lake_connection(
    s3: RunningStack, arrow_s3: pafs.S3FileSystem, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iceberg.sql.duck import LakeConnection
    from riverbank.settings import load_settings

    for part in range(3):
        table = pa.table({"part": [part] * 1000, "n": list(range(1000))})
        pq.write_table(table, f"lake/duck/part-{part}.parquet", filesystem=arrow_s3, row_group_size=100)
    settings = load_settings(
        stack={"state_dir": str(tmp_path)},
        lake={"s3_endpoint": s3.settings.stack.s3_endpoint, "warehouse": "s3://lake/duck-warehouse"},
        aws={"region": "us-east-1"},
    )
    with LakeConnection(settings) as lake:
        rows = lake.con.execute(
            "SELECT part, count(*), sum(n) FROM read_parquet('s3://lake/duck/*.parquet') "
            "GROUP BY part ORDER BY part"
        ).fetchall()
    assert rows == [(part, 1000, 499_500) for part in range(3)]
