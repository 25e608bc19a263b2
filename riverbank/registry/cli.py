"""`riverbank registry serve` and `riverbank schemas register | check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riverbank import cli
from riverbank.registry import catalog

registry_app = typer.Typer(help="The Confluent-compatible schema registry service.", no_args_is_help=True)
schemas_app = typer.Typer(
    help="Avro schemas in schemas/: register them, check compatibility.", no_args_is_help=True
)

SchemasDir = Annotated[
    Path, typer.Option("--schemas-dir", help="Directory holding subjects.toml and the .avsc files.")
]


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
    app.add_typer(schemas_app, name="schemas")


@registry_app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address; default: host of schema_registry.url.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port; default: port of schema_registry.url.")
    ] = None,
) -> None:
    """Serve the registry until interrupted (health probe: GET / answers 200 {})."""
    from riverbank.registry import server

    settings = cli.run(cli.settings)
    default_host, default_port = server.default_host_port(settings)
    cli.run(lambda: server.serve(settings, host or default_host, port or default_port))


@schemas_app.command("register")
def register_schemas(
    schemas_dir: SchemasDir = catalog.DEFAULT_SCHEMAS_DIR,
    json_output: cli.JsonFlag = False,
) -> None:
    """Register every schema of schemas/subjects.toml (TopicNameStrategy subjects)."""
    from riverbank.registry import workflows

    settings = cli.run(cli.settings)
    registered = cli.run(lambda: workflows.register_all(settings.schema_registry, schemas_dir))
    if json_output:
        cli.print_json([r.__dict__ for r in registered])
        return
    for r in registered:
        cli.out.print(f"{r.subject}: id {r.id}, version {r.version} ({r.file or 'primitive key'})")


@schemas_app.command("check")
def check_schemas(
    schemas_dir: SchemasDir = catalog.DEFAULT_SCHEMAS_DIR,
    offline: Annotated[
        bool, typer.Option("--offline", help="Check against the file's versions in git history only.")
    ] = False,
    online: Annotated[
        bool, typer.Option("--online", help="Require the registry (fail when it is not reachable).")
    ] = False,
    json_output: cli.JsonFlag = False,
) -> None:
    """Exit 2 with an explanation when a working-tree schema breaks its subject's compatibility.

    Checks against the registry when it is reachable, else (or with --offline) against git history.
    """
    from riverbank.registry import workflows

    settings = cli.run(cli.settings)
    mode: workflows.CheckMode = "offline" if offline else "online" if online else "auto"
    result = cli.run(lambda: workflows.check_all(settings.schema_registry, schemas_dir, mode))
    if json_output:
        cli.print_json(result.to_json())
    else:
        if result.note:
            cli.err.print(f"note: {result.note}")
        for v in result.verdicts:
            mark = "[green]ok[/]" if v.compatible else "[red]INCOMPATIBLE[/]"
            cli.out.print(f"{mark} {v.subject} ({v.level}, against {v.against})", highlight=False)
    cli.run(lambda: workflows.require_ok(result))
