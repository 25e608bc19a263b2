"""Kafka's time retention for the embedded broker on s3 storage, which Tansu 0.6 does not enforce.

Tansu stores each batch of a partition as one object,
``clusters/<cluster>/topics/<topic>/partitions/<partition>/records/<base offset>.batch``, and
ignores ``retention.ms``: a topic only grows. Each Fetch that finds new data lists every batch of its
partition (ARCHITECTURE.md, "Tansu's fetches"), so the broker slows as its topics fill. A retention
pass deletes the batches that retention has expired, as a Kafka broker deletes log segments:

- a topic's ``retention.ms`` comes from its configuration (Tansu keeps the configurations given at
  creation in ``clusters/<cluster>/meta.json``), else the broker's default; ``-1`` keeps everything;
- a topic whose ``cleanup.policy`` does not include ``delete`` (``compact`` alone) is not touched:
  Tansu does not compact either, so such a topic keeps its whole history;
- a batch's age counts from when it was written (its object's LastModified), that is log-append
  time, where Kafka goes by the newest record timestamp of a segment;
- the newest batch of each partition is kept, as Kafka keeps the active segment.

Two differences from Kafka remain. ListOffsets for the earliest offset still answers Tansu's log
start (0), and a Fetch from there returns the oldest batch kept, which clients take as they take a
gap left by compaction. And a Fetch that lists a batch just before it is deleted fails its read of
it; Tansu answers that partition UNKNOWN_SERVER_ERROR (its source maps every failed read so), and
the client fetches again. Only a consumer reading at the retention edge can meet that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: S3 DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000
#: Batches written this recently are listed again on the next pass.
_SETTLE_MS = 5000


@dataclass(frozen=True)
class TopicRetention:
    topic: str
    partitions: int
    #: None: the topic is kept whole (retention.ms -1, or not a delete policy).
    retention_ms: int | None


@dataclass(frozen=True)
class StoredBatch:
    key: str
    written_ms: int

    @property
    def base_offset(self) -> int:
        """From the key's file name, ``<base offset, zero-padded>.batch``."""
        return int(self.key.rsplit("/", 1)[1].split(".")[0])


def topic_retentions(meta: dict[str, Any], default_ms: int) -> list[TopicRetention]:
    """Each topic's retention from Tansu's cluster metadata (``meta.json``)."""
    out = []
    for name, entry in sorted((meta.get("topics") or {}).items()):
        creation = entry.get("topic") or {}
        configs = {c["name"]: c.get("value") for c in creation.get("configs") or []}
        policies = {p.strip() for p in (configs.get("cleanup.policy") or "delete").split(",")}
        value = configs.get("retention.ms")
        retention_ms = int(value) if value not in (None, "") else default_ms
        kept = "delete" not in policies or retention_ms < 0
        partitions = int(creation.get("num_partitions") or 1)
        out.append(TopicRetention(name, partitions, None if kept else retention_ms))
    return out


def expired(batches: Iterable[StoredBatch], retention_ms: int, now_ms: int) -> list[str]:
    """The keys of one partition's batches written more than ``retention_ms`` before ``now_ms``,
    except its newest (base offsets are zero-padded, so the greatest key is the newest)."""
    stored = list(batches)
    newest = max((b.key for b in stored), default="")
    cutoff = now_ms - retention_ms
    return [b.key for b in stored if b.written_ms < cutoff and b.key != newest]


@dataclass
class BrokerRetention:
    """Retention passes over Tansu's objects in ``bucket``, through an S3 client (boto3's API).

    A pass lists only the batches written since the previous one (``StartAfter`` the last key seen
    in each partition), so its cost follows the write rate, not the batches a partition holds."""

    s3: Any
    bucket: str
    cluster: str
    default_ms: int
    #: Told (topic, partition, oldest offset kept) after batches of a partition were deleted.
    on_deleted: Callable[[str, int, int], None] | None = None
    #: The batches listed and not yet deleted, per partition prefix, in key order.
    _kept: dict[str, list[StoredBatch]] = field(default_factory=dict, repr=False)

    def enforce(self, now_ms: int | None = None) -> int:
        """One pass over every topic; returns how many batches were deleted."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        meta = self._meta()
        deleted = 0
        for topic in topic_retentions(meta, self.default_ms):
            if topic.retention_ms is None:
                continue
            for partition in range(topic.partitions):
                prefix = f"clusters/{self.cluster}/topics/{topic.topic}/partitions/{partition:010}/records/"
                gone, oldest = self._enforce_partition(prefix, topic.retention_ms, now_ms)
                if gone and oldest is not None and self.on_deleted is not None:
                    self.on_deleted(topic.topic, partition, oldest)
                deleted += gone
        return deleted

    def _enforce_partition(self, prefix: str, retention_ms: int, now_ms: int) -> tuple[int, int | None]:
        """How many batches were deleted, and the offset of the oldest one kept."""
        kept = self._kept.setdefault(prefix, [])
        # Relist the last few seconds: concurrent produces may land their batches out of order.
        settled = 0
        while settled < len(kept) and kept[settled].written_ms < now_ms - _SETTLE_MS:
            settled += 1
        kept[settled:] = self._listed(prefix, start_after=kept[settled - 1].key if settled else "")
        gone = set(self._delete(expired(kept, retention_ms, now_ms)))
        kept[:] = [b for b in kept if b.key not in gone]
        return len(gone), (kept[0].base_offset if kept else None)

    def _meta(self) -> dict[str, Any]:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=f"clusters/{self.cluster}/meta.json")["Body"]
        except self.s3.exceptions.NoSuchKey:
            return {}  # no topic created yet
        meta: dict[str, Any] = json.loads(body.read())
        return meta

    def _listed(self, prefix: str, start_after: str) -> list[StoredBatch]:
        after = {"StartAfter": start_after} if start_after else {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, **after)
        return [
            StoredBatch(entry["Key"], int(entry["LastModified"].timestamp() * 1000))
            for page in pages
            for entry in page.get("Contents", [])
            if entry["Key"].endswith(".batch")
        ]

    def _delete(self, keys: list[str]) -> list[str]:
        """Deletes ``keys``; returns those deleted (a key S3 reports an error for stays listed)."""
        deleted = []
        for start in range(0, len(keys), _DELETE_BATCH):
            chunk = keys[start : start + _DELETE_BATCH]
            answer = self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
            failed = {error["Key"] for error in answer.get("Errors", [])}
            deleted += [k for k in chunk if k not in failed]
        return deleted


def s3_client(endpoint: str) -> Any:
    """A boto3 client for the broker's bucket; credentials and region from the environment (the
    same variables Tansu reads)."""
    import boto3  # type: ignore[import-untyped]

    return boto3.client("s3", endpoint_url=endpoint)
