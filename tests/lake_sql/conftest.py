from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from iceberg.catalog import load_lake_catalog
from iceberg.sql.query import LakeQueryEngine
from riverbank.settings import Settings, load_settings
from tests.lake_sql.lake_data import LakeData, make_data, write_lake


@pytest.fixture(scope="session")
def lake_data() -> LakeData:
    return make_data()


@pytest.fixture(scope="session")
def file_lake(tmp_path_factory: pytest.TempPathFactory, lake_data: LakeData) -> Settings:
    """A sqlite SQL catalog with a file:// warehouse holding the test tables."""
    root: Path = tmp_path_factory.mktemp("lake")
    settings = load_settings(
        lake={"catalog_uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": (root / "warehouse").as_uri()}
    )
    write_lake(load_lake_catalog(settings), lake_data)
    return settings


@pytest.fixture(scope="session")
def engine(file_lake: Settings) -> Iterator[LakeQueryEngine]:
    with LakeQueryEngine(file_lake) as lake_engine:
        yield lake_engine


@pytest.fixture(scope="session")
def reference(lake_data: LakeData) -> Iterator[duckdb.DuckDBPyConnection]:
    """Plain DuckDB over the raw Arrow tables: where the hand-written expected queries run."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    con.register("tx", lake_data.transactions)
    con.register("merchants", lake_data.merchants)
    con.register("kpis", lake_data.kpis)
    yield con
    con.close()
