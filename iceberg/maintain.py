"""`riverbank lake maintain`: compaction, snapshot expiry and orphan-file cleanup of every table.

* Compaction: in each partition holding more than one data file smaller than
  ``lake.compaction_small_file_mb``, those files are read (projected to the current schema) and
  rewritten as few large files, in one ``overwrite`` snapshot that deletes exactly those files and
  adds the new ones: same rows, so readers of the current snapshot see no change. The snapshot is
  marked ``riverbank.maintenance=compaction`` so incremental readers skip it. Rows appended by the
  sink meanwhile are untouched (pyiceberg rebuilds the snapshot on its new parent when the commit
  races). It carries no Kafka offsets (``iceberg.offsets`` reads past it).
* Expiry: snapshots older than the table's retention (``lake.retention_days`` by table name, then
  by namespace, else ``lake.default_retention_days``) are removed from the metadata, except the
  current one and the newest one holding the sink's offsets.
* Orphans: files under the table location that no live snapshot or metadata file references and
  that are older than ``lake.orphan_min_age_hours`` are deleted (a younger one may belong to a
  commit in flight).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from iceberg import offsets as offset_store
from iceberg.catalog import load_lake_catalog
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

MAINTENANCE_PROPERTY = "riverbank.maintenance"


@dataclass
class TableReport:
    table: str
    data_files_before: int = 0
    data_files_after: int = 0
    partitions_compacted: int = 0
    snapshots_expired: int = 0
    orphans_deleted: int = 0
    orphan_bytes: int = 0
    retention_days: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lake_tables(catalog: Catalog, settings: Settings) -> list[tuple[str, str]]:
    """Every table of the bronze, silver and gold namespaces that exist."""
    lake = settings.lake
    out: list[tuple[str, str]] = []
    existing = {ns[0] for ns in catalog.list_namespaces()}
    for namespace in (lake.bronze_namespace, lake.silver_namespace, lake.gold_namespace):
        if namespace in existing:
            out.extend((namespace, name) for _, name in sorted(catalog.list_tables(namespace)))
    return out


def retention_days(settings: Settings, namespace: str, name: str) -> float:
    by_name = settings.lake.retention_days
    return by_name.get(f"{namespace}.{name}", by_name.get(namespace, settings.lake.default_retention_days))


def maintain(
    settings: Settings,
    tables: list[str] | None = None,
    *,
    compact: bool = True,
    expire: bool = True,
    orphans: bool = True,
    now: dt.datetime | None = None,
) -> list[TableReport]:
    """Maintain ``tables`` ("ns.name"; default all lake tables); one report per table."""
    catalog = load_lake_catalog(settings)
    names = [tuple(t.split(".", 1)) for t in tables] if tables else lake_tables(catalog, settings)
    moment = now or dt.datetime.now(dt.UTC)
    reports = []
    for namespace, name in names:
        report = TableReport(f"{namespace}.{name}", retention_days=retention_days(settings, namespace, name))
        table = catalog.load_table((namespace, name))
        report.data_files_before = count_data_files(table)
        if compact:
            report.partitions_compacted = compact_small_files(
                table, int(settings.lake.compaction_small_file_mb * 1024 * 1024)
            )
        if expire:
            cutoff = moment - dt.timedelta(days=report.retention_days)
            report.snapshots_expired = expire_snapshots(table, cutoff)
        if orphans:
            min_age = dt.timedelta(hours=settings.lake.orphan_min_age_hours)
            report.orphans_deleted, report.orphan_bytes = delete_orphan_files(table, moment - min_age)
        report.data_files_after = count_data_files(table)
        reports.append(report)
    return reports


def count_data_files(table: Table) -> int:
    return sum(1 for _ in table.scan().plan_files())


# -- compaction -----------------------------------------------------------------------------------


def compact_small_files(table: Table, small_bytes: int) -> int:
    """Rewrite each partition's small files into large ones; returns how many partitions."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

    table.refresh()
    if table.current_snapshot() is None:
        return 0
    groups: dict[tuple[int, Any], list[Any]] = defaultdict(list)
    for task in table.scan().plan_files():
        if task.delete_files:  # other engines' merge-on-read deletes: leave those files alone
            continue
        if task.file.file_size_in_bytes < small_bytes:
            groups[(task.file.spec_id, task.file.partition)].append(task)
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        return 0
    scan = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue())
    with table.transaction() as tx:
        snapshot = tx.update_snapshot(snapshot_properties={MAINTENANCE_PROPERTY: "compaction"})
        with snapshot.overwrite() as rewrite:
            for tasks in groups.values():
                rows = scan.to_table(tasks)
                for task in tasks:
                    rewrite.delete_data_file(task.file)
                for data_file in _dataframe_to_data_files(tx.table_metadata, rows, table.io, uuid.uuid4()):
                    rewrite.append_data_file(data_file)
    return len(groups)


# -- expiry ---------------------------------------------------------------------------------------


def expire_snapshots(table: Table, older_than: dt.datetime) -> int:
    """Expire snapshots taken before ``older_than``; keeps the current and the offsets snapshot."""
    table.refresh()
    current = table.current_snapshot()
    if current is None:
        return 0
    keep = {current.snapshot_id, offset_store.latest_offsets_snapshot_id(table)}
    cutoff_ms = int(older_than.timestamp() * 1000)
    referenced = {ref.snapshot_id for ref in table.metadata.refs.values()}
    doomed = [
        s.snapshot_id
        for s in table.snapshots()
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in keep and s.snapshot_id not in referenced
    ]
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
    return len(doomed)


# -- orphan files ---------------------------------------------------------------------------------


def referenced_files(table: Table) -> set[str]:
    """Every file a live snapshot or a kept metadata file points at, as absolute paths."""
    table.refresh()
    metadata = table.metadata
    paths = {table.metadata_location}
    paths |= {entry.metadata_file for entry in metadata.metadata_log}
    paths |= {stats.statistics_path for stats in metadata.statistics}
    seen_manifests: set[str] = set()
    for snapshot in metadata.snapshots:
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                paths.add(entry.data_file.file_path)
    return {_normalise(p) for p in paths}


def delete_orphan_files(table: Table, older_than: dt.datetime) -> tuple[int, int]:
    """Delete unreferenced files under the table location older than ``older_than``."""
    keep = referenced_files(table)
    cutoff = older_than.timestamp()
    deleted = size = 0
    for path, mtime, nbytes in list_files(table):
        if _normalise(path) in keep or mtime >= cutoff:
            continue
        table.io.delete(path)
        deleted += 1
        size += nbytes
    return deleted, size


def list_files(table: Table) -> Iterator[tuple[str, float, int]]:
    """(path, modification time as epoch seconds, size) of every file under the table location."""
    location = table.location().rstrip("/")
    parts = urlsplit(location)
    io: Any = table.io
    if hasattr(io, "fs_by_scheme"):  # PyArrowFileIO
        from pyarrow.fs import FileSelector, FileType

        fs = io.fs_by_scheme(parts.scheme, parts.netloc)
        root = parts.path if parts.scheme == "file" else f"{parts.netloc}{parts.path}"
        try:
            infos = fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return
        prefix = f"{parts.scheme}://" if parts.scheme != "file" else "file://"
        for info in infos:
            if info.type == FileType.File:
                mtime = info.mtime.timestamp() if info.mtime else time.time()
                yield prefix + info.path, mtime, int(info.size or 0)
        return
    fs = io.get_fs(parts.scheme)  # FsspecFileIO
    root = f"{parts.netloc}{parts.path}" if parts.scheme != "file" else parts.path
    if not fs.exists(root):
        return
    for path, info in fs.find(root, detail=True).items():
        modified = info.get("LastModified") or info.get("mtime") or info.get("created")
        if isinstance(modified, dt.datetime):
            mtime = modified.timestamp()
        else:
            mtime = float(modified) if modified is not None else time.time()
        # fsspec answers "/dir/file" locally and "bucket/key" on S3.
        yield f"{parts.scheme}://{path}", mtime, int(info.get("size") or 0)


def _normalise(path: str) -> str:
    """One spelling per file: file:/x, file:///x and /x are the same file; s3a is s3."""
    parts = urlsplit(path)
    if parts.scheme in ("", "file"):
        return "file://" + parts.path
    scheme = "s3" if parts.scheme in ("s3a", "s3n") else parts.scheme
    return f"{scheme}://{parts.netloc}{parts.path}"
