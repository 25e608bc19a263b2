"""The Kafka topics Riverbank uses, and their idempotent creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from riverbank.errors import ServiceUnavailableError
from riverbank.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    config: dict[str, str] = field(default_factory=dict)
    #: None takes kafka.topic_partitions from the settings.
    partitions: int | None = None


_COMPACT = {"cleanup.policy": "compact"}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("bank.card.transactions", "card authorizations from the producers"),
    TopicSpec("bank.payments", "payments and transfers"),
    TopicSpec("bank.trades", "trades"),
    TopicSpec("market.ticks", "market price ticks"),
    TopicSpec("fraud.labels", "ground truth of injected fraud, kept apart from the events"),
    TopicSpec("transactions.scored", "every transaction with its fraud score"),
    TopicSpec("fraud.alerts", "fraud alerts with the rules and features that fired"),
    TopicSpec("fraud.rules", "versioned fraud rule definitions", _COMPACT, partitions=1),
    TopicSpec("risk.positions", "risk positions per account and instrument", _COMPACT),
    TopicSpec("riverbank.dlq", "records that could not be processed, with the reason in headers"),
)


def ensure_topics(settings: Settings, topics: tuple[TopicSpec, ...] = TOPICS) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({**settings.kafka.client_config(), "log_level": 0})
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise ServiceUnavailableError(
            f"Kafka at {settings.kafka.bootstrap_servers} did not answer: {exc}"
        ) from None
    missing = [
        NewTopic(
            t.name,
            num_partitions=t.partitions or settings.kafka.topic_partitions,
            replication_factor=settings.kafka.topic_replication_factor,
            config=t.config,
        )
        for t in topics
        if t.name not in existing
    ]
    if not missing:
        return []
    for name, future in admin.create_topics(missing, operation_timeout=15).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise ServiceUnavailableError(f"could not create topic {name}: {exc}") from None
    return [t.topic for t in missing]
