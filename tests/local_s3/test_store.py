"""The local S3's store: listings against a model of S3's rules, and what survives a restart."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from infra.local_s3.s3rver_import import import_s3rver_directory
from infra.local_s3.store import ObjectStore, S3Error, after


def put(store: ObjectStore, bucket: str, key: str, body: bytes, **conditions: str) -> str:
    new = store.new_version(bucket)
    new.write(body)
    return store.commit(bucket, key, new, content_type=None, metadata={}, **conditions).etag


def read(store: ObjectStore, bucket: str, key: str) -> bytes:
    version = store.head(bucket, key)
    with store.open_body(bucket, version) as handle:
        return handle.read(version.size)


def model_listing(keys: list[str], prefix: str, delimiter: str) -> list[str]:
    """S3's rule, stated directly: keys under the prefix, each rolled up at its first delimiter."""
    entries: list[str] = []
    for key in sorted(keys):
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = key if cut == -1 else key[: cut + len(delimiter)]
        if entry not in entries:
            entries.append(entry)
    return entries


def paged_listing(store: ObjectStore, prefix: str, delimiter: str, page: int) -> list[str]:
    entries: list[str] = []
    start_at = ""
    while True:
        listing = store.list_keys("b", prefix=prefix, delimiter=delimiter, start_at=start_at, max_keys=page)
        got = [v.key for v in listing.objects] + listing.common_prefixes
        assert len(got) <= page
        entries.extend(sorted(got))
        if listing.resume_at is None:
            return entries
        start_at = listing.resume_at


def test_listings_page_through_the_same_entries_as_s3s_rules(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    rng = random.Random(7)
    alphabet = ["a", "b", "a/", "b/", "/", "c.d", "é", "+", " "]
    keys = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(400)})
    for key in keys:
        put(store, "b", key, key.encode())
    for prefix in ("", "a", "a/", "b/a", "zz"):
        for delimiter in ("", "/", "a/"):
            for page in (1, 3, 1000):
                expected = model_listing(keys, prefix, delimiter)
                assert paged_listing(store, prefix, delimiter, page) == expected, (prefix, delimiter, page)


def test_start_after_skips_up_to_and_including_the_key(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    for key in ("k1", "k2", "k3"):
        put(store, "b", key, b"x")
    listing = store.list_keys("b", start_at=after("k1"))
    assert [v.key for v in listing.objects] == ["k2", "k3"]


def test_conditional_writes_follow_s3(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    etag = put(store, "b", "k", b"one", if_none_match="*")
    with pytest.raises(S3Error) as refused:
        put(store, "b", "k", b"two", if_none_match="*")
    assert refused.value.status == 412
    put(store, "b", "k", b"two", if_match=f'"{etag}"')
    with pytest.raises(S3Error) as stale:
        put(store, "b", "k", b"three", if_match=f'"{etag}"')
    assert stale.value.status == 412
    with pytest.raises(S3Error) as missing:
        put(store, "b", "absent", b"x", if_match=f'"{etag}"')
    assert missing.value.code == "NoSuchKey"
    assert read(store, "b", "k") == b"two"
    # A refused write leaves no file behind: only the current version of "k" is on disk.
    assert len(list((tmp_path / "b" / "objects").iterdir())) == 1


def test_a_reader_keeps_the_version_it_opened_while_a_write_replaces_it(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    put(store, "b", "k", b"old" * 1000)
    version = store.head("b", "k")
    with store.open_body("b", version) as reader:
        put(store, "b", "k", b"new")
        assert reader.read(version.size) == b"old" * 1000
    assert read(store, "b", "k") == b"new"


def test_a_restart_keeps_the_newest_whole_version_of_each_key(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    put(store, "b", "kept", b"v1")
    put(store, "b", "kept", b"v2")
    put(store, "b", "gone", b"x")
    store.delete("b", "gone")
    objects = tmp_path / "b" / "objects"
    current = store.head("b", "kept").file
    # A crash after a new version was written but before the old one was unlinked:
    stale = objects / "0"
    stale.write_bytes((objects / current).read_bytes().replace(b"v2", b"v0"))
    # A PUT cut short: a body with no trailer, numbered after everything else.
    (objects / "999").write_bytes(b"half a bo")

    reopened = ObjectStore(tmp_path)
    assert read(reopened, "b", "kept") == b"v2"
    assert [v.key for v in reopened.list_keys("b").objects] == ["kept"]
    assert sorted(p.name for p in objects.iterdir()) == [current]
    # New versions are numbered past every file seen, so none can collide with a leftover.
    put(reopened, "b", "next", b"y")
    assert int(reopened.head("b", "next").file) > 999


def test_an_s3rver_directory_is_imported_with_its_keys_bodies_and_etags(tmp_path: Path) -> None:
    old = tmp_path / "s3"
    body = old / "lake" / "warehouse" / "t" / "data.parquet._S3rver_object"
    body.parent.mkdir(parents=True)
    body.write_bytes(b"PAR1")
    body.with_name("data.parquet._S3rver_object.md5").write_text("abc123")
    body.with_name("data.parquet._S3rver_metadata.json").write_text(
        json.dumps({"content-type": "application/x-parquet", "x-amz-meta-owner": "sink"})
    )
    (old / "tansu").mkdir()
    store = ObjectStore(tmp_path / "objects")

    assert import_s3rver_directory(old, store) == 1
    version = store.head("lake", "warehouse/t/data.parquet")
    assert (version.etag, version.content_type, version.metadata) == (
        "abc123",
        "application/x-parquet",
        {"x-amz-meta-owner": "sink"},
    )
    assert read(store, "lake", "warehouse/t/data.parquet") == b"PAR1"
    assert set(store.buckets) == {"lake", "tansu"}
