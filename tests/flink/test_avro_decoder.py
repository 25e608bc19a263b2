"""The compiled Avro decoder returns what fastavro returns, for every schema in schemas/ and for the
constructs those schemas do not use; malformed bodies raise AvroDecodeError."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from bench.fraud_traffic import generate
from flink_jobs.avro_decoder import AvroDecodeError, compile_decoder
from fraud.events import Source
from riverbank.registry.catalog import DEFAULT_SCHEMAS_DIR

T0 = 1_790_000_000_000


def encode(schema_text: str, record: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(schema_text)), record)
    return out.getvalue()


def fastavro_decode(schema_text: str, body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(json.loads(schema_text)), None)


def assert_same(expected: Any, got: Any) -> None:
    """Equal, and of the same types all the way down (1 == 1.0 == True would hide a wrong type)."""
    assert type(got) is type(expected), (expected, got)
    if isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_same(expected[key], got[key])
    elif isinstance(expected, list):
        assert len(got) == len(expected)
        for e, g in zip(expected, got, strict=True):
            assert_same(e, g)
    else:
        assert got == expected


def schema_text(relative: str) -> str:
    return (DEFAULT_SCHEMAS_DIR / relative).read_text()


def test_card_transactions_and_payments_decode_as_fastavro_does() -> None:
    texts = {
        Source.CARD: schema_text("cards/card_transaction.avsc"),
        Source.PAYMENT: schema_text("payments/payment.avsc"),
    }
    decoders = {source: compile_decoder(text) for source, text in texts.items()}
    events = generate(11, 3_000, T0).events
    assert {source for source, _ in events} == set(Source)
    for source, record in events:
        body = b"\x00\x00\x00\x00\x07" + encode(texts[source], record)
        assert_same(fastavro_decode(texts[source], body[5:]), decoders[source](body, 5))


def test_plain_mode_leaves_uuids_as_strings_and_timestamp_millis_as_integers() -> None:
    schema = {
        "type": "record",
        "name": "Plain",
        "fields": [
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "maybe_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
            {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9,
                                        "scale": 2}},
        ],
    }  # fmt: skip
    text = json.dumps(schema)
    at = dt.datetime(2026, 11, 23, 4, 5, 6, 789000, tzinfo=dt.UTC)
    record = {"id": str(uuid.UUID(int=7)), "at": at, "maybe_at": at, "at_us": at, "amount": Decimal("1.25")}
    body = encode(text, record)
    assert_same(
        # Micros stay datetimes: a plain integer there would be read as milliseconds by mistake.
        {"id": str(uuid.UUID(int=7)), "at": 1_795_406_706_789, "maybe_at": 1_795_406_706_789,
         "at_us": at, "amount": Decimal("1.25")},
        compile_decoder(text, plain=True)(body, 0),
    )  # fmt: skip
    assert_same(fastavro_decode(text, body), compile_decoder(text)(body, 0))  # the default is unchanged
    # Other spellings of a uuid come out as str(UUID) does; what is no uuid is an error, as without plain.
    spelled = encode(text, {**record, "id": "{" + str(uuid.UUID(int=7)).upper() + "}"})
    assert compile_decoder(text, plain=True)(spelled, 0)["id"] == str(uuid.UUID(int=7))
    with pytest.raises(AvroDecodeError, match="badly formed"):
        compile_decoder(text, plain=True)(encode(text, {**record, "id": "not-a-uuid"}), 0)


SAMPLES: dict[str, Any] = {
    "int": -(2**31),
    "long": 2**62 + 12345,
    "float": 1.5,
    "double": -2.25e300,
    "boolean": True,
    "string": "Zürich ☃",
    "bytes": b"\x00\xff" * 200,
    "null": None,
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_primitives(kind: str) -> None:
    text = json.dumps(kind)
    body = encode(text, SAMPLES[kind])
    assert_same(fastavro_decode(text, body), compile_decoder(text)(body, 0))


def test_varints_either_side_of_the_one_byte_lookup() -> None:
    # One-byte varints (longs -64..63, lengths 0..63) are read by table, longer ones by a call.
    fields = [{"name": "n", "type": "long"}, {"name": "s", "type": "string"}, {"name": "b", "type": "bytes"}]
    text = json.dumps({"type": "record", "name": "V", "fields": fields})
    decode = compile_decoder(text)
    for n in (-(2**63), -65, -64, -1, 0, 1, 63, 64, 8191, 8192, 2**63 - 1):
        for size in (0, 1, 63, 64, 8191, 8192):
            record = {"n": n, "s": "é" * (size // 2) + "x" * (size % 2), "b": b"\x80" * size}
            body = encode(text, record)
            assert_same(fastavro_decode(text, body), decode(body, 0))


def test_logical_types_nested_records_unions_arrays_maps_enums_and_fixed() -> None:
    decimal = {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 4}
    fixed_decimal = {
        "type": "fixed",
        "name": "F8",
        "size": 8,
        "logicalType": "decimal",
        "precision": 18,
        "scale": 2,
    }
    strings = {"type": "array", "items": "string"}
    inner = {
        "type": "record",
        "name": "Inner",
        "fields": [{"name": "n", "type": "int"}, {"name": "items", "type": strings}],
    }
    schema = {
        "type": "record",
        "name": "Everything",
        "namespace": "t",
        "fields": [
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "amount", "type": decimal},
            {"name": "fixed_amount", "type": fixed_decimal},
            {"name": "hash", "type": {"type": "fixed", "name": "H4", "size": 4}},
            {"name": "again", "type": "t.H4"},
            {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
            {"name": "colors", "type": {"type": "array", "items": "t.Color"}},
            {"name": "tags", "type": {"type": "map", "values": ["null", "long"]}},
            {"name": "either", "type": ["null", "string", "t.Color", "double"]},
            {"name": "inner", "type": inner},
            {"name": "inners", "type": {"type": "array", "items": "t.Inner"}},
        ],
    }  # fmt: skip
    text = json.dumps(schema)
    decode = compile_decoder(text)
    assert "_fast" in decode.source  # type: ignore[attr-defined]  # compiled, not handed to fastavro
    base = {
        "id": str(uuid.UUID(int=7)),
        "at": dt.datetime(2026, 11, 23, 4, 5, 6, 789000, tzinfo=dt.UTC),
        "at_us": dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
        "day": dt.date(2026, 2, 28),
        "amount": Decimal("-12345678901234567890.1234"),
        "fixed_amount": Decimal("99.99"),
        "hash": b"abcd",
        "again": b"wxyz",
        "color": "GREEN",
        "colors": ["RED", "GREEN", "RED"],
        "tags": {"a": 1, "b": None, "long-key-" * 20: -(2**40)},
        "either": "GREEN",
        "inner": {"n": -1, "items": []},
        "inners": [{"n": i, "items": ["x"] * i} for i in range(70)],  # counts above one varint byte
    }
    for either in (None, "text", "RED", 0.5):
        record = {**base, "either": either}
        body = encode(text, record)
        assert_same(fastavro_decode(text, body), decode(body, 0))


def test_blocks_with_negative_counts_are_read() -> None:
    # Writers may split arrays into blocks and give a negative count followed by the block's size.
    text = json.dumps({"type": "array", "items": "long"})
    body = bytes([0x03, 0x04, 0x02, 0x04]) + bytes([0x02, 0x06]) + b"\x00"  # [1, 2] (count -2, size 2), [3]
    assert fastavro_decode(text, body) == [1, 2, 3]
    assert compile_decoder(text)(body, 0) == [1, 2, 3]


def test_schemas_it_does_not_compile_are_decoded_by_fastavro() -> None:
    recursive = json.dumps({"type": "record", "name": "Node", "fields": [
        {"name": "value", "type": "long"}, {"name": "next", "type": ["null", "Node"]}]})  # fmt: skip
    time_of_day = json.dumps({"type": "int", "logicalType": "time-millis"})
    for text, record in (
        (recursive, {"value": 1, "next": {"value": 2, "next": None}}),
        (time_of_day, dt.time(1, 2, 3)),
    ):
        decode = compile_decoder(text)
        assert not hasattr(decode, "source")
        body = encode(text, record)
        assert_same(fastavro_decode(text, body), decode(body, 0))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "IndexError"),  # nothing at all
        (b"\x00\x00\x00\x04a", "truncated"),  # the last string is 2 bytes long, 1 is there
        (b"\x02\xff", "UnicodeDecodeError"),
        (b"\x01", "negative length"),
        (b"\x00\x04", "union index 2 out of range"),
        (b"\x00\x02\x02a\x0a", "KeyError"),  # enum symbol 5 of 2
        (b"\x00" + b"\xff" * 11, "varint longer than 10 bytes"),
    ],
)
def test_malformed_bodies_raise_a_decode_error(body: bytes, reason: str) -> None:
    text = json.dumps({"type": "record", "name": "R", "fields": [
        {"name": "s", "type": "string"},
        {"name": "u", "type": ["null", "string"]},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
        {"name": "t", "type": "string"}]})  # fmt: skip
    with pytest.raises(AvroDecodeError, match=reason):
        compile_decoder(text)(body, 0)


def test_every_schema_in_the_repository_compiles() -> None:
    for path in sorted(Path(DEFAULT_SCHEMAS_DIR).rglob("*.avsc")):
        decode = compile_decoder(path.read_text())
        assert hasattr(decode, "source"), f"{path} falls back to fastavro"
