"""Fraud scoring, as pure functions and dataclasses: no Kafka, no Flink, no files.

``events`` maps wire records to :class:`ScoredEvent`; ``rules`` holds rules as versioned data;
``state`` is the per-key (card or account) memory; ``scoring`` evaluates a rule set against an event
and its key's state and returns a :class:`Verdict`. Jobs in flink_jobs/ wire these to Kafka.
"""

from fraud.events import ScoredEvent, Source, from_card_transaction, from_payment
from fraud.rules import DEFAULT_RULES, Rule, RuleError, RuleKind, RuleSet
from fraud.scoring import RuleHit, Verdict, score_event, to_alert_record
from fraud.state import KeyState

__all__ = [
    "DEFAULT_RULES",
    "KeyState",
    "Rule",
    "RuleError",
    "RuleHit",
    "RuleKind",
    "RuleSet",
    "ScoredEvent",
    "Source",
    "Verdict",
    "from_card_transaction",
    "from_payment",
    "score_event",
    "to_alert_record",
]
