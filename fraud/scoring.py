"""Score one event against a rule set and its key's state.

Each rule that fires contributes its score; contributions combine as a noisy-OR
(1 - prod(1 - s_i)), so independent evidence adds up without exceeding 1 and one strong rule alone
can raise an alert. The state is updated after scoring: an event never counts as its own history.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from fraud.events import ScoredEvent
from fraud.rules import Rule, RuleKind, RuleSet, Severity
from fraud.state import KeyState

#: Alert ids derive from the event and the rule set, so a replayed event yields the same alert id.
_ALERT_NAMESPACE = uuid.UUID("5b2f0c1e-7d4a-4c3e-9a51-2f8e6b0d9c17")
_ALERT_NAMESPACE_BYTES = _ALERT_NAMESPACE.bytes


class RuleHit(NamedTuple):
    rule_id: str
    version: int
    score: float
    severity: Severity
    reason: str
    features: dict[str, float]


class Verdict(NamedTuple):
    """One per event, so a tuple like :class:`ScoredEvent` (cheaper to build than a frozen dataclass)."""

    event: ScoredEvent
    hits: tuple[RuleHit, ...]
    #: The hits' scores combined (:func:`combined_score`).
    score: float
    rule_set_version: str
    #: The event was older than the watermark when scored (still scored; flagged for review).
    late: bool
    features: dict[str, float]

    @property
    def severity(self) -> Severity:
        if not self.hits:
            return Severity.LOW
        return max((hit.severity for hit in self.hits), key=lambda s: s.rank)

    def alerts(self, threshold: float) -> bool:
        return bool(self.hits) and self.score >= threshold


def combined_score(hits: tuple[RuleHit, ...]) -> float:
    """The noisy-OR of the hits' scores, rounded to 6 places (0.0 without hits)."""
    if not hits:  # most events
        return 0.0
    remaining = 1.0
    for hit in hits:
        remaining *= 1.0 - hit.score
    return round(1.0 - remaining, 6)


def score_event(
    state: KeyState, event: ScoredEvent, rules: RuleSet, *, watermark_ms: int | None = None
) -> Verdict:
    """Evaluate every applicable rule, then remember the event in ``state``."""
    hits = []
    for rule in rules.for_source(event.source):  # by rule id
        hit = _DETECTORS[rule.kind](rule, state, event)
        if hit is not None:
            hits.append(hit)
    features = {name: value for hit in hits for name, value in hit.features.items()} if hits else {}
    state.add(event)
    late = watermark_ms is not None and event.event_time_ms < watermark_ms
    found = tuple(hits)
    return Verdict(event, found, combined_score(found), rules.version, late, features)


def to_alert_record(verdict: Verdict, *, alert_time_ms: int) -> dict[str, Any]:
    """A ``fraud.alerts`` record (fraud_alert.avsc) for a verdict that alerts."""
    event = verdict.event
    return {
        "alert_id": alert_id(event.event_id, verdict.rule_set_version),
        "source": event.source.value,
        "source_event_id": event.event_id,
        "customer_id": event.customer_id,
        "account_id": event.account_id,
        "card_id": event.card_id,
        "amount": event.amount,
        "currency": event.currency,
        "score": verdict.score,
        "severity": verdict.severity.value,
        "rule_ids": [hit.rule_id for hit in verdict.hits],
        "reasons": [f"{hit.reason} [{hit.rule_id} v{hit.version}]" for hit in verdict.hits],
        "model_version": f"rules-{verdict.rule_set_version}",
        "event_time": event.event_time_ms,
        "alert_time": alert_time_ms,
        "features": dict(verdict.features),
        "late": verdict.late,
    }


def alert_id(event_id: str, rule_set_version: str) -> str:
    """``str(uuid.uuid5(_ALERT_NAMESPACE, f"{event_id}/{rule_set_version}"))``, in a third of the
    time: the bytes are hashed and marked as ``uuid5`` does, without building a ``UUID``."""
    name = f"{event_id}/{rule_set_version}".encode()
    digest = bytearray(hashlib.sha1(_ALERT_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# -- detectors: one per rule kind; None when the rule does not fire -----------------------------

Detector = Callable[[Rule, KeyState, ScoredEvent], RuleHit | None]


def _hit(rule: Rule, reason: str, **features: float) -> RuleHit:
    return RuleHit(rule.rule_id, rule.version, rule.score, rule.severity, reason, features)


def _threshold(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    assert rule.threshold_amount is not None
    if event.amount >= rule.threshold_amount:
        return _hit(rule, f"amount {event.amount} >= {rule.threshold_amount}", amount=float(event.amount))
    return None


def _velocity(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    assert rule.window_seconds is not None
    earlier = state.in_window(event.event_time_ms, rule.window_seconds * 1000)
    count, total = len(earlier) + 1, sum(earlier) + float(event.amount)
    if rule.max_count is not None and count > rule.max_count:
        return _hit(rule, f"{count} events in {rule.window_seconds}s > {rule.max_count}",
                    velocity_count=count, velocity_amount=total)  # fmt: skip
    if rule.threshold_amount is not None and _over(total, rule):
        return _hit(rule, f"{total:.2f} spent in {rule.window_seconds}s > {rule.threshold_amount}",
                    velocity_count=count, velocity_amount=total)  # fmt: skip
    return None


def _over(total: float, rule: Rule) -> bool:
    """``total`` > the rule's threshold amount, decided in decimal when the two are close (a float
    sum of cents can land a hair either side of an exact limit)."""
    limit = rule.threshold
    assert limit is not None and rule.threshold_amount is not None
    if abs(total - limit) > 1e-6 * max(1.0, abs(limit)):
        return total > limit
    return Decimal(str(total)) > rule.threshold_amount


def _geo(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    speed = state.speed_kmh(event)
    limit = rule.number("max_kmh")
    if speed is not None and speed > limit:
        return _hit(rule, f"travel at {speed:,.0f} km/h from the previous location > {limit:,.0f}",
                    travel_kmh=speed)  # fmt: skip
    return None


def _mcc_blocklist(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    if event.mcc in rule.mccs:
        return _hit(rule, f"merchant category {event.mcc} is blocked")
    return None


def _amount_anomaly(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    if state.count < rule.number("min_history"):
        return None
    z = state.zscore(float(event.amount))
    if z > rule.number("z"):
        return _hit(rule, f"amount {event.amount} is {z:.1f} sd above this key's usual", amount_z=z)
    return None


def _first_seen(seen: dict[str, int], value: str | None, rule: Rule, state: KeyState) -> bool:
    return value is not None and value not in seen and state.count >= rule.number("min_history")


def _new_merchant(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    assert rule.threshold_amount is not None
    if _first_seen(state.merchants, event.merchant_id, rule, state) and event.amount >= rule.threshold_amount:
        return _hit(rule, f"first purchase at merchant {event.merchant_id} for {event.amount}",
                    new_merchant=1.0)  # fmt: skip
    return None


def _new_country(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    assert rule.threshold_amount is not None
    if _first_seen(state.countries, event.country, rule, state) and event.amount >= rule.threshold_amount:
        return _hit(rule, f"first use in country {event.country}", new_country=1.0)
    return None


def _card_testing(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    assert rule.threshold is not None and rule.window_seconds and rule.max_count
    small = rule.threshold
    if float(event.amount) > small:
        return None
    count = 1 + len(state.burst(event.event_time_ms, rule.window_seconds * 1000, lambda a: a <= small))
    if count >= rule.max_count:
        return _hit(rule, f"{count} authorizations <= {small:.2f} in {rule.window_seconds}s",
                    small_auth_count=count)  # fmt: skip
    return None


def _structuring(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    assert rule.threshold is not None and rule.window_seconds and rule.max_count
    ceiling = rule.threshold
    floor = ceiling * (1.0 - rule.number("band"))

    def near(amount: float) -> bool:
        return floor <= amount < ceiling

    if not near(float(event.amount)):
        return None
    count = 1 + len(state.burst(event.event_time_ms, rule.window_seconds * 1000, near))
    if count >= rule.max_count:
        return _hit(rule, f"{count} amounts just under {ceiling:,.2f} in {rule.window_seconds}s",
                    near_threshold_count=count)  # fmt: skip
    return None


def _new_device(rule: Rule, state: KeyState, event: ScoredEvent) -> RuleHit | None:
    assert rule.threshold_amount is not None and rule.window_seconds
    if event.device_id is None or event.amount < rule.threshold_amount:
        return None
    if state.count < rule.number("min_history"):
        return None
    first_seen = state.devices.get(event.device_id)
    recent = first_seen is None or event.event_time_ms - first_seen <= rule.window_seconds * 1000
    if recent:
        age = 0.0 if first_seen is None else (event.event_time_ms - first_seen) / 1000
        return _hit(rule, f"{event.amount} from device {event.device_id} first seen {age:.0f}s ago",
                    new_device_age_s=age)  # fmt: skip
    return None


_DETECTORS: dict[RuleKind, Detector] = {
    RuleKind.THRESHOLD: _threshold,
    RuleKind.VELOCITY: _velocity,
    RuleKind.GEO: _geo,
    RuleKind.MCC_BLOCKLIST: _mcc_blocklist,
    RuleKind.AMOUNT_ANOMALY: _amount_anomaly,
    RuleKind.NEW_MERCHANT: _new_merchant,
    RuleKind.NEW_COUNTRY: _new_country,
    RuleKind.CARD_TESTING: _card_testing,
    RuleKind.STRUCTURING: _structuring,
    RuleKind.NEW_DEVICE: _new_device,
}
