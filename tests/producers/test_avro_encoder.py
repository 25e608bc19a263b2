"""The producers' compiled Avro encoders give exactly the bytes of confluent-kafka's AvroSerializer.

AvroSerializer (against the registry over HTTP, ``auto.register.schemas=False`` as the producers
used it) is the reference: same schema id lookup, same framing, same Avro binary, and a record it
rejects is rejected too (so it goes to the dead-letter topic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producers import native
from producers.avro_encoder import zigzag_varint
from producers.bank import BankSize
from producers.model import CardTransaction, FraudLabel, Stream
from producers.publisher import AvroPublisher, schema_texts
from producers.simulation import Simulation, SimulationConfig, split_rate
from producers.wire import LABELS_TOPIC, TOPICS, WIRE, fraud_label_record
from tests.stack_harness import RunningStack

pytestmark = pytest.mark.integration

CARDS = TOPICS[Stream.TRANSACTIONS]
ALL = [*TOPICS.values(), LABELS_TOPIC]
UNICODE = "Café Zürich — 東京 🚀 ß"


@dataclasses.dataclass
class Codecs:
    publisher: AvroPublisher
    values: dict[str, Callable[[Any], bytes | None]]
    keys: dict[str, Callable[[Any], bytes | None]]


@pytest.fixture(scope="module")
def codecs(bank_stack: RunningStack) -> Iterator[Codecs]:
    settings = bank_stack.settings
    registry = SchemaRegistryClient(settings.schema_registry.client_config())
    publisher = AvroPublisher(settings, ALL)
    texts = schema_texts()
    conf = {"auto.register.schemas": False}
    values: dict[str, Callable[[Any], bytes | None]] = {}
    keys: dict[str, Callable[[Any], bytes | None]] = {}
    for topic in ALL:
        key_text, value_text = texts[topic]
        value_ser = AvroSerializer(registry, value_text, conf=conf)
        key_ser = AvroSerializer(registry, key_text, conf=conf)
        value_ctx = SerializationContext(topic, MessageField.VALUE)
        key_ctx = SerializationContext(topic, MessageField.KEY)
        values[topic] = lambda r, s=value_ser, c=value_ctx: s(r, c)
        keys[topic] = lambda k, s=key_ser, c=key_ctx: s(k, c)
    try:
        yield Codecs(publisher, values, keys)
    finally:
        publisher.close(10)
        registry.close()


def outcome(encode: Callable[[], bytes | None]) -> bytes | type[Exception] | None:
    try:
        return encode()
    except Exception:
        return Exception


def assert_same(codecs: Codecs, topic: str, record: dict[str, Any]) -> None:
    expected = outcome(lambda: codecs.values[topic](record))
    got = outcome(lambda: codecs.publisher.encode_value(topic, record))
    assert got == expected, f"{topic}: {record}"


@pytest.fixture(scope="module")
def generated() -> tuple[dict[str, list[Any]], list[FraudLabel]]:
    """About 24,000 events of every stream (fraud and table changes included), by topic."""
    config = SimulationConfig(
        rates=split_rate(list(Stream), 2000),
        start_ms=1_767_268_800_000,
        duration_s=12,
        seed=314,
        bank_seed=5,
        bank_size=BankSize(customers=300, counterparties=60),
        fraud_rate=0.03,
        change_rate=0.01,
    )
    sim = Simulation(config)
    by_topic: dict[str, list[Any]] = {}
    for event in sim.events():
        by_topic.setdefault(TOPICS[WIRE[type(event)][0]], []).append(event)
    return by_topic, [s for s in sim.side if isinstance(s, FraudLabel)]


def test_generated_records_of_every_stream_encode_byte_for_byte_like_avro_serializer(
    codecs: Codecs, generated: tuple[dict[str, list[Any]], list[FraudLabel]]
) -> None:
    by_topic, labels = generated
    counts = {}
    for topic, events in by_topic.items():
        _, key_of, record_of = WIRE[type(events[0])]
        for event in events:
            record = record_of(event)
            assert codecs.publisher.encode_value(topic, record) == codecs.values[topic](record), record
            assert codecs.publisher.encode_key(topic, key_of(event)) == codecs.keys[topic](key_of(event))
        counts[topic] = len(events)
    for label in labels:
        record = fraud_label_record(label)
        assert codecs.publisher.encode_value(LABELS_TOPIC, record) == codecs.values[LABELS_TOPIC](record)
    counts[LABELS_TOPIC] = len(labels)
    assert min(counts.values()) >= 50 and sum(counts.values()) > 20_000, counts


def test_card_events_encode_without_the_record_dict_to_the_same_bytes(
    codecs: Codecs, generated: tuple[dict[str, list[Any]], list[FraudLabel]]
) -> None:
    events: list[CardTransaction] = generated[0][CARDS]
    statuses = {e.status for e in events}
    assert {"APPROVED", "DECLINED"} <= statuses and any(e.decline_reason for e in events)
    assert any(e.merchant.city is None for e in events) and any(e.device_id for e in events)
    record_of = WIRE[CardTransaction][2]
    for event in events:
        assert codecs.publisher.encode_event(CARDS, event) == codecs.values[CARDS](record_of(event))


def test_a_card_or_merchant_id_met_again_with_other_values_is_encoded_afresh(
    codecs: Codecs, generated: tuple[dict[str, list[Any]], list[FraudLabel]]
) -> None:
    """The encoder caches each card's and merchant's bytes by id; another bank in the same process
    reuses those ids with other values (seen as a one-digit difference in a full test run)."""
    event: CardTransaction = generated[0][CARDS][0]
    other = replace(
        event,
        card=replace(event.card, token="tok-from-another-bank", account_id=event.card.account_id + 1),
        merchant=replace(event.merchant, name="Another merchant"),
    )
    record_of = WIRE[CardTransaction][2]
    assert codecs.publisher.encode_event(CARDS, event) == codecs.values[CARDS](record_of(event))
    assert codecs.publisher.encode_event(CARDS, other) == codecs.values[CARDS](record_of(other))


def _edge_cases(base: dict[str, Any], cases: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    for field, values in cases.items():
        for value in values:
            yield {**base, field: value}


DECIMALS = [
    Decimal("0.00"), Decimal("-0.00"), Decimal("0.01"), Decimal("-0.01"), Decimal("1.27"),
    Decimal("1.28"), Decimal("-1.28"), Decimal("-1.29"), Decimal("12.3"), Decimal("5"),
    Decimal("1E+3"), Decimal("9999999999999999.99"), Decimal("-9999999999999999.99"),
    # rejected by AvroSerializer: finer scale, more digits than the precision, not a number
    Decimal("1.234"), Decimal("99999999999999999.99"), Decimal("NaN"), Decimal("Infinity"),
    "12.30", 12.3, 1230, None,
]  # fmt: skip
LONGS = [0, -1, 1, 63, 64, -64, -65, 8191, 8192, 16383, 16384, -(2**63), 2**63 - 1, 2**63, -(2**63) - 1,
         1_767_268_800_123, -1_767_268_800_123, True, 1.5, "1", None]  # fmt: skip
STRINGS = ["", "x", UNICODE, "a" * 200, "é" * 9000, "\ud800", b"bytes", 7, None]


def test_edge_values_encode_like_avro_serializer_or_are_rejected_like_it(
    codecs: Codecs, generated: tuple[dict[str, list[Any]], list[FraudLabel]]
) -> None:
    by_topic, labels = generated
    card = WIRE[CardTransaction][2](by_topic[CARDS][0])
    merchant = card["merchant"]
    symbols = ["POS", "ECOM", "ATM", "MOTO", "CONTACTLESS", "UNKNOWN", "CHIP", "BOGUS", "", None]
    card_cases = {
        "amount": DECIMALS,
        "billing_amount": DECIMALS,
        "event_time": LONGS,
        "event_id": STRINGS,
        "decline_reason": STRINGS,
        "channel": symbols,
        "entry_mode": symbols,
        "status": ["APPROVED", "DECLINED", "PENDING", "REVERSED", "POS", None],
        "card_present": [True, False, 1, 0, None, "yes"],
        "attributes": [{}, {"k": "v"}, {UNICODE: UNICODE, "": ""}, {str(i): "x" * i for i in range(70)},
                       {"k": 1}, {1: "v"}, [], None],
        "merchant": [
            {**merchant, "city": None, "latitude": None, "longitude": None},
            {**merchant, "name": UNICODE, "latitude": -33.8688, "longitude": 151.2093},
            {**merchant, "latitude": 0.0, "longitude": float("-inf")},
            {**merchant, "latitude": 48},  # an int where a double is expected
            {**merchant, "latitude": -(2**70)},  # rounded to the nearest double, as fastavro does
            {**merchant, "latitude": 10**400},  # too large for a double: rejected like fastavro
            {**merchant, "latitude": True},
            {**merchant, "latitude": "48.1"},
            {k: v for k, v in merchant.items() if k != "city"},  # missing field with a default
            {k: v for k, v in merchant.items() if k != "name"},  # missing required field
            None,
        ],
    }  # fmt: skip
    checked = 0
    for record in _edge_cases(card, card_cases):
        assert_same(codecs, CARDS, record)
        checked += 1
    assert_same(codecs, CARDS, {k: v for k, v in card.items() if k != "decline_reason"})
    assert_same(codecs, CARDS, {**card, "unknown_extra_field": 1})

    payment = WIRE[type(by_topic[TOPICS[Stream.PAYMENTS]][0])][2](by_topic[TOPICS[Stream.PAYMENTS]][0])
    for record in _edge_cases(
        payment,
        {"requested_execution_date": [0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1],
         "creditor_iban": STRINGS, "amount": DECIMALS, "remittance_info": STRINGS},
    ):  # fmt: skip
        assert_same(codecs, TOPICS[Stream.PAYMENTS], record)
        checked += 1
    trade = WIRE[type(by_topic[TOPICS[Stream.TRADES]][0])][2](by_topic[TOPICS[Stream.TRADES]][0])
    scaled = [Decimal("0.00000001"), Decimal("-123456789.12345678"), Decimal("1.5"), Decimal("1E-9")]
    for record in _edge_cases(
        trade, {"price": scaled, "quantity": scaled, "notional": scaled, "execution_time": LONGS}
    ):
        assert_same(codecs, TOPICS[Stream.TRADES], record)
        checked += 1
    tick = WIRE[type(by_topic[TOPICS[Stream.TICKS]][0])][2](by_topic[TOPICS[Stream.TICKS]][0])
    for record in _edge_cases(tick, {"bid": [None, *scaled], "ask": [None], "volume": [None, *LONGS]}):
        assert_same(codecs, TOPICS[Stream.TICKS], record)
        checked += 1
    label = fraud_label_record(labels[0])
    for record in _edge_cases(
        label,
        {"event_ids": [[], [UNICODE], [str(i) for i in range(500)], [1], "abc", None],
         "card_id": [None, UNICODE], "pattern": ["STRUCTURING", "NOT_A_PATTERN"]},
    ):  # fmt: skip
        assert_same(codecs, LABELS_TOPIC, record)
        checked += 1
    for key in ["", "card-1", UNICODE, "k" * 10_000]:
        assert codecs.publisher.encode_key(CARDS, key) == codecs.keys[CARDS](key)
    assert checked > 150


def test_card_event_encoder_falls_back_to_the_record_path_on_unusual_values(
    codecs: Codecs, generated: tuple[dict[str, list[Any]], list[FraudLabel]]
) -> None:
    event: CardTransaction = generated[0][CARDS][0]
    record_of = WIRE[CardTransaction][2]
    variants = [
        dataclasses.replace(event, amount_minor=-128),
        dataclasses.replace(event, amount_minor=0, billing_minor=-(10**17)),
        dataclasses.replace(event, amount_minor=10**18),  # 19 digits: rejected
        dataclasses.replace(event, device_id=UNICODE, ip_address="", decline_reason=UNICODE),
        dataclasses.replace(event, channel="BOGUS"),
        dataclasses.replace(event, event_time_ms=2**63),
        dataclasses.replace(event, event_id="e" * 300, authorization_id=UNICODE),  # long, multi-byte
        dataclasses.replace(event, billing_minor=event.amount_minor, billing_currency="JPY"),
        # Timestamps around the varint's 14-bit groups, and one repeated after a jump back.
        *(
            dataclasses.replace(event, event_time_ms=t)
            for t in [*LONGS, event.event_time_ms]
            if isinstance(t, int)
        ),
    ]
    # Values of another type than declared: the compiled build (producers/native.py) refuses to
    # build such an event at all; interpreted, the encoder must fall back on them.
    ill_typed: list[dict[str, Any]] = [
        {"card_present": 1},
        {"currency": None},
        {"event_id": 7},
        {"billing_minor": float(event.amount_minor)},
        *({"event_time_ms": t} for t in LONGS if not isinstance(t, int)),
    ]
    for changes in ill_typed:
        if native.active:
            with pytest.raises(TypeError):
                dataclasses.replace(event, **changes)
        else:
            variants.append(dataclasses.replace(event, **changes))
    for variant in variants:
        expected = outcome(lambda v=variant: codecs.values[CARDS](record_of(v)))  # type: ignore[misc]
        assert outcome(lambda v=variant: codecs.publisher.encode_event(CARDS, v)) == expected, variant  # type: ignore[misc]


def test_zigzag_varint_matches_the_avro_specification_examples() -> None:
    # The examples of the Avro specification's "Binary Encoding" section.
    assert [zigzag_varint(n) for n in (0, -1, 1, -2, 2, -64, 64)] == [
        b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\x7f", b"\x80\x01",
    ]  # fmt: skip
    assert zigzag_varint(2**63 - 1) == b"\xfe" + b"\xff" * 8 + b"\x01"
