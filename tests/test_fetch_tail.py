"""`infra/stack/fetch_tail.py`: which batches the broker guard keeps, at which offsets, and what it
answers a Fetch from them (real clients read through it in tests/integration/test_fetch_tail.py)."""

from __future__ import annotations

import struct

import pytest

from infra.stack.fetch_tail import FetchTail, NotABatch, split_batches


def batch(count: int, attributes: int = 0, payload: bytes = b"records") -> bytes:
    """A magic-2 record batch as a producer sends it: base offset 0, ``count`` records."""
    after_length = struct.pack(">ibihi", -1, 2, 0, attributes, count - 1) + bytes(8 + 8 + 8 + 2 + 4 + 4)
    body = after_length + payload
    return struct.pack(">qi", 0, len(body)) + body


def base_offsets(records: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos < len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        offsets.append(base)
        pos += 12 + length
    return offsets


def test_batches_are_split_with_their_record_counts() -> None:
    assert [count for count, _ in split_batches(batch(3) + batch(1))] == [3, 1]
    with pytest.raises(NotABatch):
        split_batches(batch(3)[:-1])
    with pytest.raises(NotABatch):
        split_batches(batch(3).replace(b"\x02", b"\x01", 1))  # magic 1: an old message set


def test_acknowledged_batches_are_served_from_their_offset_with_base_offsets_filled_in() -> None:
    tail = FetchTail(partition_bytes=1 << 20)
    tail.acknowledged("cards", 0, 10, batch(3))
    tail.acknowledged("cards", 0, 13, batch(2) + batch(4))  # two batches in one Produce
    assert tail.end("cards", 0) == 19
    assert base_offsets(tail.read("cards", 0, 10, 1 << 20) or b"") == [10, 13, 15]
    assert base_offsets(tail.read("cards", 0, 14, 1 << 20) or b"") == [13, 15]  # the batch holding 14
    assert tail.read("cards", 0, 19, 1 << 20) == b""  # the head: nothing yet
    assert tail.read("cards", 0, 9, 1 << 20) is None  # before the tail: Tansu answers
    assert tail.read("cards", 0, 20, 1 << 20) is None  # past the head: Tansu answers
    assert tail.read("cards", 1, 0, 1 << 20) is None and tail.end("cards", 1) is None


def test_a_read_stops_at_max_bytes_but_returns_at_least_one_batch() -> None:
    tail = FetchTail(partition_bytes=1 << 20)
    one = batch(1)
    for offset in range(3):
        tail.acknowledged("cards", 0, offset, one)
    assert base_offsets(tail.read("cards", 0, 0, 2 * len(one)) or b"") == [0, 1]
    assert base_offsets(tail.read("cards", 0, 0, 1) or b"") == [0]


def test_a_gap_starts_the_tail_again_and_late_answers_are_ignored() -> None:
    tail = FetchTail(partition_bytes=1 << 20)
    tail.acknowledged("cards", 0, 0, batch(2))
    tail.acknowledged("cards", 0, 5, batch(1))  # 2-4 written without the guard seeing them
    assert tail.read("cards", 0, 0, 1 << 20) is None
    assert base_offsets(tail.read("cards", 0, 5, 1 << 20) or b"") == [5]
    tail.acknowledged("cards", 0, 3, batch(2))  # an answer that arrived after a later one
    assert tail.read("cards", 0, 3, 1 << 20) is None and tail.end("cards", 0) == 6


def test_the_oldest_batches_go_beyond_the_byte_bound() -> None:
    one = batch(1)
    tail = FetchTail(partition_bytes=2 * len(one))
    for offset in range(5):
        tail.acknowledged("cards", 0, offset, one)
    assert tail.read("cards", 0, 2, 1 << 20) is None
    assert base_offsets(tail.read("cards", 0, 3, 1 << 20) or b"") == [3, 4]
    big = FetchTail(partition_bytes=1)  # one batch is kept whatever its size
    big.acknowledged("cards", 0, 0, one)
    assert base_offsets(big.read("cards", 0, 0, 1 << 20) or b"") == [0]


@pytest.mark.parametrize("attributes", [0x10, 0x20])  # transactional, control
def test_a_partition_written_in_transactions_is_never_cached(attributes: int) -> None:
    tail = FetchTail(partition_bytes=1 << 20)
    tail.acknowledged("cards", 0, 0, batch(2))
    tail.acknowledged("cards", 0, 2, batch(1, attributes))
    tail.acknowledged("cards", 0, 4, batch(1))  # not even once the transactions are over
    assert tail.read("cards", 0, 4, 1 << 20) is None and tail.end("cards", 0) is None


def test_records_that_are_not_batches_leave_the_partition_to_the_broker() -> None:
    tail = FetchTail(partition_bytes=1 << 20)
    tail.acknowledged("cards", 0, 0, batch(2))
    tail.acknowledged("cards", 0, 2, b"\x00\x01")
    assert tail.end("cards", 0) is None
    tail.acknowledged("cards", 0, 3, batch(1))  # and the next batch starts a tail again
    assert base_offsets(tail.read("cards", 0, 3, 1 << 20) or b"") == [3]


def test_what_retention_deleted_is_left_to_the_broker() -> None:
    tail = FetchTail(partition_bytes=1 << 20)
    for offset in range(0, 6, 2):
        tail.acknowledged("cards", 0, offset, batch(2))
    tail.deleted_below("cards", 0, 4)
    assert tail.read("cards", 0, 2, 1 << 20) is None  # Tansu answers with the oldest batch kept
    assert base_offsets(tail.read("cards", 0, 4, 1 << 20) or b"") == [4]
    tail.deleted_below("cards", 0, 1)  # an older pass's news changes nothing
    assert base_offsets(tail.read("cards", 0, 4, 1 << 20) or b"") == [4]
    tail.deleted_below("cards", 0, 9)  # beyond the tail: nothing of it is served
    assert tail.end("cards", 0) is None
    tail.deleted_below("payments", 0, 3)  # not cached: nothing to do
