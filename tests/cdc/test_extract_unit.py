"""Extractor pieces without services: Avro schemas derived from columns, cursor store, config."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
import sqlalchemy as sa

from cdc.extract.avro import table_schemas, to_avro
from cdc.extract.config import load_extract_config
from cdc.extract.cursors import Cursor, CursorStore
from riverbank.errors import ConfigError


def test_schema_from_columns_roundtrips_a_row(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE t (id BIGINT PRIMARY KEY, amount NUMERIC(18, 2) NOT NULL, rate FLOAT,"
                " name VARCHAR(20), born DATE, updated_at DATETIME NOT NULL, active BOOLEAN)"
            )
        )
    columns = sa.inspect(engine).get_columns("t")
    key, value, conversions = table_schemas(columns, ("id",), "riverbank.extract", "t")
    engine.dispose()
    fields = {f["name"]: f["type"] for f in value["fields"]}
    assert fields["amount"] == {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}
    assert fields["updated_at"] == {"type": "long", "logicalType": "timestamp-micros"}
    assert fields["name"] == ["null", "string"] and fields["id"] == "long"
    assert key["fields"] == [{"name": "id", "type": "long"}]
    row = {
        "id": 7,
        "amount": Decimal("12345678.91"),
        "rate": 0.5,
        "name": None,
        "born": dt.date(1990, 1, 2),
        "updated_at": dt.datetime(2026, 1, 2, 3, 4, 5, 678901),
        "active": True,
    }
    record = {k: to_avro(v, conversions[k]) for k, v in row.items()} | {"__deleted": False}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(json.loads(json.dumps(value))), record)
    buffer.seek(0)
    back = fastavro.schemaless_reader(buffer, fastavro.parse_schema(value))
    assert back["amount"] == Decimal("12345678.91")
    assert back["updated_at"] == dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)  # naive = UTC


def test_cursor_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cursors.db"
    store = CursorStore(path)
    cursor = Cursor(dt.datetime(2026, 1, 1, 0, 0, 0, 1), (42, "x", Decimal("1.5")))
    store.put("t", cursor, 10)
    store.close()
    again = CursorStore(path)
    assert again.get("t") == cursor and again.get("other") is None
    again.close()


def test_extract_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "extract.toml"
    path.write_text('topic_prefix = "p"\n[[tables]]\nname = "t"\nbatch = 3\n')
    with pytest.raises(ConfigError, match=r"tables\.0\.batch"):
        load_extract_config(path)
    path.write_text(
        'topic_prefix = "p"\n[source]\nurl = "postgresql://u:${env:NOPE_PW}@h/db"\n[[tables]]\nname = "t"\n'
    )
    with pytest.raises(ConfigError, match=r"source\.url: environment variable NOPE_PW is not set"):
        load_extract_config(path)


def test_the_shipped_extract_config_loads() -> None:
    loaded = load_extract_config(Path(__file__).resolve().parents[2] / "connect" / "extract.toml")
    assert [t.name for t in loaded.config.tables] == ["customers", "accounts", "cards"]
    assert loaded.config.topic(loaded.config.tables[0]) == "extract.bankdb.public.customers"
    assert loaded.url is None
