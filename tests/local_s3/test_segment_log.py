"""Small versions and deletions in the local S3's segment log: what survives a restart, what is
reclaimed, and a write that fails."""

from __future__ import annotations

import errno
import json
import os
import random
import struct
from pathlib import Path

import pytest

from infra.local_s3 import segment_log
from infra.local_s3.store import BufferedBody, ObjectStore

LARGE = segment_log.SMALL_OBJECT_MAX + 1


def put(store: ObjectStore, key: str, body: bytes, **conditions: str) -> None:
    new = store.new_body("b", len(body))
    new.write(body)
    store.commit("b", key, new, content_type=None, metadata={"x-amz-meta-n": str(len(body))}, **conditions)


def read(store: ObjectStore, key: str) -> bytes:
    version = store.head("b", key)
    with store.open_body("b", version) as handle:
        return handle.read(version.size)


def contents(store: ObjectStore) -> dict[str, bytes]:
    return {
        version.key: read(store, version.key) for version in store.list_keys("b", max_keys=100_000).objects
    }


def contents_after_restart(store: ObjectStore, root: Path) -> dict[str, bytes]:
    store.close()
    return contents(ObjectStore(root))


def log_files(root: Path) -> list[str]:
    log = root / "b" / "log"
    return sorted(p.name for p in log.iterdir()) if log.is_dir() else []


def object_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "b" / "objects").iterdir())


def new_store(root: Path) -> ObjectStore:
    store = ObjectStore(root)
    store.create_bucket("b")
    return store


def test_small_versions_are_log_records_and_large_ones_files(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    put(store, "small", b"s" * 100)
    put(store, "large", b"L" * LARGE)
    assert isinstance(store.new_body("b", 100), BufferedBody)
    unsized = store.new_body("b", None)  # a body of unknown length: a file
    assert not isinstance(unsized, BufferedBody)
    unsized.discard()

    assert store.head("b", "small").segment >= 0 and store.head("b", "small").file == ""
    assert store.head("b", "large").segment == -1
    assert store.head("b", "large").file in object_files(tmp_path)
    assert read(store, "small") == b"s" * 100 and read(store, "large") == b"L" * LARGE
    assert store.head("b", "small").metadata == {"x-amz-meta-n": "100"}
    store.close()

    reopened = ObjectStore(tmp_path)
    assert contents(reopened) == {"small": b"s" * 100, "large": b"L" * LARGE}
    small = reopened.head("b", "small")
    assert (small.size, small.metadata, small.content_type) == (
        100,
        {"x-amz-meta-n": "100"},
        "binary/octet-stream",
    )


def test_replaced_and_deleted_keys_stay_so_across_restarts_whatever_kind_each_version_was(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    put(store, "small-then-large", b"v1")
    put(store, "small-then-large", b"2" * LARGE)
    put(store, "large-then-small", b"1" * LARGE)
    put(store, "large-then-small", b"v2")
    put(store, "small-deleted", b"gone")
    store.delete("b", "small-deleted")
    put(store, "small-large-deleted", b"v1")
    put(store, "small-large-deleted", b"2" * LARGE)
    store.delete("b", "small-large-deleted")  # its first version's record is still in the log
    put(store, "deleted-then-put", b"v1")
    store.delete("b", "deleted-then-put")
    put(store, "deleted-then-put", b"v3")
    expected = {"small-then-large": b"2" * LARGE, "large-then-small": b"v2", "deleted-then-put": b"v3"}
    assert contents(store) == expected
    store.close()

    reopened = ObjectStore(tmp_path)
    assert contents(reopened) == expected
    # The replaced large version's file was unlinked; only the current large version has one.
    assert object_files(tmp_path) == [reopened.head("b", "small-then-large").file]
    put(reopened, "after-restart", b"new")
    reopened.close()
    assert contents(ObjectStore(tmp_path)) == {**expected, "after-restart": b"new"}


def test_a_record_cut_short_is_cut_off_at_start_up(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    put(store, "a", b"first")
    put(store, "b", b"second")
    store.close()
    segment = tmp_path / "b" / "log" / log_files(tmp_path)[-1]
    whole = segment.stat().st_size
    with segment.open("ab") as handle:  # what a write killed halfway leaves
        handle.write(segment_log.HEADER.pack(segment_log.HEADER_MARK, segment_log.PUT, 50, 5000) + b"{...")

    reopened = ObjectStore(tmp_path)
    assert contents(reopened) == {"a": b"first", "b": b"second"}
    assert segment.stat().st_size == whole
    put(reopened, "c", b"third")
    reopened.close()
    assert contents(ObjectStore(tmp_path)) == {"a": b"first", "b": b"second", "c": b"third"}


def test_a_failed_append_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk, which the test cannot produce on demand: the write fails after part of it."""
    store = new_store(tmp_path)
    put(store, "k", b"kept")
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        put(store, "k", b"lost")
    with pytest.raises(OSError, match="No space left"):
        store.delete("b", "k")
    monkeypatch.setattr(os, "write", real_write)

    assert read(store, "k") == b"kept"
    put(store, "other", b"written after")
    assert contents_after_restart(store, tmp_path) == {"k": b"kept", "other": b"written after"}


def test_segments_are_reclaimed_and_the_log_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_log, "SEGMENT_BYTES", 4096)
    monkeypatch.setattr(segment_log, "CLEAN_MIN_GARBAGE", 16 * 1024)
    store = new_store(tmp_path)
    put(store, "kept-forever", b"k" * 300)  # in the oldest segment: cleaned forward, never lost
    for i in range(2000):
        put(store, "watermark", str(i).encode() * 20)  # rewritten: garbage behind it
        put(store, f"batch/{i:05d}", b"b" * 200)
        if i >= 50:
            store.delete("b", f"batch/{i - 50:05d}")  # retention: tombstones
    log = tmp_path / "b" / "log"
    size = sum(p.stat().st_size for p in log.iterdir())
    live = sum(store.head("b", v.key).record_length for v in store.list_keys("b", max_keys=1000).objects)
    assert size <= max(2 * live, segment_log.CLEAN_MIN_GARBAGE) + 3 * 4096, (size, live)
    assert len(log_files(tmp_path)) < 20  # 2,000 rounds wrote over a hundred segments' worth
    expected = {"kept-forever": b"k" * 300, "watermark": b"1999" * 20}
    expected |= {f"batch/{i:05d}": b"b" * 200 for i in range(1950, 2000)}
    assert contents(store) == expected
    assert contents_after_restart(store, tmp_path) == expected


def test_random_operations_and_restarts_match_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_log, "SEGMENT_BYTES", 2048)
    monkeypatch.setattr(segment_log, "CLEAN_MIN_GARBAGE", 8192)
    rng = random.Random(11)
    model: dict[str, bytes] = {}
    store = new_store(tmp_path)
    keys = [f"k{i}" for i in range(30)]
    for step in range(3000):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.6:
            body = bytes([step % 251]) * rng.randint(0, 300)
            put(store, key, body)
            model[key] = body
        elif roll < 0.63:
            body = bytes([step % 251]) * LARGE
            put(store, key, body)
            model[key] = body
        elif roll < 0.9:
            store.delete("b", key)
            model.pop(key, None)
        elif roll < 0.995:
            assert (read(store, key) if key in model else None) == model.get(key)
        else:
            store.close()
            store = ObjectStore(tmp_path)
            assert contents(store) == model, f"after a restart at step {step}"
    assert contents(store) == model
    assert contents_after_restart(store, tmp_path) == model


def test_a_tombstone_stays_while_an_older_segment_holds_the_deleted_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_log, "SEGMENT_BYTES", 600)
    store = new_store(tmp_path)
    put(store, "long-lived", b"L" * 300)  # keeps segment 0
    put(store, "deleted", b"D" * 300)  # segment 0, which is now full
    store.delete("b", "deleted")  # the tombstone opens segment 1
    put(store, "rewritten", b"R" * 600)  # fills segment 1
    put(store, "rewritten", b"r" * 10)  # segment 2: nothing current is left in segment 1
    assert log_files(tmp_path) == ["0", "1", "2"]  # segment 1 holds the tombstone for "deleted"
    store.close()

    assert contents(ObjectStore(tmp_path)) == {"long-lived": b"L" * 300, "rewritten": b"r" * 10}


def test_a_store_written_before_the_log_is_read_and_then_logged_over(tmp_path: Path) -> None:
    objects = tmp_path / "b" / "objects"
    objects.mkdir(parents=True)
    for number, (key, body) in enumerate([("replaced", b"old"), ("kept", b"file"), ("deleted", b"x")]):
        # A trailer as the store wrote it before sequence numbers.
        described = json.dumps({"key": key, "etag": "e", "size": len(body), "modified": 1.0,
                                "content_type": "binary/octet-stream", "metadata": {}}).encode()  # fmt: skip
        tail = struct.pack(">I4s", len(described), b"RBS3")
        (objects / str(number)).write_bytes(body + described + tail)
    store = ObjectStore(tmp_path)
    assert contents(store) == {"replaced": b"old", "kept": b"file", "deleted": b"x"}
    put(store, "replaced", b"new")
    store.delete("b", "deleted")
    store.close()

    assert contents(ObjectStore(tmp_path)) == {"replaced": b"new", "kept": b"file"}
    assert object_files(tmp_path) == ["1"]


def test_a_failed_reclaim_does_not_fail_the_write_that_ran_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A segment that cannot be read back (a disk fault, mocked): the write stands, the log is
    reclaimed at a later write."""
    monkeypatch.setattr(segment_log, "SEGMENT_BYTES", 1024)
    monkeypatch.setattr(segment_log, "CLEAN_MIN_GARBAGE", 4096)
    store = new_store(tmp_path)
    put(store, "kept", b"k" * 500)  # current in the oldest segment: cleaning must copy it
    real_read = segment_log.SegmentLog.read

    def unreadable(self: segment_log.SegmentLog, segment: int, offset: int, size: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(segment_log.SegmentLog, "read", unreadable)
    for i in range(40):  # deletions: their segments wait for segment 0, and the garbage grows
        put(store, f"deleted/{i}", str(i).encode() * 100)
        store.delete("b", f"deleted/{i}")
    put(store, "rewritten", b"x" * 100)
    assert "reclaiming the log of bucket b failed" in caplog.text
    assert "0" in log_files(tmp_path)
    monkeypatch.setattr(segment_log.SegmentLog, "read", real_read)
    put(store, "rewritten", b"last")
    assert "0" not in log_files(tmp_path)  # cleaned once it could be read
    assert contents(store) == {"kept": b"k" * 500, "rewritten": b"last"}
    assert contents_after_restart(store, tmp_path) == {"kept": b"k" * 500, "rewritten": b"last"}
