"""The ``riverbank`` command: thin subcommands over library functions.

Every subcommand parses its arguments, loads settings, calls one library function and renders the
result. Errors become exit codes here and only here: a RiverbankError prints one message to stderr
(no traceback) and exits with its ``exit_code``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from riverbank.errors import RiverbankError
from riverbank.settings import Settings, load_settings

app = typer.Typer(
    name="riverbank",
    help="Riverbank: a streaming lakehouse for banks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
T = TypeVar("T")


def settings() -> Settings:
    return load_settings()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _register_subcommands() -> None:
    # Imported here so that `riverbank --help` stays fast and a broken optional part cannot
    # take down unrelated commands at import time.
    from cdc import cli as cdc_cli
    from flink_jobs import cli as flink_jobs_cli
    from iceberg import cli as lake_cli
    from iceberg import medallion_cli
    from iceberg.sql import cli as sql_cli
    from infra.aws import cli as aws_cli
    from infra.stack import cli as stack_cli
    from producers import cli as producers_cli
    from riverbank.registry import cli as registry_cli

    stack_cli.register(app)
    registry_cli.register(app)
    producers_cli.register(app)
    sql_cli.register(app)
    aws_cli.register(app)
    cdc_cli.register(app)
    lake_cli.register(app)
    medallion_cli.register(app)
    flink_jobs_cli.register(app)


@app.command(help="Run the main job on the embedded stack and show each capability working.")
def demo() -> None:
    from riverbank.demo import run_demo

    healthy = run(lambda: run_demo(settings(), out))
    if not healthy:
        raise typer.Exit(3)


def run(func: Callable[[], T]) -> T:
    """Run ``func``; a RiverbankError becomes its message on stderr and its exit code."""
    try:
        return func()
    except RiverbankError as exc:
        report(exc)
        raise typer.Exit(exc.exit_code) from None


def report(exc: RiverbankError) -> None:
    err.print(f"[bold red]riverbank:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def main() -> None:
    _register_subcommands()
    try:
        app()
    except RiverbankError as exc:  # raised outside `run`, e.g. while building arguments
        report(exc)
        sys.exit(exc.exit_code)
