"""The SQL behind what users list: runs and a run's tasks with grouped counts, keyset pages of instances.

Every statement reads; none locks. Each says which index it walks (one instance, its tries and log, and the
workers: minimap/store/inspect.py). Pages are keyset pages (a WHERE on the
last row's sort key, never OFFSET), so page 1,000 costs what page 1 costs, and at most `limit` rows come back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, Interval, and_, cast, func, not_, or_, select, tuple_, type_coerce
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError

from minimap.states import RunState, TIState
from minimap.store.engine import READ_ONLY, database_error
from minimap.store.rows import InstanceRow, RunRow
from minimap.store.storage import Store
from minimap.store.tables import dag_run, task_instance, task_try, worker

ti = task_instance.c
tr = task_try.c
dr = dag_run.c
wk = worker.c

SORTS = ("index", "duration", "end")


@contextmanager
def reading(store: Store) -> Iterator[Connection]:
    """A connection that only reads (on SQLite a deferred transaction: it never waits for a claim)."""
    try:
        with store.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            yield conn
    except (DBAPIError, InterfaceError) as e:
        if isinstance(e, IntegrityError):
            raise
        raise database_error(store.url, e) from e


# --- runs ---------------------------------------------------------------------------------------


def runs_page(
    store: Store, dag_id: str | None, state: RunState | None, before_id: int | None, limit: int
) -> list[RunRow]:
    """Runs newest first, those older than `before_id` (the last row's id of the previous page)."""
    # pk_dag_run (id) walked backwards; with dag_id, ix_dag_run_dag_id_id backwards; a state filter filters that walk
    q = select(dag_run).order_by(dr.id.desc()).limit(limit)
    if dag_id is not None:
        q = q.where(dr.dag_id == dag_id)
    if state is not None:
        q = q.where(dr.state == state.value)
    if before_id is not None:
        q = q.where(dr.id < before_id)
    with reading(store) as conn:
        return [RunRow.from_row(r) for r in conn.execute(q)]


def run_state_counts(store: Store, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """run_id -> state -> instances, for a page of runs, in one grouped statement."""
    if not run_ids:
        return {}
    # counted from an index alone: ix_task_instance_run_task_state_times or the state-first one, as the planner picks
    q = select(ti.run_id, ti.state, func.count()).where(ti.run_id.in_(list(run_ids))).group_by(ti.run_id, ti.state)
    out: dict[str, dict[str, int]] = {r: {} for r in run_ids}
    with reading(store) as conn:
        for run_id, state, n in conn.execute(q):
            out[run_id][state] = n
    return out


@dataclass(frozen=True)
class TaskStats:
    """What one grouped statement knows of one task's instances."""

    counts: dict[str, int]
    first_start: datetime | None
    last_end: datetime | None
    placeholder: bool  # the -1 instance of a mapped task is still there: not expanded yet


def task_stats(store: Store, run_id: str, task_ids: Sequence[str] | None = None) -> dict[str, TaskStats]:
    """task_id -> its per-state counts, first start and last end: ONE grouped statement over the run
    (or over the tasks `task_ids` of it)."""
    # ix_task_instance_run_task_state_times covers every column read: no table row is visited (SQLite)
    q = (
        select(
            ti.task_id, ti.state, func.count(), func.min(ti.started_at), func.max(ti.ended_at), func.min(ti.map_index)
        )
        .where(ti.run_id == run_id)
        .group_by(ti.task_id, ti.state)
    )
    if task_ids is not None:
        q = q.where(ti.task_id.in_(list(task_ids)))
    counts: dict[str, dict[str, int]] = {}
    starts: dict[str, list[datetime]] = {}
    ends: dict[str, list[datetime]] = {}
    placeholders: set[str] = set()
    with reading(store) as conn:
        for task_id, state, n, first, last, lowest in conn.execute(q):
            counts.setdefault(task_id, {})[state] = n
            if lowest == -1:
                placeholders.add(task_id)
            if first is not None:
                starts.setdefault(task_id, []).append(first)
            if last is not None:
                ends.setdefault(task_id, []).append(last)
    return {
        t: TaskStats(c, min(starts[t]) if t in starts else None, max(ends[t]) if t in ends else None, t in placeholders)
        for t, c in counts.items()
    }


# --- instances ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyset:
    """Where a page starts: after this row's sort value (None: its value is NULL) and map_index."""

    value: float | datetime | timedelta | None
    map_index: int


def _duration(store: Store) -> Any:
    """How long an attempt took, computed the same way in every statement (NULL when not ended).

    Postgres: an interval (read as timedelta); SQLite: whole milliseconds (julianday's resolution), an integer
    so that equal durations compare equal and ties fall to map_index.
    """
    if store.is_postgres:
        return type_coerce(ti.ended_at - ti.started_at, Interval())
    return cast(func.round((func.julianday(ti.ended_at) - func.julianday(ti.started_at)) * 86_400_000), Integer)


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

    Rows whose sort value is NULL (not ended yet) come after the others in both directions, by map_index.
    """
    where = [ti.run_id == run_id, ti.task_id == task_id]
    if states:
        where.append(ti.state.in_([s.value for s in states]))
    if q:
        where.append(_label_contains(store, q))
    with reading(store) as conn:
        if sort == "index":
            return [(r, r.map_index) for r in _by_index(conn, where, descending, after, limit)]
        key = ti.ended_at if sort == "end" else _duration(store)
        # whether the key has a value, from the columns alone (cheaper than computing a duration twice)
        known = (
            ti.ended_at.is_not(None) if sort == "end" else and_(ti.ended_at.is_not(None), ti.started_at.is_not(None))
        )
        rows: list[tuple[InstanceRow, Any]] = []
        if after is None or after.value is not None:
            rows = _by_value(conn, run_id, task_id, [*where, known], key, descending, after, limit)
        if len(rows) < limit:
            cont = after if after is not None and after.value is None else None
            rest = _by_index(conn, [*where, not_(known)], False, cont, limit - len(rows))
            rows += [(r, None) for r in rest]
    return rows


def _label_contains(store: Store, text: str) -> Any:
    """The label contains `text`, ignoring case. SQLite's LIKE ignores ASCII case by itself (and lower() knows
    no other), at half the cost of lower(label) LIKE; Postgres: lower(label) LIKE, cheaper than ILIKE."""
    pattern = f"%{_escape_like(text)}%"
    if store.is_postgres:
        return func.lower(ti.label).like(func.lower(pattern), escape="\\")
    return ti.label.like(pattern, escape="\\")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _by_index(
    conn: Connection, where: list[Any], descending: bool, after: Keyset | None, limit: int
) -> list[InstanceRow]:
    """Rows in map_index order after `after.map_index`."""
    cond = list(where)
    if after is not None:
        cond.append(ti.map_index < after.map_index if descending else ti.map_index > after.map_index)
    order = ti.map_index.desc() if descending else ti.map_index.asc()
    # pk_task_instance (run_id, task_id, map_index), walked forwards or backwards, stopping after `limit` rows;
    # with a state filter, ix_task_instance_state_run_priority when the planner prefers it
    stmt = select(task_instance).where(*cond).order_by(order).limit(limit)
    return [InstanceRow.from_row(r) for r in conn.execute(stmt)]


def _by_value(
    conn: Connection,
    run_id: str,
    task_id: str,
    where: list[Any],
    key: Any,
    descending: bool,
    after: Keyset | None,
    limit: int,
) -> list[tuple[InstanceRow, Any]]:
    """Rows (all with a sort value) by (value, map_index) after `after`: the top `limit` keys first, then only
    those rows."""
    cond = list(where)
    if after is not None and after.value is not None:
        past = tuple_(key, ti.map_index) < tuple_(after.value, after.map_index)
        cond.append(past if descending else tuple_(key, ti.map_index) > tuple_(after.value, after.map_index))
    value = key.label("sort_value")
    # top-N of (value, map_index) over ix_task_instance_run_task_state_times (covering, without a label filter)
    keys = select(ti.map_index, value).where(*cond)
    keys = keys.order_by(value.desc(), ti.map_index.desc()) if descending else keys.order_by(value, ti.map_index)
    top = keys.limit(limit).subquery()
    order = (top.c.sort_value, top.c.map_index)
    stmt = (
        select(task_instance, top.c.sort_value)
        .join(top, and_(ti.run_id == run_id, ti.task_id == task_id, ti.map_index == top.c.map_index))
        .order_by(*(c.desc() for c in order) if descending else order)
    )
    # then pk_task_instance for the `limit` rows picked
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
    with reading(store) as conn:
        return [InstanceRow.from_row(r) for r in conn.execute(q)]


def instance_states(
    store: Store, run_id: str, picks: Sequence[tuple[str, Sequence[int] | None, Sequence[TIState] | None]]
) -> list[tuple[str, int, TIState, int]]:
    """(task_id, map_index, state, try_number) of the instances picked -- each pick a task, optionally only some of its
    map indexes and states -- in one statement without a lock (a clear's preview)."""
    # pk_task_instance (run_id, task_id, map_index) for each pick; no table visit for the state on SQLite's
    # covering index ix_task_instance_run_task_state_times when the planner prefers it
    ors = []
    for task_id, indexes, states in picks:
        cond = [ti.task_id == task_id]
        if indexes is not None:
            cond.append(ti.map_index.in_(list(indexes)))
        if states is not None:
            cond.append(ti.state.in_([s.value for s in states]))
        ors.append(and_(*cond))
    if not ors:
        return []
    q = select(ti.task_id, ti.map_index, ti.state, ti.try_number).where(ti.run_id == run_id, or_(*ors))
    with reading(store) as conn:
        return [(t, m, TIState(s), n) for t, m, s, n in conn.execute(q)]
