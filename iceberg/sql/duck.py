"""A DuckDB connection that reads Iceberg tables, with extensions only from the installed wheels.

DuckDB's own extension repository is never contacted: autoinstall and autoload are off, the
extensions come from the PyPI wheels duckdb-extension-{avro,iceberg,httpfs} of DuckDB's exact
version (avro first: iceberg reads manifests through it), and the extension directory is private
to the connection. s3:// warehouses are read through httpfs with a secret built from the same
settings as the pyiceberg catalog (credentials never leave the process or reach a message).
"""

from __future__ import annotations

import importlib.resources
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from iceberg.catalog import catalog_properties
from riverbank.errors import ConfigError, MissingDependencyError
from riverbank.settings import Settings

if TYPE_CHECKING:
    import duckdb

EXTENSIONS = ("avro", "iceberg", "httpfs")


def extension_path(name: str, duckdb_version: str) -> Path:
    package = f"duckdb_extension_{name}"
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise MissingDependencyError(
            f"the DuckDB {name} extension (PyPI duckdb-extension-{name}=={duckdb_version})",
            "run `make setup` (uv sync, lake group)",
        ) from None
    path = Path(str(root)) / "extensions" / f"v{duckdb_version}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise MissingDependencyError(
            f"the DuckDB {name} extension for DuckDB {duckdb_version} ({path.name} not in {package})",
            f"install duckdb-extension-{name}=={duckdb_version}, the version of duckdb",
        )
    return path


class LakeConnection:
    """An in-memory DuckDB session (UTC, like Athena and Redshift) ready to scan Iceberg metadata."""

    def __init__(self, settings: Settings) -> None:
        import duckdb

        self._tmp = tempfile.TemporaryDirectory(prefix="riverbank-duckdb-")
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "extension_directory": self._tmp.name,
            }
        )
        remote = urlsplit(settings.lake.warehouse or "").scheme in ("s3", "s3a")
        try:
            # httpfs only for s3:// warehouses: each extension costs ~0.5-1.5 s to load.
            for name in EXTENSIONS if remote else EXTENSIONS[:2]:
                self.con.execute(f"LOAD '{_quote(str(extension_path(name, duckdb.__version__)))}'")
            self.con.execute("SET TimeZone = 'UTC'")
            # DuckDB's progress bar writes to the terminal: it would corrupt --json / --csv output.
            self.con.execute("SET enable_progress_bar = false")
            if remote:
                _create_s3_secret(self.con, settings)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.con.close()
        self._tmp.cleanup()

    def __enter__(self) -> LakeConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _create_s3_secret(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    props = catalog_properties(settings)
    options = {"TYPE": "s3", "REGION": props.get("s3.region") or settings.aws.region or "us-east-1"}
    key_id, secret, token = props.get("s3.access-key-id"), props.get("s3.secret-access-key"), None
    if not key_id:
        key_id, secret, token = _aws_chain_credentials(settings)
    if key_id and secret:
        options.update({"KEY_ID": key_id, "SECRET": secret})
        if token:
            options["SESSION_TOKEN"] = token
    endpoint = props.get("s3.endpoint")
    if endpoint:
        parts = urlsplit(endpoint)
        if not parts.netloc:
            raise ConfigError(
                "lake.s3_endpoint", f"expected http(s)://host:port, got {endpoint!r}", "settings"
            )
        options.update(
            {
                "ENDPOINT": parts.netloc,
                "URL_STYLE": "path",
                "USE_SSL": "true" if parts.scheme == "https" else "false",
            }
        )
    body = ", ".join(
        f"{k} {v}" if k in ("TYPE", "USE_SSL") else f"{k} '{_quote(v)}'" for k, v in options.items()
    )
    con.execute(f"CREATE OR REPLACE SECRET riverbank_lake ({body})")


def _aws_chain_credentials(settings: Settings) -> tuple[str | None, str | None, str | None]:
    """Credentials from the standard AWS chain (environment, shared config, instance role)."""
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - boto3 comes with pyiceberg[glue]
        return None, None, None
    session = boto3.Session(profile_name=settings.aws.profile, region_name=settings.aws.region)
    credentials = session.get_credentials()
    if credentials is None:
        return None, None, None
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token
