from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverbank.settings import ALL_COMPONENTS
from tests.stack_harness import EXTERNAL_ENDPOINTS, RunningStack, keep_logs, running_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slowest files first, so that the two xdist workers (whole files each, in this order) end
    together instead of one starting the demo when the other is done: files holding an e2e test,
    then integration files, then the fast tier. The order inside a file is kept."""

    def tier(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("e2e") else 1 if item.get_closest_marker("integration") else 2

    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    tiers: dict[str, int] = {}
    for item in items:
        tiers[file_of(item)] = min(tiers.get(file_of(item), 2), tier(item))
    items.sort(key=lambda item: tiers[file_of(item)])  # stable: file order and test order stay


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads a developer's riverbank.toml, .env or RIVERBANK_* variables by accident."""
    for name in list(os.environ):
        if name.upper().startswith("RIVERBANK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedded_stack(request: pytest.FixtureRequest) -> Iterator[RunningStack]:
    """The embedded stack, once per session (per xdist worker); components given by endpoint are not
    started. Nor are the CDC engine, the bronze sink and the refresh loop: no test here relies on
    them, they ran against every producer test's writes (CPU on two cores), and
    tests/e2e/test_demo.py runs the whole stack with them; tests/cdc and tests/iceberg run their own
    engines, sinks and refresh."""
    external = {c for c, var in EXTERNAL_ENDPOINTS.items() if os.environ.get(var)}
    components = [c for c in ALL_COMPONENTS if c not in external and c not in ("cdc", "sink", "refresh")]
    # The suite exercises multi-partition topics (keyed partitioning, per-partition offsets and
    # watermarks), whatever the local profile's default of one partition per topic.
    with running_stack("session", components, extra_env={"RIVERBANK_KAFKA__TOPIC_PARTITIONS": "4"}) as handle:
        # Endpoints of external components pass through to the CLI and to load_settings().
        handle.env.update({v: os.environ[v] for c, v in EXTERNAL_ENDPOINTS.items() if c in external})
        yield handle
        if request.session.testsfailed:
            keep_logs(handle.paths, "session")
