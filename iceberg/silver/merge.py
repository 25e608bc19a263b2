"""Partition-replace merges whose cost follows the batch, not the table.

A CDC batch touches a set of keys; their buckets are read, the changes applied in Arrow/Python
to the rows of those keys only, and exactly those bucket partitions are overwritten in one
commit (with the bookmark). Untouched buckets' files are not read or rewritten. Event tables are
append-only: new rows are deduplicated against the batch and against the days they fall on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from iceberg.silver.cdc import Change
from iceberg.silver.expr import (
    and_,
    gte,
    isin,
    lt,
)
from iceberg.silver.store import Bookmark, bucket_of, commit, read_partitions, rows_to_table
from iceberg.silver.transform import Row

if TYPE_CHECKING:
    from pyiceberg.table import Table

BUCKETS_PROPERTY = "riverbank.buckets"

ApplyFn = Callable[[Iterable[Row], Mapping[int, list[Change]], str], tuple[list[Row], int]]


@dataclass(frozen=True)
class MergeStats:
    applied: int
    rows_read: int
    rows_written: int
    buckets: int


def table_buckets(table: Table, default: int) -> int:
    """The bucket count the table was created with (changing it later would misplace keys)."""
    return int(table.properties.get(BUCKETS_PROPERTY, default))


def merge_by_bucket(
    table: Table,
    schema: pa.Schema,
    key: str,
    changes: Mapping[int, list[Change]],
    apply: ApplyFn,
    bookmark: Bookmark,
    buckets: int,
) -> MergeStats:
    if not changes:
        commit(table, bookmark)
        return MergeStats(0, 0, 0, 0)
    touched = sorted({bucket_of(k, buckets) for k in changes})
    existing = read_partitions(table, "_bucket", touched, schema)
    affected = pc.is_in(existing[key], value_set=pa.array(list(changes), existing.schema.field(key).type))
    kept = existing.filter(pc.invert(affected))
    rows, applied = apply(existing.filter(affected).to_pylist(), changes, key)
    if not applied:  # only duplicates or late deliveries: nothing to rewrite
        commit(table, bookmark)
        return MergeStats(0, existing.num_rows, 0, 0)
    for row in rows:
        row["_bucket"] = bucket_of(row[key], buckets)
    result = pa.concat_tables([kept, rows_to_table(rows, schema)])
    commit(table, bookmark, replace=result, replace_filter=isin("_bucket", touched))
    return MergeStats(applied, existing.num_rows, result.num_rows, len(touched))


def _day_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _identity(row: Mapping[str, object], id_columns: Sequence[str]) -> tuple[object, ...]:
    return tuple(row[c] for c in id_columns)


def append_new_events(
    table: Table,
    schema: pa.Schema,
    rows: list[Row],
    id_columns: Sequence[str],
    time_column: str,
    bookmark: Bookmark,
) -> tuple[int, int]:
    """Append rows whose identity is not in the batch before them nor in the table on the days
    they fall on (a re-sent event keeps its event time). Returns (appended, duplicates)."""
    unique: dict[tuple[object, ...], Row] = {}
    for row in sorted(rows, key=lambda r: (r["_bronze_partition"], r["_bronze_offset"])):
        unique.setdefault(_identity(row, id_columns), row)
    if unique:
        times = [r[time_column] for r in unique.values()]
        low, high = _day_start(min(times)), _day_start(max(times)) + dt.timedelta(days=1)
        window = and_(gte(time_column, low.isoformat()), lt(time_column, high.isoformat()))
        seen = table.scan(row_filter=window, selected_fields=tuple(id_columns)).to_arrow()
        known = set(zip(*(seen[c].to_pylist() for c in id_columns), strict=True)) if seen.num_rows else set()
        fresh = [row for ident, row in unique.items() if ident not in known]
    else:
        fresh = []
    commit(table, bookmark, append=rows_to_table(fresh, schema))
    return len(fresh), len(rows) - len(fresh)
