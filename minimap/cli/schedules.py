"""`minimap dags list|pause|unpause` and `minimap backfill`: time schedules from the command line."""

from __future__ import annotations

import json
from datetime import datetime

import click

from minimap import api
from minimap.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, common, drive_run, fmt_when, render_table
from minimap.service import schedules
from minimap.states import RunState


@click.group()
def dags() -> None:
    """The DAGs `minimap scheduler` has recorded: their schedule and next run; pause and unpause them."""


def _next(d: schedules.DagInfo) -> str:
    if d.next_logical_date is None:
        return ""
    return f"{fmt_when(d.next_logical_date)} (due {fmt_when(d.next_due)})"


@dags.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {dag_id, schedule, paused, next_logical_date, "
              "next_due, fileloc, error}.")  # fmt: skip
@common
def list_(db_url: str | None, as_json: bool) -> int:
    """Every recorded DAG: schedule, next run (its logical date, and when it falls due), paused, file, error."""
    store = api.open_store(db_url)
    found = schedules.list_dags(store)
    if as_json:
        click.echo(json.dumps([schedules.dag_json(d) for d in found], indent=2))
        return EXIT_OK
    rows = [
        [
            d.dag_id or "-",
            d.schedule or "None",
            _next(d),
            "yes" if d.paused else "no",
            d.fileloc,
            d.error or "",
        ]
        for d in found
    ]
    click.echo(render_table(["dag_id", "schedule", "next run", "paused", "file", "error"], rows))
    return EXIT_OK


@dags.command()
@click.argument("dag_id")
@common
def pause(db_url: str | None, dag_id: str) -> int:
    """Create no new scheduled runs of DAG_ID (runs already created go on)."""
    schedules.set_paused(api.open_store(db_url), dag_id, True)
    click.echo(f"DAG {dag_id} paused")
    return EXIT_OK


@dags.command()
@click.argument("dag_id")
@common
def unpause(db_url: str | None, dag_id: str) -> int:
    """Schedule DAG_ID again: with catchup the intervals missed while paused come too, without it the latest."""
    schedules.set_paused(api.open_store(db_url), dag_id, False)
    click.echo(f"DAG {dag_id} unpaused")
    return EXIT_OK


@click.command()
@click.argument("dag_file", type=click.Path(dir_okay=False))
@click.option("--start", "start", required=True, metavar="DATE", help="First logical date (ISO; the DAG's zone).")
@click.option("--end", "end", required=True, metavar="DATE", help="Last logical date, included.")
@click.option("--dag-id", help="Which DAG, when the file defines several.")
@click.option("--no-wait", is_flag=True, help="Create the runs and return; a scheduler and workers run them.")
@click.option("--workers", type=click.IntRange(min=1), help="Task processes while driving the runs.")
@common
def backfill(
    db_url: str | None, dag_file: str, start: str, end: str, dag_id: str | None, no_wait: bool, workers: int | None
) -> int:
    """Create the runs of DAG_FILE's schedule whose logical dates are in [--start, --end] (re-using any run the
    DAG already has for a date), then drive them to the end oldest first (exit 0 all succeeded, 1 one failed)."""
    spec = api.load_spec(dag_file, dag_id)
    first: datetime = schedules.parse_when(start, spec, "--start")
    last: datetime = schedules.parse_when(end, spec, "--end")
    store = api.open_store(db_url)
    found = schedules.backfill(store, spec, first, last)
    if not found:
        click.echo(f"DAG {spec.dag_id} ({spec.schedule}) has no logical date from {start} to {end}", err=True)
        return EXIT_OK
    for run, made in found:
        click.echo(f"{'created' if made else 'exists '} {run.run_id} ({run.state})", err=True)
    if no_wait:
        return EXIT_OK
    code = EXIT_OK
    for run, _ in found:
        if run.state in (RunState.QUEUED, RunState.RUNNING):
            outcome = drive_run(store, run, workers)
            if outcome == EXIT_INTERRUPTED:
                return outcome
        else:
            outcome = EXIT_OK if run.state is RunState.SUCCESS else EXIT_FAILED
        code = max(code, outcome)
    return code
