"""A per-schema Avro encoder compiled to Python source, producing the Confluent wire format.

``AvroSerializer`` walks the schema for every record (fastavro's generic writer, logical-type
preparation, union resolution by validation) and was the producers' bottleneck. Here each schema
is turned once into straight-line Python: one statement per field, enum symbols looked up in a
dict, ``["null", T]`` unions decided by ``is None``, decimals scaled with ``scaleb``.

The fast path accepts exactly the Python types the producers' wire mapping emits (``str``,
``int``, ``float``, ``bool``, ``Decimal``, ``dict``, ``list``, ``None``), and ints where a
float or double is expected (the fraud job's alert features: counts among amounts). Any other value, a
missing field or an out-of-range number makes it give up and hand the record to fastavro's
``schemaless_writer`` with the same parsed schema, which is what ``AvroSerializer`` calls: the
bytes are the same in every case and a record fastavro rejects raises fastavro's own error (for
the dead-letter topic). ``tests/producers/test_avro_encoder.py`` compares the output with
``AvroSerializer`` byte for byte.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastavro import parse_schema, schemaless_writer

Encoder = Callable[[Any], bytes]

#: Zigzag varints of 0..N-1, precomputed: string lengths and counts are nearly always small.
_SMALL = 16_384
_MIN_LONG, _MAX_LONG = -(2**63), 2**63 - 1
_MIN_INT, _MAX_INT = -(2**31), 2**31 - 1
#: Decimal's default context rounds beyond 28 digits; wider decimals take the fastavro path.
_MAX_FAST_PRECISION = 28


class _Unsupported(Exception):
    """A value outside the fast path: encode this record with fastavro instead."""


def _unsigned_varint(z: int) -> bytes:
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


#: Unsigned varints of 0..2**14-1, and 14-bit groups with both continuation bits set: a long is
#: encoded 14 bits per table lookup instead of 7 bits per loop turn.
_UNSIGNED = tuple(_unsigned_varint(z) for z in range(1 << 14))
GROUP14 = tuple(bytes(((z & 0x7F) | 0x80, (z >> 7) | 0x80)) for z in range(1 << 14))


def zigzag_varint(n: int) -> bytes:
    """Avro's variable-length zigzag encoding of a signed 64-bit integer."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:
        return _UNSIGNED[z]
    out = GROUP14[z & 0x3FFF]
    z >>= 14
    while z >= 0x4000:
        out += GROUP14[z & 0x3FFF]
        z >>= 14
    return out + _UNSIGNED[z]


_VARINT_TABLE = tuple(zigzag_varint(i) for i in range(_SMALL))


def wire_prefix(schema_id: int) -> bytes:
    """Confluent framing: magic byte 0 then the schema id as a 4-byte big-endian integer."""
    return b"\x00" + schema_id.to_bytes(4, "big")


class _Compiler:
    """Emits Python statements that append the encoding of one value to ``out``."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, prefix: str, value: Any) -> str:
        name = self.name(f"_{prefix}")
        self.consts[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def length(self, indent: int, n: str) -> None:
        if not n.isidentifier():  # an expression such as len(b): evaluated once
            size = self.name("n")
            self.emit(indent, f"{size} = {n}")
            n = size
        self.emit(indent, f"out += _V[{n}] if {n} < {_SMALL} else _varint({n})")

    def value(self, schema: Any, v: str, indent: int) -> None:
        if isinstance(schema, list):
            self.union(schema, v, indent)
            return
        if isinstance(schema, str):
            schema = {"type": schema}
        kind = schema["type"]
        if isinstance(kind, (dict, list)):
            self.value(kind, v, indent)
            return
        logical = schema.get("logicalType")
        if kind == "record":
            self.record(schema, v, indent)
        elif kind == "null":
            self.emit(indent, f"if {v} is not None: raise _Unsupported")
        elif kind == "boolean":
            self.emit(indent, f"if type({v}) is not bool: raise _Unsupported")
            self.emit(indent, f"out += b'\\x01' if {v} else b'\\x00'")
        elif kind in ("int", "long"):
            low, high = (_MIN_INT, _MAX_INT) if kind == "int" else (_MIN_LONG, _MAX_LONG)
            self.emit(indent, f"if type({v}) is not int or not {low} <= {v} <= {high}: raise _Unsupported")
            self.emit(indent, f"out += _V[{v}] if 0 <= {v} < {_SMALL} else _varint({v})")
        elif kind in ("float", "double"):
            fmt = "<f" if kind == "float" else "<d"
            # An int is written as the same number in floating point, as fastavro writes it (one
            # too large for a double raises OverflowError here, and fastavro then rejects it).
            self.emit(indent, f"if type({v}) is not float and type({v}) is not int: raise _Unsupported")
            self.emit(indent, f"out += {self.const('pack', struct.Struct(fmt).pack)}({v})")
        elif kind == "string":
            b = self.name("b")
            self.emit(indent, f"if type({v}) is not str: raise _Unsupported")
            self.emit(indent, f"{b} = {v}.encode()")
            self.length(indent, f"len({b})")
            self.emit(indent, f"out += {b}")
        elif kind == "bytes" and logical == "decimal":
            self.decimal(schema, v, indent)
        elif kind == "bytes":
            self.emit(indent, f"if type({v}) is not bytes: raise _Unsupported")
            self.length(indent, f"len({v})")
            self.emit(indent, f"out += {v}")
        elif kind == "enum":
            symbols = {s: _VARINT_TABLE[i] for i, s in enumerate(schema["symbols"])}
            self.emit(indent, f"out += {self.const('enum', symbols)}[{v}]")
        elif kind == "array":
            item = self.name("item")
            self.emit(indent, f"if type({v}) is not list: raise _Unsupported")
            self.emit(indent, f"if {v}:")
            self.length(indent + 1, f"len({v})")
            self.emit(indent + 1, f"for {item} in {v}:")
            self.value(schema["items"], item, indent + 2)
            self.emit(indent, "out += b'\\x00'")
        elif kind == "map":
            key, item = self.name("k"), self.name("item")
            self.emit(indent, f"if type({v}) is not dict: raise _Unsupported")
            self.emit(indent, f"if {v}:")
            self.length(indent + 1, f"len({v})")
            self.emit(indent + 1, f"for {key}, {item} in {v}.items():")
            self.value("string", key, indent + 2)
            self.value(schema["values"], item, indent + 2)
            self.emit(indent, "out += b'\\x00'")
        else:
            # fixed and anything rarer: not used by the producers' schemas.
            self.emit(indent, "raise _Unsupported")

    def record(self, schema: dict[str, Any], v: str, indent: int) -> None:
        self.emit(indent, f"if type({v}) is not dict: raise _Unsupported")
        for f in schema["fields"]:
            fv = self.name("v")
            # A missing field (KeyError) takes the fastavro path, which applies the default.
            self.emit(indent, f"{fv} = {v}[{f['name']!r}]")
            self.value(f["type"], fv, indent)

    def union(self, branches: list[Any], v: str, indent: int) -> None:
        others = [b for b in branches if b != "null" and b != {"type": "null"}]
        if len(branches) != 2 or len(others) != 1:
            self.emit(indent, "raise _Unsupported")  # general unions resolve by validation in fastavro
            return
        null_index = branches.index("null") if "null" in branches else branches.index({"type": "null"})
        self.emit(indent, f"if {v} is None:")
        self.emit(indent + 1, f"out += {_VARINT_TABLE[null_index]!r}")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"out += {_VARINT_TABLE[1 - null_index]!r}")
        self.value(others[0], v, indent + 1)

    def decimal(self, schema: dict[str, Any], v: str, indent: int) -> None:
        precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
        if precision > _MAX_FAST_PRECISION:
            self.emit(indent, "raise _Unsupported")
            return
        exp, unscaled, size = self.name("exp"), self.name("u"), self.name("n")
        # fastavro's prepare_bytes_decimal: reject more digits than the precision or a finer scale;
        # unscaled value as big-endian two's complement, length from the magnitude's bit length.
        self.emit(indent, f"if type({v}) is not _Decimal: raise _Unsupported")
        self.emit(indent, f"{exp} = {v}.as_tuple()")
        self.emit(
            indent,
            f"if type({exp}.exponent) is not int or len({exp}.digits) > {precision} "
            f"or {exp}.exponent + {scale} < 0: raise _Unsupported",
        )
        self.emit(indent, f"{unscaled} = int({v}.scaleb({scale}))")
        self.emit(indent, f"{size} = ((-{unscaled} if {unscaled} < 0 else {unscaled}).bit_length() + 8) // 8")
        self.length(indent, size)
        self.emit(indent, f"out += {unscaled}.to_bytes({size}, 'big', signed=True)")


def compile_encoder(schema_text: str, prefix: bytes = b"") -> Encoder:
    """An encoder of records of ``schema_text``: ``prefix`` + Avro binary, same bytes as fastavro."""
    raw = json.loads(schema_text)
    parsed = parse_schema(raw)
    compiler = _Compiler()
    compiler.value(raw, "record", 1)
    source = "\n".join(
        [
            "def _fast(record):",
            f"    out = bytearray({prefix!r})",
            *compiler.lines,
            "    return bytes(out)",
        ]
    )
    namespace: dict[str, Any] = {
        "_V": _VARINT_TABLE,
        "_varint": zigzag_varint,
        "_Unsupported": _Unsupported,
        "_Decimal": Decimal,
        **compiler.consts,
    }
    label = raw.get("name", "?") if isinstance(raw, dict) else str(raw)
    # The source is generated above from the schema (field names quoted with repr): no outside input.
    exec(compile(source, f"<avro encoder {label}>", "exec"), namespace)  # noqa: S102
    fast: Callable[[Any], bytes] = namespace["_fast"]

    def slow(record: Any) -> bytes:
        buffer = io.BytesIO()
        buffer.write(prefix)
        schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()

    def encode(record: Any) -> bytes:
        try:
            return fast(record)
        except (_Unsupported, KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return slow(record)

    encode.source = source  # type: ignore[attr-defined]  # for debugging a schema's code
    return encode
