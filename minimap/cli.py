"""The `minimap` command: one thin click command per verb over `minimap.api`."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import click

from minimap import api, defaults, service
from minimap.api import RunRow, Store
from minimap.exceptions import ClearError, ConfigError, MinimapError
from minimap.execution.progress import Progress, summary
from minimap.service.records import duration, iso
from minimap.states import RunState, TIState

log = logging.getLogger("minimap")

EXIT_OK, EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 3, 130  # bad input: MinimapError.exit_code (2)
EXIT_BROKEN_PIPE = 141  # as a shell reports a command stopped by SIGPIPE (`minimap tasks | head`)


def _global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--db, -v and --debug: accepted before the subcommand and after it."""
    fn = click.option("--debug", is_flag=True, help="Show tracebacks.")(fn)
    fn = click.option("-v", "--verbose", is_flag=True, help="Log what the scheduler and workers do.")(fn)
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        help="Database URL (default: $MINIMAP_DATABASE_URL, else SQLite in $MINIMAP_HOME).",
    )(fn)


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--db, -v and --debug for every command; errors become one line and an exit code."""

    @_global_options
    @functools.wraps(fn)
    def wrapper(db_url: str | None, verbose: bool, debug: bool, **kwargs: Any) -> None:
        # Options given before the subcommand (`minimap --db URL tasks`) count as if given after it.
        given = click.get_current_context().find_root().obj or {}
        db_url = db_url or given.get("db_url")
        verbose = verbose or given.get("verbose", False)
        debug = debug or given.get("debug", False)
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        if not debug:
            logging.getLogger("alembic").setLevel(logging.WARNING)
        try:
            code = fn(db_url=db_url, **kwargs)
        except click.ClickException:
            raise
        except MinimapError as e:
            if debug:
                raise
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `minimap tasks | head`: the reader has what it wanted; no error to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more reaches the closed pipe
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as e:
            if debug:
                raise
            from minimap.store.engine import mask

            text = str(e).splitlines()[0] if str(e) else ""
            if db_url:
                text = text.replace(db_url, mask(db_url))
            click.echo(
                f"error: internal error: {type(e).__name__}: {text} (run with --debug for the traceback)",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)
        sys.exit(code or EXIT_OK)

    return wrapper


def which_run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--run-id R, or --dag-id D for the latest run of D; neither: the latest run."""
    fn = click.option("--dag-id", help="The latest run of this DAG.")(fn)
    return click.option("--run-id", help="The run (default: the latest).")(fn)


def state_option(help_text: str) -> Callable[..., Any]:
    """--state S (repeatable), one of the instance states."""
    return click.option(
        "--state", "states", type=click.Choice([s.value for s in TIState]), multiple=True, help=help_text
    )


MAX_INDEX = 2**31 - 1  # map indexes and try numbers are 32-bit integers in the database


class IndexList(click.ParamType):  # type: ignore[type-arg]  # subscripting it fails on older click at run time
    """`--map-index 3,7,10-12`: indexes and inclusive ranges, comma-separated (the flag may also repeat)."""

    name = "N[,N|A-B...]"
    MOST = 1_000_000  # one flag never names more indexes than this

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        found: list[int] = []
        for part in str(value).split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if m is None:
                self.fail(f"{part.strip()!r} is not a valid integer or range (e.g. 3,7,10-12)", param, ctx)
            low, high = int(m[1]), int(m[2] if m[2] is not None else m[1])
            if high < low:
                self.fail(f"the range {low}-{high} runs backwards (write {high}-{low})", param, ctx)
            if high > MAX_INDEX:
                self.fail(f"{high} is past the largest map index ({MAX_INDEX:,})", param, ctx)
            if high - low >= self.MOST:
                self.fail(f"the range {low}-{high} names more than {self.MOST:,} indexes", param, ctx)
            found.extend(range(low, high + 1))
        return found


def _conf(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        conf = json.loads(value)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not valid JSON: {e}") from None
    if not isinstance(conf, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"order\": 42}'")
    return conf


def _drive(store: Store, run: RunRow, workers: int | None) -> int:
    """Drive `run` to its end with live progress; print the summary; the exit code for its state."""
    from minimap.execution.runner import Stop, Stopped

    progress = Progress(store, run.run_id)
    started = time.monotonic()
    stop = Stop().install()  # SIGTERM or Ctrl-C: let running attempts finish briefly, hand back the rest
    try:
        state = api.run_to_end(store, run.run_id, workers, on_progress=progress, stop=stop)
    except Stopped as e:
        back = f", {e.handed_back} unfinished attempt{'s' * (e.handed_back != 1)} handed back" if e.handed_back else ""
        click.echo(
            f"\nstopped by {e.stop.name}: run {run.run_id} is unfinished{back}; "
            f"`minimap resume --run-id {shlex.quote(run.run_id)}` carries on",
            err=True,
        )
        return e.stop.exit_code
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted: run {run.run_id} is unfinished; `minimap resume --run-id {shlex.quote(run.run_id)}` "
            "carries on",
            err=True,
        )
        return EXIT_INTERRUPTED
    finally:
        stop.uninstall()
    progress(final=True)
    click.echo(summary(store, run.run_id, state, time.monotonic() - started))
    return EXIT_OK if state is RunState.SUCCESS else EXIT_FAILED


class Cli(click.Group):
    """Click's usage errors as one line, like every other error."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            ctx = getattr(e, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            click.echo(f"error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except MinimapError as e:  # raised before a command runs, e.g. a bad MINIMAP_* variable
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)


@click.group(cls=Cli, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="minimap")
@_global_options
@click.pass_context
def main(ctx: click.Context, db_url: str | None, verbose: bool, debug: bool) -> None:
    """minimap: dynamic task mapping -- fan out, cap, retry exactly the instance that failed."""
    ctx.obj = {"db_url": db_url, "verbose": verbose, "debug": debug}
    if ctx.invoked_subcommand is None:  # `minimap` alone: the help, and no error for asking
        click.echo(ctx.get_help())
        ctx.exit(EXIT_OK)
    defaults.check()


@main.command()
@click.argument("dag_file", type=click.Path(dir_okay=False))
@click.option("--dag-id", help="Which DAG, when the file defines several.")
@click.option(
    "--conf", metavar="JSON", callback=_conf, help="The run's conf (a JSON object), in get_current_context()."
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
    return _drive(store, created, workers)


@main.command()
@click.argument("dag_file", type=click.Path(dir_okay=False))
@click.option("--dag-id", help="Which DAG, when the file defines several.")
@click.option("--conf", metavar="JSON", callback=_conf, help="The run's conf (a JSON object).")
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
    return _drive(store, target, workers)


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
    return _drive(store, store.run(target.run_id), workers)


def _confirm_rerun(done: list[Any]) -> bool:
    """Ask before instances that succeeded run again (their side effects happen twice); no terminal: refuse."""
    names = [f"{i.task_id}[{i.map_index}]" if i.map_index >= 0 else i.task_id for i in done]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    question = f"{len(done)} of these succeeded and will run again ({shown})"
    if not sys.stdin.isatty():
        raise ClearError(f"{question}; pass --yes to confirm (there is no terminal to ask)")
    return click.confirm(f"{question}. Go on?", default=False, err=True)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *rows])


def _when(t: datetime | None) -> str:
    """A time in the local zone with its UTC offset, to the second: 2026-11-25 12:03:07+01:00."""
    return t.astimezone().isoformat(sep=" ", timespec="seconds") if t is not None else ""


def _seconds(start: datetime | None, end: datetime | None) -> str:
    took = duration(start, end)
    if took is None:
        return ""
    if took < 10:
        return f"{took:.2f} s"
    return f"{took:.1f} s" if took < 60 else f"{int(took // 60)} min {took % 60:02.0f} s"


def _counts(counts: dict[str, int]) -> str:
    """`10 success, 2 failed`, in the order of the states' definition."""
    return ", ".join(f"{counts[s.value]} {s.value}" for s in TIState if counts.get(s.value))


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
            _when(s.run.created_at),
            _seconds(s.run.started_at, s.run.ended_at),
            _counts(s.counts),
        ]
        for s in found
    ]
    click.echo(_table(["run_id", "dag_id", "state", "created", "duration", "instances"], rows))
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
                _when(i.started_at),
                _seconds(i.started_at, i.ended_at),
                detail,
            ]
        )
    header = ["task_id", "map_index", "label", "state", "try", "started", "duration", "result / error"]
    click.echo(_table(header, rows))
    for summary_ in service.run_detail(store, target.run_id).tasks:
        if summary_.mapped and (task_id is None or summary_.task_id == task_id):
            size = f"[{summary_.total}]" if summary_.expanded else "[not expanded yet]"
            click.echo(f"{summary_.task_id} {size}: {_counts(summary_.counts)}")
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
    click.echo(_table(["map_index", "label", "lane", *steps], rows))
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


@main.command()
@click.option(
    "--dags",
    "dag_paths",
    metavar="PATH",
    multiple=True,
    help="DAG files or folders whose schedules to act on; repeatable (default: $MINIMAP_HOME/dags).",
)
@common
def scheduler(db_url: str | None, dag_paths: tuple[str, ...]) -> int:
    """Schedule every unfinished run, and create the scheduled runs of the DAGs in --dags as they fall due,
    until SIGTERM or SIGINT (several schedulers may run at once)."""
    import socket

    from minimap.execution.registry import Registry
    from minimap.execution.runner import Stop, serve_scheduler
    from minimap.store.engine import minimap_home

    logging.getLogger("minimap").setLevel(min(logging.getLogger("minimap").getEffectiveLevel(), logging.INFO))
    paths = list(dag_paths) or [str(minimap_home() / "dags")]
    for path in dag_paths:
        if not os.path.exists(path):
            raise click.BadParameter(f"no such file or folder: {path}", param_hint="--dags")
    store = api.open_store(db_url)
    log.info("scheduler: DAG files in %s", ", ".join(paths))
    serve_scheduler(store, Stop().install(), socket.gethostname(), Registry(store, paths))
    return EXIT_OK


@main.command()
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="Task processes.")
@click.option(
    "--grace-period",
    type=click.FloatRange(min=0),
    default=defaults.STOP_GRACE,
    show_default="MINIMAP_STOP_GRACE, else 8",
    help="Seconds to let attempts finish after SIGTERM before handing them back.",
)
@common
def worker(db_url: str | None, concurrency: int, grace_period: float) -> int:
    """Run instances of any run until SIGTERM (graceful) or a second signal (immediate)."""
    from minimap.execution.runner import Stop, serve_worker

    logging.getLogger("minimap").setLevel(min(logging.getLogger("minimap").getEffectiveLevel(), logging.INFO))
    store = api.open_store(db_url)
    serve_worker(store, Stop().install(), concurrency, grace_period)
    return EXIT_OK


@main.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (off loopback: MINIMAP_UI_TOKEN)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--with-workers", is_flag=True, help="Also run a scheduler and a worker here (local use); Ctrl-C stops all."
)
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="The worker's task processes."
)
@common
def ui(db_url: str | None, host: str, port: int, with_workers: bool, concurrency: int) -> int:
    """Serve the web page: runs, tasks, every mapped instance, clear with a preview (pip install 'minimap[ui]')."""
    try:
        from minimap.ui.serve import serve

        serve(db_url, host, port, with_workers, concurrency)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in UI_PACKAGES:
            raise
        raise ConfigError(f"the web page needs {e.name}, which is not installed: pip install 'minimap[ui]'") from None
    return EXIT_OK


UI_PACKAGES = frozenset({"starlette", "uvicorn", "anyio", "h11"})  # what the `ui` extra brings


@main.group()
def db() -> None:
    """The database's schema."""


@db.command()
@common
def upgrade(db_url: str | None) -> int:
    """Apply the schema migrations (also done on first use)."""
    from minimap.store import engine as database

    engine = database.make_engine(db_url)
    applied = database.upgrade(engine)
    click.echo(
        f"{database.mask(str(engine.url))}: {'upgraded to' if applied else 'already at'} {database.head_revision()}"
    )
    return EXIT_OK


def _date(_ctx: click.Context, _param: click.Parameter, value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: use YYYY-MM-DD or an ISO time (UTC unless given)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@db.command()
@click.option("--before", required=True, metavar="DATE", callback=_date, help="Runs that finished before DATE.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@common
def prune(db_url: str | None, before: datetime, dry_run: bool) -> int:
    """Delete finished runs older than DATE with their instances, tries, logs and results, in batches."""
    from minimap.store.prune import prune as prune_runs

    store = api.open_store(db_url)
    say = (lambda run_id: None) if dry_run else (lambda run_id: click.echo(f"removed run {run_id}", err=True))
    out = prune_runs(store.engine, before, dry_run=dry_run, on_run=say)
    verb = "would remove" if dry_run else "removed"
    runs = f"{len(out.runs)} run" + ("" if len(out.runs) == 1 else "s")
    click.echo(f"{verb} {runs} finished before {before.isoformat()}: {out.instances} instances, "
               f"{out.tries} tries (with their logs and results)")  # fmt: skip
    if out.kept_unfinished:
        shown = ", ".join(out.kept_unfinished[:5]) + (" ..." if len(out.kept_unfinished) > 5 else "")
        click.echo(f"kept {len(out.kept_unfinished)} older runs that are not finished: {shown}")
    if out.reopened:
        click.echo(f"stopped pruning {len(out.reopened)} runs cleared meanwhile: {', '.join(out.reopened)}")
    return EXIT_OK


from minimap.cli_pools import pools  # noqa: E402 -- its commands use `common` above

main.add_command(pools)

from minimap.cli_schedules import backfill, dags  # noqa: E402 -- they use common() and _drive() from above

main.add_command(dags)
main.add_command(backfill)
