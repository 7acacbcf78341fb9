"""The SQL of pools: their sizes and the slots their instances take (the claim reads both: storage.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from minimap.states import UNFINISHED, TIState
from minimap.store.engine import database_error
from minimap.store.storage import Store
from minimap.store.tables import pool, task_instance

ti = task_instance.c
pl = pool.c

DEFAULT_POOL = "default_pool"


@dataclass(frozen=True)
class PoolRow:
    """A pool and the slots its instances take right now."""

    name: str
    slots: int
    description: str | None
    running: int  # slots taken by running instances
    queued: int  # slots wanted by queued instances and due-or-not retries


@contextmanager
def _tx(store: Store) -> Iterator[Connection]:
    try:
        with store.engine.begin() as conn:
            yield conn
    except DBAPIError as e:
        if isinstance(e, IntegrityError):
            raise
        raise database_error(store.url, e) from e


def pools(store: Store) -> list[PoolRow]:
    """Every pool, by name, with the slots in use (one grouped read of the running, queued and retrying rows)."""
    states = (TIState.RUNNING.value, TIState.QUEUED.value, TIState.UP_FOR_RETRY.value)
    used = select(ti.pool, ti.state, func.sum(ti.pool_slots)).where(ti.state.in_(states)).group_by(ti.pool, ti.state)
    with _tx(store) as conn:
        rows = conn.execute(select(pool).order_by(pl.name)).all()
        taken: dict[tuple[str, str], int] = {(p, s): int(n) for p, s, n in conn.execute(used)}
    return [
        PoolRow(
            r.name,
            r.slots,
            r.description,
            taken.get((r.name, TIState.RUNNING.value), 0),
            taken.get((r.name, TIState.QUEUED.value), 0) + taken.get((r.name, TIState.UP_FOR_RETRY.value), 0),
        )
        for r in rows
    ]


def sizes(store: Store) -> dict[str, int]:
    """name -> slots of every pool."""
    with _tx(store) as conn:
        return {name: slots for name, slots in conn.execute(select(pl.name, pl.slots))}


def set_pool(store: Store, name: str, slots: int, description: str | None) -> bool:
    """Create the pool or change its size (and description, if given); True when it was created."""
    values: dict[str, object] = {"slots": slots}
    if description is not None:
        values["description"] = description
    with _tx(store) as conn:
        if conn.execute(update(pool).where(pl.name == name).values(**values)).rowcount:
            return False
    try:
        with _tx(store) as conn:
            conn.execute(insert(pool).values(name=name, **values))
        return True
    except IntegrityError:  # made meanwhile by another process: change it instead
        with _tx(store) as conn:
            conn.execute(update(pool).where(pl.name == name).values(**values))
        return False


def unfinished_in_pool(conn: Connection, name: str) -> dict[str, int]:
    """run_id -> number of its unfinished instances in pool `name`."""
    q = (
        select(ti.run_id, func.count())
        .where(ti.pool == name, ti.state.in_([s.value for s in UNFINISHED]))
        .group_by(ti.run_id)
    )
    return {run_id: int(n) for run_id, n in conn.execute(q)}


def delete_pool(store: Store, name: str) -> tuple[bool, dict[str, int]]:
    """Delete the pool unless unfinished instances use it: (deleted, run_id -> unfinished instances in it)."""
    with _tx(store) as conn:
        using = unfinished_in_pool(conn, name)
        if using:
            return False, using
        return bool(conn.execute(delete(pool).where(pl.name == name)).rowcount), {}
