"""Card transactions straight to Confluent Avro bytes, without the intermediate record dict.

The card stream is the one that must reach 50,000 events/s. Building the record dict
(``wire.card_transaction_record``) and walking it costs more than generating the event, so this
encoder writes ``schemas/cards/card_transaction.avsc`` from the ``CardTransaction`` itself and
reuses what repeats: the encoded card ids per card, the encoded merchant record per merchant,
currency codes. Amounts in minor units are the decimal's unscaled value (scale 2) already.

Anything unexpected (a value of another type, an amount beyond the decimal's 18 digits, a symbol
the enum does not have) falls back to the record path: ``card_transaction_record`` and the
compiled schema encoder, which gives fastavro's bytes or fastavro's error (for the dead-letter
topic). ``tests/producers/test_avro_encoder.py`` checks the bytes against ``AvroSerializer``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

from producers.avro_encoder import GROUP14, Encoder, zigzag_varint
from producers.model import Card, CardTransaction, Merchant
from producers.wire import card_transaction_record

_MAX_UNSCALED = 10**18  # precision 18: fastavro rejects more digits
_MAX_LONG = 2**63 - 1
_pack_double = struct.Struct("<d").pack


#: Avro length prefixes of strings up to 255 bytes (ids, names, codes): one lookup, no call.
_LENGTH = tuple(zigzag_varint(n) for n in range(256))


def _string(value: str) -> bytes:
    data = value.encode()
    return zigzag_varint(len(data)) + data


def _optional_string(value: str | None) -> bytes:
    return b"\x00" if value is None else b"\x02" + _string(value)


def _optional_double(value: float | None) -> bytes:
    if value is None:
        return b"\x00"
    if type(value) is not float:
        raise TypeError("not a float")
    return b"\x02" + _pack_double(value)


def _decimal(unscaled: int) -> bytes:
    if type(unscaled) is not int or not -_MAX_UNSCALED < unscaled < _MAX_UNSCALED:
        raise ValueError("amount outside the fast path")
    size = ((-unscaled if unscaled < 0 else unscaled).bit_length() + 8) // 8
    return zigzag_varint(size) + unscaled.to_bytes(size, "big", signed=True)


def _enum_table(schema: dict[str, Any], field: str) -> dict[str, bytes]:
    (entry,) = [f for f in schema["fields"] if f["name"] == field]
    return {symbol: zigzag_varint(i) for i, symbol in enumerate(entry["type"]["symbols"])}


_SCHEMA_FIELDS = [
    "event_id", "authorization_id", "card_id", "account_id", "customer_id", "merchant", "amount",
    "currency", "billing_amount", "billing_currency", "channel", "entry_mode", "status",
    "decline_reason", "card_present", "device_id", "ip_address", "event_time", "attributes",
]  # fmt: skip
_MERCHANT_FIELDS = ["merchant_id", "name", "mcc", "country", "city", "latitude", "longitude"]


def compile_card_encoder(
    schema_text: str, prefix: bytes, fallback: Encoder
) -> Callable[[CardTransaction], bytes]:
    """``encode(event)`` for ``schema_text`` (card_transaction.avsc) with the wire ``prefix``;
    ``fallback`` encodes a record dict (the compiled schema encoder)."""
    schema = json.loads(schema_text)
    merchant_schema = next(f["type"] for f in schema["fields"] if f["name"] == "merchant")
    # The field order is written into the code below: refuse a schema that moved or added fields.
    if [f["name"] for f in schema["fields"]] != _SCHEMA_FIELDS or [
        f["name"] for f in merchant_schema["fields"]
    ] != _MERCHANT_FIELDS:
        raise ValueError("card_transaction.avsc changed its fields: update producers/card_encoder.py")
    channels = _enum_table(schema, "channel")
    entry_modes = _enum_table(schema, "entry_mode")
    statuses = _enum_table(schema, "status")
    # Keyed by id, each with the object it was encoded from: another bank (or a card reissued) can
    # reuse an id with other values, so a hit counts only for that object or an equal one.
    cards: dict[int, tuple[Card, bytes]] = {}
    merchants: dict[str, tuple[Merchant, bytes]] = {}
    codes: dict[str | None, bytes] = {}
    required_codes: dict[str, bytes] = {}

    def card_bytes(card: Card) -> bytes:
        hit = cards.get(card.card_id)
        if hit is not None and (hit[0] is card or hit[0] == card):
            return hit[1]
        data = _string(card.token) + _string(str(card.account_id)) + _string(str(card.customer_id))
        cards[card.card_id] = (card, data)
        return data

    def merchant_bytes(m: Merchant) -> bytes:
        hit = merchants.get(m.merchant_id)
        if hit is not None and (hit[0] is m or hit[0] == m):
            return hit[1]
        city = m.city
        data = b"".join(
            (
                _string(m.merchant_id),
                _string(m.name),
                _string(m.mcc),
                _string(m.country),
                _optional_string(city.name if city else None),
                _optional_double(city.lat if city else None),
                _optional_double(city.lon if city else None),
            )
        )
        merchants[m.merchant_id] = (m, data)
        return data

    # Currencies and decline reasons: a handful of values, each encoded once.
    def code(value: str) -> bytes:
        data = required_codes.get(value)
        if data is None:
            data = _string(value)
            if len(required_codes) < 1000:
                required_codes[value] = data
        return data

    def optional_code(value: str | None) -> bytes:
        data = codes.get(value)
        if data is None:
            data = _optional_string(value)
            if len(codes) < 1000:
                codes[value] = data
        return data

    # A millisecond timestamp's varint: its low 14 bits from a table, the rest (which changes
    # every 8 s of event time) from the last one computed.
    last_high: list[Any] = [None, b""]

    def timestamp(event_time: int) -> bytes:
        if type(event_time) is not int or not 0 <= event_time <= _MAX_LONG:
            raise TypeError("event_time outside the fast path (negative, or not a long)")
        high = event_time >> 13  # zigzag(t) = 2t for t >= 0: bits 14 and up of 2t
        if high != last_high[0]:
            last_high[0], last_high[1] = high, zigzag_varint(event_time)[2:]
        return GROUP14[(event_time << 1) & 0x3FFF] + last_high[1] if high else zigzag_varint(event_time)

    def encode(e: CardTransaction) -> bytes:
        try:
            present = e.card_present
            if present is not True and present is not False:
                raise TypeError("card_present is not a bool")
            event_id = e.event_id.encode()
            authorization_id = e.authorization_id.encode()
            amount = _decimal(e.amount_minor)
            billing = e.billing_minor
            return b"".join(
                (
                    prefix,
                    _LENGTH[len(event_id)],
                    event_id,
                    _LENGTH[len(authorization_id)],
                    authorization_id,
                    card_bytes(e.card),
                    merchant_bytes(e.merchant),
                    amount,
                    code(e.currency),
                    amount if billing == e.amount_minor and type(billing) is int else _decimal(billing),
                    code(e.billing_currency),
                    channels[e.channel],
                    entry_modes[e.entry_mode],
                    statuses[e.status],
                    optional_code(e.decline_reason),
                    b"\x01" if present else b"\x00",
                    _optional_string(e.device_id),
                    _optional_string(e.ip_address),
                    timestamp(e.event_time_ms),
                    b"\x00",  # attributes: an empty map
                )
            )
        except Exception:
            return fallback(card_transaction_record(e))

    return encode
