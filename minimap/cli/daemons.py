"""`minimap scheduler | worker | ui`: the long-running processes."""

from __future__ import annotations

import logging
import os

import click

from minimap import api, defaults
from minimap.cli.app import main
from minimap.cli.common import (
    EXIT_OK,
    common,
    log,
)
from minimap.exceptions import ConfigError


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
