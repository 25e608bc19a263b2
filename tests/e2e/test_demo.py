"""`riverbank demo` end to end on the embedded stack."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from infra.topics import TOPICS
from tests.stack_harness import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_demo_brings_up_the_stack_creates_topics_and_reports_health(embedded_stack: RunningStack) -> None:
    result = embedded_stack.cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    for component in embedded_stack.settings.stack.components:
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {component} "))
        assert "healthy" in row and "unhealthy" not in row, row
    admin = AdminClient(embedded_stack.settings.kafka.client_config())
    metadata = admin.list_topics(timeout=10)
    for topic in TOPICS:
        assert topic.name in metadata.topics, topic.name
        assert topic.name in result.stdout
    rules = metadata.topics["fraud.rules"]
    assert len(rules.partitions) == 1
    resource = ConfigResource(ResourceType.TOPIC, "fraud.rules")
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"

    again = embedded_stack.cli("demo")
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout  # topics exist now: the demo is repeatable
