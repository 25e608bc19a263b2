"""The Iceberg catalog from the settings: a SQL catalog (sqlite) locally, Glue + S3 in production.

Everything in Riverbank that touches tables goes through :func:`load_lake_catalog`, so catalog
details never leak into the sink, maintenance or SQL code.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from riverbank.errors import MissingDependencyError
from riverbank.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

# The local S3's development keys (see infra/stack/components.py); a real endpoint takes
# credentials from the standard AWS chain instead.
_LOCAL_S3_KEY = "riverbank-local"


def catalog_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg catalog properties for ``settings.lake``; no secrets are ever written here."""
    lake = settings.lake
    props: dict[str, str] = {"warehouse": lake.warehouse or ""}
    if lake.catalog == "sql":
        props["type"] = "sql"
        props["uri"] = lake.catalog_uri or ""
    else:
        props["type"] = "glue"
        if lake.glue_endpoint:
            props["glue.endpoint"] = lake.glue_endpoint
    region = settings.aws.region
    if region:
        props["client.region"] = region
        props["glue.region"] = region
        props["s3.region"] = region
    if lake.s3_endpoint:
        props["s3.endpoint"] = lake.s3_endpoint
        props["s3.force-virtual-addressing"] = "false"
        if settings.profile == "local" and "AWS_ACCESS_KEY_ID" not in os.environ:
            props["s3.access-key-id"] = _LOCAL_S3_KEY
            props["s3.secret-access-key"] = _LOCAL_S3_KEY
            props.setdefault("s3.region", "us-east-1")
    if settings.aws.profile:
        props["client.profile-name"] = settings.aws.profile
    return props


def load_lake_catalog(settings: Settings) -> Catalog:
    """The catalog named ``lake.catalog_name``; the local sqlite file and warehouse are created."""
    try:
        from pyiceberg.catalog import load_catalog
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("pyiceberg", "run `make setup` (uv sync, lake group)") from exc
    from iceberg import metadata_cache

    metadata_cache.install()  # every writer of the lake comes through here
    props = catalog_properties(settings)
    if props["type"] != "sql":
        return load_catalog(settings.lake.catalog_name, **props)
    _prepare_local(props["uri"], props["warehouse"])
    with _creation_lock(props["uri"]):
        return load_catalog(settings.lake.catalog_name, **props)


@contextlib.contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """Serialize opening a sqlite catalog between processes: pyiceberg checks for its tables, then
    creates them, so processes opening a fresh catalog together (the sink and the refresh loop
    under `riverbank up`) failed with "table ... already exists"."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    with Path(uri.removeprefix("sqlite:///") + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _prepare_local(uri: str, warehouse: str) -> None:
    # SqlCatalog neither creates the sqlite file's folder nor a file:// warehouse root.
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(warehouse)
    if parts.scheme == "file":
        Path(parts.path).mkdir(parents=True, exist_ok=True)


def ensure_namespaces(catalog: Catalog, settings: Settings) -> None:
    """Create the bronze, silver and gold namespaces if they are missing."""
    for namespace in (
        settings.lake.bronze_namespace,
        settings.lake.silver_namespace,
        settings.lake.gold_namespace,
    ):
        ensure_namespace(catalog, namespace)


def ensure_namespace(catalog: Catalog, namespace: str) -> None:
    """Create ``namespace`` if it is missing, also when another process creates it meanwhile (the
    SQL catalog checks, then inserts: the loser of that race gets a unique-constraint error)."""
    try:
        catalog.create_namespace_if_not_exists(namespace)
    except Exception:
        if not catalog.namespace_exists(namespace):
            raise
