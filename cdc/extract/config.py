"""The extractor's configuration file (connect/extract.toml), next to the connector files.

    topic_prefix = "extract.bankdb"     # topics are <topic_prefix>.<schema>.<table>
    interval_s = 30                     # pause between passes
    batch_size = 5000                   # rows per query and per Kafka flush
    safety_lag_s = 5                    # rows newer than now - safety_lag wait for the next pass

    [source]
    url = "postgresql+psycopg://reader:${env:LOANS_DB_PASSWORD}@loans-db/loans"  # SQLAlchemy URL
    schema = "public"

    [[tables]]
    name = "customers"
    cursor_column = "updated_at"        # when the row last changed
    soft_delete_column = "deleted_at"   # optional: a non-null/true value means "deleted"
    primary_key = ["customer_id"]       # optional: read from the database when left out

Without ``source.url`` the source is the bank's PostgreSQL from the ``source_db`` settings.
Placeholders ``${env:NAME}`` and ``${file:PATH:KEY}`` work as in connector files.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cdc.connector import Connector, resolve_path, resolve_placeholders
from riverbank.errors import ConfigError

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TableConfig(_Model):
    name: str = Field(pattern=_NAME)
    cursor_column: str = Field(default="updated_at", pattern=_NAME)
    soft_delete_column: str | None = Field(default=None, pattern=_NAME)
    primary_key: tuple[str, ...] | None = None


class SourceConfig(_Model):
    url: str | None = None
    schema_name: str = Field(default="public", alias="schema", pattern=_NAME)


class ExtractConfig(_Model):
    topic_prefix: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    interval_s: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=5000, ge=1)
    safety_lag_s: float = Field(default=5.0, ge=0)
    source: SourceConfig = Field(default_factory=SourceConfig)
    tables: tuple[TableConfig, ...] = Field(min_length=1)

    def topic(self, table: TableConfig) -> str:
        return f"{self.topic_prefix}.{self.source.schema_name}.{table.name}"


@dataclass(frozen=True)
class LoadedConfig:
    config: ExtractConfig
    path: Path
    #: The source URL with placeholders resolved (None: the source_db settings).
    url: str | None


def load_extract_config(path: Path) -> LoadedConfig:
    path = resolve_path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("cdc.extract_config", f"{path} does not exist", str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("cdc.extract_config", f"not valid TOML: {exc}", str(path)) from None
    try:
        config = ExtractConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(key, first["msg"], str(path)) from None
    url = config.source.url
    if url is not None:
        holder = Connector(name=path.stem, config={}, path=path)
        url = resolve_placeholders(holder, "source.url", url)
    return LoadedConfig(config, path, url)


def redact(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
