"""`minimap db prune`: delete finished runs older than a date, and everything they own, in small batches.

A run owns its instances (with their results and arguments) and their tries (with their logs); tables that
later hang off a run do so with ON DELETE CASCADE, so deleting the run's row last removes whatever is left.
Each batch is its own short transaction that first takes the run's row (FOR SHARE on Postgres), so a `clear`
of that run waits for one batch at most, and a run that is no longer finished is left alone from then on.
Running work never waits: prune touches only rows of finished runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from minimap.exceptions import DatabaseError
from minimap.states import RunState
from minimap.store.engine import mask, short
from minimap.store.tables import dag_run, task_instance, task_try

FINISHED = (RunState.SUCCESS.value, RunState.FAILED.value)
BATCH = 5_000  # instances (and their tries) per transaction

ti, tr, dr = task_instance.c, task_try.c, dag_run.c


@dataclass
class Pruned:
    """What prune removed (or, dry, would remove)."""

    runs: list[str] = field(default_factory=list)
    instances: int = 0
    tries: int = 0
    kept_unfinished: list[str] = field(default_factory=list)  # older than the date, but still queued or running
    reopened: list[str] = field(default_factory=list)  # cleared while being pruned: left alone from then on


def prune(
    engine: Engine, before: datetime, dry_run: bool = False, batch: int = BATCH, on_run: Callable[[str], None] = print
) -> Pruned:
    """Delete (or, with `dry_run`, count) runs that finished before `before` and all they own."""
    out = Pruned()
    try:
        _prune(engine, before, dry_run, batch, on_run, out)
    except (OperationalError, InterfaceError) as e:
        done = f" after removing {len(out.runs)} runs" if out.runs and not dry_run else ""
        raise DatabaseError(f"database {mask(str(engine.url))} failed{done}: {short(e)}") from None
    return out


def _prune(
    engine: Engine, before: datetime, dry_run: bool, batch: int, on_run: Callable[[str], None], out: Pruned
) -> None:
    with engine.connect() as conn:
        old = conn.execute(
            select(dr.run_id, dr.state).where(func.coalesce(dr.ended_at, dr.created_at) < before).order_by(dr.id)
        ).all()
    out.kept_unfinished = [r.run_id for r in old if r.state not in FINISHED]
    for r in old:
        if r.state not in FINISHED:
            continue
        if dry_run:
            with engine.connect() as conn:
                out.instances += conn.execute(select(func.count()).where(ti.run_id == r.run_id)).scalar_one()
                out.tries += conn.execute(select(func.count()).where(tr.run_id == r.run_id)).scalar_one()
            out.runs.append(r.run_id)
            continue
        if _delete_run(engine, r.run_id, batch, out):
            out.runs.append(r.run_id)
            on_run(r.run_id)
        else:
            out.reopened.append(r.run_id)


def _still_finished(conn: Connection, run_id: str) -> bool:
    q = select(dr.state).where(dr.run_id == run_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(read=True)  # a clear of this run waits until this batch commits
    return conn.execute(q).scalar() in FINISHED


def _delete_run(engine: Engine, run_id: str, batch: int, out: Pruned) -> bool:
    """Delete one run in batches; False if it stopped being finished on the way."""
    with engine.connect() as conn:
        ranges = conn.execute(
            select(ti.task_id, func.min(ti.map_index), func.max(ti.map_index))
            .where(ti.run_id == run_id)
            .group_by(ti.task_id)
        ).all()
    for task_id, low, high in ranges:
        for start in range(low, high + 1, batch):
            keys = (ti.run_id == run_id, ti.task_id == task_id, ti.map_index >= start, ti.map_index < start + batch)
            try_keys = (tr.run_id == run_id, tr.task_id == task_id, tr.map_index >= start, tr.map_index < start + batch)
            with engine.begin() as conn:
                if not _still_finished(conn, run_id):
                    return False
                out.tries += conn.execute(delete(task_try).where(*try_keys)).rowcount
                out.instances += conn.execute(delete(task_instance).where(*keys)).rowcount
    with engine.begin() as conn:
        if not _still_finished(conn, run_id):
            return False
        out.tries += conn.execute(delete(task_try).where(tr.run_id == run_id)).rowcount  # tries of removed ones
        out.instances += conn.execute(delete(task_instance).where(ti.run_id == run_id)).rowcount
        conn.execute(delete(dag_run).where(dr.run_id == run_id))
    return True
