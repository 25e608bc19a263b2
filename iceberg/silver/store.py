"""Reading deltas and committing silver/gold tables exactly once.

Bookmarks: every silver and gold table records, in the same Iceberg commit as its rows, how far
it has read each of its sources: per source table, the highest Kafka offset per partition of the
bronze rows it has consumed. The bookmark is a table property (it survives compaction and
snapshot expiry) and is repeated in the snapshot summary for lineage. A pass that dies before its
commit leaves the old bookmark, so the next pass reads the same rows again; one that dies after
it never sees them again: each bronze row is applied once.
"""

from __future__ import annotations

import json
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import NoSuchTableError

from iceberg.silver.expr import (
    AlwaysTrue,
    BooleanExpression,
    and_,
    eq,
    gt,
    isin,
    notin,
    or_,
)

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

BOOKMARK_PROPERTY = "riverbank.bookmark"
#: Bronze lineage columns that silver rows carry, so gold can read silver incrementally too.
PARTITION_COLUMN = "_bronze_partition"
OFFSET_COLUMN = "_bronze_offset"

#: source table name -> {kafka partition: highest offset consumed}
Bookmark = dict[str, dict[int, int]]


def read_bookmark(table: Table) -> Bookmark:
    raw = table.properties.get(BOOKMARK_PROPERTY)
    if not raw:
        return {}
    data: dict[str, dict[str, int]] = json.loads(raw)
    return {source: {int(p): int(o) for p, o in parts.items()} for source, parts in data.items()}


def encode_bookmark(bookmark: Bookmark) -> str:
    return json.dumps(
        {s: {str(p): o for p, o in sorted(parts.items())} for s, parts in sorted(bookmark.items())},
        separators=(",", ":"),
    )


def load_optional(catalog: Catalog, identifier: str) -> Table | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def delta_filter(offsets: Mapping[int, int], partition_col: str, offset_col: str) -> BooleanExpression:
    """Rows after ``offsets``: column metrics let the scan skip every file already consumed."""
    if not offsets:
        return AlwaysTrue()
    expr: BooleanExpression = notin(partition_col, list(offsets))
    for partition, offset in sorted(offsets.items()):
        expr = or_(expr, and_(eq(partition_col, partition), gt(offset_col, offset)))
    return expr


@dataclass(frozen=True)
class Delta:
    """The rows of one source after a bookmark, and the bookmark once they are consumed."""

    rows: pa.Table
    offsets: dict[int, int]


def read_delta(
    table: Table | None,
    offsets: Mapping[int, int],
    *,
    partition_col: str = "_partition",
    offset_col: str = "_offset",
) -> Delta:
    if table is None:
        return Delta(pa.table({}), dict(offsets))
    rows = table.scan(row_filter=delta_filter(offsets, partition_col, offset_col)).to_arrow()
    return Delta(rows, advance(offsets, rows, partition_col, offset_col))


def advance(
    offsets: Mapping[int, int], rows: pa.Table, partition_col: str, offset_col: str
) -> dict[int, int]:
    result = dict(offsets)
    if rows.num_rows == 0:
        return result
    grouped = rows.group_by(partition_col).aggregate([(offset_col, "max")])
    for partition, offset in zip(
        grouped[partition_col].to_pylist(), grouped[f"{offset_col}_max"].to_pylist(), strict=True
    ):
        if partition is not None and offset is not None:
            result[partition] = max(offset, result.get(partition, -1))
    return result


def bucket_of(key: Any, buckets: int) -> int:
    """Stable bucket of a business key (ints by value, strings by CRC-32)."""
    if isinstance(key, int):
        return abs(key) % buckets
    return zlib.crc32(str(key).encode()) % buckets


def bucket_array(keys: pa.Array | pa.ChunkedArray, buckets: int) -> pa.Array:
    if pa.types.is_integer(keys.type):
        absolute = pc.abs(keys)
        # pyarrow has no modulo kernel: a - (a / n) * n with integer division.
        remainder = pc.subtract(absolute, pc.multiply(pc.divide(absolute, buckets), buckets))
        return pc.cast(remainder, pa.int32())
    return pa.array([bucket_of(k, buckets) for k in keys.to_pylist()], pa.int32())


def commit(
    table: Table,
    bookmark: Bookmark,
    *,
    append: pa.Table | None = None,
    replace: pa.Table | None = None,
    replace_filter: BooleanExpression | None = None,
) -> None:
    """One atomic Iceberg commit: the rows (append, or replace what ``replace_filter`` selects)
    together with the new bookmark."""
    encoded = encode_bookmark(bookmark)
    writes = replace_filter is not None or (append is not None and append.num_rows > 0)
    if not writes and table.properties.get(BOOKMARK_PROPERTY) == encoded:
        return  # nothing new: no commit, so idle passes add no metadata files
    summary = {BOOKMARK_PROPERTY: encoded}
    with table.transaction() as tx, warnings.catch_warnings():
        # Replacing a partition that does not exist yet is normal here, not worth a warning.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        if replace_filter is not None:
            if replace is not None and replace.num_rows:
                tx.overwrite(replace, overwrite_filter=replace_filter, snapshot_properties=summary)
            else:
                tx.delete(replace_filter, snapshot_properties=summary)
        elif append is not None and append.num_rows:
            tx.append(append, snapshot_properties=summary)
        tx.set_properties({BOOKMARK_PROPERTY: encoded})


def read_partitions(table: Table, column: str, values: Sequence[Any], schema: pa.Schema) -> pa.Table:
    if not values:
        return schema.empty_table()
    return table.scan(row_filter=isin(column, list(values))).to_arrow().select(schema.names).cast(schema)


def rows_to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema)
