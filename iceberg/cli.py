"""`riverbank sink run` and `riverbank lake tables | maintain`, plus the demo's lake step."""

from __future__ import annotations

import signal
import threading
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from iceberg.status import is_running, sink_status_file, write_status
from riverbank import cli
from riverbank.settings import Settings

sink_app = typer.Typer(help="The Kafka to Iceberg bronze sink.", no_args_is_help=True)
lake_app = typer.Typer(help="The Iceberg lake: tables and maintenance.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sink_app, name="sink")
    app.add_typer(lake_app, name="lake")


def _write_status(settings: Settings, state: str, stats: Any) -> None:
    counters = {"consumed": stats.consumed, "landed": stats.landed, "quarantined": stats.quarantined}
    write_status(sink_status_file(settings), state, **counters)


@sink_app.command("run", help="Consume the bronze topics and land them exactly once until stopped.")
def sink_run(
    duration: Annotated[
        float, typer.Option("--duration", min=0.0, help="Stop after this many seconds; 0 runs until SIGTERM.")
    ] = 0.0,
    json_output: cli.JsonFlag = False,
) -> None:
    from iceberg.sink import BronzeSink

    settings = cli.run(cli.settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sink = BronzeSink(settings)

    def run() -> Any:
        try:
            sink.open()
            _write_status(settings, "running", sink.stats)
            interval = settings.lake.commit_interval_s
            deadline = time.monotonic() + duration if duration else None
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                # Run in slices so the status file stays fresh for the stack's probe.
                sink.run(stop, duration_s=max(interval, 5.0))
                _write_status(settings, "running", sink.stats)
            return sink.stats
        finally:
            sink.close()
            _write_status(settings, "stopped", sink.stats)

    stats = cli.run(run)
    summary = {
        "consumed": stats.consumed,
        "landed": stats.landed,
        "quarantined": stats.quarantined,
        "commits": stats.commits,
        "startup_s": round(stats.startup_s, 3),
        "landed_by_table": stats.landed_by_table,
    }
    if json_output:
        cli.print_json(summary)
    else:
        cli.out.print(
            f"sink stopped: consumed {stats.consumed:,}, landed {stats.landed:,}, "
            f"quarantined {stats.quarantined:,} in {stats.commits:,} commits"
        )


@lake_app.command("tables", help="List the lake's tables with row and data-file counts.")
def tables_command(json_output: cli.JsonFlag = False) -> None:
    settings = cli.run(cli.settings)
    rows = cli.run(lambda: table_summaries(settings))
    if json_output:
        cli.print_json(rows)
        return
    table = Table(title="Riverbank lake", title_justify="left")
    for column in ("table", "rows", "data files", "snapshots", "schema id"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for r in rows:
        table.add_row(
            r["table"], f"{r['rows']:,}", f"{r['data_files']:,}", f"{r['snapshots']:,}", str(r["schema_id"])
        )
    cli.out.print(table)


def table_summaries(settings: Settings) -> list[dict[str, Any]]:
    """table, rows, data files, snapshots of every lake table (from the current snapshot summary)."""
    from iceberg.catalog import load_lake_catalog
    from iceberg.maintain import lake_tables

    catalog = load_lake_catalog(settings)
    out = []
    for namespace, name in lake_tables(catalog, settings):
        table = catalog.load_table((namespace, name))
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        out.append(
            {
                "table": f"{namespace}.{name}",
                "rows": int(summary.get("total-records", 0)),
                "data_files": int(summary.get("total-data-files", 0)),
                "snapshots": len(table.snapshots()),
                "schema_id": table.schema().schema_id,
                "location": table.location(),
            }
        )
    return out


@lake_app.command("maintain", help="Compact small files, expire old snapshots, delete orphan files.")
def maintain_command(
    table: Annotated[
        list[str] | None, typer.Option("--table", help="Only this table (namespace.name); repeatable.")
    ] = None,
    compact: Annotated[bool, typer.Option("--compact/--no-compact")] = True,
    expire: Annotated[bool, typer.Option("--expire/--no-expire")] = True,
    orphans: Annotated[bool, typer.Option("--orphans/--no-orphans")] = True,
    json_output: cli.JsonFlag = False,
) -> None:
    from iceberg.maintain import maintain

    settings = cli.run(cli.settings)
    with cli.err.status("maintaining the lake's tables"):
        reports = cli.run(lambda: maintain(settings, table, compact=compact, expire=expire, orphans=orphans))
    if json_output:
        cli.print_json([r.to_json() for r in reports])
        return
    out = Table(title="lake maintain", title_justify="left")
    for column in ("table", "files before", "files after", "partitions compacted", "expired", "orphans"):
        out.add_column(column, justify="left" if column == "table" else "right")
    for r in reports:
        out.add_row(
            r.table,
            str(r.data_files_before),
            str(r.data_files_after),
            str(r.partitions_compacted),
            str(r.snapshots_expired),
            f"{r.orphans_deleted} ({r.orphan_bytes:,} B)",
        )
    cli.out.print(out)


def sink_is_running(settings: Settings, max_age_s: float = 30.0) -> bool:
    """A sink wrote its status file recently and its process is alive."""
    return is_running(sink_status_file(settings), max_age_s)


def demo_step(settings: Settings, console: Console) -> None:
    """Make sure bronze is being fed (the supervised sink, else a short in-process run); show counts."""
    if sink_is_running(settings):
        console.print("  the supervised sink is running; waiting one commit interval")
        time.sleep(settings.lake.commit_interval_s * 2 + 1)
    else:
        from iceberg.sink import run_sink

        console.print("  no sink running: landing what the topics hold now (10 s)")
        run_sink(settings, duration_s=10.0)
    summaries = table_summaries(settings)
    table = Table(title="bronze tables", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("data files", justify="right")
    for r in summaries:
        if r["table"].startswith(settings.lake.bronze_namespace + "."):
            table.add_row(r["table"], f"{r['rows']:,}", f"{r['data_files']:,}")
    console.print(table)
