"""`riverbank aws ddl`: Athena/Glue table DDL and Redshift Spectrum external schemas, from the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riverbank import cli
from riverbank.settings import Settings

aws_app = typer.Typer(
    help="Definitions for the aws profile (Athena, Glue, Redshift Spectrum).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(aws_app, name="aws")
    aws_app.command("ddl", help="Print or write Athena CREATE TABLE and Redshift CREATE EXTERNAL SCHEMA.")(
        ddl
    )


def generate(settings: Settings) -> dict[str, str]:
    """File name -> SQL text: one Athena file per table, one for databases, one for Redshift."""
    from iceberg.catalog import load_lake_catalog
    from infra.aws.ddl import athena_databases, athena_ddl, spectrum_schemas

    catalog = load_lake_catalog(settings)
    tables = athena_ddl(catalog)
    files = {"athena/00_databases.sql": ";\n".join(athena_databases(settings, catalog)) + ";\n"}
    for table in tables:
        notes = "".join(f"-- note: {note}\n" for note in table.notes)
        files[f"athena/{table.namespace}.{table.name}.sql"] = f"{notes}{table.sql};\n"
    namespaces = sorted({t.namespace for t in tables})
    files["redshift/spectrum_schemas.sql"] = ";\n".join(spectrum_schemas(settings, namespaces)) + ";\n"
    return files


def ddl(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write one file per statement group here.")
    ] = None,
    json_output: cli.JsonFlag = False,
) -> None:
    settings = cli.run(cli.settings)
    files = cli.run(lambda: generate(settings))
    if json_output:
        cli.print_json(files)
    elif out is not None:
        for name, text in files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        cli.out.print(f"wrote {len(files)} files under {out}")
    else:
        for name, text in files.items():
            cli.out.print(f"-- {name}\n{text}", highlight=False, soft_wrap=True)
