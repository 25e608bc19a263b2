"""Fraud rules as versioned data (the records of the compacted ``fraud.rules`` topic).

A rule is a kind (the detector) plus its parameters, a score contribution and a severity. A
:class:`RuleSet` applies rule updates by version, so replaying the topic in any order converges on
the same rules, and a job can swap rules while it runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cached_property
from typing import Any

from fraud.events import Source, millis
from riverbank.errors import TerminalError


class RuleError(TerminalError):
    """A rule definition that cannot be applied; names the rule and the field."""

    def __init__(self, rule_id: str, problem: str) -> None:
        self.rule_id = rule_id
        super().__init__(f"fraud rule {rule_id!r}: {problem}")


class RuleScope(StrEnum):
    CARD = "CARD"
    PAYMENT = "PAYMENT"
    ALL = "ALL"


class RuleKind(StrEnum):
    THRESHOLD = "THRESHOLD"  # amount >= threshold_amount
    VELOCITY = "VELOCITY"  # > max_count events, or > threshold_amount in total, in window_seconds
    GEO = "GEO"  # impossible travel: speed from the previous location > parameters.max_kmh
    MCC_BLOCKLIST = "MCC_BLOCKLIST"  # merchant category in parameters.mccs
    AMOUNT_ANOMALY = "AMOUNT_ANOMALY"  # amount far above the key's own history (z-score)
    NEW_MERCHANT = "NEW_MERCHANT"  # merchant never seen for this key, amount >= threshold_amount
    NEW_COUNTRY = "NEW_COUNTRY"  # country never seen for this key, amount >= threshold_amount
    CARD_TESTING = "CARD_TESTING"  # >= max_count small (<= threshold_amount) events in the window
    STRUCTURING = "STRUCTURING"  # >= max_count amounts just under threshold_amount in the window
    NEW_DEVICE = "NEW_DEVICE"  # large amount soon after a device first seen on the key
    EXPRESSION = "EXPRESSION"  # reserved: free-form expressions are not evaluated


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity)}


# What each kind reads; a rule missing one of these is rejected when it is loaded.
_REQUIRED: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.THRESHOLD: ("threshold_amount",),
    RuleKind.VELOCITY: ("window_seconds",),
    RuleKind.GEO: ("parameters.max_kmh",),
    RuleKind.MCC_BLOCKLIST: ("parameters.mccs",),
    RuleKind.AMOUNT_ANOMALY: ("parameters.z", "parameters.min_history"),
    RuleKind.NEW_MERCHANT: ("threshold_amount", "parameters.min_history"),
    RuleKind.NEW_COUNTRY: ("threshold_amount", "parameters.min_history"),
    RuleKind.CARD_TESTING: ("threshold_amount", "window_seconds", "max_count"),
    RuleKind.STRUCTURING: ("threshold_amount", "window_seconds", "max_count", "parameters.band"),
    RuleKind.NEW_DEVICE: ("threshold_amount", "window_seconds", "parameters.min_history"),
}


@dataclass(frozen=True)
class Rule:
    rule_id: str
    version: int
    name: str
    kind: RuleKind
    scope: RuleScope
    score: float
    severity: Severity
    enabled: bool = True
    threshold_amount: Decimal | None = None
    window_seconds: int | None = None
    max_count: int | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    updated_by: str = "riverbank"
    updated_at_ms: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise RuleError(self.rule_id, f"score must be within 0..1, got {self.score}")
        if self.version < 1:
            raise RuleError(self.rule_id, f"version must be >= 1, got {self.version}")
        if self.kind is RuleKind.EXPRESSION:
            raise RuleError(self.rule_id, "EXPRESSION rules are not supported; use a rule kind")
        for required in _REQUIRED[self.kind]:
            section, _, name = required.partition(".")
            present = self.parameters.get(name) if name else getattr(self, section)
            if present in (None, ""):
                raise RuleError(self.rule_id, f"{self.kind} rules need {required}")
        for name in ("max_kmh", "z", "min_history", "band", "recent_seconds"):
            if name in self.parameters:
                self.number(name)

    def applies_to(self, source: Source) -> bool:
        return self.enabled and self.scope in (RuleScope.ALL, RuleScope(source.value))

    def number(self, name: str) -> float:
        found = self._numbers.get(name)
        if found is not None:
            return found
        try:
            return float(self.parameters[name])
        except ValueError:
            raise RuleError(self.rule_id, f"parameters.{name} must be a number") from None

    # Parsed once per rule (rules change rarely, detectors read them for every event). A rule is
    # frozen; cached_property writes to the instance's __dict__, which equality and hashing ignore.
    @cached_property
    def _numbers(self) -> dict[str, float]:
        numbers = {}
        for name, text in self.parameters.items():
            try:
                numbers[name] = float(text)
            except ValueError:
                continue  # not a number: number(name) raises the RuleError
        return numbers

    @cached_property
    def threshold(self) -> float | None:
        """``threshold_amount`` as a float (detectors compare float sums against it)."""
        return None if self.threshold_amount is None else float(self.threshold_amount)

    @cached_property
    def mccs(self) -> frozenset[str]:
        """The comma-separated ``parameters.mccs`` of a blocklist rule, as a set."""
        return frozenset(m.strip() for m in self.parameters.get("mccs", "").split(","))

    @property
    def pattern(self) -> str | None:
        """The injected-fraud pattern this rule targets, for precision/recall per pattern."""
        return self.parameters.get("pattern")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Rule:
        """From a ``fraud.rules`` Avro record (as decoded) or a rule file entry."""
        rule_id = str(record.get("rule_id", "?"))
        try:
            threshold = record.get("threshold_amount")
            return cls(
                rule_id=rule_id,
                version=int(record["version"]),
                name=str(record["name"]),
                kind=RuleKind(record["kind"]),
                scope=RuleScope(record.get("scope", "ALL")),
                score=float(record["score"]),
                severity=Severity(record.get("severity", "MEDIUM")),
                enabled=bool(record.get("enabled", True)),
                threshold_amount=None if threshold is None else Decimal(str(threshold)),
                window_seconds=record.get("window_seconds"),
                max_count=record.get("max_count"),
                parameters={str(k): str(v) for k, v in (record.get("parameters") or {}).items()},
                description=record.get("description"),
                updated_by=str(record.get("updated_by", "riverbank")),
                updated_at_ms=millis(record.get("updated_at", 0)),
            )
        except KeyError as missing:
            raise RuleError(rule_id, f"missing field {missing}") from None
        except (ValueError, InvalidOperation) as exc:
            raise RuleError(rule_id, str(exc)) from None

    def to_record(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "scope": self.scope.value,
            "kind": self.kind.value,
            "threshold_amount": self.threshold_amount,
            "window_seconds": self.window_seconds,
            "max_count": self.max_count,
            "parameters": dict(self.parameters),
            "score": self.score,
            "severity": self.severity.value,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at_ms,
        }


@dataclass(frozen=True)
class RuleSet:
    rules: Mapping[str, Rule] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> RuleSet:
        result = cls()
        for rule in rules:
            result = result.apply(rule)
        return result

    def apply(self, rule: Rule) -> RuleSet:
        """The set with ``rule``, unless a newer version of it is already in."""
        current = self.rules.get(rule.rule_id)
        if current is not None and current.version >= rule.version:
            return self
        return replace(self, rules={**self.rules, rule.rule_id: rule})

    def remove(self, rule_id: str) -> RuleSet:
        """A tombstone on the compacted topic deletes the rule."""
        return replace(self, rules={k: v for k, v in self.rules.items() if k != rule_id})

    def for_source(self, source: Source) -> tuple[Rule, ...]:
        """The enabled rules for ``source``, by rule id."""
        return self._by_source[source]

    # Cached per rule set (a new set is built on every change): both are read for every event.
    @cached_property
    def _by_source(self) -> dict[Source, tuple[Rule, ...]]:
        ordered = sorted(self.rules.values(), key=lambda r: r.rule_id)
        return {source: tuple(r for r in ordered if r.applies_to(source)) for source in Source}

    @cached_property
    def version(self) -> str:
        """A short digest of every (rule id, version): alerts carry it so a decision is traceable."""
        text = ",".join(
            f"{r.rule_id}@{r.version}" for r in sorted(self.rules.values(), key=lambda r: r.rule_id)
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _rule(
    rule_id: str, kind: RuleKind, scope: RuleScope, score: float, severity: Severity, **kw: Any
) -> Rule:
    params = {k: str(v) for k, v in kw.pop("parameters", {}).items()}
    return Rule(rule_id=rule_id, version=1, name=rule_id.replace("-", " "), kind=kind, scope=scope,
                score=score, severity=severity, parameters=params, **kw)  # fmt: skip


# The rule book a new deployment starts with; `riverbank fraud rules publish` replaces any of them.
DEFAULT_RULES: tuple[Rule, ...] = (
    _rule("card-testing", RuleKind.CARD_TESTING, RuleScope.CARD, 0.8, Severity.HIGH,
          threshold_amount=Decimal("5.00"), window_seconds=600, max_count=4,
          parameters={"pattern": "CARD_TESTING"}),
    _rule("impossible-travel", RuleKind.GEO, RuleScope.CARD, 0.7, Severity.HIGH,
          parameters={"max_kmh": 900, "pattern": "IMPOSSIBLE_TRAVEL"}),
    _rule("amount-anomaly", RuleKind.AMOUNT_ANOMALY, RuleScope.CARD, 0.5, Severity.MEDIUM,
          parameters={"z": 4.0, "min_history": 10, "pattern": "MERCHANT_ANOMALY"}),
    _rule("new-merchant-large", RuleKind.NEW_MERCHANT, RuleScope.CARD, 0.3, Severity.MEDIUM,
          threshold_amount=Decimal("500.00"), parameters={"min_history": 10, "pattern": "MERCHANT_ANOMALY"}),
    _rule("new-country", RuleKind.NEW_COUNTRY, RuleScope.CARD, 0.2, Severity.LOW,
          threshold_amount=Decimal("100.00"), parameters={"min_history": 10}),
    _rule("card-velocity", RuleKind.VELOCITY, RuleScope.CARD, 0.4, Severity.MEDIUM,
          window_seconds=300, max_count=8),
    _rule("structuring", RuleKind.STRUCTURING, RuleScope.PAYMENT, 0.7, Severity.HIGH,
          threshold_amount=Decimal("10000.00"), window_seconds=7 * 86400, max_count=3,
          parameters={"band": 0.1, "pattern": "STRUCTURING"}),
    _rule("account-takeover", RuleKind.NEW_DEVICE, RuleScope.PAYMENT, 0.8, Severity.CRITICAL,
          threshold_amount=Decimal("2000.00"), window_seconds=3600,
          parameters={"min_history": 3, "pattern": "ACCOUNT_TAKEOVER"}),
    _rule("large-payment", RuleKind.THRESHOLD, RuleScope.PAYMENT, 0.2, Severity.LOW,
          threshold_amount=Decimal("50000.00")),
)  # fmt: skip
