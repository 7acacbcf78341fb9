"""`minimap db upgrade | prune`: the database's schema and its old runs."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from minimap import api
from minimap.cli.app import main
from minimap.cli.common import (
    EXIT_OK,
    common,
)


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
