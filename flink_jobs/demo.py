"""The demo's fraud step: publish the default rules, run the fraud job, show alerts arriving."""

from __future__ import annotations

import time

from rich.console import Console

from flink_jobs import runner
from flink_jobs.avro import RegistryConfig, decode
from flink_jobs.rules_topic import DEFAULT_RULES_FILE, load_rule_file, publish_rules
from flink_jobs.topic_reader import Record, read_topic
from riverbank.settings import Settings


def demo_step(settings: Settings, console: Console, *, wait_s: float = 60.0) -> int:
    """Returns the number of alerts on the alerts topic. Relies on traffic already produced (the
    producer step runs just before); the job starts from the earliest offsets of a new group."""
    rules = publish_rules(settings, load_rule_file(DEFAULT_RULES_FILE))
    console.print(
        f"  published {len(rules)} rules from {DEFAULT_RULES_FILE.name} to {settings.fraud.rules_topic}"
    )
    running = [
        j for j in runner.list_jobs(settings) if j.name == runner.JOB_NAMES["fraud"] and j.state == "RUNNING"
    ]
    if running:
        console.print(f"  fraud job already running: {running[0].job_id}")
    else:
        started = time.monotonic()
        job = runner.submit(settings, "fraud")
        console.print(f"  submitted the fraud job {job.job_id} ({time.monotonic() - started:.0f}s)")
    registry = RegistryConfig.from_settings(settings.schema_registry)
    deadline = time.monotonic() + wait_s
    alerts: list[Record] = []
    while time.monotonic() < deadline:
        # Scoring starts once the job runs; wait until alerts stop growing.
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
