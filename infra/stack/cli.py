"""`riverbank up | down | status`: the embedded stack from the command line."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from infra.stack.model import StackStatus
from riverbank import cli
from riverbank.settings import Settings


def register(app: typer.Typer) -> None:
    app.command(help="Start the embedded stack (idempotent) and print its status.")(up)
    app.command(help="Stop every component the embedded stack started.")(down)
    app.command(help="Show each component's state, address, uptime, restarts and memory.")(status)


def up(json_output: cli.JsonFlag = False) -> None:
    settings = cli.run(cli.settings)
    result = cli.run(lambda: start_with_progress(settings, cli.err))
    _show(result, json_output)


def start_with_progress(settings: Settings, console: Console) -> StackStatus:
    with console.status("starting the embedded stack") as spinner:

        def progress(name: str, event: str) -> None:
            if event == "starting":
                spinner.update(f"starting {name}")
            else:
                console.print(f"  {name}: {event}")

        from infra.stack import lifecycle

        return lifecycle.up(settings, progress)


def down(json_output: cli.JsonFlag = False) -> None:
    settings = cli.run(cli.settings)
    from infra.stack import lifecycle

    stopped = cli.run(lambda: lifecycle.down(settings))
    if json_output:
        cli.print_json({"stopped": stopped})
    elif stopped:
        cli.out.print(f"stopped: {', '.join(stopped)}")
    else:
        cli.out.print("the embedded stack was not running")


def status(json_output: cli.JsonFlag = False) -> None:
    """Exit code 0 when every component is healthy, 3 otherwise."""
    settings = cli.run(cli.settings)
    from infra.stack import lifecycle

    result = cli.run(lambda: lifecycle.status(settings))
    _show(result, json_output)
    if not result.healthy:
        raise typer.Exit(3)


def _show(result: StackStatus, json_output: bool) -> None:
    if json_output:
        cli.print_json(result.as_dict())
    else:
        cli.out.print(status_table(result))


def status_table(result: StackStatus) -> Table:
    table = Table(title=f"Riverbank embedded stack ({result.state_dir})", title_justify="left")
    for column in ("component", "address", "state", "health", "pid", "uptime", "restarts", "RSS"):
        table.add_column(column, justify="right" if column in ("pid", "restarts", "RSS") else "left")
    for c in result.components:
        health = "[green]healthy[/]" if c.healthy else f"[red]unhealthy[/] {c.detail}".strip()
        table.add_row(
            c.name,
            c.address,
            c.state,
            health if result.running else "-",
            str(c.pid or "-"),
            _duration(c.uptime_s),
            str(c.restarts),
            _mib(c.rss_bytes),
        )
    table.add_section()
    table.add_row(
        "supervisord",
        "",
        "RUNNING" if result.running else "STOPPED",
        "",
        "",
        "",
        "",
        _mib(result.supervisor_rss_bytes),
    )
    table.add_row("[bold]total[/]", "", "", "", "", "", "", f"[bold]{_mib(result.total_rss_bytes)}[/]")
    return table


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n else "-"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
