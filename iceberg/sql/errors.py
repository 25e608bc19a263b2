"""Errors of `riverbank sql`: each says what was asked and what to do instead."""

from __future__ import annotations

from riverbank.errors import TerminalError


class SqlError(TerminalError):
    """A query that cannot be answered as written."""

    exit_code = 2


class SqlSyntaxError(SqlError):
    """The query does not parse in the chosen dialect."""


class UnsupportedSqlError(SqlError):
    """A construct whose result would differ from Athena's or Redshift's: refused, never guessed."""


class UnknownTableError(SqlError):
    """A table reference that names no table in the lake catalog."""

    def __init__(self, reference: str, known: list[str], reason: str = "no such table") -> None:
        self.reference = reference
        self.known = known
        listing = ", ".join(known) if known else "(the catalog holds no tables)"
        super().__init__(f"table {reference}: {reason}; tables in the lake: {listing}")


class SnapshotNotFoundError(SqlError):
    """A time-travel clause that selects no snapshot of the table."""
