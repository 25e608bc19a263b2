"""The registry driven over HTTP by confluent-kafka's real client, serializer and deserializer."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.registry.conftest import RegistryProcess

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def record(name: str, *fields: tuple[str, Any], **defaults: Any) -> str:
    out = []
    for fname, ftype in fields:
        entry: dict[str, Any] = {"name": fname, "type": ftype}
        if fname in defaults:
            entry["default"] = defaults[fname]
        out.append(entry)
    return json.dumps({"type": "record", "name": name, "namespace": "com.example", "fields": out})


def card_transaction() -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "authorization_id": "auth-1",
        "card_id": "card-42",
        "account_id": "acc-7",
        "customer_id": "cust-9",
        "merchant": {
            "merchant_id": "m-1",
            "name": "Corner Shop",
            "mcc": "5411",
            "country": "DE",
            "city": None,
            "latitude": 52.52,
            "longitude": 13.405,
        },
        "amount": Decimal("12.34"),
        "currency": "EUR",
        "billing_amount": Decimal("12.34"),
        "billing_currency": "EUR",
        "channel": "POS",
        "entry_mode": "CHIP",
        "status": "APPROVED",
        "decline_reason": None,
        "card_present": True,
        "device_id": None,
        "ip_address": None,
        "event_time": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "attributes": {"terminal": "T-1"},
    }


def test_serializer_and_deserializer_round_trip(client: SchemaRegistryClient) -> None:
    schema_str = (SCHEMAS / "cards" / "card_transaction.avsc").read_text()
    topic = f"bank.card.transactions.{uuid.uuid4().hex[:8]}"
    serializer = AvroSerializer(client, schema_str)
    deserializer = AvroDeserializer(client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    event = card_transaction()
    payload = serializer(event, ctx)
    assert payload is not None
    assert payload[0] == 0  # Confluent wire format: magic byte, then the 4-byte schema id
    schema_id = int.from_bytes(payload[1:5], "big")
    assert client.get_latest_version(f"{topic}-value").schema_id == schema_id

    # A fresh client (no cache) must fetch the writer schema by id from the registry.
    fresh = SchemaRegistryClient({"url": client.config()["url"]})
    decoded = AvroDeserializer(fresh)(payload, ctx)
    assert decoded is not None
    assert decoded["amount"] == Decimal("12.34")
    assert decoded["event_time"] == event["event_time"]
    assert str(decoded["event_id"]) == event["event_id"]
    assert decoded["merchant"] == event["merchant"]
    assert deserializer(payload, ctx) == decoded
    # Serializing again reuses the registered id.
    assert serializer(card_transaction(), ctx)[1:5] == payload[1:5]  # type: ignore[index]
    fresh.close()


def test_every_project_schema_round_trips(client: SchemaRegistryClient) -> None:
    for path in sorted(SCHEMAS.rglob("*.avsc")):
        subject = f"rt-{uuid.uuid4().hex[:8]}-value"
        schema = Schema(path.read_text(), "AVRO")
        schema_id = client.register_schema(subject, schema)
        assert client.register_schema(subject, schema) == schema_id
        fetched = client.get_schema(schema_id)
        assert json.loads(fetched.schema_str) == json.loads(path.read_text())


def test_identical_schema_same_id_across_subjects_and_versions(
    client: SchemaRegistryClient, subject: str
) -> None:
    v1 = record("Txn", ("id", "string"))
    id1 = client.register_schema(subject, Schema(v1, "AVRO"))
    # Same schema, different whitespace and key order: same id, no new version.
    spaced = json.dumps(json.loads(v1), indent=4, sort_keys=True)
    fresh = SchemaRegistryClient({"url": client.config()["url"]})
    assert fresh.register_schema(subject, Schema(spaced, "AVRO")) == id1
    assert fresh.register_schema(subject + "-other", Schema(v1, "AVRO")) == id1
    assert fresh.get_versions(subject) == [1]
    v2 = record("Txn", ("id", "string"), ("n", "int"), n=0)
    id2 = fresh.register_schema(subject, Schema(v2, "AVRO"))
    assert id2 != id1
    assert fresh.get_versions(subject) == [1, 2]
    latest = fresh.get_latest_version(subject)
    assert (latest.version, latest.schema_id, latest.subject) == (2, id2, subject)
    assert fresh.get_version(subject, 1).schema_id == id1
    found = fresh.lookup_schema(subject, Schema(v1, "AVRO"))
    assert (found.version, found.schema_id) == (1, id1)
    assert sorted(fresh.get_subjects_by_schema_id(id1)) == sorted([subject, subject + "-other"])
    assert {(v.subject, v.version) for v in fresh.get_schema_versions(id1)} == {
        (subject, 1),
        (subject + "-other", 1),
    }
    assert subject in fresh.get_subjects()
    assert fresh.get_schema_types() == ["AVRO"]
    fresh.close()


def test_normalize_registers_equivalent_spellings_once(client: SchemaRegistryClient, subject: str) -> None:
    a = json.dumps(
        {"type": "record", "name": "A", "namespace": "n.s", "fields": [{"name": "x", "type": "int"}]}
    )
    b = json.dumps({"type": "record", "name": "n.s.A", "fields": [{"name": "x", "type": {"type": "int"}}]})
    id_a = client.register_schema(subject, Schema(a, "AVRO"), normalize_schemas=True)
    id_b = client.register_schema(subject, Schema(b, "AVRO"), normalize_schemas=True)
    assert id_a == id_b
    assert client.get_versions(subject) == [1]


def test_incompatible_schema_is_refused_with_409(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(record("Txn", ("id", "string")), "AVRO"))
    bad = Schema(record("Txn", ("id", "string"), ("n", "int")), "AVRO")  # new field without default
    assert client.test_compatibility(subject, bad) is False
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, bad)
    assert info.value.http_status_code == 409
    assert info.value.error_code == 409
    client.set_compatibility(subject, "NONE")
    assert client.register_schema(subject, bad) > 0


def test_levels_through_http_with_three_versions(client: SchemaRegistryClient, subject: str) -> None:
    """BACKWARD accepts v3 (checks only v2); BACKWARD_TRANSITIVE refuses it (v1 breaks)."""
    v1 = record("Txn", ("id", "string"), ("f", "int"))
    v2 = record("Txn", ("id", "string"))
    v3 = record("Txn", ("id", "string"), ("f", "string"), f="")
    client.set_compatibility(subject, "BACKWARD_TRANSITIVE")
    assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
    client.register_schema(subject, Schema(v1, "AVRO"))
    client.register_schema(subject, Schema(v2, "AVRO"))
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, Schema(v3, "AVRO"))
    assert info.value.http_status_code == 409
    assert "version 1" in info.value.error_message
    assert client.test_compatibility(subject, Schema(v3, "AVRO"), version=2) is True
    client.set_compatibility(subject, "BACKWARD")
    assert client.register_schema(subject, Schema(v3, "AVRO")) > 0
    assert client.get_versions(subject) == [1, 2, 3]


def test_schema_references(client: SchemaRegistryClient, subject: str) -> None:
    money_subject = f"{subject}-money"
    money = json.dumps(
        {
            "type": "record",
            "name": "Money",
            "namespace": "com.riverbank.common",
            "fields": [
                {
                    "name": "amount",
                    "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2},
                },
                {"name": "currency", "type": "string"},
            ],
        }
    )
    client.register_schema(money_subject, Schema(money, "AVRO"))
    payment = json.dumps(
        {
            "type": "record",
            "name": "Payment",
            "namespace": "com.riverbank.payments",
            "fields": [
                {"name": "id", "type": "string"},
                {"name": "value", "type": "com.riverbank.common.Money"},
            ],
        }
    )
    refs = [SchemaReference("com.riverbank.common.Money", money_subject, 1)]
    schema_id = client.register_schema(subject, Schema(payment, "AVRO", refs))
    fetched = client.get_schema(schema_id)
    assert fetched.references == refs
    assert client.get_referenced_by(money_subject, 1) == [schema_id]

    serializer = AvroSerializer(
        client,
        Schema(payment, "AVRO", refs),
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    ctx = SerializationContext(subject.removesuffix("-value"), MessageField.VALUE)
    value = {"id": "p1", "value": {"amount": Decimal("99.95"), "currency": "EUR"}}
    data = serializer(value, ctx)
    fresh = SchemaRegistryClient({"url": client.config()["url"]})
    assert AvroDeserializer(fresh)(data, ctx) == value
    fresh.close()

    # A referenced version cannot be deleted while something uses it.
    with pytest.raises(SchemaRegistryError) as info:
        client.delete_version(money_subject, 1)
    assert (info.value.http_status_code, info.value.error_code) == (422, 42206)
    # A reference to nothing is an invalid schema.
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(
            subject + "-x",
            Schema(payment, "AVRO", [SchemaReference("com.riverbank.common.Money", "nope", 1)]),
        )
    assert (info.value.http_status_code, info.value.error_code) == (422, 42201)


def test_soft_and_permanent_deletes(client: SchemaRegistryClient, subject: str) -> None:
    s1 = Schema(record("Txn", ("id", "string")), "AVRO")
    s2 = Schema(record("Txn", ("id", "string"), ("n", "int")), "AVRO")
    client.set_compatibility(subject, "NONE")
    id1 = client.register_schema(subject, s1)
    client.register_schema(subject, s2)

    with pytest.raises(SchemaRegistryError) as info:
        client.delete_version(subject, 2, permanent=True)
    assert info.value.error_code == 40407  # must be soft-deleted first
    assert client.delete_version(subject, 2) == 2
    with pytest.raises(SchemaRegistryError) as info:
        client.delete_version(subject, 2)
    assert info.value.error_code == 40406
    assert client.get_versions(subject) == [1]
    assert client.get_versions(subject, deleted=True) == [1, 2]
    assert client.delete_version(subject, 2, permanent=True) == 2
    assert client.get_versions(subject, deleted=True) == [1]

    with pytest.raises(SchemaRegistryError) as info:
        client.delete_subject(subject, permanent=True)
    assert info.value.error_code == 40405
    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    with pytest.raises(SchemaRegistryError) as info:
        client.get_latest_version(subject)
    assert info.value.error_code == 40401
    with pytest.raises(SchemaRegistryError) as info:
        client.delete_subject(subject)
    assert info.value.error_code == 40404
    # Soft-deleted schemas stay readable by id (consumers still hold their bytes).
    assert client.get_schema(id1).schema_str is not None
    assert client.delete_subject(subject, permanent=True) == [1]
    assert subject not in client.get_subjects(deleted=True)
    # Ids are never reused: the same schema gets its old id back.
    assert client.register_schema(subject, s1) == id1


def test_concurrent_registrations_never_duplicate_ids(registry: RegistryProcess) -> None:
    threads_n, per_thread = 8, 12
    prefix = uuid.uuid4().hex[:8]
    results: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads_n)

    def work(t: int) -> None:
        c = registry.client()
        try:
            barrier.wait()
            for i in range(per_thread):
                # Distinct schemas (one per i, the same in every thread) into per-thread subjects and
                # into subjects every thread writes to at once.
                text = record(f"R{prefix}{i}", ("id", "string"))
                sid = c.register_schema(f"{prefix}-t{t}-{i}-value", Schema(text, "AVRO"))
                shared = c.register_schema(f"{prefix}-shared-{i}-value", Schema(text, "AVRO"))
                with lock:
                    results.append((text, sid))
                    results.append((text, shared))
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    by_text: dict[str, set[int]] = {}
    for text, sid in results:
        by_text.setdefault(text, set()).add(sid)
    assert all(len(ids) == 1 for ids in by_text.values()), by_text  # same schema -> one id
    all_ids = [next(iter(ids)) for ids in by_text.values()]
    assert len(set(all_ids)) == per_thread  # different schemas -> different ids
    c = registry.client()
    for i in range(per_thread):
        assert c.get_versions(f"{prefix}-shared-{i}-value") == [1]  # no duplicate versions
    c.close()


def test_date_and_micros_types_round_trip(client: SchemaRegistryClient) -> None:
    schema_str = (SCHEMAS / "trading" / "trade.avsc").read_text()
    topic = f"bank.trades.{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    trade = {
        "event_id": str(uuid.uuid4()),
        "trade_id": "t1",
        "order_id": "o1",
        "portfolio_id": "p1",
        "account_id": "a1",
        "instrument": {
            "instrument_id": "i1",
            "isin": "US0378331005",
            "symbol": "AAPL",
            "asset_class": "EQUITY",
        },
        "side": "BUY",
        "quantity": Decimal("10.000000"),
        "price": Decimal("187.12345678"),
        "notional": Decimal("1871.2346"),
        "currency": "USD",
        "venue": "XNAS",
        "trader_id": None,
        "execution_time": datetime(2026, 3, 4, 15, 30, 1, 123456, tzinfo=UTC),
        "settlement_date": date(2026, 3, 6),
    }
    data = AvroSerializer(client, schema_str)(trade, ctx)
    decoded = AvroDeserializer(client)(data, ctx)
    assert decoded is not None
    assert decoded["execution_time"] == trade["execution_time"]
    assert decoded["settlement_date"] == trade["settlement_date"]
    assert decoded["price"] == trade["price"]
