"""Debezium change events to current-state rows and SCD type 2 history (pure functions).

Order per key is (source LSN, Kafka partition, offset): the LSN is PostgreSQL's position of the
change, so a redelivered or late change (LSN not above what the row already reflects) is ignored
rather than applied twice or over a newer state.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from iceberg.silver.store import OFFSET_COLUMN, PARTITION_COLUMN
from iceberg.silver.transform import Row, ts

OPS = frozenset({"c", "u", "r", "d"})


@dataclass(frozen=True)
class Change:
    key: int
    op: str
    lsn: int
    partition: int
    offset: int
    ts: dt.datetime | None
    #: The silver row of the after image; None for a delete.
    row: Row | None

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.lsn, self.partition, self.offset)

    def lineage(self) -> Row:
        return {
            "_lsn": self.lsn,
            "_op_ts": self.ts,
            PARTITION_COLUMN: self.partition,
            OFFSET_COLUMN: self.offset,
        }


@dataclass(frozen=True)
class Rejected:
    partition: int
    offset: int
    reason: str


def changes_from_bronze(
    rows: Iterable[Mapping[str, Any]], key: str, to_row: Callable[[Mapping[str, Any]], Row]
) -> tuple[list[Change], list[Rejected], int]:
    """(changes sorted by key then order, rejected rows, tombstones skipped)."""
    changes: list[Change] = []
    rejected: list[Rejected] = []
    tombstones = 0
    for r in rows:
        op = r.get("op")
        partition, offset = int(r["_partition"]), int(r["_offset"])
        if op is None and r.get("before") is None and r.get("after") is None:
            tombstones += 1  # Kafka compaction marker after a delete; the delete itself came before
            continue
        if op not in OPS:
            rejected.append(Rejected(partition, offset, f"unknown Debezium op {op!r}"))
            continue
        image = r.get("before") if op == "d" else r.get("after")
        if not image or image.get(key) is None:
            side = "before" if op == "d" else "after"
            rejected.append(Rejected(partition, offset, f"op {op!r} without {side}.{key}"))
            continue
        lsn = r.get("source_lsn")
        changes.append(
            Change(
                key=int(image[key]),
                op=op,
                lsn=-1 if lsn is None else int(lsn),
                partition=partition,
                offset=offset,
                ts=ts(r.get("ts_ms"), unit="ms"),
                row=None if op == "d" else to_row(image),
            )
        )
    changes.sort(key=lambda c: (c.key, c.order))
    return changes, rejected, tombstones


def by_key(changes: Iterable[Change]) -> dict[int, list[Change]]:
    grouped: dict[int, list[Change]] = defaultdict(list)
    for change in changes:
        grouped[change.key].append(change)
    for items in grouped.values():
        items.sort(key=lambda c: c.order)
    return grouped


def apply_current(
    existing: Iterable[Row], changes: Mapping[int, list[Change]], key: str
) -> tuple[list[Row], int]:
    """Rows of the affected keys after their changes, and how many changes were applied."""
    current = {row[key]: row for row in existing}
    applied = 0
    for k, items in changes.items():
        row = current.get(k)
        for change in items:
            if row is not None and row.get("_lsn") is not None and change.lsn <= row["_lsn"]:
                continue  # already reflected: a duplicate or a late delivery
            applied += 1
            if change.op == "d":
                row = None
                current.pop(k, None)
            else:
                assert change.row is not None
                row = {**change.row, **change.lineage()}
                current[k] = row
    return list(current.values()), applied


def apply_history(
    existing: Iterable[Row], changes: Mapping[int, list[Change]], key: str
) -> tuple[list[Row], int]:
    """SCD type 2 rows of the affected keys: one version per change, valid_from/valid_to from the
    change times, the open version ``is_current``; a delete closes the open version."""
    history: dict[int, list[Row]] = defaultdict(list)
    for row in existing:
        history[row[key]].append(dict(row))
    applied = 0
    for k, items in changes.items():
        versions = history[k]
        seen = max((v["_lsn"] for v in versions if v.get("_lsn") is not None), default=None)
        for change in items:
            if seen is not None and change.lsn <= seen:
                continue
            seen = change.lsn
            current = [v for v in versions if v["is_current"]]
            if change.row is not None and current and _same(current[-1], change.row):
                continue  # a re-snapshot ('r') or no-op update: no new version
            applied += 1
            for open_version in current:
                open_version["is_current"] = False
                open_version["valid_to"] = change.ts
            if change.op != "d":
                assert change.row is not None
                versions.append(
                    {
                        **change.row,
                        "valid_from": change.ts,
                        "valid_to": None,
                        "is_current": True,
                        **change.lineage(),
                    }
                )
    return [v for versions in history.values() for v in versions], applied


def _same(version: Row, row: Row) -> bool:
    return all(version.get(column) == value for column, value in row.items())
