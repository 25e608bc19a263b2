"""What the lake catalog holds: its tables, and the snapshot a query reads of each.

Tables are discovered from the catalog on every query, so `riverbank sql` answers for whatever
the sink, silver and gold jobs have created, without knowing about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from iceberg.sql.errors import SnapshotNotFoundError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot


@dataclass(frozen=True, order=True)
class LakeTable:
    namespace: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class VersionAsOf:
    """``FOR VERSION AS OF``: a snapshot id, or a branch or tag name."""

    snapshot_id: int | None = None
    ref_name: str | None = None


@dataclass(frozen=True)
class TimestampAsOf:
    """``FOR TIMESTAMP AS OF``, already evaluated to epoch milliseconds (UTC)."""

    epoch_ms: int


AsOf = VersionAsOf | TimestampAsOf


class LakeDirectory:
    """The catalog's tables, listed once and loaded on demand (one query sees one listing)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._tables: list[LakeTable] | None = None
        self._loaded: dict[LakeTable, Table] = {}

    def tables(self) -> list[LakeTable]:
        if self._tables is None:
            found: list[LakeTable] = []
            for namespace in self._catalog.list_namespaces():
                found.extend(
                    LakeTable(".".join(ident[:-1]), ident[-1])
                    for ident in self._catalog.list_tables(namespace)
                )
            self._tables = sorted(found)
        return self._tables

    def load(self, table: LakeTable) -> Table:
        if table not in self._loaded:
            self._loaded[table] = self._catalog.load_table((table.namespace, table.name))
        return self._loaded[table]


def pick_snapshot(table: Table, name: str, as_of: AsOf | None) -> Snapshot | None:
    """The snapshot to read: the current one, or the one the time-travel clause selects.

    ``None`` only for a table with no snapshot at all (created, never written), read as empty.
    """
    if as_of is None:
        return table.current_snapshot()
    if isinstance(as_of, TimestampAsOf):
        snapshot = table.snapshot_as_of_timestamp(as_of.epoch_ms)
        if snapshot is None:
            first = min((s.timestamp_ms for s in table.snapshots()), default=None)
            when = _iso(as_of.epoch_ms)
            since = f"its first snapshot is from {_iso(first)}" if first else "it has no snapshot"
            raise SnapshotNotFoundError(f"table {name} has no snapshot as of {when}: {since}")
        return snapshot
    if as_of.ref_name is not None:
        snapshot = table.snapshot_by_name(as_of.ref_name)
        if snapshot is None:
            refs = ", ".join(sorted(table.metadata.refs)) or "none"
            raise SnapshotNotFoundError(
                f"table {name} has no branch or tag {as_of.ref_name!r} (its refs: {refs})"
            )
        return snapshot
    assert as_of.snapshot_id is not None
    snapshot = table.snapshot_by_id(as_of.snapshot_id)
    if snapshot is None:
        ids = [str(s.snapshot_id) for s in table.snapshots()][-10:]
        raise SnapshotNotFoundError(
            f"table {name} has no snapshot {as_of.snapshot_id} (latest ids: {', '.join(ids) or 'none'})"
        )
    return snapshot


def _iso(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "never"
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
