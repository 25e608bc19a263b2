"""The local SQL catalog when several processes open a fresh catalog file at the same moment."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from iceberg.catalog import ensure_namespaces, load_lake_catalog
from riverbank.settings import load_settings

OPENERS = 6


def _open(catalog_file: str, warehouse: str, start: Barrier) -> None:
    settings = load_settings(lake={"catalog_uri": f"sqlite:///{catalog_file}", "warehouse": warehouse})
    start.wait()
    ensure_namespaces(load_lake_catalog(settings), settings)


@pytest.mark.parametrize("attempt", range(5))
def test_processes_opening_a_fresh_catalog_together_all_succeed(tmp_path: Path, attempt: int) -> None:
    # The sink and the silver refresh start together; pyiceberg checks for its tables, then creates
    # them, and checks for a namespace, then inserts it: racing openers failed on either step.
    context = multiprocessing.get_context("fork")
    start = context.Barrier(OPENERS)
    openers = [
        context.Process(
            target=_open, args=(str(tmp_path / "catalog.db"), (tmp_path / "warehouse").as_uri(), start)
        )
        for _ in range(OPENERS)
    ]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(60)
    assert [o.exitcode for o in openers] == [0] * OPENERS
    catalog = load_lake_catalog(load_settings(lake={"catalog_uri": f"sqlite:///{tmp_path / 'catalog.db'}"}))
    assert sorted(catalog.list_namespaces()) == [("bronze",), ("gold",), ("silver",)]
