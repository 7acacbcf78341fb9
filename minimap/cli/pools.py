"""`minimap pools list | set | delete`: the pools that cap slots across every run, DAG and worker host."""

from __future__ import annotations

import json

import click

from minimap import api
from minimap.cli.common import EXIT_OK, common, render_table


@click.group()
def pools() -> None:
    """Pools: slots shared by every run and worker (a task takes its pool_slots of its pool while it runs)."""


@pools.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {name, slots, running, queued, description}.")
@common
def list_(db_url: str | None, as_json: bool) -> int:
    """Every pool: its slots, the slots running instances take, and those queued instances wait for."""
    rows = api.list_pools(api.open_store(db_url))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return EXIT_OK
    table = [[r.name, str(r.slots), str(r.running), str(r.queued), r.description or ""] for r in rows]
    click.echo(render_table(["pool", "slots", "running", "queued", "description"], table))
    return EXIT_OK


@pools.command("set")
@click.argument("name")
@click.argument("slots", type=click.IntRange(min=0))
@click.option("--description", help="What the pool guards (shown by `pools list`).")
@common
def set_(db_url: str | None, name: str, slots: int, description: str | None) -> int:
    """Create pool NAME with SLOTS slots, or resize it (running instances keep running; 0 holds the queue)."""
    created = api.set_pool(api.open_store(db_url), name, slots, description)
    click.echo(f"pool {name}: {'created with' if created else 'now'} {slots} slot{'s' * (slots != 1)}")
    return EXIT_OK


@pools.command("delete")
@click.argument("name")
@common
def delete(db_url: str | None, name: str) -> int:
    """Delete pool NAME (refused for default_pool, and while unfinished instances use it)."""
    api.delete_pool(api.open_store(db_url), name)
    click.echo(f"pool {name}: deleted")
    return EXIT_OK
