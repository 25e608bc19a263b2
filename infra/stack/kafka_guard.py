"""A guard in front of the Tansu broker that makes its restarts safe.

Measured with Tansu 0.6 on s3 storage: after a restart, the first Produce to a partition that has
not been fetched since the restart is written at offset 0, overwriting acknowledged records and
moving the high watermark back. A Fetch first makes the partition continue at its stored offset.

So the broker never faces clients cold. The guard runs Tansu on an internal loopback port
(advertising the guard's address), accepts client connections on the public port but holds them,
fetches every partition once through itself as a warm-up client (recognised by the client id in
the Kafka request header), and only then forwards the held and new connections.
When Tansu exits, the guard exits too (and Tansu dies with the guard), so the supervisor restarts
both and every restart is warmed up again.

With `--long-poll-wait-ms`, the guard also answers Fetch long polls the way a Kafka broker does,
which Tansu does not: Tansu answers a Fetch when its `MaxWaitMs` timer runs out, however soon data
arrives. The guard reads request and response frames (`kafka_wire`) and holds a Fetch when that
connection's previous Fetch came back without records and no Produce has been answered since it
was forwarded; it releases the Fetch when a Produce response passes through (on any connection) or
the client's wait runs out, and forwards every Fetch with its wait cut to the given milliseconds.
Requests after a held Fetch on the same connection wait behind it, as on a Kafka broker (which
reads no further request from a connection until it has answered the current one). Counters go
to `--stats-file` (JSON, rewritten every second) so that tests and operators can see it work.

With `--fetch-tail-bytes`, the guard answers Fetches at the head of a partition itself
(`fetch_tail`): it keeps the newest batches it saw acknowledged (a Produce request's records, at
the offset its response gives) and answers a Fetch for them as soon as it has its MinBytes, or
empty when the Fetch's wait runs out; any other Fetch goes to Tansu. It lowers the Fetch version
advertised in ApiVersions responses to 12, the newest that names topics as Produce does.

With `--read-committed`, the guard follows transactions (Produce, EndTxn, InitProducerId) and
answers read_committed Fetches as Kafka does, which Tansu 0.6 does not (`transactions`): it asks
Tansu for the records read_uncommitted, cuts them at the last stable offset, and lists the aborted
transactions among them for the client to skip. A Fetch whose records all lie past the last stable
offset is answered empty once a transaction ends or its wait runs out.

With `--retention-endpoint` (s3 storage), the guard also enforces `retention.ms`, which Tansu
ignores: every `--retention-check-s` it deletes the batches retention has expired from Tansu's
bucket (`broker_retention`), counting passes, deleted batches and failed passes in the stats.

With `--fail-unconfirmed-duplicates` (on s3 storage), a Produce answered DUPLICATE_SEQUENCE_NUMBER
reaches the client as UNKNOWN_SERVER_ERROR. Kafka brokers give that answer only for a batch they
already hold, and clients count it as delivered. Tansu 0.6 also gives it for a batch it never
stored: it advances the producer's sequence before writing the batch, and when its object store
lost the answer to that write it retries, finds the sequence advanced and calls the batch a
duplicate (measured: the record was acknowledged, with no offset, and the next record took its
offset). Tansu cannot tell the two cases apart, so the client is told the batch failed: a failure
may have been stored, an acknowledgement is always true.

Whatever the options, the stats carry two latency histograms (`LATENCY_BOUNDS_MS`): each Produce
from its forwarding to Tansu's answer (`produce_ms_le_<bound>`), and how late the guard's event
loop wakes a 10 ms sleep (`loop_lag_ms_le_<bound>`). They tell a slow broker from a slow guard.

    python -m infra.stack.kafka_guard --listen 127.0.0.1:9092 -- tansu broker --storage-engine ...
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import dataclasses
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.stack import kafka_wire as wire
from infra.stack.fetch_tail import FetchTail
from infra.stack.record_batches import NotABatch, batch_heads
from infra.stack.transactions import Transactions

WARMUP_CLIENT_ID = "riverbank-kafka-guard-warmup"
#: The client id of the requests the guard sends Tansu on its own account.
GUARD_CLIENT_ID = "riverbank-kafka-guard"
_PR_SET_PDEATHSIG = 1
_READ_SIZE = 256 * 1024
_WARMUP_TIMEOUT_S = 120.0
_DRAIN_S = 2.0
_STATS_EVERY_S = 1.0
_EXPIRY_CHECK_S = 1.0
_OWN_REQUEST_TIMEOUT_S = 10.0
_SWITCH_INTERVAL_S = 0.0005
#: Kafka's default socket.request.max.bytes; responses (Fetch) may be larger.
_MAX_FRAME = 100 * 1024 * 1024


#: Upper bounds (ms) of the buckets of the guard's latency histograms (counters `<prefix><bound>`,
#: then `<prefix>inf`): the broker's Produce latency, from a request forwarded to Tansu to its answer
#: (object writes through the local S3 on s3 storage), and the guard's own event-loop lag.
LATENCY_BOUNDS_MS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 1000, 2000)
PRODUCE_LATENCY_PREFIX = "produce_ms_le_"
LOOP_LAG_PREFIX = "loop_lag_ms_le_"
_LOOP_LAG_TICK_S = 0.01


def latency_bucket(prefix: str, elapsed_ns: int) -> str:
    """The counter of the bucket `elapsed_ns` falls in."""
    elapsed_ms = elapsed_ns / 1e6
    for bound in LATENCY_BOUNDS_MS:
        if elapsed_ms <= bound:
            return f"{prefix}{bound}"
    return f"{prefix}inf"


def log(message: str) -> None:
    print(f"[kafka-guard] {message}", file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    # Runs in the child before exec: if the guard is killed (even with SIGKILL), Tansu goes too,
    # so two brokers can never share the same storage.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class _Pending:
    """A request forwarded and not yet answered."""

    correlation_id: int
    api_key: int
    api_version: int
    #: A Produce's records, for the fetch tail once the response says where they were written.
    produced: list[wire.ProduceRecords] | None = None
    #: (topic, partition, producer id, records) of a Produce's transactional batches.
    transactional: list[tuple[str, int, int, int]] | None = None
    #: A Fetch the client sent read_committed, forwarded read_uncommitted; when its wait runs out.
    read_committed_until: float | None = None
    end_txn: wire.EndTxn | None = None
    #: The transactional id of an InitProducerId.
    init_txn: str | None = None
    #: When it was forwarded (time.monotonic_ns), for the broker's Produce latency.
    forwarded_ns: int = 0


class _Signal:
    """Wakes whoever waits for the next time something happened (a Produce answered, a transaction
    ended)."""

    def __init__(self) -> None:
        self._next: asyncio.Future[None] | None = None

    def fire(self) -> None:
        if self._next is not None:
            self._next.set_result(None)
            self._next = None

    async def within(self, timeout_s: float) -> bool:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait({self._next}, timeout=timeout_s)
        return bool(done)


@dataclass
class _Connection:
    """What the guard tracks about one client connection when it reads its frames."""

    client: asyncio.StreamWriter
    #: Requests forwarded and not yet answered, in order.
    pending: collections.deque[_Pending] = field(default_factory=collections.deque)
    #: Set while nothing forwarded awaits its answer: the guard may then answer a request itself.
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: The first Fetch on a connection is never held.
    last_fetch_had_records: bool = True
    produces_at_last_fetch: int = -1
    #: Off once a request or response cannot be followed: the connection is then only forwarded.
    following: bool = True


class Guard:
    def __init__(
        self,
        backend: tuple[str, int],
        long_poll_wait_ms: int | None = None,
        fail_unconfirmed_duplicates: bool = False,
        fetch_tail: FetchTail | None = None,
        transactions: Transactions | None = None,
    ) -> None:
        self.backend = backend
        self.long_poll_wait_ms = long_poll_wait_ms
        self.fail_unconfirmed_duplicates = fail_unconfirmed_duplicates
        self.fetch_tail = fetch_tail
        self.transactions = transactions
        self.warm = asyncio.Event()
        self.counters: collections.Counter[str] = collections.Counter()
        self._request_pumps: set[asyncio.Future[None]] = set()
        self._produced = _Signal()
        self._transaction_ended = _Signal()

    def stop_requests(self) -> None:
        """Forward no more requests; responses to those already forwarded still flow back."""
        for pump in list(self._request_pumps):
            pump.cancel()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            await self._forward(client_r, client_w)
        except asyncio.CancelledError:  # the guard is stopping while this client was held
            client_w.close()

    async def _forward(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            first = await _read_frame(client_r)
            if first is None:
                raise ConnectionError("closed before its first request")
            if wire.request_header(first).client_id != WARMUP_CLIENT_ID:
                await self.warm.wait()
            backend_r, backend_w = await asyncio.open_connection(*self.backend)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, wire.WireError):
            client_w.close()
            return
        follow = (
            self.long_poll_wait_ms is not None
            or self.fail_unconfirmed_duplicates
            or self.fetch_tail is not None
            or self.transactions is not None
        )
        if not follow:
            backend_w.write(_framed(first))
            requests = asyncio.ensure_future(_pump(client_r, backend_w))
            responses = _pump(backend_r, client_w)
        else:
            connection = _Connection(client_w)
            connection.idle.set()

            async def on_response(frame: bytes) -> bytes:
                if self.transactions is not None:
                    frame = await self._read_committed_answer(connection, frame)
                return self._on_response(connection, frame)

            requests = asyncio.ensure_future(
                _pump_frames(client_r, backend_w, lambda f: self._on_request(connection, f), first=first)
            )
            responses = _pump_frames(backend_r, client_w, on_response, limit=2**31 - 1)
        self._request_pumps.add(requests)
        requests.add_done_callback(self._request_pumps.discard)
        await asyncio.gather(requests, responses)

    async def _on_request(self, connection: _Connection, frame: bytes) -> bytes | None:
        """Note what answer `frame` expects; hold a Fetch if nothing can have arrived for it, or
        answer it from the fetch tail (None: answered here, nothing to forward)."""
        if not connection.following:
            return frame
        try:
            header = wire.request_header(frame)
            known_produce = header.api_key == wire.PRODUCE and header.body_offset is not None
            if known_produce and wire.produce_acks(frame, header) == 0:  # no response will follow
                self._note_produce()
                return frame
            tail = header.api_key == wire.FETCH and self.fetch_tail is not None
            if tail and await self._answer_from_tail(connection, frame, header):
                return None
            produced = None
            follows_records = self.fetch_tail is not None or self.transactions is not None
            if known_produce and follows_records and header.api_version >= 3:
                produced = wire.produce_request_records(frame, header)
            pending = _Pending(
                header.correlation_id, header.api_key, header.api_version, produced,
                forwarded_ns=time.monotonic_ns() if known_produce else 0,
            )  # fmt: skip
            if self.transactions is not None:
                frame, pending = self._follow_transaction_request(frame, header, pending)
            connection.pending.append(pending)
            connection.idle.clear()
            if self.long_poll_wait_ms is None or header.api_key != wire.FETCH or header.body_offset is None:
                return frame
            wait_ms = wire.fetch_max_wait_ms(frame, header)
        except wire.WireError as exc:
            self._unparsed(connection, f"request: {exc}")
            return frame
        self.counters["fetches"] += 1
        self.counters[f"fetches_v{header.api_version}"] += 1
        nothing_new = self.counters["produces"] == connection.produces_at_last_fetch
        if not connection.last_fetch_had_records and nothing_new and wait_ms > 0:
            self.counters["fetches_held"] += 1
            released = await self._produce_within(wait_ms / 1000)
            self.counters["released_by_produce" if released else "released_by_timeout"] += 1
        connection.produces_at_last_fetch = self.counters["produces"]
        assert self.long_poll_wait_ms is not None
        return wire.with_fetch_max_wait_ms(frame, header, min(wait_ms, self.long_poll_wait_ms))

    def _on_response(self, connection: _Connection, frame: bytes) -> bytes:
        if not connection.following:
            return frame
        if not connection.pending:
            self._unparsed(connection, "a response to no request")
            return frame
        request = connection.pending.popleft()
        if not connection.pending:
            # The caller writes this response before it next yields to the event loop, so a Fetch
            # the guard answers itself (waiting on `idle`) is written after it.
            connection.idle.set()
        api_key, version = request.api_key, request.api_version
        if frame[:4] != request.correlation_id.to_bytes(4, "big", signed=True):
            expected = request.correlation_id
            self._unparsed(connection, f"a response out of order (expected correlation id {expected})")
            return frame
        if api_key == wire.API_VERSIONS and (self.fetch_tail is not None or self.transactions is not None):
            return self._cap_fetch_version(connection, frame, version)
        if request.end_txn is not None or request.init_txn is not None:
            self._transaction_answered(connection, request, frame)
        if api_key == wire.PRODUCE:
            if request.forwarded_ns:
                elapsed = time.monotonic_ns() - request.forwarded_ns
                self.counters[latency_bucket(PRODUCE_LATENCY_PREFIX, elapsed)] += 1
            if request.produced or request.transactional:
                self._remember_produced(connection, frame, request)
            self._note_produce()
            if self.fail_unconfirmed_duplicates:
                return self._fail_duplicates(connection, frame, version)
        elif api_key == wire.FETCH and version in wire.FETCH_VERSIONS and self.long_poll_wait_ms is not None:
            try:
                had_records = wire.fetch_response_has_records(frame, version)
            except wire.WireError as exc:
                self._unparsed(connection, f"Fetch v{version} response: {exc}")
                had_records = True  # never hold a consumer on a response the guard cannot read
            connection.last_fetch_had_records = had_records
            self.counters["fetch_responses_with_records" if had_records else "empty_fetch_responses"] += 1
        return frame

    async def _answer_from_tail(
        self, connection: _Connection, frame: bytes, header: wire.RequestHeader
    ) -> bool:
        """Answer a Fetch for the head of its partitions from the fetch tail, as a Kafka broker would:
        once it has its MinBytes of records, or when its wait runs out.
        False: the tail cannot answer it, forward it."""
        assert self.fetch_tail is not None
        try:
            request = wire.fetch_request(frame, header)
        except wire.WireError:  # another version, or a request the tail does not answer
            self.counters[f"tail_forwarded_v{header.api_version}"] += 1
            return False
        # read_committed too (librdkafka's default): the tail holds no partition written in
        # transactions, and without them the last stable offset is the high watermark.
        if request.session_id != 0 or request.forgets:
            self.counters["tail_forwarded_session"] += 1
            return False
        deadline = time.monotonic() + request.max_wait_ms / 1000
        while True:
            answer = self._tail_answer(request)
            if answer is None:
                self.counters["tail_forwarded_not_cached"] += 1
                return False
            topics, size = answer
            remaining = deadline - time.monotonic()
            if size >= max(request.min_bytes, 1) or remaining <= 0:
                break
            await self._produce_within(remaining)
        await connection.idle.wait()  # answers go back in request order
        response = wire.fetch_response(header.correlation_id, header.api_version, topics)
        connection.client.write(_framed(response))
        self.counters["tail_fetches_answered" if size else "tail_fetches_empty"] += 1
        return True

    def _tail_answer(
        self, request: wire.FetchRequest
    ) -> tuple[list[tuple[str, list[wire.FetchedPartition]]], int] | None:
        """The answer's partitions and its size in bytes of records; None if the tail cannot tell."""
        assert self.fetch_tail is not None
        topics: dict[str, list[wire.FetchedPartition]] = {}
        size = 0
        for part in request.partitions:
            # Past the request's MaxBytes only the first partition with records gets one batch.
            limit = min(part.max_bytes, request.max_bytes - size) if size else part.max_bytes
            records = self.fetch_tail.read(part.topic, part.partition, part.offset, limit)
            end = self.fetch_tail.end(part.topic, part.partition)
            if records is None or end is None:
                return None
            if size and limit <= 0:
                records = b""  # the response is full
            size += len(records)
            topics.setdefault(part.topic, []).append(wire.FetchedPartition(part.partition, end, records))
        return list(topics.items()), size

    def _remember_produced(self, connection: _Connection, frame: bytes, request: _Pending) -> None:
        """Tell the fetch tail and the transactions where a Produce's batches were written."""
        version = request.api_version
        try:
            written = {(p.topic, p.partition): p for p in wire.produce_response_partitions(frame, version)}
        except wire.WireError as exc:
            self._unparsed(connection, f"Produce v{version} response: {exc}")
            written = {}  # transactions in flight still end: the LSO is not held for ever
        if self.fetch_tail is not None:
            for records in request.produced or []:
                answer = written.get((records.topic, records.partition))
                if answer is not None and answer.error_code == 0:
                    tail = self.fetch_tail
                    tail.acknowledged(records.topic, records.partition, answer.base_offset, records.records)
        if self.transactions is not None:
            for topic, partition, producer_id, count in request.transactional or []:
                answer = written.get((topic, partition))
                span = None  # not written: the transaction still ends, the LSO is not held for ever
                if answer is not None and answer.error_code == 0:
                    span = (answer.base_offset, answer.base_offset + count)
                self.transactions.produced(topic, partition, producer_id, span)

    def _follow_transaction_request(
        self, frame: bytes, header: wire.RequestHeader, pending: _Pending
    ) -> tuple[bytes, _Pending]:
        """Note what a request tells of transactions; a read_committed Fetch goes on read_uncommitted."""
        transactions = self.transactions
        assert transactions is not None
        if header.api_key == wire.PRODUCE and pending.produced:
            name = wire.produce_transactional_id(frame, header)
            if name is None:  # batches are transactional only under a transactional id
                return frame, pending
            found: list[tuple[str, int, int, int]] = []
            for records in pending.produced:
                with contextlib.suppress(NotABatch):  # not followed: Tansu judges it
                    heads = batch_heads(records.records)
                    producers = {h.producer_id for h in heads if h.transactional and not h.control}
                    count = sum(head.count for head in heads)
                    found += [(records.topic, records.partition, pid, count) for pid in producers]
            for topic, partition, producer_id, _ in found:
                transactions.producing(topic, partition, producer_id)
                transactions.named(name, producer_id)
            return frame, dataclasses.replace(pending, transactional=found)
        if header.api_key == wire.FETCH and 4 <= header.api_version <= wire.FETCH_TAIL_MAX_VERSION:
            if wire.fetch_isolation_level(frame, header) != wire.READ_COMMITTED:
                return frame, pending
            self.counters["read_committed_fetches"] += 1
            until = time.monotonic() + wire.fetch_max_wait_ms(frame, header) / 1000
            return wire.with_read_uncommitted(frame, header), dataclasses.replace(
                pending, read_committed_until=until
            )
        if header.api_key == wire.END_TXN and header.body_offset is not None:
            end = wire.end_txn_request(frame, header)
            transactions.named(end.transactional_id, end.producer_id)
            return frame, dataclasses.replace(pending, end_txn=end)
        if header.api_key == wire.INIT_PRODUCER_ID and header.body_offset is not None:
            init = wire.init_producer_id_request(frame, header)
            if init.transactional_id is not None:
                transactions.timeout_asked(init.transactional_id, init.transaction_timeout_ms)
            return frame, dataclasses.replace(pending, init_txn=init.transactional_id)
        return frame, pending

    async def fence_expired_transactions(self, every_s: float = _EXPIRY_CHECK_S) -> None:
        """Abort transactions open longer than their timeout, as Kafka's transaction coordinator
        does and Tansu 0.6 does not: an InitProducerId for the transactional id, which makes Tansu
        abort the transaction (writing its markers) and bump the epoch, fencing the producer."""
        transactions = self.transactions
        assert transactions is not None
        while True:
            await asyncio.sleep(every_s)
            for transactional_id, timeout_s in transactions.expired():
                try:
                    error_code, producer_id = await self._init_producer_id(transactional_id, timeout_s)
                except (OSError, asyncio.IncompleteReadError, wire.WireError) as exc:
                    log(f"could not time out transaction {transactional_id!r}: {exc}")
                    continue
                if error_code != 0:  # e.g. CONCURRENT_TRANSACTIONS: the next check tries again
                    continue
                transactions.initialised(transactional_id, producer_id)
                self.counters["transactions_timed_out"] += 1
                self._transaction_ended.fire()
                log(f"transaction of {transactional_id!r} timed out: aborted, its producer fenced")

    async def _init_producer_id(self, transactional_id: str, timeout_s: float) -> tuple[int, int]:
        reader, writer = await asyncio.open_connection(*self.backend)
        try:
            request = wire.init_producer_id_frame(0, GUARD_CLIENT_ID, transactional_id, int(timeout_s * 1000))
            writer.write(_framed(request))
            frame = await asyncio.wait_for(_read_frame(reader), _OWN_REQUEST_TIMEOUT_S)
            if frame is None:
                raise ConnectionError("closed before answering")
            return wire.txn_response(frame, wire.INIT_PRODUCER_ID, 4)
        finally:
            writer.close()

    def _transaction_answered(self, connection: _Connection, request: _Pending, frame: bytes) -> None:
        """An EndTxn or InitProducerId answered: the transactions it ended are known."""
        transactions = self.transactions
        assert transactions is not None
        try:
            error_code, producer_id = wire.txn_response(frame, request.api_key, request.api_version)
        except wire.WireError as exc:
            self._unparsed(connection, f"api {request.api_key} v{request.api_version} response: {exc}")
            return
        if error_code != 0:
            return
        if request.end_txn is not None:
            end = request.end_txn
            moved = transactions.ended(end.producer_id, end.committed)
            self.counters["transactions_committed" if end.committed else "transactions_aborted"] += 1
        else:
            assert request.init_txn is not None
            moved = transactions.initialised(request.init_txn, producer_id)
            self.counters["transactions_fenced"] += moved
        if moved:
            self._transaction_ended.fire()

    async def _read_committed_answer(self, connection: _Connection, frame: bytes) -> bytes:
        """The answer a read_committed reader gets from a Fetch response read_uncommitted: records
        below each partition's LSO, the aborted transactions among them. A Fetch whose records all lie
        past the LSO is answered empty once a transaction ends or its wait runs out, as Kafka does
        (answered at once, the client would fetch the same records again and again)."""
        request = connection.pending[0] if connection.following and connection.pending else None
        if request is None or request.read_committed_until is None:
            return frame
        if frame[:4] != request.correlation_id.to_bytes(4, "big", signed=True):
            return frame  # _on_response stops following the connection
        transactions = self.transactions
        assert transactions is not None
        try:
            response = wire.read_fetch_response(frame, request.api_version)
        except (wire.WireError, NotABatch) as exc:
            self._unparsed(connection, f"Fetch v{request.api_version} response: {exc}")
            return frame
        held_back = 0
        topics: list[tuple[str, list[wire.FetchedPartition]]] = []
        for topic, partitions in response.topics:
            answered = []
            for part in partitions:
                view = transactions.read_committed(topic, part.partition, part.high_watermark, part.records)
                held_back += len(part.records) - len(view.records)
                self.counters["aborted_transactions_listed"] += len(view.aborted)
                stable, aborted = view.last_stable_offset, view.aborted
                answered.append(
                    dataclasses.replace(
                        part, records=view.records, last_stable_offset=stable, aborted=aborted
                    )
                )
            topics.append((topic, answered))
        answer = dataclasses.replace(response, topics=topics)
        nothing = not any(part.records for _, parts in topics for part in parts)
        if held_back and nothing:
            self.counters["read_committed_held"] += 1
            await self._transaction_ended.within(request.read_committed_until - time.monotonic())
        return wire.write_fetch_response(answer, request.api_version)

    def _cap_fetch_version(self, connection: _Connection, frame: bytes, version: int) -> bytes:
        """Clients then name topics in Fetches (v13 on uses topic ids, which Produce does not)."""
        try:
            return wire.api_versions_with_fetch_capped(frame, version, wire.FETCH_TAIL_MAX_VERSION)
        except wire.WireError as exc:
            self._unparsed(connection, f"ApiVersions v{version} response: {exc}")
            return frame

    def _fail_duplicates(self, connection: _Connection, frame: bytes, version: int) -> bytes:
        try:
            frame, failed = wire.produce_response_with_error_replaced(
                frame, version, wire.DUPLICATE_SEQUENCE_NUMBER, wire.UNKNOWN_SERVER_ERROR
            )
        except wire.WireError as exc:
            self._unparsed(connection, f"Produce v{version} response: {exc}")
            return frame
        if failed:
            self.counters["unconfirmed_duplicates_failed"] += failed
            log(f"{failed} partition(s) answered DUPLICATE_SEQUENCE_NUMBER: told the client they failed")
        return frame

    def _note_produce(self) -> None:
        self.counters["produces"] += 1
        self._produced.fire()

    async def _produce_within(self, timeout_s: float) -> bool:
        return await self._produced.within(timeout_s)

    def _unparsed(self, connection: _Connection, what: str) -> None:
        self.counters["unparsed"] += 1
        if connection.following:
            connection.following = False
            log(f"forwarding a connection unread from now on: could not follow {what}")


async def _pump_frames(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_frame: Callable[[bytes], Awaitable[bytes | None]],
    *,
    first: bytes | None = None,
    limit: int = _MAX_FRAME,
) -> None:
    """`_pump`, one Kafka message at a time, each passed through `on_frame` (which may hold it)."""
    try:
        frame = first if first is not None else await _read_frame(reader, limit)
        while frame is not None:
            forwarded = await on_frame(frame)
            if forwarded is not None:  # None: answered by the guard
                writer.write(_framed(forwarded))
                await writer.drain()
            frame = await _read_frame(reader, limit)
    except asyncio.CancelledError:
        return  # stopping: keep the connection open so in-flight responses still arrive
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()


async def _read_frame(reader: asyncio.StreamReader, limit: int = _MAX_FRAME) -> bytes | None:
    """One size-prefixed Kafka message without its prefix; None at a clean end of stream."""
    try:
        size = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    (length,) = struct.unpack(">i", size)
    if not 0 <= length <= limit:  # not Kafka (or a request no broker would take): do not buffer it
        raise ConnectionError(f"a frame of {length} bytes")
    return await reader.readexactly(length)


def _framed(frame: bytes) -> bytes:
    return struct.pack(">i", len(frame)) + frame


async def write_stats(guard: Guard, path: Path) -> None:
    """Rewrite the guard's counters to `path` every second while they change."""
    written: dict[str, int] | None = None
    while True:
        current = dict(guard.counters)
        if current != written:
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(json.dumps(current, sort_keys=True))
            temporary.replace(path)
            written = current
        await asyncio.sleep(_STATS_EVERY_S)


async def measure_loop_lag(guard: Guard, tick_s: float = _LOOP_LAG_TICK_S) -> None:
    """How late the event loop wakes a `tick_s` sleep: everything the guard forwards waits that long
    too (a busy loop, or the guard's process waiting for a CPU)."""
    while True:
        started = time.monotonic_ns()
        await asyncio.sleep(tick_s)
        late = time.monotonic_ns() - started - int(tick_s * 1e9)
        guard.counters[latency_bucket(LOOP_LAG_PREFIX, max(late, 0))] += 1


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_READ_SIZE):
            writer.write(data)
            await writer.drain()
    except asyncio.CancelledError:
        return  # stopping: keep the connection open so in-flight responses still arrive
    except (ConnectionError, OSError):
        pass
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()


def warm_up(public: str, internal: str, timeout_s: float) -> int:
    """Fetch every partition once through the guard; returns how many partitions were warmed."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # Metadata names the guard's address, so this client must be let through as well.
            admin = AdminClient(
                {"bootstrap.servers": internal, "client.id": WARMUP_CLIENT_ID, "log_level": 0}
            )
            metadata = admin.list_topics(timeout=5)
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker did not answer metadata on {internal}: {exc}") from exc
            time.sleep(0.2)
    partitions = [
        TopicPartition(topic, p, 0)
        for topic, meta in metadata.topics.items()
        if not topic.startswith("__")
        for p in meta.partitions
    ]
    if not partitions:
        return 0
    consumer = Consumer({
        "bootstrap.servers": public, "client.id": WARMUP_CLIENT_ID, "group.id": WARMUP_CLIENT_ID,
        "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
        # Measured: with fetch.wait.max.ms=10 Tansu (s3 storage) answers empty before its object read
        # finishes, for ever; at 100 ms a partition with data answers within a second.
        "fetch.wait.max.ms": 100, "log_level": 0,
    })  # fmt: skip
    try:
        consumer.assign(partitions)
        pending = {(tp.topic, tp.partition) for tp in partitions}
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} partitions not fetched, e.g. {sorted(pending)[:3]}")
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            # A record, the end of the partition, or a definite answer that there is nothing: fetched.
            answered = (
                KafkaError._PARTITION_EOF,
                KafkaError.OFFSET_OUT_OF_RANGE,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            )
            if error is None or error.code() in answered:
                pending.discard((message.topic(), message.partition()))
    finally:
        consumer.close()
    return len(partitions)


@dataclass(frozen=True)
class RetentionOptions:
    endpoint: str
    bucket: str
    cluster: str
    default_ms: int
    check_s: float


def _enforce_retention(
    options: RetentionOptions, guard: Guard, loop: asyncio.AbstractEventLoop, stop: threading.Event
) -> None:
    """Retention passes until ``stop``; counters are updated on the event loop's thread."""
    from infra.stack.broker_retention import BrokerRetention, s3_client

    s3 = s3_client(options.endpoint)
    tail = guard.fetch_tail

    def forget(topic: str, partition: int, oldest: int) -> None:
        if tail is not None:  # the tail no longer serves what retention deleted
            loop.call_soon_threadsafe(tail.deleted_below, topic, partition, oldest)

    retention = BrokerRetention(s3, options.bucket, options.cluster, options.default_ms, forget)
    while not stop.wait(options.check_s):
        try:
            deleted = retention.enforce()
        except Exception as exc:  # the next pass tries again; the broker runs on either way
            log(f"retention pass failed: {exc}")
            loop.call_soon_threadsafe(guard.counters.update, {"retention_errors": 1})
            continue
        counted = {"retention_passes": 1, "retention_deleted": deleted}
        loop.call_soon_threadsafe(guard.counters.update, counted)


async def serve(
    listen: tuple[str, int],
    tansu: list[str],
    long_poll_wait_ms: int | None = None,
    stats_file: Path | None = None,
    fail_unconfirmed_duplicates: bool = False,
    retention: RetentionOptions | None = None,
    fetch_tail_bytes: int = 0,
    read_committed: bool = False,
) -> int:
    # The retention thread parses S3 listings in Python (botocore, dateutil): at the default 5 ms
    # switch interval the event loop, and every request it forwards, could wait that long for the GIL
    # at each switch (loop lag p99 20 ms under the fraud bench at 5 ms, 5 ms at this setting).
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    internal_port = free_port(listen[0])
    command = [_replace_listener(arg, internal_port) for arg in tansu]
    # Its own session: the supervisor's stop signal reaches the guard only, which stops Tansu once
    # in-flight requests are answered. PDEATHSIG still takes Tansu down if the guard is killed.
    child = subprocess.Popen(command, preexec_fn=_die_with_parent, start_new_session=True)
    fetch_tail = FetchTail(fetch_tail_bytes) if fetch_tail_bytes > 0 else None
    transactions = Transactions() if read_committed else None
    backend = (listen[0], internal_port)
    guard = Guard(backend, long_poll_wait_ms, fail_unconfirmed_duplicates, fetch_tail, transactions)
    server = await asyncio.start_server(guard.handle, listen[0], listen[1], reuse_address=True)
    log(f"tansu pid {child.pid} on internal port {internal_port}; holding clients on {listen[0]}:{listen[1]}")
    if long_poll_wait_ms is not None:
        log(f"long poll on: Fetches forwarded with a wait of at most {long_poll_wait_ms} ms")
    if fetch_tail is not None:
        log(f"fetch tail on: Fetches at the head answered by the guard, {fetch_tail_bytes} bytes a partition")
    if transactions is not None:
        log("read_committed on: Fetches answered up to the last stable offset, aborted transactions listed")
    stats = asyncio.ensure_future(write_stats(guard, stats_file)) if stats_file else None
    loop_lag = asyncio.ensure_future(measure_loop_lag(guard))
    expiry = asyncio.ensure_future(guard.fence_expired_transactions()) if transactions is not None else None

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def warm() -> None:
        started = time.monotonic()
        try:
            count = warm_up(f"{listen[0]}:{listen[1]}", f"{listen[0]}:{internal_port}", _WARMUP_TIMEOUT_S)
        except Exception as exc:
            log(f"warm-up failed: {exc}; stopping so that the supervisor restarts the broker")
            loop.call_soon_threadsafe(stopping.set)
            return
        log(f"warmed {count} partitions in {time.monotonic() - started:.2f}s; forwarding clients")
        loop.call_soon_threadsafe(guard.warm.set)

    threading.Thread(target=warm, name="warm-up", daemon=True).start()
    stop_retention = threading.Event()
    if retention is not None:
        log(f"retention every {retention.check_s:g}s; default retention.ms {retention.default_ms}")
        arguments = (retention, guard, loop, stop_retention)
        threading.Thread(target=_enforce_retention, args=arguments, name="retention", daemon=True).start()
    child_exit: asyncio.Future[Any] = loop.run_in_executor(None, child.wait)
    stop_wait: asyncio.Future[Any] = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([child_exit, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    server.close()
    stop_retention.set()
    for task in (stats, expiry, loop_lag):
        if task is not None:
            task.cancel()
    if child.poll() is None:
        guard.stop_requests()
        await asyncio.sleep(_DRAIN_S)  # requests already forwarded are persisted and answered
        child.terminate()
        try:
            await asyncio.wait_for(child_exit, 20)
        except TimeoutError:
            child.kill()
        log("stopped")
        return 0
    log(f"tansu exited with {child.returncode}")
    return child.returncode or 1


def _replace_listener(arg: str, port: int) -> str:
    # Tansu listens on the internal port; it keeps advertising the guard's public address.
    return arg.replace("{internal_port}", str(port))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="public host:port clients connect to")
    parser.add_argument(
        "--long-poll-wait-ms",
        type=int,
        help="hold Fetches until a Produce is answered, and forward them with at most this wait",
    )
    parser.add_argument(
        "--fail-unconfirmed-duplicates",
        action="store_true",
        help="answer UNKNOWN_SERVER_ERROR where Tansu answers a Produce DUPLICATE_SEQUENCE_NUMBER",
    )
    parser.add_argument("--stats-file", type=Path, help="where to write the guard's counters (JSON)")
    parser.add_argument("--retention-endpoint", help="S3 endpoint of Tansu's bucket; enforce retention there")
    parser.add_argument("--retention-bucket", default="tansu")
    parser.add_argument("--retention-cluster", default="riverbank", help="Tansu's CLUSTER_ID")
    parser.add_argument(
        "--retention-default-ms", type=int, default=604_800_000, help="for topics without retention.ms"
    )
    parser.add_argument("--retention-check-s", type=float, default=30.0)
    parser.add_argument(
        "--fetch-tail-bytes",
        type=int,
        default=0,
        help="answer Fetches at the head of a partition from its newest batches, this many bytes kept",
    )
    parser.add_argument(
        "--read-committed",
        action="store_true",
        help="follow transactions; answer read_committed Fetches up to the LSO with aborted transactions",
    )
    parser.add_argument(
        "tansu", nargs=argparse.REMAINDER, help="-- the tansu command; {internal_port} is filled in"
    )
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    command = args.tansu[1:] if args.tansu[:1] == ["--"] else args.tansu
    retention = None
    if args.retention_endpoint:
        retention = RetentionOptions(
            args.retention_endpoint,
            args.retention_bucket,
            args.retention_cluster,
            args.retention_default_ms,
            args.retention_check_s,
        )
    sys.exit(
        asyncio.run(
            serve(
                (host, int(port)),
                command,
                args.long_poll_wait_ms,
                args.stats_file,
                args.fail_unconfirmed_duplicates,
                retention,
                args.fetch_tail_bytes,
                args.read_committed,
            )
        )
    )


if __name__ == "__main__":
    main()
