"""The fraud job on a real Flink cluster, against the offline result of fraud/ on the same stream.

The session stack with the module's own topics, and one job submission shared by the module,
through the CLI (the TaskManager killed here is restarted by the stack's supervisor). The tests
run in order and build on each other: seeded batch 1 with the default rules; a rule published
while the job runs; batch 3 across a kill -9 of the TaskManager; stop with a savepoint, resume,
batch 4, cancel. Each batch continues the same bank, so keyed state carries
over and a lost or reset state changes the alerts.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import Producer

from bench.fraud_traffic import OfflineScorer, Writer, expected_alerts, generate
from flink_jobs.avro import RegistryConfig, decode
from flink_jobs.rules_topic import DEFAULT_RULES_FILE, load_rule_file, read_rules
from flink_jobs.schemas import ensure_fraud_subjects
from flink_jobs.topic_reader import read_topic
from fraud.events import Source
from fraud.rules import DEFAULT_RULES, Rule, RuleSet
from infra.topics import TopicSpec, ensure_topics
from riverbank.settings import Settings, load_settings
from tests.stack_harness import RunningStack, environ

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

THRESHOLD = 0.5
CATCH_RULE = {
    "rule_id": "test-large-card",
    "version": 1,
    "name": "large card purchase (test)",
    "kind": "THRESHOLD",
    "scope": "CARD",
    "score": 0.6,
    "severity": "MEDIUM",
    "threshold_amount": "150.00",
}


@dataclass
class Scenario:
    stack: RunningStack
    settings: Settings
    job_id: str
    scorer: OfflineScorer
    writer: Writer
    rules: RuleSet
    next_start_ms: int
    last_events: list[tuple[Source, dict[str, Any]]] = field(default_factory=list)

    def cli(self, *args: str) -> Any:
        result = self.stack.cli(*args)
        assert result.returncode == 0, f"riverbank {' '.join(args)}: {result.stderr}\n{result.stdout}"
        return result

    def next_batch(
        self, seed: int, count: int
    ) -> tuple[list[tuple[Source, dict[str, Any]]], dict[str, tuple[tuple[str, ...], float, str]]]:
        """Generate and score offline the next batch (not produced yet): its events and expected alerts."""
        batch = generate(seed, count, self.next_start_ms)
        self.next_start_ms = batch.end_ms + 1000
        self.last_events = batch.events
        return batch.events, expected_alerts(self.scorer.run(batch.events, self.rules))

    def send(self, events: list[tuple[Source, dict[str, Any]]]) -> None:
        self.writer.send(events)
        self.writer.flush()

    def batch(self, seed: int, count: int) -> dict[str, tuple[tuple[str, ...], float, str]]:
        """Generate, produce and score offline the next batch; its expected alerts."""
        events, expected = self.next_batch(seed, count)
        self.send(events)
        return expected

    def alerts(self, until_ids: set[str], timeout: float = 90) -> list[dict[str, Any]]:
        """Every alert on the alerts topic (read_committed), read until all ``until_ids`` are in."""
        registry = RegistryConfig.from_settings(self.settings.schema_registry)
        decoded: list[dict[str, Any]] = []

        def complete(records: list[Any]) -> bool:
            decoded[len(decoded) :] = [decode(registry, r.value) for r in records[len(decoded) :]]
            return until_ids <= {str(a["source_event_id"]) for a in decoded}

        read_topic(
            self.settings, self.settings.fraud.alerts_topic, idle_s=timeout, timeout_s=timeout, until=complete
        )
        return decoded


def by_event(alerts: list[dict[str, Any]], ids: set[str]) -> dict[str, tuple[tuple[str, ...], float, str]]:
    return {
        str(a["source_event_id"]): (tuple(a["rule_ids"]), a["score"], a["model_version"])
        for a in alerts
        if str(a["source_event_id"]) in ids
    }


@pytest.fixture(scope="module")
def scenario(embedded_stack: RunningStack) -> Iterator[Scenario]:
    yield from started_scenario(embedded_stack, "at-least-once")


@pytest.fixture(scope="module")
def exactly_once_scenario(embedded_stack: RunningStack) -> Iterator[Scenario]:
    """A second job on topics of its own, writing with Kafka transactions; cancelled by its test."""
    yield from started_scenario(embedded_stack, "exactly-once")


def started_scenario(embedded_stack: RunningStack, guarantee: str) -> Iterator[Scenario]:
    stack = RunningStack(embedded_stack.settings, dict(embedded_stack.env))
    suffix = uuid.uuid4().hex[:6]
    names = {
        "CARD_TOPIC": f"cards-{suffix}",
        "PAYMENT_TOPIC": f"payments-{suffix}",
        "RULES_TOPIC": f"rules-{suffix}",
        "SCORED_TOPIC": f"scored-{suffix}",
        "ALERTS_TOPIC": f"alerts-{suffix}",
        "GROUP_ID": f"fraud-{suffix}",
        "SINK_GUARANTEE": guarantee,
        "TRANSACTIONAL_ID_PREFIX": f"fraud-{suffix}",
    }
    stack.env.update({f"RIVERBANK_FRAUD__{k}": v for k, v in names.items()})
    stack.env["RIVERBANK_FRAUD__ALERT_THRESHOLD"] = str(THRESHOLD)
    with environ(stack.env):
        settings = load_settings()
    fraud = settings.fraud
    ensure_topics(
        settings,
        (
            TopicSpec(fraud.card_topic, "test", partitions=2),
            TopicSpec(fraud.payment_topic, "test", partitions=2),
            TopicSpec(fraud.rules_topic, "test", {"cleanup.policy": "compact"}, partitions=1),
            TopicSpec(fraud.scored_topic, "test", partitions=2),
            TopicSpec(fraud.alerts_topic, "test", partitions=2),
            TopicSpec("riverbank.dlq", "test", partitions=1),
        ),
    )
    ensure_fraud_subjects(settings)
    published = stack.cli("fraud", "rules", "publish", str(DEFAULT_RULES_FILE), "--json")
    assert published.returncode == 0, published.stderr
    submitted = stack.cli("jobs", "submit", "fraud", "--detach", "--json")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    writer = Writer(settings)
    try:
        yield Scenario(
            stack,
            settings,
            job_id,
            OfflineScorer(THRESHOLD),
            writer,
            RuleSet.of(DEFAULT_RULES),
            next_start_ms=int(time.time() * 1000) - 600_000,
        )
    finally:
        writer.close()


def test_rules_publish_and_list_round_trip(scenario: Scenario) -> None:
    listed = json.loads(scenario.cli("fraud", "rules", "list", "--json").stdout)
    assert listed["rule_set_version"] == RuleSet.of(load_rule_file(DEFAULT_RULES_FILE)).version
    assert {r["rule_id"] for r in listed["rules"]} == {r.rule_id for r in DEFAULT_RULES}


def test_alerts_match_the_offline_scoring_of_the_same_stream(scenario: Scenario) -> None:
    expected = scenario.batch(seed=11, count=2500)
    assert len(expected) >= 20  # the seed injects fraud; the comparison is not vacuous
    alerts = scenario.alerts(set(expected))
    got = by_event(alerts, set(expected) | {str(a["source_event_id"]) for a in alerts})
    assert got == expected
    scored = read_topic(
        scenario.settings,
        scenario.settings.fraud.scored_topic,
        idle_s=3,
        timeout_s=60,
        until=lambda rs: len(rs) >= 2500,
    )
    assert len(scored) >= 2400  # every event scored (the batch is ~2,500 events)
    registry = RegistryConfig.from_settings(scenario.settings.schema_registry)
    sample = decode(registry, scored[0].value or b"")
    assert sample["rule_set_version"] == RuleSet.of(DEFAULT_RULES).version
    # An event ten minutes behind the watermark: still scored, flagged late.
    source, record = next((s, r) for s, r in reversed(scenario.last_events) if s is Source.CARD)
    late = {**record, "event_id": str(uuid.uuid4()), "event_time": scenario.next_start_ms - 1_200_000}
    scenario.writer.send([(source, late)])
    scenario.writer.flush()
    scenario.scorer.run([(source, late)], scenario.rules)  # the offline state takes it in too

    matches: list[bool] = []

    def scored_late(records: list[Any]) -> bool:  # decodes each record once
        matches.extend(
            str(decode(registry, r.value)["event_id"]) == late["event_id"] for r in records[len(matches) :]
        )
        return any(matches)

    records = read_topic(scenario.settings, scenario.settings.fraud.scored_topic, idle_s=60, timeout_s=60,
                         until=scored_late)  # fmt: skip
    [flagged] = [
        d for d in (decode(registry, r.value) for r in records) if str(d["event_id"]) == late["event_id"]
    ]
    assert flagged["late"] is True


def test_a_rule_published_while_the_job_runs_changes_the_alerts(scenario: Scenario, tmp_path: Path) -> None:
    rule_file = tmp_path / "rules.json"
    rule_file.write_text(json.dumps({"rules": [CATCH_RULE]}))
    scenario.cli("fraud", "rules", "publish", str(rule_file))
    scenario.rules = scenario.rules.apply(Rule.from_record(CATCH_RULE))
    assert read_rules(scenario.settings).version == scenario.rules.version
    # Events after the rule: large card purchases now alert with the new rule and rule set version.
    deadline = time.monotonic() + 60
    seed, fired = 100, []
    while not fired and time.monotonic() < deadline:
        expected = scenario.batch(seed=seed, count=300)
        seed += 1
        catch = {e for e, (ids, _, _) in expected.items() if CATCH_RULE["rule_id"] in ids}
        alerts = scenario.alerts(catch, timeout=15)
        fired = [a for a in alerts if CATCH_RULE["rule_id"] in a["rule_ids"]]
    assert fired, "no alert of the published rule within 60 s"
    assert fired[-1]["model_version"] == f"rules-{scenario.rules.version}"
    assert any(f"[{CATCH_RULE['rule_id']} v1]" in reason for reason in fired[-1]["reasons"])
    jobs = json.loads(scenario.cli("jobs", "list", "--json").stdout)
    assert [j["state"] for j in jobs if j["id"] == scenario.job_id] == ["RUNNING"]  # no restart


def test_malformed_transactions_and_rules_go_to_the_dlq_and_the_job_keeps_scoring(scenario: Scenario) -> None:
    fraud = scenario.settings.fraud
    producer = Producer(scenario.settings.kafka.client_config())
    producer.produce(fraud.card_topic, b"\x00\x00\x00", key=b"card-x")  # too short for the wire format
    producer.produce(fraud.rules_topic, b"not avro", key=b"\x00\x00\x00\x00\x00")  # framed, empty body
    producer.flush(10)

    def from_topics(records: list[Any]) -> dict[str, dict[str, bytes | None]]:
        found = {}
        for record in records:
            headers = dict(record.headers)
            source = (headers.get("dlq.source.topic") or b"").decode()
            if source in (fraud.card_topic, fraud.rules_topic):
                found[source] = headers
        return found

    dead = from_topics(read_topic(scenario.settings, "riverbank.dlq", idle_s=60, timeout_s=60,
                                  until=lambda rs: len(from_topics(rs)) == 2))  # fmt: skip
    assert set(dead) == {fraud.card_topic, fraud.rules_topic}
    assert dead[fraud.card_topic]["dlq.stage"] == b"decode"
    assert b"too short" in (dead[fraud.card_topic]["dlq.reason"] or b"")
    assert dead[fraud.rules_topic]["dlq.stage"] == b"rule"
    # Still scoring with the same rules: the next batch's alerts are the expected ones.
    expected = scenario.batch(seed=31, count=400)
    assert by_event(scenario.alerts(set(expected)), set(expected)) == expected


def taskmanager(stack: RunningStack) -> psutil.Process:
    state_dir = str(stack.settings.stack.state_dir)
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "TaskManagerRunner" in cmdline and state_dir in cmdline:
            return proc
    raise AssertionError(f"no TaskManager of {state_dir} running")


def dies(proc: psutil.Process, timeout_s: float = 15.0) -> bool:
    """Gone, or a zombie its supervisor has not reaped yet, within ``timeout_s`` (a SIGKILLed JVM
    takes a moment to release its memory)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_kill_taskmanager_mid_stream_restores_from_checkpoint(
    request: pytest.FixtureRequest, guarantee: str
) -> None:
    if guarantee == "at-least-once":
        kill_taskmanager_mid_stream(request.getfixturevalue("scenario"))
        return
    scenario: Scenario = request.getfixturevalue("exactly_once_scenario")
    try:
        kill_taskmanager_mid_stream(scenario)
    finally:  # the module's later tests expect the one job of `scenario`
        scenario.cli("jobs", "cancel", scenario.job_id)


def kill_taskmanager_mid_stream(scenario: Scenario) -> None:
    events, expected = scenario.next_batch(seed=21, count=3000)
    half = len(events) // 2
    first = {str(record["event_id"]) for _, record in events[:half]}
    after_kill = set(expected) - first
    assert after_kill and len(after_kill) < len(expected)  # alerts on both sides of the kill
    # The job is scoring this stream (the first half's alerts are out) when its TaskManager dies;
    # the second half is produced while it is down, so only the restored job can alert on it.
    scenario.send(events[:half])
    scenario.alerts(set(expected) & first)
    victim = taskmanager(scenario.stack)
    os.kill(victim.pid, signal.SIGKILL)
    assert dies(victim)
    scenario.send(events[half:])
    alerts = scenario.alerts(set(expected), timeout=180)
    ids = [str(a["source_event_id"]) for a in alerts if str(a["source_event_id"]) in expected]
    assert by_event(alerts, set(expected)) == expected  # each expected alert, none different
    if scenario.settings.fraud.sink_guarantee == "exactly-once":
        # read_committed: each alert exactly once. The aborted transaction of the killed job holds
        # alerts too: the restored job wrote them again (its restore aborts lingering transactions).
        assert len(ids) == len(set(ids)), Counter(ids).most_common(5)
    # At-least-once sink (the default): replayed records may repeat; report how many.
    print(
        f"\n{len(ids)} alerts for {len(expected)} expected after kill -9 "
        f"({len(ids) - len(set(ids))} duplicates)"
    )
    assert taskmanager(scenario.stack).pid != victim.pid


def test_stop_with_savepoint_resume_and_cancel(scenario: Scenario, tmp_path: Path) -> None:
    # A savepoint that cannot be written fails at once with the reason, and the job runs on.
    refused = scenario.stack.cli("jobs", "stop", scenario.job_id, "--savepoint", "/proc/no-such-dir")
    assert refused.returncode != 0
    assert "Failed to create savepoint directory" in refused.stderr, refused.stderr
    assert scenario.cli("jobs", "list", "--json").stdout.count('"RUNNING"') == 1
    # A stop asked for while the job fails over (its TaskManager just died) waits for the restart.
    victim = taskmanager(scenario.stack)
    os.kill(victim.pid, signal.SIGKILL)
    stopped = json.loads(
        scenario.cli("jobs", "stop", scenario.job_id, "--savepoint", str(tmp_path), "--json").stdout
    )
    savepoint = stopped["savepoint"]
    assert Path(savepoint.removeprefix("file:")).joinpath("_metadata").is_file()
    resumed = json.loads(
        scenario.cli("jobs", "submit", "fraud", "--from-savepoint", savepoint, "--detach", "--json").stdout
    )
    assert resumed["id"] != scenario.job_id and resumed["state"] == "RUNNING"
    # State came back: batch 4's alerts depend on every card's and account's history.
    expected = scenario.batch(seed=31, count=1500)
    alerts = scenario.alerts(set(expected))
    assert by_event(alerts, set(expected)) == expected
    scenario.cli("jobs", "cancel", resumed["id"])
    states = {j["id"]: j["state"] for j in json.loads(scenario.cli("jobs", "list", "--json").stdout)}
    assert states[resumed["id"]] == "CANCELED" and states[scenario.job_id] == "FINISHED"
    missing = scenario.stack.cli("jobs", "cancel", resumed["id"][::-1])
    assert missing.returncode != 0 and "no Flink job" in missing.stderr
