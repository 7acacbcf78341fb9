"""Pools: list, set and delete them, and check the pools a DAG names before a run of it is made.

A pool caps the slots its running instances take (each takes its task's `pool_slots`) across every run, DAG
and worker host sharing the database; the claim enforces it under the claim lock. `default_pool` (128 slots, as
in Airflow) holds every task that names no pool; it can be resized but not deleted.
"""

from __future__ import annotations

from minimap.exceptions import PoolError
from minimap.snapshot import DagSpec
from minimap.store import pools as pools_sql
from minimap.store.pools import DEFAULT_POOL, PoolRow
from minimap.store.storage import Store

__all__ = ["DEFAULT_POOL", "PoolRow", "check_pools", "delete_pool", "list_pools", "set_pool"]


def list_pools(store: Store) -> list[PoolRow]:
    """Every pool with its slots and the slots running and queued instances take."""
    return pools_sql.pools(store)


def _check_name(name: str) -> None:
    if not name or name != name.strip() or len(name) > 256 or not name.isprintable():
        raise PoolError(f"pool name {name!r} is not usable: 1 to 256 printable characters, no surrounding spaces")


def set_pool(store: Store, name: str, slots: int, description: str | None = None) -> bool:
    """Create pool `name` with `slots` slots, or resize it; True when it was created."""
    _check_name(name)
    if slots < 0:
        raise PoolError(f"a pool has 0 or more slots, got {slots}")
    return pools_sql.set_pool(store, name, slots, description)


def delete_pool(store: Store, name: str) -> None:
    """Delete pool `name`; refused for default_pool and while unfinished instances use it."""
    if name == DEFAULT_POOL:
        raise PoolError(f"{DEFAULT_POOL} cannot be deleted (resize it with `minimap pools set {DEFAULT_POOL} N`)")
    deleted, using = pools_sql.delete_pool(store, name)
    if using:
        n = sum(using.values())
        runs = ", ".join(sorted(using)[:3]) + (" ..." if len(using) > 3 else "")
        raise PoolError(
            f"pool {name!r} is used by {n} unfinished instance{'s' * (n != 1)} (run {runs}): "
            "let them finish first, or set its slots to 0 to hold them"
        )
    if not deleted:
        raise PoolError(f"no pool {name!r}; `minimap pools list` lists them")


def check_pools(store: Store, spec: DagSpec) -> None:
    """Refuse a run whose tasks name a pool that does not exist, or want more slots than their pool has."""
    sizes = pools_sql.sizes(store)
    for tid, task in spec.tasks.items():
        size = sizes.get(task.pool)
        if size is None:
            raise PoolError(
                f"task {tid} of DAG {spec.dag_id} uses pool {task.pool!r}, which does not exist: "
                f"create it with `minimap pools set {task.pool} SLOTS`"
            )
        if 0 < size < task.pool_slots:  # 0 slots: the pool is held on purpose
            raise PoolError(
                f"task {tid} of DAG {spec.dag_id} takes pool_slots={task.pool_slots} but pool {task.pool!r} has "
                f"{size} slots, so it could never run: `minimap pools set {task.pool} {task.pool_slots}` or more"
            )
