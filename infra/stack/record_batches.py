"""The headers of Kafka record batches (magic 2), as Produce requests and Fetch responses carry them.

A batch starts: BaseOffset int64, BatchLength int32, PartitionLeaderEpoch int32, Magic int8,
CRC uint32, Attributes int16, LastOffsetDelta int32, BaseTimestamp int64, MaxTimestamp int64,
ProducerId int64, ProducerEpoch int16, BaseSequence int32, then its records. The CRC covers
Attributes onwards, so rewriting BaseOffset keeps a batch valid. Attributes bit 4 marks a batch
written in a transaction, bit 5 a control batch (a transaction's commit or abort marker).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_HEAD = struct.Struct(">qiibIhiqqqhi")
HEAD_SIZE = _HEAD.size + 4  # and the record count
_TRANSACTIONAL = 0x10
_CONTROL = 0x20


class NotABatch(ValueError):
    """Record bytes that are not whole magic-2 record batches."""


@dataclass(frozen=True)
class BatchHead:
    base_offset: int
    #: Records in the batch: LastOffsetDelta + 1.
    count: int
    producer_id: int
    transactional: bool
    control: bool
    #: Where the batch lies in the bytes it was read from.
    start: int
    end: int

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.count


def batch_heads(records: bytes, *, partial_tail: bool = False) -> list[BatchHead]:
    """Every batch in ``records``. With ``partial_tail``, an incomplete last batch (a broker may cut
    a Fetch's last batch at its MaxBytes) is left out instead of being an error."""
    heads: list[BatchHead] = []
    pos = 0
    while pos < len(records):
        if pos + HEAD_SIZE > len(records):
            if partial_tail:
                break
            raise NotABatch(f"{len(records) - pos} bytes left at {pos}: not a batch header")
        fields = _HEAD.unpack_from(records, pos)
        base, length, magic, attributes, last_delta, producer_id = (fields[i] for i in (0, 1, 3, 5, 6, 9))
        end = pos + 12 + length
        if magic != 2 or length < HEAD_SIZE - 12 or last_delta < 0:
            raise NotABatch(f"batch at {pos}: magic {magic}, length {length}, last offset delta {last_delta}")
        if end > len(records):
            if partial_tail:
                break
            raise NotABatch(f"batch at {pos} of {length} bytes runs past the {len(records)} bytes")
        transactional, control = bool(attributes & _TRANSACTIONAL), bool(attributes & _CONTROL)
        heads.append(BatchHead(base, last_delta + 1, producer_id, transactional, control, pos, end))
        pos = end
    return heads
