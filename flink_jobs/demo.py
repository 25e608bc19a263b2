"""The demo's fraud steps: publish the default rules and start the job, later show its alerts."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from rich.console import Console

from flink_jobs import runner
from flink_jobs.avro import RegistryConfig, decode
from flink_jobs.rules_topic import DEFAULT_RULES_FILE, load_rule_file, publish_rules
from flink_jobs.topic_reader import Record, read_topic
from riverbank.settings import Settings


class FraudJobStart:
    """The fraud job's submission, running in the background while the demo produces traffic: the
    `flink run` client (a JVM plus the Python job compiler) takes tens of seconds on two cores."""

    def __init__(self, settings: Settings) -> None:
        self.started = time.monotonic()
        running = [
            j
            for j in runner.list_jobs(settings)
            if j.name == runner.JOB_NAMES["fraud"] and j.state == "RUNNING"
        ]
        self.already_running = running[0].job_id if running else None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fraud-submit")
        self._submitted: Future[runner.JobInfo] | None = None
        if self.already_running is None:
            self._submitted = self._pool.submit(runner.submit, settings, "fraud")

    def result(self) -> str:
        """A line saying which job runs; raises what the submission raised."""
        try:
            if self._submitted is None:
                return f"fraud job already running: {self.already_running}"
            job = self._submitted.result()
            waited = time.monotonic() - self.started
            return f"fraud job {job.job_id} running, {waited:.0f}s after its submission began"
        finally:
            self._pool.shutdown(wait=False)


def start_step(settings: Settings, console: Console) -> FraudJobStart:
    """Publish the rules, then submit the job without waiting for it. The job reads from the
    earliest offsets of a new group, so traffic produced meanwhile is scored all the same."""
    rules = publish_rules(settings, load_rule_file(DEFAULT_RULES_FILE))
    console.print(
        f"  published {len(rules)} rules from {DEFAULT_RULES_FILE.name} to {settings.fraud.rules_topic}"
    )
    start = FraudJobStart(settings)
    if start.already_running is None:
        console.print("  submitting the fraud job in the background while the next steps run")
    return start


def alerts_step(settings: Settings, console: Console, start: FraudJobStart, *, wait_s: float = 60.0) -> int:
    """Wait for the job to run and its alerts to stop growing; returns how many alerts there are."""
    console.print(f"  {start.result()}")
    registry = RegistryConfig.from_settings(settings.schema_registry)
    deadline = time.monotonic() + wait_s
    alerts: list[Record] = []
    while time.monotonic() < deadline:
        records = read_topic(settings, settings.fraud.alerts_topic, idle_s=3.0, timeout_s=wait_s)
        if records and len(records) == len(alerts):
            break
        alerts = records
    console.print(f"  {len(alerts):,} alerts on {settings.fraud.alerts_topic}; the latest:")
    for record in alerts[-3:]:
        alert = decode(registry, record.value or b"")
        console.print(
            f"    {alert['severity']:<8} score {alert['score']:.2f} {alert['source']:<7} "
            f"{alert['amount']} {alert['currency']} rules {', '.join(alert['rule_ids'])} "
            f"({alert['model_version']})"
        )
    return len(alerts)
