"""`infra/stack/kafka_wire.py` on frames built here field by field, after Kafka's message
definitions (the versions real clients send are covered by tests/integration/test_kafka_guard.py:
librdkafka and Java kafka-clients both use flexible Fetch versions against Tansu)."""

from __future__ import annotations

import struct

import pytest

from infra.stack import kafka_wire as wire
from infra.stack.kafka_guard import LATENCY_BOUNDS_MS, WARMUP_CLIENT_ID, latency_bucket


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


# The fetch tail (infra/stack/fetch_tail.py): what the guard reads from Produce traffic and writes
# to answer a Fetch itself.


@pytest.mark.parametrize("version", range(13))
def test_produce_response_partitions_give_where_each_partition_was_written(version: int) -> None:
    written = wire.produce_response_partitions(produce_response(version, [[0, 46], [0]]), version)
    assert [(p.topic, p.partition, p.error_code, p.base_offset) for p in written] == [
        ("topic-0", 0, 0, 5),
        ("topic-0", 1, 46, -1),
        ("topic-1", 0, 0, 5),
    ]


@pytest.mark.parametrize("version", range(3, 13))
def test_produce_request_records_by_partition(version: int) -> None:
    flexible = version >= 9
    tags = TAGS if flexible else b""
    partitions = [
        struct.pack(">i", 0) + blob(b"batch-a", flexible) + tags,
        struct.pack(">i", 2) + blob(b"batch-b", flexible) + tags,
        struct.pack(">i", 3) + (uvarint(0) if flexible else struct.pack(">i", -1)) + tags,  # null records
    ]
    topic = string("payments", flexible) + array(partitions, flexible) + tags
    body = string("tx", flexible) + struct.pack(">hi", -1, 30000) + array([topic], flexible) + tags
    frame = request(wire.PRODUCE, version, body)
    found = wire.produce_request_records(frame, wire.request_header(frame))
    assert [(r.topic, r.partition, r.records) for r in found] == [
        ("payments", 0, b"batch-a"),
        ("payments", 2, b"batch-b"),
    ]


def full_fetch_request(
    version: int, partitions: list[tuple[str, int, int, int]], session_id: int = 0
) -> bytes:
    """A Fetch of v4-v12 with every field, one topic entry per partition given."""
    flexible = version >= 12
    tags = TAGS if flexible else b""
    body = struct.pack(">iiiib", -1, 500, 1, 52428800, 1)  # ..., MaxBytes, IsolationLevel
    body += struct.pack(">ii", session_id, -1) if version >= 7 else b""
    topics = []
    for topic, partition, offset, max_bytes in partitions:
        part = struct.pack(">i", partition) + (struct.pack(">i", 5) if version >= 9 else b"")
        part += struct.pack(">q", offset) + (struct.pack(">i", 5) if version >= 12 else b"")
        part += struct.pack(">q", 0) if version >= 5 else b""
        part += struct.pack(">i", max_bytes) + tags
        topics.append(string(topic, flexible) + array([part], flexible) + tags)
    body += array(topics, flexible)
    body += array([], flexible) if version >= 7 else b""  # ForgottenTopicsData
    body += string("rack", flexible) if version >= 11 else b""
    return request(wire.FETCH, version, body + tags)


@pytest.mark.parametrize("version", range(4, 13))
def test_fetch_request_is_read_in_the_versions_the_tail_answers(version: int) -> None:
    frame = full_fetch_request(version, [("cards", 0, 12, 1 << 20), ("payments", 3, 7, 4096)])
    fetch = wire.fetch_request(frame, wire.request_header(frame))
    assert (fetch.max_wait_ms, fetch.max_bytes, fetch.isolation_level, fetch.session_id) == (
        500,
        52428800,
        1,
        0,
    )
    assert fetch.partitions == [
        wire.FetchPartition("cards", 0, 12, 1 << 20),
        wire.FetchPartition("payments", 3, 7, 4096),
    ]
    assert fetch.forgets is False
    for other in (3, 13):  # older, or naming topics by id: forwarded to Tansu
        with pytest.raises(wire.WireError):
            wire.fetch_request(frame, wire.RequestHeader(wire.FETCH, other, 42, "cli", 0))


def read_fetch_response(frame: bytes, version: int) -> list[tuple[str, int, int, int, int, bytes]]:
    """(topic, partition, error, high watermark, last stable offset, records) for every partition,
    read field by field after FetchResponse.json, checking the fields the tail writes as constants."""
    flexible = version >= 12
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, frame, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def length() -> int:
        nonlocal pos
        if not flexible:
            return take(">i")
        value = shift = 0
        while True:
            byte = frame[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value - 1

    def tags() -> None:
        if flexible:
            assert length() == -1  # no tagged fields (a count of 0, read as length + 1)

    assert take(">i") == 42
    tags()
    assert take(">i") == 0  # ThrottleTimeMs
    if version >= 7:
        assert (take(">h"), take(">i")) == (0, 0)  # ErrorCode, SessionId
    found = []
    for _ in range(length()):
        size = length() if flexible else take(">h")
        topic = frame[pos : pos + size].decode()
        pos += size
        for _ in range(length()):
            partition, error, high, stable = take(">i"), take(">h"), take(">q"), take(">q")
            if version >= 5:
                assert take(">q") == 0  # LogStartOffset
            assert length() == -1  # AbortedTransactions: null
            if version >= 11:
                assert take(">i") == -1  # PreferredReadReplica
            size = length()
            found.append((topic, partition, error, high, stable, frame[pos : pos + size]))
            pos += size
            tags()
        tags()
    tags()
    assert pos == len(frame)
    return found


@pytest.mark.parametrize("version", range(4, 13))
def test_fetch_response_written_for_the_tail_reads_back(version: int) -> None:
    topics = [
        ("cards", [wire.FetchedPartition(0, 15, b"batches"), wire.FetchedPartition(1, 3, b"")]),
        ("payments", [wire.FetchedPartition(2, 7, b"more")]),
    ]
    frame = wire.fetch_response(42, version, topics)
    assert read_fetch_response(frame, version) == [
        ("cards", 0, 0, 15, 15, b"batches"),
        ("cards", 1, 0, 3, 3, b""),
        ("payments", 2, 0, 7, 7, b"more"),
    ]
    assert wire.fetch_response_has_records(frame, version) is True
    empty = wire.fetch_response(42, version, [("cards", [wire.FetchedPartition(1, 3, b"")])])
    assert wire.fetch_response_has_records(empty, version) is False


def api_versions_response(version: int, entries: list[tuple[int, int, int]], error: int = 0) -> bytes:
    flexible = version >= 3
    keys = [struct.pack(">hhh", *entry) + (SOME_TAGS if flexible else b"") for entry in entries]
    frame = struct.pack(">ih", 42, error) + array(keys, flexible)  # header v0 in every version
    return frame + (struct.pack(">i", 0) if version >= 1 else b"") + (SOME_TAGS if flexible else b"")


@pytest.mark.parametrize("version", range(4))
def test_api_versions_cap_fetch_only(version: int) -> None:
    entries = [(0, 0, 11), (1, 0, 16), (18, 0, 4)]
    capped = wire.api_versions_with_fetch_capped(api_versions_response(version, entries), version, 12)
    assert capped == api_versions_response(version, [(0, 0, 11), (1, 0, 12), (18, 0, 4)])
    low = api_versions_response(version, [(1, 0, 11)])
    assert wire.api_versions_with_fetch_capped(low, version, 12) == low
    failed = api_versions_response(version, [(1, 0, 16)], error=35)  # UNSUPPORTED_VERSION
    assert wire.api_versions_with_fetch_capped(failed, version, 12) == failed


@pytest.mark.parametrize("version", range(4, 13))
def test_a_read_committed_fetch_is_forwarded_read_uncommitted_with_nothing_else_changed(version: int) -> None:
    frame = full_fetch_request(version, [("cards", 0, 12, 1 << 20)], session_id=9)
    header = wire.request_header(frame)
    rewritten = wire.with_read_uncommitted(frame, header)
    assert wire.fetch_isolation_level(frame, header) == wire.READ_COMMITTED
    assert wire.fetch_isolation_level(rewritten, header) == wire.READ_UNCOMMITTED
    before, after = wire.fetch_request(frame, header), wire.fetch_request(rewritten, header)
    assert (before.isolation_level, after.isolation_level) == (wire.READ_COMMITTED, wire.READ_UNCOMMITTED)
    assert after == wire.FetchRequest(
        before.max_wait_ms,
        before.min_bytes,
        before.max_bytes,
        0,
        before.session_id,
        before.partitions,
        before.forgets,
    )
    assert len(rewritten) == len(frame) and sum(a != b for a, b in zip(frame, rewritten, strict=True)) == 1


def broker_fetch_response(version: int) -> bytes:
    """A Fetch response as a broker may send it: a session, an error on one partition, aborted
    transactions with tagged fields, a preferred replica, tagged fields at every level."""
    flexible = version >= 12
    some = SOME_TAGS if flexible else b""
    parts = []
    for index, error, records, aborted in ((0, 0, b"batches", [(7, 3), (8, 40)]), (1, 1, b"", None)):
        part = struct.pack(">ihqq", index, error, 100, 90) + (struct.pack(">q", 5) if version >= 5 else b"")
        if aborted is None:
            part += uvarint(0) if flexible else struct.pack(">i", -1)
        else:
            part += array(
                [struct.pack(">qq", *txn) + (TAGS if flexible else b"") for txn in aborted], flexible
            )
        part += struct.pack(">i", 2) if version >= 11 else b""
        parts.append(part + blob(records, flexible) + some)
    topic = string("payments", flexible) + array(parts, flexible) + (TAGS if flexible else b"")
    frame = struct.pack(">i", 42) + (TAGS if flexible else b"") + struct.pack(">i", 15)
    frame += struct.pack(">hi", 0, 77) if version >= 7 else b""
    return frame + array([topic], flexible) + some


@pytest.mark.parametrize("version", range(4, 13))
def test_a_fetch_response_reads_whole_and_writes_back_byte_for_byte(version: int) -> None:
    frame = broker_fetch_response(version)
    response = wire.read_fetch_response(frame, version)
    assert (response.correlation_id, response.throttle_time_ms) == (42, 15)
    assert response.session_id == (77 if version >= 7 else 0)
    ((topic, (first, second)),) = response.topics
    assert topic == "payments"
    assert (first.partition, first.error_code, first.high_watermark, first.last_stable_offset) == (
        0,
        0,
        100,
        90,
    )
    assert first.log_start_offset == (5 if version >= 5 else 0)
    assert first.aborted == (wire.AbortedTransaction(7, 3), wire.AbortedTransaction(8, 40))
    assert first.records == b"batches" and first.preferred_read_replica == (2 if version >= 11 else -1)
    assert (second.error_code, second.aborted, second.records) == (1, None, b"")
    assert wire.write_fetch_response(response, version) == frame
    with pytest.raises(wire.WireError):
        wire.read_fetch_response(frame + b"\x00", version)
    with pytest.raises(wire.WireError):
        wire.read_fetch_response(frame[:-3], version)


@pytest.mark.parametrize("version", range(6))
def test_end_txn_request_and_response(version: int) -> None:
    flexible = version >= 3
    body = string("sink-0-7", flexible) + struct.pack(">qhb", 1234, 2, 1) + (TAGS if flexible else b"")
    frame = request(wire.END_TXN, version, body)
    assert wire.end_txn_request(frame, wire.request_header(frame)) == wire.EndTxn("sink-0-7", 1234, True)
    response = struct.pack(">i", 42) + (SOME_TAGS if flexible else b"") + struct.pack(">ih", 0, 48)
    response += struct.pack(">qh", 1234, 3) if version >= 5 else b""
    assert wire.txn_response(response + (TAGS if flexible else b""), wire.END_TXN, version) == (
        48,
        1234 if version >= 5 else -1,
    )


@pytest.mark.parametrize("version", range(7))
def test_init_producer_id_request_names_the_transactional_id_and_the_response_the_producer(
    version: int,
) -> None:
    flexible = version >= 2
    tags = TAGS if flexible else b""
    for name in ("sink-0-7", None):
        body = string(name, flexible) + struct.pack(">i", 60000)
        body += struct.pack(">qh", -1, -1) if version >= 3 else b""
        body += struct.pack(">bb", 0, 0) if version >= 6 else b""
        frame = request(wire.INIT_PRODUCER_ID, version, body + tags)
        assert wire.init_producer_id_request(frame, wire.request_header(frame)) == wire.InitProducerId(
            name, 60000
        )
    response = struct.pack(">i", 42) + tags + struct.pack(">ihqh", 0, 0, 99, 4) + tags
    assert wire.txn_response(response, wire.INIT_PRODUCER_ID, version) == (0, 99)


@pytest.mark.parametrize("version", range(3, 13))
def test_produce_transactional_id(version: int) -> None:
    flexible = version >= 9
    for name in ("tx", None):
        body = string(name, flexible) + struct.pack(">hi", -1, 30000) + array([], flexible)
        frame = request(wire.PRODUCE, version, body + (TAGS if flexible else b""))
        assert wire.produce_transactional_id(frame, wire.request_header(frame)) == name


def test_the_guards_own_init_producer_id_request_reads_back() -> None:
    frame = wire.init_producer_id_frame(7, "riverbank-kafka-guard", "sink-0-9", 900_000)
    header = wire.request_header(frame)
    assert (header.api_key, header.api_version, header.correlation_id) == (wire.INIT_PRODUCER_ID, 4, 7)
    assert header.client_id == "riverbank-kafka-guard"
    assert wire.init_producer_id_request(frame, header) == wire.InitProducerId("sink-0-9", 900_000)
    body = string("sink-0-9", flexible=True) + struct.pack(">iqh", 900_000, -1, -1) + TAGS
    assert frame[header.body_offset or 0 :] == body


def test_latency_buckets_hold_each_time_in_the_first_bound_it_fits() -> None:
    ms = 1_000_000
    assert latency_bucket("x_", 0) == "x_1"
    assert latency_bucket("x_", 1 * ms) == "x_1"
    assert latency_bucket("x_", 1 * ms + 1) == "x_2"
    assert latency_bucket("x_", 100 * ms) == "x_100"
    assert latency_bucket("x_", 2000 * ms) == "x_2000"
    assert latency_bucket("x_", 2000 * ms + 1) == "x_inf"
    assert tuple(sorted(set(LATENCY_BOUNDS_MS))) == LATENCY_BOUNDS_MS
