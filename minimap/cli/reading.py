"""`minimap runs | tasks | logs`: what happened, read from the database (text or --json)."""

from __future__ import annotations

import json

import click

from minimap import api, service
from minimap.cli.app import main
from minimap.cli.common import (
    EXIT_OK,
    MAX_INDEX,
    common,
    fmt_counts,
    fmt_seconds,
    fmt_when,
    render_table,
    state_option,
    which_run,
)
from minimap.service.records import iso
from minimap.states import TIState


@main.command()
@click.option("--dag-id", help="Only runs of this DAG.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="A JSON list of {run_id, dag_id, state, created_at, started_at, ended_at}.",
)
@common
def runs(db_url: str | None, dag_id: str | None, limit: int, as_json: bool) -> int:
    """List runs, newest first."""
    store = api.open_store(db_url)
    found = api.recent_runs(store, dag_id, limit)
    if as_json:
        click.echo(json.dumps([service.run_json(s.run) for s in found], indent=2))
        return EXIT_OK
    rows = [
        [
            s.run.run_id,
            s.run.dag_id,
            s.run.state.value,
            fmt_when(s.run.created_at),
            fmt_seconds(s.run.started_at, s.run.ended_at),
            fmt_counts(s.counts),
        ]
        for s in found
    ]
    click.echo(render_table(["run_id", "dag_id", "state", "created", "duration", "instances"], rows))
    return EXIT_OK


@main.command()
@which_run
@click.option("--task", "task_id", help="Only this task.")
@click.option("--group", "group_id", help="A mapped task group's lanes as a matrix: map index x task.")
@state_option("Only these states.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of instances, each with its tries.")
@common
def tasks(
    db_url: str | None,
    run_id: str | None,
    dag_id: str | None,
    task_id: str | None,
    group_id: str | None,
    states: tuple[str, ...],
    as_json: bool,
) -> int:
    """List every instance of a run: task, map_index, label, state, try, times, result."""
    store = api.open_store(db_url)
    target = service.resolve_run(store, run_id, dag_id)
    if group_id is not None:
        return _lanes(service.lane_matrix(store, target.run_id, group_id), states, as_json)
    found = service.instances(store, target.run_id, task_id, [TIState(s) for s in states] or None)
    tries = api.tries_by_instance(store, target.run_id, task_id)
    if as_json:
        listed = [service.instance_json(i, tries.get((i.task_id, i.map_index), [])) for i in found]
        click.echo(json.dumps(listed, indent=2))
        return EXIT_OK
    click.echo(f"run {target.run_id} of {target.dag_id}: {target.state}", err=True)
    rows = []
    for i in found:
        result = "" if i.result is None else json.dumps(i.result)
        detail = i.error if i.error else (result[:40] + "…" if len(result) > 40 else result)
        rows.append(
            [
                i.task_id,
                str(i.map_index),
                i.label or "",
                i.state.value,
                str(i.try_number),
                fmt_when(i.started_at),
                fmt_seconds(i.started_at, i.ended_at),
                detail,
            ]
        )
    header = ["task_id", "map_index", "label", "state", "try", "started", "duration", "result / error"]
    click.echo(render_table(header, rows))
    for summary_ in service.run_detail(store, target.run_id).tasks:
        if summary_.mapped and (task_id is None or summary_.task_id == task_id):
            size = f"[{summary_.total}]" if summary_.expanded else "[not expanded yet]"
            click.echo(f"{summary_.task_id} {size}: {fmt_counts(summary_.counts)}")
    for gid in service.mapped_groups(store, target.run_id) if task_id is None else []:
        m = service.lane_matrix(store, target.run_id, gid)
        click.echo(f"task group {gid} [{len(m.lanes)} lanes]: {m.describe()} (minimap tasks --group {gid})")
    return EXIT_OK


def _lanes(m: service.LaneMatrix, states: tuple[str, ...], as_json: bool) -> int:
    """A mapped task group as a lane matrix; --state keeps the lanes with a step (or the lane) in it."""
    kept = [lane for lane in m.lanes if not states or lane.state in states or set(states) & set(lane.states.values())]
    if as_json:
        click.echo(
            json.dumps(
                {
                    **service.lane_matrix_json(m),
                    "lanes": service.lane_matrix_json(
                        service.LaneMatrix(m.run_id, m.group_id, m.tasks, kept, m.max_active_lanes)
                    )["lanes"],
                },
                indent=2,
            )
        )
        return EXIT_OK
    cap = f", max_active_lanes={m.max_active_lanes}" if m.max_active_lanes else ""
    cap += f", tolerated_failures={m.tolerated_failures}" if m.tolerated_failures is not None else ""
    click.echo(f"task group {m.group_id} of run {m.run_id}: {len(m.lanes)} lanes{cap}: {m.describe()}", err=True)
    steps = [t.removeprefix(m.group_id + ".") for t in m.tasks]
    rows = [[str(lane.map_index), lane.label or "", lane.state] + [lane.states.get(t, TIState.SCHEDULED).value
            for t in m.tasks] for lane in kept]  # fmt: skip
    click.echo(render_table(["map_index", "label", "lane", *steps], rows))
    return EXIT_OK


@main.command()
@which_run
@click.option("--task", "task_id", required=True, help="The task.")
@click.option(
    "--map-index", type=click.IntRange(-1, MAX_INDEX), default=-1, show_default=True, help="The instance's index."
)
@click.option(
    "--try", "try_number", type=click.IntRange(1, MAX_INDEX), help="Which try (default: the latest recorded)."
)
@common
def logs(
    db_url: str | None, run_id: str | None, dag_id: str | None, task_id: str, map_index: int, try_number: int | None
) -> int:
    """Print what one try of one instance wrote (stdout, stderr, logging) and its traceback."""
    store = api.open_store(db_url)
    target = service.resolve_run(store, run_id, dag_id)
    view = service.log_view(store, target.run_id, task_id, map_index, try_number)
    t = view.attempt
    who = f" on {t.hostname}:{t.pid}" if t.hostname else ""
    click.echo(
        f"--- {view.name} try {t.try_number}: {t.state}{who}, {iso(t.started_at)} -> {iso(t.ended_at)}", err=True
    )
    click.echo(view.text, nl=bool(view.text) and not view.text.endswith("\n"))
    if view.truncated:
        click.echo("--- the log was cut in the middle (MINIMAP_LOG_LIMIT)", err=True)
    if view.error_line:
        click.echo(view.error_line)
    return EXIT_OK
