"""Just enough of the Kafka wire protocol for the broker guard.

The guard reads request and response frames (a big-endian int32 size, then the message): which API
a request is and its correlation id; Fetch requests (to rewrite `MaxWaitMs` and the isolation
level, and to answer them from the fetch tail); Fetch responses (whether they carry records, and
whole, to rewrite them for read_committed readers); Produce requests' records and `Acks` (acks=0
has no response) and Produce responses' offsets and error codes (to rewrite one); EndTxn and
InitProducerId requests and responses (which transactions ended); ApiVersions responses (to cap
the Fetch version). Field layouts follow Kafka's message definitions (`FetchRequest.json`,
`FetchResponse.json`, `ProduceRequest.json`, `ProduceResponse.json`, `EndTxnRequest.json`, ...);
"flexible" versions use compact encodings and tagged fields. Frames here exclude the 4-byte size
prefix.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PRODUCE = 0
FETCH = 1
API_VERSIONS = 18
INIT_PRODUCER_ID = 22
END_TXN = 26
#: The versions whose layout this module knows; the guard forwards others untouched.
FETCH_VERSIONS = range(0, 18)
PRODUCE_VERSIONS = range(0, 13)
_KNOWN_VERSIONS = {
    FETCH: FETCH_VERSIONS,
    PRODUCE: PRODUCE_VERSIONS,
    INIT_PRODUCER_ID: range(0, 7),
    END_TXN: range(0, 6),
}
_API_NAMES = {FETCH: "Fetch", PRODUCE: "Produce", INIT_PRODUCER_ID: "InitProducerId", END_TXN: "EndTxn"}
UNKNOWN_SERVER_ERROR = -1
DUPLICATE_SEQUENCE_NUMBER = 46
_FLEXIBLE_FROM = {PRODUCE: 9, FETCH: 12, INIT_PRODUCER_ID: 2, END_TXN: 3}
READ_UNCOMMITTED, READ_COMMITTED = 0, 1


class WireError(ValueError):
    """A frame that does not parse as the message it claims to be."""


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError(f"field of {n} bytes at {self.pos} runs past the {len(self.data)}-byte frame")
        self.pos += n

    def _unpack(self, fmt: str, size: int) -> int:
        start = self.pos
        self.skip(size)
        return int(struct.unpack_from(fmt, self.data, start)[0])

    def int16(self) -> int:
        return self._unpack(">h", 2)

    def int32(self) -> int:
        return self._unpack(">i", 4)

    def int64(self) -> int:
        return self._unpack(">q", 8)

    def int8(self) -> int:
        return self._unpack(">b", 1)

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 28:
                raise WireError(f"bad unsigned varint at {self.pos}")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def length(self, flexible: bool, *, wide: bool) -> int:
        """A string's, bytes' or array's length; -1 for null. Compact forms store length + 1."""
        if flexible:
            return self.uvarint() - 1
        return self.int32() if wide else self.int16()

    def skip_string(self, flexible: bool) -> None:
        self.skip(max(self.length(flexible, wide=False), 0))

    def string(self, flexible: bool) -> str | None:
        size = self.length(flexible, wide=False)
        start = self.pos
        self.skip(max(size, 0))
        return None if size < 0 else self.data[start : self.pos].decode("utf-8")

    def bytes_field(self, flexible: bool) -> bytes | None:
        size = self.length(flexible, wide=True)
        start = self.pos
        self.skip(max(size, 0))
        return None if size < 0 else self.data[start : self.pos]

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.skip(self.uvarint())


@dataclass(frozen=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    #: Where the request body starts in the frame; None when the guard does not parse this API.
    body_offset: int | None


def flexible(api_key: int, version: int) -> bool:
    return version >= _FLEXIBLE_FROM.get(api_key, 1 << 15)


def request_header(frame: bytes) -> RequestHeader:
    """The request header (v1, or v2 with tagged fields for flexible versions of the APIs known here)."""
    reader = _Reader(frame)
    api_key, api_version = reader.int16(), reader.int16()
    correlation_id = reader.int32()
    size = reader.int16()  # client id: a nullable string in every header version
    start = reader.pos
    reader.skip(max(size, 0))
    client_id = None if size < 0 else frame[start : start + size].decode("utf-8", "replace")
    body_offset = None
    if api_version in _KNOWN_VERSIONS.get(api_key, ()):
        if flexible(api_key, api_version):
            reader.skip_tagged_fields()
        body_offset = reader.pos
    return RequestHeader(api_key, api_version, correlation_id, client_id, body_offset)


def _max_wait_offset(header: RequestHeader) -> int:
    if header.api_key != FETCH or header.body_offset is None:
        raise WireError(f"api {header.api_key} v{header.api_version} is not a Fetch this module knows")
    # ReplicaId (int32) comes first up to v14; v15 moved it into a tagged field.
    return header.body_offset + (4 if header.api_version < 15 else 0)


def fetch_max_wait_ms(frame: bytes, header: RequestHeader) -> int:
    reader = _Reader(frame, _max_wait_offset(header))
    return reader.int32()


def with_fetch_max_wait_ms(frame: bytes, header: RequestHeader, max_wait_ms: int) -> bytes:
    """The same Fetch request asking the broker to wait at most `max_wait_ms`."""
    offset = _max_wait_offset(header)
    _Reader(frame, offset).int32()  # bounds check
    return frame[:offset] + struct.pack(">i", max_wait_ms) + frame[offset + 4 :]


def produce_acks(frame: bytes, header: RequestHeader) -> int:
    if header.api_key != PRODUCE or header.body_offset is None:
        raise WireError(f"api {header.api_key} v{header.api_version} is not a Produce this module knows")
    reader = _Reader(frame, header.body_offset)
    if header.api_version >= 3:
        reader.skip_string(flexible(PRODUCE, header.api_version))  # TransactionalId
    return reader.int16()


def _response_body(frame: bytes, api_key: int, version: int) -> tuple[_Reader, bool]:
    """A reader past a response's header, and whether `version` of `api_key` is flexible."""
    if version not in _KNOWN_VERSIONS[api_key]:
        raise WireError(f"{_API_NAMES[api_key]} response v{version} is not one this module knows")
    flex = flexible(api_key, version)
    reader = _Reader(frame)
    reader.int32()  # correlation id
    if flex:
        reader.skip_tagged_fields()  # response header v1
    return reader, flex


def fetch_response_has_records(frame: bytes, version: int) -> bool:
    """Whether any partition of a Fetch response of `version` carries record bytes."""
    reader, flex = _response_body(frame, FETCH, version)
    if version >= 1:
        reader.skip(4)  # ThrottleTimeMs
    if version >= 7:
        reader.skip(2 + 4)  # ErrorCode, SessionId
    for _ in range(reader.length(flex, wide=True)):
        if version >= 13:
            reader.skip(16)  # TopicId
        else:
            reader.skip_string(flex)  # Topic
        for _ in range(reader.length(flex, wide=True)):
            reader.skip(4 + 2 + 8)  # PartitionIndex, ErrorCode, HighWatermark
            reader.skip(8 * ((version >= 4) + (version >= 5)))  # LastStableOffset, LogStartOffset
            if version >= 4:
                for _ in range(reader.length(flex, wide=True)):  # AbortedTransactions
                    reader.skip(8 + 8)  # ProducerId, FirstOffset
                    if flex:
                        reader.skip_tagged_fields()
            if version >= 11:
                reader.skip(4)  # PreferredReadReplica
            size = reader.length(flex, wide=True)  # Records
            if size > 0:
                return True
            reader.skip(max(size, 0))
            if flex:
                reader.skip_tagged_fields()
        if flex:
            reader.skip_tagged_fields()
    return False


@dataclass(frozen=True)
class ProducedPartition:
    """One partition of a Produce response: its error code, the offset its records were written at,
    and where the error code sits in the frame."""

    topic: str
    partition: int
    error_code: int
    base_offset: int
    error_at: int


def produce_response_partitions(frame: bytes, version: int) -> list[ProducedPartition]:
    reader, flex = _response_body(frame, PRODUCE, version)
    partitions: list[ProducedPartition] = []
    for _ in range(reader.length(flex, wide=True)):  # Responses (ThrottleTimeMs comes after them)
        topic = reader.string(flex) or ""  # Name (a TopicId from v13, which this module does not know)
        for _ in range(reader.length(flex, wide=True)):  # PartitionResponses
            index = reader.int32()
            error_at = reader.pos
            error_code = reader.int16()
            base_offset = reader.int64()
            reader.skip(8 * ((version >= 2) + (version >= 5)))  # LogAppendTimeMs, LogStartOffset
            if version >= 8:
                for _ in range(reader.length(flex, wide=True)):  # RecordErrors
                    reader.skip(4)  # BatchIndex
                    reader.skip_string(flex)  # BatchIndexErrorMessage
                    if flex:
                        reader.skip_tagged_fields()
                reader.skip_string(flex)  # ErrorMessage
            if flex:
                reader.skip_tagged_fields()  # CurrentLeader (v10+) is a tagged field
            partitions.append(ProducedPartition(topic, index, error_code, base_offset, error_at))
        if flex:
            reader.skip_tagged_fields()
    return partitions


def produce_response_with_error_replaced(frame: bytes, version: int, old: int, new: int) -> tuple[bytes, int]:
    """The Produce response of `version` with every partition's error code `old` made `new`, and
    how many partitions that changed. The frame keeps its length: only the codes are rewritten."""
    at = [p.error_at for p in produce_response_partitions(frame, version) if p.error_code == old]
    if not at:
        return frame, 0
    rewritten = bytearray(frame)
    for position in at:
        struct.pack_into(">h", rewritten, position, new)
    return bytes(rewritten), len(at)


@dataclass(frozen=True)
class ProduceRecords:
    """The record bytes a Produce request carries for one partition (one or more record batches)."""

    topic: str
    partition: int
    records: bytes


def produce_transactional_id(frame: bytes, header: RequestHeader) -> str | None:
    """The transactional id a Produce request of v3 or later names (None: not transactional)."""
    if header.api_key != PRODUCE or header.body_offset is None or header.api_version < 3:
        raise WireError(f"api {header.api_key} v{header.api_version} is not a Produce v3+ this module knows")
    return _Reader(frame, header.body_offset).string(flexible(PRODUCE, header.api_version))


def produce_request_records(frame: bytes, header: RequestHeader) -> list[ProduceRecords]:
    """Every partition's records in a Produce request of v3 or later (record batches, magic 2)."""
    if header.api_key != PRODUCE or header.body_offset is None or header.api_version < 3:
        raise WireError(f"api {header.api_key} v{header.api_version} is not a Produce v3+ this module knows")
    flex = flexible(PRODUCE, header.api_version)
    reader = _Reader(frame, header.body_offset)
    reader.skip_string(flex)  # TransactionalId
    reader.skip(2 + 4)  # Acks, TimeoutMs
    found: list[ProduceRecords] = []
    for _ in range(reader.length(flex, wide=True)):  # TopicData
        topic = reader.string(flex) or ""
        for _ in range(reader.length(flex, wide=True)):  # PartitionData
            index = reader.int32()
            records = reader.bytes_field(flex)
            if records:
                found.append(ProduceRecords(topic, index, records))
            if flex:
                reader.skip_tagged_fields()
        if flex:
            reader.skip_tagged_fields()
    return found


#: The newest Fetch the tail cache answers: v13 names topics by id, which Produce (to v12) does not.
FETCH_TAIL_MAX_VERSION = 12


@dataclass(frozen=True)
class FetchPartition:
    topic: str
    partition: int
    offset: int
    max_bytes: int


@dataclass(frozen=True)
class FetchRequest:
    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    isolation_level: int
    session_id: int
    partitions: list[FetchPartition]
    forgets: bool


def fetch_request(frame: bytes, header: RequestHeader) -> FetchRequest:
    """A Fetch request of v4 to v12 (the versions the tail cache answers)."""
    version = header.api_version
    if header.api_key != FETCH or header.body_offset is None or not 4 <= version <= FETCH_TAIL_MAX_VERSION:
        raise WireError(f"api {header.api_key} v{version} is not a Fetch v4-v{FETCH_TAIL_MAX_VERSION}")
    flex = flexible(FETCH, version)
    reader = _Reader(frame, header.body_offset)
    reader.skip(4)  # ReplicaId
    max_wait_ms = reader.int32()
    min_bytes = reader.int32()
    max_bytes = reader.int32()
    isolation_level = reader.int8()
    session_id = reader.int32() if version >= 7 else 0
    if version >= 7:
        reader.skip(4)  # SessionEpoch
    partitions: list[FetchPartition] = []
    for _ in range(reader.length(flex, wide=True)):  # Topics
        topic = reader.string(flex) or ""
        for _ in range(reader.length(flex, wide=True)):  # Partitions
            index = reader.int32()
            if version >= 9:
                reader.skip(4)  # CurrentLeaderEpoch
            offset = reader.int64()
            if version >= 12:
                reader.skip(4)  # LastFetchedEpoch
            if version >= 5:
                reader.skip(8)  # LogStartOffset
            partitions.append(FetchPartition(topic, index, offset, reader.int32()))
            if flex:
                reader.skip_tagged_fields()
        if flex:
            reader.skip_tagged_fields()
    forgets = version >= 7 and reader.length(flex, wide=True) > 0  # ForgottenTopicsData
    return FetchRequest(max_wait_ms, min_bytes, max_bytes, isolation_level, session_id, partitions, forgets)


def _isolation_level_offset(header: RequestHeader) -> int:
    if header.api_key != FETCH or header.body_offset is None or not 4 <= header.api_version <= 14:
        raise WireError(f"api {header.api_key} v{header.api_version} is not a Fetch v4-v14")
    return header.body_offset + 4 + 4 + 4 + 4  # after ReplicaId, MaxWaitMs, MinBytes, MaxBytes


def fetch_isolation_level(frame: bytes, header: RequestHeader) -> int:
    """A Fetch request's IsolationLevel, read where it sits without reading the rest (v4-v14)."""
    return _Reader(frame, _isolation_level_offset(header)).int8()


def with_read_uncommitted(frame: bytes, header: RequestHeader) -> bytes:
    """The same Fetch request (v4 to v14) with IsolationLevel READ_UNCOMMITTED."""
    at = _isolation_level_offset(header)
    _Reader(frame, at).int8()  # bounds check
    return frame[:at] + bytes([READ_UNCOMMITTED]) + frame[at + 1 :]


@dataclass(frozen=True)
class EndTxn:
    transactional_id: str
    producer_id: int
    committed: bool


def end_txn_request(frame: bytes, header: RequestHeader) -> EndTxn:
    if header.api_key != END_TXN or header.body_offset is None:
        raise WireError(f"api {header.api_key} v{header.api_version} is not an EndTxn this module knows")
    reader = _Reader(frame, header.body_offset)
    transactional_id = reader.string(flexible(END_TXN, header.api_version)) or ""
    producer_id = reader.int64()
    reader.skip(2)  # ProducerEpoch
    return EndTxn(transactional_id, producer_id, reader.int8() != 0)


@dataclass(frozen=True)
class InitProducerId:
    #: None: an idempotent producer.
    transactional_id: str | None
    transaction_timeout_ms: int


def init_producer_id_request(frame: bytes, header: RequestHeader) -> InitProducerId:
    if header.api_key != INIT_PRODUCER_ID or header.body_offset is None:
        raise WireError(f"api {header.api_key} v{header.api_version} is not an InitProducerId known here")
    reader = _Reader(frame, header.body_offset)
    return InitProducerId(reader.string(flexible(INIT_PRODUCER_ID, header.api_version)), reader.int32())


def init_producer_id_frame(
    correlation_id: int, client_id: str, transactional_id: str, timeout_ms: int
) -> bytes:
    """An InitProducerId request (v4) for ``transactional_id`` from a new producer instance (no
    producer id or epoch), as the guard sends it itself: the broker aborts the id's open
    transaction and bumps its epoch. Tansu 0.6 refuses v1, which carries no producer id."""
    out = _Writer(flexible=True)
    out.pack(">hhi", INIT_PRODUCER_ID, 4, correlation_id)
    out.pack(">h", len(client_id.encode()))  # the header's client id is never a compact string
    out.parts.append(client_id.encode())
    out.tagged_fields()
    out.string(transactional_id)
    out.pack(">iqh", timeout_ms, -1, -1)  # TransactionTimeoutMs, ProducerId, ProducerEpoch
    out.tagged_fields()
    return out.frame()


def txn_response(frame: bytes, api_key: int, version: int) -> tuple[int, int]:
    """An InitProducerId or EndTxn response's error code, and the producer id it names (-1: none;
    EndTxn names one from v5)."""
    reader, _ = _response_body(frame, api_key, version)
    reader.skip(4)  # ThrottleTimeMs
    error_code = reader.int16()
    named = api_key == INIT_PRODUCER_ID or version >= 5
    return error_code, reader.int64() if named else -1


class _Writer:
    def __init__(self, flexible: bool) -> None:
        self.flexible = flexible
        self.parts: list[bytes] = []

    def pack(self, fmt: str, *values: int) -> None:
        self.parts.append(struct.pack(fmt, *values))

    def uvarint(self, value: int) -> None:
        out = bytearray()
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
        self.parts.append(bytes(out))

    def length(self, size: int, *, wide: bool) -> None:
        """An array's, string's or bytes' length; -1 for null (compact forms store length + 1)."""
        if self.flexible:
            self.uvarint(size + 1)
        else:
            self.pack(">i" if wide else ">h", size)

    def string(self, value: str) -> None:
        encoded = value.encode("utf-8")
        self.length(len(encoded), wide=False)
        self.parts.append(encoded)

    def tagged_fields(self, raw: bytes = b"") -> None:
        """None, or ``raw``: tagged fields as read from another frame."""
        if self.flexible:
            if raw:
                self.parts.append(raw)
            else:
                self.uvarint(0)

    def frame(self) -> bytes:
        return b"".join(self.parts)


@dataclass(frozen=True)
class AbortedTransaction:
    producer_id: int
    first_offset: int


@dataclass(frozen=True)
class FetchedPartition:
    partition: int
    high_watermark: int
    records: bytes
    error_code: int = 0
    #: None: the high watermark (no transaction open).
    last_stable_offset: int | None = None
    #: Tansu answers 0 here and in ListOffsets, retention or not.
    log_start_offset: int = 0
    #: None (null) as for read_uncommitted.
    aborted: tuple[AbortedTransaction, ...] | None = None
    preferred_read_replica: int = -1
    #: The partition's tagged fields as read (flexible versions), written back unchanged.
    tagged_fields: bytes = b""


@dataclass(frozen=True)
class FetchResponse:
    correlation_id: int
    topics: list[tuple[str, list[FetchedPartition]]]
    throttle_time_ms: int = 0
    error_code: int = 0
    session_id: int = 0
    tagged_fields: bytes = b""


def _raw_tagged_fields(reader: _Reader) -> bytes:
    start = reader.pos
    reader.skip_tagged_fields()
    return reader.data[start : reader.pos]


def read_fetch_response(frame: bytes, version: int) -> FetchResponse:
    """A Fetch response of v4 to v12, every field (the response header's tagged fields dropped)."""
    if not 4 <= version <= FETCH_TAIL_MAX_VERSION:
        raise WireError(f"Fetch response v{version} is not one this module reads whole")
    reader, flex = _response_body(frame, FETCH, version)
    correlation_id = int.from_bytes(frame[:4], "big", signed=True)
    throttle_time_ms = reader.int32()
    error_code, session_id = (reader.int16(), reader.int32()) if version >= 7 else (0, 0)
    topics: list[tuple[str, list[FetchedPartition]]] = []
    for _ in range(reader.length(flex, wide=True)):
        topic = reader.string(flex) or ""
        partitions: list[FetchedPartition] = []
        for _ in range(reader.length(flex, wide=True)):
            index, error, high, stable = reader.int32(), reader.int16(), reader.int64(), reader.int64()
            log_start = reader.int64() if version >= 5 else 0
            count = reader.length(flex, wide=True)
            aborted: list[AbortedTransaction] = []
            for _ in range(max(count, 0)):
                aborted.append(AbortedTransaction(reader.int64(), reader.int64()))
                if flex:
                    reader.skip_tagged_fields()
            replica = reader.int32() if version >= 11 else -1
            records = reader.bytes_field(flex) or b""
            tags = _raw_tagged_fields(reader) if flex else b""
            kept = None if count < 0 else tuple(aborted)
            part = FetchedPartition(index, high, records, error, stable, log_start, kept, replica, tags)
            partitions.append(part)
        if flex:
            reader.skip_tagged_fields()
        topics.append((topic, partitions))
    tags = _raw_tagged_fields(reader) if flex else b""
    if reader.pos != len(frame):
        raise WireError(f"{len(frame) - reader.pos} bytes after the Fetch response")
    return FetchResponse(correlation_id, topics, throttle_time_ms, error_code, session_id, tags)


def write_fetch_response(response: FetchResponse, version: int) -> bytes:
    """A Fetch response of v4 to v12."""
    if not 4 <= version <= FETCH_TAIL_MAX_VERSION:
        raise WireError(f"Fetch response v{version} is not one this module writes")
    out = _Writer(flexible(FETCH, version))
    out.pack(">i", response.correlation_id)
    out.tagged_fields()  # response header v1 (flexible versions)
    out.pack(">i", response.throttle_time_ms)
    if version >= 7:
        out.pack(">hi", response.error_code, response.session_id)
    out.length(len(response.topics), wide=True)
    for topic, partitions in response.topics:
        out.string(topic)
        out.length(len(partitions), wide=True)
        for part in partitions:
            stable = part.high_watermark if part.last_stable_offset is None else part.last_stable_offset
            out.pack(">ihqq", part.partition, part.error_code, part.high_watermark, stable)
            if version >= 5:
                out.pack(">q", part.log_start_offset)
            if part.aborted is None:
                out.length(-1, wide=True)
            else:
                out.length(len(part.aborted), wide=True)
                for txn in part.aborted:
                    out.pack(">qq", txn.producer_id, txn.first_offset)
                    out.tagged_fields()
            if version >= 11:
                out.pack(">i", part.preferred_read_replica)
            out.length(len(part.records), wide=True)
            out.parts.append(part.records)
            out.tagged_fields(part.tagged_fields)
        out.tagged_fields()
    out.tagged_fields(response.tagged_fields)
    return out.frame()


def fetch_response(
    correlation_id: int, version: int, topics: list[tuple[str, list[FetchedPartition]]]
) -> bytes:
    """A Fetch response of v4 to v12 without errors or a session, as the fetch tail answers."""
    return write_fetch_response(FetchResponse(correlation_id, topics), version)


def api_versions_with_fetch_capped(frame: bytes, version: int, max_version: int) -> bytes:
    """An ApiVersions response of `version` advertising Fetch up to `max_version` at most. Its
    header is v0 in every version (KIP-511); only the MaxVersion is rewritten, in place."""
    flex = version >= 3
    reader = _Reader(frame)
    reader.int32()  # correlation id
    if reader.int16() != 0:  # ErrorCode: an error answer lists versions for the client to retry
        return frame
    for _ in range(reader.length(flex, wide=True)):  # ApiKeys
        api_key = reader.int16()
        reader.skip(2)  # MinVersion
        at = reader.pos
        if api_key == FETCH and reader.int16() > max_version:
            rewritten = bytearray(frame)
            struct.pack_into(">h", rewritten, at, max_version)
            return bytes(rewritten)
        reader.pos = at + 2
        if flex:
            reader.skip_tagged_fields()
    return frame
