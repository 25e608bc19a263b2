from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iceberg.catalog import load_lake_catalog
from iceberg.silver.pii import protector
from iceberg.silver.refresh import SilverLake
from riverbank.settings import Settings, load_settings
from tests.medallion.bronze import Bronze


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The autouse isolated_config fixture chdirs into tmp_path: the lake lives under .riverbank/.
    return load_settings(medallion={"buckets": 4})


@pytest.fixture
def catalog(settings: Settings) -> Any:
    return load_lake_catalog(settings)


@pytest.fixture
def bronze(settings: Settings, catalog: Any) -> Bronze:
    return Bronze(settings, catalog)


@pytest.fixture
def silver(settings: Settings, catalog: Any) -> SilverLake:
    return SilverLake(settings, catalog, protector(settings))
