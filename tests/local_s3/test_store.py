"""The local S3's store: listings against a model of S3's rules, and what survives a restart."""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path

import pytest

from infra.local_s3.s3rver_import import import_s3rver_directory
from infra.local_s3.store import ObjectStore, ObjectVersion, S3Error, VersionFiles, after


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
    # A refused write leaves no file behind: only the current version of "k" is on disk (once the
    # files created ahead and the replaced ones are gone).
    store.close()
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
    # A PUT cut short: a body with no trailer, numbered after everything else; and a spare file
    # created ahead for a version and never written (the process was killed).
    store.close()
    (objects / "999").write_bytes(b"half a bo")
    (objects / "1000").write_bytes(b"")

    reopened = ObjectStore(tmp_path)
    assert read(reopened, "b", "kept") == b"v2"
    assert [v.key for v in reopened.list_keys("b").objects] == ["kept"]
    assert sorted(p.name for p in objects.iterdir()) == [current]
    # New versions are numbered past every file seen, so none can collide with a leftover.
    put(reopened, "b", "next", b"y")
    assert int(reopened.head("b", "next").file) > 1000
    reopened.close()


def test_version_files_are_created_ahead_and_handed_out_in_the_order_of_their_numbers(tmp_path: Path) -> None:
    spares = VersionFiles(tmp_path, itertools.count(5), ahead=4)
    taken = []
    for _ in range(10):
        name, path, handle = spares.take()
        assert path == tmp_path / name
        handle.write(name.encode())
        handle.close()
        taken.append(name)
    assert taken == [str(n) for n in range(5, 15)]
    # The thread keeps `ahead` files ready past the last one handed out.
    deadline = time.monotonic() + 10
    while len(list(tmp_path.iterdir())) < 14 and time.monotonic() < deadline:
        time.sleep(0.01)
    on_disk = sorted(int(p.name) for p in tmp_path.iterdir())
    assert on_disk == list(range(5, 19)), on_disk
    spares.close()
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == list(range(5, 15))
    assert all((tmp_path / name).read_bytes() == name.encode() for name in taken)


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


def test_a_replaced_version_is_unlinked_by_the_thread(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    put(store, "b", "k", b"v1")
    first = tmp_path / "b" / "objects" / store.head("b", "k").file
    put(store, "b", "k", b"v2")
    deadline = time.monotonic() + 10
    while first.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not first.exists()
    assert read(store, "b", "k") == b"v2"
    store.close()


def test_a_deletion_unlinks_the_keys_replaced_versions_still_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread behind on its unlinks must not let a deleted key come back at the next start."""
    monkeypatch.setattr(VersionFiles, "_wake", lambda self: None)  # no thread: every unlink queued
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    put(store, "b", "k", b"v1")
    put(store, "b", "k", b"v2")
    objects = tmp_path / "b" / "objects"
    assert len(list(objects.iterdir())) == 2  # v1 waits for the thread
    store.delete("b", "k")
    assert list(objects.iterdir()) == []
    assert ObjectStore(tmp_path).list_keys("b").objects == []


def test_a_restart_keeps_the_version_committed_last_whatever_its_number(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.create_bucket("b")
    put(store, "b", "k", b"zeroth")
    put(store, "b", "k", b"first")  # file 1; the close below unlinks file 0
    current = store.head("b", "k")
    store.close()
    # A write numbered before it that committed after it (two PUTs of one key at once), its
    # older rival not yet unlinked when the process died:
    late = ObjectVersion(key="k", file="0", etag="e", size=4, modified=current.modified, seq=current.seq + 1)
    (tmp_path / "b" / "objects" / "0").write_bytes(b"late" + late.trailer())
    assert int(current.file) > 0

    reopened = ObjectStore(tmp_path)
    assert read(reopened, "b", "k") == b"late"
    assert sorted(p.name for p in (tmp_path / "b" / "objects").iterdir()) == ["0"]
