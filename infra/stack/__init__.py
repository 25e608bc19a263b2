"""The embedded local stack: every server Riverbank needs on one machine, under supervisord.

``up`` starts the components in dependency order and waits for each to answer its own protocol;
``down`` stops exactly what ``up`` started; ``status`` reports state, uptime, restarts and RSS.
"""

from infra.stack.lifecycle import down, status, up
from infra.stack.model import ComponentStatus, StackStatus

__all__ = ["ComponentStatus", "StackStatus", "down", "status", "up"]
