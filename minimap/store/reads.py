"""The SQL behind what users list and inspect: keyset pages, grouped counts, label search, log windows.

Every statement reads; none locks. Each says which index it walks. Pages are keyset pages (a WHERE on the
last row's sort key, never OFFSET), so page 1,000 costs what page 1 costs, and at most `limit` rows come back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Float, and_, cast, extract, func, or_, select, true
from sqlalchemy.exc import InterfaceError, OperationalError

from minimap.exceptions import DatabaseError
from minimap.states import RunState, TIState
from minimap.store.engine import short
from minimap.store.rows import InstanceRow, RunRow, TryRow
from minimap.store.storage import Store
from minimap.store.tables import dag_run, task_instance, task_try, worker

ti = task_instance.c
tr = task_try.c
dr = dag_run.c
wk = worker.c

SORTS = ("index", "duration", "end")


@contextmanager
def _read(store: Store) -> Iterator[Connection]:
    try:
        with store.engine.connect() as conn:
            yield conn
    except (OperationalError, InterfaceError) as e:
        raise DatabaseError(f"database {store.url} failed: {short(e)}") from e


# --- runs ---------------------------------------------------------------------------------------


def runs_page(
    store: Store, dag_id: str | None, state: RunState | None, before_id: int | None, limit: int
) -> list[RunRow]:
    """Runs newest first, those older than `before_id` (the last row's id of the previous page)."""
    # walks pk_dag_run (id) backwards; with dag_id, ix_dag_run_dag_id_id
    q = select(dag_run).order_by(dr.id.desc()).limit(limit)
    if dag_id is not None:
        q = q.where(dr.dag_id == dag_id)
    if state is not None:
        q = q.where(dr.state == state.value)
    if before_id is not None:
        q = q.where(dr.id < before_id)
    with _read(store) as conn:
        return [RunRow.from_row(r) for r in conn.execute(q)]


def run_state_counts(store: Store, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """run_id -> state -> instances, for a page of runs, in one grouped statement."""
    if not run_ids:
        return {}
    # index-only scan of ix_task_instance_run_id_task_id_state
    q = select(ti.run_id, ti.state, func.count()).where(ti.run_id.in_(list(run_ids))).group_by(ti.run_id, ti.state)
    out: dict[str, dict[str, int]] = {r: {} for r in run_ids}
    with _read(store) as conn:
        for run_id, state, n in conn.execute(q):
            out[run_id][state] = n
    return out


@dataclass(frozen=True)
class TaskStats:
    """What one grouped statement knows of one task's instances."""

    counts: dict[str, int]
    first_start: datetime | None
    last_end: datetime | None


def task_stats(store: Store, run_id: str) -> dict[str, TaskStats]:
    """task_id -> its per-state counts, first start and last end: ONE grouped statement over the run."""
    # ix_task_instance_run_id_task_id_state groups the rows in index order
    q = (
        select(ti.task_id, ti.state, func.count(), func.min(ti.started_at), func.max(ti.ended_at))
        .where(ti.run_id == run_id)
        .group_by(ti.task_id, ti.state)
    )
    counts: dict[str, dict[str, int]] = {}
    starts: dict[str, list[datetime]] = {}
    ends: dict[str, list[datetime]] = {}
    with _read(store) as conn:
        for task_id, state, n, first, last in conn.execute(q):
            counts.setdefault(task_id, {})[state] = n
            if first is not None:
                starts.setdefault(task_id, []).append(_aware(first))
            if last is not None:
                ends.setdefault(task_id, []).append(_aware(last))
    return {
        t: TaskStats(c, min(starts[t]) if t in starts else None, max(ends[t]) if t in ends else None)
        for t, c in counts.items()
    }


def _aware(t: Any) -> datetime:
    """min()/max() bypass the column type on some backends: back to aware UTC datetimes."""
    from datetime import timezone

    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


# --- instances ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyset:
    """Where a page starts: after this row's sort value (None: its value is NULL) and map_index."""

    value: float | datetime | None
    map_index: int


def _duration(store: Store) -> Any:
    """Seconds from started_at to ended_at, computed the same way in every statement (NULL if unknown)."""
    if store.is_postgres:
        return cast(extract("epoch", ti.ended_at - ti.started_at), Float)
    return (func.julianday(ti.ended_at) - func.julianday(ti.started_at)) * 86400.0


def instance_page(
    store: Store,
    run_id: str,
    task_id: str,
    *,
    states: Sequence[TIState] | None,
    q: str | None,
    sort: str,
    descending: bool,
    after: Keyset | None,
    limit: int,
) -> list[tuple[InstanceRow, Any]]:
    """Up to `limit` instances of one task after `after`, each with its sort value.

    Rows with a NULL sort value (not ended yet) come last in both directions, in map_index order.
    """
    base = [ti.run_id == run_id, ti.task_id == task_id]
    if states:
        base.append(ti.state.in_([s.value for s in states]))
    if q:
        base.append(ti.label.ilike(f"%{_escape_like(q)}%", escape="\\"))
    if sort == "index":
        key = ti.map_index
        # pk_task_instance (run_id, task_id, map_index), forwards or backwards
        page = _ordered(store, base, key, None, descending, after, limit)
        return [(row, row.map_index) for row in page]
    key = ti.ended_at if sort == "end" else _duration(store)
    # end: ix_task_instance_run_id_task_id_ended_at_map_index; duration: the task's rows sorted (top-N)
    rows: list[tuple[InstanceRow, Any]] = []
    if after is None or after.value is not None:
        rows = _ordered_values(store, base, key, descending, after, limit)
    if len(rows) < limit:
        tail_after = after.map_index if after is not None and after.value is None else None
        nulls = base + [key.is_(None)]
        cont = None if tail_after is None else Keyset(None, tail_after)
        rows += [(r, None) for r in _ordered(store, nulls, ti.map_index, None, False, cont, limit - len(rows))]
    return rows


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _ordered(
    store: Store, where: list[Any], key: Any, _value: Any, descending: bool, after: Keyset | None, limit: int
) -> list[InstanceRow]:
    """Rows in map_index order after `after.map_index`."""
    cond = list(where)
    if after is not None:
        cond.append(ti.map_index < after.map_index if descending else ti.map_index > after.map_index)
    order = ti.map_index.desc() if descending else ti.map_index.asc()
    stmt = select(task_instance).where(*cond).order_by(order).limit(limit)
    with _read(store) as conn:
        return [InstanceRow.from_row(r) for r in conn.execute(stmt)]


def _ordered_values(
    store: Store, where: list[Any], key: Any, descending: bool, after: Keyset | None, limit: int
) -> list[tuple[InstanceRow, Any]]:
    """Rows whose sort value is not NULL, by (value, map_index), after `after`."""
    cond = [*where, key.is_not(None)]
    if after is not None and after.value is not None:
        v, m = after.value, after.map_index
        if descending:
            cond.append(or_(key < v, and_(key == v, ti.map_index < m)))
        else:
            cond.append(or_(key > v, and_(key == v, ti.map_index > m)))
    order = (key.desc(), ti.map_index.desc()) if descending else (key.asc(), ti.map_index.asc())
    stmt = select(task_instance, key.label("sort_value")).where(*cond).order_by(*order).limit(limit)
    with _read(store) as conn:
        return [(InstanceRow.from_row(r), r.sort_value) for r in conn.execute(stmt)]


def all_instances(
    store: Store, run_id: str, task_id: str | None, states: Sequence[TIState] | None
) -> list[InstanceRow]:
    """Every instance of a run (or of one task), in task_id, map_index order."""
    # pk_task_instance
    q = select(task_instance).where(ti.run_id == run_id).order_by(ti.task_id, ti.map_index)
    if task_id is not None:
        q = q.where(ti.task_id == task_id)
    if states:
        q = q.where(ti.state.in_([s.value for s in states]))
    with _read(store) as conn:
        return [InstanceRow.from_row(r) for r in conn.execute(q)]


def all_tries(store: Store, run_id: str, task_id: str | None, map_index: int | None = None) -> list[TryRow]:
    """Recorded attempts, without their logs (log is None; read it with `log_window`), oldest first."""
    # pk_task_try (run_id, task_id, map_index, try_number)
    cols = [c for c in task_try.c if c.name != "log"]
    q = select(*cols).where(tr.run_id == run_id).order_by(tr.task_id, tr.map_index, tr.try_number)
    if task_id is not None:
        q = q.where(tr.task_id == task_id)
    if map_index is not None:
        q = q.where(tr.map_index == map_index)
    with _read(store) as conn:
        return [TryRow.from_row(_with_log(r)) for r in conn.execute(q)]


class _with_log:
    """A row without its log column, read as a TryRow whose log is None."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return None if name == "log" else getattr(self._row, name)


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
    with _read(store) as conn:
        r = conn.execute(q).first()
    if r is None:
        return None
    return InstanceExtra(InstanceRow.from_row(r), r.dag_id, r.args, r.worker_id, r.next_retry_at, r.queued_at)


def map_indexes(store: Store, run_id: str, task_id: str, limit: int) -> list[int]:
    """The first `limit` map indexes of a task (to name them in a 'no such index' message)."""
    # pk_task_instance
    q = select(ti.map_index).where(ti.run_id == run_id, ti.task_id == task_id).order_by(ti.map_index).limit(limit)
    with _read(store) as conn:
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
    with _read(store) as conn:
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
    # pk_worker; running instances through ix_task_instance_state_run_id_task_id_map_index
    held: dict[str, list[tuple[str, str, int]]] = {}
    with _read(store) as conn:
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
    with _read(store) as conn:
        return conn.execute(select(worker).where(wk.worker_id == worker_id)).first()


@dataclass(frozen=True)
class RunningNow:
    """Running instances, counted as the caps count them."""

    in_run: int  # of this run (max_active_tasks)
    task_in_run: int  # of this task in this run (max_active_tis_per_dagrun)
    task_in_dag: int  # of this task in every run of its DAG (max_active_tis_per_dag)
    everywhere: int  # of every run (parallelism)
    live_workers: int  # workers whose heartbeat is recent


def running_now(store: Store, run_id: str, dag_id: str, task_id: str, since: datetime) -> RunningNow:
    """What holds the caps an instance waits on, in one statement."""
    running = ti.state == TIState.RUNNING.value

    def n(*cond: Any) -> Any:
        return func.count().filter(and_(true(), *cond))

    # ix_task_instance_state_run_id_task_id_map_index: only running rows are read
    q = select(
        n(ti.run_id == run_id),
        n(ti.run_id == run_id, ti.task_id == task_id),
        n(ti.dag_id == dag_id, ti.task_id == task_id),
        func.count(),
    ).where(running)
    live = select(func.count()).select_from(worker).where(wk.heartbeat_at >= since, wk.state == "running")
    with _read(store) as conn:
        a, b, c, d = conn.execute(q).one()
        w = conn.execute(live).scalar_one()
    return RunningNow(a, b, c, d, w)


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
    with _read(store) as conn:
        return int(conn.execute(q).scalar_one())
