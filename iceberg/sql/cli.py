"""`riverbank sql "<query>"`: Athena or Redshift SQL over the lake, answered locally by DuckDB."""

from __future__ import annotations

import csv
import enum
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from riverbank import cli


class DialectChoice(enum.StrEnum):
    athena = "athena"
    redshift = "redshift"


def register(app: typer.Typer) -> None:
    app.command("sql", help="Query the lake's Iceberg tables with Athena or Redshift SQL.")(sql_command)


def sql_command(
    query: Annotated[str, typer.Argument(help="One SELECT (or WITH ... SELECT) statement.")],
    dialect: Annotated[
        DialectChoice | None,
        typer.Option("--dialect", help="SQL dialect of the query (default: query.dialect setting)."),
    ] = None,
    json_output: cli.JsonFlag = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV with a header row on stdout.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print the DuckDB SQL and the snapshots read, not the rows.")
    ] = False,
) -> None:
    from iceberg.sql.query import LakeQueryEngine

    settings = cli.run(cli.settings)
    chosen = dialect.value if dialect is not None else settings.query.dialect

    def execute() -> Any:
        with LakeQueryEngine(settings) as engine:
            return engine.query(query, chosen)

    result = cli.run(execute)
    if explain:
        cli.out.print(result.duckdb_sql, highlight=False, soft_wrap=True)
        for table, snapshot in result.snapshots.items():
            cli.out.print(f"  {table}: snapshot {snapshot}", highlight=False)
        return
    if json_output:
        cli.print_json(
            {
                "columns": result.columns,
                "types": result.types,
                "rows": result.records(),
                "snapshots": result.snapshots,
                "elapsed_s": round(result.elapsed_s, 4),
            }
        )
    elif csv_output:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        table = Table(caption=f"{len(result.rows)} rows in {result.elapsed_s:.3f}s ({chosen})")
        for column in result.columns:
            table.add_column(column)
        for row in result.rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        cli.out.print(table)
