"""`infra/stack/kafka_wire.py` on frames built here field by field, after Kafka's message
definitions (the versions real clients send are covered by tests/integration/test_kafka_guard.py:
librdkafka and Java kafka-clients both use flexible Fetch versions against Tansu)."""

from __future__ import annotations

import struct

import pytest

from infra.stack import kafka_wire as wire
from infra.stack.kafka_guard import WARMUP_CLIENT_ID


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string(text: str | None, flexible: bool) -> bytes:
    if text is None:
        return uvarint(0) if flexible else struct.pack(">h", -1)
    raw = text.encode()
    return (uvarint(len(raw) + 1) if flexible else struct.pack(">h", len(raw))) + raw


def array(items: list[bytes], flexible: bool) -> bytes:
    return (uvarint(len(items) + 1) if flexible else struct.pack(">i", len(items))) + b"".join(items)


def blob(data: bytes, flexible: bool) -> bytes:
    return (uvarint(len(data) + 1) if flexible else struct.pack(">i", len(data))) + data


TAGS = b"\x00"  # no tagged fields
#: One tagged field (tag 0, 3 bytes), as a broker may add to a flexible header or struct.
SOME_TAGS = b"\x01" + uvarint(0) + uvarint(3) + b"abc"


def request(api_key: int, version: int, body: bytes, client_id: str | None = "cli") -> bytes:
    header = struct.pack(">hhi", api_key, version, 42) + string(client_id, flexible=False)
    return header + (SOME_TAGS if wire.flexible(api_key, version) else b"") + body


def fetch_request(version: int, max_wait_ms: int) -> bytes:
    flexible = version >= 12
    body = b"" if version >= 15 else struct.pack(">i", -1)  # ReplicaId
    body += struct.pack(">iiib", max_wait_ms, 1, 1 << 20, 0)  # MaxWaitMs, MinBytes, MaxBytes, Isolation
    body += struct.pack(">ii", 0, -1) if version >= 7 else b""  # SessionId, SessionEpoch
    body += array([], flexible)  # Topics: the layout after MaxWaitMs does not matter here
    return request(wire.FETCH, version, body)


def fetch_response(version: int, records: list[bytes], aborted: int = 1) -> bytes:
    """A response with one topic and one partition per entry of `records`."""
    flexible = version >= 12
    partitions = []
    for index, data in enumerate(records):
        part = struct.pack(">ihq", index, 0, 100)
        part += struct.pack(">q", 100) if version >= 4 else b""
        part += struct.pack(">q", 0) if version >= 5 else b""
        if version >= 4:
            txn = struct.pack(">qq", 7, 3) + (TAGS if flexible else b"")
            part += array([txn] * aborted, flexible)
        part += struct.pack(">i", -1) if version >= 11 else b""
        part += blob(data, flexible) + (SOME_TAGS if flexible else b"")
        partitions.append(part)
    topic = (bytes(16) if version >= 13 else string("payments", flexible)) + array(partitions, flexible)
    topic += TAGS if flexible else b""
    frame = struct.pack(">i", 42) + (SOME_TAGS if flexible else b"")
    frame += struct.pack(">i", 0) if version >= 1 else b""
    frame += struct.pack(">hi", 0, 0) if version >= 7 else b""
    return frame + array([topic], flexible) + (TAGS if flexible else b"")


def test_request_header_reads_api_correlation_and_client_id() -> None:
    header = wire.request_header(request(18, 3, b"", client_id=WARMUP_CLIENT_ID))
    assert (header.api_key, header.api_version, header.correlation_id) == (18, 3, 42)
    assert header.client_id == WARMUP_CLIENT_ID and header.body_offset is None
    assert wire.request_header(request(3, 12, b"", client_id=None)).client_id is None
    with pytest.raises(wire.WireError):
        wire.request_header(b"\x00\x00")


@pytest.mark.parametrize("version", [4, 7, 11, 12, 13, 14, 15, 16, 17])
def test_fetch_max_wait_is_read_and_rewritten_in_every_known_version(version: int) -> None:
    frame = fetch_request(version, 500)
    header = wire.request_header(frame)
    assert wire.fetch_max_wait_ms(frame, header) == 500
    rewritten = wire.with_fetch_max_wait_ms(frame, header, 20)
    assert len(rewritten) == len(frame) and wire.fetch_max_wait_ms(rewritten, header) == 20
    # Only MaxWaitMs changed: MinBytes (right after it) is still 1.
    offset = header.body_offset
    assert offset is not None
    min_bytes_at = offset + (8 if version < 15 else 4)
    assert struct.unpack_from(">i", rewritten, min_bytes_at)[0] == 1


@pytest.mark.parametrize(("version", "flexible"), [(2, False), (3, False), (8, False), (9, True), (11, True)])
def test_produce_acks_after_the_transactional_id(version: int, flexible: bool) -> None:
    for transactional_id in (None, "payments-tx"):
        for acks in (0, 1, -1):
            body = (string(transactional_id, flexible) if version >= 3 else b"") + struct.pack(
                ">hi", acks, 30000
            )
            frame = request(wire.PRODUCE, version, body)
            assert wire.produce_acks(frame, wire.request_header(frame)) == acks


@pytest.mark.parametrize("version", [0, 4, 5, 7, 11, 12, 13, 16, 17])
def test_fetch_response_has_records_only_when_a_partition_carries_bytes(version: int) -> None:
    assert wire.fetch_response_has_records(fetch_response(version, [b"", b""]), version) is False
    assert wire.fetch_response_has_records(fetch_response(version, [b"", b"batch"]), version) is True
    assert (
        wire.fetch_response_has_records(fetch_response(version, [b"", b"batch"], aborted=0), version) is True
    )
    assert wire.fetch_response_has_records(fetch_response(version, []), version) is False


def test_a_truncated_or_unknown_fetch_response_is_an_error() -> None:
    frame = fetch_response(16, [b"", b""])
    with pytest.raises(wire.WireError):
        wire.fetch_response_has_records(frame[:-6], 16)
    with pytest.raises(wire.WireError):
        wire.fetch_response_has_records(frame, 18)


def produce_response(version: int, topics: list[list[int]]) -> bytes:
    """A response with one entry per topic, each with a partition per error code given."""
    flexible = version >= 9
    entries = []
    for name, codes in enumerate(topics):
        partitions = []
        for index, code in enumerate(codes):
            part = struct.pack(">ihq", index, code, -1 if code else 5)  # Index, ErrorCode, BaseOffset
            part += struct.pack(">q", -1) if version >= 2 else b""  # LogAppendTimeMs
            part += struct.pack(">q", 0) if version >= 5 else b""  # LogStartOffset
            if version >= 8:
                record_error = (
                    struct.pack(">i", 0) + string("bad record", flexible) + (TAGS if flexible else b"")
                )
                part += array([record_error] if code else [], flexible)  # RecordErrors
                part += string("a message" if code else None, flexible)  # ErrorMessage
            part += SOME_TAGS if flexible else b""  # e.g. CurrentLeader from v10
            partitions.append(part)
        entry = string(f"topic-{name}", flexible) + array(partitions, flexible) + (TAGS if flexible else b"")
        entries.append(entry)
    frame = struct.pack(">i", 42) + (SOME_TAGS if flexible else b"") + array(entries, flexible)
    return frame + (struct.pack(">i", 0) if version >= 1 else b"") + (TAGS if flexible else b"")


@pytest.mark.parametrize("version", range(13))
def test_produce_response_error_codes_are_replaced_in_place(version: int) -> None:
    duplicate, unknown = wire.DUPLICATE_SEQUENCE_NUMBER, wire.UNKNOWN_SERVER_ERROR
    frame = produce_response(version, [[0, duplicate], [duplicate, 0, 6]])
    rewritten, replaced = wire.produce_response_with_error_replaced(frame, version, duplicate, unknown)
    assert replaced == 2
    assert rewritten == produce_response(version, [[0, unknown], [unknown, 0, 6]])
    clean = produce_response(version, [[0, 0], [6]])
    assert wire.produce_response_with_error_replaced(clean, version, duplicate, unknown) == (clean, 0)


def test_a_truncated_or_unknown_produce_response_is_an_error() -> None:
    frame = produce_response(11, [[46, 0]])
    with pytest.raises(wire.WireError):
        wire.produce_response_with_error_replaced(frame[:-12], 11, 46, -1)
    with pytest.raises(wire.WireError):
        wire.produce_response_with_error_replaced(frame, 13, 46, -1)
