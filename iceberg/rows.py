"""Decoded Kafka records to bronze rows, and rows to an Arrow table of the table's current schema.

A row is a dict of top-level column name to a Python value. Conversion to Arrow is by column;
when a column does not convert (a value that breaks the table's types: a decimal wider than its
precision, a string where a struct belongs), the rows are converted one by one to find the ones
to quarantine, so one bad record never blocks the rest.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DateType,
    IcebergType,
    ListType,
    MapType,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
)

from iceberg.tables import TableKind

Convert = Callable[[Any], Any]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_EPOCH_DAY = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class KafkaMeta:
    topic: str
    partition: int
    offset: int
    timestamp: dt.datetime
    key: str | None
    schema_id: int | None
    ingested_at: dt.datetime

    def columns(self) -> dict[str, Any]:
        return {
            "_topic": self.topic,
            "_partition": self.partition,
            "_offset": self.offset,
            "_timestamp": self.timestamp,
            "_key": self.key,
            "_schema_id": self.schema_id,
            "_ingested_at": self.ingested_at,
        }


class RowError(Exception):
    """A decoded record breaks a table rule (shape or type); the record is quarantined."""


def event_row(value: Any, meta: KafkaMeta) -> dict[str, Any]:
    """Bronze row of an event topic: the value's fields at top level (none for a tombstone)."""
    row = meta.columns()
    if value is None:
        return row
    if not isinstance(value, dict):
        raise RowError(f"value is a {type(value).__name__}, the table expects a record")
    for name, field_value in value.items():
        if name in row:
            raise RowError(f"field {name!r} clashes with a Kafka metadata column")
        row[name] = field_value
    return row


def cdc_row(value: Any, meta: KafkaMeta) -> dict[str, Any]:
    """Bronze row of a Debezium topic: op, ts_ms, before, after and the source position."""
    row = meta.columns()
    if value is None:  # the tombstone after a delete
        return row
    if not isinstance(value, dict) or "op" not in value:
        raise RowError("value is not a Debezium change event envelope (no 'op')")
    source = value.get("source") or {}
    row.update(
        op=value["op"],
        ts_ms=value.get("ts_ms"),
        before=value.get("before"),
        after=value.get("after"),
        source_lsn=source.get("lsn"),
        source_txid=source.get("txId"),
    )
    return row


ROW_BUILDERS: dict[TableKind, Callable[[Any, KafkaMeta], dict[str, Any]]] = {
    "events": event_row,
    "cdc": cdc_row,
}


# -- values to the Arrow representation of their Iceberg type ---------------------------------------


def converter(field_type: IcebergType) -> Convert | None:
    """A function mapping a decoded value to what pyarrow takes for ``field_type``; None = as is."""
    if isinstance(field_type, StringType):
        return _string
    if isinstance(field_type, TimestamptzType):
        return _timestamptz
    if isinstance(field_type, TimestampType):
        return _timestamp
    if isinstance(field_type, DateType):
        return _date
    if isinstance(field_type, StructType):
        inner = {f.name: converter(f.field_type) for f in field_type.fields}
        return lambda v: None if v is None else _struct(v, inner)
    if isinstance(field_type, ListType):
        element = converter(field_type.element_type)
        if element is None:
            return None
        return lambda v: None if v is None else [element(x) for x in v]
    if isinstance(field_type, MapType):
        value_conv = converter(field_type.value_type) or (lambda x: x)
        return lambda v: None if v is None else [(k, value_conv(x)) for k, x in dict(v).items()]
    return None


def _string(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, uuid.UUID):
        return str(v)
    raise RowError(f"{type(v).__name__} value where a string belongs")


def _timestamptz(v: Any) -> Any:
    # Debezium carries PostgreSQL timestamps as epoch microseconds (io.debezium.time.MicroTimestamp).
    if isinstance(v, int) and not isinstance(v, bool):
        return _EPOCH + dt.timedelta(microseconds=v)
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.UTC)
    return v


def _timestamp(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return _EPOCH_NAIVE + dt.timedelta(microseconds=v)
    return v


def _date(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return _EPOCH_DAY + dt.timedelta(days=v)
    return v


def _struct(v: Any, inner: Mapping[str, Convert | None]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise RowError(f"{type(v).__name__} value where a record belongs")
    return {name: (conv(v.get(name)) if conv else v.get(name)) for name, conv in inner.items()}


@dataclass(frozen=True)
class ArrowBuilder:
    """Converts rows to an Arrow table of one Iceberg schema."""

    schema: Schema
    arrow_schema: pa.Schema
    converters: tuple[tuple[str, Convert | None, pa.DataType], ...]

    @classmethod
    def of(cls, schema: Schema) -> ArrowBuilder:
        arrow_schema = schema_to_pyarrow(schema)
        convs = tuple(
            (f.name, converter(f.field_type), arrow_schema.field(f.name).type) for f in schema.fields
        )
        return cls(schema, arrow_schema, convs)

    def table(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        """All rows as one table; raises RowError/pyarrow errors when any value does not fit."""
        arrays = []
        for name, conv, arrow_type in self.converters:
            values = [r.get(name) for r in rows]
            if conv is not None:
                values = [conv(v) for v in values]
            arrays.append(pa.array(values, type=arrow_type))
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)

    def split(self, rows: Sequence[Mapping[str, Any]]) -> tuple[pa.Table, list[tuple[int, str]]]:
        """(table of the rows that fit, [(index, reason)] of those that do not)."""
        try:
            return self.table(rows), []
        except (RowError, pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
        good: list[Mapping[str, Any]] = []
        bad: list[tuple[int, str]] = []
        for i, row in enumerate(rows):
            try:
                self.table([row])
            except (RowError, pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                bad.append((i, f"{type(exc).__name__}: {exc}"[:2000]))
            else:
                good.append(row)
        return self.table(good), bad
