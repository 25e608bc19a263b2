"""Schema text handling (identity, normalization, validation) and the project's schemas/ catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riverbank.registry import avro_schema, catalog
from riverbank.registry.errors import InvalidSchema, SchemaFileError

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

EXPECTED_TOPICS = {
    "bank.card.transactions",
    "bank.payments",
    "bank.trades",
    "market.ticks",
    "fraud.alerts",
    "transactions.scored",
    "risk.positions",
    "fraud.rules",
    "fraud.labels",
    "bankdb.public.customers",
    "bankdb.public.accounts",
    "bankdb.public.cards",
}


def test_canonical_text_ignores_whitespace_and_key_order_but_keeps_meaning() -> None:
    a = '{"type": "record", "name": "A", "fields": [{"name": "x", "type": "int", "doc": "d", "field-id": 1}]}'
    b = '{"fields":[{"field-id":1,"doc":"d","type":{"type":"int"},"name":"x"}],\n "name":"A","type":"record"}'
    assert avro_schema.parse(a).canonical == avro_schema.parse(b).canonical
    c = a.replace('"doc": "d"', '"doc": "other"')
    assert avro_schema.parse(a).canonical != avro_schema.parse(c).canonical


def test_normalized_text_equates_name_spellings() -> None:
    a = {
        "type": "record",
        "name": "A",
        "namespace": "n.s",
        "fields": [
            {"name": "b", "type": {"type": "record", "name": "B", "fields": [{"name": "v", "type": "int"}]}},
            {"name": "c", "type": "B"},
        ],
    }
    b = {
        "type": "record",
        "name": "n.s.A",
        "fields": [
            {
                "name": "b",
                "type": {"type": "record", "name": "n.s.B", "fields": [{"name": "v", "type": "int"}]},
            },
            {"name": "c", "type": "n.s.B"},
        ],
    }
    pa, pb = avro_schema.parse(json.dumps(a)), avro_schema.parse(json.dumps(b))
    assert pa.canonical != pb.canonical
    assert avro_schema.normalized_text(pa) == avro_schema.normalized_text(pb)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        '{"type": "record", "name": "A"}',
        '{"type": "record", "name": "A", "fields": [{"name": "x", "type": "nosuchtype"}]}',
        '{"type": "record", "name": "A", "fields": [{"name": "x", "type": "int", "default": "zero"}]}',
        '{"type": "record", "name": "A", "fields": [{"name": "x", "type": ["null", "int"], "default": "s"}]}',
        '{"type": "enum", "name": "E", "symbols": ["A", "B"], "default": "C"}',
        '{"type": "enum", "name": "E", "symbols": ["A", "A"]}',
        '{"type": "fixed", "name": "F"}',
        '{"type": "array"}',
        '{"type": "record", "name": "1bad", "fields": []}',
        "[]",
        "42",
        '"nosuch"',
        json.dumps({"type": "record", "name": "A", "fields": [{"name": "x", "type": "int"}] * 2}),
    ],
)
def test_invalid_schemas_raise_invalid_schema(text: str) -> None:
    with pytest.raises(InvalidSchema) as info:
        avro_schema.parse(text)
    assert info.value.error_code == 42201
    assert info.value.status == 422


def test_valid_defaults_and_invalid_logical_types_are_accepted() -> None:
    ok = {
        "type": "record",
        "name": "A",
        "fields": [
            {"name": "a", "type": ["null", "string"], "default": None},
            {"name": "b", "type": {"type": "array", "items": "long"}, "default": [1, 2]},
            {"name": "c", "type": {"type": "map", "values": "double"}, "default": {"x": 1}},
            {"name": "d", "type": "bytes", "default": "\u00ff"},
            {"name": "e", "type": {"type": "bytes", "logicalType": "decimal", "precision": 0}},
        ],
    }
    avro_schema.parse(json.dumps(ok))  # decimal with precision 0 falls back to bytes, as the spec says


def test_catalog_has_every_topic_and_subject_names_follow_topic_name_strategy() -> None:
    entries = catalog.load(SCHEMAS)
    assert {e.topic for e in entries} == EXPECTED_TOPICS
    for e in entries:
        assert e.subject in (f"{e.topic}-key", f"{e.topic}-value")
    owned = [e for e in entries if e.owner == "riverbank"]
    assert {e.subject for e in owned if e.subject.endswith("-key")} == {
        f"{t}-key" for t in EXPECTED_TOPICS if not t.startswith("bankdb.")
    }
    assert all(e.owner == "debezium" for e in entries if e.topic.startswith("bankdb."))


def test_every_schema_file_follows_the_project_rules() -> None:
    """Valid Avro; namespace com.riverbank.*; a doc and a unique field-id on every field; money is decimal."""
    files = sorted(SCHEMAS.rglob("*.avsc"))
    assert len(files) == 12
    for path in files:
        text = path.read_text()
        assert catalog.lint(text, str(path)) == [], path
        data = json.loads(text)
        assert data["namespace"].startswith("com.riverbank."), path
        assert data.get("doc"), path
        for field in data["fields"]:
            if field["name"] in ("amount", "billing_amount", "balance", "notional", "daily_limit"):
                assert field["type"]["logicalType"] == "decimal", (path, field["name"])
                assert {"precision", "scale"} <= set(field["type"]), (path, field["name"])


def test_lint_reports_missing_doc_and_duplicate_field_ids() -> None:
    text = json.dumps(
        {
            "type": "record",
            "name": "A",
            "fields": [
                {"name": "a", "type": "int", "field-id": 1},
                {"name": "b", "type": "int", "doc": "b", "field-id": 1},
                {"name": "c", "type": "int", "doc": "c"},
            ],
        }
    )
    problems = catalog.lint(text, "x.avsc")
    assert any("'a' has no doc" in p for p in problems)
    assert any("reuses field-id 1" in p for p in problems)
    assert any("'c' has no positive integer" in p for p in problems)
    with pytest.raises(SchemaFileError):
        catalog.lint("{", "x.avsc")
