"""The SQL behind inspecting one instance: its row, tries and log window, the workers, and what holds its caps.

Every statement reads; none locks; each says which index it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, null, select, true

from minimap.states import RunState, TIState
from minimap.store.reads import reading
from minimap.store.rows import InstanceRow, RunRow, TryRow
from minimap.store.storage import Store
from minimap.store.tables import dag_run, pool, task_instance, task_try, worker

ti = task_instance.c
tr = task_try.c
dr = dag_run.c
wk = worker.c

WHOLE_LOG = 2**31 - 1  # a window size that takes the whole stored log


def all_tries(store: Store, run_id: str, task_id: str | None, map_index: int | None = None) -> list[TryRow]:
    """Recorded attempts without their logs (log is None; `log_window` reads it), oldest first."""
    # pk_task_try (run_id, task_id, map_index, try_number)
    cols = [c for c in task_try.c if c.name != "log"]
    q = select(*cols, null().label("log")).where(tr.run_id == run_id)
    q = q.order_by(tr.task_id, tr.map_index, tr.try_number)
    if task_id is not None:
        q = q.where(tr.task_id == task_id)
    if map_index is not None:
        q = q.where(tr.map_index == map_index)
    with reading(store) as conn:
        return [TryRow.from_row(r) for r in conn.execute(q)]


@dataclass(frozen=True)
class InstanceExtra:
    """What the instance page needs beyond InstanceRow."""

    row: InstanceRow
    dag_id: str
    args: str | None
    worker_id: str | None
    next_retry_at: datetime | None
    queued_at: datetime | None


def instance(store: Store, run_id: str, task_id: str, map_index: int) -> InstanceExtra | None:
    """One instance with its arguments and lease, or None."""
    # pk_task_instance
    q = select(task_instance).where(ti.run_id == run_id, ti.task_id == task_id, ti.map_index == map_index)
    with reading(store) as conn:
        r = conn.execute(q).first()
    if r is None:
        return None
    return InstanceExtra(InstanceRow.from_row(r), r.dag_id, r.args, r.worker_id, r.next_retry_at, r.queued_at)


def map_indexes(store: Store, run_id: str, task_id: str, limit: int) -> list[int]:
    """The first `limit` map indexes of a task (to name them in a 'no such index' message)."""
    # pk_task_instance
    q = select(ti.map_index).where(ti.run_id == run_id, ti.task_id == task_id).order_by(ti.map_index).limit(limit)
    with reading(store) as conn:
        return [r for (r,) in conn.execute(q)]


@dataclass(frozen=True)
class LogWindow:
    text: str
    total: int
    truncated: bool


def log_window(
    store: Store, run_id: str, task_id: str, map_index: int, try_number: int, before: int | None, size: int
) -> LogWindow | None:
    """`size` characters of a try's log ending at `before` (None: the end); None when no such try."""
    # pk_task_try; the window is cut by the database, so a page never carries the whole log
    key = (tr.run_id == run_id, tr.task_id == task_id, tr.map_index == map_index, tr.try_number == try_number)
    with reading(store) as conn:
        head = conn.execute(select(func.coalesce(func.length(tr.log), 0), tr.log_truncated).where(*key)).first()
        if head is None:
            return None
        total = int(head[0])
        end = total if before is None else max(0, min(before, total))
        start = max(0, end - size)
        text = ""
        if end > start:
            text = conn.execute(select(func.substr(tr.log, start + 1, end - start)).where(*key)).scalar_one() or ""
    return LogWindow(text, total, bool(head[1]))


# --- workers and what makes an instance wait ------------------------------------------------------


def workers(store: Store) -> list[tuple[Any, list[tuple[str, str, int]]]]:
    """Every registered worker (newest heartbeat first) with the instances it holds."""
    # pk_worker; running instances through ix_task_instance_state_run_priority
    held: dict[str, list[tuple[str, str, int]]] = {}
    with reading(store) as conn:
        rows = conn.execute(select(worker).order_by(wk.heartbeat_at.desc())).all()
        q = (
            select(ti.worker_id, ti.run_id, ti.task_id, ti.map_index)
            .where(ti.state == TIState.RUNNING.value)
            .order_by(ti.run_id, ti.task_id, ti.map_index)
        )
        for w, r, t, m in conn.execute(q):
            held.setdefault(w or "", []).append((r, t, m))
    return [(r, held.get(r.worker_id, [])) for r in rows]


def worker_row(store: Store, worker_id: str) -> Any | None:
    """One worker's row, or None."""
    # pk_worker
    with reading(store) as conn:
        return conn.execute(select(worker).where(wk.worker_id == worker_id)).first()


@dataclass(frozen=True)
class RunningNow:
    """Running instances, counted as the caps count them."""

    in_run: int  # of this run (max_active_tasks)
    task_in_run: int  # of this task in this run (max_active_tis_per_dagrun)
    task_in_dag: int  # of this task in every run of its DAG (max_active_tis_per_dag)
    everywhere: int  # of every run (parallelism)
    live_workers: int  # workers whose heartbeat is recent
    in_pool: int = 0  # slots running instances take in the task's pool
    pool_size: int | None = None  # that pool's slots; None: it does not exist


def running_now(
    store: Store, run_id: str, dag_id: str, task_id: str, since: datetime, pool_name: str = "default_pool"
) -> RunningNow:
    """What holds the caps an instance waits on."""
    running = ti.state == TIState.RUNNING.value

    def n(*cond: Any) -> Any:
        return func.count().filter(and_(true(), *cond))

    # ix_task_instance_state_run_priority: only running rows are read
    q = select(
        n(ti.run_id == run_id),
        n(ti.run_id == run_id, ti.task_id == task_id),
        n(ti.dag_id == dag_id, ti.task_id == task_id),
        func.count(),
        func.coalesce(func.sum(ti.pool_slots).filter(ti.pool == pool_name), 0),
    ).where(running)
    live = select(func.count()).select_from(worker).where(wk.heartbeat_at >= since, wk.state == "running")
    with reading(store) as conn:
        a, b, c, d, e = conn.execute(q).one()
        w = conn.execute(live).scalar_one()
        size = conn.execute(select(pool.c.slots).where(pool.c.name == pool_name)).scalar()
    return RunningNow(a, b, c, d, w, int(e), size)


def runs_ahead(store: Store, run: RunRow) -> int:
    """Unfinished runs of the same DAG created before `run` (what max_active_runs makes it wait for)."""
    # ix_dag_run_dag_id_state
    q = (
        select(func.count())
        .select_from(dag_run)
        .where(
            dr.dag_id == run.dag_id,
            dr.id < run.id,
            dr.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]),
        )
    )
    with reading(store) as conn:
        return int(conn.execute(q).scalar_one())
