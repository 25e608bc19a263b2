"""Many Kafka records per Flink element, for Python operators.

Every element that crosses between Java and a Python operator costs tens of microseconds whatever
its size, so a job that needs thousands of records per second per core reads the source in batch
mode (one element per partition and poll) and hands its outputs back packed, to be expanded by the
connector's ``Unbatch`` before the sink. This module is the Python half of the byte layouts of
``RecordBatches.java``: big-endian integers, a length of -1 for null.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

#: Fields of a batch row (``RecordBatches.BATCH_TYPE``).
BATCH_FIELDS = ("topic", "partition", "first_offset", "count", "max_timestamp", "records")

_I32 = struct.Struct(">i")
_I64_I64 = struct.Struct(">qq")
_I32_I64 = struct.Struct(">iq")
_NULL = _I32.pack(-1)
_NO_HEADERS = _I32.pack(0)


class BatchFormatError(ValueError):
    """Bytes that do not follow the batch layout (a connector and job built from different code)."""


class BatchRecord(NamedTuple):
    """One Kafka record of a source batch."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


#: A BatchRecord from its fields in order, without the named tuple's Python-level ``__new__``.
_new_record = tuple.__new__


def records(packed: bytes) -> Iterator[BatchRecord]:
    """The records of a batch row's ``records`` field, in offset order."""
    view = memoryview(packed)
    position, end = 0, len(packed)
    unpack_i32, unpack_i64_i64 = _I32.unpack_from, _I64_I64.unpack_from
    try:
        while position < end:
            offset, timestamp = unpack_i64_i64(view, position)
            position += 16
            key, position = _read_bytes(packed, position)
            value, position = _read_bytes(packed, position)
            (count,) = unpack_i32(view, position)
            position += 4
            headers: tuple[tuple[str, bytes | None], ...] = ()
            if count:
                pairs = []
                for _ in range(count):
                    name, position = _read_bytes(packed, position)
                    header, position = _read_bytes(packed, position)
                    pairs.append(((name or b"").decode(), header))
                headers = tuple(pairs)
            yield _new_record(BatchRecord, (offset, timestamp, key, value, headers))
    except struct.error as exc:
        raise BatchFormatError(f"truncated record batch at byte {position} of {end}: {exc}") from None


def pack_records(items: Iterable[BatchRecord]) -> bytes:
    """The inverse of :func:`records`: what the connector's ``RecordBatches.fromRecords`` writes
    (for driving the job's batch code without Flink, as ``python -m bench scorer`` does)."""
    parts: list[bytes] = []
    for item in items:
        parts.append(_I64_I64.pack(item.offset, item.timestamp))
        _append_bytes(parts, item.key)
        _append_bytes(parts, item.value)
        parts.append(_I32.pack(len(item.headers)))
        for name, header in item.headers:
            _append_bytes(parts, name.encode())
            _append_bytes(parts, header)
    return b"".join(parts)


def _read_bytes(packed: bytes, position: int) -> tuple[bytes | None, int]:
    (length,) = _I32.unpack_from(packed, position)
    position += 4
    if length < 0:
        return None, position
    if position + length > len(packed):
        raise BatchFormatError(f"a field of {length} bytes runs past the end of the batch at byte {position}")
    return packed[position : position + length], position + length


class OutputBatch:
    """Output records packed for the connector's ``Unbatch`` (then the Kafka sink)."""

    __slots__ = ("_parts", "count")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.count = 0

    def add(
        self,
        topic: str | None,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: Mapping[str, bytes] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """One record; a None topic goes to the sink's default topic, a None timestamp takes the
        element's, a None partition is the partitioner's choice."""
        parts = self._parts
        _append_bytes(parts, None if topic is None else topic.encode())
        _append_bytes(parts, key)
        _append_bytes(parts, value)
        if headers:
            parts.append(_I32.pack(len(headers)))
            for name, header in headers.items():
                _append_bytes(parts, name.encode())
                _append_bytes(parts, header)
        else:
            parts.append(_NO_HEADERS)
        parts.append(
            _I32_I64.pack(-1 if partition is None else partition, -1 if timestamp is None else timestamp)
        )
        self.count += 1

    def to_bytes(self) -> bytes:
        return b"".join(self._parts)


def _append_bytes(parts: list[bytes], data: bytes | None) -> None:
    if data is None:
        parts.append(_NULL)
    else:
        parts.append(_I32.pack(len(data)))
        parts.append(data)
