"""Task instances of one run: count them, hand upstream results on, settle, queue, apply expansion plans, reset.

The writing functions run inside a scheduling pass, on the connection that holds the run's row lock (LOCK_RUN in
runs.py), so no two schedulers change one run's instances at once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, literal, select, union_all, update

from minimap.rules.clearing import Reset
from minimap.rules.expansion import MISSING
from minimap.rules.mapping import Existing, ExpansionPlan
from minimap.snapshot import DagSpec
from minimap.states import TIState
from minimap.store import bulk
from minimap.store.lanes import aligned_results
from minimap.store.rows import InstanceRow, TryRow, decode, utcnow
from minimap.store.runs import INSERT_BATCH
from minimap.store.tables import task_instance, task_try

ti = task_instance.c
tr = task_try.c
WAITING = TIState.SCHEDULED.value

# STATE_COUNTS: instances per (task, state) of one run, read from ix_task_instance_run_task_state_times alone.
STATE_COUNTS = (
    select(ti.task_id, ti.state, func.count()).where(ti.run_id == bindparam("k_run_id")).group_by(ti.task_id, ti.state)
)

# INSTANCE_STATES: (task, index, state, try) of every instance of one run (primary key range).
INSTANCE_STATES = select(ti.task_id, ti.map_index, ti.state, ti.try_number).where(ti.run_id == bindparam("k_run_id"))

# MAPPED_RESULTS: a mapped task's non-None successful results in map_index order (primary key range).
MAPPED_RESULTS = (
    select(ti.result)
    .where(ti.run_id == bindparam("k_run_id"), ti.task_id == bindparam("k_task_id"), ti.state == TIState.SUCCESS.value,
           ti.result.is_not(None))
    .order_by(ti.map_index)
)  # fmt: skip

# RESULT: an unmapped task's state and result (primary key, map_index -1).
RESULT = select(ti.state, ti.result).where(
    ti.run_id == bindparam("k_run_id"), ti.task_id == bindparam("k_task_id"), ti.map_index == -1
)

_TASK = and_(ti.run_id == bindparam("k_run_id"), ti.task_id == bindparam("k_task_id"))
_WAITING_OF_TASK = and_(_TASK, ti.state == WAITING)

# SETTLE: every waiting instance of one task gets a final state without running (primary key range).
SETTLE = (
    update(task_instance)
    .where(_WAITING_OF_TASK)
    .values(state=bindparam("state"), ended_at=bindparam("now"), error=bindparam("error"))
)

# QUEUE: an unmapped task's waiting instance queued with its resolved arguments (primary key).
QUEUE = (
    update(task_instance)
    .where(_WAITING_OF_TASK, ti.map_index == -1)
    .values(state=TIState.QUEUED.value, args=bindparam("args"), queued_at=bindparam("now"))
)

# EXPANSION: index, state and arguments of one task's instances (primary key range).
EXPANSION = select(ti.map_index, ti.state, ti.args).where(_TASK)

# CLAIM_FIELDS: pool, pool_slots and priority_weight of one instance of a task (the same for all; primary key).
CLAIM_FIELDS = select(ti.pool, ti.pool_slots, ti.priority_weight).where(_TASK).limit(1)

# ABANDON: a task's instances not started yet (waiting or queued) skipped with the reason (primary key range).
ABANDON = (
    update(task_instance)
    .where(_TASK, ti.state.in_([WAITING, TIState.QUEUED.value]))
    .values(state=TIState.SKIPPED.value, ended_at=bindparam("now"), error=bindparam("error"))
)

# NO_RETRY: a task's instances waiting for a retry fail for good; their last error stays (primary key range).
NO_RETRY = (
    update(task_instance)
    .where(_TASK, ti.state == TIState.UP_FOR_RETRY.value)
    .values(state=TIState.FAILED.value, next_retry_at=None)
)

# DROP_PLACEHOLDER: the map_index -1 placeholder of a task being expanded (primary key).
DROP_PLACEHOLDER = delete(task_instance).where(_TASK, ti.map_index == -1)

# SET_ARGS: new arguments for one waiting index on a re-expansion (primary key).
SET_ARGS = update(task_instance).where(_TASK, ti.map_index == bindparam("k_map_index")).values(args=bindparam("args"))

# QUEUE_INDEXES: the given waiting indexes of one task queued (primary key).
QUEUE_INDEXES = (
    update(task_instance)
    .where(_WAITING_OF_TASK, ti.map_index.in_(bindparam("indexes", expanding=True)))
    .values(state=TIState.QUEUED.value, queued_at=bindparam("now"))
)

# REMOVE_INDEXES: the given waiting indexes of one task become `removed` (primary key).
REMOVE_INDEXES = (
    update(task_instance)
    .where(_WAITING_OF_TASK, ti.map_index.in_(bindparam("indexes", expanding=True)))
    .values(state=TIState.REMOVED.value, ended_at=bindparam("now"))
)

# RESET: the given indexes of one task, unless running, back to waiting with `fresh` more tries on top of those made
# (rules.clearing.max_tries_after_clear, computed per row) (primary key).
RESET = (
    update(task_instance)
    .where(_TASK, ti.map_index.in_(bindparam("indexes", expanding=True)), ti.state != TIState.RUNNING.value)
    .values(
        state=WAITING,
        max_tries=ti.try_number + bindparam("fresh"),
        error=None,
        next_retry_at=None,
        ended_at=None,
        worker_id=None,
    )
)


def state_counts(conn: Connection, run_id: str) -> dict[str, dict[TIState, int]]:
    """task_id -> state -> number of instances."""
    counts: dict[str, dict[TIState, int]] = defaultdict(dict)
    for task_id, state, n in conn.execute(STATE_COUNTS, {"k_run_id": run_id}):
        counts[task_id][TIState(state)] = n
    return dict(counts)


# COUNTS_OF: counts of the given states (ix_task_instance_state_run_id_task_id_map_index: only their entries are
# read), for the decisions of a scheduling pass, which must not count a million finished instances every time.
COUNTS_OF = (
    select(ti.task_id, ti.state, func.count())
    .where(ti.run_id == bindparam("k_run_id"), ti.state.in_(bindparam("states", expanding=True)))
    .group_by(ti.task_id, ti.state)
)


def counts_of(
    conn: Connection, run_id: str, states: Sequence[TIState], task_ids: Sequence[str] | None = None
) -> dict[str, dict[TIState, int]]:
    """task_id -> state -> number of instances, of `states` only (and of `task_ids` if given)."""
    q = COUNTS_OF if task_ids is None else COUNTS_OF.where(ti.task_id.in_(list(task_ids)))
    counts: dict[str, dict[TIState, int]] = defaultdict(dict)
    for task_id, state, n in conn.execute(q, {"k_run_id": run_id, "states": [s.value for s in states]}):
        counts[task_id][TIState(state)] = n
    return dict(counts)


def live_counts(
    conn: Connection, run_id: str, states: Sequence[TIState], task_ids: Iterable[str]
) -> dict[str, dict[TIState, int]]:
    """counts_of(`states`) and, for each of `task_ids` with a queued instance, QUEUED: 1 -- in ONE statement.

    One statement reads one snapshot (Postgres, READ COMMITTED). Read as two, an instance claimed in between
    (queued, then running) was in neither: the pass saw its task as done and finished a run whose last task was
    still running; an attempt handed back in between (running, then queued) would vanish the same way."""
    counted = (
        select(ti.task_id, ti.state, func.count().label("n"))
        .where(ti.run_id == run_id, ti.state.in_([s.value for s in states]))
        .group_by(ti.task_id, ti.state)
    )
    # Each task's first queued instance, found through ix_task_instance_queued (at most one entry read); an EXISTS
    # was planned as a sequential scan walking past every instance claimed since the last vacuum (40-90 ms at
    # N = 100,000; this: ~1 ms).
    probes = [
        select(
            literal(tid).label("task_id"), literal(TIState.QUEUED.value).label("state"), func.count().label("n")
        ).select_from(
            select(ti.map_index)
            .where(ti.run_id == run_id, ti.task_id == tid, ti.state == TIState.QUEUED.value)
            .limit(1)
            .subquery()
        )
        for tid in task_ids
    ]
    counts: dict[str, dict[TIState, int]] = defaultdict(dict)
    for task_id, state, n in conn.execute(union_all(counted, *probes)):
        if n:
            counts[task_id][TIState(state)] = n
    return dict(counts)


def instance_states(conn: Connection, run_id: str) -> list[tuple[str, int, TIState, int]]:
    """(task_id, map_index, state, try_number) of every instance of the run."""
    rows = conn.execute(INSTANCE_STATES, {"k_run_id": run_id})
    return [(r.task_id, r.map_index, TIState(r.state), r.try_number) for r in rows]


def results(conn: Connection, run_id: str, spec: DagSpec, task_ids: Iterable[str]) -> dict[str, Any]:
    """Upstream results as arguments see them: a mapped task's non-None results by map_index."""
    values: dict[str, Any] = {}
    for tid in task_ids:
        key = {"k_run_id": run_id, "k_task_id": tid}
        if spec.tasks[tid].group is not None:  # a group's lanes: aligned, None where a lane did not succeed
            # (a group with tolerated_failures leaves its failed lanes out)
            values[tid] = aligned_results(conn, run_id, tid, spec)
        elif spec.tasks[tid].mapped:
            values[tid] = [json.loads(r.result) for r in conn.execute(MAPPED_RESULTS, key)]
        else:
            row = conn.execute(RESULT, key).first()
            ok = row is not None and row.state == TIState.SUCCESS.value
            values[tid] = decode(row.result) if ok and row is not None else MISSING
    return values


def settle(conn: Connection, run_id: str, task_id: str, state: TIState, error: str | None = None) -> None:
    conn.execute(
        SETTLE, {"k_run_id": run_id, "k_task_id": task_id, "state": state.value, "now": utcnow(), "error": error}
    )


def abandon(conn: Connection, run_id: str, task_id: str, reason: str) -> None:
    """The task failed past its tolerance: what has not started is skipped with `reason`; a pending retry fails."""
    key = {"k_run_id": run_id, "k_task_id": task_id}
    conn.execute(ABANDON, {**key, "now": utcnow(), "error": reason})
    conn.execute(NO_RETRY, key)


def queue(conn: Connection, run_id: str, task_id: str, args: str) -> None:
    conn.execute(QUEUE, {"k_run_id": run_id, "k_task_id": task_id, "args": args, "now": utcnow()})


def expansion_state(conn: Connection, run_id: str, task_id: str) -> list[Existing]:
    """The task's instances as an expansion plan needs them."""
    rows = conn.execute(EXPANSION, {"k_run_id": run_id, "k_task_id": task_id})
    return [Existing(r.map_index, TIState(r.state), r.args) for r in rows]


def apply_expansion(
    conn: Connection,
    run_id: str,
    dag_id: str,
    task_id: str,
    plan: ExpansionPlan,
    args: Sequence[str],
    max_tries: int,
) -> None:
    """Carry out `plan` (minimap.rules.mapping); `args` holds each map index's JSON arguments."""
    now, key = utcnow(), {"k_run_id": run_id, "k_task_id": task_id}
    if plan.skip:
        settle(conn, run_id, task_id, TIState.SKIPPED)
        return
    some = conn.execute(CLAIM_FIELDS, key).first() if plan.add else None  # before the placeholder goes
    fields = dict(some._mapping) if some is not None else {}
    if plan.drop_placeholder:
        conn.execute(DROP_PLACEHOLDER, key)
    constant = {"run_id": run_id, "task_id": task_id, "dag_id": dag_id, "state": TIState.QUEUED.value,
                "try_number": 0, "max_tries": max_tries, "queued_at": now, **fields}  # fmt: skip
    rows = ((i, args[i]) for i in plan.add)
    bulk.insert_instances(conn, constant, rows)  # streamed: COPY on Postgres, executemany on SQLite
    for i in plan.new_args:
        conn.execute(SET_ARGS, {**key, "k_map_index": i, "args": args[i]})
    for statement, indexes in ((QUEUE_INDEXES, plan.queue), (REMOVE_INDEXES, plan.remove)):
        for start in range(0, len(indexes), INSERT_BATCH):
            conn.execute(statement, {**key, "indexes": list(indexes[start : start + INSERT_BATCH]), "now": now})


def reset(conn: Connection, run_id: str, plan: Sequence[Reset]) -> None:
    """Carry out a clear's resets (minimap.rules.clearing.Reset)."""
    for r in plan:
        for start in range(0, len(r.map_indexes), INSERT_BATCH):
            indexes = list(r.map_indexes[start : start + INSERT_BATCH])
            conn.execute(
                RESET, {"k_run_id": run_id, "k_task_id": r.task_id, "indexes": indexes, "fresh": r.fresh_tries}
            )


def listed(
    conn: Connection,
    run_id: str,
    task_id: str | None = None,
    states: Sequence[TIState] | None = None,
    map_indexes: Sequence[int] | None = None,
) -> list[InstanceRow]:
    """INSTANCES: a run's instances by (task_id, map_index), optionally filtered (primary key range); no lock."""
    q = select(task_instance).where(ti.run_id == run_id).order_by(ti.task_id, ti.map_index)
    if task_id is not None:
        q = q.where(ti.task_id == task_id)
    if states:
        q = q.where(ti.state.in_([s.value for s in states]))
    if map_indexes is not None:
        q = q.where(ti.map_index.in_(list(map_indexes)))
    return [InstanceRow.from_row(r) for r in conn.execute(q)]


def tries(conn: Connection, run_id: str, task_id: str | None = None, map_index: int | None = None) -> list[TryRow]:
    """TRIES: recorded attempts, oldest first (task_try's primary key range); no lock."""
    q = select(task_try).where(tr.run_id == run_id).order_by(tr.task_id, tr.map_index, tr.try_number)
    if task_id is not None:
        q = q.where(tr.task_id == task_id)
    if map_index is not None:
        q = q.where(tr.map_index == map_index)
    return [TryRow.from_row(r) for r in conn.execute(q)]
