"""`lake maintain` on a real Iceberg table in a local warehouse (no services)."""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from iceberg import offsets
from iceberg.catalog import ensure_namespaces, load_lake_catalog
from iceberg.maintain import count_data_files, maintain, referenced_files
from iceberg.rows import ArrowBuilder, KafkaMeta, event_row
from iceberg.tables import create_or_load
from riverbank.settings import Settings, load_settings
from tests.iceberg.lakekit import payment, payment_table

TOPIC = "test.maintain"


def _table_with_small_commits(settings: Settings, commits: int, per_commit: int = 50) -> None:
    catalog = load_lake_catalog(settings)
    ensure_namespaces(catalog, settings)
    table = create_or_load(catalog, payment_table(settings, TOPIC))
    builder = ArrowBuilder.of(table.schema())
    day = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    n = 0
    for _ in range(commits):
        rows = []
        for _ in range(per_commit):
            ts = day + dt.timedelta(hours=n % 48)  # two days: two partitions
            rows.append(event_row(payment(n), KafkaMeta(TOPIC, 0, n, ts, "k", 1, ts)))
            n += 1
        props = {offsets.OFFSETS_PROPERTY: offsets.encode({(TOPIC, 0): n})}
        table.append(builder.table(rows), snapshot_properties=props)


def _rows(settings: Settings) -> Counter[tuple[int, int]]:
    table = load_lake_catalog(settings).load_table(payment_table(settings, TOPIC).identifier)
    arrow = table.scan(selected_fields=("_partition", "_offset")).to_arrow()
    return Counter(zip(arrow["_partition"].to_pylist(), arrow["_offset"].to_pylist(), strict=True))


def test_compaction_keeps_rows_and_offsets_and_leaves_one_file_per_partition(tmp_path: Path) -> None:
    settings = load_settings(stack={"state_dir": tmp_path})
    _table_with_small_commits(settings, commits=6)
    before = _rows(settings)
    table = load_lake_catalog(settings).load_table(payment_table(settings, TOPIC).identifier)
    assert count_data_files(table) == 12

    [report] = maintain(settings, [f"bronze.{TOPIC.replace('.', '_')}"], expire=False, orphans=False)
    assert (report.data_files_before, report.data_files_after, report.partitions_compacted) == (12, 2, 2)
    assert _rows(settings) == before and max(before.values()) == 1
    table.refresh()
    assert offsets.committed_offsets(table) == {(TOPIC, 0): 300}
    summary = table.current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None and summary["riverbank.maintenance"] == "compaction"


def test_expiry_keeps_the_current_and_the_offsets_snapshot(tmp_path: Path) -> None:
    settings = load_settings(stack={"state_dir": tmp_path}, lake={"retention_days": {"bronze": 1}})
    _table_with_small_commits(settings, commits=4)
    maintain(settings, expire=False, orphans=False)  # a compaction snapshot on top
    table = load_lake_catalog(settings).load_table(payment_table(settings, TOPIC).identifier)
    offsets_snapshot = offsets.latest_offsets_snapshot_id(table)

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    reports = maintain(settings, compact=False, orphans=False, now=later)
    assert {r.table: r.snapshots_expired for r in reports}["bronze.test_maintain"] == 3
    table.refresh()
    kept = {s.snapshot_id for s in table.snapshots()}
    assert kept == {table.current_snapshot().snapshot_id, offsets_snapshot}  # type: ignore[union-attr]
    assert offsets.committed_offsets(table) == {(TOPIC, 0): 200}
    # Within retention nothing goes.
    assert all(r.snapshots_expired == 0 for r in maintain(settings, compact=False, orphans=False))


def test_orphan_cleanup_deletes_only_old_unreferenced_files(tmp_path: Path) -> None:
    settings = load_settings(stack={"state_dir": tmp_path}, lake={"orphan_min_age_hours": 1})
    _table_with_small_commits(settings, commits=3)
    table = load_lake_catalog(settings).load_table(payment_table(settings, TOPIC).identifier)
    data_dir = Path(urlsplit(table.location()).path) / "data"
    old_orphan, young_orphan = data_dir / "crashed-writer.parquet", data_dir / "in-flight.parquet"
    old_orphan.write_bytes(b"x" * 100)
    young_orphan.write_bytes(b"y" * 100)
    two_hours_ago = dt.datetime.now(dt.UTC).timestamp() - 7200
    os.utime(old_orphan, (two_hours_ago, two_hours_ago))
    for path in referenced_files(table):  # make the live files old too: age alone must not matter
        local = Path(urlsplit(path).path)
        os.utime(local, (two_hours_ago, two_hours_ago))
    before = _rows(settings)

    [report] = maintain(settings, compact=False, expire=False)
    assert (report.orphans_deleted, report.orphan_bytes) == (1, 100)
    assert not old_orphan.exists() and young_orphan.exists()
    assert _rows(settings) == before


def test_lake_commands_report_tables_and_maintenance_as_json(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    settings = load_settings(stack={"state_dir": tmp_path})
    _table_with_small_commits(settings, commits=3)
    env = {**os.environ, "RIVERBANK_STACK__STATE_DIR": str(tmp_path)}

    def riverbank(*args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "riverbank", *args], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    tables = riverbank("lake", "tables", "--json")
    assert isinstance(tables, list)
    [row] = [t for t in tables if t["table"] == "bronze.test_maintain"]
    assert (row["rows"], row["data_files"], row["snapshots"]) == (150, 6, 3)
    reports = riverbank("lake", "maintain", "--table", "bronze.test_maintain", "--json")
    assert isinstance(reports, list)
    assert (reports[0]["data_files_before"], reports[0]["data_files_after"]) == (6, 2)
