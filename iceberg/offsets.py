"""Kafka offsets stored in Iceberg snapshot summaries: the sink's exactly-once state.

Every sink commit puts, in the summary of the snapshot that holds the rows, the property
``riverbank.kafka.offsets``: JSON ``{"<topic>": {"<partition>": <next offset>}}`` for every
partition the table has consumed so far (cumulative, so the newest such snapshot is enough).
Snapshots written by others (compaction) carry no offsets and are skipped when reading back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

OFFSETS_PROPERTY = "riverbank.kafka.offsets"
TopicPartition = tuple[str, int]


def encode(offsets: Mapping[TopicPartition, int]) -> str:
    out: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        out.setdefault(topic, {})[str(partition)] = offset
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def decode(text: str) -> dict[TopicPartition, int]:
    data = json.loads(text)
    return {(topic, int(p)): int(o) for topic, parts in data.items() for p, o in parts.items()}


def ancestors(table: Table) -> Iterator[Snapshot]:
    """The current snapshot and its parents, newest first."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        yield snapshot
        if snapshot.parent_snapshot_id is None:
            return
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id)


def committed_offsets(table: Table) -> dict[TopicPartition, int]:
    """Next offset per topic-partition as of the table's newest snapshot that carries offsets."""
    for snapshot in ancestors(table):
        summary = snapshot.summary
        text = summary.additional_properties.get(OFFSETS_PROPERTY) if summary is not None else None
        if text is not None:
            return decode(text)
    return {}


def latest_offsets_snapshot_id(table: Table) -> int | None:
    """The snapshot whose offsets a restart would resume from; maintenance must keep it."""
    for snapshot in ancestors(table):
        if snapshot.summary is not None and OFFSETS_PROPERTY in snapshot.summary.additional_properties:
            return snapshot.snapshot_id
    return None


def merge(into: dict[TopicPartition, int], more: Iterable[tuple[TopicPartition, int]]) -> None:
    for tp, offset in more:
        if offset > into.get(tp, -1):
            into[tp] = offset
