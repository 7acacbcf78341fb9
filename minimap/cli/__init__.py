"""The `minimap` command: one thin click command per verb over `minimap.api`, grouped by what the verbs do."""

from __future__ import annotations

from minimap.cli import daemons, database, reading, running  # noqa: F401 -- each registers its commands on main
from minimap.cli.app import main
from minimap.cli.pools import pools
from minimap.cli.schedules import backfill, dags

main.add_command(pools)
main.add_command(dags)
main.add_command(backfill)

__all__ = ["main"]
