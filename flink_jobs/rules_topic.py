"""Fraud rules on the compacted ``fraud.rules`` topic: load rule files, publish, list.

Rule files (TOML, JSON or YAML) hold a list ``rules`` of rule definitions with the fields of
``schemas/fraud/fraud_rule.avsc``; every rule is validated by :class:`fraud.rules.Rule` before
anything is published, so a bad file publishes nothing. Records are Avro (Confluent wire format),
keyed by rule id, so compaction keeps the latest version of each rule.

Listing reads the topic from the beginning with :func:`flink_jobs.topic_reader.read_topic`: Tansu
reports high watermarks too low, so it reads until no record arrived for an idle period instead of
up to the end offset. The topic is small (one record per rule version), so this is cheap.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flink_jobs.avro import Encoder, RegistryConfig, decode
from flink_jobs.topic_reader import read_topic
from fraud.rules import Rule, RuleSet
from riverbank.errors import MissingDependencyError, ServiceUnavailableError, TerminalError
from riverbank.settings import Settings

DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "fraud" / "default_rules.toml"


class RuleFileError(TerminalError):
    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"rule file {path}: {problem}")


def load_rule_file(path: Path) -> list[Rule]:
    """Every rule of a TOML/JSON/YAML file, validated; raises naming the file and the rule."""
    if not path.is_file():
        raise RuleFileError(path, "not found")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise MissingDependencyError(
                    "PyYAML (for YAML rule files)", "uv pip install pyyaml"
                ) from None
            data = yaml.safe_load(text)
        else:
            raise RuleFileError(path, f"unknown format {suffix!r}; use .toml, .json or .yaml")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise RuleFileError(path, f"cannot be parsed: {exc}") from None
    entries = data.get("rules") if isinstance(data, Mapping) else data
    if not isinstance(entries, list) or not entries:
        raise RuleFileError(path, "expected a non-empty list `rules` of rule tables")
    rules = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise RuleFileError(path, f"rules[{index}] is not a table")
        rules.append(Rule.from_record(entry))  # RuleError names the rule and the field
    duplicated = {r.rule_id for r in rules if sum(o.rule_id == r.rule_id for o in rules) > 1}
    if duplicated:
        raise RuleFileError(path, f"rule ids appear twice: {', '.join(sorted(duplicated))}")
    return rules


def publish_rules(settings: Settings, rules: Iterable[Rule], *, now_ms: int | None = None) -> list[Rule]:
    """Publish rule versions to the rules topic (acknowledged by the broker); returns them."""
    from confluent_kafka import KafkaException, Producer

    topic = settings.fraud.rules_topic
    registry = RegistryConfig.from_settings(settings.schema_registry)
    encode_key, encode_value = Encoder(registry, f"{topic}-key"), Encoder(registry, f"{topic}-value")
    stamp = now_ms if now_ms is not None else int(time.time() * 1000)
    published = []
    errors: list[str] = []
    producer = Producer({**settings.kafka.producer_config(), "acks": "all", "enable.idempotence": True})

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for rule in rules:
        record = rule.to_record()
        if not record["updated_at"]:
            record["updated_at"] = stamp
        try:
            producer.produce(topic, encode_value(record), encode_key(rule.rule_id), on_delivery=delivered)
        except KafkaException as exc:
            raise ServiceUnavailableError(f"publishing rule {rule.rule_id} to {topic}: {exc}") from None
        published.append(rule)
    left = producer.flush(30)
    if left or errors:
        raise ServiceUnavailableError(
            f"{left} rule records unacknowledged, {len(errors)} failed on {topic}: {'; '.join(errors[:3])}"
        )
    return published


def read_rules(settings: Settings, *, idle_s: float = 2.0, timeout_s: float = 30.0) -> RuleSet:
    """The rules currently on the topic: every record folded by version, tombstones deleting."""
    registry = RegistryConfig.from_settings(settings.schema_registry)
    rules = RuleSet()
    for record in read_topic(settings, settings.fraud.rules_topic, idle_s=idle_s, timeout_s=timeout_s):
        rule_id = str(decode(registry, record.key or b""))
        if record.value is None:
            rules = rules.remove(rule_id)
        else:
            rules = rules.apply(Rule.from_record(decode(registry, record.value)))
    return rules


def rule_rows(rules: RuleSet) -> list[dict[str, Any]]:
    return [
        {
            "rule_id": r.rule_id,
            "version": r.version,
            "kind": r.kind.value,
            "scope": r.scope.value,
            "score": r.score,
            "severity": r.severity.value,
            "enabled": r.enabled,
            "pattern": r.pattern,
            "name": r.name,
        }
        for r in sorted(rules.rules.values(), key=lambda r: r.rule_id)
    ]
