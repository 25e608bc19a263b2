"""Bronze table definitions derived from schemas/: types, field ids, layout (no services)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyiceberg.types import (
    DateType,
    DecimalType,
    ListType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from iceberg.catalog import ensure_namespaces, load_lake_catalog
from iceberg.tables import (
    AFTER_ID_OFFSET,
    BEFORE_ID_OFFSET,
    CDC_COLUMNS,
    METADATA_COLUMNS,
    UNNUMBERED_ID_BASE,
    SchemaDerivationError,
    _Ids,
    add_columns,
    bronze_tables,
    create_or_load,
    load_subjects,
    record_fields,
)
from riverbank.settings import load_settings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _avro_ids(node: object) -> dict[str, int]:
    out: dict[str, int] = {}

    def walk(n: object) -> None:
        if isinstance(n, list):
            for b in n:
                walk(b)
        elif isinstance(n, dict):
            for f in n.get("fields", []):
                out[f["name"]] = f["field-id"]
                walk(f["type"])
            for k in ("type", "items", "values"):
                if isinstance(n.get(k), dict | list):
                    walk(n[k])

    walk(node)
    return out


def test_every_topic_with_a_schema_gets_a_bronze_table_named_after_it() -> None:
    tables = bronze_tables(load_settings())
    assert set(tables) == set(load_subjects())
    assert tables["bank.card.transactions"].full_name == "bronze.bank_card_transactions"
    assert tables["bankdb.public.accounts"].full_name == "bronze.bankdb_public_accounts"
    assert tables["bankdb.public.accounts"].kind == "cdc"
    assert tables["bank.payments"].kind == "events"


def test_event_columns_reuse_avro_field_ids_at_every_depth() -> None:
    for topic, table in bronze_tables(load_settings()).items():
        if table.kind != "events":
            continue
        avro = json.loads((SCHEMAS / load_subjects()[topic]["value"]).read_text())
        for name, fid in _avro_ids(avro).items():
            assert table.schema.find_field(fid).name == name, (topic, name)
        top = [f.name for f in table.schema.fields]
        assert top == [f["name"] for f in avro["fields"]] + list(METADATA_COLUMNS)
        # Top-level value columns are optional: tombstones and later schemas may lack them.
        assert not any(f.required for f in table.schema.fields if f.name not in METADATA_COLUMNS)


def test_logical_types_map_to_iceberg_types() -> None:
    tables = bronze_tables(load_settings())
    card = tables["bank.card.transactions"].schema
    assert card.find_field("amount").field_type == DecimalType(18, 2)
    assert card.find_field("event_time").field_type == TimestamptzType()
    assert card.find_field("event_id").field_type == StringType()  # uuid: Athena has no uuid type
    assert card.find_field("channel").field_type == StringType()  # enum
    assert isinstance(card.find_field("attributes").field_type, MapType)
    merchant = card.find_field("merchant")
    assert isinstance(merchant.field_type, StructType)
    assert merchant.field_type.field(6).required and not merchant.field_type.field(10).required
    assert tables["bank.payments"].schema.find_field("requested_execution_date").field_type == DateType()
    alerts = tables["fraud.alerts"].schema
    assert isinstance(alerts.find_field("rule_ids").field_type, ListType)


def test_cdc_table_has_envelope_columns_with_the_row_schema_twice_under_distinct_ids() -> None:
    accounts = bronze_tables(load_settings(), ["bankdb.public.accounts"])["bankdb.public.accounts"]
    assert [f.name for f in accounts.schema.fields] == list(CDC_COLUMNS) + list(METADATA_COLUMNS)
    before = accounts.schema.find_field("before").field_type
    after = accounts.schema.find_field("after").field_type
    assert isinstance(before, StructType) and isinstance(after, StructType)
    assert before.field(BEFORE_ID_OFFSET + 7).name == "balance"
    assert after.field(AFTER_ID_OFFSET + 7).field_type == DecimalType(18, 2)


def test_collection_ids_are_stable_and_distinct() -> None:
    record = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "a", "type": {"type": "array", "items": "string"}, "field-id": 1},
            {"name": "m", "type": {"type": "map", "values": ["null", "long"]}, "field-id": 2},
        ],
    }
    first = record_fields(record, "R", _Ids())
    again = record_fields(record, "R", _Ids())
    assert first == again
    a, m = first[0].field_type, first[1].field_type
    assert isinstance(a, ListType) and isinstance(m, MapType)
    ids = {1, 2, a.element_id, m.key_id, m.value_id}
    assert len(ids) == 5 and not m.value_required


@pytest.mark.parametrize(
    ("avro_type", "problem"),
    [
        (["null", "string", "long"], r"is not \[null, T\]"),
        ({"type": "unknown"}, "not supported"),
    ],
)
def test_unsupported_avro_is_a_clear_error(avro_type: object, problem: str) -> None:
    record = {"type": "record", "name": "R", "fields": [{"name": "x", "type": avro_type, "field-id": 1}]}
    with pytest.raises(SchemaDerivationError, match=problem):
        record_fields(record, "R", _Ids())


def test_field_id_out_of_the_avro_range_is_refused() -> None:
    record = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "int", "field-id": 10_000}]}
    with pytest.raises(SchemaDerivationError, match="field-id"):
        record_fields(record, "R", _Ids())


def test_created_table_keeps_derived_ids_and_new_columns_keep_theirs(tmp_path: Path) -> None:
    settings = load_settings(stack={"state_dir": tmp_path})
    catalog = load_lake_catalog(settings)
    ensure_namespaces(catalog, settings)
    table_def = bronze_tables(settings, ["bank.payments"])["bank.payments"]
    table = create_or_load(catalog, table_def)
    assert table.schema().find_field("amount").field_id == table_def.schema.find_field("amount").field_id
    assert table.spec().fields[0].name == "timestamp_day"
    assert create_or_load(catalog, table_def).metadata_location == table.metadata_location

    table = add_columns(table, [NestedField(99, "channel_detail", StringType(), required=False)])
    assert table.schema().find_field("channel_detail").field_id == 99
    # A reused id cannot take over an existing column's identity: it is renumbered.
    table = add_columns(table, [NestedField(1, "other", StringType(), required=False)])
    assert table.schema().find_field("other").field_id >= UNNUMBERED_ID_BASE
    reloaded = catalog.load_table(table_def.identifier)
    assert reloaded.schema().find_field("channel_detail").field_id == 99
