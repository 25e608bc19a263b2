"""The registry's behaviour, independent of HTTP: what each Confluent REST operation does.

Every method takes already-decoded request data and returns the JSON-ready answer, or raises a
:class:`~riverbank.registry.errors.RestError` that the API layer turns into Confluent's error
body. Writes run inside one storage write transaction, including the compatibility check, so two
concurrent registrations to a subject are checked and numbered one after the other.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from riverbank.registry import avro_schema
from riverbank.registry.avro_schema import ParsedSchema
from riverbank.registry.compatibility import DEFAULT_LEVEL, Level, check
from riverbank.registry.errors import (
    CompatibilityNotConfigured,
    IncompatibleSchema,
    InvalidCompatibilityLevel,
    InvalidMode,
    InvalidSchema,
    InvalidVersion,
    ModeNotConfigured,
    OperationNotPermitted,
    ReferenceExists,
    SchemaNotFound,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from riverbank.registry.storage import GLOBAL, Reference, Storage, StoredSchema, Tx, VersionRow

SCHEMA_TYPES = ("AVRO",)
MAX_VERSION = 2**31 - 1
LATEST = -1


class Mode(StrEnum):
    READWRITE = "READWRITE"
    READONLY = "READONLY"
    READONLY_OVERRIDE = "READONLY_OVERRIDE"
    IMPORT = "IMPORT"


@dataclass(frozen=True)
class SchemaRequest:
    """The body of a register / lookup / compatibility request."""

    schema: str
    schema_type: str
    references: tuple[Reference, ...]
    schema_id: int | None = None
    version: int | None = None


def parse_version(text: str) -> int:
    """``latest``, ``-1`` or 1..2^31-1; InvalidVersion (42202) otherwise. ``LATEST`` stands for latest."""
    if text.lower() == "latest":
        return LATEST
    try:
        value = int(text)
    except ValueError:
        raise InvalidVersion(text) from None
    if value == LATEST or 1 <= value <= MAX_VERSION:
        return value
    raise InvalidVersion(text)


def parse_request(body: Any, *, allow_ids: bool = False) -> SchemaRequest:
    if not isinstance(body, dict):
        raise InvalidSchema("Invalid schema: the request body must be a JSON object with a 'schema' field")
    schema_type = body.get("schemaType") or "AVRO"
    if not isinstance(schema_type, str) or schema_type.upper() not in SCHEMA_TYPES:
        raise InvalidSchema(f"Invalid schema type {schema_type}; this registry supports AVRO")
    schema = body.get("schema")
    if not isinstance(schema, str) or not schema.strip():
        raise InvalidSchema("Empty schema")
    refs_raw = body.get("references") or []
    if not isinstance(refs_raw, list):
        raise InvalidSchema("Invalid schema: 'references' must be a list")
    refs: list[Reference] = []
    for ref in refs_raw:
        if (
            not isinstance(ref, dict)
            or not isinstance(ref.get("name"), str)
            or not isinstance(ref.get("subject"), str)
            or not isinstance(ref.get("version"), int)
            or isinstance(ref.get("version"), bool)
        ):
            raise InvalidSchema(
                f"Invalid schema reference {json.dumps(ref)}: needs name, subject and version"
            )
        refs.append(Reference(name=ref["name"], subject=ref["subject"], version=ref["version"]))
    schema_id = body.get("id") if allow_ids else None
    version = body.get("version") if allow_ids else None
    for key, value in (("id", schema_id), ("version", version)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidSchema(f"Invalid schema: '{key}' must be a positive integer")
    return SchemaRequest(
        schema=schema,
        schema_type=schema_type.upper(),
        references=tuple(refs),
        schema_id=schema_id if isinstance(schema_id, int) and schema_id > 0 else None,
        version=version if isinstance(version, int) and version > 0 else None,
    )


def _fingerprint(schema_type: str, text: str, references: tuple[Reference, ...]) -> str:
    digest = hashlib.sha256()
    digest.update(schema_type.encode())
    digest.update(b"\0" + text.encode())
    digest.update(b"\0" + json.dumps([r.to_json() for r in references]).encode())
    return digest.hexdigest()


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


class RegistryService:
    def __init__(
        self, storage: Storage, default_level: Level = DEFAULT_LEVEL, cache_size: int = 2048
    ) -> None:
        self.storage = storage
        self.default_level = default_level
        self._parsed: OrderedDict[int, ParsedSchema] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    # ---- parsing helpers ---------------------------------------------------------------------

    def _reference_texts(
        self, tx: Tx, refs: tuple[Reference, ...], seen: set[int] | None = None
    ) -> list[str]:
        """Texts of the referenced schemas, dependencies first, each once."""
        seen = set() if seen is None else seen
        texts: list[str] = []
        for ref in refs:
            row = self._version_row(tx, ref.subject, ref.version, include_deleted=True)
            if row is None:
                raise InvalidSchema(
                    f"Invalid schema: reference '{ref.name}' to subject '{ref.subject}' version "
                    f"{ref.version} was not found"
                )
            if row.schema_id in seen:
                continue
            stored = tx.schema(row.schema_id)
            assert stored is not None
            texts.extend(self._reference_texts(tx, stored.references, seen))
            seen.add(row.schema_id)
            texts.append(stored.text)
        return texts

    def _parse_new(self, tx: Tx, req: SchemaRequest) -> ParsedSchema:
        return avro_schema.parse(req.schema, self._reference_texts(tx, req.references))

    def _parsed_stored(self, tx: Tx, stored: StoredSchema) -> ParsedSchema:
        with self._cache_lock:
            hit = self._parsed.get(stored.id)
            if hit is not None:
                self._parsed.move_to_end(stored.id)
                return hit
        parsed = avro_schema.parse(stored.text, self._reference_texts(tx, stored.references))
        with self._cache_lock:
            self._parsed[stored.id] = parsed
            while len(self._parsed) > self._cache_size:
                self._parsed.popitem(last=False)
        return parsed

    @staticmethod
    def _version_row(tx: Tx, subject: str, version: int, *, include_deleted: bool) -> VersionRow | None:
        rows = tx.versions(subject, include_deleted=include_deleted)
        if version == LATEST:
            return rows[-1] if rows else None
        return next((r for r in rows if r.version == version), None)

    def _level(self, tx: Tx, subject: str) -> Level:
        value = tx.get_setting("configs", subject) or tx.get_setting("configs", GLOBAL)
        return Level.parse(value) or self.default_level

    @staticmethod
    def _mode(tx: Tx, subject: str) -> Mode:
        value = tx.get_setting("modes", subject) or tx.get_setting("modes", GLOBAL)
        return Mode(value) if value is not None and value in Mode.__members__ else Mode.READWRITE

    def _text_for(self, parsed: ParsedSchema, normalize: bool) -> str:
        return avro_schema.normalized_text(parsed) if normalize else parsed.canonical

    def _find_in_subject(
        self, tx: Tx, subject: str, req: SchemaRequest, parsed: ParsedSchema, normalize: bool, deleted: bool
    ) -> tuple[VersionRow, StoredSchema] | None:
        """The newest version of ``subject`` holding the same schema (same text and references)."""
        wanted = self._text_for(parsed, normalize)
        for row in reversed(tx.versions(subject, include_deleted=deleted)):
            stored = tx.schema(row.schema_id)
            if stored is None or stored.references != req.references:
                continue
            text = stored.text
            if normalize and text != wanted:
                text = avro_schema.normalized_text(self._parsed_stored(tx, stored))
            if text == wanted:
                return row, stored
        return None

    def _existing_for_check(self, tx: Tx, rows: list[VersionRow]) -> list[tuple[int, Any]]:
        out = []
        for row in rows:
            stored = tx.schema(row.schema_id)
            assert stored is not None
            out.append((row.version, self._parsed_stored(tx, stored).parsed))
        return out

    @staticmethod
    def _schema_json(stored: StoredSchema) -> dict[str, Any]:
        body: dict[str, Any] = {"schema": stored.text}
        if stored.schema_type != "AVRO":
            body["schemaType"] = stored.schema_type
        if stored.references:
            body["references"] = [r.to_json() for r in stored.references]
        return body

    def _version_json(self, row: VersionRow, stored: StoredSchema) -> dict[str, Any]:
        return {
            "subject": row.subject,
            "version": row.version,
            "id": row.schema_id,
            **self._schema_json(stored),
        }

    # ---- subjects and versions ---------------------------------------------------------------

    def register(self, subject: str, body: Any, *, normalize: bool) -> dict[str, Any]:
        req = parse_request(body, allow_ids=True)
        with self.storage.write() as tx:
            mode = self._mode(tx, subject)
            if mode in (Mode.READONLY, Mode.READONLY_OVERRIDE):
                raise OperationNotPermitted(f"Subject {subject} is in read-only mode")
            if req.schema_id is not None and mode is not Mode.IMPORT:
                raise OperationNotPermitted(f"Subject {subject} is not in import mode")
            parsed = self._parse_new(tx, req)
            text = self._text_for(parsed, normalize)
            found = self._find_in_subject(tx, subject, req, parsed, normalize, deleted=False)
            if found is not None and (req.schema_id is None or req.schema_id == found[0].schema_id):
                return {"id": found[0].schema_id}
            fingerprint = _fingerprint(req.schema_type, text, req.references)
            existing = tx.schema_by_fingerprint(fingerprint)
            all_rows = tx.versions(subject, include_deleted=True)
            if mode is Mode.IMPORT:
                schema_id = self._import_id(tx, req, existing)
                version = req.version or ((all_rows[-1].version + 1) if all_rows else 1)
                if any(r.version == version for r in all_rows):
                    raise OperationNotPermitted(
                        f"Overwrite new schema with version {version} of subject {subject} is not permitted."
                    )
            else:
                live = [r for r in all_rows if not r.deleted]
                level = self._level(tx, subject)
                report = check(level, parsed.parsed, self._existing_for_check(tx, live))
                if not report.is_compatible:
                    raise IncompatibleSchema(subject, report.messages)
                schema_id = existing.id if existing else None
                version = (max(r.version for r in all_rows) + 1) if all_rows else 1
            if schema_id is None or existing is None:
                schema_id = tx.insert_schema(req.schema_type, text, req.references, fingerprint, schema_id)
            tx.insert_version(subject, version, schema_id)
            return {"id": schema_id}

    @staticmethod
    def _import_id(tx: Tx, req: SchemaRequest, existing: StoredSchema | None) -> int | None:
        if req.schema_id is None:
            return existing.id if existing else None
        holder = tx.schema(req.schema_id)
        if holder is not None and (existing is None or holder.id != existing.id):
            raise OperationNotPermitted(f"Overwrite new schema with id {req.schema_id} is not permitted.")
        if holder is None and existing is not None:
            raise OperationNotPermitted(
                f"Schema is already registered with id {existing.id}; "
                f"it cannot be imported as {req.schema_id}."
            )
        return req.schema_id

    def lookup(self, subject: str, body: Any, *, normalize: bool, deleted: bool) -> dict[str, Any]:
        req = parse_request(body)
        with self.storage.read() as tx:
            if not tx.versions(subject, include_deleted=deleted):
                raise SubjectNotFound(subject)
            parsed = self._parse_new(tx, req)
            found = self._find_in_subject(tx, subject, req, parsed, normalize, deleted)
            if found is None:
                raise SchemaNotFound()
            return self._version_json(*found)

    def subjects(self, *, prefix: str, deleted: bool, deleted_only: bool) -> list[str]:
        with self.storage.read() as tx:
            rows = tx.all_versions(include_deleted=True)
        live = {r.subject for r in rows if not r.deleted}
        every = {r.subject for r in rows}
        chosen = (every - live) if deleted_only else every if deleted else live
        return sorted(s for s in chosen if s.startswith(prefix))

    def versions(self, subject: str, *, deleted: bool, deleted_only: bool) -> list[int]:
        with self.storage.read() as tx:
            rows = tx.versions(subject, include_deleted=True)
        if not rows:
            raise SubjectNotFound(subject)
        if deleted_only:
            return [r.version for r in rows if r.deleted]
        chosen = [r.version for r in rows if deleted or not r.deleted]
        if not chosen:
            raise SubjectNotFound(subject)
        return chosen

    def get_version(self, subject: str, version: str, *, deleted: bool) -> dict[str, Any]:
        number = parse_version(version)
        with self.storage.read() as tx:
            if not tx.versions(subject, include_deleted=deleted):
                raise SubjectNotFound(subject)
            row = self._version_row(tx, subject, number, include_deleted=deleted)
            if row is None:
                raise VersionNotFound(version)
            stored = tx.schema(row.schema_id)
            assert stored is not None
            return self._version_json(row, stored)

    def referenced_by(self, subject: str, version: str) -> list[int]:
        number = parse_version(version)
        with self.storage.read() as tx:
            if not tx.versions(subject, include_deleted=True):
                raise SubjectNotFound(subject)
            row = self._version_row(tx, subject, number, include_deleted=True)
            if row is None:
                raise VersionNotFound(version)
            return tx.referencing_schema_ids(subject, row.version)

    def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        with self.storage.write() as tx:
            if self._mode(tx, subject) in (Mode.READONLY, Mode.READONLY_OVERRIDE):
                raise OperationNotPermitted(f"Subject {subject} is in read-only mode")
            rows = tx.versions(subject, include_deleted=True)
            if not rows:
                raise SubjectNotFound(subject)
            live = [r for r in rows if not r.deleted]
            if permanent and live:
                raise SubjectNotSoftDeleted(subject)
            if not permanent and not live:
                raise SubjectSoftDeleted(subject)
            targets = rows if permanent else live
            for row in targets:
                self._refuse_if_referenced(tx, row)
            for row in targets:
                if permanent:
                    tx.remove_version(subject, row.version)
                else:
                    tx.mark_deleted(subject, row.version)
            if permanent:
                tx.delete_setting("configs", subject)
                tx.delete_setting("modes", subject)
            return [r.version for r in targets]

    def delete_version(self, subject: str, version: str, *, permanent: bool) -> int:
        number = parse_version(version)
        with self.storage.write() as tx:
            if self._mode(tx, subject) in (Mode.READONLY, Mode.READONLY_OVERRIDE):
                raise OperationNotPermitted(f"Subject {subject} is in read-only mode")
            if not tx.versions(subject, include_deleted=True):
                raise SubjectNotFound(subject)
            # "latest" means the newest live version for a soft delete; a number may name a deleted one.
            row = self._version_row(tx, subject, number, include_deleted=permanent or number != LATEST)
            if row is None:
                raise VersionNotFound(version)
            if permanent and not row.deleted:
                raise VersionNotSoftDeleted(subject, row.version)
            if not permanent and row.deleted:
                raise VersionSoftDeleted(subject, row.version)
            self._refuse_if_referenced(tx, row)
            if permanent:
                tx.remove_version(subject, row.version)
            else:
                tx.mark_deleted(subject, row.version)
            return row.version

    @staticmethod
    def _refuse_if_referenced(tx: Tx, row: VersionRow) -> None:
        ids = tx.referencing_schema_ids(row.subject, row.version)
        if ids:
            raise ReferenceExists(
                f"One or more references exist to the schema {{subject={row.subject}, version={row.version}}}"
                f" (referenced by schema ids {ids})"
            )

    # ---- schemas by id -----------------------------------------------------------------------

    def _stored_by_id(self, tx: Tx, schema_id: int) -> StoredSchema:
        stored = tx.schema(schema_id)
        if stored is None or not tx.versions_of_schema(schema_id, include_deleted=True):
            raise SchemaNotFound(schema_id)
        return stored

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        with self.storage.read() as tx:
            return self._schema_json(self._stored_by_id(tx, schema_id))

    def raw_schema_by_id(self, schema_id: int) -> Any:
        with self.storage.read() as tx:
            return json.loads(self._stored_by_id(tx, schema_id).text)

    def subjects_of_schema(self, schema_id: int, *, deleted: bool, subject: str | None) -> list[str]:
        with self.storage.read() as tx:
            self._stored_by_id(tx, schema_id)
            rows = tx.versions_of_schema(schema_id, include_deleted=deleted)
        return sorted({r.subject for r in rows if subject is None or r.subject == subject})

    def versions_of_schema(
        self, schema_id: int, *, deleted: bool, subject: str | None
    ) -> list[dict[str, Any]]:
        with self.storage.read() as tx:
            self._stored_by_id(tx, schema_id)
            rows = tx.versions_of_schema(schema_id, include_deleted=deleted)
        return [{"subject": r.subject, "version": r.version} for r in rows if subject in (None, r.subject)]

    def list_schemas(self, *, prefix: str, deleted: bool, latest_only: bool) -> list[dict[str, Any]]:
        with self.storage.read() as tx:
            rows = [r for r in tx.all_versions(include_deleted=deleted) if r.subject.startswith(prefix)]
            if latest_only:
                latest: dict[str, VersionRow] = {}
                for r in rows:
                    latest[r.subject] = r
                rows = list(latest.values())
            out = []
            for r in rows:
                stored = tx.schema(r.schema_id)
                assert stored is not None
                out.append(self._version_json(r, stored))
            return out

    # ---- compatibility -----------------------------------------------------------------------

    def test_compatibility(
        self, subject: str, version: str | None, body: Any, *, verbose: bool, normalize: bool
    ) -> dict[str, Any]:
        number = parse_version(version) if version is not None else None
        req = parse_request(body)
        with self.storage.read() as tx:
            parsed = self._parse_new(tx, req)
            live = tx.versions(subject, include_deleted=False)
            level = self._level(tx, subject)
            if number is None or number == LATEST:
                report = check(level, parsed.parsed, self._existing_for_check(tx, live))
            else:
                if not live:
                    raise SubjectNotFound(subject)
                row = self._version_row(tx, subject, number, include_deleted=False)
                if row is None:
                    raise VersionNotFound(number)
                only = Level(level.value.removesuffix("_TRANSITIVE"))
                report = check(only, parsed.parsed, self._existing_for_check(tx, [row]))
        answer: dict[str, Any] = {"is_compatible": report.is_compatible}
        if verbose:
            answer["messages"] = report.messages
        return answer

    # ---- config and mode ---------------------------------------------------------------------

    def get_config(self, subject: str | None, *, default_to_global: bool) -> dict[str, Any]:
        value: str | None
        with self.storage.read() as tx:
            if subject is None:
                value = tx.get_setting("configs", GLOBAL) or self.default_level.value
            else:
                value = tx.get_setting("configs", subject)
                if value is None:
                    if not default_to_global:
                        raise CompatibilityNotConfigured(subject)
                    value = tx.get_setting("configs", GLOBAL) or self.default_level.value
        return {"compatibilityLevel": value}

    def set_config(self, subject: str | None, body: Any) -> dict[str, Any]:
        raw = None
        if isinstance(body, dict):
            raw = body.get("compatibility", body.get("compatibilityLevel"))
        level = Level.parse(raw)
        if level is None:
            raise InvalidCompatibilityLevel(raw)
        with self.storage.write() as tx:
            tx.set_setting("configs", subject or GLOBAL, level.value)
        return {"compatibility": level.value}

    def delete_config(self, subject: str | None) -> dict[str, Any]:
        with self.storage.write() as tx:
            key = subject or GLOBAL
            old = tx.get_setting("configs", key)
            if subject is not None and old is None:
                if not tx.versions(subject, include_deleted=True):
                    raise SubjectNotFound(subject)
                raise CompatibilityNotConfigured(subject)
            tx.delete_setting("configs", key)
        return {"compatibilityLevel": old or self.default_level.value}

    def get_mode(self, subject: str | None, *, default_to_global: bool) -> dict[str, Any]:
        with self.storage.read() as tx:
            if subject is None:
                return {"mode": tx.get_setting("modes", GLOBAL) or Mode.READWRITE.value}
            value = tx.get_setting("modes", subject)
            if value is None:
                if not default_to_global:
                    raise ModeNotConfigured(subject)
                value = tx.get_setting("modes", GLOBAL) or Mode.READWRITE.value
            return {"mode": value}

    def set_mode(self, subject: str | None, body: Any, *, force: bool) -> dict[str, Any]:
        raw = body.get("mode") if isinstance(body, dict) else None
        if not isinstance(raw, str) or raw.strip().upper() not in Mode.__members__:
            raise InvalidMode(raw)
        mode = Mode(raw.strip().upper())
        with self.storage.write() as tx:
            if mode is Mode.IMPORT and not force:
                rows = (
                    tx.all_versions(include_deleted=False)
                    if subject is None
                    else tx.versions(subject, include_deleted=False)
                )
                if rows:
                    raise OperationNotPermitted(
                        "Cannot import since found existing subjects; use force=true to override"
                    )
            tx.set_setting("modes", subject or GLOBAL, mode.value)
        return {"mode": mode.value}

    def delete_mode(self, subject: str) -> dict[str, Any]:
        with self.storage.write() as tx:
            old = tx.get_setting("modes", subject)
            if old is None:
                raise ModeNotConfigured(subject)
            tx.delete_setting("modes", subject)
        return {"mode": old}


def flag(value: str | None) -> bool:
    """A boolean query parameter as clients send it (true/True/1)."""
    return _truthy(value)
