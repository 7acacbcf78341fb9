"""`minimap run | trigger | resume | clear`: make runs, drive them to their end, and reset instances."""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any

import click

from minimap import api, service
from minimap.api import Store
from minimap.cli.app import main
from minimap.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    IndexList,
    common,
    drive_run,
    parse_conf,
    state_option,
    which_run,
)
from minimap.exceptions import ClearError
from minimap.execution.progress import Progress, summary
from minimap.states import RunState, TIState


@main.command()
@click.argument("dag_file", type=click.Path(dir_okay=False))
@click.option("--dag-id", help="Which DAG, when the file defines several.")
@click.option(
    "--conf", metavar="JSON", callback=parse_conf, help="The run's conf (a JSON object), in get_current_context()."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Task processes (default: the DAG's max_active_tasks, up to parallelism).",
)
@common
def run(db_url: str | None, dag_file: str, dag_id: str | None, conf: dict[str, Any], workers: int | None) -> int:
    """Create a run of DAG_FILE and drive it to the end (exit 0 success, 1 failed, 2 bad input)."""
    from minimap.authoring.loader import load_dag

    dag = load_dag(dag_file, dag_id)  # before touching the database: a bad file is the common error
    store = api.open_store(db_url)
    created = api.trigger_file(store, dag_file, dag.dag_id, conf)
    click.echo(f"run {created.run_id} of {created.dag_id} ({store.url})", err=True)
    if dag.schedule is not None:
        click.echo(
            f"DAG {dag.dag_id} has schedule={dag.schedule!r}: this is a manual run; `minimap scheduler --dags PATH` "
            "creates its scheduled runs, `minimap backfill` those of a past range",
            err=True,
        )
    return drive_run(store, created, workers)


@main.command()
@click.argument("dag_file", type=click.Path(dir_okay=False))
@click.option("--dag-id", help="Which DAG, when the file defines several.")
@click.option("--conf", metavar="JSON", callback=parse_conf, help="The run's conf (a JSON object).")
@click.option(
    "--wait",
    "--follow",
    "wait",
    is_flag=True,
    help="Follow the run to its end with live progress; exit with the run's code (0 success, 1 failed).",
)
@common
def trigger(db_url: str | None, dag_file: str, dag_id: str | None, conf: dict[str, Any], wait: bool) -> int:
    """Create a run of DAG_FILE and print its id at once, for `minimap scheduler` and workers to run."""
    store = api.open_store(db_url)
    created = api.trigger_file(store, dag_file, dag_id, conf)
    click.echo(created.run_id)
    return _follow(store, created.run_id) if wait else EXIT_OK


#: Seconds a followed run may sit untouched before `trigger --wait` says who should be running it.
NOBODY_HINT_AFTER = 5.0


def _follow(store: Store, run_id: str) -> int:
    """Watch a run that schedulers and workers elsewhere drive; the summary and exit code at its end."""
    progress = Progress(store, run_id)
    started = time.monotonic()
    hinted = False
    try:
        while True:
            state = store.run(run_id).state
            if state in (RunState.SUCCESS, RunState.FAILED):
                break
            progress()
            if not hinted and time.monotonic() - started > NOBODY_HINT_AFTER and state is RunState.QUEUED:
                hinted = True
                alive = [w for w in service.list_workers(store) if w.state == "running"]
                who = "no worker is registered" if not alive else f"{len(alive)} worker(s) registered"
                click.echo(
                    f"run {run_id} is still queued ({who}): start `minimap scheduler` and `minimap worker` "
                    "with the same database, or use `minimap run` to run it here",
                    err=True,
                )
            time.sleep(0.2)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped following run {run_id}; it goes on (`minimap tasks --run-id {shlex.quote(run_id)}`)", err=True
        )
        return EXIT_INTERRUPTED
    progress(final=True)
    click.echo(summary(store, run_id, state, time.monotonic() - started))
    return EXIT_OK if state is RunState.SUCCESS else EXIT_FAILED


@main.command()
@which_run
@click.option("--workers", type=click.IntRange(min=1), help="Task processes.")
@common
def resume(db_url: str | None, run_id: str | None, dag_id: str | None, workers: int | None) -> int:
    """Drive an unfinished run to the end from the database alone; nothing that succeeded runs again."""
    store = api.open_store(db_url)
    target = api.resumable(store, run_id, dag_id)
    click.echo(f"resuming run {target.run_id} of {target.dag_id} ({target.state})", err=True)
    return drive_run(store, target, workers)


@main.command()
@which_run
@click.option("--task", "task_id", help="The task (may be left out when one mapped task has the index).")
@click.option("--group", "group_id", help="A mapped task group: re-run its lanes (--map-index, or --state failed).")
@click.option(
    "--map-index",
    "map_indexes",
    type=IndexList(),
    multiple=True,
    help="Indexes to clear: 7, or 3,7,10-12; the flag may repeat.",
)
@state_option("Clear only instances in this state (e.g. failed).")
@click.option("--downstream-all", is_flag=True, help="Also reset downstream instances that succeeded.")
@click.option("--dry-run", is_flag=True, help="Print what would be reset; change nothing.")
@click.option("--no-wait", is_flag=True, help="Reset and return; a scheduler carries on.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before clearing instances that succeeded.")
@click.option("--workers", type=click.IntRange(min=1), help="Task processes while driving the run.")
@common
def clear(
    db_url: str | None,
    run_id: str | None,
    dag_id: str | None,
    task_id: str | None,
    group_id: str | None,
    map_indexes: tuple[list[int], ...],
    states: tuple[str, ...],
    downstream_all: bool,
    dry_run: bool,
    no_wait: bool,
    yes: bool,
    workers: int | None,
) -> int:
    """Re-run exactly the instances named (and what waits on them that did not succeed)."""
    indexes = list(dict.fromkeys(i for group in map_indexes for i in group))  # flattened, first mention first
    store = api.open_store(db_url)
    target = api.resolve_run(store, run_id, dag_id)
    only = [TIState(s) for s in states]
    if group_id is not None:
        if task_id is not None:
            raise ClearError("give --task or --group, not both (--group re-runs whole lanes)")
        targets, only = api.clear_lanes(store, target.run_id, group_id, indexes, only)
    else:
        targets = api.select_targets(store, target.run_id, task_id, indexes, only)
    plan = api.plan_clear(store, target.run_id, targets, only or None, downstream_all)
    if not dry_run and not yes and plan.succeeded and not _confirm_rerun(list(plan.succeeded)):
        click.echo("nothing was reset", err=True)
        return EXIT_OK
    reset = plan.instances if dry_run else api.apply_clear(store, plan).instances
    verb = "would reset" if dry_run else "reset"
    click.echo(f"{verb} {len(reset)} instance{'s' * (len(reset) != 1)} of run {target.run_id}:", err=True)
    for i in reset:
        name = f"{i.task_id}[{i.map_index}]" if i.map_index >= 0 else i.task_id
        click.echo(f"  {name} ({i.state})", err=True)
    if dry_run or no_wait or not reset:
        return EXIT_OK
    return drive_run(store, store.run(target.run_id), workers)


def _confirm_rerun(done: list[Any]) -> bool:
    """Ask before instances that succeeded run again (their side effects happen twice); no terminal: refuse."""
    names = [f"{i.task_id}[{i.map_index}]" if i.map_index >= 0 else i.task_id for i in done]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    question = f"{len(done)} of these succeeded and will run again ({shown})"
    if not sys.stdin.isatty():
        raise ClearError(f"{question}; pass --yes to confirm (there is no terminal to ask)")
    return click.confirm(f"{question}. Go on?", default=False, err=True)
