"""`riverbank jobs ...` (Flink jobs) and `riverbank fraud rules ...` (the rules topic)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from riverbank import cli

jobs_app = typer.Typer(help="Submit, list, stop and cancel Flink jobs.", no_args_is_help=True)
fraud_app = typer.Typer(help="Fraud scoring.", no_args_is_help=True)
rules_app = typer.Typer(help="Fraud rules on the compacted fraud.rules topic.", no_args_is_help=True)
fraud_app.add_typer(rules_app, name="rules")


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(fraud_app, name="fraud")


@jobs_app.command("submit")
def submit_job(
    job: Annotated[str, typer.Argument(help="Job name: fraud.")],
    parallelism: Annotated[int | None, typer.Option("--parallelism", "-p", min=1)] = None,
    from_savepoint: Annotated[
        str | None, typer.Option("--from-savepoint", help="Savepoint or retained checkpoint to restore.")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Return once the job runs instead of following its state.")
    ] = False,
    json_output: cli.JsonFlag = False,
) -> None:
    """Submit a job to the cluster at flink.rest_url and wait until all its tasks run."""
    from flink_jobs import runner

    settings = cli.run(cli.settings)
    if not json_output:
        cli.err.print(f"submitting {job} to {settings.flink.rest_url} ...")
    info = cli.run(
        lambda: runner.submit(settings, job, parallelism=parallelism, from_savepoint=from_savepoint)
    )
    if json_output:
        cli.print_json(info.to_json())
    else:
        cli.out.print(f"job {info.job_id} ({info.name}) {info.state}")
    if detach:
        return
    cli.err.print("following the job (Ctrl-C stops following; the job keeps running)")
    try:
        state = info.state
        while state not in runner.TERMINAL_STATES:
            time.sleep(2)
            new = cli.run(lambda: runner.wait_for_state(settings, info.job_id, runner.TERMINAL_STATES, 2))
            if new != state:
                cli.err.print(f"job {info.job_id}: {new}")
            state = new
    except KeyboardInterrupt:
        return
    if state != "FINISHED":
        raise typer.Exit(5)


@jobs_app.command("list")
def list_jobs(json_output: cli.JsonFlag = False) -> None:
    """Jobs on the cluster, newest first."""
    from flink_jobs import runner

    settings = cli.run(cli.settings)
    jobs = cli.run(lambda: runner.list_jobs(settings))
    if json_output:
        cli.print_json([j.to_json() for j in jobs])
        return
    table = Table(
        "id", "name", "state", "started", "duration", title=f"Flink jobs at {settings.flink.rest_url}"
    )
    for j in jobs:
        started = dt.datetime.fromtimestamp(j.start_time_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(j.job_id, j.name, j.state, started, f"{j.duration_ms / 1000:,.0f}s")
    cli.out.print(table)


@jobs_app.command("stop")
def stop_job(
    job_id: Annotated[str, typer.Argument(help="Job id (see `riverbank jobs list`).")],
    savepoint: Annotated[
        bool,
        typer.Option("--savepoint", help="Required: stop with a savepoint (resume with --from-savepoint)."),
    ] = False,
    directory: Annotated[
        str | None, typer.Argument(help="Savepoint directory; default: the cluster's savepoint dir.")
    ] = None,
    json_output: cli.JsonFlag = False,
) -> None:
    """Stop a job with a savepoint and print the savepoint's path."""
    from flink_jobs import runner

    if not savepoint:
        cli.err.print("riverbank: stop needs --savepoint (use `riverbank jobs cancel` to stop without one)")
        raise typer.Exit(2)
    settings = cli.run(cli.settings)
    location = cli.run(lambda: runner.stop_with_savepoint(settings, job_id, directory))
    if json_output:
        cli.print_json({"id": job_id, "savepoint": location})
    else:
        cli.out.print(f"job {job_id} stopped; savepoint {location}")


@jobs_app.command("cancel")
def cancel_job(job_id: Annotated[str, typer.Argument(help="Job id (see `riverbank jobs list`).")]) -> None:
    """Cancel a job without a savepoint (its last retained checkpoint stays)."""
    from flink_jobs import runner

    settings = cli.run(cli.settings)
    cli.run(lambda: runner.cancel(settings, job_id))
    state = cli.run(lambda: runner.wait_for_state(settings, job_id, {"CANCELED", "FAILED", "FINISHED"}, 60))
    cli.out.print(f"job {job_id} {state}")


@rules_app.command("publish")
def publish(
    file: Annotated[Path, typer.Argument(help="TOML, JSON or YAML file with a list `rules`.")],
    json_output: cli.JsonFlag = False,
) -> None:
    """Validate every rule of FILE, then publish them to the rules topic (keyed by rule id)."""
    from flink_jobs import rules_topic

    settings = cli.run(cli.settings)
    rules = cli.run(lambda: rules_topic.load_rule_file(file))
    published = cli.run(lambda: rules_topic.publish_rules(settings, rules))
    if json_output:
        cli.print_json([{"rule_id": r.rule_id, "version": r.version} for r in published])
        return
    for r in published:
        cli.out.print(f"  {r.rule_id:<24} v{r.version}")
    cli.out.print(f"published {len(published)} rules to {settings.fraud.rules_topic}")


@rules_app.command("list")
def list_rules(json_output: cli.JsonFlag = False) -> None:
    """The current rules (latest version of each) read from the rules topic."""
    from flink_jobs import rules_topic

    settings = cli.run(cli.settings)
    rules = cli.run(lambda: rules_topic.read_rules(settings))
    rows = rules_topic.rule_rows(rules)
    if json_output:
        cli.print_json({"rule_set_version": rules.version, "rules": rows})
        return
    table = Table(
        "rule", "v", "kind", "scope", "score", "severity", "enabled", "pattern",
        title=f"{len(rows)} rules on {settings.fraud.rules_topic} (rule set {rules.version})",
    )  # fmt: skip
    for r in rows:
        table.add_row(r["rule_id"], str(r["version"]), r["kind"], r["scope"], f"{r['score']:.2f}",
                      r["severity"], "yes" if r["enabled"] else "no", r["pattern"] or "")  # fmt: skip
    cli.out.print(table)
