"""The compatibility matrix: schema changes x levels, verdicts by the Avro spec's resolution rules.

Each change is a (old, new) pair. BACKWARD means the new schema (reader) reads old data (writer);
FORWARD means the old schema reads new data; FULL both. Cases marked ``gap`` are ones the ``avro``
package's checker gets wrong on its own; the test also proves that, so the cover is not dead code.
"""

from __future__ import annotations

import json
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from riverbank.registry import avro_schema
from riverbank.registry.compatibility import Level, check, check_pair

DEC_18_2 = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}


def rec(
    *fields: dict[str, Any], name: str = "Txn", ns: str | None = "com.example", **extra: Any
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "record", "name": name, "fields": list(fields), **extra}
    if ns is not None:
        schema["namespace"] = ns
    return schema


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def parse(schema: Any) -> avro.schema.Schema:
    return avro_schema.parse(json.dumps(schema)).parsed


def enum(symbols: list[str], default: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"type": "enum", "name": "Status", "symbols": symbols}
    if default is not None:
        e["default"] = default
    return e


ID = f("id", "string")

# (case id, old, new, backward ok?, forward ok?)
CASES: list[tuple[str, Any, Any, bool, bool]] = [
    ("add field with default", rec(ID), rec(ID, f("n", "int", default=0)), True, True),
    ("add field without default", rec(ID), rec(ID, f("n", "int")), False, True),
    ("remove field with default", rec(ID, f("n", "int", default=0)), rec(ID), True, True),
    ("remove field without default", rec(ID, f("n", "int")), rec(ID), True, False),
    (
        "rename field via alias",
        rec(ID, f("amount", "long")),
        rec(ID, f("amount_minor", "long", aliases=["amount"])),
        True,
        False,
    ),
    (
        "rename field without alias",
        rec(ID, f("amount", "long")),
        rec(ID, f("amount_minor", "long")),
        False,
        False,
    ),
    (
        "rename record via unqualified alias (gap)",
        rec(ID),
        rec(ID, name="Txn2", aliases=["Txn"]),
        True,
        False,
    ),
    (
        "rename record via qualified alias",
        rec(ID),
        rec(ID, name="Txn2", aliases=["com.example.Txn"]),
        True,
        False,
    ),
    ("rename record without alias", rec(ID), rec(ID, name="Txn2"), False, False),
    ("namespace change", rec(ID, ns="com.example"), rec(ID, ns="com.riverbank"), True, True),
    ("namespace dropped", rec(ID, ns="com.example"), rec(ID, ns=None), True, True),
    ("int to long", rec(f("v", "int")), rec(f("v", "long")), True, False),
    ("long to float", rec(f("v", "long")), rec(f("v", "float")), True, False),
    ("float to double", rec(f("v", "float")), rec(f("v", "double")), True, False),
    ("int to double", rec(f("v", "int")), rec(f("v", "double")), True, False),
    ("long to int", rec(f("v", "long")), rec(f("v", "int")), False, True),
    ("int to string", rec(f("v", "int")), rec(f("v", "string")), False, False),
    ("string to bytes", rec(f("v", "string")), rec(f("v", "bytes")), True, True),
    ("bytes to string", rec(f("v", "bytes")), rec(f("v", "string")), True, True),
    ("enum symbol added", rec(f("s", enum(["A", "B"]))), rec(f("s", enum(["A", "B", "C"]))), True, False),
    (
        "enum symbol added, old reader has enum default",
        rec(f("s", enum(["A", "B", "U"], default="U"))),
        rec(f("s", enum(["A", "B", "C", "U"], default="U"))),
        True,
        True,
    ),
    ("enum symbol removed", rec(f("s", enum(["A", "B", "C"]))), rec(f("s", enum(["A", "B"]))), False, True),
    (
        "enum symbol removed, new reader has enum default",
        rec(f("s", enum(["A", "B", "C"]))),
        rec(f("s", enum(["A", "B"], default="A"))),
        True,
        True,
    ),
    (
        "union widened",
        rec(f("u", ["null", "string"], default=None)),
        rec(f("u", ["null", "string", "long"], default=None)),
        True,
        False,
    ),
    (
        "union narrowed",
        rec(f("u", ["null", "string", "long"], default=None)),
        rec(f("u", ["null", "string"], default=None)),
        False,
        True,
    ),
    ("type made optional", rec(f("u", "string")), rec(f("u", ["null", "string"], default=None)), True, False),
    (
        "nested record: field added with default",
        rec(f("m", rec(f("mcc", "string"), name="Merchant"))),
        rec(f("m", rec(f("mcc", "string"), f("city", ["null", "string"], default=None), name="Merchant"))),
        True,
        True,
    ),
    (
        "nested record: field type changed",
        rec(f("m", rec(f("mcc", "int"), name="Merchant"))),
        rec(f("m", rec(f("mcc", "string"), name="Merchant"))),
        False,
        False,
    ),
    (
        "nested record: field added without default",
        rec(f("m", rec(f("mcc", "string"), name="Merchant"))),
        rec(f("m", rec(f("mcc", "string"), f("city", "string"), name="Merchant"))),
        False,
        True,
    ),
    (
        "array items promoted",
        rec(f("a", {"type": "array", "items": "int"})),
        rec(f("a", {"type": "array", "items": "long"})),
        True,
        False,
    ),
    (
        "array items changed",
        rec(f("a", {"type": "array", "items": "int"})),
        rec(f("a", {"type": "array", "items": "string"})),
        False,
        False,
    ),
    (
        "map values promoted",
        rec(f("m", {"type": "map", "values": "float"})),
        rec(f("m", {"type": "map", "values": "double"})),
        True,
        False,
    ),
    (
        "map values changed",
        rec(f("m", {"type": "map", "values": "string"})),
        rec(f("m", {"type": "map", "values": "int"})),
        False,
        False,
    ),
    (
        "array to map",
        rec(f("x", {"type": "array", "items": "string"})),
        rec(f("x", {"type": "map", "values": "string"})),
        False,
        False,
    ),
    ("decimal unchanged", rec(f("amt", DEC_18_2)), rec(f("amt", dict(DEC_18_2))), True, True),
    (
        "decimal precision changed (gap)",
        rec(f("amt", DEC_18_2)),
        rec(f("amt", {**DEC_18_2, "precision": 20})),
        False,
        False,
    ),
    (
        "decimal scale changed (gap)",
        rec(f("amt", DEC_18_2)),
        rec(f("amt", {**DEC_18_2, "scale": 4})),
        False,
        False,
    ),
    (
        "fixed decimal scale changed (gap)",
        rec(
            f(
                "amt",
                {
                    "type": "fixed",
                    "name": "D",
                    "size": 8,
                    "logicalType": "decimal",
                    "precision": 18,
                    "scale": 2,
                },
            )
        ),
        rec(
            f(
                "amt",
                {
                    "type": "fixed",
                    "name": "D",
                    "size": 8,
                    "logicalType": "decimal",
                    "precision": 18,
                    "scale": 3,
                },
            )
        ),
        False,
        False,
    ),
    (
        "fixed size changed",
        rec(f("h", {"type": "fixed", "name": "H", "size": 16})),
        rec(f("h", {"type": "fixed", "name": "H", "size": 32})),
        False,
        False,
    ),
    (
        "enum-typed field added, enum has a default but field does not",
        rec(ID),
        rec(ID, f("s", enum(["A", "B"], default="A"))),
        False,
        True,
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_pair_verdicts_follow_the_avro_spec(old: Any, new: Any, backward: bool, forward: bool) -> None:
    old_s, new_s = parse(old), parse(new)
    assert check_pair(reader=new_s, writer=old_s).compatible is backward
    assert check_pair(reader=old_s, writer=new_s).compatible is forward


@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_level_for_each_change(old: Any, new: Any, backward: bool, forward: bool) -> None:
    existing = [(1, parse(old))]
    new_s = parse(new)
    expected = {
        Level.NONE: True,
        Level.BACKWARD: backward,
        Level.BACKWARD_TRANSITIVE: backward,
        Level.FORWARD: forward,
        Level.FORWARD_TRANSITIVE: forward,
        Level.FULL: backward and forward,
        Level.FULL_TRANSITIVE: backward and forward,
    }
    for level, ok in expected.items():
        report = check(level, new_s, existing)
        assert report.is_compatible is ok, (level, report.messages)
        if not ok:
            assert report.messages and all("version 1" in m for m in report.messages)


def _avro_alone(reader: Any, writer: Any) -> bool:
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    return result.compatibility is SchemaCompatibilityType.compatible


def test_the_gaps_are_real_in_the_avro_package() -> None:
    """Without this module's cover, avro gets these wrong (so the cover above is needed)."""
    old = rec(f("amt", DEC_18_2))
    assert _avro_alone(rec(f("amt", {**DEC_18_2, "scale": 4})), old) is True  # spec: no match
    assert _avro_alone(rec(ID, name="Txn2", aliases=["Txn"]), rec(ID)) is False  # spec: alias matches


# ---- transitive levels over three versions ---------------------------------------------------------------


def versions(*schemas: Any) -> list[tuple[int, avro.schema.Schema]]:
    return [(i, parse(s)) for i, s in enumerate(schemas, 1)]


def test_backward_vs_backward_transitive_over_three_versions() -> None:
    # v1 f:int -> v2 drops f -> v3 brings f back as string with a default.
    v1, v2, v3 = rec(ID, f("f", "int")), rec(ID), rec(ID, f("f", "string", default=""))
    history = versions(v1, v2)
    assert check(Level.BACKWARD, parse(v3), history).is_compatible
    report = check(Level.BACKWARD_TRANSITIVE, parse(v3), history)
    assert not report.is_compatible
    assert any("version 1" in m for m in report.messages)
    assert not any("version 2" in m for m in report.messages)


def test_forward_vs_forward_transitive_over_three_versions() -> None:
    # v1 f:int without default -> v2 gives f a default -> v3 drops f: v1 cannot read v3 data.
    v1, v2, v3 = rec(ID, f("f", "int")), rec(ID, f("f", "int", default=0)), rec(ID)
    history = versions(v1, v2)
    assert check(Level.FORWARD, parse(v3), history).is_compatible
    assert check(Level.FULL, parse(v3), history).is_compatible
    assert not check(Level.FORWARD_TRANSITIVE, parse(v3), history).is_compatible
    assert not check(Level.FULL_TRANSITIVE, parse(v3), history).is_compatible


def test_promotion_chain_over_four_versions() -> None:
    chain = [rec(f("v", t)) for t in ("int", "long", "float", "double")]
    history = versions(*chain[:3])
    new = parse(chain[3])
    assert check(Level.BACKWARD_TRANSITIVE, new, history).is_compatible  # double reads int, long, float
    assert check(Level.FORWARD, new, history).is_compatible is False
    report = check(Level.FULL_TRANSITIVE, new, history)
    assert not report.is_compatible
    assert {1, 2, 3} == {v for v in (1, 2, 3) if any(f"version {v}" in m for m in report.messages)}


def test_none_accepts_anything_and_empty_history_is_compatible() -> None:
    assert check(Level.NONE, parse("string"), versions(rec(ID))).is_compatible
    for level in Level:
        assert check(level, parse(rec(ID)), []).is_compatible


def test_recursive_schemas_are_checked_without_looping() -> None:
    node = rec(f("value", "long"), f("next", ["null", "Node"], default=None), name="Node")
    node2 = rec(
        f("value", "long"),
        f("next", ["null", "Node"], default=None),
        f("tag", "string", default=""),
        name="Node",
    )
    assert check(Level.FULL_TRANSITIVE, parse(node2), versions(node)).is_compatible


def test_level_parsing() -> None:
    assert Level.parse("full_transitive") is Level.FULL_TRANSITIVE
    assert Level.parse("bogus") is None
    assert Level.parse(None) is None
