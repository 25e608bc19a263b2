"""`riverbank cdc start|status|drop-slot|snapshot` and `riverbank extract`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from riverbank import cli

cdc_app = typer.Typer(
    help="Change data capture: Debezium connectors in the embedded engine.", no_args_is_help=True
)

ConnectorArg = Annotated[
    Path | None, typer.Argument(help="Kafka Connect connector JSON (default: cdc.connector setting).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(cdc_app, name="cdc")
    app.command("extract", help="Scheduled extraction for databases without log-based CDC.")(extract_command)


@cdc_app.command("start", help="Run a connector file in the Debezium embedded engine until stopped.")
def start_command(connector: ConnectorArg = None) -> None:
    import logging

    from cdc.engine import run_connector

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = cli.settings()
    cli.run(lambda: run_connector(settings, connector or settings.cdc.connector))


@cdc_app.command("status", help="Per connector: state, slot lag, last event, events count.")
def status_command(json_output: cli.JsonFlag = False) -> None:
    from cdc.report import connector_report

    rows = cli.run(lambda: connector_report(cli.settings()))
    if json_output:
        cli.print_json({"connectors": rows})
        return
    table = Table(title="riverbank cdc", title_justify="left")
    for name in ("connector", "state", "events", "tombstones", "DLQ", "last event", "slot", "lag"):
        table.add_column(name)
    for r in rows:
        lag = r.get("slot", {}) or {}
        table.add_row(
            r["connector"],
            r["state"],
            f"{r['events']:,}",
            f"{r['tombstones']:,}",
            str(r["dlq"]),
            r.get("last_event_time") or "-",
            lag.get("slot_name", "-"),
            "-" if lag.get("lag_bytes") is None else f"{lag['lag_bytes']:,} B",
        )
    cli.out.print(table)


@cdc_app.command("drop-slot", help="Drop the connector's replication slot and publication (WAL is released).")
def drop_slot_command(connector: ConnectorArg = None, json_output: cli.JsonFlag = False) -> None:
    from cdc.report import drop_connector_slot

    settings = cli.settings()
    result = cli.run(lambda: drop_connector_slot(settings, connector or settings.cdc.connector))
    if json_output:
        cli.print_json(result)
    else:
        cli.out.print(
            f"slot {result['slot_name']}: {'dropped' if result['slot'] else 'not found'}; "
            f"publication {result['publication_name']}: "
            f"{'dropped' if result['publication'] else 'not found'}"
        )


@cdc_app.command("snapshot", help="Ask the running connector for an incremental snapshot of tables.")
def snapshot_command(
    tables: Annotated[list[str], typer.Argument(help="schema.table, e.g. public.customers")],
    connector: Annotated[Path | None, typer.Option(help="Connector JSON.")] = None,
) -> None:
    from cdc.report import incremental_snapshot

    settings = cli.settings()
    signal_id = cli.run(lambda: incremental_snapshot(settings, connector or settings.cdc.connector, tables))
    cli.out.print(f"signal {signal_id} written")


def extract_command(
    once: Annotated[bool, typer.Option("--once", help="One pass over every table, then exit.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Extractor TOML.")] = None,
    json_output: cli.JsonFlag = False,
) -> None:
    from cdc.extract.runner import run_extractor

    settings = cli.settings()
    results: list[dict[str, Any]] = cli.run(
        lambda: run_extractor(settings, config or settings.cdc.extract_config, once=once, console=cli.err)
    )
    if json_output:
        cli.print_json({"tables": results})
    else:
        for r in results:
            cli.out.print(f"{r['table']} -> {r['topic']}: {r['rows']:,} rows")
