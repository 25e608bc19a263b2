"""What `riverbank cdc status` shows, and the operator actions on a connector's source."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cdc import source
from cdc.connector import POSTGRES_CONNECTOR, engine_config, load_connector, resolve_path
from cdc.status import all_statuses
from producers.errors import SourceDbUnavailableError
from riverbank.errors import ConfigError
from riverbank.settings import Settings


def _iso(ms: int | None) -> str | None:
    return (
        None
        if ms is None
        else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
    )


def connector_report(settings: Settings) -> list[dict[str, Any]]:
    """Each connector that ran under this state directory; slot lag for PostgreSQL connectors."""
    rows = []
    default = load_connector(resolve_path(settings.cdc.connector))
    for status in all_statuses(settings):
        row = status.as_dict()
        row["last_event_time"] = _iso(status.last_event_ms)
        row["slot"] = None
        if status.connector == default.name and default.connector_class == POSTGRES_CONNECTOR:
            slot = default.config.get("slot.name", "debezium")
            try:
                info = source.slot_info(settings, slot)
                row["slot"] = info.as_dict() if info else {"slot_name": slot, "lag_bytes": None}
            except SourceDbUnavailableError as exc:
                row["slot"] = {"slot_name": slot, "lag_bytes": None, "error": str(exc)}
        rows.append(row)
    return rows


def _postgres(settings: Settings, path: Path) -> dict[str, str]:
    config = engine_config(load_connector(path), settings)
    if config.connector.connector_class != POSTGRES_CONNECTOR:
        raise ConfigError(
            "connector.class",
            "slots and signals are handled for PostgreSQL connectors only",
            str(config.connector.path),
        )
    return config.properties


def drop_connector_slot(settings: Settings, path: Path) -> dict[str, Any]:
    props = _postgres(settings, path)
    slot, publication = props.get("slot.name", "debezium"), props.get("publication.name", "dbz_publication")
    dropped = source.drop_slot(settings, slot, publication)
    return {"slot_name": slot, "publication_name": publication, **dropped}


def incremental_snapshot(settings: Settings, path: Path, tables: list[str]) -> str:
    props = _postgres(settings, path)
    signal_table = props.get("signal.data.collection")
    if not signal_table:
        raise ConfigError(
            "signal.data.collection", "is not set: the connector has no signal table", str(path)
        )
    return source.request_incremental_snapshot(settings, signal_table, tables)
