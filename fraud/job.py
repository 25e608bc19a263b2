"""The fraud job's logic, without Flink: one event in, the records it produces out.

``score(event, state, rules, ...)`` is what the Flink job calls per event (with the key's state from
keyed state and the rules from broadcast state); tests and the benchmark call it to compute the
expected alerts of a stream offline. ``apply_rule_update`` is what the job does per record of the
compacted ``fraud.rules`` topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from fraud.events import ScoredEvent, Source, from_card_transaction, from_payment
from fraud.rules import DEFAULT_RULES, Rule, RuleSet
from fraud.scoring import Verdict, score_event, to_alert_record
from fraud.state import KeyState

#: The input topics and how their records map to a ScoredEvent.
INPUT_TOPICS: dict[str, Source] = {
    "bank.card.transactions": Source.CARD,
    "bank.payments": Source.PAYMENT,
}
SCORED_TOPIC = "transactions.scored"
ALERTS_TOPIC = "fraud.alerts"
RULES_TOPIC = "fraud.rules"
#: Alerts are raised at or above this combined score unless configured otherwise.
DEFAULT_ALERT_THRESHOLD = 0.5


class Outputs(NamedTuple):
    verdict: Verdict
    #: The ``transactions.scored`` record (every event).
    scored: dict[str, Any]
    #: The ``fraud.alerts`` record, when the verdict alerts.
    alert: dict[str, Any] | None


def to_event(source: Source, record: Mapping[str, Any]) -> ScoredEvent:
    return from_card_transaction(record) if source is Source.CARD else from_payment(record)


def state_key(event: ScoredEvent) -> str:
    """Cards and accounts are separate key spaces: prefix the key with its source."""
    return f"{event.source.value}:{event.key}"


def score(
    event: ScoredEvent,
    state: KeyState,
    rules: RuleSet,
    *,
    watermark_ms: int | None,
    threshold: float,
    now_ms: int,
) -> Outputs:
    """Score ``event`` (updating ``state``) and build its output records."""
    verdict = score_event(state, event, rules, watermark_ms=watermark_ms)
    alert = to_alert_record(verdict, alert_time_ms=now_ms) if verdict.alerts(threshold) else None
    return Outputs(verdict, to_scored_record(verdict, alerted=alert is not None, now_ms=now_ms), alert)


def to_scored_record(verdict: Verdict, *, alerted: bool, now_ms: int) -> dict[str, Any]:
    """A ``transactions.scored`` record (scored_transaction.avsc)."""
    event = verdict.event
    return {
        "event_id": event.event_id,
        "source": event.source.value,
        "state_key": event.key,
        "customer_id": event.customer_id,
        "account_id": event.account_id,
        "card_id": event.card_id,
        "amount": event.amount,
        "currency": event.currency,
        "event_time": event.event_time_ms,
        "score": verdict.score,
        "alerted": alerted,
        "rule_ids": [hit.rule_id for hit in verdict.hits],
        "rule_set_version": verdict.rule_set_version,
        "late": verdict.late,
        "scored_at": now_ms,
    }


def apply_rule_update(rules: RuleSet, rule_id: str, record: Mapping[str, Any] | None) -> RuleSet:
    """One record of the compacted rules topic: a rule version, or a tombstone (None) deleting it."""
    if record is None:
        return rules.remove(rule_id)
    return rules.apply(Rule.from_record(record))


def initial_rules() -> RuleSet:
    """Rules before the rules topic delivered anything: the default rule book."""
    return RuleSet.of(DEFAULT_RULES)


def score_stream(
    records: list[tuple[Source, Mapping[str, Any]]],
    rules: RuleSet,
    *,
    threshold: float = DEFAULT_ALERT_THRESHOLD,
) -> list[Outputs]:
    """Offline reference: score decoded records in the given order, one state per key."""
    states: dict[str, KeyState] = {}
    outputs = []
    for source, record in records:
        event = to_event(source, record)
        state = states.setdefault(state_key(event), KeyState())
        outputs.append(score(event, state, rules, watermark_ms=None, threshold=threshold, now_ms=0))
    return outputs
