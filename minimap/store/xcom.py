"""Upstream results read from a task process (`ti.xcom_pull`): its own short-lived connection, read only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from minimap.exceptions import DatabaseError
from minimap.states import TIState
from minimap.store.engine import READ_ONLY, make_engine, mask, short
from minimap.store.rows import decode
from minimap.store.tables import task_instance as ti


def failed_indexes(url: str, run_id: str, task_ids: list[str]) -> dict[str, list[int]]:
    """task_id -> the map indexes of its instances that ended failed, in order (an empty list when none)."""
    # the primary key (run_id, task_id, map_index) serves it
    q = (
        select(ti.c.task_id, ti.c.map_index)
        .where(ti.c.run_id == run_id, ti.c.task_id.in_(task_ids), ti.c.state == TIState.FAILED.value)
        .order_by(ti.c.task_id, ti.c.map_index)
    )
    found: dict[str, list[int]] = {t: [] for t in task_ids}
    for task_id, map_index in _read(url, q):
        found[task_id].append(map_index)
    return found


def _read(url: str, q: Any) -> list[Any]:
    # An engine per read, closed after it: pulls are rare, and an idle pooled connection in every task
    # process of every worker would add up to more than Postgres allows.
    engine = make_engine(url)
    try:
        # a read-only connection: on SQLite a deferred transaction, which neither waits for nor blocks a claim
        with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            return list(conn.execute(q))
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot read results from {mask(url)}: {short(e)}") from None
    finally:
        engine.dispose()


def successful_results(url: str, run_id: str, task_id: str, map_indexes: list[int] | None) -> list[tuple[int, Any]]:
    """(map_index, result) of the instances of `task_id` that succeeded, by map_index (all of them if None)."""
    # results_of_task: the primary key (run_id, task_id, map_index) serves it; no lock, a plain read
    q = (
        select(ti.c.map_index, ti.c.result)
        .where(ti.c.run_id == run_id, ti.c.task_id == task_id, ti.c.state == TIState.SUCCESS.value)
        .order_by(ti.c.map_index)
    )
    if map_indexes is not None:
        q = q.where(ti.c.map_index.in_(map_indexes))
    return [(r.map_index, decode(r.result)) for r in _read(url, q)]
