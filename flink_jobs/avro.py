"""Avro in the Confluent wire format (magic byte 0, 4-byte schema id, schemaless Avro body).

Built for Python functions inside Flink: a :class:`RegistryConfig` is small and picklable, so a job
ships it with its functions; each worker keeps one module-level :class:`SchemaCache` per registry
(schemas fetched once by id, subjects resolved once), then decodes and encodes without further
HTTP, with code compiled per schema (:mod:`flink_jobs.avro_decoder`, :mod:`producers.avro_encoder`):
the same values and bytes as fastavro, in a half to a third of its time. Works in both
virtualenvs (only httpx and fastavro).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from flink_jobs.avro_decoder import AvroDecodeError, Decoder, compile_decoder
from producers.avro_encoder import compile_encoder
from riverbank.errors import ServiceUnavailableError, TerminalError
from riverbank.settings import SchemaRegistrySettings

MAGIC = 0
_HEADER = struct.Struct(">bI")


class WireFormatError(TerminalError):
    """Bytes that are not a Confluent-framed Avro record, or a schema the registry does not have."""


@dataclass(frozen=True)
class RegistryConfig:
    """What a worker needs to reach the registry; built on the driver from the settings."""

    url: str
    basic_auth: tuple[str, str] | None = None
    ca_location: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, registry: SchemaRegistrySettings) -> RegistryConfig:
        config = registry.client_config()  # raises ConfigError when the url is unset
        auth = config.get("basic.auth.user.info")
        user, _, password = (auth or "").partition(":")
        return cls(
            url=config["url"],
            basic_auth=(user, password) if auth else None,
            ca_location=config.get("ssl.ca.location"),
        )


class SchemaCache:
    """Schema texts and compiled decoders by id, subject ids; fetched on first use (thread-safe)."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self._by_id: dict[int, str] = {}
        self._decoders: dict[tuple[int, bool], Decoder] = {}
        self._subject_ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def _get(self, path: str) -> dict[str, Any]:
        verify: Any = self.config.ca_location or True
        try:
            with httpx.Client(
                base_url=self.config.url,
                auth=self.config.basic_auth,
                verify=verify,
                timeout=self.config.timeout_s,
            ) as client:
                reply = client.get(path)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"schema registry at {self.config.url}: {exc}") from None
        if reply.status_code == 404:
            raise WireFormatError(f"schema registry at {self.config.url} has no {path}")
        if reply.status_code >= 400:
            raise ServiceUnavailableError(
                f"schema registry at {self.config.url}: GET {path} -> HTTP {reply.status_code}"
            )
        data: dict[str, Any] = reply.json()
        return data

    def schema(self, schema_id: int) -> str:
        """The schema's text as the registry holds it."""
        text = self._by_id.get(schema_id)
        if text is None:
            text = str(self._get(f"/schemas/ids/{schema_id}")["schema"])
            with self._lock:
                self._by_id[schema_id] = text
        return text

    def decoder(self, schema_id: int, *, plain: bool = False) -> Decoder:
        found = self._decoders.get((schema_id, plain))
        if found is None:
            found = compile_decoder(self.schema(schema_id), plain=plain)
            with self._lock:
                self._decoders[(schema_id, plain)] = found
        return found

    def latest_id(self, subject: str) -> int:
        found = self._subject_ids.get(subject)
        if found is None:
            reply = self._get(f"/subjects/{quote(subject, safe='')}/versions/latest")
            found = int(reply["id"])
            with self._lock:
                self._subject_ids[subject] = found
                self._by_id.setdefault(found, str(reply["schema"]))
        return found


_CACHES: dict[RegistryConfig, SchemaCache] = {}
_CACHES_LOCK = threading.Lock()


def schema_cache(config: RegistryConfig) -> SchemaCache:
    """The worker-wide cache for this registry (one per process, shared by all functions)."""
    cache = _CACHES.get(config)
    if cache is None:
        with _CACHES_LOCK:
            cache = _CACHES.setdefault(config, SchemaCache(config))
    return cache


def schema_id_of(payload: bytes) -> int:
    if len(payload) < _HEADER.size:
        raise WireFormatError(f"{len(payload)} bytes is too short for a Confluent Avro record")
    magic, schema_id = _HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise WireFormatError(f"magic byte {magic} is not the Confluent Avro magic byte 0")
    return int(schema_id)


def decode(config: RegistryConfig, payload: bytes, *, plain: bool = False) -> Any:
    """The record in ``payload``, logical types decoded as fastavro does (Decimal, datetime, UUID);
    with ``plain``, uuids as strings and timestamp-millis as integers (``compile_decoder``)."""
    schema_id = schema_id_of(payload)
    try:
        return schema_cache(config).decoder(schema_id, plain=plain)(payload, _HEADER.size)
    except AvroDecodeError as exc:
        raise WireFormatError(f"Avro body does not match schema id {schema_id}: {exc}") from None


class Encoder:
    """Encodes records with the latest schema of one subject (resolved once, on first use)."""

    def __init__(self, config: RegistryConfig, subject: str) -> None:
        self.config = config
        self.subject = subject
        self._encode: Callable[[Any], bytes] | None = None

    def __call__(self, record: Any) -> bytes:
        if self._encode is None:
            cache = schema_cache(self.config)
            schema_id = cache.latest_id(self.subject)
            self._encode = compile_encoder(cache.schema(schema_id), _HEADER.pack(MAGIC, schema_id))
        try:
            return self._encode(record)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise WireFormatError(f"record does not fit the schema of {self.subject}: {exc}") from None
