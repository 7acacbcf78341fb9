"""What every `minimap` command shares: global options, one-line errors and exit codes, option types, driving a run, and
the plain-text formats of tables, times and counts."""

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
from datetime import datetime
from typing import Any

import click

from minimap import api
from minimap.api import RunRow, Store
from minimap.exceptions import MinimapError
from minimap.execution.progress import Progress, summary
from minimap.service.records import duration
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


def parse_conf(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        conf = json.loads(value)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not valid JSON: {e}") from None
    if not isinstance(conf, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"order\": 42}'")
    return conf


def drive_run(store: Store, run: RunRow, workers: int | None) -> int:
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


def render_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *rows])


def fmt_when(t: datetime | None) -> str:
    """A time in the local zone with its UTC offset, to the second: 2026-11-25 12:03:07+01:00."""
    return t.astimezone().isoformat(sep=" ", timespec="seconds") if t is not None else ""


def fmt_seconds(start: datetime | None, end: datetime | None) -> str:
    took = duration(start, end)
    if took is None:
        return ""
    if took < 10:
        return f"{took:.2f} s"
    return f"{took:.1f} s" if took < 60 else f"{int(took // 60)} min {took % 60:02.0f} s"


def fmt_counts(counts: dict[str, int]) -> str:
    """`10 success, 2 failed`, in the order of the states' definition."""
    return ", ".join(f"{counts[s.value]} {s.value}" for s in TIState if counts.get(s.value))
