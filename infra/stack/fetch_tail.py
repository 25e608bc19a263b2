"""The newest record batches of each partition, as the broker guard saw them acknowledged.

Tansu 0.6 answers a Fetch only when its wait runs out, and lists every batch of a partition on
each Fetch that finds data (ARCHITECTURE.md, "Tansu's fetches"). A consumer at the head of a
partition only wants what was produced since its last Fetch, and the guard has seen exactly that
go by: each Produce request's record batches and, in the response, the offset Tansu wrote them
at. This cache keeps those batches, with their base offsets filled in, while they are contiguous,
so that the guard can answer such a Fetch itself, as soon as a Produce lands.

A partition's tail covers ``[start, end)`` with no gap: a batch acknowledged at any other offset
than ``end`` (a Produce the guard did not see, a commit marker written by EndTxn) starts the tail
again at that batch. Partitions written in transactions are never cached: their readers need
Tansu's transaction state. Bounded per partition by ``partition_bytes``, oldest batches first.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

from infra.stack.record_batches import NotABatch, batch_heads

__all__ = ["FetchTail", "NotABatch", "split_batches"]


def split_batches(records: bytes) -> list[tuple[int, bytes]]:
    """Each record batch in ``records`` with its record count; empty if any is transactional or a
    control batch (the caller then drops the partition: see the module's docstring)."""
    heads = batch_heads(records)
    if any(head.transactional or head.control for head in heads):
        return []
    return [(head.count, records[head.start : head.end]) for head in heads]


@dataclass
class _Tail:
    start: int
    end: int
    bases: list[int] = field(default_factory=list)
    batches: list[bytes] = field(default_factory=list)
    size: int = 0

    def drop_oldest(self, count: int) -> None:
        """Forgets the ``count`` oldest batches; at least one stays."""
        self.size -= sum(map(len, self.batches[:count]))
        del self.batches[:count], self.bases[:count]
        self.start = self.bases[0]


@dataclass
class FetchTail:
    partition_bytes: int
    _tails: dict[tuple[str, int], _Tail] = field(default_factory=dict)
    _transactional: set[tuple[str, int]] = field(default_factory=set)

    def acknowledged(self, topic: str, partition: int, base_offset: int, records: bytes) -> None:
        """A Produce of ``records`` to the partition was acknowledged at ``base_offset``."""
        key = (topic, partition)
        if key in self._transactional:
            return
        try:
            batches = split_batches(records)
        except NotABatch:
            self._tails.pop(key, None)  # cannot follow it: Tansu answers this partition's Fetches
            return
        if not batches:
            self._transactional.add(key)
            self._tails.pop(key, None)
            return
        tail = self._tails.get(key)
        if tail is None or base_offset != tail.end:
            if tail is not None and base_offset < tail.end:
                return  # answered after a later Produce, which started the tail past these batches
            tail = self._tails[key] = _Tail(base_offset, base_offset)
        for count, batch in batches:
            stamped = bytearray(batch)
            struct.pack_into(">q", stamped, 0, tail.end)
            tail.bases.append(tail.end)
            tail.batches.append(bytes(stamped))
            tail.size += len(stamped)
            tail.end += count
        over, drop = tail.size - self.partition_bytes, 0
        while over > 0 and drop < len(tail.batches) - 1:
            over -= len(tail.batches[drop])
            drop += 1
        if drop:
            tail.drop_oldest(drop)

    def deleted_below(self, topic: str, partition: int, offset: int) -> None:
        """Retention deleted the partition's batches below ``offset``: a Fetch for them goes to Tansu,
        which answers with the oldest batch kept, as it would without the tail."""
        tail = self._tails.get((topic, partition))
        if tail is None or offset <= tail.start:
            return
        drop = bisect.bisect_left(tail.bases, offset)
        if drop >= len(tail.batches):
            del self._tails[(topic, partition)]
        else:
            tail.drop_oldest(drop)

    def end(self, topic: str, partition: int) -> int | None:
        tail = self._tails.get((topic, partition))
        return None if tail is None else tail.end

    def read(self, topic: str, partition: int, offset: int, max_bytes: int) -> bytes | None:
        """The batches from the one holding ``offset`` on, up to ``max_bytes`` but at least one, as
        a broker answers a Fetch; ``b""`` when nothing is there yet, None when the cache cannot tell
        (not cached, or ``offset`` outside the tail)."""
        tail = self._tails.get((topic, partition))
        if tail is None or not tail.start <= offset <= tail.end:
            return None
        if offset == tail.end:
            return b""
        chosen: list[bytes] = []
        size = 0
        for batch in tail.batches[bisect.bisect_right(tail.bases, offset) - 1 :]:
            if chosen and size + len(batch) > max_bytes:
                break
            chosen.append(batch)
            size += len(batch)
        return b"".join(chosen)
