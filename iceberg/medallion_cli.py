"""`riverbank lake refresh` and `riverbank lake check-balances`, plus the demo's lake step.

The commands join the ``lake`` group (shared with `lake maintain`): whichever package registers
first creates it, the other adds its commands to it.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from iceberg.medallion import BalanceReport, RefreshResult
from iceberg.status import is_running, refresh_status_file, write_status
from riverbank import cli
from riverbank.settings import Settings


def lake_group(app: typer.Typer) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "lake" and group.typer_instance is not None:
            return group.typer_instance
    group_app = typer.Typer(help="The Iceberg lake: bronze, silver and gold tables.", no_args_is_help=True)
    app.add_typer(group_app, name="lake")
    return group_app


def register(app: typer.Typer) -> None:
    group = lake_group(app)
    group.command("refresh")(refresh_command)
    group.command("check-balances")(check_balances_command)


def result_table(result: RefreshResult) -> Table:
    table = Table(title=f"lake refresh: {result.seconds:.2f}s", title_justify="left")
    for column in ("table", "read", "applied", "duplicates", "rejected", "seconds"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for t in [*result.silver, *result.gold]:
        table.add_row(
            t.table,
            f"{t.read:,}",
            f"{t.applied:,}",
            f"{t.duplicates:,}",
            f"{t.rejected:,}",
            f"{t.seconds:.2f}",
        )
    return table


def refresh_command(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep refreshing every medallion.refresh_interval_s.")
    ] = False,
    json_output: cli.JsonFlag = False,
) -> None:
    """One pass bronze -> silver -> gold (exactly once per bronze row); --loop until Ctrl-C or SIGTERM."""
    from iceberg.catalog import load_lake_catalog
    from iceberg.medallion import refresh, refresh_loop

    settings = cli.run(cli.settings)
    catalog = cli.run(lambda: load_lake_catalog(settings))

    def show(result: RefreshResult) -> None:
        if json_output:
            cli.print_json(result.as_dict())
        else:
            cli.out.print(result_table(result))

    if not loop:
        show(cli.run(lambda: refresh(settings, catalog)))
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # supervisord stops it with SIGTERM
        signal.signal(signum, lambda *_: stop.set())
    status = refresh_status_file(settings)
    passes = 0

    def on_pass(result: RefreshResult) -> None:
        nonlocal passes
        passes += 1
        write_status(status, "running", passes=passes, last_pass_s=round(result.seconds, 3))
        if result.changed:
            show(result)

    write_status(status, "running", passes=0)
    try:
        cli.run(lambda: refresh_loop(settings, catalog, stop, on_pass=on_pass))
    finally:
        write_status(status, "stopped", passes=passes)


def refresh_is_running(settings: Settings) -> bool:
    """The stack's probe: a refresh loop reported within three intervals (at least a minute: a
    pass over a large backlog takes a while) and its process is alive."""
    return is_running(refresh_status_file(settings), max(60.0, 3 * settings.medallion.refresh_interval_s))


def balances_json(report: BalanceReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "accounts_source": report.accounts_source,
        "accounts_silver": report.accounts_silver,
        "mismatches": [
            {"account_id": m.account_id, "source": str(m.source_balance), "silver": str(m.silver_balance)}
            for m in report.mismatches
        ],
    }


def check_balances_command(json_output: cli.JsonFlag = False) -> None:
    """Compare silver accounts' balances with the source database (the ledger invariant).

    Exit code 0 when they are equal, 5 when any account differs or is missing on one side.
    """
    from iceberg.catalog import load_lake_catalog
    from iceberg.medallion import check_balances

    settings = cli.run(cli.settings)
    report = cli.run(lambda: check_balances(settings, load_lake_catalog(settings)))
    if json_output:
        cli.print_json(balances_json(report))
    else:
        cli.out.print(
            f"{report.accounts_source:,} accounts in the source database, "
            f"{report.accounts_silver:,} in silver: "
            + ("balances equal" if report.ok else f"{len(report.mismatches):,} differ")
        )
        for m in report.mismatches[:20]:
            cli.out.print(f"  account {m.account_id}: source {m.source_balance}  silver {m.silver_balance}")
    if not report.ok:
        raise typer.Exit(5)


def demo_step(settings: Settings, console: Console) -> RefreshResult:
    """The demo's lake step: one refresh pass, row counts per silver/gold table, a few gold rows."""
    from pyiceberg.exceptions import CommitFailedException

    from iceberg.catalog import load_lake_catalog
    from iceberg.medallion import refresh

    catalog = load_lake_catalog(settings)
    for attempt in range(3):
        try:
            result = refresh(settings, catalog)
            break
        except CommitFailedException:
            # The stack's refresh loop committed the same table first; bookmarks make a retried
            # pass apply only what is still missing.
            if attempt == 2:
                raise
    console.print(f"  bronze -> silver -> gold in {result.seconds:.1f}s")
    for namespace in (settings.lake.silver_namespace, settings.lake.gold_namespace):
        for identifier in sorted(catalog.list_tables(namespace)):
            name = ".".join(identifier)
            rows = catalog.load_table(identifier).scan().count()
            console.print(f"  {name:<32} {rows:>9,} rows")
    gold = settings.lake.gold_namespace
    kpis = catalog.load_table(f"{gold}.fraud_kpis_daily").scan().to_arrow().to_pylist()
    for row in sorted(kpis, key=lambda r: (r["day"], r["pattern"]))[-4:]:
        console.print(
            f"  {row['day']} {row['pattern']:<18} labelled {row['labelled_events']:>4} detected "
            f"{row['detected_events']:>4} false+ {row['false_positive_events']:>4} "
            f"precision {_pct(row['precision'])} recall {_pct(row['recall'])}"
        )
    risky = catalog.load_table(f"{gold}.merchant_risk").scan().to_arrow().to_pylist()
    for row in sorted(risky, key=lambda r: -r["fraud_rate"])[:3]:
        console.print(
            f"  merchant {row['merchant_id']:<12} {row['merchant_name'] or '':<24} "
            f"{row['transactions']:>6} txns "
            f"fraud rate {_pct(row['fraud_rate'])} risk {row['risk_level']}"
        )
    return result


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:6.1%}"
