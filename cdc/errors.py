"""Errors of change data capture and extraction."""

from __future__ import annotations

from riverbank.errors import TerminalError, TransientError


class CdcEngineError(TerminalError):
    """The embedded engine stopped on an error; the message carries Debezium's reason."""

    exit_code = 4


class DeliveryError(TransientError):
    """Kafka did not acknowledge change records; their offsets were not committed."""


class SourceNotReadyError(TransientError):
    """The source database or its tables are not there yet."""


class ExtractError(TerminalError):
    """A table cannot be extracted as configured (no such column, no primary key...)."""
