"""Avro schemas derived from a table's columns (SQLAlchemy reflection) and rows to Avro dicts.

Types follow what Debezium emits for the same columns where Avro has a match: exact decimals as
``bytes``/decimal(precision, scale), timestamps as timestamp-micros, dates as date. A numeric
without declared precision has no fixed scale, so it travels as its exact decimal string.
Nullable columns are ``["null", T]`` with default null, so a column added later gives a
BACKWARD-compatible new version.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

DELETED_FIELD = "__deleted"


def _avro_type(column_type: sa.types.TypeEngine[Any]) -> tuple[Any, str]:
    """(Avro type, how to convert the Python value) for a SQL column type."""
    if isinstance(column_type, sa.Boolean):
        return "boolean", "plain"
    if isinstance(column_type, sa.BigInteger):
        return "long", "int"
    if isinstance(column_type, sa.Integer):  # Integer and SmallInteger
        return "int", "int"
    if isinstance(column_type, sa.Float):
        return "double", "float"
    if isinstance(column_type, sa.Numeric):
        if column_type.precision is None:
            return "string", "decimal_str"
        return {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": column_type.precision,
            "scale": column_type.scale or 0,
        }, "decimal"
    if isinstance(column_type, sa.DateTime):
        return {"type": "long", "logicalType": "timestamp-micros"}, "timestamp"
    if isinstance(column_type, sa.Date):
        return {"type": "int", "logicalType": "date"}, "plain"
    if isinstance(column_type, sa.Time):
        return {"type": "long", "logicalType": "time-micros"}, "plain"
    if isinstance(column_type, sa.LargeBinary):
        return "bytes", "plain"
    return "string", "str"


def _record_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


def table_schemas(
    columns: list[dict[str, Any]], primary_key: tuple[str, ...], namespace: str, table: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(key schema, value schema, column -> conversion) from reflected ``columns``."""
    fields, conversions = [], {}
    by_name = {c["name"]: c for c in columns}
    for column in columns:
        avro, conversion = _avro_type(column["type"])
        conversions[column["name"]] = conversion
        nullable = column.get("nullable", True) and column["name"] not in primary_key
        if nullable:
            fields.append({"name": column["name"], "type": ["null", avro], "default": None})
        else:
            fields.append({"name": column["name"], "type": avro})
    fields.append(
        {"name": DELETED_FIELD, "type": "boolean", "default": False, "doc": "Soft-deleted in the source."}
    )
    value = {
        "type": "record",
        "name": "Value",
        "namespace": f"{namespace}.{_record_name(table)}",
        "fields": fields,
    }
    key_fields = [{"name": c, "type": _avro_type(by_name[c]["type"])[0]} for c in primary_key]
    key = {
        "type": "record",
        "name": "Key",
        "namespace": f"{namespace}.{_record_name(table)}",
        "fields": key_fields,
    }
    return key, value, conversions


def to_avro(value: Any, conversion: str) -> Any:
    if value is None:
        return None
    if conversion == "int":
        return int(value)
    if conversion == "float":
        return float(value)
    if conversion == "decimal":
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if conversion == "decimal_str":
        return str(value)
    if conversion == "timestamp":
        # Naive timestamps are UTC (how the bank stores them); aware ones are converted.
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if conversion == "str":
        return str(value) if isinstance(value, uuid.UUID) or not isinstance(value, str) else value
    return value
