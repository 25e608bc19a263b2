"""The demo's lake step: row counts per table, then a few analyst queries in both dialects."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from iceberg.sql.errors import SqlError
from iceberg.sql.query import LakeQueryEngine, QueryResult, row_counts
from riverbank.settings import Settings

_BRONZE_TX = "bank_card_transactions"

#: (title, dialect, query) over bronze card transactions; the table name is filled in.
DEMO_QUERIES: tuple[tuple[str, str, str], ...] = (
    (
        "Card transactions per day and status (Athena)",
        "athena",
        "SELECT date_trunc('day', event_time) AS day, status, count(*) AS n, sum(amount) AS total "
        "FROM awsdatacatalog.{bronze}.{tx} GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 20",
    ),
    (
        "Busiest cards in the last hour of data (Athena)",
        "athena",
        "SELECT card_id, count(*) AS n FROM {bronze}.{tx} WHERE event_time >= "
        "date_add('hour', -1, (SELECT max(event_time) FROM {bronze}.{tx})) GROUP BY card_id "
        "ORDER BY n DESC, card_id LIMIT 5",
    ),
    (
        "Transactions per day and channel (Redshift)",
        "redshift",
        "SELECT TRUNC(event_time) AS day, channel, COUNT(*) AS n, "
        "LISTAGG(DISTINCT status, ',') WITHIN GROUP (ORDER BY status) AS statuses "
        "FROM {bronze}.{tx} GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 20",
    ),
    (
        "Newest transactions (Redshift)",
        "redshift",
        "SELECT TOP 5 event_id, card_id, NVL(channel, '?') AS channel, "
        "DATEDIFF(second, event_time, GETDATE()) AS age_s FROM {bronze}.{tx} ORDER BY event_time DESC",
    ),
)


def render(title: str, result: QueryResult) -> Table:
    table = Table(
        title=title, title_justify="left", caption=f"{len(result.rows)} rows, {result.elapsed_s:.2f}s"
    )
    for column in result.columns:
        table.add_column(column)
    for row in result.rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    return table


def demo_step(settings: Settings, console: Console) -> None:
    """Print row counts per lake table, then the demo queries (a refused or failing query says why)."""
    with LakeQueryEngine(settings) as engine:
        counts = row_counts(settings, engine)
        summary = Table(title="Lake tables (current snapshot)", title_justify="left")
        summary.add_column("table")
        summary.add_column("rows", justify="right")
        for name, count in counts.items():
            summary.add_row(name, f"{count:,}")
        console.print(summary if counts else "  the lake catalog holds no tables yet")
        if f"{settings.lake.bronze_namespace}.{_BRONZE_TX}" not in counts:
            return
        for title, dialect, template in DEMO_QUERIES:
            query = template.format(bronze=settings.lake.bronze_namespace, tx=_BRONZE_TX)
            console.print(f"[dim]{dialect}>[/] {query}", highlight=False, soft_wrap=True)
            try:
                console.print(render(title, engine.query(query, dialect)))  # type: ignore[arg-type]
            except SqlError as exc:
                console.print(f"  [yellow]{exc}[/]")
