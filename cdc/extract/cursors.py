"""Per-table watermark cursors: the last extracted (cursor value, primary key) tuple.

Kept in a local sqlite file under the state directory rather than in a compacted Kafka topic:
reading such a topic back on start needs a reliable end offset, which the embedded broker does not
report (its high watermarks run low), and sqlite commits atomically with fsync. The cursor is
written only after Kafka acknowledged the batch it covers.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cursor:
    value: Any
    key: tuple[Any, ...]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "datetime" in value:
            return dt.datetime.fromisoformat(value["datetime"])
        if "date" in value:
            return dt.date.fromisoformat(value["date"])
        if "decimal" in value:
            return Decimal(value["decimal"])
    return value


class CursorStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cursors"
            " (topic TEXT PRIMARY KEY, cursor TEXT NOT NULL, rows INTEGER NOT NULL)"
        )
        self._db.commit()

    def get(self, topic: str) -> Cursor | None:
        row = self._db.execute("SELECT cursor FROM cursors WHERE topic = ?", (topic,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return Cursor(_decode(data["value"]), tuple(_decode(v) for v in data["key"]))

    def put(self, topic: str, cursor: Cursor, rows: int) -> None:
        text = json.dumps({"value": _encode(cursor.value), "key": [_encode(v) for v in cursor.key]})
        with self._db:
            self._db.execute(
                "INSERT INTO cursors (topic, cursor, rows) VALUES (?, ?, ?)"
                " ON CONFLICT (topic) DO UPDATE"
                " SET cursor = excluded.cursor, rows = cursors.rows + excluded.rows",
                (topic, text, rows),
            )

    def close(self) -> None:
        self._db.close()
