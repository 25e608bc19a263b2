"""The embedded local stack: every server Riverbank needs on one machine, under supervisord.

``up`` starts the components in dependency order and waits for each to answer its own protocol;
``down`` stops exactly what ``up`` started; ``status`` reports state, uptime, restarts and RSS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.stack.lifecycle import down, status, up
    from infra.stack.model import ComponentStatus, StackStatus

__all__ = ["ComponentStatus", "StackStatus", "down", "status", "up"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `riverbank --help` does not pay for the probes' HTTP client.
    if name in ("down", "status", "up"):
        from infra.stack import lifecycle

        return getattr(lifecycle, name)
    if name in ("ComponentStatus", "StackStatus"):
        from infra.stack import model

        return getattr(model, name)
    raise AttributeError(name)
