"""The bank's PostgreSQL as a CDC source: prerequisites, replication slot, publication, signals.

The tables come from ``producers.bankdb.DDL`` (created here when missing, under the producers' own
advisory lock, so whichever of the CDC engine and the producers starts first creates them). The
signal table is Debezium's documented layout (id, type, data). The slot and the publication are
created by Debezium itself from the connector file (publication.autocreate.mode=filtered);
``drop_slot`` removes both, because an unused slot keeps the server from recycling WAL.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdc.connector import EngineConfig
from cdc.errors import SourceNotReadyError
from producers.bankdb import DDL, connect
from producers.errors import SourceDbUnavailableError
from riverbank.settings import Settings

SIGNAL_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    id   varchar(64) PRIMARY KEY,
    type varchar(32) NOT NULL,
    data varchar(2048)
)
"""

# Written by the connector's heartbeat.action.query: a change in a published table lets the slot
# advance while only unpublished tables (balance_movements) change, so WAL is not retained.
HEARTBEAT_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    id integer PRIMARY KEY,
    ts timestamptz NOT NULL
)
"""


@dataclass(frozen=True)
class SlotInfo:
    slot_name: str
    active: bool
    #: Bytes of WAL between the server's current position and what the slot confirmed.
    lag_bytes: int | None
    #: WAL the server keeps for this slot.
    retained_bytes: int | None
    confirmed_flush_lsn: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _qualified(name: str) -> sql.Composable:
    schema, _, table = name.rpartition(".")
    return sql.Identifier(schema or "public", table)


def prepare_postgres(
    settings: Settings, config: EngineConfig, stop: threading.Event, timeout_s: float = 300
) -> None:
    """Wait for the database, then make sure the bank tables and the signal table exist."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with connect(settings.source_db) as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('riverbank.producers.ddl'))")
                    conn.execute(DDL)
                    signal_table = config.properties.get("signal.data.collection")
                    if signal_table:
                        conn.execute(sql.SQL(SIGNAL_TABLE_DDL).format(table=_qualified(signal_table)))
                    heartbeat_query = config.properties.get("heartbeat.action.query", "")
                    heartbeat_table_name = heartbeat_table(heartbeat_query)
                    if heartbeat_table_name:
                        conn.execute(
                            sql.SQL(HEARTBEAT_TABLE_DDL).format(table=_qualified(heartbeat_table_name))
                        )
                _set_replica_identity(conn, config.properties.get("replica.identity.autoset.values", ""))
            return
        except SourceDbUnavailableError as exc:
            if stop.is_set() or time.monotonic() > deadline:
                raise SourceNotReadyError(f"source database not reachable: {exc}") from None
            stop.wait(1.0)


_IDENTITY_CODES = {"FULL": "f", "DEFAULT": "d", "NOTHING": "n"}


def _set_replica_identity(conn: psycopg.Connection[Any], autoset: str) -> None:
    """Apply the connector's replica.identity.autoset.values before the slot exists.

    Debezium applies them too, but only once its task runs: a change committed in between would be
    logged without its before-image. Only tables whose identity differs are altered (ALTER TABLE
    takes an exclusive lock).
    """
    for entry in filter(None, (e.strip() for e in autoset.split(","))):
        table, _, identity = entry.rpartition(":")
        code = _IDENTITY_CODES.get(identity.strip().upper())
        if code is None:  # INDEX <name> is left to Debezium
            continue
        row = conn.execute(
            "SELECT relreplident FROM pg_class WHERE oid = to_regclass(%s)", (table,)
        ).fetchone()
        if row is not None and row[0] != code:
            conn.execute(
                sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(
                    _qualified(table), sql.SQL(identity.upper())
                )
            )


def heartbeat_table(query: str) -> str | None:
    match = re.match(r"\s*INSERT\s+INTO\s+([\w.]+)", query, re.IGNORECASE)
    return match.group(1) if match else None


def slot_info(settings: Settings, slot_name: str) -> SlotInfo | None:
    with connect(settings.source_db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT slot_name, active,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,"
            " confirmed_flush_lsn::text"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (slot_name,),
        ).fetchone()
    return None if row is None else SlotInfo(row[0], bool(row[1]), row[2], row[3], row[4])


def drop_slot(settings: Settings, slot_name: str, publication: str | None) -> dict[str, bool]:
    """Drop the replication slot (terminating a stale walsender on it) and the publication."""
    dropped = {"slot": False, "publication": False}
    with connect(settings.source_db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot_name,)
        ).fetchone()
        if row is not None:
            if row[0] is not None:
                conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                _wait_inactive(conn, slot_name)
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name,))
            dropped["slot"] = True
        if publication:
            exists = conn.execute(
                "SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)
            ).fetchone()
            if exists:
                conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication)))
                dropped["publication"] = True
    return dropped


def _wait_inactive(conn: psycopg.Connection[Any], slot_name: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot_name,)
        ).fetchone()
        if row is None or not row[0]:
            return
        time.sleep(0.1)


def request_incremental_snapshot(settings: Settings, signal_table: str, tables: list[str]) -> str:
    """Insert Debezium's execute-snapshot signal for ``tables``; returns the signal id."""
    signal_id = f"riverbank-{uuid.uuid4()}"
    data = json.dumps({"data-collections": tables, "type": "incremental"})
    with connect(settings.source_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, 'execute-snapshot', %s)").format(
                _qualified(signal_table)
            ),
            (signal_id, data),
        )
    return signal_id
