"""`infra/stack/transactions.py`: the last stable offset and aborted transactions the broker guard
gives read_committed readers (real clients read through it in
tests/integration/test_broker_transactions.py and tests/flink/test_kafka_connector.py)."""

from __future__ import annotations

import struct

import pytest

from infra.stack.kafka_wire import AbortedTransaction
from infra.stack.record_batches import NotABatch, batch_heads
from infra.stack.transactions import Transactions

TRANSACTIONAL, CONTROL = 0x10, 0x20
TOPIC = "fraud.alerts"


def batch(base: int, count: int, producer_id: int = -1, attributes: int = 0) -> bytes:
    """A magic-2 record batch as a broker stores it (the records themselves are not read here)."""
    after_length = struct.pack(
        ">ibIhiqqqhii", -1, 2, 0, attributes, count - 1, 0, 0, producer_id, 0, 0, count
    )
    body = after_length + b"records"
    return struct.pack(">qi", base, len(body)) + body


def data(base: int, count: int, producer_id: int) -> bytes:
    return batch(base, count, producer_id, TRANSACTIONAL)


def marker(base: int, producer_id: int) -> bytes:
    return batch(base, 1, producer_id, TRANSACTIONAL | CONTROL)


def bases(records: bytes) -> list[int]:
    return [head.base_offset for head in batch_heads(records)]


def write(txns: Transactions, producer_id: int, base: int, count: int, partition: int = 0) -> None:
    txns.producing(TOPIC, partition, producer_id)
    txns.produced(TOPIC, partition, producer_id, (base, base + count))


def test_batch_heads_give_offsets_producer_and_kind() -> None:
    records = batch(0, 3) + data(3, 2, producer_id=7) + marker(5, producer_id=7)
    heads = batch_heads(records)
    assert [(h.base_offset, h.count, h.producer_id, h.transactional, h.control) for h in heads] == [
        (0, 3, -1, False, False),
        (3, 2, 7, True, False),
        (5, 1, 7, True, True),
    ]
    assert heads[-1].end == len(records) and heads[1].next_offset == 5
    # A broker may cut the last batch of a Fetch at its MaxBytes.
    assert [h.base_offset for h in batch_heads(records[:-4], partial_tail=True)] == [0, 3]
    with pytest.raises(NotABatch):
        batch_heads(records[:-4])


def test_an_open_transaction_hides_itself_and_everything_after_it_but_not_what_was_committed_before() -> None:
    txns = Transactions()
    write(txns, producer_id=1, base=0, count=3)  # t1
    write(txns, producer_id=2, base=3, count=2)  # t2, open
    records = data(0, 3, 1) + data(3, 2, 2) + marker(5, 1)
    # t1 still open too: nothing is stable.
    assert txns.read_committed(TOPIC, 0, 6, records).records == b""
    assert txns.ended(1, committed=True)
    view = txns.read_committed(TOPIC, 0, 6, records)
    assert (bases(view.records), view.last_stable_offset, view.aborted) == ([0], 3, ())
    txns.ended(2, committed=True)
    view = txns.read_committed(TOPIC, 0, 7, records + marker(6, 2))
    assert (bases(view.records), view.last_stable_offset) == ([0, 3, 5, 6], 7)


def test_a_produce_in_flight_holds_the_lso_at_the_end_known_when_it_went_out() -> None:
    txns = Transactions()
    txns.end_seen(TOPIC, 0, 10)  # e.g. a high watermark read earlier
    txns.producing(TOPIC, 0, 5)  # its batch may already be readable before the answer arrives
    records = batch(8, 2) + data(10, 4, 5)
    view = txns.read_committed(TOPIC, 0, 14, records)
    assert (bases(view.records), view.last_stable_offset) == ([8], 10)
    txns.produced(TOPIC, 0, 5, (10, 14))
    assert txns.last_stable_offset(TOPIC, 0, 14) == 10  # now open at 10
    # An error answer: no transaction began there.
    txns.producing(TOPIC, 1, 6)
    txns.produced(TOPIC, 1, 6, None)
    assert txns.last_stable_offset(TOPIC, 1, 3) == 3


def test_aborted_transactions_with_data_in_the_answer_are_listed_from_their_first_offset() -> None:
    txns = Transactions()
    write(txns, 1, 0, 2)
    txns.ended(1, committed=True)  # [0, 2) and marker 2
    write(txns, 1, 3, 2)
    txns.ended(1, committed=False)  # [3, 5) aborted, marker 5
    write(txns, 1, 6, 1)
    write(txns, 1, 7, 1)  # the same transaction, a second Produce
    txns.ended(1, committed=True)  # [6, 8), marker 8
    write(txns, 2, 9, 2)
    txns.ended(2, committed=False)  # [9, 11) aborted, marker 11
    records = data(0, 2, 1) + marker(2, 1) + data(3, 2, 1) + marker(5, 1) + data(6, 1, 1) + data(7, 1, 1)
    records += marker(8, 1) + data(9, 2, 2) + marker(11, 2)
    view = txns.read_committed(TOPIC, 0, 12, records)
    assert view.records == records and view.last_stable_offset == 12
    assert view.aborted == (AbortedTransaction(1, 3), AbortedTransaction(2, 9))
    # A Fetch from offset 6 carries no data of the first aborted transaction: not listed.
    later = records[batch_heads(records)[4].start :]
    assert txns.read_committed(TOPIC, 0, 12, later).aborted == (AbortedTransaction(2, 9),)
    # Only the marker of an aborted transaction: not listed (the client has nothing to skip).
    tail = records[batch_heads(records)[3].start :]  # from marker 5 on
    assert txns.read_committed(TOPIC, 0, 12, tail).aborted == (AbortedTransaction(2, 9),)


def test_initialising_a_transactional_id_again_aborts_what_its_producer_left_open() -> None:
    txns = Transactions()
    assert not txns.initialised("sink-0", 4)
    txns.named("sink-0", 4)
    write(txns, 4, 0, 3)
    assert txns.last_stable_offset(TOPIC, 0, 4) == 0
    assert txns.initialised("sink-0", 4)  # Tansu keeps the producer id and bumps the epoch
    view = txns.read_committed(TOPIC, 0, 4, data(0, 3, 4) + marker(3, 4))
    assert (view.last_stable_offset, view.aborted) == (4, (AbortedTransaction(4, 0),))
    # A new producer id for the id fences the old one as well.
    write(txns, 4, 4, 1)
    assert txns.initialised("sink-0", 9)
    assert txns.last_stable_offset(TOPIC, 0, 6) == 6


def test_end_txn_ends_a_producer_on_every_partition_and_partitions_without_transactions_are_untouched() -> (
    None
):
    txns = Transactions()
    write(txns, 3, 0, 1, partition=0)
    write(txns, 3, 0, 1, partition=1)
    assert txns.ended(3, committed=False)
    for partition in (0, 1):
        view = txns.read_committed(TOPIC, partition, 2, data(0, 1, 3) + marker(1, 3))
        assert view.aborted == (AbortedTransaction(3, 0),)
    plain = batch(0, 5) + batch(5, 5)
    view = txns.read_committed("payments", 0, 10, plain)
    assert (view.records, view.last_stable_offset, view.aborted) == (plain, 10, ())
    assert not txns.ended(42, committed=True)  # a producer the guard never saw write


def test_committed_transactions_leave_no_state_behind() -> None:
    txns = Transactions()
    for round_ in range(100):
        write(txns, 1, 2 * round_, 1)
        txns.ended(1, committed=True)
    assert txns.read_committed(TOPIC, 0, 200, data(198, 1, 1)).records == data(198, 1, 1)
    # What a long-running guard keeps per committed transaction: nothing.
    assert txns._producers == {}


def test_a_transaction_open_longer_than_its_timeout_is_named_for_fencing() -> None:
    now = [100.0]
    txns = Transactions(clock=lambda: now[0])
    txns.timeout_asked("sink-0-3", 60_000)
    txns.named("sink-0-3", 8)
    txns.timeout_asked("other", 60_000)  # no transaction open: never expires
    write(txns, 8, 0, 2)
    now[0] += 59
    write(txns, 8, 2, 2)  # later writes do not extend it: the timeout runs from the first
    assert txns.expired() == []
    now[0] += 2
    assert txns.expired() == [("sink-0-3", 60.0)]
    assert txns.initialised("sink-0-3", 8)  # the guard's own InitProducerId: aborted
    assert txns.expired() == [] and txns.last_stable_offset(TOPIC, 0, 5) == 5
    # A transaction whose id's timeout is unknown (asked before the guard started) is left alone.
    txns.named("unknown", 9)
    write(txns, 9, 5, 1)
    now[0] += 3600
    assert txns.expired() == []
