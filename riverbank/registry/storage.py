"""Durable storage of schemas, subject versions, configs and modes.

:class:`Storage` is the small interface the service needs; :class:`SqliteStorage` implements it on
one sqlite file. Every write runs in a ``BEGIN IMMEDIATE`` transaction, so id and version allocation
(``MAX + 1`` inside that transaction) cannot hand out the same number twice, whether the writers
are threads of one server or several processes sharing the file. Schema ids are global and never
reused: a schema's row is kept even after every version that used it is permanently deleted, so
registering the same schema again returns the same id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from riverbank.registry.errors import StoreError

GLOBAL = ""  # the config/mode row that is not tied to a subject


@dataclass(frozen=True)
class Reference:
    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class StoredSchema:
    id: int
    schema_type: str
    text: str
    references: tuple[Reference, ...]
    fingerprint: str


@dataclass(frozen=True)
class VersionRow:
    subject: str
    version: int
    schema_id: int
    deleted: bool


class Tx(ABC):
    """Operations available inside one read or write transaction."""

    @abstractmethod
    def schema(self, schema_id: int) -> StoredSchema | None: ...

    @abstractmethod
    def schema_by_fingerprint(self, fingerprint: str) -> StoredSchema | None: ...

    @abstractmethod
    def insert_schema(
        self,
        schema_type: str,
        text: str,
        references: tuple[Reference, ...],
        fingerprint: str,
        schema_id: int | None = None,
    ) -> int: ...

    @abstractmethod
    def versions(self, subject: str, *, include_deleted: bool) -> list[VersionRow]: ...

    @abstractmethod
    def versions_of_schema(self, schema_id: int, *, include_deleted: bool) -> list[VersionRow]: ...

    @abstractmethod
    def all_versions(self, *, include_deleted: bool) -> list[VersionRow]: ...

    @abstractmethod
    def insert_version(self, subject: str, version: int, schema_id: int) -> None: ...

    @abstractmethod
    def mark_deleted(self, subject: str, version: int) -> None: ...

    @abstractmethod
    def remove_version(self, subject: str, version: int) -> None: ...

    @abstractmethod
    def referencing_schema_ids(self, subject: str, version: int) -> list[int]: ...

    @abstractmethod
    def get_setting(self, table: str, subject: str) -> str | None: ...

    @abstractmethod
    def set_setting(self, table: str, subject: str, value: str) -> None: ...

    @abstractmethod
    def delete_setting(self, table: str, subject: str) -> None: ...


class Storage(ABC):
    @abstractmethod
    def read(self) -> AbstractContextManager[Tx]:
        """A context manager giving a consistent read view."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Tx]:
        """A context manager giving an exclusive write transaction, committed on success."""

    @abstractmethod
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY,
    schema_type TEXT NOT NULL,
    text TEXT NOT NULL,
    refs TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE INDEX IF NOT EXISTS versions_by_schema ON versions(schema_id);
CREATE TABLE IF NOT EXISTS refs (
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    ref_subject TEXT NOT NULL,
    ref_version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_by_target ON refs(ref_subject, ref_version);
CREATE TABLE IF NOT EXISTS configs (subject TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS modes (subject TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_SETTING_TABLES = frozenset({"configs", "modes"})


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    @staticmethod
    def _schema_row(row: tuple[int, str, str, str, str] | None) -> StoredSchema | None:
        if row is None:
            return None
        refs = tuple(Reference(**r) for r in json.loads(row[3]))
        return StoredSchema(id=row[0], schema_type=row[1], text=row[2], references=refs, fingerprint=row[4])

    def schema(self, schema_id: int) -> StoredSchema | None:
        cur = self._c.execute(
            "SELECT id, schema_type, text, refs, fingerprint FROM schemas WHERE id = ?", (schema_id,)
        )
        return self._schema_row(cur.fetchone())

    def schema_by_fingerprint(self, fingerprint: str) -> StoredSchema | None:
        cur = self._c.execute(
            "SELECT id, schema_type, text, refs, fingerprint FROM schemas WHERE fingerprint = ?",
            (fingerprint,),
        )
        return self._schema_row(cur.fetchone())

    def insert_schema(
        self,
        schema_type: str,
        text: str,
        references: tuple[Reference, ...],
        fingerprint: str,
        schema_id: int | None = None,
    ) -> int:
        if schema_id is None:
            (schema_id,) = self._c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM schemas").fetchone()
        refs = json.dumps([r.to_json() for r in references])
        self._c.execute(
            "INSERT INTO schemas (id, schema_type, text, refs, fingerprint) VALUES (?, ?, ?, ?, ?)",
            (schema_id, schema_type, text, refs, fingerprint),
        )
        self._c.executemany(
            "INSERT INTO refs (schema_id, ref_subject, ref_version) VALUES (?, ?, ?)",
            [(schema_id, r.subject, r.version) for r in references],
        )
        assert schema_id is not None
        return int(schema_id)

    @staticmethod
    def _version_rows(rows: list[tuple[str, int, int, int]]) -> list[VersionRow]:
        return [VersionRow(subject=r[0], version=r[1], schema_id=r[2], deleted=bool(r[3])) for r in rows]

    def versions(self, subject: str, *, include_deleted: bool) -> list[VersionRow]:
        sql = "SELECT subject, version, schema_id, deleted FROM versions WHERE subject = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        return self._version_rows(self._c.execute(sql + " ORDER BY version", (subject,)).fetchall())

    def versions_of_schema(self, schema_id: int, *, include_deleted: bool) -> list[VersionRow]:
        sql = "SELECT subject, version, schema_id, deleted FROM versions WHERE schema_id = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        return self._version_rows(
            self._c.execute(sql + " ORDER BY subject, version", (schema_id,)).fetchall()
        )

    def all_versions(self, *, include_deleted: bool) -> list[VersionRow]:
        sql = "SELECT subject, version, schema_id, deleted FROM versions"
        if not include_deleted:
            sql += " WHERE deleted = 0"
        return self._version_rows(self._c.execute(sql + " ORDER BY subject, version").fetchall())

    def insert_version(self, subject: str, version: int, schema_id: int) -> None:
        self._c.execute(
            "INSERT INTO versions (subject, version, schema_id, deleted) VALUES (?, ?, ?, 0)",
            (subject, version, schema_id),
        )

    def mark_deleted(self, subject: str, version: int) -> None:
        self._c.execute(
            "UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?", (subject, version)
        )

    def remove_version(self, subject: str, version: int) -> None:
        self._c.execute("DELETE FROM versions WHERE subject = ? AND version = ?", (subject, version))

    def referencing_schema_ids(self, subject: str, version: int) -> list[int]:
        rows = self._c.execute(
            "SELECT DISTINCT r.schema_id FROM refs r JOIN versions v ON v.schema_id = r.schema_id "
            "WHERE r.ref_subject = ? AND r.ref_version = ? AND v.deleted = 0 ORDER BY r.schema_id",
            (subject, version),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def get_setting(self, table: str, subject: str) -> str | None:
        assert table in _SETTING_TABLES
        row = self._c.execute(f"SELECT value FROM {table} WHERE subject = ?", (subject,)).fetchone()  # noqa: S608
        return None if row is None else str(row[0])

    def set_setting(self, table: str, subject: str, value: str) -> None:
        assert table in _SETTING_TABLES
        self._c.execute(
            f"INSERT INTO {table} (subject, value) VALUES (?, ?) "  # noqa: S608
            "ON CONFLICT(subject) DO UPDATE SET value = excluded.value",
            (subject, value),
        )

    def delete_setting(self, table: str, subject: str) -> None:
        assert table in _SETTING_TABLES
        self._c.execute(f"DELETE FROM {table} WHERE subject = ?", (subject,))  # noqa: S608


class SqliteStorage(Storage):
    """One sqlite file in WAL mode with synchronous=FULL: a committed registration survives a crash."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE for writes).
            self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"Error opening the registry store {path}: {exc}") from exc
        # One connection shared by the server's threads: the lock serialises its use.
        self._lock = threading.RLock()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock, self._transaction("BEGIN") as tx:
            yield tx

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._lock, self._transaction("BEGIN IMMEDIATE") as tx:
            yield tx

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Tx]:
        try:
            self._conn.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"Error in the backend data store: {exc}") from exc
        try:
            yield _SqliteTx(self._conn)
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise StoreError(f"Error in the backend data store: {exc}") from exc
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise StoreError(f"Error in the backend data store: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
