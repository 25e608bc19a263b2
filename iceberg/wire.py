"""Confluent wire format (magic byte 0, 4-byte schema id, Avro body) decoded with fastavro.

Writer schemas are fetched from the registry once per id and kept parsed: confluent-kafka's
``AvroDeserializer`` re-resolves per message, fastavro's ``schemaless_reader`` on a cached parsed
schema does not (see bench/lake_bench.py for the figures).
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import fastavro

from riverbank.errors import ServiceUnavailableError

_HEADER = struct.Struct(">bI")


class DecodeError(Exception):
    """A record's bytes are not a Confluent Avro payload the registry can explain."""


@dataclass(frozen=True)
class WriterSchema:
    schema_id: int
    #: The registered schema as JSON (field-ids and docs included when the writer sent them).
    raw: Any
    parsed: Any


class SchemaCache:
    """Registry schemas by id, parsed once; ``client`` is confluent-kafka's SchemaRegistryClient."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._by_id: dict[int, WriterSchema] = {}

    def get(self, schema_id: int) -> WriterSchema:
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            registered = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise DecodeError(f"schema id {schema_id} is not in the registry") from None
            raise ServiceUnavailableError(f"schema registry: HTTP {exc.http_status_code} {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("httpx"):
                raise ServiceUnavailableError(f"schema registry did not answer: {exc}") from None
            raise
        if registered.schema_type not in (None, "AVRO"):
            raise DecodeError(f"schema id {schema_id} is {registered.schema_type}, not Avro")
        raw = json.loads(registered.schema_str)
        entry = WriterSchema(schema_id, raw, fastavro.parse_schema(raw))
        self._by_id[schema_id] = entry
        return entry


def schema_id_of(data: bytes) -> int:
    if len(data) < _HEADER.size:
        raise DecodeError(f"{len(data)} bytes is too short for the Confluent wire format")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != 0:
        raise DecodeError(f"magic byte {magic} is not the Confluent wire format's 0")
    return int(schema_id)


def decode(data: bytes, schemas: SchemaCache) -> tuple[int, Any]:
    """(writer schema id, decoded value) of one Confluent Avro payload."""
    schema_id = schema_id_of(data)
    writer = schemas.get(schema_id)
    buffer = io.BytesIO(data)
    buffer.seek(_HEADER.size)
    try:
        value = fastavro.schemaless_reader(buffer, writer.parsed, None)
    except Exception as exc:  # fastavro raises many kinds (EOFError, ValueError, IndexError...)
        raise DecodeError(
            f"Avro body does not match schema id {schema_id}: {type(exc).__name__}: {exc}"
        ) from None
    if buffer.tell() != len(data):
        raise DecodeError(
            f"{len(data) - buffer.tell()} trailing bytes after the Avro body (schema id {schema_id})"
        )
    return schema_id, value


def key_text(data: bytes | None, schemas: SchemaCache) -> str | None:
    """The key as text: Avro keys decoded (records as sorted JSON), anything else as UTF-8."""
    if data is None:
        return None
    if len(data) >= _HEADER.size and data[0] == 0:
        try:
            _, value = decode(data, schemas)
        except DecodeError:
            pass
        else:
            if isinstance(value, str):
                return value
            return json.dumps(value, default=str, sort_keys=True)
    return data.decode("utf-8", errors="backslashreplace")
