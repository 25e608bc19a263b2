"""Riverbank's error hierarchy.

Errors are split by cause (configuration, stack, dependency) and marked transient or terminal so
that retry code decides by type, never by parsing messages. Every message is one actionable line:
the CLI prints ``str(error)`` and exits with ``exit_code``; no traceback reaches a user.
"""

from __future__ import annotations


class RiverbankError(Exception):
    """Base of every error Riverbank raises on purpose."""

    exit_code = 1
    #: True when the same call may succeed later (a broker restarting, a lock held).
    transient = False


class TransientError(RiverbankError):
    """Retrying later may succeed."""

    transient = True


class TerminalError(RiverbankError):
    """Retrying will not help until something is changed."""


class ConfigError(TerminalError):
    """A setting is missing or invalid. The message names the key and where it was read from."""

    def __init__(self, key: str, problem: str, source: str) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        super().__init__(f"configuration error: {key}: {problem} (source: {source})")


class MissingDependencyError(TerminalError):
    """A program or package the operation needs is not installed; says how to install it."""

    def __init__(self, what: str, install_hint: str) -> None:
        self.what = what
        self.install_hint = install_hint
        super().__init__(f"{what} is not installed: {install_hint}")


class StackError(TerminalError):
    """The embedded stack could not be started, stopped or inspected."""


class ComponentStartError(StackError):
    """One component of the embedded stack did not become ready. Carries the tail of its log."""

    def __init__(self, component: str, reason: str, log_path: str, log_tail: str) -> None:
        self.component = component
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        tail = "\n".join(f"  | {line}" for line in log_tail.splitlines()) or "  | (log is empty)"
        super().__init__(f"{component} failed to start: {reason}\nlast lines of {log_path}:\n{tail}")


class ServiceUnavailableError(TransientError):
    """A service (broker, registry, database, Flink) did not answer."""
