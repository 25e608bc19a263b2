"""`riverbank produce`: run the synthetic bank's producers with a live progress display."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from producers.model import Stream
from producers.runner import RunOptions, RunReport, produce
from riverbank import cli
from riverbank.settings import Settings


class StreamChoice(enum.StrEnum):
    transactions = "transactions"
    payments = "payments"
    trades = "trades"
    ticks = "ticks"
    all = "all"


def register(app: typer.Typer) -> None:
    app.command("produce")(produce_command)


def progress_table(r: RunReport) -> Table:
    table = Table(
        title=f"riverbank produce  seed={r.seed}  streams={','.join(r.streams)}", title_justify="left"
    )
    for name in (
        "elapsed",
        "target rate",
        "actual rate",
        "generated",
        "sent",
        "acked",
        "failed",
        "DLQ",
        "labels",
    ):
        table.add_column(name, justify="right")
    table.add_row(
        f"{r.elapsed_s:,.1f}s",
        f"{r.target_rate:,.0f}/s",
        f"{r.actual_rate:,.0f}/s",
        f"{r.generated:,}",
        f"{r.sent:,}",
        f"{r.acked:,}",
        f"[red]{r.failed:,}[/]" if r.failed else "0",
        f"[yellow]{r.dlq:,}[/]" if r.dlq else "0",
        f"{r.labels:,}",
    )
    if r.broker_errors:
        table.caption = "broker: " + ", ".join(f"{k} x{v}" for k, v in sorted(r.broker_errors.items()))
    return table


def produce_command(
    stream: Annotated[
        StreamChoice, typer.Option("--stream", help="Which stream to produce.")
    ] = StreamChoice.transactions,
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, help="Target events per second (all streams together).")
    ] = 2000.0,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", min=0.0, help="Seconds of events at the target rate; 0 runs until Ctrl-C."
        ),
    ] = 60.0,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the events (default: a new one, printed).")
    ] = None,
    bank_seed: Annotated[
        int, typer.Option("--bank-seed", help="Seed of the bank's customers, cards and accounts.")
    ] = 1,
    fraud_rate: Annotated[
        float,
        typer.Option(
            "--fraud-rate", min=0.0, max=1.0, help="Probability that an event starts a fraud scenario."
        ),
    ] = 0.002,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale", min=0.001, help="Simulated seconds per second (1440: a day per minute)."
        ),
    ] = 1.0,
    labels_file: Annotated[
        Path | None, typer.Option("--labels-file", help="Also append ground-truth labels to this JSONL file.")
    ] = None,
    no_db: Annotated[
        bool, typer.Option("--no-db", help="Do not write the bank's tables to PostgreSQL.")
    ] = False,
    json_output: cli.JsonFlag = False,
) -> None:
    """Produce synthetic bank events (Avro, via the schema registry) with labelled fraud.

    Exit code 0 when every record was acknowledged, 4 when some failed or were left unsent.
    """
    settings = cli.run(cli.settings)
    streams = tuple(Stream) if stream is StreamChoice.all else (Stream(stream.value),)
    options = RunOptions(
        streams=streams,
        rate=rate,
        duration_s=duration or None,
        seed=seed,
        bank_seed=bank_seed,
        fraud_rate=fraud_rate,
        time_scale=time_scale,
        labels_file=labels_file,
        write_db=not no_db,
    )

    def run() -> RunReport:
        from infra.topics import ensure_topics

        ensure_topics(settings)
        if json_output:
            return produce(settings, options)
        with Live(console=cli.err, refresh_per_second=4, transient=False) as live:
            return produce(settings, options, on_progress=lambda r: live.update(progress_table(r)))

    report = cli.run(run)
    if json_output:
        cli.print_json(report.to_json())
    else:
        note = f" (stopped by {report.stopped_by})" if report.stopped_by else ""
        cli.out.print(
            f"produced {report.generated:,} events in {report.elapsed_s:.1f}s "
            f"({report.actual_rate:,.0f}/s){note}: {report.acked:,} acked, {report.failed:,} failed, "
            f"{report.dlq:,} to DLQ, {report.unflushed:,} unsent, "
            f"{report.labels:,} fraud labels, {report.db_movements:,} balance movements in PostgreSQL"
        )
    if report.failed or report.unflushed:
        raise typer.Exit(4)


def demo_step(settings: Settings, console: Console) -> RunReport:
    """The demo's producer step: 10 s of every stream at a modest rate, with labelled fraud."""
    console.print("  10 s of every stream at 300 events/s, fraud injected at 1%")
    report = produce(settings, RunOptions(streams=tuple(Stream), rate=300, duration_s=10, fraud_rate=0.01))
    for topic, count in sorted(report.acked_by_topic.items()):
        console.print(f"  {topic:<24} {count:>6,} records acknowledged")
    console.print(
        f"  seed {report.seed}: {report.generated:,} events, {report.labels} fraud labels, "
        f"{report.failed} failed, {report.dlq} to DLQ, "
        f"{report.db_movements:,} balance movements in PostgreSQL"
    )
    return report
