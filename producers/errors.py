"""Errors of the producers, split by cause; each says what to do next."""

from __future__ import annotations

from riverbank.errors import ServiceUnavailableError, TerminalError, TransientError


class ProducerError(TerminalError):
    """Base of the producers' terminal errors."""


class SchemaNotRegisteredError(ProducerError):
    """The value or key schema of a topic is not registered under its TopicNameStrategy subject."""

    def __init__(self, subject: str, detail: str) -> None:
        self.subject = subject
        super().__init__(
            f"schema of subject {subject} is not registered ({detail}): run `riverbank schemas register`"
        )


class ProducerFatalError(ProducerError):
    """librdkafka raised a fatal error (e.g. the idempotent producer lost its sequence state).

    The producer instance cannot continue; messages still queued were reported as failed.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Kafka producer hit a fatal error and stopped: {reason}")


class BackpressureTimeoutError(TransientError):
    """The local send queue stayed full for too long: the broker is not taking records."""

    def __init__(self, waited_s: float, queued: int, bootstrap: str) -> None:
        self.waited_s = waited_s
        self.queued = queued
        super().__init__(
            f"the producer queue stayed full for {waited_s:.0f}s with {queued} records waiting: "
            f"is the broker at {bootstrap} up? (`riverbank status`)"
        )


class SourceDbUnavailableError(ServiceUnavailableError):
    """The bank's PostgreSQL database did not answer or refused the connection."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(
            f"PostgreSQL at {where} is not available: {detail} (is the stack up? `riverbank status`)"
        )
