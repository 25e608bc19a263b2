"""A per-schema Avro decoder compiled to Python source: fastavro's values, a third of its time.

``fastavro.schemaless_reader`` interprets the schema for every record and was the largest single
cost of the fraud job's Python worker (45 us of a card transaction's ~200 us). Here each writer
schema is turned once into straight-line Python: one block per field reading from the payload at
an offset, varints decoded inline for the common one-byte case, enums and unions by index.

The values are exactly what ``schemaless_reader(..., reader_schema=None)`` returns with its default
logical types (``Decimal``, timezone-aware ``datetime``, ``date``, ``UUID``), so the two are
interchangeable; ``tests/flink/test_avro_decoder.py`` compares them record by record. A schema
using something this module does not compile (recursive types, time-of-day or local-timestamp
logical types) is decoded by fastavro itself. Malformed bytes raise :class:`AvroDecodeError`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import struct
import uuid
from collections.abc import Callable
from decimal import Context
from typing import Any

from fastavro import parse_schema, schemaless_reader

#: ``decode(payload, offset)``: the record whose Avro body starts at ``payload[offset]``.
Decoder = Callable[[bytes, int], Any]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DATE_SHIFT = dt.date(1970, 1, 1).toordinal()
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_COMPLEX = {"record", "enum", "fixed", "array", "map"}
#: What ``str(uuid.UUID(text))`` returns; other spellings are normalised (or rejected) by UUID.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


class AvroDecodeError(ValueError):
    """Bytes that are not a valid encoding of the schema (truncated, bad index, bad UTF-8...)."""


class _Unsupported(Exception):
    """A schema construct left to fastavro."""


#: The zigzag value of each one-byte varint; None for a first byte that another follows.
_ZIGZAG: tuple[int | None, ...] = tuple((b >> 1) ^ -(b & 1) if b < 0x80 else None for b in range(256))
#: The length a one-byte varint gives; -1 for a negative one or a first byte that another follows.
_LENGTH: tuple[int, ...] = tuple(b >> 1 if b < 0x80 and not b & 1 else -1 for b in range(256))


def long_at(buf: bytes, pos: int) -> tuple[int, int]:
    """The zigzag varint at ``buf[pos]`` and the position after it."""
    first = buf[pos]
    value, pos = varint_tail(buf, pos + 1, first) if first > 0x7F else (first, pos + 1)
    return (value >> 1) ^ -(value & 1), pos


def length_at(buf: bytes, pos: int) -> tuple[int, int]:
    """A length (a varint that may not be negative) and the position after it."""
    size, pos = long_at(buf, pos)
    if size < 0:
        raise AvroDecodeError("negative length")
    return size, pos


def varint_tail(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The unsigned varint whose first byte (already read, > 0x7F) is ``first``; ``buf[pos]`` is
    the second byte. Returns (value, position after it)."""
    value = first & 0x7F
    shift = 7
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise AvroDecodeError("varint longer than 10 bytes")


class _Compiler:
    """Emits Python statements that decode one value from ``buf`` at ``pos`` into a variable."""

    def __init__(self, *, plain: bool = False) -> None:
        #: Leave uuids as strings and timestamp-millis as integers (see :func:`compile_decoder`).
        self.plain = plain
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.named: dict[str, Any] = {}
        self._open: set[str] = set()
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

    def long(self, target: str, indent: int) -> None:
        # Most varints are one byte: its value by table lookup, longer ones by a call.
        self.emit(indent, f"{target} = _ZIGZAG[buf[pos]]")
        self.emit(indent, f"if {target} is None: {target}, pos = _long(buf, pos)")
        self.emit(indent, "else: pos += 1")

    def raw_bytes(self, target: str, indent: int, then: str = "") -> None:
        """``buf[pos:pos + length]`` after its length, with ``then`` applied (``.decode()``)."""
        size = self.name("n")
        self.emit(indent, f"{size} = _LENGTH[buf[pos]]")
        self.emit(indent, f"if {size} < 0: {size}, pos = _length(buf, pos)")
        self.emit(indent, "else: pos += 1")
        self.emit(indent, f"{target} = buf[pos:pos + {size}]{then}")
        self.emit(indent, f"pos += {size}")

    def value(self, schema: Any, target: str, indent: int) -> None:
        if isinstance(schema, list):
            self.union(schema, target, indent)
            return
        if isinstance(schema, str):
            if schema not in _PRIMITIVES:
                if schema in self._open or schema not in self.named:
                    raise _Unsupported(f"recursive or unknown named type {schema}")
                schema = self.named[schema]
            else:
                schema = {"type": schema}
        kind = schema["type"]
        if isinstance(kind, (dict, list)) or (kind not in _PRIMITIVES and kind not in _COMPLEX):
            self.value(kind, target, indent)  # {"type": <a schema or a named type>}
            return
        logical = schema.get("logicalType")
        if kind == "record":
            self.record(schema, target, indent)
        elif kind == "enum":
            self.define(schema)
            index = self.name("i")
            self.long(index, indent)
            symbols = self.const("symbols", dict(enumerate(schema["symbols"])))
            self.emit(indent, f"{target} = {symbols}[{index}]")
        elif kind == "fixed":
            self.define(schema)
            size = int(schema["size"])
            self.emit(indent, f"{target} = buf[pos:pos + {size}]")
            self.emit(indent, f"pos += {size}")
            if logical == "decimal":
                self.decimal(schema, target, indent)
            elif logical is not None:
                raise _Unsupported(f"fixed logical type {logical}")
        elif kind == "null":
            self.emit(indent, f"{target} = None")
        elif kind == "boolean":
            self.emit(indent, f"{target} = buf[pos] == 1")
            self.emit(indent, "pos += 1")
        elif kind in ("int", "long"):
            self.long(target, indent)
            if logical == "timestamp-millis" and kind == "long":
                if not self.plain:  # plain: the epoch milliseconds as written
                    self.emit(indent, f"{target} = _EPOCH + _timedelta(microseconds={target} * 1000)")
            elif logical == "timestamp-micros" and kind == "long":
                self.emit(indent, f"{target} = _EPOCH + _timedelta(microseconds={target})")
            elif logical == "date" and kind == "int":
                self.emit(indent, f"{target} = _fromordinal({target} + {_DATE_SHIFT})")
            elif logical is not None:
                raise _Unsupported(f"{kind} logical type {logical}")
        elif kind in ("float", "double"):
            unpack = self.const("unpack", struct.Struct("<f" if kind == "float" else "<d").unpack_from)
            self.emit(indent, f"{target} = {unpack}(buf, pos)[0]")
            self.emit(indent, f"pos += {4 if kind == 'float' else 8}")
        elif kind == "string":
            self.raw_bytes(target, indent, ".decode()")
            if logical == "uuid" and self.plain:  # canonical text as is; anything else as str(UUID)
                self.emit(indent, f"if not _canonical_uuid({target}): {target} = str(_UUID({target}))")
            elif logical == "uuid":
                self.emit(indent, f"{target} = _UUID({target})")
        elif kind == "bytes":
            self.raw_bytes(target, indent)
            if logical == "decimal":
                self.decimal(schema, target, indent)
            elif logical is not None:
                raise _Unsupported(f"bytes logical type {logical}")
        elif kind == "array":
            self.blocks(target, indent, lambda item, ind: self.value(schema["items"], item, ind), "list")
        elif kind == "map":

            def entry(item: str, ind: int) -> None:
                key = self.name("k")
                self.raw_bytes(key, ind)
                self.value(schema["values"], item, ind)
                self.emit(ind, f"{target}[{key}.decode()] = {item}")

            self.blocks(target, indent, entry, "map")
        else:
            raise _Unsupported(f"type {kind}")

    def define(self, schema: dict[str, Any]) -> None:
        self.named[schema["name"]] = schema

    def record(self, schema: dict[str, Any], target: str, indent: int) -> None:
        self.define(schema)
        self._open.add(schema["name"])
        fields = []
        for f in schema["fields"]:
            v = self.name("v")
            self.value(f["type"], v, indent)
            fields.append(f"{f['name']!r}: {v}")
        self._open.discard(schema["name"])
        self.emit(indent, f"{target} = {{{', '.join(fields)}}}")

    def union(self, branches: list[Any], target: str, indent: int) -> None:
        index = self.name("u")
        self.long(index, indent)
        for i, branch in enumerate(branches):
            self.emit(indent, f"{'if' if i == 0 else 'elif'} {index} == {i}:")
            self.value(branch, target, indent + 1)
        self.emit(indent, f"else: raise _Error(f'union index {{{index}}} out of range')")

    def blocks(self, target: str, indent: int, item_code: Callable[[str, int], None], kind: str) -> None:
        count, item = self.name("c"), self.name("item")
        self.emit(indent, f"{target} = {'[]' if kind == 'list' else '{}'}")
        self.emit(indent, "while True:")
        self.long(count, indent + 1)
        self.emit(indent + 1, f"if {count} == 0: break")
        self.emit(indent + 1, f"if {count} < 0:")  # a negative count is followed by the block's size
        self.emit(indent + 2, f"{count} = -{count}")
        self.long(self.name("size"), indent + 2)
        self.emit(indent + 1, f"for _ in range({count}):")
        item_code(item, indent + 2)
        if kind == "list":
            self.emit(indent + 2, f"{target}.append({item})")

    def decimal(self, schema: dict[str, Any], target: str, indent: int) -> None:
        context = self.const("context", Context(prec=int(schema["precision"])))
        scale = int(schema.get("scale", 0))
        self.emit(
            indent,
            f"{target} = {context}.create_decimal(int.from_bytes({target}, 'big', signed=True))"
            f".scaleb({-scale}, {context})",
        )


def compile_decoder(schema_text: str, *, plain: bool = False) -> Decoder:
    """A decoder of Avro bodies written with ``schema_text`` (same values as fastavro).

    ``plain``: uuids are ``str`` (canonical, as ``str(UUID)`` gives; malformed ones still raise)
    and timestamp-millis stays the epoch milliseconds as written, for a caller that would only
    convert those objects back (the fraud job). Micros still become datetimes, so no caller
    mistakes them for milliseconds; a schema left to fastavro still decodes all of them to objects."""
    parsed = parse_schema(json.loads(schema_text))

    def slow(payload: bytes, offset: int) -> Any:
        try:
            return schemaless_reader(io.BytesIO(payload[offset:]), parsed, None)
        except (EOFError, ValueError, IndexError, KeyError, UnicodeDecodeError, struct.error) as exc:
            raise AvroDecodeError(f"{type(exc).__name__}: {exc}") from None

    compiler = _Compiler(plain=plain)
    try:
        compiler.value(parsed, "record", 1)
    except _Unsupported:
        return slow
    source = "\n".join(
        [
            "def _fast(buf, pos):",
            *compiler.lines,
            "    if pos > len(buf): raise _Error('truncated')",
            "    return record",
        ]
    )
    namespace: dict[str, Any] = {
        "_ZIGZAG": _ZIGZAG,
        "_LENGTH": _LENGTH,
        "_long": long_at,
        "_length": length_at,
        "_Error": AvroDecodeError,
        "_EPOCH": _EPOCH,
        "_timedelta": dt.timedelta,
        "_fromordinal": dt.date.fromordinal,
        "_UUID": uuid.UUID,
        "_canonical_uuid": _CANONICAL_UUID,
        **compiler.consts,
    }
    label = parsed.get("name", "?") if isinstance(parsed, dict) else parsed
    # Generated above from the schema (field names quoted with repr): no outside input.
    exec(  # noqa: S102
        compile(
            source,
            f"<avro decoder {label}>",
            "exec",
        ),
        namespace,
    )
    fast: Callable[[bytes, int], Any] = namespace["_fast"]

    def decode(payload: bytes, offset: int = 0) -> Any:
        try:
            return fast(payload, offset)
        except AvroDecodeError:
            raise
        except (IndexError, KeyError, ValueError, UnicodeDecodeError, struct.error, OverflowError) as exc:
            raise AvroDecodeError(f"{type(exc).__name__}: {exc}") from None

    decode.source = source  # type: ignore[attr-defined]  # for debugging a schema's code
    return decode
