"""`riverbank demo`: the main job on the embedded stack, end to end.

Each capability adds its step here as it lands, so the demo always shows all that works.
"""

from __future__ import annotations

from rich.console import Console

from iceberg.sql.demo import demo_step as lake_sql_step
from infra.stack.cli import start_with_progress, status_table
from infra.topics import TOPICS, ensure_topics
from producers.cli import demo_step
from riverbank.registry.catalog import DEFAULT_SCHEMAS_DIR
from riverbank.registry.workflows import register_all
from riverbank.settings import Settings

NEXT_STEPS = """\
Next, as the pipeline lands, this demo will:
  1. stream changes of the bank database (PostgreSQL) through Debezium CDC;
  2. submit the PyFlink fraud job and show alerts arriving on fraud.alerts;
  3. land bronze, silver and gold Iceberg tables and query them in Athena and Redshift SQL."""


def run_demo(settings: Settings, console: Console) -> bool:
    """Returns True when every component is healthy."""
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

    console.print("4. Producing synthetic bank traffic with labelled fraud")
    demo_step(settings, console)

    console.print("5. The lake: row counts and analyst queries in Athena and Redshift SQL")
    lake_sql_step(settings, console)
    console.print("5. Lake: silver and gold tables refreshed from bronze")
    from iceberg.medallion_cli import demo_step as lake_demo_step

    lake_demo_step(settings, console)

    console.print("6. Status")
    from infra.stack import status

    result = status(settings)
    console.print(status_table(result))
    console.print(NEXT_STEPS)
    console.print("Stop the stack with: [bold]uv run riverbank down[/]")
    return result.healthy
