"""The Python half of the connector's batch layouts, and the state cache, without Flink (the Java
half is checked end to end in test_kafka_connector.py's batch-mode test)."""

from __future__ import annotations

import struct

import pytest

from flink_jobs.batches import BatchFormatError, BatchRecord, OutputBatch, pack_records, records
from flink_jobs.state_cache import StateCache


def pack_source(items: list[BatchRecord]) -> bytes:
    """What RecordBatches.fromRecords writes, spelled out independently of the module under test."""

    def field(data: bytes | None) -> bytes:
        return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data

    out = b""
    for r in items:
        out += struct.pack(">qq", r.offset, r.timestamp) + field(r.key) + field(r.value)
        out += struct.pack(">i", len(r.headers))
        for name, value in r.headers:
            out += field(name.encode()) + field(value)
    return out


def test_source_records_are_read_in_order_with_nulls_empty_values_and_headers() -> None:
    items = [
        BatchRecord(10, 1_790_000_000_000, b"card-1", b"\x00\x00\x00\x00\x01avro", ()),
        BatchRecord(11, -1, None, None, ()),  # a tombstone without key or timestamp
        BatchRecord(12, 5, b"", b"", (("trace", b"\xff\x00"), ("empty", None), ("name-é", b""))),
    ]
    assert list(records(pack_source(items))) == items
    assert list(records(b"")) == []


def test_pack_records_writes_the_connectors_layout() -> None:
    items = [
        BatchRecord(10, 1_790_000_000_000, b"card-1", b"\x00\x00\x00\x00\x01avro", ()),
        BatchRecord(11, -1, None, None, ()),
        BatchRecord(12, 5, b"", b"", (("trace", b"\xff\x00"), ("empty", None))),
    ]
    assert pack_records(items) == pack_source(items)
    assert pack_records([]) == b""


@pytest.mark.parametrize("cut", [1, 15, 16, 19, 21, 28])
def test_a_truncated_batch_is_an_error_not_a_short_read(cut: int) -> None:
    packed = pack_source([BatchRecord(1, 2, b"key", b"value", ())])
    with pytest.raises(BatchFormatError):
        list(records(packed[:cut]))


def read_output(packed: bytes) -> list[tuple[object, ...]]:
    """The sink side's layout (RecordBatches.toSinkRows), read independently of the module."""
    position, rows = 0, []

    def field() -> bytes | None:
        nonlocal position
        (n,) = struct.unpack_from(">i", packed, position)
        position += 4
        if n < 0:
            return None
        position += n
        return packed[position - n : position]

    while position < len(packed):
        topic, key, value = field(), field(), field()
        (count,) = struct.unpack_from(">i", packed, position)
        position += 4
        headers = {}
        for _ in range(count):
            name = field()
            assert name is not None
            headers[name.decode()] = field()
        partition, timestamp = struct.unpack_from(">iq", packed, position)
        position += 12
        rows.append((None if topic is None else topic.decode(), key, value, headers, partition, timestamp))
    return rows


def test_output_batch_layout() -> None:
    out = OutputBatch()
    out.add("transactions.scored", b"k", b"v", timestamp=1_790_000_000_123)
    out.add(None, None, b"", headers={"dlq.reason": b"bad \xc3\xa9", "empty": b""}, partition=3)
    assert out.count == 2
    assert read_output(out.to_bytes()) == [
        ("transactions.scored", b"k", b"v", {}, -1, 1_790_000_000_123),
        (None, None, b"", {"dlq.reason": b"bad \xc3\xa9", "empty": b""}, 3, -1),
    ]
    assert OutputBatch().to_bytes() == b""


def test_state_cache_evicts_the_least_recently_used_and_counts() -> None:
    cache: StateCache[str, list[int]] = StateCache(2)
    cache.put("a", [1])
    cache.put("b", [2])
    assert cache.get("a") == [1]  # a is now the most recent
    cache.put("c", [3])  # evicts b
    assert cache.get("b") is None
    assert cache.get("a") == [1] and cache.get("c") == [3]
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (3, 1)
    with pytest.raises(ValueError, match="at least 1"):
        StateCache(0)
