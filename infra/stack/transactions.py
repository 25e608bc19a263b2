"""What the broker guard knows of each partition's transactions, so that it can answer
read_committed Fetches as a Kafka broker does.

Kafka gives a read_committed reader the records below the partition's last stable offset (LSO: the
first offset of the oldest transaction still open, or the high watermark), and with them the
aborted transactions among those records, (producer id, first offset) each, which the client skips
up to the producer's abort marker. Tansu 0.6 gets both wrong (ARCHITECTURE.md, "Transactions on
the embedded broker"), so the guard asks Tansu for read_uncommitted records and applies this view.

What the guard follows, and what it learns from it:
- a transactional Produce: its producer's transaction on the partition begins at the base offset
  the response gives. Until that response arrives the LSO is held at the partition's end as the
  guard knew it when the request went out: the transaction cannot begin before that.
- EndTxn, answered without error: the producer's transactions end, committed or aborted, on every
  partition. Tansu has written the markers by then.
- InitProducerId for a transactional id, answered without error: whatever the id's previous
  producer had open is aborted (Kafka's fencing; Tansu writes abort markers too, measured). Its
  request gives the id's transaction timeout, which Tansu 0.6 does not enforce: `expired` names the
  ids whose transaction has been open longer, for the guard to fence them as Kafka's transaction
  coordinator does (an InitProducerId of its own, which aborts the transaction and bumps the epoch).

A data batch below the LSO belongs to the latest transaction of its producer that began at or
before it; the view keeps each producer's ended transactions from its first abort on (consecutive
commits merged into one), which is all it takes to tell. A transaction that began before the guard
started is taken as committed: the guard keeps no state across restarts.
"""

from __future__ import annotations

import bisect
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from infra.stack.kafka_wire import AbortedTransaction
from infra.stack.record_batches import batch_heads

_Partition = tuple[str, int]
#: Transaction timeouts remembered, newest used first: a Flink sink uses a transactional id a checkpoint.
_TIMEOUTS_KEPT = 65_536


@dataclass
class _Producer:
    """One producer id on one partition."""

    #: Transactional Produces forwarded and not yet answered.
    in_flight: int = 0
    #: The partition's end as known when the first of them went out: where the LSO is held.
    bound: int = 0
    #: The first offset of its open transaction.
    open_at: int | None = None
    #: (first offset, aborted) of its ended transactions from the first aborted one on, consecutive
    #: committed ones merged.
    ended: list[tuple[int, bool]] = field(default_factory=list)

    def idle(self) -> bool:
        return not self.in_flight and self.open_at is None and not self.ended

    def owner(self, offset: int) -> tuple[int, bool] | None:
        """The ended transaction a batch at ``offset`` belongs to (None: one taken as committed)."""
        at = bisect.bisect_right(self.ended, (offset, True)) - 1
        return self.ended[at] if at >= 0 else None


@dataclass(frozen=True)
class Committed:
    records: bytes
    last_stable_offset: int
    aborted: tuple[AbortedTransaction, ...]


class Transactions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._producers: dict[_Partition, dict[int, _Producer]] = {}
        self._ends: dict[_Partition, int] = {}
        self._ids: dict[str, int] = {}  # transactional id -> producer id
        self._names: dict[int, str] = {}
        self._clock = clock
        #: Transactional id -> the transaction timeout its producer asked for, in seconds.
        self._timeouts: collections.OrderedDict[str, float] = collections.OrderedDict()
        #: Producer id -> when its open transaction began (on the clock).
        self._opened: dict[int, float] = {}

    def timeout_asked(self, transactional_id: str, timeout_ms: int) -> None:
        """An InitProducerId for ``transactional_id`` asked for this transaction timeout."""
        self._timeouts[transactional_id] = timeout_ms / 1000
        self._timeouts.move_to_end(transactional_id)
        while len(self._timeouts) > _TIMEOUTS_KEPT:
            self._timeouts.popitem(last=False)

    def expired(self) -> list[tuple[str, float]]:
        """Transactional ids whose transaction has been open longer than its timeout (in seconds)."""
        now = self._clock()
        found = []
        for producer_id, opened in self._opened.items():
            name = self._names.get(producer_id)
            timeout = self._timeouts.get(name) if name is not None else None
            if name is not None and timeout is not None and now - opened > timeout:
                found.append((name, timeout))
        return found

    def end_seen(self, topic: str, partition: int, offset: int) -> None:
        """The partition holds records up to ``offset`` (a high watermark, or a Produce's end)."""
        key = (topic, partition)
        self._ends[key] = max(self._ends.get(key, 0), offset)

    def named(self, transactional_id: str, producer_id: int) -> None:
        """A request showed ``producer_id`` writing for ``transactional_id``."""
        self._ids[transactional_id] = producer_id
        self._names[producer_id] = transactional_id

    def producing(self, topic: str, partition: int, producer_id: int) -> None:
        """A Produce of transactional batches of ``producer_id`` is forwarded."""
        key = (topic, partition)
        producer = self._producers.setdefault(key, {}).setdefault(producer_id, _Producer())
        if producer.open_at is None and not producer.in_flight:
            producer.bound = self._ends.get(key, 0)
        producer.in_flight += 1

    def produced(self, topic: str, partition: int, producer_id: int, written: tuple[int, int] | None) -> None:
        """That Produce was answered: written at [base, next) offsets, or None (an error)."""
        key = (topic, partition)
        producer = self._producers.get(key, {}).get(producer_id)
        if producer is None:
            return
        producer.in_flight = max(producer.in_flight - 1, 0)
        if written is not None:
            base, next_offset = written
            if producer.open_at is None:
                producer.open_at = base
                self._opened.setdefault(producer_id, self._clock())
            self.end_seen(topic, partition, next_offset)
        self._forget_if_idle(key, producer_id)

    def ended(self, producer_id: int, committed: bool) -> bool:
        """The producer's transactions ended; whether any partition's LSO may have moved."""
        moved = False
        for key, producers in list(self._producers.items()):
            producer = producers.get(producer_id)
            if producer is None:
                continue
            if producer.open_at is not None:
                merged = committed and (not producer.ended or not producer.ended[-1][1])
                if not merged:
                    producer.ended.append((producer.open_at, not committed))
            moved = moved or producer.open_at is not None or producer.in_flight > 0
            producer.open_at, producer.in_flight = None, 0
            self._forget_if_idle(key, producer_id)
        self._opened.pop(producer_id, None)
        name = self._names.pop(producer_id, None)
        if name is not None and self._ids.get(name) == producer_id:
            del self._ids[name]
        return moved

    def initialised(self, transactional_id: str, producer_id: int) -> bool:
        """InitProducerId for the id was answered ``producer_id``: its previous producer is fenced and
        its open transaction aborted. Whether any partition's LSO may have moved."""
        previous = self._ids.get(transactional_id)
        moved = False
        for fenced in {previous, producer_id} - {None}:
            assert fenced is not None
            moved = self.ended(fenced, committed=False) or moved
        self.named(transactional_id, producer_id)
        return moved

    def last_stable_offset(self, topic: str, partition: int, high_watermark: int) -> int:
        stable = high_watermark
        for producer in self._producers.get((topic, partition), {}).values():
            if producer.open_at is not None:
                stable = min(stable, producer.open_at)
            elif producer.in_flight:
                stable = min(stable, producer.bound)
        return stable

    def read_committed(self, topic: str, partition: int, high_watermark: int, records: bytes) -> Committed:
        """What a read_committed reader gets of ``records`` (read_uncommitted, as the broker answered):
        the whole batches below the LSO, and the aborted transactions that have data among them."""
        self.end_seen(topic, partition, high_watermark)
        producers = self._producers.get((topic, partition))
        if producers is None:  # no transaction open or aborted here: nothing to cut or skip
            return Committed(records, high_watermark, ())
        stable = self.last_stable_offset(topic, partition, high_watermark)
        cut = 0
        aborted: set[tuple[int, int]] = set()
        for head in batch_heads(records, partial_tail=True):
            if head.base_offset >= stable:
                break
            cut = head.end
            producer = producers.get(head.producer_id) if head.transactional and not head.control else None
            owner = producer.owner(head.base_offset) if producer is not None else None
            if owner is not None and owner[1]:
                aborted.add((owner[0], head.producer_id))
        listed = tuple(AbortedTransaction(pid, first) for first, pid in sorted(aborted))
        return Committed(records[:cut], stable, listed)

    def _forget_if_idle(self, key: _Partition, producer_id: int) -> None:
        producers = self._producers.get(key)
        if producers is not None and producers[producer_id].idle():
            del producers[producer_id]
            if not producers:
                del self._producers[key]
