"""The cache of pyiceberg's Transaction.table_metadata (iceberg/metadata_cache.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow as pa
from pyiceberg.table import Transaction

from iceberg.catalog import load_lake_catalog
from riverbank.settings import load_settings


def test_transaction_metadata_is_computed_once_per_state_and_follows_staged_updates(tmp_path: Path) -> None:
    settings = load_settings(
        lake={"catalog_uri": f"sqlite:///{tmp_path / 'catalog.db'}", "warehouse": (tmp_path / "wh").as_uri()}
    )
    catalog = load_lake_catalog(settings)  # installs the cache
    assert Transaction.table_metadata.fget.__module__ == "iceberg.metadata_cache"  # type: ignore[attr-defined]
    catalog.create_namespace("bronze")
    table = catalog.create_table("bronze.t", pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2]}))

    tx = table.transaction()
    first = tx.table_metadata
    assert tx.table_metadata is first  # unchanged state: no new copy
    tx.set_properties({"owner": "risk"})
    staged = tx.table_metadata
    assert staged is not first and staged.properties["owner"] == "risk"
    assert "owner" not in first.properties  # the earlier result was not changed in place
    tx.append(pa.table({"id": [3]}))
    assert len(tx.table_metadata.snapshots) == 2
    tx.commit_transaction()

    # The history is shared between copies of the metadata, not duplicated (frozen models).
    assert copy.deepcopy(table.metadata).snapshots[0] is table.metadata.snapshots[0]

    reloaded = catalog.load_table("bronze.t")
    assert reloaded.properties["owner"] == "risk"
    assert sorted(reloaded.scan().to_arrow()["id"].to_pylist()) == [1, 2, 3]
