"""Rules are data: validation, versioned application, records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fraud import DEFAULT_RULES, Rule, RuleError, RuleSet
from fraud.events import Source


def record(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "rule_id": "ct", "version": 1, "name": "card testing", "enabled": True, "scope": "CARD",
        "kind": "CARD_TESTING", "threshold_amount": Decimal("5.00"), "window_seconds": 600, "max_count": 4,
        "parameters": {"pattern": "CARD_TESTING"}, "score": 0.8, "severity": "HIGH",
        "updated_by": "analyst", "updated_at": 1_763_800_000_000, "description": None,
    }  # fmt: skip
    return {**base, **overrides}


def test_record_round_trip() -> None:
    rule = Rule.from_record(record())
    assert Rule.from_record(rule.to_record()) == rule
    assert (
        rule.pattern == "CARD_TESTING"
        and rule.applies_to(Source.CARD)
        and not rule.applies_to(Source.PAYMENT)
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_count": None}, "CARD_TESTING rules need max_count"),
        ({"score": 1.5}, "score must be within 0..1"),
        ({"kind": "EXPRESSION"}, "EXPRESSION rules are not supported"),
        ({"kind": "TELEPATHY"}, "'TELEPATHY' is not a valid RuleKind"),
        ({"kind": "GEO", "parameters": {"max_kmh": "fast"}}, "parameters.max_kmh must be a number"),
        ({"kind": "GEO", "parameters": {}}, "GEO rules need parameters.max_kmh"),
        ({"version": 0}, "version must be >= 1"),
    ],
)
def test_invalid_rules_are_rejected_with_the_field(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match="fraud rule 'ct'") as caught:
        Rule.from_record(record(**overrides))
    assert message in str(caught.value)


def test_missing_field_is_named() -> None:
    data = record()
    del data["score"]
    with pytest.raises(RuleError, match="missing field 'score'"):
        Rule.from_record(data)


def test_newer_versions_replace_older_ones_in_any_order() -> None:
    v1, v2, v3 = (Rule.from_record(record(version=v, max_count=3 + v)) for v in (1, 2, 3))
    forward = RuleSet.of([v1, v2, v3])
    shuffled = RuleSet.of([v3, v1, v2])
    assert forward == shuffled and forward.rules["ct"].max_count == 6
    assert forward.remove("ct").rules == {}


def test_disabled_rules_never_apply() -> None:
    rules = RuleSet.of([Rule.from_record(record(enabled=False))])
    assert rules.for_source(Source.CARD) == ()


def test_default_rule_book_is_valid_and_covers_every_injected_pattern() -> None:
    patterns = {rule.pattern for rule in DEFAULT_RULES} - {None}
    assert patterns == {
        "CARD_TESTING",
        "ACCOUNT_TAKEOVER",
        "IMPOSSIBLE_TRAVEL",
        "MERCHANT_ANOMALY",
        "STRUCTURING",
    }
    assert len({rule.rule_id for rule in DEFAULT_RULES}) == len(DEFAULT_RULES)
