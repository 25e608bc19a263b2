"""`riverbank demo` end to end, as `make demo` runs it on a new machine: from an empty state dir."""

from __future__ import annotations

import re

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from infra import stack
from infra.topics import TOPICS
from riverbank.settings import load_settings
from tests.stack_harness import RunningStack, environ, keep_logs, make_state_dir, remove, stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_demo_from_nothing_runs_every_pipeline_step_and_up_is_idempotent() -> None:
    from riverbank.settings import ALL_COMPONENTS

    state_dir = make_state_dir("demo")
    env = stack_env(state_dir, list(ALL_COMPONENTS))
    with environ(env):
        settings = load_settings()
    handle = RunningStack(settings, env)
    ok = False
    try:
        # Alone it takes about two minutes; under the other xdist worker's load, well over three.
        result = handle.cli("demo", timeout=540)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        for component in settings.stack.components:
            row = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {component} "))
            assert "healthy" in row and "unhealthy" not in row, row
        out = result.stdout
        assert "fraud.labels-value" in out  # schemas registered
        assert "records acknowledged" in out  # producers ran
        assert " 0 failed" in out
        assert "op='u'" in out, out[-6000:]  # the CDC change arrived, decoded with before/after
        alerts = re.search(r"([\d,]+) alerts on fraud\.alerts", out)
        assert alerts is not None and int(alerts.group(1).replace(",", "")) > 0, out[-6000:]
        bronze = re.search(r"bronze\.bank_card_transactions\s*│\s*([\d,]+)", out)
        assert bronze is not None and int(bronze.group(1).replace(",", "")) > 0, out[-6000:]
        silver = re.search(r"silver\.customers\s+([\d,]+) rows", out)
        assert silver is not None and int(silver.group(1).replace(",", "")) > 0, out[-6000:]
        assert "athena>" in out and "redshift>" in out and "Redshift" in out
        admin = AdminClient(settings.kafka.client_config())
        metadata = admin.list_topics(timeout=10)
        for topic in TOPICS:
            assert topic.name in metadata.topics, topic.name
        assert len(metadata.topics["fraud.rules"].partitions) == 1
        resource = ConfigResource(ResourceType.TOPIC, "fraud.rules")
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        assert configs["cleanup.policy"].value == "compact"
        # A second `up` finds everything running and starts nothing twice.
        again = handle.cli("up")
        assert again.returncode == 0, again.stderr[-3000:]
        for component in settings.stack.components:  # progress goes to stderr
            assert f"{component}: already running" in again.stderr, again.stderr[-3000:]
        assert ": ready" not in again.stderr, again.stderr[-3000:]
        ok = True
    finally:
        stack.down(settings)
        if not ok:
            keep_logs(handle.paths, "demo")
        remove(handle.paths)
