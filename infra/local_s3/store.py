"""The local S3's objects on disk, with every bucket's keys indexed in memory.

A version of at most `SMALL_OBJECT_MAX` bytes is a record appended to the bucket's segment log
(:mod:`infra.local_s3.segment_log`), and so is every deletion. A larger version (and a multipart
upload's or a copy's) is one file, ``<bucket>/objects/<n>``, written once and never changed: the
body, then a trailer (the key, etag, size and metadata as JSON, its length, and a marker).
Either way the in-memory index points the key at the new version once it is whole, and the
previous version is then released (its file deleted, its record counted as garbage). So a reader
sees the old or the new object whole, and a PUT cut short changes nothing (a file without its
trailer is ignored and removed at start-up, a record cut short is cut off). Nothing is renamed
over an existing file: on ext4 that forces the new file's blocks to disk, at about 100 µs a write.

Every version and deletion carries the bucket's commit sequence number, so start-up replays files
and log records in the order they were committed, whichever kind each is.

All methods run on the server's one event-loop thread and none awaits, so checking a write's
precondition and committing the write happen with no other request in between. The one other
thread per bucket creates the files of new versions ahead and unlinks replaced ones (`VersionFiles`).
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import io
import itertools
import json
import logging
import shutil
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from infra.local_s3.segment_log import DELETE, PUT, SMALL_OBJECT_MAX, Record, SegmentLog

LOG = logging.getLogger("riverbank.local_s3")
TRAILER_MARK = b"RBS3"
TRAILER_TAIL = struct.Struct(">I4s")  # the trailer's JSON length, then the mark


class S3Error(Exception):
    """An S3 error response: its HTTP status, S3 error code and message."""

    def __init__(self, status: int, code: str, message: str, **detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error(404, "NoSuchBucket", "The specified bucket does not exist", BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def precondition_failed(condition: str) -> S3Error:
    return S3Error(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        Condition=condition,
    )


@dataclass(slots=True)
class ObjectVersion:
    key: str
    file: str  # the version's file name under objects/
    etag: str  # without quotes
    size: int
    modified: float  # seconds since the epoch
    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* and standard headers
    listing_xml: str | None = field(default=None, compare=False, repr=False)  # kept by the server
    #: The bucket's commit sequence number (0: written before there was one).
    seq: int = 0
    #: Where a version kept in the segment log is (segment -1: in a file of its own).
    segment: int = -1
    body_offset: int = 0
    record_length: int = 0

    def description(self) -> bytes:
        return json.dumps(
            {
                "key": self.key,
                "etag": self.etag,
                "size": self.size,
                "modified": self.modified,
                "content_type": self.content_type,
                "metadata": self.metadata,
                "seq": self.seq,
            }
        ).encode()

    def trailer(self) -> bytes:
        described = self.description()
        return described + TRAILER_TAIL.pack(len(described), TRAILER_MARK)

    def in_log(self, record: Record) -> None:
        self.file = ""
        self.segment, self.body_offset, self.record_length = record.segment, record.body_offset, record.length


@dataclass
class NewVersion:
    """A version's file being written: its body so far, not yet visible under any key."""

    file: str
    path: Path
    handle: IO[bytes]
    size: int = 0
    md5: Any = field(default_factory=hashlib.md5)

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.md5.update(chunk)
        self.size += len(chunk)

    def discard(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


@dataclass
class BufferedBody:
    """A small version's body, held in memory until it is appended to the log whole."""

    data: bytearray = field(default_factory=bytearray)
    size: int = 0
    md5: Any = field(default_factory=hashlib.md5)

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        self.md5.update(chunk)
        self.size += len(chunk)

    def discard(self) -> None:
        self.data.clear()


@dataclass
class Listing:
    objects: list[ObjectVersion]
    common_prefixes: list[str]
    resume_at: str | None  # set when truncated


def after(key: str) -> str:
    """The smallest key above ``key``: where a listing that starts after ``key`` starts."""
    return key + "\0"


class VersionFiles:
    """The files of a bucket's versions, created ahead and removed behind by a thread of its own.

    Creating or unlinking a file takes the file system's journal and the directory's lock, and on
    ext4 those wait whenever a journal commit is writing the blocks they touch (or the retention's
    deletes hold the directory): under the fraud bench on s3 storage, half of the local S3's busy
    time was in `open()` (py-spy), where an idle machine creates a file in 50 µs. On the event loop
    every request waited behind that; here only this thread does. New files are handed out in the
    order of their numbers. A replaced version's file is unlinked later; until then a restart finds
    both versions and keeps the one committed last (`Bucket.load`). An empty file left over from a
    stop has no trailer and is removed at start-up.
    """

    def __init__(self, directory: Path, numbers: Iterator[int], ahead: int = 32) -> None:
        self.directory = directory
        self._numbers = numbers
        self._ahead = ahead
        self._ready: collections.deque[tuple[str, Path, IO[bytes]]] = collections.deque()
        self._replaced: collections.deque[Path] = collections.deque()
        #: Held while a file is numbered and queued, so numbers are queued in order.
        self._order = threading.Lock()
        #: Held while replaced files are unlinked, so a deletion waits for one being unlinked.
        self._removing = threading.Lock()
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def take(self) -> tuple[str, Path, IO[bytes]]:
        """A file created ahead; created here, on the caller's thread, if none is ready yet."""
        try:
            return self._ready.popleft()  # without the lock: the thread may be creating the next one
        except IndexError:
            with self._order:
                return self._ready.popleft() if self._ready else self._create()
        finally:
            self._wake()  # after the pop, or the thread could find the queue still full and sleep

    def remove(self, path: Path) -> None:
        """Unlink a replaced version's file, soon (a reader that opened it keeps reading it)."""
        self._replaced.append(path)
        self._wake()

    def close(self) -> None:
        """Stop the thread, unlink the replaced files still queued and the files not handed out."""
        self._closed = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.remove_replaced()
        with self._order:
            while self._ready:
                _, path, handle = self._ready.popleft()
                handle.close()
                path.unlink(missing_ok=True)

    def _wake(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="version-files", daemon=True)
            self._thread.start()
        self._wanted.set()

    def _create(self) -> tuple[str, Path, IO[bytes]]:
        name = str(next(self._numbers))
        path = self.directory / name
        return name, path, path.open("xb")

    def remove_replaced(self) -> None:
        """Unlink every replaced file queued, now. A key's deletion does this before it answers:
        else a restart could find an older version of the deleted key and serve it again."""
        with self._removing:
            while self._replaced:
                self._replaced.popleft().unlink(missing_ok=True)

    def _run(self) -> None:
        while not self._closed:
            self._wanted.wait()
            self._wanted.clear()
            self.remove_replaced()
            while not self._closed and len(self._ready) < self._ahead:
                try:
                    with self._order:
                        if not self._closed:
                            self._ready.append(self._create())
                except OSError:  # e.g. the disk is full: take() creates its own and reports it
                    break


class Bucket:
    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.objects = root / "objects"
        self.uploads = root / "uploads"
        self.created = time.time()
        self.sorted_keys: list[str] = []
        self.versions: dict[str, ObjectVersion] = {}
        self.version_files = VersionFiles(self.objects, itertools.count())
        self.log = SegmentLog(root / "log")
        self._seq = 1

    def next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def create_directories(self) -> None:
        for directory in (self.objects, self.uploads):
            directory.mkdir(parents=True, exist_ok=True)
        self.created = self.root.stat().st_mtime

    def load(self) -> None:
        """Index each key's newest version, replaying files and log records in commit order;
        remove older files and partial ones."""
        files = sorted((int(p.name), p) for p in self.objects.iterdir() if p.name.isdigit())
        # (order, the version or the key a deletion removed, its log record or None for a file)
        commits: list[tuple[tuple[int, float, int], ObjectVersion | str, Record | None]] = []
        for number, path in files:
            version = read_trailer(path)
            if version is None:
                path.unlink(missing_ok=True)  # a write cut short
                continue
            # Files written before sequence numbers (seq 0) keep their order of old: the version
            # committed last wins; files are numbered when a write begins, so two writes of one key
            # can commit in the other order.
            commits.append(((version.seq, version.modified, number), version, None))
        for record in self.log.replay():
            described = json.loads(record.description)
            order = (described["seq"], 0.0, 0)
            if record.kind == DELETE:
                commits.append((order, described["key"], record))
                continue
            version = ObjectVersion(file="", **described)
            version.in_log(record)
            commits.append((order, version, record))
        for _, committed, logged in sorted(commits, key=lambda commit: commit[0]):
            if isinstance(committed, str):  # a deletion
                assert logged is not None
                self.log.tombstone(logged)
                if (previous := self.versions.pop(committed, None)) is not None:
                    self.release(previous, unlink_now=True)
                continue
            if (previous := self.versions.get(committed.key)) is not None:
                self.release(previous, unlink_now=True)
            self.versions[committed.key] = committed
            if logged is not None:
                self.log.current(logged, committed.key)
        self.sorted_keys = sorted(self.versions)
        self._seq = max((order[0] for order, _, _ in commits), default=0) + 1
        self.version_files = VersionFiles(self.objects, itertools.count(files[-1][0] + 1 if files else 0))

    def release(self, version: ObjectVersion, *, unlink_now: bool = False) -> None:
        """``version`` is no longer its key's current one: its record is garbage, its file goes."""
        if version.segment >= 0:
            self.log.replaced(version.segment, version.record_length, version.key)
        elif unlink_now:
            (self.objects / version.file).unlink(missing_ok=True)
        else:
            # A reader that opened the old file keeps reading it: unlinking does not cut it off.
            self.version_files.remove(self.objects / version.file)

    def reclaim(self) -> None:
        """Drop the log's reclaimable segments, appending their current records again first.

        Runs after a write has committed, so a failure here (a full disk) must not fail that
        write: it is logged, every key keeps a whole version, and a later write tries again."""
        try:
            for segment in self.log.reclaimable():
                for key in sorted(segment.live_keys):
                    version = self.versions[key]
                    body = self.log.read(version.segment, version.body_offset, version.size)
                    seq, version.seq = version.seq, self.next_seq()
                    try:
                        record = self.log.append(PUT, version.description(), body)
                    except OSError:
                        version.seq = seq
                        raise
                    self.log.replaced(version.segment, version.record_length, key)
                    version.in_log(record)
                    self.log.current(record, key)
                self.log.drop(segment)
        except OSError as exc:
            self.log.recheck()
            LOG.warning("reclaiming the log of bucket %s failed (tried again later): %s", self.name, exc)


def read_trailer(path: Path) -> ObjectVersion | None:
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, 2)
            if end < TRAILER_TAIL.size:
                return None
            handle.seek(end - TRAILER_TAIL.size)
            length, mark = TRAILER_TAIL.unpack(handle.read(TRAILER_TAIL.size))
            if mark != TRAILER_MARK or length > end - TRAILER_TAIL.size:
                return None
            handle.seek(end - TRAILER_TAIL.size - length)
            described = json.loads(handle.read(length))
    except (OSError, ValueError):
        return None
    if described.get("size") != end - TRAILER_TAIL.size - length:
        return None
    return ObjectVersion(file=path.name, **described)


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.buckets: dict[str, Bucket] = {}
        for directory in sorted(root.iterdir()):
            if (directory / "objects").is_dir():
                bucket = Bucket(directory.name, directory)
                bucket.create_directories()
                bucket.load()
                bucket.reclaim()
                self.buckets[bucket.name] = bucket

    def close(self) -> None:
        """Stop each bucket's `VersionFiles` thread, unlink the replaced files it still had queued
        and the files it created ahead (a store that is not closed leaves them, and start-up
        removes them); close the logs' files."""
        for bucket in self.buckets.values():
            bucket.version_files.close()
            bucket.log.close()

    # buckets

    def bucket(self, name: str) -> Bucket:
        try:
            return self.buckets[name]
        except KeyError:
            raise no_such_bucket(name) from None

    def create_bucket(self, name: str) -> None:
        if name in self.buckets:
            return
        if not name or "/" in name or name.startswith("."):
            raise S3Error(400, "InvalidBucketName", "The specified bucket is not valid.", BucketName=name)
        bucket = Bucket(name, self.root / name)
        bucket.create_directories()
        self.buckets[name] = bucket

    def delete_bucket(self, name: str) -> None:
        bucket = self.bucket(name)
        if bucket.versions:
            raise S3Error(
                409, "BucketNotEmpty", "The bucket you tried to delete is not empty", BucketName=name
            )
        bucket.version_files.close()
        bucket.log.close()
        shutil.rmtree(bucket.root, ignore_errors=True)
        del self.buckets[name]

    # objects

    def head(self, bucket: str, key: str) -> ObjectVersion:
        version = self.bucket(bucket).versions.get(key)
        if version is None:
            raise no_such_key(key)
        return version

    def open_body(self, bucket: str, version: ObjectVersion) -> IO[bytes]:
        """The version's body: a file stays readable after a later write replaces it; a logged
        body is read whole now."""
        if version.segment >= 0:
            log = self.bucket(bucket).log
            return io.BytesIO(log.read(version.segment, version.body_offset, version.size))
        return (self.bucket(bucket).objects / version.file).open("rb")

    def new_version(self, bucket_name: str) -> NewVersion:
        return NewVersion(*self.bucket(bucket_name).version_files.take())

    def new_body(self, bucket_name: str, declared_size: int | None) -> NewVersion | BufferedBody:
        """Where a PUT's body goes: held in memory for the log when it is declared small, else a
        file of its own."""
        if declared_size is not None and declared_size <= SMALL_OBJECT_MAX:
            self.bucket(bucket_name)  # NoSuchBucket before the body is read
            return BufferedBody()
        return self.new_version(bucket_name)

    def commit(
        self,
        bucket_name: str,
        key: str,
        new: NewVersion | BufferedBody,
        *,
        content_type: str | None,
        metadata: dict[str, str],
        etag: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectVersion:
        """Make a written body the key's current version, if the preconditions hold."""
        bucket = self.bucket(bucket_name)
        current = bucket.versions.get(key)
        try:
            check_write_preconditions(key, current, if_match=if_match, if_none_match=if_none_match)
        except S3Error:
            new.discard()
            raise
        version = ObjectVersion(
            key=key,
            file=new.file if isinstance(new, NewVersion) else "",
            etag=etag or new.md5.hexdigest(),
            size=new.size,
            modified=time.time(),
            content_type=content_type or "binary/octet-stream",
            metadata=metadata,
            seq=bucket.next_seq(),
        )
        record = None
        try:
            if isinstance(new, NewVersion):
                new.handle.write(version.trailer())
                new.handle.close()
            else:
                record = bucket.log.append(PUT, version.description(), new.data)
                version.in_log(record)
        except OSError:
            new.discard()  # e.g. the disk is full: the key keeps its current version
            raise
        if current is None:
            bisect.insort(bucket.sorted_keys, key)
        else:
            bucket.release(current)
        bucket.versions[key] = version
        if record is not None:
            bucket.log.current(record, key)
        bucket.reclaim()
        return version

    def delete(self, bucket_name: str, key: str) -> None:
        self.remove_files(bucket_name, self.unindex(bucket_name, [key]))

    def remove_files(self, bucket_name: str, files: list[Path]) -> None:
        """Unlink the files of unindexed keys, and first any replaced version still queued (one of
        these keys' older versions could be among them). Safe on any thread."""
        self.bucket(bucket_name).version_files.remove_replaced()
        for file in files:
            file.unlink(missing_ok=True)

    def unindex(self, bucket_name: str, keys: list[str]) -> list[Path]:
        """Removes ``keys`` from listings and reads at once, logging a tombstone for each (in one
        write); returns the files of those kept in files, which the caller removes with
        `remove_files` before it answers. The tombstones keep older records of these keys from
        coming back at the next start."""
        bucket = self.bucket(bucket_name)
        present = [key for key in dict.fromkeys(keys) if key in bucket.versions]
        if not present:
            return []
        tombstones = [
            (DELETE, json.dumps({"key": key, "seq": bucket.next_seq()}).encode(), b"") for key in present
        ]
        for record in bucket.log.append_many(tombstones):  # before the index changes: it may fail
            bucket.log.tombstone(record)
        files = []
        for key in present:
            current = bucket.versions.pop(key)
            del bucket.sorted_keys[bisect.bisect_left(bucket.sorted_keys, key)]
            if current.segment >= 0:
                bucket.release(current)
            else:
                files.append(bucket.objects / current.file)
        bucket.reclaim()
        return files

    def copy(self, source_bucket: str, source_key: str, bucket: str) -> NewVersion:
        """A new version holding a copy of an object's body (committed by the caller)."""
        source = self.head(source_bucket, source_key)
        new = self.new_version(bucket)
        with self.open_body(source_bucket, source) as body:
            _copy(body, new, source.size)
        return new

    def list_keys(
        self,
        bucket_name: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_at: str = "",
        max_keys: int = 1000,
    ) -> Listing:
        """Keys from ``start_at`` on, in order; keys beneath a delimiter are rolled up as S3 does.

        A truncated listing's ``resume_at`` is where the next page starts: past the last key, or
        past every key beneath the last rolled-up prefix.
        """
        bucket = self.bucket(bucket_name)
        keys = bucket.sorted_keys
        objects: list[ObjectVersion] = []
        common: list[str] = []
        resume_at = ""
        i = bisect.bisect_left(keys, max(prefix, start_at))
        while i < len(keys) and keys[i].startswith(prefix):
            if len(objects) + len(common) >= max_keys:
                return Listing(objects, common, resume_at)
            key = keys[i]
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut == -1:
                objects.append(bucket.versions[key])
                resume_at = after(key)
                i += 1
            else:
                rolled_up = key[: cut + len(delimiter)]
                common.append(rolled_up)
                resume_at = _successor(rolled_up)
                i = bisect.bisect_left(keys, resume_at)
        return Listing(objects, common, None)

    # multipart uploads

    def start_upload(self, bucket: str, key: str, content_type: str | None, metadata: dict[str, str]) -> str:
        upload_id = uuid.uuid4().hex
        directory = self.bucket(bucket).uploads / upload_id
        directory.mkdir(parents=True)
        (directory / "upload.json").write_text(
            json.dumps({"key": key, "content_type": content_type, "metadata": metadata})
        )
        return upload_id

    def upload(self, bucket: str, key: str, upload_id: str) -> tuple[Path, dict[str, Any]]:
        """An upload in progress: its directory and what CreateMultipartUpload was given."""
        directory = self.bucket(bucket).uploads / upload_id
        try:
            upload = json.loads((directory / "upload.json").read_bytes())
        except (OSError, ValueError):
            upload = None
        if not isinstance(upload, dict) or upload.get("key") != key or "/" in upload_id:
            raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.", UploadId=upload_id)
        return directory, upload

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        directory, _ = self.upload(bucket, key, upload_id)
        shutil.rmtree(directory, ignore_errors=True)

    def assemble(self, bucket: str, directory: Path, parts: list[tuple[int, str]]) -> tuple[NewVersion, str]:
        """The listed parts concatenated in order into a new version, and the multipart etag."""
        numbers = [number for number, _ in parts]
        if numbers != sorted(set(numbers)):
            raise S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        new = self.new_version(bucket)
        digests = b""
        for number, etag in parts:
            part = directory / str(number)
            recorded = directory / f"{number}.md5"
            if not part.exists() or recorded.read_text() != etag.strip('"'):
                new.discard()
                raise S3Error(400, "InvalidPart", "One or more of the specified parts could not be found.")
            with part.open("rb") as chunk:
                _copy(chunk, new, part.stat().st_size)
            digests += bytes.fromhex(etag.strip('"'))
        return new, f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"  # noqa: S324 - S3's etag


def check_write_preconditions(
    key: str, current: ObjectVersion | None, *, if_match: str | None, if_none_match: str | None
) -> None:
    """S3's conditional writes: If-None-Match: * creates only, If-Match replaces only that etag."""
    if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
        raise precondition_failed("If-None-Match")
    if if_match is not None:
        if current is None:
            raise no_such_key(key)
        accepted = set(etag_values(if_match))
        if "*" not in accepted and current.etag not in accepted:
            raise precondition_failed("If-Match")


def etag_values(header: str) -> Iterator[str]:
    for value in header.split(","):
        yield value.strip().removeprefix("W/").strip('"')


def _successor(prefix: str) -> str:
    """The smallest string above every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _copy(source: IO[bytes], target: NewVersion, size: int) -> None:
    remaining = size
    while remaining and (chunk := source.read(min(remaining, 1 << 20))):
        target.write(chunk)
        remaining -= len(chunk)
