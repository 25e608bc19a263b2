"""`riverbank up` supervises the silver/gold refresh loop (`riverbank lake refresh --loop`)."""

from __future__ import annotations

import json
import time

import pytest

from iceberg.catalog import load_lake_catalog
from iceberg.status import refresh_status_file
from infra import stack
from tests.stack_harness import running_stack

pytestmark = pytest.mark.integration


def test_the_stack_runs_the_refresh_loop_and_stops_it_cleanly() -> None:
    with running_stack("refresh", ["refresh"]) as handle:
        settings = handle.settings
        status_file = refresh_status_file(settings)
        deadline = time.monotonic() + 60
        while json.loads(status_file.read_text()).get("passes", 0) < 1:  # `up` waited for "running"
            assert time.monotonic() < deadline, status_file.read_text()
            time.sleep(0.2)
        # A pass ran against the stack's catalog: it created the silver and gold namespaces.
        namespaces = set(load_lake_catalog(settings).list_namespaces())
        assert {(settings.lake.silver_namespace,), (settings.lake.gold_namespace,)} <= namespaces
        stack.down(settings)  # SIGTERM: the loop finishes its pass and reports itself stopped
        status = json.loads(status_file.read_text())
        assert status["state"] == "stopped" and status["passes"] >= 1, status
