"""`riverbank demo`: the main job on the embedded stack, end to end.

Stack, topics and schemas; the fraud job submitted before traffic starts (its client runs in the
background); producers; a change in the bank database through CDC; alerts; then bronze, silver
and gold and analyst SQL in both dialects. Each step prints what it saw, so a broken step is
visible where it happens.
"""

from __future__ import annotations

from rich.console import Console

from infra.stack.cli import start_with_progress, status_table
from infra.topics import TOPICS, ensure_topics
from riverbank.registry.catalog import DEFAULT_SCHEMAS_DIR
from riverbank.registry.workflows import register_all
from riverbank.settings import Settings


def run_demo(settings: Settings, console: Console) -> bool:
    """Returns True when every component is healthy and every step showed its result."""
    # Imported here: each step pulls in its own stack (pyiceberg, DuckDB, JPype clients).
    from cdc.demo import demo_step as cdc_step
    from flink_jobs.demo import alerts_step, start_step
    from iceberg.cli import demo_step as bronze_step
    from iceberg.medallion_cli import demo_step as medallion_step
    from iceberg.sql.demo import demo_step as sql_step
    from infra.stack import status
    from producers.cli import demo_step as produce_step

    console.rule("[bold]Riverbank demo")
    console.print("1. Starting the embedded stack (supervised; `riverbank down` stops it)")
    start_with_progress(settings, console)

    console.print("2. Creating topics")
    created = ensure_topics(settings)
    for topic in TOPICS:
        mark = "created" if topic.name in created else "exists"
        console.print(f"  {topic.name:<24} {mark:<8} {topic.purpose}")

    console.print("3. Registering the Avro schemas (TopicNameStrategy subjects)")
    for registered in register_all(settings.schema_registry, DEFAULT_SCHEMAS_DIR):
        console.print(f"  {registered.subject:<34} id {registered.id:<4} version {registered.version}")

    console.print("4. Fraud scoring on Flink: rules published, job submitted")
    fraud_job = start_step(settings, console)

    console.print("5. Producing synthetic bank traffic with labelled fraud")
    produce_step(settings, console)

    console.print("6. Change data capture: a change in the bank database arrives on Kafka (Debezium)")
    cdc_ok = cdc_step(settings, console)

    console.print("7. Fraud alerts from the job's scores")
    alerts = alerts_step(settings, console, fraud_job)

    console.print("8. Bronze: Kafka topics landed exactly once in Iceberg by the supervised sink")
    bronze_step(settings, console)

    console.print("9. Silver and gold: CDC applied, PII protected, business aggregates refreshed")
    medallion_step(settings, console)

    console.print("10. Analyst SQL over the lake, in the Athena and Redshift dialects (DuckDB)")
    sql_step(settings, console)

    console.print("11. Status")
    result = status(settings)
    console.print(status_table(result))
    console.print("Stop the stack with: [bold]uv run riverbank down[/]")
    missing = [
        what
        for what, ok in (
            ("a component is not healthy (see the status table)", result.healthy),
            ("the CDC change did not arrive (step 6)", cdc_ok),
            ("the fraud job wrote no alert (step 7)", alerts > 0),
        )
        if not ok
    ]
    for what in missing:
        console.print(f"[red]demo incomplete:[/] {what}")
    return not missing
